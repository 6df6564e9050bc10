//! The projections' checkpoints and halts, through the read-model contract
//! (`readmodel::checkpoints`), on this service's pool.

use super::{client, StoreError};
use deadpool_postgres::Pool;

pub use readmodel::checkpoints::Serving;

/// `(projection, last_seq)` of those of `names` that have a row; a missing row means 0.
///
/// # Errors
/// [`StoreError`] when Postgres fails.
pub async fn of(pool: &Pool, names: &[&str]) -> Result<Vec<(String, u64)>, StoreError> {
    Ok(readmodel::checkpoints::of(&client(pool).await?, names).await?)
}

/// Every serving projection, by name.
///
/// # Errors
/// [`StoreError`] when Postgres fails.
pub async fn all(pool: &Pool) -> Result<Vec<Serving>, StoreError> {
    Ok(readmodel::checkpoints::serving(&client(pool).await?).await?)
}
