//! Projection `messages`: one row per `message_sent`.

use super::{channel_columns, Record};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use events::Event;

/// One row of table `messages`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRow {
    /// Tenant.
    pub tenant: String,
    /// 1 personal, 2 group.
    pub channel_type: i16,
    /// Storage key of the channel.
    pub channel_key: String,
    /// Per-channel sequence.
    pub message_seq: i64,
    /// UUIDv7.
    pub message_id: uuid::Uuid,
    /// Sender.
    pub from_uid: String,
    /// Sender's idempotency key.
    pub client_msg_no: Option<String>,
    /// Decoded payload bytes.
    pub payload: Vec<u8>,
    /// Acceptance time, ms.
    pub sent_at: i64,
    /// Stream sequence of the event.
    pub event_seq: i64,
}

/// An event this projection cannot apply (a poison event), with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Stream sequence.
    pub seq: u64,
    /// Why.
    pub reason: String,
}

/// The rows to insert for a batch, and the events that cannot be applied.
pub fn plan(batch: &[Record]) -> (Vec<MessageRow>, Vec<Rejected>) {
    let mut rows = Vec::with_capacity(batch.len());
    let mut rejected = Vec::new();
    for r in batch {
        let Event::MessageSent(m) = &r.envelope.event else {
            continue;
        };
        let (channel_type, channel_key) = channel_columns(&m.channel);
        let message_id = m.message_id;
        let payload = match STANDARD.decode(&m.payload) {
            Ok(p) => p,
            Err(e) => {
                rejected.push(Rejected {
                    seq: r.seq,
                    reason: format!("payload: {e}"),
                });
                continue;
            }
        };
        rows.push(MessageRow {
            tenant: r.envelope.tenant.to_string(),
            channel_type,
            channel_key,
            message_seq: m.message_seq as i64,
            message_id,
            from_uid: m.from_uid.to_string(),
            client_msg_no: m
                .client_msg_no
                .as_deref()
                .map(|n| events::text::storable(n).into_owned()),
            payload,
            sent_at: m.timestamp,
            event_seq: r.seq as i64,
        });
    }
    (rows, rejected)
}
