//! [`Lease`]: exactly one runner applies a projection at a time.
//!
//! A runner holds a Postgres session-level advisory lock per projection for as long as it
//! serves it, on a connection of its own taken out of the pool. A second projector process
//! (a rolling deploy, a hot standby) finds the lock taken, waits as a standby polling every
//! [`POLL`], and takes over within about a second of the first one's session ending: a killed
//! process's socket closes at once, so Postgres releases its locks at once.
//!
//! The lease prevents two runners from recreating each other's durable consumer and from
//! applying the same batch twice (whose second copy would fail on the first's rows). It is not
//! the only guard: the checkpoint write is a compare-and-set ([`crate::shell::batch`]), so even
//! a runner that still believes it holds a lease it lost (a network partition hiding the
//! session's end) can never apply a batch twice or skip one.

use crate::core::Projection;
use std::time::Duration;

/// How often a standby tries to take the lease, and how often a holder checks it still has it.
pub const POLL: Duration = Duration::from_secs(1);

/// Longest wait for one check of the lease connection (`SELECT 1`).
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The advisory-lock key of `p`'s lease: `hashtextextended('parley.projector.lease.<name>', 0)`.
const TRY_LOCK: &str =
    "SELECT pg_try_advisory_lock(hashtextextended('parley.projector.lease.' || $1, 0))";

/// A held lease on one projection; dropping it closes its connection, which releases it.
pub struct Lease {
    projection: Projection,
    client: deadpool_postgres::ClientWrapper,
}

/// Why a lease could not be taken this time.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Another runner holds it.
    #[error("held by another runner")]
    Held,
    /// Postgres could not be reached or answered with an error.
    #[error("lease connection: {0}")]
    Database(String),
}

impl Lease {
    /// Tries once to take `p`'s lease on a connection taken out of `pool`.
    ///
    /// # Errors
    /// [`LeaseError::Held`] when another session holds it; [`LeaseError::Database`] when the
    /// pool or the query fails.
    pub async fn try_take(
        pool: &deadpool_postgres::Pool,
        p: Projection,
    ) -> Result<Self, LeaseError> {
        let db = |e: &dyn std::fmt::Display| LeaseError::Database(e.to_string());
        let object = pool.get().await.map_err(|e| db(&e))?;
        // Out of the pool for good: the session (and so the lock) ends when this is dropped.
        let client = deadpool_postgres::Object::take(object);
        let row = client
            .query_one(TRY_LOCK, &[&p.name()])
            .await
            .map_err(|e| db(&e))?;
        if row.try_get::<_, bool>(0).map_err(|e| db(&e))? {
            Ok(Self {
                projection: p,
                client,
            })
        } else {
            Err(LeaseError::Held)
        }
    }

    /// Waits until `p`'s lease is taken, polling every [`POLL`]; reports the wait through
    /// `standby` (called with `true` while another runner holds it).
    pub async fn take(
        pool: &deadpool_postgres::Pool,
        p: Projection,
        mut standby: impl FnMut(bool),
    ) -> Self {
        let mut waiting = false;
        loop {
            match Self::try_take(pool, p).await {
                Ok(lease) => {
                    if waiting {
                        tracing::info!(projection = p.name(), "lease taken over; serving");
                    }
                    standby(false);
                    return lease;
                }
                Err(LeaseError::Held) => {
                    if !waiting {
                        tracing::info!(
                            projection = p.name(),
                            "another projector serves this projection; standing by"
                        );
                    }
                    waiting = true;
                    standby(true);
                }
                Err(e) => {
                    tracing::warn!(projection = p.name(), error = %e, "cannot take the lease; retrying");
                }
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Resolves when the lease may be lost: its connection closed or stopped answering.
    pub async fn lost(&self) {
        loop {
            tokio::time::sleep(POLL).await;
            if self.client.is_closed() {
                break;
            }
            match tokio::time::timeout(CHECK_TIMEOUT, self.client.simple_query("SELECT 1")).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(projection = self.projection.name(), error = %e, "lease connection failed");
                    break;
                }
                Err(_) => {
                    tracing::warn!(
                        projection = self.projection.name(),
                        "lease connection does not answer"
                    );
                    break;
                }
            }
        }
        metrics::counter!("projector_lease_lost_total", "projection" => self.projection.name())
            .increment(1);
    }
}
