//! Live push to end users: the WebSocket (`GET /v1/ws`) and Server-Sent Events
//! (`GET /v1/events`) endpoints, the per-instance fan-out hub that follows the event log,
//! presence and typing. The protocol is documented in `docs/realtime.md`.
//!
//! - [`hub`]: follows the log, keeps group membership exact at its position, fans events out to
//!   this instance's connections through bounded queues.
//! - [`session`]: one connection's cursor per channel (gap-free, duplicate-free seam between
//!   catch-up and live) and the client frames.
//! - [`ws`], [`sse`]: the two transports.
//! - [`presence`]: who is online, in a JetStream key-value bucket watched by every instance.
//! - [`frames`]: the JSON frames.

pub mod frames;
pub mod hub;
pub mod presence;
pub mod session;
pub mod sse;
pub mod ws;

use crate::api::AppState;
use events::subject::Subjects;
use platform::token::UserTokens;
use std::sync::Arc;
use std::time::Duration;

/// Connection settings.
#[derive(Debug, Clone)]
pub struct WsConfig {
    /// How often the server pings (WebSocket ping frame; SSE comment).
    pub ping: Duration,
    /// A connection that sends nothing for this long is closed (4009).
    pub idle: Duration,
    /// Outbound queue per connection, in frames.
    pub queue: usize,
}

/// What the realtime endpoints share.
pub struct Realtime {
    /// The read side's state (pool, checkpoints).
    pub app: Arc<AppState>,
    /// The fan-out hub.
    pub hub: hub::Hub,
    /// Presence.
    pub presence: presence::Presence,
    /// Core NATS (typing, commands).
    pub nats: async_nats::Client,
    /// Subject naming.
    pub subjects: Subjects,
    /// User token verification.
    pub tokens: UserTokens,
    /// Connection settings.
    pub config: WsConfig,
    /// Shutdown, which closes every connection with 1001.
    pub stop: platform::shutdown::Shutdown,
}

/// The user token of a request: `Authorization: Bearer <token>`, else `?token=`.
///
/// # Errors
/// 401 `UNAUTHORIZED` saying why.
pub fn authenticate(
    req: &poem::Request,
    tokens: &UserTokens,
) -> Result<platform::token::UserClaims, platform::error::ApiError> {
    let header = req
        .headers()
        .get(poem::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let query = || {
        req.uri().query().and_then(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == "token")
                .map(|(_, v)| v.to_owned())
        })
    };
    let token = header.or_else(query).ok_or_else(|| {
        platform::error::ApiError::unauthorized(
            "send a user token as Authorization: Bearer <token> or ?token=<token>",
        )
    })?;
    platform::auth::verify_user(tokens, token.trim())
}

/// Seconds until `exp` (seconds since the Unix epoch), from now.
fn until(exp_s: u64) -> Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_secs(exp_s).saturating_sub(now)
}
