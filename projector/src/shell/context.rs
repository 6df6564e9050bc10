//! What a runner or an operator command works with: the log, the database, batch size,
//! policy, and the progress shared with `/ready`.

use crate::shell::apply::Policy;
use crate::shell::health::Health;
use crate::Config;
use async_nats::jetstream;

/// Unacknowledged publishes the JetStream context allows (the projector publishes none; the
/// bound only sizes the client's bookkeeping).
const MAX_ACK_INFLIGHT: usize = 10_000;

/// What a runner (or an operator command) needs: the log, the database, batch size, policy.
#[derive(Clone)]
pub struct Context {
    /// JetStream.
    pub js: jetstream::Context,
    /// Postgres pool.
    pub pool: deadpool_postgres::Pool,
    /// Stream name.
    pub stream: String,
    /// Subject filter (`<root>.>`).
    pub filter: String,
    /// Most events per transaction (per read batch for operator commands).
    pub batch_size: usize,
    /// What to do with poison events.
    pub policy: Policy,
    /// Progress of each projection, for `/ready`.
    pub health: Health,
}

impl Context {
    /// Applies pending migrations, connects to NATS (as `name`) and Postgres (`pool_size`
    /// connections) and makes sure the stream exists.
    ///
    /// # Errors
    /// Connection or migration failures.
    pub async fn connect(
        config: &Config,
        name: &str,
        pool_size: usize,
        batch_size: usize,
        policy: Policy,
    ) -> anyhow::Result<Self> {
        readmodel::migrate::run(&config.common.database_url).await?;
        let (_client, js) =
            platform::log::connect(&config.common.nats_url, name, MAX_ACK_INFLIGHT).await?;
        platform::log::ensure_stream(&js, &config.common.stream, &config.common.subject_root)
            .await?;
        Ok(Self {
            js,
            pool: platform::db::pool(&config.common.database_url, pool_size)?,
            stream: config.common.stream.clone(),
            filter: format!("{}.>", config.common.subject_root),
            batch_size,
            policy,
            health: Health::default(),
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
