//! The commands Parley accepts, as data: what REST bodies, batch items and socket frames become
//! before the command service validates and decides them, and what each answers.
//!
//! Fields are raw (ids as text, `channel_type` as its number): validation happens once, in the
//! command service, which names the offending field. The serde forms are also the wire format
//! of socket commands the query service forwards over NATS request/reply
//! (`<root>_cmd.<tenant>.<verb>`, [`crate::subject::CommandVerb`]): the request body is the
//! command's JSON, the reply a [`Reply`].

use serde::{Deserialize, Serialize};

/// Send a message (`POST /v1/messages`, a batch item, socket `send`; `from_uid` comes from the
/// user's token on the socket).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendMessage {
    /// The sender.
    pub from_uid: String,
    /// Group id, or the recipient's uid for a personal message.
    pub channel_id: String,
    /// 1 personal, 2 group.
    pub channel_type: u8,
    /// Base64 payload (standard alphabet, padded).
    pub payload: String,
    /// Idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_no: Option<String>,
}

/// [`SendMessage`]'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageAccepted {
    /// Time-ordered unique id (UUIDv7; hyphenated text on the wire).
    pub message_id: uuid::Uuid,
    /// Position in the channel, from 1.
    pub message_seq: u64,
    /// The idempotency key, if given.
    pub client_msg_no: Option<String>,
    /// Acceptance time, ms since the Unix epoch.
    pub timestamp: i64,
    /// Log sequence of the event.
    pub event_seq: u64,
}

/// Move a read position (`POST /v1/users/{uid}/conversations/{type}/{id}/read`, socket
/// `read`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetReadPosition {
    /// The reader.
    pub uid: String,
    /// The group id, or the peer's uid.
    pub channel_id: String,
    /// 1 personal, 2 group.
    pub channel_type: u8,
    /// The new read position.
    pub message_seq: u64,
}

/// [`SetReadPosition`]'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadPositionMoved {
    /// The position stored (after capping at the channel's last seq).
    pub message_seq: u64,
    /// Log sequence of the event.
    pub event_seq: u64,
}

/// Create a group (`POST /v1/channels`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateGroup {
    /// The group's id.
    pub channel_id: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Initial members.
    #[serde(default)]
    pub members: Vec<String>,
    /// The owner (default: `actor_uid`, else the first member); added to the members if
    /// missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The user acting (absent: an operator call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_uid: Option<String>,
}

/// Disband a group (`DELETE /v1/channels/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisbandGroup {
    /// The group.
    pub channel_id: String,
    /// The member acting (absent: an operator call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_uid: Option<String>,
}

/// Add members (`POST /v1/channels/{id}/members`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddMembers {
    /// The group.
    pub channel_id: String,
    /// Who.
    pub uids: Vec<String>,
    /// The member acting (absent: an operator call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_uid: Option<String>,
}

/// Remove a member (`DELETE /v1/channels/{id}/members/{uid}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveMember {
    /// The group.
    pub channel_id: String,
    /// Who.
    pub uid: String,
    /// The member acting (absent: an operator call; `uid` itself: leaving).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_uid: Option<String>,
}

/// `Some` of whatever is there, so a present `null` is `Some(None)` and an absent field
/// (serde's `default`) `None`.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// Change a member's role or mute (`PATCH /v1/channels/{id}/members/{uid}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateMember {
    /// The group.
    pub channel_id: String,
    /// The member.
    pub uid: String,
    /// `owner`, `admin` or `member` (absent: unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Muted until, ms since the Unix epoch; `null` unmutes; absent: unchanged.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub muted_until: Option<Option<i64>>,
    /// The member acting (absent: an operator call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_uid: Option<String>,
}

/// Change a group's send settings (`PATCH /v1/channels/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateChannel {
    /// The group.
    pub channel_id: String,
    /// Channel-wide mute (absent: unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted: Option<bool>,
    /// Whitelist mode (absent: unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whitelist_only: Option<bool>,
    /// The member acting (absent: an operator call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_uid: Option<String>,
}

/// Ban a user (`POST /v1/channels/{id}/bans`), or lift a ban (`DELETE …/bans/{uid}`,
/// `lift: true`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanUser {
    /// The group.
    pub channel_id: String,
    /// Who.
    pub uid: String,
    /// The ban ends, ms since the Unix epoch (absent: until unbanned); in the future.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
    /// Lift the ban instead.
    #[serde(default)]
    pub lift: bool,
    /// The member acting (absent: an operator call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_uid: Option<String>,
}

/// Add uids to or remove them from a group's blacklist or whitelist
/// (`POST /v1/channels/{id}/blacklist`, `DELETE …/blacklist/{uid}`, same for `whitelist`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSendList {
    /// The group.
    pub channel_id: String,
    /// `blacklist` or `whitelist`.
    pub list: crate::moderation::SendList,
    /// Uids to list.
    #[serde(default)]
    pub add: Vec<String>,
    /// Uids to unlist.
    #[serde(default)]
    pub remove: Vec<String>,
    /// The member acting (absent: an operator call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_uid: Option<String>,
}

/// `uid` blocks `blocked_uid` (`POST /v1/users/{uid}/blocks`) or unblocks them
/// (`DELETE /v1/users/{uid}/blocks/{blocked_uid}`, `unblock: true`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockUser {
    /// Who blocks.
    pub uid: String,
    /// Who is blocked.
    pub blocked_uid: String,
    /// Unblock instead.
    #[serde(default)]
    pub unblock: bool,
}

/// The answer of a block or unblock: the log position to read it back at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockChanged {
    /// Who blocks.
    pub uid: String,
    /// Who is (or was) blocked.
    pub blocked_uid: String,
    /// Log sequence of the event, or of the channel's last event if nothing changed (0: the
    /// two have no channel event yet).
    pub event_seq: u64,
}

/// The answer of a group command: the log position to read it back at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupChanged {
    /// The group.
    pub channel_id: String,
    /// Log sequence of the command's event, or of the channel's last event if nothing
    /// changed.
    pub event_seq: u64,
    /// For [`AddMembers`]: the uids that were not members before (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<String>,
}

/// Why a command was refused: the inner object of the API's error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// Stable machine-readable code (`VALIDATION_ERROR`, `CHANNEL_NOT_FOUND`, …).
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// The offending field, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For a rate-limited command: milliseconds until a retry can pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

/// A socket command's reply: `{"ok": …}` or `{"error": {…}, "status": 400}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reply<T> {
    /// Accepted.
    Ok {
        /// The answer.
        ok: T,
    },
    /// Refused, with the HTTP status the REST command would have had.
    Err {
        /// The status.
        status: u16,
        /// Why.
        error: Refusal,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_keep_their_wire_shape() {
        let ok: Reply<ReadPositionMoved> = Reply::Ok {
            ok: ReadPositionMoved {
                message_seq: 3,
                event_seq: 9,
            },
        };
        assert_eq!(
            serde_json::to_string(&ok).unwrap(),
            r#"{"ok":{"message_seq":3,"event_seq":9}}"#
        );
        let err: Reply<ReadPositionMoved> = serde_json::from_str(
            r#"{"status":403,"error":{"code":"NOT_A_MEMBER","message":"no"}}"#,
        )
        .unwrap();
        assert_eq!(
            err,
            Reply::Err {
                status: 403,
                error: Refusal {
                    code: "NOT_A_MEMBER".into(),
                    message: "no".into(),
                    field: None,
                    retry_after_ms: None,
                }
            }
        );
    }
}
