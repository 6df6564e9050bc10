//! Faults in Postgres under load, end to end: the database crashing (`kill -9`) with the
//! asynchronous-commit settings of `deploy/infra.sh --test`, and a restore that loses the
//! read models' last commits. Acknowledged messages must be in history exactly once, and every
//! retry of a send must return its original ids.

use parley_tests::pg::PgCluster;
use parley_tests::*;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What a send was acknowledged with.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Acked {
    channel: (String, String),
    message_id: String,
    message_seq: u64,
}

fn body(from: &str, to: &str, no: &str) -> Value {
    json!({"channel_id": to, "channel_type": 1, "from_uid": from,
           "payload": b64(no.as_bytes()), "client_msg_no": no})
}

/// Sends `body` until it is acknowledged (the same `client_msg_no` every time, so a retry of
/// an attempt whose outcome was unknown cannot append twice).
async fn send_until_acked(c: &Api, body: &Value) -> Value {
    for _ in 0..600 {
        match c.post("/v1/messages", body).await {
            Ok((200, v)) => return v,
            Ok((s, v)) => assert!(s == 503, "a send answered {s}: {v}"),
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("send never acknowledged: {body}");
}

/// The whole history of the personal channel `viewer`–`peer`, oldest first, once every
/// projection has applied `min_event_seq` (retrying while it lags).
async fn full_history(q: &Api, viewer: &str, peer: &str, min_event_seq: u64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = 0u64;
    loop {
        let path = format!(
            "/v1/channels/1/{peer}/messages?uid={viewer}&limit=100&after_seq={after}&min_event_seq={min_event_seq}"
        );
        let mut page = None;
        for _ in 0..300 {
            match q.get(&path).await {
                Ok((200, v)) => {
                    page = Some(v);
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        let page = page.expect("history page within 60 s");
        let messages = page["messages"].as_array().cloned().unwrap_or_default();
        if messages.is_empty() {
            return out;
        }
        after = messages
            .last()
            .and_then(|m| m["message_seq"].as_u64())
            .expect("seq");
        out.extend(messages);
    }
}

/// Asserts every acknowledged send is in its channel's history exactly once, at its seq, with
/// its id, and that the history holds nothing else (seqs 1..=n, gap-free).
async fn assert_history_exact(q: &Api, acked: &BTreeMap<String, Acked>, head: u64) {
    let mut by_channel: BTreeMap<(String, String), BTreeMap<u64, String>> = BTreeMap::new();
    for a in acked.values() {
        let prev = by_channel
            .entry(a.channel.clone())
            .or_default()
            .insert(a.message_seq, a.message_id.clone());
        assert!(
            prev.is_none(),
            "two acked sends share seq {}",
            a.message_seq
        );
    }
    for ((from, to), expected) in &by_channel {
        let history = full_history(q, from, to, head).await;
        let got: BTreeMap<u64, String> = history
            .iter()
            .map(|m| {
                (
                    m["message_seq"].as_u64().expect("seq"),
                    m["message_id"].as_str().expect("id").to_owned(),
                )
            })
            .collect();
        assert_eq!(
            got.len(),
            history.len(),
            "a seq appears twice in {from}–{to}"
        );
        let top = got
            .keys()
            .chain(expected.keys())
            .max()
            .copied()
            .unwrap_or(0);
        let missing: Vec<u64> = (1..=top).filter(|s| !got.contains_key(s)).collect();
        assert!(
            missing.is_empty(),
            "history of {from}–{to} lacks seqs {missing:?}"
        );
        let differ: Vec<(&u64, &String, Option<&String>)> = expected
            .iter()
            .filter(|(s, id)| got.get(s) != Some(id))
            .map(|(s, id)| (s, id, got.get(s)))
            .collect();
        assert!(
            differ.is_empty(),
            "history of {from}–{to} differs from the acks at (seq, acked, stored) {differ:?}"
        );
        assert_eq!(
            got.len(),
            expected.len(),
            "history of {from}–{to} holds messages nobody acked"
        );
    }
}

/// Postgres is killed (`kill -9`, asynchronous commit, a WAL writer that lags 10 s) five times
/// while four writers send; every acknowledged message ends in history exactly once, and after
/// a command-service restart (nothing cached) every retry returns its original ids.
#[tokio::test]
async fn acked_messages_survive_postgres_crashes_exactly_once() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed());
    let pg = PgCluster::start().await.expect("own postgres");
    let env = TestEnv::on_database_server(&pg.url("parley"))
        .await
        .expect("env");
    let cmd = env.command_svc().await.expect("command-svc");
    let _projector = env.projector().await.expect("projector");
    let query = env.query_svc().await.expect("query-svc");
    let c = Api::new(&cmd.url(), KEY_ACME);
    let q = Api::new(&query.url(), KEY_ACME);

    let done = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (c, done) = (c.clone(), done.clone());
        writers.push(tokio::spawn(async move {
            let mut acked = BTreeMap::new();
            let mut n = 0;
            while !done.load(Ordering::Relaxed) {
                let (from, to) = (format!("w{w}a"), format!("w{w}b{}", n % 3));
                let no = format!("w{w}-{n}");
                let v = send_until_acked(&c, &body(&from, &to, &no)).await;
                acked.insert(
                    no,
                    Acked {
                        channel: (from, to),
                        message_id: v["message_id"].as_str().expect("id").to_owned(),
                        message_seq: v["message_seq"].as_u64().expect("seq"),
                    },
                );
                n += 1;
            }
            acked
        }));
    }
    for round in 0..5 {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(700..1800))).await;
        pg.kill9().await.expect("kill -9 postgres");
        tokio::time::sleep(Duration::from_millis(rng.gen_range(100..600))).await;
        pg.restart()
            .unwrap_or_else(|e| panic!("restart {round}: {e}"));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    done.store(true, Ordering::Relaxed);
    let mut acked = BTreeMap::new();
    for w in writers {
        acked.extend(w.await.expect("writer"));
    }
    assert!(
        acked.len() > 100,
        "too few sends got through: {}",
        acked.len()
    );
    let head = stream_head(&env).await.expect("head");
    assert_history_exact(&q, &acked, head).await;

    // Nothing cached any more: retries are answered from the snapshot and `message_keys`.
    cmd.stop().await;
    let cmd = env.command_svc().await.expect("command-svc again");
    let c = Api::new(&cmd.url(), KEY_ACME);
    for (no, a) in &acked {
        let v = send_until_acked(&c, &body(&a.channel.0, &a.channel.1, no)).await;
        assert_eq!(
            (v["message_id"].as_str(), v["message_seq"].as_u64()),
            (Some(a.message_id.as_str()), Some(a.message_seq)),
            "the retry of {no} was not answered with its original ids"
        );
    }
    assert_eq!(
        stream_head(&env).await.expect("head"),
        head,
        "a retry appended"
    );
}

/// The read models lose their last commits while the projector runs (what a point-in-time
/// restore or a failover to an asynchronous standby does): the messages projection's rows and
/// checkpoint are set back; the projector notices at its next batch and applies the lost
/// events again instead of committing past them.
#[tokio::test]
async fn projector_reapplies_events_after_its_checkpoint_moves_back() {
    let env = TestEnv::new().await.expect("env");
    let cmd = env.command_svc().await.expect("command-svc");
    let _projector = env.projector().await.expect("projector");
    let query = env.query_svc().await.expect("query-svc");
    let c = Api::new(&cmd.url(), KEY_ACME);
    let q = Api::new(&query.url(), KEY_ACME);
    let mut acked = BTreeMap::new();
    let mut record = |no: String, v: &Value| {
        acked.insert(
            no,
            Acked {
                channel: ("ra".into(), "rb".into()),
                message_id: v["message_id"].as_str().expect("id").to_owned(),
                message_seq: v["message_seq"].as_u64().expect("seq"),
            },
        );
    };
    let mut kept = 0;
    for i in 0..50 {
        let no = format!("r-{i}");
        let v = send_until_acked(&c, &body("ra", "rb", &no)).await;
        if i == 24 {
            kept = v["event_seq"].as_u64().expect("event_seq");
        }
        record(no, &v);
    }
    let head = stream_head(&env).await.expect("head");
    assert_eq!(full_history(&q, "ra", "rb", head).await.len(), 50);

    // The "restore": messages 26..50 and the checkpoint past them are gone.
    let mut db = env.db().await.expect("db");
    let tx = db.transaction().await.expect("tx");
    let schema: String = tx
        .query_one(
            "SELECT schema_name FROM projection_versions \
             WHERE projection = 'messages' AND state = 'serving'",
            &[],
        )
        .await
        .expect("schema")
        .get(0);
    let gone = tx
        .execute(
            &format!("DELETE FROM {schema}.messages WHERE event_seq > $1"),
            &[&(kept as i64)],
        )
        .await
        .expect("delete");
    assert_eq!(gone, 25);
    tx.execute(
        "UPDATE projection_versions SET last_seq = $1 \
         WHERE projection = 'messages' AND state = 'serving'",
        &[&(kept as i64)],
    )
    .await
    .expect("checkpoint");
    tx.commit().await.expect("commit");

    for i in 50..60 {
        let no = format!("r-{i}");
        let v = send_until_acked(&c, &body("ra", "rb", &no)).await;
        record(no, &v);
    }
    let head = stream_head(&env).await.expect("head");
    assert_history_exact(&q, &acked, head).await;
    assert_eq!(
        parked_count(&env).await.expect("parked"),
        0,
        "re-applied events must not be parked"
    );
}
