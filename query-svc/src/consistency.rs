//! Read-your-writes: a request carrying `min_event_seq` waits until every projection it reads
//! has applied the event log up to that stream sequence.
//!
//! The highest checkpoint seen per projection is cached in an [`AtomicU64`], so a request whose
//! wait is already satisfied does not touch Postgres. Otherwise `projection_checkpoints` is
//! polled every [`POLL_INTERVAL`] until the deadline.

use crate::store::{self, StoreError};
use deadpool_postgres::Pool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// How often a waiting request re-reads the checkpoints.
pub const POLL_INTERVAL: Duration = Duration::from_millis(5);

pub use readmodel::Projection;

/// The highest checkpoint seen per projection (they only grow).
#[derive(Debug, Default)]
pub struct Checkpoints {
    seen: [AtomicU64; 3],
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
    /// Records that `projection` has reached at least `seq`.
    pub fn observe(&self, projection: Projection, seq: u64) {
        self.seen[projection.index()].fetch_max(seq, Ordering::AcqRel);
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

    /// Waits until each of `projections` has `last_seq >= min_event_seq`, polling `pool` for at
    /// most `max_wait`. `None` or 0 returns at once.
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
        let names: Vec<&str> = projections.iter().map(|p| p.name()).collect();
        let deadline = Instant::now() + max_wait;
        loop {
            self.observe_named(&store::checkpoints::of(pool, &names).await?);
            let Some(behind) = self.first_behind(projections, min) else {
                return Ok(());
            };
            if Instant::now() >= deadline {
                return Err(WaitError::Lagging {
                    projection: behind.name(),
                    seen: self.seen(behind),
                    wanted: min,
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
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
