//! Read-your-writes: a request carrying `min_event_seq` waits until every projection it reads
//! has applied the event log up to that stream sequence.
//!
//! The highest checkpoint seen per projection is cached in an [`AtomicU64`], so a request whose
//! wait is already satisfied does not touch Postgres. One watcher per process
//! ([`Checkpoints::watch`]) keeps the cache current: it `LISTEN`s on the channel the projector's
//! every checkpoint commit announces on (`readmodel::checkpoints::CHANNEL`), re-reads all
//! checkpoints when it (re)connects and every [`REFRESH`], and wakes the waiting requests
//! through a `watch` channel — no request polls. While the watcher has no connection, waiting
//! requests read the checkpoints themselves every [`POLL_WITHOUT_WATCHER`].

use crate::store::{self, StoreError};
use deadpool_postgres::Pool;
use futures::StreamExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// How often the watcher re-reads every checkpoint besides the announcements (a safety net for
/// an announcement lost with a connection).
pub const REFRESH: Duration = Duration::from_secs(1);

/// How often a waiting request reads the checkpoints itself while the watcher is disconnected.
pub const POLL_WITHOUT_WATCHER: Duration = Duration::from_millis(20);

pub use readmodel::Projection;

/// The highest checkpoint seen per projection (they only grow).
#[derive(Debug)]
pub struct Checkpoints {
    seen: [AtomicU64; 3],
    /// Bumped whenever a checkpoint grows; waiters subscribe.
    grew: watch::Sender<()>,
    /// The watcher is connected and listening.
    listening: AtomicBool,
}

impl Default for Checkpoints {
    fn default() -> Self {
        Self {
            seen: Default::default(),
            grew: watch::Sender::new(()),
            listening: AtomicBool::new(false),
        }
    }
}

/// A wait for the projections ended without them catching up.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// `projection` was still at `seen` < `wanted` when the wait ran out.
    #[error("projection {projection} is at {seen}, below min_event_seq {wanted}")]
    Lagging {
        /// The projection's name.
        projection: &'static str,
        /// Its checkpoint at the deadline.
        seen: u64,
        /// The requested `min_event_seq`.
        wanted: u64,
    },
    /// The checkpoints could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Checkpoints {
    /// Records that `projection` has reached at least `seq`, waking the waiters if it grew.
    pub fn observe(&self, projection: Projection, seq: u64) {
        if self.seen[projection.index()].fetch_max(seq, Ordering::AcqRel) < seq {
            self.grew.send_replace(());
        }
    }

    /// Records checkpoints read from `projection_checkpoints`; unknown names are ignored.
    pub fn observe_named(&self, rows: &[(String, u64)]) {
        for (name, seq) in rows {
            if let Some(p) = Projection::from_name(name) {
                self.observe(p, *seq);
            }
        }
    }

    /// The highest checkpoint seen for `projection`.
    pub fn seen(&self, projection: Projection) -> u64 {
        self.seen[projection.index()].load(Ordering::Acquire)
    }

    /// The first of `projections` whose cached checkpoint is below `min`, if any.
    pub fn first_behind(&self, projections: &[Projection], min: u64) -> Option<Projection> {
        projections.iter().copied().find(|&p| self.seen(p) < min)
    }

    /// Waits until each of `projections` has `last_seq >= min_event_seq`, for at most
    /// `max_wait`: woken by the watcher; reading `pool` itself only while the watcher is
    /// disconnected. `None` or 0 returns at once.
    ///
    /// # Errors
    /// [`WaitError::Lagging`] when the deadline passes first; [`WaitError::Store`] when the
    /// checkpoints cannot be read.
    pub async fn wait_for(
        &self,
        pool: &Pool,
        projections: &[Projection],
        min_event_seq: Option<u64>,
        max_wait: Duration,
    ) -> Result<(), WaitError> {
        let Some(min) = min_event_seq.filter(|&m| m > 0) else {
            return Ok(());
        };
        if self.first_behind(projections, min).is_none() {
            return Ok(());
        }
        // Subscribed before the checks below: a growth after them wakes this wait.
        let mut grew = self.grew.subscribe();
        let names: Vec<&str> = projections.iter().map(|p| p.name()).collect();
        let deadline = Instant::now() + max_wait;
        loop {
            let listening = self.listening.load(Ordering::Acquire);
            if !listening {
                self.observe_named(&store::checkpoints::of(pool, &names).await?);
            }
            let Some(behind) = self.first_behind(projections, min) else {
                return Ok(());
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(WaitError::Lagging {
                    projection: behind.name(),
                    seen: self.seen(behind),
                    wanted: min,
                });
            }
            let wake = if listening {
                deadline
            } else {
                deadline.min(now + POLL_WITHOUT_WATCHER)
            };
            tokio::select! {
                _ = grew.changed() => {}
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    /// The watcher: keeps the cache current from the checkpoint announcements on a connection
    /// of its own to `database_url` (reconnecting by [`platform::retry::RECONNECT`]), and from
    /// a full read through `pool` on every (re)connect and every [`REFRESH`]. Ends when `stop`
    /// resolves.
    pub async fn watch(
        self: std::sync::Arc<Self>,
        database_url: String,
        pool: Pool,
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        let mut delays = platform::retry::RECONNECT.delays();
        loop {
            tokio::select! {
                r = self.listen(&database_url, &pool) => {
                    self.listening.store(false, Ordering::Release);
                    // Waiters read for themselves now; wake them to start.
                    self.grew.send_replace(());
                    let wait = delays.next_delay();
                    match r {
                        Ok(()) => tracing::warn!("checkpoint watcher connection ended; reconnecting"),
                        Err(e) => tracing::warn!(error = %platform::error::chain(e.as_ref()), retry_in_ms = wait.as_millis() as u64, "checkpoint watcher cannot listen; retrying"),
                    }
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = &mut stop => return,
                    }
                }
                () = &mut stop => return,
            }
            if self.listening.load(Ordering::Acquire) {
                delays.reset();
            }
        }
    }

    /// One connection's life: `LISTEN`, a full read, then announcements and refreshes until the
    /// connection ends.
    async fn listen(&self, database_url: &str, pool: &Pool) -> anyhow::Result<()> {
        let (client, mut conn) = platform::db::connect_listening(database_url).await?;
        let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
        let sql = format!("LISTEN {}", readmodel::checkpoints::CHANNEL);
        let listen = client.batch_execute(&sql);
        tokio::pin!(listen);
        // The connection must be driven while the LISTEN runs.
        loop {
            tokio::select! {
                r = &mut listen => { r?; break; }
                m = messages.next() => match m {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.into()),
                    None => return Ok(()),
                },
            }
        }
        self.refresh(pool).await?;
        self.listening.store(true, Ordering::Release);
        tracing::info!("checkpoint watcher listening");
        let mut refresh = tokio::time::interval(REFRESH);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                m = messages.next() => match m {
                    Some(Ok(tokio_postgres::AsyncMessage::Notification(n))) => {
                        if let Some((name, seq)) = readmodel::checkpoints::parse_announcement(n.payload()) {
                            if let Some(p) = Projection::from_name(name) {
                                self.observe(p, seq);
                            }
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.into()),
                    None => return Ok(()),
                },
                _ = refresh.tick() => {
                    if let Err(e) = self.refresh(pool).await {
                        tracing::warn!(error = %platform::error::chain(&e), "checkpoint refresh failed");
                    }
                }
            }
        }
    }

    /// Reads every projection's checkpoint.
    async fn refresh(&self, pool: &Pool) -> Result<(), StoreError> {
        let names = Projection::ALL.map(Projection::name);
        self.observe_named(&store::checkpoints::of(pool, &names).await?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_only_grows_and_names_the_laggard() {
        let c = Checkpoints::default();
        let both = [Projection::Messages, Projection::Channels];
        assert_eq!(c.first_behind(&both, 1), Some(Projection::Messages));
        c.observe(Projection::Messages, 10);
        c.observe(Projection::Messages, 5);
        assert_eq!(c.seen(Projection::Messages), 10);
        assert_eq!(c.first_behind(&both, 10), Some(Projection::Channels));
        c.observe_named(&[("channels".into(), 12), ("other".into(), 99)]);
        assert_eq!(c.first_behind(&both, 10), None);
        assert_eq!(c.first_behind(&both, 11), Some(Projection::Messages));
        assert_eq!(c.seen(Projection::Conversations), 0);
    }
}
