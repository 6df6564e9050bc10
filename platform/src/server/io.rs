//! A connection's socket as the server wraps it: activity for the idle timeout, its slot
//! under the connection cap, and JSON bodies on the error responses hyper writes itself.
//!
//! hyper answers requests it cannot parse (a malformed request line or URI, headers too
//! large, a URI too long) on its own, with an empty body (`content-length: 0`) that no hook
//! changes. Every Parley answer is JSON, so [`Tracked`] rewrites exactly those: a response
//! head with a 4xx/5xx status, `content-length: 0` and no `content-type` — which the services
//! never send (their errors always carry the JSON error body) — is written instead as the
//! same status with `{"error": {"code", "message", "field": "request"}}`. hyper closes the
//! connection after such an answer.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;

/// When a connection last read or wrote, in ms since its start.
#[derive(Debug)]
pub(super) struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(now, Ordering::Relaxed);
    }

    /// Resolves once nothing was read or written for `idle`.
    pub(super) async fn idle(&self, idle: Duration) {
        loop {
            let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let quiet = self.start.elapsed().saturating_sub(last);
            if quiet >= idle {
                return;
            }
            tokio::time::sleep(idle - quiet).await;
        }
    }
}

/// A connection's socket: records activity, holds the connection's slot under the cap for as
/// long as the socket lives (also after an upgrade to WebSocket), and rewrites hyper's own
/// empty error answers (see the module docs).
pub(super) struct Tracked<T> {
    inner: T,
    activity: Arc<Activity>,
    /// A rewritten answer being written: its bytes, how many are out, and how many bytes of
    /// hyper's buffer it stands for.
    rewrite: Option<(Vec<u8>, usize, usize)>,
    _slot: OwnedSemaphorePermit,
    _open: OpenGauge,
}

impl Activity {
    /// A connection that starts now.
    pub(super) fn new() -> Self {
        Self {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }
}

impl<T> Tracked<T> {
    /// Wraps `inner`.
    pub(super) fn new(
        inner: T,
        activity: Arc<Activity>,
        slot: OwnedSemaphorePermit,
        open: OpenGauge,
    ) -> Self {
        Self {
            inner,
            activity,
            rewrite: None,
            _slot: slot,
            _open: open,
        }
    }
}

/// Counts an open connection in `<service>_http_connections` while it lives.
pub(super) struct OpenGauge(&'static str);

impl OpenGauge {
    pub(super) fn new(service: &'static str) -> Self {
        metrics::gauge!(format!("{service}_http_connections")).increment(1.0);
        Self(service)
    }
}

impl Drop for OpenGauge {
    fn drop(&mut self) {
        metrics::gauge!(format!("{}_http_connections", self.0)).decrement(1.0);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

/// The JSON answer standing in for hyper's empty error answer `head`, if `head` is one.
fn rewritten(head: &[u8]) -> Option<Vec<u8>> {
    let end = head.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    if end != head.len() {
        return None;
    }
    let text = std::str::from_utf8(head).ok()?.to_ascii_lowercase();
    let status_line = text.lines().next()?;
    let mut parts = status_line.splitn(3, ' ');
    let (version, code) = (parts.next()?, parts.next()?.parse::<u16>().ok()?);
    if !version.starts_with("http/1.") || code < 400 {
        return None;
    }
    if !text.contains("\r\ncontent-length: 0\r\n") || text.contains("\r\ncontent-type:") {
        return None;
    }
    let (error, message) = match code {
        400 => (
            "BAD_REQUEST",
            "the request could not be parsed as HTTP/1.1: check the request line, the URI \
             (percent-encode characters outside RFC 3986, such as < > \" space) and the headers",
        ),
        414 => ("URI_TOO_LONG", "the request URI is too long"),
        431 => ("HEADERS_TOO_LARGE", "the request headers are too large"),
        _ => ("BAD_REQUEST", "the request could not be parsed as HTTP/1.1"),
    };
    let body =
        serde_json::json!({"error": {"code": error, "message": message, "field": "request"}})
            .to_string();
    let reason = std::str::from_utf8(head)
        .ok()?
        .lines()
        .next()?
        .splitn(3, ' ')
        .nth(2)
        .unwrap_or("Error")
        .to_owned();
    Some(
        format!(
            "HTTP/1.1 {code} {reason}\r\ncontent-type: application/json; charset=utf-8\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl<T: AsyncWrite + Unpin> Tracked<T> {
    /// Writes the pending rewritten answer; `Ready(Ok(n))` with the size of hyper's buffer it
    /// replaced once all of it is out.
    fn poll_rewrite(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        loop {
            let Some((bytes, sent, stands_for)) = &mut self.rewrite else {
                return Poll::Ready(Ok(0));
            };
            if *sent == bytes.len() {
                let n = *stands_for;
                self.rewrite = None;
                return Poll::Ready(Ok(n));
            }
            match Pin::new(&mut self.inner).poll_write(cx, &bytes[*sent..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()))
                }
                Poll::Ready(Ok(n)) => *sent += n,
                other => return other,
            }
        }
    }

    /// Starts a rewrite when `buf` (all hyper writes now) is one of its empty error answers.
    fn check(&mut self, buf: &[u8]) {
        if self.rewrite.is_none() && buf.starts_with(b"HTTP/1.") {
            if let Some(bytes) = rewritten(buf) {
                self.rewrite = Some((bytes, 0, buf.len()));
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.check(buf);
        let polled = if self.rewrite.is_some() {
            self.poll_rewrite(cx)
        } else {
            Pin::new(&mut self.inner).poll_write(cx, buf)
        };
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        // A lone head (hyper's error answers have no body) may need rewriting.
        let mut nonempty = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(only), None) = (nonempty.next(), nonempty.next()) {
            self.check(only);
        }
        let polled = if self.rewrite.is_some() {
            self.poll_rewrite(cx)
        } else {
            Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
        };
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::rewritten;

    #[test]
    fn only_hypers_empty_error_answers_are_rewritten() {
        let hyper = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let out = String::from_utf8(rewritten(hyper).expect("rewritten")).expect("utf-8");
        assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\ncontent-type: application/json"));
        let body = out.split("\r\n\r\n").nth(1).expect("body");
        let v: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(v["error"]["code"], "BAD_REQUEST");
        assert!(out.contains(&format!("content-length: {}\r\n", body.len())));
        // The services' own answers are left alone.
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n";
        assert!(rewritten(ours).is_none());
        assert!(rewritten(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(rewritten(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}").is_none());
    }
}
