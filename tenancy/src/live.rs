//! [`Live`]: the registry of one service instance, kept current from the tenancy stream.
//!
//! At start the instance creates the tenancy stream if it is missing, replays it from the first
//! record with an ordered consumer and does not serve until it has applied everything up to
//! the stream's last sequence as it was then. From there on the same consumer delivers each new
//! record as it is appended (push-like pull, a few milliseconds), so a created, revoked or
//! suspended key or tenant takes effect on every instance well within a second. If NATS goes
//! away the consumer is recreated from the last applied sequence (ordered consumers resume by
//! themselves; a consumer that ends is replaced, backing off by `platform::retry::RECONNECT`);
//! meanwhile the instance keeps answering from what it last knew.

use crate::registry::{KeyVerdict, Registry};
use async_nats::jetstream::{self, consumer, stream};
use events::subject::Subjects;
use events::tenancy::{self as wire, TenancyEnvelope};
use events::{TenantId, Uid};
use futures::StreamExt;
use platform::live::{KeyRefusal, LiveTenancy, RateSettings, TenantLimits};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// How long a start waits for the replay of the tenancy log.
pub const REPLAY_TIMEOUT: Duration = Duration::from_secs(30);

/// The name of the tenancy stream beside the event stream `stream`: `<stream>_TENANCY`.
pub fn stream_name(stream: &str) -> String {
    format!("{stream}_TENANCY")
}

/// A user's tokens were revoked: sessions of `uid` in `tenant` opened with a token issued at or
/// before `before_s` must close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// The tenant.
    pub tenant: TenantId,
    /// The user.
    pub uid: Uid,
    /// Tokens with `iat` at or before this (seconds) are void.
    pub before_s: u64,
}

/// One instance's live registry.
#[derive(Debug)]
pub struct Live {
    state: RwLock<Registry>,
    applied: watch::Sender<u64>,
    revocations: broadcast::Sender<Revocation>,
    /// The stream's last sequence at start: [`Live::replayed`] waits for it.
    head: u64,
    /// Key uses not yet written to the usage bucket ([`crate::usage`]).
    usage: Arc<crate::usage::Usage>,
    /// The usage bucket, opened on first read.
    usage_store: tokio::sync::OnceCell<jetstream::kv::Store>,
    js: jetstream::Context,
    root: String,
}

/// Creates the tenancy stream if missing (idempotent): file storage, limits retention without
/// limits (it is a log of record), subjects `<root>_tenancy.>`.
///
/// # Errors
/// JetStream refuses the stream.
pub async fn ensure_stream(
    js: &jetstream::Context,
    name: &str,
    subjects: &Subjects,
) -> anyhow::Result<stream::Stream> {
    if let Ok(s) = js.get_stream(name).await {
        return Ok(s);
    }
    Ok(js
        .get_or_create_stream(stream::Config {
            name: name.to_owned(),
            subjects: vec![subjects.tenancy_all()],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            allow_direct: true,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await?)
}

impl Live {
    /// Starts the registry on the tenancy stream `stream` (created if missing): returns it and
    /// the future that replays the log and keeps the registry current until `stop` (spawn it on
    /// the service's tasks), then await [`Live::replayed`] before serving.
    ///
    /// # Errors
    /// The stream cannot be created or read.
    pub async fn start(
        js: jetstream::Context,
        stream: String,
        subjects: Subjects,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<(
        Arc<Live>,
        impl std::future::Future<Output = ()> + Send + 'static,
    )> {
        let mut s = ensure_stream(&js, &stream, &subjects).await?;
        let head = s.info().await?.state.last_sequence;
        let live = Arc::new(Live {
            state: RwLock::new(Registry::default()),
            applied: watch::Sender::new(0),
            revocations: broadcast::Sender::new(1024),
            head,
            usage: Arc::default(),
            usage_store: tokio::sync::OnceCell::new(),
            js: js.clone(),
            root: subjects.root().to_owned(),
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let flush = crate::usage::flush_loop(
            live.usage.clone(),
            js.clone(),
            live.root.clone(),
            async move {
                let mut rx = stop_rx;
                let _ = rx.wait_for(|s| *s).await;
            },
        );
        let follow = live.clone().follow(js, stream, async move {
            stop.await;
            let _ = stop_tx.send(true);
        });
        Ok((live, async move {
            futures::future::join(follow, flush).await;
        }))
    }

    /// When every instance last saw `key_id` of `tenant` used (ms), as far as written to the
    /// usage bucket (at most [`crate::usage::FLUSH`] behind); `None` if never, or if the
    /// bucket cannot be read (logged).
    pub async fn last_used(&self, tenant: &TenantId, key_id: &str) -> Option<i64> {
        let store = self
            .usage_store
            .get_or_try_init(|| crate::usage::open(&self.js, &self.root))
            .await
            .map_err(|e| tracing::warn!(error = %e, "key usage bucket unavailable"))
            .ok()?;
        crate::usage::last_used(store, tenant, key_id)
            .await
            .map_err(|e| tracing::warn!(error = %e, "key usage not read"))
            .ok()
            .flatten()
    }

    /// Waits until everything logged before [`Live::start`] is applied.
    ///
    /// # Errors
    /// Not within [`REPLAY_TIMEOUT`].
    pub async fn replayed(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.wait_applied(self.head, REPLAY_TIMEOUT).await,
            "the tenancy log was not replayed within {} s (applied {} of {})",
            REPLAY_TIMEOUT.as_secs(),
            self.applied(),
            self.head
        );
        tracing::info!(records = self.head, "tenancy log replayed");
        Ok(())
    }

    /// Applies records until `stop`, recreating the consumer from the last applied sequence
    /// whenever it ends.
    async fn follow(
        self: Arc<Self>,
        js: jetstream::Context,
        stream: String,
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        let mut delays = platform::retry::RECONNECT.delays();
        loop {
            let from = self.applied() + 1;
            tokio::select! {
                r = self.consume(&js, &stream, from) => {
                    let wait = delays.next_delay();
                    match r {
                        Ok(()) => tracing::warn!("tenancy consumer ended; recreating"),
                        Err(e) => tracing::warn!(error = %platform::error::chain(e.as_ref()), retry_in_ms = wait.as_millis() as u64, "tenancy log unavailable; retrying"),
                    }
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = &mut stop => return,
                    }
                }
                () = &mut stop => return,
            }
        }
    }

    async fn consume(
        &self,
        js: &jetstream::Context,
        stream: &str,
        from: u64,
    ) -> anyhow::Result<()> {
        let s = js.get_stream(stream).await?;
        let consumer = s
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: from,
                },
                ..Default::default()
            })
            .await?;
        let mut messages = consumer.messages().await?;
        while let Some(m) = messages.next().await {
            let m = m?;
            let seq = m
                .info()
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .stream_sequence;
            match wire::decode(&m.payload) {
                Ok(env) => self.apply(seq, &env),
                Err(e) => {
                    // Skipping keeps every later record applicable; the record stays in the log.
                    metrics::counter!("tenancy_undecodable_records_total").increment(1);
                    tracing::error!(seq, error = %e, "undecodable tenancy record skipped");
                    self.skip(seq);
                }
            }
        }
        Ok(())
    }

    fn apply(&self, seq: u64, env: &TenancyEnvelope) {
        {
            let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
            state.apply(seq, env);
        }
        if let wire::TenancyEvent::UserTokensRevoked(r) = &env.event {
            let _ = self.revocations.send(Revocation {
                tenant: env.tenant.clone(),
                uid: r.uid.clone(),
                before_s: r.before_s,
            });
        }
        self.applied.send_replace(seq);
    }

    fn skip(&self, seq: u64) {
        self.applied.send_if_modified(|a| {
            let grew = seq > *a;
            *a = (*a).max(seq);
            grew
        });
    }

    /// The stream sequence of the last record applied.
    pub fn applied(&self) -> u64 {
        *self.applied.borrow()
    }

    /// Waits until the record at `seq` (e.g. one this instance just appended) is applied, for
    /// at most `timeout`; returns whether it was.
    pub async fn wait_applied(&self, seq: u64, timeout: Duration) -> bool {
        let mut rx = self.applied.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|&a| a >= seq))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Reads the registry.
    pub fn read<T>(&self, f: impl FnOnce(&Registry) -> T) -> T {
        f(&self.state.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Revocations as they are applied, for closing the sessions they void.
    pub fn revocations(&self) -> broadcast::Receiver<Revocation> {
        self.revocations.subscribe()
    }

    /// Changes as they are applied (the last applied sequence), for watching a tenant's
    /// suspension.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }
}

impl LiveTenancy for Live {
    fn tenant_of_key(&self, key: &str) -> Option<Result<TenantId, KeyRefusal>> {
        let key_id = crate::keys::key_id_of(key)?;
        let now = platform::now_ms();
        match self.read(|r| r.verify_key(key, now)) {
            KeyVerdict::Valid(t) => {
                self.usage.note(&t, key_id, now);
                Some(Ok(t))
            }
            KeyVerdict::Revoked => Some(Err(KeyRefusal::Revoked)),
            KeyVerdict::Expired => Some(Err(KeyRefusal::Expired)),
            KeyVerdict::Unknown => None,
        }
    }

    fn knows(&self, tenant: &TenantId) -> bool {
        self.read(|r| r.tenant(tenant).is_some())
    }

    fn suspended(&self, tenant: &TenantId) -> bool {
        self.read(|r| r.suspended(tenant))
    }

    fn tokens_revoked_at(&self, tenant: &TenantId, uid: &Uid) -> Option<u64> {
        self.read(|r| r.tokens_revoked_at(tenant, uid))
    }

    fn limits(&self, tenant: &TenantId) -> TenantLimits {
        self.read(|r| {
            r.tenant(tenant)
                .map(|t| TenantLimits {
                    max_payload_bytes: t.settings.max_payload_bytes,
                    max_group_members: t.settings.max_group_members,
                    token_ttl_min_s: t.settings.token_ttl_min_s,
                    token_ttl_max_s: t.settings.token_ttl_max_s,
                })
                .unwrap_or_default()
        })
    }

    fn allowed_origins(&self, tenant: &TenantId) -> Option<Vec<String>> {
        self.read(|r| {
            r.tenant(tenant)
                .and_then(|t| t.settings.allowed_origins.clone())
        })
    }

    fn lists_origin(&self, origin: &str) -> bool {
        self.read(|r| r.lists_origin(origin))
    }

    fn rate_settings(&self, tenant: &TenantId) -> RateSettings {
        self.read(|r| {
            r.tenant(tenant)
                .map(|t| RateSettings {
                    tenant_per_s: t.settings.rate_limit_per_s,
                    user_sends_per_s: t.settings.user_sends_per_s,
                    user_reads_per_s: t.settings.user_reads_per_s,
                })
                .unwrap_or_default()
        })
    }
}
