//! One read of the log applied to several projection versions at once: each record is read
//! and decoded once, and each batch goes to every version concurrently (one transaction per
//! version, as in the serving projector).

use super::progress::Progress;
use crate::shell::apply::Applier;
use crate::shell::batch::{Batch, BatchError};
use crate::shell::runner::more;
use crate::shell::runner::Context;
use async_nats::jetstream::consumer;
use futures::StreamExt;
use std::time::Duration;

/// Applies the log to every applier until each checkpoint is at least `until` (appliers
/// already there are left alone). Reads from the lowest checkpoint + 1 with an ordered
/// consumer (ephemeral, no acks, recreated by the client on any gap).
///
/// # Errors
/// NATS failures, a version fenced by someone else (discarded or switched), a version halted
/// on a poison event under policy `stop`, or transient database failures past the limit.
pub async fn run_to(
    ops: &Context,
    appliers: &mut [Applier],
    until: u64,
    mut progress: Option<&mut Progress>,
) -> anyhow::Result<()> {
    let Some(low) = appliers
        .iter()
        .map(|a| a.v.last_seq)
        .filter(|&s| s < until)
        .min()
    else {
        return Ok(());
    };
    let stream = ops.js.get_stream(&ops.stream).await?;
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: ops.filter.clone(),
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: low + 1,
            },
            ..Default::default()
        })
        .await?;
    let messages = consumer.messages().await?;
    let mut messages = std::pin::pin!(messages);
    let mut read_to = low;
    loop {
        let Some(first) = messages.next().await else {
            anyhow::bail!("log read ended early")
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
            let msg = item.map_err(|e| anyhow::anyhow!("log read: {e}"))?;
            let info = msg
                .info()
                .map_err(|e| anyhow::anyhow!("message info: {e}"))?;
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
        for (p, version, r) in results {
            match r {
                Ok(c) if c.halted.is_some() => anyhow::bail!(
                    "{} v{version} halted on poison event {} (policy stop): see \
                     `projector dlq list`, then `projector dlq retry|skip` and resume",
                    p.name(),
                    c.halted.unwrap_or_default()
                ),
                Ok(_) => {}
                Err(BatchError::Fenced(what, state)) => {
                    anyhow::bail!("{what} is no longer {state}: discarded or switched meanwhile")
                }
                Err(e) => anyhow::bail!("{} v{version}: {e}", p.name()),
            }
        }
        if let Some(p) = progress.as_deref_mut() {
            p.set(upto);
        }
        if upto >= until {
            return Ok(());
        }
    }
}
