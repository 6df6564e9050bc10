//! Executes domain commands on a channel: per-channel serialisation, state cache, decide,
//! append, retry. Transports never call it directly; they go through [`crate::commands`].
//!
//! Within one instance, commands on a channel run one at a time (a per-channel async lock),
//! so they never conflict with each other. Across instances, the append's expected last
//! subject sequence detects a concurrent writer: the loser folds the new events in and decides
//! again, so `message_seq` stays gap-free and unique. A failed append of unknown outcome drops
//! the cached state, so the next command reloads it from the log.
//!
//! Channel states live in a bounded LRU cache (the `lru` crate: O(1) lookup and eviction under
//! one short mutex; `moka`'s concurrent cache cost about 5% of the send rate in `make bench`
//! S1). Evicting a slot a command still holds (possible only with more channels in flight
//! than the capacity) is harmless: a second command on that channel then works on a fresh
//! slot, and the two meet at the append's expected sequence like commands of two instances
//! (one folds the other's event in and decides again).

use crate::domain::channel::{
    apply, decide, ChannelState, Command, Decision, DomainError, KeyRecord,
};
use crate::log::{EventLog, KeyLookup, LogError};
use events::{ChannelKey, Envelope, Event, TenantId};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

/// Attempts per command before giving up on a hot channel.
const MAX_ATTEMPTS: usize = 64;

/// Idempotency keys a cached channel may gather in memory (beyond what it loaded with) before
/// its state is dropped and reloaded: the reload's snapshot covers the projected keys, which
/// then live only in `message_keys`. Bounds a hot channel's memory (about 100 B per key).
const MAX_CACHED_KEYS: usize = 4096;

type Slot = Arc<tokio::sync::Mutex<Option<ChannelState>>>;

/// What a command did.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The event was appended at `event_seq`.
    Appended {
        /// The event.
        event: Event,
        /// Its stream sequence.
        event_seq: u64,
    },
    /// A retried send: the original.
    Duplicate(KeyRecord),
    /// Nothing to append; `event_seq` is the channel's last event.
    Unchanged {
        /// The channel's last stream sequence.
        event_seq: u64,
    },
}

impl Outcome {
    /// The log position to read the outcome back at: the appended event's, the original's
    /// for a retried send, the channel's last for no change.
    pub fn event_seq(&self) -> u64 {
        match self {
            Outcome::Appended { event_seq, .. } | Outcome::Unchanged { event_seq } => *event_seq,
            Outcome::Duplicate(r) => r.event_seq,
        }
    }
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// A rule refused it.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The log or snapshot store failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Other writers kept winning for [`MAX_ATTEMPTS`] attempts.
    #[error("too much contention on the channel; retry")]
    Contention,
}

/// The command executor.
pub struct Executor {
    log: EventLog,
    cache: Mutex<lru::LruCache<(TenantId, ChannelKey), Slot>>,
}

/// Fewest channel states a cache holds, whatever the configuration says.
const MIN_CACHED_CHANNELS: NonZeroUsize = NonZeroUsize::new(16).expect("16 is not zero");

impl Executor {
    /// An executor over `log` caching at most `cache_capacity` channel states (at least 16).
    pub fn new(log: EventLog, cache_capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(cache_capacity)
            .unwrap_or(MIN_CACHED_CHANNELS)
            .max(MIN_CACHED_CHANNELS);
        Self {
            log,
            cache: Mutex::new(lru::LruCache::new(capacity)),
        }
    }

    /// The log.
    pub fn log(&self) -> &EventLog {
        &self.log
    }

    fn slot(&self, tenant: &TenantId, key: &ChannelKey) -> Slot {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get_or_insert_ref(&(tenant.clone(), key.clone()), Slot::default)
            .clone()
    }

    /// Runs `cmd` on channel `key` of `tenant`.
    ///
    /// # Errors
    /// [`ExecError`].
    pub async fn execute(
        &self,
        tenant: &TenantId,
        key: &ChannelKey,
        cmd: Command,
    ) -> Result<Outcome, ExecError> {
        let slot = self.slot(tenant, key);
        let mut guard = slot.lock().await;
        let result = self.execute_locked(&mut guard, tenant, key, cmd).await;
        if matches!(result, Err(ExecError::Log(_))) {
            *guard = None;
        } else if guard
            .as_ref()
            .is_some_and(|s| s.keys.len() > s.loaded_keys + MAX_CACHED_KEYS)
        {
            // Reloading costs one snapshot query and the tail the projector has not applied;
            // if the projector is behind, the reload keeps those keys and this waits for
            // another MAX_CACHED_KEYS before trying again.
            *guard = None;
        }
        result
    }

    async fn execute_locked(
        &self,
        guard: &mut Option<ChannelState>,
        tenant: &TenantId,
        key: &ChannelKey,
        cmd: Command,
    ) -> Result<Outcome, ExecError> {
        let state = match guard {
            Some(state) => state,
            None => guard.insert(self.log.load(tenant, key).await?),
        };
        if let Command::Send {
            from,
            client_msg_no: Some(no),
            ..
        } = &cmd
        {
            let id = (from.to_string(), no.clone());
            // Only keys of messages that came with the snapshot can be missing from memory. A
            // snapshot Postgres no longer holds is reloaded once: the new, older snapshot's
            // tail brings the lost messages' keys back from the log.
            for attempt in 0..3 {
                if state.snapshot_msg_seq == 0 || state.keys.contains_key(&id) {
                    break;
                }
                if attempt == 2 {
                    return Err(LogError::SnapshotUnstable.into());
                }
                match self
                    .log
                    .lookup_key(tenant, key, from.as_str(), no, state.snapshot_msg_seq)
                    .await?
                {
                    KeyLookup::Found(rec) => {
                        state.keys.insert(id.clone(), rec);
                    }
                    KeyLookup::Absent => break,
                    KeyLookup::SnapshotGone => {
                        tracing::warn!(tenant = %tenant, "channel snapshot moved backwards; reloading the channel from the log");
                        *state = self.log.load(tenant, key).await?;
                    }
                }
            }
        }
        // Built on the first lost race only: most commands never retry.
        let mut delays: Option<platform::retry::Delays> = None;
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                let d = delays.get_or_insert_with(|| platform::retry::CONTENTION.delays());
                tokio::time::sleep(d.next_delay()).await;
            }
            let event = match decide(state, key, cmd.clone())? {
                Decision::Duplicate(rec) => return Ok(Outcome::Duplicate(rec)),
                Decision::Append(events) => match events.into_iter().next() {
                    None => {
                        return Ok(Outcome::Unchanged {
                            event_seq: state.last_event_seq,
                        })
                    }
                    Some(e) => e,
                },
            };
            // A message's envelope time is its timestamp (`message_sent` v2 stores one time).
            let occurred_at = match &event {
                Event::MessageSent(m) => m.timestamp,
                _ => platform::now_ms(),
            };
            let env = Envelope {
                tenant: tenant.clone(),
                occurred_at,
                event,
            };
            if let Event::ReadPositionSet(r) = &env.event {
                // Read positions live on the reader's subject: no channel concurrency needed.
                let subject = self.log.subjects().reads(tenant, &r.uid);
                let event_seq = self.log.append(subject, &env, None).await?;
                return Ok(Outcome::Appended {
                    event: env.event,
                    event_seq,
                });
            }
            let subject = self.log.subjects().channel(tenant, key);
            match self
                .log
                .append(subject, &env, Some(state.last_event_seq))
                .await
            {
                Ok(event_seq) => {
                    *state = apply(std::mem::take(state), &env.event, event_seq);
                    return Ok(Outcome::Appended {
                        event: env.event,
                        event_seq,
                    });
                }
                Err(LogError::Conflict) => {
                    self.log.catch_up(state, tenant, key).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ExecError::Contention)
    }
}
