//! `query-svc`: serves Parley's read side over HTTP until SIGINT/SIGTERM.

/// mimalloc: the services allocate many short-lived strings and JSON buffers per request,
/// where glibc malloc showed up as a third of the CPU profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::telemetry::init_tracing();
    let source = platform::config::Source::from_env()?;
    let config = query_svc::Config::load(&source)?;
    let (acceptor, addr) = platform::http::bind(&config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    tracing::info!(url = %format!("http://{addr}"), "query service listening");
    // Drains for up to 10 s; the process ends within 15 s of SIGTERM whatever is down.
    platform::shutdown::bounded(
        platform::shutdown::signal(),
        std::time::Duration::from_secs(15),
        |stop| query_svc::serve(config, acceptor, stop.wait()),
    )
    .await
}
