//! [`Delivery`]: the session's seam cursor — one connection's stream of frames apart from its
//! transport and its client frames. Live items from the hub go through the [`Seam`]; older
//! messages (a `sync`'s catch-up, hole fills, held items) are backlog done one unit at a time
//! beside the live stream, from reads of a [`CatchUpStore`] that the transport loop polls
//! ([`Delivery::next_read`] → [`Delivery::on_read`]) and never awaits inline. So a long
//! catch-up or a slow read never fills the hub's queue for this connection.
//!
//! Nothing here does I/O of its own: the store and the [`Sink`] are handed in, so the
//! property tests drive it with an in-memory store and a recording sink.

use super::catchup::{CatchUpStore, Pending, Read};
use super::frames::ServerFrame;
use super::hub::Out;
use super::seam::{Held, Phase, Refill, Seam, Step};
use super::sink::{End, Sink};
use crate::store::MessageRow;
use base64::Engine as _;
use events::{ChannelKey, TenantId, Uid};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// One unit of a connection's backlog, done in order beside the live stream.
#[derive(Debug)]
pub(super) enum Work {
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
pub(super) struct PageJob {
    pub(super) channel: ChannelKey,
    pub(super) after: u64,
    pub(super) upto: Option<u64>,
    pub(super) max_event_seq: u64,
    pub(super) fill: bool,
}

/// A `sync` in progress.
#[derive(Debug)]
pub(super) struct SyncState {
    pub(super) reference: Option<String>,
    /// The hub's position when it began: the catch-up covers the events up to it.
    pub(super) position: u64,
    pub(super) gaps: Vec<(ChannelKey, u64, u64)>,
    /// The channels the client listed, with the last seq it holds of each.
    pub(super) listed: HashMap<ChannelKey, u64>,
    /// Why it could not finish, as `(code, message)` of the `error` before `synced`.
    pub(super) failed: Option<(&'static str, &'static str)>,
}

/// What a read in flight is for.
enum InFlight {
    Plan,
    Page(PageJob),
}

/// What a live item needs ([`Delivery::next_step`]).
enum Next {
    Send,
    Skip,
    Fill(Work),
}

/// See the module docs.
pub struct Delivery {
    store: Arc<dyn CatchUpStore>,
    pub(super) tenant: TenantId,
    pub(super) uid: Uid,
    /// Catch-up page size (messages per read).
    page: usize,
    pub(super) seam: Seam,
    pub(super) work: VecDeque<Work>,
    /// The read in flight and what it is for.
    read: Option<(Pending, InFlight)>,
    pub(super) sync: Option<SyncState>,
    /// While holding before the first `sync`: when the hold window ends.
    pub(super) hold_until: Option<Instant>,
}

impl Delivery {
    /// The delivery of `uid`'s frames, reading older messages from `store` in pages of `page`,
    /// holding live items until its first `sync` for at most `hold` (then they go out as they
    /// come), keeping at most `capacity` of them.
    pub fn new(
        store: Arc<dyn CatchUpStore>,
        tenant: TenantId,
        uid: Uid,
        page: usize,
        hold: Duration,
        capacity: usize,
    ) -> Self {
        Self {
            store,
            tenant,
            uid,
            page: page.max(1),
            seam: Seam::new(capacity),
            work: VecDeque::new(),
            read: None,
            sync: None,
            hold_until: Some(Instant::now() + hold),
        }
    }

    /// When the hold window ends, while the connection still waits for its first `sync`.
    pub fn holding_until(&self) -> Option<Instant> {
        self.hold_until
            .filter(|_| self.seam.phase() == Phase::Holding)
    }

    /// Whether [`Delivery::step`] can make progress now (backlog to send, no read awaited).
    pub fn has_work(&self) -> bool {
        self.read.is_none() && (!self.work.is_empty() || self.seam.phase() == Phase::Busy)
    }

    /// Whether a read is in flight ([`Delivery::next_read`] resolves with it).
    pub fn reading(&self) -> bool {
        self.read.is_some()
    }

    /// The read in flight; pending forever when there is none. Polling it does not consume
    /// it: only [`Delivery::on_read`] does.
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

    /// Sends a live item [`Delivery::next_step`] found ready to send, without looking its
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
                let read = self.store.clone().plan(
                    self.tenant.clone(),
                    self.uid.clone(),
                    listed,
                    since_event_seq,
                    position,
                );
                self.read = Some((read, InFlight::Plan));
            }
            Work::Page(job) => {
                let read = self.store.clone().page(
                    self.tenant.clone(),
                    job.channel.clone(),
                    job.after,
                    self.page,
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

    /// Acts on the read [`Delivery::next_read`] returned.
    ///
    /// # Errors
    /// [`End`] from the sink; [`End::Resync`] when a hole cannot be filled.
    pub async fn on_read(&mut self, read: Read, sink: &mut impl Sink) -> Result<(), End> {
        let Some((_, what)) = self.read.take() else {
            return Ok(());
        };
        match (read, what) {
            (Read::Plan(Ok(starts)), _) => {
                self.planned(starts);
                Ok(())
            }
            (Read::Plan(Err(e)), _) => {
                self.sync_failed(e);
                Ok(())
            }
            (Read::Page(Ok(rows)), InFlight::Page(job)) => self.page(rows, job, sink).await,
            (Read::Page(Err(_)), InFlight::Page(PageJob { fill: true, .. })) => Err(End::Resync),
            (Read::Page(Err(e)), InFlight::Page(_)) => {
                self.sync_failed(e);
                Ok(())
            }
            (Read::Page(_), InFlight::Plan) => Ok(()),
        }
    }

    /// Sends a page's messages within the job's bounds; queues the next page if there is
    /// more, or ends the connection (4010) when a hole cannot be filled.
    async fn page(
        &mut self,
        rows: Vec<(MessageRow, u64)>,
        job: PageJob,
        sink: &mut impl Sink,
    ) -> Result<(), End> {
        let PageJob {
            channel,
            after,
            upto,
            max_event_seq,
            fill,
        } = job;
        let full = rows.len() >= self.page;
        let ct = channel.channel_type().as_u8();
        let seen_as = channel.channel_id_for(self.uid.as_str());
        let mut sent_to = after;
        let mut reached_end = !full;
        for (row, ev) in rows {
            let seq = u64::try_from(row.message_seq).unwrap_or(0);
            if upto.is_some_and(|u| seq > u) || ev > max_event_seq {
                reached_end = true;
                break;
            }
            if self.seam.claimed(&channel, seq, ev) {
                // A refill of a channel the client holds up to its `since_event_seq`.
                sent_to = seq;
                continue;
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

#[cfg(test)]
#[path = "delivery_tests.rs"]
mod tests;
