//! The dead-letter table `parked_events`: what the runners park, and what operators do with it
//! (`projector dlq list|retry|skip`).
//!
//! Operators only change a row's `state`; the runner that owns the version acts on it:
//! - `retry`: the runner applies the event again. Under policy `stop` the projection is halted
//!   right before it, so this is in order; under `skip` it is applied out of order, at most a
//!   second later. Success marks it `resolved`; failure parks it again (`attempts` + 1).
//! - `skip`: under `stop` the projection moves past it; under `skip` it is only a mark that
//!   someone looked.

use crate::core::Projection;
use crate::schema::Version;
use crate::shell::batch::Batch;
use deadpool_postgres::GenericClient;
use postgres_types::{accepts, to_sql_checked, FromSql, IsNull, ToSql, Type};
use readmodel::sql::{seq as seq_at, Seq};

/// Where a parked event stands (column `parked_events.state`, `text`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParkedState {
    /// Parked by a runner; waiting for an operator.
    Parked,
    /// An operator asked for it to be applied again.
    Retry,
    /// An operator gave it up.
    Skipped,
    /// Applied by a retry.
    Resolved,
}

impl ParkedState {
    /// The column value: `parked`, `retry`, `skipped` or `resolved`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Parked => "parked",
            Self::Retry => "retry",
            Self::Skipped => "skipped",
            Self::Resolved => "resolved",
        }
    }

    /// Inverse of [`ParkedState::as_str`].
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Parked, Self::Retry, Self::Skipped, Self::Resolved]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

impl std::fmt::Display for ParkedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'a> FromSql<'a> for ParkedState {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let s = <&str>::from_sql(ty, raw)?;
        Self::parse(s).ok_or_else(|| format!("unknown parked-event state {s:?}").into())
    }

    accepts!(TEXT, VARCHAR);
}

impl ToSql for ParkedState {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.as_str().to_sql(ty, out)
    }

    accepts!(TEXT, VARCHAR);
    to_sql_checked!();
}

/// One parked event.
#[derive(Debug, Clone)]
pub struct Parked {
    /// Projection.
    pub projection: String,
    /// Version of the projection that parked it.
    pub version: i32,
    /// Stream sequence.
    pub event_seq: u64,
    /// Subject it was published on.
    pub subject: String,
    /// The last error.
    pub error: String,
    /// How many times it was parked.
    pub attempts: i32,
    /// Where it stands.
    pub state: ParkedState,
    /// When it was last parked (RFC 3339, UTC).
    pub parked_at: String,
}

/// Parked events, oldest first; `all` includes skipped and resolved ones.
///
/// # Errors
/// Database errors.
pub async fn list<C: GenericClient>(
    client: &C,
    projection: Option<Projection>,
    all: bool,
) -> Result<Vec<Parked>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT projection, version, event_seq, subject, error, attempts, state, \
               to_char(parked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
             FROM public.parked_events \
             WHERE ($1::text IS NULL OR projection = $1) \
               AND ($2 OR state IN ('parked', 'retry')) \
             ORDER BY event_seq, projection, version",
            &[&projection.map(|p| p.name()), &all],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Parked {
                projection: r.try_get(0)?,
                version: r.try_get(1)?,
                event_seq: seq_at(r, 2)?,
                subject: r.try_get(3)?,
                error: r.try_get(4)?,
                attempts: r.try_get(5)?,
                state: r.try_get(6)?,
                parked_at: r.try_get(7)?,
            })
        })
        .collect()
}

/// Marks open parked events `state` (an operator's [`ParkedState::Retry`] or
/// [`ParkedState::Skipped`]): one event (`seq`) or every open one, of one projection or all.
/// Returns how many rows changed.
///
/// # Errors
/// Database errors.
pub async fn mark<C: GenericClient>(
    client: &C,
    projection: Option<Projection>,
    seq: Option<u64>,
    state: ParkedState,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "UPDATE public.parked_events SET state = $3, \
               resolved_at = CASE WHEN $3::text = 'skipped' THEN now() END \
             WHERE ($1::text IS NULL OR projection = $1) \
               AND ($2::int8 IS NULL OR event_seq = $2) AND state IN ('parked', 'retry')",
            &[&projection.map(|p| p.name()), &seq.map(Seq), &state],
        )
        .await
}

/// Events of `v` an operator asked to retry, as a batch ready to apply.
///
/// # Errors
/// Database errors.
pub async fn retries<C: GenericClient>(
    client: &C,
    v: &Version,
) -> Result<Batch, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT event_seq, subject, body FROM public.parked_events \
             WHERE projection = $1 AND version = $2 AND state = 'retry' ORDER BY event_seq",
            &[&v.projection.name(), &v.version],
        )
        .await?;
    let mut batch = Batch::with_capacity(rows.len());
    for r in &rows {
        batch.push(
            seq_at(r, 0)?,
            r.try_get(1)?,
            bytes::Bytes::from(r.try_get::<_, Vec<u8>>(2)?),
        );
    }
    Ok(batch)
}

/// The state of `v`'s parked event `seq` (`None`: no such row).
///
/// # Errors
/// Database errors.
pub async fn state_of<C: GenericClient>(
    client: &C,
    v: &Version,
    seq: u64,
) -> Result<Option<ParkedState>, tokio_postgres::Error> {
    client
        .query_opt(
            "SELECT state FROM public.parked_events \
             WHERE projection = $1 AND version = $2 AND event_seq = $3",
            &[&v.projection.name(), &v.version, &Seq(seq)],
        )
        .await?
        .map(|r| r.try_get(0))
        .transpose()
}

/// Open (parked or retry) events of `v`.
///
/// # Errors
/// Database errors.
pub async fn open_count<C: GenericClient>(
    client: &C,
    v: &Version,
) -> Result<i64, tokio_postgres::Error> {
    client
        .query_one(
            "SELECT count(*) FROM public.parked_events \
             WHERE projection = $1 AND version = $2 AND state IN ('parked', 'retry')",
            &[&v.projection.name(), &v.version],
        )
        .await?
        .try_get(0)
}

/// Moves a halted version past its parked event `seq` (after `projector dlq skip`), if it is
/// still halted there in `v.state` at checkpoint `seq - 1` (a compare-and-set, committed with
/// `synchronous_commit = on`). Returns whether it moved.
///
/// # Errors
/// Database errors.
pub async fn pass(
    client: &mut deadpool_postgres::Object,
    v: &Version,
    seq: u64,
) -> Result<bool, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.batch_execute("SET LOCAL synchronous_commit TO on")
        .await?;
    let n = tx
        .execute(
            "UPDATE public.projection_versions SET last_seq = $3, parked_seq = NULL, \
               updated_at = now() \
             WHERE projection = $1 AND version = $2 AND state = $4 AND parked_seq = $3 \
               AND last_seq = $3 - 1",
            &[
                &v.projection.name(),
                &v.version,
                &Seq(seq),
                &v.state.as_str(),
            ],
        )
        .await?;
    tx.commit().await?;
    Ok(n == 1)
}

/// Parks `v`'s event `seq` again after a failed retry (`attempts` + 1, the new error).
///
/// # Errors
/// Database errors.
pub async fn repark<C: GenericClient>(
    client: &C,
    v: &Version,
    seq: u64,
    error: &str,
) -> Result<(), tokio_postgres::Error> {
    tracing::error!(
        projection = v.projection.name(),
        version = v.version,
        event.seq = seq,
        error,
        "retry failed; event parked again"
    );
    client
        .execute(
            "UPDATE public.parked_events SET state = 'parked', attempts = attempts + 1, \
               error = $4, parked_at = now() \
             WHERE projection = $1 AND version = $2 AND event_seq = $3",
            &[&v.projection.name(), &v.version, &Seq(seq), &error],
        )
        .await?;
    Ok(())
}
