//! One read of the log applied to several projection versions at once: each record is read
//! and decoded once, and each batch goes to every version concurrently (one transaction per
//! version, as in the serving projector).
//!
//! After a transient failure or a checkpoint that moved under it ([`BatchError::Stale`]: the
//! relaxed commits of a rebuild are lost when Postgres crashes), the read starts over from the
//! checkpoints as stored, never from the ones held in memory.

use super::progress::Progress;
use crate::shell::apply::Applier;
use crate::shell::batch::{Batch, BatchError};
use crate::shell::context::Context;
use crate::shell::intake::more;
use async_nats::jetstream::consumer;
use futures::StreamExt;
use std::time::Duration;

/// Applies the log to every applier until each checkpoint is at least `until` (appliers
/// already there are left alone). Reads from the lowest checkpoint + 1 with an ordered
/// consumer (ephemeral, no acks, recreated by the client on any gap). After a transient
/// failure or a stale checkpoint every applier's version is re-read from the database and the
/// read starts over from there.
///
/// # Errors
/// NATS failures, a version fenced by someone else (discarded or switched), a version halted
/// on a poison event under policy `stop`, or transient database failures past the policy's
/// limit in a row.
pub async fn run_to(
    ops: &Context,
    appliers: &mut [Applier],
    until: u64,
    mut progress: Option<&mut Progress>,
) -> anyhow::Result<()> {
    let limit = ops.policy.transient_limit.unwrap_or(u32::MAX);
    let mut failures = 0u32;
    let mut delays = platform::retry::PROJECTION.delays();
    loop {
        match read_to(ops, appliers, until, progress.as_deref_mut()).await {
            Ok(()) => return Ok(()),
            Err(Retry(e)) => {
                failures += 1;
                anyhow::ensure!(
                    failures < limit,
                    "giving up after {failures} failed attempts: {e:#}"
                );
                let wait = delays.next_delay();
                tracing::warn!(
                    error = format!("{e:#}"),
                    attempt = failures,
                    backoff_ms = wait.as_millis() as u64,
                    "re-reading the checkpoints and reading again"
                );
                tokio::time::sleep(wait).await;
                if let Err(e) = reload(ops, appliers).await {
                    tracing::warn!(error = %e, "re-reading the checkpoints failed");
                }
            }
            Err(Fatal(e)) => return Err(e),
        }
    }
}

/// How one read ended badly: start over from the stored checkpoints, or give up.
enum ReadError {
    Retry(anyhow::Error),
    Fatal(anyhow::Error),
}
use ReadError::{Fatal, Retry};

impl From<async_nats::Error> for ReadError {
    fn from(e: async_nats::Error) -> Self {
        Fatal(anyhow::anyhow!(e))
    }
}

/// Re-reads every applier's version (checkpoint, halt) as the database holds it.
async fn reload(ops: &Context, appliers: &mut [Applier]) -> anyhow::Result<()> {
    let client = ops.pool.get().await?;
    for a in appliers.iter_mut() {
        let v = crate::schema::get(&client, a.v.projection, a.v.version)
            .await?
            .ok_or_else(|| anyhow::anyhow!("{} v{} is gone", a.v.projection.name(), a.v.version))?;
        if v.last_seq != a.v.last_seq {
            tracing::warn!(
                projection = v.projection.name(),
                version = v.version,
                held = a.v.last_seq,
                stored = v.last_seq,
                "checkpoint re-read from the database differs from the one held"
            );
        }
        a.v = v;
    }
    Ok(())
}

/// One read of the log from the lowest checkpoint to `until`.
async fn read_to(
    ops: &Context,
    appliers: &mut [Applier],
    until: u64,
    mut progress: Option<&mut Progress>,
) -> Result<(), ReadError> {
    let Some(low) = appliers
        .iter()
        .map(|a| a.v.last_seq)
        .filter(|&s| s < until)
        .min()
    else {
        return Ok(());
    };
    let stream = ops
        .js
        .get_stream(&ops.stream)
        .await
        .map_err(|e| Retry(e.into()))?;
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: ops.filter.clone(),
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: low + 1,
            },
            ..Default::default()
        })
        .await
        .map_err(|e| Retry(e.into()))?;
    let messages = consumer.messages().await.map_err(|e| Retry(e.into()))?;
    let mut messages = std::pin::pin!(messages);
    let mut read_to = low;
    loop {
        let Some(first) = messages.next().await else {
            return Err(Retry(anyhow::anyhow!("log read ended early")));
        };
        // At most the records left up to `until`: lingering for more would wait on live
        // traffic beyond it (every record of the stream matches the filter, so there are at
        // most `until - read_to` of them).
        let want = usize::try_from(until.saturating_sub(read_to))
            .unwrap_or(usize::MAX)
            .clamp(1, ops.batch_size);
        let chunk = more(first, &mut messages, want, Some(Duration::from_millis(20))).await;
        let mut batch = Batch::with_capacity(chunk.len());
        let mut pending = 0;
        for item in chunk {
            let msg = item.map_err(|e| Retry(anyhow::anyhow!("log read: {e}")))?;
            let info = msg
                .info()
                .map_err(|e| Fatal(anyhow::anyhow!("message info: {e}")))?;
            let seq = info.stream_sequence;
            pending = info.pending;
            if seq > until {
                pending = 0;
                break;
            }
            read_to = seq;
            batch.push(seq, msg.subject.to_string(), msg.payload.clone());
        }
        // Nothing pending after the last record: sequences up to `until` that were not
        // delivered do not exist (deleted), so the checkpoint may pass them.
        let upto = match batch.last_seq() {
            Some(last) if pending > 0 => last.min(until),
            _ => until,
        };
        let batch = &batch;
        let results =
            futures::future::join_all(appliers.iter_mut().filter(|a| a.v.last_seq < upto).map(
                |a| async move {
                    let r = a.apply(&ops.pool, batch, upto).await;
                    (a.v.projection, a.v.version, r)
                },
            ))
            .await;
        let mut retry = None;
        for (p, version, r) in results {
            match r {
                Ok(c) if c.halted.is_some() => {
                    return Err(Fatal(anyhow::anyhow!(
                        "{} v{version} halted on poison event {} (policy stop): see \
                         `projector dlq list`, then `projector dlq retry|skip` and resume",
                        p.name(),
                        c.halted.unwrap_or_default()
                    )))
                }
                Ok(_) => {}
                Err(BatchError::Fenced {
                    version: what,
                    state,
                }) => {
                    return Err(Fatal(anyhow::anyhow!(
                        "{what} is no longer {state}: discarded or switched meanwhile"
                    )))
                }
                Err(e @ (BatchError::Stale { .. } | BatchError::Transient(_))) => {
                    retry = Some(anyhow::Error::new(e).context(format!("{} v{version}", p.name())));
                }
                Err(e) => {
                    return Err(Fatal(
                        anyhow::Error::new(e).context(format!("{} v{version}", p.name())),
                    ))
                }
            }
        }
        if let Some(e) = retry {
            return Err(Retry(e));
        }
        if let Some(p) = progress.as_deref_mut() {
            p.set(upto);
        }
        if upto >= until {
            return Ok(());
        }
    }
}
