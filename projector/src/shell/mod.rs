//! The transactional shell around the pure core.
//!
//! - [`writer`]: executes plans as set-based SQL inside a transaction.
//! - [`moderation`]: the channels plan's moderation steps in SQL.
//! - [`batch`]: one batch of one version in one transaction, with its checkpoint (the fence).
//! - [`apply`]: retries, backoff and the poison-event policy around [`batch`].
//! - [`dlq`]: the dead-letter table `parked_events`.
//! - [`lease`]: one runner per projection at a time (advisory lock; others stand by).
//! - [`context`]: the log, the database and the policy a runner or operator command uses.
//! - [`intake`]: reading batches off a consumer's message stream.
//! - [`health`]: each projection's progress, for `/ready` and `/metrics`.
//! - [`runner`]: the serving projector, one task per projection.

pub mod apply;
pub mod batch;
pub mod context;
pub mod dlq;
pub mod health;
pub mod intake;
pub mod lease;
pub mod moderation;
pub mod runner;
pub mod writer;
