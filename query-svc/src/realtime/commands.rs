//! The client frames that act (`send`, `read`, `typing`, `presence_subscribe`): each becomes
//! a [`CommandFuture`] the connection awaits beside its delivery, so a slow command never holds
//! up live frames.
//!
//! `send` and `read` go to the command service over NATS request/reply
//! (`<root>_cmd.<tenant>.<verb>`, [`events::command`]), where they run the same command as the
//! REST endpoints; `typing` goes out over core NATS; presence is answered from memory.

use super::frames::ServerFrame;
use super::hub::{PresenceState, TypingNotice};
use super::Realtime;
use events::subject::CommandVerb;
use events::{ChannelId, ChannelKey, ChannelType, Uid};
use platform::error::ErrorDetail;
use platform::token::UserClaims;
use std::time::Duration;

/// Longest wait for the command service's answer to `send` or `read`.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// A client frame's slow part.
pub enum CommandFuture {
    /// A command in flight; resolves to the answer frame's JSON (empty: no answer).
    Pending(futures::future::BoxFuture<'static, String>),
    /// Follow these users' presence, starting from their current state.
    Follow {
        /// The users.
        uids: Vec<Uid>,
        /// Their state now.
        current: Vec<PresenceState>,
    },
}

/// Why a frame was refused: what its `error` frame says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The error code (`VALIDATION_ERROR`, `RATE_LIMITED`, …; docs/realtime.md).
    pub code: &'static str,
    /// The field at fault, for validation errors.
    pub field: Option<&'static str>,
    /// A human-readable message.
    pub message: String,
}

impl Refusal {
    fn new(code: &'static str, field: Option<&'static str>, message: impl Into<String>) -> Self {
        Self {
            code,
            field,
            message: message.into(),
        }
    }
}

/// The channel a client names, as `viewer` sees it.
///
/// # Errors
/// `VALIDATION_ERROR` naming `channel_type` or `channel_id`.
pub fn channel_key(
    viewer: &Uid,
    channel_type: u8,
    channel_id: &str,
) -> Result<ChannelKey, Refusal> {
    let ct = ChannelType::try_from(channel_type)
        .map_err(|e| Refusal::new("VALIDATION_ERROR", Some("channel_type"), e))?;
    let id = ChannelId::parse(channel_id).map_err(|e| {
        Refusal::new(
            "VALIDATION_ERROR",
            Some("channel_id"),
            format!("channel_id {e}"),
        )
    })?;
    Ok(ChannelKey::for_viewer(viewer, ct, &id))
}

/// Publishes a typing notice for the user's channel, within the per-user limits.
///
/// # Errors
/// `VALIDATION_ERROR`, `RATE_LIMITED` or `NATS_UNAVAILABLE`.
pub async fn typing(
    rt: &Realtime,
    claims: &UserClaims,
    channel_type: u8,
    channel_id: &str,
) -> Result<(), Refusal> {
    let key = channel_key(&claims.uid, channel_type, channel_id)?;
    if !rt.typing.allow(&claims.tenant, &claims.uid, key) {
        metrics::counter!("query_svc_typing_rate_limited_total").increment(1);
        return Err(Refusal::new(
            "RATE_LIMITED",
            None,
            "typing: at most one per channel per second, five per second per user",
        ));
    }
    let notice = TypingNotice {
        uid: claims.uid.as_str().to_owned(),
        channel_type,
        channel_id: channel_id.to_owned(),
    };
    let subject = rt.subjects.typing(&claims.tenant);
    let body = serde_json::to_vec(&notice)
        .map_err(|e| Refusal::new("INTERNAL", None, format!("typing notice not encoded: {e}")))?;
    if rt.nats.publish(subject, body.into()).await.is_err() {
        return Err(Refusal::new("NATS_UNAVAILABLE", None, "typing not sent"));
    }
    Ok(())
}

/// Starts following `uids`' presence from their current state.
pub fn follow_presence(rt: &Realtime, claims: &UserClaims, uids: Vec<Uid>) -> CommandFuture {
    let current = rt.presence.online(&claims.tenant, &uids);
    CommandFuture::Follow { uids, current }
}

/// `send`: answered by `send_ack` or `error` (with the frame's `ref`).
pub fn send(
    rt: &Realtime,
    claims: &UserClaims,
    reference: Option<String>,
    cmd: events::command::SendMessage,
) -> CommandFuture {
    let subject = rt.subjects.command(&claims.tenant, CommandVerb::Send);
    let nats = rt.nats.clone();
    CommandFuture::Pending(Box::pin(async move {
        match request::<_, events::command::MessageAccepted>(&nats, subject, &cmd).await {
            Ok(s) => ServerFrame::SendAck {
                reference: reference.as_deref(),
                client_msg_no: s.client_msg_no.as_deref(),
                message_id: &s.message_id.to_string(),
                message_seq: s.message_seq,
                event_seq: s.event_seq,
            }
            .to_json(),
            Err(e) => ServerFrame::Error {
                reference: reference.as_deref(),
                error: &e,
            }
            .to_json(),
        }
    }))
}

/// `read`: success shows as the `read` event frame on all the user's devices; failure as an
/// `error` with the frame's `ref`.
pub fn read(
    rt: &Realtime,
    claims: &UserClaims,
    reference: Option<String>,
    cmd: events::command::SetReadPosition,
) -> CommandFuture {
    forward::<_, events::command::ReadPositionMoved>(rt, claims, reference, CommandVerb::Read, cmd)
}

/// Forwards a `block` (`unblock: false`) or `unblock` frame as the token's user: its answer is
/// the `block_changed` frame the log pushes to the user's connections, or an `error` frame.
pub fn block(
    rt: &Realtime,
    claims: &UserClaims,
    reference: Option<String>,
    uid: String,
    unblock: bool,
) -> CommandFuture {
    let cmd = events::command::BlockUser {
        uid: claims.uid.as_str().to_owned(),
        blocked_uid: uid,
        unblock,
    };
    forward::<_, events::command::BlockChanged>(rt, claims, reference, CommandVerb::Block, cmd)
}

/// Forwards a `leave` frame: the token's user leaves the group (`actor_uid` = its uid, so the
/// last-owner rule applies). Its answer is the `member_removed` frame, or an `error` frame.
pub fn leave(
    rt: &Realtime,
    claims: &UserClaims,
    reference: Option<String>,
    channel_id: String,
) -> CommandFuture {
    let me = claims.uid.as_str().to_owned();
    let cmd = events::command::RemoveMember {
        channel_id,
        uid: me.clone(),
        actor_uid: Some(me),
    };
    forward::<_, events::command::GroupChanged>(rt, claims, reference, CommandVerb::Leave, cmd)
}

/// Sends `cmd` to the command service's `verb` endpoint; resolves to nothing on success (the
/// effect comes back as log frames) or to an `error` frame with `reference`.
fn forward<C, T>(
    rt: &Realtime,
    claims: &UserClaims,
    reference: Option<String>,
    verb: CommandVerb,
    cmd: C,
) -> CommandFuture
where
    C: serde::Serialize + Send + Sync + 'static,
    T: serde::de::DeserializeOwned + Send + 'static,
{
    let subject = rt.subjects.command(&claims.tenant, verb);
    let nats = rt.nats.clone();
    CommandFuture::Pending(Box::pin(async move {
        match request::<_, T>(&nats, subject, &cmd).await {
            Ok(_) => String::new(),
            Err(e) => ServerFrame::Error {
                reference: reference.as_deref(),
                error: &e,
            }
            .to_json(),
        }
    }))
}

async fn request<C: serde::Serialize, T: serde::de::DeserializeOwned>(
    nats: &async_nats::Client,
    subject: String,
    cmd: &C,
) -> Result<T, ErrorDetail> {
    let failed = |code: &str, m: String| ErrorDetail {
        code: code.into(),
        message: m,
        field: None,
        retry_after_ms: None,
    };
    let body = serde_json::to_vec(cmd)
        .map_err(|e| failed("INTERNAL", format!("command not encodable: {e}")))?;
    let reply = tokio::time::timeout(COMMAND_TIMEOUT, nats.request(subject, body.into()))
        .await
        .map_err(|_| {
            failed(
                "COMMAND_SERVICE_UNAVAILABLE",
                "the command service did not answer in time".into(),
            )
        })?
        .map_err(|e| {
            failed(
                "COMMAND_SERVICE_UNAVAILABLE",
                format!("the command service is unreachable: {e}"),
            )
        })?;
    match serde_json::from_slice::<events::command::Reply<T>>(&reply.payload) {
        Ok(events::command::Reply::Ok { ok }) => Ok(ok),
        Ok(events::command::Reply::Err { error, .. }) => Err(ErrorDetail {
            // A socket frame over its user's limit is refused, never closed: `RATE_LIMITED`
            // with `retry_after_ms` (the REST code is `RATE_LIMIT_EXCEEDED`).
            code: if error.code == "RATE_LIMIT_EXCEEDED" {
                "RATE_LIMITED".to_owned()
            } else {
                error.code
            },
            message: error.message,
            field: error.field,
            retry_after_ms: error.retry_after_ms,
        }),
        Err(e) => Err(failed("INTERNAL", format!("unreadable command reply: {e}"))),
    }
}
