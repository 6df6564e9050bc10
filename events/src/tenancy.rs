//! The tenancy log: tenants, their API keys and user-token revocations, as versioned events.
//!
//! These events live in a stream of their own (the control plane, `<root>_tenancy.>`, see
//! [`crate::subject`]) beside the message log, so no read-model projector ever sees them and
//! every service instance can replay the whole of it at start into memory: it is small (one
//! record per tenant change, key change or revocation) and read on every request.
//!
//! Wire shape, as in the message log ([`crate::codec`]):
//! `{"type": "tenant_created", "v": 1, "tenant": "acme", "at": 1700000000000, "data": {…}}`.
//!
//! | type | versions | data |
//! |---|---|---|
//! | `tenant_created` | 1 | `{name?, settings, key}` — the tenant and its first API key, in one record |
//! | `tenant_updated` | 1 | `{name?, settings, suspended}` — the whole state after the change |
//! | `api_key_created` | 1 | an [`ApiKeyRecord`] |
//! | `api_key_revoked` | 1 | `{key_id}` |
//! | `user_tokens_revoked` | 1 | `{uid, before_s}` — tokens of `uid` with `iat ≤ before_s` are void |
//!
//! Secrets never enter the log: a key is recorded by its SHA-256 digest and its public prefix.

use crate::codec::{WireIn, WireOut};
use crate::ids::{TenantId, Uid};
use serde::{Deserialize, Serialize};

pub use crate::codec::DecodeError;

/// Most allowed browser origins per tenant.
pub const MAX_ORIGINS: usize = 50;
/// Largest configurable rate, per second.
pub const MAX_RATE: u32 = 1_000_000;
/// Largest configurable message payload: NATS's default `max_payload` (1 MiB).
pub const MAX_PAYLOAD_BYTES: u32 = 1_048_576;
/// Largest configurable group size.
pub const MAX_GROUP_MEMBERS: u32 = 100_000;
/// Bounds of a configurable token lifetime, seconds (1 minute to 30 days).
pub const TOKEN_TTL_BOUNDS_S: (u32, u32) = (60, 30 * 24 * 3600);
/// Longest configurable recall window, seconds (30 days).
pub const MAX_RECALL_WINDOW_S: u32 = 30 * 24 * 3600;

/// A tenant's settings. Every field is optional: absent means the deployment's default
/// (the services' configuration), so a default changed later applies to every tenant that
/// did not set its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantSettings {
    /// Requests per second for the tenant as a whole (all keys and users), per service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_s: Option<u32>,
    /// Sends per second per user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_sends_per_s: Option<u32>,
    /// Reads per second per user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_reads_per_s: Option<u32>,
    /// Largest decoded message payload, bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_payload_bytes: Option<u32>,
    /// Most members of one group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_group_members: Option<u32>,
    /// How long after sending an author may recall a message, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recall_window_s: Option<u32>,
    /// Shortest user-token lifetime a mint may ask for, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ttl_min_s: Option<u32>,
    /// Longest user-token lifetime a mint may ask for, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ttl_max_s: Option<u32>,
    /// Browser origins (`https://app.example.com`) allowed to open sockets and make CORS
    /// requests with the tenant's user tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_origins: Option<Vec<String>>,
}

/// A setting that breaks its rule: `field` is its path in the request (`settings.…`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SettingError {
    /// The field's path, e.g. `settings.rate_limit_per_s`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn range(field: &str, v: Option<u32>, lo: u32, hi: u32) -> Result<(), SettingError> {
    match v {
        Some(x) if !(lo..=hi).contains(&x) => Err(SettingError {
            field: format!("settings.{field}"),
            message: format!("must be between {lo} and {hi}"),
        }),
        _ => Ok(()),
    }
}

/// Whether `s` is a browser origin as RFC 6454 serializes one: `http` or `https`, a host,
/// an optional port, nothing else (no path, query, user info or trailing slash).
pub fn is_origin(s: &str) -> bool {
    let Some(rest) = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
    else {
        return false;
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, Some(p)),
        _ => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.parse::<u16>().is_ok());
    host_ok && port_ok && s == s.to_ascii_lowercase()
}

impl TenantSettings {
    /// The rules every settings value obeys before it is logged.
    ///
    /// # Errors
    /// [`SettingError`] naming the first field out of its range (rates 1–1,000,000/s, payload
    /// 1 B–1 MiB, group 2–100,000 members, token lifetimes 60 s–30 days with min ≤ max,
    /// recall window ≤ 30 days, at most 50 origins each serialized as RFC 6454 says).
    pub fn validate(&self) -> Result<(), SettingError> {
        range("rate_limit_per_s", self.rate_limit_per_s, 1, MAX_RATE)?;
        range("user_sends_per_s", self.user_sends_per_s, 1, MAX_RATE)?;
        range("user_reads_per_s", self.user_reads_per_s, 1, MAX_RATE)?;
        range(
            "max_payload_bytes",
            self.max_payload_bytes,
            1,
            MAX_PAYLOAD_BYTES,
        )?;
        range(
            "max_group_members",
            self.max_group_members,
            2,
            MAX_GROUP_MEMBERS,
        )?;
        range(
            "recall_window_s",
            self.recall_window_s,
            0,
            MAX_RECALL_WINDOW_S,
        )?;
        let (lo, hi) = TOKEN_TTL_BOUNDS_S;
        range("token_ttl_min_s", self.token_ttl_min_s, lo, hi)?;
        range("token_ttl_max_s", self.token_ttl_max_s, lo, hi)?;
        if let (Some(min), Some(max)) = (self.token_ttl_min_s, self.token_ttl_max_s) {
            if min > max {
                return Err(SettingError {
                    field: "settings.token_ttl_min_s".into(),
                    message: "must not exceed settings.token_ttl_max_s".into(),
                });
            }
        }
        if let Some(origins) = &self.allowed_origins {
            if origins.len() > MAX_ORIGINS {
                return Err(SettingError {
                    field: "settings.allowed_origins".into(),
                    message: format!("at most {MAX_ORIGINS} origins"),
                });
            }
            if let Some((i, bad)) = origins.iter().enumerate().find(|(_, o)| !is_origin(o)) {
                return Err(SettingError {
                    field: format!("settings.allowed_origins[{i}]"),
                    message: format!(
                        "{bad:?} is not an origin: scheme://host[:port] in lowercase, \
                         http or https, no path"
                    ),
                });
            }
        }
        Ok(())
    }

    /// `self` with every field `patch` sets replaced (a JSON merge of two settings objects).
    pub fn merged(&self, patch: &TenantSettings) -> TenantSettings {
        TenantSettings {
            rate_limit_per_s: patch.rate_limit_per_s.or(self.rate_limit_per_s),
            user_sends_per_s: patch.user_sends_per_s.or(self.user_sends_per_s),
            user_reads_per_s: patch.user_reads_per_s.or(self.user_reads_per_s),
            max_payload_bytes: patch.max_payload_bytes.or(self.max_payload_bytes),
            max_group_members: patch.max_group_members.or(self.max_group_members),
            recall_window_s: patch.recall_window_s.or(self.recall_window_s),
            token_ttl_min_s: patch.token_ttl_min_s.or(self.token_ttl_min_s),
            token_ttl_max_s: patch.token_ttl_max_s.or(self.token_ttl_max_s),
            allowed_origins: patch
                .allowed_origins
                .clone()
                .or_else(|| self.allowed_origins.clone()),
        }
    }
}

/// An API key as the log knows it: never the secret, only its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// The key's public id (16 lowercase hex digits), also inside the key itself.
    pub key_id: String,
    /// The operator's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The key's first characters (`pk_<key_id>`), to recognise it in lists.
    pub prefix: String,
    /// SHA-256 of the whole key, lowercase hex.
    pub sha256: String,
    /// When it stops working, ms since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// `tenant_created` v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantCreated {
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Settings.
    #[serde(default)]
    pub settings: TenantSettings,
    /// The first API key.
    pub key: ApiKeyRecord,
}

/// `tenant_updated` v1: the whole tenant state after a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantUpdated {
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Settings.
    #[serde(default)]
    pub settings: TenantSettings,
    /// Whether every call of the tenant is refused (403 `TENANT_SUSPENDED`).
    pub suspended: bool,
}

/// `api_key_revoked` v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRevoked {
    /// The key's id.
    pub key_id: String,
}

/// `user_tokens_revoked` v1: every token of `uid` with `iat ≤ before_s` is void.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserTokensRevoked {
    /// The user.
    pub uid: Uid,
    /// The revocation time, seconds since the Unix epoch (tokens carry `iat` in seconds).
    pub before_s: u64,
}

/// Every tenancy event, at its current version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenancyEvent {
    /// A tenant was provisioned with its first key.
    TenantCreated(TenantCreated),
    /// A tenant's name, settings or suspension changed.
    TenantUpdated(TenantUpdated),
    /// A key was added.
    ApiKeyCreated(ApiKeyRecord),
    /// A key was revoked.
    ApiKeyRevoked(ApiKeyRevoked),
    /// A user's tokens were revoked.
    UserTokensRevoked(UserTokensRevoked),
}

impl TenancyEvent {
    /// The type name as written.
    pub fn event_type(&self) -> &'static str {
        match self {
            TenancyEvent::TenantCreated(_) => "tenant_created",
            TenancyEvent::TenantUpdated(_) => "tenant_updated",
            TenancyEvent::ApiKeyCreated(_) => "api_key_created",
            TenancyEvent::ApiKeyRevoked(_) => "api_key_revoked",
            TenancyEvent::UserTokensRevoked(_) => "user_tokens_revoked",
        }
    }
}

/// One tenancy record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenancyEnvelope {
    /// The tenant.
    pub tenant: TenantId,
    /// When the command service decided it, ms since the Unix epoch.
    pub occurred_at: i64,
    /// What happened.
    pub event: TenancyEvent,
}

/// Encodes a tenancy record (JSON bytes).
///
/// # Errors
/// Serialization failures (none are known for these plain types).
pub fn encode(env: &TenancyEnvelope) -> Result<Vec<u8>, serde_json::Error> {
    fn out<T: Serialize>(env: &TenancyEnvelope, data: &T) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(&WireOut {
            event_type: env.event.event_type(),
            v: 1,
            tenant: &env.tenant,
            at: env.occurred_at,
            data,
        })
    }
    match &env.event {
        TenancyEvent::TenantCreated(e) => out(env, e),
        TenancyEvent::TenantUpdated(e) => out(env, e),
        TenancyEvent::ApiKeyCreated(e) => out(env, e),
        TenancyEvent::ApiKeyRevoked(e) => out(env, e),
        TenancyEvent::UserTokensRevoked(e) => out(env, e),
    }
}

/// Decodes a tenancy record.
///
/// # Errors
/// [`DecodeError`] for malformed JSON, an unknown `(type, v)` or data that does not fit.
pub fn decode(bytes: &[u8]) -> Result<TenancyEnvelope, DecodeError> {
    let wire: WireIn<'_> = serde_json::from_slice(bytes).map_err(DecodeError::Envelope)?;
    let data = wire.data.get();
    let err = |source| DecodeError::Data {
        event_type: wire.event_type.to_owned(),
        version: wire.v,
        source,
    };
    let event = match (wire.event_type, wire.v) {
        ("tenant_created", 1) => {
            TenancyEvent::TenantCreated(serde_json::from_str(data).map_err(err)?)
        }
        ("tenant_updated", 1) => {
            TenancyEvent::TenantUpdated(serde_json::from_str(data).map_err(err)?)
        }
        ("api_key_created", 1) => {
            TenancyEvent::ApiKeyCreated(serde_json::from_str(data).map_err(err)?)
        }
        ("api_key_revoked", 1) => {
            TenancyEvent::ApiKeyRevoked(serde_json::from_str(data).map_err(err)?)
        }
        ("user_tokens_revoked", 1) => {
            TenancyEvent::UserTokensRevoked(serde_json::from_str(data).map_err(err)?)
        }
        (t, v) => {
            return Err(DecodeError::Unknown {
                event_type: t.to_owned(),
                version: v,
            })
        }
    };
    Ok(TenancyEnvelope {
        tenant: wire.tenant,
        occurred_at: wire.at,
        event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_follow_rfc_6454_serialization() {
        for ok in [
            "https://app.example.com",
            "http://localhost:5173",
            "http://127.0.0.1:8080",
            "https://[::1]:443",
        ] {
            assert!(is_origin(ok), "{ok}");
        }
        for bad in [
            "app.example.com",
            "https://app.example.com/",
            "https://app.example.com/path",
            "ftp://x",
            "https://",
            "https://x:99999",
            "https://X.example.com",
            "https://a b",
            "null",
        ] {
            assert!(!is_origin(bad), "{bad}");
        }
    }

    #[test]
    fn settings_rules_name_the_field() {
        let bad = TenantSettings {
            user_sends_per_s: Some(0),
            ..Default::default()
        };
        assert_eq!(
            bad.validate().unwrap_err().field,
            "settings.user_sends_per_s"
        );
        let bad = TenantSettings {
            token_ttl_min_s: Some(7200),
            token_ttl_max_s: Some(3600),
            ..Default::default()
        };
        assert_eq!(
            bad.validate().unwrap_err().field,
            "settings.token_ttl_min_s"
        );
        let bad = TenantSettings {
            allowed_origins: Some(vec!["https://ok.example".into(), "nope".into()]),
            ..Default::default()
        };
        assert_eq!(
            bad.validate().unwrap_err().field,
            "settings.allowed_origins[1]"
        );
        let merged = TenantSettings {
            rate_limit_per_s: Some(5),
            ..Default::default()
        }
        .merged(&TenantSettings {
            user_reads_per_s: Some(9),
            ..Default::default()
        });
        assert_eq!(
            (merged.rate_limit_per_s, merged.user_reads_per_s),
            (Some(5), Some(9))
        );
        assert!(merged.validate().is_ok());
    }
}
