//! The composition root: connects Postgres and NATS and builds every long-lived part of the
//! service — the read side's state, the realtime side (hub, presence, a narrow catch-up handle
//! on the read models) and the HTTP app — handing each only what it needs. Nothing else
//! constructs them, so `api` and `realtime` never reach into each other's state.

use crate::consistency::Checkpoints;
use crate::{api, realtime, Config, MAX_ACK_INFLIGHT};
use anyhow::Context as _;
use events::subject::Subjects;
use platform::auth::ApiKeys;
use platform::shutdown::{Shutdown, Tasks};
use platform::token::UserTokens;
use poem::EndpointExt as _;
use std::sync::Arc;

/// What [`build`] made: the app to serve and the background tasks to wait for at the end.
pub struct Built {
    /// The HTTP app.
    pub app: poem::endpoint::BoxEndpoint<'static>,
    /// The hub's, the checkpoint watcher's, presence's, the typing sweep's and every SSE
    /// session's tasks; each ends after `stop`.
    pub tasks: Tasks,
}

/// Builds the service for `config`; its tasks run until `stop`.
///
/// # Errors
/// A database URL or pool setting that cannot be used, NATS unreachable, a token secret that
/// is too short, the presence bucket that cannot be opened.
pub async fn build(config: &Config, keys: ApiKeys, stop: &Shutdown) -> anyhow::Result<Built> {
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
    let tasks = Tasks::new();
    let (live, follow) = tenancy::Live::start(
        jetstream.clone(),
        tenancy::live::stream_name(&config.common.stream),
        Subjects::new(config.common.subject_root.clone()),
        stop.clone().wait(),
    )
    .await
    .context("opening the tenancy log")?;
    tasks.spawn("tenancy watcher", follow);
    live.replayed().await?;
    let keys = keys.with_live(live.clone());
    let tokens =
        UserTokens::new(config.common.token_secret.as_deref(), tenants)?.with_live(live.clone());
    let checkpoints = Arc::new(Checkpoints::default());
    tasks.spawn(
        "checkpoint watcher",
        checkpoints.clone().watch(
            config.common.database_url.clone(),
            pool.clone(),
            stop.clone().wait(),
        ),
    );
    let limiter = platform::ratelimit::start(
        jetstream.clone(),
        config.common.subject_root.clone(),
        "query_svc",
        config.common.rate,
        keys.live().cloned(),
        &tasks,
        stop,
    );
    let state = Arc::new(api::AppState {
        pool: pool.clone(),
        nats: nats.clone(),
        jetstream: jetstream.clone(),
        stream: config.common.stream.clone(),
        checkpoints: checkpoints.clone(),
        consistency_wait: config.consistency_wait,
        ready_max_lag: config.ready_max_lag,
        limiter: limiter.clone(),
    });
    let subjects = Subjects::new(config.common.subject_root.clone());
    let hub = realtime::hub::Hub::start(
        realtime::hub::HubSource {
            jetstream: jetstream.clone(),
            nats: nats.clone(),
            stream: config.common.stream.clone(),
            subjects: subjects.clone(),
            pool: pool.clone(),
        },
        config.ws.queue,
        &tasks,
        stop.clone().wait(),
    );
    let presence = realtime::presence::Presence::start(
        &jetstream,
        subjects.presence_bucket(),
        hub.clone(),
        &tasks,
        stop.clone(),
    )
    .await
    .context("opening the presence bucket")?;
    let typing = Arc::new(realtime::typing::TypingLimiter::default());
    tasks.spawn("typing sweep", sweep_typing(typing.clone(), stop.clone()));
    let rt = Arc::new(realtime::Realtime {
        catch_up: Arc::new(realtime::catchup::PgCatchUp { pool, checkpoints }),
        hub,
        presence,
        nats,
        subjects,
        tokens,
        config: config.ws.clone(),
        stop: stop.clone(),
        typing: typing.clone(),
        tasks: tasks.clone(),
        tenancy: live.clone(),
        allowed_origins: Arc::new(config.allowed_origins.clone()),
    });
    let cors_origins = (Arc::new(config.allowed_origins.clone()), live);
    let app = api::app(state, keys, rt, config.dev_tenant.clone())
        .data(platform::http::BodyRules {
            max_payload_bytes: 0,
            timeout: config.common.http.body_timeout,
        })
        .data(limiter)
        .map_to_response()
        .boxed()
        .with(platform::origin::cors(move |o| {
            cors_origins.0.iter().any(|l| l == o)
                || platform::live::LiveTenancy::lists_origin(&*cors_origins.1, o)
        }));
    Ok(Built { app, tasks })
}

/// Drops idle users' typing limits every [`realtime::typing::SWEEP_EVERY`] until `stop`.
async fn sweep_typing(typing: Arc<realtime::typing::TypingLimiter>, stop: Shutdown) {
    let mut every = tokio::time::interval(realtime::typing::SWEEP_EVERY);
    let stop = stop.wait();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = every.tick() => typing.sweep(),
        }
    }
}
