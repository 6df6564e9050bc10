//! The registry of projection versions (`projection_versions`): finding, creating, indexing,
//! publishing and dropping versions.
//!
//! A version's tables live in schema `proj_<projection>_v<version>` and are created from the
//! DDL of [`readmodel::tables`], which is the shape the migrations leave the first version in
//! (`tests/tests/readmodel.rs` checks that the two agree). `public` holds one view per table
//! over the serving version (see `readmodel/migrations/V3__versioned_read_models.sql`).

use crate::core::Projection;
use deadpool_postgres::GenericClient;
use readmodel::sql::{opt_seq, seq, Seq};
pub use readmodel::tables::{deferred_indexes, tables};

/// The schema of version `version` of `p`.
pub fn schema_name(p: Projection, version: i32) -> String {
    format!("proj_{}_v{version}", p.name())
}

/// What a version is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Readers see it through the `public` views; the running projector keeps it current.
    Serving,
    /// A rebuild is filling it; it becomes serving when verified.
    Building,
    /// It served before the last switch; kept until `projector gc`.
    Retired,
    /// An audit view as of `target_seq` (`projector replay`); never serving.
    Replay,
}

impl State {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Serving => "serving",
            State::Building => "building",
            State::Retired => "retired",
            State::Replay => "replay",
        }
    }

    /// Inverse of [`State::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [
            State::Serving,
            State::Building,
            State::Retired,
            State::Replay,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// One row of `projection_versions`.
#[derive(Debug, Clone)]
pub struct Version {
    /// The projection.
    pub projection: Projection,
    /// Its version number (1, 2, …; each rebuild or replay takes the next).
    pub version: i32,
    /// The schema its tables live in.
    pub schema: String,
    /// What it is for.
    pub state: State,
    /// The last stream sequence applied (its checkpoint).
    pub last_seq: u64,
    /// Replays stop at this stream sequence.
    pub target_seq: Option<u64>,
    /// Halted on this poison event (policy `stop`).
    pub parked_seq: Option<u64>,
    /// Events per second over the last batches.
    pub apply_rate: f64,
    /// Whether its deferred indexes exist.
    pub indexed: bool,
    /// Seconds since its last checkpoint write.
    pub idle_secs: f64,
}

const COLUMNS: &str = "projection, version, schema_name, state, last_seq, target_seq, parked_seq, \
     apply_rate, indexed, extract(epoch from now() - updated_at)::float8";

/// The version in `row` (of [`COLUMNS`]); `None` for a projection or state this build does not
/// know (a row a newer projector wrote), which it leaves alone.
fn from_row(row: &tokio_postgres::Row) -> Result<Option<Version>, tokio_postgres::Error> {
    let (Some(projection), Some(state)) = (
        Projection::from_name(row.try_get(0)?),
        State::parse(row.try_get(3)?),
    ) else {
        return Ok(None);
    };
    Ok(Some(Version {
        projection,
        version: row.try_get(1)?,
        schema: row.try_get(2)?,
        state,
        last_seq: seq(row, 4)?,
        target_seq: opt_seq(row, 5)?,
        parked_seq: opt_seq(row, 6)?,
        apply_rate: row.try_get(7)?,
        indexed: row.try_get(8)?,
        idle_secs: row.try_get(9)?,
    }))
}

/// Every version, by projection then version.
///
/// # Errors
/// Database errors.
pub async fn all<C: GenericClient>(client: &C) -> Result<Vec<Version>, tokio_postgres::Error> {
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM public.projection_versions ORDER BY projection, version"
            ),
            &[],
        )
        .await?;
    rows.iter()
        .filter_map(|r| from_row(r).transpose())
        .collect()
}

/// The version of `p` in `state` (the newest one, for states that can repeat).
///
/// # Errors
/// Database errors.
pub async fn find<C: GenericClient>(
    client: &C,
    p: Projection,
    state: State,
) -> Result<Option<Version>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            &format!(
                "SELECT {COLUMNS} FROM public.projection_versions \
                 WHERE projection = $1 AND state = $2 ORDER BY version DESC LIMIT 1"
            ),
            &[&p.name(), &state.as_str()],
        )
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?.flatten())
}

/// Re-reads one version.
///
/// # Errors
/// Database errors.
pub async fn get<C: GenericClient>(
    client: &C,
    p: Projection,
    version: i32,
) -> Result<Option<Version>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            &format!(
                "SELECT {COLUMNS} FROM public.projection_versions \
                 WHERE projection = $1 AND version = $2"
            ),
            &[&p.name(), &version],
        )
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?.flatten())
}

/// Creates the next version of `p` in `state` (building or replay) with empty tables (deferred
/// indexes absent) inside the caller's transaction `tx`: a caller creating the versions of
/// several projections commits them together, so a crash leaves either none of them or all,
/// complete and empty.
///
/// # Errors
/// Database errors; a second concurrent rebuild of `p` fails on the version key.
pub async fn create(
    tx: &tokio_postgres::Transaction<'_>,
    p: Projection,
    state: State,
    target_seq: Option<u64>,
) -> Result<Version, tokio_postgres::Error> {
    // Serialise version numbering per projection.
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('parley.projection_versions.' || $1))",
        &[&p.name()],
    )
    .await?;
    let version: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) + 1 FROM public.projection_versions \
             WHERE projection = $1",
            &[&p.name()],
        )
        .await?
        .try_get(0)?;
    let schema = schema_name(p, version);
    tx.execute(
        "INSERT INTO public.projection_versions \
         (projection, version, schema_name, state, target_seq, indexed) \
         VALUES ($1, $2, $3, $4, $5, false)",
        &[
            &p.name(),
            &version,
            &schema,
            &state.as_str(),
            &target_seq.map(Seq),
        ],
    )
    .await?;
    tx.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; \
         SET LOCAL search_path TO {schema}"
    ))
    .await?;
    for (_, ddl) in tables(p) {
        tx.batch_execute(ddl).await?;
    }
    Ok(Version {
        projection: p,
        version,
        schema,
        state,
        last_seq: 0,
        target_seq,
        parked_seq: None,
        apply_rate: 0.0,
        indexed: false,
        idle_secs: 0.0,
    })
}

/// Creates the deferred indexes of `v` (idempotent) and refreshes planner statistics, in one
/// transaction whose settings (`search_path`, `maintenance_work_mem`) are `SET LOCAL`, so
/// nothing leaks to the pooled connection's next user, even on an error.
///
/// # Errors
/// Database errors.
pub async fn finish_indexes(
    client: &mut deadpool_postgres::Object,
    v: &Version,
) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.batch_execute(&format!(
        "SET LOCAL maintenance_work_mem = '512MB'; SET LOCAL search_path TO {}; \
         SET LOCAL synchronous_commit TO on",
        v.schema
    ))
    .await?;
    for ddl in deferred_indexes(v.projection) {
        tx.batch_execute(ddl).await?;
    }
    for (table, _) in tables(v.projection) {
        tx.batch_execute(&format!("ANALYZE {table}")).await?;
    }
    tx.execute(
        "UPDATE public.projection_versions SET indexed = true \
         WHERE projection = $1 AND version = $2",
        &[&v.projection.name(), &v.version],
    )
    .await?;
    tx.commit().await
}

/// Points the `public` views of `v`'s tables at its schema (inside the switch transaction).
///
/// # Errors
/// Database errors (a changed column list cannot replace a view: such a change needs a
/// migration that drops the views first).
pub async fn publish_views<C: GenericClient>(
    client: &C,
    v: &Version,
) -> Result<(), tokio_postgres::Error> {
    for (table, _) in tables(v.projection) {
        client
            .batch_execute(&format!(
                "CREATE OR REPLACE VIEW public.{table} AS SELECT * FROM {}.{table}",
                v.schema
            ))
            .await?;
    }
    Ok(())
}

/// Drops version `v` of `p` (its schema and its row) in one transaction. Refuses the serving
/// version.
///
/// # Errors
/// Database errors, or `v` is serving.
pub async fn drop_version(
    client: &mut deadpool_postgres::Object,
    v: &Version,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        v.state != State::Serving,
        "{} v{} is serving; it cannot be dropped",
        v.projection.name(),
        v.version
    );
    let tx = client.transaction().await?;
    let n = tx
        .execute(
            "DELETE FROM public.projection_versions \
             WHERE projection = $1 AND version = $2 AND state <> 'serving'",
            &[&v.projection.name(), &v.version],
        )
        .await?;
    anyhow::ensure!(
        n == 1,
        "{} v{} changed state meanwhile",
        v.projection.name(),
        v.version
    );
    tx.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", v.schema))
        .await?;
    tx.execute(
        "DELETE FROM public.parked_events WHERE projection = $1 AND version = $2",
        &[&v.projection.name(), &v.version],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
