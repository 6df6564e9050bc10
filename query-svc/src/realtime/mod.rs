//! Live push to end users: the WebSocket (`GET /v1/ws`) and Server-Sent Events
//! (`GET /v1/events`) endpoints, the per-instance fan-out hub that follows the event log,
//! presence and typing. The protocol is documented in `docs/realtime.md`.
//!
//! - [`hub`]: follows the log, keeps group membership exact at its position, fans events out to
//!   this instance's connections through bounded queues.
//! - [`seam`]: the pure bookkeeping of a connection's in-order, gap-free, duplicate-free
//!   stream per channel (held live items, refills, sync plans).
//! - [`delivery`]: the session's seam cursor: live items, backlog and catch-up pages through
//!   the seam, against a [`catchup::CatchUpStore`] and a [`sink::Sink`].
//! - [`resume`]: `sync` — the plan, its gaps and `synced`.
//! - [`session`]: one connection: its user, its delivery, the services its frames reach;
//!   [`dispatch`]: what each client frame does.
//! - [`sink`]: where frames go and why a session ends (close codes).
//! - [`ws`], [`sse`]: the two transports.
//! - [`catchup`]: the reads behind a catch-up (the narrow handle on the read models), as
//!   futures the connection polls.
//! - [`commands`]: the client frames that act (`send`, `read`, `typing`, presence).
//! - [`typing`]: the typing notices' rate limits (keyed `governor` limiters).
//! - [`presence`]: who is online, in a JetStream key-value bucket watched by every instance.
//! - [`frames`]: the JSON frames.

pub mod catchup;
pub mod commands;
pub mod delivery;
pub mod dispatch;
pub mod frames;
pub mod hub;
pub mod presence;
pub mod resume;
pub mod seam;
pub mod session;
pub mod sink;
pub mod sse;
pub mod typing;
pub mod ws;

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
    /// Outbound queue per connection, in frames; also the most live frames held while a
    /// connection waits for or runs its `sync`.
    pub queue: usize,
    /// How long a new WebSocket connection's live frames are held for its first `sync`
    /// (`docs/realtime.md`); 0 sends them at once.
    pub sync_wait: Duration,
}

/// What the realtime endpoints share.
pub struct Realtime {
    /// The reads of catch-ups.
    pub catch_up: Arc<dyn catchup::CatchUpStore>,
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
    /// Typing rate limits per user.
    pub typing: Arc<typing::TypingLimiter>,
    /// The service's background tasks (each SSE session's task runs on it).
    pub tasks: platform::shutdown::Tasks,
    /// The live tenancy registry (token revocations close sessions).
    pub tenancy: Arc<tenancy::Live>,
    /// Browser origins allowed for tenants without their own list (`PARLEY_ALLOWED_ORIGINS`).
    pub allowed_origins: Arc<Vec<String>>,
}

/// Resolves when a session opened with `claims` must end: its token was revoked
/// (`POST /v1/users/{uid}/tokens/revoke`; 4001) or its tenant suspended (4003). Never
/// resolves otherwise.
pub async fn voided(live: Arc<tenancy::Live>, claims: platform::token::UserClaims) -> sink::End {
    use platform::live::LiveTenancy as _;
    use tokio::sync::broadcast::error::RecvError;
    let revoked = |live: &tenancy::Live| {
        live.tokens_revoked_at(&claims.tenant, &claims.uid)
            .is_some_and(|before| before >= claims.issued_at_s)
    };
    // Subscribed before the checks: a change applied in between is seen by one of them.
    let mut revocations = live.revocations();
    let mut changes = live.changes();
    loop {
        if revoked(&live) {
            return sink::End::Revoked;
        }
        if live.suspended(&claims.tenant) {
            return sink::End::Suspended;
        }
        tokio::select! {
            r = revocations.recv() => match r {
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => std::future::pending::<()>().await,
            },
            c = changes.changed() => if c.is_err() {
                std::future::pending::<()>().await;
            },
        }
    }
}

impl Realtime {
    /// Admits a socket or event-stream request: its user token (`Authorization: Bearer
    /// <token>`, else `?token=`, else the `parley_token` cookie) must verify, its `Origin`
    /// must be allowed for the tenant ([`platform::origin`]), and the hub must follow the log.
    ///
    /// # Errors
    /// 401 `UNAUTHORIZED` saying why (expired, revoked, …); 403 `TENANT_SUSPENDED` or
    /// `ORIGIN_NOT_ALLOWED`; 503
    /// `HUB_STARTING` while the hub loads its snapshot.
    pub fn admit(
        &self,
        req: &poem::Request,
    ) -> Result<platform::token::UserClaims, platform::error::ApiError> {
        let header = req
            .headers()
            .get(poem::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let cookie = platform::auth::token_cookie(req);
        let token = header
            .map(str::to_owned)
            .or_else(|| query_param(req, "token").map(str::to_owned))
            .or_else(|| cookie.map(str::to_owned))
            .ok_or_else(|| {
                platform::error::ApiError::unauthorized(
                    "send a user token as Authorization: Bearer <token>, ?token=<token> or \
                     the parley_token cookie",
                )
            })?;
        let claims = platform::auth::verify_user(&self.tokens, token.trim())?;
        let live = &*self.tenancy;
        if platform::live::LiveTenancy::suspended(live, &claims.tenant) {
            return Err(platform::auth::suspended(&claims.tenant));
        }
        let listed = platform::live::LiveTenancy::allowed_origins(live, &claims.tenant);
        if !platform::origin::allowed(req, listed.as_deref().unwrap_or(&self.allowed_origins)) {
            return Err(platform::error::ApiError::forbidden(
                "ORIGIN_NOT_ALLOWED",
                format!(
                    "origin {} may not open sessions of tenant {}: add it to the tenant's \
                     allowed_origins",
                    platform::origin::of(req).unwrap_or(""),
                    claims.tenant.as_str()
                ),
            ));
        }
        if !self.hub.ready() {
            return Err(platform::error::ApiError::unavailable(
                "HUB_STARTING",
                "the live event hub is starting; retry shortly",
            ));
        }
        Ok(claims)
    }
}

/// The raw value of query parameter `name` (ids and numbers here need no percent-decoding).
fn query_param<'r>(req: &'r poem::Request, name: &str) -> Option<&'r str> {
    req.uri()
        .query()?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Seconds until `exp` (seconds since the Unix epoch), from now.
fn until(exp_s: u64) -> Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_secs(exp_s).saturating_sub(now)
}
