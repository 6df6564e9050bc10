//! `GET /v1/ws`: the WebSocket transport of a [`Session`].

use super::commands::CommandFuture;
use super::session::Session;
use super::sink::{End, Sink};
use super::Realtime;
use futures::stream::{FuturesUnordered, SplitSink};
use futures::{SinkExt, StreamExt};
use poem::web::websocket::{Message, WebSocket, WebSocketConfig, WebSocketStream};
use poem::web::Data;
use poem::{handler, IntoResponse, Request, Response};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Largest client frame, in bytes (larger: close 4002).
pub const MAX_FRAME_BYTES: usize = 256 * 1024;
/// A frame the client does not take within this long closes the connection as a slow consumer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing connection waits for the client's close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Most `send`/`read` commands in flight per connection.
const MAX_IN_FLIGHT: usize = 256;

/// Upgrades an authenticated request (user token in `Authorization` or `?token=`; else 401)
/// to a WebSocket session; 503 `HUB_STARTING` until the hub follows the log.
#[handler]
pub async fn handler(req: &Request, ws: WebSocket, rt: Data<&Arc<Realtime>>) -> Response {
    let claims = match rt.admit(req) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let rt = Arc::clone(&rt);
    // Small read buffers: most connections idle, and tungstenite allocates the buffer up
    // front (its 128 KiB default would dominate per-connection memory). A frame over the
    // limit is refused from its header, before its payload is read, and closes with 4002.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES));
    ws.config(config)
        .on_upgrade(move |socket| run(rt, claims, socket))
        .into_response()
}

struct WsSink(SplitSink<WebSocketStream, Message>);

impl Sink for WsSink {
    async fn send(
        &mut self,
        _kind: &'static str,
        _event_seq: Option<u64>,
        json: String,
    ) -> Result<(), End> {
        match tokio::time::timeout(WRITE_TIMEOUT, self.0.send(Message::Text(json))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::Gone),
            Err(_) => Err(End::SlowConsumer),
        }
    }
}

/// Moves everything the hub has queued for this connection into the session (which holds it
/// while backlog is pending).
///
/// # Errors
/// [`End`] from the session.
pub(super) async fn drain(
    reg: &mut super::hub::Registration,
    session: &mut Session<'_>,
    sink: &mut impl Sink,
) -> Result<(), End> {
    while let Ok(out) = reg.rx.try_recv() {
        session.delivery.live(out, sink).await?;
    }
    Ok(())
}

/// What a read error from the socket means: an I/O failure is the client gone; anything the
/// WebSocket layer refused (a frame over the size limit, invalid UTF-8, a protocol violation;
/// poem reports those as `ErrorKind::Other`) is the client's protocol error (4002).
fn read_error(e: &std::io::Error) -> End {
    if e.kind() == std::io::ErrorKind::Other {
        End::Protocol
    } else {
        End::Gone
    }
}

async fn run(rt: Arc<Realtime>, claims: platform::token::UserClaims, socket: WebSocketStream) {
    let (sink, mut stream) = socket.split();
    let mut sink = WsSink(sink);
    let Some(mut reg) = rt
        .hub
        .register(claims.tenant.clone(), claims.uid.clone())
        .await
    else {
        let (code, reason) = End::Shutdown.close();
        let _ = sink.0.send(Message::close_with(code, reason)).await;
        return;
    };
    let device = claims.device_flag.as_u8();
    rt.presence.connected(&claims.tenant, &claims.uid, device);
    metrics::counter!("query_svc_ws_sessions_total").increment(1);
    let mut session = Session::new(&rt, claims.clone(), rt.config.sync_wait, rt.config.queue);
    let mut pending = FuturesUnordered::new();
    let mut ping = tokio::time::interval(rt.config.ping);
    ping.tick().await;
    // Closed exactly at the idle bound after the last frame received (pongs count).
    let idle = tokio::time::sleep(rt.config.idle);
    // Boxed and dropped once the first sync came: idle connections keep one timer, not two.
    let mut hold = session
        .delivery
        .holding_until()
        .map(|t| Box::pin(tokio::time::sleep_until(t)));
    let expiry = tokio::time::sleep(super::until(claims.expires_at_s));
    let voided = super::voided(rt.tenancy.clone(), claims.clone());
    let stop = rt.stop.clone().wait();
    tokio::pin!(expiry, voided, stop, idle);
    let end = loop {
        if hold.is_some() && session.delivery.holding_until().is_none() {
            hold = None;
        }
        tokio::select! {
            biased;
            () = &mut stop => break End::Shutdown,
            () = &mut expiry => break End::Expired,
            end = &mut voided => break end,
            () = &mut idle => break End::Idle,
            msg = stream.next() => {
                if matches!(msg, Some(Ok(_))) {
                    idle.as_mut().reset(Instant::now() + rt.config.idle);
                }
                match msg {
                    Some(Ok(Message::Text(text))) => {
                        if text.len() > MAX_FRAME_BYTES {
                            break End::Protocol;
                        }
                        match session.on_text(&text, &mut sink).await {
                            Ok(Some(CommandFuture::Pending(f))) if pending.len() < MAX_IN_FLIGHT => pending.push(f),
                            Ok(Some(CommandFuture::Pending(_))) => {
                                let json = super::frames::error_json(None, "TOO_MANY_IN_FLIGHT", "wait for answers before sending more", None);
                                if let Err(e) = sink.send("error", None, json).await { break e; }
                            }
                            Ok(Some(CommandFuture::Follow { uids, current })) => rt.hub.follow_presence(reg.id, uids, current),
                            Ok(None) => {}
                            Err(e) => break e,
                        }
                    }
                    Some(Ok(Message::Binary(_))) => break End::Protocol,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Err(e)) => break read_error(&e),
                    Some(Ok(Message::Close(_))) | None => break End::Gone,
                }
            },
            Some(answer) = pending.next(), if !pending.is_empty() => {
                if !answer.is_empty() {
                    if let Err(e) = sink.send("answer", None, answer).await { break e; }
                }
            }
            read = session.delivery.next_read(), if session.delivery.reading() => {
                if let Err(e) = session.delivery.on_read(read, &mut sink).await { break e; }
            }
            () = std::future::ready(()), if session.delivery.has_work() => {
                // Take what the hub queued first (the seam holds it), so backlog never fills
                // the hub's queue; then one unit of backlog.
                if let Err(e) = drain(&mut reg, &mut session, &mut sink).await { break e; }
                if let Err(e) = session.delivery.step(&mut sink).await { break e; }
            }
            out = reg.rx.recv() => match out {
                Some(out) => if let Err(e) = session.delivery.live(out, &mut sink).await { break e; },
                None if reg.overflowed.load(Ordering::Acquire) => break End::SlowConsumer,
                None => break End::Shutdown,
            },
            () = async { if let Some(h) = hold.as_mut() { h.await } }, if hold.is_some() => {
                hold = None;
                session.delivery.hold_expired();
            }
            _ = ping.tick() => {
                let ping = tokio::time::timeout(WRITE_TIMEOUT, sink.0.send(Message::Ping(Vec::new()))).await;
                if !matches!(ping, Ok(Ok(()))) {
                    break End::Gone;
                }
            }
        }
    };
    rt.hub.unregister(reg.id);
    rt.presence
        .disconnected(&claims.tenant, &claims.uid, device);
    let (code, reason) = end.close();
    metrics::counter!("query_svc_ws_closes_total", "code" => code.to_string()).increment(1);
    if end != End::Gone {
        let _ = tokio::time::timeout(
            WRITE_TIMEOUT,
            sink.0.send(Message::close_with(code, reason)),
        )
        .await;
        // Close handshake (RFC 6455 §5.5.1): let the client read up to the close frame and
        // answer it, so it sees the code, instead of a reset on its next pong.
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            while let Some(Ok(m)) = stream.next().await {
                if matches!(m, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
    let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.0.close()).await;
}
