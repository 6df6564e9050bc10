//! The pure core: from decoded events to row changes, with no I/O.
//!
//! Every projection exposes `plan(&[Record]) -> Plan`. Plans coalesce consecutive
//! `message_sent` events (the hot path) into one set-based change per channel; every other
//! event stays a step of its own, so the effect of a plan equals applying its events one by one
//! in stream order.

pub mod channels;
pub mod conversations;
pub mod messages;
pub mod moderation;

use events::Envelope;

/// A decoded event at its position in the log.
#[derive(Debug, Clone)]
pub struct Record {
    /// JetStream stream sequence (the `event_seq` of the API).
    pub seq: u64,
    /// The event.
    pub envelope: Envelope,
}

pub use readmodel::{channel_columns, Projection};

#[cfg(test)]
pub(crate) mod tests_support {
    //! Builders of records for the pure tests.
    use super::Record;
    use events::event::*;
    use events::{ChannelId, ChannelKey, Envelope, Event, TenantId, Uid};

    fn uid(s: &str) -> Uid {
        Uid::parse(s).unwrap()
    }

    fn rec(seq: u64, event: Event) -> Record {
        Record {
            seq,
            envelope: Envelope {
                tenant: TenantId::parse("t").unwrap(),
                occurred_at: seq as i64 * 1000,
                event,
            },
        }
    }

    pub fn msg(
        seq: u64,
        channel: ChannelKey,
        from: &str,
        message_seq: u64,
        key: Option<&str>,
    ) -> Record {
        rec(
            seq,
            Event::MessageSent(MessageSent {
                channel,
                message_id: uuid::Uuid::now_v7(),
                message_seq,
                from_uid: uid(from),
                client_msg_no: key.map(str::to_owned),
                payload: "aGk=".into(),
                timestamp: seq as i64 * 1000,
            }),
        )
    }

    pub fn personal_msg(
        seq: u64,
        from: &str,
        to: &str,
        message_seq: u64,
        key: Option<&str>,
    ) -> Record {
        msg(
            seq,
            ChannelKey::personal(&uid(from), &uid(to)),
            from,
            message_seq,
            key,
        )
    }

    pub fn group_msg(seq: u64, group: &str, from: &str, message_seq: u64) -> Record {
        msg(
            seq,
            ChannelKey::Group {
                id: ChannelId::parse(group).unwrap(),
            },
            from,
            message_seq,
            None,
        )
    }

    pub fn group_created(seq: u64, group: &str, members: &[&str]) -> Record {
        rec(
            seq,
            Event::GroupCreated(GroupCreated {
                channel_id: ChannelId::parse(group).unwrap(),
                name: None,
                members: members.iter().map(|m| uid(m)).collect(),
                owner: members.first().map(|m| uid(m)),
            }),
        )
    }

    pub fn members_added(seq: u64, group: &str, uids: &[&str]) -> Record {
        rec(
            seq,
            Event::MembersAdded(MembersAdded {
                channel_id: ChannelId::parse(group).unwrap(),
                uids: uids.iter().map(|m| uid(m)).collect(),
            }),
        )
    }

    pub fn read_set(seq: u64, who: &str, channel: ChannelKey, message_seq: u64) -> Record {
        rec(
            seq,
            Event::ReadPositionSet(ReadPositionSet {
                uid: uid(who),
                channel,
                message_seq,
            }),
        )
    }
}
