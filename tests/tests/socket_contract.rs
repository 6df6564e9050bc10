//! The WebSocket contract of `docs/realtime.md` as an independent client reads it: per-channel
//! `message_seq` order on every path (live frames that arrive before a resume's catch-up wait
//! for it; a late `sync` reports gaps instead of sending older after newer), a catch-up that
//! never overflows the connection's own queue, 4002 for every oversized or unreadable frame,
//! `ref` echoed on every error, and the idle close at its documented bound.

use parley_tests::ws::{mint, seqs, Ws};
use parley_tests::*;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);

async fn group(c: &Api, id: &str, members: &[&str]) {
    let (s, v) = c
        .post(
            "/v1/channels",
            &json!({"channel_id": id, "members": members}),
        )
        .await
        .expect("create group");
    assert_eq!(s, 200, "{v}");
}

async fn send(c: &Api, from: &str, ct: u8, to: &str, text: &str) -> Value {
    let body = json!({"channel_id": to, "channel_type": ct, "from_uid": from, "payload": b64(text.as_bytes())});
    let (s, v) = c.post("/v1/messages", &body).await.expect("send");
    assert_eq!(s, 200, "{v}");
    v
}

/// Collects `message` seqs of `channel_id` (through `synced` and after it) until `last`
/// arrives.
async fn collect_until(ws: &mut Ws, channel_id: &str, last: u64, mut got: Vec<u64>) -> Vec<u64> {
    while got.last() != Some(&last) {
        let f = ws
            .next_within(WAIT)
            .await
            .expect("frame")
            .unwrap_or_else(|| panic!("no frame (closed {:?}) after {got:?}", ws.closed));
        if f["type"] == "message" && f["channel_id"] == channel_id {
            got.push(f["message_seq"].as_u64().expect("seq"));
        }
    }
    got
}

/// A client holds seq ≤ 5 of a group and reconnects while others keep sending; its `sync`
/// comes a while after the upgrade (a slow link). Live frames that arrived meanwhile wait for
/// the catch-up: the client sees 6, 7, 8, … in order, each once.
#[tokio::test]
async fn live_frames_wait_for_the_first_sync_so_each_channel_stays_in_order() {
    let env = TestEnv::new().await.expect("env");
    let cmd = env.command_svc().await.expect("command-svc");
    let _projector = env.projector().await.expect("projector");
    let query = env.query_svc().await.expect("query-svc");
    let c = Api::new(&cmd.url(), KEY_ACME);
    group(&c, "busy", &["alice", "bob"]).await;
    for i in 0..5 {
        send(&c, "alice", 2, "busy", &format!("old {i}")).await;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (c, stop) = (c.clone(), stop.clone());
        tokio::spawn(async move {
            let mut last = 5;
            while !stop.load(Ordering::Relaxed) {
                last = send(&c, "alice", 2, "busy", "live").await["message_seq"]
                    .as_u64()
                    .expect("seq");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            last
        })
    };
    let token = mint(&c, "bob", 1).await.expect("token");
    let mut b = Ws::connect(&query.url(), &token).await.expect("connect");
    // One slow round trip: live messages enter the log meanwhile.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let frames = b
        .sync(json!({"type": "sync", "channels": [{"channel_type": 2, "channel_id": "busy", "last_seq": 5}]}))
        .await
        .expect("sync");
    assert_eq!(frames.last().expect("synced")["recovered"], true);
    stop.store(true, Ordering::Relaxed);
    let last = writer.await.expect("writer");
    let got = collect_until(&mut b, "busy", last, seqs(&frames, "busy")).await;
    assert_eq!(
        got,
        (6..=last).collect::<Vec<_>>(),
        "out of order, missing or twice"
    );
}

/// A user with many busy channels resumes on a connection whose queue holds 8 frames, while
/// every channel keeps getting messages: the catch-up runs beside the live stream, the
/// connection is not closed as a slow consumer (4008) by its own resume, and every channel
/// arrives complete and in order.
#[tokio::test]
async fn a_long_catch_up_never_overflows_the_connections_own_queue() {
    let env = TestEnv::new().await.expect("env");
    let cmd = env.command_svc().await.expect("command-svc");
    let _projector = env.projector().await.expect("projector");
    let query = env
        .query_svc_with(|q| q.ws.queue = 8)
        .await
        .expect("query-svc");
    let c = Api::new(&cmd.url(), KEY_ACME);
    let peers: Vec<String> = (0..20).map(|i| format!("peer{i}")).collect();
    let messages: Vec<Value> = (0..1000)
        .map(|i| {
            json!({"channel_id": "bob", "channel_type": 1, "from_uid": peers[i % 20],
                   "payload": b64(format!("missed {i}").as_bytes())})
        })
        .collect();
    let (st, r) = c
        .post("/v1/messages/batch", &json!({ "messages": messages }))
        .await
        .expect("batch");
    assert_eq!(st, 200, "{r}");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (c, stop, peers) = (c.clone(), stop.clone(), peers.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                send(&c, &peers[i % 20], 1, "bob", "live").await;
                i += 1;
            }
            // A sentinel per channel, payload "end".
            for p in &peers {
                send(&c, p, 1, "bob", "end").await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let token = mint(&c, "bob", 1).await.expect("token");
    let mut b = Ws::connect(&query.url(), &token).await.expect("connect");
    let frames = b
        .sync(json!({"type": "sync", "since_event_seq": 0}))
        .await
        .expect("sync without a 4008");
    assert_eq!(frames.last().expect("synced")["recovered"], true);
    stop.store(true, Ordering::Relaxed);
    let mut got: std::collections::BTreeMap<String, Vec<u64>> = std::collections::BTreeMap::new();
    let mut ended = std::collections::BTreeSet::new();
    let mut take = |f: &Value, ended: &mut std::collections::BTreeSet<String>| {
        if f["type"] != "message" {
            return;
        }
        let peer = f["channel_id"].as_str().expect("id").to_owned();
        if f["payload"] == b64(b"end") {
            ended.insert(peer.clone());
        }
        got.entry(peer)
            .or_default()
            .push(f["message_seq"].as_u64().expect("seq"));
    };
    for f in &frames {
        take(f, &mut ended);
    }
    // Read on while the writer finishes (a client that stops reading is a slow consumer).
    while ended.len() < peers.len() {
        let f = b
            .next_within(WAIT)
            .await
            .expect("frame")
            .unwrap_or_else(|| panic!("closed {:?} before every sentinel", b.closed));
        take(&f, &mut ended);
    }
    writer.await.expect("writer");
    for p in &peers {
        let seen = &got[p];
        assert_eq!(
            seen,
            &(1..=seen.len() as u64).collect::<Vec<_>>(),
            "channel with {p}"
        );
    }
    assert_eq!(b.closed, None);
}

/// A `sync` sent after live delivery began (the hold window passed) never sends a channel's
/// older messages after newer ones: `synced` reports the range as a gap to read over REST.
#[tokio::test]
async fn a_late_sync_reports_gaps_instead_of_breaking_order() {
    let env = TestEnv::new().await.expect("env");
    let cmd = env.command_svc().await.expect("command-svc");
    let _projector = env.projector().await.expect("projector");
    let query = env
        .query_svc_with(|q| q.ws.sync_wait = Duration::from_millis(200))
        .await
        .expect("query-svc");
    let c = Api::new(&cmd.url(), KEY_ACME);
    // A sentinel user's socket: once carol's message (sent after alice's five) reaches her,
    // the hub has followed the log past them, so they are history for bob, not live.
    let carol = mint(&c, "carol", 1).await.expect("token");
    let mut sentinel = Ws::connect(&query.url(), &carol).await.expect("connect");
    sentinel.sync(json!({"type": "sync"})).await.expect("sync");
    for i in 0..5 {
        send(&c, "alice", 1, "bob", &format!("old {i}")).await;
    }
    send(&c, "alice", 1, "carol", "sentinel").await;
    let f = sentinel.expect("message", WAIT).await.expect("sentinel");
    assert_eq!(f["channel_id"], "alice", "{f}");
    let token = mint(&c, "bob", 1).await.expect("token");
    let mut b = Ws::connect(&query.url(), &token).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(500)).await;
    send(&c, "alice", 1, "bob", "live").await;
    assert_eq!(
        b.expect("message", WAIT).await.expect("live")["message_seq"],
        6
    );
    let frames = b
        .sync(json!({"type": "sync", "channels": [{"channel_type": 1, "channel_id": "alice", "last_seq": 2}]}))
        .await
        .expect("sync");
    assert!(
        seqs(&frames, "alice").is_empty(),
        "older messages after newer: {frames:?}"
    );
    let synced = frames.last().expect("synced");
    assert_eq!(synced["recovered"], false, "{synced}");
    assert_eq!(
        synced["gaps"],
        json!([{"channel_type": 1, "channel_id": "alice", "from_seq": 3, "to_seq": 5}])
    );
    // Sentinel: live delivery goes on in order.
    send(&c, "alice", 1, "bob", "after").await;
    assert_eq!(
        b.expect("message", WAIT).await.expect("live")["message_seq"],
        7
    );
}

/// Every frame over the documented 256 KiB, and any frame the WebSocket layer cannot read,
/// closes with 4002; every `error` for a frame that carried a readable `ref` echoes it.
#[tokio::test]
async fn oversized_frames_close_with_4002_and_errors_echo_the_ref() {
    let env = TestEnv::new().await.expect("env");
    let cmd = env.command_svc().await.expect("command-svc");
    let query = env.query_svc().await.expect("query-svc");
    let c = Api::new(&cmd.url(), KEY_ACME);
    let token = mint(&c, "bob", 1).await.expect("token");
    for size in [300 * 1024, 2 * 1024 * 1024] {
        let mut b = Ws::connect(&query.url(), &token).await.expect("connect");
        let frame = format!(r#"{{"type":"ping","ref":"{}"}}"#, "x".repeat(size));
        b.send_text(frame).await.expect("send");
        let _ = b.drain(Duration::from_secs(3)).await;
        assert_eq!(b.closed, Some(4002), "a {size}-byte frame");
    }
    let mut b = Ws::connect(&query.url(), &token).await.expect("connect");
    for (frame, field) in [
        (
            json!({"type": "send", "ref": "r1", "channel_type": 1, "channel_id": "alice"}),
            "payload",
        ),
        (json!({"ref": "r2", "channel_type": 1}), "type"),
        (json!({"type": "nope", "ref": "r3"}), "type"),
        (
            json!({"type": "read", "ref": "r4", "channel_type": "one", "channel_id": "a", "message_seq": 1}),
            "channel_type",
        ),
        (
            json!({"type": "send", "ref": "r5", "channel_type": 1, "channel_id": "alice", "payload": b64(b"x"), "client_msg_num": "k"}),
            "client_msg_num",
        ),
    ] {
        let r = frame["ref"].clone();
        b.send(frame).await.expect("send");
        let e = b.expect("error", WAIT).await.expect("error frame");
        assert_eq!((&e["ref"], e["field"].as_str()), (&r, Some(field)), "{e}");
    }
    // Sentinel: the connection is still usable.
    b.send(json!({"type": "ping", "ref": "ok"}))
        .await
        .expect("ping");
    assert_eq!(b.expect("pong", WAIT).await.expect("pong")["ref"], "ok");
}

/// A client that sends nothing is closed with 4009 at the idle bound, not at the next ping
/// tick after it.
#[tokio::test]
async fn idle_close_happens_at_the_documented_bound() {
    let env = TestEnv::new().await.expect("env");
    let cmd = env.command_svc().await.expect("command-svc");
    let query = env
        .query_svc_with(|q| {
            q.ws.idle = Duration::from_millis(1500);
            q.ws.ping = Duration::from_secs(25);
        })
        .await
        .expect("query-svc");
    let c = Api::new(&cmd.url(), KEY_ACME);
    let token = mint(&c, "bob", 1).await.expect("token");
    let mut b = Ws::connect(&query.url(), &token).await.expect("connect");
    let started = Instant::now();
    while b
        .next_within(Duration::from_secs(5))
        .await
        .expect("read")
        .is_some()
    {}
    let took = started.elapsed();
    assert_eq!(b.closed, Some(4009));
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_millis(2500),
        "closed after {took:?}, documented 1.5 s"
    );
}

/// The socket commands are a NATS service (`$SRV.INFO.parley-command-svc` lists its `send` and
/// `read` endpoints), and a request on a command subject gets the command layer's reply: a
/// body that is not the command's JSON is a 400 naming `body`, a valid one is accepted.
#[tokio::test]
async fn socket_commands_are_a_nats_service_with_the_command_layers_replies() {
    let env = TestEnv::new().await.expect("env");
    let cmd = env.command_svc().await.expect("command-svc");
    let nats = async_nats::connect(&env.nats_url).await.expect("nats");
    let info = nats
        .request("$SRV.INFO.parley-command-svc", "".into())
        .await
        .expect("service info");
    let info: Value = serde_json::from_slice(&info.payload).expect("info json");
    let names: Vec<&str> = info["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert!(names.contains(&"send") && names.contains(&"read"), "{info}");
    let subjects = events::subject::Subjects::new(env.subject_root.clone());
    let tenant = events::TenantId::parse("acme").expect("tenant");
    let send = subjects.command(&tenant, events::subject::CommandVerb::Send);
    let reply = nats
        .request(send.clone(), r#"{"from_uid":"alice"}"#.into())
        .await
        .expect("reply");
    let v: Value = serde_json::from_slice(&reply.payload).expect("reply json");
    assert_eq!(v["status"], 400, "{v}");
    assert_eq!(v["error"]["field"], "body", "{v}");
    let body = json!({"from_uid": "alice", "channel_id": "bob", "channel_type": 1,
                      "payload": b64(b"over nats")});
    let reply = nats
        .request(send, serde_json::to_vec(&body).expect("json").into())
        .await
        .expect("reply");
    let v: Value = serde_json::from_slice(&reply.payload).expect("reply json");
    assert_eq!(v["ok"]["message_seq"], 1, "{v}");
    cmd.stop().await;
}
