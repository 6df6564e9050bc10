//! Rate limits as a client and an operator see them (`docs/tenancy.md`): a tenant's quota with
//! the IETF draft's headers and `Retry-After` on each service, per-user send and read limits
//! over REST, batch and socket (an over-limit frame is an `error` frame, never a close), the
//! probes never limited, and two command services sharing one tenant budget.

use parley_tests::ws::{mint, Ws};
use parley_tests::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Creates tenant `id` with `settings`; returns its API key.
async fn tenant(cmd: &str, id: &str, settings: Value) -> String {
    let (s, v) = Api::new(cmd, MASTER_KEY)
        .post(
            "/v1/admin/tenants",
            &json!({"tenant_id": id, "settings": settings}),
        )
        .await
        .expect("create");
    assert_eq!(s, 201, "{v}");
    v["api_key"]["key"].as_str().expect("key").to_owned()
}

/// `POST path` with `key`; (status, headers, body).
async fn post(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    path: &str,
    body: &Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = http
        .post(format!("{base}{path}"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .expect("post");
    let (s, h) = (r.status().as_u16(), r.headers().clone());
    (s, h, r.json().await.unwrap_or(Value::Null))
}

async fn get(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    path: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = http
        .get(format!("{base}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .expect("get");
    let (s, h) = (r.status().as_u16(), r.headers().clone());
    (s, h, r.json().await.unwrap_or(Value::Null))
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// Most requests a GCRA bucket of `quota` per second (burst `quota`) with `left` units at the
/// start can admit over `elapsed`: what is left plus what refills meanwhile (plus one for a
/// refill landing between two requests).
fn most(left: u32, quota: u32, elapsed: Duration) -> usize {
    left as usize + (elapsed.as_secs_f64() * f64::from(quota)).floor() as usize + 1
}

fn msg(from: &str, to: &str) -> Value {
    json!({"channel_type": 1, "channel_id": to, "from_uid": from, "payload": "aGk="})
}

#[tokio::test]
async fn a_tenants_quota_answers_429_with_the_drafts_headers_and_recovers() {
    let env = TestEnv::new().await.expect("env");
    let cmd = env.command_svc().await.expect("command-svc");
    let _projector = env.projector().await.expect("projector");
    let query = env.query_svc().await.expect("query-svc");
    let key = tenant(&cmd.url(), "small", json!({"rate_limit_per_s": 5})).await;
    let http = reqwest::Client::new();

    // The first answer carries the policy and what remains.
    let (s, h, _) = post(
        &http,
        &cmd.url(),
        &key,
        "/v1/users/u1/tokens",
        &json!({"device_flag": 1}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(header(&h, "ratelimit-policy"), "\"tenant\";q=5;w=1");
    assert_eq!(header(&h, "ratelimit"), "\"tenant\";r=4;t=1");
    assert_eq!(header(&h, "x-ratelimit-limit"), "5");
    assert_eq!(header(&h, "x-ratelimit-remaining"), "4");
    assert!(
        header(&h, "x-ratelimit-reset").parse::<u64>().is_ok(),
        "{h:?}"
    );
    assert!(h.get("retry-after").is_none());

    // A quick burst: the rest of the quota passes, then 429s.
    let mut statuses = Vec::new();
    let mut refused = None;
    let burst = Instant::now();
    for _ in 0..10 {
        let (s, h, b) = post(
            &http,
            &cmd.url(),
            &key,
            "/v1/users/u1/tokens",
            &json!({"device_flag": 1}),
        )
        .await;
        statuses.push(s);
        if s == 429 && refused.is_none() {
            refused = Some((h, b));
        }
    }
    let passed = statuses.iter().filter(|&&s| s == 200).count();
    assert!(
        passed >= 4 && passed <= most(4, 5, burst.elapsed()),
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|&s| s == 200 || s == 429),
        "{statuses:?}"
    );
    let (h, b) = refused.expect("a 429");
    assert_eq!(b["error"]["code"], "RATE_LIMIT_EXCEEDED", "{b}");
    assert!(
        b["error"]["retry_after_ms"]
            .as_u64()
            .is_some_and(|ms| (1..=1000).contains(&ms)),
        "{b}"
    );
    assert_eq!(header(&h, "retry-after"), "1");
    assert_eq!(header(&h, "ratelimit"), "\"tenant\";r=0;t=1");
    assert_eq!(header(&h, "x-ratelimit-remaining"), "0");

    // The query service has a budget of its own, and the probes are never limited.
    let (s, h, _) = get(&http, &query.url(), &key, "/v1/users/u1/conversations").await;
    assert_eq!(s, 200);
    assert_eq!(header(&h, "ratelimit-policy"), "\"tenant\";q=5;w=1");
    for _ in 0..30 {
        let r = http
            .get(format!("{}/health", cmd.url()))
            .send()
            .await
            .expect("health");
        assert_eq!(r.status().as_u16(), 200);
        assert!(r.headers().get("ratelimit").is_none());
    }
    // Other tenants are not touched.
    let (s, _, _) = post(&http, &cmd.url(), KEY_ACME, "/v1/messages", &msg("a", "b")).await;
    assert_eq!(s, 200);

    // After Retry-After it passes again.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (s, _, _) = post(
        &http,
        &cmd.url(),
        &key,
        "/v1/users/u1/tokens",
        &json!({"device_flag": 1}),
    )
    .await;
    assert_eq!(s, 200);

    // Counted, by tenant and scope.
    let metrics = http
        .get(format!("{}/metrics", cmd.url()))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("command_svc_rate_limited_total")
                && l.contains("tenant=\"small\"")
                && l.contains("scope=\"tenant\"")),
        "no rate-limit metric"
    );
}

#[tokio::test]
async fn user_limits_hold_for_rest_batch_reads_and_socket_frames() {
    let env = TestEnv::new().await.expect("env");
    let cmd = env.command_svc().await.expect("command-svc");
    let _projector = env.projector().await.expect("projector");
    let query = env.query_svc().await.expect("query-svc");
    let key = tenant(
        &cmd.url(),
        "chatty",
        json!({"user_sends_per_s": 3, "user_reads_per_s": 4}),
    )
    .await;
    let http = reqwest::Client::new();

    // REST: alice's sends past her quota of 3 are refused and write nothing; bob is not.
    let started = Instant::now();
    let mut statuses = Vec::new();
    let mut refused = None;
    for _ in 0..6 {
        let (s, h, b) = post(
            &http,
            &cmd.url(),
            &key,
            "/v1/messages",
            &msg("alice", "zed"),
        )
        .await;
        statuses.push(s);
        if s != 200 && refused.is_none() {
            refused = Some((s, h, b));
        }
    }
    let alice = statuses.iter().filter(|&&s| s == 200).count();
    assert!(statuses[..3].iter().all(|&s| s == 200), "{statuses:?}");
    assert!(alice <= most(3, 3, started.elapsed()), "{statuses:?}");
    let (s, h, b) = refused.expect("a refused send");
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (429, Some("RATE_LIMIT_EXCEEDED")),
        "{b}"
    );
    assert!(b["error"]["retry_after_ms"].as_u64().is_some(), "{b}");
    assert!(
        header(&h, "ratelimit-policy").contains("\"user-sends\";q=3;w=1"),
        "{h:?}"
    );
    assert!(h.get("retry-after").is_some(), "{h:?}");
    assert_eq!(
        post(&http, &cmd.url(), &key, "/v1/messages", &msg("bob", "zed"))
            .await
            .0,
        200
    );

    // Batch: each item counts; carol's items past her quota are 429 each.
    let items: Vec<Value> = (0..6).map(|_| msg("carol", "zed")).collect();
    let started = Instant::now();
    let (s, _, b) = post(
        &http,
        &cmd.url(),
        &key,
        "/v1/messages/batch",
        &json!({"messages": items}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let st: Vec<u64> = b["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["status"].as_u64().unwrap_or(0))
        .collect();
    let carol = st.iter().filter(|&&s| s == 200).count();
    assert!(st[..3].iter().all(|&s| s == 200), "{b}");
    assert!(st.iter().all(|&s| s == 200 || s == 429), "{b}");
    assert!(
        st.contains(&429) && carol <= most(3, 3, started.elapsed()),
        "{b}"
    );

    // What was refused was never written: zed's conversations hold exactly the admitted sends.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let head = stream_head(&env).await.expect("head");
    let (s, _, v) = get(
        &http,
        &query.url(),
        &key,
        &format!("/v1/users/zed/conversations?min_event_seq={head}"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let mut counts: Vec<(String, u64)> = v["conversations"]
        .as_array()
        .expect("conversations")
        .iter()
        .map(|c| {
            (
                c["channel_id"].as_str().unwrap_or("").to_owned(),
                c["last_msg_seq"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        vec![
            ("alice".into(), alice as u64),
            ("bob".into(), 1),
            ("carol".into(), carol as u64)
        ],
        "{v}"
    );

    // Reads: zed's reads past the quota of 4 (one was made above) are refused.
    let started = Instant::now();
    let mut reads = Vec::new();
    for _ in 0..6 {
        let (s, h, _) = get(&http, &query.url(), &key, "/v1/users/zed/conversations").await;
        reads.push((s, header(&h, "ratelimit-policy").to_owned()));
    }
    let admitted = reads.iter().filter(|r| r.0 == 200).count();
    assert!(
        admitted >= 3 && admitted <= most(3, 4, started.elapsed()),
        "{reads:?}"
    );
    let refused = reads.iter().find(|r| r.0 == 429).expect("a refused read");
    assert!(refused.1.contains("\"user-reads\";q=4;w=1"), "{reads:?}");
    assert!(reads[0].1.contains("\"user-reads\";q=4;w=1"), "{reads:?}");

    // Socket: dave's send frames past his quota are error frames; the socket stays open.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let token = mint(&Api::new(&cmd.url(), &key), "dave", 1)
        .await
        .expect("token");
    let mut ws = Ws::connect(&query.url(), &token).await.expect("ws");
    ws.sync(json!({"type": "sync"})).await.expect("sync");
    let started = Instant::now();
    for i in 0..6 {
        ws.send(
            json!({"type": "send", "ref": format!("s{i}"), "channel_type": 1,
                       "channel_id": "zed", "payload": "aGk="}),
        )
        .await
        .expect("send");
    }
    let (mut acks, mut errors) = (0, Vec::new());
    while acks + errors.len() < 6 {
        let f = ws
            .next_within(Duration::from_secs(10))
            .await
            .expect("frame")
            .expect("the socket closed");
        match f["type"].as_str() {
            Some("send_ack") => acks += 1,
            Some("error") => errors.push(f),
            _ => {}
        }
    }
    assert!(
        acks >= 3 && acks <= most(3, 3, started.elapsed()),
        "{acks} acks, {errors:?}"
    );
    let e = errors.first().expect("an error frame");
    assert_eq!(e["code"], "RATE_LIMITED", "{e}");
    assert!(e["ref"].as_str().is_some_and(|r| r.starts_with('s')), "{e}");
    assert!(
        e["retry_after_ms"].as_u64().is_some_and(|ms| ms >= 1),
        "{e}"
    );
    // The socket is still open: a ping is answered.
    ws.send(json!({"type": "ping", "ref": "p"}))
        .await
        .expect("ping");
    let pong = ws
        .expect("pong", Duration::from_secs(5))
        .await
        .expect("pong");
    assert_eq!(pong["ref"], "p");
}

#[tokio::test]
async fn two_command_services_share_one_tenant_budget() {
    let env = TestEnv::new().await.expect("env");
    let a = env.command_svc().await.expect("a");
    let b = env.command_svc().await.expect("b");
    let key = tenant(&a.url(), "shared", json!({"rate_limit_per_s": 20})).await;
    // Each instance learns of the other within a heartbeat or two.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let http = reqwest::Client::new();
    let bases = [a.url(), b.url()];
    let window = Duration::from_secs(3);
    let started = Instant::now();
    let (mut ok, mut sent) = (0u64, 0u64);
    while started.elapsed() < window {
        let base = &bases[(sent % 2) as usize];
        let (s, _, _) = post(
            &http,
            base,
            &key,
            "/v1/users/u/tokens",
            &json!({"device_flag": 1}),
        )
        .await;
        sent += 1;
        if s == 200 {
            ok += 1;
        } else {
            assert_eq!(s, 429);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    // The budget: 20/s plus one burst of 20 at the start.
    let budget = 20.0 * secs + 20.0;
    println!(
        "two instances, round-robin: {ok} of {sent} admitted in {secs:.2} s; budget {budget:.0}; \
         overshoot {:+.1}%",
        100.0 * (ok as f64 / budget - 1.0)
    );
    assert!(
        sent > 3 * ok,
        "the load did not exceed the limit: {ok} of {sent}"
    );
    assert!(
        (ok as f64) <= budget * 1.1,
        "{ok} admitted, budget {budget:.0}"
    );
    assert!(
        (ok as f64) >= budget * 0.6,
        "{ok} admitted, budget {budget:.0}: the split starves"
    );
}
