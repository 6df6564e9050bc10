//! The read-model contract: a projection version created from the `readmodel` DDL has exactly
//! the shape the migrations give version 1, and the services wait, saying so, for a database
//! nobody has migrated yet — migrations are the projector's job (`projector migrate`).

use parley_tests::*;
use projector::schema::{self, State};
use projector::Projection;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

/// Every column, constraint, index and storage option of the tables in `schema`, with the
/// schema's name taken out of definitions so two versions compare equal.
async fn shape(db: &tokio_postgres::Client, schema: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let columns = db
        .query(
            "SELECT table_name::text, column_name::text, ordinal_position::int4, data_type::text, \
                    is_nullable::text, coalesce(column_default::text, '') \
             FROM information_schema.columns WHERE table_schema = $1",
            &[&schema],
        )
        .await
        .expect("columns");
    for r in columns {
        out.insert(format!(
            "column {}.{} #{} {} nullable={} default={}",
            r.get::<_, String>(0),
            r.get::<_, String>(1),
            r.get::<_, i32>(2),
            r.get::<_, String>(3),
            r.get::<_, String>(4),
            r.get::<_, String>(5),
        ));
    }
    let indexes = db
        .query(
            "SELECT tablename::text, replace(indexdef, $1 || '.', '') FROM pg_indexes \
             WHERE schemaname = $1",
            &[&schema],
        )
        .await
        .expect("indexes");
    for r in indexes {
        out.insert(format!(
            "index on {}: {}",
            r.get::<_, String>(0),
            r.get::<_, String>(1)
        ));
    }
    let constraints = db
        .query(
            "SELECT c.relname::text, k.conname::text, pg_get_constraintdef(k.oid) \
             FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1",
            &[&schema],
        )
        .await
        .expect("constraints");
    for r in constraints {
        out.insert(format!(
            "constraint {}.{}: {}",
            r.get::<_, String>(0),
            r.get::<_, String>(1),
            r.get::<_, String>(2)
        ));
    }
    let tables = db
        .query(
            "SELECT c.relname::text, coalesce(array_to_string(c.reloptions, ','), '') \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind = 'r'",
            &[&schema],
        )
        .await
        .expect("tables");
    for r in tables {
        out.insert(format!(
            "table {} options [{}]",
            r.get::<_, String>(0),
            r.get::<_, String>(1)
        ));
    }
    out
}

/// A rebuild's fresh version (tables, then its deferred indexes) against the migrated
/// version 1, projection by projection.
#[tokio::test]
async fn a_fresh_version_has_exactly_the_shape_of_the_migrated_one() {
    let env = TestEnv::new().await.expect("env");
    let db = env.db().await.expect("db");
    let pool = platform::db::pool(&env.database_url, 2).expect("pool");
    for p in Projection::ALL {
        let migrated = shape(&db, &schema::schema_name(p, 1)).await;
        assert!(
            migrated.iter().any(|l| l.starts_with("column ")),
            "{}: the migrated version has no columns",
            p.name()
        );
        let mut conn = pool.get().await.expect("connection");
        let tx = conn.transaction().await.expect("transaction");
        let fresh = schema::create(&tx, p, State::Building, None)
            .await
            .expect("create version");
        tx.commit().await.expect("commit");
        schema::finish_indexes(&mut conn, &fresh)
            .await
            .expect("deferred indexes");
        let created = shape(&db, &fresh.schema).await;
        let only_migrated: Vec<_> = migrated.difference(&created).collect();
        let only_created: Vec<_> = created.difference(&migrated).collect();
        assert!(
            only_migrated.is_empty() && only_created.is_empty(),
            "{}: the readmodel DDL and the migrations disagree\n  only in the migrated \
             version: {only_migrated:#?}\n  only in a fresh version: {only_created:#?}",
            p.name()
        );
    }
}

/// Lines of a child's stderr, drained in the background (a full pipe would stall the child).
fn lines_of(child: &mut tokio::process::Child) -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The first line containing `needle` within `within`; panics naming what was seen instead.
async fn expect_line(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    needle: &str,
    within: Duration,
) -> String {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(within, async {
        while let Some(line) = rx.recv().await {
            if line.contains(needle) {
                return Some(line);
            }
            seen.push(line);
        }
        None
    })
    .await;
    match found {
        Ok(Some(line)) => line,
        _ => panic!("no line with {needle:?} within {within:?}; saw {seen:#?}"),
    }
}

async fn ready(url: &str, within: Duration) -> bool {
    let api = Api::with_auth(url, None);
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if api.get("/ready").await.is_ok_and(|(s, _)| s == 200) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Both services, started before anyone migrated the database, say what is missing and what
/// to run, keep waiting, and serve once `projector migrate` has run.
#[tokio::test]
async fn services_wait_for_an_unmigrated_database_and_say_so() {
    let env = TestEnv::unmigrated().await.expect("env");
    let mut children = Vec::new();
    let mut urls = Vec::new();
    for name in ["command-svc", "query-svc"] {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut child = env
            .service_cmd(name, addr)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: {e} (run through `make test`, which builds it)"));
        let mut lines = lines_of(&mut child);
        let line = expect_line(&mut lines, "not migrated", Duration::from_secs(20)).await;
        assert!(
            line.contains("projector migrate"),
            "{name} should say what to run: {line}"
        );
        // Still waiting, not exited.
        assert!(
            child.try_wait().expect("child status").is_none(),
            "{name} exited instead of waiting"
        );
        children.push((name, child, lines));
        urls.push(format!("http://{addr}"));
    }
    let (ok, out, err) = env.projector_run(&["migrate"]).await.expect("projector");
    assert!(ok, "projector migrate failed: {out}{err}");
    for ((name, child, lines), url) in children.iter_mut().zip(&urls) {
        let started = expect_line(lines, "the database is migrated", Duration::from_secs(20)).await;
        assert!(!started.is_empty());
        assert!(
            ready(url, Duration::from_secs(20)).await,
            "{name} never became ready"
        );
        assert!(child.try_wait().expect("status").is_none(), "{name} exited");
    }
    // The command service works on the migrated database.
    let c = Api::new(&urls[0], KEY_ACME);
    let (status, v) = c
        .post(
            "/v1/messages",
            &json!({"channel_id": "bob", "channel_type": 1, "from_uid": "alice",
                    "payload": b64(b"after migrate")}),
        )
        .await
        .expect("send");
    assert_eq!(status, 200, "{v}");
}

/// Every serving checkpoint the projector commits is announced on `parley_checkpoints` as
/// `<projection>:<last_seq>` (what the query service's watcher listens to instead of polling).
#[tokio::test]
async fn each_projection_announces_its_checkpoint_when_it_commits() {
    let env = TestEnv::new().await.expect("env");
    let (client, mut conn) = tokio_postgres::connect(&env.database_url, tokio_postgres::NoTls)
        .await
        .expect("listen connection");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(Ok(m)) = futures::StreamExt::next(&mut messages).await {
            if let tokio_postgres::AsyncMessage::Notification(n) = m {
                let _ = tx.send(n.payload().to_owned());
            }
        }
    });
    client
        .batch_execute("LISTEN parley_checkpoints")
        .await
        .expect("listen");
    let cmd = env.command_svc().await.expect("command-svc");
    let _projector = env.projector().await.expect("projector");
    let c = Api::new(&cmd.url(), KEY_ACME);
    let (status, v) = c
        .post(
            "/v1/messages",
            &json!({"channel_id": "bob", "channel_type": 1, "from_uid": "alice",
                    "payload": b64(b"announced")}),
        )
        .await
        .expect("send");
    assert_eq!(status, 200, "{v}");
    let event_seq = v["event_seq"].as_u64().expect("event_seq");
    let mut reached = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while reached.len() < 3 {
        let payload = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("announcements so far: {reached:?}"))
            .expect("listener alive");
        let (name, seq) = payload.rsplit_once(':').expect("projection:seq");
        if seq.parse::<u64>().expect("seq") >= event_seq {
            reached.insert(name.to_owned());
        }
    }
    assert_eq!(
        reached.into_iter().collect::<Vec<_>>(),
        ["channels", "conversations", "messages"]
    );
}
