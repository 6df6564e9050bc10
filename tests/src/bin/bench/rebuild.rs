//! S5b: `projector rebuild --all` over the S5 log (the personal/group mix plus the deep
//! channel): every projection rebuilt from event 1 beside the serving versions, verified
//! against them, switched. Baseline: a binary `COPY` of the rows the rebuild produced, in the
//! same run (the cost of just writing the result).

use crate::catchup::{raw_copy, Data};
use crate::procs::Bench;
use crate::report::{Report, Row};
use std::time::Instant;

/// Runs S5b on the S5 data (serving versions caught up, projector stopped).
///
/// # Errors
/// The rebuild fails or its verification finds a difference.
pub async fn run(bench: &Bench, data: &Data, report: &mut Report) -> anyhow::Result<()> {
    println!("S5b: full rebuild of every projection vs binary COPY of the resulting rows");
    let head = head(&data.db).await?;
    let started = Instant::now();
    bench
        .run_once("projector", &["rebuild", "--all"], &data.env)
        .await?;
    let secs = started.elapsed().as_secs_f64();
    let (raw_secs, rows) = raw_copy(&data.db).await?;
    let (rate, raw_rate) = (head as f64 / secs, head as f64 / raw_secs);
    let per_10m = 10_000_000.0 / rate;
    report.add(Row {
        id: "S5b".into(),
        what: format!("rebuild --all of {head} events (bulk, indexes, catch-up, verify, switch)"),
        parley: format!("{secs:.1} s = {rate:.0} events/s (10M ≈ {per_10m:.0} s)"),
        baseline: format!(
            "binary COPY of the {rows} resulting rows: {raw_secs:.1} s = {raw_rate:.0} events/s"
        ),
        ratio: format!("{:.0}% of COPY's rate", rate / raw_rate * 100.0),
        target: "≥ 100,000 events/s; 10M < 180 s".into(),
        met: rate >= 100_000.0 && per_10m < 180.0,
    });
    Ok(())
}

/// The serving messages checkpoint: the S5 log's head once S5 has caught up.
async fn head(db: &str) -> anyhow::Result<u64> {
    let (client, conn) = tokio_postgres::connect(db, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let seq: i64 = client
        .query_one(
            "SELECT max(last_seq) FROM projection_versions WHERE state = 'serving'",
            &[],
        )
        .await?
        .get(0);
    Ok(seq as u64)
}
