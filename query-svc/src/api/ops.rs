//! What this service's `/ready` checks: Postgres, NATS, the realtime hub and every
//! projection's lag. `/health`, `/ready` and `/metrics` themselves are the shared
//! [`platform::probes::ProbesApi`]; not secured: load balancers, orchestrators and Prometheus
//! call them without an API key.

use super::AppState;
use crate::consistency::Projection;
use crate::store;
use async_nats::jetstream::ErrorCode;
use poem_openapi::Object;
use std::sync::Arc;

/// One projection's progress.
#[derive(Debug, Object)]
pub struct ProjectionLag {
    /// The projection (`messages`, `channels`, `conversations`, …).
    pub name: String,
    /// The last event-log sequence it has applied (0 when it has no checkpoint yet).
    pub checkpoint: u64,
    /// Events it is behind the stream's last sequence; null when the stream is unreachable.
    #[oai(nullable)]
    pub lag: Option<u64>,
    /// The poison event it is halted on (projector policy `PARLEY_PROJECTOR_ON_POISON=stop`,
    /// until `projector dlq retry|skip`); null while it runs. A halted projection makes
    /// `/ready` 503.
    #[oai(nullable)]
    pub halted_at: Option<u64>,
}

/// What `/ready` checked.
#[derive(Debug, Object)]
pub struct Readiness {
    /// Whether the NATS connection is up.
    pub nats: bool,
    /// Whether Postgres answers.
    pub postgres: bool,
    /// Whether the realtime hub has loaded its membership snapshot and follows the log
    /// (sockets answer 503 `HUB_STARTING` until then).
    pub hub: bool,
    /// Each projection's checkpoint and lag, by name (empty when Postgres is down).
    pub projections: Vec<ProjectionLag>,
}

/// What `/ready` checks here (served by [`platform::probes::ProbesApi`]).
pub struct QueryProbe {
    /// Shared state.
    pub state: Arc<AppState>,
    /// The realtime side (its hub's readiness).
    pub rt: Arc<crate::realtime::Realtime>,
}

impl QueryProbe {
    /// The stream's last sequence: 0 when the stream does not exist yet, `None` when it cannot
    /// be read.
    async fn stream_last_seq(&self) -> Option<u64> {
        let stream = self
            .state
            .jetstream
            .get_stream_no_info(&self.state.stream)
            .await
            .ok()?;
        match stream.get_info().await {
            Ok(info) => Some(info.state.last_sequence),
            Err(e) => {
                let not_found = std::error::Error::source(&e)
                    .and_then(|s| s.downcast_ref::<async_nats::jetstream::Error>())
                    .is_some_and(|j| j.error_code() == ErrorCode::STREAM_NOT_FOUND);
                if not_found {
                    Some(0)
                } else {
                    tracing::warn!(error = %e, stream = %self.state.stream, "stream info failed");
                    None
                }
            }
        }
    }

    /// Every projection's checkpoint and halt (the ones this service reads included, at 0
    /// when they have no row), or `None` when Postgres cannot be read.
    async fn checkpoints(&self) -> Option<Vec<store::checkpoints::Serving>> {
        let mut rows = match store::checkpoints::all(&self.state.pool).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "reading projection checkpoints failed");
                return None;
            }
        };
        let pairs: Vec<(String, u64)> = rows.iter().map(|r| (r.name.clone(), r.last_seq)).collect();
        self.state.checkpoints.observe_named(&pairs);
        for p in Projection::ALL {
            if !rows.iter().any(|r| r.name == p.name()) {
                rows.push(store::checkpoints::Serving {
                    name: p.name().to_owned(),
                    last_seq: 0,
                    halted_at: None,
                });
            }
        }
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        Some(rows)
    }
}

/// The projection lags, and whether every one is known, at most `max_lag` and not halted.
fn lags(
    checkpoints: Vec<store::checkpoints::Serving>,
    last_seq: Option<u64>,
    max_lag: u64,
) -> (Vec<ProjectionLag>, bool) {
    let projections: Vec<ProjectionLag> = checkpoints
        .into_iter()
        .map(|c| ProjectionLag {
            name: c.name,
            checkpoint: c.last_seq,
            lag: last_seq.map(|last| last.saturating_sub(c.last_seq)),
            halted_at: c.halted_at,
        })
        .collect();
    let ok = projections
        .iter()
        .all(|p| p.halted_at.is_none() && p.lag.is_some_and(|l| l <= max_lag));
    (projections, ok)
}

impl platform::probes::Probe for QueryProbe {
    type Report = Readiness;

    /// Ready when Postgres answers, NATS is connected, the realtime hub follows the log and
    /// every projection runs (none halted on a poison event) and lags the event stream by at
    /// most `PARLEY_READY_MAX_LAG` events.
    async fn readiness(&self) -> (bool, Readiness) {
        let nats = platform::log::connected(&self.state.nats);
        let (postgres, last_seq) = tokio::join!(platform::db::ping(&self.state.pool), async {
            if nats {
                self.stream_last_seq().await
            } else {
                None
            }
        });
        let checkpoints = if postgres {
            self.checkpoints().await
        } else {
            None
        };
        let postgres = postgres && checkpoints.is_some();
        let (projections, caught_up) = lags(
            checkpoints.unwrap_or_default(),
            last_seq,
            self.state.ready_max_lag,
        );
        let hub = self.rt.hub.ready();
        let ok = nats && postgres && hub && caught_up;
        (
            ok,
            Readiness {
                nats,
                postgres,
                hub,
                projections,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serving(name: &str, last_seq: u64, halted_at: Option<u64>) -> store::checkpoints::Serving {
        store::checkpoints::Serving {
            name: name.into(),
            last_seq,
            halted_at,
        }
    }

    #[test]
    fn lag_is_stream_head_minus_checkpoint() {
        let cps = vec![
            serving("channels", 90, None),
            serving("messages", 100, None),
        ];
        let (p, ok) = lags(cps.clone(), Some(100), 10);
        assert!(ok);
        assert_eq!(
            p.iter().map(|p| p.lag).collect::<Vec<_>>(),
            vec![Some(10), Some(0)]
        );
        assert!(!lags(cps.clone(), Some(101), 10).1);
        assert!(!lags(cps, None, 10).1);
    }

    #[test]
    fn a_halted_projection_is_not_ready_even_without_lag() {
        let cps = vec![
            serving("channels", 100, Some(101)),
            serving("messages", 100, None),
        ];
        let (p, ok) = lags(cps, Some(100), 10);
        assert!(!ok);
        assert_eq!(p[0].halted_at, Some(101));
    }
}
