//! `projection_checkpoints`: the last stream sequence whose effects are in a projection's
//! tables, written in the same transaction as those effects.

use deadpool_postgres::GenericClient;

const LOAD: &str = "SELECT last_seq FROM projection_checkpoints WHERE projection = $1";
const SAVE: &str = "INSERT INTO projection_checkpoints (projection, last_seq, updated_at) \
                    VALUES ($1, $2, now()) \
                    ON CONFLICT (projection) DO UPDATE SET last_seq = EXCLUDED.last_seq, updated_at = now()";

/// The checkpoint of `projection` (0 when it has none).
///
/// # Errors
/// Database errors.
pub async fn load<C: GenericClient>(
    client: &C,
    projection: &str,
) -> Result<u64, tokio_postgres::Error> {
    let row = client.query_opt(LOAD, &[&projection]).await?;
    Ok(row.map(|r| r.get::<_, i64>(0) as u64).unwrap_or(0))
}

/// Sets the checkpoint of `projection` to `seq`.
///
/// # Errors
/// Database errors.
pub async fn save<C: GenericClient>(
    client: &C,
    projection: &str,
    seq: u64,
) -> Result<(), tokio_postgres::Error> {
    client.execute(SAVE, &[&projection, &(seq as i64)]).await?;
    Ok(())
}
