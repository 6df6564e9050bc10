//! # command-svc — validates commands and appends events to the log
//!
//! Internal business systems post commands over REST, end users' sockets through the query
//! service over NATS; each becomes at most one event appended to NATS JetStream (the event log
//! of record) with per-channel optimistic concurrency.
//!
//! ## Layout
//! - [`config`] — settings (env `PARLEY_*`).
//! - [`commands`]: the command layer every transport calls: typed commands in, a typed
//!   [`commands::CommandError`] out.
//! - [`domain::channel`]: the channel aggregate: `decide` (every rule) and `apply` (fold).
//! - [`executor`]: per-channel serialisation, state cache, conflict retry.
//! - [`log`]: appending and loading channel state (read-model snapshot + log tail).
//! - [`api`]: REST shapes and handlers (poem-openapi).
//! - [`socket`]: socket commands (send, read) as a NATS service.
//! - [`tenancy`]: the tenancy commands (admin API, token revocation) on the tenancy log.
//! - [`ops`]: what `/ready` checks (the probes are [`platform::probes`]).

pub mod api;
pub mod commands;
pub mod config;
pub mod domain;
pub mod executor;
pub mod log;
pub mod ops;
pub mod socket;
pub mod tenancy;

pub use config::Config;

use poem::{EndpointExt, Route};
use poem_openapi::OpenApiService;
use std::time::Duration;

/// How long in-flight requests and socket commands may run after shutdown begins.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// The OpenAPI document's description.
const DESCRIPTION: &str = "Commands of the Parley messaging service: messages, groups, read \
positions, user tokens. Every command answers `event_seq`, the log position of its event; pass it \
as `min_event_seq` to the query service to read your write.\n\n\
Every error is `{\"error\": {\"code\", \"message\", \"field\"}}`; each operation lists its own. On \
any path, a method the path does not take is 405 `METHOD_NOT_ALLOWED` with an `Allow` header, \
an unknown path 404 `NOT_FOUND`, and a request HTTP itself cannot parse 400 `BAD_REQUEST` \
(`field`: `request`). Request bodies are JSON (`Content-Type: application/json`, else 415) and \
refuse unknown fields (400 naming the field).";

/// Builds the app (waits until the database is migrated, connects NATS and Postgres, ensures
/// the stream) and serves on `acceptor` until `shutdown` completes, then drains in-flight
/// requests for up to 10 s. A `shutdown` during the wait for migrations ends it with `Ok`.
///
/// # Errors
/// Start-up failures: bad API keys, unreachable NATS or Postgres.
pub async fn serve(
    config: Config,
    acceptor: poem::listener::TcpAcceptor,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    platform::shutdown::Shutdown::scope(shutdown, |stop| run(config, acceptor, stop)).await
}

async fn run(
    config: Config,
    acceptor: poem::listener::TcpAcceptor,
    stop: platform::shutdown::Shutdown,
) -> anyhow::Result<()> {
    let _ = platform::telemetry::metrics();
    let keys = platform::auth::ApiKeys::load(&config.common.api_keys)?;
    let master =
        api::admin::MasterKey::new(config.master_key.as_deref(), config.master_rate_per_s)?;
    // The projector migrates; this service only waits until it has.
    if !readmodel::migrate::wait_until_current(&config.common.database_url, stop.clone().wait())
        .await?
    {
        return Ok(());
    }
    let (nats, js) = platform::log::connect(
        &config.common.nats_url,
        "parley-command-svc",
        config.max_ack_inflight,
    )
    .await?;
    let stream =
        platform::log::ensure_stream(&js, &config.common.stream, &config.common.subject_root)
            .await?;
    let pool = platform::db::pool(&config.common.database_url, config.common.db_pool_size)?;
    let subjects = events::subject::Subjects::new(config.common.subject_root.clone());
    let tasks = platform::shutdown::Tasks::new();
    let (live, follow) = ::tenancy::Live::start(
        js.clone(),
        ::tenancy::live::stream_name(&config.common.stream),
        subjects.clone(),
        stop.clone().wait(),
    )
    .await?;
    tasks.spawn("tenancy watcher", follow);
    live.replayed().await?;
    let keys = keys.with_live(live.clone());
    let live_view: std::sync::Arc<dyn platform::live::LiveTenancy> = live.clone();
    let tenancy = tenancy::Tenancy::new(js.clone(), subjects.clone(), live.clone());
    let nats_js = js.clone();
    let log = log::EventLog::new(js, stream, subjects.clone(), pool.clone());
    let tokens =
        platform::token::UserTokens::new(config.common.token_secret.as_deref(), keys.tenants())?
            .with_live(live);
    let limiter = platform::ratelimit::start(
        nats_js.clone(),
        config.common.subject_root.clone(),
        "command_svc",
        config.common.rate,
        keys.live().cloned(),
        &tasks,
        &stop,
    );
    let state = api::AppState {
        commands: commands::Commands::new(
            executor::Executor::new(log, config.cache_channels),
            config.max_payload_bytes,
        )
        .with_limiter(limiter.clone())
        .with_tenancy(live_view),
        tokens,
    };
    let apis = (
        api::messages::MessagesApi {
            state: state.clone(),
        },
        api::channels::ChannelsApi {
            state: state.clone(),
        },
        api::moderation::ModerationApi {
            state: state.clone(),
        },
        api::reads::ReadsApi {
            state: state.clone(),
        },
        api::tokens::TokensApi {
            state: state.clone(),
        },
        api::admin::RevokeApi {
            tenancy: tenancy.clone(),
        },
        api::admin::AdminApi { tenancy },
        platform::probes::ProbesApi::new(std::sync::Arc::new(ops::CommandProbe {
            nats: nats.clone(),
            pool,
        })),
    );
    let service = OpenApiService::new(apis, "Parley command service", env!("CARGO_PKG_VERSION"))
        .description(DESCRIPTION);
    let docs = platform::openapi::Docs::new(&service.spec(), &service.swagger_ui_html());
    let get_only = [poem::http::Method::GET];
    let routes = platform::edge::Routes::from_openapi(&service.spec())
        .add("/openapi.json", &get_only)
        .add("/docs", &get_only);
    let app = Route::new()
        .nest("/", service)
        .at("/openapi.json", docs.spec_endpoint())
        .nest("/docs", docs.ui_endpoint())
        .data(keys)
        .data(master)
        .data(limiter)
        .data(platform::http::BodyRules {
            max_payload_bytes: config.max_payload_bytes,
            timeout: config.common.http.body_timeout,
        })
        .with(platform::edge::Edge::new("command_svc", routes));
    let socket = socket::start(&nats, &subjects).await?;
    tasks.spawn(
        "socket commands",
        socket.serve(subjects, state.commands.clone(), stop.clone().wait()),
    );
    let served = platform::server::serve(
        acceptor,
        app,
        config.common.http,
        "command_svc",
        stop.wait(),
        DRAIN_DEADLINE,
    )
    .await;
    tasks.finish(DRAIN_DEADLINE).await;
    served?;
    Ok(())
}
