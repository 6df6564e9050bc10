//! Presence across instances, in the JetStream key-value bucket `<root>_presence`.
//!
//! Key `<tenant>.<uid>.<device_flag>.<instance>` (ids as base64url subject tokens) exists while
//! the user has at least one connection with that device flag on that instance. One writer
//! task per instance puts a key on the first such connection, deletes it on the last, and
//! re-puts its keys every [`REFRESH`]; the bucket's max age ([`MAX_AGE`]) with delete markers
//! makes a crashed instance's keys vanish (and be seen vanishing). Every instance watches the
//! whole bucket into an in-memory replica, which answers `GET /v1/users/online` and drives the
//! hub's `presence` frames.

use super::hub::{Hub, PresenceState};
use async_nats::jetstream::kv;
use events::subject::{token, untoken};
use events::{TenantId, Uid};
use futures::StreamExt;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a key outlives its last refresh.
pub const MAX_AGE: Duration = Duration::from_secs(60);
/// How often an instance re-puts its keys.
pub const REFRESH: Duration = Duration::from_secs(20);

type Replica = HashMap<TenantId, HashMap<Uid, HashMap<String, u8>>>;

enum Change {
    Up(TenantId, Uid, u8),
    Down(TenantId, Uid, u8),
}

/// This instance's presence: its writer and its replica of everyone's. Cheap to clone.
#[derive(Clone)]
pub struct Presence {
    writes: mpsc::UnboundedSender<Change>,
    replica: Arc<RwLock<Replica>>,
}

impl Presence {
    /// Opens (or creates) the bucket and starts the writer and the watcher on `tasks`; both
    /// run until `stop` resolves, when the writer deletes this instance's keys.
    ///
    /// # Errors
    /// JetStream refuses the bucket.
    pub async fn start(
        js: &async_nats::jetstream::Context,
        bucket: String,
        hub: Hub,
        tasks: &platform::shutdown::Tasks,
        stop: platform::shutdown::Shutdown,
    ) -> anyhow::Result<Self> {
        let store = match js.get_key_value(&bucket).await {
            Ok(s) => s,
            Err(_) => match js
                .create_key_value(kv::Config {
                    bucket: bucket.clone(),
                    history: 1,
                    max_age: MAX_AGE,
                    storage: async_nats::jetstream::stream::StorageType::Memory,
                    limit_markers: Some(MAX_AGE),
                    ..Default::default()
                })
                .await
            {
                Ok(s) => s,
                // Another instance created it in between.
                Err(_) => js.get_key_value(&bucket).await?,
            },
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let replica = Arc::new(RwLock::new(Replica::new()));
        let instance = uuid::Uuid::now_v7().simple().to_string();
        tasks.spawn(
            "presence writer",
            write_loop(store.clone(), instance, rx, stop.clone()),
        );
        tasks.spawn(
            "presence watcher",
            watch_loop(store, replica.clone(), hub, stop),
        );
        Ok(Self {
            writes: tx,
            replica,
        })
    }

    /// A connection of `uid` with `device_flag` opened on this instance.
    pub fn connected(&self, tenant: &TenantId, uid: &Uid, device_flag: u8) {
        let _ = self
            .writes
            .send(Change::Up(tenant.clone(), uid.clone(), device_flag));
    }

    /// A connection opened with [`Presence::connected`] closed.
    pub fn disconnected(&self, tenant: &TenantId, uid: &Uid, device_flag: u8) {
        let _ = self
            .writes
            .send(Change::Down(tenant.clone(), uid.clone(), device_flag));
    }

    /// The presence of each of `uids`, in order.
    pub fn online(&self, tenant: &TenantId, uids: &[Uid]) -> Vec<PresenceState> {
        let replica = self.replica.read().unwrap_or_else(|e| e.into_inner());
        let users = replica.get(tenant);
        uids.iter()
            .map(|u| PresenceState {
                tenant: tenant.clone(),
                uid: u.clone(),
                devices: users
                    .and_then(|m| m.get(u))
                    .map(devices)
                    .unwrap_or_default(),
            })
            .collect()
    }
}

fn devices(keys: &HashMap<String, u8>) -> Vec<u8> {
    keys.values()
        .copied()
        .collect::<BTreeSet<u8>>()
        .into_iter()
        .collect()
}

fn key(instance: &str, tenant: &TenantId, uid: &Uid, device: u8) -> String {
    format!(
        "{}.{}.{device}.{instance}",
        token(tenant.as_str()),
        token(uid.as_str())
    )
}

/// Parses a key into (tenant, uid, device flag, instance).
fn parse_key(k: &str) -> Option<(TenantId, Uid, u8, &str)> {
    let mut it = k.splitn(4, '.');
    let tenant = TenantId::parse(untoken(it.next()?)?).ok()?;
    let uid = Uid::parse(untoken(it.next()?)?).ok()?;
    let device = it.next()?.parse().ok()?;
    Some((tenant, uid, device, it.next()?))
}

async fn write_loop(
    store: kv::Store,
    instance: String,
    mut changes: mpsc::UnboundedReceiver<Change>,
    stop: platform::shutdown::Shutdown,
) {
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut refresh = tokio::time::interval(REFRESH);
    refresh.tick().await;
    let stopping = stop.wait();
    tokio::pin!(stopping);
    loop {
        tokio::select! {
            () = &mut stopping => break,
            Some(change) = changes.recv() => {
                let (k, up) = match &change {
                    Change::Up(t, u, d) => (key(&instance, t, u, *d), true),
                    Change::Down(t, u, d) => (key(&instance, t, u, *d), false),
                };
                let n = counts.entry(k.clone()).or_default();
                if up {
                    *n += 1;
                    if *n == 1 {
                        put(&store, &k).await;
                    }
                } else {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        counts.remove(&k);
                        if let Err(e) = store.delete(&k).await {
                            tracing::warn!(error = %e, "presence delete failed (the key will expire)");
                        }
                    }
                }
            }
            _ = refresh.tick() => {
                for k in counts.keys() {
                    put(&store, k).await;
                }
            }
        }
    }
    // Leave promptly (keys also expire on their own): at most 2 s, NATS down or not.
    let cleanup = async {
        for k in counts.keys() {
            let _ = store.delete(k).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(2), cleanup)
        .await
        .is_err()
    {
        tracing::warn!("presence keys not deleted at shutdown; they expire on their own");
    }
}

async fn put(store: &kv::Store, k: &str) {
    if let Err(e) = store.put(k, bytes::Bytes::from_static(b"1")).await {
        tracing::warn!(error = %e, "presence put failed");
    }
}

async fn watch_loop(
    store: kv::Store,
    replica: Arc<RwLock<Replica>>,
    hub: Hub,
    stop: platform::shutdown::Shutdown,
) {
    let stopping = stop.wait();
    tokio::pin!(stopping);
    loop {
        let mut watch = match store.watch_with_history(">").await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "presence watch failed; retrying");
                tokio::select! {
                    () = &mut stopping => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        loop {
            let entry = tokio::select! {
                () = &mut stopping => return,
                e = watch.next() => e,
            };
            match entry {
                Some(Ok(entry)) => apply(&replica, &hub, &entry),
                Some(Err(e)) => tracing::warn!(error = %e, "presence watch error"),
                None => break,
            }
        }
    }
}

fn apply(replica: &RwLock<Replica>, hub: &Hub, entry: &kv::Entry) {
    let Some((tenant, uid, device, instance)) = parse_key(&entry.key) else {
        return;
    };
    let suffix = format!("{device}.{instance}");
    let mut r = replica.write().unwrap_or_else(|e| e.into_inner());
    let keys = r
        .entry(tenant.clone())
        .or_default()
        .entry(uid.clone())
        .or_default();
    let before = devices(keys);
    match entry.operation {
        kv::Operation::Put => {
            keys.insert(suffix, device);
        }
        kv::Operation::Delete | kv::Operation::Purge => {
            keys.remove(&suffix);
        }
    }
    let after = devices(keys);
    if keys.is_empty() {
        if let Some(users) = r.get_mut(&tenant) {
            users.remove(&uid);
        }
    }
    drop(r);
    if before != after {
        hub.presence_changed(PresenceState {
            tenant,
            uid,
            devices: after,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_hostile_ids() {
        let t = TenantId::parse("a.b").unwrap();
        let u = Uid::parse("用户>*").unwrap();
        let k = key("inst1", &t, &u, 2);
        assert_eq!(k.split('.').count(), 4, "{k}");
        assert_eq!(parse_key(&k), Some((t, u, 2, "inst1")));
        assert_eq!(parse_key("x"), None);
    }
}
