//! How many instances of a service are alive ([`Share`]), for splitting a deployment-wide rate
//! budget ([`crate::ratelimit`], which reads it).
//!
//! Each instance puts `<service>.<instance id>` into the key-value bucket `<root>_instances`
//! (memory storage, entries expire after [`TTL`]) every [`BEAT`], and counts the live keys of
//! its service as often. An instance that dies stops counting within [`TTL`]; one that starts
//! is counted within a [`BEAT`]. While NATS is unreachable the last count stays.

use async_nats::jetstream::{self, kv};
use futures::StreamExt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The live number of instances of this service (at least 1).
#[derive(Debug)]
pub struct Share(AtomicU32);

impl Default for Share {
    fn default() -> Self {
        Self(AtomicU32::new(1))
    }
}

impl Share {
    /// Instances now.
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed).max(1)
    }

    /// Records `n` live instances.
    pub fn set(&self, n: u32) {
        self.0.store(n.max(1), Ordering::Relaxed);
    }
}

/// How often an instance announces itself and counts the others.
pub const BEAT: Duration = Duration::from_secs(1);
/// How long an announcement lives.
pub const TTL: Duration = Duration::from_secs(3);

/// The bucket of `root`: `<root>_instances`.
pub fn bucket(root: &str) -> String {
    format!("{root}_instances")
}

async fn open(js: &jetstream::Context, bucket: &str) -> anyhow::Result<kv::Store> {
    if let Ok(s) = js.get_key_value(bucket).await {
        return Ok(s);
    }
    match js
        .create_key_value(kv::Config {
            bucket: bucket.to_owned(),
            history: 1,
            max_age: TTL,
            storage: jetstream::stream::StorageType::Memory,
            ..Default::default()
        })
        .await
    {
        Ok(s) => Ok(s),
        // Another instance created it first.
        Err(_) => Ok(js.get_key_value(bucket).await?),
    }
}

async fn beat(store: &kv::Store, service: &str, key: &str) -> anyhow::Result<u32> {
    store.put(key, bytes::Bytes::from_static(b"1")).await?;
    let prefix = format!("{service}.");
    let mut keys = store.keys().await?;
    let mut n = 0u32;
    while let Some(k) = keys.next().await {
        if k?.starts_with(&prefix) {
            n += 1;
        }
    }
    Ok(n.max(1))
}

/// Announces this instance of `service` and keeps `share` at the live count until `stop`.
pub async fn run(
    js: jetstream::Context,
    root: String,
    service: &'static str,
    share: Arc<Share>,
    stop: impl std::future::Future<Output = ()>,
) {
    let key = format!("{service}.{}", uuid::Uuid::now_v7().simple());
    let bucket = bucket(&root);
    let mut store = None;
    let mut tick = tokio::time::interval(BEAT);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = tick.tick() => {}
        }
        if store.is_none() {
            match open(&js, &bucket).await {
                Ok(s) => store = Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "instance bucket unavailable; keeping the last count");
                    continue;
                }
            }
        }
        if let Some(s) = &store {
            match beat(s, service, &key).await {
                Ok(n) => {
                    if n != share.get() {
                        tracing::info!(service, instances = n, "live instances changed");
                    }
                    share.set(n);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "instance heartbeat failed; keeping the last count")
                }
            }
        }
    }
    if let Some(s) = store {
        let _ = s.delete(&key).await;
    }
}
