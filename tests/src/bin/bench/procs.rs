//! The bench environment: where NATS and Postgres are, the release binaries beside this one,
//! started as child processes with their own env, and fresh databases.

use anyhow::{bail, Context};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// The API key and tenant every bench service is configured with.
pub const API_KEY: &str = "bench-key-0123456789";
/// The tenant behind [`API_KEY`].
pub const TENANT: &str = "bench";

/// Where the bench runs.
pub struct Bench {
    /// `PARLEY_NATS_URL`.
    pub nats_url: String,
    /// `PARLEY_DATABASE_URL` of the admin database (new databases are created beside it).
    admin_url: String,
    /// Directory of this executable, which holds the other release binaries.
    bin_dir: PathBuf,
    /// Measured part of each load run.
    pub measure: Duration,
    /// Unmeasured start of each load run.
    pub warmup: Duration,
    /// Events in the S5 log.
    pub events: u64,
    /// Messages in the S3 deep channel.
    pub depth: u64,
    /// `BENCH_ONLY`: the parts to run (empty = all).
    only: Vec<String>,
}

/// The rate limits of the bench's services: on, and far above any load the bench makes.
pub const RATE_LIMITS_HIGH: [(&str, &str); 3] = [
    ("PARLEY_RATE_LIMIT_TENANT_PER_S", "100000000"),
    ("PARLEY_RATE_LIMIT_USER_SENDS_PER_S", "100000000"),
    ("PARLEY_RATE_LIMIT_USER_READS_PER_S", "100000000"),
];

/// The rate limits off.
pub const RATE_LIMITS_OFF: [(&str, &str); 3] = [
    ("PARLEY_RATE_LIMIT_TENANT_PER_S", "0"),
    ("PARLEY_RATE_LIMIT_USER_SENDS_PER_S", "0"),
    ("PARLEY_RATE_LIMIT_USER_READS_PER_S", "0"),
];

impl Bench {
    /// Reads the env (see the crate docs).
    ///
    /// # Errors
    /// A required variable is missing or a number does not parse.
    pub fn from_env() -> anyhow::Result<Self> {
        let num = |name: &str, default: u64| -> anyhow::Result<u64> {
            match std::env::var(name) {
                Ok(v) => v.parse().with_context(|| format!("{name}={v}")),
                Err(_) => Ok(default),
            }
        };
        let exe = std::env::current_exe()?;
        Ok(Self {
            nats_url: std::env::var("PARLEY_NATS_URL")
                .context("PARLEY_NATS_URL (run through `make bench`)")?,
            admin_url: std::env::var("PARLEY_DATABASE_URL")
                .context("PARLEY_DATABASE_URL (run through `make bench`)")?,
            bin_dir: exe.parent().context("executable has no directory")?.into(),
            measure: Duration::from_secs(num("BENCH_SECS", 10)?),
            warmup: Duration::from_secs(num("BENCH_WARMUP_SECS", 3)?),
            events: num("BENCH_EVENTS", 1_000_000)?,
            depth: num("BENCH_DEPTH", 1_000_000)?,
            only: std::env::var("BENCH_ONLY")
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().to_lowercase())
                .filter(|s| !s.is_empty())
                .collect(),
        })
    }

    /// Whether part `name` (`s1`, `s5`, `reads`) is to run.
    pub fn wants(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == name)
    }

    /// One line on the run's settings.
    pub fn describe(&self) -> String {
        format!(
            "{} s measured after {} s warm-up per run; S5 log {} events; S3 depth {}",
            self.measure.as_secs(),
            self.warmup.as_secs(),
            self.events,
            self.depth
        )
    }

    /// Creates database `name` (dropping an old one) and returns its URL.
    ///
    /// # Errors
    /// Postgres refuses.
    pub async fn create_db(&self, name: &str) -> anyhow::Result<String> {
        let (client, conn) =
            tokio_postgres::connect(&self.admin_url, tokio_postgres::NoTls).await?;
        let conn = tokio::spawn(conn);
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .await?;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await?;
        drop(client);
        let _ = conn.await;
        match self.admin_url.rsplit_once('/') {
            Some((base, _)) => Ok(format!("{base}/{name}")),
            None => bail!("PARLEY_DATABASE_URL has no database name"),
        }
    }

    /// The env of a service on `database_url`, stream `stream` and subject root `root`.
    pub fn service_env(
        &self,
        database_url: &str,
        stream: &str,
        root: &str,
    ) -> Vec<(String, String)> {
        [
            ("PARLEY_NATS_URL", self.nats_url.as_str()),
            ("PARLEY_DATABASE_URL", database_url),
            ("PARLEY_STREAM", stream),
            ("PARLEY_SUBJECT_ROOT", root),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .chain([("PARLEY_API_KEYS".to_owned(), format!("{API_KEY}={TENANT}"))])
        // Limits on but never reached (S1 also runs with them off: `send.rs`).
        .chain(
            RATE_LIMITS_HIGH
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
        .collect()
    }

    /// Runs the sibling binary `bin` with `args` to completion.
    ///
    /// # Errors
    /// It cannot start or exits non-zero.
    pub async fn run_once(
        &self,
        bin: &str,
        args: &[&str],
        env: &[(String, String)],
    ) -> anyhow::Result<()> {
        let status = Command::new(self.bin_dir.join(bin))
            .args(args)
            .envs(env.iter().cloned())
            .status()
            .await
            .with_context(|| format!("starting {bin}"))?;
        if !status.success() {
            bail!("{bin} {args:?} exited with {status}");
        }
        Ok(())
    }

    /// Starts the sibling binary `bin` with `args`, `env` and a free `listen_var` address, and
    /// waits until its `/health` answers.
    ///
    /// # Errors
    /// It cannot start or is not healthy within 30 s.
    pub async fn spawn(
        &self,
        bin: &str,
        args: &[&str],
        env: &[(String, String)],
        listen_var: &str,
    ) -> anyhow::Result<Proc> {
        self.spawn_path(&self.bin_dir.join(bin), args, env, listen_var)
            .await
    }

    /// [`Bench::spawn`] of the binary at `path` (e.g. another build, for an A/B run).
    ///
    /// # Errors
    /// It cannot start or is not healthy within 30 s.
    pub async fn spawn_path(
        &self,
        path: &std::path::Path,
        args: &[&str],
        env: &[(String, String)],
        listen_var: &str,
    ) -> anyhow::Result<Proc> {
        let bin = path.display().to_string();
        let addr = free_addr()?;
        let child = Command::new(path)
            .args(args)
            .envs(env.iter().cloned())
            .env(listen_var, &addr)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {bin}"))?;
        let mut proc = Proc {
            name: bin.clone(),
            base: format!("http://{addr}"),
            child,
        };
        let health = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = health.get(format!("{}/health", proc.base)).send().await {
                if r.status().is_success() {
                    return Ok(proc);
                }
            }
            if let Some(status) = proc.child.try_wait()? {
                bail!("{bin} exited at start with {status}");
            }
            if Instant::now() > deadline {
                bail!("{bin} not healthy after 30 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A running child service; killed if dropped without [`Proc::stop`].
pub struct Proc {
    name: String,
    /// `http://host:port`.
    pub base: String,
    child: Child,
}

impl Proc {
    /// The child's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// SIGTERM, then waits for the graceful exit (SIGKILL after 15 s).
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        match tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                eprintln!("{} ignored SIGTERM; killing", self.name);
                let _ = self.child.kill().await;
            }
        }
    }
}

/// A loopback address with a port that was free a moment ago.
fn free_addr() -> anyhow::Result<String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.to_string())
}
