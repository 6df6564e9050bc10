//! The event log as the command side sees it: appending with per-subject optimistic
//! concurrency, and loading a channel's state.
//!
//! Loading = the `channels` read model as a snapshot (state as of its `last_event_seq` on the
//! channel's subject) + the log's tail after it, read from JetStream. The snapshot may lag or
//! be missing entirely (then the tail is the whole subject); either way the result equals the
//! fold of every event on the subject. Idempotency keys older than the snapshot are looked up
//! in `message_keys` on demand ([`EventLog::lookup_key`]).

use crate::domain::channel::{apply, ChannelState, KeyRecord};
use async_nats::jetstream::{self, consumer, context::PublishErrorKind};
use events::subject::Subjects;
use events::{ChannelKey, Envelope, TenantId};
use futures::StreamExt;
use std::time::Duration;

/// Why an append or load failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Another writer appended to the subject first (`Nats-Expected-Last-Subject-Sequence`
    /// did not match); reload and decide again.
    #[error("wrong last subject sequence")]
    Conflict,
    /// JetStream is unreachable, timed out, or refused the write; the outcome is unknown.
    #[error("event log unavailable while {op}")]
    Log {
        /// What was being done (`appending`, `reading the channel's tail`, …).
        op: &'static str,
        /// JetStream's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The event could not be encoded (nothing was appended).
    #[error("the event could not be encoded")]
    Encode(#[source] serde_json::Error),
    /// Postgres (the snapshot) is unreachable or failed the read.
    #[error("snapshot store unavailable")]
    Snapshot(#[from] readmodel::Error),
    /// The snapshot kept moving back under the loader (Postgres losing commits repeatedly).
    #[error("the channel snapshot keeps moving")]
    SnapshotUnstable,
    /// An event on the subject does not decode.
    #[error("undecodable event at seq {seq}: {reason}")]
    Corrupt {
        /// Stream sequence.
        seq: u64,
        /// Decoder error.
        reason: String,
    },
}

impl LogError {
    /// A [`LogError::Log`] of `op` (for `map_err`).
    fn log<E: Into<Box<dyn std::error::Error + Send + Sync>>>(
        op: &'static str,
    ) -> impl FnOnce(E) -> Self {
        move |e| Self::Log {
            op,
            source: e.into(),
        }
    }
}

/// What [`EventLog::lookup_key`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLookup {
    /// The key was used: the original message.
    Found(KeyRecord),
    /// The key was never used up to the snapshot.
    Absent,
    /// The read model no longer holds the snapshot the state was loaded from (Postgres lost
    /// commits: a restore, or a failover to an asynchronous standby): reload the state.
    SnapshotGone,
}

/// Handle on the log and the snapshot store.
#[derive(Clone)]
pub struct EventLog {
    js: jetstream::Context,
    stream: jetstream::stream::Stream,
    subjects: Subjects,
    pool: deadpool_postgres::Pool,
}

/// Most tail events read one by one with direct gets before switching to a consumer.
const DIRECT_GET_TAIL: usize = 32;

fn fold(state: &mut ChannelState, seq: u64, payload: &[u8]) -> Result<(), LogError> {
    let env = events::decode(payload).map_err(|e| LogError::Corrupt {
        seq,
        reason: e.to_string(),
    })?;
    *state = apply(std::mem::take(state), &env.event, seq);
    state.last_event_seq = seq;
    Ok(())
}

impl EventLog {
    /// A log on `stream` (as returned by `platform::log::ensure_stream`) with subjects under
    /// `subjects`, snapshots from `pool`.
    pub fn new(
        js: jetstream::Context,
        stream: jetstream::stream::Stream,
        subjects: Subjects,
        pool: deadpool_postgres::Pool,
    ) -> Self {
        Self {
            js,
            stream,
            subjects,
            pool,
        }
    }

    /// Subject naming in use.
    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    /// Appends one event to `subject`. With `expected = Some(n)` the append succeeds only if
    /// the subject's last stream sequence is `n` (0 = the subject is empty). Returns the
    /// event's stream sequence.
    ///
    /// # Errors
    /// [`LogError::Conflict`] on a sequence mismatch; [`LogError::Log`] otherwise.
    pub async fn append(
        &self,
        subject: String,
        env: &Envelope,
        expected: Option<u64>,
    ) -> Result<u64, LogError> {
        let mut publish = jetstream::message::PublishMessage::build()
            .payload(events::encode(env).map_err(LogError::Encode)?.into());
        if let Some(n) = expected {
            publish = publish.expected_last_subject_sequence(n);
        }
        let started = std::time::Instant::now();
        let ack = self
            .js
            .send_publish(subject, publish)
            .await
            .map_err(LogError::log("appending"))?;
        let result = match ack.await {
            Ok(ack) => Ok(ack.sequence),
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Err(LogError::Conflict),
            Err(e) => Err(LogError::log("awaiting the append's acknowledgement")(e)),
        };
        metrics::histogram!("command_svc_append_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        match &result {
            Ok(_) => metrics::counter!("command_svc_events_appended_total", "type" => env.event.event_type()).increment(1),
            Err(LogError::Conflict) => metrics::counter!("command_svc_append_conflicts_total").increment(1),
            Err(_) => {}
        }
        result
    }

    /// Loads the state of a channel: snapshot + tail.
    ///
    /// # Errors
    /// [`LogError::Snapshot`], [`LogError::Log`] or [`LogError::Corrupt`].
    pub async fn load(
        &self,
        tenant: &TenantId,
        key: &ChannelKey,
    ) -> Result<ChannelState, LogError> {
        let mut state = self.snapshot(tenant, key).await?;
        self.catch_up(&mut state, tenant, key).await?;
        state.loaded_keys = state.keys.len();
        Ok(state)
    }

    async fn snapshot(
        &self,
        tenant: &TenantId,
        key: &ChannelKey,
    ) -> Result<ChannelState, LogError> {
        let subject = self.subjects.channel(tenant, key);
        let client = self.client().await?;
        let Some(snap) = readmodel::snapshot::channel(&client, tenant, key, &subject)
            .await
            .map_err(readmodel::Error::from)?
        else {
            return Ok(ChannelState::default());
        };
        if snap.parked {
            tracing::warn!(subject = %subject, "the channel's snapshot lacks a parked event; folding the channel from the log");
            return Ok(ChannelState::default());
        }
        if snap.legacy_roles {
            tracing::debug!(subject = %subject, "the channel's snapshot predates roles; folding the channel from the log");
            return Ok(ChannelState::default());
        }
        let Some(moderation) = moderation_of(&snap) else {
            tracing::warn!(subject = %subject, "the channel's snapshot holds a role or list this build does not know; folding the channel from the log");
            return Ok(ChannelState::default());
        };
        Ok(ChannelState {
            created: key.channel_type() == events::ChannelType::Group,
            disbanded: snap.disbanded,
            last_msg_seq: snap.last_msg_seq,
            last_event_seq: snap.last_event_seq,
            members: snap.members.into_iter().collect(),
            keys: Default::default(),
            snapshot_msg_seq: snap.last_msg_seq,
            loaded_keys: 0,
            moderation,
        })
    }

    /// Folds every event on the channel's subject after `state.last_event_seq` into `state`.
    ///
    /// # Errors
    /// [`LogError::Log`] or [`LogError::Corrupt`].
    pub async fn catch_up(
        &self,
        state: &mut ChannelState,
        tenant: &TenantId,
        key: &ChannelKey,
    ) -> Result<(), LogError> {
        let subject = self.subjects.channel(tenant, key);
        let stream = &self.stream;
        let head = match stream.get_last_raw_message_by_subject(&subject).await {
            Ok(m) => m.sequence,
            Err(e) if e.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => 0,
            Err(e) => return Err(LogError::log("reading the channel's last event")(e)),
        };
        if head <= state.last_event_seq {
            return Ok(());
        }
        // Short tails (the usual case: a concurrent writer appended a few events) are read
        // with direct gets; long ones (a cold load without snapshot) with an ordered consumer.
        for _ in 0..DIRECT_GET_TAIL {
            if state.last_event_seq >= head {
                return Ok(());
            }
            let msg = stream
                .raw_message_builder()
                .sequence(state.last_event_seq + 1)
                .next_by_subject(subject.clone())
                .send()
                .await
                .map_err(LogError::log("reading the channel's tail"))?;
            fold(state, msg.sequence, &msg.payload)?;
        }
        if state.last_event_seq >= head {
            return Ok(());
        }
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: subject,
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: state.last_event_seq + 1,
                },
                ..Default::default()
            })
            .await
            .map_err(LogError::log("creating the tail's consumer"))?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(LogError::log("reading the channel's tail"))?;
        while state.last_event_seq < head {
            let next = tokio::time::timeout(Duration::from_secs(5), messages.next())
                .await
                .map_err(LogError::log("reading the channel's tail"))?;
            let msg = match next {
                Some(Ok(m)) => m,
                Some(Err(e)) => return Err(LogError::log("reading the channel's tail")(e)),
                None => {
                    return Err(LogError::log("reading the channel's tail")(
                        "the tail ended early",
                    ))
                }
            };
            let seq = msg
                .info()
                .map_err(LogError::log("reading a tail message's metadata"))?
                .stream_sequence;
            fold(state, seq, &msg.payload)?;
        }
        Ok(())
    }

    /// The record of an idempotency key in the `message_keys` read model, for a state whose
    /// snapshot covered messages up to `snapshot_msg_seq`.
    ///
    /// # Errors
    /// [`LogError::Snapshot`] when Postgres fails or its rows are not what they were.
    pub async fn lookup_key(
        &self,
        tenant: &TenantId,
        key: &ChannelKey,
        from_uid: &str,
        client_msg_no: &str,
        snapshot_msg_seq: u64,
    ) -> Result<KeyLookup, LogError> {
        let client = self.client().await?;
        let found = readmodel::snapshot::key(&client, tenant, key, from_uid, client_msg_no)
            .await
            .map_err(readmodel::Error::from)?;
        // The key is known to be unused only while the snapshot still covers every message
        // the state was loaded with (a restore or failover that lost projected commits moves
        // `last_msg_seq` back, or loses the row).
        let Some(found) = found.filter(|f| f.covered_msg_seq >= snapshot_msg_seq) else {
            return Ok(KeyLookup::SnapshotGone);
        };
        Ok(match found.row {
            None => KeyLookup::Absent,
            Some(row) => KeyLookup::Found(KeyRecord {
                message_id: row.message_id,
                message_seq: row.message_seq,
                payload_sha256: row.payload_sha256,
                timestamp: row.sent_at,
                event_seq: row.event_seq,
            }),
        })
    }

    /// A connection to the snapshot store.
    async fn client(&self) -> Result<deadpool_postgres::Client, LogError> {
        Ok(self.pool.get().await.map_err(readmodel::Error::from)?)
    }
}

/// The moderation state a snapshot holds; `None` when a row holds a role or list name this
/// build does not know (the projector writes only names of decoded events, so a newer build
/// wrote it): the caller then folds the channel from the log.
fn moderation_of(
    snap: &readmodel::snapshot::ChannelSnapshot,
) -> Option<crate::domain::moderation::Moderation> {
    let mut m = crate::domain::moderation::Moderation {
        muted: snap.muted,
        whitelist_only: snap.whitelist_only,
        bans: snap.bans.iter().cloned().collect(),
        blocks: snap.blocks.iter().cloned().collect(),
        ..Default::default()
    };
    for ((uid, role), muted) in snap.members.iter().zip(&snap.roles).zip(&snap.muted_until) {
        match events::moderation::Role::parse(role).ok()? {
            events::moderation::Role::Member => {}
            r => {
                m.roles.insert(uid.clone(), r);
            }
        }
        if let Some(t) = muted {
            m.muted_until.insert(uid.clone(), *t);
        }
    }
    for (list, uid) in &snap.send_lists {
        let set = match list.as_str() {
            "blacklist" => &mut m.blacklist,
            "whitelist" => &mut m.whitelist,
            _ => return None,
        };
        set.insert(uid.clone());
    }
    Some(m)
}
