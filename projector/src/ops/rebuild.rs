//! `projector rebuild` (blue/green) and `projector replay`.
//!
//! A rebuild of projections P:
//! 1. **create** the next version of each (schema `proj_<p>_v<N>`, state `building`, tables
//!    without their reader-only indexes) — or, with `--resume`, take the existing one;
//! 2. **bulk**: apply the log from its checkpoint + 1 to the head as it was at the start, one
//!    read for all of P, commits with `synchronous_commit = off` (a crash loses rows and
//!    checkpoint together, and the next commit's checkpoint compare-and-set sends the read
//!    back to the checkpoint as stored: [`super::build`]);
//! 3. **index**: create the deferred indexes, `ANALYZE`;
//! 4. **catch up** with the live head;
//! 5. **verify**: freeze the serving versions for a moment (their `projection_versions` rows
//!    locked, so the serving projector's next checkpoint write waits), bring each rebuilt
//!    version to exactly the serving checkpoint, take a REPEATABLE READ snapshot, unfreeze,
//!    and compare every table in that snapshot ([`super::verify`]); a difference stops here;
//! 6. **switch**: freeze again, bring the rebuilt versions to the serving checkpoints, lock the
//!    public views, retire the old versions, mark the new ones serving and point the views at
//!    them — one transaction. The serving projector's blocked write then finds its version
//!    retired and continues on the new one.
//!
//! Killed anywhere, the serving versions are unchanged (only step 6 touches them, atomically);
//! `--resume` continues from the rebuilt versions' own checkpoints, `--discard` drops them.

use super::build::run_to;
use super::progress::Progress;
use super::verify::{self, TableCheck};
use crate::core::Projection;
use crate::schema::{self, State, Version};
use crate::shell::apply::Applier;
use crate::shell::runner::Context;
use std::time::{Duration, Instant};

/// What `rebuild` does with an existing unfinished rebuild.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Start a new version (fails if one is being built).
    Fresh,
    /// Continue the version being built.
    Resume,
    /// Drop the version being built and stop.
    Discard,
}

/// Outcome of a rebuild, per projection.
#[derive(Debug, Clone)]
pub struct Rebuilt {
    /// The projection.
    pub projection: Projection,
    /// The new serving version.
    pub version: i32,
    /// The version it replaced.
    pub replaced: i32,
    /// The tables as verified.
    pub checks: Vec<TableCheck>,
}

/// Summary of a finished rebuild.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Per projection.
    pub rebuilt: Vec<Rebuilt>,
    /// Events applied in the bulk phase.
    pub bulk_events: u64,
    /// Seconds of the bulk phase.
    pub bulk_secs: f64,
    /// Seconds from start to switch.
    pub total_secs: f64,
}

/// The verification found differences.
#[derive(Debug, thiserror::Error)]
#[error("verification failed; the serving versions are unchanged:\n{report}")]
pub struct Mismatch {
    /// One line (or block) per table.
    pub report: String,
}

async fn take_versions(
    ops: &Context,
    projections: &[Projection],
    state: State,
    start: Start,
    target: Option<u64>,
) -> anyhow::Result<Vec<Version>> {
    let mut client = ops.pool.get().await?;
    let mut out = Vec::new();
    for &p in projections {
        let existing = schema::find(&client, p, state)
            .await?
            .filter(|v| state != State::Replay || v.target_seq == target);
        match (start, existing) {
            (Start::Discard, Some(v)) => {
                schema::drop_version(&mut client, &v).await?;
                tracing::info!("discarded {} v{} ({})", p.name(), v.version, v.schema);
            }
            (Start::Discard, None) => {
                tracing::info!("no {} version of {} to discard", state.as_str(), p.name())
            }
            (Start::Resume, Some(v)) => {
                tracing::info!(
                    "resuming {} v{} from its checkpoint {}",
                    p.name(),
                    v.version,
                    v.last_seq
                );
                out.push(v);
            }
            (Start::Resume, None) => {
                anyhow::bail!("no {} version of {} to resume", state.as_str(), p.name())
            }
            (Start::Fresh, Some(v)) if state == State::Building => anyhow::bail!(
                "a rebuild of {} is unfinished (v{}, at event {}): continue it with \
                 `projector rebuild {} --resume` or drop it with `--discard`",
                p.name(),
                v.version,
                v.last_seq,
                p.name()
            ),
            (Start::Fresh, _) => {
                let v = schema::create(&mut client, p, state, target).await?;
                tracing::info!("created {} v{} in schema {}", p.name(), v.version, v.schema);
                out.push(v);
            }
        }
    }
    Ok(out)
}

/// Fills `appliers` from their checkpoints to `until` with a progress display, then creates
/// their deferred indexes. Returns (events, seconds) of the fill. A version halted on a poison
/// event (policy `stop`) goes on only once `projector dlq retry|skip` has resolved it.
async fn fill(
    ops: &Context,
    appliers: &mut [Applier],
    until: u64,
    what: &str,
) -> anyhow::Result<(u64, f64)> {
    for a in appliers.iter_mut() {
        if let Some(seq) = a.v.parked_seq {
            anyhow::ensure!(
                a.resolve_halt(&ops.pool).await?,
                "{} v{} is halted on poison event {seq}: `projector dlq retry|skip {} {seq}` first",
                a.v.projection.name(),
                a.v.version,
                a.v.projection.name()
            );
        }
    }
    let low = appliers.iter().map(|a| a.v.last_seq).min().unwrap_or(until);
    let mut progress = Progress::new(what, low, until.max(low));
    run_to(ops, appliers, until, Some(&mut progress)).await?;
    let (events, secs) = (until.saturating_sub(low), progress.elapsed());
    progress.finish();
    for a in appliers.iter_mut().filter(|a| !a.v.indexed) {
        let started = Instant::now();
        let mut client = ops.pool.get().await?;
        schema::finish_indexes(&mut client, &a.v).await?;
        a.v.indexed = true;
        tracing::info!(
            "{} v{}: indexes built and analyzed in {:.1} s",
            a.v.projection.name(),
            a.v.version,
            started.elapsed().as_secs_f64()
        );
    }
    Ok((events, secs))
}

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
async fn verify_all(
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
async fn switch(ops: &Context, appliers: &mut [Applier]) -> anyhow::Result<Vec<i32>> {
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

/// Rebuilds `projections` blue/green (see the module docs).
///
/// # Errors
/// [`Mismatch`] when verification finds differences (the rebuilt versions stay, resumable or
/// discardable); NATS or database failures; an unfinished rebuild without `--resume`.
/// With `accept_differences` a verification difference is reported and the switch goes on:
/// for rebuilds whose purpose is to change the rows (a fixed projection bug).
pub async fn rebuild(
    ops: &Context,
    projections: &[Projection],
    start: Start,
    accept_differences: bool,
) -> anyhow::Result<Option<Summary>> {
    let began = Instant::now();
    let versions = take_versions(ops, projections, State::Building, start, None).await?;
    if start == Start::Discard {
        return Ok(None);
    }
    let mut appliers: Vec<Applier> = versions
        .into_iter()
        .map(|v| Applier::new(v, ops.policy))
        .collect();
    let names: Vec<String> = appliers
        .iter()
        .map(|a| format!("{} v{}", a.v.projection.name(), a.v.version))
        .collect();
    let head = ops.head().await?;
    let (bulk_events, bulk_secs) = fill(
        ops,
        &mut appliers,
        head,
        &format!("rebuild {}", names.join(", ")),
    )
    .await?;
    // Catch up with what arrived meanwhile (a few rounds; the switch takes the last gap).
    for _ in 0..3 {
        let head = ops.head().await?;
        if appliers.iter().all(|a| a.v.last_seq >= head) {
            break;
        }
        run_to(ops, &mut appliers, head, None).await?;
    }
    tracing::info!("caught up; verifying against the serving versions");
    let checks = verify_all(ops, &mut appliers).await?;
    let bad: Vec<String> = checks
        .iter()
        .flatten()
        .filter(|c| !c.equal())
        .map(ToString::to_string)
        .collect();
    if !bad.is_empty() && accept_differences {
        tracing::warn!(
            "verification found differences; switching anyway (--accept-differences):\n{}",
            bad.join("\n")
        );
    } else if !bad.is_empty() {
        return Err(Mismatch {
            report: bad.join("\n"),
        }
        .into());
    }
    let replaced = switch(ops, &mut appliers).await?;
    let rebuilt = appliers
        .iter()
        .zip(replaced)
        .zip(checks)
        .map(|((a, old), checks)| Rebuilt {
            projection: a.v.projection,
            version: a.v.version,
            replaced: old,
            checks,
        })
        .collect::<Vec<_>>();
    for r in &rebuilt {
        tracing::info!(
            "switched {} to v{} (v{} retired, kept until `projector gc`)",
            r.projection.name(),
            r.version,
            r.replaced
        );
    }
    Ok(Some(Summary {
        rebuilt,
        bulk_events,
        bulk_secs,
        total_secs: began.elapsed().as_secs_f64(),
    }))
}

/// Builds `projections` as of event `to_seq` into new `replay` versions (schemas
/// `proj_<p>_v<N>`), for audits; never serving. Returns the versions built.
///
/// # Errors
/// `to_seq` beyond the log head; NATS or database failures.
pub async fn replay(
    ops: &Context,
    projections: &[Projection],
    to_seq: u64,
    start: Start,
) -> anyhow::Result<Vec<Version>> {
    let head = ops.head().await?;
    anyhow::ensure!(
        to_seq <= head,
        "--to-event-seq {to_seq} is beyond the log head {head}"
    );
    let versions = take_versions(ops, projections, State::Replay, start, Some(to_seq)).await?;
    if start == Start::Discard {
        return Ok(Vec::new());
    }
    let mut appliers: Vec<Applier> = versions
        .into_iter()
        .map(|v| Applier::new(v, ops.policy))
        .collect();
    fill(ops, &mut appliers, to_seq, &format!("replay to {to_seq}")).await?;
    Ok(appliers.into_iter().map(|a| a.v).collect())
}
