//! When each live API key was last used (`last_used_at` of the admin API's key list), shared by
//! every instance of every service through the NATS key-value bucket `<root>_key_usage`
//! (file storage, one revision per entry; entry `<tenant token>.<key_id>`, value the time in
//! ms since the Unix epoch as decimal text).
//!
//! An instance notes each use in memory ([`Usage::note`]: one short mutex, at most one update
//! per key per second) and every [`FLUSH`] writes the keys used since to the bucket, keeping the
//! larger of its own and the stored time (compare-and-set on the entry's revision, so two
//! instances never move it back). `last_used_at` is therefore at most [`FLUSH`] behind. The
//! log of record is not written: a use is not an event of the tenancy log.

use async_nats::jetstream::{self, kv};
use events::TenantId;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// How often an instance writes the uses it noted.
pub const FLUSH: Duration = Duration::from_secs(5);

/// Uses closer together than this are noted once.
const GRAIN_MS: i64 = 1_000;

/// The bucket of `root`: `<root>_key_usage`.
pub fn bucket(root: &str) -> String {
    format!("{root}_key_usage")
}

fn entry(tenant: &TenantId, key_id: &str) -> String {
    entry_of(tenant.as_str(), key_id)
}

fn entry_of(tenant: &str, key_id: &str) -> String {
    format!("{}.{key_id}", events::subject::token(tenant))
}

/// A tenant's keys: key_id → (last use ms, written since).
type Keys = HashMap<String, (i64, bool)>;

/// One instance's uses not yet written.
#[derive(Debug, Default)]
pub struct Usage {
    /// tenant → key_id → (last use ms, written since); looked up by `&str`, so a use that
    /// changes nothing allocates nothing.
    seen: Mutex<HashMap<String, Keys>>,
}

impl Usage {
    /// Notes a use of `key_id` of `tenant` at `now` (ms).
    pub fn note(&self, tenant: &TenantId, key_id: &str, now: i64) {
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        if let Some(e) = seen
            .get_mut(tenant.as_str())
            .and_then(|k| k.get_mut(key_id))
        {
            if now - e.0 >= GRAIN_MS {
                *e = (now, false);
            }
            return;
        }
        seen.entry(tenant.as_str().to_owned())
            .or_default()
            .insert(key_id.to_owned(), (now, false));
    }

    /// The uses not written yet, marked written.
    fn unwritten(&self) -> Vec<(String, i64)> {
        let Ok(mut seen) = self.seen.lock() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (tenant, keys) in seen.iter_mut() {
            for (id, (at, written)) in keys.iter_mut().filter(|(_, (_, w))| !*w) {
                *written = true;
                out.push((entry_of(tenant, id), *at));
            }
        }
        out
    }

    /// Uses of the last flush that failed to be written are noted again.
    fn unwrite(&self, failed: &[(String, i64)]) {
        if let Ok(mut seen) = self.seen.lock() {
            for (tenant, keys) in seen.iter_mut() {
                for (id, (at, written)) in keys.iter_mut() {
                    if failed
                        .iter()
                        .any(|(e, t)| *t == *at && *e == entry_of(tenant, id))
                    {
                        *written = false;
                    }
                }
            }
        }
    }
}

/// Opens (or creates) the bucket.
///
/// # Errors
/// JetStream refuses it.
pub async fn open(js: &jetstream::Context, root: &str) -> anyhow::Result<kv::Store> {
    let name = bucket(root);
    if let Ok(s) = js.get_key_value(&name).await {
        return Ok(s);
    }
    match js
        .create_key_value(kv::Config {
            bucket: name.clone(),
            history: 1,
            storage: jetstream::stream::StorageType::File,
            ..Default::default()
        })
        .await
    {
        Ok(s) => Ok(s),
        // Another instance created it first.
        Err(_) => Ok(js.get_key_value(&name).await?),
    }
}

fn parse(v: &[u8]) -> Option<i64> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Raises `key`'s stored time to `at` unless it is later already.
async fn raise(store: &kv::Store, key: &str, at: i64) -> anyhow::Result<()> {
    let value = || bytes::Bytes::from(at.to_string());
    for _ in 0..8 {
        match store.entry(key).await? {
            Some(e) if e.operation == kv::Operation::Put => {
                if parse(&e.value).is_some_and(|stored| stored >= at) {
                    return Ok(());
                }
                if store.update(key, value(), e.revision).await.is_ok() {
                    return Ok(());
                }
            }
            _ => {
                if store.create(key, value()).await.is_ok() {
                    return Ok(());
                }
            }
        }
    }
    anyhow::bail!("the entry {key} kept changing")
}

/// Writes `usage` to the bucket every [`FLUSH`] until `stop`, and once more then.
pub async fn flush_loop(
    usage: std::sync::Arc<Usage>,
    js: jetstream::Context,
    root: String,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut store = None;
    let mut tick = tokio::time::interval(FLUSH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        let last = tokio::select! {
            () = &mut stop => true,
            _ = tick.tick() => false,
        };
        if store.is_none() {
            store = open(&js, &root)
                .await
                .map_err(|e| tracing::warn!(error = %e, "key usage bucket unavailable"))
                .ok();
        }
        if let Some(s) = &store {
            let mut failed = Vec::new();
            for (key, at) in usage.unwritten() {
                if let Err(e) = raise(s, &key, at).await {
                    tracing::debug!(error = %e, "key use not written; retrying at the next flush");
                    failed.push((key, at));
                }
            }
            usage.unwrite(&failed);
        }
        if last {
            break;
        }
    }
}

/// The last use of `key_id` of `tenant` every instance has written (ms), if any.
///
/// # Errors
/// The bucket cannot be read.
pub async fn last_used(
    store: &kv::Store,
    tenant: &TenantId,
    key_id: &str,
) -> anyhow::Result<Option<i64>> {
    Ok(store
        .get(entry(tenant, key_id))
        .await?
        .and_then(|v| parse(&v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_are_noted_once_per_second_and_written_once() {
        let u = Usage::default();
        let t = TenantId::parse("acme").unwrap();
        u.note(&t, "0123456789abcdef", 10_000);
        u.note(&t, "0123456789abcdef", 10_500);
        assert_eq!(u.unwritten(), vec![(entry(&t, "0123456789abcdef"), 10_000)]);
        assert!(u.unwritten().is_empty(), "written once");
        u.note(&t, "0123456789abcdef", 11_200);
        let again = u.unwritten();
        assert_eq!(again, vec![(entry(&t, "0123456789abcdef"), 11_200)]);
        u.unwrite(&again);
        assert_eq!(u.unwritten(), again, "a failed write is retried");
    }
}
