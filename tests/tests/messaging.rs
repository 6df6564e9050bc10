//! End-to-end tests over HTTP against real NATS and Postgres: sends, history, conversations,
//! unread, groups, idempotency, concurrency, crashes, tenant isolation.

use parley_tests::*;
use serde_json::{json, Value};
use std::collections::HashSet;

struct Stack {
    env: TestEnv,
    cmd: Running,
    query: Running,
    projector: Running,
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
        cmd,
        query,
        projector,
        c,
        q,
    }
}

async fn send(
    c: &Api,
    from: &str,
    channel_type: u8,
    channel_id: &str,
    text: &str,
    no: Option<&str>,
) -> Value {
    let mut body = json!({"channel_id": channel_id, "channel_type": channel_type, "from_uid": from, "payload": b64(text.as_bytes())});
    if let Some(no) = no {
        body["client_msg_no"] = json!(no);
    }
    let (status, v) = c.post("/v1/messages", &body).await.expect("send");
    assert_eq!(status, 200, "{v}");
    v
}

async fn history(q: &Api, viewer: &str, ct: u8, channel_id: &str, extra: &str) -> (u16, Value) {
    q.get(&format!(
        "/v1/channels/{ct}/{}/messages?uid={}{extra}",
        enc(channel_id),
        enc(viewer)
    ))
    .await
    .expect("history")
}

async fn conversations(q: &Api, uid: &str, min: u64) -> Vec<Value> {
    let (s, v) = q
        .get(&format!(
            "/v1/users/{}/conversations?limit=100&min_event_seq={min}",
            enc(uid)
        ))
        .await
        .expect("conversations");
    assert_eq!(s, 200, "{v}");
    v["conversations"].as_array().cloned().unwrap_or_default()
}

fn seqs(v: &Value) -> Vec<u64> {
    v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message_seq"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn personal_messages_history_conversations_and_unread() {
    let s = stack().await;
    let a = send(&s.c, "alice", 1, "bob", "hi bob", None).await;
    assert_eq!(a["message_seq"], 1);
    send(&s.c, "bob", 1, "alice", "hi alice", None).await;
    let last = send(&s.c, "alice", 1, "bob", "how are you", None).await;
    assert_eq!(last["message_seq"], 3);
    let min = last["event_seq"].as_u64().unwrap();

    let (st, h) = history(&s.q, "bob", 1, "alice", &format!("&min_event_seq={min}")).await;
    assert_eq!(st, 200, "{h}");
    assert_eq!(seqs(&h), vec![1, 2, 3]);
    assert_eq!(h["more"], false);
    let m0 = &h["messages"][0];
    assert_eq!(m0["from_uid"], "alice");
    assert_eq!(m0["channel_id"], "alice", "bob sees the peer as channel_id");
    assert_eq!(m0["payload"], b64(b"hi bob"));
    assert_eq!(m0["message_id"], a["message_id"]);

    // the same channel from alice's side
    let (_, h2) = history(&s.q, "alice", 1, "bob", "").await;
    assert_eq!(seqs(&h2), vec![1, 2, 3]);
    assert_eq!(h2["messages"][0]["channel_id"], "bob");

    let bob = conversations(&s.q, "bob", min).await;
    assert_eq!(bob.len(), 1);
    assert_eq!(bob[0]["channel_id"], "alice");
    assert_eq!(bob[0]["last_msg_seq"], 3);
    assert_eq!(
        bob[0]["read_seq"], 2,
        "bob's own send advanced his read position"
    );
    assert_eq!(bob[0]["unread"], 1);
    assert_eq!(bob[0]["last_message"]["message_seq"], 3);
    let alice = conversations(&s.q, "alice", min).await;
    assert_eq!(alice[0]["unread"], 0);

    // read everything, then mark unread again
    let (st, r) =
        s.c.post(
            "/v1/users/bob/conversations/1/alice/read",
            &json!({"message_seq": 3}),
        )
        .await
        .unwrap();
    assert_eq!(st, 200, "{r}");
    let bob = conversations(&s.q, "bob", r["event_seq"].as_u64().unwrap()).await;
    assert_eq!(bob[0]["unread"], 0);
    let (_, r) =
        s.c.post(
            "/v1/users/bob/conversations/1/alice/read",
            &json!({"message_seq": 1}),
        )
        .await
        .unwrap();
    let bob = conversations(&s.q, "bob", r["event_seq"].as_u64().unwrap()).await;
    assert_eq!(bob[0]["unread"], 2);
    // capped at the channel's head
    let (_, r) =
        s.c.post(
            "/v1/users/bob/conversations/1/alice/read",
            &json!({"message_seq": 99}),
        )
        .await
        .unwrap();
    assert_eq!(r["message_seq"], 3);
    // a conversation that does not exist
    let (st, e) =
        s.c.post(
            "/v1/users/bob/conversations/1/nobody/read",
            &json!({"message_seq": 1}),
        )
        .await
        .unwrap();
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (404, Some("CONVERSATION_NOT_FOUND"))
    );

    // message by id
    let (st, m) =
        s.q.get(&format!(
            "/v1/messages/{}?uid=bob",
            a["message_id"].as_str().unwrap()
        ))
        .await
        .unwrap();
    assert_eq!(st, 200, "{m}");
    assert_eq!(m["message_seq"], 1);
    let (st, _) =
        s.q.get(&format!(
            "/v1/messages/{}?uid=mallory",
            a["message_id"].as_str().unwrap()
        ))
        .await
        .unwrap();
    assert_eq!(st, 404);
    drop(s);
}

#[tokio::test]
async fn keyset_pagination_walks_the_history_both_ways() {
    let s = stack().await;
    let mut last = Value::Null;
    for i in 0..25 {
        last = send(&s.c, "p", 1, "q", &format!("m{i}"), None).await;
    }
    let min = last["event_seq"].as_u64().unwrap();
    let (_, newest) = history(&s.q, "p", 1, "q", &format!("&limit=10&min_event_seq={min}")).await;
    assert_eq!(seqs(&newest), (16..=25).collect::<Vec<_>>());
    assert_eq!(newest["more"], true);
    let (_, older) = history(&s.q, "p", 1, "q", "&limit=10&before_seq=16").await;
    assert_eq!(seqs(&older), (6..=15).collect::<Vec<_>>());
    let (_, oldest) = history(&s.q, "p", 1, "q", "&limit=10&before_seq=6").await;
    assert_eq!(seqs(&oldest), (1..=5).collect::<Vec<_>>());
    assert_eq!(oldest["more"], false);
    let (_, fwd) = history(&s.q, "p", 1, "q", "&limit=10&after_seq=20").await;
    assert_eq!(seqs(&fwd), (21..=25).collect::<Vec<_>>());
    assert_eq!(fwd["more"], false);
    let (st, e) = history(&s.q, "p", 1, "q", "&limit=101").await;
    assert_eq!((st, e["error"]["field"].as_str()), (400, Some("limit")));
}

#[tokio::test]
async fn message_seq_is_gap_free_under_two_writers() {
    let s = stack().await;
    let second = s.env.command_svc().await.unwrap();
    let apis = [s.c.clone(), Api::new(&second.url(), KEY_ACME)];
    let mut tasks = Vec::new();
    for w in 0..8 {
        let api = apis[w % 2].clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for i in 0..40 {
                let from = if i % 2 == 0 { "x" } else { "y" };
                let v = send(
                    &api,
                    from,
                    1,
                    if from == "x" { "y" } else { "x" },
                    &format!("{w}-{i}"),
                    None,
                )
                .await;
                got.push((
                    v["message_seq"].as_u64().unwrap(),
                    v["event_seq"].as_u64().unwrap(),
                ));
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let mut seq: Vec<u64> = all.iter().map(|(s, _)| *s).collect();
    seq.sort_unstable();
    assert_eq!(seq, (1..=320).collect::<Vec<_>>(), "unique and gap-free");
    let min = all.iter().map(|(_, e)| *e).max().unwrap();
    // the same holds in the history
    let mut after = 0;
    let mut seen = Vec::new();
    loop {
        let (_, page) = history(
            &s.q,
            "x",
            1,
            "y",
            &format!("&limit=100&after_seq={after}&min_event_seq={min}"),
        )
        .await;
        let p = seqs(&page);
        if p.is_empty() {
            break;
        }
        after = *p.last().unwrap();
        seen.extend(p);
    }
    assert_eq!(seen, (1..=320).collect::<Vec<_>>());
    // and in the stream: the order of message_seq follows the log order
    let mut by_event = all.clone();
    by_event.sort_by_key(|(_, e)| *e);
    assert!(by_event.windows(2).all(|w| w[0].0 < w[1].0));
    second.stop().await;
}

#[tokio::test]
async fn idempotent_retry_returns_the_original_forever_and_409_on_other_payload() {
    let s = stack().await;
    let first = send(&s.c, "u1", 1, "u2", "hello", Some("k-1")).await;
    let again = send(&s.c, "u1", 1, "u2", "hello", Some("k-1")).await;
    assert_eq!(again["message_id"], first["message_id"]);
    assert_eq!(again["message_seq"], first["message_seq"]);
    let body = json!({"channel_id": "u2", "channel_type": 1, "from_uid": "u1", "payload": b64(b"other"), "client_msg_no": "k-1"});
    let (st, e) = s.c.post("/v1/messages", &body).await.unwrap();
    assert_eq!(
        (
            st,
            e["error"]["code"].as_str(),
            e["error"]["field"].as_str()
        ),
        (409, Some("IDEMPOTENCY_CONFLICT"), Some("client_msg_no"))
    );

    // a fresh command-svc instance (cold cache) after the projector applied it: from message_keys
    let min = first["event_seq"].as_u64().unwrap();
    let (_, _) = history(&s.q, "u1", 1, "u2", &format!("&min_event_seq={min}")).await;
    let fresh = s.env.command_svc().await.unwrap();
    let api = Api::new(&fresh.url(), KEY_ACME);
    let later = send(&api, "u1", 1, "u2", "hello", Some("k-1")).await;
    assert_eq!(later["message_id"], first["message_id"]);
    let (st, _) = api.post("/v1/messages", &body).await.unwrap();
    assert_eq!(st, 409);

    // a cold instance with the projector stopped: the key is found in the log's tail
    s.projector.stop().await;
    let x = send(&s.c, "u1", 1, "u2", "second", Some("k-2")).await;
    let cold = s.env.command_svc().await.unwrap();
    let api = Api::new(&cold.url(), KEY_ACME);
    let y = send(&api, "u1", 1, "u2", "second", Some("k-2")).await;
    assert_eq!(
        (x["message_id"].clone(), x["message_seq"].clone()),
        (y["message_id"].clone(), y["message_seq"].clone())
    );
    // and a new message from the cold instance continues the sequence
    let z = send(&api, "u1", 1, "u2", "third", None).await;
    assert_eq!(z["message_seq"], 3);

    // restart the projector: the history holds each message once
    let _p = s.env.projector().await.unwrap();
    let (_, h) = history(
        &s.q,
        "u2",
        1,
        "u1",
        &format!("&min_event_seq={}", z["event_seq"]),
    )
    .await;
    assert_eq!(seqs(&h), vec![1, 2, 3]);
    fresh.stop().await;
    cold.stop().await;
}

/// A hot channel sheds its in-memory idempotency keys (past 4,096 new ones the state is dropped
/// and reloaded from the snapshot); every key still answers with its original message.
#[tokio::test]
async fn idempotency_holds_across_the_in_memory_key_cap() {
    let s = stack().await;
    let mut last_event_seq = 0;
    for chunk in 0..5 {
        let messages: Vec<Value> = (0..1000)
            .map(|i| {
                let n = chunk * 1000 + i;
                json!({"channel_id": "hot-b", "channel_type": 1, "from_uid": "hot-a",
                       "payload": b64(format!("m{n}").as_bytes()), "client_msg_no": format!("k{n}")})
            })
            .collect();
        let (st, r) =
            s.c.post("/v1/messages/batch", &json!({ "messages": messages }))
                .await
                .unwrap();
        assert_eq!(st, 200, "{r}");
        let results = r["results"].as_array().unwrap();
        assert_eq!(results.len(), 1000);
        assert!(
            results.iter().all(|x| x["status"] == 200),
            "a batch item failed"
        );
        last_event_seq = results[999]["result"]["event_seq"].as_u64().unwrap();
        // let the projector cover the keys, so a reload can shed them
        let (st, _) = history(
            &s.q,
            "hot-a",
            1,
            "hot-b",
            &format!("&min_event_seq={last_event_seq}"),
        )
        .await;
        assert_eq!(st, 200);
    }
    for n in [0u64, 1, 2048, 4095, 4096, 4999] {
        let again = send(
            &s.c,
            "hot-a",
            1,
            "hot-b",
            &format!("m{n}"),
            Some(&format!("k{n}")),
        )
        .await;
        assert_eq!(again["message_seq"], n + 1, "key k{n}");
        let body = json!({"channel_id": "hot-b", "channel_type": 1, "from_uid": "hot-a",
                          "payload": b64(b"different"), "client_msg_no": format!("k{n}")});
        let (st, _) = s.c.post("/v1/messages", &body).await.unwrap();
        assert_eq!(st, 409, "key k{n}");
    }
    let next = send(&s.c, "hot-a", 1, "hot-b", "after", Some("k-new")).await;
    assert_eq!(next["message_seq"], 5001);
    assert!(next["event_seq"].as_u64().unwrap() > last_event_seq);
}

#[tokio::test]
async fn projector_killed_at_random_points_applies_each_event_exactly_once() {
    let s = stack().await;
    let Stack {
        env,
        c,
        q,
        projector,
        ..
    } = s;
    let sender = {
        let c = c.clone();
        tokio::spawn(async move {
            let mut last = Value::Null;
            for i in 0..300 {
                let (from, to) = if i % 3 == 0 {
                    ("k1", "k2")
                } else {
                    ("k2", "k1")
                };
                last = send(&c, from, 1, to, &format!("{i}"), None).await;
                if i % 7 == 0 {
                    send(&c, "k3", 1, "k1", "side", None).await;
                }
            }
            last
        })
    };
    projector.kill();
    let mut proj = None;
    for round in 0..12 {
        let p = env.projector().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(40 + (round * 37) % 90)).await;
        p.kill();
        proj = None::<Running>;
    }
    let last = sender.await.unwrap();
    let _final = env.projector().await.unwrap();
    drop(proj);
    let min = stream_head(&env).await.unwrap();
    let (_, h) = q
        .get(&format!(
            "/v1/channels/1/k2/messages?uid=k1&limit=100&after_seq=0&min_event_seq={min}"
        ))
        .await
        .unwrap();
    assert_eq!(h["messages"][0]["message_seq"], 1);
    let db = env.db().await.unwrap();
    let n: i64 = db
        .query_one(
            "SELECT count(*) FROM messages WHERE channel_key = 'k1 k2'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let distinct: i64 = db
        .query_one(
            "SELECT count(DISTINCT message_seq) FROM messages WHERE channel_key = 'k1 k2'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!((n, distinct), (300, 300));
    assert_eq!(last["message_seq"], 300);
    let conv = conversations(&q, "k1", min).await;
    let k2 = conv.iter().find(|c| c["channel_id"] == "k2").unwrap();
    // k1 sent message i when i % 3 == 0; the last such is i = 297 → seq 298; head is 300.
    assert_eq!(
        (
            k2["last_msg_seq"].as_u64(),
            k2["read_seq"].as_u64(),
            k2["unread"].as_u64()
        ),
        (Some(300), Some(298), Some(2))
    );
    let k3 = conv.iter().find(|c| c["channel_id"] == "k3").unwrap();
    assert_eq!(
        (k3["last_msg_seq"].as_u64(), k3["unread"].as_u64()),
        (Some(43), Some(43))
    );
    drop(c);
}

#[tokio::test]
async fn groups_members_and_their_rules() {
    let s = stack().await;
    let (st, v) =
        s.c.post(
            "/v1/channels",
            &json!({"channel_id": "team.a>*", "name": "Team", "members": ["ann", "ben"]}),
        )
        .await
        .unwrap();
    assert_eq!(st, 200, "{v}");
    let (st, e) =
        s.c.post(
            "/v1/channels",
            &json!({"channel_id": "team.a>*", "members": []}),
        )
        .await
        .unwrap();
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (409, Some("CHANNEL_EXISTS"))
    );
    send(&s.c, "ann", 2, "team.a>*", "one", None).await;
    let two = send(&s.c, "ben", 2, "team.a>*", "two", None).await;
    assert_eq!(two["message_seq"], 2);
    let body = json!({"channel_id": "team.a>*", "channel_type": 2, "from_uid": "eve", "payload": b64(b"x")});
    let (st, e) = s.c.post("/v1/messages", &body).await.unwrap();
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (403, Some("NOT_A_MEMBER"))
    );
    let body =
        json!({"channel_id": "nope", "channel_type": 2, "from_uid": "ann", "payload": b64(b"x")});
    let (st, e) = s.c.post("/v1/messages", &body).await.unwrap();
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (404, Some("CHANNEL_NOT_FOUND"))
    );

    // a joiner starts at the channel's current seq: nothing unread
    let (st, add) =
        s.c.post(
            &format!("/v1/channels/{}/members", enc("team.a>*")),
            &json!({"uids": ["cat", "ann"]}),
        )
        .await
        .unwrap();
    assert_eq!(st, 200, "{add}");
    assert_eq!(add["added"], json!(["cat"]));
    let cat = conversations(&s.q, "cat", add["event_seq"].as_u64().unwrap()).await;
    assert_eq!(
        (
            cat[0]["channel_id"].as_str(),
            cat[0]["unread"].as_u64(),
            cat[0]["read_seq"].as_u64()
        ),
        (Some("team.a>*"), Some(0), Some(2))
    );
    let three = send(&s.c, "cat", 2, "team.a>*", "three", None).await;
    let ann = conversations(&s.q, "ann", three["event_seq"].as_u64().unwrap()).await;
    assert_eq!(
        (ann[0]["last_msg_seq"].as_u64(), ann[0]["unread"].as_u64()),
        (Some(3), Some(2))
    );

    let (st, info) =
        s.q.get(&format!(
            "/v1/channels/{}?min_event_seq={}",
            enc("team.a>*"),
            three["event_seq"]
        ))
        .await
        .unwrap();
    assert_eq!(st, 200, "{info}");
    assert_eq!(
        (
            info["member_count"].as_u64(),
            info["last_msg_seq"].as_u64(),
            info["name"].as_str()
        ),
        (Some(3), Some(3), Some("Team"))
    );
    let (_, members) =
        s.q.get(&format!("/v1/channels/{}/members?limit=2", enc("team.a>*")))
            .await
            .unwrap();
    assert_eq!(members["members"].as_array().unwrap().len(), 2);
    let cursor = members["next_cursor"].as_str().unwrap().to_owned();
    let (_, rest) =
        s.q.get(&format!(
            "/v1/channels/{}/members?limit=2&cursor={}",
            enc("team.a>*"),
            enc(&cursor)
        ))
        .await
        .unwrap();
    assert_eq!(rest["members"][0]["uid"], "cat");

    // a non-member cannot read
    let (st, _) = history(&s.q, "eve", 2, "team.a>*", "").await;
    assert_eq!(st, 403);
    // removal: no more sending or reading
    let (st, r) =
        s.c.delete(&format!("/v1/channels/{}/members/ben", enc("team.a>*")))
            .await
            .unwrap();
    assert_eq!(st, 200, "{r}");
    let body = json!({"channel_id": "team.a>*", "channel_type": 2, "from_uid": "ben", "payload": b64(b"x")});
    assert_eq!(s.c.post("/v1/messages", &body).await.unwrap().0, 403);
    let (st, _) = history(
        &s.q,
        "ben",
        2,
        "team.a>*",
        &format!("&min_event_seq={}", r["event_seq"]),
    )
    .await;
    assert_eq!(st, 403);
    assert!(conversations(&s.q, "ben", r["event_seq"].as_u64().unwrap())
        .await
        .is_empty());
    let (st, e) =
        s.c.delete(&format!("/v1/channels/{}/members/ben", enc("team.a>*")))
            .await
            .unwrap();
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (404, Some("MEMBER_NOT_FOUND"))
    );

    // disband: gone for everyone, and the id is not reused
    let (st, d) =
        s.c.delete(&format!("/v1/channels/{}", enc("team.a>*")))
            .await
            .unwrap();
    assert_eq!(st, 200, "{d}");
    let body = json!({"channel_id": "team.a>*", "channel_type": 2, "from_uid": "ann", "payload": b64(b"x")});
    assert_eq!(s.c.post("/v1/messages", &body).await.unwrap().0, 404);
    let (st, _) =
        s.q.get(&format!(
            "/v1/channels/{}?min_event_seq={}",
            enc("team.a>*"),
            d["event_seq"]
        ))
        .await
        .unwrap();
    assert_eq!(st, 404);
    let (st, _) =
        s.c.post(
            "/v1/channels",
            &json!({"channel_id": "team.a>*", "members": ["ann"]}),
        )
        .await
        .unwrap();
    assert_eq!(st, 409);
}

#[tokio::test]
async fn hostile_ids_work_everywhere() {
    let s = stack().await;
    let ids = ["a.b", "x*", ">", "用户7", "a.>"];
    let mut min = 0;
    for (i, from) in ids.iter().enumerate() {
        let to = ids[(i + 1) % ids.len()];
        let v = send(&s.c, from, 1, to, from, None).await;
        min = v["event_seq"].as_u64().unwrap();
    }
    for (i, from) in ids.iter().enumerate() {
        let to = ids[(i + 1) % ids.len()];
        let (st, h) = history(&s.q, to, 1, from, &format!("&min_event_seq={min}")).await;
        assert_eq!(st, 200, "{h}");
        assert_eq!(
            h["messages"].as_array().unwrap().len(),
            1,
            "{from} → {to}: {h}"
        );
        assert_eq!(h["messages"][0]["channel_id"].as_str(), Some(*from));
        assert_eq!(conversations(&s.q, from, min).await.len(), 2);
    }
    let (st, v) =
        s.c.post(
            "/v1/channels",
            &json!({"channel_id": "用户7", "members": [">", "x*"]}),
        )
        .await
        .unwrap();
    assert_eq!(st, 200, "{v}");
    send(&s.c, ">", 2, "用户7", "hey", None).await;
}

#[tokio::test]
async fn tenants_are_isolated_and_credentials_are_required() {
    let s = stack().await;
    let a = send(&s.c, "alice", 1, "bob", "secret", None).await;
    s.c.post(
        "/v1/channels",
        &json!({"channel_id": "g", "members": ["alice"]}),
    )
    .await
    .unwrap();
    let min = a["event_seq"].as_u64().unwrap() + 1;
    let other = Api::new(&s.query.url(), KEY_GLOBEX);
    let (st, h) = history(&other, "bob", 1, "alice", &format!("&min_event_seq={min}")).await;
    assert_eq!(st, 200);
    assert!(
        h["messages"].as_array().unwrap().is_empty(),
        "other tenant sees nothing: {h}"
    );
    assert!(conversations(&other, "bob", min).await.is_empty());
    let (st, _) = other
        .get(&format!(
            "/v1/messages/{}?uid=bob",
            a["message_id"].as_str().unwrap()
        ))
        .await
        .unwrap();
    assert_eq!(st, 404);
    let (st, _) = other.get("/v1/channels/g").await.unwrap();
    assert_eq!(st, 404);
    // the other tenant has its own channel "g" and its own sequences
    let oc = Api::new(&s.cmd.url(), KEY_GLOBEX);
    let (st, _) = oc
        .post(
            "/v1/channels",
            &json!({"channel_id": "g", "members": ["zed"]}),
        )
        .await
        .unwrap();
    assert_eq!(st, 200);
    let v = send(&oc, "alice", 1, "bob", "mine", None).await;
    assert_eq!(v["message_seq"], 1);

    for api in [
        Api::with_auth(&s.cmd.url(), None),
        Api::with_auth(&s.cmd.url(), Some("wrong-key-0000000000")),
    ] {
        let (st, e) = api.post("/v1/messages", &json!({})).await.unwrap();
        assert_eq!(
            (st, e["error"]["code"].as_str()),
            (401, Some("UNAUTHORIZED"))
        );
    }
    let (st, _) = Api::with_auth(&s.query.url(), None)
        .get("/v1/users/bob/conversations")
        .await
        .unwrap();
    assert_eq!(st, 401);
}

#[tokio::test]
async fn bad_input_gets_a_4xx_naming_the_field_and_writes_nothing() {
    let s = stack().await;
    let ok =
        json!({"channel_id": "bob", "channel_type": 1, "from_uid": "alice", "payload": b64(b"x")});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = ok.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    let cases: Vec<(Value, u16, &str)> = vec![
        (without("payload"), 400, "payload"),
        (without("channel_id"), 400, "channel_id"),
        (with("channel_type", json!("one")), 400, "channel_type"),
        (with("channel_type", json!(3)), 400, "channel_type"),
        (with("channel_type", json!(-1)), 400, "channel_type"),
        (with("channel_id", json!("")), 400, "channel_id"),
        (with("channel_id", json!("has space")), 400, "channel_id"),
        (
            with("channel_id", json!("x".repeat(129))),
            400,
            "channel_id",
        ),
        (with("from_uid", json!(42)), 400, "from_uid"),
        (with("from_uid", json!("tab\there")), 400, "from_uid"),
        (with("payload", json!("")), 400, "payload"),
        (with("payload", json!("not base64!")), 400, "payload"),
        (
            with("payload", json!(b64(&vec![7u8; 65537]))),
            413,
            "payload",
        ),
        (with("client_msg_no", json!("")), 400, "client_msg_no"),
        (with("client_msg_no", json!(7)), 400, "client_msg_no"),
    ];
    for (body, status, field) in cases {
        let (st, e) = s.c.post("/v1/messages", &body).await.unwrap();
        assert_eq!(
            (st, e["error"]["field"].as_str()),
            (status, Some(field)),
            "{body} → {e}"
        );
    }
    // exactly 64 KiB is fine
    let (st, big) =
        s.c.post(
            "/v1/messages",
            &with("payload", json!(b64(&vec![7u8; 65536]))),
        )
        .await
        .unwrap();
    assert_eq!(st, 200, "{big}");
    let (st, e) =
        s.c.post_raw(
            "/v1/messages",
            "application/json",
            b"{\"channel_id\": ".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (400, Some("INVALID_JSON"))
    );
    let (st, e) =
        s.c.post_raw("/v1/messages", "application/json", Vec::new())
            .await
            .unwrap();
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (400, Some("INVALID_JSON"))
    );
    let (st, _) =
        s.c.post_raw("/v1/messages", "text/plain", b"hi".to_vec())
            .await
            .unwrap();
    assert_eq!(st, 415);
    let (st, e) =
        s.c.post("/v1/messages/batch", &json!({"messages": []}))
            .await
            .unwrap();
    assert_eq!((st, e["error"]["field"].as_str()), (400, Some("messages")));
    let many: Vec<Value> = (0..1001).map(|_| ok.clone()).collect();
    let (st, e) =
        s.c.post("/v1/messages/batch", &json!({"messages": many}))
            .await
            .unwrap();
    assert_eq!((st, e["error"]["field"].as_str()), (400, Some("messages")));
    let (st, e) =
        s.c.post(
            "/v1/channels",
            &json!({"channel_id": "g", "members": ["ok", "bad uid"]}),
        )
        .await
        .unwrap();
    assert_eq!(
        (st, e["error"]["field"].as_str()),
        (400, Some("members[1]"))
    );
    let (st, e) =
        s.c.post("/v1/channels", &json!({"channel_id": "g", "name": ""}))
            .await
            .unwrap();
    assert_eq!((st, e["error"]["field"].as_str()), (400, Some("name")));
    let (st, e) =
        s.c.post(
            "/v1/users/alice/conversations/9/bob/read",
            &json!({"message_seq": 1}),
        )
        .await
        .unwrap();
    assert_eq!(
        (st, e["error"]["field"].as_str()),
        (400, Some("channel_type"))
    );
    let (st, e) =
        s.c.post(
            "/v1/users/alice/conversations/1/bob/read",
            &json!({"message_seq": -4}),
        )
        .await
        .unwrap();
    assert_eq!(
        (st, e["error"]["field"].as_str()),
        (400, Some("message_seq"))
    );
    let (st, e) =
        s.q.get("/v1/channels/1/bob/messages?uid=alice&limit=abc")
            .await
            .unwrap();
    assert_eq!((st, e["error"]["field"].as_str()), (400, Some("limit")));
    let (st, _) = s.q.get("/v1/messages/not-a-uuid?uid=alice").await.unwrap();
    assert_eq!(st, 400);
    let (st, e) =
        s.q.get("/v1/users/alice/conversations?cursor=%%%")
            .await
            .unwrap();
    assert_eq!(st, 400, "{e}");

    // only the one valid 64 KiB message was written
    let head = stream_head(&s.env).await.unwrap();
    assert_eq!(head, big["event_seq"].as_u64().unwrap());
    let (_, h) = history(&s.q, "alice", 1, "bob", &format!("&min_event_seq={head}")).await;
    assert_eq!(seqs(&h), vec![1]);
    // unknown routes are JSON too
    let (st, e) = s.c.get("/v1/nothing").await.unwrap();
    assert_eq!((st, e["error"]["code"].as_str()), (404, Some("NOT_FOUND")));
}

#[tokio::test]
async fn batch_answers_per_item_in_order() {
    let s = stack().await;
    s.c.post(
        "/v1/channels",
        &json!({"channel_id": "gb", "members": ["m1"]}),
    )
    .await
    .unwrap();
    let mut items = Vec::new();
    for i in 0..30 {
        items.push(json!({"channel_id": format!("peer{}", i % 3), "channel_type": 1, "from_uid": "bulk", "payload": b64(format!("{i}").as_bytes()), "client_msg_no": format!("b{i}")}));
    }
    items.insert(5, json!({"channel_id": "gb", "channel_type": 2, "from_uid": "stranger", "payload": b64(b"x")}));
    items.insert(
        7,
        json!({"channel_id": "peer0", "channel_type": 1, "from_uid": "bulk", "payload": "!!"}),
    );
    let (st, v) =
        s.c.post("/v1/messages/batch", &json!({"messages": items}))
            .await
            .unwrap();
    assert_eq!(st, 200, "{v}");
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 32);
    assert_eq!(results[5]["status"], 403);
    assert_eq!(results[7]["status"], 400);
    assert_eq!(results[7]["error"]["field"], "messages[7].payload");
    let mut per_peer: std::collections::HashMap<String, Vec<u64>> = Default::default();
    for (i, r) in results.iter().enumerate() {
        if i == 5 || i == 7 {
            continue;
        }
        assert_eq!(r["status"], 200, "{r}");
        let no = r["result"]["client_msg_no"].as_str().unwrap();
        let n: usize = no[1..].parse().unwrap();
        per_peer
            .entry(format!("peer{}", n % 3))
            .or_default()
            .push(r["result"]["message_seq"].as_u64().unwrap());
    }
    for (_, v) in per_peer {
        assert_eq!(
            v,
            (1..=10).collect::<Vec<_>>(),
            "in request order per channel"
        );
    }
    // retrying the whole batch returns the same results
    let (_, again) =
        s.c.post("/v1/messages/batch", &json!({"messages": items_again()}))
            .await
            .unwrap();
    let ids: HashSet<_> = results
        .iter()
        .filter_map(|r| r["result"]["message_id"].as_str())
        .collect();
    for r in again["results"].as_array().unwrap() {
        assert!(ids.contains(r["result"]["message_id"].as_str().unwrap()));
    }
}

fn items_again() -> Vec<Value> {
    (0..30)
        .map(|i| json!({"channel_id": format!("peer{}", i % 3), "channel_type": 1, "from_uid": "bulk", "payload": b64(format!("{i}").as_bytes()), "client_msg_no": format!("b{i}")}))
        .collect()
}

#[tokio::test]
async fn read_your_writes_waits_or_answers_503() {
    let s = stack().await;
    let v = send(&s.c, "r1", 1, "r2", "x", None).await;
    let (st, _) = history(
        &s.q,
        "r1",
        1,
        "r2",
        &format!("&min_event_seq={}", v["event_seq"]),
    )
    .await;
    assert_eq!(st, 200);
    let (st, e) = history(&s.q, "r1", 1, "r2", "&min_event_seq=999999999").await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (503, Some("PROJECTION_LAGGING"))
    );
}

#[tokio::test]
async fn ops_endpoints_answer() {
    let s = stack().await;
    for base in [s.cmd.url(), s.query.url()] {
        let api = Api::with_auth(&base, None);
        assert_eq!(api.get("/health").await.unwrap().0, 200);
        // Readiness may take a moment after start (the hub loads its snapshot).
        let mut ready = api.get("/ready").await.unwrap();
        for _ in 0..100 {
            if ready.0 == 200 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            ready = api.get("/ready").await.unwrap();
        }
        assert_eq!(ready.0, 200, "{base}: {}", ready.1);
        let (st, spec) = api.get("/openapi.json").await.unwrap();
        assert_eq!(st, 200);
        assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
        let (st, text) = api.get_text("/metrics").await.unwrap();
        assert_eq!(st, 200);
        let _ = text;
        assert_eq!(api.get_text("/docs").await.unwrap().0, 200);
    }
    send(&s.c, "m1", 1, "m2", "x", None).await;
    let (_, text) = Api::with_auth(&s.cmd.url(), None)
        .get_text("/metrics")
        .await
        .unwrap();
    assert!(text.contains("command_svc_http_requests_total"), "{text}");
}
