//! The event log: NATS connection and the JetStream stream that holds every event.
//!
//! Stream settings: file storage, limits retention with no limits (the log of record keeps
//! everything), `allow_direct` for fast reads of a subject's last event, subjects `<root>.>`.

use async_nats::jetstream::{self, stream};

/// How long [`connect`] waits for the first connection.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Connects to NATS at `url` (one or more comma-separated seed URLs) with a JetStream context
/// allowing `max_ack_inflight` unacked publishes (async-nats defaults to 5,000). Once connected
/// the client reconnects by itself whenever the connection drops.
///
/// # Errors
/// `cannot reach NATS at <url>` when no connection is up within [`CONNECT_TIMEOUT`].
pub async fn connect(
    url: &str,
    name: &str,
    max_ack_inflight: usize,
) -> anyhow::Result<(async_nats::Client, jetstream::Context)> {
    let unreachable = |why: String| anyhow::anyhow!("cannot reach NATS at {url}: {why}");
    let client = async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .connection_timeout(CONNECT_TIMEOUT)
        .connect(url)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
    while !connected(&client) {
        if tokio::time::Instant::now() >= deadline {
            return Err(unreachable(format!(
                "no connection within {} s",
                CONNECT_TIMEOUT.as_secs()
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let js = jetstream::ContextBuilder::new()
        .max_ack_inflight(max_ack_inflight)
        .build(client.clone());
    Ok((client, js))
}

/// Creates the event stream if missing (idempotent) and returns it.
///
/// # Errors
/// JetStream refuses the stream (e.g. subjects overlapping another stream).
pub async fn ensure_stream(
    js: &jetstream::Context,
    name: &str,
    subject_root: &str,
) -> anyhow::Result<stream::Stream> {
    let config = stream::Config {
        name: name.to_owned(),
        subjects: vec![format!("{subject_root}.>")],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        allow_direct: true,
        duplicate_window: std::time::Duration::from_secs(120),
        ..Default::default()
    };
    match js.get_stream(name).await {
        Ok(s) => Ok(s),
        Err(_) => Ok(js.get_or_create_stream(config).await?),
    }
}

/// Whether the NATS connection is up.
pub fn connected(client: &async_nats::Client) -> bool {
    client.connection_state() == async_nats::connection::State::Connected
}
