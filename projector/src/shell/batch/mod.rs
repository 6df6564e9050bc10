//! One batch of one projection version in one transaction: check and lock its checkpoint, write
//! its rows, park what cannot be applied, move its checkpoint, commit.
//!
//! The transaction starts by locking the version's `projection_versions` row (`FOR UPDATE`)
//! and comparing it with what the writer believes:
//! - the **state** the writer expects (`serving` for the running projector, `building`/`replay`
//!   for a rebuild or replay): a writer whose version was switched away, retired or discarded
//!   writes nothing and learns it ([`BatchError::Fenced`]). A switch holds that row locked,
//!   which also freezes the old serving version while it runs;
//! - the **checkpoint** the writer starts from (a compare-and-set): when the stored checkpoint
//!   is another one, commits the writer saw succeed were lost (asynchronous commit, failover to
//!   an asynchronous standby, a point-in-time restore) or another writer moved it, and the
//!   batch writes nothing ([`BatchError::Stale`]); the writer must re-read the checkpoint and
//!   reposition its reader there. Without this check a writer would commit a checkpoint past
//!   events whose rows were lost, and they would never be applied again.
//!
//! Every commit states its durability itself, whatever the server's default:
//! `synchronous_commit = on` for serving versions (readers and the command service's snapshot
//! may act on a commit as soon as it is visible), `off` only for rebuilds and replays
//! ([`Commit::relaxed`]), whose lost commits the checkpoint check detects and redoes.

mod error;
pub use error::{BatchError, Transient};

use crate::core::{channels, conversations, messages, Projection, Record};
use crate::schema::Version;
use crate::shell::writer;
use bytes::Bytes;
use deadpool_postgres::Transaction;
use readmodel::sql::Seq;

/// One raw log record as read (kept for parking).
#[derive(Debug, Clone)]
pub struct Raw {
    /// Stream sequence.
    pub seq: u64,
    /// Its subject.
    pub subject: String,
    /// The body.
    pub body: Bytes,
}

/// Log records as read, each decoded once and shared by every projection applying them, in
/// ascending stream sequence.
#[derive(Debug, Default)]
pub struct Batch {
    /// Every record.
    pub raw: Vec<Raw>,
    /// The decodable ones, decoded.
    pub records: Vec<Record>,
    /// `(seq, error)` of the undecodable ones.
    pub errors: Vec<(u64, String)>,
}

impl Batch {
    /// An empty batch with room for `n` records.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            raw: Vec::with_capacity(n),
            records: Vec::with_capacity(n),
            errors: Vec::new(),
        }
    }

    /// Appends a record (sequences must ascend).
    pub fn push(&mut self, seq: u64, subject: String, body: Bytes) {
        match events::decode(&body) {
            Ok(envelope) => self.records.push(Record { seq, envelope }),
            Err(e) => self.errors.push((seq, e.to_string())),
        }
        self.raw.push(Raw { seq, subject, body });
    }

    /// The last sequence, if any.
    pub fn last_seq(&self) -> Option<u64> {
        self.raw.last().map(|r| r.seq)
    }

    /// Records with `lo < seq <= hi`.
    fn records_in(&self, lo: u64, hi: u64) -> &[Record] {
        let a = self.records.partition_point(|r| r.seq <= lo);
        let b = self.records.partition_point(|r| r.seq <= hi);
        &self.records[a..b]
    }

    /// Raw records with `lo < seq <= hi`.
    fn raw_in(&self, lo: u64, hi: u64) -> &[Raw] {
        let a = self.raw.partition_point(|r| r.seq <= lo);
        let b = self.raw.partition_point(|r| r.seq <= hi);
        &self.raw[a..b]
    }

    /// The decode error of `seq`, if it has one.
    fn error_of(&self, seq: u64) -> Option<&str> {
        self.errors
            .iter()
            .find(|(s, _)| *s == seq)
            .map(|(_, e)| e.as_str())
    }

    /// The decoded record of `seq`.
    fn record_of(&self, seq: u64) -> Option<&Record> {
        self.records
            .binary_search_by_key(&seq, |r| r.seq)
            .ok()
            .map(|i| &self.records[i])
    }
}

/// What a projection does with an event it cannot decode or apply after its retries.
///
/// Both park the event in `parked_events` with its error, count it in
/// `projector_parked_events_total` and log it; they differ in what happens next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoisonPolicy {
    /// Park it and go on with the next event (`PARLEY_PROJECTOR_ON_POISON=skip`, the
    /// default): one bad record does not stall every reader; `projector dlq retry` applies it
    /// later, out of order.
    Skip,
    /// Park it and halt the projection just before it (`…=stop`) until `projector dlq retry`
    /// applies it or `projector dlq skip` gives it up: nothing is applied out of order.
    Stop,
}

impl PoisonPolicy {
    /// Parses `skip` or `stop`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "skip" => Some(Self::Skip),
            "stop" => Some(Self::Stop),
            _ => None,
        }
    }
}

/// How to apply a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// All events at once (set-based); any failure fails the batch.
    Normal,
    /// One event at a time, each under a savepoint; an event that fails is parked (after the
    /// batch failed `max_attempts` times in normal mode).
    Isolate(PoisonPolicy),
}

/// A committed batch.
#[derive(Debug, Default, Clone, Copy)]
pub struct Committed {
    /// The checkpoint now stored.
    pub checkpoint: u64,
    /// Events applied.
    pub applied: usize,
    /// Events parked by this batch.
    pub parked: usize,
    /// Policy `stop` halted the projection on this event.
    pub halted: Option<u64>,
}

/// Options of one commit.
#[derive(Debug, Clone, Copy)]
pub struct Commit {
    /// The checkpoint stored now, as the writer last committed or read it (the
    /// compare-and-set's expected value); usually `v.last_seq`.
    pub from: u64,
    /// The checkpoint to store: at least the last entry's sequence (records between that were
    /// filtered out, such as other projections' events, count as applied).
    pub upto: u64,
    /// Normal or isolated.
    pub mode: Mode,
    /// Events/s to record in `projection_versions.apply_rate`.
    pub rate: f64,
    /// `synchronous_commit = off`: a crash may lose the last commits, rows and checkpoint
    /// together, which the next commit's checkpoint check detects and the rebuild redoes. Not
    /// for serving versions, whose readers may already have seen the commit; those commit with
    /// `synchronous_commit = on` whatever the server's default.
    pub relaxed: bool,
    /// A parked event this commit applies again (`projector dlq retry`): marked resolved in
    /// the same transaction.
    pub resolves: Option<u64>,
    /// Store this checkpoint instead of `upto`: a retry applied out of order leaves the
    /// checkpoint where it is.
    pub keep: Option<u64>,
}

const PARK: &str = "INSERT INTO public.parked_events \
     (projection, version, event_seq, subject, error, body) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (projection, version, event_seq) DO UPDATE SET \
       attempts = parked_events.attempts + 1, error = EXCLUDED.error, state = 'parked', \
       parked_at = now(), resolved_at = NULL";

/// Locks the version's row for the transaction and reads what the fence compares.
const LOCK: &str = "SELECT state, last_seq FROM public.projection_versions \
     WHERE projection = $1 AND version = $2 FOR UPDATE";

/// The checkpoint write: a compare-and-set on the state and the previous checkpoint (the row
/// is locked since [`LOCK`], so this only restates the fence).
const CHECKPOINT: &str = "UPDATE public.projection_versions \
     SET last_seq = $3, apply_rate = $4, parked_seq = $5, updated_at = now() \
     WHERE projection = $1 AND version = $2 AND state = $6 AND last_seq = $7";

const RESOLVE: &str = "UPDATE public.parked_events SET state = 'resolved', resolved_at = now() \
     WHERE projection = $1 AND version = $2 AND event_seq = $3";

/// Applies the records of `batch` above `v`'s checkpoint and up to `opts.upto` to version
/// `v`, and stores the checkpoint `opts.upto`, in one transaction.
///
/// # Errors
/// [`BatchError`]: nothing of the batch is kept.
pub async fn commit(
    pool: &deadpool_postgres::Pool,
    v: &Version,
    batch: &Batch,
    opts: Commit,
) -> Result<Committed, BatchError> {
    let p = v.projection;
    let (lo, hi) = (v.last_seq, opts.upto);
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let durability = if opts.relaxed { "off" } else { "on" };
    tx.batch_execute(&format!(
        "SET LOCAL search_path TO {}; SET LOCAL synchronous_commit TO {durability}",
        v.schema
    ))
    .await?;
    fence(&tx, v, opts.from).await?;
    let mut out = Committed {
        checkpoint: opts.keep.unwrap_or(opts.upto),
        ..Committed::default()
    };
    match opts.mode {
        Mode::Normal => {
            if let Some((seq, err)) = batch.errors.iter().find(|(s, _)| *s > lo && *s <= hi) {
                return Err(BatchError::Poison(format!("event {seq}: {err}")));
            }
            let records = batch.records_in(lo, hi);
            apply(p, &tx, records).await?;
            out.applied = records.len();
        }
        Mode::Isolate(policy) => {
            for raw in batch.raw_in(lo, hi) {
                let failure = match (batch.error_of(raw.seq), batch.record_of(raw.seq)) {
                    (Some(err), _) => Some(err.to_owned()),
                    (None, None) => None,
                    (None, Some(record)) => {
                        tx.batch_execute("SAVEPOINT one").await?;
                        match apply(p, &tx, std::slice::from_ref(record)).await {
                            Ok(()) => {
                                tx.batch_execute("RELEASE SAVEPOINT one").await?;
                                None
                            }
                            Err(BatchError::Poison(msg)) => {
                                tx.batch_execute("ROLLBACK TO SAVEPOINT one").await?;
                                Some(msg)
                            }
                            Err(other) => return Err(other),
                        }
                    }
                };
                let Some(error) = failure else {
                    out.applied += 1;
                    continue;
                };
                tracing::error!(projection = p.name(), version = v.version, event.seq = raw.seq, error = %error, ?policy, "event parked");
                tx.execute(
                    PARK,
                    &[
                        &p.name(),
                        &v.version,
                        &Seq(raw.seq),
                        &raw.subject,
                        &error,
                        &raw.body.as_ref(),
                    ],
                )
                .await?;
                out.parked += 1;
                if policy == PoisonPolicy::Stop {
                    out.halted = Some(raw.seq);
                    out.checkpoint = raw.seq - 1;
                    break;
                }
            }
        }
    }
    if let Some(seq) = opts.resolves {
        tx.execute(RESOLVE, &[&p.name(), &v.version, &Seq(seq)])
            .await?;
    }
    let expected = v.state.as_str();
    let n = tx
        .execute(
            CHECKPOINT,
            &[
                &p.name(),
                &v.version,
                &Seq(out.checkpoint),
                &opts.rate,
                &out.halted.map(Seq),
                &expected,
                &Seq(opts.from),
            ],
        )
        .await?;
    if n == 0 {
        return Err(BatchError::Fenced {
            version: format!("{} v{}", p.name(), v.version),
            state: v.state.as_str(),
        });
    }
    tx.commit().await?;
    if out.parked > 0 {
        metrics::counter!("projector_parked_events_total", "projection" => p.name())
            .increment(u64::try_from(out.parked).unwrap_or(u64::MAX));
    }
    Ok(out)
}

/// Locks `v`'s row in `tx` and checks that it is still in `v.state` at checkpoint `from`.
///
/// # Errors
/// [`BatchError::Fenced`] (another state, or the row is gone), [`BatchError::Stale`] (another
/// checkpoint), or a database error.
async fn fence(tx: &Transaction<'_>, v: &Version, from: u64) -> Result<(), BatchError> {
    let p = v.projection;
    let fenced = || BatchError::Fenced {
        version: format!("{} v{}", p.name(), v.version),
        state: v.state.as_str(),
    };
    let Some(row) = tx.query_opt(LOCK, &[&p.name(), &v.version]).await? else {
        return Err(fenced());
    };
    let state: &str = row.try_get(0)?;
    let stored = readmodel::sql::seq(&row, 1)?;
    if state != v.state.as_str() {
        return Err(fenced());
    }
    if stored != from {
        metrics::counter!("projector_checkpoint_mismatches_total", "projection" => p.name())
            .increment(1);
        return Err(BatchError::Stale {
            expected: from,
            stored,
        });
    }
    Ok(())
}

/// Plans and writes records of `p` inside `tx`.
async fn apply(p: Projection, tx: &Transaction<'_>, records: &[Record]) -> Result<(), BatchError> {
    match p {
        Projection::Messages => {
            let (rows, rejected) = messages::plan(records);
            if let Some(r) = rejected.first() {
                return Err(BatchError::Poison(format!("event {}: {}", r.seq, r.reason)));
            }
            writer::insert_messages(tx, &rows).await?;
        }
        Projection::Channels => writer::apply_channels(tx, &channels::plan(records)).await?,
        Projection::Conversations => {
            writer::apply_conversations(tx, &conversations::plan(records)).await?;
        }
    }
    Ok(())
}
