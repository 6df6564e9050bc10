//! Commands end users' sockets send to the command service over NATS request/reply
//! (subjects in `events::subject`, `<root>_cmd.<tenant>.<verb>`). The request body is the JSON
//! of [`SendMessage`] or [`SetRead`]; the reply is the JSON of [`Reply`]. They run through the
//! same validation, decide and append as the REST commands.

use crate::error::ErrorDetail;
use serde::{Deserialize, Serialize};

/// `send`: the fields of `POST /v1/messages`, `from_uid` set from the user's token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendMessage {
    /// The sender.
    pub from_uid: String,
    /// Group id, or the recipient's uid for a personal message.
    pub channel_id: String,
    /// 1 personal, 2 group.
    pub channel_type: u8,
    /// Base64 payload.
    pub payload: String,
    /// Idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_no: Option<String>,
}

/// `send`'s result: as the REST answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sent {
    /// Time-ordered unique id.
    pub message_id: String,
    /// Position in the channel.
    pub message_seq: u64,
    /// The idempotency key, if given.
    pub client_msg_no: Option<String>,
    /// Acceptance time, ms since the Unix epoch.
    pub timestamp: i64,
    /// Log sequence of the event.
    pub event_seq: u64,
}

/// `read`: the fields of `POST /v1/users/{uid}/conversations/{type}/{id}/read`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetRead {
    /// The reader.
    pub uid: String,
    /// The group id, or the peer's uid.
    pub channel_id: String,
    /// 1 personal, 2 group.
    pub channel_type: u8,
    /// The new read position.
    pub message_seq: u64,
}

/// `read`'s result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReadSet {
    /// The position stored (after capping).
    pub message_seq: u64,
    /// Log sequence of the event.
    pub event_seq: u64,
}

/// A command's reply: `{"ok": …}` or `{"error": {…}, "status": 400}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reply<T> {
    /// Accepted.
    Ok {
        /// The result.
        ok: T,
    },
    /// Refused, with the HTTP status the REST command would have had.
    Err {
        /// The status.
        status: u16,
        /// The error body.
        error: ErrorDetail,
    },
}
