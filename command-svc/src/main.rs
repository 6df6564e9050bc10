//! `command-svc`: the command service binary (see the crate docs).

/// mimalloc: the services allocate many short-lived strings and JSON buffers per request,
/// where glibc malloc showed up as a third of the CPU profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::telemetry::init_tracing();
    let src = platform::config::Source::from_env()?;
    let config = command_svc::Config::load(&src)?;
    let (acceptor, addr) = platform::http::bind(&config.listen).await?;
    tracing::info!(%addr, "command service at http://{addr} (docs at /docs)");
    // Drains for up to 10 s; the process ends within 15 s of SIGTERM whatever is down.
    platform::shutdown::bounded(
        platform::shutdown::signal(),
        std::time::Duration::from_secs(15),
        |stop| command_svc::serve(config, acceptor, stop.wait()),
    )
    .await
}
