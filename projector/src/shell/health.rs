//! What `/ready` and `/metrics` know of this process's projections: each runner's
//! [`Progress`], shared through [`Health`], judged against [`ReadyBounds`].

use crate::core::Projection;
use std::sync::{Arc, Mutex};

/// One projection's progress as its runner last saw it.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Serving version.
    pub version: i32,
    /// Its checkpoint.
    pub checkpoint: u64,
    /// Events in the log after the checkpoint (from the consumer's pending count).
    pub lag_events: u64,
    /// Age in seconds of the newest applied event while behind, 0 when caught up.
    pub lag_seconds: f64,
    /// Halted on this poison event.
    pub halted: Option<u64>,
    /// Whether the runner is consuming (false until it has positioned its consumer).
    pub running: bool,
    /// Another projector process holds the projection's lease; this one waits to take over.
    pub standby: bool,
}

/// Progress of every projection of this process, shared with `/ready` and `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct Health(Arc<Mutex<Vec<(Projection, Progress)>>>);

impl Health {
    pub(crate) fn set(&self, p: Projection, f: impl FnOnce(&mut Progress)) {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match all.iter_mut().find(|(q, _)| *q == p) {
            Some((_, progress)) => f(progress),
            None => {
                let mut progress = Progress::default();
                f(&mut progress);
                all.push((p, progress));
            }
        }
    }

    /// A copy of every projection's progress.
    pub fn snapshot(&self) -> Vec<(Projection, Progress)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `/ready`'s verdict: ready when each of the `bounds.expected` projections either stands
    /// by (another process serves it) or runs, is not halted on a poison event, and lags no
    /// more than `bounds.events` events or `bounds.seconds` seconds. Returns the verdict and a
    /// JSON body listing each projection (`role`: `serving` or `standby`).
    pub fn readiness(&self, bounds: ReadyBounds) -> (bool, serde_json::Value) {
        let all = self.snapshot();
        let mut ok = all.len() >= bounds.expected;
        let items: Vec<serde_json::Value> = all
            .iter()
            .map(|(p, pr)| {
                let fine = pr.standby
                    || (pr.running
                        && pr.halted.is_none()
                        && pr.lag_events <= bounds.events
                        && pr.lag_seconds <= bounds.seconds);
                ok &= fine;
                serde_json::json!({
                    "projection": p.name(),
                    "role": if pr.standby { "standby" } else { "serving" },
                    "version": pr.version, "checkpoint": pr.checkpoint,
                    "lag_events": pr.lag_events, "lag_seconds": pr.lag_seconds,
                    "halted_at": pr.halted, "running": pr.running, "ready": fine,
                })
            })
            .collect();
        (ok, serde_json::json!({ "ready": ok, "projections": items }))
    }
}

/// Bounds of the projector's `/ready` (`PARLEY_READY_MAX_LAG`, `PARLEY_READY_MAX_LAG_SECONDS`).
#[derive(Debug, Clone, Copy)]
pub struct ReadyBounds {
    /// Most events behind the log.
    pub events: u64,
    /// Most seconds behind (age of the newest applied event while behind).
    pub seconds: f64,
    /// Projections this process runs.
    pub expected: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_projection_runs_within_bounds() {
        let bounds = ReadyBounds {
            events: 100,
            seconds: 5.0,
            expected: 2,
        };
        let h = Health::default();
        let running = |pr: &mut Progress| pr.running = true;
        h.set(Projection::Messages, running);
        assert!(
            !h.readiness(bounds).0,
            "one of two projections is not running yet"
        );
        h.set(Projection::Channels, running);
        assert!(h.readiness(bounds).0);
        h.set(Projection::Channels, |pr| pr.lag_events = 101);
        assert!(!h.readiness(bounds).0, "lag in events over the bound");
        h.set(Projection::Channels, |pr| {
            pr.lag_events = 100;
            pr.lag_seconds = 5.5;
        });
        let (ok, body) = h.readiness(bounds);
        assert!(!ok, "lag in seconds over the bound");
        assert_eq!(body["projections"][1]["ready"], false);
        h.set(Projection::Channels, |pr| {
            pr.lag_seconds = 0.0;
            pr.halted = Some(7);
        });
        assert!(!h.readiness(bounds).0, "halted on a poison event");
        h.set(Projection::Channels, |pr| pr.halted = None);
        assert!(h.readiness(bounds).0);
        h.set(Projection::Channels, |pr| {
            pr.running = false;
            pr.standby = true;
        });
        let (ok, body) = h.readiness(bounds);
        assert!(ok, "a standby (another process serves it) is ready");
        assert_eq!(body["projections"][1]["role"], "standby");
    }
}
