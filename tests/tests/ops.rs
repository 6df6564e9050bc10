//! Operations end to end, against real NATS and Postgres with the `projector` binary as an
//! operator runs it: blue/green rebuild under live load, rebuilds killed with SIGKILL at random
//! points and resumed, replay, poison events parked under both policies, `dlq` commands.

use parley_tests::*;
use rand::Rng;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const PROJECTIONS: [&str; 3] = ["messages", "channels", "conversations"];

/// Sends `n` messages in batches: personal ones between `u0..u9` and group ones in `g0..g2`
/// (created first, if `groups`). Returns the last event_seq.
async fn seed(c: &Api, n: usize, groups: bool) -> u64 {
    if groups {
        for g in 0..3 {
            let members: Vec<String> = (0..10).map(|u| format!("u{u}")).collect();
            let (st, v) = c
                .post(
                    "/v1/channels",
                    &json!({"channel_id": format!("g{g}"), "members": members}),
                )
                .await
                .expect("create group");
            assert_eq!(st, 200, "{v}");
        }
    }
    let mut last = 0;
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let messages: Vec<Value> = chunk
            .iter()
            .map(|i| {
                if i % 3 == 0 {
                    json!({"channel_id": format!("g{}", i % 9 / 3), "channel_type": 2,
                           "from_uid": format!("u{}", i % 10), "payload": b64(b"group")})
                } else {
                    json!({"channel_id": format!("u{}", (i + 1) % 10), "channel_type": 1,
                           "from_uid": format!("u{}", i % 10), "payload": b64(b"hi"),
                           "client_msg_no": format!("seed-{i}")})
                }
            })
            .collect();
        let (st, r) = c
            .post("/v1/messages/batch", &json!({ "messages": messages }))
            .await
            .expect("batch");
        assert_eq!(st, 200, "{r}");
        for x in r["results"].as_array().expect("results") {
            assert_eq!(x["status"], 200, "{x}");
            last = last.max(x["result"]["event_seq"].as_u64().unwrap_or(0));
        }
    }
    last
}

/// `(projection, version, state, last_seq)` of every version.
async fn versions(env: &TestEnv) -> Vec<(String, i32, String, i64)> {
    let db = env.db().await.expect("db");
    db.query(
        "SELECT projection, version, state, last_seq FROM projection_versions \
         ORDER BY projection, version",
        &[],
    )
    .await
    .expect("versions")
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
    .collect()
}

async fn serving(env: &TestEnv) -> BTreeMap<String, i32> {
    versions(env)
        .await
        .into_iter()
        .filter(|v| v.2 == "serving")
        .map(|v| (v.0, v.1))
        .collect()
}

/// Waits until every serving checkpoint has reached the log head.
async fn caught_up(env: &TestEnv) {
    let head = stream_head(env).await.expect("head") as i64;
    for _ in 0..300 {
        let low = versions(env)
            .await
            .iter()
            .filter(|v| v.2 == "serving")
            .map(|v| v.3)
            .min()
            .unwrap_or(0);
        if low >= head {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("projections did not reach the log head {head}");
}

/// Builds every projection from scratch as of the head (`projector replay`) and asserts each
/// serving table equals it (row count and content checksum).
async fn assert_equals_from_scratch(env: &TestEnv) {
    caught_up(env).await;
    let head = stream_head(env).await.expect("head");
    let (ok, out, err) = env
        .projector_run(&["replay", "--all", "--to-event-seq", &head.to_string()])
        .await
        .expect("replay");
    assert!(ok, "replay failed: {out}\n{err}");
    let db = env.db().await.expect("db");
    for p in PROJECTIONS {
        let row = db
            .query_one(
                "SELECT (SELECT schema_name FROM projection_versions WHERE projection = $1 \
                   AND state = 'serving'), \
                 (SELECT schema_name FROM projection_versions WHERE projection = $1 \
                   AND state = 'replay' ORDER BY version DESC LIMIT 1)",
                &[&p],
            )
            .await
            .expect("schemas");
        let (serving, scratch): (String, String) = (row.get(0), row.get(1));
        let projection = projector::Projection::from_name(p).expect("projection");
        let pool = platform::db::pool(&env.database_url, 1).expect("pool");
        let conn = pool.get().await.expect("connection");
        let checks = projector::ops::verify::compare(&conn, projection, &serving, &scratch)
            .await
            .expect("compare");
        for c in checks {
            assert!(c.equal(), "{c}");
            if c.table.ends_with(".messages") {
                assert!(c.rebuilt_rows > 0, "no messages at all: {c}");
            }
        }
    }
}

/// An environment with command-svc, the projector and query-svc running, and clients of the
/// command (`c`) and query (`q`) services.
struct Stack {
    env: TestEnv,
    _services: [Running; 3],
    c: Api,
    q: Api,
}

async fn stack() -> Stack {
    let env = TestEnv::new().await.expect("env");
    let cmd = env.command_svc().await.expect("command-svc");
    let projector = env.projector().await.expect("projector");
    let query = env.query_svc().await.expect("query-svc");
    let c = Api::new(&cmd.url(), KEY_ACME);
    let q = Api::new(&query.url(), KEY_ACME);
    Stack {
        env,
        _services: [cmd, projector, query],
        c,
        q,
    }
}

/// A writer sends and a reader queries through a whole `rebuild --all`: no send or query
/// fails, every message is in the history afterwards, and the tables equal a from-scratch
/// build.
#[tokio::test]
async fn rebuild_under_live_load_switches_without_errors_or_loss() {
    let Stack {
        env,
        _services,
        c,
        q,
    } = stack().await;
    seed(&c, 6000, true).await;
    caught_up(&env).await;

    let stop = Arc::new(AtomicBool::new(false));
    let last_seen = Arc::new(AtomicU64::new(0));
    let writer = {
        let (c, stop, last_seen) = (c.clone(), stop.clone(), last_seen.clone());
        tokio::spawn(async move {
            let mut sent: BTreeMap<String, u64> = BTreeMap::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let (ct, id) = if i.is_multiple_of(2) {
                    (1, "live-b")
                } else {
                    (2, "g1")
                };
                let body = json!({"channel_id": id, "channel_type": ct, "from_uid": "u1",
                                  "payload": b64(format!("live {i}").as_bytes()),
                                  "client_msg_no": format!("live-{i}")});
                let (st, v) = c.post("/v1/messages", &body).await.expect("send");
                assert_eq!(st, 200, "send failed during the rebuild: {v}");
                *sent.entry(format!("{ct}/{id}")).or_default() = v["message_seq"].as_u64().unwrap();
                last_seen.fetch_max(v["event_seq"].as_u64().unwrap(), Ordering::Relaxed);
                i += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            sent
        })
    };
    let reader = {
        let (q, stop, last_seen) = (q.clone(), stop.clone(), last_seen.clone());
        tokio::spawn(async move {
            let mut queries = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let min = last_seen.load(Ordering::Relaxed);
                for path in [
                    format!("/v1/channels/1/live-b/messages?uid=u1&limit=20&min_event_seq={min}"),
                    format!("/v1/channels/2/g1/messages?uid=u1&limit=20&min_event_seq={min}"),
                    format!("/v1/users/u1/conversations?limit=50&min_event_seq={min}"),
                    "/v1/channels/g1/members?limit=5".to_owned(),
                ] {
                    let (st, v) = q.get(&path).await.expect("query");
                    assert_eq!(st, 200, "query failed during the rebuild: {path}: {v}");
                    queries += 1;
                }
            }
            queries
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (ok, out, err) = env
        .projector_run(&["rebuild", "--all"])
        .await
        .expect("rebuild");
    assert!(ok, "rebuild failed: {out}\n{err}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let sent = writer.await.expect("writer");
    let queries = reader.await.expect("reader");
    assert!(queries > 20, "the reader ran only {queries} queries");
    assert_eq!(
        serving(&env).await,
        PROJECTIONS.iter().map(|p| (p.to_string(), 2)).collect(),
        "{out}"
    );
    // No lost message: every channel's history is 1..=last, gap-free.
    caught_up(&env).await;
    for (key, last) in &sent {
        let (ct, id) = key.split_once('/').expect("key");
        let mut seqs = Vec::new();
        let mut after = 0;
        loop {
            let (st, v) = q
                .get(&format!(
                    "/v1/channels/{ct}/{id}/messages?uid=u1&limit=100&after_seq={after}"
                ))
                .await
                .expect("history");
            assert_eq!(st, 200, "{v}");
            let page: Vec<u64> = v["messages"]
                .as_array()
                .expect("messages")
                .iter()
                .map(|m| m["message_seq"].as_u64().expect("seq"))
                .collect();
            if page.is_empty() {
                break;
            }
            after = *page.iter().max().expect("max");
            seqs.extend(page);
        }
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=*last).collect::<Vec<_>>(), "history of {key}");
    }
    // The old versions stay until gc.
    assert_eq!(
        versions(&env)
            .await
            .iter()
            .filter(|v| v.2 == "retired")
            .count(),
        3
    );
    assert_equals_from_scratch(&env).await;
    let (ok, out, _) = env.projector_run(&["gc"]).await.expect("gc");
    assert!(ok && out.contains("dropped 3"), "{out}");
}

/// SIGKILL a rebuild at random moments, then resume: the serving versions never change until
/// the final switch, and the result equals a from-scratch build. A killed rebuild can also be
/// discarded.
#[tokio::test]
async fn rebuild_killed_at_random_points_resumes() {
    let env = TestEnv::new().await.expect("env");
    let cmd = env.command_svc().await.expect("command-svc");
    let _projector = env.projector().await.expect("projector");
    let c = Api::new(&cmd.url(), KEY_ACME);
    seed(&c, 8000, true).await;
    caught_up(&env).await;
    let before = serving(&env).await;

    // Discard: start, kill, drop.
    let mut child = env
        .projector_cmd(&["rebuild", "messages"])
        .spawn()
        .expect("spawn");
    tokio::time::sleep(Duration::from_millis(400)).await;
    child.start_kill().expect("kill");
    let _ = child.wait().await;
    let (ok, out, err) = env
        .projector_run(&["rebuild", "messages", "--discard"])
        .await
        .expect("discard");
    assert!(ok, "{out}\n{err}");
    assert!(
        versions(&env).await.iter().all(|v| v.2 != "building"),
        "a discarded rebuild left a version"
    );

    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(parley_tests::seed());
    let mut finished = false;
    for round in 0..5 {
        let resuming = versions(&env).await.iter().any(|v| v.2 == "building");
        let mut args = vec!["rebuild", "--all"];
        if resuming {
            args.push("--resume");
        }
        let mut child = env.projector_cmd(&args).spawn().expect("spawn");
        let wait = rng.gen_range(50..1500);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        if let Some(status) = child.try_wait().expect("try_wait") {
            assert!(
                status.success(),
                "round {round}: rebuild exited with {status}"
            );
            finished = true;
            break;
        }
        child.start_kill().expect("kill");
        let _ = child.wait().await;
        assert_eq!(
            serving(&env).await,
            before,
            "round {round}: a killed rebuild (after {wait} ms) changed the serving versions"
        );
        // Sends and reads keep working meanwhile.
        seed(&c, 50, false).await;
    }
    if !finished {
        let (ok, out, err) = env
            .projector_run(&["rebuild", "--all", "--resume"])
            .await
            .expect("resume");
        assert!(ok, "resume failed: {out}\n{err}");
    }
    let after = serving(&env).await;
    for p in PROJECTIONS {
        assert!(after[p] > before[p], "{p} was not switched: {after:?}");
    }
    assert_equals_from_scratch(&env).await;
}

/// A rebuild of one projection killed after it created its version, then `rebuild --all
/// --resume`: the documented way on continues that version and starts the others, and the
/// result switches all of them and equals a from-scratch build.
#[tokio::test]
async fn resume_of_a_set_starts_the_projections_without_an_unfinished_version() {
    let env = TestEnv::new().await.expect("env");
    let cmd = env.command_svc().await.expect("command-svc");
    let _projector = env.projector().await.expect("projector");
    let c = Api::new(&cmd.url(), KEY_ACME);
    seed(&c, 3000, true).await;
    caught_up(&env).await;
    let before = serving(&env).await;

    let mut child = env
        .projector_cmd(&["rebuild", "messages"])
        .spawn()
        .expect("spawn");
    let building = |vs: &[(String, i32, String, i64)], p: &str| {
        vs.iter().any(|v| v.0 == p && v.2 == "building")
    };
    let mut created = false;
    for _ in 0..400 {
        if building(&versions(&env).await, "messages") {
            created = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.start_kill().expect("kill");
    let _ = child.wait().await;
    assert!(created, "`rebuild messages` never created its version");
    let vs = versions(&env).await;
    assert!(
        building(&vs, "messages"),
        "the rebuild finished before it was killed: {vs:?}"
    );
    assert!(
        !building(&vs, "channels") && !building(&vs, "conversations"),
        "{vs:?}"
    );

    let (ok, out, err) = env
        .projector_run(&["rebuild", "--all", "--resume"])
        .await
        .expect("resume");
    assert!(ok, "resume of the set failed: {out}\n{err}");
    let after = serving(&env).await;
    for p in PROJECTIONS {
        assert!(after[p] > before[p], "{p} was not switched: {after:?}");
    }
    assert!(
        versions(&env).await.iter().all(|v| v.2 != "building"),
        "a version was left building"
    );
    assert_equals_from_scratch(&env).await;
}

/// Publishes a record no decoder knows on a subject of the stream; returns its sequence.
async fn publish_poison(env: &TestEnv) -> u64 {
    let client = async_nats::connect(&env.nats_url).await.expect("nats");
    let js = async_nats::jetstream::new(client);
    let subject = format!(
        "{}.acme.rd.{}",
        env.subject_root,
        events::subject::token("mallory")
    );
    let ack = js
        .publish(
            subject,
            br#"{"type":"message_sent","v":99,"tenant":"acme","at":1,"data":{}}"#
                .as_slice()
                .into(),
        )
        .await
        .expect("publish")
        .await
        .expect("ack");
    ack.sequence
}

async fn dlq(env: &TestEnv) -> Vec<Value> {
    let (ok, out, err) = env
        .projector_run(&["dlq", "list", "--all", "--json"])
        .await
        .expect("dlq list");
    assert!(ok, "{err}");
    out.lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

/// Policy `skip` (default): the poison event is retried, parked in every projection with its
/// error, and the events after it flow; `dlq retry` tries again, `dlq skip` closes it.
#[tokio::test]
async fn poison_event_parks_and_the_rest_flows() {
    let Stack {
        env,
        _services,
        c,
        q,
    } = stack().await;
    seed(&c, 10, true).await;
    let poison = publish_poison(&env).await;
    let after = seed(&c, 10, false).await;
    assert!(after > poison);
    let (st, v) = q
        .get(&format!(
            "/v1/users/u1/conversations?limit=50&min_event_seq={after}"
        ))
        .await
        .expect("query");
    assert_eq!(st, 200, "events after the poison one did not flow: {v}");
    caught_up(&env).await;
    let parked = dlq(&env).await;
    assert_eq!(parked.len(), 3, "{parked:?}");
    for e in &parked {
        assert_eq!(e["event_seq"].as_u64(), Some(poison));
        assert_eq!(e["state"], "parked");
        assert!(
            e["error"]
                .as_str()
                .unwrap_or("")
                .contains("unknown event message_sent v99"),
            "{e}"
        );
    }
    let (ok, out, _) = env
        .projector_run(&["dlq", "retry", "messages", &poison.to_string()])
        .await
        .expect("retry");
    assert!(ok && out.starts_with("1 event"), "{out}");
    let mut attempts = 0;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let m = dlq(&env).await;
        let e = m
            .iter()
            .find(|e| e["projection"] == "messages")
            .expect("messages row");
        if e["state"] == "parked" && e["attempts"].as_i64() == Some(2) {
            attempts = 2;
            break;
        }
    }
    assert_eq!(attempts, 2, "the retry was not attempted");
    let (ok, out, _) = env
        .projector_run(&["dlq", "skip", "messages", "--all"])
        .await
        .expect("skip");
    assert!(ok && out.starts_with("1 event"), "{out}");
    let m = dlq(&env).await;
    assert_eq!(
        m.iter()
            .find(|e| e["projection"] == "messages")
            .expect("row")["state"],
        "skipped"
    );
    let (ok, out, _) = env
        .projector_run(&["status", "--json"])
        .await
        .expect("status");
    assert!(ok);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let parked_count: Vec<i64> = lines
        .iter()
        .map(|l| l["parked"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(parked_count.iter().sum::<i64>(), 2, "{out}");
    assert!(
        lines
            .iter()
            .all(|l| l["state"] == "serving" && l["lag_events"] == 0),
        "{out}"
    );
}

/// Policy `stop`: the projection halts just before the poison event (nothing after it is
/// applied, out of order or otherwise) until `dlq skip`, then catches up.
#[tokio::test]
async fn poison_event_under_stop_policy_halts_until_skipped() {
    let env = TestEnv::new().await.expect("env");
    let cmd = env.command_svc().await.expect("command-svc");
    let _projector = env
        .projector_with(|c| c.on_poison = projector::shell::batch::PoisonPolicy::Stop)
        .await
        .expect("projector");
    let query = env.query_svc().await.expect("query-svc");
    let q = Api::with_auth(&query.url(), None);
    let c = Api::new(&cmd.url(), KEY_ACME);
    seed(&c, 10, true).await;
    let poison = publish_poison(&env).await;
    let after = seed(&c, 10, false).await;
    let mut halted = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let v = versions(&env).await;
        if v.iter().all(|v| v.3 == poison as i64 - 1) {
            let (_, out, _) = env
                .projector_run(&["status", "--json"])
                .await
                .expect("status");
            halted = out.lines().all(|l| l.contains("\"state\":\"parked\""));
            if halted {
                break;
            }
        }
    }
    assert!(
        halted,
        "the projections did not halt at {}: {:?}",
        poison - 1,
        versions(&env).await
    );
    // The query service reads halted projections: it is not ready, and says why.
    let (st, ready) = q.get("/ready").await.expect("ready");
    assert_eq!(st, 503, "{ready}");
    for p in ready["projections"].as_array().expect("projections") {
        assert_eq!(p["halted_at"].as_u64(), Some(poison), "{ready}");
    }
    let (ok, out, _) = env
        .projector_run(&["dlq", "skip", "messages", &poison.to_string()])
        .await
        .expect("skip");
    assert!(ok, "{out}");
    for p in ["channels", "conversations"] {
        let (ok, _, _) = env
            .projector_run(&["dlq", "skip", p, "--all"])
            .await
            .expect("skip");
        assert!(ok);
    }
    caught_up(&env).await;
    assert!(versions(&env).await.iter().all(|v| v.3 >= after as i64));
    let (st, ready) = q.get("/ready").await.expect("ready");
    assert_eq!(st, 200, "{ready}");
}

/// A projector process started with `run` on a free port for its `/ready`; killed when dropped.
struct ProjectorProcess {
    child: tokio::process::Child,
    ready: String,
}

impl ProjectorProcess {
    fn spawn(env: &TestEnv) -> Self {
        let port = free_port();
        let child = env
            .projector_cmd(&["run"])
            .env("PARLEY_PROJECTOR_LISTEN", format!("127.0.0.1:{port}"))
            .env("PARLEY_PROJECTOR_BATCH", "200")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn projector");
        Self {
            child,
            ready: format!("http://127.0.0.1:{port}/ready"),
        }
    }

    /// The role (`serving`/`standby`) of each projection in `/ready`, once it answers.
    async fn roles(&self) -> Option<BTreeMap<String, String>> {
        let body: Value = reqwest::get(&self.ready).await.ok()?.json().await.ok()?;
        let roles: BTreeMap<String, String> = body["projections"]
            .as_array()?
            .iter()
            .filter_map(|p| Some((p["projection"].as_str()?.into(), p["role"].as_str()?.into())))
            .collect();
        (roles.len() == PROJECTIONS.len()).then_some(roles)
    }

    /// Waits (at most `within`) until every projection has `role` here.
    async fn wait_role(&self, role: &str, within: Duration) -> Duration {
        let started = std::time::Instant::now();
        while started.elapsed() < within {
            if self
                .roles()
                .await
                .is_some_and(|r| r.values().all(|v| v == role))
            {
                return started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "projections did not all become {role} within {within:?}: {:?}",
            self.roles().await
        );
    }
}

/// Two projector processes, as in a rolling deploy: the first serves every projection, the
/// second stands by (and says so in `/ready`). Under load, `kill -9` of the active one hands
/// every projection to the standby within seconds; every event is applied exactly once (the
/// tables equal a from-scratch build) and nothing is parked.
#[tokio::test]
async fn two_projectors_one_serves_and_the_standby_takes_over() {
    let env = TestEnv::new().await.expect("env");
    let cmd = env.command_svc().await.expect("command-svc");
    let query = env.query_svc().await.expect("query-svc");
    let c = Api::new(&cmd.url(), KEY_ACME);
    let q = Api::new(&query.url(), KEY_ACME);
    seed(&c, 1500, true).await;
    let mut a = ProjectorProcess::spawn(&env);
    a.wait_role("serving", Duration::from_secs(30)).await;
    let b = ProjectorProcess::spawn(&env);
    b.wait_role("standby", Duration::from_secs(30)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (c, stop) = (c.clone(), stop.clone());
        tokio::spawn(async move {
            let mut last: BTreeMap<String, u64> = BTreeMap::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let messages: Vec<Value> = (0..20)
                    .map(|j| {
                        let n = i * 20 + j;
                        let (ct, id) = if n.is_multiple_of(2) {
                            (1, "ha-b")
                        } else {
                            (2, "g2")
                        };
                        json!({"channel_id": id, "channel_type": ct, "from_uid": "u2",
                               "payload": b64(format!("handover {n}").as_bytes()),
                               "client_msg_no": format!("handover-{n}")})
                    })
                    .collect();
                let (st, r) = c
                    .post("/v1/messages/batch", &json!({ "messages": messages }))
                    .await
                    .expect("batch");
                assert_eq!(st, 200, "{r}");
                for (x, m) in r["results"]
                    .as_array()
                    .expect("results")
                    .iter()
                    .zip(&messages)
                {
                    assert_eq!(x["status"], 200, "{x}");
                    let key = format!(
                        "{}/{}",
                        m["channel_type"],
                        m["channel_id"].as_str().unwrap_or("")
                    );
                    last.insert(key, x["result"]["message_seq"].as_u64().expect("seq"));
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            last
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.child.start_kill().expect("kill -9 the active projector");
    let _ = a.child.wait().await;
    let took = b.wait_role("serving", Duration::from_secs(15)).await;
    println!("standby took over {took:?} after kill -9 of the active projector");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let last = writer.await.expect("writer");

    caught_up(&env).await;
    assert_eq!(
        parked_count(&env).await.expect("parked"),
        0,
        "a valid event was parked during the handover"
    );
    for (key, n) in &last {
        let (ct, id) = key.split_once('/').expect("key");
        let (st, v) = q
            .get(&format!("/v1/channels/{ct}/{id}/messages?uid=u2&limit=1"))
            .await
            .expect("history");
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["messages"][0]["message_seq"].as_u64(), Some(*n), "{key}");
    }
    assert_equals_from_scratch(&env).await;
    drop(b);
}

/// A log written before the text rules existed holds a group whose name contains U+0000
/// (Postgres `text` cannot store it). The command edge refuses such a name now; the old
/// record (the golden fixture) is applied, not parked: the name is stored with U+FFFD, its
/// members read and write the group, and a rebuild of the log verifies clean.
#[tokio::test]
async fn legacy_group_name_with_nul_is_applied_and_rebuilds_clean() {
    let Stack {
        env,
        _services,
        c,
        q,
    } = stack().await;
    let head = stream_head(&env).await.expect("head");
    let (st, v) = c
        .post(
            "/v1/channels",
            &json!({"channel_id": "g", "name": "a\u{0}b", "members": ["alice", "bob"]}),
        )
        .await
        .expect("create");
    assert_eq!(
        (st, v["error"]["field"].as_str()),
        (400, Some("name")),
        "{v}"
    );
    assert_eq!(
        stream_head(&env).await.expect("head"),
        head,
        "a refused command appended"
    );

    let record = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/tests/fixtures/group_created.v1.nul_name.json"
    ))
    .expect("fixture");
    let subject = events::subject::Subjects::new(env.subject_root.clone()).channel(
        &events::TenantId::parse("acme").expect("tenant"),
        &events::ChannelKey::Group {
            id: events::ChannelId::parse("legacy").expect("id"),
        },
    );
    let js = async_nats::jetstream::new(async_nats::connect(&env.nats_url).await.expect("nats"));
    js.publish(subject, record.trim_ascii_end().to_vec().into())
        .await
        .expect("publish")
        .await
        .expect("ack");
    let (st, sent) = c
        .post(
            "/v1/messages",
            &json!({"channel_id": "legacy", "channel_type": 2, "from_uid": "alice",
                    "payload": b64(b"still works")}),
        )
        .await
        .expect("send");
    assert_eq!(st, 200, "the founding member cannot write: {sent}");
    let min = sent["event_seq"].as_u64().expect("event_seq");
    let (st, h) = q
        .get(&format!(
            "/v1/channels/2/legacy/messages?uid=bob&min_event_seq={min}"
        ))
        .await
        .expect("history");
    assert_eq!(st, 200, "a founding member cannot read: {h}");
    assert_eq!(h["messages"].as_array().map(Vec::len), Some(1), "{h}");
    let (st, info) = q
        .get(&format!(
            "/v1/channels/legacy?uid=alice&min_event_seq={min}"
        ))
        .await
        .expect("info");
    assert_eq!(st, 200, "{info}");
    assert_eq!(info["name"], "a\u{FFFD}b");
    assert_eq!(parked_count(&env).await.expect("parked"), 0);
    let (ok, out, err) = env
        .projector_run(&["rebuild", "--all"])
        .await
        .expect("rebuild");
    assert!(ok, "the rebuild did not verify clean: {out}\n{err}");
}
