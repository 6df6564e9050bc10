//! Projector settings (env `PARLEY_*`, see the README).

use crate::core::Projection;
use platform::config::{Common, Source};

/// Projector settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Shared settings (NATS, Postgres, stream, subject root).
    pub common: Common,
    /// `PARLEY_PROJECTOR_LISTEN`: address of `/health`, `/ready` and `/metrics`,
    /// default `127.0.0.1:5003`.
    pub listen: String,
    /// `PARLEY_PROJECTOR_BATCH`: most events per transaction, default 5000 (at most 20,000).
    pub batch_size: usize,
    /// `PARLEY_PROJECTIONS`: comma-separated projections to run, default all
    /// (`messages,channels,conversations`).
    pub projections: Vec<Projection>,
}

impl Config {
    /// Reads the settings.
    ///
    /// # Errors
    /// Malformed values or an unknown projection name.
    pub fn load(src: &Source) -> anyhow::Result<Self> {
        let projections = match src.get("projections") {
            None => Projection::ALL.to_vec(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    Projection::from_name(s).ok_or_else(|| {
                        anyhow::anyhow!("PARLEY_PROJECTIONS: unknown projection {s}")
                    })
                })
                .collect::<anyhow::Result<_>>()?,
        };
        Ok(Self {
            common: Common::load(src)?,
            listen: src.string("projector_listen", "127.0.0.1:5003"),
            batch_size: src.parse("projector_batch", 5000usize)?.clamp(1, 20_000),
            projections,
        })
    }
}
