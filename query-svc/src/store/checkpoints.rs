//! `projection_checkpoints`: the last stream sequence each projection has applied.

use super::{client, StoreError};
use deadpool_postgres::Pool;

/// Checkpoints of the projections named in `$1` (text[]).
const SOME: &str = "\
SELECT projection, last_seq FROM projection_checkpoints WHERE projection = ANY($1)";

/// Every checkpoint.
const ALL: &str = "SELECT projection, last_seq FROM projection_checkpoints ORDER BY projection";

fn to_pairs(rows: &[tokio_postgres::Row]) -> Result<Vec<(String, u64)>, StoreError> {
    rows.iter()
        .map(|r| {
            let name: String = r.try_get("projection")?;
            let seq: i64 = r.try_get("last_seq")?;
            Ok((name, u64::try_from(seq).unwrap_or(0)))
        })
        .collect()
}

/// `(projection, last_seq)` of those of `names` that have a row; a missing row means 0.
///
/// # Errors
/// [`StoreError`] when Postgres fails.
pub async fn of(pool: &Pool, names: &[&str]) -> Result<Vec<(String, u64)>, StoreError> {
    let client = client(pool).await?;
    let stmt = client.prepare_cached(SOME).await?;
    to_pairs(&client.query(&stmt, &[&names]).await?)
}

/// `(projection, last_seq)` of every projection with a row, by name.
///
/// # Errors
/// [`StoreError`] when Postgres fails.
pub async fn all(pool: &Pool) -> Result<Vec<(String, u64)>, StoreError> {
    let client = client(pool).await?;
    let stmt = client.prepare_cached(ALL).await?;
    to_pairs(&client.query(&stmt, &[]).await?)
}
