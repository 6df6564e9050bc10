//! The tenancy commands (admin API and token revocation): decide against this instance's live
//! registry, append to the tenancy stream with per-tenant optimistic concurrency, and answer
//! once the registry has applied the record (so the answer and the next call, on this
//! instance, see the write; other instances see it within milliseconds, see
//! [`tenancy::live`]).

use async_nats::jetstream::{self, context::PublishErrorKind};
use events::subject::Subjects;
use events::tenancy::{
    self as wire, ApiKeyRevoked, TenancyEnvelope, TenancyEvent, TenantCreated, TenantSettings,
    TenantUpdated, UserTokensRevoked,
};
use events::{TenantId, Uid};
use std::sync::Arc;
use std::time::Duration;
use tenancy::keys::Minted;
use tenancy::registry::{Key, Tenant};
use tenancy::Live;

/// How long an answer waits for this instance's registry to apply its own write.
const APPLY_WAIT: Duration = Duration::from_secs(2);
/// Attempts of an update that keeps losing the race for the tenant's subject.
const ATTEMPTS: usize = 8;

/// Why a tenancy command was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    /// The tenant id is taken.
    #[error("tenant {0} exists")]
    Exists(String),
    /// No such tenant (created through the admin API).
    #[error("no tenant {0}")]
    NoTenant(String),
    /// No such key of the tenant.
    #[error("no key {0}")]
    NoKey(String),
    /// A field breaks its rule.
    #[error("{field}: {message}")]
    Invalid {
        /// The field's path.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The tenancy log is unavailable or did not confirm in time; the outcome is unknown.
    #[error("tenancy log unavailable while {op}")]
    Log {
        /// What was being done.
        op: &'static str,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Other writers kept changing the tenant.
    #[error("the tenant kept changing")]
    Contention,
}

/// What a PATCH of a tenant changes (absent fields stay).
#[derive(Debug, Clone, Default)]
pub struct TenantPatch {
    /// A new display name.
    pub name: Option<String>,
    /// Settings to merge over the current ones.
    pub settings: Option<TenantSettings>,
    /// Suspend or resume.
    pub suspended: Option<bool>,
}

/// The tenancy command side.
#[derive(Clone)]
pub struct Tenancy {
    js: jetstream::Context,
    subjects: Subjects,
    live: Arc<Live>,
}

enum Appended {
    /// Appended and applied by this instance's registry.
    Done,
    /// The subject's last sequence was not the expected one.
    Conflict,
}

impl Tenancy {
    /// Commands over `js` (the tenancy stream must exist: [`tenancy::live::ensure_stream`]),
    /// deciding against `live`.
    pub fn new(js: jetstream::Context, subjects: Subjects, live: Arc<Live>) -> Self {
        Self { js, subjects, live }
    }

    /// The live registry.
    pub fn live(&self) -> &Arc<Live> {
        &self.live
    }

    async fn append(
        &self,
        subject: String,
        env: &TenancyEnvelope,
        expected: Option<u64>,
    ) -> Result<Appended, TenancyError> {
        let log = |op: &'static str| {
            move |e: Box<dyn std::error::Error + Send + Sync>| TenancyError::Log { op, source: e }
        };
        let body = wire::encode(env).map_err(|e| log("encoding")(e.into()))?;
        let mut publish = jetstream::message::PublishMessage::build().payload(body.into());
        if let Some(n) = expected {
            publish = publish.expected_last_subject_sequence(n);
        }
        let ack = self
            .js
            .send_publish(subject, publish)
            .await
            .map_err(|e| log("appending")(e.into()))?;
        let seq = match ack.await {
            Ok(ack) => ack.sequence,
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                return Ok(Appended::Conflict)
            }
            Err(e) => return Err(log("awaiting the append's acknowledgement")(e.into())),
        };
        metrics::counter!("command_svc_tenancy_events_total", "type" => env.event.event_type())
            .increment(1);
        if !self.live.wait_applied(seq, APPLY_WAIT).await {
            return Err(log("applying the record")(
                format!("record {seq} was not applied within {APPLY_WAIT:?}").into(),
            ));
        }
        Ok(Appended::Done)
    }

    fn tenant(&self, id: &TenantId) -> Result<Tenant, TenancyError> {
        self.live
            .read(|r| r.tenant(id).cloned())
            .ok_or_else(|| TenancyError::NoTenant(id.as_str().to_owned()))
    }

    /// Creates tenant `id` with its first key.
    ///
    /// # Errors
    /// [`TenancyError::Invalid`] for bad settings, [`TenancyError::Exists`], or the log.
    pub async fn create(
        &self,
        id: TenantId,
        name: Option<String>,
        settings: TenantSettings,
    ) -> Result<(Tenant, Key, Minted), TenancyError> {
        invalid(settings.validate())?;
        let minted = tenancy::keys::mint(None, None);
        let env = TenancyEnvelope {
            tenant: id.clone(),
            occurred_at: platform::now_ms(),
            event: TenancyEvent::TenantCreated(TenantCreated {
                name,
                settings,
                key: minted.record.clone(),
            }),
        };
        match self
            .append(self.subjects.tenancy(&id), &env, Some(0))
            .await?
        {
            Appended::Conflict => Err(TenancyError::Exists(id.as_str().to_owned())),
            Appended::Done => {
                let tenant = self.tenant(&id)?;
                let key = self.key(&id, &minted.record.key_id)?;
                Ok((tenant, key, minted))
            }
        }
    }

    /// Changes tenant `id`.
    ///
    /// # Errors
    /// [`TenancyError::NoTenant`], [`TenancyError::Invalid`], [`TenancyError::Contention`], or
    /// the log.
    pub async fn update(&self, id: &TenantId, patch: TenantPatch) -> Result<Tenant, TenancyError> {
        for attempt in 0..ATTEMPTS {
            let t = self.tenant(id)?;
            let settings = match &patch.settings {
                Some(p) => t.settings.merged(p),
                None => t.settings.clone(),
            };
            invalid(settings.validate())?;
            let env = TenancyEnvelope {
                tenant: id.clone(),
                occurred_at: platform::now_ms(),
                event: TenancyEvent::TenantUpdated(TenantUpdated {
                    name: patch.name.clone().or(t.name.clone()),
                    settings,
                    suspended: patch.suspended.unwrap_or(t.suspended),
                }),
            };
            match self
                .append(self.subjects.tenancy(id), &env, Some(t.subject_seq))
                .await?
            {
                Appended::Done => return self.tenant(id),
                Appended::Conflict => {
                    // Another instance wrote first: wait for its record, then decide again.
                    let next = self.live.applied() + 1;
                    self.live
                        .wait_applied(next, Duration::from_millis(50 << attempt.min(4)))
                        .await;
                }
            }
        }
        Err(TenancyError::Contention)
    }

    /// The key `key_id` of tenant `id`.
    ///
    /// # Errors
    /// [`TenancyError::NoKey`].
    pub fn key(&self, id: &TenantId, key_id: &str) -> Result<Key, TenancyError> {
        self.live
            .read(|r| r.key(id, key_id).cloned())
            .ok_or_else(|| TenancyError::NoKey(key_id.to_owned()))
    }

    /// Adds a key to tenant `id`.
    ///
    /// # Errors
    /// [`TenancyError::NoTenant`], [`TenancyError::Invalid`] for an `expires_at` in the past,
    /// or the log.
    pub async fn create_key(
        &self,
        id: &TenantId,
        label: Option<String>,
        expires_at: Option<i64>,
    ) -> Result<(Key, Minted), TenancyError> {
        self.tenant(id)?;
        if let Some(e) = expires_at.filter(|&e| e <= platform::now_ms()) {
            return Err(TenancyError::Invalid {
                field: "expires_at".into(),
                message: format!("{e} is not in the future (ms since the Unix epoch)"),
            });
        }
        let minted = tenancy::keys::mint(label, expires_at);
        let env = TenancyEnvelope {
            tenant: id.clone(),
            occurred_at: platform::now_ms(),
            event: TenancyEvent::ApiKeyCreated(minted.record.clone()),
        };
        self.append(self.subjects.tenancy(id), &env, None).await?;
        Ok((self.key(id, &minted.record.key_id)?, minted))
    }

    /// Revokes key `key_id` of tenant `id` (a revoked key stays revoked; revoking it again
    /// changes nothing).
    ///
    /// # Errors
    /// [`TenancyError::NoTenant`], [`TenancyError::NoKey`], or the log.
    pub async fn revoke_key(&self, id: &TenantId, key_id: &str) -> Result<Key, TenancyError> {
        self.tenant(id)?;
        let key = self.key(id, key_id)?;
        if key.revoked_at.is_some() {
            return Ok(key);
        }
        let env = TenancyEnvelope {
            tenant: id.clone(),
            occurred_at: platform::now_ms(),
            event: TenancyEvent::ApiKeyRevoked(ApiKeyRevoked {
                key_id: key_id.to_owned(),
            }),
        };
        self.append(self.subjects.tenancy(id), &env, None).await?;
        self.key(id, key_id)
    }

    /// Voids every token of `uid` in `tenant` issued up to now; returns the revocation time,
    /// seconds since the Unix epoch.
    ///
    /// # Errors
    /// The log.
    pub async fn revoke_tokens(&self, tenant: &TenantId, uid: &Uid) -> Result<u64, TenancyError> {
        let before_s = u64::try_from(platform::now_ms() / 1000).unwrap_or(0);
        let env = TenancyEnvelope {
            tenant: tenant.clone(),
            occurred_at: platform::now_ms(),
            event: TenancyEvent::UserTokensRevoked(UserTokensRevoked {
                uid: uid.clone(),
                before_s,
            }),
        };
        self.append(self.subjects.tenancy_users(tenant), &env, None)
            .await?;
        Ok(before_s)
    }
}

fn invalid(r: Result<(), wire::SettingError>) -> Result<(), TenancyError> {
    r.map_err(|e| TenancyError::Invalid {
        field: e.field,
        message: e.message,
    })
}
