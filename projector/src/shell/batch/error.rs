//! Why a batch did not commit, and which database failures are the data's fault (poison)
//! rather than the environment's (transient).

/// Why a batch did not commit.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The version is no longer in the state the writer expects (switched, retired,
    /// discarded): stop writing it.
    #[error("{version} is no longer {state}")]
    Fenced {
        /// The projection version (`messages v3`).
        version: String,
        /// The state it was expected in.
        state: &'static str,
    },
    /// A failure that says nothing about the events (connection, serialization, resources),
    /// including a commit of unknown outcome: re-read the checkpoint and retry, never park.
    #[error("transient database failure")]
    Transient(#[source] Transient),
    /// The stored checkpoint is not the one the writer started from (see the module docs):
    /// nothing was written; re-read the checkpoint and reposition.
    #[error("stored checkpoint is {stored}, not the expected {expected}: re-reading it")]
    Stale {
        /// The checkpoint the writer started from.
        expected: u64,
        /// The checkpoint found in `projection_versions`.
        stored: u64,
    },
    /// An event could not be decoded or applied: retry, then isolate and park.
    #[error("{0}")]
    Poison(String),
}

/// The cause of a [`BatchError::Transient`].
#[derive(Debug, thiserror::Error)]
pub enum Transient {
    /// Postgres failed the statement or the connection (SQLSTATE classes 08, 40, 53, 57, 58,
    /// or no SQLSTATE: a broken connection, a commit of unknown outcome).
    #[error(transparent)]
    Db(tokio_postgres::Error),
    /// No connection could be taken from the pool.
    #[error(transparent)]
    Pool(#[from] deadpool_postgres::PoolError),
}

impl From<tokio_postgres::Error> for BatchError {
    fn from(e: tokio_postgres::Error) -> Self {
        classify(e)
    }
}

impl From<deadpool_postgres::PoolError> for BatchError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        BatchError::Transient(Transient::Pool(e))
    }
}

/// SQLSTATE classes that blame the environment, not the data: 08 connection, 40 transaction
/// rollback (serialization, deadlock), 53 insufficient resources, 57 operator intervention,
/// 58 system error (PostgreSQL manual, appendix A).
fn classify(e: tokio_postgres::Error) -> BatchError {
    match e.code() {
        Some(code) if !["08", "40", "53", "57", "58"].contains(&&code.code()[..2]) => {
            BatchError::Poison(db_message(&e))
        }
        _ => BatchError::Transient(Transient::Db(e)),
    }
}

fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{}: {} ({detail})", db.code().code(), db.message()),
            None => format!("{}: {}", db.code().code(), db.message()),
        },
        None => e.to_string(),
    }
}
