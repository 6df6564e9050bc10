//! The projection loop: consume, decode, plan, write + checkpoint in one transaction, commit,
//! then ack.
//!
//! Start-up positions the projection's durable consumer (`proj_<name>`) at checkpoint + 1, so
//! the Postgres checkpoint, not the consumer's ack state, decides where work resumes. Records at
//! or below the checkpoint (redeliveries) are skipped. Any error rolls the transaction back,
//! backs off (100 ms doubling to 10 s) and restarts from the checkpoint. A record that cannot be
//! decoded or applied is parked in `parked_events` (policy: park and go on), counted in
//! `projector_parked_events_total`, and logged: never acked-and-forgotten.

use crate::core::{channels, conversations, messages, Projection, Record};
use crate::shell::{checkpoint, writer};
use crate::Config;
use async_nats::jetstream::{self, consumer};
use deadpool_postgres::Transaction;
use futures::StreamExt;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// What a runner needs, shared by all projections of one process.
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
    /// Most events per transaction.
    pub batch_size: usize,
}

/// A raw log record that could not be applied.
struct Parked {
    seq: u64,
    subject: String,
    error: String,
    body: Vec<u8>,
}

const PARK: &str = "INSERT INTO parked_events (projection, event_seq, subject, error, body) \
                    VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";

/// Runs every configured projection until `shutdown` resolves; migrations are applied first.
///
/// # Errors
/// Start-up failures (migrations, NATS connection, stream creation). Errors inside a projection
/// are retried with backoff, not returned.
pub async fn run(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    crate::migrate::run(&config.common.database_url).await?;
    let (_client, js) =
        platform::log::connect(&config.common.nats_url, "parley-projector", 10_000).await?;
    platform::log::ensure_stream(&js, &config.common.stream, &config.common.subject_root).await?;
    let ctx = Context {
        js,
        pool: platform::db::pool(&config.common.database_url, config.projections.len() + 2)?,
        stream: config.common.stream.clone(),
        filter: format!("{}.>", config.common.subject_root),
        batch_size: config.batch_size,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = JoinSet::new();
    for p in config.projections.iter().copied() {
        let ctx = ctx.clone();
        let stop = stop_rx.clone();
        tasks.spawn(async move {
            run_projection(p, ctx, stop).await;
            p
        });
    }
    shutdown.await;
    let _ = stop_tx.send(true);
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(p) => tracing::info!(projection = p.name(), "projection stopped"),
            Err(e) => tracing::error!(error = %e, "projection task failed"),
        }
    }
    Ok(())
}

/// Runs one projection until `stop` turns true, restarting from its checkpoint after errors.
pub async fn run_projection(
    p: Projection,
    ctx: Context,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let result = tokio::select! {
            r = consume(p, &ctx) => r,
            _ = stop.wait_for(|s| *s) => return,
        };
        match result {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => {
                tracing::warn!(projection = p.name(), error = %e, backoff_ms = backoff.as_millis() as u64, "projection error; restarting from checkpoint");
                metrics::counter!("projector_restarts_total", "projection" => p.name())
                    .increment(1);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
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

async fn consume(p: Projection, ctx: &Context) -> anyhow::Result<()> {
    let mut checkpoint = {
        let client = ctx.pool.get().await?;
        checkpoint::load(&client, p.name()).await?
    };
    let consumer = position_consumer(p, ctx, checkpoint + 1).await?;
    let messages = consumer
        .stream()
        .max_messages_per_batch(ctx.batch_size)
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(30))
        .messages()
        .await?;
    let mut messages = std::pin::pin!(messages);
    tracing::info!(projection = p.name(), checkpoint, "projection consuming");
    metrics::gauge!("projector_checkpoint", "projection" => p.name()).set(checkpoint as f64);
    while let Some(chunk) = next_batch(&mut messages, ctx.batch_size).await {
        let started = Instant::now();
        let mut records = Vec::with_capacity(chunk.len());
        let mut parked = Vec::new();
        let mut last: Option<jetstream::Message> = None;
        let mut pending = 0u64;
        for item in chunk {
            let msg = item?;
            let info = msg
                .info()
                .map_err(|e| anyhow::anyhow!("message info: {e}"))?;
            let seq = info.stream_sequence;
            pending = info.pending;
            if seq <= checkpoint {
                last = Some(msg);
                continue;
            }
            match events::decode(&msg.payload) {
                Ok(envelope) => records.push(Record { seq, envelope }),
                Err(e) => parked.push(Parked {
                    seq,
                    subject: msg.subject.to_string(),
                    error: e.to_string(),
                    body: msg.payload.to_vec(),
                }),
            }
            last = Some(msg);
        }
        let Some(last) = last else { continue };
        let last_seq = last
            .info()
            .map_err(|e| anyhow::anyhow!("message info: {e}"))?
            .stream_sequence;
        if last_seq > checkpoint {
            let applied = records.len();
            let mut client = ctx.pool.get().await?;
            let tx = client.transaction().await?;
            apply(p, &tx, &records, &mut parked).await?;
            for pk in &parked {
                tracing::error!(projection = p.name(), event.seq = pk.seq, error = %pk.error, "event parked");
                tx.execute(
                    PARK,
                    &[
                        &p.name(),
                        &(pk.seq as i64),
                        &pk.subject,
                        &pk.error,
                        &pk.body,
                    ],
                )
                .await?;
            }
            checkpoint::save(&tx, p.name(), last_seq).await?;
            tx.commit().await?;
            checkpoint = last_seq;
            metrics::counter!("projector_events_applied_total", "projection" => p.name())
                .increment(applied as u64);
            metrics::counter!("projector_parked_events_total", "projection" => p.name())
                .increment(parked.len() as u64);
            metrics::histogram!("projector_batch_duration_seconds", "projection" => p.name())
                .record(started.elapsed().as_secs_f64());
            tracing::debug!(
                projection = p.name(),
                event.seq = last_seq,
                batch.events = applied,
                batch.ms = started.elapsed().as_millis() as u64,
                "batch committed"
            );
            metrics::gauge!("projector_checkpoint", "projection" => p.name())
                .set(checkpoint as f64);
        }
        // AckPolicy::All: acking the batch's last record acks all before it.
        last.ack().await.map_err(|e| anyhow::anyhow!("ack: {e}"))?;
        metrics::gauge!("projector_lag_events", "projection" => p.name()).set(pending as f64);
    }
    anyhow::bail!("consumer stream ended")
}

/// Waits for one record, then takes every record already delivered, up to `max`.
///
/// `ready_chunks` would stop at tokio's cooperative budget (128 polls per task turn) with
/// thousands of records waiting, so an apparently empty stream gets one `yield_now` (which
/// renews the budget) before the batch is closed.
async fn next_batch<S, T>(messages: &mut std::pin::Pin<&mut S>, max: usize) -> Option<Vec<T>>
where
    S: futures::Stream<Item = T>,
{
    use futures::FutureExt;
    let mut batch = vec![messages.next().await?];
    let mut yielded = false;
    while batch.len() < max {
        match messages.next().now_or_never() {
            Some(Some(item)) => {
                batch.push(item);
                yielded = false;
            }
            Some(None) => break,
            None if yielded => break,
            None => {
                tokio::task::yield_now().await;
                yielded = true;
            }
        }
    }
    Some(batch)
}

/// Plans and writes one batch of `p` inside `tx`; records the pure core rejects join `parked`.
async fn apply(
    p: Projection,
    tx: &Transaction<'_>,
    records: &[Record],
    parked: &mut Vec<Parked>,
) -> Result<(), tokio_postgres::Error> {
    match p {
        Projection::Messages => {
            let (rows, rejected) = messages::plan(records);
            for r in rejected {
                parked.push(Parked {
                    seq: r.seq,
                    subject: String::new(),
                    error: r.reason,
                    body: Vec::new(),
                });
            }
            writer::insert_messages(tx, &rows).await
        }
        Projection::Channels => writer::apply_channels(tx, &channels::plan(records)).await,
        Projection::Conversations => {
            writer::apply_conversations(tx, &conversations::plan(records)).await
        }
    }
}
