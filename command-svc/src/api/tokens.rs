//! `POST /v1/users/{uid}/tokens`: end-user tokens for the query service (see
//! `docs/realtime.md` and [`platform::token`]).

use super::docs::{self, ApiTags, TokenErrors};
use super::AppState;
use crate::commands::fields::id;
use events::Uid;
use platform::auth::TenantAuth;
use platform::error::{ApiError, Failure};
use platform::http::{BodyRules, BoundedBody, JsonBody};
use platform::params::Id;
use platform::token::{DeviceFlag, TokenError, DEFAULT_TTL_S, TTL_RANGE_S};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

/// What to mint.
#[derive(Debug, Clone, Object, serde::Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// 0 app, 1 web, 2 desktop.
    #[oai(validator(minimum(value = "0"), maximum(value = "2")))]
    pub device_flag: u8,
    /// Lifetime in seconds, 60–2,592,000 (30 days), within the tenant's `token_ttl_min_s` and
    /// `token_ttl_max_s` if set; default 86,400 (brought within those bounds).
    #[oai(nullable, validator(minimum(value = "60"), maximum(value = "2592000")))]
    #[serde(default)]
    pub ttl_s: Option<u64>,
}

impl poem_openapi::types::Example for TokenRequest {
    fn example() -> Self {
        Self {
            device_flag: 1,
            ttl_s: Some(86_400),
        }
    }
}

impl BoundedBody for TokenRequest {
    fn max_body_bytes(_: &BodyRules) -> usize {
        1024
    }
}

/// A user token.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct TokenResponse {
    /// The JWT, for `Authorization: Bearer` or `?token=` on the query service.
    pub token: String,
    /// Expiry, ms since the Unix epoch.
    pub expires_at: i64,
    /// The user.
    pub uid: String,
    /// The device class.
    pub device_flag: u8,
}

/// Token endpoints.
pub struct TokensApi {
    /// Shared state.
    pub state: AppState,
}

#[OpenApi(tag = "ApiTags::Tokens")]
impl TokensApi {
    /// Mint a token with which `uid` reads and subscribes on the query service as itself.
    ///
    /// 400 naming `device_flag` or `ttl_s` when out of range; 503 `TOKENS_DISABLED` when the
    /// service has no `PARLEY_TOKEN_SECRET`.
    #[oai(
        path = "/v1/users/:uid/tokens",
        method = "post",
        operation_id = "mint_user_token"
    )]
    async fn mint(
        &self,
        auth: TenantAuth,
        /// The user the token reads as.
        #[oai(example = "docs::alice")]
        uid: Path<Id>,
        body: JsonBody<TokenRequest>,
    ) -> Result<Json<TokenResponse>, Failure<TokenErrors>> {
        let uid = id("uid", uid.0 .0, Uid::parse)?;
        let device_flag = DeviceFlag::try_from(body.0.device_flag)
            .map_err(|e| ApiError::validation("device_flag", e))?;
        // The tenant's own bounds (admin API settings) narrow the service's.
        let own = self.state.commands.limits(&auth.0);
        let lo = own
            .token_ttl_min_s
            .map_or(*TTL_RANGE_S.start(), u64::from)
            .max(*TTL_RANGE_S.start());
        let hi = own
            .token_ttl_max_s
            .map_or(*TTL_RANGE_S.end(), u64::from)
            .min(*TTL_RANGE_S.end());
        let ttl_s = body.0.ttl_s.unwrap_or(DEFAULT_TTL_S.clamp(lo, hi));
        if !(lo..=hi).contains(&ttl_s) {
            return Err(ApiError::validation(
                "ttl_s",
                format!("ttl_s must be {lo}..={hi} seconds"),
            )
            .into());
        }
        let minted = self
            .state
            .tokens
            .mint(&auth.0, &uid, device_flag, ttl_s)
            .map_err(|e| match e {
                TokenError::Disabled => ApiError::unavailable("TOKENS_DISABLED", e.to_string()),
                other => ApiError::internal("mint token", other),
            })?;
        Ok(Json(TokenResponse {
            token: minted.token,
            expires_at: i64::try_from(minted.expires_at_s)
                .unwrap_or(i64::MAX / 1000)
                .saturating_mul(1000),
            uid: uid.as_str().to_owned(),
            device_flag: device_flag.as_u8(),
        }))
    }
}
