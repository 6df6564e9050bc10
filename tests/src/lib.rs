//! # parley-tests — harness for integration and end-to-end tests, the chitchat importer and
//! the benchmarks
//!
//! [`TestEnv`] runs the three services in-process against the real NATS and Postgres that
//! `make test` starts (`PARLEY_NATS_URL`, `PARLEY_DATABASE_URL`). Each environment gets a
//! fresh database (`CREATE DATABASE`), its own stream and subject root, and two tenants, so
//! tests run in parallel without seeing each other. Nothing is mocked.

use anyhow::Context as _;
use rand::Rng;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// API key of tenant `acme` in every test environment.
pub const KEY_ACME: &str = "test-key-acme-0123456789";
/// API key of tenant `globex`.
pub const KEY_GLOBEX: &str = "test-key-globex-0123456789";
/// `PARLEY_MASTER_KEY` (the admin API's) of every test environment's command service.
pub const MASTER_KEY: &str = "test-master-key-0123456789abcdef0123";
/// `PARLEY_TOKEN_SECRET` of every test environment.
pub const TOKEN_SECRET: &str = "test-token-secret-0123456789abcdef";

pub mod nats;
pub mod pg;
pub mod ws;

/// A running service (or projector) and its stop switch.
pub struct Running {
    /// Bound address (unused for the projector).
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Running {
    /// Base URL, `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Graceful stop; waits for the task.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), t).await;
        }
    }

    /// Graceful stop; whether the service's task finished within `deadline`.
    pub async fn stop_within(mut self, deadline: Duration) -> bool {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.task.take() {
            Some(t) => tokio::time::timeout(deadline, t).await.is_ok(),
            None => true,
        }
    }

    /// Hard stop: aborts the task where it is (a crash, as far as the process state goes).
    pub fn kill(mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// Binds a free port, starts `serve(acceptor, stop)` on it and waits until `/health` answers.
async fn spawn_http<F, Fut>(serve: F) -> anyhow::Result<Running>
where
    F: FnOnce(poem::listener::TcpAcceptor, futures::future::BoxFuture<'static, ()>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let (acceptor, addr) = platform::http::bind("127.0.0.1:0").await?;
    let (tx, rx) = oneshot::channel::<()>();
    let stop = Box::pin(async move {
        let _ = rx.await;
    });
    let mut r = Running {
        addr,
        stop: Some(tx),
        task: Some(tokio::spawn(serve(acceptor, stop))),
    };
    r.wait_healthy().await?;
    Ok(r)
}

/// Settings of one isolated environment.
#[derive(Clone)]
pub struct TestEnv {
    /// NATS URL.
    pub nats_url: String,
    /// URL of this environment's own database.
    pub database_url: String,
    /// Stream name.
    pub stream: String,
    /// Subject root.
    pub subject_root: String,
}

fn random_suffix() -> String {
    let mut rng = rand::thread_rng();
    (0..10)
        .map(|_| rng.sample(rand::distributions::Alphanumeric) as char)
        .collect::<String>()
        .to_lowercase()
}

impl TestEnv {
    /// Creates a fresh, migrated database, stream name and subject root.
    ///
    /// # Errors
    /// The env vars are missing or Postgres is unreachable.
    pub async fn new() -> anyhow::Result<Self> {
        let admin = std::env::var("PARLEY_DATABASE_URL")
            .context("PARLEY_DATABASE_URL (run through `make test`)")?;
        Self::on_database_server(&admin).await
    }

    /// As [`TestEnv::new`], with the fresh database on the server of `admin` (a URL whose
    /// database may be any existing one), e.g. a [`pg::PgCluster`] of the test's own.
    ///
    /// # Errors
    /// `PARLEY_NATS_URL` is missing or Postgres is unreachable.
    pub async fn on_database_server(admin: &str) -> anyhow::Result<Self> {
        let env = Self::unmigrated_on(admin).await?;
        // What `projector migrate` does before a deployment starts its services.
        readmodel::migrate::run(&env.database_url).await?;
        Ok(env)
    }

    /// As [`TestEnv::new`], with the fresh database left empty: no migration has run.
    ///
    /// # Errors
    /// As [`TestEnv::new`].
    pub async fn unmigrated() -> anyhow::Result<Self> {
        let admin = std::env::var("PARLEY_DATABASE_URL")
            .context("PARLEY_DATABASE_URL (run through `make test`)")?;
        Self::unmigrated_on(&admin).await
    }

    async fn unmigrated_on(admin: &str) -> anyhow::Result<Self> {
        let nats_url = std::env::var("PARLEY_NATS_URL")
            .context("PARLEY_NATS_URL (run through `make test`)")?;
        let suffix = random_suffix();
        let db = format!("t_{suffix}");
        let (client, conn) = tokio_postgres::connect(admin, tokio_postgres::NoTls).await?;
        let conn = tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await?;
        drop(client);
        let _ = conn.await;
        let database_url = match admin.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{db}"),
            None => anyhow::bail!("PARLEY_DATABASE_URL has no database name"),
        };
        Ok(Self {
            nats_url,
            database_url,
            stream: format!("T_{suffix}"),
            subject_root: format!("t_{suffix}"),
        })
    }

    fn common(&self) -> platform::config::Common {
        platform::config::Common {
            nats_url: self.nats_url.clone(),
            database_url: self.database_url.clone(),
            stream: self.stream.clone(),
            subject_root: self.subject_root.clone(),
            api_keys: format!("{KEY_ACME}=acme,{KEY_GLOBEX}=globex"),
            db_pool_size: 16,
            token_secret: Some(TOKEN_SECRET.into()),
            http: platform::server::HttpSettings::default(),
            // Off by default: tests that load a tenant are not about limits. Limits are tested
            // with tenants whose own settings set them (tests/tests/limits.rs).
            rate: platform::ratelimit::Defaults {
                tenant_per_s: 0,
                user_sends_per_s: 0,
                user_reads_per_s: 0,
            },
        }
    }

    /// Starts a command service on a free port.
    ///
    /// # Errors
    /// Bind failure.
    pub async fn command_svc(&self) -> anyhow::Result<Running> {
        self.command_svc_with(|_| {}).await
    }

    /// Starts a command service on a free port after `tweak` adjusts its settings.
    ///
    /// # Errors
    /// Bind failure, or the service fails at start.
    pub async fn command_svc_with(
        &self,
        tweak: impl FnOnce(&mut command_svc::Config),
    ) -> anyhow::Result<Running> {
        let mut config = command_svc::Config {
            common: self.common(),
            listen: "127.0.0.1:0".into(),
            max_payload_bytes: 65536,
            cache_channels: 100_000,
            max_ack_inflight: 20_000,
            master_key: Some(MASTER_KEY.into()),
            master_rate_per_s: 0,
        };
        tweak(&mut config);
        spawn_http(|acceptor, stop| command_svc::serve(config, acceptor, stop)).await
    }

    /// Starts a query service on a free port.
    ///
    /// # Errors
    /// Bind failure.
    pub async fn query_svc(&self) -> anyhow::Result<Running> {
        self.query_svc_with(|_| {}).await
    }

    /// Starts a query service on a free port after `tweak` adjusts its settings (dev tokens
    /// are on for tenant `acme`).
    ///
    /// # Errors
    /// Bind failure, or the service fails at start.
    pub async fn query_svc_with(
        &self,
        tweak: impl FnOnce(&mut query_svc::Config),
    ) -> anyhow::Result<Running> {
        let mut config = query_svc::Config {
            listen: "127.0.0.1:0".into(),
            common: self.common(),
            consistency_wait: Duration::from_millis(3000),
            ready_max_lag: 1_000_000,
            ws: query_svc::realtime::WsConfig {
                ping: Duration::from_secs(25),
                idle: Duration::from_secs(60),
                queue: 1024,
                sync_wait: Duration::from_millis(3000),
            },
            dev_tenant: Some(events::TenantId::parse("acme")?),
            allowed_origins: Vec::new(),
        };
        tweak(&mut config);
        spawn_http(|acceptor, stop| query_svc::serve(config, acceptor, stop)).await
    }

    /// The token verifier/minter every service of this environment uses (tenants `acme` and
    /// `globex`), for minting tokens the API would refuse to (already expired, short-lived).
    ///
    /// # Panics
    /// Never: the secret is long enough.
    pub fn tokens(&self) -> platform::token::UserTokens {
        let tenants = ["acme", "globex"].map(|t| events::TenantId::parse(t).expect("tenant"));
        platform::token::UserTokens::new(Some(TOKEN_SECRET), tenants).expect("secret")
    }

    /// Starts the projector (all projections).
    ///
    /// # Errors
    /// Never at start; failures surface in the task.
    pub async fn projector(&self) -> anyhow::Result<Running> {
        self.projector_with(|_| {}).await
    }

    /// Starts the projector after `tweak` adjusts its settings.
    ///
    /// # Errors
    /// Never at start; failures surface in the task.
    pub async fn projector_with(
        &self,
        tweak: impl FnOnce(&mut projector::Config),
    ) -> anyhow::Result<Running> {
        let mut config = projector::Config {
            common: self.common(),
            listen: "127.0.0.1:0".into(),
            batch_size: 2000,
            projections: projector::Projection::ALL.to_vec(),
            on_poison: projector::shell::batch::PoisonPolicy::Skip,
            poison_attempts: 2,
            gc_grace: None,
            ready_max_lag: 100_000,
            ready_max_lag_seconds: 30.0,
        };
        tweak(&mut config);
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(projector::run(config, async move {
            let _ = rx.await;
        }));
        Ok(Running {
            addr: "127.0.0.1:0".parse()?,
            stop: Some(tx),
            task: Some(task),
        })
    }

    /// The `projector` binary as an operator runs it (`rebuild`, `status`, `dlq` …) against
    /// this environment; killed when dropped.
    ///
    /// The binary is the one `cargo build -p projector` put beside this test's directory
    /// (`target/<profile>/projector`), or `PARLEY_PROJECTOR_BIN`.
    pub fn projector_cmd(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = self.binary("projector", "PARLEY_PROJECTOR_BIN");
        cmd.args(args).env("PARLEY_PROJECTOR_BATCH", "500");
        cmd
    }

    /// A service binary (`command-svc`, `query-svc`) configured for this environment (API keys
    /// and token secret as in-process services have them), listening on `listen`; killed when
    /// dropped. The binary is `target/<profile>/<name>` (`make test` builds it first).
    pub fn service_cmd(&self, name: &str, listen: SocketAddr) -> tokio::process::Command {
        let mut cmd = self.binary(name, "PARLEY_SERVICE_BIN_DIR");
        cmd.env("PARLEY_COMMAND_LISTEN", listen.to_string())
            .env("PARLEY_QUERY_LISTEN", listen.to_string())
            .env(
                "PARLEY_API_KEYS",
                format!("{KEY_ACME}=acme,{KEY_GLOBEX}=globex"),
            )
            .env("PARLEY_TOKEN_SECRET", TOKEN_SECRET)
            .env("PARLEY_MASTER_KEY", MASTER_KEY)
            .env("PARLEY_RATE_LIMIT_TENANT_PER_S", "0")
            .env("PARLEY_RATE_LIMIT_USER_SENDS_PER_S", "0")
            .env("PARLEY_RATE_LIMIT_USER_READS_PER_S", "0");
        cmd
    }

    /// `target/<profile>/<name>` (or the path in env `override_var`) with this environment's
    /// NATS, database, stream and subject root.
    fn binary(&self, name: &str, override_var: &str) -> tokio::process::Command {
        let bin = std::env::var_os(override_var)
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                let exe = std::env::current_exe().expect("test executable path");
                // target/<profile>/deps/<test> -> target/<profile>/<name>
                exe.parent()
                    .and_then(|d| d.parent())
                    .expect("target directory")
                    .join(name)
            });
        let mut cmd = tokio::process::Command::new(bin);
        cmd.env("PARLEY_NATS_URL", &self.nats_url)
            .env("PARLEY_DATABASE_URL", &self.database_url)
            .env("PARLEY_STREAM", &self.stream)
            .env("PARLEY_SUBJECT_ROOT", &self.subject_root)
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    /// Runs `projector <args>` to completion; returns (success, stdout, stderr).
    ///
    /// # Errors
    /// The binary cannot be started.
    pub async fn projector_run(&self, args: &[&str]) -> anyhow::Result<(bool, String, String)> {
        let out = self.projector_cmd(args).output().await?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    /// A direct connection to this environment's database.
    ///
    /// # Errors
    /// Connection failure.
    pub async fn db(&self) -> anyhow::Result<tokio_postgres::Client> {
        let (client, conn) =
            tokio_postgres::connect(&self.database_url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        Ok(client)
    }
}

impl Running {
    /// Waits until `/health` answers 200; reports the service's own error if it stopped.
    async fn wait_healthy(&mut self) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let base = self.url();
        let mut last = String::new();
        for _ in 0..400 {
            if self.task.as_ref().is_some_and(|t| t.is_finished()) {
                let task = self.task.take().context("task")?;
                return match task.await {
                    Ok(Ok(())) => Err(anyhow::anyhow!("{base} stopped at start")),
                    Ok(Err(e)) => Err(e.context(format!("{base} failed at start"))),
                    Err(e) => Err(anyhow::anyhow!("{base} panicked at start: {e}")),
                };
            }
            match http.get(format!("{base}/health")).send().await {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => last = format!("status {}", r.status()),
                Err(e) => last = format!("{e:?}"),
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        anyhow::bail!("{base} did not become healthy: {last}")
    }
}

/// A thin JSON client for one service and one API key.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

impl Api {
    /// Client of `base` with API key `key`.
    pub fn new(base: &str, key: &str) -> Self {
        Self::with_auth(base, Some(key))
    }

    /// Client that sends `key` (or no Authorization header at all).
    pub fn with_auth(base: &str, key: Option<&str>) -> Self {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()
            .unwrap_or_default();
        Self {
            http,
            base: base.to_owned(),
            key: key.map(str::to_owned),
        }
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{}", self.base, path));
        match &self.key {
            Some(k) => r.bearer_auth(k),
            None => r,
        }
    }

    /// `POST path` with a JSON body → (status, JSON).
    ///
    /// # Errors
    /// Transport errors or a non-JSON answer.
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        let r = self
            .req(reqwest::Method::POST, path)
            .json(body)
            .send()
            .await?;
        Self::answer(r).await
    }

    /// `POST path` with a raw body and content type.
    ///
    /// # Errors
    /// Transport errors or a non-JSON answer.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<(u16, Value)> {
        let r = self
            .req(reqwest::Method::POST, path)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await?;
        Self::answer(r).await
    }

    /// `GET path` → (status, JSON).
    ///
    /// # Errors
    /// Transport errors or a non-JSON answer.
    pub async fn get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        let r = self.req(reqwest::Method::GET, path).send().await?;
        Self::answer(r).await
    }

    /// `PATCH path` with a JSON body → (status, JSON).
    ///
    /// # Errors
    /// Transport errors or a non-JSON answer.
    pub async fn patch(&self, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        let r = self
            .req(reqwest::Method::PATCH, path)
            .json(body)
            .send()
            .await?;
        Self::answer(r).await
    }

    /// `DELETE path` → (status, JSON).
    ///
    /// # Errors
    /// Transport errors or a non-JSON answer.
    pub async fn delete(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        let r = self.req(reqwest::Method::DELETE, path).send().await?;
        Self::answer(r).await
    }

    /// `GET path` → (status, body text).
    ///
    /// # Errors
    /// Transport errors.
    pub async fn get_text(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let r = self.req(reqwest::Method::GET, path).send().await?;
        Ok((r.status().as_u16(), r.text().await?))
    }

    async fn answer(r: reqwest::Response) -> anyhow::Result<(u16, Value)> {
        let status = r.status().as_u16();
        let text = r.text().await?;
        if text.is_empty() && status == 204 {
            return Ok((status, Value::Null));
        }
        let json = serde_json::from_str(&text)
            .with_context(|| format!("status {status}, non-JSON body: {text}"))?;
        Ok((status, json))
    }
}

/// Percent-encodes one path segment or query value (RFC 3986 unreserved kept).
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Base64 (standard, padded) of `s`.
pub fn b64(s: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// The log's last stream sequence.
///
/// # Errors
/// NATS errors.
pub async fn stream_head(env: &TestEnv) -> anyhow::Result<u64> {
    let client = async_nats::connect(&env.nats_url).await?;
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream(&env.stream).await?;
    Ok(stream.info().await?.state.last_sequence)
}

/// The seed of a randomized test: `PARLEY_TEST_SEED` when set, else a fresh one; printed, so
/// a failing run can be repeated.
pub fn seed() -> u64 {
    use rand::Rng as _;
    let seed = std::env::var("PARLEY_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen());
    println!("seed {seed} (PARLEY_TEST_SEED={seed} repeats this run)");
    seed
}

/// A free loopback port (bound and released at once).
///
/// # Panics
/// No port can be bound.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Rows of `parked_events` (every projection and version, any state).
///
/// # Errors
/// Postgres errors.
pub async fn parked_count(env: &TestEnv) -> anyhow::Result<i64> {
    let db = env.db().await?;
    Ok(db
        .query_one("SELECT count(*) FROM parked_events", &[])
        .await?
        .get(0))
}
