//! `query-svc`: serves Parley's read side over HTTP until SIGINT/SIGTERM.

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
    query_svc::serve(config, acceptor, platform::shutdown::signal()).await
}
