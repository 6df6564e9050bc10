//! The OpenAPI documents as a client generator reads them: every documented example request,
//! sent exactly as documented (path and query examples, the request body's example), succeeds
//! against the running services; every answer — successes and the errors a client provokes —
//! has a status the operation documents and a body that validates against its schema.
//!
//! The examples form one story (`command-svc/src/api/docs.rs`): alice gets a token, writes to
//! bob, creates `team`, adds and removes carol, bob reads; then the reads; `team` is disbanded
//! last. The one value a client cannot know in advance, the `message_id` the server assigns,
//! comes from the send's answer.

use parley_tests::*;
use serde_json::{json, Value};

/// One service's document.
struct Spec {
    base: String,
    doc: Value,
    http: reqwest::Client,
}

/// OpenAPI 3.0 `nullable: true` as JSON Schema (`anyOf` with `null`), everywhere.
fn json_schema(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            let mut nullable = false;
            for (k, v) in map {
                if k == "nullable" {
                    nullable = v.as_bool().unwrap_or(false);
                } else {
                    out.insert(k.clone(), json_schema(v));
                }
            }
            if nullable {
                json!({"anyOf": [Value::Object(out), {"type": "null"}]})
            } else {
                Value::Object(out)
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(json_schema).collect()),
        other => other.clone(),
    }
}

impl Spec {
    async fn fetch(base: &str) -> Self {
        let http = reqwest::Client::new();
        let doc: Value = http
            .get(format!("{base}/openapi.json"))
            .send()
            .await
            .expect("spec")
            .json()
            .await
            .expect("spec json");
        assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
        Self {
            base: base.to_owned(),
            doc,
            http,
        }
    }

    /// `(method, path template, operation)` of `operation_id`.
    fn op(&self, operation_id: &str) -> (String, String, Value) {
        for (path, ops) in self.doc["paths"].as_object().expect("paths") {
            for (method, op) in ops.as_object().expect("ops") {
                if op["operationId"] == operation_id {
                    return (method.clone(), path.clone(), op.clone());
                }
            }
        }
        panic!("no operation {operation_id}");
    }

    fn operation_ids(&self) -> Vec<String> {
        let mut out = Vec::new();
        for ops in self.doc["paths"].as_object().expect("paths").values() {
            for op in ops.as_object().expect("ops").values() {
                out.push(op["operationId"].as_str().expect("id").to_owned());
            }
        }
        out.sort();
        out
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str() {
            Some(r) => self
                .doc
                .pointer(r.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("dangling {r}")),
            None => schema,
        }
    }

    /// The example request of an operation: method, path with query, body. `overrides`
    /// replace parameter examples by name.
    fn example(
        &self,
        operation_id: &str,
        overrides: &[(&str, String)],
    ) -> (String, String, Option<Value>) {
        let (method, template, op) = self.op(operation_id);
        let mut path = template.clone();
        let mut query = Vec::new();
        for p in op["parameters"].as_array().cloned().unwrap_or_default() {
            let name = p["name"].as_str().expect("name");
            let value = overrides
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| Value::from(v.clone()))
                .or_else(|| p["schema"].get("example").cloned());
            let Some(value) = value else {
                assert!(
                    p["required"] != true,
                    "{operation_id}: required {name} has no example"
                );
                continue;
            };
            let text = match &value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            match p["in"].as_str() {
                Some("path") => path = path.replace(&format!("{{{name}}}"), &enc(&text)),
                Some("query") => query.push(format!("{name}={}", enc(&text))),
                other => panic!("{operation_id}: parameter in {other:?}"),
            }
        }
        if !query.is_empty() {
            path = format!("{path}?{}", query.join("&"));
        }
        let body = op["requestBody"]["content"]
            .as_object()
            .and_then(|c| c.values().next())
            .map(|media| {
                let schema = self.resolve(&media["schema"]);
                schema
                    .get("example")
                    .cloned()
                    .unwrap_or_else(|| panic!("{operation_id}: the request body has no example"))
            });
        (method, path, body)
    }

    /// Sends a request; returns (status, content type, body text).
    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> (u16, String, String) {
        let method =
            reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("method");
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        (status, ct, r.text().await.expect("body"))
    }

    /// Asserts `status` is documented for `operation_id` and the body validates against its
    /// schema; returns the body as JSON (`Null` for non-JSON bodies).
    fn check(&self, operation_id: &str, status: u16, content_type: &str, text: &str) -> Value {
        let (_, _, op) = self.op(operation_id);
        let response = &op["responses"][status.to_string()];
        assert!(
            response.is_object(),
            "{operation_id} answered {status}, which it does not document: {text}"
        );
        let Some((media, content)) = response["content"]
            .as_object()
            .and_then(|c| c.iter().next())
        else {
            return Value::Null;
        };
        if !media.starts_with("application/json") {
            assert!(
                content_type.starts_with(media.split(';').next().unwrap_or("")),
                "{operation_id}: {content_type}"
            );
            return Value::Null;
        }
        assert!(
            content_type.starts_with("application/json"),
            "{operation_id} {status}: {content_type}"
        );
        let body: Value = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("{operation_id} {status}: not JSON ({e}): {text}"));
        let mut schema = json_schema(&content["schema"]);
        schema["components"] = json_schema(&self.doc["components"]);
        let validator = jsonschema::validator_for(&schema)
            .unwrap_or_else(|e| panic!("{operation_id} {status}: schema does not compile: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        assert!(
            errors.is_empty(),
            "{operation_id} {status}: {errors:?} in {body}"
        );
        body
    }

    /// Runs the documented example of `operation_id`; asserts a 2xx that validates.
    async fn run_example(
        &self,
        operation_id: &str,
        key: Option<&str>,
        overrides: &[(&str, String)],
    ) -> Value {
        let (method, path, body) = self.example(operation_id, overrides);
        let (status, ct, text) = self.send(&method, &path, body.as_ref(), key).await;
        assert!(
            (200..300).contains(&status),
            "the example of {operation_id} ({method} {path} {body:?}) answered {status}: {text}"
        );
        self.check(operation_id, status, &ct, &text)
    }

    fn secured(&self, operation_id: &str) -> bool {
        let (_, _, op) = self.op(operation_id);
        op["security"].as_array().is_some_and(|s| !s.is_empty())
    }
}

#[tokio::test]
async fn every_example_succeeds_and_every_answer_matches_its_schema() {
    let env = TestEnv::new().await.expect("env");
    let cmd = env.command_svc().await.expect("command-svc");
    let _projector = env.projector().await.expect("projector");
    let query = env.query_svc().await.expect("query-svc");
    let c = Spec::fetch(&cmd.url()).await;
    let q = Spec::fetch(&query.url()).await;
    let key = Some(KEY_ACME);
    // The validator is not vacuous: a wrong body fails it.
    let (_, _, op) = c.op("send_message");
    let mut schema = json_schema(
        &op["responses"]["200"]["content"]["application/json; charset=utf-8"]["schema"],
    );
    schema["components"] = json_schema(&c.doc["components"]);
    let v = jsonschema::validator_for(&schema).expect("schema");
    assert!(
        !v.is_valid(&json!({"message_id": 5})),
        "a wrong body validated"
    );
    assert!(v.is_valid(&json!({"message_id": "x", "message_seq": 1, "client_msg_no": null, "timestamp": 1, "event_seq": 1})));

    // Commands, in the story's order.
    c.run_example("mint_user_token", key, &[]).await;
    let sent = c.run_example("send_message", key, &[]).await;
    let message_id = sent["message_id"].as_str().expect("message_id").to_owned();
    let batch = c.run_example("send_batch", key, &[]).await;
    for item in batch["results"].as_array().expect("results") {
        assert_eq!(item["status"], 200, "a batch example item failed: {item}");
    }
    c.run_example("create_channel", key, &[]).await;
    c.run_example("add_members", key, &[]).await;
    for id in [
        "update_member",
        "update_channel",
        "ban_user",
        "add_to_blacklist",
        "add_to_whitelist",
        "block_user",
    ] {
        c.run_example(id, key, &[]).await;
    }
    c.run_example("set_read_position", key, &[]).await;
    c.run_example("remove_member", key, &[]).await;

    // Reads, once the projections hold the commands.
    let head = stream_head(&env).await.expect("head");
    let (st, v) = Api::new(&query.url(), KEY_ACME)
        .get(&format!(
            "/v1/users/alice/conversations?min_event_seq={head}"
        ))
        .await
        .expect("wait");
    assert_eq!(st, 200, "{v}");
    for id in q.operation_ids() {
        let overrides = if id == "get_message" {
            vec![("message_id", message_id.clone())]
        } else {
            vec![]
        };
        let auth = if q.secured(&id) { key } else { None };
        q.run_example(&id, auth, &overrides).await;
    }
    for id in [
        "unban_user",
        "remove_from_blacklist",
        "remove_from_whitelist",
        "unblock_user",
        "disband_channel",
    ] {
        c.run_example(id, key, &[]).await;
    }
    c.run_example("revoke_user_tokens", key, &[]).await;

    // The admin API, with the master key.
    let master = Some(MASTER_KEY);
    let created = c.run_example("create_tenant", master, &[]).await;
    let tenant = created["tenant"]["tenant_id"].as_str().expect("tenant_id");
    assert_eq!(tenant, "initech", "{created}");
    c.run_example("list_tenants", master, &[]).await;
    c.run_example("get_tenant", master, &[]).await;
    c.run_example("update_tenant", master, &[]).await;
    let key_made = c.run_example("create_key", master, &[]).await;
    c.run_example("list_keys", master, &[]).await;
    let key_id = key_made["key_id"].as_str().expect("key_id").to_owned();
    let (method, path, _) = c.example("revoke_key", &[("key_id", key_id)]);
    let (status, ct, text) = c.send(&method, &path, None, master).await;
    assert_eq!(status, 204, "revoke_key: {text}");
    assert!(ct.is_empty() && text.is_empty(), "{ct} {text}");

    // Errors a client provokes: no credentials, a malformed path parameter, a body with an
    // unknown field. Each must be documented for the operation and match its schema.
    for spec in [&c, &q] {
        for id in spec.operation_ids() {
            let (method, path, body) = spec.example(&id, &[]);
            let key = if path.starts_with("/v1/admin/") {
                master
            } else {
                key
            };
            if spec.secured(&id) {
                let (status, ct, text) = spec.send(&method, &path, body.as_ref(), None).await;
                assert_eq!(status, 401, "{id} without credentials: {text}");
                spec.check(&id, status, &ct, &text);
            }
            let (_, _, op) = spec.op(&id);
            if let Some(first) = op["parameters"]
                .as_array()
                .and_then(|ps| ps.iter().find(|p| p["in"] == "path"))
            {
                let name = first["name"].as_str().expect("name");
                let bad_path = spec.example_path_with(&id, name, "a%20b").expect("path");
                let (status, ct, text) = spec.send(&method, &bad_path, body.as_ref(), key).await;
                assert_eq!(status, 400, "{id} with a malformed {name}: {text}");
                let e = spec.check(&id, status, &ct, &text);
                assert_eq!(e["error"]["field"], name, "{id}: {e}");
            }
            if let Some(mut b) = body.clone() {
                b["not_a_field"] = json!(1);
                let (status, ct, text) = spec.send(&method, &path, Some(&b), key).await;
                assert_eq!(status, 400, "{id} with an unknown field: {text}");
                let e = spec.check(&id, status, &ct, &text);
                assert_eq!(e["error"]["field"], "not_a_field", "{id}: {e}");
            }
        }
    }
}

impl Spec {
    /// The example path of `operation_id` with path parameter `name` set to the raw
    /// (already percent-encoded) `raw`.
    fn example_path_with(&self, operation_id: &str, name: &str, raw: &str) -> Option<String> {
        let marker = "__parley_marker__";
        let (_, path, _) = self.example(operation_id, &[(name, marker.to_owned())]);
        path.contains(marker).then(|| path.replace(marker, raw))
    }
}
