//! A WebSocket client of `/v1/ws` for tests (tokio-tungstenite), and token minting through the
//! command service.

use crate::Api;
use anyhow::Context as _;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Mints a user token for `uid` through `POST /v1/users/{uid}/tokens` on the command service.
///
/// # Errors
/// A non-200 answer.
pub async fn mint(cmd: &Api, uid: &str, device_flag: u8) -> anyhow::Result<String> {
    let (s, b) = cmd
        .post(
            &format!("/v1/users/{}/tokens", crate::enc(uid)),
            &json!({"device_flag": device_flag}),
        )
        .await?;
    anyhow::ensure!(s == 200, "mint {uid}: {s} {b}");
    Ok(b["token"].as_str().context("token")?.to_owned())
}

/// `ws://…/v1/ws?token=…` of the query service at `base` (`http://…`).
fn ws_url(base: &str, token: &str) -> String {
    format!(
        "{}/v1/ws?token={token}",
        base.replacen("http://", "ws://", 1)
    )
}

/// One connection.
pub struct Ws {
    stream: Stream,
    /// The close code the server sent, once closed.
    pub closed: Option<u16>,
}

impl Ws {
    /// Connects to `base` (an `http://` query-svc URL) with `token` as `?token=`, retrying
    /// while the hub is starting (503).
    ///
    /// # Errors
    /// Any other refusal (e.g. 401) or no connection within 10 s.
    pub async fn connect(base: &str, token: &str) -> anyhow::Result<Self> {
        let url = ws_url(base, token);
        let mut last = String::new();
        for _ in 0..200 {
            match tokio_tungstenite::connect_async(url.as_str()).await {
                Ok((stream, _)) => {
                    return Ok(Self {
                        stream,
                        closed: None,
                    })
                }
                Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 503 => {
                    last = "503".into();
                }
                Err(e) => return Err(anyhow::anyhow!("ws connect: {e}")),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("ws connect: {last}")
    }

    /// The HTTP status with which an upgrade is refused (`None` if it succeeds).
    ///
    /// # Errors
    /// Transport errors.
    pub async fn refused(base: &str, token: &str) -> anyhow::Result<Option<u16>> {
        let url = ws_url(base, token);
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Ok(_) => Ok(None),
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Ok(Some(r.status().as_u16())),
            Err(e) => Err(e.into()),
        }
    }

    /// Sends a JSON frame.
    ///
    /// # Errors
    /// Transport errors.
    pub async fn send(&mut self, frame: Value) -> anyhow::Result<()> {
        self.stream.send(Message::text(frame.to_string())).await?;
        Ok(())
    }

    /// Sends a raw text frame (any text, JSON or not).
    ///
    /// # Errors
    /// Transport errors.
    pub async fn send_text(&mut self, text: String) -> anyhow::Result<()> {
        self.stream.send(Message::text(text)).await?;
        Ok(())
    }

    /// The next JSON frame within `wait`; `None` on timeout or close (see [`Ws::closed`]).
    ///
    /// # Errors
    /// A non-JSON text frame or a transport error.
    pub async fn next_within(&mut self, wait: Duration) -> anyhow::Result<Option<Value>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return Ok(None),
                Ok(None) => return Ok(None),
                Ok(Some(m)) => m,
            };
            match msg {
                Ok(Message::Text(t)) => return Ok(Some(serde_json::from_str(&t)?)),
                Ok(Message::Close(frame)) => {
                    self.closed = Some(frame.map_or(1005, |f| u16::from(f.code)));
                    return Ok(None);
                }
                Ok(_) => continue,
                Err(e) => {
                    if self.closed.is_some() {
                        return Ok(None);
                    }
                    return Err(e.into());
                }
            }
        }
    }

    /// The next frame of type `kind`, skipping others, within `wait`.
    ///
    /// # Errors
    /// Timeout or close before one arrives.
    pub async fn expect(&mut self, kind: &str, wait: Duration) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_within(left).await? {
                Some(f) if f["type"] == kind => return Ok(f),
                Some(_) => continue,
                None => anyhow::bail!("no {kind} frame (closed: {:?})", self.closed),
            }
        }
    }

    /// The first frame of each of `kinds`, in the order of `kinds`, whatever order they arrive
    /// in (others are skipped), within `wait`.
    ///
    /// # Errors
    /// Timeout or close before all arrive.
    pub async fn expect_each(
        &mut self,
        kinds: &[&str],
        wait: Duration,
    ) -> anyhow::Result<Vec<Value>> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut found: Vec<Option<Value>> = vec![None; kinds.len()];
        while found.iter().any(Option::is_none) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let f = self
                .next_within(left)
                .await?
                .with_context(|| format!("missing one of {kinds:?} (closed {:?})", self.closed))?;
            if let Some(i) = kinds.iter().position(|k| f["type"] == *k) {
                if found[i].is_none() {
                    found[i] = Some(f);
                }
            }
        }
        Ok(found.into_iter().flatten().collect())
    }

    /// Every frame until none arrives for `quiet`.
    ///
    /// # Errors
    /// Transport errors.
    pub async fn drain(&mut self, quiet: Duration) -> anyhow::Result<Vec<Value>> {
        let mut out = Vec::new();
        while let Some(f) = self.next_within(quiet).await? {
            out.push(f);
        }
        Ok(out)
    }

    /// Every frame up to and including the first that `sentinel` accepts, within `wait`: a
    /// barrier. The server sends a connection's log frames in log order, so a frame that is
    /// not among these was not sent before the sentinel's event — the way to assert that
    /// something did *not* arrive without waiting out a window.
    ///
    /// # Errors
    /// No such frame within `wait` (or the socket closed first).
    pub async fn until(
        &mut self,
        wait: Duration,
        sentinel: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Vec<Value>> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let f = self
                .next_within(left)
                .await?
                .with_context(|| format!("no sentinel (closed {:?}) after {out:?}", self.closed))?;
            let done = sentinel(&f);
            out.push(f);
            if done {
                return Ok(out);
            }
        }
    }

    /// Waits for the server to close the socket; its close code (1005 without one).
    ///
    /// # Errors
    /// A frame arrived first (named), or nothing happened within `wait`.
    pub async fn closed_within(&mut self, wait: Duration) -> anyhow::Result<u16> {
        match self.next_within(wait).await? {
            Some(f) => anyhow::bail!("a frame instead of the close: {f}"),
            None => self
                .closed
                .with_context(|| format!("not closed within {wait:?}")),
        }
    }

    /// Sends `sync` and collects every frame up to and including `synced`.
    ///
    /// # Errors
    /// No `synced` within 20 s.
    pub async fn sync(&mut self, frame: Value) -> anyhow::Result<Vec<Value>> {
        self.send(frame).await?;
        let mut out = Vec::new();
        loop {
            let f = self
                .next_within(Duration::from_secs(20))
                .await?
                .with_context(|| format!("no synced (closed {:?}) after {out:?}", self.closed))?;
            let done = f["type"] == "synced";
            out.push(f);
            if done {
                return Ok(out);
            }
        }
    }

    /// Closes from the client side (1000).
    ///
    /// # Errors
    /// Transport errors.
    pub async fn close(mut self) -> anyhow::Result<()> {
        let _ = self
            .stream
            .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            }))
            .await;
        Ok(())
    }

    /// Drops the TCP connection without a close handshake (a network failure).
    pub fn drop_abruptly(self) {
        drop(self.stream);
    }
}

/// The `message_seq`s of the `message` frames in `frames` of channel `channel_id`.
pub fn seqs(frames: &[Value], channel_id: &str) -> Vec<u64> {
    frames
        .iter()
        .filter(|f| f["type"] == "message" && f["channel_id"] == channel_id)
        .filter_map(|f| f["message_seq"].as_u64())
        .collect()
}
