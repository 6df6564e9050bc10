//! The S1 baseline: a bare poem handler that publishes the request body to JetStream and
//! awaits the ack, nothing else (no parsing, validation, state or idempotency). It runs as
//! its own process (`bench baseline-server`), like the command service it is compared with,
//! against a stream with the same settings (`platform::log::ensure_stream`).
//!
//! Env: `BENCH_BASELINE_LISTEN`, `PARLEY_NATS_URL`, `PARLEY_STREAM`, `PARLEY_SUBJECT_ROOT`.

use anyhow::Context;
use poem::{handler, http::StatusCode, post, web::Data, EndpointExt, Response, Route};
use std::time::Duration;

/// Unacked publishes allowed, as the command service's default.
const MAX_ACK_INFLIGHT: usize = 20_000;

#[handler]
async fn publish(
    body: poem::Body,
    Data(ctx): Data<&(async_nats::jetstream::Context, String)>,
) -> Response {
    let (js, subject) = ctx;
    let outcome = async {
        let bytes = body.into_bytes().await?;
        let ack = js.publish(subject.clone(), bytes).await?.await?;
        anyhow::Ok(ack.sequence)
    }
    .await;
    match outcome {
        Ok(seq) => Response::builder()
            .content_type("application/json")
            .body(format!("{{\"event_seq\":{seq}}}")),
        Err(e) => Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .body(e.to_string()),
    }
}

/// Serves `POST /v1/messages` and `GET /health` until SIGINT/SIGTERM.
///
/// # Errors
/// NATS or the listener fails at start.
pub async fn serve() -> anyhow::Result<()> {
    let env = |k: &str| std::env::var(k).with_context(|| k.to_owned());
    let listen = env("BENCH_BASELINE_LISTEN")?;
    let root = env("PARLEY_SUBJECT_ROOT")?;
    let (_client, js) =
        platform::log::connect(&env("PARLEY_NATS_URL")?, "bench-baseline", MAX_ACK_INFLIGHT)
            .await?;
    platform::log::ensure_stream(&js, &env("PARLEY_STREAM")?, &root).await?;
    let app = Route::new()
        .at("/v1/messages", post(publish))
        .at("/health", poem::get(poem::endpoint::make_sync(|_| "ok")))
        .data((js, format!("{root}.raw")));
    let (acceptor, _) = platform::http::bind(&listen).await?;
    poem::Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(
            app,
            platform::shutdown::signal(),
            Some(Duration::from_secs(5)),
        )
        .await?;
    Ok(())
}
