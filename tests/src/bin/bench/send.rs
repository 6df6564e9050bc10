//! S1: `POST /v1/messages` with 256-byte payloads, 64 connections over 1,000 personal
//! channels, against the bare publish handler driven the same way. Two alternating rounds
//! each (baseline, Parley, baseline, Parley) so drift on the shared machine hits both; then
//! one more Parley run with the projector running beside it. Finally the projector's history
//! is checked: every accepted send is there once, and every channel is gap-free.

use crate::catchup::wait_caught_up;
use crate::driver::{drive, http_clients, Op, Stats};
use crate::procs::{Bench, API_KEY, RATE_LIMITS_OFF};
use crate::report::{Report, Row};
use anyhow::ensure;
use base64::Engine;
use rand::{Rng, RngCore};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Concurrent connections.
const CONNECTIONS: usize = 64;
/// Personal channels the sends spread over.
const CHANNELS: usize = 1_000;
/// Decoded payload size, bytes.
const PAYLOAD_BYTES: usize = 256;
/// Alternating rounds per system.
const ROUNDS: usize = 2;
/// Alternating rounds of S1L (limits on vs off): the difference sought is a few percent, the
/// machine's drift between rounds up to ±25%, so the ratio is the median of the rounds' own
/// ratios (each round runs both, back to back), not of pooled rates.
const LIMIT_ROUNDS: usize = 6;

/// Runs S1 and adds its rows.
///
/// # Errors
/// A service fails to start, or the history check fails.
pub async fn run(bench: &Bench, report: &mut Report) -> anyhow::Result<()> {
    println!("S1: send path vs bare JetStream publish handler");
    let db = bench.create_db("bench_s1").await?;
    let env = bench.service_env(&db, "BENCH_S1", "bench_s1");
    bench.run_once("projector", &["migrate"], &env).await?;
    let raw_env = bench.service_env(&db, "BENCH_RAW", "bench_raw");
    let baseline = bench
        .spawn(
            "bench",
            &["baseline-server"],
            &raw_env,
            "BENCH_BASELINE_LISTEN",
        )
        .await?;
    let command = bench
        .spawn("command-svc", &[], &env, "PARLEY_COMMAND_LISTEN")
        .await?;

    let bodies = Arc::new(Bodies::new());
    let (mut base_runs, mut cmd_runs) = (Vec::new(), Vec::new());
    let mut accepted = 0u64;
    for round in 1..=ROUNDS {
        let b = drive(
            CONNECTIONS,
            bench.warmup,
            bench.measure,
            send_op(&baseline.base, &bodies),
        )
        .await;
        println!("  round {round} baseline: {}", b.line());
        let c = drive(
            CONNECTIONS,
            bench.warmup,
            bench.measure,
            send_op(&command.base, &bodies),
        )
        .await;
        println!("  round {round} parley:   {}", c.line());
        accepted += c.ok_total;
        base_runs.push(b);
        cmd_runs.push(c);
    }
    let pooled = |runs: Vec<Stats>| runs.into_iter().reduce(Stats::merge).expect("rounds");
    let (b, c) = (pooled(base_runs), pooled(cmd_runs));
    let ratio = c.rate() / b.rate();
    report.add(Row {
        id: "S1".into(),
        what: format!("send, {CONNECTIONS} conns, {CHANNELS} channels, {PAYLOAD_BYTES}-B payloads"),
        parley: stats_cell(&c),
        baseline: format!("bare publish handler: {}", stats_cell(&b)),
        ratio: format!("{:.0}% of rate", ratio * 100.0),
        target: "≥ 50% of rate, p99 ≤ 10 ms".into(),
        met: ratio >= 0.5 && c.pct_ms(0.99) <= 10.0 && c.errors == 0,
    });

    // S1L: the limiter on the hot path. This build with its limits on but far from reached
    // (the services' env everywhere in the bench) against the same build with them off,
    // alternating. Each of the two is a fresh instance writing a fresh stream of its own,
    // started together: two instances alternating on the same channels would each find its
    // cached states stale after the other's round (and, with no projector running yet, reload
    // them from the log), and an instance on S1's stream would carry that stream's size and
    // warm cache, which the first runs showed to weigh more than the limiter itself.
    let on_env = bench.service_env(&db, "BENCH_S1_ON", "bench_s1_on");
    let limited = bench
        .spawn("command-svc", &[], &on_env, "PARLEY_COMMAND_LISTEN")
        .await?;
    let off_env: Vec<(String, String)> = bench
        .service_env(&db, "BENCH_S1_OFF", "bench_s1_off")
        .into_iter()
        .filter(|(k, _)| !k.starts_with("PARLEY_RATE_LIMIT_"))
        .chain(
            RATE_LIMITS_OFF
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
        .collect();
    let unlimited = bench
        .spawn("command-svc", &[], &off_env, "PARLEY_COMMAND_LISTEN")
        .await?;
    let (mut on_runs, mut off_runs) = (Vec::new(), Vec::new());
    for round in 1..=LIMIT_ROUNDS {
        // (label, service, limits on); the order alternates per round so that drift on the
        // machine falls on both.
        let mut order = [
            ("limits off", &unlimited.base, false),
            ("limits on", &limited.base, true),
        ];
        if round % 2 == 0 {
            order.reverse();
        }
        for (label, base, on) in order {
            let runs = if on { &mut on_runs } else { &mut off_runs };
            let r = drive(
                CONNECTIONS,
                bench.warmup,
                bench.measure,
                send_op(base, &bodies),
            )
            .await;
            println!("  round {round} {label}: {}", r.line());
            runs.push(r);
        }
    }
    unlimited.stop().await;
    limited.stop().await;
    let mut ratios: Vec<f64> = on_runs
        .iter()
        .zip(&off_runs)
        .map(|(on, off)| on.rate() / off.rate())
        .collect();
    ratios.sort_by(f64::total_cmp);
    println!(
        "  S1L per-round ratios (sorted): {}",
        ratios
            .iter()
            .map(|r| format!("{:.0}%", r * 100.0))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let l_ratio = (ratios[(ratios.len() - 1) / 2] + ratios[ratios.len() / 2]) / 2.0;
    let (on, off) = (pooled(on_runs), pooled(off_runs));
    report.add(Row {
        id: "S1L".into(),
        what: "S1 with rate limits on (not reached) vs off".into(),
        parley: format!("limits on: {}", stats_cell(&on)),
        baseline: format!("limits off: {}", stats_cell(&off)),
        ratio: format!(
            "{:.0}% of rate (median of {LIMIT_ROUNDS} rounds)",
            l_ratio * 100.0
        ),
        target: "≥ 95% of rate".into(),
        met: l_ratio >= 0.95 && on.errors == 0,
    });

    println!("  projector catching up on {accepted} sends before the run with it alongside…");
    let projector = bench
        .spawn("projector", &[], &env, "PARLEY_PROJECTOR_LISTEN")
        .await?;
    wait_caught_up(&db, &bench.nats_url, "BENCH_S1").await?;
    let p = drive(
        CONNECTIONS,
        bench.warmup,
        bench.measure,
        send_op(&command.base, &bodies),
    )
    .await;
    println!("  parley with projector running: {}", p.line());
    accepted += p.ok_total;
    let p_ratio = p.rate() / b.rate();
    report.add(Row {
        id: "S1p".into(),
        what: "S1 with the projector running on the same 2 cores".into(),
        parley: stats_cell(&p),
        baseline: "bare publish handler (above)".into(),
        ratio: format!("{:.0}% of rate", p_ratio * 100.0),
        target: "(informative)".into(),
        met: p.errors == 0,
    });
    wait_caught_up(&db, &bench.nats_url, "BENCH_S1").await?;
    verify_history(&db, accepted).await?;
    println!("  verified: {accepted} accepted sends, each once in history, every channel gap-free");
    projector.stop().await;
    command.stop().await;
    baseline.stop().await;
    Ok(())
}

/// `rate, p50/p99` for a table cell.
pub fn stats_cell(s: &Stats) -> String {
    format!(
        "{:.0}/s, p50 {:.2} ms, p99 {:.2} ms",
        s.rate(),
        s.pct_ms(0.50),
        s.pct_ms(0.99)
    )
}

/// Pre-encoded request parts, so the driver spends no time on base64 or randomness.
struct Bodies {
    payloads: Vec<String>,
    next_no: AtomicU64,
}

impl Bodies {
    fn new() -> Self {
        let mut rng = rand::thread_rng();
        let payloads = (0..CHANNELS)
            .map(|_| {
                let mut buf = vec![0u8; PAYLOAD_BYTES];
                rng.fill_bytes(&mut buf);
                base64::engine::general_purpose::STANDARD.encode(buf)
            })
            .collect();
        Self {
            payloads,
            next_no: AtomicU64::new(0),
        }
    }

    /// A send on a random channel from a random side, with a fresh `client_msg_no`.
    fn body(&self) -> String {
        let mut rng = rand::thread_rng();
        let c = rng.gen_range(0..CHANNELS);
        let (from, to) = if rng.gen_bool(0.5) {
            (format!("s1-a{c}"), format!("s1-b{c}"))
        } else {
            (format!("s1-b{c}"), format!("s1-a{c}"))
        };
        let no = self.next_no.fetch_add(1, Ordering::Relaxed);
        format!(
            r#"{{"channel_id":"{to}","channel_type":1,"from_uid":"{from}","payload":"{}","client_msg_no":"b{no}"}}"#,
            self.payloads[c]
        )
    }
}

/// `POST {base}/v1/messages` with a fresh body, one client (connection) per worker.
fn send_op(base: &str, bodies: &Arc<Bodies>) -> Op {
    let clients = Arc::new(http_clients(CONNECTIONS));
    let url = format!("{base}/v1/messages");
    let bodies = bodies.clone();
    Arc::new(move |w| {
        let req = clients[w]
            .post(&url)
            .bearer_auth(API_KEY)
            .header("content-type", "application/json")
            .body(bodies.body());
        Box::pin(async move {
            match req.send().await {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            }
        })
    })
}

/// Every accepted send is in history once, and each channel's seqs are exactly 1..=n.
async fn verify_history(db: &str, accepted: u64) -> anyhow::Result<()> {
    let (client, conn) = tokio_postgres::connect(db, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let row = client
        .query_one(
            "SELECT count(*), count(DISTINCT (channel_key, message_seq)), \
             (SELECT count(*) FROM (SELECT channel_key FROM messages GROUP BY channel_key \
               HAVING count(*) <> max(message_seq) OR min(message_seq) <> 1) gaps) \
             FROM messages",
            &[],
        )
        .await?;
    let (n, distinct, gappy): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    ensure!(
        n as u64 == accepted,
        "history holds {n} messages, {accepted} sends were accepted"
    );
    ensure!(n == distinct, "duplicate (channel, message_seq) in history");
    ensure!(gappy == 0, "{gappy} channels have gaps");
    Ok(())
}
