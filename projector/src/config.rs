//! Projector settings (env `PARLEY_*`, see the README).

use crate::core::Projection;
use crate::shell::batch::PoisonPolicy;
use platform::config::{Common, Source};
use std::time::Duration;

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
    /// `PARLEY_PROJECTOR_ON_POISON`: `skip` (default) or `stop`; see [`PoisonPolicy`] and
    /// `docs/operations.md`.
    pub on_poison: PoisonPolicy,
    /// `PARLEY_PROJECTOR_POISON_ATTEMPTS`: failed attempts of a batch (with backoff 0.1, 0.2,
    /// 0.4 … s) before its failing event is parked, default 5.
    pub poison_attempts: u32,
    /// `PARLEY_PROJECTOR_GC_GRACE_HOURS`: retired versions older than this are dropped by the
    /// running projector (checked hourly); default 24, `0` disables (then only
    /// `projector gc` drops them).
    pub gc_grace: Option<Duration>,
    /// `PARLEY_READY_MAX_LAG`: `/ready` answers 503 while a projection is more events than
    /// this behind the log, default 100,000.
    pub ready_max_lag: u64,
    /// `PARLEY_READY_MAX_LAG_SECONDS`: … or its newest applied event is older than this while
    /// it is behind, default 30.
    pub ready_max_lag_seconds: f64,
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
            on_poison: match src.get("projector_on_poison") {
                None => PoisonPolicy::Skip,
                Some(v) => PoisonPolicy::parse(v.trim()).ok_or_else(|| {
                    anyhow::anyhow!("PARLEY_PROJECTOR_ON_POISON: expected skip or stop, got {v}")
                })?,
            },
            poison_attempts: src.parse("projector_poison_attempts", 5u32)?.max(1),
            gc_grace: match src.parse("projector_gc_grace_hours", 24u64)? {
                0 => None,
                h => Some(Duration::from_secs(h * 3600)),
            },
            ready_max_lag: src.parse("ready_max_lag", 100_000u64)?,
            ready_max_lag_seconds: src.parse("ready_max_lag_seconds", 30f64)?,
        })
    }
}
