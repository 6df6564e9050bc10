//! End-user tokens: JWTs (RFC 7519, HS256) that any service holding `PARLEY_TOKEN_SECRET` mints
//! and verifies without a database round trip.
//!
//! - Header: `alg` HS256, `kid` = the tenant.
//! - Claims: `sub` (uid), `tid` (tenant), `dev` (device flag), `iat`, `exp` (seconds since the
//!   Unix epoch), `aud` = `parley`.
//! - Key: per tenant, HMAC-SHA256(`PARLEY_TOKEN_SECRET`, `"parley-user-token/" + tenant`)
//!   (an HKDF-style derivation, RFC 5869 §2.2 "extract" with the secret as key), so a key
//!   that leaks from one tenant forges nothing in another. Only configured tenants (those of
//!   `PARLEY_API_KEYS`, plus the dev tenant where enabled) have a key.

use crate::live::LiveTenancy;
use events::{TenantId, Uid};
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use sha2::Sha256;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

/// The `aud` claim of every Parley user token.
pub const AUDIENCE: &str = "parley";
/// Shortest accepted `PARLEY_TOKEN_SECRET`, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;
/// Default token lifetime: one day.
pub const DEFAULT_TTL_S: u64 = 86_400;
/// Shortest and longest lifetime a caller may ask for: one minute to 30 days.
pub const TTL_RANGE_S: std::ops::RangeInclusive<u64> = 60..=2_592_000;

/// A user's device class, as WuKongIM numbers them: 0 app, 1 web, 2 desktop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct DeviceFlag(u8);

impl DeviceFlag {
    /// The flag's number, 0–2.
    pub fn as_u8(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for DeviceFlag {
    type Error = String;
    fn try_from(v: u8) -> Result<Self, String> {
        if v <= 2 {
            Ok(Self(v))
        } else {
            Err(format!(
                "unknown device_flag {v}; expected 0 app, 1 web or 2 desktop"
            ))
        }
    }
}

impl From<DeviceFlag> for u8 {
    fn from(d: DeviceFlag) -> u8 {
        d.0
    }
}

/// What a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserClaims {
    /// The tenant (the header's `kid`, equal to the `tid` claim).
    pub tenant: TenantId,
    /// The user (`sub`).
    pub uid: Uid,
    /// The device class (`dev`).
    pub device_flag: DeviceFlag,
    /// When the token stops being valid, seconds since the Unix epoch (`exp`).
    pub expires_at_s: u64,
    /// When it was issued, seconds since the Unix epoch (`iat`; 0 if absent).
    pub issued_at_s: u64,
}

/// A freshly minted token.
#[derive(Debug, Clone)]
pub struct Minted {
    /// The compact JWT.
    pub token: String,
    /// Expiry, seconds since the Unix epoch.
    pub expires_at_s: u64,
}

/// Why a token was refused; every kind is a 401 to the caller.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// `PARLEY_TOKEN_SECRET` is not configured, so no token can be minted or verified.
    #[error("user tokens are disabled: PARLEY_TOKEN_SECRET is not set")]
    Disabled,
    /// Not a JWT, or its claims do not have the expected shape.
    #[error("malformed token")]
    Malformed,
    /// The `kid` names no configured tenant, or `tid` differs from `kid`.
    #[error("token of an unknown tenant")]
    UnknownTenant,
    /// The signature does not verify with the tenant's key.
    #[error("token signature does not verify")]
    Forged,
    /// `exp` has passed.
    #[error("token expired")]
    Expired,
    /// The user's tokens were revoked (`POST /v1/users/{uid}/tokens/revoke`) after this one
    /// was issued.
    #[error("token revoked")]
    Revoked,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Claims {
    sub: String,
    tid: String,
    dev: DeviceFlag,
    #[serde(default)]
    iat: u64,
    exp: u64,
    aud: String,
}

#[derive(Clone)]
struct TenantKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

/// Mints and verifies user tokens for the configured tenants (and, with
/// [`UserTokens::with_live`], the tenants created at run time). Cheap to clone.
#[derive(Clone, Default)]
pub struct UserTokens {
    keys: Arc<HashMap<TenantId, TenantKey>>,
    secret: Option<Arc<[u8]>>,
    live: Option<Arc<dyn LiveTenancy>>,
    enabled: bool,
}

impl std::fmt::Debug for UserTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserTokens")
            .field("enabled", &self.enabled)
            .field("tenants", &self.keys.len())
            .finish()
    }
}

/// `PARLEY_TOKEN_SECRET` is unusable.
#[derive(Debug, thiserror::Error)]
#[error("PARLEY_TOKEN_SECRET must be at least {MIN_SECRET_BYTES} bytes")]
pub struct SecretTooShort;

/// The signing key of `tenant` under `secret`.
fn derive(secret: &[u8], tenant: &TenantId) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(b"parley-user-token/");
    mac.update(tenant.as_str().as_bytes());
    mac.finalize().into_bytes().into()
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl UserTokens {
    /// Tokens for `tenants` under `secret`; `None` or an empty secret disables tokens (every
    /// mint and verify answers [`TokenError::Disabled`]).
    ///
    /// # Errors
    /// [`SecretTooShort`] for a secret under 32 bytes.
    pub fn new(
        secret: Option<&str>,
        tenants: impl IntoIterator<Item = TenantId>,
    ) -> Result<Self, SecretTooShort> {
        let Some(secret) = secret.filter(|s| !s.is_empty()) else {
            tracing::warn!("PARLEY_TOKEN_SECRET is not set: user tokens are disabled");
            return Ok(Self::default());
        };
        if secret.len() < MIN_SECRET_BYTES {
            return Err(SecretTooShort);
        }
        let keys = tenants
            .into_iter()
            .map(|t| {
                let k = derive(secret.as_bytes(), &t);
                let key = TenantKey {
                    encoding: EncodingKey::from_secret(&k),
                    decoding: DecodingKey::from_secret(&k),
                };
                (t, key)
            })
            .collect();
        Ok(Self {
            keys: Arc::new(keys),
            secret: Some(Arc::from(secret.as_bytes())),
            live: None,
            enabled: true,
        })
    }

    /// These tokens, also for every tenant `live` knows, and refusing tokens `live` says were
    /// revoked.
    pub fn with_live(mut self, live: Arc<dyn LiveTenancy>) -> Self {
        self.live = Some(live);
        self
    }

    /// The key of `tenant`: configured at start, or derived for a tenant the live state knows.
    fn key_of(&self, tenant: &TenantId) -> Option<Cow<'_, TenantKey>> {
        if let Some(k) = self.keys.get(tenant) {
            return Some(Cow::Borrowed(k));
        }
        let secret = self.secret.as_deref()?;
        if !self.live.as_ref().is_some_and(|l| l.knows(tenant)) {
            return None;
        }
        let k = derive(secret, tenant);
        Some(Cow::Owned(TenantKey {
            encoding: EncodingKey::from_secret(&k),
            decoding: DecodingKey::from_secret(&k),
        }))
    }

    /// Whether a secret is configured.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// A token for `uid` of `tenant` on `device_flag`, valid for `ttl_s` seconds from now.
    ///
    /// # Errors
    /// [`TokenError::Disabled`] without a secret; [`TokenError::UnknownTenant`] for a tenant
    /// that is not configured.
    pub fn mint(
        &self,
        tenant: &TenantId,
        uid: &Uid,
        device_flag: DeviceFlag,
        ttl_s: u64,
    ) -> Result<Minted, TokenError> {
        // A token minted in the second of a revocation would be void at once (`iat` has
        // second resolution): it is dated the next second instead.
        let revoked = self
            .live
            .as_ref()
            .and_then(|l| l.tokens_revoked_at(tenant, uid))
            .map_or(0, |r| r.saturating_add(1));
        let iat = now_s().max(revoked);
        self.mint_at(tenant, uid, device_flag, iat, iat.saturating_add(ttl_s))
    }

    /// A token with explicit `iat` and `exp` (seconds since the Unix epoch); tests use it to
    /// mint already-expired tokens.
    ///
    /// # Errors
    /// As [`UserTokens::mint`].
    pub fn mint_at(
        &self,
        tenant: &TenantId,
        uid: &Uid,
        device_flag: DeviceFlag,
        iat: u64,
        exp: u64,
    ) -> Result<Minted, TokenError> {
        if !self.enabled {
            return Err(TokenError::Disabled);
        }
        let key = self.key_of(tenant).ok_or(TokenError::UnknownTenant)?;
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(tenant.as_str().to_owned());
        let claims = Claims {
            sub: uid.as_str().to_owned(),
            tid: tenant.as_str().to_owned(),
            dev: device_flag,
            iat,
            exp,
            aud: AUDIENCE.to_owned(),
        };
        let token = jsonwebtoken::encode(&header, &claims, &key.encoding)
            .map_err(|_| TokenError::Malformed)?;
        Ok(Minted {
            token,
            expires_at_s: exp,
        })
    }

    /// Verifies `token` (signature, tenant, audience, expiry with no leeway).
    ///
    /// # Errors
    /// A [`TokenError`] saying why it is refused.
    pub fn verify(&self, token: &str) -> Result<UserClaims, TokenError> {
        if !self.enabled {
            return Err(TokenError::Disabled);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::HS256 {
            return Err(TokenError::Malformed);
        }
        let tenant = header
            .kid
            .as_deref()
            .and_then(|k| TenantId::parse(k).ok())
            .ok_or(TokenError::UnknownTenant)?;
        let key = self.key_of(&tenant).ok_or(TokenError::UnknownTenant)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation).map_err(
            |e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::Forged,
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Malformed,
            },
        )?;
        let c = data.claims;
        if c.tid != tenant.as_str() {
            return Err(TokenError::UnknownTenant);
        }
        // jsonwebtoken accepts `exp == now`; a token is valid strictly before its expiry.
        if c.exp <= now_s() {
            return Err(TokenError::Expired);
        }
        let uid = Uid::parse(c.sub).map_err(|_| TokenError::Malformed)?;
        if let Some(revoked) = self
            .live
            .as_ref()
            .and_then(|l| l.tokens_revoked_at(&tenant, &uid))
        {
            if c.iat <= revoked {
                return Err(TokenError::Revoked);
            }
        }
        Ok(UserClaims {
            tenant,
            uid,
            device_flag: c.dev,
            expires_at_s: c.exp,
            issued_at_s: c.iat,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn t(s: &str) -> TenantId {
        TenantId::parse(s).unwrap()
    }

    fn tokens() -> UserTokens {
        UserTokens::new(Some(SECRET), [t("acme"), t("globex")]).unwrap()
    }

    #[test]
    fn mints_and_verifies() {
        let tk = tokens();
        let uid = Uid::parse("alice").unwrap();
        let m = tk
            .mint(&t("acme"), &uid, DeviceFlag::try_from(1).unwrap(), 600)
            .unwrap();
        let c = tk.verify(&m.token).unwrap();
        assert_eq!(c.tenant, t("acme"));
        assert_eq!(c.uid, uid);
        assert_eq!(c.device_flag.as_u8(), 1);
        assert_eq!(c.expires_at_s, m.expires_at_s);
    }

    #[test]
    fn refuses_expired_forged_foreign_and_garbage() {
        let tk = tokens();
        let uid = Uid::parse("alice").unwrap();
        let web = DeviceFlag::try_from(1).unwrap();
        let now = now_s();
        let old = tk
            .mint_at(&t("acme"), &uid, web, now - 100, now - 1)
            .unwrap();
        assert_eq!(tk.verify(&old.token), Err(TokenError::Expired));

        let other = UserTokens::new(Some("another-secret-another-secret-xx"), [t("acme")]).unwrap();
        let forged = other.mint(&t("acme"), &uid, web, 600).unwrap();
        assert_eq!(tk.verify(&forged.token), Err(TokenError::Forged));

        // globex's token relabelled as acme's: acme's key does not verify it.
        let g = tk.mint(&t("globex"), &uid, web, 600).unwrap();
        let mut parts: Vec<String> = g.token.split('.').map(str::to_owned).collect();
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("acme".into());
        parts[0] = base64_header(&h);
        assert_eq!(tk.verify(&parts.join(".")), Err(TokenError::Forged));

        let unknown = UserTokens::new(Some(SECRET), [t("initech")]).unwrap();
        let u = unknown.mint(&t("initech"), &uid, web, 600).unwrap();
        assert_eq!(tk.verify(&u.token), Err(TokenError::UnknownTenant));

        for garbage in ["", "abc", "a.b.c", "Bearer x"] {
            assert!(tk.verify(garbage).is_err(), "{garbage}");
        }
        assert_eq!(
            UserTokens::default().verify(&g.token),
            Err(TokenError::Disabled)
        );
        assert!(UserTokens::new(Some("short"), [t("acme")]).is_err());
        assert!(DeviceFlag::try_from(3).is_err());
    }

    fn base64_header(h: &Header) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(h).unwrap())
    }
}
