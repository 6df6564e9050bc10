//! S2 (send → push latency), S6 (fan-out to one 1,000-member group) and S7 (memory per idle
//! connection) against a release query-svc, each beside a bare tokio-tungstenite broadcast
//! server measured in the same run.
//!
//! - Latency of a Parley frame: its arrival (wall clock, µs) minus the message's `timestamp`,
//!   the command service's acceptance time (ms, taken before the append, so the figure
//!   includes the append and is up to 1 ms pessimistic).
//! - The bare broadcast: a tokio-tungstenite server in this process, fed the same load through
//!   an in-process channel (no HTTP, no log, no database); its frames carry their send time in
//!   µs. It is the floor of "a frame over a local WebSocket to N readers" on this machine.
//! - Clients are tokio-tungstenite connections in this process, one reader task each.

use crate::procs::{Bench, Proc, API_KEY, TENANT};
use crate::report::{Report, Row};
use anyhow::Context as _;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// The token secret of the bench services.
const SECRET: &str = "bench-token-secret-0123456789abcdef";

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Latencies (µs) and counts recorded by every reader while `on` is set.
#[derive(Default)]
struct Sink {
    on: AtomicBool,
    frames: AtomicU64,
    lat_us: Mutex<Vec<u32>>,
}

impl Sink {
    fn record(&self, sent_us: u64) {
        if !self.on.load(Ordering::Relaxed) {
            return;
        }
        self.frames.fetch_add(1, Ordering::Relaxed);
        let lat = now_us().saturating_sub(sent_us);
        if let Ok(mut v) = self.lat_us.lock() {
            v.push(u32::try_from(lat).unwrap_or(u32::MAX));
        }
    }

    /// Starts a window; returns (frames, sorted latencies µs) of it after `secs`.
    async fn window(&self, secs: Duration) -> (u64, Vec<u32>) {
        self.frames.store(0, Ordering::Relaxed);
        if let Ok(mut v) = self.lat_us.lock() {
            v.clear();
        }
        self.on.store(true, Ordering::Relaxed);
        tokio::time::sleep(secs).await;
        self.on.store(false, Ordering::Relaxed);
        let mut lat = self.lat_us.lock().map(|v| v.clone()).unwrap_or_default();
        lat.sort_unstable();
        (self.frames.load(Ordering::Relaxed), lat)
    }
}

fn pct_ms(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

/// `"timestamp":<ms>` of a Parley message frame, in µs.
fn parley_sent_us(text: &str) -> Option<u64> {
    if !text.starts_with("{\"type\":\"message\"") {
        return None;
    }
    let at = text.find("\"timestamp\":")? + 12;
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse::<u64>().ok().map(|ms| ms * 1000)
}

/// What a Parley client sends first: a `sync` with nothing to resume.
const SYNC: &str = r#"{"type":"sync"}"#;

/// The bare frame: `<send µs> <padding>`.
fn bare_sent_us(text: &str) -> Option<u64> {
    text.split(' ').next()?.parse().ok()
}

/// Connects `uids` to `url(uid)`, 64 at a time, each with a reader recording into `sink`;
/// with `hello`, sends it first (Parley clients send `sync`, which starts live delivery at
/// once instead of after the hold window).
async fn connect_all(
    urls: Vec<String>,
    sink: Arc<Sink>,
    parse: fn(&str) -> Option<u64>,
    hello: Option<&'static str>,
    tasks: &mut tokio::task::JoinSet<()>,
) -> anyhow::Result<()> {
    let streams = futures::stream::iter(urls)
        .map(|url| async move {
            tokio_tungstenite::connect_async(url.as_str())
                .await
                .map(|(s, _)| s)
                .with_context(|| format!("connect {url}"))
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    for s in streams {
        let mut s = s?;
        if let Some(hello) = hello {
            futures::SinkExt::send(&mut s, Message::Text(hello.into())).await?;
        }
        let sink = sink.clone();
        tasks.spawn(async move {
            while let Some(Ok(msg)) = s.next().await {
                if let Message::Text(t) = msg {
                    if let Some(sent) = parse(t.as_str()) {
                        sink.record(sent);
                    }
                }
            }
        });
    }
    Ok(())
}

/// A bare broadcast server: clients connect to `/<uid>`; `tx` takes (uids, frame).
type BareTx = tokio::sync::mpsc::UnboundedSender<(Vec<usize>, String)>;

async fn bare_server() -> anyhow::Result<(String, BareTx, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let conns: Arc<Mutex<HashMap<usize, tokio::sync::mpsc::UnboundedSender<String>>>> =
        Arc::default();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Vec<usize>, String)>();
    let accept_conns = conns.clone();
    let task = tokio::spawn(async move {
        let accept = async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let conns = accept_conns.clone();
                tokio::spawn(async move {
                    let mut path = String::new();
                    #[allow(clippy::result_large_err)] // tungstenite's callback signature
                    let cb = |req: &tokio_tungstenite::tungstenite::handshake::server::Request,
                              resp| {
                        path = req.uri().path().trim_start_matches('/').to_owned();
                        Ok(resp)
                    };
                    let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, cb).await else {
                        return;
                    };
                    let Ok(uid) = path.parse::<usize>() else {
                        return;
                    };
                    let (mut sink, _stream) = ws.split();
                    let (otx, mut orx) = tokio::sync::mpsc::unbounded_channel::<String>();
                    if let Ok(mut c) = conns.lock() {
                        c.insert(uid, otx);
                    }
                    while let Some(f) = orx.recv().await {
                        if sink.send(Message::text(f)).await.is_err() {
                            break;
                        }
                    }
                });
            }
        };
        let route = async move {
            while let Some((uids, frame)) = rx.recv().await {
                let c = match conns.lock() {
                    Ok(c) => c,
                    Err(_) => return,
                };
                for u in uids {
                    if let Some(t) = c.get(&u) {
                        let _ = t.send(frame.clone());
                    }
                }
            }
        };
        tokio::join!(accept, route);
    });
    Ok((format!("ws://{addr}"), tx, task))
}

/// The realtime services on a fresh database and stream.
struct Services {
    cmd: Proc,
    query: Proc,
    _projector: Proc,
    http: reqwest::Client,
    tokens: platform::token::UserTokens,
}

impl Services {
    /// Fresh database `bench_<name>`, stream `BENCH_<NAME>` (deleted first) and root.
    async fn start(bench: &Bench, name: &str) -> anyhow::Result<Self> {
        let db = bench.create_db(&format!("bench_{name}")).await?;
        let stream = format!("BENCH_{}", name.to_uppercase());
        let js = async_nats::jetstream::new(async_nats::connect(&bench.nats_url).await?);
        let _ = js.delete_stream(&stream).await;
        let _ = js.delete_key_value(format!("bench_{name}_presence")).await;
        let mut env = bench.service_env(&db, &stream, &format!("bench_{name}"));
        env.push(("PARLEY_TOKEN_SECRET".into(), SECRET.into()));
        env.push(("PARLEY_WS_QUEUE".into(), "4096".into()));
        bench.run_once("projector", &["migrate"], &env).await?;
        let cmd = bench
            .spawn("command-svc", &[], &env, "PARLEY_COMMAND_LISTEN")
            .await?;
        let projector = bench
            .spawn("projector", &[], &env, "PARLEY_PROJECTOR_LISTEN")
            .await?;
        let query = bench
            .spawn("query-svc", &[], &env, "PARLEY_QUERY_LISTEN")
            .await?;
        let tenant = events::TenantId::parse(TENANT)?;
        Ok(Self {
            cmd,
            query,
            _projector: projector,
            http: reqwest::Client::new(),
            tokens: platform::token::UserTokens::new(Some(SECRET), [tenant])?,
        })
    }

    fn ws_url(&self, uid: &str) -> anyhow::Result<String> {
        let tenant = events::TenantId::parse(TENANT)?;
        let web = platform::token::DeviceFlag::try_from(1).map_err(anyhow::Error::msg)?;
        let t = self
            .tokens
            .mint(&tenant, &events::Uid::parse(uid)?, web, 3600)?;
        Ok(format!(
            "{}/v1/ws?token={}",
            self.query.base.replacen("http://", "ws://", 1),
            t.token
        ))
    }

    async fn post(&self, path: &str, body: serde_json::Value) -> anyhow::Result<()> {
        let r = self
            .http
            .post(format!("{}{path}", self.cmd.base))
            .bearer_auth(API_KEY)
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "{path}: {}", r.status());
        Ok(())
    }

    fn send_spawn(&self, from: String, ct: u8, to: String) {
        let http = self.http.clone();
        let url = format!("{}/v1/messages", self.cmd.base);
        tokio::spawn(async move {
            let body = json!({"channel_id": to, "channel_type": ct, "from_uid": from, "payload": "cGluZw=="});
            let _ = http.post(url).bearer_auth(API_KEY).json(&body).send().await;
        });
    }

    fn query_pid(&self) -> Option<u32> {
        self.query.pid()
    }
}

/// VmRSS of `pid`, KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS")
}

/// Runs S7, S2 and S6.
pub async fn run(bench: &Bench, report: &mut Report) -> anyhow::Result<()> {
    let svc = Services::start(bench, "s7").await?;
    s7(&svc, report).await?;
    drop(svc);
    let svc = Services::start(bench, "s2").await?;
    s2_s6(bench, &svc, report).await
}

/// S7: 10,000 idle connections, each user in 10 groups of 100.
async fn s7(svc: &Services, report: &mut Report) -> anyhow::Result<()> {
    const USERS: usize = 10_000;
    futures::stream::iter(0..1000usize)
        .map(|g| {
            let members: Vec<String> = (0..100)
                .map(|m| format!("v{}", (g * 100 + m) % USERS))
                .collect();
            svc.post(
                "/v1/channels",
                json!({"channel_id": format!("s7g{g}"), "members": members}),
            )
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<()>>>()?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pid = svc.query_pid().context("query-svc pid")?;
    let before = rss_kib(pid)?;
    let sink = Arc::new(Sink::default());
    let mut readers = tokio::task::JoinSet::new();
    let urls = (0..USERS)
        .map(|i| svc.ws_url(&format!("v{i}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    connect_all(urls, sink, parley_sent_us, Some(SYNC), &mut readers).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_kib(pid)?;
    let per_conn = (after.saturating_sub(before)) as f64 * 1024.0 / USERS as f64;
    readers.abort_all();
    report.add(Row {
        id: "S7".into(),
        what: "RSS per idle connection (10,000 users, each in 10 groups)".into(),
        parley: format!(
            "{:.1} KB ({} → {} MiB)",
            per_conn / 1000.0,
            before / 1024,
            after / 1024
        ),
        baseline: "—".into(),
        ratio: "—".into(),
        target: "≤ 16 KB".into(),
        met: per_conn <= 16_000.0,
    });
    Ok(())
}

/// S2 (1,000 users; 1,000 personal sends/s plus 10 groups × 100 at 100 sends/s) and S6 (one
/// group of all 1,000 at rising rates), each beside the bare broadcast.
async fn s2_s6(bench: &Bench, svc: &Services, report: &mut Report) -> anyhow::Result<()> {
    const USERS: usize = 1000;
    for g in 0..10 {
        let members: Vec<String> = (g * 100..g * 100 + 100).map(|i| format!("u{i}")).collect();
        svc.post(
            "/v1/channels",
            json!({"channel_id": format!("s2g{g}"), "members": members}),
        )
        .await?;
    }
    let all: Vec<String> = (0..USERS).map(|i| format!("u{i}")).collect();
    svc.post("/v1/channels", json!({"channel_id": "s6", "members": all}))
        .await?;

    let parley = Arc::new(Sink::default());
    let mut readers = tokio::task::JoinSet::new();
    let urls = (0..USERS)
        .map(|i| svc.ws_url(&format!("u{i}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    connect_all(
        urls,
        parley.clone(),
        parley_sent_us,
        Some(SYNC),
        &mut readers,
    )
    .await?;
    let (bare_url, bare_tx, bare_task) = bare_server().await?;
    let bare = Arc::new(Sink::default());
    let bare_urls = (0..USERS).map(|i| format!("{bare_url}/{i}")).collect();
    connect_all(bare_urls, bare.clone(), bare_sent_us, None, &mut readers).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // S2 load: every 10 ms, 10 personal sends and 1 group send.
    let measure = bench.measure;
    let s2_load = |parley_side: bool| {
        let bare_tx = bare_tx.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            let mut n = 0usize;
            loop {
                tick.tick().await;
                for _ in 0..10 {
                    let (a, b) = (n % USERS, (n * 7 + 1) % USERS);
                    n += 1;
                    if parley_side {
                        svc.send_spawn(format!("u{a}"), 1, format!("u{b}"));
                    } else {
                        let _ =
                            bare_tx.send((vec![a, b], format!("{} {}", now_us(), "x".repeat(200))));
                    }
                }
                let g = n % 10;
                if parley_side {
                    svc.send_spawn(format!("u{}", g * 100), 2, format!("s2g{g}"));
                } else {
                    let _ = bare_tx.send((
                        (g * 100..g * 100 + 100).collect(),
                        format!("{} {}", now_us(), "x".repeat(200)),
                    ));
                }
            }
        }
    };
    let s2 = |sink: Arc<Sink>, parley_side: bool| {
        let load = s2_load(parley_side);
        async move {
            let load = tokio::time::timeout(measure + Duration::from_secs(3), load);
            let ((), w) = tokio::join!(
                async {
                    let _ = load.await;
                },
                async {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    sink.window(measure).await
                }
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
            w
        }
    };
    let (bare_n, bare_lat) = s2(bare.clone(), false).await;
    let (n, lat) = s2(parley.clone(), true).await;
    let (p50, p99, bp99) = (
        pct_ms(&lat, 0.5),
        pct_ms(&lat, 0.99),
        pct_ms(&bare_lat, 0.99),
    );
    report.add(Row {
        id: "S2".into(),
        what: "send → push, 1,000 users: 1,000 personal/s + 10 groups × 100 at 100/s".into(),
        parley: format!(
            "p50 {p50:.2} ms, p99 {p99:.2} ms ({:.0} frames/s)",
            n as f64 / measure.as_secs_f64()
        ),
        baseline: format!(
            "bare tokio-tungstenite broadcast p50 {:.2} ms, p99 {bp99:.2} ms ({:.0} frames/s)",
            pct_ms(&bare_lat, 0.5),
            bare_n as f64 / measure.as_secs_f64()
        ),
        ratio: format!("p99 {:.1}×", p99 / bp99),
        target: "p50 ≤ 5 ms, p99 ≤ 2× bare".into(),
        met: p50 <= 5.0 && p99 <= 2.0 * bp99,
    });

    // S6: one group of 1,000, rising rates; the best rate whose p99 stays ≤ 50 ms.
    let step = (measure / 2).max(Duration::from_secs(3));
    let mut best = (0.0f64, 0.0f64, 0u64);
    let mut best_bare = 0.0f64;
    for rate in [25u64, 50, 100, 200, 400, 800] {
        let period = Duration::from_micros(1_000_000 / rate);
        let run = |sink: Arc<Sink>, parley_side: bool| {
            let bare_tx = bare_tx.clone();
            async move {
                let load = async move {
                    let mut tick = tokio::time::interval(period);
                    loop {
                        tick.tick().await;
                        if parley_side {
                            svc.send_spawn("u0".into(), 2, "s6".into());
                        } else {
                            let _ = bare_tx.send((
                                (0..USERS).collect(),
                                format!("{} {}", now_us(), "x".repeat(200)),
                            ));
                        }
                    }
                };
                let load = tokio::time::timeout(step + Duration::from_secs(2), load);
                let ((), w) = tokio::join!(
                    async {
                        let _ = load.await;
                    },
                    async {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        sink.window(step).await
                    }
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
                w
            }
        };
        let (bn, blat) = run(bare.clone(), false).await;
        let (n, lat) = run(parley.clone(), true).await;
        let deliveries = n as f64 / step.as_secs_f64();
        let p99 = pct_ms(&lat, 0.99);
        let bare_rate = bn as f64 / step.as_secs_f64();
        println!(
            "S6 step {rate} msg/s: Parley {deliveries:.0} deliveries/s p99 {p99:.1} ms | bare {bare_rate:.0}/s p99 {:.1} ms",
            pct_ms(&blat, 0.99)
        );
        if pct_ms(&blat, 0.99) <= 50.0 {
            best_bare = best_bare.max(bare_rate);
        }
        if p99 > 50.0 {
            break;
        }
        best = (deliveries, p99, rate);
    }
    report.add(Row {
        id: "S6".into(),
        what: "fan-out to one group of 1,000 connected members, highest rate with p99 ≤ 50 ms"
            .into(),
        parley: format!(
            "{:.0} deliveries/s at {} msg/s (p99 {:.1} ms)",
            best.0, best.2, best.1
        ),
        baseline: format!("bare broadcast {best_bare:.0} deliveries/s at p99 ≤ 50 ms"),
        ratio: format!("{:.0}%", 100.0 * best.0 / best_bare.max(1.0)),
        target: "≥ 200,000 deliveries/s".into(),
        met: best.0 >= 200_000.0,
    });
    readers.abort_all();
    bare_task.abort();
    Ok(())
}
