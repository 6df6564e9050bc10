//! Tenants and API keys through the admin API, as an operator and an attacker use it
//! (`docs/tenancy.md`): the master key's rules, a tenant's lifecycle seen by two command
//! services and two query services at once (a change holds on every instance within a
//! second, without restart), suspension, validation, user-token revocation closing open
//! sockets with 4001, and a restarted instance that rebuilds the same state from the log.

use parley_tests::ws::{mint, Ws};
use parley_tests::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The propagation bound the docs promise.
const WITHIN: Duration = Duration::from_secs(1);

fn admin(base: &str) -> Api {
    Api::new(base, MASTER_KEY)
}

/// Polls `check` until it holds, for at most [`WITHIN`]; returns how long it took.
async fn within_a_second<F, Fut>(what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < WITHIN, "{what}: not within {WITHIN:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The close code of `ws`, skipping frames still in flight, within [`WITHIN`].
async fn close_code(ws: &mut Ws) -> u16 {
    let deadline = Instant::now() + WITHIN;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match ws.next_within(left).await.expect("socket") {
            Some(_) if !left.is_zero() => {}
            Some(f) => panic!("still open after {WITHIN:?}; last frame {f}"),
            None => {
                return ws
                    .closed
                    .unwrap_or_else(|| panic!("not closed within {WITHIN:?}"))
            }
        }
    }
}

async fn status(api: &Api, path: &str) -> u16 {
    api.get(path).await.map(|(s, _)| s).unwrap_or(0)
}

async fn send(base: &str, key: &str, from: &str, to: &str) -> (u16, Value) {
    Api::new(base, key)
        .post(
            "/v1/messages",
            &json!({"channel_type": 1, "channel_id": to, "from_uid": from, "payload": "aGk="}),
        )
        .await
        .expect("send")
}

#[tokio::test]
async fn the_master_key_alone_opens_the_admin_api() {
    let env = TestEnv::new().await.expect("env");
    let cmd = env.command_svc().await.expect("command-svc");
    let body = json!({"tenant_id": "t-auth"});
    for (who, api) in [
        ("no credentials", Api::with_auth(&cmd.url(), None)),
        ("a wrong key", Api::new(&cmd.url(), "x".repeat(40).as_str())),
    ] {
        let (s, e) = api.post("/v1/admin/tenants", &body).await.expect("post");
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (401, Some("UNAUTHORIZED")),
            "{who}: {e}"
        );
    }
    let (s, e) = Api::new(&cmd.url(), KEY_ACME)
        .post("/v1/admin/tenants", &body)
        .await
        .expect("post");
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (403, Some("FORBIDDEN")),
        "{e}"
    );
    // In ChatAPI's header too; a wrong key there is 401.
    for (key, want) in [(KEY_ACME.to_owned(), 403), ("y".repeat(40), 401)] {
        let r = reqwest::Client::new()
            .post(format!("{}/v1/admin/tenants", cmd.url()))
            .header("X-Master-Key", key)
            .json(&body)
            .send()
            .await
            .expect("post");
        assert_eq!(r.status().as_u16(), want);
    }
    // The master key is no tenant key.
    let (s, _) = send(&cmd.url(), MASTER_KEY, "a", "b").await;
    assert_eq!(s, 401);
    // Both headers carry it.
    let r = reqwest::Client::new()
        .post(format!("{}/v1/admin/tenants", cmd.url()))
        .header("X-Master-Key", MASTER_KEY)
        .json(&body)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 201);
    let (s, _) = admin(&cmd.url())
        .get("/v1/admin/tenants/t-auth")
        .await
        .expect("get");
    assert_eq!(s, 200);

    // Without PARLEY_MASTER_KEY the admin API is off.
    let off = env
        .command_svc_with(|c| c.master_key = None)
        .await
        .expect("command-svc");
    let (s, e) = admin(&off.url())
        .get("/v1/admin/tenants")
        .await
        .expect("get");
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (404, Some("ADMIN_DISABLED")),
        "{e}"
    );
}

#[tokio::test]
async fn a_tenants_keys_and_suspension_hold_on_every_instance_within_a_second() {
    let env = TestEnv::new().await.expect("env");
    let (a, b) = (
        env.command_svc().await.expect("command a"),
        env.command_svc().await.expect("command b"),
    );
    let _projector = env.projector().await.expect("projector");
    let (qa, qb) = (
        env.query_svc().await.expect("query a"),
        env.query_svc().await.expect("query b"),
    );

    let (s, created) = admin(&a.url())
        .post(
            "/v1/admin/tenants",
            &json!({"tenant_id": "initech", "name": "Initech", "settings": {"user_sends_per_s": 30}}),
        )
        .await
        .expect("create");
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["tenant"]["tenant_id"], "initech");
    assert_eq!(created["tenant"]["settings"]["user_sends_per_s"], 30);
    assert_eq!(created["tenant"]["suspended"], false);
    let first = created["api_key"]["key"].as_str().expect("key").to_owned();
    let first_id = created["api_key"]["key_id"]
        .as_str()
        .expect("key_id")
        .to_owned();
    assert!(first.starts_with(created["api_key"]["prefix"].as_str().expect("prefix")));

    // The new key works on the other command service and on both query services.
    let took = within_a_second("a new key on command b", || async {
        send(&b.url(), &first, "peter", "milton").await.0 == 200
    })
    .await;
    println!("new key usable on another instance after {took:?}");
    for q in [&qa, &qb] {
        let api = Api::new(&q.url(), &first);
        within_a_second("a new key on a query service", || async {
            status(&api, "/v1/users/peter/conversations").await == 200
        })
        .await;
    }
    // Another tenant's data stays out of reach: the key reads as initech only.
    let (s, v) = Api::new(&qa.url(), &first)
        .get("/v1/users/alice/conversations")
        .await
        .expect("get");
    assert_eq!(s, 200);
    assert_eq!(v["conversations"], json!([]), "{v}");

    // The id is taken now.
    let (s, e) = admin(&b.url())
        .post("/v1/admin/tenants", &json!({"tenant_id": "initech"}))
        .await
        .expect("again");
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("TENANT_EXISTS")),
        "{e}"
    );

    // A second key, made on b; the list on a shows both and never a secret.
    let (s, second) = admin(&b.url())
        .post(
            "/v1/admin/tenants/initech/keys",
            &json!({"label": "billing"}),
        )
        .await
        .expect("key");
    assert_eq!(s, 201, "{second}");
    let second_key = second["key"].as_str().expect("key").to_owned();
    let list = within_a_second("the second key listed on a", || async {
        let (_, v) = admin(&a.url())
            .get("/v1/admin/tenants/initech/keys")
            .await
            .expect("list");
        v["keys"].as_array().is_some_and(|k| k.len() == 2)
    });
    list.await;
    let (_, v) = admin(&a.url())
        .get("/v1/admin/tenants/initech/keys")
        .await
        .expect("list");
    let text = v.to_string();
    assert!(
        !text.contains(&first) && !text.contains(&second_key),
        "a secret was listed: {v}"
    );
    assert_eq!(v["keys"][1]["label"], "billing", "{v}");
    // The first key was used (on b and both query services), the second never: every
    // instance's uses reach the list within the usage flush (5 s).
    assert!(v["keys"][1]["last_used_at"].is_null(), "{v}");
    let used_since = created["api_key"]["created_at"]
        .as_i64()
        .expect("created_at");
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    loop {
        let (_, v) = admin(&a.url())
            .get("/v1/admin/tenants/initech/keys")
            .await
            .expect("list");
        if v["keys"][0]["last_used_at"]
            .as_i64()
            .is_some_and(|t| t >= used_since)
        {
            assert!(v["keys"][1]["last_used_at"].is_null(), "{v}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "last_used_at never set: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Revoking the first key: refused everywhere within a second; the second still works.
    let (s, _) = admin(&a.url())
        .delete(&format!("/v1/admin/tenants/initech/keys/{first_id}"))
        .await
        .expect("revoke");
    assert_eq!(s, 204);
    for base in [b.url(), a.url()] {
        within_a_second("a revoked key on a command service", || async {
            send(&base, &first, "peter", "milton").await.0 == 401
        })
        .await;
    }
    for q in [&qa, &qb] {
        let api = Api::new(&q.url(), &first);
        within_a_second("a revoked key on a query service", || async {
            status(&api, "/v1/users/peter/conversations").await == 401
        })
        .await;
    }
    let (s, e) = send(&b.url(), &first, "peter", "milton").await;
    assert_eq!(e["error"]["message"], "API key revoked", "{s} {e}");
    assert_eq!(send(&b.url(), &second_key, "peter", "milton").await.0, 200);

    // Suspension: every call of the tenant, by key or user token, is 403 everywhere.
    let token = mint(&Api::new(&a.url(), &second_key), "peter", 1)
        .await
        .expect("token");
    let mut open = Ws::connect(&qa.url(), &token).await.expect("ws");
    open.sync(json!({"type": "sync"})).await.expect("sync");
    let (s, t) = admin(&b.url())
        .patch("/v1/admin/tenants/initech", &json!({"suspended": true}))
        .await
        .expect("suspend");
    // The tenant's open sockets close with 4003 (frames still in flight may come first).
    assert_eq!(close_code(&mut open).await, 4003);
    assert_eq!((s, t["suspended"].as_bool()), (200, Some(true)), "{t}");
    assert_eq!(
        t["settings"]["user_sends_per_s"], 30,
        "a patch kept the settings: {t}"
    );
    for base in [a.url(), b.url()] {
        within_a_second("a suspended tenant on a command service", || async {
            send(&base, &second_key, "peter", "milton").await.0 == 403
        })
        .await;
    }
    for q in [&qa, &qb] {
        let by_key = Api::new(&q.url(), &second_key);
        let by_token = Api::new(&q.url(), &token);
        within_a_second("a suspended tenant on a query service", || async {
            status(&by_key, "/v1/users/peter/conversations").await == 403
                && status(&by_token, "/v1/users/peter/conversations").await == 403
        })
        .await;
    }
    let (_, e) = send(&a.url(), &second_key, "peter", "milton").await;
    assert_eq!(e["error"]["code"], "TENANT_SUSPENDED", "{e}");
    assert_eq!(
        Ws::refused(&qb.url(), &token).await.expect("upgrade"),
        Some(403)
    );
    // The bootstrap tenants are untouched.
    assert_eq!(send(&a.url(), KEY_ACME, "alice", "bob").await.0, 200);

    let (s, _) = admin(&a.url())
        .patch("/v1/admin/tenants/initech", &json!({"suspended": false}))
        .await
        .expect("resume");
    assert_eq!(s, 200);
    within_a_second("a resumed tenant", || async {
        send(&b.url(), &second_key, "peter", "milton").await.0 == 200
    })
    .await;

    // A fresh instance replays the log into the same state.
    let c = env.command_svc().await.expect("command c");
    assert_eq!(send(&c.url(), &first, "peter", "milton").await.0, 401);
    assert_eq!(send(&c.url(), &second_key, "peter", "milton").await.0, 200);
    let (_, listed) = admin(&c.url())
        .get("/v1/admin/tenants?limit=1")
        .await
        .expect("list");
    assert_eq!(listed["tenants"][0]["tenant_id"], "initech", "{listed}");
    assert!(listed["next_cursor"].is_null(), "{listed}");
}

#[tokio::test]
async fn bad_admin_input_names_the_field_and_writes_nothing() {
    let env = TestEnv::new().await.expect("env");
    let cmd = env.command_svc().await.expect("command-svc");
    let api = admin(&cmd.url());
    for (body, field) in [
        (json!({"tenant_id": "a b"}), "tenant_id"),
        (json!({"tenant_id": "ok", "name": ""}), "name"),
        (
            json!({"tenant_id": "ok", "settings": {"user_sends_per_s": 0}}),
            "settings.user_sends_per_s",
        ),
        (
            json!({"tenant_id": "ok", "settings": {"token_ttl_min_s": 7200, "token_ttl_max_s": 3600}}),
            "settings.token_ttl_min_s",
        ),
        (
            json!({"tenant_id": "ok", "settings": {"allowed_origins": ["https://ok.example", "ok.example/"]}}),
            "settings.allowed_origins[1]",
        ),
        (json!({"tenant_id": "ok", "settings": {"nope": 1}}), "nope"),
        (json!({"tenant_id": "ok", "extra": 1}), "extra"),
    ] {
        let (s, e) = api.post("/v1/admin/tenants", &body).await.expect("post");
        assert_eq!(s, 400, "{body}: {e}");
        assert!(
            e["error"]["field"]
                .as_str()
                .is_some_and(|f| f.ends_with(field)),
            "{body}: {e}"
        );
    }
    let (s, v) = api.get("/v1/admin/tenants").await.expect("list");
    assert_eq!(
        (s, v["tenants"].clone()),
        (200, json!([])),
        "a refused create wrote: {v}"
    );
    let (s, e) = api.get("/v1/admin/tenants/nobody").await.expect("get");
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (404, Some("TENANT_NOT_FOUND"))
    );
    let (s, _) = api
        .post("/v1/admin/tenants", &json!({"tenant_id": "ok"}))
        .await
        .expect("create");
    assert_eq!(s, 201);
    let (s, e) = api
        .post("/v1/admin/tenants/ok/keys", &json!({"expires_at": 1000}))
        .await
        .expect("key");
    assert_eq!(
        (s, e["error"]["field"].as_str()),
        (400, Some("expires_at")),
        "{e}"
    );
    let (s, e) = api
        .delete("/v1/admin/tenants/ok/keys/0123456789abcdef")
        .await
        .expect("revoke");
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (404, Some("KEY_NOT_FOUND")),
        "{e}"
    );
    let (s, e) = api
        .patch(
            "/v1/admin/tenants/ok",
            &json!({"settings": {"max_payload_bytes": 0}}),
        )
        .await
        .expect("patch");
    assert_eq!(s, 400, "{e}");
    let (_, t) = api.get("/v1/admin/tenants/ok").await.expect("get");
    assert_eq!(t["settings"], json!({}), "a refused patch wrote: {t}");
}

#[tokio::test]
async fn revoking_a_users_tokens_closes_their_sockets_with_4001_and_new_tokens_work() {
    let env = TestEnv::new().await.expect("env");
    let cmd = env.command_svc().await.expect("command-svc");
    let _projector = env.projector().await.expect("projector");
    let (qa, qb) = (
        env.query_svc().await.expect("query a"),
        env.query_svc().await.expect("query b"),
    );
    let c = Api::new(&cmd.url(), KEY_ACME);
    let old = mint(&c, "alice", 1).await.expect("token");
    let other = mint(&c, "bob", 1).await.expect("token");
    let mut on_a = Ws::connect(&qa.url(), &old).await.expect("ws a");
    let mut on_b = Ws::connect(&qb.url(), &old).await.expect("ws b");
    let mut bob = Ws::connect(&qa.url(), &other).await.expect("ws bob");
    for ws in [&mut on_a, &mut on_b, &mut bob] {
        ws.sync(json!({"type": "sync"})).await.expect("sync");
    }

    let started = Instant::now();
    let (s, r) = c
        .post("/v1/users/alice/tokens/revoke", &json!({}))
        .await
        .expect("revoke");
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["uid"], "alice");
    for ws in [&mut on_a, &mut on_b] {
        assert_eq!(close_code(ws).await, 4001);
    }
    println!(
        "sockets closed {:?} after the revocation",
        started.elapsed()
    );
    let (s, e) = Api::new(&qa.url(), &old)
        .get("/v1/users/alice/conversations")
        .await
        .expect("get");
    assert_eq!(
        (s, e["error"]["message"].as_str()),
        (401, Some("token revoked")),
        "{e}"
    );
    assert_eq!(
        Ws::refused(&qb.url(), &old).await.expect("refused"),
        Some(401)
    );

    // Bob's socket is untouched: a message to him arrives next.
    let (s, _) = send(&cmd.url(), KEY_ACME, "carol", "bob").await;
    assert_eq!(s, 200);
    let f = bob
        .expect("message", Duration::from_secs(5))
        .await
        .expect("bob's message");
    assert_eq!(f["from_uid"], "carol", "{f}");

    // A token minted after the revocation works at once.
    let fresh = mint(&c, "alice", 1).await.expect("token");
    let (s, _) = Api::new(&qb.url(), &fresh)
        .get("/v1/users/alice/conversations")
        .await
        .expect("get");
    assert_eq!(s, 200);
    let mut again = Ws::connect(&qa.url(), &fresh).await.expect("ws");
    again.sync(json!({"type": "sync"})).await.expect("sync");
}

#[tokio::test]
async fn a_tenants_own_limits_shape_its_commands() {
    let env = TestEnv::new().await.expect("env");
    let cmd = env.command_svc().await.expect("command-svc");
    let (s, t) = admin(&cmd.url())
        .post(
            "/v1/admin/tenants",
            &json!({"tenant_id": "tight", "settings": {
                "max_payload_bytes": 4, "max_group_members": 2,
                "token_ttl_min_s": 120, "token_ttl_max_s": 600}}),
        )
        .await
        .expect("create");
    assert_eq!(s, 201, "{t}");
    let key = t["api_key"]["key"].as_str().expect("key").to_owned();
    let api = Api::new(&cmd.url(), &key);

    // "aGk=" is 2 bytes, "aGVsbG8=" 5.
    assert_eq!(send(&cmd.url(), &key, "a", "b").await.0, 200);
    let (s, e) = api
        .post(
            "/v1/messages",
            &json!({"channel_type": 1, "channel_id": "b", "from_uid": "a", "payload": "aGVsbG8="}),
        )
        .await
        .expect("send");
    assert_eq!(
        (s, e["error"]["field"].as_str()),
        (413, Some("payload")),
        "{e}"
    );

    let (s, e) = api
        .post(
            "/v1/channels",
            &json!({"channel_id": "g", "members": ["a", "b", "c"]}),
        )
        .await
        .expect("create group");
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("GROUP_FULL")),
        "{e}"
    );
    let (s, _) = api
        .post(
            "/v1/channels",
            &json!({"channel_id": "g", "members": ["a", "b"]}),
        )
        .await
        .expect("create group");
    assert_eq!(s, 200);
    let (s, e) = api
        .post("/v1/channels/g/members", &json!({"uids": ["c"]}))
        .await
        .expect("add");
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("GROUP_FULL")),
        "{e}"
    );

    let (s, e) = api
        .post(
            "/v1/users/a/tokens",
            &json!({"device_flag": 1, "ttl_s": 60}),
        )
        .await
        .expect("mint");
    assert_eq!(
        (s, e["error"]["field"].as_str()),
        (400, Some("ttl_s")),
        "{e}"
    );
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let (s, m) = api
        .post("/v1/users/a/tokens", &json!({"device_flag": 1}))
        .await
        .expect("mint");
    assert_eq!(s, 200, "{m}");
    let lifetime = m["expires_at"].as_i64().expect("expires_at") - before;
    assert!(
        (598_000..=602_000).contains(&lifetime),
        "default lifetime not capped: {lifetime} ms"
    );
    // Other tenants keep the deployment's limits.
    assert_eq!(
        Api::new(&cmd.url(), KEY_ACME)
            .post(
                "/v1/messages",
                &json!({"channel_type": 1, "channel_id": "b", "from_uid": "a", "payload": "aGVsbG8="}),
            )
            .await
            .expect("send")
            .0,
        200
    );
}
