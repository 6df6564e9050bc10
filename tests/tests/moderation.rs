//! Group roles and moderation, and personal blocks, as `docs/moderation.md` states them: who
//! may manage a group (`actor_uid`), each refused send with its own code over REST, batch and
//! socket writing nothing, roles, mutes, bans and lists in the reads and as frames, and all of
//! it after a restart of the command service (its state from the snapshot) and a rebuild.

use parley_tests::ws::{mint, Ws};
use parley_tests::*;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

struct Stack {
    env: TestEnv,
    cmd: Running,
    query: Running,
    _projector: Running,
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
        _projector: projector,
        c,
        q,
    }
}

fn send_body(from: &str, group: &str, text: &str) -> Value {
    json!({"from_uid": from, "channel_type": 2, "channel_id": group, "payload": b64(text.as_bytes())})
}

/// `(status, code, field)` of an answer.
fn refusal(st: u16, v: &Value) -> (u16, String, String) {
    (
        st,
        v["error"]["code"].as_str().unwrap_or("").to_owned(),
        v["error"]["field"].as_str().unwrap_or("").to_owned(),
    )
}

fn refused(st: u16, v: &Value, code: &str, field: &str) {
    assert_eq!(
        refusal(st, v),
        (403, code.to_owned(), field.to_owned()),
        "{v}"
    );
}

async fn ok(api: &Api, method: &str, path: &str, body: Value) -> u64 {
    let (st, v) = match method {
        "post" => api.post(path, &body).await,
        "patch" => api.patch(path, &body).await,
        _ => api.delete(path).await,
    }
    .expect("call");
    assert_eq!(st, 200, "{method} {path}: {v}");
    v["event_seq"].as_u64().expect("event_seq")
}

/// The members of `group` as `uid → (role, muted_until)`, once the read models hold `at`.
async fn members(q: &Api, group: &str, at: u64) -> Vec<(String, String, Option<i64>)> {
    let (st, v) = q
        .get(&format!("/v1/channels/{group}/members?min_event_seq={at}"))
        .await
        .expect("members");
    assert_eq!(st, 200, "{v}");
    v["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            (
                m["uid"].as_str().expect("uid").to_owned(),
                m["role"].as_str().expect("role").to_owned(),
                m["muted_until"].as_i64(),
            )
        })
        .collect()
}

#[tokio::test]
async fn roles_decide_who_may_manage_the_group_and_operator_calls_keep_working() {
    let s = stack().await;
    let at = ok(
        &s.c,
        "post",
        "/v1/channels",
        json!({"channel_id": "club", "members": ["bob", "carol", "dave"], "actor_uid": "alice"}),
    )
    .await;
    let m = members(&s.q, "club", at).await;
    assert!(m.contains(&("alice".into(), "owner".into(), None)), "{m:?}");
    assert!(m.contains(&("bob".into(), "member".into(), None)), "{m:?}");

    // A member manages nothing but its own membership.
    let (st, v) =
        s.c.post(
            "/v1/channels/club/members",
            &json!({"uids": ["erin"], "actor_uid": "bob"}),
        )
        .await
        .unwrap();
    refused(st, &v, "PERMISSION_DENIED", "actor_uid");
    let (st, v) =
        s.c.delete("/v1/channels/club/members/carol?actor_uid=bob")
            .await
            .unwrap();
    refused(st, &v, "PERMISSION_DENIED", "actor_uid");
    let (st, v) = s.c.delete("/v1/channels/club?actor_uid=bob").await.unwrap();
    refused(st, &v, "PERMISSION_DENIED", "actor_uid");
    let (st, v) =
        s.c.post(
            "/v1/channels/club/members",
            &json!({"uids": ["erin"], "actor_uid": "zed"}),
        )
        .await
        .unwrap();
    refused(st, &v, "NOT_A_MEMBER", "actor_uid");
    ok(
        &s.c,
        "delete",
        "/v1/channels/club/members/bob?actor_uid=bob",
        json!({}),
    )
    .await;

    // An admin manages members, not owners, and grants at most admin.
    ok(
        &s.c,
        "patch",
        "/v1/channels/club/members/carol",
        json!({"role": "admin", "actor_uid": "alice"}),
    )
    .await;
    ok(
        &s.c,
        "post",
        "/v1/channels/club/members",
        json!({"uids": ["erin"], "actor_uid": "carol"}),
    )
    .await;
    let (st, v) =
        s.c.patch(
            "/v1/channels/club/members/erin",
            &json!({"role": "owner", "actor_uid": "carol"}),
        )
        .await
        .unwrap();
    refused(st, &v, "PERMISSION_DENIED", "actor_uid");
    let (st, v) =
        s.c.delete("/v1/channels/club/members/alice?actor_uid=carol")
            .await
            .unwrap();
    refused(st, &v, "PERMISSION_DENIED", "actor_uid");
    let (st, v) =
        s.c.patch("/v1/channels/club/members/erin", &json!({"role": "root"}))
            .await
            .unwrap();
    assert_eq!(
        refusal(st, &v),
        (400, "VALIDATION_ERROR".into(), "role".into()),
        "{v}"
    );

    // The last owner hands over before leaving.
    let (st, v) =
        s.c.delete("/v1/channels/club/members/alice?actor_uid=alice")
            .await
            .unwrap();
    assert_eq!(
        refusal(st, &v),
        (409, "LAST_OWNER".into(), "uid".into()),
        "{v}"
    );
    ok(
        &s.c,
        "patch",
        "/v1/channels/club/members/dave",
        json!({"role": "owner", "actor_uid": "alice"}),
    )
    .await;
    let at = ok(
        &s.c,
        "delete",
        "/v1/channels/club/members/alice?actor_uid=alice",
        json!({}),
    )
    .await;
    let m = members(&s.q, "club", at).await;
    assert_eq!(
        m,
        vec![
            ("carol".into(), "admin".into(), None),
            ("dave".into(), "owner".into(), None),
            ("erin".into(), "member".into(), None),
        ]
    );
    // An operator call (no actor_uid) is the internal system's authority.
    ok(&s.c, "delete", "/v1/channels/club/members/dave", json!({})).await;
}

#[tokio::test]
async fn each_refused_send_has_its_own_code_and_writes_nothing_on_every_path() {
    let s = stack().await;
    ok(
        &s.c,
        "post",
        "/v1/channels",
        json!({"channel_id": "town", "members": ["m1", "m2", "m3"], "owner": "own"}),
    )
    .await;
    let send = |from: &str| send_body(from, "town", "hi");
    let mut accepted = 0u64;
    let (st, _) = s.c.post("/v1/messages", &send("m1")).await.unwrap();
    assert_eq!(st, 200);
    accepted += 1;

    // A muted member, on REST, in a batch and over the socket.
    let until = platform::now_ms() + 600_000;
    ok(
        &s.c,
        "patch",
        "/v1/channels/town/members/m1",
        json!({"muted_until": until, "actor_uid": "own"}),
    )
    .await;
    let (st, v) = s.c.post("/v1/messages", &send("m1")).await.unwrap();
    refused(st, &v, "MEMBER_MUTED", "from_uid");
    let (st, v) =
        s.c.post(
            "/v1/messages/batch",
            &json!({"messages": [send("m2"), send("m1")]}),
        )
        .await
        .unwrap();
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["results"][0]["status"], 200, "{v}");
    accepted += 1;
    assert_eq!(v["results"][1]["status"], 403, "{v}");
    assert_eq!(v["results"][1]["error"]["code"], "MEMBER_MUTED", "{v}");
    let token = mint(&s.c, "m1", 1).await.expect("token");
    let mut ws = Ws::connect(&s.query.url(), &token).await.expect("ws");
    ws.sync(json!({"type": "sync"})).await.expect("sync");
    ws.send(json!({"type": "send", "ref": "r1", "channel_type": 2, "channel_id": "town", "payload": "aGk="}))
        .await
        .unwrap();
    let e = ws.expect("error", WAIT).await.expect("error frame");
    assert_eq!(
        (e["code"].as_str(), e["ref"].as_str()),
        (Some("MEMBER_MUTED"), Some("r1")),
        "{e}"
    );
    assert_eq!(e["field"], "from_uid", "{e}");
    // Unmuted (null), the same socket sends again.
    ok(
        &s.c,
        "patch",
        "/v1/channels/town/members/m1",
        json!({"muted_until": null}),
    )
    .await;
    ws.send(json!({"type": "send", "ref": "r2", "channel_type": 2, "channel_id": "town", "payload": "aGk="}))
        .await
        .unwrap();
    let ack = ws.expect("send_ack", WAIT).await.expect("ack");
    assert_eq!(ack["ref"], "r2", "{ack}");
    accepted += 1;

    // A muted channel: owners and admins only.
    ok(
        &s.c,
        "patch",
        "/v1/channels/town",
        json!({"muted": true, "actor_uid": "own"}),
    )
    .await;
    let (st, v) = s.c.post("/v1/messages", &send("m2")).await.unwrap();
    refused(st, &v, "CHANNEL_MUTED", "channel_id");
    let (st, _) = s.c.post("/v1/messages", &send("own")).await.unwrap();
    assert_eq!(st, 200);
    accepted += 1;
    ok(&s.c, "patch", "/v1/channels/town", json!({"muted": false})).await;

    // The blacklist, then whitelist mode.
    ok(
        &s.c,
        "post",
        "/v1/channels/town/blacklist",
        json!({"uids": ["m2"], "actor_uid": "own"}),
    )
    .await;
    let (st, v) = s.c.post("/v1/messages", &send("m2")).await.unwrap();
    refused(st, &v, "BLACKLISTED", "from_uid");
    ok(&s.c, "delete", "/v1/channels/town/blacklist/m2", json!({})).await;
    ok(
        &s.c,
        "post",
        "/v1/channels/town/whitelist",
        json!({"uids": ["m3"]}),
    )
    .await;
    ok(
        &s.c,
        "patch",
        "/v1/channels/town",
        json!({"whitelist_only": true}),
    )
    .await;
    let (st, v) = s.c.post("/v1/messages", &send("m2")).await.unwrap();
    refused(st, &v, "NOT_WHITELISTED", "from_uid");
    let (st, _) = s.c.post("/v1/messages", &send("m3")).await.unwrap();
    assert_eq!(st, 200);
    accepted += 1;
    ok(
        &s.c,
        "patch",
        "/v1/channels/town",
        json!({"whitelist_only": false}),
    )
    .await;

    // A ban removes, refuses sends and re-adding, until lifted.
    ok(
        &s.c,
        "post",
        "/v1/channels/town/bans",
        json!({"uid": "m3", "actor_uid": "own"}),
    )
    .await;
    let (st, v) = s.c.post("/v1/messages", &send("m3")).await.unwrap();
    refused(st, &v, "BANNED", "from_uid");
    let (st, v) =
        s.c.post("/v1/channels/town/members", &json!({"uids": ["m3"]}))
            .await
            .unwrap();
    refused(st, &v, "BANNED", "uids");
    let at = stream_head(&s.env).await.unwrap();
    let (st, v) =
        s.q.get(&format!("/v1/channels/town/bans?min_event_seq={at}"))
            .await
            .unwrap();
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["bans"][0]["uid"], "m3", "{v}");
    assert_eq!(v["bans"][0]["by_uid"], "own", "{v}");
    assert!(members(&s.q, "town", at).await.iter().all(|m| m.0 != "m3"));
    let (st, v) =
        s.c.post("/v1/channels/town/bans", &json!({"uid": "m2", "until": 5}))
            .await
            .unwrap();
    assert_eq!(
        refusal(st, &v),
        (400, "VALIDATION_ERROR".into(), "until".into()),
        "{v}"
    );

    // A personal block: the blocked user's sends create nothing; the blocker's still go.
    ok(
        &s.c,
        "post",
        "/v1/users/xena/blocks",
        json!({"uid": "yuri"}),
    )
    .await;
    let (st, v) = s
        .c
        .post("/v1/messages", &json!({"from_uid": "yuri", "channel_type": 1, "channel_id": "xena", "payload": "aGk="}))
        .await
        .unwrap();
    refused(st, &v, "BLOCKED", "channel_id");
    let (st, v) = s
        .c
        .post("/v1/messages", &json!({"from_uid": "xena", "channel_type": 1, "channel_id": "yuri", "payload": "aGk="}))
        .await
        .unwrap();
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["message_seq"], 1, "the refused send took no seq: {v}");
    let (st, v) =
        s.c.post("/v1/users/xena/blocks", &json!({"uid": "xena"}))
            .await
            .unwrap();
    assert_eq!(
        refusal(st, &v),
        (400, "VALIDATION_ERROR".into(), "uid".into()),
        "{v}"
    );

    // Nothing refused was written: the history is exactly the accepted sends, gap-free.
    let at = stream_head(&s.env).await.unwrap();
    let (st, v) =
        s.q.get(&format!(
            "/v1/channels/2/town/messages?uid=own&min_event_seq={at}&limit=100"
        ))
        .await
        .unwrap();
    assert_eq!(st, 200, "{v}");
    let seqs: Vec<u64> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message_seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=accepted).collect::<Vec<_>>(), "{v}");
    let (st, v) =
        s.q.get(&format!("/v1/users/xena/blocks?min_event_seq={at}"))
            .await
            .unwrap();
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["uids"][0]["uid"], "yuri", "{v}");
}

#[tokio::test]
async fn moderation_frames_reach_the_members_and_a_ban_ends_delivery() {
    let s = stack().await;
    ok(
        &s.c,
        "post",
        "/v1/channels",
        json!({"channel_id": "hall", "members": ["boss", "pat"]}),
    )
    .await;
    let mut boss = Ws::connect(&s.query.url(), &mint(&s.c, "boss", 1).await.unwrap())
        .await
        .unwrap();
    let mut pat = Ws::connect(&s.query.url(), &mint(&s.c, "pat", 1).await.unwrap())
        .await
        .unwrap();
    boss.sync(json!({"type": "sync"})).await.unwrap();
    pat.sync(json!({"type": "sync"})).await.unwrap();

    let until = platform::now_ms() + 60_000;
    ok(
        &s.c,
        "patch",
        "/v1/channels/hall/members/pat",
        json!({"muted_until": until, "actor_uid": "boss"}),
    )
    .await;
    for ws in [&mut boss, &mut pat] {
        let f = ws
            .expect("member_updated", WAIT)
            .await
            .expect("member_updated");
        assert_eq!(
            (f["uid"].as_str(), f["role"].as_str()),
            (Some("pat"), Some("member")),
            "{f}"
        );
        assert_eq!(f["muted_until"], until, "{f}");
    }
    ok(&s.c, "patch", "/v1/channels/hall", json!({"muted": true})).await;
    let f = pat.expect("channel_updated", WAIT).await.unwrap();
    assert_eq!(
        (f["muted"].as_bool(), f["whitelist_only"].as_bool()),
        (Some(true), Some(false)),
        "{f}"
    );

    ok(
        &s.c,
        "post",
        "/v1/channels/hall/bans",
        json!({"uid": "pat"}),
    )
    .await;
    let f = pat.expect("member_banned", WAIT).await.unwrap();
    assert_eq!(
        (f["uid"].as_str(), f["channel_id"].as_str()),
        (Some("pat"), Some("hall")),
        "{f}"
    );
    assert!(f["until"].is_null(), "{f}");
    boss.expect("member_banned", WAIT).await.unwrap();
    // After its ban, nothing of the group reaches pat: the next frame it gets is a sentinel
    // sent after a group message.
    let (st, _) =
        s.c.post("/v1/messages", &send_body("boss", "hall", "after the ban"))
            .await
            .unwrap();
    assert_eq!(st, 200);
    let (st, _) = s
        .c
        .post("/v1/messages", &json!({"from_uid": "boss", "channel_type": 1, "channel_id": "pat", "payload": b64(b"sentinel")}))
        .await
        .unwrap();
    assert_eq!(st, 200);
    let f = pat.expect("message", WAIT).await.unwrap();
    assert_eq!(
        (f["channel_type"].as_u64(), f["channel_id"].as_str()),
        (Some(1), Some("boss")),
        "{f}"
    );

    // A block is pushed to the blocker only: pat's next frame is again a sentinel.
    ok(&s.c, "post", "/v1/users/boss/blocks", json!({"uid": "pat"})).await;
    let f = boss.expect("block_changed", WAIT).await.unwrap();
    assert_eq!(
        (f["blocked_uid"].as_str(), f["blocked"].as_bool()),
        (Some("pat"), Some(true)),
        "{f}"
    );
    let (st, _) = s
        .c
        .post("/v1/messages", &json!({"from_uid": "boss", "channel_type": 1, "channel_id": "pat", "payload": b64(b"sentinel 2")}))
        .await
        .unwrap();
    assert_eq!(st, 200);
    let next = pat.next_within(WAIT).await.unwrap().expect("a frame");
    assert_eq!(next["type"], "message", "pat learned of the block: {next}");
}

#[tokio::test]
async fn moderation_holds_after_a_restart_and_a_rebuild_reproduces_it() {
    let mut s = stack().await;
    ok(
        &s.c,
        "post",
        "/v1/channels",
        json!({"channel_id": "den", "members": ["a1", "a2", "a3", "a4"], "actor_uid": "a1"}),
    )
    .await;
    let until = platform::now_ms() + 600_000;
    ok(
        &s.c,
        "patch",
        "/v1/channels/den/members/a2",
        json!({"role": "admin", "actor_uid": "a1"}),
    )
    .await;
    ok(
        &s.c,
        "patch",
        "/v1/channels/den/members/a3",
        json!({"muted_until": until, "actor_uid": "a2"}),
    )
    .await;
    ok(
        &s.c,
        "post",
        "/v1/channels/den/bans",
        json!({"uid": "a4", "actor_uid": "a2"}),
    )
    .await;
    ok(
        &s.c,
        "post",
        "/v1/channels/den/blacklist",
        json!({"uids": ["zz"]}),
    )
    .await;
    ok(&s.c, "post", "/v1/users/p1/blocks", json!({"uid": "p2"})).await;
    // A message of the pair after the block gives the personal row its snapshot.
    let (st, _) =
        s.c.post(
            "/v1/messages",
            &json!({"from_uid": "p1", "channel_type": 1, "channel_id": "p2", "payload": "aGk="}),
        )
        .await
        .unwrap();
    assert_eq!(st, 200);
    let at = stream_head(&s.env).await.unwrap();
    let before = members(&s.q, "den", at).await;

    // A new command service loads every channel from the snapshot: the rules still hold.
    s.cmd.stop().await;
    s.cmd = s.env.command_svc().await.expect("command-svc again");
    s.c = Api::new(&s.cmd.url(), KEY_ACME);
    let (st, v) =
        s.c.post("/v1/messages", &send_body("a3", "den", "x"))
            .await
            .unwrap();
    refused(st, &v, "MEMBER_MUTED", "from_uid");
    let (st, v) =
        s.c.post("/v1/messages", &send_body("a4", "den", "x"))
            .await
            .unwrap();
    refused(st, &v, "BANNED", "from_uid");
    let (st, v) =
        s.c.delete("/v1/channels/den/members/a1?actor_uid=a2")
            .await
            .unwrap();
    refused(st, &v, "PERMISSION_DENIED", "actor_uid");
    let (st, v) =
        s.c.post(
            "/v1/messages",
            &json!({"from_uid": "p2", "channel_type": 1, "channel_id": "p1", "payload": "aGk="}),
        )
        .await
        .unwrap();
    refused(st, &v, "BLOCKED", "channel_id");

    // A rebuild verifies every moderation table against the serving version and switches.
    let (done, out, err) = s
        .env
        .projector_run(&["rebuild", "channels"])
        .await
        .expect("rebuild");
    assert!(done, "rebuild failed: {out}\n{err}");
    for table in [
        "channel_bans",
        "channel_send_lists",
        "user_blocks",
        "channel_members",
    ] {
        assert!(
            out.lines()
                .any(|l| l.contains(table) && l.contains("checksums equal")),
            "{table} not verified equal: {out}"
        );
    }
    assert_eq!(members(&s.q, "den", at).await, before);
    let (st, v) = s.q.get("/v1/channels/den/blacklist").await.unwrap();
    assert_eq!((st, v["uids"][0]["uid"].as_str()), (200, Some("zz")), "{v}");
}

#[tokio::test]
async fn users_block_unblock_and_leave_over_the_socket() {
    let s = stack().await;
    ok(
        &s.c,
        "post",
        "/v1/channels",
        json!({"channel_id": "yard", "members": ["ivy", "jon"]}),
    )
    .await;
    let mut ivy = Ws::connect(&s.query.url(), &mint(&s.c, "ivy", 1).await.unwrap())
        .await
        .unwrap();
    ivy.sync(json!({"type": "sync"})).await.unwrap();

    ivy.send(json!({"type": "block", "ref": "b1", "uid": "jon"}))
        .await
        .unwrap();
    let f = ivy.expect("block_changed", WAIT).await.unwrap();
    assert_eq!(
        (
            f["uid"].as_str(),
            f["blocked_uid"].as_str(),
            f["blocked"].as_bool()
        ),
        (Some("ivy"), Some("jon"), Some(true)),
        "{f}"
    );
    let jon_to_ivy =
        json!({"from_uid": "jon", "channel_type": 1, "channel_id": "ivy", "payload": "aGk="});
    let (st, v) = s.c.post("/v1/messages", &jon_to_ivy).await.unwrap();
    refused(st, &v, "BLOCKED", "channel_id");
    ivy.send(json!({"type": "block", "ref": "b2", "uid": "ivy"}))
        .await
        .unwrap();
    let e = ivy.expect("error", WAIT).await.unwrap();
    assert_eq!(
        (e["code"].as_str(), e["field"].as_str(), e["ref"].as_str()),
        (Some("VALIDATION_ERROR"), Some("uid"), Some("b2")),
        "{e}"
    );
    ivy.send(json!({"type": "unblock", "ref": "b3", "uid": "jon"}))
        .await
        .unwrap();
    let f = ivy.expect("block_changed", WAIT).await.unwrap();
    assert_eq!(f["blocked"], false, "{f}");
    let (st, v) = s.c.post("/v1/messages", &jon_to_ivy).await.unwrap();
    assert_eq!(st, 200, "unblocked, jon's message goes: {v}");

    // ivy owns yard (its first member): she may not leave while jon remains.
    ivy.send(json!({"type": "leave", "ref": "l1", "channel_id": "yard"}))
        .await
        .unwrap();
    let e = ivy.expect("error", WAIT).await.unwrap();
    assert_eq!(
        (e["code"].as_str(), e["ref"].as_str()),
        (Some("LAST_OWNER"), Some("l1")),
        "{e}"
    );
    let mut jon = Ws::connect(&s.query.url(), &mint(&s.c, "jon", 1).await.unwrap())
        .await
        .unwrap();
    jon.sync(json!({"type": "sync"})).await.unwrap();
    jon.send(json!({"type": "leave", "ref": "l2", "channel_id": "yard"}))
        .await
        .unwrap();
    let f = jon.expect("member_removed", WAIT).await.unwrap();
    assert_eq!(
        (f["uid"].as_str(), f["channel_id"].as_str()),
        (Some("jon"), Some("yard")),
        "{f}"
    );
    let f = ivy.expect("member_removed", WAIT).await.unwrap();
    assert_eq!(f["uid"], "jon", "{f}");
}
