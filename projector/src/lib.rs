//! # projector — builds Parley's Postgres read models from the event log
//!
//! Each projection consumes the whole log through its own durable JetStream consumer and keeps
//! its own checkpoint (the last applied stream sequence). A batch's read-model writes and the
//! checkpoint commit in one Postgres transaction, and the batch is acked only after the commit;
//! events at or below the checkpoint are skipped, so redeliveries and crashes anywhere leave the
//! read models exactly as if each event were applied once.
//!
//! ## Layout
//! - [`core`]: the pure part. [`core::Record`] is a decoded event at its stream sequence; each
//!   projection turns a batch of records into a plan of row changes (coalescing runs of
//!   messages), with no I/O.
//! - [`shell`]: the transactional part. [`shell::writer`] executes plans in SQL,
//!   [`shell::runner`] owns the consumer loop, checkpoints, parking of undecodable events,
//!   backoff and metrics.
//! - [`schema`]: versions of projections (blue/green schemas) and their DDL.
//! - [`ops`]: operator commands: rebuild, replay, status, gc (and [`shell::dlq`] for the
//!   dead-letter table).
//! - migrations live in the `readmodel` crate (`readmodel/migrations/`); the projector is the
//!   one component that applies them, at its start and as `projector migrate`.
//! - [`config`] — settings (env `PARLEY_*`).

pub mod config;
pub mod core;
pub mod ops;
pub mod schema;
pub mod shell;

pub use config::Config;
pub use core::Projection;
pub use shell::runner::run;
