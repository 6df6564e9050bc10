//! Steps 5 and 6 of a rebuild ([`super::rebuild`]), the only ones that touch the serving
//! versions: freezing them (their `projection_versions` rows locked, so the serving
//! projector's next checkpoint write waits), bringing the rebuilt versions to exactly the
//! serving checkpoints, verifying in one snapshot, and switching in one transaction.

use super::build::run_to;
use super::verify::{self, TableCheck};
use crate::core::Projection;
use crate::schema::{self, State};
use crate::shell::apply::Applier;
use crate::shell::context::Context;
use std::time::{Duration, Instant};

/// The serving versions of `projections`, locked `FOR UPDATE` in `tx` (which freezes them:
/// the serving projector's checkpoint write waits for `tx`).
async fn lock_serving(
    tx: &deadpool_postgres::Transaction<'_>,
    projections: &[Projection],
) -> anyhow::Result<Frozen> {
    let names: Vec<&str> = projections.iter().map(|p| p.name()).collect();
    let rows = tx
        .query(
            "SELECT projection, last_seq, schema_name FROM public.projection_versions \
             WHERE state = 'serving' AND projection = ANY($1) ORDER BY projection FOR UPDATE",
            &[&names],
        )
        .await?;
    let mut out = Vec::new();
    for &p in projections {
        let row = rows
            .iter()
            .find(|r| r.try_get::<_, &str>(0).is_ok_and(|n| n == p.name()))
            .ok_or_else(|| anyhow::anyhow!("{} has no serving version", p.name()))?;
        out.push((p, readmodel::sql::seq(row, 1)?, row.try_get(2)?));
    }
    Ok(out)
}

/// Waits (at most two minutes) until every serving checkpoint has reached its rebuilt
/// version's.
async fn wait_serving(ops: &Context, appliers: &[Applier]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let client = ops.pool.get().await?;
        let mut behind = Vec::new();
        for a in appliers {
            let s = schema::find(&client, a.v.projection, State::Serving)
                .await?
                .ok_or_else(|| {
                    anyhow::anyhow!("{} has no serving version", a.v.projection.name())
                })?;
            if s.last_seq < a.v.last_seq {
                behind.push(format!(
                    "{} serving at {} < rebuilt at {}",
                    a.v.projection.name(),
                    s.last_seq,
                    a.v.last_seq
                ));
            }
        }
        if behind.is_empty() {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the serving projections are behind the rebuild ({}): is the projector running?",
            behind.join(", ")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Brings every rebuilt version close to its serving version's checkpoint without freezing
/// anything, so the freeze that follows has only a small gap left to cover.
async fn approach_serving(ops: &Context, appliers: &mut [Applier]) -> anyhow::Result<()> {
    for _ in 0..5 {
        let mut far = false;
        for a in appliers.iter_mut() {
            let target = {
                let client = ops.pool.get().await?;
                schema::find(&client, a.v.projection, State::Serving)
                    .await?
                    .map_or(0, |s| s.last_seq)
            };
            if target > a.v.last_seq + 1000 {
                far = true;
                run_to(ops, std::slice::from_mut(a), target, None).await?;
            }
        }
        if !far {
            break;
        }
    }
    Ok(())
}

/// The serving versions with their checkpoints and schemas, as [`freeze`] holds them.
type Frozen = Vec<(Projection, u64, String)>;

/// Freezes the serving versions of `projections` (their rows locked in the returned
/// transaction, with `lock_timeout`) and brings every rebuilt version to exactly their
/// checkpoints. `None` when a serving version was behind its rebuild: the freeze was released
/// and the serving projector waited for; freeze again.
async fn freeze<'c>(
    ops: &Context,
    appliers: &mut [Applier],
    projections: &[Projection],
    conn: &'c mut deadpool_postgres::Object,
    lock_timeout: &str,
) -> anyhow::Result<Option<(deadpool_postgres::Transaction<'c>, Frozen)>> {
    approach_serving(ops, appliers).await?;
    let tx = conn.transaction().await?;
    // The switch commits in this transaction: durable whatever the server's default.
    tx.batch_execute(&format!(
        "SET LOCAL lock_timeout = '{lock_timeout}'; SET LOCAL synchronous_commit TO on"
    ))
    .await?;
    let serving = lock_serving(&tx, projections).await?;
    if appliers
        .iter()
        .zip(&serving)
        .any(|(a, (_, seq, _))| a.v.last_seq > *seq)
    {
        drop(tx);
        wait_serving(ops, appliers).await?;
        return Ok(None);
    }
    for (a, (_, seq, _)) in appliers.iter_mut().zip(&serving) {
        run_to(ops, std::slice::from_mut(a), *seq, None).await?;
    }
    Ok(Some((tx, serving)))
}

/// Step 5: compares every rebuilt version with the serving one at one checkpoint.
pub(super) async fn verify_all(
    ops: &Context,
    appliers: &mut [Applier],
) -> anyhow::Result<Vec<Vec<TableCheck>>> {
    let projections: Vec<Projection> = appliers.iter().map(|a| a.v.projection).collect();
    loop {
        let mut conn = ops.pool.get().await?;
        let Some((tx, serving)) = freeze(ops, appliers, &projections, &mut conn, "10s").await?
        else {
            continue;
        };
        let mut snap_conn = ops.pool.get().await?;
        let snap = snap_conn
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        snap.query_one("SELECT 1", &[]).await?;
        tx.commit().await?;
        let mut all = Vec::new();
        for (a, (p, seq, serving_schema)) in appliers.iter().zip(&serving) {
            let started = Instant::now();
            let checks = verify::compare(&snap, *p, serving_schema, &a.v.schema).await?;
            for c in &checks {
                tracing::info!("verify at event {seq}: {c}");
            }
            tracing::info!(
                "{} verified in {:.1} s",
                p.name(),
                started.elapsed().as_secs_f64()
            );
            all.push(checks);
        }
        snap.commit().await?;
        return Ok(all);
    }
}

/// Step 6: the atomic switch. Retries (up to ten times) when readers hold the views longer
/// than the lock timeout.
pub(super) async fn switch(ops: &Context, appliers: &mut [Applier]) -> anyhow::Result<Vec<i32>> {
    let projections: Vec<Projection> = appliers.iter().map(|a| a.v.projection).collect();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut conn = ops.pool.get().await?;
        let Some((tx, _)) = freeze(ops, appliers, &projections, &mut conn, "2s").await? else {
            continue;
        };
        let mut views = vec!["public.projection_checkpoints".to_owned()];
        for p in &projections {
            views.extend(
                schema::tables(*p)
                    .iter()
                    .map(|(t, _)| format!("public.{t}")),
            );
        }
        let locked = tx
            .batch_execute(&format!(
                "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
                views.join(", ")
            ))
            .await;
        if let Err(e) = locked {
            anyhow::ensure!(attempt < 10, "could not lock the views for the switch: {e}");
            tracing::warn!(attempt, error = %e, "readers hold the views; retrying the switch");
            drop(tx);
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let mut replaced = Vec::new();
        for a in appliers.iter() {
            let old: i32 = tx
                .query_one(
                    "UPDATE public.projection_versions SET state = 'retired', retired_at = now() \
                     WHERE projection = $1 AND state = 'serving' RETURNING version",
                    &[&a.v.projection.name()],
                )
                .await?
                .try_get(0)?;
            let n = tx
                .execute(
                    "UPDATE public.projection_versions SET state = 'serving', switched_at = now() \
                     WHERE projection = $1 AND version = $2 AND state = 'building'",
                    &[&a.v.projection.name(), &a.v.version],
                )
                .await?;
            anyhow::ensure!(
                n == 1,
                "{} v{} is no longer building",
                a.v.projection.name(),
                a.v.version
            );
            schema::publish_views(&tx, &a.v).await?;
            replaced.push(old);
        }
        tx.commit().await?;
        for a in appliers.iter_mut() {
            a.v.state = State::Serving;
        }
        return Ok(replaced);
    }
}
