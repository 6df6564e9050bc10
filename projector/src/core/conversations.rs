//! Projection `conversations`: one row per (user, channel) with `read_seq` and `last_msg_seq`.
//!
//! Rules (unread = `last_msg_seq − read_seq`, so it cannot drift):
//! - a message moves the channel's `last_msg_seq` for every member and advances the sender's
//!   own `read_seq` to it;
//! - a personal channel's two rows appear with its first message;
//! - joining a group starts the member at the channel's current seq (nothing unread);
//! - `read_position_set` sets `read_seq` exactly (lower = mark unread; the command service
//!   has capped it at the channel's head);
//! - a group's head lives in `conversation_channels` only (fan-out on read): a group message
//!   moves one row, not one per member;
//! - leaving a group or its disbanding removes the rows.
//!
//! Planning: a batch becomes its membership steps (join, leave, disband) in log order, then
//! one [`Step::Messages`] with every message and read position of the batch coalesced (one
//! row change per conversation, however many events touched it). That order is equivalent to
//! the log's because the two commute: a join records the group's head at the join (known from
//! the batch's earlier messages, else still the stored one); a leave or disband drops what the
//! batch had pending for those rows; the message writes are monotonic (`GREATEST`). A read
//! position overrides the reader's sends before it and is raised by their sends after it
//! ([`ReadSet::floor`]).

use super::{channel_columns, Record};
use events::event::{GroupCreated, MemberBanned, MemberRemoved, MembersAdded};
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

/// A read position set in a run: `read_seq = GREATEST(read_seq, floor)`, applied after the
/// run's heads and sender reads. The event's position is already at most the channel's head
/// (the command service caps it when deciding), so it is applied as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadSet {
    /// Tenant.
    pub tenant: String,
    /// Reader.
    pub uid: String,
    /// 1 or 2.
    pub channel_type: i16,
    /// Storage key.
    pub channel_key: String,
    /// The last position set in the run.
    pub read_seq: i64,
    /// The reader's last own message seq after that set in the run (0 = none).
    pub floor: i64,
}

/// One step of a conversations plan; steps apply in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A run of messages and read positions, coalesced per conversation; applied as pairs,
    /// then group heads, then sender reads, then read sets.
    Messages {
        /// Personal rows (two per pair).
        pairs: Vec<PairRow>,
        /// Group heads.
        groups: Vec<GroupHead>,
        /// Group senders' read advances.
        sender_reads: Vec<SenderRead>,
        /// Read positions set.
        reads: Vec<ReadSet>,
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
        /// The group's head when they joined, if the batch's messages before the join set it
        /// (else the head in `conversation_channels` is the one at the join).
        head: Option<i64>,
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
}

/// A personal channel in a run: (low, high, head seq, head time, low's max own seq, high's
/// max own seq).
type PairAcc = (String, String, i64, i64, i64, i64);

#[derive(Default)]
struct Run {
    /// (tenant, pair key) → its accumulated change
    pairs: HashMap<(String, String), PairAcc>,
    groups: HashMap<(String, String), GroupHead>,
    sender_reads: HashMap<(String, String, String), i64>,
    /// (tenant, channel_type, key, uid) → (position set, own seq after it)
    reads: HashMap<(String, i16, String, String), (i64, i64)>,
    /// (tenant, group, uid) removed in this batch and not back yet: their later reads are moot.
    gone: std::collections::HashSet<(String, String, String)>,
}

impl Run {
    fn push(&mut self, tenant: &str, channel: &ChannelKey, from: &str, seq: i64, at: i64) {
        let (channel_type, key) = channel_columns(channel);
        if let Some(read) = self.reads.get_mut(&(
            tenant.to_owned(),
            channel_type,
            key.clone(),
            from.to_owned(),
        )) {
            read.1 = seq;
        }
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

    /// The group's head as of the batch so far, if a message of it has been seen.
    fn group_head(&self, tenant: &str, group: &str) -> Option<i64> {
        self.groups
            .get(&(tenant.to_owned(), group.to_owned()))
            .map(|g| g.last_msg_seq)
    }

    fn joined(&mut self, tenant: &str, group: &str, uids: &[String]) {
        for u in uids {
            self.gone
                .remove(&(tenant.to_owned(), group.to_owned(), u.clone()));
        }
    }

    /// `uid` left `group`: what the batch had pending for that row is moot.
    fn left(&mut self, tenant: &str, group: &str, uid: &str) {
        self.sender_reads
            .remove(&(tenant.to_owned(), group.to_owned(), uid.to_owned()));
        self.reads
            .remove(&(tenant.to_owned(), 2, group.to_owned(), uid.to_owned()));
        self.gone
            .insert((tenant.to_owned(), group.to_owned(), uid.to_owned()));
    }

    /// `group` was disbanded: every pending row change of it is moot.
    fn disbanded(&mut self, tenant: &str, group: &str) {
        self.sender_reads
            .retain(|(t, g, _), _| !(t == tenant && g == group));
        self.reads
            .retain(|(t, ct, g, _), _| !(t == tenant && *ct == 2 && g == group));
    }

    fn read(&mut self, tenant: &str, uid: &str, channel: &ChannelKey, read_seq: i64) {
        let (channel_type, key) = channel_columns(channel);
        if channel_type == 2
            && self
                .gone
                .contains(&(tenant.to_owned(), key.clone(), uid.to_owned()))
        {
            return;
        }
        self.reads.insert(
            (tenant.to_owned(), channel_type, key, uid.to_owned()),
            (read_seq, 0),
        );
    }

    fn flush(&mut self, steps: &mut Vec<Step>) {
        if self.pairs.is_empty() && self.groups.is_empty() && self.reads.is_empty() {
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
        let mut reads: Vec<ReadSet> = self
            .reads
            .drain()
            .map(
                |((tenant, channel_type, channel_key, uid), (read_seq, floor))| ReadSet {
                    tenant,
                    uid,
                    channel_type,
                    channel_key,
                    read_seq,
                    floor,
                },
            )
            .collect();
        reads.sort_by(|a, b| {
            (&a.tenant, &a.uid, a.channel_type, &a.channel_key).cmp(&(
                &b.tenant,
                &b.uid,
                b.channel_type,
                &b.channel_key,
            ))
        });
        steps.push(Step::Messages {
            pairs,
            groups,
            sender_reads,
            reads,
        });
    }
}

/// The steps for a batch: its membership steps in log order, then its coalesced messages and
/// read positions (see the module docs for why that order is equivalent).
pub fn plan(batch: &[Record]) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut run = Run::default();
    for r in batch {
        let tenant = r.envelope.tenant.as_str();
        let at = r.envelope.occurred_at;
        match &r.envelope.event {
            Event::MessageSent(m) => run.push(
                tenant,
                &m.channel,
                m.from_uid.as_str(),
                m.message_seq as i64,
                m.timestamp,
            ),
            Event::ReadPositionSet(e) => {
                run.read(tenant, e.uid.as_str(), &e.channel, e.message_seq as i64)
            }
            Event::GroupCreated(GroupCreated {
                channel_id,
                members: uids,
                ..
            })
            | Event::MembersAdded(MembersAdded { channel_id, uids }) => {
                let group = channel_id.as_str();
                let uids: Vec<String> = uids.iter().map(ToString::to_string).collect();
                run.joined(tenant, group, &uids);
                steps.push(Step::Joined {
                    tenant: tenant.to_owned(),
                    channel_key: group.to_owned(),
                    uids,
                    created: matches!(r.envelope.event, Event::GroupCreated(_)),
                    head: run.group_head(tenant, group),
                    at,
                });
            }
            // A ban removes the user if it was a member (if not, there is no row to delete).
            Event::MemberRemoved(MemberRemoved { channel_id, uid })
            | Event::MemberBanned(MemberBanned {
                channel_id, uid, ..
            }) => {
                run.left(tenant, channel_id.as_str(), uid.as_str());
                steps.push(Step::Left {
                    tenant: tenant.to_owned(),
                    channel_key: channel_id.to_string(),
                    uid: uid.to_string(),
                });
            }
            // Roles, settings, lists and blocks do not change conversation rows.
            Event::MemberUpdated(_)
            | Event::ChannelUpdated(_)
            | Event::MemberUnbanned(_)
            | Event::SendListChanged(_)
            | Event::UserBlocked(_)
            | Event::UserUnblocked(_) => {}
            Event::GroupDisbanded(e) => {
                run.disbanded(tenant, e.channel_id.as_str());
                steps.push(Step::Disbanded {
                    tenant: tenant.to_owned(),
                    channel_key: e.channel_id.to_string(),
                });
            }
        }
    }
    run.flush(&mut steps);
    steps
}

#[cfg(test)]
#[path = "conversations_tests.rs"]
mod tests;
