//! Resume (`sync`): the plan of where each channel stands, its catch-up pages as backlog, the
//! gaps it must report instead of sending older after newer, and its closing `synced`.

use super::catchup::{ChannelStart, ReadError};
use super::delivery::{Delivery, PageJob, SyncState, Work};
use super::frames::{error_json, Gap, ServerFrame};
use super::seam::Plan;
use super::sink::{End, Sink};
use events::ChannelKey;
use std::collections::HashMap;

impl Delivery {
    /// Whether a `sync` is running (a second one is refused until its `synced`).
    pub fn syncing(&self) -> bool {
        self.sync.is_some()
    }

    /// Starts a resume covering the log up to `position` (the hub's, now): the plan (a read),
    /// the catch-up pages and `synced` become backlog, done by [`Delivery::step`] and
    /// [`Delivery::on_read`] beside the live stream, which the seam holds meanwhile. `listed`
    /// names the last `message_seq` the client holds per channel; `since_event_seq` covers the
    /// channels it does not list.
    pub fn begin_sync(
        &mut self,
        reference: Option<String>,
        listed: HashMap<ChannelKey, u64>,
        since_event_seq: Option<u64>,
        position: u64,
    ) {
        self.hold_until = None;
        self.seam.pause();
        if let Some(since) = since_event_seq {
            self.seam.claim_events_through(since);
        }
        self.sync = Some(SyncState {
            reference,
            position,
            gaps: Vec::new(),
            listed: listed.clone(),
            failed: None,
        });
        self.work.push_back(Work::Plan {
            listed,
            since_event_seq,
        });
        self.work.push_back(Work::Synced);
    }

    /// The plan came back: each channel's catch-up goes to the front of the backlog, in order;
    /// a channel this connection already sent newer messages of becomes a gap (seam rule 4).
    /// A listed channel the plan does not cover (the read models do not show it for the user
    /// yet: this instance is behind the one the client read it from, or the user is not a
    /// member) records the client's claim, so live messages the client holds are not sent again
    /// (seam rule 5).
    pub(super) fn planned(&mut self, starts: Vec<ChannelStart>) {
        let mut pages = Vec::new();
        let position = self.sync.as_ref().map_or(0, |s| s.position);
        if let Some(sync) = self.sync.as_mut() {
            let mut unplanned = std::mem::take(&mut sync.listed);
            for s in &starts {
                unplanned.remove(&s.channel);
            }
            for (channel, last) in unplanned {
                self.seam.claim(&channel, last);
            }
        }
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
    }

    /// The `sync` in progress cannot finish: its remaining catch-up is dropped and its
    /// `synced` follows an `error`.
    pub(super) fn sync_failed(&mut self, e: ReadError) {
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
    pub(super) async fn synced(&mut self, sink: &mut impl Sink) -> Result<(), End> {
        let Some(sync) = self.sync.take() else {
            return Ok(());
        };
        if let Some((code, message)) = sync.failed {
            let json = error_json(sync.reference.as_deref(), code, message, None);
            sink.send("error", None, json).await?;
        }
        let viewer = self.uid.as_str();
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
}
