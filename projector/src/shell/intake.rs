//! Reading batches off a consumer's message stream.

use futures::StreamExt as _;
use std::time::Duration;

/// Most records a batch's vector reserves up front (larger batches grow it).
const PREALLOCATE: usize = 4096;

/// After `first`, takes every record already delivered, up to `max` in all; with `linger`,
/// also waits up to that long for each further record until `max` (bulk reads, where a
/// fuller batch means fewer transactions and more coalescing, and latency does not matter).
///
/// `ready_chunks` would stop at tokio's cooperative budget (128 polls per task turn) with
/// thousands of records waiting, so an apparently empty stream gets one `yield_now` (which
/// renews the budget) before the batch is closed.
pub async fn more<S, T>(
    first: T,
    messages: &mut std::pin::Pin<&mut S>,
    max: usize,
    linger: Option<Duration>,
) -> Vec<T>
where
    S: futures::Stream<Item = T>,
{
    use futures::FutureExt;
    let mut batch = Vec::with_capacity(max.min(PREALLOCATE));
    batch.push(first);
    let mut yielded = false;
    while batch.len() < max {
        match messages.next().now_or_never() {
            Some(Some(item)) => {
                batch.push(item);
                yielded = false;
            }
            Some(None) => break,
            None if !yielded => {
                tokio::task::yield_now().await;
                yielded = true;
            }
            None => {
                let Some(linger) = linger else { break };
                // `next()` of these streams is cancel-safe: a timed-out wait loses nothing.
                match tokio::time::timeout(linger, messages.next()).await {
                    Ok(Some(item)) => {
                        batch.push(item);
                        yielded = false;
                    }
                    _ => break,
                }
            }
        }
    }
    batch
}
