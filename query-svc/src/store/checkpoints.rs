//! `projection_checkpoints`: the last stream sequence each projection has applied.

use super::{client, StoreError};
use deadpool_postgres::Pool;

/// Checkpoints of the projections named in `$1` (text[]).
const SOME: &str = "\
SELECT projection, last_seq FROM projection_checkpoints WHERE projection = ANY($1)";

/// Every serving version's checkpoint and halt (`parked_seq`: halted on that poison event
/// under policy `stop`), from the registry behind `projection_checkpoints`.
const ALL: &str = "SELECT projection, last_seq, parked_seq FROM projection_versions \
     WHERE state = 'serving' ORDER BY projection";

/// One serving projection as `/ready` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Serving {
    /// The projection's name.
    pub name: String,
    /// Its checkpoint.
    pub last_seq: u64,
    /// The poison event it is halted on (policy `stop`), if any.
    pub halted_at: Option<u64>,
}

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

/// Every serving projection, by name.
///
/// # Errors
/// [`StoreError`] when Postgres fails.
pub async fn all(pool: &Pool) -> Result<Vec<Serving>, StoreError> {
    let client = client(pool).await?;
    let stmt = client.prepare_cached(ALL).await?;
    client
        .query(&stmt, &[])
        .await?
        .iter()
        .map(|r| {
            let seq = |v: i64| u64::try_from(v).unwrap_or(0);
            Ok(Serving {
                name: r.try_get("projection")?,
                last_seq: seq(r.try_get("last_seq")?),
                halted_at: r.try_get::<_, Option<i64>>("parked_seq")?.map(seq),
            })
        })
        .collect()
}
