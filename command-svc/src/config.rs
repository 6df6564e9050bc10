//! Command service settings (env `PARLEY_*`, optional TOML file `PARLEY_CONFIG`).

use platform::config::{Common, Source};

/// Settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Shared settings.
    pub common: Common,
    /// `PARLEY_COMMAND_LISTEN`, default `127.0.0.1:5001`.
    pub listen: String,
    /// `PARLEY_MAX_PAYLOAD_BYTES`: largest decoded payload, default 65536 (64 KiB).
    pub max_payload_bytes: usize,
    /// `PARLEY_CACHE_CHANNELS`: channel states kept in memory, default 100000.
    pub cache_channels: usize,
    /// `PARLEY_MAX_ACK_INFLIGHT`: unacked JetStream publishes, default 20000.
    pub max_ack_inflight: usize,
    /// `PARLEY_MASTER_KEY`: the admin API's key (≥ 32 bytes); unset, the admin API is off.
    pub master_key: Option<String>,
    /// `PARLEY_RATE_LIMIT_MASTER_PER_S`: admin calls per second per instance, default 50
    /// (0 = no limit).
    pub master_rate_per_s: u32,
}

impl Config {
    /// Reads the settings.
    ///
    /// # Errors
    /// Malformed values.
    pub fn load(src: &Source) -> anyhow::Result<Self> {
        Ok(Self {
            common: Common::load(src)?,
            listen: src.string("command_listen", "127.0.0.1:5001"),
            max_payload_bytes: src.parse("max_payload_bytes", 65536usize)?,
            cache_channels: src.parse("cache_channels", 100_000usize)?,
            max_ack_inflight: src.parse("max_ack_inflight", 20_000usize)?,
            master_key: src.get("master_key").filter(|k| !k.is_empty()),
            master_rate_per_s: src.parse("rate_limit_master_per_s", 50u32)?,
        })
    }
}
