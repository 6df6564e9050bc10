//! REST around the live push: `GET /v1/users/online`, the dev-only `POST /v1/dev/tokens`, and
//! the browser client at `/`. The sockets themselves (`/v1/ws`, `/v1/events`) are plain poem
//! routes in [`crate::realtime`].

use super::ApiTags;
use crate::realtime::Realtime;
use events::{TenantId, Uid};
use platform::auth::CallerAuth;
use platform::error::{ApiError, Failure};
use platform::http::{BodyRules, BoundedBody, JsonBody};
use platform::token::{DeviceFlag, DEFAULT_TTL_S};
use poem_openapi::param::Query;
use poem_openapi::payload::{Html, Json};
use poem_openapi::{Object, OpenApi};
use std::sync::Arc;

/// Most uids in one presence query.
const MAX_UIDS: usize = 200;

/// The browser client (`query-svc/static/index.html`).
const INDEX_HTML: &str = include_str!("../../static/index.html");

/// One device of an online user.
#[derive(Debug, Object, serde::Serialize)]
pub struct OnlineDevice {
    /// 0 app, 1 web, 2 desktop.
    pub device_flag: u8,
}

/// A user's presence.
#[derive(Debug, Object, serde::Serialize)]
pub struct UserOnline {
    /// The user.
    pub uid: String,
    /// Whether any device is connected to any query-svc instance.
    pub online: bool,
    /// The connected device classes.
    pub devices: Vec<OnlineDevice>,
}

/// A dev token request.
#[derive(Debug, Object, serde::Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct DevTokenRequest {
    /// The user: 1–128 bytes of UTF-8 without whitespace or control characters.
    #[oai(validator(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$"
    ))]
    pub uid: String,
    /// 0 app, 1 web (default), 2 desktop.
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "2")))]
    #[serde(default)]
    pub device_flag: Option<u8>,
}

impl poem_openapi::types::Example for DevTokenRequest {
    fn example() -> Self {
        Self {
            uid: "alice".into(),
            device_flag: Some(1),
        }
    }
}

impl BoundedBody for DevTokenRequest {
    fn max_body_bytes(_: &BodyRules) -> usize {
        platform::http::MAX_ID_JSON_BYTES + 256
    }
}

/// A dev token.
#[derive(Debug, Object, serde::Serialize)]
pub struct DevToken {
    /// The JWT.
    pub token: String,
    /// Expiry, ms since the Unix epoch.
    pub expires_at: i64,
    /// The user.
    pub uid: String,
    /// The device class.
    pub device_flag: u8,
}

/// A dev token's answer: the token in the body, and as the `parley_token` cookie.
#[derive(poem_openapi::ApiResponse)]
pub enum DevTokenAnswer {
    /// The token. `Set-Cookie: parley_token=<token>; HttpOnly; Secure; SameSite=Lax; Path=/;
    /// Max-Age=<lifetime>` lets a browser page read and subscribe without handling the token.
    #[oai(status = 200)]
    Ok(
        Json<DevToken>,
        /// The token as an HttpOnly cookie.
        #[oai(header = "Set-Cookie")]
        String,
    ),
}

/// Presence, dev tokens and the browser client.
pub struct RealtimeApi {
    /// Shared realtime state.
    pub rt: Arc<Realtime>,
    /// The tenant dev tokens are minted for, when enabled (`PARLEY_DEV_TOKENS=1`).
    pub dev_tenant: Option<TenantId>,
}

#[OpenApi(tag = "ApiTags::Realtime")]
impl RealtimeApi {
    /// Presence of up to 200 users (`uids` comma-separated), across every query-svc instance:
    /// `[{uid, online, devices: [{device_flag}]}]` in the order asked.
    #[oai(
        path = "/v1/users/online",
        method = "get",
        operation_id = "users_online"
    )]
    async fn online(
        &self,
        auth: CallerAuth,
        /// Comma-separated uids, 1–200.
        #[oai(example = "super::docs::uids")]
        uids: Query<String>,
    ) -> Result<Json<Vec<UserOnline>>, Failure<super::docs::OnlineErrors>> {
        let mut parsed = Vec::new();
        for raw in uids.0.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            parsed.push(
                Uid::parse(raw)
                    .map_err(|e| ApiError::validation("uids", format!("uids: {raw:?} {e}")))?,
            );
        }
        if parsed.is_empty() || parsed.len() > MAX_UIDS {
            return Err(ApiError::validation(
                "uids",
                format!("uids must name 1 to {MAX_UIDS} users"),
            )
            .into());
        }
        let online = self.rt.presence.online(auth.caller().tenant(), &parsed);
        Ok(Json(
            online
                .into_iter()
                .map(|o| UserOnline {
                    uid: o.uid.as_str().to_owned(),
                    online: !o.devices.is_empty(),
                    devices: o
                        .devices
                        .into_iter()
                        .map(|d| OnlineDevice { device_flag: d })
                        .collect(),
                })
                .collect(),
        ))
    }

    /// Development only: a user token for `uid` of the dev tenant, without credentials.
    /// 404 `NOT_FOUND` unless the service runs with `PARLEY_DEV_TOKENS=1`.
    #[oai(path = "/v1/dev/tokens", method = "post", operation_id = "dev_token")]
    async fn dev_token(
        &self,
        body: JsonBody<DevTokenRequest>,
    ) -> Result<DevTokenAnswer, Failure<super::docs::DevTokenErrors>> {
        let Some(tenant) = &self.dev_tenant else {
            return Err(ApiError::not_found("NOT_FOUND", "dev tokens are disabled").into());
        };
        let uid = Uid::parse(body.0.uid.as_str())
            .map_err(|e| ApiError::validation("uid", format!("uid {e}")))?;
        let device = DeviceFlag::try_from(body.0.device_flag.unwrap_or(1))
            .map_err(|e| ApiError::validation("device_flag", e))?;
        let minted = self
            .rt
            .tokens
            .mint(tenant, &uid, device, DEFAULT_TTL_S)
            .map_err(|e| ApiError::unavailable("TOKENS_DISABLED", e.to_string()))?;
        let cookie = format!(
            "{}={}; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age={DEFAULT_TTL_S}",
            platform::auth::TOKEN_COOKIE,
            minted.token
        );
        Ok(DevTokenAnswer::Ok(
            Json(DevToken {
                token: minted.token,
                expires_at: i64::try_from(minted.expires_at_s)
                    .unwrap_or(0)
                    .saturating_mul(1000),
                uid: uid.as_str().to_owned(),
                device_flag: device.as_u8(),
            }),
            cookie,
        ))
    }

    /// The browser chat client.
    #[oai(path = "/", method = "get", hidden)]
    async fn index(&self) -> Html<&'static str> {
        Html(INDEX_HTML)
    }
}
