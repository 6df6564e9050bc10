//! Closed-loop load: N workers each issue one operation at a time, back to back, for warm-up +
//! measure; only operations started inside the measured window count.

use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One operation for worker `w`; `true` when it succeeded.
pub type Op = Arc<dyn Fn(usize) -> BoxFuture<'static, bool> + Send + Sync>;

/// What a load run measured.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Successful operations started in the measured window.
    pub ok: u64,
    /// Failed operations started in the measured window.
    pub errors: u64,
    /// Successful operations over the whole run, warm-up included.
    pub ok_total: u64,
    /// Length of the measured window, s.
    pub secs: f64,
    /// Latency of each measured operation, µs, sorted.
    lat_us: Vec<u32>,
}

impl Stats {
    /// Successful operations per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.secs
    }

    /// The `q` quantile (0..=1) of latency, ms.
    pub fn pct_ms(&self, q: f64) -> f64 {
        if self.lat_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.lat_us.len() as f64 - 1.0) * q).round() as usize;
        f64::from(self.lat_us[i]) / 1000.0
    }

    /// `rate, p50, p99` as one line.
    pub fn line(&self) -> String {
        format!(
            "{:.0}/s p50 {:.2} ms p99 {:.2} ms ({} errors)",
            self.rate(),
            self.pct_ms(0.50),
            self.pct_ms(0.99),
            self.errors
        )
    }
}

/// Runs `op` on `workers` concurrent workers for `warmup + measure`.
pub async fn drive(workers: usize, warmup: Duration, measure: Duration, op: Op) -> Stats {
    let start = Instant::now();
    let warm_end = start + warmup;
    let end = warm_end + measure;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..workers {
        let op = op.clone();
        tasks.spawn(async move {
            let (mut ok, mut errors, mut ok_total, mut lat) = (0u64, 0u64, 0u64, Vec::new());
            loop {
                let t = Instant::now();
                if t >= end {
                    break;
                }
                let success = op(w).await;
                ok_total += u64::from(success);
                if t >= warm_end {
                    if success {
                        ok += 1;
                        lat.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
                    } else {
                        errors += 1;
                    }
                }
            }
            (ok, errors, ok_total, lat)
        });
    }
    let mut stats = Stats {
        ok: 0,
        errors: 0,
        ok_total: 0,
        secs: measure.as_secs_f64(),
        lat_us: Vec::new(),
    };
    while let Some(done) = tasks.join_next().await {
        let (ok, errors, ok_total, lat) = done.expect("load worker panicked");
        stats.ok += ok;
        stats.errors += errors;
        stats.ok_total += ok_total;
        stats.lat_us.extend(lat);
    }
    stats.lat_us.sort_unstable();
    stats
}

/// One HTTP/1.1 client per worker, each holding one keep-alive connection.
pub fn http_clients(workers: usize) -> Vec<reqwest::Client> {
    (0..workers)
        .map(|_| {
            reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .tcp_nodelay(true)
                .build()
                .expect("reqwest client")
        })
        .collect()
}

impl Stats {
    /// Both runs as one: counts and windows added, latencies pooled.
    pub fn merge(mut self, other: Stats) -> Stats {
        self.ok += other.ok;
        self.errors += other.errors;
        self.ok_total += other.ok_total;
        self.secs += other.secs;
        self.lat_us.extend(other.lat_us);
        self.lat_us.sort_unstable();
        self
    }
}
