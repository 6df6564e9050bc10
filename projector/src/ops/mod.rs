//! Operator commands (`projector rebuild|replay|status|gc|dlq`), run as one-shot processes beside
//! the serving projector. They coordinate with it only through Postgres
//! (`projection_versions`, `parked_events`), so any of them can be killed at any moment.
//!
//! - [`build`]: one read of the log applied to several versions at once.
//! - [`rebuild`]: blue/green rebuild (bulk, index, catch up, verify, switch) and replay.
//! - [`switch`]: freezing the serving versions, verifying against them and switching.
//! - [`verify`]: row counts and content checksums of two versions' tables.
//! - [`status`]: every version with checkpoint, lag, rate and state.
//! - [`gc`]: dropping retired versions.
//! - [`progress`]: a progress bar on a terminal, log lines elsewhere.

pub mod build;
pub mod gc;
pub mod progress;
pub mod rebuild;
pub mod status;
pub mod switch;
pub mod verify;

use crate::shell::apply::Policy;
use crate::shell::context::Context;
use crate::Config;

/// The context of the operator commands: batches of at least 10,000 events, relaxed commits
/// (`synchronous_commit = off`), transient failures retried 20 times, then an error.
///
/// # Errors
/// Connection or migration failures.
pub async fn connect(config: &Config) -> anyhow::Result<Context> {
    let policy = Policy {
        poison: config.on_poison,
        max_attempts: config.poison_attempts,
        transient_limit: Some(20),
        relaxed: true,
    };
    Context::connect(
        config,
        "parley-projector-ops",
        8,
        config.batch_size.max(10_000),
        policy,
    )
    .await
}
