//! `GET /v1/events`: the Server-Sent Events transport of a [`Session`] (read-only: the same
//! event frames as the WebSocket, with `id: <event_seq>` on live frames after `synced`).
//!
//! `Last-Event-ID` (or `?since_event_seq=`) resumes as `sync {since_event_seq}`. The session
//! runs on a task of its own that writes into a bounded channel feeding the response body; when
//! the client goes away the body (and the channel's receiver) is dropped, the next write fails,
//! and the task ends.

use super::session::Session;
use super::sink::{End, Sink};
use super::Realtime;
use poem::web::sse::{Event, SSE};
use poem::web::Data;
use poem::{handler, IntoResponse, Request, Response};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Frames buffered between the session and the response body.
const BUFFER: usize = 256;
/// A frame the client does not take within this long ends the stream.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens an event stream for an authenticated user (401 otherwise; 503 `HUB_STARTING` while
/// the hub starts).
#[handler]
pub async fn handler(req: &Request, rt: Data<&Arc<Realtime>>) -> Response {
    let claims = match rt.admit(req) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let since = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .or_else(|| super::query_param(req, "since_event_seq")?.parse().ok());
    let (tx, rx) = mpsc::channel(BUFFER);
    let rt = Arc::clone(&rt);
    let ping = rt.config.ping;
    let tasks = rt.tasks.clone();
    tasks.spawn("sse session", run(rt, claims, since, tx));
    SSE::new(tokio_stream::wrappers::ReceiverStream::new(rx))
        .keep_alive(ping)
        .into_response()
}

struct SseSink {
    tx: mpsc::Sender<Event>,
    live: bool,
}

impl Sink for SseSink {
    async fn send(
        &mut self,
        kind: &'static str,
        event_seq: Option<u64>,
        json: String,
    ) -> Result<(), End> {
        let mut event = Event::message(json).event_type(kind);
        // Ids only once caught up: a resume from an id never skips a channel's catch-up.
        if let Some(seq) = event_seq.filter(|_| self.live || kind == "synced") {
            event = event.id(seq.to_string());
        }
        if kind == "synced" {
            self.live = true;
        }
        match tokio::time::timeout(WRITE_TIMEOUT, self.tx.send(event)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::Gone),
            Err(_) => Err(End::SlowConsumer),
        }
    }
}

async fn run(
    rt: Arc<Realtime>,
    claims: platform::token::UserClaims,
    since: Option<u64>,
    tx: mpsc::Sender<Event>,
) {
    let Some(mut reg) = rt
        .hub
        .register(claims.tenant.clone(), claims.uid.clone())
        .await
    else {
        return;
    };
    let mut sink = SseSink { tx, live: false };
    // The resume is known at connect (`Last-Event-ID`), so nothing waits for a `sync` frame.
    let mut session = Session::new(&rt, claims.clone(), Duration::ZERO, rt.config.queue);
    let sync = serde_json::json!({"type": "sync", "since_event_seq": since}).to_string();
    let started = session.on_text(&sync, &mut sink).await;
    let expiry = tokio::time::sleep(super::until(claims.expires_at_s));
    let voided = super::voided(rt.tenancy.clone(), claims.clone());
    let stop = rt.stop.clone().wait();
    tokio::pin!(expiry, voided, stop);
    let end = match started {
        Err(e) => e,
        Ok(_) => loop {
            tokio::select! {
                biased;
                () = &mut stop => break End::Shutdown,
                () = &mut expiry => break End::Expired,
                end = &mut voided => break end,
                () = sink.tx.closed() => break End::Gone,
                read = session.delivery.next_read(), if session.delivery.reading() => {
                    if let Err(e) = session.delivery.on_read(read, &mut sink).await { break e; }
                }
                () = std::future::ready(()), if session.delivery.has_work() => {
                    if let Err(e) = super::ws::drain(&mut reg, &mut session, &mut sink).await { break e; }
                    if let Err(e) = session.delivery.step(&mut sink).await { break e; }
                }
                out = reg.rx.recv() => match out {
                    Some(out) => if let Err(e) = session.delivery.live(out, &mut sink).await { break e; },
                    None if reg.overflowed.load(Ordering::Acquire) => break End::SlowConsumer,
                    None => break End::Shutdown,
                },
            }
        },
    };
    rt.hub.unregister(reg.id);
    if end != End::Gone {
        let (code, reason) = end.close();
        let json = serde_json::json!({"type": "close", "code": code, "reason": reason}).to_string();
        let _ = sink.tx.try_send(Event::message(json).event_type("close"));
    }
}
