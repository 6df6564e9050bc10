//! Browser auth as a web app meets it (`docs/tenancy.md`): the user token as an HttpOnly
//! cookie (set by the dev-token answer, read by every read, the WebSocket and SSE), `Origin`
//! checked on socket and event-stream upgrades against the tenant's allowed origins, and CORS
//! with preflight for those origins only.

use parley_tests::ws::mint;
use parley_tests::*;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A WebSocket upgrade of `base` with `headers`: `Ok(())` when it opened, else the status.
async fn upgrade(base: &str, path: &str, headers: &[(&str, &str)]) -> Result<(), u16> {
    let url = format!("{}{path}", base.replacen("http://", "ws://", 1));
    let mut req = url.into_client_request().expect("request");
    for (k, v) in headers {
        req.headers_mut().insert(
            reqwest::header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
            v.parse().expect("value"),
        );
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok(_) => Ok(()),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("upgrade: {e}"),
    }
}

#[tokio::test]
async fn the_token_cookie_reads_and_subscribes_and_origins_are_checked() {
    let env = TestEnv::new().await.expect("env");
    let cmd = env.command_svc().await.expect("command-svc");
    let _projector = env.projector().await.expect("projector");
    let query = env.query_svc().await.expect("query-svc");
    let http = reqwest::Client::new();

    // The dev-token answer sets the cookie: HttpOnly, Secure, SameSite=Lax.
    let r = http
        .post(format!("{}/v1/dev/tokens", query.url()))
        .json(&json!({"uid": "alice"}))
        .send()
        .await
        .expect("dev token");
    assert_eq!(r.status().as_u16(), 200);
    let set = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("Set-Cookie")
        .to_owned();
    let token = r.json::<serde_json::Value>().await.expect("json")["token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert!(set.starts_with(&format!("parley_token={token};")), "{set}");
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(set.split("; ").any(|a| a == attr), "{attr} missing: {set}");
    }

    // Reads take the cookie.
    let cookie = format!("theme=dark; parley_token={token}");
    let read = |path: String, cookie: String| {
        let http = http.clone();
        let base = query.url();
        async move {
            let r = http
                .get(format!("{base}{path}"))
                .header("cookie", cookie)
                .send()
                .await
                .expect("get");
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    assert_eq!(
        read("/v1/users/alice/conversations".into(), cookie.clone())
            .await
            .0,
        200
    );
    let (s, e) = read("/v1/users/bob/conversations".into(), cookie.clone()).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (403, Some("FORBIDDEN_UID")),
        "{e}"
    );
    let (s, _) = read(
        "/v1/users/alice/conversations".into(),
        "parley_token=forged".into(),
    )
    .await;
    assert_eq!(s, 401);

    // The WebSocket takes it too, from the page's own origin.
    let host = query.url().replacen("http://", "", 1);
    let own = format!("http://{host}");
    assert_eq!(
        upgrade(
            &query.url(),
            "/v1/ws",
            &[("cookie", &cookie), ("origin", &own)]
        )
        .await,
        Ok(())
    );
    // Another origin is refused for a tenant that lists none.
    assert_eq!(
        upgrade(
            &query.url(),
            "/v1/ws",
            &[("cookie", &cookie), ("origin", "https://evil.example")]
        )
        .await,
        Err(403)
    );
    let r = http
        .get(format!("{}/v1/events", query.url()))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("sse");
    assert_eq!(r.status().as_u16(), 403);

    // A tenant that lists its app's origin: sockets and CORS for that origin only.
    let (s, t) = Api::new(&cmd.url(), MASTER_KEY)
        .post(
            "/v1/admin/tenants",
            &json!({"tenant_id": "webco", "settings": {"allowed_origins": ["https://app.webco.example"]}}),
        )
        .await
        .expect("tenant");
    assert_eq!(s, 201, "{t}");
    let key = t["api_key"]["key"].as_str().expect("key");
    let web = mint(&Api::new(&cmd.url(), key), "wendy", 1)
        .await
        .expect("token");
    let q = format!("/v1/ws?token={web}");
    assert_eq!(
        upgrade(&query.url(), &q, &[("origin", "https://app.webco.example")]).await,
        Ok(())
    );
    assert_eq!(
        upgrade(&query.url(), &q, &[("origin", "https://evil.example")]).await,
        Err(403)
    );
    // Its origin does not open another tenant's sockets.
    assert_eq!(
        upgrade(
            &query.url(),
            "/v1/ws",
            &[("cookie", &cookie), ("origin", "https://app.webco.example")]
        )
        .await,
        Err(403)
    );

    let preflight = |origin: &'static str| {
        let http = http.clone();
        let base = query.url();
        async move {
            http.request(
                reqwest::Method::OPTIONS,
                format!("{base}/v1/users/wendy/conversations"),
            )
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
            .await
            .expect("preflight")
        }
    };
    let ok = preflight("https://app.webco.example").await;
    assert!(ok.status().is_success(), "{}", ok.status());
    let h = ok.headers();
    assert_eq!(
        h["access-control-allow-origin"],
        "https://app.webco.example"
    );
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert!(h["access-control-allow-headers"]
        .to_str()
        .unwrap_or("")
        .contains("authorization"));
    assert_eq!(
        preflight("https://evil.example").await.status().as_u16(),
        403
    );

    let r = http
        .get(format!("{}/v1/users/wendy/conversations", query.url()))
        .bearer_auth(&web)
        .header("origin", "https://app.webco.example")
        .send()
        .await
        .expect("cors get");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.webco.example"
    );
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap_or("")
        .to_lowercase();
    assert!(exposed.contains("ratelimit"), "{exposed}");
}
