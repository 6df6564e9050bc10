//! Projection `channels`: channel heads, group members and idempotency keys.
//!
//! It doubles as the command service's snapshot: a `channels` row states the channel as of
//! `last_event_seq`, the stream sequence of the last event on the channel's subject.
//!
//! Planning: a batch becomes its group lifecycle and moderation steps in log order, then one
//! [`Step::Messages`] with the batch's heads and keys, then its personal blocks. That is
//! equivalent to log order because lifecycle writes and head writes touch different columns
//! except `last_event_seq` and `updated_at`, which both write with `GREATEST`; a group's
//! creation still comes first. Blocks touch `user_blocks` and only the `last_event_seq` of a
//! personal row that exists (with `GREATEST`); coming after the heads, they find the row a
//! message of the same batch creates, so the row is the same whatever the batch boundaries.

use super::moderation::{self, Block, Change};
use super::{channel_columns, Record};
use events::event::*;
use events::payload_digest;
use events::Event;
use std::collections::HashMap;

/// The head of a channel after a run of messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Tenant.
    pub tenant: String,
    /// 1 or 2.
    pub channel_type: i16,
    /// Storage key.
    pub channel_key: String,
    /// Highest message_seq.
    pub last_msg_seq: i64,
    /// Id of that message.
    pub last_message_id: uuid::Uuid,
    /// Stream sequence of that message.
    pub last_event_seq: i64,
    /// Its timestamp, ms.
    pub updated_at: i64,
    /// Timestamp of the run's first message on the channel, ms: the channel's `created_at`
    /// when this run creates its row (so the value does not depend on batch boundaries).
    pub first_at: i64,
}

/// One row of `message_keys`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    /// Tenant.
    pub tenant: String,
    /// 1 or 2.
    pub channel_type: i16,
    /// Storage key.
    pub channel_key: String,
    /// Sender.
    pub from_uid: String,
    /// The idempotency key.
    pub client_msg_no: String,
    /// The message it produced.
    pub message_id: uuid::Uuid,
    /// Its sequence.
    pub message_seq: i64,
    /// SHA-256 of the payload's base64 text.
    pub payload_sha256: Vec<u8>,
    /// Timestamp, ms.
    pub sent_at: i64,
    /// Stream sequence.
    pub event_seq: i64,
}

/// One step of a channels plan; steps apply in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A run of consecutive messages, coalesced: one head per channel, every key.
    Messages {
        /// Final head per channel.
        heads: Vec<Head>,
        /// New idempotency keys.
        keys: Vec<KeyRow>,
    },
    /// A group was created.
    Created {
        /// Tenant.
        tenant: String,
        /// Group id.
        channel_key: String,
        /// Name.
        name: Option<String>,
        /// Members.
        members: Vec<String>,
        /// The owner (one of `members`).
        owner: Option<String>,
        /// Stream sequence.
        event_seq: i64,
        /// Time, ms.
        at: i64,
    },
    /// A moderation change of a group.
    Moderated {
        /// Tenant.
        tenant: String,
        /// Group id.
        channel_key: String,
        /// What changed.
        change: Change,
        /// Stream sequence.
        event_seq: i64,
        /// Time, ms.
        at: i64,
    },
    /// A personal block or unblock.
    Blocked(Block),
    /// Members joined.
    Added {
        /// Tenant.
        tenant: String,
        /// Group id.
        channel_key: String,
        /// New members.
        uids: Vec<String>,
        /// Stream sequence.
        event_seq: i64,
        /// Time, ms.
        at: i64,
    },
    /// A member left.
    Removed {
        /// Tenant.
        tenant: String,
        /// Group id.
        channel_key: String,
        /// The member.
        uid: String,
        /// Stream sequence.
        event_seq: i64,
        /// Time, ms.
        at: i64,
    },
    /// The group was disbanded.
    Disbanded {
        /// Tenant.
        tenant: String,
        /// Group id.
        channel_key: String,
        /// Stream sequence.
        event_seq: i64,
        /// Time, ms.
        at: i64,
    },
}

#[derive(Default)]
struct Run {
    heads: HashMap<(String, i16, String), Head>,
    keys: Vec<KeyRow>,
}

impl Run {
    fn push(&mut self, r: &Record, m: &MessageSent) {
        let tenant = r.envelope.tenant.to_string();
        let (channel_type, channel_key) = channel_columns(&m.channel);
        let message_id = m.message_id;
        if let Some(no) = &m.client_msg_no {
            self.keys.push(KeyRow {
                tenant: tenant.clone(),
                channel_type,
                channel_key: channel_key.clone(),
                from_uid: m.from_uid.to_string(),
                client_msg_no: events::text::storable(no).into_owned(),
                message_id,
                message_seq: m.message_seq as i64,
                payload_sha256: payload_digest(&m.payload),
                sent_at: m.timestamp,
                event_seq: r.seq as i64,
            });
        }
        // Later events in a run are later in the log, so the last one seen is the head; the
        // first one seen keeps its time as `first_at`.
        let key = (tenant, channel_type, channel_key);
        let first_at = self.heads.get(&key).map_or(m.timestamp, |h| h.first_at);
        let head = Head {
            tenant: key.0.clone(),
            channel_type,
            channel_key: key.2.clone(),
            last_msg_seq: m.message_seq as i64,
            last_message_id: message_id,
            last_event_seq: r.seq as i64,
            updated_at: m.timestamp,
            first_at,
        };
        self.heads.insert(key, head);
    }

    fn flush(&mut self, steps: &mut Vec<Step>) {
        if self.heads.is_empty() && self.keys.is_empty() {
            return;
        }
        let mut heads: Vec<Head> = self.heads.drain().map(|(_, h)| h).collect();
        heads.sort_by(|a, b| {
            (&a.tenant, a.channel_type, &a.channel_key).cmp(&(
                &b.tenant,
                b.channel_type,
                &b.channel_key,
            ))
        });
        steps.push(Step::Messages {
            heads,
            keys: std::mem::take(&mut self.keys),
        });
    }
}

/// The steps for a batch: lifecycle and moderation steps in log order, then the coalesced
/// messages, then the blocks in log order.
pub fn plan(batch: &[Record]) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut blocks = Vec::new();
    let mut run = Run::default();
    for r in batch {
        let tenant = || r.envelope.tenant.to_string();
        let event_seq = r.seq as i64;
        let at = r.envelope.occurred_at;
        if let Some((channel_key, change)) = moderation::change(&r.envelope.event) {
            steps.push(Step::Moderated {
                tenant: tenant(),
                channel_key,
                change,
                event_seq,
                at,
            });
            continue;
        }
        if let Some(b) =
            moderation::block(r.envelope.tenant.as_str(), &r.envelope.event, event_seq, at)
        {
            blocks.push(Step::Blocked(b));
            continue;
        }
        let step = match &r.envelope.event {
            Event::MessageSent(m) => {
                run.push(r, m);
                continue;
            }
            Event::ReadPositionSet(_) => continue,
            Event::GroupCreated(e) => Step::Created {
                tenant: tenant(),
                channel_key: e.channel_id.to_string(),
                name: e
                    .name
                    .as_deref()
                    .map(|n| events::text::storable(n).into_owned()),
                members: e.members.iter().map(ToString::to_string).collect(),
                owner: e.owner.as_ref().map(ToString::to_string),
                event_seq,
                at,
            },
            Event::MembersAdded(e) => Step::Added {
                tenant: tenant(),
                channel_key: e.channel_id.to_string(),
                uids: e.uids.iter().map(ToString::to_string).collect(),
                event_seq,
                at,
            },
            Event::MemberRemoved(e) => Step::Removed {
                tenant: tenant(),
                channel_key: e.channel_id.to_string(),
                uid: e.uid.to_string(),
                event_seq,
                at,
            },
            Event::GroupDisbanded(e) => Step::Disbanded {
                tenant: tenant(),
                channel_key: e.channel_id.to_string(),
                event_seq,
                at,
            },
            // Planned above.
            Event::MemberUpdated(_)
            | Event::ChannelUpdated(_)
            | Event::MemberBanned(_)
            | Event::MemberUnbanned(_)
            | Event::SendListChanged(_)
            | Event::UserBlocked(_)
            | Event::UserUnblocked(_) => continue,
        };
        steps.push(step);
    }
    run.flush(&mut steps);
    steps.append(&mut blocks);
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tests_support::*;

    #[test]
    fn a_run_of_messages_coalesces_to_one_head_per_channel() {
        let batch = vec![
            personal_msg(10, "a", "b", 1, Some("k1")),
            personal_msg(11, "b", "a", 2, None),
            personal_msg(12, "a", "c", 1, None),
        ];
        let steps = plan(&batch);
        assert_eq!(steps.len(), 1);
        let Step::Messages { heads, keys } = &steps[0] else {
            panic!("{steps:?}")
        };
        assert_eq!(heads.len(), 2);
        let ab = heads.iter().find(|h| h.channel_key == "a b").unwrap();
        assert_eq!((ab.last_msg_seq, ab.last_event_seq), (2, 11));
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].client_msg_no, "k1");
    }

    #[test]
    fn lifecycle_steps_come_first_in_order_then_one_run() {
        let batch = vec![
            group_created(1, "g", &["a", "b"]),
            group_msg(2, "g", "a", 1),
            members_added(3, "g", &["c"]),
            group_msg(4, "g", "c", 2),
        ];
        let steps = plan(&batch);
        assert!(matches!(steps[0], Step::Created { .. }));
        assert!(matches!(steps[1], Step::Added { .. }));
        let Step::Messages { heads, .. } = &steps[2] else {
            panic!("{steps:?}")
        };
        assert_eq!((heads[0].last_msg_seq, heads[0].last_event_seq), (2, 4));
        assert_eq!(steps.len(), 3);
    }

    #[test]
    fn moderation_is_planned_in_log_order_and_blocks_after_the_heads() {
        let mut banned = group_created(3, "g", &["a"]);
        banned.envelope.event = Event::MemberBanned(MemberBanned {
            channel_id: events::ChannelId::parse("g").unwrap(),
            uid: events::Uid::parse("b").unwrap(),
            until: Some(9),
            by: None,
        });
        let mut block = group_created(2, "g", &["a"]);
        block.envelope.event = Event::UserBlocked(UserBlocked {
            uid: events::Uid::parse("b").unwrap(),
            blocked_uid: events::Uid::parse("a").unwrap(),
        });
        let batch = vec![
            group_created(1, "g", &["a", "b"]),
            block,
            banned,
            personal_msg(4, "a", "b", 1, None),
        ];
        let steps = plan(&batch);
        assert!(matches!(&steps[0], Step::Created { owner: Some(o), .. } if o == "a"));
        assert!(matches!(
            &steps[1],
            Step::Moderated { change: Change::Banned { uid, until: Some(9), .. }, event_seq: 3, .. } if uid == "b"
        ));
        assert!(matches!(steps[2], Step::Messages { .. }));
        // The block comes after the head its pair's message creates, whatever the batch.
        let Step::Blocked(b) = &steps[3] else {
            panic!("{steps:?}")
        };
        assert_eq!(
            (b.channel_key.as_str(), b.uid.as_str(), b.block),
            ("a b", "b", true)
        );
        assert_eq!(steps.len(), 4);
    }

    #[test]
    fn text_postgres_cannot_hold_is_planned_storable() {
        let mut created = group_created(1, "g", &["a"]);
        if let Event::GroupCreated(e) = &mut created.envelope.event {
            e.name = Some("a\u{0}b".into());
        }
        let batch = vec![created, personal_msg(2, "a", "b", 1, Some("k\u{0}"))];
        let steps = plan(&batch);
        let Step::Created { name, .. } = &steps[0] else {
            panic!("{steps:?}")
        };
        assert_eq!(name.as_deref(), Some("a\u{FFFD}b"));
        let Step::Messages { keys, .. } = &steps[1] else {
            panic!("{steps:?}")
        };
        assert_eq!(keys[0].client_msg_no, "k\u{FFFD}");
    }
}
