//! The fan-out hub: one task per query-svc instance that reads the whole event log in order and
//! pushes each event to the connections of this instance that may see it.
//!
//! Every instance reads the log itself (a JetStream ordered consumer on `<root>.>`), so an
//! event reaches the users on every instance whichever instance accepted it; no instance
//! forwards to another. Group membership is kept in memory, exact at the hub's position: it
//! starts from the channels read model at that projection's checkpoint `C` (one snapshot) and
//! the consumer starts at `C + 1`, then membership events are applied in log order before the
//! next event is fanned out, so a removed member gets nothing after its removal.
//!
//! Each connection has a bounded queue ([`Out`] items); a connection whose queue is full is
//! dropped from the hub at once (its receiver then ends and the session closes with 4008)
//! rather than slowing the hub for everyone else. Typing notices come in over core NATS and
//! presence changes from [`super::presence`]; both go through the same task.
//!
//! - [`source`]: the snapshot, the log and the typing notices, each retried until it works.
//! - [`membership`]: who is in each group at the hub's position (pure).
//! - [`routing`]: which users each event, notice and presence change reaches, as which
//!   frame (pure, given the membership).
//! - [`registry`]: this instance's connections, their queues, the slow-consumer policy.
//! - here: the handle connections use, and the task that ties them together.

pub mod membership;
pub mod registry;
pub mod routing;
pub mod source;

pub use source::HubSource;

use events::{ChannelKey, TenantId, Uid};
use futures::StreamExt;
use membership::Membership;
use registry::Registry;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};

/// One item of a connection's outbound queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// A `message` frame: the session drops it if it already sent `message_seq` of `channel`,
    /// and fills the hole first if it skipped some.
    Message {
        /// The channel.
        channel: Arc<ChannelKey>,
        /// Its position in the channel.
        message_seq: u64,
        /// The event's log position.
        event_seq: u64,
        /// The frame's JSON.
        frame: Arc<str>,
    },
    /// Any other frame, sent as is.
    Frame {
        /// The frame's type (the SSE event name).
        kind: &'static str,
        /// The event's log position, for frames from the log.
        event_seq: Option<u64>,
        /// The frame's JSON.
        frame: Arc<str>,
    },
}

/// A typing notice between instances (`<root>_rt.<tenant>.typing`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TypingNotice {
    /// The typist.
    pub uid: String,
    /// 1 personal, 2 group.
    pub channel_type: u8,
    /// The group id, or the peer's uid as the typist names it.
    pub channel_id: String,
}

/// A user's presence as the hub tells followers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceState {
    /// The tenant.
    pub tenant: TenantId,
    /// The user.
    pub uid: Uid,
    /// Connected device flags (deduplicated, sorted); empty when offline.
    pub devices: Vec<u8>,
}

/// What a new connection gets from the hub.
#[derive(Debug)]
pub struct Registration {
    /// The connection's id in the hub.
    pub id: u64,
    /// Its outbound queue.
    pub rx: mpsc::Receiver<Out>,
    /// Set by the hub when it dropped the connection for a full queue.
    pub overflowed: Arc<AtomicBool>,
}

enum Command {
    Register {
        tenant: TenantId,
        uid: Uid,
        reply: oneshot::Sender<Registration>,
    },
    Unregister {
        id: u64,
    },
    FollowPresence {
        id: u64,
        uids: Vec<Uid>,
        current: Vec<PresenceState>,
    },
    Presence(PresenceState),
}

/// The handle connections use to reach the hub. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    commands: mpsc::UnboundedSender<Command>,
    position: Arc<AtomicU64>,
    ready: watch::Receiver<bool>,
}

impl Hub {
    /// Starts the hub task on `tasks` with outbound queues of `queue` items; it runs until
    /// `stop` resolves. The returned handle is usable at once; registrations wait until the
    /// hub has loaded its membership snapshot (see [`Hub::ready`]).
    pub fn start(
        source: HubSource,
        queue: usize,
        tasks: &platform::shutdown::Tasks,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let position = Arc::new(AtomicU64::new(0));
        let (ready_tx, ready) = watch::channel(false);
        tasks.spawn(
            "hub",
            run(source, queue, rx, position.clone(), ready_tx, stop),
        );
        Self {
            commands: tx,
            position,
            ready,
        }
    }

    /// The last log position the hub has fanned out.
    pub fn position(&self) -> u64 {
        self.position.load(Ordering::Acquire)
    }

    /// Whether the hub has loaded its snapshot and follows the log.
    pub fn ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Registers a connection of `uid`; from the returned registration on, every event of the
    /// user's channels is queued for it.
    ///
    /// # Errors
    /// `None` when the hub has stopped.
    pub async fn register(&self, tenant: TenantId, uid: Uid) -> Option<Registration> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Register { tenant, uid, reply })
            .ok()?;
        rx.await.ok()
    }

    /// Drops a connection (idempotent).
    pub fn unregister(&self, id: u64) {
        let _ = self.commands.send(Command::Unregister { id });
    }

    /// Replaces the users whose presence connection `id` follows; `current` is their state
    /// now, sent to it first.
    pub fn follow_presence(&self, id: u64, uids: Vec<Uid>, current: Vec<PresenceState>) {
        let _ = self
            .commands
            .send(Command::FollowPresence { id, uids, current });
    }

    /// A user's presence changed (from the presence watcher).
    pub fn presence_changed(&self, state: PresenceState) {
        let _ = self.commands.send(Command::Presence(state));
    }
}

/// The hub's state; every method runs on the hub task.
struct State {
    registry: Registry,
    membership: Membership,
}

impl State {
    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Register { tenant, uid, reply } => {
                let reg = self.registry.register(tenant, uid);
                let id = reg.id;
                if reply.send(reg).is_err() {
                    // The connection gave up waiting: nothing will read its queue.
                    self.registry.unregister(id);
                }
            }
            Command::Unregister { id } => self.registry.unregister(id),
            Command::FollowPresence { id, uids, current } => {
                self.registry.follow(id, uids);
                for p in current {
                    self.registry.push(id, routing::presence_frame(&p));
                }
            }
            Command::Presence(p) => {
                let ids = self.registry.followers(&p.tenant, &p.uid);
                if ids.is_empty() {
                    return;
                }
                let frame = routing::presence_frame(&p);
                for id in ids {
                    self.registry.push(id, frame.clone());
                }
            }
        }
    }

    fn typing(&mut self, source: &HubSource, msg: &async_nats::Message) {
        let Some(tenant) = source.subjects.parse_typing(&msg.subject) else {
            return;
        };
        if let Ok(n) = serde_json::from_slice::<TypingNotice>(&msg.payload) {
            routing::typing(&tenant, &n, &self.membership, &mut self.registry);
        }
    }
}

async fn run(
    source: HubSource,
    queue: usize,
    mut commands: mpsc::UnboundedReceiver<Command>,
    position: Arc<AtomicU64>,
    ready: watch::Sender<bool>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let mut stop = std::pin::pin!(stop);
    // Every wait on Postgres or NATS races the stop: the hub stops at once even while they
    // are down.
    let snapshot = tokio::select! {
        s = source.snapshot() => s,
        () = &mut stop => return,
    };
    let mut state = State {
        registry: Registry::new(queue),
        membership: Membership::from_rows(&snapshot.members),
    };
    let start = snapshot.checkpoint;
    drop(snapshot);
    position.store(start, Ordering::Release);
    let mut typing = tokio::select! {
        t = source.typing() => t,
        () = &mut stop => return,
    };
    let mut log = tokio::select! {
        l = source.log(start + 1) => l,
        () = &mut stop => return,
    };
    let _ = ready.send(true);
    tracing::info!(from_event_seq = start + 1, "fan-out hub following the log");
    loop {
        tokio::select! {
            biased;
            () = &mut stop => break,
            Some(cmd) = commands.recv() => state.command(cmd),
            item = log.next() => match item {
                Some(Ok(msg)) => {
                    let Ok(info) = msg.info() else { continue };
                    let seq = info.stream_sequence;
                    match events::codec::decode(&msg.payload) {
                        Ok(env) => routing::event(seq, &env, &mut state.membership, &mut state.registry),
                        Err(e) => {
                            metrics::counter!("query_svc_hub_undecodable_events_total").increment(1);
                            tracing::warn!(event.seq = seq, error = %e, "hub skipped an event it cannot decode");
                        }
                    }
                    position.store(seq, Ordering::Release);
                    metrics::gauge!("query_svc_hub_position").set(seq as f64);
                    metrics::counter!("query_svc_ws_deliveries_total").increment(state.registry.take_delivered());
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "hub log consumer error");
                }
                None => {
                    let from = position.load(Ordering::Acquire) + 1;
                    tracing::warn!(from_event_seq = from, "hub log consumer ended; reopening");
                    log = tokio::select! {
                        l = source.log(from) => l,
                        () = &mut stop => break,
                    };
                }
            },
            Some(msg) = next_typing(&mut typing) => state.typing(&source, &msg),
        }
    }
    tracing::info!(connections = state.registry.len(), "fan-out hub stopped");
}

async fn next_typing(
    sub: &mut Option<futures::stream::Fuse<async_nats::Subscriber>>,
) -> Option<async_nats::Message> {
    match sub {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}
