//! One end user's live connection: the per-channel cursor that makes the seam between catch-up
//! and live gap-free and duplicate-free, and the client frames (`sync`, `send`, `read`,
//! `typing`, `presence_subscribe`, `ping`).
//!
//! The session is transport-neutral: it produces JSON frames through a [`Sink`] (WebSocket or
//! SSE) and never blocks the hub — the hub only fills its bounded queue.

use super::frames::{error_json, ClientFrame, ServerFrame, SyncChannel};
use super::hub::{Out, TypingNotice};
use super::Realtime;
use crate::consistency::Projection;
use crate::store::{self, MessageRow};
use base64::Engine as _;
use events::subject::CommandVerb;
use events::{ChannelId, ChannelKey, ChannelType, Uid};
use platform::error::ErrorDetail;
use platform::token::UserClaims;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Catch-up page size (messages per query).
const PAGE: usize = 500;
/// Longest wait for the read models to reach a log position during catch-up or a hole fill.
const CATCH_UP_WAIT: Duration = Duration::from_secs(5);
/// Longest wait for the command service's answer to `send` or `read`.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a session ends; each maps to a WebSocket close code (`docs/realtime.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The client closed or the transport failed.
    Gone,
    /// The server is shutting down (1001).
    Shutdown,
    /// The token expired (4001).
    Expired,
    /// Binary or oversized frame (4002).
    Protocol,
    /// The outbound queue overflowed (4008).
    SlowConsumer,
    /// Nothing received within the idle window (4009).
    Idle,
    /// A hole could not be filled in time (4010).
    Resync,
}

impl End {
    /// The WebSocket close code and reason.
    pub fn close(self) -> (u16, &'static str) {
        match self {
            End::Gone => (1000, "bye"),
            End::Shutdown => (1001, "server shutting down; reconnect and sync"),
            End::Expired => (4001, "token expired"),
            End::Protocol => (4002, "protocol error"),
            End::SlowConsumer => (4008, "slow consumer; reconnect and sync"),
            End::Idle => (4009, "idle timeout"),
            End::Resync => (4010, "resync needed; reconnect and sync"),
        }
    }
}

/// Where a session's frames go.
pub trait Sink: Send {
    /// Sends one frame: `kind` is its `type`, `event_seq` its log position if it has one.
    ///
    /// # Errors
    /// [`End`] when the transport is gone or too slow.
    fn send(
        &mut self,
        kind: &'static str,
        event_seq: Option<u64>,
        json: String,
    ) -> impl std::future::Future<Output = Result<(), End>> + Send;
}

/// A connection's state apart from its transport.
pub struct Session<'a> {
    rt: &'a Realtime,
    claims: UserClaims,
    /// Per channel, the last `message_seq` sent on this connection.
    cursors: HashMap<ChannelKey, u64>,
    /// Before the first `sync`: per channel, the first `message_seq` sent live (the client may
    /// resume from below it, and must then get the messages in between, but not these again).
    first_live: HashMap<ChannelKey, u64>,
    /// Whether a `sync` has completed.
    synced: bool,
}

impl<'a> Session<'a> {
    /// A session of the token's user.
    pub fn new(rt: &'a Realtime, claims: UserClaims) -> Self {
        Self {
            rt,
            claims,
            cursors: HashMap::new(),
            first_live: HashMap::new(),
            synced: false,
        }
    }

    /// Sends a queued item: `message` frames through the per-channel cursor (drop what was
    /// sent, fill holes from the read models first), others as they are.
    ///
    /// # Errors
    /// [`End`] from the sink, or [`End::Resync`] when a hole cannot be filled in time.
    pub async fn deliver(&mut self, out: Out, sink: &mut impl Sink) -> Result<(), End> {
        match out {
            Out::Frame {
                kind,
                event_seq,
                frame,
            } => sink.send(kind, event_seq, frame.to_string()).await,
            Out::Message {
                channel,
                message_seq,
                event_seq,
                frame,
            } => {
                if let Some(&cursor) = self.cursors.get(&*channel) {
                    if message_seq <= cursor {
                        return Ok(());
                    }
                    if message_seq > cursor + 1 {
                        self.fill(&channel, cursor, message_seq - 1, event_seq - 1, sink)
                            .await?;
                    }
                }
                sink.send("message", Some(event_seq), frame.to_string())
                    .await?;
                // The hot path: no key clone when the channel is known.
                match self.cursors.get_mut(&*channel) {
                    Some(c) => *c = message_seq,
                    None => {
                        self.cursors.insert((*channel).clone(), message_seq);
                        if !self.synced {
                            self.first_live.insert((*channel).clone(), message_seq);
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// Sends the messages of `channel` after `after` up to `upto` (by seq), whose events are at
    /// most `max_event_seq`, from the read models once they include `max_event_seq`.
    async fn fill(
        &mut self,
        channel: &ChannelKey,
        after: u64,
        upto: u64,
        max_event_seq: u64,
        sink: &mut impl Sink,
    ) -> Result<(), End> {
        metrics::counter!("query_svc_ws_hole_fills_total").increment(1);
        let state = &self.rt.app;
        if state
            .checkpoints
            .wait_for(
                &state.pool,
                &[Projection::Messages],
                Some(max_event_seq),
                CATCH_UP_WAIT,
            )
            .await
            .is_err()
        {
            return Err(End::Resync);
        }
        let sent = self
            .page_out(channel, after, Some(upto), max_event_seq, sink)
            .await
            .map_err(|e| match e {
                PageError::End(end) => end,
                PageError::Store => End::Resync,
            })?;
        if sent < upto {
            // The read model lacks a message the log has: never skip it silently.
            tracing::error!(channel = ?channel, after, upto, sent, "hole not fillable");
            return Err(End::Resync);
        }
        Ok(())
    }

    /// Pages `channel` from the read models after `after` (up to `upto` if given, and events up
    /// to `max_event_seq`), sending each message and moving the cursor; returns the last seq
    /// sent (or `after`).
    async fn page_out(
        &mut self,
        channel: &ChannelKey,
        after: u64,
        upto: Option<u64>,
        max_event_seq: u64,
        sink: &mut impl Sink,
    ) -> Result<u64, PageError> {
        let tenant = self.claims.tenant.as_str().to_owned();
        let viewer = self.claims.uid.as_str().to_owned();
        let ct = channel.channel_type().as_u8();
        let key = channel.storage_key();
        let seen_as = channel.channel_id_for(&viewer);
        let mut last = after;
        loop {
            let rows = store::realtime::after(
                &self.rt.app.pool,
                &tenant,
                i16::from(ct),
                &key,
                to_i64(last),
                PAGE,
            )
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "catch-up read failed");
                PageError::Store
            })?;
            let n = rows.len();
            for (row, event_seq) in rows {
                let seq = u64::try_from(row.message_seq).unwrap_or(0);
                let ev = u64::try_from(event_seq).unwrap_or(0);
                if upto.is_some_and(|u| seq > u) || ev > max_event_seq {
                    self.cursors.insert(channel.clone(), last);
                    return Ok(last);
                }
                sink.send("message", Some(ev), message_json(&row, ev, &seen_as, ct))
                    .await
                    .map_err(PageError::End)?;
                last = seq;
            }
            self.cursors.insert(channel.clone(), last);
            if n < PAGE {
                return Ok(last);
            }
        }
    }

    /// Handles one text frame from the client; slow commands (`send`, `read`) are returned as
    /// futures producing their answer, so the connection keeps delivering meanwhile.
    ///
    /// # Errors
    /// [`End`] from the sink during a catch-up.
    pub async fn on_text(
        &mut self,
        text: &str,
        sink: &mut impl Sink,
    ) -> Result<Option<CommandFuture>, End> {
        let frame = match ClientFrame::parse(text) {
            Ok(f) => f,
            Err((field, message)) => {
                let json = error_json(None, "VALIDATION_ERROR", &message, Some(&field));
                sink.send("error", None, json).await?;
                return Ok(None);
            }
        };
        match frame {
            ClientFrame::Sync {
                reference,
                channels,
                since_event_seq,
            } => {
                self.sync(reference.as_deref(), channels, since_event_seq, sink)
                    .await?;
                Ok(None)
            }
            ClientFrame::Send {
                reference,
                channel_type,
                channel_id,
                payload,
                client_msg_no,
            } => Ok(Some(self.send_command(
                reference,
                platform::rpc::SendMessage {
                    from_uid: self.claims.uid.as_str().to_owned(),
                    channel_id,
                    channel_type,
                    payload,
                    client_msg_no,
                },
            ))),
            ClientFrame::Read {
                reference,
                channel_type,
                channel_id,
                message_seq,
            } => Ok(Some(self.read_command(
                reference,
                platform::rpc::SetRead {
                    uid: self.claims.uid.as_str().to_owned(),
                    channel_id,
                    channel_type,
                    message_seq,
                },
            ))),
            ClientFrame::Typing {
                reference,
                channel_type,
                channel_id,
            } => {
                if let Err((code, field, message)) = self.typing(channel_type, &channel_id).await {
                    let json = error_json(reference.as_deref(), code, &message, field);
                    sink.send("error", None, json).await?;
                }
                Ok(None)
            }
            ClientFrame::PresenceSubscribe { reference, uids } => {
                let mut parsed = Vec::with_capacity(uids.len());
                for (i, u) in uids.into_iter().enumerate() {
                    match Uid::parse(u) {
                        Ok(u) => parsed.push(u),
                        Err(e) => {
                            let field = format!("uids[{i}]");
                            let json = error_json(
                                reference.as_deref(),
                                "VALIDATION_ERROR",
                                &format!("{field} {e}"),
                                Some(&field),
                            );
                            return sink.send("error", None, json).await.map(|()| None);
                        }
                    }
                }
                Ok(Some(self.follow_presence(parsed)))
            }
            ClientFrame::Ping { reference } => {
                let json = ServerFrame::Pong {
                    reference: reference.as_deref(),
                }
                .to_json();
                sink.send("pong", None, json).await?;
                Ok(None)
            }
        }
    }

    /// Resume: everything the client missed, from the read models up to the hub's position,
    /// then `synced`; the live queue (everything after registration) takes over through
    /// [`Session::deliver`].
    async fn sync(
        &mut self,
        reference: Option<&str>,
        channels: Vec<SyncChannel>,
        since_event_seq: Option<u64>,
        sink: &mut impl Sink,
    ) -> Result<(), End> {
        let position = self.rt.hub.position();
        let state = &self.rt.app;
        let waited = state
            .checkpoints
            .wait_for(
                &state.pool,
                &[
                    Projection::Messages,
                    Projection::Channels,
                    Projection::Conversations,
                ],
                Some(position),
                CATCH_UP_WAIT,
            )
            .await;
        if waited.is_err() {
            let message = "the read models are behind the log; sync again shortly";
            return self
                .unrecovered(reference, "PROJECTION_LAGGING", message, position, sink)
                .await;
        }
        let mut listed: HashMap<ChannelKey, u64> = HashMap::new();
        for (i, c) in channels.iter().enumerate() {
            match self.channel_key(c.channel_type, &c.channel_id) {
                Ok(key) => {
                    listed.insert(key, c.last_seq);
                }
                Err((_, _, message)) => {
                    let field = format!("channels[{i}]");
                    let json = error_json(reference, "VALIDATION_ERROR", &message, Some(&field));
                    sink.send("error", None, json).await?;
                }
            }
        }
        let tenant = self.claims.tenant.as_str().to_owned();
        let uid = self.claims.uid.as_str().to_owned();
        let Ok(mine) = store::realtime::user_channels(&state.pool, &tenant, &uid).await else {
            return self.sync_failed(reference, position, sink).await;
        };
        // Only the user's own channels: a listed channel it is not in is ignored.
        let mut starts: Vec<CatchUp> = Vec::new();
        let mut fills: Vec<(ChannelKey, u64, u64, u64)> = Vec::new();
        for ch in mine {
            let Ok(ct) = u8::try_from(ch.channel_type)
                .map_err(|_| String::new())
                .and_then(ChannelType::try_from)
            else {
                continue;
            };
            let Ok(key) = ChannelKey::from_storage(ct, &ch.channel_key) else {
                continue;
            };
            let start = if let Some(&last) = listed.get(&key) {
                last
            } else if let Some(since) = since_event_seq {
                if u64::try_from(ch.last_event_seq).unwrap_or(0) <= since || ch.last_msg_seq == 0 {
                    continue;
                }
                match store::realtime::seq_at_event(
                    &state.pool,
                    &tenant,
                    ch.channel_type,
                    &ch.channel_key,
                    ch.last_msg_seq,
                    to_i64(since),
                )
                .await
                {
                    Ok(s) => u64::try_from(s).unwrap_or(0),
                    Err(_) => {
                        return self.sync_failed(reference, position, sink).await;
                    }
                }
            } else {
                continue;
            };
            if let (Some(&first), Some(&cursor)) =
                (self.first_live.get(&key), self.cursors.get(&key))
            {
                // Messages first..=cursor already went out live on this connection: send only
                // what lies between the client's position and them.
                if start + 1 < first {
                    fills.push((key, start, first - 1, cursor));
                }
                continue;
            }
            if u64::try_from(ch.last_msg_seq).unwrap_or(0) > start {
                starts.push((key, start, None));
            } else {
                self.cursors.entry(key).or_insert(start);
            }
        }
        let fills = fills
            .into_iter()
            .map(|(key, start, upto, cursor)| (key, start, Some((upto, cursor))));
        for (key, start, fill) in starts.into_iter().chain(fills) {
            let upto = fill.map(|(u, _)| u);
            let paged = self.page_out(&key, start, upto, position, sink).await;
            if let Some((_, cursor)) = fill {
                self.cursors.insert(key.clone(), cursor);
            }
            match paged {
                Ok(_) => {}
                Err(PageError::End(e)) => return Err(e),
                Err(PageError::Store) => {
                    return self.sync_failed(reference, position, sink).await;
                }
            }
        }
        self.synced = true;
        self.first_live.clear();
        self.synced(true, position, sink).await
    }

    /// Ends a `sync` that could not recover everything: `error` with `code`, then
    /// `synced {recovered: false}`.
    async fn unrecovered(
        &mut self,
        reference: Option<&str>,
        code: &str,
        message: &str,
        position: u64,
        sink: &mut impl Sink,
    ) -> Result<(), End> {
        sink.send("error", None, error_json(reference, code, message, None))
            .await?;
        self.synced(false, position, sink).await
    }

    /// [`Session::unrecovered`] for a failed read-model query.
    async fn sync_failed(
        &mut self,
        reference: Option<&str>,
        position: u64,
        sink: &mut impl Sink,
    ) -> Result<(), End> {
        self.unrecovered(
            reference,
            "DATABASE_UNAVAILABLE",
            "sync failed",
            position,
            sink,
        )
        .await
    }

    async fn synced(
        &mut self,
        recovered: bool,
        position: u64,
        sink: &mut impl Sink,
    ) -> Result<(), End> {
        let json = ServerFrame::Synced {
            recovered,
            event_seq: position,
        }
        .to_json();
        sink.send("synced", Some(position), json).await
    }

    /// The channel a client names, as the user sees it.
    fn channel_key(
        &self,
        channel_type: u8,
        channel_id: &str,
    ) -> Result<ChannelKey, (&'static str, Option<&'static str>, String)> {
        let ct = ChannelType::try_from(channel_type)
            .map_err(|e| ("VALIDATION_ERROR", Some("channel_type"), e))?;
        let id = ChannelId::parse(channel_id).map_err(|e| {
            (
                "VALIDATION_ERROR",
                Some("channel_id"),
                format!("channel_id {e}"),
            )
        })?;
        Ok(ChannelKey::for_viewer(&self.claims.uid, ct, &id))
    }

    async fn typing(
        &mut self,
        channel_type: u8,
        channel_id: &str,
    ) -> Result<(), (&'static str, Option<&'static str>, String)> {
        let key = self.channel_key(channel_type, channel_id)?;
        if !self
            .rt
            .typing
            .allow(&self.claims.tenant, &self.claims.uid, key, Instant::now())
        {
            metrics::counter!("query_svc_typing_rate_limited_total").increment(1);
            return Err((
                "RATE_LIMITED",
                None,
                "typing: at most one per channel per second, five per second per user".into(),
            ));
        }
        let notice = TypingNotice {
            uid: self.claims.uid.as_str().to_owned(),
            channel_type,
            channel_id: channel_id.to_owned(),
        };
        let subject = self.rt.subjects.typing(&self.claims.tenant);
        let body = serde_json::to_vec(&notice).unwrap_or_default();
        if self.rt.nats.publish(subject, body.into()).await.is_err() {
            return Err(("NATS_UNAVAILABLE", None, "typing not sent".into()));
        }
        Ok(())
    }

    fn follow_presence(&self, uids: Vec<Uid>) -> CommandFuture {
        let current = self.rt.presence.online(&self.claims.tenant, &uids);
        CommandFuture::Follow { uids, current }
    }

    fn send_command(
        &self,
        reference: Option<String>,
        cmd: platform::rpc::SendMessage,
    ) -> CommandFuture {
        let subject = self
            .rt
            .subjects
            .command(&self.claims.tenant, CommandVerb::Send);
        let nats = self.rt.nats.clone();
        CommandFuture::Pending(Box::pin(async move {
            let body = serde_json::to_vec(&cmd).unwrap_or_default();
            match request::<platform::rpc::Sent>(&nats, subject, body).await {
                Ok(s) => ServerFrame::SendAck {
                    reference: reference.as_deref(),
                    client_msg_no: s.client_msg_no.as_deref(),
                    message_id: &s.message_id,
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

    fn read_command(
        &self,
        reference: Option<String>,
        cmd: platform::rpc::SetRead,
    ) -> CommandFuture {
        let subject = self
            .rt
            .subjects
            .command(&self.claims.tenant, CommandVerb::Read);
        let nats = self.rt.nats.clone();
        CommandFuture::Pending(Box::pin(async move {
            let body = serde_json::to_vec(&cmd).unwrap_or_default();
            match request::<platform::rpc::ReadSet>(&nats, subject, body).await {
                // Success shows as the `read` event frame on all the user's devices.
                Ok(_) => String::new(),
                Err(e) => ServerFrame::Error {
                    reference: reference.as_deref(),
                    error: &e,
                }
                .to_json(),
            }
        }))
    }
}

/// A client frame's slow part.
pub enum CommandFuture {
    /// A command in flight; resolves to the answer frame's JSON (empty: no answer).
    Pending(futures::future::BoxFuture<'static, String>),
    /// Follow these users' presence, starting from their current state.
    Follow {
        /// The users.
        uids: Vec<Uid>,
        /// Their state now.
        current: Vec<super::hub::PresenceState>,
    },
}

/// One channel's catch-up: the channel, the seq to start after, and for a hole below the first
/// live frame, `(last seq to send, cursor to restore)`.
type CatchUp = (ChannelKey, u64, Option<(u64, u64)>);

enum PageError {
    End(End),
    Store,
}

/// A command over NATS request/reply to the command service.
async fn request<T: serde::de::DeserializeOwned>(
    nats: &async_nats::Client,
    subject: String,
    body: Vec<u8>,
) -> Result<T, ErrorDetail> {
    let unavailable = |m: &str| ErrorDetail {
        code: "COMMAND_SERVICE_UNAVAILABLE".into(),
        message: m.into(),
        field: None,
    };
    let reply = tokio::time::timeout(COMMAND_TIMEOUT, nats.request(subject, body.into()))
        .await
        .map_err(|_| unavailable("the command service did not answer in time"))?
        .map_err(|e| unavailable(&format!("the command service is unreachable: {e}")))?;
    match serde_json::from_slice::<platform::rpc::Reply<T>>(&reply.payload) {
        Ok(platform::rpc::Reply::Ok { ok }) => Ok(ok),
        Ok(platform::rpc::Reply::Err { error, .. }) => Err(error),
        Err(e) => Err(ErrorDetail {
            code: "INTERNAL".into(),
            message: format!("unreadable command reply: {e}"),
            field: None,
        }),
    }
}

fn message_json(row: &MessageRow, event_seq: u64, channel_id: &str, channel_type: u8) -> String {
    let payload = base64::engine::general_purpose::STANDARD.encode(&row.payload);
    ServerFrame::Message {
        event_seq,
        message_id: &row.message_id,
        message_seq: u64::try_from(row.message_seq).unwrap_or(0),
        client_msg_no: row.client_msg_no.as_deref(),
        from_uid: &row.from_uid,
        channel_id,
        channel_type,
        timestamp: row.sent_at,
        payload: &payload,
    }
    .to_json()
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
