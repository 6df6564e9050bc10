//! # query-svc — Parley's read side
//!
//! Serves channel history, single messages, conversation lists and group info from the
//! Postgres read models the projector maintains. Reads never touch the event log; a client
//! that wants to see its own write passes the write's event-log sequence as `min_event_seq`
//! and the request waits (bounded) until the projections have applied it.
//!
//! # Layout
//! - [`Config`] (`config.rs`): `PARLEY_QUERY_LISTEN`, `PARLEY_CONSISTENCY_WAIT_MS`,
//!   `PARLEY_READY_MAX_LAG` and the shared settings.
//! - [`serve`] (here): waits for the migrations, builds, serves until shutdown.
//! - `state.rs`: the composition root: connects Postgres and NATS and builds the read side,
//!   the realtime side and the app, handing each only what it needs.
//! - `realtime/`: WebSocket and SSE push, the fan-out hub, presence (see [`realtime`]).
//! - `api/`: poem-openapi operations, one file per resource (`messages.rs`,
//!   `conversations.rs`, `channels.rs`, `ops.rs`), their DTOs and input validation.
//! - `store/`: the SQL, as named constants with parameters, one file per read model.
//! - `consistency.rs`: waiting for `min_event_seq` against `projection_checkpoints`.
//! - `paging.rs`: pure keyset-pagination pieces (history page direction, conversation cursor).

mod api;
mod config;
mod consistency;
mod paging;
pub mod realtime;
mod state;
mod store;

pub use config::Config;

/// The read queries exactly as the service issues them, so `make bench` can time the same SQL
/// issued directly as the S3/S4 baseline.
pub mod raw_sql {
    /// First page of a conversation list: `$1` tenant, `$2` uid, `$3` rows.
    pub use crate::store::conversations::FIRST_PAGE;
    /// Newest-first history page: `$1` tenant, `$2` channel_type (i16), `$3` channel_key,
    /// `$4` exclusive upper `message_seq` bound (`i64::MAX` for the newest page), `$5` rows.
    pub use crate::store::messages::HISTORY_BACKWARD;
}

use anyhow::Context as _;
use platform::auth::ApiKeys;
use platform::shutdown::Shutdown;
use std::time::Duration;

/// How long in-flight requests may run after shutdown begins.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// Unacked publishes the JetStream context allows; this service never publishes.
pub(crate) const MAX_ACK_INFLIGHT: usize = 16;

/// Waits until the database is migrated, then builds the app (a Postgres pool and a NATS
/// connection that retries in the background) and serves HTTP on `acceptor` until `shutdown`
/// completes, then drains in-flight requests for at most 10 s. A `shutdown` during the wait for
/// migrations ends it with `Ok`.
///
/// # Errors
/// Malformed `PARLEY_API_KEYS` or database URL, Postgres unreachable at start, a NATS URL that
/// cannot be used, or the server's I/O error.
pub async fn serve(
    config: Config,
    acceptor: poem::listener::TcpAcceptor,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    Shutdown::scope(shutdown, |stop| run(config, acceptor, stop)).await
}

async fn run(
    config: Config,
    acceptor: poem::listener::TcpAcceptor,
    stop: Shutdown,
) -> anyhow::Result<()> {
    // Install the Prometheus recorder before the first request is counted.
    let _ = platform::telemetry::metrics();
    let keys = ApiKeys::load(&config.common.api_keys)?;
    // The projector migrates; this service only waits until it has.
    if !readmodel::migrate::wait_until_current(&config.common.database_url, stop.clone().wait())
        .await?
    {
        return Ok(());
    }
    let built = state::build(&config, keys, &stop).await?;
    let served = platform::server::serve(
        acceptor,
        built.app,
        config.common.http,
        "query_svc",
        stop.wait(),
        DRAIN_DEADLINE,
    )
    .await
    .context("serving HTTP");
    built.tasks.finish(DRAIN_DEADLINE).await;
    served?;
    tracing::info!("query service stopped");
    Ok(())
}
