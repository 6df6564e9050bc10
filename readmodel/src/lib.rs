//! # readmodel — the contract between the projector and the services that read its tables
//!
//! The projector writes the read models; the command service reads channel snapshots and
//! idempotency keys from them, the query service everything else. What both sides must agree
//! on lives here, so neither service depends on the projector: the migrations, the projection
//! names, the tables' DDL, and the queries the command service and the readiness checks use.
//!
//! ## Layout
//! - [`migrate`]: the SQL migrations (`readmodel/migrations/V<n>__*.sql`). One component
//!   applies them — the projector, at its start and as `projector migrate`; the services only
//!   check that the database is current, and wait, saying so, while it is not.
//! - [`projection`]: the projections and their names.
//! - [`tables`]: the DDL of a projection version's tables and the row form of a channel key.
//! - [`snapshot`]: the command service's reads: a channel's snapshot and an idempotency key.
//! - [`sql`]: column types: [`sql::Seq`], a log position as `int8`, range-checked both ways.
//! - [`checkpoints`]: the serving versions' checkpoints and halts, which readers wait on.

pub mod checkpoints;
pub mod migrate;
pub mod projection;
pub mod snapshot;
pub mod sql;
pub mod tables;

pub use projection::Projection;
pub use tables::channel_columns;

/// A read of the read models failed — for services that take connections from a pool and
/// run this crate's queries on them; the cause is its `source()` (log it with
/// `platform::error::chain`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No connection could be taken from the pool (Postgres down, pool exhausted).
    #[error("no Postgres connection from the pool")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// Postgres refused or failed the query.
    #[error("the read-model query failed")]
    Db(#[from] tokio_postgres::Error),
}
