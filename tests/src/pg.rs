//! [`PgCluster`]: a PostgreSQL cluster of a test's own, on a free loopback port, that the test
//! may crash (`kill -9` of every server process) and start again.
//!
//! The shared cluster `make test` starts serves every other test, so a test that crashes
//! Postgres gets one to itself. It runs with the settings of `deploy/infra.sh --test`
//! (`fsync`, `synchronous_commit` and `full_page_writes` off) plus a WAL writer that writes
//! only every 10 s, so a crash loses the asynchronous commits of up to the last 10 s: exactly
//! what a lost tail of acknowledged commits looks like to the services (the Jepsen-style fault
//! the projector must survive). Binaries come from `PG_BIN` (default
//! `/usr/lib/postgresql/15/bin`); as root every command runs as the `postgres` user.

use anyhow::Context as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A private Postgres cluster; stopped (immediately) when dropped.
pub struct PgCluster {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
}

fn as_postgres(program: &Path) -> Command {
    // Root? (`id -u`, to need no libc binding.)
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false);
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(mut cmd: Command, what: &str) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

impl PgCluster {
    /// Creates (`initdb`) and starts a cluster in a new temporary directory, with database
    /// `parley`.
    ///
    /// # Errors
    /// The binaries are missing or a step fails.
    pub async fn start() -> anyhow::Result<Self> {
        let bin = PathBuf::from(
            std::env::var("PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into()),
        );
        let dir = std::env::temp_dir().join(format!("parley-pg-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(dir.join("data"))?;
        // The postgres user owns the cluster (Postgres refuses to run as root).
        let _ = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status();
        let mut initdb = as_postgres(&bin.join("initdb"));
        initdb.arg("-D").arg(dir.join("data")).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
        ]);
        run(initdb, "initdb")?;
        let cluster = Self {
            dir,
            port: crate::free_port(),
            bin,
        };
        cluster.up()?;
        let admin = cluster.url("postgres");
        let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await?;
        let conn = tokio::spawn(conn);
        client.batch_execute("CREATE DATABASE parley").await?;
        drop(client);
        let _ = conn.await;
        Ok(cluster)
    }

    /// `postgres://postgres@127.0.0.1:<port>/<db>`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    fn up(&self) -> anyhow::Result<()> {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories={} \
             -c max_connections=200 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c wal_writer_delay=10000ms \
             -c wal_writer_flush_after=0 -c wal_buffers=64MB",
            self.port,
            self.dir.display()
        );
        let mut start = as_postgres(&self.bin.join("pg_ctl"));
        start
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("pg.log"))
            .args(["-w", "-t", "60", "-o", &options, "start"]);
        run(start, "pg_ctl start")
    }

    /// The postmaster's pid, from `postmaster.pid`.
    fn postmaster(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.dir.join("data/postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// Crashes the cluster: `kill -9` of the postmaster and every one of its children at once,
    /// so nothing is flushed; waits until all of them are gone.
    ///
    /// # Errors
    /// The cluster is not running.
    pub async fn kill9(&self) -> anyhow::Result<()> {
        let pm = self.postmaster().context("postmaster.pid")?;
        let children = String::from_utf8_lossy(
            &Command::new("pgrep")
                .args(["-P", &pm.to_string()])
                .output()?
                .stdout,
        )
        .split_whitespace()
        .map(str::to_owned)
        .collect::<Vec<_>>();
        let mut kill = Command::new("kill");
        kill.arg("-9").arg(pm.to_string()).args(&children);
        let _ = kill.status();
        for _ in 0..200 {
            let alive = std::iter::once(pm.to_string())
                .chain(children.iter().cloned())
                .any(|p| Path::new(&format!("/proc/{p}")).exists());
            if !alive {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        anyhow::bail!("postgres processes survived kill -9")
    }

    /// Starts the cluster again after [`PgCluster::kill9`] (crash recovery replays the WAL
    /// that reached the OS; what did not is lost).
    ///
    /// # Errors
    /// `pg_ctl start` fails.
    pub fn restart(&self) -> anyhow::Result<()> {
        self.up()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let mut stop = as_postgres(&self.bin.join("pg_ctl"));
        stop.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"]);
        let _ = stop.output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
