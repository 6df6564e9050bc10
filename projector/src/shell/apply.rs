//! [`Applier`]: applies batches to one projection version with the poison-event policy:
//! a failing batch is retried with backoff (100 ms doubling, at most 10 s); after
//! `max_attempts` failures it is applied one event at a time and the events that still fail are
//! parked ([`PoisonPolicy`]).
//!
//! Transient failures (connection, serialization, a commit of unknown outcome) and a stored
//! checkpoint other than the one the applier holds ([`BatchError::Stale`]) are returned at
//! once, never retried from memory: the applier's checkpoint may no longer be the database's
//! (a lost or uncertain commit), so the caller re-reads the version and repositions its reader
//! ([`crate::shell::runner`], [`crate::ops::build`]). They never park anything.

use crate::schema::Version;
use crate::shell::batch::{self, Batch, BatchError, Commit, Committed, Mode, PoisonPolicy};
use crate::shell::dlq;
use std::time::Instant;

/// How an [`Applier`] treats failures.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Skip or stop on a poison event.
    pub poison: PoisonPolicy,
    /// Failed attempts of a batch before its events are isolated and parked (≥ 1).
    pub max_attempts: u32,
    /// Transient failures in a row before an operator command gives up; `None`: never give up
    /// (the serving projector waits out a database restart). Counted by the caller that
    /// re-reads and retries ([`crate::ops::build::run_to`]).
    pub transient_limit: Option<u32>,
    /// `synchronous_commit = off` (rebuilds and replays only; see [`Commit::relaxed`]).
    pub relaxed: bool,
}

/// Events per second, over windows of at least one second.
#[derive(Debug)]
struct Rate {
    since: Instant,
    count: u64,
    value: f64,
}

impl Rate {
    fn add(&mut self, n: u64) {
        self.count += n;
        let secs = self.since.elapsed().as_secs_f64();
        if secs >= 1.0 {
            self.value = self.count as f64 / secs;
            self.count = 0;
            self.since = Instant::now();
        }
    }
}

/// Writes one version; `v.last_seq` follows its checkpoint and `v.parked_seq` its halt.
#[derive(Debug)]
pub struct Applier {
    /// The version written, as last committed.
    pub v: Version,
    policy: Policy,
    rate: Rate,
}

impl Applier {
    /// An applier of `v`.
    pub fn new(v: Version, policy: Policy) -> Self {
        Self {
            v,
            policy,
            rate: Rate {
                since: Instant::now(),
                count: 0,
                value: 0.0,
            },
        }
    }

    /// Events per second recently applied.
    pub fn rate(&self) -> f64 {
        self.rate.value
    }

    /// Applies the records of `batch` above the checkpoint and up to `upto`, and moves the
    /// checkpoint to `upto` (or to just before the event that halts it).
    ///
    /// # Errors
    /// [`BatchError::Fenced`], [`BatchError::Stale`] or [`BatchError::Transient`]: nothing of
    /// the batch is known to be written, and `self.v` may not be the database's any more —
    /// re-read it. Poison is never returned (it ends parked).
    pub async fn apply(
        &mut self,
        pool: &deadpool_postgres::Pool,
        batch: &Batch,
        upto: u64,
    ) -> Result<Committed, BatchError> {
        if upto <= self.v.last_seq || self.v.parked_seq.is_some() {
            return Ok(Committed {
                checkpoint: self.v.last_seq,
                halted: self.v.parked_seq,
                ..Committed::default()
            });
        }
        let mut poisoned = 0u32;
        let mut delays = platform::retry::PROJECTION.delays();
        loop {
            let mode = if poisoned >= self.policy.max_attempts {
                Mode::Isolate(self.policy.poison)
            } else {
                Mode::Normal
            };
            let opts = Commit {
                from: self.v.last_seq,
                upto,
                mode,
                rate: self.rate.value,
                relaxed: self.policy.relaxed,
                resolves: None,
                keep: None,
            };
            match batch::commit(pool, &self.v, batch, opts).await {
                Ok(c) => {
                    self.rate.add(u64::try_from(c.applied).unwrap_or(u64::MAX));
                    self.v.last_seq = c.checkpoint;
                    self.v.parked_seq = c.halted;
                    return Ok(c);
                }
                Err(BatchError::Poison(msg)) => {
                    poisoned += 1;
                    tracing::warn!(projection = self.v.projection.name(), version = self.v.version, attempt = poisoned, error = %msg, "batch failed; retrying");
                    metrics::counter!("projector_batch_failures_total", "projection" => self.v.projection.name()).increment(1);
                    tokio::time::sleep(delays.next_delay()).await;
                }
                Err(other) => return Err(other),
            }
        }
    }

    /// While halted on a parked event: acts on the operator's decision. Returns whether the
    /// projection may go on (`skipped`: moved past it; `retry`: applied it; a retry that fails
    /// parks it again).
    ///
    /// # Errors
    /// Database errors, or [`BatchError::Fenced`].
    pub async fn resolve_halt(
        &mut self,
        pool: &deadpool_postgres::Pool,
    ) -> Result<bool, BatchError> {
        let Some(seq) = self.v.parked_seq else {
            return Ok(true);
        };
        let mut client = pool.get().await?;
        match dlq::state_of(&client, &self.v, seq).await? {
            Some(dlq::ParkedState::Skipped | dlq::ParkedState::Resolved) | None => {
                if dlq::pass(&mut client, &self.v, seq).await? {
                    tracing::warn!(
                        projection = self.v.projection.name(),
                        version = self.v.version,
                        event.seq = seq,
                        "parked event skipped by an operator; going on"
                    );
                    self.v.last_seq = seq;
                    self.v.parked_seq = None;
                    Ok(true)
                } else {
                    Err(BatchError::Fenced {
                        version: format!("{} v{}", self.v.projection.name(), self.v.version),
                        state: self.v.state.as_str(),
                    })
                }
            }
            Some(dlq::ParkedState::Retry) => {
                drop(client);
                let batch = {
                    let client = pool.get().await?;
                    dlq::retries(&client, &self.v).await?
                };
                let mut v = self.v.clone();
                v.last_seq = seq - 1;
                v.parked_seq = None;
                let opts = Commit {
                    from: self.v.last_seq,
                    upto: seq,
                    mode: Mode::Normal,
                    rate: self.rate.value,
                    relaxed: self.policy.relaxed,
                    resolves: Some(seq),
                    keep: None,
                };
                match batch::commit(pool, &v, &batch, opts).await {
                    Ok(c) => {
                        tracing::info!(
                            projection = v.projection.name(),
                            version = v.version,
                            event.seq = seq,
                            "parked event applied on retry; going on"
                        );
                        self.v.last_seq = c.checkpoint;
                        self.v.parked_seq = None;
                        Ok(true)
                    }
                    Err(BatchError::Poison(msg)) => {
                        let client = pool.get().await?;
                        dlq::repark(&client, &self.v, seq, &msg).await?;
                        Ok(false)
                    }
                    Err(e) => Err(e),
                }
            }
            Some(dlq::ParkedState::Parked) => Ok(false),
        }
    }

    /// Applies parked events an operator asked to retry that lie behind the checkpoint (policy
    /// `skip`): out of order, each in its own transaction; the checkpoint stays. Returns how
    /// many were applied.
    ///
    /// # Errors
    /// Database errors, or [`BatchError::Fenced`].
    pub async fn retry_behind(
        &mut self,
        pool: &deadpool_postgres::Pool,
    ) -> Result<usize, BatchError> {
        if self.v.parked_seq.is_some() {
            return Ok(0);
        }
        let batch = {
            let client = pool.get().await?;
            dlq::retries(&client, &self.v).await?
        };
        let mut applied = 0;
        for raw in batch.raw.iter().filter(|r| r.seq <= self.v.last_seq) {
            let mut v = self.v.clone();
            v.last_seq = raw.seq - 1;
            let opts = Commit {
                from: self.v.last_seq,
                upto: raw.seq,
                mode: Mode::Normal,
                rate: self.rate.value,
                relaxed: self.policy.relaxed,
                resolves: Some(raw.seq),
                keep: Some(self.v.last_seq),
            };
            match batch::commit(pool, &v, &batch, opts).await {
                Ok(_) => {
                    tracing::info!(
                        projection = v.projection.name(),
                        version = v.version,
                        event.seq = raw.seq,
                        "parked event applied on retry (out of order)"
                    );
                    applied += 1;
                }
                Err(BatchError::Poison(msg)) => {
                    let client = pool.get().await?;
                    dlq::repark(&client, &self.v, raw.seq, &msg).await?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(applied)
    }
}
