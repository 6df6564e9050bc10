//! The admin API (`/v1/admin/…`, master key): tenants and their API keys; and
//! `POST /v1/users/{uid}/tokens/revoke` (a tenant's API key). See `docs/tenancy.md`.
//!
//! The master key is `PARLEY_MASTER_KEY` (≥ 32 bytes), sent as `X-Master-Key: <key>` (ChatAPI's
//! header) or `Authorization: Bearer <key>`. Without it configured every admin call is 404
//! `ADMIN_DISABLED`; a tenant API key on an admin path is 403 `FORBIDDEN`. The master key has a
//! rate limit of its own (`PARLEY_RATE_LIMIT_MASTER_PER_S`, default 50 per instance; 429).

use super::docs::{self, AdminErrors, AdminKeyErrors, ApiTags, RevokeErrors};
use crate::commands::fields::id;
use crate::tenancy::{Tenancy, TenancyError, TenantPatch};
use events::tenancy::TenantSettings;
use events::text::{KEY_LABEL, TENANT_NAME};
use events::{TenantId, Uid};
use platform::auth::{ApiKeys, TenantAuth};
use platform::error::{ApiError, Failure};
use platform::http::{BodyRules, BoundedBody, JsonBody};
use platform::params::Id;
use poem::IntoResponse as _;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, SecurityScheme};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Largest admin request body.
const MAX_BODY: usize = 16 * 1024;
/// Default and largest page of `GET /v1/admin/tenants`.
const PAGE: (u32, u32) = (50, 500);

/// The configured master key, as its SHA-256 digest (`None`: the admin API is off), and its
/// own rate limit (apart from every tenant's).
#[derive(Debug, Clone, Default)]
pub struct MasterKey {
    digest: Option<[u8; 32]>,
    limit: Option<std::sync::Arc<governor::DefaultDirectRateLimiter>>,
}

impl MasterKey {
    /// From `PARLEY_MASTER_KEY`, admitting `per_s` calls per second per instance (0: no limit).
    ///
    /// # Errors
    /// A key shorter than 32 bytes.
    pub fn new(key: Option<&str>, per_s: u32) -> anyhow::Result<Self> {
        let limit = std::num::NonZeroU32::new(per_s).map(|n| {
            std::sync::Arc::new(governor::RateLimiter::direct(governor::Quota::per_second(
                n,
            )))
        });
        match key.filter(|k| !k.is_empty()) {
            None => Ok(Self::default()),
            Some(k) if k.len() < 32 => anyhow::bail!("PARLEY_MASTER_KEY must be at least 32 bytes"),
            Some(k) => Ok(Self {
                digest: Some(Sha256::digest(k.as_bytes()).into()),
                limit,
            }),
        }
    }

    fn matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.digest.is_some_and(|m| bool::from(m.ct_eq(&digest)))
    }

    /// Counts one admin call; `Err` with the wait when over the limit.
    fn admit(&self) -> Result<(), std::time::Duration> {
        match &self.limit {
            Some(l) => l.check().map_err(|n| {
                n.wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                ))
            }),
            None => Ok(()),
        }
    }
}

fn reject(e: ApiError) -> poem::Error {
    poem::Error::from_response(e.into_response())
}

/// The verdict on a request's credentials for the admin API, from both headers.
fn master_verdict(req: &poem::Request) -> poem::Result<()> {
    let master = req.data::<MasterKey>().cloned().unwrap_or_default();
    if master.digest.is_none() {
        return Err(reject(ApiError::not_found(
            "ADMIN_DISABLED",
            "the admin API is off: PARLEY_MASTER_KEY is not set",
        )));
    }
    let header = req
        .headers()
        .get("x-master-key")
        .and_then(|v| v.to_str().ok());
    let bearer = req
        .headers()
        .get(poem::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if header.into_iter().chain(bearer).any(|k| master.matches(k)) {
        return master.admit().map_err(|wait| {
            let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
            let mut resp = ApiError::with_status(
                429,
                platform::error::ErrorDetail {
                    code: "RATE_LIMIT_EXCEEDED".into(),
                    message: format!("the master key's rate limit is exceeded; retry in {ms} ms"),
                    field: None,
                    retry_after_ms: Some(ms),
                },
            )
            .into_response();
            if let Ok(v) = poem::http::HeaderValue::from_str(&ms.div_ceil(1000).to_string()) {
                resp.headers_mut().insert("retry-after", v);
            }
            poem::Error::from_response(resp)
        });
    }
    let keys = req.data::<ApiKeys>().cloned().unwrap_or_default();
    if header
        .into_iter()
        .chain(bearer)
        .any(|k| !matches!(keys.resolve(k), Err(platform::auth::KeyError::Unknown)))
    {
        return Err(reject(ApiError::forbidden(
            "FORBIDDEN",
            "a tenant API key cannot call the admin API: send the master key",
        )));
    }
    Err(reject(ApiError::unauthorized(
        "missing or wrong master key: send X-Master-Key: <key> or Authorization: Bearer <key>",
    )))
}

/// `X-Master-Key: <PARLEY_MASTER_KEY>`. (This and [`MasterBearer`] name the two schemes in the
/// OpenAPI document; [`MasterAuth`] does the checking.)
#[derive(SecurityScheme)]
#[oai(ty = "api_key", key_name = "X-Master-Key", key_in = "header")]
pub struct MasterHeader(pub poem_openapi::auth::ApiKey);

/// `Authorization: Bearer <PARLEY_MASTER_KEY>`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer")]
pub struct MasterBearer(pub poem_openapi::auth::Bearer);

/// The master key, in either header (the OpenAPI document lists both schemes). A missing or
/// wrong key is 401 `UNAUTHORIZED`, a tenant API key in either header 403 `FORBIDDEN`; without
/// `PARLEY_MASTER_KEY` every call is 404 `ADMIN_DISABLED`; over the master key's own limit,
/// 429. One verdict over both headers, so which header carried what never changes the answer.
pub struct MasterAuth(());

impl<'a> poem_openapi::ApiExtractor<'a> for MasterAuth {
    const TYPES: &'static [poem_openapi::ApiExtractorType] =
        &[poem_openapi::ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut poem_openapi::registry::Registry) {
        <MasterHeader as poem_openapi::ApiExtractor>::register(registry);
        <MasterBearer as poem_openapi::ApiExtractor>::register(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        let mut out = <MasterHeader as poem_openapi::ApiExtractor>::security_schemes();
        out.extend(<MasterBearer as poem_openapi::ApiExtractor>::security_schemes());
        out
    }

    async fn from_request(
        req: &'a poem::Request,
        _body: &mut poem::RequestBody,
        _opts: poem_openapi::ExtractParamOptions<()>,
    ) -> poem::Result<Self> {
        master_verdict(req).map(|()| MasterAuth(()))
    }
}

/// A tenant's settings; every field optional (absent: the deployment's default). Rules:
/// rates 1–1,000,000 per second, `max_payload_bytes` 1–1,048,576, `max_group_members`
/// 2–100,000, `recall_window_s` ≤ 2,592,000, token lifetimes 60–2,592,000 s with min ≤ max,
/// at most 50 `allowed_origins`, each `scheme://host[:port]` in lowercase.
#[derive(Debug, Clone, Default, Object, serde::Deserialize, serde::Serialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Requests per second for the whole tenant, per service.
    #[oai(skip_serializing_if_is_none)]
    pub rate_limit_per_s: Option<u32>,
    /// Sends per second per user.
    #[oai(skip_serializing_if_is_none)]
    pub user_sends_per_s: Option<u32>,
    /// Reads per second per user.
    #[oai(skip_serializing_if_is_none)]
    pub user_reads_per_s: Option<u32>,
    /// Largest decoded message payload, bytes.
    #[oai(skip_serializing_if_is_none)]
    pub max_payload_bytes: Option<u32>,
    /// Most members of one group.
    #[oai(skip_serializing_if_is_none)]
    pub max_group_members: Option<u32>,
    /// How long after sending an author may recall a message, seconds.
    #[oai(skip_serializing_if_is_none)]
    pub recall_window_s: Option<u32>,
    /// Shortest token lifetime a mint may ask for, seconds.
    #[oai(skip_serializing_if_is_none)]
    pub token_ttl_min_s: Option<u32>,
    /// Longest token lifetime a mint may ask for, seconds.
    #[oai(skip_serializing_if_is_none)]
    pub token_ttl_max_s: Option<u32>,
    /// Browser origins allowed for the tenant's user tokens.
    #[oai(skip_serializing_if_is_none)]
    pub allowed_origins: Option<Vec<String>>,
}

impl From<Settings> for TenantSettings {
    fn from(s: Settings) -> Self {
        TenantSettings {
            rate_limit_per_s: s.rate_limit_per_s,
            user_sends_per_s: s.user_sends_per_s,
            user_reads_per_s: s.user_reads_per_s,
            max_payload_bytes: s.max_payload_bytes,
            max_group_members: s.max_group_members,
            recall_window_s: s.recall_window_s,
            token_ttl_min_s: s.token_ttl_min_s,
            token_ttl_max_s: s.token_ttl_max_s,
            allowed_origins: s.allowed_origins,
        }
    }
}

impl From<TenantSettings> for Settings {
    fn from(s: TenantSettings) -> Self {
        Settings {
            rate_limit_per_s: s.rate_limit_per_s,
            user_sends_per_s: s.user_sends_per_s,
            user_reads_per_s: s.user_reads_per_s,
            max_payload_bytes: s.max_payload_bytes,
            max_group_members: s.max_group_members,
            recall_window_s: s.recall_window_s,
            token_ttl_min_s: s.token_ttl_min_s,
            token_ttl_max_s: s.token_ttl_max_s,
            allowed_origins: s.allowed_origins,
        }
    }
}

/// `POST /v1/admin/tenants`.
#[derive(Debug, Clone, Object, serde::Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// The tenant's id (the rules of every id: 1–64 bytes of letters, digits, `_ - . @ :`).
    pub tenant_id: String,
    /// Display name, 1–256 bytes.
    #[oai(skip_serializing_if_is_none)]
    #[serde(default)]
    pub name: Option<String>,
    /// Settings.
    #[oai(skip_serializing_if_is_none)]
    #[serde(default)]
    pub settings: Option<Settings>,
}

impl poem_openapi::types::Example for CreateTenant {
    fn example() -> Self {
        Self {
            tenant_id: "initech".into(),
            name: Some("Initech".into()),
            settings: Some(Settings {
                rate_limit_per_s: Some(200),
                ..Default::default()
            }),
        }
    }
}

impl BoundedBody for CreateTenant {
    fn max_body_bytes(_: &BodyRules) -> usize {
        MAX_BODY
    }
}

/// `PATCH /v1/admin/tenants/{tenant_id}`: absent fields stay; `settings` merge field by field.
#[derive(Debug, Clone, Default, Object, serde::Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct PatchTenant {
    /// A new display name.
    #[oai(skip_serializing_if_is_none)]
    #[serde(default)]
    pub name: Option<String>,
    /// Settings to change.
    #[oai(skip_serializing_if_is_none)]
    #[serde(default)]
    pub settings: Option<Settings>,
    /// `true` refuses every call of the tenant with 403 `TENANT_SUSPENDED`; `false` resumes.
    #[oai(skip_serializing_if_is_none)]
    #[serde(default)]
    pub suspended: Option<bool>,
}

impl poem_openapi::types::Example for PatchTenant {
    fn example() -> Self {
        Self {
            suspended: Some(false),
            ..Default::default()
        }
    }
}

impl BoundedBody for PatchTenant {
    fn max_body_bytes(_: &BodyRules) -> usize {
        MAX_BODY
    }
}

/// `POST /v1/admin/tenants/{tenant_id}/keys`.
#[derive(Debug, Clone, Default, Object, serde::Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// A label, 1–200 bytes.
    #[oai(skip_serializing_if_is_none)]
    #[serde(default)]
    pub label: Option<String>,
    /// When the key stops working, ms since the Unix epoch (in the future).
    #[oai(skip_serializing_if_is_none)]
    #[serde(default)]
    pub expires_at: Option<i64>,
}

impl poem_openapi::types::Example for CreateKey {
    fn example() -> Self {
        Self {
            label: Some("billing".into()),
            expires_at: None,
        }
    }
}

impl BoundedBody for CreateKey {
    fn max_body_bytes(_: &BodyRules) -> usize {
        MAX_BODY
    }
}

/// A tenant.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct TenantBody {
    /// The id.
    pub tenant_id: String,
    /// Display name.
    #[oai(nullable)]
    pub name: Option<String>,
    /// Its own settings (absent fields: the deployment's defaults).
    pub settings: Settings,
    /// Whether every call is refused.
    pub suspended: bool,
    /// ms since the Unix epoch.
    pub created_at: i64,
    /// ms since the Unix epoch.
    pub updated_at: i64,
}

impl From<tenancy::registry::Tenant> for TenantBody {
    fn from(t: tenancy::registry::Tenant) -> Self {
        Self {
            tenant_id: t.id.as_str().to_owned(),
            name: t.name,
            settings: t.settings.into(),
            suspended: t.suspended,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// An API key as listed (never the secret).
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct KeyBody {
    /// The key's id.
    pub key_id: String,
    /// Its label.
    #[oai(nullable)]
    pub label: Option<String>,
    /// Its first characters, `pk_<key_id>`.
    pub prefix: String,
    /// ms since the Unix epoch.
    pub created_at: i64,
    /// ms since the Unix epoch, if it expires.
    #[oai(nullable)]
    pub expires_at: Option<i64>,
    /// ms since the Unix epoch, if revoked.
    #[oai(nullable)]
    pub revoked_at: Option<i64>,
    /// When the key was last used, ms since the Unix epoch, on any instance (at most a few
    /// seconds behind); null if never.
    #[oai(nullable)]
    pub last_used_at: Option<i64>,
}

impl From<tenancy::registry::Key> for KeyBody {
    fn from(k: tenancy::registry::Key) -> Self {
        Self {
            key_id: k.record.key_id,
            label: k.record.label,
            prefix: k.record.prefix,
            created_at: k.created_at,
            expires_at: k.record.expires_at,
            revoked_at: k.revoked_at,
            last_used_at: None,
        }
    }
}

/// A new API key, with its secret: shown only in this answer.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct NewKey {
    /// The key's id.
    pub key_id: String,
    /// The key itself, `pk_<key_id>_<secret>`: send it as `Authorization: Bearer <key>`.
    pub key: String,
    /// Its label.
    #[oai(nullable)]
    pub label: Option<String>,
    /// Its first characters.
    pub prefix: String,
    /// ms since the Unix epoch.
    pub created_at: i64,
    /// ms since the Unix epoch, if it expires.
    #[oai(nullable)]
    pub expires_at: Option<i64>,
}

fn new_key(k: tenancy::registry::Key, secret: String) -> NewKey {
    NewKey {
        key_id: k.record.key_id,
        key: secret,
        label: k.record.label,
        prefix: k.record.prefix,
        created_at: k.created_at,
        expires_at: k.record.expires_at,
    }
}

/// A created tenant and its first key.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct CreatedTenant {
    /// The tenant.
    pub tenant: TenantBody,
    /// Its first API key (the secret is shown only here).
    pub api_key: NewKey,
}

/// A page of tenants.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct TenantPage {
    /// In id order.
    pub tenants: Vec<TenantBody>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

/// The keys of a tenant.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct KeyList {
    /// Oldest first, revoked ones included.
    pub keys: Vec<KeyBody>,
}

/// A token revocation.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct Revoked {
    /// The user.
    pub uid: String,
    /// Tokens issued at or before this moment are void; ms since the Unix epoch (a whole
    /// second: tokens carry `iat` in seconds).
    pub revoked_at: i64,
}

/// 201 with a body.
#[derive(ApiResponse)]
pub enum Created<T: poem_openapi::types::ToJSON + Send + Sync> {
    /// Created.
    #[oai(status = 201)]
    Created(Json<T>),
}

/// 204.
#[derive(ApiResponse)]
pub enum NoContent {
    /// Done.
    #[oai(status = 204)]
    Done,
}

impl From<TenancyError> for ApiError {
    fn from(e: TenancyError) -> Self {
        match e {
            TenancyError::Exists(t) => {
                ApiError::conflict("TENANT_EXISTS", format!("tenant {t} exists"))
            }
            TenancyError::NoTenant(t) => {
                ApiError::not_found("TENANT_NOT_FOUND", format!("no tenant {t}"))
            }
            TenancyError::NoKey(k) => ApiError::not_found("KEY_NOT_FOUND", format!("no key {k}")),
            TenancyError::Invalid { field, message } => ApiError::validation(&field, message),
            TenancyError::Contention => ApiError::unavailable(
                "CONTENTION",
                "the tenant kept changing under this request: retry",
            ),
            e @ TenancyError::Log { .. } => {
                tracing::warn!(error = %platform::error::chain(&e), "tenancy command failed");
                ApiError::unavailable("LOG_UNAVAILABLE", e.to_string())
            }
        }
    }
}

impl<S> From<TenancyError> for Failure<S> {
    fn from(e: TenancyError) -> Self {
        ApiError::from(e).into()
    }
}

fn tenant_id(raw: String, field: &str) -> Result<TenantId, ApiError> {
    TenantId::parse(raw).map_err(|e| ApiError::validation(field, format!("{field} {e}")))
}

fn text(
    field: &str,
    v: Option<String>,
    rule: events::text::TextRule,
) -> Result<Option<String>, ApiError> {
    if let Some(s) = &v {
        rule.check(s)
            .map_err(|e| ApiError::validation(field, format!("{field} {e}")))?;
    }
    Ok(v)
}

/// Admin endpoints.
pub struct AdminApi {
    /// The tenancy command side.
    pub tenancy: Tenancy,
}

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminApi {
    /// Provision a tenant and its first API key (the secret is shown only in this answer).
    #[oai(
        path = "/v1/admin/tenants",
        method = "post",
        operation_id = "create_tenant"
    )]
    async fn create_tenant(
        &self,
        _auth: MasterAuth,
        body: JsonBody<CreateTenant>,
    ) -> Result<Created<CreatedTenant>, Failure<AdminErrors>> {
        let b = body.0;
        let id = tenant_id(b.tenant_id, "tenant_id")?;
        let name = text("name", b.name, TENANT_NAME)?;
        let settings = b.settings.map(TenantSettings::from).unwrap_or_default();
        let (tenant, key, minted) = self.tenancy.create(id, name, settings).await?;
        Ok(Created::Created(Json(CreatedTenant {
            tenant: tenant.into(),
            api_key: new_key(key, minted.key),
        })))
    }

    /// List the tenants created through the admin API, in id order.
    #[oai(
        path = "/v1/admin/tenants",
        method = "get",
        operation_id = "list_tenants"
    )]
    async fn list_tenants(
        &self,
        _auth: MasterAuth,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Page size, 1–500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u32>>,
    ) -> Result<Json<TenantPage>, Failure<AdminErrors>> {
        let after = match cursor.0 {
            Some(c) => Some(TenantId::parse(c).map_err(|_| ApiError::invalid_cursor())?),
            None => None,
        };
        let limit = limit.0.unwrap_or(PAGE.0).clamp(1, PAGE.1) as usize;
        let mut page: Vec<TenantBody> = self.tenancy.live().read(|r| {
            r.tenants_after(after.as_ref(), limit + 1)
                .into_iter()
                .cloned()
                .map(TenantBody::from)
                .collect()
        });
        let next_cursor = if page.len() > limit {
            page.truncate(limit);
            page.last().map(|t| t.tenant_id.clone())
        } else {
            None
        };
        Ok(Json(TenantPage {
            tenants: page,
            next_cursor,
        }))
    }

    /// One tenant.
    #[oai(
        path = "/v1/admin/tenants/:tenant_id",
        method = "get",
        operation_id = "get_tenant"
    )]
    async fn get_tenant(
        &self,
        _auth: MasterAuth,
        /// The tenant.
        #[oai(example = "docs::initech")]
        tenant_id: Path<Id>,
    ) -> Result<Json<TenantBody>, Failure<AdminErrors>> {
        let id = tenant_id_path(tenant_id)?;
        let t = self
            .tenancy
            .live()
            .read(|r| r.tenant(&id).cloned())
            .ok_or_else(|| TenancyError::NoTenant(id.as_str().to_owned()))?;
        Ok(Json(t.into()))
    }

    /// Change a tenant's name or settings, or suspend (`suspended: true`: every call of the
    /// tenant, by any key or user token, is 403 `TENANT_SUSPENDED` on every instance within a
    /// second) or resume it.
    #[oai(
        path = "/v1/admin/tenants/:tenant_id",
        method = "patch",
        operation_id = "update_tenant"
    )]
    async fn update_tenant(
        &self,
        _auth: MasterAuth,
        /// The tenant.
        #[oai(example = "docs::initech")]
        tenant_id: Path<Id>,
        body: JsonBody<PatchTenant>,
    ) -> Result<Json<TenantBody>, Failure<AdminErrors>> {
        let id = tenant_id_path(tenant_id)?;
        let b = body.0;
        let patch = TenantPatch {
            name: text("name", b.name, TENANT_NAME)?,
            settings: b.settings.map(TenantSettings::from),
            suspended: b.suspended,
        };
        Ok(Json(self.tenancy.update(&id, patch).await?.into()))
    }

    /// Add an API key to a tenant (the secret is shown only in this answer).
    #[oai(
        path = "/v1/admin/tenants/:tenant_id/keys",
        method = "post",
        operation_id = "create_key"
    )]
    async fn create_key(
        &self,
        _auth: MasterAuth,
        /// The tenant.
        #[oai(example = "docs::initech")]
        tenant_id: Path<Id>,
        body: JsonBody<CreateKey>,
    ) -> Result<Created<NewKey>, Failure<AdminErrors>> {
        let id = tenant_id_path(tenant_id)?;
        let label = text("label", body.0.label, KEY_LABEL)?;
        let (key, minted) = self
            .tenancy
            .create_key(&id, label, body.0.expires_at)
            .await?;
        Ok(Created::Created(Json(new_key(key, minted.key))))
    }

    /// A tenant's API keys (never their secrets).
    #[oai(
        path = "/v1/admin/tenants/:tenant_id/keys",
        method = "get",
        operation_id = "list_keys"
    )]
    async fn list_keys(
        &self,
        _auth: MasterAuth,
        /// The tenant.
        #[oai(example = "docs::initech")]
        tenant_id: Path<Id>,
    ) -> Result<Json<KeyList>, Failure<AdminErrors>> {
        let id = tenant_id_path(tenant_id)?;
        let keys = self.tenancy.live().read(|r| {
            r.tenant(&id).map(|_| {
                r.keys_of(&id)
                    .into_iter()
                    .cloned()
                    .map(KeyBody::from)
                    .collect::<Vec<_>>()
            })
        });
        let mut keys = keys.ok_or_else(|| TenancyError::NoTenant(id.as_str().to_owned()))?;
        for k in &mut keys {
            k.last_used_at = self.tenancy.live().last_used(&id, &k.key_id).await;
        }
        Ok(Json(KeyList { keys }))
    }

    /// Revoke an API key: refused (401) on every instance within a second.
    #[oai(
        path = "/v1/admin/tenants/:tenant_id/keys/:key_id",
        method = "delete",
        operation_id = "revoke_key"
    )]
    async fn revoke_key(
        &self,
        _auth: MasterAuth,
        /// The tenant.
        #[oai(example = "docs::initech")]
        tenant_id: Path<Id>,
        /// The key's id.
        #[oai(example = "docs::key_id")]
        key_id: Path<String>,
    ) -> Result<NoContent, Failure<AdminKeyErrors>> {
        let id = tenant_id_path(tenant_id)?;
        self.tenancy.revoke_key(&id, &key_id.0).await?;
        Ok(NoContent::Done)
    }
}

fn tenant_id_path(p: Path<Id>) -> Result<TenantId, ApiError> {
    tenant_id(p.0 .0, "tenant_id")
}

/// Token revocation (a tenant's API key).
pub struct RevokeApi {
    /// The tenancy command side.
    pub tenancy: Tenancy,
}

#[OpenApi(tag = "ApiTags::Tokens")]
impl RevokeApi {
    /// Revoke every token of `uid` issued up to now: they are refused (401) on every instance
    /// within a second, and the user's open sockets and SSE streams close with 4001. Tokens
    /// minted afterwards work.
    #[oai(
        path = "/v1/users/:uid/tokens/revoke",
        method = "post",
        operation_id = "revoke_user_tokens"
    )]
    async fn revoke(
        &self,
        auth: TenantAuth,
        /// The user.
        #[oai(example = "docs::alice")]
        uid: Path<Id>,
    ) -> Result<Json<Revoked>, Failure<RevokeErrors>> {
        let uid = id("uid", uid.0 .0, Uid::parse)?;
        let before_s = self.tenancy.revoke_tokens(&auth.0, &uid).await?;
        Ok(Json(Revoked {
            uid: uid.as_str().to_owned(),
            revoked_at: i64::try_from(before_s)
                .unwrap_or(i64::MAX / 1000)
                .saturating_mul(1000),
        }))
    }
}
