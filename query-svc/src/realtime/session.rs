//! One end user's live connection apart from its transport: delivery of live items through the
//! [`Seam`], a backlog of older messages (a `sync`'s catch-up, hole fills, held items) done one
//! unit at a time beside the live stream, and the dispatch of client frames.
//!
//! The session produces JSON frames through a [`Sink`] (WebSocket or SSE) and never waits on
//! Postgres inside the transport loop: reads are futures the loop polls beside the hub's queue
//! ([`Session::next_read`] → [`Session::on_read`]), backlog is done by [`Session::step`] while
//! [`Session::has_work`], and the seam holds live items until the backlog is done. So a long
//! catch-up or a slow read never fills the hub's queue for this connection.

use super::catchup::{self, Read, ReadError};
use super::commands::{self, CommandFuture};
use super::frames::{error_json, ClientFrame, Gap, ServerFrame, SyncChannel};
use super::hub::Out;
use super::seam::{Held, Phase, Plan, Refill, Seam, Step};
use super::Realtime;
use crate::store::MessageRow;
use base64::Engine as _;
use events::{ChannelKey, Uid};
use platform::token::UserClaims;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use tokio::time::Instant;

/// Why a session ends; each maps to a WebSocket close code (`docs/realtime.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The client closed or the transport failed.
    Gone,
    /// The server is shutting down (1001).
    Shutdown,
    /// The token expired (4001).
    Expired,
    /// Binary, oversized or unreadable frame (4002).
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

/// One unit of a connection's backlog, done in order beside the live stream.
#[derive(Debug)]
enum Work {
    /// Read where each channel stands for the `sync` in progress.
    Plan {
        listed: HashMap<ChannelKey, u64>,
        since_event_seq: Option<u64>,
    },
    /// Send a page of a channel's messages.
    Page(PageJob),
    /// Send the `sync`'s `synced`.
    Synced,
    /// Deliver a live item that was held.
    Item(Out),
    /// Send the messages of a channel that were remembered instead of held (seam rule 2).
    Refill(Refill),
}

/// The messages of `channel` after `after` (up to `upto`), events at most `max_event_seq`.
/// `fill`: a hole before a live message, whose read first waits for the messages projection
/// and whose failure closes with 4010; else a `sync`'s catch-up.
#[derive(Debug)]
struct PageJob {
    channel: ChannelKey,
    after: u64,
    upto: Option<u64>,
    max_event_seq: u64,
    fill: bool,
}

/// What a read in flight is for.
enum InFlight {
    Plan,
    Page(PageJob),
}

/// What a live item needs ([`Session::next_step`]).
enum Next {
    Send,
    Skip,
    Fill(Work),
}

/// A `sync` in progress.
#[derive(Debug)]
struct SyncState {
    reference: Option<String>,
    /// The hub's position when it began: the catch-up covers the events up to it.
    position: u64,
    gaps: Vec<(ChannelKey, u64, u64)>,
    /// Why it could not finish, as `(code, message)` of the `error` before `synced`.
    failed: Option<(&'static str, &'static str)>,
}

/// A connection's state apart from its transport.
pub struct Session<'a> {
    rt: &'a Realtime,
    claims: UserClaims,
    seam: Seam,
    work: VecDeque<Work>,
    /// The read in flight and what it is for.
    read: Option<(catchup::Pending, InFlight)>,
    sync: Option<SyncState>,
    /// While holding before the first `sync`: when the hold window ends.
    hold_until: Option<Instant>,
}

impl<'a> Session<'a> {
    /// A session of the token's user that holds live items until its first `sync`, for at most
    /// `hold` (then they go out as they come), keeping at most `capacity` of them.
    pub fn new(rt: &'a Realtime, claims: UserClaims, hold: Duration, capacity: usize) -> Self {
        Self {
            rt,
            claims,
            seam: Seam::new(capacity),
            work: VecDeque::new(),
            read: None,
            sync: None,
            hold_until: Some(Instant::now() + hold),
        }
    }

    /// When the hold window ends, while the session still waits for its first `sync`.
    pub fn holding_until(&self) -> Option<Instant> {
        self.hold_until
            .filter(|_| self.seam.phase() == Phase::Holding)
    }

    /// Whether [`Session::step`] can make progress now (backlog to send, no read awaited).
    pub fn has_work(&self) -> bool {
        self.read.is_none() && (!self.work.is_empty() || self.seam.phase() == Phase::Busy)
    }

    /// Whether a read is in flight ([`Session::next_read`] resolves with it).
    pub fn reading(&self) -> bool {
        self.read.is_some()
    }

    /// The read in flight; pending forever when there is none. Polling it does not consume
    /// it: only [`Session::on_read`] does.
    pub async fn next_read(&mut self) -> Read {
        match self.read.as_mut() {
            Some((f, _)) => f.await,
            None => std::future::pending().await,
        }
    }

    /// Takes a live item off the hub's queue: held while anything older is pending, else
    /// delivered (a hole before it becomes backlog, so nothing waits on the read models here).
    ///
    /// # Errors
    /// [`End`] from the sink; [`End::SlowConsumer`] when the hold overflows.
    pub async fn live(&mut self, out: Out, sink: &mut impl Sink) -> Result<(), End> {
        match self.seam.hold(out) {
            Held::Deliver(out) => match self.next_step(&out) {
                Next::Send => self.send_checked(out, sink).await,
                Next::Skip => Ok(()),
                Next::Fill(fill) => {
                    self.seam.pause();
                    self.work.push_back(fill);
                    self.work.push_back(Work::Item(out));
                    Ok(())
                }
            },
            Held::Kept => Ok(()),
            Held::Overflow => {
                metrics::counter!("query_svc_ws_slow_consumer_closes_total").increment(1);
                Err(End::SlowConsumer)
            }
        }
    }

    /// The hold window passed without a `sync`: the held items go out, then live.
    pub fn hold_expired(&mut self) {
        self.hold_until = None;
        self.seam.pause();
    }

    /// What a live item needs: a `message` the client holds is skipped, one that skips
    /// messages needs the hole filled first; anything else is sent.
    fn next_step(&self, out: &Out) -> Next {
        let Out::Message {
            channel,
            message_seq,
            event_seq,
            ..
        } = out
        else {
            return Next::Send;
        };
        match self.seam.step(channel, *message_seq, *event_seq) {
            Step::Fill {
                after,
                upto,
                max_event_seq,
            } => Next::Fill(Work::Page(PageJob {
                channel: (**channel).clone(),
                after,
                upto: Some(upto),
                max_event_seq,
                fill: true,
            })),
            Step::Skip => Next::Skip,
            Step::Send => Next::Send,
        }
    }

    /// Sends a live item [`Session::next_step`] found ready to send, without looking its
    /// channel up again.
    async fn send_checked(&mut self, out: Out, sink: &mut impl Sink) -> Result<(), End> {
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
                sink.send("message", Some(event_seq), frame.to_string())
                    .await?;
                self.seam.sent(&channel, message_seq);
                Ok(())
            }
        }
    }

    /// Does the next unit of backlog: starts a read, sends `synced`, delivers a held item; with
    /// no backlog left, takes what the seam held meanwhile, or goes live.
    ///
    /// # Errors
    /// [`End`] from the sink.
    pub async fn step(&mut self, sink: &mut impl Sink) -> Result<(), End> {
        if self.read.is_some() {
            return Ok(());
        }
        let Some(work) = self.work.pop_front() else {
            let (held, refills) = self.seam.take_held();
            if held.is_empty() && refills.is_empty() {
                self.seam.resume();
                // Most connections idle after their first sync: keep nothing allocated.
                self.work = VecDeque::new();
            }
            self.work.extend(held.into_iter().map(Work::Item));
            self.work.extend(refills.into_iter().map(Work::Refill));
            return Ok(());
        };
        match work {
            Work::Plan {
                listed,
                since_event_seq,
            } => {
                let position = self.sync.as_ref().map_or(0, |s| s.position);
                let read = catchup::plan(
                    self.rt.app.clone(),
                    self.claims.tenant.clone(),
                    self.claims.uid.clone(),
                    listed,
                    since_event_seq,
                    position,
                );
                self.read = Some((read, InFlight::Plan));
            }
            Work::Page(job) => {
                let read = catchup::page(
                    self.rt.app.clone(),
                    self.claims.tenant.clone(),
                    job.channel.clone(),
                    job.after,
                    job.fill.then_some(job.max_event_seq),
                );
                self.read = Some((read, InFlight::Page(job)));
            }
            Work::Synced => self.synced(sink).await?,
            Work::Item(out) => match self.next_step(&out) {
                Next::Fill(fill) => {
                    self.work.push_front(Work::Item(out));
                    self.work.push_front(fill);
                }
                Next::Skip => {}
                Next::Send => self.send_checked(out, sink).await?,
            },
            Work::Refill(r) => {
                let after = self
                    .seam
                    .last(&r.channel)
                    .unwrap_or(r.from.saturating_sub(1));
                if after < r.upto {
                    self.work.push_front(Work::Page(PageJob {
                        channel: r.channel,
                        after,
                        upto: Some(r.upto),
                        max_event_seq: r.max_event_seq,
                        fill: true,
                    }));
                }
            }
        }
        Ok(())
    }

    /// Acts on the read [`Session::next_read`] returned.
    ///
    /// # Errors
    /// [`End`] from the sink; [`End::Resync`] when a hole cannot be filled.
    pub async fn on_read(&mut self, read: Read, sink: &mut impl Sink) -> Result<(), End> {
        let Some((_, what)) = self.read.take() else {
            return Ok(());
        };
        match (read, what) {
            (Read::Plan(Ok(starts)), _) => {
                let mut pages = Vec::new();
                let position = self.sync.as_ref().map_or(0, |s| s.position);
                for s in starts {
                    match self.seam.plan(&s.channel, s.start, s.head) {
                        Plan::CatchUp { after } => pages.push(Work::Page(PageJob {
                            channel: s.channel,
                            after,
                            upto: None,
                            max_event_seq: position,
                            fill: false,
                        })),
                        Plan::Gap { from, to } => {
                            if let Some(sync) = self.sync.as_mut() {
                                sync.gaps.push((s.channel, from, to));
                            }
                        }
                        Plan::Nothing => {}
                    }
                }
                for page in pages.into_iter().rev() {
                    self.work.push_front(page);
                }
                Ok(())
            }
            (Read::Plan(Err(e)), _) => {
                self.sync_failed(e);
                Ok(())
            }
            (Read::Page(Ok(rows)), InFlight::Page(job)) => {
                let PageJob {
                    channel,
                    after,
                    upto,
                    max_event_seq,
                    fill,
                } = job;
                let full = rows.len() == catchup::PAGE;
                let viewer = self.claims.uid.as_str().to_owned();
                let ct = channel.channel_type().as_u8();
                let seen_as = channel.channel_id_for(&viewer);
                let mut sent_to = after;
                let mut reached_end = !full;
                for (row, ev) in rows {
                    let seq = u64::try_from(row.message_seq).unwrap_or(0);
                    if upto.is_some_and(|u| seq > u) || ev > max_event_seq {
                        reached_end = true;
                        break;
                    }
                    sink.send("message", Some(ev), message_json(&row, ev, &seen_as, ct))
                        .await?;
                    self.seam.sent(&channel, seq);
                    sent_to = seq;
                }
                let done = upto.is_some_and(|u| sent_to >= u);
                if fill && reached_end && !done {
                    // The read model lacks a message the log has: never skip it silently.
                    tracing::error!(channel = ?channel, after, upto, sent_to, "hole not fillable");
                    return Err(End::Resync);
                }
                if !reached_end && !done {
                    self.work.push_front(Work::Page(PageJob {
                        channel,
                        after: sent_to,
                        upto,
                        max_event_seq,
                        fill,
                    }));
                }
                Ok(())
            }
            (Read::Page(Err(_)), InFlight::Page(PageJob { fill: true, .. })) => Err(End::Resync),
            (Read::Page(Err(e)), InFlight::Page(_)) => {
                self.sync_failed(e);
                Ok(())
            }
            (Read::Page(_), InFlight::Plan) => Ok(()),
        }
    }

    /// The `sync` in progress cannot finish: its remaining catch-up is dropped and its
    /// `synced` follows an `error`.
    fn sync_failed(&mut self, e: ReadError) {
        if let Some(sync) = self.sync.as_mut() {
            sync.failed = Some(match e {
                ReadError::Lagging => (
                    "PROJECTION_LAGGING",
                    "the read models are behind the log; sync again shortly",
                ),
                ReadError::Store => ("DATABASE_UNAVAILABLE", "sync failed"),
            });
        }
        self.work
            .retain(|w| !matches!(w, Work::Page(PageJob { fill: false, .. })));
    }

    /// Sends `synced` for the `sync` in progress (after an `error` if it failed): `recovered`
    /// only when complete and without gaps.
    async fn synced(&mut self, sink: &mut impl Sink) -> Result<(), End> {
        let Some(sync) = self.sync.take() else {
            return Ok(());
        };
        if let Some((code, message)) = sync.failed {
            let json = error_json(sync.reference.as_deref(), code, message, None);
            sink.send("error", None, json).await?;
        }
        let viewer = self.claims.uid.as_str();
        let gaps: Vec<(u8, String, u64, u64)> = sync
            .gaps
            .iter()
            .map(|(c, from, to)| {
                (
                    c.channel_type().as_u8(),
                    c.channel_id_for(viewer),
                    *from,
                    *to,
                )
            })
            .collect();
        let json = ServerFrame::Synced {
            recovered: sync.failed.is_none() && gaps.is_empty(),
            event_seq: sync.position,
            gaps: gaps
                .iter()
                .map(|(channel_type, channel_id, from_seq, to_seq)| Gap {
                    channel_type: *channel_type,
                    channel_id,
                    from_seq: *from_seq,
                    to_seq: *to_seq,
                })
                .collect(),
        }
        .to_json();
        sink.send("synced", Some(sync.position), json).await
    }

    /// Handles one text frame from the client; slow commands (`send`, `read`) are returned as
    /// futures producing their answer, so the connection keeps delivering meanwhile.
    ///
    /// # Errors
    /// [`End`] from the sink.
    pub async fn on_text(
        &mut self,
        text: &str,
        sink: &mut impl Sink,
    ) -> Result<Option<CommandFuture>, End> {
        let frame = match ClientFrame::parse(text) {
            Ok(f) => f,
            Err(bad) => {
                let json = error_json(
                    bad.reference.as_deref(),
                    "VALIDATION_ERROR",
                    &bad.message,
                    Some(&bad.field),
                );
                sink.send("error", None, json).await?;
                return Ok(None);
            }
        };
        let rt = self.rt;
        match frame {
            ClientFrame::Sync {
                reference,
                channels,
                since_event_seq,
            } => {
                self.begin_sync(reference, channels, since_event_seq, sink)
                    .await?;
                Ok(None)
            }
            ClientFrame::Send {
                reference,
                channel_type,
                channel_id,
                payload,
                client_msg_no,
            } => Ok(Some(commands::send(
                rt,
                &self.claims,
                reference,
                events::command::SendMessage {
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
            } => Ok(Some(commands::read(
                rt,
                &self.claims,
                reference,
                events::command::SetReadPosition {
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
                if let Err((code, field, message)) =
                    commands::typing(rt, &self.claims, channel_type, &channel_id).await
                {
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
                Ok(Some(commands::follow_presence(rt, &self.claims, parsed)))
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

    /// Starts a resume: the plan (a read), the catch-up pages and `synced` become backlog,
    /// done by [`Session::step`] and [`Session::on_read`] beside the live stream, which the
    /// seam holds meanwhile.
    async fn begin_sync(
        &mut self,
        reference: Option<String>,
        channels: Vec<SyncChannel>,
        since_event_seq: Option<u64>,
        sink: &mut impl Sink,
    ) -> Result<(), End> {
        if self.sync.is_some() {
            let json = error_json(
                reference.as_deref(),
                "SYNC_IN_PROGRESS",
                "a sync is already running on this connection; wait for its synced",
                None,
            );
            return sink.send("error", None, json).await;
        }
        let mut listed: HashMap<ChannelKey, u64> = HashMap::new();
        for (i, c) in channels.iter().enumerate() {
            match commands::channel_key(&self.claims.uid, c.channel_type, &c.channel_id) {
                Ok(key) => {
                    listed.insert(key, c.last_seq);
                }
                Err((_, _, message)) => {
                    let field = format!("channels[{i}]");
                    let json = error_json(
                        reference.as_deref(),
                        "VALIDATION_ERROR",
                        &message,
                        Some(&field),
                    );
                    sink.send("error", None, json).await?;
                }
            }
        }
        self.hold_until = None;
        self.seam.pause();
        self.sync = Some(SyncState {
            reference,
            position: self.rt.hub.position(),
            gaps: Vec::new(),
            failed: None,
        });
        self.work.push_back(Work::Plan {
            listed,
            since_event_seq,
        });
        self.work.push_back(Work::Synced);
        Ok(())
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
