//! JSON codec of the log.
//!
//! Wire shape of every record (one NATS message body):
//! `{"type": "message_sent", "v": 1, "tenant": "acme", "at": 1700000000000, "data": {…}}`.
//! `decode` dispatches on `(type, v)` and upcasts old versions to the current struct; an unknown
//! type or version is a [`DecodeError`], which projectors park rather than skip.
//!
//! Versions ever written (each frozen in `events/tests/fixtures/`):
//!
//! | type | versions | change |
//! |---|---|---|
//! | `message_sent` | 1, 2 | v2 drops `data.timestamp`: the envelope's `at` is the send time (one clock reading per message, 14–20 bytes less per record); [`upcast_message_sent_v2`] |
//! | `group_created` | 1, 2 | v2 adds `owner`; v1 upcasts with the first member as owner ([`upcast_group_created_v1`]) |
//! | `members_added`, `member_removed`, `group_disbanded`, `read_position_set` | 1 | — |
//! | `member_updated`, `channel_updated`, `member_banned`, `member_unbanned`, `send_list_changed`, `user_blocked`, `user_unblocked` | 1 | — (group roles and moderation, [`crate::moderation`]) |

use crate::event::*;
use crate::ids::TenantId;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Why a record could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, or the envelope fields are missing or of the wrong type.
    #[error("malformed envelope: {0}")]
    Envelope(serde_json::Error),
    /// `(type, v)` is not one this build knows.
    #[error("unknown event {event_type} v{version}")]
    Unknown {
        /// The type name found.
        event_type: String,
        /// The version found.
        version: u32,
    },
    /// The `data` does not match the schema of its `(type, v)`.
    #[error("malformed {event_type} v{version}: {source}")]
    Data {
        /// The type name found.
        event_type: String,
        /// The version found.
        version: u32,
        /// The serde error.
        source: serde_json::Error,
    },
}

/// The envelope as written (shared with [`crate::tenancy`]).
#[derive(Serialize)]
pub(crate) struct WireOut<'a, T: Serialize> {
    #[serde(rename = "type")]
    pub(crate) event_type: &'static str,
    pub(crate) v: u32,
    pub(crate) tenant: &'a TenantId,
    pub(crate) at: i64,
    pub(crate) data: &'a T,
}

/// The envelope as read, `data` left raw (shared with [`crate::tenancy`]).
#[derive(Deserialize)]
pub(crate) struct WireIn<'a> {
    #[serde(rename = "type")]
    pub(crate) event_type: &'a str,
    pub(crate) v: u32,
    pub(crate) tenant: TenantId,
    pub(crate) at: i64,
    #[serde(borrow)]
    pub(crate) data: &'a RawValue,
}

/// `message_sent` v2 data as written: v1 without `timestamp`.
#[derive(Serialize)]
struct MessageSentV2Out<'a> {
    channel: &'a crate::ids::ChannelKey,
    message_id: &'a uuid::Uuid,
    message_seq: u64,
    from_uid: &'a crate::ids::Uid,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_msg_no: &'a Option<String>,
    payload: &'a str,
}

/// `message_sent` v2 data as read.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MessageSentV2 {
    /// The channel.
    pub channel: crate::ids::ChannelKey,
    /// Message id (UUID v7 text).
    pub message_id: uuid::Uuid,
    /// Per-channel sequence.
    pub message_seq: u64,
    /// Sender.
    pub from_uid: crate::ids::Uid,
    /// Idempotency key.
    #[serde(default)]
    pub client_msg_no: Option<String>,
    /// Base64 payload.
    pub payload: String,
}

/// Upcasts `message_sent` v2 data to the current [`MessageSent`]: the send time is the
/// envelope's `at` (ms). v1 data already has the current shape (its own `timestamp`).
pub fn upcast_message_sent_v2(data: MessageSentV2, at: i64) -> MessageSent {
    MessageSent {
        channel: data.channel,
        message_id: data.message_id,
        message_seq: data.message_seq,
        from_uid: data.from_uid,
        client_msg_no: data.client_msg_no,
        payload: data.payload,
        timestamp: at,
    }
}

/// `group_created` v1 data: v2 without `owner`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GroupCreatedV1 {
    /// The group.
    pub channel_id: crate::ids::ChannelId,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Initial members.
    pub members: Vec<crate::ids::Uid>,
}

/// Upcasts `group_created` v1 to the current [`GroupCreated`]: groups created before roles
/// existed are owned by their first member (none for a group created empty).
pub fn upcast_group_created_v1(data: GroupCreatedV1) -> GroupCreated {
    GroupCreated {
        owner: data.members.first().cloned(),
        channel_id: data.channel_id,
        name: data.name,
        members: data.members,
    }
}

/// Encodes an envelope as one log record (JSON bytes), in each type's current version. For
/// `message_sent` the envelope's `at` is written as the message's `timestamp` (v2 keeps one
/// time), so the command service sets both to the same reading.
///
/// # Errors
/// Serialization failures (none are known for these types, which have only string keys and
/// plain fields; the error is surfaced rather than an empty record written).
pub fn encode(env: &Envelope) -> Result<Vec<u8>, serde_json::Error> {
    fn out<T: Serialize>(env: &Envelope, data: &T) -> Result<Vec<u8>, serde_json::Error> {
        let wire = WireOut {
            event_type: env.event.event_type(),
            v: env.event.event_version(),
            tenant: &env.tenant,
            at: env.occurred_at,
            data,
        };
        serde_json::to_vec(&wire)
    }
    match &env.event {
        Event::MessageSent(e) => {
            let wire = WireOut {
                event_type: env.event.event_type(),
                v: env.event.event_version(),
                tenant: &env.tenant,
                at: e.timestamp,
                data: &MessageSentV2Out {
                    channel: &e.channel,
                    message_id: &e.message_id,
                    message_seq: e.message_seq,
                    from_uid: &e.from_uid,
                    client_msg_no: &e.client_msg_no,
                    payload: &e.payload,
                },
            };
            serde_json::to_vec(&wire)
        }
        Event::GroupCreated(e) => out(env, e),
        Event::MembersAdded(e) => out(env, e),
        Event::MemberRemoved(e) => out(env, e),
        Event::GroupDisbanded(e) => out(env, e),
        Event::ReadPositionSet(e) => out(env, e),
        Event::MemberUpdated(e) => out(env, e),
        Event::ChannelUpdated(e) => out(env, e),
        Event::MemberBanned(e) => out(env, e),
        Event::MemberUnbanned(e) => out(env, e),
        Event::SendListChanged(e) => out(env, e),
        Event::UserBlocked(e) => out(env, e),
        Event::UserUnblocked(e) => out(env, e),
    }
}

/// Decodes one log record, upcasting old versions to the current [`Event`].
///
/// # Errors
/// [`DecodeError`] for malformed JSON, unknown `(type, v)` or data that does not fit its schema.
pub fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
    let wire: WireIn<'_> = serde_json::from_slice(bytes).map_err(DecodeError::Envelope)?;
    let data = wire.data.get();
    let err = |source| DecodeError::Data {
        event_type: wire.event_type.to_owned(),
        version: wire.v,
        source,
    };
    let event = match (wire.event_type, wire.v) {
        ("message_sent", 1) => Event::MessageSent(serde_json::from_str(data).map_err(err)?),
        ("message_sent", 2) => Event::MessageSent(upcast_message_sent_v2(
            serde_json::from_str(data).map_err(err)?,
            wire.at,
        )),
        ("group_created", 1) => Event::GroupCreated(upcast_group_created_v1(
            serde_json::from_str(data).map_err(err)?,
        )),
        ("group_created", 2) => Event::GroupCreated(serde_json::from_str(data).map_err(err)?),
        ("members_added", 1) => Event::MembersAdded(serde_json::from_str(data).map_err(err)?),
        ("member_removed", 1) => Event::MemberRemoved(serde_json::from_str(data).map_err(err)?),
        ("group_disbanded", 1) => Event::GroupDisbanded(serde_json::from_str(data).map_err(err)?),
        ("read_position_set", 1) => {
            Event::ReadPositionSet(serde_json::from_str(data).map_err(err)?)
        }
        ("member_updated", 1) => Event::MemberUpdated(serde_json::from_str(data).map_err(err)?),
        ("channel_updated", 1) => Event::ChannelUpdated(serde_json::from_str(data).map_err(err)?),
        ("member_banned", 1) => Event::MemberBanned(serde_json::from_str(data).map_err(err)?),
        ("member_unbanned", 1) => Event::MemberUnbanned(serde_json::from_str(data).map_err(err)?),
        ("send_list_changed", 1) => {
            Event::SendListChanged(serde_json::from_str(data).map_err(err)?)
        }
        ("user_blocked", 1) => Event::UserBlocked(serde_json::from_str(data).map_err(err)?),
        ("user_unblocked", 1) => Event::UserUnblocked(serde_json::from_str(data).map_err(err)?),
        (t, v) => {
            return Err(DecodeError::Unknown {
                event_type: t.to_owned(),
                version: v,
            });
        }
    };
    Ok(Envelope {
        tenant: wire.tenant,
        occurred_at: wire.at,
        event,
    })
}
