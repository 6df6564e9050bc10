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
use super::switch::{switch, verify_all};
use super::verify::TableCheck;
use crate::core::Projection;
use crate::schema::{self, State, Version};
use crate::shell::apply::Applier;
use crate::shell::context::Context;
use std::time::Instant;

/// What `rebuild` does with an existing unfinished rebuild.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Start a new version (fails if one is being built).
    Fresh,
    /// Continue the version being built; start one for a projection that has none.
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

/// The versions a rebuild (or replay) of `projections` works on, in the order given.
///
/// `Fresh` and `Resume` create the versions they need in **one** transaction: killed while
/// creating them, the operator finds either none or all of them, never a part of the set.
/// `Resume` takes each projection's unfinished version and starts the ones that have none
/// (after `projector rebuild messages` was killed, `rebuild --all --resume` goes on with all).
async fn take_versions(
    ops: &Context,
    projections: &[Projection],
    state: State,
    start: Start,
    target: Option<u64>,
) -> anyhow::Result<Vec<Version>> {
    let mut client = ops.pool.get().await?;
    let mut found = Vec::with_capacity(projections.len());
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
                found.push((p, Some(v)));
            }
            (Start::Fresh, Some(v)) if state == State::Building => anyhow::bail!(
                "a rebuild of {} is unfinished (v{}, at event {}): continue it with \
                 `projector rebuild {} --resume` or drop it with `--discard`",
                p.name(),
                v.version,
                v.last_seq,
                p.name()
            ),
            (Start::Resume | Start::Fresh, _) => found.push((p, None)),
        }
    }
    let tx = client.transaction().await?;
    let mut out = Vec::with_capacity(found.len());
    for (p, existing) in found {
        let v = match existing {
            Some(v) => v,
            None => {
                let v = schema::create(&tx, p, state, target).await?;
                tracing::info!("created {} v{} in schema {}", p.name(), v.version, v.schema);
                v
            }
        };
        out.push(v);
    }
    tx.commit().await?;
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
