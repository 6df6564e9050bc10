//! Logging and metrics set-up.
//!
//! Logs: `tracing` to stderr, filtered by `RUST_LOG` (default `info`, with the migration
//! runner's, the NATS client's and Postgres notices' chatter at `warn`), JSON lines when `PARLEY_LOG_FORMAT=json`,
//! colours only when stderr is a terminal. Metrics: one process-wide Prometheus recorder whose text rendering
//! `/metrics` serves; names follow `<service>_<thing>_<unit>`.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use tracing_subscriber::EnvFilter;

/// Installs the global `tracing` subscriber; a second call is a no-op.
pub fn init_tracing() {
    use std::io::IsTerminal as _;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,refinery=warn,refinery_core=warn,async_nats=warn,tokio_postgres=warn")
    });
    let json = std::env::var("PARLEY_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs (once) and returns the process-wide Prometheus recorder. Latency histograms
/// (`*_seconds`) get buckets from 100 µs to 10 s.
pub fn metrics() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0, 10.0,
            ];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
                .map(|b| b.build_recorder())
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            // Fails only when another recorder is installed already (tests building two apps
            // in one process); the handle then renders this recorder's (empty) view.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}
