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

use super::frames::{Device, ServerFrame};
use crate::store;
use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use events::subject::Subjects;
use events::{ChannelId, ChannelKey, ChannelType, Envelope, Event, TenantId, Uid};
use futures::StreamExt;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
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

/// Where the hub reads from.
pub struct HubSource {
    /// JetStream.
    pub jetstream: async_nats::jetstream::Context,
    /// Core NATS, for typing notices.
    pub nats: async_nats::Client,
    /// The event stream's name.
    pub stream: String,
    /// Subject naming.
    pub subjects: Subjects,
    /// The read models (membership snapshot).
    pub pool: deadpool_postgres::Pool,
}

impl Hub {
    /// Starts the hub task with outbound queues of `queue` items; it runs until `stop`
    /// resolves. The returned handle is usable at once; registrations wait until the hub has
    /// loaded its membership snapshot (see [`Hub::ready`]).
    pub fn start(
        source: HubSource,
        queue: usize,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let position = Arc::new(AtomicU64::new(0));
        let (ready_tx, ready) = watch::channel(false);
        let task = tokio::spawn(run(source, queue, rx, position.clone(), ready_tx, stop));
        (
            Self {
                commands: tx,
                position,
                ready,
            },
            task,
        )
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

struct Slot {
    tenant: TenantId,
    uid: Uid,
    tx: mpsc::Sender<Out>,
    overflowed: Arc<AtomicBool>,
    follows: Vec<Uid>,
}

/// The hub's state; every method runs on the hub task.
#[derive(Default)]
struct State {
    next_id: u64,
    queue: usize,
    slots: HashMap<u64, Slot>,
    users: HashMap<TenantId, HashMap<Uid, Vec<u64>>>,
    groups: HashMap<TenantId, HashMap<ChannelId, HashSet<Uid>>>,
    followers: HashMap<TenantId, HashMap<Uid, HashSet<u64>>>,
    /// Frames queued since the last flush to the deliveries counter.
    delivered: u64,
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
    let mut state = State {
        queue: queue.max(1),
        ..State::default()
    };
    let init = async {
        let snapshot = load_snapshot(&source.pool).await;
        state.load(&snapshot);
        snapshot.checkpoint
    };
    let start = tokio::select! {
        c = init => c,
        () = &mut stop => return,
    };
    position.store(start, Ordering::Release);
    let subscribed = tokio::select! {
        s = source.nats.subscribe(source.subjects.all_typing()) => s,
        () = &mut stop => return,
    };
    let typing = match subscribed {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(error = %e, "typing subscription failed; typing notices are off");
            None
        }
    };
    let mut typing = typing.map(|s| s.fuse());
    // Every wait on NATS races the stop: the hub stops at once even while NATS is down.
    let mut log = tokio::select! {
        l = open_log(&source, start + 1) => l,
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
                        Ok(env) => state.event(seq, &env),
                        Err(e) => {
                            metrics::counter!("query_svc_hub_undecodable_events_total").increment(1);
                            tracing::warn!(event.seq = seq, error = %e, "hub skipped an event it cannot decode");
                        }
                    }
                    position.store(seq, Ordering::Release);
                    metrics::gauge!("query_svc_hub_position").set(seq as f64);
                    metrics::counter!("query_svc_ws_deliveries_total").increment(std::mem::take(&mut state.delivered));
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "hub log consumer error");
                }
                None => {
                    let from = position.load(Ordering::Acquire) + 1;
                    tracing::warn!(from_event_seq = from, "hub log consumer ended; reopening");
                    log = tokio::select! {
                        l = open_log(&source, from) => l,
                        () = &mut stop => break,
                    };
                }
            },
            Some(msg) = next_typing(&mut typing) => state.typing(&source.subjects, &msg),
        }
    }
    tracing::info!(connections = state.slots.len(), "fan-out hub stopped");
}

async fn next_typing(
    sub: &mut Option<futures::stream::Fuse<async_nats::Subscriber>>,
) -> Option<async_nats::Message> {
    match sub {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

/// The membership snapshot, retried until Postgres answers (it may be starting, or the
/// migrations may not have run yet).
async fn load_snapshot(pool: &deadpool_postgres::Pool) -> store::realtime::MembershipSnapshot {
    let mut delay = Duration::from_millis(100);
    loop {
        match store::realtime::membership_snapshot(pool).await {
            Ok(s) => return s,
            Err(e) => {
                tracing::warn!(error = %e, "hub membership snapshot failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

type LogStream = futures::stream::BoxStream<
    'static,
    Result<async_nats::jetstream::Message, async_nats::jetstream::consumer::pull::OrderedError>,
>;

/// An ordered consumer over every event from `from`, retried until the stream exists.
async fn open_log(source: &HubSource, from: u64) -> LogStream {
    let mut delay = Duration::from_millis(100);
    loop {
        match try_open_log(source, from).await {
            Ok(s) => return s,
            Err(e) => {
                tracing::warn!(error = %e, from_event_seq = from, "hub cannot open the log; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn try_open_log(source: &HubSource, from: u64) -> anyhow::Result<LogStream> {
    let stream = source.jetstream.get_stream_no_info(&source.stream).await?;
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: source.subjects.all(),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: from.max(1),
            },
            ..Default::default()
        })
        .await?;
    Ok(consumer.messages().await?.boxed())
}

impl State {
    fn load(&mut self, snapshot: &store::realtime::MembershipSnapshot) {
        self.groups.clear();
        for (tenant, group, uid) in &snapshot.members {
            let (Ok(t), Ok(g), Ok(u)) = (
                TenantId::parse(tenant.as_str()),
                ChannelId::parse(group.as_str()),
                Uid::parse(uid.as_str()),
            ) else {
                continue;
            };
            self.groups
                .entry(t)
                .or_default()
                .entry(g)
                .or_default()
                .insert(u);
        }
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Register { tenant, uid, reply } => {
                self.next_id += 1;
                let id = self.next_id;
                let (tx, rx) = mpsc::channel(self.queue);
                let overflowed = Arc::new(AtomicBool::new(false));
                let reg = Registration {
                    id,
                    rx,
                    overflowed: overflowed.clone(),
                };
                if reply.send(reg).is_ok() {
                    self.users
                        .entry(tenant.clone())
                        .or_default()
                        .entry(uid.clone())
                        .or_default()
                        .push(id);
                    self.slots.insert(
                        id,
                        Slot {
                            tenant,
                            uid,
                            tx,
                            overflowed,
                            follows: Vec::new(),
                        },
                    );
                    metrics::gauge!("query_svc_ws_connections").set(self.slots.len() as f64);
                }
            }
            Command::Unregister { id } => self.drop_slot(id),
            Command::FollowPresence { id, uids, current } => {
                self.follow(id, uids);
                for p in current {
                    let frame = presence_frame(&p);
                    self.push(id, frame);
                }
            }
            Command::Presence(p) => {
                let Some(ids) = self.followers.get(&p.tenant).and_then(|f| f.get(&p.uid)) else {
                    return;
                };
                let ids: Vec<u64> = ids.iter().copied().collect();
                let frame = presence_frame(&p);
                for id in ids {
                    self.push(id, frame.clone());
                }
            }
        }
    }

    fn follow(&mut self, id: u64, uids: Vec<Uid>) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        let old = std::mem::replace(&mut slot.follows, uids.clone());
        let tenant = slot.tenant.clone();
        let f = self.followers.entry(tenant).or_default();
        for u in old {
            if let Some(set) = f.get_mut(&u) {
                set.remove(&id);
                if set.is_empty() {
                    f.remove(&u);
                }
            }
        }
        for u in uids {
            f.entry(u).or_default().insert(id);
        }
    }

    fn drop_slot(&mut self, id: u64) {
        let Some(slot) = self.slots.remove(&id) else {
            return;
        };
        if let Some(users) = self.users.get_mut(&slot.tenant) {
            if let Some(ids) = users.get_mut(&slot.uid) {
                ids.retain(|&i| i != id);
                if ids.is_empty() {
                    users.remove(&slot.uid);
                }
            }
            if users.is_empty() {
                self.users.remove(&slot.tenant);
            }
        }
        if let Some(f) = self.followers.get_mut(&slot.tenant) {
            for u in &slot.follows {
                if let Some(set) = f.get_mut(u) {
                    set.remove(&id);
                    if set.is_empty() {
                        f.remove(u);
                    }
                }
            }
        }
        metrics::gauge!("query_svc_ws_connections").set(self.slots.len() as f64);
    }

    /// Queues `out` for connection `id`; a full queue drops the connection (slow consumer).
    fn push(&mut self, id: u64, out: Out) {
        let Some(slot) = self.slots.get(&id) else {
            return;
        };
        match slot.tx.try_send(out) {
            Ok(()) => self.delivered += 1,
            Err(mpsc::error::TrySendError::Full(_)) => {
                slot.overflowed.store(true, Ordering::Release);
                metrics::counter!("query_svc_ws_slow_consumer_closes_total").increment(1);
                tracing::info!(connection = id, user.uid = %slot.uid, "outbound queue full: dropping the connection");
                self.drop_slot(id);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.drop_slot(id),
        }
    }

    /// Queues `out` for every connection of `uid`.
    fn push_user(&mut self, tenant: &TenantId, uid: &Uid, out: &Out) {
        let ids: Vec<u64> = match self.users.get(tenant).and_then(|u| u.get(uid)) {
            Some(ids) => ids.clone(),
            None => return,
        };
        for id in ids {
            self.push(id, out.clone());
        }
    }

    /// Queues `out` for every connection of every member of a group, except `except`.
    fn push_members(
        &mut self,
        tenant: &TenantId,
        group: &ChannelId,
        out: &Out,
        except: Option<&Uid>,
    ) {
        let Some(users) = self.users.get(tenant) else {
            return;
        };
        let Some(members) = self.groups.get(tenant).and_then(|g| g.get(group)) else {
            return;
        };
        // Walk the smaller side: online users of the tenant, or the group's members.
        let ids: Vec<u64> = if users.len() < members.len() {
            users
                .iter()
                .filter(|(u, _)| members.contains(*u) && Some(*u) != except)
                .flat_map(|(_, ids)| ids.iter().copied())
                .collect()
        } else {
            members
                .iter()
                .filter(|u| Some(*u) != except)
                .filter_map(|u| users.get(u))
                .flat_map(|ids| ids.iter().copied())
                .collect()
        };
        for id in ids {
            self.push(id, out.clone());
        }
    }

    fn event(&mut self, seq: u64, env: &Envelope) {
        let tenant = &env.tenant;
        match &env.event {
            Event::MessageSent(m) => {
                let channel = Arc::new(m.channel.clone());
                let frame_for = |channel_id: &str| -> Arc<str> {
                    ServerFrame::Message {
                        event_seq: seq,
                        message_id: &m.message_id,
                        message_seq: m.message_seq,
                        client_msg_no: m.client_msg_no.as_deref(),
                        from_uid: m.from_uid.as_str(),
                        channel_id,
                        channel_type: m.channel.channel_type().as_u8(),
                        timestamp: m.timestamp,
                        payload: &m.payload,
                    }
                    .to_json()
                    .into()
                };
                let out = |frame| Out::Message {
                    channel: channel.clone(),
                    message_seq: m.message_seq,
                    event_seq: seq,
                    frame,
                };
                match &m.channel {
                    ChannelKey::Personal { low, high } => {
                        self.push_user(tenant, low, &out(frame_for(high.as_str())));
                        if low != high {
                            self.push_user(tenant, high, &out(frame_for(low.as_str())));
                        }
                    }
                    ChannelKey::Group { id } => {
                        self.push_members(tenant, id, &out(frame_for(id.as_str())), None);
                    }
                }
            }
            Event::GroupCreated(g) => {
                let members = self.groups.entry(tenant.clone()).or_default();
                members.insert(g.channel_id.clone(), g.members.iter().cloned().collect());
                let frame = ServerFrame::MemberAdded {
                    event_seq: seq,
                    channel_id: g.channel_id.as_str(),
                    channel_type: 2,
                    uids: g.members.iter().map(Uid::as_str).collect(),
                    name: g.name.as_deref(),
                };
                self.push_members(tenant, &g.channel_id, &log_frame(seq, &frame), None);
            }
            Event::MembersAdded(a) => {
                let set = self
                    .groups
                    .entry(tenant.clone())
                    .or_default()
                    .entry(a.channel_id.clone())
                    .or_default();
                set.extend(a.uids.iter().cloned());
                let frame = ServerFrame::MemberAdded {
                    event_seq: seq,
                    channel_id: a.channel_id.as_str(),
                    channel_type: 2,
                    uids: a.uids.iter().map(Uid::as_str).collect(),
                    name: None,
                };
                self.push_members(tenant, &a.channel_id, &log_frame(seq, &frame), None);
            }
            Event::MemberRemoved(r) => {
                let frame = ServerFrame::MemberRemoved {
                    event_seq: seq,
                    channel_id: r.channel_id.as_str(),
                    channel_type: 2,
                    uid: r.uid.as_str(),
                };
                // The removed member is still in the set: it learns of its own removal.
                self.push_members(tenant, &r.channel_id, &log_frame(seq, &frame), None);
                if let Some(set) = self
                    .groups
                    .get_mut(tenant)
                    .and_then(|g| g.get_mut(&r.channel_id))
                {
                    set.remove(&r.uid);
                }
            }
            Event::GroupDisbanded(d) => {
                let frame = ServerFrame::ChannelDisbanded {
                    event_seq: seq,
                    channel_id: d.channel_id.as_str(),
                    channel_type: 2,
                };
                self.push_members(tenant, &d.channel_id, &log_frame(seq, &frame), None);
                if let Some(g) = self.groups.get_mut(tenant) {
                    g.remove(&d.channel_id);
                }
            }
            Event::ReadPositionSet(r) => {
                self.read_receipts(seq, tenant, r);
            }
        }
    }

    fn read_receipts(&mut self, seq: u64, tenant: &TenantId, r: &events::event::ReadPositionSet) {
        let ct = r.channel.channel_type().as_u8();
        let frame_for = |channel_id: &str| {
            log_frame(
                seq,
                &ServerFrame::Read {
                    event_seq: seq,
                    uid: r.uid.as_str(),
                    channel_type: ct,
                    channel_id,
                    message_seq: r.message_seq,
                },
            )
        };
        let reader_view = r.channel.channel_id_for(r.uid.as_str());
        self.push_user(tenant, &r.uid, &frame_for(&reader_view));
        if let ChannelKey::Personal { low, high } = &r.channel {
            let peer = if *low == r.uid { high } else { low };
            if *peer != r.uid {
                self.push_user(tenant, peer, &frame_for(r.uid.as_str()));
            }
        }
    }

    fn typing(&mut self, subjects: &Subjects, msg: &async_nats::Message) {
        let Some(tenant) = subjects.parse_typing(&msg.subject) else {
            return;
        };
        let Ok(n) = serde_json::from_slice::<TypingNotice>(&msg.payload) else {
            return;
        };
        let (Ok(uid), Ok(ct), Ok(channel_id)) = (
            Uid::parse(n.uid.as_str()),
            ChannelType::try_from(n.channel_type),
            ChannelId::parse(n.channel_id.as_str()),
        ) else {
            return;
        };
        match ct {
            ChannelType::Personal => {
                let peer = Uid::parse(channel_id.as_str());
                let Ok(peer) = peer else { return };
                if peer == uid {
                    return;
                }
                let frame = typing_frame(1, uid.as_str(), uid.as_str());
                self.push_user(&tenant, &peer, &frame);
            }
            ChannelType::Group => {
                let is_member = self
                    .groups
                    .get(&tenant)
                    .and_then(|g| g.get(&channel_id))
                    .is_some_and(|m| m.contains(&uid));
                if !is_member {
                    return;
                }
                let frame = typing_frame(2, channel_id.as_str(), uid.as_str());
                self.push_members(&tenant, &channel_id, &frame, Some(&uid));
            }
        }
    }
}

fn typing_frame(channel_type: u8, channel_id: &str, uid: &str) -> Out {
    let f = ServerFrame::Typing {
        channel_type,
        channel_id,
        uid,
    };
    Out::Frame {
        kind: f.kind(),
        event_seq: None,
        frame: f.to_json().into(),
    }
}

fn presence_frame(p: &PresenceState) -> Out {
    let f = ServerFrame::Presence {
        uid: p.uid.as_str(),
        online: !p.devices.is_empty(),
        devices: p
            .devices
            .iter()
            .map(|&d| Device { device_flag: d })
            .collect(),
    };
    Out::Frame {
        kind: f.kind(),
        event_seq: None,
        frame: f.to_json().into(),
    }
}

fn log_frame(seq: u64, f: &ServerFrame<'_>) -> Out {
    Out::Frame {
        kind: f.kind(),
        event_seq: Some(seq),
        frame: f.to_json().into(),
    }
}
