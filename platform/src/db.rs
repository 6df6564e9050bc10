//! The Postgres pool.

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::str::FromStr;

/// Builds a pool of at most `size` connections to `url` (`postgres://user@host:port/db`).
/// Connections are opened lazily.
///
/// # Errors
/// The URL does not parse, or the pool cannot be built.
pub fn pool(url: &str, size: usize) -> anyhow::Result<Pool> {
    let cfg = tokio_postgres::Config::from_str(url)?;
    let mgr = Manager::from_config(
        cfg,
        tokio_postgres::NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Ok(Pool::builder(mgr).max_size(size).build()?)
}

/// Whether Postgres answers `SELECT 1` through `pool`.
pub async fn ping(pool: &Pool) -> bool {
    match pool.get().await {
        Ok(c) => c.simple_query("SELECT 1").await.is_ok(),
        Err(_) => false,
    }
}
