//! Shutdown with a dependency down: every service stops within its drain deadline while NATS
//! is gone (nothing waits for it forever), and a process stuck reaching NATS at start still
//! ends within its deadline of SIGTERM.

use parley_tests::nats::NatsServer;
use parley_tests::*;
use std::time::{Duration, Instant};

/// NATS dies under running services (the query service's hub then retries the log): each
/// still stops within its 10 s drain deadline.
#[tokio::test]
async fn services_stop_within_their_deadline_while_nats_is_down() {
    let mut nats = NatsServer::start().await.expect("own nats");
    let mut env = TestEnv::new().await.expect("env");
    env.nats_url = nats.url();
    let cmd = env.command_svc().await.expect("command-svc");
    let projector = env.projector().await.expect("projector");
    let query = env.query_svc().await.expect("query-svc");
    let q = Api::with_auth(&query.url(), None);
    let mut ready = false;
    for _ in 0..100 {
        if q.get("/ready").await.is_ok_and(|(s, _)| s == 200) {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "the query service never became ready");
    nats.kill();
    // Long enough for the hub to see its consumer fail and start reopening it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (name, service) in [
        ("query-svc", query),
        ("command-svc", cmd),
        ("projector", projector),
    ] {
        let started = Instant::now();
        assert!(
            service.stop_within(Duration::from_secs(12)).await,
            "{name} did not stop within 12 s with NATS down"
        );
        println!("{name} stopped in {:?} with NATS down", started.elapsed());
    }
}

/// A projector process whose NATS is unreachable from the start ends at once on SIGTERM
/// during its connection attempt, and by itself within seconds with an error naming NATS and
/// the URL it could not reach.
#[tokio::test]
async fn an_unreachable_nats_fails_fast_by_name_and_sigterm_ends_the_wait() {
    let mut env = TestEnv::new().await.expect("env");
    let dead = free_port();
    env.nats_url = format!("nats://127.0.0.1:{dead}");
    let spawn = |env: &TestEnv| {
        let port = free_port();
        env.projector_cmd(&["run"])
            .env("PARLEY_PROJECTOR_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    // SIGTERM while it waits for NATS.
    let mut child = spawn(&env);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        child.try_wait().expect("wait").is_none(),
        "it should still be connecting"
    );
    let pid = child.id().expect("pid").to_string();
    let started = Instant::now();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(sent.success());
    let exited = tokio::time::timeout(Duration::from_secs(3), child.wait()).await;
    assert!(exited.is_ok(), "still running 3 s after SIGTERM");
    println!("projector exited {:?} after SIGTERM", started.elapsed());

    // Left alone, it gives up within seconds and says what it could not reach.
    let started = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(15), spawn(&env).wait_with_output())
        .await
        .expect("gave up within 15 s")
        .expect("output");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach NATS at") && err.contains(&env.nats_url),
        "{err}"
    );
    println!(
        "projector gave up after {:?}: {}",
        started.elapsed(),
        err.trim()
    );
}
