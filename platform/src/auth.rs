//! API keys: `Authorization: Bearer <key>` resolves to a tenant.
//!
//! Keys come from `PARLEY_API_KEYS` as `key=tenant` pairs separated by commas. Lookups compare
//! SHA-256 digests, so a key is never kept or compared as plain text after start-up.

use events::TenantId;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The configured keys.
#[derive(Debug, Clone, Default)]
pub struct ApiKeys {
    by_digest: HashMap<[u8; 32], TenantId>,
}

/// `PARLEY_API_KEYS` is malformed.
#[derive(Debug, thiserror::Error)]
#[error("PARLEY_API_KEYS entry {index}: {reason}")]
pub struct ApiKeysError {
    index: usize,
    reason: String,
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

impl ApiKeys {
    /// Parses `key=tenant,key2=tenant2`; blank entries are ignored.
    ///
    /// # Errors
    /// [`ApiKeysError`] for an entry without `=`, a key shorter than 16 bytes, or an invalid
    /// tenant id.
    pub fn parse(spec: &str) -> Result<Self, ApiKeysError> {
        let mut by_digest = HashMap::new();
        for (index, entry) in spec.split(',').map(str::trim).enumerate() {
            if entry.is_empty() {
                continue;
            }
            let (key, tenant) = entry.split_once('=').ok_or_else(|| ApiKeysError {
                index,
                reason: "expected key=tenant".into(),
            })?;
            if key.len() < 16 {
                return Err(ApiKeysError {
                    index,
                    reason: "key must be at least 16 bytes".into(),
                });
            }
            let tenant = TenantId::parse(tenant).map_err(|e| ApiKeysError {
                index,
                reason: format!("tenant {e}"),
            })?;
            by_digest.insert(digest(key), tenant);
        }
        Ok(Self { by_digest })
    }

    /// [`ApiKeys::parse`] for a service start-up: also warns when no key is configured.
    ///
    /// # Errors
    /// As [`ApiKeys::parse`].
    pub fn load(spec: &str) -> Result<Self, ApiKeysError> {
        let keys = Self::parse(spec)?;
        if keys.is_empty() {
            tracing::warn!("PARLEY_API_KEYS is empty: every API request will be 401");
        }
        Ok(keys)
    }

    /// The tenant of `key`, if it is configured.
    pub fn tenant(&self, key: &str) -> Option<TenantId> {
        self.by_digest.get(&digest(key)).cloned()
    }

    /// Whether no key is configured (every request will be 401).
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_resolves() {
        let keys = ApiKeys::parse("aaaaaaaaaaaaaaaa=acme, bbbbbbbbbbbbbbbb=globex").unwrap();
        assert_eq!(keys.tenant("aaaaaaaaaaaaaaaa").unwrap().as_str(), "acme");
        assert_eq!(keys.tenant("bbbbbbbbbbbbbbbb").unwrap().as_str(), "globex");
        assert!(keys.tenant("cccccccccccccccc").is_none());
        assert!(ApiKeys::parse("short=acme").is_err());
        assert!(ApiKeys::parse("aaaaaaaaaaaaaaaa").is_err());
        assert!(ApiKeys::parse("aaaaaaaaaaaaaaaa=bad tenant").is_err());
    }
}

/// The poem-openapi security scheme of every REST endpoint: `Authorization: Bearer <api key>`,
/// resolved to its tenant. Inject the [`ApiKeys`] with `poem::EndpointExt::data(keys)`.
/// A missing or unknown key fails extraction, which renders as 401 `UNAUTHORIZED`.
#[derive(poem_openapi::SecurityScheme)]
#[oai(ty = "bearer", checker = "tenant_of_bearer")]
pub struct TenantAuth(pub TenantId);

async fn tenant_of_bearer(
    req: &poem::Request,
    bearer: poem_openapi::auth::Bearer,
) -> Option<TenantId> {
    req.data::<ApiKeys>()?.tenant(&bearer.token)
}
