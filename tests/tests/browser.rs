//! The browser client at `/`, driven in headless Chromium by Playwright (`playwright-core`,
//! `tests/browser/chat.mjs`): two users in two pages exchange messages and see each other's
//! typing, and a muted user sees why it cannot send, over the real services, NATS and Postgres.

use parley_tests::*;
use std::process::Stdio;

#[tokio::test]
async fn two_users_chat_in_real_browsers() {
    let env = TestEnv::new().await.expect("env");
    let cmd = env.command_svc().await.expect("command-svc");
    let _projector = env.projector().await.expect("projector");
    let query = env.query_svc().await.expect("query-svc");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    let artifacts = std::env::temp_dir().join(format!("parley-browser-{}", std::process::id()));
    let out = tokio::process::Command::new("node")
        .arg("chat.mjs")
        .current_dir(&dir)
        .env("QUERY_URL", query.url())
        .env("COMMAND_URL", cmd.url())
        .env("API_KEY", KEY_ACME)
        .env("ARTIFACTS_DIR", &artifacts)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("node runs (deploy/setup.sh installs chromium and playwright-core)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser test failed ({}); screenshots in {}\n{stdout}\n{stderr}",
        out.status,
        artifacts.display()
    );
    assert!(stdout.contains(" 0 failed"), "{stdout}");
}
