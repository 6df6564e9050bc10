//! S5: the projector catches up on a log it has never seen (empty read models), against a
//! binary `COPY` of the rows it produced into empty copies of the same tables (same indexes),
//! one connection per table in parallel: the cost of just writing the result. Then, as an
//! extra row, a second catch-up: the S3 channel's messages, all in one channel.

use crate::procs::{Bench, TENANT};
use crate::report::{Report, Row};
use crate::seed::{self, Deep, Mix, HEAVY_CONVERSATIONS, HEAVY_UID};
use anyhow::{ensure, Context};
use bytes::{Bytes, BytesMut};
use futures::{SinkExt, TryStreamExt};
use std::time::{Duration, Instant};

/// The S5 log's stream and subject root.
const STREAM: &str = "BENCH_S5";
const ROOT: &str = "bench_s5";
/// Every read-model table the projector writes (its checkpoints and parked events aside).
const TABLES: [&str; 6] = [
    "messages",
    "message_keys",
    "channels",
    "channel_members",
    "conversations",
    "conversation_channels",
];
/// Unacked publishes while seeding.
const SEED_INFLIGHT: usize = 10_000;
/// Copy-in chunk, bytes.
const COPY_CHUNK: usize = 1 << 20;

/// The read models S3/S4 query.
pub struct Data {
    /// Database URL.
    pub db: String,
    /// Service env on that database and log.
    pub env: Vec<(String, String)>,
    /// Messages in the deep channel.
    pub depth: u64,
}

/// Runs S5 (and the deep-channel catch-up) and returns the data for S3/S4.
///
/// # Errors
/// Seeding, the projector or a check fails.
pub async fn run(bench: &Bench, report: &mut Report) -> anyhow::Result<Data> {
    println!("S5: projector catch-up vs binary COPY of the same rows");
    let db = bench.create_db("bench_s5").await?;
    let env = bench.service_env(&db, STREAM, ROOT);
    bench.run_once("projector", &["migrate"], &env).await?;
    let (_nats, js) =
        platform::log::connect(&bench.nats_url, "bench-seed", 2 * SEED_INFLIGHT).await?;
    let _ = js.delete_stream(STREAM).await;
    platform::log::ensure_stream(&js, STREAM, ROOT).await?;

    let mut mix = Mix::new(ROOT, TENANT, bench.events);
    let (n, rate) = seed::publish(&js, mix.by_ref(), SEED_INFLIGHT).await?;
    let (messages, heavy) = (mix.messages, mix.heavy_conversations());
    println!("  seeded {n} events ({messages} messages) at {rate:.0}/s");

    let secs = timed_catch_up(bench, &env, &db).await?;
    check_mix(&db, messages, heavy).await?;
    let (raw_secs, rows) = raw_copy(&db).await?;
    let (ev_rate, raw_rate) = (n as f64 / secs, n as f64 / raw_secs);
    report.add(Row {
        id: "S5".into(),
        what: format!("projector catch-up, {n} events (personal/group mix) into empty read models"),
        parley: format!("{secs:.1} s = {ev_rate:.0} events/s"),
        baseline: format!(
            "binary COPY of the {rows} resulting rows: {raw_secs:.1} s = {raw_rate:.0} events/s"
        ),
        ratio: format!("{:.0}% of COPY's rate", ev_rate / raw_rate * 100.0),
        target: "≥ 50,000 events/s".into(),
        met: ev_rate >= 50_000.0,
    });

    println!(
        "S5d: {} messages into one channel (the S3 channel)",
        bench.depth
    );
    let (d, rate) = seed::publish(&js, Deep::new(ROOT, TENANT, bench.depth), SEED_INFLIGHT).await?;
    println!("  seeded {d} events at {rate:.0}/s");
    let secs = timed_catch_up(bench, &env, &db).await?;
    let d_rate = d as f64 / secs;
    report.add(Row {
        id: "S5d".into(),
        what: format!("projector catch-up, {d} messages all in one channel"),
        parley: format!("{secs:.1} s = {d_rate:.0} events/s"),
        baseline: format!("mix COPY rate above: {raw_rate:.0} events/s"),
        ratio: format!("{:.0}% of the mix's COPY rate", d_rate / raw_rate * 100.0),
        target: "(informative)".into(),
        met: true,
    });
    Ok(Data {
        db,
        env,
        depth: bench.depth,
    })
}

/// Starts the projector, waits until it has applied the whole log, stops it; returns the
/// seconds from launch to caught up.
async fn timed_catch_up(bench: &Bench, env: &[(String, String)], db: &str) -> anyhow::Result<f64> {
    let started = Instant::now();
    let projector = bench
        .spawn("projector", &[], env, "PARLEY_PROJECTOR_LISTEN")
        .await?;
    wait_caught_up(db, &bench.nats_url, STREAM).await?;
    let secs = started.elapsed().as_secs_f64();
    projector.stop().await;
    Ok(secs)
}

/// Waits until every projection's checkpoint reaches the head of `stream`; prints progress
/// every 10 s.
///
/// # Errors
/// NATS or Postgres fails, or no progress for 120 s.
pub async fn wait_caught_up(db: &str, nats_url: &str, stream: &str) -> anyhow::Result<()> {
    let (_nats, js) = platform::log::connect(nats_url, "bench-watch", 16).await?;
    let head = js
        .get_stream(stream)
        .await?
        .info()
        .await?
        .state
        .last_sequence;
    let (client, conn) = tokio_postgres::connect(db, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let (mut last, mut last_change, mut last_print) = (0u64, Instant::now(), Instant::now());
    loop {
        let row = client
            .query_one(
                "SELECT count(*), coalesce(min(last_seq), 0) FROM projection_checkpoints",
                &[],
            )
            .await?;
        let (count, low): (i64, i64) = (row.get(0), row.get(1));
        let low = if count >= projector::Projection::ALL.len() as i64 {
            low as u64
        } else {
            0
        };
        if low >= head {
            return Ok(());
        }
        if low != last {
            (last, last_change) = (low, Instant::now());
        }
        ensure!(
            last_change.elapsed() < Duration::from_secs(120),
            "projector stuck at {low} of {head}"
        );
        if last_print.elapsed() > Duration::from_secs(10) {
            println!("  … slowest projection at {low} of {head}");
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The read models hold every message once and `u0` has its `heavy` conversations (1,000 once
/// the log is large enough for each of its channels to have a message).
async fn check_mix(db: &str, messages: u64, heavy: usize) -> anyhow::Result<()> {
    let (client, conn) = tokio_postgres::connect(db, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let n: i64 = client
        .query_one("SELECT count(*) FROM messages", &[])
        .await?
        .get(0);
    ensure!(
        n as u64 == messages,
        "history holds {n} messages, the log {messages}"
    );
    let convs: i64 = client
        .query_one(
            "SELECT count(*) FROM conversations WHERE uid = $1",
            &[&HEAVY_UID],
        )
        .await?
        .get(0);
    ensure!(
        convs as usize == heavy,
        "{HEAVY_UID} has {convs} conversations, not {heavy}"
    );
    if heavy < HEAVY_CONVERSATIONS {
        println!("  note: {HEAVY_UID} has only {heavy} conversations at this log size");
    }
    Ok(())
}

/// Dumps every read-model table (binary COPY out, untimed), then times loading all of them
/// into `raw.<table> (LIKE … INCLUDING ALL)` with binary COPY, one connection per table.
/// Returns (seconds, rows).
pub async fn raw_copy(db: &str) -> anyhow::Result<(f64, u64)> {
    let (client, conn) = tokio_postgres::connect(db, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    client
        .batch_execute("DROP SCHEMA IF EXISTS raw CASCADE; CREATE SCHEMA raw")
        .await?;
    let mut dumps = Vec::new();
    let mut rows = 0u64;
    for t in TABLES {
        // `public.<t>` is a view over the serving version's table (projector migration V3).
        let schema: String = client
            .query_one(
                "SELECT v.schema_name FROM projection_versions v \
                 JOIN information_schema.tables t ON t.table_schema = v.schema_name \
                 WHERE v.state = 'serving' AND t.table_name = $1",
                &[&t],
            )
            .await?
            .get(0);
        client
            .batch_execute(&format!(
                "CREATE TABLE raw.{t} (LIKE {schema}.{t} INCLUDING ALL)"
            ))
            .await?;
        let out = client
            .copy_out(&format!("COPY {schema}.{t} TO STDOUT (FORMAT binary)"))
            .await?;
        let chunks: Vec<Bytes> = out.try_collect().await?;
        let mut all = BytesMut::new();
        for c in chunks {
            all.extend_from_slice(&c);
        }
        let n: i64 = client
            .query_one(&format!("SELECT count(*) FROM public.{t}"), &[])
            .await?
            .get(0);
        rows += n as u64;
        dumps.push((t, all.freeze()));
    }
    let started = Instant::now();
    let loads = dumps.into_iter().map(|(t, mut data)| {
        let db = db.to_owned();
        tokio::spawn(async move {
            let (client, conn) = tokio_postgres::connect(&db, tokio_postgres::NoTls).await?;
            tokio::spawn(conn);
            let sink = client
                .copy_in::<_, Bytes>(&format!("COPY raw.{t} FROM STDIN (FORMAT binary)"))
                .await?;
            futures::pin_mut!(sink);
            while !data.is_empty() {
                let chunk = data.split_to(COPY_CHUNK.min(data.len()));
                sink.send(chunk).await?;
            }
            sink.as_mut().finish().await?;
            anyhow::Ok(())
        })
    });
    for r in futures::future::join_all(loads).await {
        r.context("copy task")??;
    }
    let secs = started.elapsed().as_secs_f64();
    client.batch_execute("DROP SCHEMA raw CASCADE").await?;
    Ok((secs, rows))
}
