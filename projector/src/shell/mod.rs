//! The transactional shell around the pure core.
//!
//! - [`writer`]: executes plans as set-based SQL inside a transaction.
//! - [`runner`]: one task per projection: consumer, batches, checkpoint, ack, backoff, metrics.
//! - [`checkpoint`]: reading and writing `projection_checkpoints`.

pub mod checkpoint;
pub mod runner;
pub mod writer;
