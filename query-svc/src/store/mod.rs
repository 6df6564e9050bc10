//! Postgres reads of the read models the projector maintains (schema: the `readmodel` crate's
//! migrations).
//!
//! Every query is a named `const` with parameters, prepared through `prepare_cached`, and
//! filters on `tenant = $1`. Rows come back as plain structs; HTTP shapes live in `api/`.
//!
//! - [`messages`]: channel history pages and a message by id.
//! - [`channels`]: a group's row with the viewer's membership, and its member list.
//! - [`conversations`]: a user's conversation list with each last message.
//! - [`moderation`]: a group's bans and send lists, a user's blocks.
//! - [`checkpoints`]: the projections' checkpoints and halts (`readmodel::checkpoints`).
//! - [`realtime`]: membership snapshot, a user's channels and catch-up pages for live push.

pub mod channels;
pub mod checkpoints;
pub mod conversations;
pub mod messages;
pub mod moderation;
pub mod realtime;

use deadpool_postgres::{Object, Pool, PoolError};
use std::time::Duration;
use tokio_postgres::Row;

/// A read failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No connection could be had from the pool (Postgres down, pool exhausted or closed).
    #[error("database connection: {0}")]
    Pool(#[from] PoolError),
    /// A statement failed: connection loss, or a fault in the query or its data.
    #[error("database query: {0}")]
    Query(#[from] tokio_postgres::Error),
    /// No pooled connection became free within [`CONNECTION_WAIT`].
    #[error("no database connection within {CONNECTION_WAIT:?}")]
    PoolTimeout,
}

impl StoreError {
    /// Whether the error means Postgres is unreachable or overloaded (answer 503), rather than a
    /// fault (answer 500).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Pool(_) | StoreError::PoolTimeout => true,
            StoreError::Query(e) => query_error_is_unavailable(e),
        }
    }
}

/// Connection-level failures: a closed connection, an I/O error, or SQLSTATE class 08
/// (connection exception), 53 (insufficient resources) or 57P0x (server shutting down).
fn query_error_is_unavailable(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        return code.starts_with("08") || code.starts_with("53") || code.starts_with("57P0");
    }
    std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
}

/// Longest wait for a pooled connection (the shared pool is built without wait timeouts).
pub const CONNECTION_WAIT: Duration = Duration::from_secs(5);

/// A connection from `pool`, within [`CONNECTION_WAIT`].
async fn client(pool: &Pool) -> Result<Object, StoreError> {
    match tokio::time::timeout(CONNECTION_WAIT, pool.get()).await {
        Ok(conn) => Ok(conn?),
        Err(_) => Err(StoreError::PoolTimeout),
    }
}

/// A message row as stored in `messages`, minus its channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRow {
    /// The message's UUID in its text form.
    pub message_id: String,
    /// Per-channel sequence, from 1.
    pub message_seq: i64,
    /// The sender's idempotency key, if it sent one.
    pub client_msg_no: Option<String>,
    /// The sender.
    pub from_uid: String,
    /// The opaque payload bytes.
    pub payload: Vec<u8>,
    /// When the command service accepted it, ms since the Unix epoch.
    pub sent_at: i64,
}

impl MessageRow {
    /// Reads the columns `message_id` (as text), `message_seq`, `client_msg_no`, `from_uid`,
    /// `payload`, `sent_at`.
    fn from_row(row: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            message_id: row.try_get("message_id")?,
            message_seq: row.try_get("message_seq")?,
            client_msg_no: row.try_get("client_msg_no")?,
            from_uid: row.try_get("from_uid")?,
            payload: row.try_get("payload")?,
            sent_at: row.try_get("sent_at")?,
        })
    }
}

/// Clamps a page size into a `LIMIT` parameter.
fn limit_param(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
