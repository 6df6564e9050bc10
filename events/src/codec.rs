//! JSON codec of the log.
//!
//! Wire shape of every record (one NATS message body):
//! `{"type": "message_sent", "v": 1, "tenant": "acme", "at": 1700000000000, "data": {…}}`.
//! `decode` dispatches on `(type, v)` and upcasts old versions to the current struct; an unknown
//! type or version is a [`DecodeError`], which projectors park rather than skip.

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

#[derive(Serialize)]
struct WireOut<'a, T: Serialize> {
    #[serde(rename = "type")]
    event_type: &'static str,
    v: u32,
    tenant: &'a TenantId,
    at: i64,
    data: &'a T,
}

#[derive(Deserialize)]
struct WireIn<'a> {
    #[serde(rename = "type")]
    event_type: &'a str,
    v: u32,
    tenant: TenantId,
    at: i64,
    #[serde(borrow)]
    data: &'a RawValue,
}

/// Encodes an envelope as one log record (JSON bytes).
pub fn encode(env: &Envelope) -> Vec<u8> {
    fn out<T: Serialize>(env: &Envelope, data: &T) -> Vec<u8> {
        let wire = WireOut {
            event_type: env.event.event_type(),
            v: env.event.event_version(),
            tenant: &env.tenant,
            at: env.occurred_at,
            data,
        };
        // Serializing these plain structs cannot fail (no maps with non-string keys).
        serde_json::to_vec(&wire).unwrap_or_default()
    }
    match &env.event {
        Event::MessageSent(e) => out(env, e),
        Event::GroupCreated(e) => out(env, e),
        Event::MembersAdded(e) => out(env, e),
        Event::MemberRemoved(e) => out(env, e),
        Event::GroupDisbanded(e) => out(env, e),
        Event::ReadPositionSet(e) => out(env, e),
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
        ("group_created", 1) => Event::GroupCreated(serde_json::from_str(data).map_err(err)?),
        ("members_added", 1) => Event::MembersAdded(serde_json::from_str(data).map_err(err)?),
        ("member_removed", 1) => Event::MemberRemoved(serde_json::from_str(data).map_err(err)?),
        ("group_disbanded", 1) => Event::GroupDisbanded(serde_json::from_str(data).map_err(err)?),
        ("read_position_set", 1) => {
            Event::ReadPositionSet(serde_json::from_str(data).map_err(err)?)
        }
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
