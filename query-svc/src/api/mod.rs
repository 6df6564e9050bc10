//! HTTP: the poem-openapi operations (one file per resource), their DTOs and the app's route.
//!
//! - [`messages`]: channel history and a message by id.
//! - [`conversations`]: a user's conversation list.
//! - [`channels`]: group info and members.
//! - [`moderation`]: a group's bans, blacklist and whitelist; a user's blocks.
//! - [`realtime`]: presence, dev tokens, the browser client (the sockets live in
//!   [`crate::realtime`]).
//! - [`ops`]: what `/ready` checks ([`platform::probes`] serves `/health`, `/ready`,
//!   `/metrics`; no API key: probes and scrapers have none).
//! - [`docs`]: each operation's error statuses and the parameter examples.
//!
//! Every resource operation is secured by [`platform::auth::TenantAuth`] and answers errors as
//! [`ApiError`]. Inputs are validated here (ids, channel types, limits, cursors) and each
//! operation waits for `min_event_seq` (see [`crate::consistency`]) before it reads.

pub mod channels;
pub mod conversations;
pub mod docs;
pub mod messages;
pub mod moderation;
pub mod ops;
pub mod realtime;

use crate::consistency::{Checkpoints, Projection, WaitError};
use crate::store::{MessageRow, StoreError};
use base64::Engine as _;
use events::{ChannelId, ChannelType, Uid};
use platform::auth::ApiKeys;
use platform::error::ApiError;
use poem::{Endpoint, EndpointExt, Route};
use poem_openapi::{Object, OpenApiService, Tags};
use std::sync::Arc;
use std::time::Duration;

/// What every handler shares.
pub struct AppState {
    /// Postgres, holding the read models.
    pub pool: deadpool_postgres::Pool,
    /// The NATS connection (for `/ready`).
    pub nats: async_nats::Client,
    /// JetStream, for the event stream's last sequence (for `/ready`).
    pub jetstream: async_nats::jetstream::Context,
    /// The event stream's name.
    pub stream: String,
    /// Highest checkpoint seen per projection (shared with the realtime catch-ups).
    pub checkpoints: Arc<Checkpoints>,
    /// Longest wait for `min_event_seq`.
    pub consistency_wait: Duration,
    /// Largest projection lag at which `/ready` answers 200, in events.
    pub ready_max_lag: u64,
    /// The rate limits (per tenant in the authentication, per user here).
    pub limiter: Arc<platform::ratelimit::Limiter>,
}

/// Counts one read by `uid` of `tenant` against the `user-reads` limit, noting the outcome for
/// the answer's headers.
///
/// # Errors
/// 429 `RATE_LIMIT_EXCEEDED` (with `retry_after_ms`; the headers come from the noted outcome).
pub fn count_read(
    state: &AppState,
    req: &poem::Request,
    tenant: &events::TenantId,
    uid: &events::Uid,
) -> Result<(), ApiError> {
    let Some(o) = state
        .limiter
        .user(tenant, uid, platform::ratelimit::Scope::UserReads, 1)
    else {
        return Ok(());
    };
    let refused = (!o.allowed()).then(|| o.error());
    if let Some(slot) = req.extensions().get::<platform::ratelimit::Slot>() {
        slot.push(o);
    }
    refused.map_or(Ok(()), Err)
}

impl AppState {
    /// Waits until `projections` have applied `min_event_seq` (see
    /// [`Checkpoints::wait_for`]).
    ///
    /// # Errors
    /// 503 `PROJECTION_LAGGING` after [`AppState::consistency_wait`]; 503/500 when the
    /// checkpoints cannot be read.
    pub async fn consistent(
        &self,
        projections: &[Projection],
        min_event_seq: Option<u64>,
    ) -> Result<(), ApiError> {
        self.checkpoints
            .wait_for(
                &self.pool,
                projections,
                min_event_seq,
                self.consistency_wait,
            )
            .await
            .map_err(wait_error)
    }
}

/// Operation groups in the OpenAPI document.
#[derive(Tags)]
pub enum ApiTags {
    /// Channel history and single messages.
    Messages,
    /// Per-user conversation lists.
    Conversations,
    /// Group channels and their members.
    Channels,
    /// Presence and dev tokens (the sockets are documented in docs/realtime.md).
    Realtime,
}

/// The OpenAPI document's description.
const DESCRIPTION: &str = "Reads of the Parley messaging service: channel history, single \
messages, conversation lists with unread counts, groups and members, presence. Authenticate with \
an API key (read as any `uid`) or a user token (read as its own uid). Pass a command's \
`event_seq` as `min_event_seq` to read your write. Live events: WebSocket `GET /v1/ws` and \
Server-Sent Events `GET /v1/events` (docs/realtime.md).\n\n\
Every error is `{\"error\": {\"code\", \"message\", \"field\"}}`; each operation lists its own. On \
any path, a method the path does not take is 405 `METHOD_NOT_ALLOWED` with an `Allow` header, \
an unknown path 404 `NOT_FOUND`, and a request HTTP itself cannot parse 400 `BAD_REQUEST` \
(`field`: `request`). Request bodies are JSON (`Content-Type: application/json`, else 415) and \
refuse unknown fields (400 naming the field).";

/// The whole app: the OpenAPI operations at `/`, the spec at `/openapi.json`, Swagger UI at
/// `/docs`, with API keys, the JSON error catch-all and request metrics.
pub fn app(
    state: Arc<AppState>,
    keys: ApiKeys,
    rt: Arc<crate::realtime::Realtime>,
    dev_tenant: Option<events::TenantId>,
) -> impl Endpoint {
    let dev_tokens = dev_tenant.is_some();
    let service = OpenApiService::new(
        (
            messages::MessagesApi {
                state: state.clone(),
            },
            conversations::ConversationsApi {
                state: state.clone(),
            },
            channels::ChannelsApi {
                state: state.clone(),
            },
            moderation::ModerationApi {
                state: state.clone(),
            },
            platform::probes::ProbesApi::new(Arc::new(ops::QueryProbe {
                state,
                rt: rt.clone(),
            })),
            realtime::RealtimeApi {
                rt: rt.clone(),
                dev_tenant,
            },
        ),
        "Parley query service",
        env!("CARGO_PKG_VERSION"),
    )
    .description(DESCRIPTION);
    let docs = platform::openapi::Docs::new(&service.spec(), &service.swagger_ui_html());
    let get_only = [poem::http::Method::GET];
    let routes = platform::edge::Routes::from_openapi(&service.spec())
        .add("/openapi.json", &get_only)
        .add("/docs", &get_only)
        .add("/v1/ws", &get_only)
        .add("/v1/events", &get_only);
    let mut route = Route::new();
    if !dev_tokens {
        // Off: the route is absent (404 before any body is read), not an operation that
        // reads the body and then refuses.
        route = route.at(
            "/v1/dev/tokens",
            poem::endpoint::make_sync(|_| {
                ApiError::not_found("NOT_FOUND", "dev tokens are disabled")
            }),
        );
    }
    route
        .at("/openapi.json", docs.spec_endpoint())
        .nest("/docs", docs.ui_endpoint())
        .at("/v1/ws", poem::get(crate::realtime::ws::handler))
        .at("/v1/events", poem::get(crate::realtime::sse::handler))
        .nest("/", service)
        .data(keys)
        .data(rt.tokens.clone())
        .data(rt)
        .with(platform::edge::Edge::new("query_svc", routes))
}

/// A message as the API shows it to one viewer.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct Message {
    /// The message's UUID.
    pub message_id: String,
    /// Per-channel sequence, from 1, gap-free.
    pub message_seq: u64,
    /// The sender's idempotency key, or null.
    #[oai(nullable)]
    pub client_msg_no: Option<String>,
    /// The sender.
    pub from_uid: String,
    /// The channel as the viewer names it: the group id, or the peer's uid for personal.
    pub channel_id: String,
    /// 1 personal, 2 group.
    pub channel_type: u8,
    /// When the message was accepted, ms since the Unix epoch.
    pub timestamp: i64,
    /// The payload, standard base64 with padding.
    pub payload: String,
}

impl Message {
    /// The DTO of `row` in the channel the viewer calls `channel_id`.
    pub fn from_row(row: MessageRow, channel_id: String, channel_type: u8) -> Self {
        Self {
            message_id: row.message_id,
            message_seq: seq_out(row.message_seq),
            client_msg_no: row.client_msg_no,
            from_uid: row.from_uid,
            channel_id,
            channel_type,
            timestamp: row.sent_at,
            payload: base64::engine::general_purpose::STANDARD.encode(row.payload),
        }
    }
}

/// A stored (non-negative) sequence as the API's `u64`.
pub fn seq_out(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The viewer given as `field` (`uid`).
///
/// # Errors
/// 400 `VALIDATION_ERROR` naming `field`.
pub fn parse_uid(field: &str, raw: &str) -> Result<Uid, ApiError> {
    Uid::parse(raw).map_err(|e| ApiError::validation(field, format!("{field} {e}")))
}

/// A `channel_id` path parameter.
///
/// # Errors
/// 400 `VALIDATION_ERROR` naming `channel_id`.
pub fn parse_channel_id(raw: &str) -> Result<ChannelId, ApiError> {
    ChannelId::parse(raw).map_err(|e| ApiError::validation("channel_id", format!("channel_id {e}")))
}

/// A `channel_type` path parameter: 1 or 2.
///
/// # Errors
/// 400 `VALIDATION_ERROR` naming `channel_type`.
pub fn parse_channel_type(raw: u64) -> Result<ChannelType, ApiError> {
    u8::try_from(raw)
        .map_err(|_| format!("unknown channel_type {raw}; expected 1 or 2"))
        .and_then(ChannelType::try_from)
        .map_err(|e| ApiError::validation("channel_type", e))
}

/// A page size: `default` when absent, else within `1..=max`.
///
/// # Errors
/// 400 `VALIDATION_ERROR` naming `limit`.
pub fn parse_limit(raw: Option<u64>, default: usize, max: usize) -> Result<usize, ApiError> {
    match raw {
        None => Ok(default),
        Some(n) => usize::try_from(n)
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| ApiError::validation("limit", format!("limit must be 1..={max}"))),
    }
}

impl<S> From<StoreError> for platform::error::Failure<S> {
    fn from(e: StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "database unavailable");
            ApiError::unavailable("DATABASE_UNAVAILABLE", "the database is unavailable")
        } else {
            ApiError::internal("read model query", e)
        }
    }
}

fn wait_error(e: WaitError) -> ApiError {
    match e {
        WaitError::Lagging { .. } => ApiError::unavailable("PROJECTION_LAGGING", e.to_string()),
        WaitError::Store(s) => s.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert_eq!(parse_limit(None, 50, 100).ok(), Some(50));
        assert_eq!(parse_limit(Some(1), 50, 100).ok(), Some(1));
        assert_eq!(parse_limit(Some(100), 50, 100).ok(), Some(100));
        assert_eq!(
            parse_limit(Some(0), 50, 100).map_err(|e| e.status()).err(),
            Some(400)
        );
        assert_eq!(
            parse_limit(Some(101), 50, 100)
                .map_err(|e| e.status())
                .err(),
            Some(400)
        );
    }

    #[test]
    fn channel_types() {
        assert!(matches!(parse_channel_type(1), Ok(ChannelType::Personal)));
        assert!(matches!(parse_channel_type(2), Ok(ChannelType::Group)));
        for bad in [0, 3, 257] {
            let err = parse_channel_type(bad).err();
            assert_eq!(
                err.as_ref()
                    .and_then(|e| e.body().error.field.clone())
                    .as_deref(),
                Some("channel_type")
            );
        }
    }

    #[test]
    fn message_payload_is_padded_base64() {
        let row = MessageRow {
            message_id: "0190a0a0-0000-7000-8000-000000000000".into(),
            message_seq: 3,
            client_msg_no: None,
            from_uid: "alice".into(),
            payload: b"hi".to_vec(),
            sent_at: 42,
        };
        let m = Message::from_row(row, "bob".into(), 1);
        assert_eq!(m.payload, "aGk=");
        assert_eq!(m.message_seq, 3);
        assert_eq!(m.timestamp, 42);
    }
}
