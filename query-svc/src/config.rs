//! The query service's settings, read through [`platform::config::Source`].

use platform::config::{Common, Source};
use std::time::Duration;

/// Settings of the query service.
#[derive(Debug, Clone)]
pub struct Config {
    /// `PARLEY_QUERY_LISTEN`: the HTTP listen address, default `127.0.0.1:5002`.
    pub listen: String,
    /// Settings shared by every service (NATS, Postgres, stream, API keys).
    pub common: Common,
    /// `PARLEY_CONSISTENCY_WAIT_MS`: how long a request with `min_event_seq` may wait for the
    /// projections to catch up before answering 503 `PROJECTION_LAGGING`; default 2000 ms.
    pub consistency_wait: Duration,
    /// `PARLEY_READY_MAX_LAG`: the largest projection lag, in events, at which `/ready` still
    /// answers 200; default 100000.
    pub ready_max_lag: u64,
    /// `PARLEY_WS_PING_MS` (default 25000), `PARLEY_WS_IDLE_MS` (60000), `PARLEY_WS_QUEUE`
    /// (1024 frames), `PARLEY_WS_SYNC_WAIT_MS` (3000): WebSocket heartbeat, idle timeout,
    /// outbound queue and how long live frames wait for a new connection's first `sync`.
    pub ws: crate::realtime::WsConfig,
    /// `PARLEY_DEV_TOKENS=1` enables `POST /v1/dev/tokens` for the tenant `PARLEY_DEV_TENANT`
    /// (default `dev`); never in production.
    pub dev_tenant: Option<events::TenantId>,
    /// `PARLEY_ALLOWED_ORIGINS`: browser origins allowed for tenants without their own
    /// `allowed_origins` setting (comma-separated; default none: same-origin only).
    pub allowed_origins: Vec<String>,
}

impl Config {
    /// Reads the settings from `src`.
    ///
    /// # Errors
    /// A malformed value (e.g. a non-numeric `PARLEY_CONSISTENCY_WAIT_MS`).
    pub fn load(src: &Source) -> anyhow::Result<Self> {
        Ok(Self {
            listen: src.string("query_listen", "127.0.0.1:5002"),
            common: Common::load(src)?,
            consistency_wait: src.millis("consistency_wait_ms", 2000)?,
            ready_max_lag: src.parse("ready_max_lag", 100_000)?,
            ws: crate::realtime::WsConfig {
                ping: src.millis("ws_ping_ms", 25_000)?,
                idle: src.millis("ws_idle_ms", 60_000)?,
                queue: src.parse("ws_queue", 1024usize)?,
                sync_wait: src.millis("ws_sync_wait_ms", 3000)?,
            },
            dev_tenant: if src.parse("dev_tokens", 0u8)? == 1 {
                Some(events::TenantId::parse(src.string("dev_tenant", "dev"))?)
            } else {
                None
            },
            allowed_origins: platform::origin::parse_list(&src.string("allowed_origins", ""))
                .map_err(anyhow::Error::msg)?,
        })
    }
}
