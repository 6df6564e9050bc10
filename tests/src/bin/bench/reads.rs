//! S3 (history page: newest, and ~1M deep, of a 1M-message channel) and S4 (first page of the
//! conversation list of a user with 1,000 conversations), each against the very SQL the query
//! service issues (`query_svc::raw_sql`) run directly on dedicated connections with prepared
//! statements, driven by the same number of workers.
//!
//! Reads use 8 workers: the p99 target of 5 ms is a latency target, and with 64 closed-loop
//! workers on 2 cores queueing alone would put every request behind dozens of others.

use crate::catchup::Data;
use crate::driver::{drive, http_clients, Op, Stats};
use crate::procs::{Bench, API_KEY, TENANT};
use crate::report::{Report, Row};
use crate::seed::{DEEP, HEAVY_UID};
use crate::send::stats_cell;
use anyhow::ensure;
use events::{ChannelKey, Uid};
use rand::Rng;
use std::sync::Arc;
use tokio_postgres::types::ToSql;

/// Concurrent workers.
const WORKERS: usize = 8;
/// History page size (the API's default).
const HISTORY_LIMIT: i64 = 50;
/// Conversation page size (the API's default).
const CONVERSATION_LIMIT: i64 = 20;

/// What one read scenario asks for: the API path, and the raw SQL with its parameters.
struct Case {
    path: fn(u64) -> String,
    sql: &'static str,
    params: fn(u64, &str) -> Vec<Box<dyn ToSql + Send + Sync>>,
}

/// Runs S3 and S4 and adds their rows.
///
/// # Errors
/// The query service fails to start, or a sample answer is wrong.
pub async fn run(bench: &Bench, data: &Data, report: &mut Report) -> anyhow::Result<()> {
    println!("S3/S4: reads vs the same SQL issued directly");
    // Fresh statistics, as autovacuum would gather soon after a bulk load; plans made before
    // them (both sides cache prepared statements) would measure the planner, not the reads.
    let (client, conn) = tokio_postgres::connect(&data.db, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    client.batch_execute("ANALYZE").await?;
    drop(client);
    let query = bench
        .spawn("query-svc", &[], &data.env, "PARLEY_QUERY_LISTEN")
        .await?;
    let key = ChannelKey::personal(&Uid::parse(DEEP.0)?, &Uid::parse(DEEP.1)?).storage_key();
    check_samples(&query.base, data.depth).await?;

    let depth = data.depth;
    let newest = Case {
        path: |_| format!("/v1/channels/1/{}/messages?uid={}", DEEP.1, DEEP.0),
        sql: query_svc::raw_sql::HISTORY_BACKWARD,
        params: |_, key| history_params(key, i64::MAX),
    };
    let deep = Case {
        path: |before| {
            format!(
                "/v1/channels/1/{}/messages?uid={}&before_seq={before}",
                DEEP.1, DEEP.0
            )
        },
        sql: query_svc::raw_sql::HISTORY_BACKWARD,
        params: |before, key| history_params(key, before as i64),
    };
    let conversations = Case {
        path: |_| format!("/v1/users/{HEAVY_UID}/conversations"),
        sql: query_svc::raw_sql::FIRST_PAGE,
        params: |_, _| {
            vec![
                Box::new(TENANT.to_owned()),
                Box::new(HEAVY_UID.to_owned()),
                Box::new(CONVERSATION_LIMIT + 1),
            ]
        },
    };
    // Pages ~1M deep: `before_seq` in 51..=1050, so each page holds 50 of the oldest 1,050.
    let deep_arg = move || rand::thread_rng().gen_range(51..=1050.min(depth).max(51));

    let (n_api, n_raw) = pair(bench, &query.base, &data.db, &key, &newest, &|| 0).await?;
    let (d_api, d_raw) = pair(bench, &query.base, &data.db, &key, &deep, &deep_arg).await?;
    let (c_api, c_raw) = pair(bench, &query.base, &data.db, &key, &conversations, &|| 0).await?;
    if let Some(other) = std::env::var_os("BENCH_AB_QUERY_BIN") {
        let other = std::path::PathBuf::from(other);
        let b = bench
            .spawn_path(&other, &[], &data.env, "PARLEY_QUERY_LISTEN")
            .await?;
        let zero = || 0u64;
        let cases: [(&str, &Case, &(dyn Fn() -> u64 + Sync)); 3] = [
            ("S3 A/B", &newest, &zero),
            ("S3d A/B", &deep, &deep_arg),
            ("S4 A/B", &conversations, &zero),
        ];
        for (id, case, arg) in cases {
            report.add(compare(bench, id, case, arg, &query.base, &b.base, &other).await);
        }
        b.stop().await;
    }
    query.stop().await;

    for (what, api, raw) in [
        (
            "S3 newest history page (50 of 1M)".to_owned(),
            &n_api,
            &n_raw,
        ),
        (format!("S3 history page at depth ~{depth}"), &d_api, &d_raw),
    ] {
        report.add(read_row("S3", what, api, raw));
    }
    let slowdown = n_api.rate() / d_api.rate();
    report.add(Row {
        id: "S3d".into(),
        what: "depth page vs newest page, through the API".into(),
        parley: format!(
            "depth {:.0}/s, p50 {:.2} ms",
            d_api.rate(),
            d_api.pct_ms(0.5)
        ),
        baseline: format!(
            "newest {:.0}/s, p50 {:.2} ms",
            n_api.rate(),
            n_api.pct_ms(0.5)
        ),
        ratio: format!("depth page costs {slowdown:.2}× the newest"),
        target: "≤ 1.5×".into(),
        met: slowdown <= 1.5,
    });
    report.add(read_row(
        "S4",
        "conversation list, first page (20 of 1,000)".into(),
        &c_api,
        &c_raw,
    ));
    Ok(())
}

fn history_params(key: &str, before: i64) -> Vec<Box<dyn ToSql + Send + Sync>> {
    vec![
        Box::new(TENANT.to_owned()),
        Box::new(1i16),
        Box::new(key.to_owned()),
        Box::new(before),
        Box::new(HISTORY_LIMIT + 1),
    ]
}

fn read_row(id: &str, what: String, api: &Stats, raw: &Stats) -> Row {
    let ratio = api.rate() / raw.rate();
    Row {
        id: id.into(),
        what,
        parley: stats_cell(api),
        baseline: format!("raw SQL: {}", stats_cell(raw)),
        ratio: format!("{:.0}% of rate", ratio * 100.0),
        target: "≥ 50% of rate, p99 ≤ 5 ms".into(),
        met: ratio >= 0.5 && api.pct_ms(0.99) <= 5.0 && api.errors == 0,
    }
}

/// Raw SQL first, then the API, both with [`WORKERS`] workers; `arg` varies each request.
async fn pair(
    bench: &Bench,
    base: &str,
    db: &str,
    key: &str,
    case: &Case,
    arg: &(dyn Fn() -> u64 + Sync),
) -> anyhow::Result<(Stats, Stats)> {
    let raw = drive(
        WORKERS,
        bench.warmup,
        bench.measure,
        raw_op(db, key, case, arg).await?,
    )
    .await;
    println!("  raw SQL {}: {}", (case.path)(arg()), raw.line());
    let api = drive(
        WORKERS,
        bench.warmup,
        bench.measure,
        api_op(base, case, arg),
    )
    .await;
    println!("  API     {}: {}", (case.path)(arg()), api.line());
    Ok((api, raw))
}

/// Rounds of an A/B comparison.
const AB_ROUNDS: usize = 3;

/// `BENCH_AB_QUERY_BIN`: this build's query service (at `a`) against another build's (at `b`,
/// the binary `other`) on the same data, [`AB_ROUNDS`] rounds alternating which goes first so
/// that drift on a noisy machine falls on both; the row's ratio is A's mean rate over B's.
/// A structural change is meant to stay within 5% (≥ 95%).
async fn compare(
    bench: &Bench,
    id: &str,
    case: &Case,
    arg: &(dyn Fn() -> u64 + Sync),
    a: &str,
    b: &str,
    other: &std::path::Path,
) -> Row {
    let (mut rates_a, mut rates_b) = (Vec::new(), Vec::new());
    for round in 0..AB_ROUNDS {
        let order = if round % 2 == 0 { [a, b] } else { [b, a] };
        for base in order {
            let s = drive(
                WORKERS,
                bench.warmup,
                bench.measure,
                api_op(base, case, arg),
            )
            .await;
            let side = if base == a { "A" } else { "B" };
            println!("  {id} round {round} {side}: {}", s.line());
            if base == a {
                &mut rates_a
            } else {
                &mut rates_b
            }
            .push(s.rate());
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (ma, mb) = (mean(&rates_a), mean(&rates_b));
    let list = |v: &[f64]| {
        v.iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Row {
        id: id.into(),
        what: format!(
            "{}: this build (A) vs {} (B)",
            (case.path)(0),
            other.display()
        ),
        parley: format!("A {ma:.0}/s ({})", list(&rates_a)),
        baseline: format!("B {mb:.0}/s ({})", list(&rates_b)),
        ratio: format!("**{:.0}%**", 100.0 * ma / mb),
        target: "≥ 95%".into(),
        met: ma >= 0.95 * mb,
    }
}

/// `GET {base}{path}` with the API key, one connection per worker.
fn api_op(base: &str, case: &Case, arg: &(dyn Fn() -> u64 + Sync)) -> Op {
    let clients = Arc::new(http_clients(WORKERS));
    let base = base.to_owned();
    let path = case.path;
    // The argument generator is not 'static; sample a large pool of arguments up front.
    let args: Arc<Vec<u64>> = Arc::new((0..4096).map(|_| arg()).collect());
    Arc::new(move |w| {
        let a = args[rand::thread_rng().gen_range(0..args.len())];
        let req = clients[w]
            .get(format!("{base}{}", path(a)))
            .bearer_auth(API_KEY);
        Box::pin(async move {
            match req.send().await {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            }
        })
    })
}

/// The case's SQL on a dedicated connection per worker, prepared once.
async fn raw_op(
    db: &str,
    key: &str,
    case: &Case,
    arg: &(dyn Fn() -> u64 + Sync),
) -> anyhow::Result<Op> {
    let mut conns = Vec::new();
    for _ in 0..WORKERS {
        let (client, conn) = tokio_postgres::connect(db, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        let stmt = client.prepare(case.sql).await?;
        conns.push((client, stmt));
    }
    let conns = Arc::new(conns);
    let params_of = case.params;
    let key = key.to_owned();
    let params: Arc<Vec<Vec<Box<dyn ToSql + Send + Sync>>>> =
        Arc::new((0..4096).map(|_| params_of(arg(), &key)).collect());
    Ok(Arc::new(move |w| {
        let conns = conns.clone();
        let params = params.clone();
        let i = rand::thread_rng().gen_range(0..params.len());
        Box::pin(async move {
            let (client, stmt) = &conns[w];
            let p: Vec<&(dyn ToSql + Sync)> = params[i]
                .iter()
                .map(|b| b.as_ref() as &(dyn ToSql + Sync))
                .collect();
            client
                .query(stmt, &p)
                .await
                .is_ok_and(|rows| !rows.is_empty())
        })
    }))
}

/// The API answers the right pages before anything is timed.
async fn check_samples(base: &str, depth: u64) -> anyhow::Result<()> {
    let api = parley_tests::Api::new(base, API_KEY);
    let (status, body) = api
        .get(&format!(
            "/v1/channels/1/{}/messages?uid={}",
            DEEP.1, DEEP.0
        ))
        .await?;
    ensure!(status == 200, "newest page: {status} {body}");
    let seqs: Vec<u64> = body["messages"]
        .as_array()
        .map(|m| m.iter().filter_map(|x| x["message_seq"].as_u64()).collect())
        .unwrap_or_default();
    ensure!(
        seqs.len() == HISTORY_LIMIT as usize && seqs.last() == Some(&depth),
        "newest page should end at {depth}: {seqs:?}"
    );
    let (status, body) = api
        .get(&format!(
            "/v1/channels/1/{}/messages?uid={}&before_seq=51",
            DEEP.1, DEEP.0
        ))
        .await?;
    let first = body["messages"][0]["message_seq"].as_u64();
    ensure!(
        status == 200 && first == Some(1),
        "oldest page should start at 1: {body}"
    );
    let (status, body) = api
        .get(&format!("/v1/users/{HEAVY_UID}/conversations"))
        .await?;
    let n = body["conversations"].as_array().map_or(0, Vec::len);
    ensure!(
        status == 200 && n == CONVERSATION_LIMIT as usize,
        "conversation page: {status} {body}"
    );
    Ok(())
}
