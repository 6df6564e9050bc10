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
//! - [`serve`] (here): connects Postgres and NATS, builds the app, serves until shutdown.
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
use consistency::Checkpoints;
use events::subject::Subjects;
use platform::auth::ApiKeys;
use platform::shutdown::Shutdown;
use platform::token::UserTokens;
use poem::EndpointExt as _;
use std::sync::Arc;
use std::time::Duration;

/// How long in-flight requests may run after shutdown begins.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// Unacked publishes the JetStream context allows; this service never publishes.
const MAX_ACK_INFLIGHT: usize = 16;

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
    // Install the Prometheus recorder before the first request is counted.
    let _ = platform::telemetry::metrics();
    let keys = ApiKeys::load(&config.common.api_keys)?;
    let stop = Shutdown::new(shutdown);
    // The projector migrates; this service only waits until it has.
    if !readmodel::migrate::wait_until_current(&config.common.database_url, stop.clone().wait())
        .await?
    {
        return Ok(());
    }
    let pool = platform::db::pool(&config.common.database_url, config.common.db_pool_size)
        .context("building the Postgres pool")?;
    let (nats, jetstream) = platform::log::connect(
        &config.common.nats_url,
        "parley-query-svc",
        MAX_ACK_INFLIGHT,
    )
    .await
    .context("connecting to NATS")?;
    let mut tenants: Vec<events::TenantId> = keys.tenants().collect();
    tenants.extend(config.dev_tenant.clone());
    let tokens = UserTokens::new(config.common.token_secret.as_deref(), tenants)?;
    let state = Arc::new(api::AppState {
        pool: pool.clone(),
        nats: nats.clone(),
        jetstream: jetstream.clone(),
        stream: config.common.stream.clone(),
        checkpoints: Checkpoints::default(),
        consistency_wait: config.consistency_wait,
        ready_max_lag: config.ready_max_lag,
    });
    let subjects = Subjects::new(config.common.subject_root.clone());
    let (hub, hub_task) = realtime::hub::Hub::start(
        realtime::hub::HubSource {
            jetstream: jetstream.clone(),
            nats: nats.clone(),
            stream: config.common.stream.clone(),
            subjects: subjects.clone(),
            pool,
        },
        config.ws.queue,
        stop.clone().wait(),
    );
    let (presence, presence_tasks) = realtime::presence::Presence::start(
        &jetstream,
        subjects.presence_bucket(),
        hub.clone(),
        stop.clone(),
    )
    .await
    .context("opening the presence bucket")?;
    let rt = Arc::new(realtime::Realtime {
        app: state.clone(),
        hub,
        presence,
        nats,
        subjects,
        tokens,
        config: config.ws.clone(),
        stop: stop.clone(),
        typing: realtime::TypingLimiter::default(),
    });
    let app =
        api::app(state, keys, rt, config.dev_tenant.clone()).data(platform::http::BodyRules {
            max_payload_bytes: 0,
            timeout: config.common.http.body_timeout,
        });
    let served = platform::server::serve(
        acceptor,
        app,
        config.common.http,
        "query_svc",
        stop.wait(),
        DRAIN_DEADLINE,
    )
    .await
    .context("serving HTTP");
    for task in std::iter::once(hub_task).chain(presence_tasks) {
        if let Err(e) = task.await {
            tracing::error!(error = %e, "realtime task panicked");
        }
    }
    served?;
    tracing::info!("query service stopped");
    Ok(())
}
