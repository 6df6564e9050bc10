//! `projector gc`: drops retired versions (their schemas and dead letters), and with
//! `--replays` replay versions too. The serving projector runs the retired part hourly with
//! the configured grace (`PARLEY_PROJECTOR_GC_GRACE_HOURS`).

use crate::schema::{self, State};
use std::time::Duration;

/// Drops retired versions retired longer than `grace` ago (and every replay with `replays`).
/// Returns the schemas dropped.
///
/// # Errors
/// Database errors.
pub async fn collect(
    pool: &deadpool_postgres::Pool,
    grace: Duration,
    replays: bool,
) -> anyhow::Result<Vec<String>> {
    let mut client = pool.get().await?;
    let due: Vec<(String, i32)> = client
        .query(
            "SELECT projection, version FROM public.projection_versions \
             WHERE (state = 'retired' AND retired_at <= now() - make_interval(secs => $1)) \
                OR ($2 AND state = 'replay') ORDER BY projection, version",
            &[&grace.as_secs_f64(), &replays],
        )
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, tokio_postgres::Error>>()?;
    let mut dropped = Vec::new();
    for (name, version) in due {
        let Some(p) = crate::Projection::from_name(&name) else {
            continue;
        };
        let Some(v) = schema::get(&client, p, version).await? else {
            continue;
        };
        if !matches!(v.state, State::Retired | State::Replay) {
            continue;
        }
        schema::drop_version(&mut client, &v).await?;
        tracing::info!("dropped {} v{} ({})", name, version, v.schema);
        dropped.push(v.schema);
    }
    Ok(dropped)
}
