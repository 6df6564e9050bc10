//! The registry: the tenancy log folded into memory (pure; no I/O).
//!
//! [`Registry::apply`] takes records in stream order; every instance of every service folds the
//! same log, so they agree once they have applied the same sequence. Reads answer the questions
//! of every request: which tenant a key belongs to, whether that tenant is suspended, whether a
//! user's token was revoked.

use crate::keys;
use events::tenancy::{ApiKeyRecord, TenancyEnvelope, TenancyEvent, TenantSettings};
use events::{TenantId, Uid};
use std::collections::{BTreeMap, HashMap};
use subtle::ConstantTimeEq;

/// A tenant as the registry holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// The id.
    pub id: TenantId,
    /// Display name.
    pub name: Option<String>,
    /// Settings (absent fields: the deployment's defaults).
    pub settings: TenantSettings,
    /// Every call is refused with 403 `TENANT_SUSPENDED`.
    pub suspended: bool,
    /// Creation time, ms since the Unix epoch.
    pub created_at: i64,
    /// Last change, ms since the Unix epoch.
    pub updated_at: i64,
    /// Stream sequence of the last record on the tenant's subject (for optimistic concurrency).
    pub subject_seq: u64,
}

/// An API key as the registry holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// Its tenant.
    pub tenant: TenantId,
    /// The logged record.
    pub record: ApiKeyRecord,
    /// The digest, decoded.
    digest: [u8; 32],
    /// Creation time, ms since the Unix epoch.
    pub created_at: i64,
    /// Revocation time, if revoked.
    pub revoked_at: Option<i64>,
}

/// What a presented key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyVerdict {
    /// A live key of this tenant.
    Valid(TenantId),
    /// Not a key this registry knows.
    Unknown,
    /// A known key that was revoked.
    Revoked,
    /// A known key past its `expires_at`.
    Expired,
}

/// The folded tenancy log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registry {
    tenants: BTreeMap<TenantId, Tenant>,
    keys: HashMap<String, Key>,
    revoked: HashMap<(TenantId, Uid), u64>,
    applied: u64,
}

impl Registry {
    /// The stream sequence of the last record applied (0 = none).
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Applies the record at stream sequence `seq`. Records at or below [`Registry::applied`]
    /// are ignored (a redelivery), as are records about a tenant that was never created (the
    /// command service never writes them; a hand-written one changes nothing).
    pub fn apply(&mut self, seq: u64, env: &TenancyEnvelope) {
        if seq <= self.applied {
            return;
        }
        self.applied = seq;
        let at = env.occurred_at;
        match &env.event {
            TenancyEvent::TenantCreated(e) => {
                if self.tenants.contains_key(&env.tenant) {
                    return;
                }
                self.tenants.insert(
                    env.tenant.clone(),
                    Tenant {
                        id: env.tenant.clone(),
                        name: e.name.clone(),
                        settings: e.settings.clone(),
                        suspended: false,
                        created_at: at,
                        updated_at: at,
                        subject_seq: seq,
                    },
                );
                self.add_key(&env.tenant, &e.key, at);
            }
            TenancyEvent::TenantUpdated(e) => {
                if let Some(t) = self.tenants.get_mut(&env.tenant) {
                    t.name = e.name.clone();
                    t.settings = e.settings.clone();
                    t.suspended = e.suspended;
                    t.updated_at = at;
                    t.subject_seq = seq;
                }
            }
            TenancyEvent::ApiKeyCreated(k) => {
                if let Some(t) = self.tenants.get_mut(&env.tenant) {
                    t.subject_seq = seq;
                    self.add_key(&env.tenant, k, at);
                }
            }
            TenancyEvent::ApiKeyRevoked(r) => {
                if let Some(t) = self.tenants.get_mut(&env.tenant) {
                    t.subject_seq = seq;
                }
                if let Some(k) = self
                    .keys
                    .get_mut(&r.key_id)
                    .filter(|k| k.tenant == env.tenant)
                {
                    k.revoked_at.get_or_insert(at);
                }
            }
            TenancyEvent::UserTokensRevoked(r) => {
                let before = self
                    .revoked
                    .entry((env.tenant.clone(), r.uid.clone()))
                    .or_default();
                *before = (*before).max(r.before_s);
            }
        }
    }

    fn add_key(&mut self, tenant: &TenantId, record: &ApiKeyRecord, at: i64) {
        let mut digest = [0u8; 32];
        if hex::decode_to_slice(&record.sha256, &mut digest).is_err() {
            tracing::warn!(key_id = %record.key_id, "a logged key has a malformed digest; it can never match");
        }
        self.keys.entry(record.key_id.clone()).or_insert(Key {
            tenant: tenant.clone(),
            record: record.clone(),
            digest,
            created_at: at,
            revoked_at: None,
        });
    }

    /// What `key` is at `now_ms`: looked up by its `key_id`, compared by digest in constant
    /// time.
    pub fn verify_key(&self, key: &str, now_ms: i64) -> KeyVerdict {
        let Some(found) = keys::key_id_of(key).and_then(|id| self.keys.get(id)) else {
            return KeyVerdict::Unknown;
        };
        if !bool::from(found.digest.ct_eq(&keys::digest(key))) {
            return KeyVerdict::Unknown;
        }
        if found.revoked_at.is_some() {
            KeyVerdict::Revoked
        } else if found.record.expires_at.is_some_and(|e| e <= now_ms) {
            KeyVerdict::Expired
        } else {
            KeyVerdict::Valid(found.tenant.clone())
        }
    }

    /// The tenant `id`, if it was created through the admin API.
    pub fn tenant(&self, id: &TenantId) -> Option<&Tenant> {
        self.tenants.get(id)
    }

    /// Whether `id` is suspended (a tenant known only by bootstrap keys never is).
    pub fn suspended(&self, id: &TenantId) -> bool {
        self.tenants.get(id).is_some_and(|t| t.suspended)
    }

    /// Up to `limit` tenants in id order, after `after`.
    pub fn tenants_after(&self, after: Option<&TenantId>, limit: usize) -> Vec<&Tenant> {
        use std::ops::Bound::{Excluded, Unbounded};
        let lower = after.map_or(Unbounded, Excluded);
        self.tenants
            .range((lower, Unbounded))
            .take(limit)
            .map(|(_, t)| t)
            .collect()
    }

    /// The keys of `tenant`, revoked ones included, oldest first.
    pub fn keys_of(&self, tenant: &TenantId) -> Vec<&Key> {
        let mut out: Vec<&Key> = self.keys.values().filter(|k| &k.tenant == tenant).collect();
        out.sort_by(|a, b| (a.created_at, &a.record.key_id).cmp(&(b.created_at, &b.record.key_id)));
        out
    }

    /// The key `key_id` of `tenant`.
    pub fn key(&self, tenant: &TenantId, key_id: &str) -> Option<&Key> {
        self.keys.get(key_id).filter(|k| &k.tenant == tenant)
    }

    /// Whether any tenant lists `origin` among its `allowed_origins`.
    pub fn lists_origin(&self, origin: &str) -> bool {
        self.tenants.values().any(|t| {
            t.settings
                .allowed_origins
                .as_ref()
                .is_some_and(|o| o.iter().any(|x| x == origin))
        })
    }

    /// The revocation time of `uid`'s tokens in `tenant`, seconds: tokens with `iat` at or
    /// before it are void.
    pub fn tokens_revoked_at(&self, tenant: &TenantId, uid: &Uid) -> Option<u64> {
        self.revoked.get(&(tenant.clone(), uid.clone())).copied()
    }
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod random_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use events::tenancy::{ApiKeyRevoked, TenantCreated, TenantUpdated, UserTokensRevoked};

    fn env(tenant: &str, at: i64, event: TenancyEvent) -> TenancyEnvelope {
        TenancyEnvelope {
            tenant: TenantId::parse(tenant).expect("tenant"),
            occurred_at: at,
            event,
        }
    }

    #[test]
    fn keys_live_until_revoked_or_expired_and_only_for_their_tenant() {
        let mut r = Registry::default();
        let first = keys::mint(None, None);
        let acme = TenantId::parse("acme").expect("id");
        r.apply(
            1,
            &env(
                "acme",
                10,
                TenancyEvent::TenantCreated(TenantCreated {
                    name: Some("Acme".into()),
                    settings: TenantSettings::default(),
                    key: first.record.clone(),
                }),
            ),
        );
        assert_eq!(
            r.verify_key(&first.key, 11),
            KeyVerdict::Valid(acme.clone())
        );
        // One character off is unknown, as is a key of the right shape but another secret.
        let mut wrong = first.key.clone();
        wrong.pop();
        wrong.push(if first.key.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(r.verify_key(&wrong, 11), KeyVerdict::Unknown);

        let expiring = keys::mint(Some("ci".into()), Some(100));
        r.apply(
            2,
            &env(
                "acme",
                20,
                TenancyEvent::ApiKeyCreated(expiring.record.clone()),
            ),
        );
        assert_eq!(
            r.verify_key(&expiring.key, 99),
            KeyVerdict::Valid(acme.clone())
        );
        assert_eq!(r.verify_key(&expiring.key, 100), KeyVerdict::Expired);

        r.apply(
            3,
            &env(
                "acme",
                30,
                TenancyEvent::ApiKeyRevoked(ApiKeyRevoked {
                    key_id: first.record.key_id.clone(),
                }),
            ),
        );
        assert_eq!(r.verify_key(&first.key, 31), KeyVerdict::Revoked);
        // A revocation logged for another tenant does not touch acme's key.
        let other = keys::mint(None, None);
        r.apply(
            4,
            &env(
                "acme",
                40,
                TenancyEvent::ApiKeyCreated(other.record.clone()),
            ),
        );
        r.apply(
            5,
            &env(
                "globex",
                50,
                TenancyEvent::ApiKeyRevoked(ApiKeyRevoked {
                    key_id: other.record.key_id.clone(),
                }),
            ),
        );
        assert_eq!(
            r.verify_key(&other.key, 51),
            KeyVerdict::Valid(acme.clone())
        );
        assert_eq!(r.tenant(&acme).map(|t| t.subject_seq), Some(4));
        assert_eq!(r.keys_of(&acme).len(), 3);
    }

    #[test]
    fn suspension_revocations_and_redeliveries() {
        let mut r = Registry::default();
        let acme = TenantId::parse("acme").expect("id");
        let uid = Uid::parse("u1").expect("uid");
        let created = env(
            "acme",
            1,
            TenancyEvent::TenantCreated(TenantCreated {
                name: None,
                settings: TenantSettings::default(),
                key: keys::mint(None, None).record,
            }),
        );
        r.apply(1, &created);
        assert!(!r.suspended(&acme));
        let suspend = env(
            "acme",
            2,
            TenancyEvent::TenantUpdated(TenantUpdated {
                name: None,
                settings: TenantSettings::default(),
                suspended: true,
            }),
        );
        r.apply(2, &suspend);
        assert!(r.suspended(&acme));
        // A redelivered creation does not reset the tenant.
        r.apply(2, &created);
        r.apply(1, &created);
        assert!(r.suspended(&acme));
        for (seq, before) in [(3, 100), (4, 50)] {
            r.apply(
                seq,
                &env(
                    "acme",
                    3,
                    TenancyEvent::UserTokensRevoked(UserTokensRevoked {
                        uid: uid.clone(),
                        before_s: before,
                    }),
                ),
            );
        }
        assert_eq!(r.tokens_revoked_at(&acme, &uid), Some(100));
        assert_eq!(r.applied(), 4);
        assert!(!r.suspended(&TenantId::parse("bootstrap").expect("id")));
    }
}
