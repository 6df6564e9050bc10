//! The HTTP server of every service: poem endpoints served by hyper with the limits an
//! exposed service needs, which `poem::Server` does not offer.
//!
//! - **Connection cap** ([`HttpSettings::max_connections`]): at most this many connections
//!   (WebSockets and SSE streams included) are open at once; at the cap the server stops
//!   accepting until one closes (new connections wait in the kernel's backlog), so file
//!   descriptors always remain for Postgres and NATS.
//! - **Header timeout** ([`HttpSettings::header_timeout`]): a connection must deliver a
//!   request's complete head within this time of opening, or of its previous response (hyper's
//!   `header_read_timeout`, so it is also the keep-alive idle bound between requests). Closes
//!   slowloris connections that trickle headers.
//! - **Idle timeout** ([`HttpSettings::idle_timeout`]): a connection that neither reads nor
//!   writes a byte for this long is closed (a client that stopped reading a response, a body
//!   that stopped arriving). Sockets upgraded to WebSocket leave this watch; the realtime
//!   protocol has its own pings and idle close.
//! - **Body timeout** ([`HttpSettings::body_timeout`]): enforced where bodies are read
//!   ([`crate::http::JsonBody`]): 408 when a body has not fully arrived in this time.
//! - **Accept errors** (such as `EMFILE`) are logged (at most once a second) and counted in
//!   `<service>_http_accept_errors_total`, and accepting backs off instead of spinning.
//! - **Shutdown**: stop accepting, let every connection finish its in-flight request
//!   (HTTP/1 graceful close), and abort whatever still runs after the drain deadline.
//!
//! Gauge `<service>_http_connections` shows the open connections.

mod io;

pub use crate::config::HttpSettings;
use io::{Activity, OpenGauge, Tracked};
use poem::listener::Acceptor;
use poem::Endpoint;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Logs accept errors at most once a second and backs off between failed accepts.
struct AcceptErrors {
    service: &'static str,
    last_log: Option<Instant>,
    streak: u32,
    delays: crate::retry::Delays,
}

impl AcceptErrors {
    async fn failed(&mut self, e: &std::io::Error) {
        self.streak += 1;
        metrics::counter!(format!("{}_http_accept_errors_total", self.service)).increment(1);
        if self
            .last_log
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            tracing::warn!(service = self.service, error = %e, failures = self.streak, "accepting a connection failed; backing off");
            self.last_log = Some(Instant::now());
        }
        tokio::time::sleep(self.delays.next_delay()).await;
    }
}

/// Serves `ep` on `acceptor` with `settings` until `shutdown` resolves, then drains: in-flight
/// requests get up to `drain` to finish, after which their connections are dropped.
/// `service` prefixes the metric names (`command_svc`, `query_svc`, `projector`).
///
/// # Errors
/// None today (accept errors are logged and retried); the `Result` keeps the shape of
/// `poem::Server::run_with_graceful_shutdown`.
pub async fn serve<A, E>(
    mut acceptor: A,
    ep: E,
    settings: HttpSettings,
    service: &'static str,
    shutdown: impl std::future::Future<Output = ()>,
    drain: Duration,
) -> std::io::Result<()>
where
    A: Acceptor + 'static,
    E: Endpoint + 'static,
{
    let ep = Arc::new(ep);
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let stop = CancellationToken::new();
    let mut connections = JoinSet::new();
    let mut errors = AcceptErrors {
        service,
        last_log: None,
        streak: 0,
        delays: crate::retry::ACCEPT.delays(),
    };
    let mut capped_since: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if capped_since.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    tracing::warn!(
                        service,
                        max_connections = settings.max_connections,
                        "connection cap reached; new connections wait until one closes"
                    );
                    capped_since = Some(Instant::now());
                }
                tokio::select! {
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                    _ = &mut shutdown => break,
                }
            }
        };
        let accepted = tokio::select! {
            a = acceptor.accept() => a,
            _ = &mut shutdown => break,
        };
        match accepted {
            Ok((io, local, remote, scheme)) => {
                if errors.streak > 0 {
                    errors.streak = 0;
                    errors.delays.reset();
                }
                let activity = Arc::new(Activity::new());
                let io = Tracked::new(io, activity.clone(), slot, OpenGauge::new(service));
                let ep = ep.clone();
                let stop = stop.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let ep = ep.clone();
                        let req = poem::Request::from((
                            req,
                            local.clone(),
                            remote.clone(),
                            scheme.clone(),
                        ));
                        async move {
                            let resp = ep.get_response(req).await;
                            Ok::<_, Infallible>(http_response(resp))
                        }
                    });
                    connection(io, activity, service, settings, stop).await;
                });
            }
            Err(e) => errors.failed(&e).await,
        }
    }
    drop(acceptor);
    stop.cancel();
    let drained = tokio::time::timeout(drain, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            service,
            open = connections.len(),
            "drain deadline passed; dropping the connections still open"
        );
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
    Ok(())
}

/// poem's response as hyper's.
fn http_response(
    resp: poem::Response,
) -> http::Response<http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error>> {
    resp.into()
}

/// Serves one connection until it closes, idles out, or `stop` asks for a graceful close.
async fn connection<T, S>(
    io: Tracked<T>,
    activity: Arc<Activity>,
    service: S,
    settings: HttpSettings,
    stop: CancellationToken,
) where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    S: hyper::service::Service<
            http::Request<hyper::body::Incoming>,
            Response = http::Response<
                http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error>,
            >,
            Error = Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
{
    // HTTP/1.1 only (no HTTP/2 detection, which would read the first bytes with no timeout,
    // so a silent connection never met the header timeout).
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(settings.header_timeout)
        .keep_alive(true)
        .serve_connection(hyper_util::rt::TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        _ = &mut conn => return,
        _ = activity.idle(settings.idle_timeout) => {
            tracing::debug!("closing an idle connection");
            return;
        }
        _ = stop.cancelled() => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}
