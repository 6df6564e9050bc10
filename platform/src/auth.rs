//! API keys: `Authorization: Bearer <key>` resolves to a tenant.
//!
//! Keys come from two places:
//! - **bootstrap keys**, `PARLEY_API_KEYS` as `key=tenant` pairs separated by commas, looked up
//!   by SHA-256 digest, so a key is never kept or compared as plain text after start-up;
//! - **live keys** minted by the admin API (`pk_…`), answered by a [`LiveTenancy`]
//!   ([`ApiKeys::with_live`]): revoked or expired ones are refused by name, and every call of a
//!   suspended tenant, with either kind of key or a user token, is 403 `TENANT_SUSPENDED`.

use crate::error::ApiError;
use crate::live::{KeyRefusal, LiveTenancy};
use crate::ratelimit::{Limiter, Slot};
use crate::token::{TokenError, UserClaims, UserTokens};
use events::{TenantId, Uid};
use poem::IntoResponse as _;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

/// The configured keys.
#[derive(Debug, Clone, Default)]
pub struct ApiKeys {
    by_digest: HashMap<[u8; 32], TenantId>,
    live: Option<Arc<dyn LiveTenancy>>,
}

/// Why an API key is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// Neither a bootstrap key nor a live one.
    Unknown,
    /// A live key that was revoked.
    Revoked,
    /// A live key past its `expires_at`.
    Expired,
    /// The key's tenant is suspended.
    Suspended(TenantId),
}

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Unknown => ApiError::unauthorized(
                "missing or unknown API key: send Authorization: Bearer <API key>",
            ),
            KeyError::Revoked => ApiError::unauthorized("API key revoked"),
            KeyError::Expired => ApiError::unauthorized("API key expired"),
            KeyError::Suspended(t) => suspended(&t),
        }
    }
}

/// 403 `TENANT_SUSPENDED`.
pub fn suspended(tenant: &TenantId) -> ApiError {
    ApiError::forbidden(
        "TENANT_SUSPENDED",
        format!("tenant {} is suspended", tenant.as_str()),
    )
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
        Ok(Self {
            by_digest,
            live: None,
        })
    }

    /// These keys and the live ones of `live`, whose suspensions apply to both.
    pub fn with_live(mut self, live: Arc<dyn LiveTenancy>) -> Self {
        self.live = Some(live);
        self
    }

    /// The live tenancy state, if any.
    pub fn live(&self) -> Option<&Arc<dyn LiveTenancy>> {
        self.live.as_ref()
    }

    /// The tenant of `key`: a bootstrap key, else a live one; then the tenant must not be
    /// suspended.
    ///
    /// # Errors
    /// [`KeyError`] saying why the key is refused.
    pub fn resolve(&self, key: &str) -> Result<TenantId, KeyError> {
        let tenant = match self.by_digest.get(&digest(key)) {
            Some(t) => t.clone(),
            None => match self.live.as_ref().and_then(|l| l.tenant_of_key(key)) {
                Some(Ok(t)) => t,
                Some(Err(KeyRefusal::Revoked)) => return Err(KeyError::Revoked),
                Some(Err(KeyRefusal::Expired)) => return Err(KeyError::Expired),
                None => return Err(KeyError::Unknown),
            },
        };
        if self.is_suspended(&tenant) {
            return Err(KeyError::Suspended(tenant));
        }
        Ok(tenant)
    }

    /// Whether `tenant` is suspended.
    pub fn is_suspended(&self, tenant: &TenantId) -> bool {
        self.live.as_ref().is_some_and(|l| l.suspended(tenant))
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

    /// The tenant of `key`, if it is usable ([`ApiKeys::resolve`] says why not).
    pub fn tenant(&self, key: &str) -> Option<TenantId> {
        self.resolve(key).ok()
    }

    /// Every tenant that has a key.
    pub fn tenants(&self) -> impl Iterator<Item = TenantId> + '_ {
        let set: std::collections::BTreeSet<&TenantId> = self.by_digest.values().collect();
        set.into_iter().cloned()
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

// The security scheme of the command service (its doc comment below is the OpenAPI text):
// the key is resolved to its tenant by the `ApiKeys` injected with `EndpointExt::data`.
/// `Authorization: Bearer <API key>`. The key selects the tenant every command acts in (keys
/// are minted by the admin API, or configured in `PARLEY_API_KEYS` as bootstrap keys). A
/// missing, unknown, revoked or expired key is 401 `UNAUTHORIZED` saying which; any call of a
/// suspended tenant is 403 `TENANT_SUSPENDED`.
#[derive(poem_openapi::SecurityScheme)]
#[oai(ty = "bearer", checker = "tenant_of_bearer")]
pub struct TenantAuth(pub TenantId);

async fn tenant_of_bearer(
    req: &poem::Request,
    bearer: poem_openapi::auth::Bearer,
) -> poem::Result<TenantId> {
    let keys = req.data::<ApiKeys>().cloned().unwrap_or_default();
    let tenant = keys
        .resolve(&bearer.token)
        .map_err(|e| poem::Error::from_response(ApiError::from(e).into_response()))?;
    count_tenant(req, &tenant)?;
    Ok(tenant)
}

/// Counts the request against its tenant's limit (the [`Limiter`] injected with
/// `EndpointExt::data`), noting the outcome for the answer's headers.
///
/// # Errors
/// 429 `RATE_LIMIT_EXCEEDED` with the limit headers.
pub fn count_tenant(req: &poem::Request, tenant: &TenantId) -> poem::Result<()> {
    let Some(outcome) = req.data::<Arc<Limiter>>().and_then(|l| l.tenant(tenant)) else {
        return Ok(());
    };
    if !outcome.allowed() {
        return Err(poem::Error::from_response(crate::ratelimit::too_many(&[
            outcome,
        ])));
    }
    if let Some(slot) = req.extensions().get::<Slot>() {
        slot.push(outcome);
    }
    Ok(())
}

/// Who is calling a read endpoint.
#[derive(Debug, Clone)]
pub enum Caller {
    /// An internal system with an API key of the tenant: it reads as any user it names.
    Service(TenantId),
    /// An end user with a user token: it reads as itself only.
    User(UserClaims),
}

impl Caller {
    /// The tenant the caller acts in.
    pub fn tenant(&self) -> &TenantId {
        match self {
            Caller::Service(t) => t,
            Caller::User(c) => &c.tenant,
        }
    }

    /// The viewer of a read: a service names it in `field` (`uid`), a user is the token's uid
    /// and may repeat it.
    ///
    /// # Errors
    /// 400 `VALIDATION_ERROR` naming `field` when a service gives none or a malformed one; 403
    /// `FORBIDDEN_UID` when a user names someone else.
    pub fn viewer(&self, field: &str, named: Option<&str>) -> Result<Uid, ApiError> {
        match (self, named) {
            (Caller::Service(_), None) => Err(ApiError::validation(
                field,
                format!("{field} is required with an API key"),
            )),
            (Caller::Service(_), Some(raw)) => {
                Uid::parse(raw).map_err(|e| ApiError::validation(field, format!("{field} {e}")))
            }
            (Caller::User(c), None) => Ok(c.uid.clone()),
            (Caller::User(c), Some(raw)) if raw == c.uid.as_str() => Ok(c.uid.clone()),
            (Caller::User(_), Some(_)) => Err(ApiError::forbidden(
                "FORBIDDEN_UID",
                format!("a user token reads as its own uid only; {field} names another user"),
            )),
        }
    }
}

// The security scheme of the query service's reads (its doc comment below is the OpenAPI
// text): resolved by the `ApiKeys` and `UserTokens` injected with `EndpointExt::data`.
/// `Authorization: Bearer <API key or user token>`. An API key (internal callers) reads as any
/// user it names in `uid`; a user token (minted by the command service's
/// `POST /v1/users/{uid}/tokens`) reads as its own uid only, and another `uid` is 403
/// `FORBIDDEN_UID`. A missing, unknown, expired or forged credential is 401 `UNAUTHORIZED`
/// saying why.
#[derive(poem_openapi::SecurityScheme)]
#[oai(ty = "bearer", checker = "caller_of_bearer")]
pub struct CallerBearer(pub Caller);

/// The cookie browsers send the user token in.
pub const TOKEN_COOKIE: &str = "parley_token";

/// The value of the [`TOKEN_COOKIE`] cookie of `req` (RFC 6265 §5.4 `Cookie` header pairs).
pub fn token_cookie(req: &poem::Request) -> Option<&str> {
    req.headers()
        .get_all(poem::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == TOKEN_COOKIE)
        .map(|(_, value)| value.trim_matches('"'))
}

// The cookie scheme (its doc comment below is the OpenAPI text).
/// `Cookie: parley_token=<user token>`, for browser apps (set HttpOnly by the dev-token
/// answer; an app's own backend sets it the same way). Only user tokens, never API keys.
#[derive(poem_openapi::SecurityScheme)]
#[oai(
    ty = "api_key",
    key_name = "parley_token",
    key_in = "cookie",
    checker = "caller_of_cookie"
)]
pub struct CallerCookie(pub Caller);

/// A read's credentials: a user token in the `parley_token` cookie, or `Authorization: Bearer`
/// with an API key or a user token. With both, a cookie that does not verify falls back to
/// the header, whose refusal is the one answered.
#[derive(poem_openapi::SecurityScheme)]
pub enum CallerAuth {
    /// The cookie.
    Cookie(CallerCookie),
    /// The header.
    Bearer(CallerBearer),
}

impl CallerAuth {
    /// Who is calling.
    pub fn caller(&self) -> &Caller {
        match self {
            CallerAuth::Cookie(c) => &c.0,
            CallerAuth::Bearer(b) => &b.0,
        }
    }
}

async fn caller_of_cookie(
    req: &poem::Request,
    cookie: poem_openapi::auth::ApiKey,
) -> poem::Result<Caller> {
    let tokens = req.data::<UserTokens>().cloned().unwrap_or_default();
    let reject = |e: ApiError| poem::Error::from_response(e.into_response());
    let claims = verify_user(&tokens, cookie.key.trim()).map_err(reject)?;
    let keys = req.data::<ApiKeys>().cloned().unwrap_or_default();
    if keys.is_suspended(&claims.tenant) {
        return Err(reject(suspended(&claims.tenant)));
    }
    count_tenant(req, &claims.tenant)?;
    Ok(Caller::User(claims))
}

async fn caller_of_bearer(
    req: &poem::Request,
    bearer: poem_openapi::auth::Bearer,
) -> poem::Result<Caller> {
    let caller = resolve_bearer(req, &bearer.token)
        .map_err(|e| poem::Error::from_response(e.into_response()))?;
    count_tenant(req, caller.tenant())?;
    Ok(caller)
}

/// Resolves a bearer credential: an API key first, else a user token.
///
/// # Errors
/// 401 `UNAUTHORIZED` naming the reason.
pub fn resolve_bearer(req: &poem::Request, credential: &str) -> Result<Caller, ApiError> {
    let keys = req.data::<ApiKeys>().cloned().unwrap_or_default();
    match keys.resolve(credential) {
        Ok(t) => return Ok(Caller::Service(t)),
        Err(KeyError::Unknown) => {}
        Err(e) => return Err(e.into()),
    }
    let tokens = req.data::<UserTokens>().cloned().unwrap_or_default();
    let claims = verify_user(&tokens, credential)?;
    if keys.is_suspended(&claims.tenant) {
        return Err(suspended(&claims.tenant));
    }
    Ok(Caller::User(claims))
}

/// Verifies a user token.
///
/// # Errors
/// 401 `UNAUTHORIZED` naming the reason.
pub fn verify_user(tokens: &UserTokens, credential: &str) -> Result<UserClaims, ApiError> {
    tokens.verify(credential).map_err(|e| match e {
        TokenError::Disabled | TokenError::Malformed => ApiError::unauthorized(
            "missing or unknown credentials: send Authorization: Bearer <API key or user token>",
        ),
        other => ApiError::unauthorized(other.to_string()),
    })
}
