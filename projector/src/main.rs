//! `projector`: runs the projections (`projector` or `projector run`) and serves
//! `/health`, `/ready` and `/metrics` on `PARLEY_PROJECTOR_LISTEN`.

/// mimalloc: the services allocate many short-lived strings and JSON buffers per request,
/// where glibc malloc showed up as a third of the CPU profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use poem::{get, handler, EndpointExt, Route};

#[handler]
fn health() -> &'static str {
    "{\"status\":\"ok\"}"
}

#[handler]
fn metrics() -> String {
    platform::telemetry::metrics().render()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::telemetry::init_tracing();
    let _ = platform::telemetry::metrics();
    let src = platform::config::Source::from_env()?;
    let config = projector::Config::load(&src)?;
    match std::env::args().nth(1).as_deref() {
        None | Some("run") => {}
        Some("migrate") => return projector::migrate::run(&config.common.database_url).await,
        Some(other) => anyhow::bail!("unknown command {other}; usage: projector [run|migrate]"),
    }
    let (acceptor, addr) = platform::http::bind(&config.listen).await?;
    tracing::info!(%addr, "projector metrics at http://{addr}/metrics");
    let app = Route::new()
        .at("/health", get(health))
        .at("/metrics", get(metrics))
        .catch_all_error(platform::http::render_error);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut http_stop = stop_rx.clone();
    let server = tokio::spawn(async move {
        poem::Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(
                app,
                async move {
                    let _ = http_stop.wait_for(|s| *s).await;
                },
                None,
            )
            .await
    });
    let result = projector::run(config, async move {
        platform::shutdown::signal().await;
        let _ = stop_tx.send(true);
    })
    .await;
    let _ = server.await;
    result
}
