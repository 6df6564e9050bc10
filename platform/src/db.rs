//! Postgres: the pool, one-off connections, and naming a server in errors.
//!
//! Every connection attempt gives up after [`CONNECT_TIMEOUT`], and its error names the server
//! (`Postgres at 127.0.0.1:5432/parley`, never the password), so a service or an operator
//! command that cannot reach Postgres says so within seconds.

use anyhow::Context as _;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts};
use std::str::FromStr;
use std::time::Duration;

/// How long one connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// `Postgres at <host>:<port>/<dbname>` for a connection URL (no user or password).
pub fn describe(url: &str) -> String {
    match tokio_postgres::Config::from_str(url) {
        Ok(cfg) => {
            let host = cfg
                .get_hosts()
                .first()
                .map(|h| match h {
                    tokio_postgres::config::Host::Tcp(h) => h.clone(),
                    tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                })
                .unwrap_or_else(|| "localhost".into());
            let port = cfg.get_ports().first().copied().unwrap_or(5432);
            let db = cfg.get_dbname().unwrap_or("postgres");
            format!("Postgres at {host}:{port}/{db}")
        }
        Err(_) => "Postgres (unparsable PARLEY_DATABASE_URL)".into(),
    }
}

fn config(url: &str) -> anyhow::Result<tokio_postgres::Config> {
    let mut cfg = tokio_postgres::Config::from_str(url).with_context(|| {
        format!(
            "PARLEY_DATABASE_URL is not a Postgres URL ({})",
            describe(url)
        )
    })?;
    cfg.connect_timeout(CONNECT_TIMEOUT);
    Ok(cfg)
}

/// Builds a pool of at most `size` connections to `url` (`postgres://user@host:port/db`).
/// Connections are opened lazily; opening one gives up after [`CONNECT_TIMEOUT`], and waiting
/// for a free one after 10 s.
///
/// # Errors
/// The URL does not parse, or the pool cannot be built.
pub fn pool(url: &str, size: usize) -> anyhow::Result<Pool> {
    let mgr = Manager::from_config(
        config(url)?,
        tokio_postgres::NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Ok(Pool::builder(mgr)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .timeouts(Timeouts {
            create: Some(CONNECT_TIMEOUT),
            wait: Some(Duration::from_secs(10)),
            recycle: Some(CONNECT_TIMEOUT),
        })
        .build()?)
}

/// One connection to `url`, its connection task spawned.
///
/// # Errors
/// `cannot reach Postgres at …` within [`CONNECT_TIMEOUT`].
pub async fn connect(
    url: &str,
) -> anyhow::Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>)> {
    let cfg = config(url)?;
    let (client, conn) = tokio::time::timeout(CONNECT_TIMEOUT, cfg.connect(tokio_postgres::NoTls))
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {} s", CONNECT_TIMEOUT.as_secs()))
        .and_then(|r| r.map_err(anyhow::Error::from))
        .with_context(|| format!("cannot reach {}", describe(url)))?;
    let task = tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::warn!(error = %e, "postgres connection ended");
        }
    });
    Ok((client, task))
}

/// One connection to `url` whose connection the caller drives (for `LISTEN`: poll it with
/// `poll_message` to receive notifications).
///
/// # Errors
/// `cannot reach Postgres at …` within [`CONNECT_TIMEOUT`].
pub async fn connect_listening(
    url: &str,
) -> anyhow::Result<(
    tokio_postgres::Client,
    tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
)> {
    let cfg = config(url)?;
    tokio::time::timeout(CONNECT_TIMEOUT, cfg.connect(tokio_postgres::NoTls))
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {} s", CONNECT_TIMEOUT.as_secs()))
        .and_then(|r| r.map_err(anyhow::Error::from))
        .with_context(|| format!("cannot reach {}", describe(url)))
}

/// Whether Postgres answers `SELECT 1` through `pool`.
pub async fn ping(pool: &Pool) -> bool {
    match pool.get().await {
        Ok(c) => c.simple_query("SELECT 1").await.is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn describe_names_the_server_without_credentials() {
        assert_eq!(
            super::describe("postgres://app:s3cret@db.example:6543/parley"),
            "Postgres at db.example:6543/parley"
        );
        assert!(!super::describe("postgres://app:s3cret@db/x").contains("s3cret"));
    }
}
