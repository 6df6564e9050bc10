//! The serving projector: one task per projection keeps its serving version current.
//!
//! A task finds the serving version in `projection_versions`, positions the projection's
//! durable consumer (`proj_<name>`) at its checkpoint + 1 (the Postgres checkpoint, not the
//! consumer's ack state, decides where work resumes), then loops: take a batch, apply it with
//! its checkpoint in one transaction ([`Applier`]), then ack. When a rebuild switches the
//! projection to a new version, the next checkpoint write finds its version retired
//! ([`BatchError::Fenced`]) and the task starts over on the new serving version. Every second
//! while idle it acts on `projector dlq retry`, and while halted on a poison event (policy
//! `stop`) it waits for the operator.

use crate::core::Projection;
use crate::schema::{self, State};
use crate::shell::apply::{Applier, Policy};
use crate::shell::batch::{Batch, BatchError};
use crate::shell::context::Context;
use crate::shell::dlq;
use crate::shell::health::{Health, Progress};
use crate::shell::intake::more;
use crate::shell::lease::Lease;
use crate::Config;
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Runs every configured projection until `shutdown` resolves; migrations are applied first.
///
/// # Errors
/// Start-up failures (migrations, NATS connection, stream creation). Errors inside a projection
/// are retried with backoff, not returned.
pub async fn run(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_with(config, Health::default(), shutdown).await
}

/// [`run`], reporting progress into `health`.
///
/// # Errors
/// As [`run`].
pub async fn run_with(
    config: Config,
    health: Health,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let policy = Policy {
        poison: config.on_poison,
        max_attempts: config.poison_attempts,
        transient_limit: None,
        relaxed: false,
    };
    let mut shutdown = std::pin::pin!(shutdown);
    // Start-up races the shutdown too: SIGTERM while NATS or Postgres is unreachable ends the
    // process at once instead of after the connection attempts.
    let connected = tokio::select! {
        c = Context::connect(
            &config,
            "parley-projector",
            config.projections.len() + 3,
            config.batch_size,
            policy,
        ) => c,
        () = &mut shutdown => return Ok(()),
    };
    let mut ctx = connected?;
    ctx.health = health;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = JoinSet::new();
    for p in config.projections.iter().copied() {
        let ctx = ctx.clone();
        let stop = stop_rx.clone();
        tasks.spawn(async move {
            run_projection(p, ctx, stop).await;
            Some(p)
        });
    }
    if let Some(grace) = config.gc_grace {
        let pool = ctx.pool.clone();
        let mut stop = stop_rx.clone();
        tasks.spawn(async move {
            loop {
                if let Err(e) = crate::ops::gc::collect(&pool, grace, false).await {
                    tracing::warn!(error = %e, "garbage collection of retired versions failed");
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
                    _ = stop.wait_for(|s| *s) => return None,
                }
            }
        });
    }
    shutdown.await;
    let _ = stop_tx.send(true);
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Some(p)) => tracing::info!(projection = p.name(), "projection stopped"),
            Ok(None) => {}
            Err(e) => tracing::error!(error = format!("{e:#}"), "projection task failed"),
        }
    }
    Ok(())
}

/// Runs one projection until `stop` turns true: takes its [`Lease`] (standing by while another
/// runner holds it), then serves it, starting over from the database's checkpoint after every
/// error, switch or lost lease.
pub async fn run_projection(
    p: Projection,
    ctx: Context,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let lease = tokio::select! {
            l = Lease::take(&ctx.pool, p, |standby| ctx.health.set(p, |pr| pr.standby = standby)) => l,
            _ = stop.wait_for(|s| *s) => return,
        };
        metrics::gauge!("projector_lease_held", "projection" => p.name()).set(1.0);
        let stopped = serve_while_held(p, &ctx, &lease, &mut stop).await;
        metrics::gauge!("projector_lease_held", "projection" => p.name()).set(0.0);
        ctx.health.set(p, |pr| pr.running = false);
        drop(lease);
        if stopped {
            return;
        }
    }
}

/// Serves `p` while `lease` holds; returns `true` when stopped, `false` when the lease may be
/// lost (the caller takes it again before going on).
async fn serve_while_held(
    p: Projection,
    ctx: &Context,
    lease: &Lease,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> bool {
    let mut delays = platform::retry::PROJECTION.delays();
    loop {
        let mut progressed = false;
        let result = tokio::select! {
            r = serve(p, ctx, &mut progressed) => r,
            _ = lease.lost() => {
                tracing::warn!(projection = p.name(), "lease lost; stopping until it is taken again");
                return false;
            }
            _ = stop.wait_for(|s| *s) => return true,
        };
        ctx.health.set(p, |pr| pr.running = false);
        match result {
            Ok(()) => delays.reset(),
            Err(e) => {
                // The backoff grows only while no batch commits (a database that stays down).
                if progressed {
                    delays.reset();
                }
                let wait = delays.next_delay();
                let stale = matches!(
                    e.downcast_ref::<BatchError>(),
                    Some(BatchError::Stale { .. })
                );
                if stale {
                    tracing::warn!(projection = p.name(), error = format!("{e:#}"), "checkpoint moved under the runner (lost commits, a restore, or another writer); repositioning at the stored checkpoint");
                } else {
                    tracing::warn!(
                        projection = p.name(),
                        error = format!("{e:#}"),
                        backoff_ms = wait.as_millis() as u64,
                        "projection error; restarting from the stored checkpoint"
                    );
                }
                metrics::counter!("projector_restarts_total", "projection" => p.name())
                    .increment(1);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.wait_for(|s| *s) => return true,
                }
            }
        }
    }
}

/// (Re)creates the durable consumer of `p` so that it delivers from `start`.
async fn position_consumer(
    p: Projection,
    ctx: &Context,
    start: u64,
) -> anyhow::Result<consumer::Consumer<consumer::pull::Config>> {
    let stream = ctx.js.get_stream(&ctx.stream).await?;
    let name = format!("proj_{}", p.name());
    let _ = stream.delete_consumer(&name).await;
    let config = consumer::pull::Config {
        durable_name: Some(name.clone()),
        filter_subject: ctx.filter.clone(),
        deliver_policy: consumer::DeliverPolicy::ByStartSequence {
            start_sequence: start,
        },
        ack_policy: consumer::AckPolicy::All,
        ack_wait: Duration::from_secs(60),
        max_ack_pending: 100_000,
        max_batch: 0,
        ..Default::default()
    };
    Ok(stream.create_consumer(config).await?)
}

/// Publishes the gauges of `applier`'s projection.
fn report(ctx: &Context, applier: &Applier, lag_events: u64, lag_seconds: f64) {
    let p = applier.v.projection;
    let name = p.name();
    metrics::gauge!("projector_checkpoint", "projection" => name).set(applier.v.last_seq as f64);
    metrics::gauge!("projector_serving_version", "projection" => name)
        .set(f64::from(applier.v.version));
    metrics::gauge!("projector_lag_events", "projection" => name).set(lag_events as f64);
    metrics::gauge!("projector_lag_seconds", "projection" => name).set(lag_seconds);
    metrics::gauge!("projector_apply_rate", "projection" => name).set(applier.rate());
    metrics::gauge!("projector_halted", "projection" => name).set(
        if applier.v.parked_seq.is_some() {
            1.0
        } else {
            0.0
        },
    );
    let (version, checkpoint, halted) =
        (applier.v.version, applier.v.last_seq, applier.v.parked_seq);
    ctx.health.set(p, |pr| {
        *pr = Progress {
            version,
            checkpoint,
            lag_events,
            lag_seconds,
            halted,
            running: true,
            standby: false,
        }
    });
}

async fn parked_gauge(ctx: &Context, applier: &Applier) -> anyhow::Result<()> {
    let client = ctx.pool.get().await?;
    let open = dlq::open_count(&client, &applier.v).await?;
    metrics::gauge!("projector_parked_events", "projection" => applier.v.projection.name())
        .set(open as f64);
    Ok(())
}

/// Serves `p`'s serving version until it is switched away (`Ok`) or fails (`Err`); sets
/// `progressed` once a batch has committed.
async fn serve(p: Projection, ctx: &Context, progressed: &mut bool) -> anyhow::Result<()> {
    let v = {
        let client = ctx.pool.get().await?;
        schema::find(&client, p, State::Serving)
            .await?
            .ok_or_else(|| anyhow::anyhow!("{} has no serving version", p.name()))?
    };
    let mut applier = Applier::new(v, ctx.policy);
    let _ = parked_gauge(ctx, &applier).await;
    // Halted on a poison event: wait for `projector dlq retry|skip`.
    while applier.v.parked_seq.is_some() {
        report(ctx, &applier, 0, 0.0);
        match applier.resolve_halt(&ctx.pool).await {
            Ok(true) => {}
            Ok(false) => tokio::time::sleep(Duration::from_secs(1)).await,
            Err(BatchError::Fenced { .. }) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    let consumer = position_consumer(p, ctx, applier.v.last_seq + 1).await?;
    let messages = consumer
        .stream()
        .max_messages_per_batch(ctx.batch_size)
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(30))
        .messages()
        .await?;
    let mut messages = std::pin::pin!(messages);
    tracing::info!(
        projection = p.name(),
        version = applier.v.version,
        checkpoint = applier.v.last_seq,
        "projection consuming"
    );
    report(ctx, &applier, 0, 0.0);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks = 0u64;
    loop {
        // Only the wait for the first record is cancelled by the tick: records already taken
        // from the stream are never dropped.
        let first = tokio::select! {
            m = messages.next() => m,
            _ = tick.tick() => {
                ticks += 1;
                match applier.retry_behind(&ctx.pool).await {
                    Ok(_) => {}
                    Err(BatchError::Fenced { .. }) => return Ok(()),
                    Err(e) => return Err(e.into()),
                }
                if ticks.is_multiple_of(5) {
                    let _ = parked_gauge(ctx, &applier).await;
                }
                continue;
            }
        };
        let Some(first) = first else {
            anyhow::bail!("consumer stream ended")
        };
        let chunk = more(first, &mut messages, ctx.batch_size, None).await;
        let started = Instant::now();
        let mut batch = Batch::with_capacity(chunk.len());
        let mut last: Option<jetstream::Message> = None;
        let (mut pending, mut published_ns) = (0u64, 0i128);
        for item in chunk {
            let msg = item.map_err(|e| anyhow::anyhow!("consumer: {e}"))?;
            let info = msg
                .info()
                .map_err(|e| anyhow::anyhow!("message info: {e}"))?;
            let seq = info.stream_sequence;
            pending = info.pending;
            published_ns = info.published.unix_timestamp_nanos();
            if seq > applier.v.last_seq {
                batch.push(seq, msg.subject.to_string(), msg.payload.clone());
            }
            last = Some(msg);
        }
        let Some(last) = last else { continue };
        if let Some(upto) = batch.last_seq() {
            match applier.apply(&ctx.pool, &batch, upto).await {
                Ok(c) => {
                    *progressed = true;
                    metrics::counter!("projector_events_applied_total", "projection" => p.name())
                        .increment(u64::try_from(c.applied).unwrap_or(u64::MAX));
                    metrics::histogram!("projector_batch_duration_seconds", "projection" => p.name())
                        .record(started.elapsed().as_secs_f64());
                    if c.parked > 0 {
                        let _ = parked_gauge(ctx, &applier).await;
                    }
                    if c.halted.is_some() {
                        report(ctx, &applier, pending, 0.0);
                        return Ok(());
                    }
                }
                Err(BatchError::Fenced { version: what, .. }) => {
                    tracing::info!(projection = p.name(), version = %what, "version no longer serving; moving to the new one");
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
        }
        let lag_seconds = if pending > 0 {
            let now_ns = platform::now_ms() as i128 * 1_000_000;
            ((now_ns - published_ns).max(0) as f64) / 1e9
        } else {
            0.0
        };
        report(ctx, &applier, pending, lag_seconds);
        // AckPolicy::All: acking the batch's last record acks all before it.
        last.ack().await.map_err(|e| anyhow::anyhow!("ack: {e}"))?;
    }
}
