//! End-to-end tests of the realtime side against real NATS and Postgres: user tokens, the
//! WebSocket fan-out across two query-svc instances, gap-free resume, slow consumers,
//! membership, typing, presence and Server-Sent Events.

use parley_tests::ws::{mint, seqs, Ws};
use parley_tests::*;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

struct Stack {
    env: TestEnv,
    _cmd: Running,
    _projector: Running,
    qa: Running,
    qb: Running,
    c: Api,
}

async fn stack() -> Stack {
    let env = TestEnv::new().await.expect("env");
    let cmd = env.command_svc().await.expect("command-svc");
    let projector = env.projector().await.expect("projector");
    let qa = env.query_svc().await.expect("query-svc a");
    let qb = env.query_svc().await.expect("query-svc b");
    let c = Api::new(&cmd.url(), KEY_ACME);
    Stack {
        env,
        _cmd: cmd,
        _projector: projector,
        qa,
        qb,
        c,
    }
}

async fn send(c: &Api, from: &str, ct: u8, to: &str, text: &str) -> Value {
    let body = json!({"channel_id": to, "channel_type": ct, "from_uid": from, "payload": b64(text.as_bytes())});
    let (s, v) = c.post("/v1/messages", &body).await.expect("send");
    assert_eq!(s, 200, "{v}");
    v
}

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

fn text(frame: &Value) -> String {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(frame["payload"].as_str().unwrap_or_default())
        .unwrap_or_default();
    String::from_utf8(raw).unwrap_or_default()
}

#[tokio::test]
async fn user_tokens_gate_reads() {
    let s = stack().await;
    send(&s.c, "alice", 1, "bob", "hi").await;
    // Minting validates its input.
    let (st, v) =
        s.c.post("/v1/users/alice/tokens", &json!({"device_flag": 7}))
            .await
            .unwrap();
    assert_eq!(
        (st, v["error"]["field"].as_str()),
        (400, Some("device_flag"))
    );
    let (st, v) =
        s.c.post(
            "/v1/users/alice/tokens",
            &json!({"device_flag": 1, "ttl_s": 5}),
        )
        .await
        .unwrap();
    assert_eq!((st, v["error"]["field"].as_str()), (400, Some("ttl_s")));
    let (st, _) = Api::with_auth(&s._cmd.url(), None)
        .post("/v1/users/alice/tokens", &json!({"device_flag": 1}))
        .await
        .unwrap();
    assert_eq!(st, 401);

    let token = mint(&s.c, "alice", 1).await.unwrap();
    let q = Api::new(&s.qa.url(), &token);
    // The viewer is the token's uid; naming yourself is fine, naming someone else is 403.
    let path = "/v1/channels/1/bob/messages?min_event_seq=1";
    let (st, v) = q.get(path).await.unwrap();
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["messages"].as_array().map(Vec::len), Some(1));
    let (st, _) = q.get(&format!("{path}&uid=alice")).await.unwrap();
    assert_eq!(st, 200);
    let (st, v) = q.get(&format!("{path}&uid=bob")).await.unwrap();
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (403, Some("FORBIDDEN_UID"))
    );
    let (st, _) = q.get("/v1/users/bob/conversations").await.unwrap();
    assert_eq!(st, 403);
    let (st, v) = q.get("/v1/users/alice/conversations").await.unwrap();
    assert_eq!(st, 200, "{v}");
    // API keys keep working for internal callers, who must name the viewer.
    let svc = Api::new(&s.qa.url(), KEY_ACME);
    assert_eq!(svc.get(&format!("{path}&uid=bob")).await.unwrap().0, 200);
    let (st, v) = svc.get(path).await.unwrap();
    assert_eq!((st, v["error"]["field"].as_str()), (400, Some("uid")));

    // Expired, forged, other-tenant and malformed tokens are 401, on REST and on the socket.
    let tokens = s.env.tokens();
    let acme = events::TenantId::parse("acme").unwrap();
    let alice = events::Uid::parse("alice").unwrap();
    let web = platform::token::DeviceFlag::try_from(1).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expired = tokens
        .mint_at(&acme, &alice, web, now - 100, now - 1)
        .unwrap()
        .token;
    let forger = platform::token::UserTokens::new(
        Some("not-the-secret-not-the-secret-xxxx"),
        [acme.clone()],
    )
    .unwrap();
    let forged = forger.mint(&acme, &alice, web, 600).unwrap().token;
    let stranger = platform::token::UserTokens::new(
        Some(TOKEN_SECRET),
        [events::TenantId::parse("initech").unwrap()],
    )
    .unwrap()
    .mint(
        &events::TenantId::parse("initech").unwrap(),
        &alice,
        web,
        600,
    )
    .unwrap()
    .token;
    for (name, bad) in [
        ("expired", expired.as_str()),
        ("forged", forged.as_str()),
        ("other tenant", stranger.as_str()),
        ("malformed", "not.a.jwt"),
    ] {
        let (st, v) = Api::new(&s.qa.url(), bad).get(path).await.unwrap();
        assert_eq!(st, 401, "{name}: {v}");
        assert_eq!(v["error"]["code"], "UNAUTHORIZED", "{name}");
        assert_eq!(
            Ws::refused(&s.qa.url(), bad).await.unwrap(),
            Some(401),
            "{name}"
        );
    }
    let (st, v) = Api::new(&s.qa.url(), &expired).get(path).await.unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("expired"),
        "{st} {v}"
    );
}

#[tokio::test]
async fn messages_fan_out_across_instances_and_devices() {
    let s = stack().await;
    let alice_a = mint(&s.c, "alice", 1).await.unwrap();
    let alice_b = mint(&s.c, "alice", 0).await.unwrap();
    let bob = mint(&s.c, "bob", 1).await.unwrap();
    let mut a1 = Ws::connect(&s.qa.url(), &alice_a).await.unwrap();
    let mut a2 = Ws::connect(&s.qb.url(), &alice_b).await.unwrap();
    let mut b = Ws::connect(&s.qb.url(), &bob).await.unwrap();
    for ws in [&mut a1, &mut a2, &mut b] {
        ws.sync(json!({"type": "sync"})).await.unwrap();
    }
    // A socket send goes through the command path and is acked with its seq.
    a1.send(
        json!({"type": "send", "ref": "r1", "channel_type": 1, "channel_id": "bob",
                   "payload": b64(b"hello bob"), "client_msg_no": "m1"}),
    )
    .await
    .unwrap();
    // The push may overtake the command's answer: take both in whichever order.
    let both = a1
        .expect_each(&["send_ack", "message"], WAIT)
        .await
        .unwrap();
    let ack = &both[0];
    assert_eq!(both[1]["channel_id"], "bob");
    assert_eq!(
        (ack["ref"].as_str(), ack["message_seq"].as_u64()),
        (Some("r1"), Some(1))
    );
    // Bob (instance B) gets it with the channel named as he sees it; so do both of alice's
    // devices, the sender's own included.
    let m = b.expect("message", WAIT).await.unwrap();
    assert_eq!(
        (m["channel_id"].as_str(), m["from_uid"].as_str()),
        (Some("alice"), Some("alice"))
    );
    assert_eq!(
        (text(&m), m["message_seq"].as_u64()),
        ("hello bob".into(), Some(1))
    );
    assert_eq!(m["message_id"], ack["message_id"]);
    let m = a2.expect("message", WAIT).await.unwrap();
    assert_eq!(m["channel_id"], "bob");
    // A resend with the same client_msg_no is acked with the original seq and pushes nothing.
    a1.send(
        json!({"type": "send", "ref": "r2", "channel_type": 1, "channel_id": "bob",
                   "payload": b64(b"hello bob"), "client_msg_no": "m1"}),
    )
    .await
    .unwrap();
    let ack2 = a1.expect("send_ack", WAIT).await.unwrap();
    assert_eq!(ack2["message_seq"], 1);
    // Bad input is an error frame naming the field, and nothing is appended.
    a1.send(json!({"type": "send", "ref": "r3", "channel_type": 1, "channel_id": "bob", "payload": "%%%"}))
        .await
        .unwrap();
    let err = a1.expect("error", WAIT).await.unwrap();
    assert_eq!(
        (err["ref"].as_str(), err["field"].as_str()),
        (Some("r3"), Some("payload"))
    );
    a1.send(json!({"type": "send", "channel_type": 1}))
        .await
        .unwrap();
    let err = a1.expect("error", WAIT).await.unwrap();
    assert_eq!(err["code"], "VALIDATION_ERROR");
    // Barrier: a message carol → bob, logged after all of the above; whatever they had
    // appended would reach bob before it.
    send(&s.c, "carol", 1, "bob", "sentinel").await;
    let before = b.until(WAIT, |f| f["channel_id"] == "carol").await.unwrap();
    assert_eq!(before.len(), 1, "nothing but the sentinel: {before:?}");

    // Reads: the reader's devices and the peer (a receipt) get a `read` frame.
    b.send(json!({"type": "read", "channel_type": 1, "channel_id": "alice", "message_seq": 1}))
        .await
        .unwrap();
    let r = b.expect("read", WAIT).await.unwrap();
    assert_eq!(
        (r["uid"].as_str(), r["channel_id"].as_str()),
        (Some("bob"), Some("alice"))
    );
    let r = a2.expect("read", WAIT).await.unwrap();
    assert_eq!(
        (
            r["uid"].as_str(),
            r["channel_id"].as_str(),
            r["message_seq"].as_u64()
        ),
        (Some("bob"), Some("bob"), Some(1))
    );
}

#[tokio::test]
async fn group_membership_takes_effect_at_once() {
    let s = stack().await;
    group(&s.c, "g1", &["alice", "bob", "carol"]).await;
    let mut b = Ws::connect(&s.qa.url(), &mint(&s.c, "bob", 1).await.unwrap())
        .await
        .unwrap();
    let mut carol = Ws::connect(&s.qb.url(), &mint(&s.c, "carol", 1).await.unwrap())
        .await
        .unwrap();
    let mut dave = Ws::connect(&s.qb.url(), &mint(&s.c, "dave", 1).await.unwrap())
        .await
        .unwrap();
    b.sync(json!({"type": "sync"})).await.unwrap();
    carol.sync(json!({"type": "sync"})).await.unwrap();
    // dave lists the group he is not in: nothing of it comes back.
    let frames = dave
        .sync(json!({"type": "sync", "channels": [{"channel_type": 2, "channel_id": "g1", "last_seq": 0}]}))
        .await
        .unwrap();
    assert_eq!(frames.len(), 1, "{frames:?}");
    send(&s.c, "alice", 2, "g1", "one").await;
    assert_eq!(b.expect("message", WAIT).await.unwrap()["message_seq"], 1);
    assert_eq!(
        carol.expect("message", WAIT).await.unwrap()["message_seq"],
        1
    );
    // Removal: carol learns of it and gets nothing of the group afterwards.
    let (st, v) = s.c.delete("/v1/channels/g1/members/carol").await.unwrap();
    assert_eq!(st, 200, "{v}");
    let removed = carol.expect("member_removed", WAIT).await.unwrap();
    assert_eq!(removed["uid"], "carol");
    send(&s.c, "alice", 2, "g1", "two").await;
    assert_eq!(b.expect("message", WAIT).await.unwrap()["message_seq"], 2);
    // Barrier: a personal message to carol, logged after "two".
    send(&s.c, "alice", 1, "carol", "sentinel").await;
    let after = carol
        .until(WAIT, |f| f["channel_id"] == "alice")
        .await
        .unwrap();
    assert!(after.iter().all(|f| f["channel_id"] != "g1"), "{after:?}");
    // A resume cannot bring it back either.
    let frames = carol
        .sync(json!({"type": "sync", "channels": [{"channel_type": 2, "channel_id": "g1", "last_seq": 0}]}))
        .await
        .unwrap();
    assert!(seqs(&frames, "g1").is_empty(), "{frames:?}");
    // Barrier: a personal message to dave, logged after every g1 event so far.
    send(&s.c, "alice", 1, "dave", "sentinel").await;
    let before = dave
        .until(WAIT, |f| f["channel_id"] == "alice")
        .await
        .unwrap();
    assert_eq!(
        before.len(),
        1,
        "nothing of g1 for a non-member: {before:?}"
    );
    // Adding dave: he gets member_added and then the group's messages.
    let (st, v) =
        s.c.post("/v1/channels/g1/members", &json!({"uids": ["dave"]}))
            .await
            .unwrap();
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        dave.expect("member_added", WAIT).await.unwrap()["uids"][0],
        "dave"
    );
    send(&s.c, "alice", 2, "g1", "three").await;
    assert_eq!(
        dave.expect("message", WAIT).await.unwrap()["message_seq"],
        3
    );
}

/// Sends `n` messages alice → bob, numbered from `from`.
async fn burst(c: &Api, from: usize, n: usize) {
    for i in from..from + n {
        send(c, "alice", 1, "bob", &format!("m{i}")).await;
    }
}

#[tokio::test]
async fn resume_has_no_gap_and_no_duplicate() {
    let s = stack().await;
    let token = mint(&s.c, "bob", 1).await.unwrap();
    let mut b = Ws::connect(&s.qa.url(), &token).await.unwrap();
    b.sync(json!({"type": "sync"})).await.unwrap();
    // Messages flow while bob is connected; he drops mid-stream.
    let writer = {
        let c = s.c.clone();
        tokio::spawn(async move { burst(&c, 1, 60).await })
    };
    let mut got: Vec<u64> = Vec::new();
    while got.len() < 20 {
        let f = b.expect("message", WAIT).await.unwrap();
        got.push(f["message_seq"].as_u64().unwrap());
    }
    b.drop_abruptly();
    // He comes back on the other instance while sends go on, and resumes from what he has.
    let mut b = Ws::connect(&s.qb.url(), &token).await.unwrap();
    let frames = b
        .sync(json!({"type": "sync", "channels": [{"channel_type": 1, "channel_id": "alice", "last_seq": got.last()}]}))
        .await
        .unwrap();
    assert_eq!(frames.last().unwrap()["recovered"], true);
    got.extend(seqs(&frames, "alice"));
    writer.await.unwrap();
    while got.last() != Some(&60) {
        let f = b.expect("message", WAIT).await.unwrap();
        got.push(f["message_seq"].as_u64().unwrap());
    }
    assert_eq!(got, (1..=60).collect::<Vec<_>>(), "gap or duplicate");
    // Barrier: a message carol → bob after the burst; a duplicate would come before it.
    send(&s.c, "carol", 1, "bob", "sentinel").await;
    let after = b.until(WAIT, |f| f["channel_id"] == "carol").await.unwrap();
    assert_eq!(after.len(), 1, "no duplicate after the resume: {after:?}");

    // Restart of the instance he is on: resume by event position instead.
    let last_event = frames.last().unwrap()["event_seq"].as_u64().unwrap();
    drop(frames);
    b.drop_abruptly();
    s.qb.stop().await;
    burst(&s.c, 61, 10).await;
    let qc = s.env.query_svc().await.unwrap();
    let mut b = Ws::connect(&qc.url(), &token).await.unwrap();
    let frames = b
        .sync(json!({"type": "sync", "since_event_seq": last_event}))
        .await
        .unwrap();
    let mut resumed = seqs(&frames, "alice");
    // The catch-up covers the log up to the new instance's hub position (`synced.event_seq`);
    // what came after it follows live, in order.
    while resumed.last() != Some(&70) {
        let f = b.expect("message", WAIT).await.unwrap();
        resumed.push(f["message_seq"].as_u64().unwrap());
    }
    // Everything after the position: the tail of the first burst that came after it, then 61–70.
    let first = resumed[0];
    assert_eq!(resumed, (first..=70).collect::<Vec<_>>());
    send(&s.c, "alice", 1, "bob", "live").await;
    assert_eq!(b.expect("message", WAIT).await.unwrap()["message_seq"], 71);
}

#[tokio::test]
async fn slow_consumer_is_closed_and_resumes_losing_nothing() {
    let env = TestEnv::new().await.unwrap();
    let cmd = env.command_svc().await.unwrap();
    let _projector = env.projector().await.unwrap();
    let q = env.query_svc_with(|c| c.ws.queue = 4).await.unwrap();
    let c = Api::new(&cmd.url(), KEY_ACME);
    let token = mint(&c, "bob", 1).await.unwrap();
    let mut b = Ws::connect(&q.url(), &token).await.unwrap();
    b.sync(json!({"type": "sync"})).await.unwrap();
    // Bob stops reading while 3,000 messages of 8 KiB arrive: socket buffers fill, then his
    // queue of 4, and the server closes him rather than waiting.
    let big = "x".repeat(8 * 1024);
    for chunk in 0..3 {
        let messages: Vec<Value> = (0..1000)
            .map(|i| {
                json!({"channel_id": "bob", "channel_type": 1, "from_uid": "alice",
                            "payload": b64(format!("{}{big}", chunk * 1000 + i).as_bytes())})
            })
            .collect();
        let (st, v) = c
            .post("/v1/messages/batch", &json!({"messages": messages}))
            .await
            .unwrap();
        assert_eq!(st, 200, "{v}");
    }
    let mut got: Vec<u64> = Vec::new();
    loop {
        match b.next_within(Duration::from_secs(20)).await.unwrap() {
            Some(f) if f["type"] == "message" => got.push(f["message_seq"].as_u64().unwrap()),
            Some(_) => {}
            None => break,
        }
    }
    assert_eq!(b.closed, Some(4008), "slow consumer close code");
    assert!(got.len() < 3000, "closed before the end");
    assert_eq!(got, (1..=got.len() as u64).collect::<Vec<_>>());
    let mut b = Ws::connect(&q.url(), &token).await.unwrap();
    let frames = b
        .sync(json!({"type": "sync", "channels": [{"channel_type": 1, "channel_id": "alice", "last_seq": got.len()}]}))
        .await
        .unwrap();
    got.extend(seqs(&frames, "alice"));
    assert_eq!(got, (1..=3000).collect::<Vec<_>>());
}

#[tokio::test]
async fn token_expiry_closes_the_socket() {
    let s = stack().await;
    let tokens = s.env.tokens();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let short = tokens
        .mint_at(
            &events::TenantId::parse("acme").unwrap(),
            &events::Uid::parse("bob").unwrap(),
            platform::token::DeviceFlag::try_from(0).unwrap(),
            now,
            now + 2,
        )
        .unwrap()
        .token;
    let mut b = Ws::connect(&s.qa.url(), &short).await.unwrap();
    b.send(json!({"type": "ping", "ref": "p"})).await.unwrap();
    assert_eq!(b.expect("pong", WAIT).await.unwrap()["ref"], "p");
    assert_eq!(b.closed_within(Duration::from_secs(6)).await.unwrap(), 4001);
}

#[tokio::test]
async fn typing_reaches_members_and_never_the_log() {
    let s = stack().await;
    group(&s.c, "g2", &["alice", "bob"]).await;
    let mut a = Ws::connect(&s.qa.url(), &mint(&s.c, "alice", 1).await.unwrap())
        .await
        .unwrap();
    let mut b = Ws::connect(&s.qb.url(), &mint(&s.c, "bob", 1).await.unwrap())
        .await
        .unwrap();
    let mut eve = Ws::connect(&s.qb.url(), &mint(&s.c, "eve", 1).await.unwrap())
        .await
        .unwrap();
    a.send(json!({"type": "typing", "channel_type": 2, "channel_id": "g2"}))
        .await
        .unwrap();
    let t = b.expect("typing", WAIT).await.unwrap();
    assert_eq!(
        (t["uid"].as_str(), t["channel_id"].as_str()),
        (Some("alice"), Some("g2"))
    );
    a.send(json!({"type": "typing", "channel_type": 1, "channel_id": "bob"}))
        .await
        .unwrap();
    let t = b.expect("typing", WAIT).await.unwrap();
    assert_eq!(
        (t["channel_type"].as_u64(), t["channel_id"].as_str()),
        (Some(1), Some("alice"))
    );
    // Rate limit: a second notice for the same channel within a second is refused.
    a.send(json!({"type": "typing", "ref": "t3", "channel_type": 1, "channel_id": "bob"}))
        .await
        .unwrap();
    let e = a.expect("error", WAIT).await.unwrap();
    assert_eq!(
        (e["code"].as_str(), e["ref"].as_str()),
        (Some("RATE_LIMITED"), Some("t3"))
    );
    // A non-member's typing in the group reaches nobody; the typist never gets its own.
    eve.send(json!({"type": "typing", "channel_type": 2, "channel_id": "g2"}))
        .await
        .unwrap();
    // Barrier for bob: eve's next notice (personal, to him) is published after the first on
    // the same connection, so bob would get the group one first.
    eve.send(json!({"type": "typing", "channel_type": 1, "channel_id": "bob"}))
        .await
        .unwrap();
    let before = b.until(WAIT, |f| f["type"] == "typing").await.unwrap();
    assert_eq!(
        (
            before.len(),
            before[0]["channel_type"].as_u64(),
            before[0]["uid"].as_str()
        ),
        (1, Some(1), Some("eve")),
        "eve's group notice reached bob: {before:?}"
    );
    // Barrier for alice: bob's notice to her is published after he received hers, so her own
    // would have reached her first.
    b.send(json!({"type": "typing", "channel_type": 1, "channel_id": "alice"}))
        .await
        .unwrap();
    let before = a.until(WAIT, |f| f["type"] == "typing").await.unwrap();
    assert_eq!(before.last().unwrap()["uid"], "bob");
    assert!(
        before
            .iter()
            .all(|f| f["type"] != "typing" || f["uid"] != "alice"),
        "the typist got its own notice: {before:?}"
    );
    // Nothing of it is in the log or the history.
    let head = stream_head(&s.env).await.unwrap();
    assert_eq!(head, 1, "only the group's creation is in the log");
}

#[tokio::test]
async fn presence_across_instances() {
    let s = stack().await;
    let mut watcher = Ws::connect(&s.qa.url(), &mint(&s.c, "alice", 1).await.unwrap())
        .await
        .unwrap();
    watcher
        .send(json!({"type": "presence_subscribe", "uids": ["bob"]}))
        .await
        .unwrap();
    let p = watcher.expect("presence", WAIT).await.unwrap();
    assert_eq!(
        (p["uid"].as_str(), p["online"].as_bool()),
        (Some("bob"), Some(false))
    );
    let b = Ws::connect(&s.qb.url(), &mint(&s.c, "bob", 2).await.unwrap())
        .await
        .unwrap();
    let p = watcher.expect("presence", WAIT).await.unwrap();
    assert_eq!(p["online"], true);
    assert_eq!(p["devices"], json!([{"device_flag": 2}]));
    let q = Api::new(&s.qa.url(), KEY_ACME);
    let (st, v) = q.get("/v1/users/online?uids=bob,zed").await.unwrap();
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v,
        json!([{"uid": "bob", "online": true, "devices": [{"device_flag": 2}]},
                         {"uid": "zed", "online": false, "devices": []}])
    );
    b.close().await.unwrap();
    let p = watcher.expect("presence", WAIT).await.unwrap();
    assert_eq!(p["online"], false);
    let (st, v) = q.get("/v1/users/online?uids=").await.unwrap();
    assert_eq!((st, v["error"]["field"].as_str()), (400, Some("uids")));
}

/// Reads a `text/event-stream` body until a needle shows up.
struct SseReader {
    resp: reqwest::Response,
    buf: String,
}

impl SseReader {
    async fn open(url: &str, token: &str, last_event_id: Option<u64>) -> Self {
        let http = reqwest::Client::new();
        let mut tries = 0;
        let resp = loop {
            let mut req = http.get(url).bearer_auth(token);
            if let Some(id) = last_event_id {
                req = req.header("Last-Event-ID", id.to_string());
            }
            let resp = req.send().await.unwrap();
            // 503 HUB_STARTING while a fresh instance loads its snapshot.
            if resp.status() == 503 && tries < 100 {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            break resp;
        };
        assert_eq!(resp.status(), 200);
        Self {
            resp,
            buf: String::new(),
        }
    }

    /// Everything read so far once it contains `needle`.
    async fn until(&mut self, needle: &str) -> &str {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !self.buf.contains(needle) {
            match tokio::time::timeout_at(deadline, self.resp.chunk()).await {
                Ok(Ok(Some(c))) => self.buf.push_str(&String::from_utf8_lossy(&c)),
                other => panic!("no {needle:?} in {:?}: {other:?}", self.buf),
            }
        }
        &self.buf
    }
}

/// `(id, data)` of every SSE `message` event in `text`.
fn sse_messages(text: &str) -> Vec<(Option<u64>, Value)> {
    // The SSE default event name is `message`, so those blocks carry no `event:` line.
    text.split("\n\n")
        .filter(|block| block.contains("\"type\":\"message\""))
        .map(|block| {
            let id = block
                .lines()
                .find_map(|l| l.strip_prefix("id: "))
                .and_then(|v| v.parse().ok());
            let data = block
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .map(|d| serde_json::from_str(d).unwrap())
                .unwrap();
            (id, data)
        })
        .collect()
}

#[tokio::test]
async fn server_sent_events_resume_from_last_event_id() {
    let s = stack().await;
    let token = mint(&s.c, "bob", 1).await.unwrap();
    let url = format!("{}/v1/events", s.qa.url());
    let mut first = SseReader::open(&url, &token, None).await;
    first.until("event: synced").await;
    send(&s.c, "alice", 1, "bob", "one").await;
    let text = first.until("\"message_seq\":1").await.to_owned();
    let live = sse_messages(&text);
    assert_eq!(live.len(), 1, "{text}");
    let last_id = live[0].0.expect("live frames carry id");
    assert_eq!(text_of(&live[0].1), "one");
    drop(first);
    // While the stream is down two more arrive; the browser reconnects with Last-Event-ID.
    send(&s.c, "alice", 1, "bob", "two").await;
    send(&s.c, "alice", 1, "bob", "three").await;
    let mut again =
        SseReader::open(&format!("{}/v1/events", s.qb.url()), &token, Some(last_id)).await;
    let text = again.until("event: synced").await.to_owned();
    let caught: Vec<u64> = sse_messages(&text)
        .iter()
        .map(|(_, d)| d["message_seq"].as_u64().unwrap())
        .collect();
    assert_eq!(caught, vec![2, 3], "{text}");
    send(&s.c, "alice", 1, "bob", "four").await;
    let text = again.until("\"message_seq\":4").await.to_owned();
    assert_eq!(sse_messages(&text).len(), 3);
    // Without credentials: 401.
    let r = reqwest::Client::new().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

fn text_of(frame: &Value) -> String {
    text(frame)
}

#[tokio::test]
async fn silent_client_is_closed_after_the_idle_window() {
    let env = TestEnv::new().await.unwrap();
    let cmd = env.command_svc().await.unwrap();
    let q = env
        .query_svc_with(|c| {
            c.ws.ping = Duration::from_millis(200);
            c.ws.idle = Duration::from_millis(600);
        })
        .await
        .unwrap();
    let c = Api::new(&cmd.url(), KEY_ACME);
    let token = mint(&c, "bob", 1).await.unwrap();
    // A client that keeps talking stays; pings alone from the server do not keep it open
    // unless the client answers them (reading answers pings).
    let mut talking = Ws::connect(&q.url(), &token).await.unwrap();
    for i in 0..5 {
        talking
            .send(json!({"type": "ping", "ref": format!("{i}")}))
            .await
            .unwrap();
        talking.expect("pong", WAIT).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(talking.closed, None);
    // A client that neither reads nor writes is closed with 4009.
    let mut silent = Ws::connect(&q.url(), &token).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        silent.closed_within(Duration::from_secs(2)).await.unwrap(),
        4009
    );
}
