//! Operator commands (`projector rebuild|replay|status|gc|dlq`), run as one-shot processes beside
//! the serving projector. They coordinate with it only through Postgres
//! (`projection_versions`, `parked_events`), so any of them can be killed at any moment.
//!
//! - [`build`]: one read of the log applied to several versions at once.
//! - [`rebuild`]: blue/green rebuild (bulk, index, catch up, verify, switch) and replay.
//! - [`verify`]: row counts and content checksums of two versions' tables.
//! - [`status`]: every version with checkpoint, lag, rate and state.
//! - [`gc`]: dropping retired versions.
//! - [`progress`]: a progress bar on a terminal, log lines elsewhere.

pub mod build;
pub mod gc;
pub mod progress;
pub mod rebuild;
pub mod status;
pub mod verify;

use crate::shell::apply::Policy;
use crate::Config;
use async_nats::jetstream;

/// What the operator commands need.
#[derive(Clone)]
pub struct Ops {
    /// JetStream.
    pub js: jetstream::Context,
    /// Postgres pool.
    pub pool: deadpool_postgres::Pool,
    /// Stream name.
    pub stream: String,
    /// Subject filter (`<root>.>`).
    pub filter: String,
    /// Most events per read batch.
    pub batch_size: usize,
    /// Poison policy for rebuilds and replays (relaxed commits, bounded transient retries).
    pub policy: Policy,
}

impl Ops {
    /// Connects to NATS and Postgres and applies pending migrations.
    ///
    /// # Errors
    /// Connection or migration failures.
    pub async fn connect(config: &Config) -> anyhow::Result<Self> {
        crate::migrate::run(&config.common.database_url).await?;
        let (_client, js) =
            platform::log::connect(&config.common.nats_url, "parley-projector-ops", 10_000).await?;
        platform::log::ensure_stream(&js, &config.common.stream, &config.common.subject_root)
            .await?;
        Ok(Self {
            js,
            pool: platform::db::pool(&config.common.database_url, 8)?,
            stream: config.common.stream.clone(),
            filter: format!("{}.>", config.common.subject_root),
            batch_size: config.batch_size.max(10_000),
            policy: Policy {
                poison: config.on_poison,
                max_attempts: config.poison_attempts,
                transient_limit: Some(20),
                relaxed: true,
            },
        })
    }

    /// The stream's last sequence (0 when empty).
    ///
    /// # Errors
    /// NATS errors.
    pub async fn head(&self) -> anyhow::Result<u64> {
        let mut stream = self.js.get_stream(&self.stream).await?;
        Ok(stream.info().await?.state.last_sequence)
    }
}
