//! `bench`: Parley's benchmarks, run by `make bench` (release build, `deploy/bench.sh`).
//!
//! Every figure is measured beside its physical limit **in the same run**, on the same machine,
//! driven the same way, and reported as a ratio (the machine is shared and noisy; absolute
//! times drift, ratios hold):
//!
//! | id | what | baseline in the same run |
//! |----|------|--------------------------|
//! | S1 | `POST /v1/messages`, 256-byte payloads, 64 connections over 1,000 channels | a bare poem handler that publishes the body to JetStream and awaits the ack |
//! | S1L | S1 with the rate limits on but not reached | the same build with them off |
//! | S5 | projector catch-up of 1M logged events into empty read models | binary `COPY` of the resulting rows into empty copies of the same tables |
//! | S3 | history page: newest, and at depth 1M, of a 1M-message channel | the same SQL issued directly |
//! | S4 | first conversation-list page of a user with 1,000 conversations | the same SQL issued directly |
//! | S2 | send → push latency, 1,000 connected users, 1,100 sends/s | a bare tokio-tungstenite broadcast under the same load |
//! | S6 | fan-out to one group of 1,000 connected members at rising rates | the same bare broadcast |
//! | S7 | RSS per idle WebSocket connection (10,000, each user in 10 groups) | — |
//!
//! # Layout
//! - `procs.rs`: the bench environment (NATS, Postgres admin URL, sibling release binaries as
//!   child processes, fresh databases).
//! - `driver.rs`: closed-loop load with N concurrent workers; rate and latency percentiles.
//! - `baseline.rs`: the bare publish handler (`bench baseline-server`).
//! - `seed.rs`: valid event streams (a personal/group mix, one deep channel) published straight
//!   to the log with the `events` codec.
//! - `send.rs` (S1), `catchup.rs` (S5), `reads.rs` (S3/S4), `realtime.rs` (S2/S6/S7);
//!   `report.rs` prints the table.
//!
//! Env: `PARLEY_NATS_URL`, `PARLEY_DATABASE_URL` (from `deploy/infra.sh`), and optionally
//! `BENCH_SECS` (measured seconds per run, default 10), `BENCH_WARMUP_SECS` (default 3),
//! `BENCH_EVENTS` (S5 log size, default 1,000,000), `BENCH_DEPTH` (S3 channel depth, default
//! 1,000,000), `BENCH_ONLY` (comma-separated subset of `s1`, `s5` (with S5b), `s5b`, `reads`, `realtime`;
//! `reads` implies the S5 data), `BENCH_AB_QUERY_BIN` (another build's `query-svc`: the reads
//! part also runs S3/S4 against it on the same data, alternating, and reports this build's rate
//! as a ratio of that one's — the before/after of a change on the read path).

/// The same allocator as the services, so the bare baseline handler runs on equal terms.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod baseline;
mod catchup;
mod driver;
mod procs;
mod reads;
mod realtime;
mod rebuild;
mod report;
mod seed;
mod send;

use procs::Bench;
use report::Report;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::telemetry::init_tracing();
    if std::env::args().nth(1).as_deref() == Some("baseline-server") {
        return baseline::serve().await;
    }
    let bench = Bench::from_env()?;
    let mut report = Report::default();
    println!("# Parley benchmarks ({})", bench.describe());
    if bench.wants("s1") {
        send::run(&bench, &mut report).await?;
    }
    if bench.wants("s5") || bench.wants("s5b") || bench.wants("reads") {
        let data = catchup::run(&bench, &mut report).await?;
        if bench.wants("s5b") || bench.wants("s5") {
            rebuild::run(&bench, &data, &mut report).await?;
        }
        if bench.wants("reads") {
            reads::run(&bench, &data, &mut report).await?;
        }
    }
    if bench.wants("realtime") {
        realtime::run(&bench, &mut report).await?;
    }
    println!();
    report.print();
    Ok(())
}
