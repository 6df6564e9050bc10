//! # platform — plumbing shared by Parley's services
//!
//! Nothing here knows the messaging domain's rules; it is what every service needs around them
//! (it reads `events` only for the id rules of tokens and parameters).
//!
//! ## Layout
//! - [`config`]: typed configuration from `PARLEY_*` env vars and an optional TOML file.
//! - [`telemetry`]: `tracing` subscriber and the Prometheus recorder.
//! - [`auth`]: API key → tenant resolution (`Authorization: Bearer <key>`), and
//!   [`auth::CallerAuth`]: an API key or a user token.
//! - [`token`]: end-user JWTs, per-tenant keys derived from `PARLEY_TOKEN_SECRET`.
//! - [`error`]: the JSON error body `{"error": {"code", "message", "field"}}` and [`error::ApiError`].
//! - [`http`]: [`http::JsonBody`] (JSON bodies with per-type limits whose errors name the
//!   field), the rendering of every framework error as the JSON error body.
//! - [`edge`]: the middleware every request passes: UTF-8 checks of path and query, error
//!   rendering with named path parameters, `Allow` on 405, request metrics.
//! - [`server`]: the HTTP server: connection cap, header/idle timeouts, accept errors,
//!   draining shutdown.
//! - [`params`]: parameter types with the `events` rules (ids).
//! - [`openapi`]: the finished OpenAPI document and Swagger UI.
//! - [`log`]: NATS connection and the event stream's definition.
//! - [`db`]: the Postgres pool.
//! - [`retry`]: the retry policies (backon) of every loop that waits for a dependency.
//! - [`probes`]: `/health`, `/ready`, `/metrics`, one OpenAPI-documented API every binary
//!   serves with its own readiness check.
//! - [`shutdown`]: SIGINT/SIGTERM, the shared cancellation token, the task tracker.
//! - [`live`]: what authentication asks of the live tenancy state (implemented elsewhere).
//! - [`ratelimit`], [`instances`]: rate limits per tenant and user with the IETF draft's
//!   headers, split over the live instances of a service.
//! - [`origin`]: browser origins (same-origin rule, listed origins).

pub mod auth;
pub mod config;
pub mod db;
pub mod edge;
pub mod error;
pub mod http;
pub mod instances;
pub mod live;
pub mod log;
pub mod openapi;
pub mod origin;
pub mod params;
pub mod probes;
pub mod ratelimit;
pub mod retry;
pub mod server;
pub mod shutdown;
pub mod telemetry;
pub mod token;

/// Milliseconds since the Unix epoch, from the system clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
