//! The HTTP edge as an attacker meets it: bodies over an endpoint's own limit refused before
//! they are read, a disabled endpoint absent, headers and bodies that trickle in closed by
//! timeouts, a connection cap, and every malformed input — path, query, JSON, cursor, request
//! line — answered with a JSON 4xx naming the field.

use parley_tests::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Short timeouts so the tests wait seconds, not the defaults' tens of seconds.
fn fast(http: &mut platform::server::HttpSettings) {
    http.header_timeout = Duration::from_millis(1000);
    http.body_timeout = Duration::from_millis(1000);
    http.idle_timeout = Duration::from_millis(5000);
}

/// Reads one HTTP/1.1 response (head and a `content-length` body) from `s`, within `wait`.
async fn response(s: &mut TcpStream, wait: Duration) -> Option<(u16, String, Value)> {
    let mut buf = Vec::new();
    let deadline = Instant::now() + wait;
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let status = head.split(' ').nth(1)?.parse().ok()?;
                let body =
                    serde_json::from_slice(&buf[end + 4..end + 4 + len]).unwrap_or(Value::Null);
                return Some((status, head, body));
            }
        }
        let mut chunk = [0u8; 4096];
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Whether the server closes `s` within `wait` (reads until EOF; data before it is ignored).
async fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    let mut chunk = [0u8; 1024];
    let deadline = Instant::now() + wait;
    loop {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return false;
        };
        match tokio::time::timeout(left, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

async fn connect(base: &str) -> TcpStream {
    TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .expect("connect")
}

/// A `Content-Length` above an endpoint's limit is refused before the body is sent; a chunked
/// body is read only up to the limit; a disabled endpoint is absent (404) without its body.
#[tokio::test]
async fn oversized_bodies_are_refused_before_they_are_read() {
    let env = TestEnv::new().await.expect("env");
    let cmd = env.command_svc().await.expect("command-svc");
    let off = env
        .query_svc_with(|c| c.dev_tenant = None)
        .await
        .expect("query-svc without dev tokens");
    let on = env.query_svc().await.expect("query-svc with dev tokens");
    let huge = 400 * 1024 * 1024;

    // Nothing but the headers is sent: the answer must come anyway.
    for (base, path, auth, want) in [
        (off.url(), "/v1/dev/tokens", None, 404),
        (on.url(), "/v1/dev/tokens", None, 413),
        (cmd.url(), "/v1/users/u/tokens", Some(KEY_ACME), 413),
        (cmd.url(), "/v1/messages", Some(KEY_ACME), 413),
    ] {
        let mut s = connect(&base).await;
        let auth = auth
            .map(|k| format!("authorization: Bearer {k}\r\n"))
            .unwrap_or_default();
        s.write_all(
            format!("POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n{auth}content-length: {huge}\r\n\r\n{{\"uid\":")
                .as_bytes(),
        )
        .await
        .expect("write");
        let (status, _, body) = response(&mut s, Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("{path} on {base}: no answer without the body"));
        assert_eq!(status, want, "{path}: {body}");
        assert!(body["error"]["code"].is_string(), "{path}: {body}");
    }

    // Chunked, no length: read up to the limit (1 KiB for tokens), then 413 — while the
    // client could still send.
    let mut s = connect(&cmd.url()).await;
    s.write_all(
        format!("POST /v1/users/u/tokens HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nauthorization: Bearer {KEY_ACME}\r\ntransfer-encoding: chunked\r\n\r\n")
            .as_bytes(),
    )
    .await
    .expect("write");
    let chunk = format!("400\r\n{}\r\n", " ".repeat(1024));
    for _ in 0..3 {
        s.write_all(chunk.as_bytes()).await.expect("chunk");
    }
    let (status, _, body) = response(&mut s, Duration::from_secs(5))
        .await
        .expect("answer while the chunked body goes on");
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (413, Some("body")),
        "{body}"
    );
}

/// A request head that trickles in (slowloris) and an idle keep-alive connection are closed
/// after the header timeout, a body that stops arriving gets 408, and the service keeps
/// answering everyone else.
#[tokio::test]
async fn slow_headers_idle_connections_and_stalled_bodies_time_out() {
    let env = TestEnv::new().await.expect("env");
    let cmd = env
        .command_svc_with(|c| fast(&mut c.common.http))
        .await
        .expect("command-svc");
    let started = Instant::now();
    let mut slow = connect(&cmd.url()).await;
    slow.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n")
        .await
        .expect("write");
    let mut idle = connect(&cmd.url()).await;
    let mut stalled = connect(&cmd.url()).await;
    stalled
        .write_all(
            format!("POST /v1/users/u/tokens HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nauthorization: Bearer {KEY_ACME}\r\ncontent-length: 100\r\n\r\n{{\"device_flag\"")
                .as_bytes(),
        )
        .await
        .expect("write");
    // Trickle a header byte every 300 ms: activity must not keep the head's deadline away.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        slow.write_all(b"x").await.expect("trickle");
    }
    assert!(
        closed_within(&mut slow, Duration::from_secs(3)).await,
        "slowloris connection kept open"
    );
    assert!(
        closed_within(&mut idle, Duration::from_secs(3)).await,
        "idle connection kept open"
    );
    let (status, _, body) = response(&mut stalled, Duration::from_secs(3))
        .await
        .expect("answer to the stalled body");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (408, Some("BODY_TIMEOUT")),
        "{body}"
    );
    assert!(started.elapsed() < Duration::from_secs(6));
    // Sentinel: everyone else is still served.
    let (st, _) = Api::new(&cmd.url(), KEY_ACME)
        .get("/health")
        .await
        .expect("health");
    assert_eq!(st, 200);
}

/// At the connection cap new connections wait (they are not refused or dropped) and are
/// served as soon as an older one closes.
#[tokio::test]
async fn connections_over_the_cap_wait_for_a_free_slot() {
    let env = TestEnv::new().await.expect("env");
    let query = env
        .query_svc_with(|c| {
            fast(&mut c.common.http);
            c.common.http.max_connections = 3;
        })
        .await
        .expect("query-svc");
    // Three idle connections fill the cap (each closes after the 1 s header timeout).
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect(&query.url()).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let mut late = connect(&query.url()).await;
    late.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    let (status, _, _) = response(&mut late, Duration::from_secs(5))
        .await
        .expect("the waiting connection is served");
    assert_eq!(status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "served at once although the cap was full: {:?}",
        started.elapsed()
    );
    for mut s in held {
        assert!(closed_within(&mut s, Duration::from_secs(1)).await);
    }
}

/// Every malformed input gets a JSON 4xx naming the field, and nothing is written.
#[tokio::test]
async fn malformed_input_is_answered_with_json_naming_the_field() {
    let env = TestEnv::new().await.expect("env");
    let cmd = env.command_svc().await.expect("command-svc");
    let query = env.query_svc().await.expect("query-svc");
    let c = Api::new(&cmd.url(), KEY_ACME);
    let q = Api::new(&query.url(), KEY_ACME);
    let head = stream_head(&env).await.expect("head");

    let field = |v: &Value| v["error"]["field"].as_str().map(str::to_owned);
    let send = json!({"channel_id": "bob", "channel_type": 1, "from_uid": "alice", "payload": b64(b"x"), "client_msg_num": "m-1"});
    let (st, v) = c.post("/v1/messages", &send).await.expect("send");
    assert_eq!((st, field(&v)), (400, Some("client_msg_num".into())), "{v}");
    let (st, v) = c
        .post("/v1/messages/batch", &json!({"messages": [send]}))
        .await
        .expect("batch");
    assert_eq!(
        (st, field(&v)),
        (400, Some("messages[0].client_msg_num".into())),
        "{v}"
    );
    let (st, v) = c
        .post(
            "/v1/channels",
            &json!({"channel_id": "g", "members": ["a"], "nmae": "x"}),
        )
        .await
        .expect("create");
    assert_eq!((st, field(&v)), (400, Some("nmae".into())), "{v}");
    let (st, v) = c
        .post_raw(
            "/v1/messages",
            "application/json",
            br#"{"channel_id":"bob","channel_type":1e400,"from_uid":"alice","payload":"eA=="}"#
                .to_vec(),
        )
        .await
        .expect("huge number");
    assert_eq!((st, field(&v)), (400, Some("channel_type".into())), "{v}");
    let (st, v) = c
        .post_raw("/v1/messages", "application/json", b"{".to_vec())
        .await
        .expect("eof");
    assert_eq!((st, field(&v)), (400, Some("body".into())), "{v}");
    let (st, v) = c
        .post_raw("/v1/messages", "text/plain", b"{}".to_vec())
        .await
        .expect("415");
    assert_eq!((st, field(&v)), (415, Some("content-type".into())), "{v}");
    assert_eq!(
        stream_head(&env).await.expect("head"),
        head,
        "a refused request appended"
    );

    for (path, want) in [
        ("/v1/channels/x/bob/messages?uid=alice", "channel_type"),
        ("/v1/channels/1/a%FFb/messages?uid=alice", "channel_id"),
        ("/v1/channels/1/bob/messages?uid=a%FFb", "uid"),
        ("/v1/users/online?uids=a%FFb,a%FEb", "uids"),
        ("/v1/users/alice/conversations?cursor=%%%", "cursor"),
        ("/v1/channels/g/members?cursor=a%20b", "cursor"),
    ] {
        let (st, v) = q.get(path).await.expect("query");
        assert_eq!((st, field(&v)), (400, Some(want.into())), "{path}: {v}");
    }
    // A cursor that decodes (base64url JSON) but holds a key no channel can have.
    use base64::Engine;
    let crafted = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(br#"{"u":1,"t":1,"k":"a\u0000 b"}"#);
    let (st, v) = q
        .get(&format!("/v1/users/alice/conversations?cursor={crafted}"))
        .await
        .expect("crafted cursor");
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("INVALID_CURSOR")),
        "{v}"
    );

    // Wrong method: 405 with Allow.
    let r = reqwest::Client::new()
        .put(format!("{}/v1/messages", cmd.url()))
        .bearer_auth(KEY_ACME)
        .send()
        .await
        .expect("put");
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(
        r.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("POST")
    );
    let v: Value = r.json().await.expect("json 405");
    assert_eq!(v["error"]["code"], "METHOD_NOT_ALLOWED");

    // A request line hyper itself refuses (a raw `<` in the URI) is JSON too.
    let mut s = connect(&query.url()).await;
    s.write_all(b"GET /v1/messages/<message_id>?uid=bob HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    let (status, head, body) = response(&mut s, Duration::from_secs(5))
        .await
        .expect("answer");
    assert_eq!(status, 400, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    assert_eq!(body["error"]["field"], "request", "{body}");
}
