//! The README's curl block, run top to bottom as a newcomer would (against this test's
//! services instead of `make run`'s): every request must succeed (`curl -f`: no 4xx or 5xx).

use parley_tests::*;

/// The shell block after the README's "runs top to bottom as written" sentence.
fn readme_block() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let from = readme
        .find("runs top to bottom as written")
        .expect("the runnable block's sentence");
    let rest = &readme[from..];
    let start = rest.find("```sh\n").expect("block start") + "```sh\n".len();
    let end = rest[start..].find("\n```").expect("block end");
    rest[start..start + end].to_owned()
}

#[tokio::test]
async fn the_readme_curl_block_runs_as_written() {
    let env = TestEnv::new().await.expect("env");
    let cmd = env.command_svc().await.expect("command-svc");
    let _projector = env.projector().await.expect("projector");
    let query = env.query_svc().await.expect("query-svc");
    let script = readme_block()
        .replace("$(cat .run/dev/api_key)", KEY_ACME)
        .replace("http://127.0.0.1:5001", &cmd.url())
        .replace("http://127.0.0.1:5002", &query.url())
        .replace("curl -s ", "curl -sSf ");
    assert!(script.contains("curl -sSf"), "{script}");
    let out = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail\n{script}"))
        .output()
        .await
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the README block failed:\n{stdout}\n{stderr}"
    );
    // What the block shows a newcomer.
    for expected in [
        "\"message_seq\":1",
        "\"results\"",
        "\"conversations\"",
        "\"member_count\"",
    ] {
        assert!(stdout.contains(expected), "no {expected} in:\n{stdout}");
    }
}
