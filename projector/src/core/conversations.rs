//! Projection `conversations`: one row per (user, channel) with `read_seq` and `last_msg_seq`.
//!
//! Rules (unread = `last_msg_seq − read_seq`, so it cannot drift):
//! - a message moves the channel's `last_msg_seq` for every member and advances the sender's
//!   own `read_seq` to it;
//! - a personal channel's two rows appear with its first message;
//! - joining a group starts the member at the channel's current seq (nothing unread);
//! - `read_position_set` sets `read_seq` exactly (lower = mark unread), capped at
//!   `last_msg_seq`;
//! - leaving a group or its disbanding removes the rows.

use super::{channel_columns, Record};
use events::{ChannelKey, Event};
use std::collections::HashMap;

/// A personal conversation row to upsert after a run of messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairRow {
    /// Tenant.
    pub tenant: String,
    /// The row's owner.
    pub uid: String,
    /// Pair key.
    pub channel_key: String,
    /// The peer (the channel_id the owner sees).
    pub channel_id: String,
    /// The owner's read position candidate (their last own send in the run, or 0).
    pub read_seq: i64,
    /// The channel's head.
    pub last_msg_seq: i64,
    /// Head time, ms.
    pub updated_at: i64,
}

/// A group's head after a run of messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupHead {
    /// Tenant.
    pub tenant: String,
    /// Group id.
    pub channel_key: String,
    /// Head seq.
    pub last_msg_seq: i64,
    /// Head time, ms.
    pub updated_at: i64,
}

/// A sender's own read advance in a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderRead {
    /// Tenant.
    pub tenant: String,
    /// Group id.
    pub channel_key: String,
    /// The sender.
    pub uid: String,
    /// Their last own message seq in the run.
    pub read_seq: i64,
}

/// One step of a conversations plan; steps apply in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A run of consecutive messages, coalesced per channel.
    Messages {
        /// Personal rows (two per pair).
        pairs: Vec<PairRow>,
        /// Group heads.
        groups: Vec<GroupHead>,
        /// Group senders' read advances.
        sender_reads: Vec<SenderRead>,
    },
    /// Users join a group at its current head (`created` also registers the channel).
    Joined {
        /// Tenant.
        tenant: String,
        /// Group id.
        channel_key: String,
        /// Who joined.
        uids: Vec<String>,
        /// Whether this is the group's creation.
        created: bool,
        /// Time, ms.
        at: i64,
    },
    /// One user leaves a group.
    Left {
        /// Tenant.
        tenant: String,
        /// Group id.
        channel_key: String,
        /// Who left.
        uid: String,
    },
    /// Everyone leaves a group.
    Disbanded {
        /// Tenant.
        tenant: String,
        /// Group id.
        channel_key: String,
    },
    /// A read position is set.
    Read {
        /// Tenant.
        tenant: String,
        /// Reader.
        uid: String,
        /// 1 or 2.
        channel_type: i16,
        /// Storage key.
        channel_key: String,
        /// New position.
        read_seq: i64,
    },
}

#[derive(Default)]
struct Run {
    /// (tenant, pair key) → (low, high, head seq, head time, low's max own seq, high's max own seq)
    pairs: HashMap<(String, String), (String, String, i64, i64, i64, i64)>,
    groups: HashMap<(String, String), GroupHead>,
    sender_reads: HashMap<(String, String, String), i64>,
}

impl Run {
    fn push(&mut self, tenant: &str, channel: &ChannelKey, from: &str, seq: i64, at: i64) {
        let (_, key) = channel_columns(channel);
        match channel {
            ChannelKey::Personal { low, high } => {
                let e = self
                    .pairs
                    .entry((tenant.to_owned(), key))
                    .or_insert_with(|| (low.to_string(), high.to_string(), 0, 0, 0, 0));
                e.2 = seq;
                e.3 = at;
                if from == e.0 {
                    e.4 = seq;
                }
                if from == e.1 {
                    e.5 = seq;
                }
            }
            ChannelKey::Group { .. } => {
                self.groups.insert(
                    (tenant.to_owned(), key.clone()),
                    GroupHead {
                        tenant: tenant.to_owned(),
                        channel_key: key.clone(),
                        last_msg_seq: seq,
                        updated_at: at,
                    },
                );
                self.sender_reads
                    .insert((tenant.to_owned(), key, from.to_owned()), seq);
            }
        }
    }

    fn flush(&mut self, steps: &mut Vec<Step>) {
        if self.pairs.is_empty() && self.groups.is_empty() {
            return;
        }
        let mut pairs = Vec::with_capacity(self.pairs.len() * 2);
        for ((tenant, key), (low, high, seq, at, low_read, high_read)) in self.pairs.drain() {
            pairs.push(PairRow {
                tenant: tenant.clone(),
                uid: low.clone(),
                channel_key: key.clone(),
                channel_id: high.clone(),
                read_seq: low_read,
                last_msg_seq: seq,
                updated_at: at,
            });
            if low != high {
                pairs.push(PairRow {
                    tenant,
                    uid: high,
                    channel_key: key,
                    channel_id: low,
                    read_seq: high_read,
                    last_msg_seq: seq,
                    updated_at: at,
                });
            }
        }
        pairs.sort_by(|a, b| {
            (&a.tenant, &a.uid, &a.channel_key).cmp(&(&b.tenant, &b.uid, &b.channel_key))
        });
        let mut groups: Vec<GroupHead> = self.groups.drain().map(|(_, g)| g).collect();
        groups.sort_by(|a, b| (&a.tenant, &a.channel_key).cmp(&(&b.tenant, &b.channel_key)));
        let sender_reads = self
            .sender_reads
            .drain()
            .map(|((tenant, channel_key, uid), read_seq)| SenderRead {
                tenant,
                channel_key,
                uid,
                read_seq,
            })
            .collect();
        steps.push(Step::Messages {
            pairs,
            groups,
            sender_reads,
        });
    }
}

/// The steps for a batch, in log order.
pub fn plan(batch: &[Record]) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut run = Run::default();
    for r in batch {
        let tenant = r.envelope.tenant.as_str();
        let at = r.envelope.occurred_at;
        let step = match &r.envelope.event {
            Event::MessageSent(m) => {
                run.push(
                    tenant,
                    &m.channel,
                    m.from_uid.as_str(),
                    m.message_seq as i64,
                    m.timestamp,
                );
                continue;
            }
            Event::GroupCreated(e) => Step::Joined {
                tenant: tenant.to_owned(),
                channel_key: e.channel_id.to_string(),
                uids: e.members.iter().map(ToString::to_string).collect(),
                created: true,
                at,
            },
            Event::MembersAdded(e) => Step::Joined {
                tenant: tenant.to_owned(),
                channel_key: e.channel_id.to_string(),
                uids: e.uids.iter().map(ToString::to_string).collect(),
                created: false,
                at,
            },
            Event::MemberRemoved(e) => Step::Left {
                tenant: tenant.to_owned(),
                channel_key: e.channel_id.to_string(),
                uid: e.uid.to_string(),
            },
            Event::GroupDisbanded(e) => Step::Disbanded {
                tenant: tenant.to_owned(),
                channel_key: e.channel_id.to_string(),
            },
            Event::ReadPositionSet(e) => {
                let (channel_type, channel_key) = channel_columns(&e.channel);
                Step::Read {
                    tenant: tenant.to_owned(),
                    uid: e.uid.to_string(),
                    channel_type,
                    channel_key,
                    read_seq: e.message_seq as i64,
                }
            }
        };
        run.flush(&mut steps);
        steps.push(step);
    }
    run.flush(&mut steps);
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tests_support::*;

    #[test]
    fn personal_run_gives_both_rows_with_own_reads() {
        let steps = plan(&[
            personal_msg(1, "a", "b", 1, None),
            personal_msg(2, "a", "b", 2, None),
            personal_msg(3, "b", "a", 3, None),
            personal_msg(4, "a", "b", 4, None),
        ]);
        let [Step::Messages { pairs, .. }] = steps.as_slice() else {
            panic!("{steps:?}")
        };
        let a = pairs.iter().find(|p| p.uid == "a").unwrap();
        let b = pairs.iter().find(|p| p.uid == "b").unwrap();
        // a sent last: nothing unread for a; b read up to its own send at 3: one unread.
        assert_eq!(
            (a.last_msg_seq, a.read_seq, a.channel_id.as_str()),
            (4, 4, "b")
        );
        assert_eq!(
            (b.last_msg_seq, b.read_seq, b.channel_id.as_str()),
            (4, 3, "a")
        );
    }

    #[test]
    fn read_sets_split_runs() {
        let key = events::ChannelKey::personal(
            &events::Uid::parse("a").unwrap(),
            &events::Uid::parse("b").unwrap(),
        );
        let steps = plan(&[
            personal_msg(1, "a", "b", 1, None),
            read_set(2, "b", key, 1),
            personal_msg(3, "a", "b", 2, None),
        ]);
        assert_eq!(steps.len(), 3);
        assert!(matches!(&steps[1], Step::Read { read_seq: 1, .. }));
    }

    #[test]
    fn group_messages_advance_only_the_senders_read() {
        let steps = plan(&[
            group_created(1, "g", &["a", "b"]),
            group_msg(2, "g", "a", 1),
            group_msg(3, "g", "b", 2),
        ]);
        let Step::Messages {
            groups,
            sender_reads,
            ..
        } = &steps[1]
        else {
            panic!("{steps:?}")
        };
        assert_eq!(groups[0].last_msg_seq, 2);
        let mut reads: Vec<_> = sender_reads
            .iter()
            .map(|r| (r.uid.as_str(), r.read_seq))
            .collect();
        reads.sort();
        assert_eq!(reads, vec![("a", 1), ("b", 2)]);
    }
}
