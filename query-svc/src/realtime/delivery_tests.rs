//! Property tests of [`Delivery`] without I/O: a log of messages on a few channels, a hub that
//! queues them from the connection's registration on, a projector that lags and catches up, a
//! client that resumes (listing its last seqs, or `since_event_seq`, or not at all), and every
//! interleaving of those with the connection's own steps, reads and hold expiry. An in-memory
//! [`CatchUpStore`] answers the reads as the read models would; a recording [`Sink`] is the
//! client. Whatever the interleaving, each channel's messages arrive in order, each exactly
//! once, and none the client needs is missing unless `synced` reported it as a gap.
//!
//! Seeded: `PARLEY_TEST_SEED=<n>` repeats a run (the seed is printed).

use super::Delivery;
use crate::realtime::catchup::{CatchUpStore, ChannelStart, Pending, Read};
use crate::realtime::hub::Out;
use crate::realtime::sink::{End, Sink};
use crate::store::MessageRow;
use events::{ChannelKey, TenantId, Uid};
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One message of the log.
#[derive(Debug, Clone)]
struct Msg {
    channel: usize,
    message_seq: u64,
    event_seq: u64,
}

fn user() -> Uid {
    Uid::parse("u").expect("uid")
}

fn peer(c: usize) -> Uid {
    Uid::parse(format!("p{c}")).expect("uid")
}

fn key(c: usize) -> ChannelKey {
    ChannelKey::personal(&user(), &peer(c))
}

/// The read models: every message of the log whose event the projector has applied.
struct MemStore {
    log: Vec<Msg>,
    projected: Mutex<u64>,
}

impl MemStore {
    fn caught_up_to(&self, event_seq: u64) {
        let mut p = self.projected.lock().expect("lock");
        *p = (*p).max(event_seq);
    }

    fn visible(&self) -> Vec<Msg> {
        let p = *self.projected.lock().expect("lock");
        self.log
            .iter()
            .filter(|m| m.event_seq <= p)
            .cloned()
            .collect()
    }

    fn channel_of(k: &ChannelKey) -> usize {
        (0..8)
            .find(|&c| key(c) == *k)
            .expect("a channel of the test")
    }
}

impl CatchUpStore for MemStore {
    fn plan(
        self: Arc<Self>,
        _tenant: TenantId,
        _uid: Uid,
        listed: HashMap<ChannelKey, u64>,
        since_event_seq: Option<u64>,
        position: u64,
    ) -> Pending {
        // As the Postgres store: wait for the projections to reach the hub's position (the
        // wait always succeeds here), then read each channel the user has.
        self.caught_up_to(position);
        let visible = self.visible();
        let mut channels: BTreeMap<usize, Vec<&Msg>> = BTreeMap::new();
        for m in &visible {
            channels.entry(m.channel).or_default().push(m);
        }
        let mut starts = Vec::new();
        for (c, msgs) in channels {
            let head = msgs.last().map_or(0, |m| m.message_seq);
            let last_event = msgs.last().map_or(0, |m| m.event_seq);
            let start = if let Some(&l) = listed.get(&key(c)) {
                l
            } else if let Some(since) = since_event_seq {
                if last_event <= since {
                    continue;
                }
                msgs.iter()
                    .filter(|m| m.event_seq <= since)
                    .map(|m| m.message_seq)
                    .max()
                    .unwrap_or(0)
            } else {
                continue;
            };
            starts.push(ChannelStart {
                channel: key(c),
                start,
                head,
            });
        }
        Box::pin(async move { Read::Plan(Ok(starts)) })
    }

    fn page(
        self: Arc<Self>,
        _tenant: TenantId,
        channel: ChannelKey,
        after: u64,
        limit: usize,
        wait_for: Option<u64>,
    ) -> Pending {
        if let Some(e) = wait_for {
            self.caught_up_to(e);
        }
        let c = Self::channel_of(&channel);
        let rows: Vec<(MessageRow, u64)> = self
            .visible()
            .into_iter()
            .filter(|m| m.channel == c && m.message_seq > after)
            .take(limit)
            .map(|m| (row(&m), m.event_seq))
            .collect();
        Box::pin(async move { Read::Page(Ok(rows)) })
    }
}

fn row(m: &Msg) -> MessageRow {
    MessageRow {
        message_id: format!("m{}", m.event_seq),
        message_seq: i64::try_from(m.message_seq).expect("seq"),
        client_msg_no: None,
        from_uid: peer(m.channel).to_string(),
        payload: b"x".to_vec(),
        sent_at: 0,
    }
}

fn live(m: &Msg) -> Out {
    let seen_as = key(m.channel).channel_id_for("u");
    Out::Message {
        channel: Arc::new(key(m.channel)),
        message_seq: m.message_seq,
        event_seq: m.event_seq,
        frame: Arc::from(
            serde_json::json!({"type": "message", "channel_id": seen_as,
                "message_seq": m.message_seq, "event_seq": m.event_seq})
            .to_string(),
        ),
    }
}

/// The client: every message it got per channel (by the channel id it sees), and the gaps
/// `synced` reported.
#[derive(Default)]
struct Client {
    sent: HashMap<String, Vec<u64>>,
    gaps: HashMap<String, Vec<(u64, u64)>>,
    synced: usize,
}

impl Sink for Client {
    async fn send(&mut self, kind: &'static str, _: Option<u64>, json: String) -> Result<(), End> {
        let v: serde_json::Value = serde_json::from_str(&json).expect("frame json");
        match kind {
            "message" => {
                let id = v["channel_id"].as_str().expect("channel_id").to_owned();
                let seq = v["message_seq"].as_u64().expect("message_seq");
                self.sent.entry(id).or_default().push(seq);
            }
            "synced" => {
                self.synced += 1;
                for g in v["gaps"].as_array().into_iter().flatten() {
                    let id = g["channel_id"].as_str().expect("gap channel").to_owned();
                    let range = (
                        g["from_seq"].as_u64().expect("from"),
                        g["to_seq"].as_u64().expect("to"),
                    );
                    self.gaps.entry(id).or_default().push(range);
                }
            }
            other => panic!("unexpected frame {other}: {json}"),
        }
        Ok(())
    }
}

/// How the client resumes.
#[derive(Debug, Clone)]
enum Resume {
    /// Lists its last seq per channel (`channels`).
    Listed(Vec<u64>),
    /// Holds every event up to this one (`since_event_seq`).
    Since(u64),
    /// Never sends `sync`: the hold expires.
    Never,
}

/// One thing that happens next.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// The hub fans the next event out to the connection's queue.
    Hub,
    /// The connection takes one item off its queue.
    Take,
    /// The connection drains its queue, then does one unit of backlog.
    Step,
    /// The read in flight completes.
    Read,
    /// The client's `sync` arrives (the first time only).
    Sync,
    /// The hold window passes.
    Expire,
    /// The projector applies a few more events.
    Project,
}

#[derive(Debug, Clone)]
struct Scenario {
    log: Vec<Msg>,
    channels: usize,
    registered_at: u64,
    projected: u64,
    resume: Resume,
    ops: Vec<Op>,
    page: usize,
    capacity: usize,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        1usize..=3,
        prop::collection::vec((0usize..3, 1u64..=2), 0..36),
    )
        .prop_flat_map(|(channels, raw)| {
            // Event seqs with holes (events of other users' channels), seqs per channel.
            let mut log = Vec::new();
            let mut next_seq = vec![0u64; channels];
            let mut event = 0;
            for (c, step) in raw {
                let c = c % channels;
                event += step;
                next_seq[c] += 1;
                log.push(Msg {
                    channel: c,
                    message_seq: next_seq[c],
                    event_seq: event,
                });
            }
            let heads = next_seq.clone();
            let last = event;
            let resume = prop_oneof![
                prop::collection::vec(0u64..=8, channels).prop_map(move |l| Resume::Listed(
                    l.iter().zip(&heads).map(|(x, h)| (*x).min(*h)).collect()
                )),
                (0..=last).prop_map(Resume::Since),
                Just(Resume::Never),
            ];
            let op = prop_oneof![
                4 => Just(Op::Hub),
                2 => Just(Op::Take),
                4 => Just(Op::Step),
                3 => Just(Op::Read),
                1 => Just(Op::Sync),
                1 => Just(Op::Expire),
                1 => Just(Op::Project),
            ];
            (
                Just(log),
                Just(channels),
                0..=last,
                0..=last,
                resume,
                prop::collection::vec(op, 0..160),
                1usize..=4,
                1usize..=6,
            )
        })
        .prop_map(
            |(log, channels, registered_at, projected, resume, ops, page, capacity)| Scenario {
                log,
                channels,
                registered_at,
                projected,
                resume,
                ops,
                page,
                capacity,
            },
        )
}

/// What the client ended with, and when it synced relative to its first message.
struct Outcome {
    client: Client,
    /// The sync came before anything was sent (the hold was still on).
    synced_while_holding: bool,
    synced: bool,
}

fn run(s: &Scenario) -> Outcome {
    let store = Arc::new(MemStore {
        log: s.log.clone(),
        projected: Mutex::new(s.projected),
    });
    let tenant = TenantId::parse("t").expect("tenant");
    let mut d = Delivery::new(
        store.clone(),
        tenant,
        user(),
        s.page,
        Duration::from_secs(3600),
        s.capacity,
    );
    let mut client = Client::default();
    // The hub's fan-out: every event after the registration position, in order.
    let mut pending: VecDeque<&Msg> = s
        .log
        .iter()
        .filter(|m| m.event_seq > s.registered_at)
        .collect();
    let mut queue: VecDeque<Out> = VecDeque::new();
    let mut position = s.registered_at;
    let mut synced = false;
    let mut synced_while_holding = false;
    let mut next_project = s.projected;
    let sync = |d: &mut Delivery, position: u64| {
        let (listed, since) = match &s.resume {
            Resume::Listed(l) => (
                l.iter()
                    .enumerate()
                    .map(|(c, &seq)| (key(c), seq))
                    .collect(),
                None,
            ),
            Resume::Since(e) => (HashMap::new(), Some(*e)),
            Resume::Never => unreachable!(),
        };
        d.begin_sync(None, listed, since, position);
    };
    futures::executor::block_on(async {
        let ops = s
            .ops
            .iter()
            .copied()
            .chain(std::iter::repeat_n(Op::Expire, 1));
        for op in ops {
            match op {
                Op::Hub => {
                    if let Some(m) = pending.pop_front() {
                        position = m.event_seq;
                        queue.push_back(live(m));
                    }
                }
                Op::Take => {
                    if let Some(out) = queue.pop_front() {
                        d.live(out, &mut client).await.expect("live");
                    }
                }
                Op::Step => {
                    if d.has_work() {
                        while let Some(out) = queue.pop_front() {
                            d.live(out, &mut client).await.expect("live");
                        }
                        d.step(&mut client).await.expect("step");
                    }
                }
                Op::Read => {
                    if d.reading() {
                        let r = d.next_read().await;
                        d.on_read(r, &mut client).await.expect("read");
                    }
                }
                Op::Sync => {
                    if !synced && !matches!(s.resume, Resume::Never) {
                        synced = true;
                        synced_while_holding = d.holding_until().is_some();
                        sync(&mut d, position);
                    }
                }
                Op::Expire => {
                    if d.holding_until().is_some() {
                        d.hold_expired();
                    }
                }
                Op::Project => {
                    next_project += 3;
                    store.caught_up_to(next_project);
                }
            }
        }
        // The rest of the log, then everything the connection still has to do.
        loop {
            if let Some(m) = pending.pop_front() {
                position = m.event_seq;
                queue.push_back(live(m));
            }
            while let Some(out) = queue.pop_front() {
                d.live(out, &mut client).await.expect("live");
            }
            if d.reading() {
                let r = d.next_read().await;
                d.on_read(r, &mut client).await.expect("read");
            } else if d.has_work() {
                d.step(&mut client).await.expect("step");
            } else if pending.is_empty() && queue.is_empty() {
                break;
            }
        }
    });
    let _ = position;
    Outcome {
        client,
        synced_while_holding,
        synced,
    }
}

fn check(s: &Scenario, o: &Outcome) -> Result<(), TestCaseError> {
    if o.synced {
        prop_assert_eq!(o.client.synced, 1, "one synced per sync");
    }
    for c in 0..s.channels {
        let id = peer(c).to_string();
        let msgs: Vec<&Msg> = s.log.iter().filter(|m| m.channel == c).collect();
        let head = msgs.last().map_or(0, |m| m.message_seq);
        let sent = o.client.sent.get(&id).cloned().unwrap_or_default();
        let gaps = o.client.gaps.get(&id).cloned().unwrap_or_default();
        prop_assert!(
            sent.windows(2).all(|w| w[0] < w[1]),
            "channel {}: out of order or duplicated: {:?}",
            c,
            sent
        );
        // What the client holds without this connection sending it.
        let claimed = match (&s.resume, o.synced) {
            (Resume::Listed(l), true) => l[c],
            (Resume::Since(e), true) => msgs
                .iter()
                .filter(|m| m.event_seq <= *e)
                .map(|m| m.message_seq)
                .max()
                .unwrap_or(0),
            _ => msgs
                .iter()
                .filter(|m| m.event_seq <= s.registered_at)
                .map(|m| m.message_seq)
                .max()
                .unwrap_or(0),
        };
        let covered = |seq: u64| {
            seq <= claimed || sent.contains(&seq) || gaps.iter().any(|&(f, t)| f <= seq && seq <= t)
        };
        for seq in 1..=head {
            prop_assert!(
                covered(seq),
                "channel {}: message {} neither sent nor reported (claimed {}, sent {:?}, gaps {:?})",
                c,
                seq,
                claimed,
                sent,
                gaps
            );
        }
        if o.synced_while_holding || !o.synced {
            // Nothing went out before the client said where it stands: it gets exactly
            // what it lacks, with no gap.
            let want: Vec<u64> = (claimed + 1..=head).collect();
            prop_assert_eq!(&sent, &want, "channel {}", c);
            prop_assert!(gaps.is_empty(), "channel {}: gaps {:?}", c, gaps);
        }
    }
    Ok(())
}

fn seed() -> u64 {
    let seed = std::env::var("PARLEY_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("seed {seed} (PARLEY_TEST_SEED={seed} repeats this run)");
    seed
}

#[test]
fn every_interleaving_delivers_each_message_once_in_order_or_reports_it() {
    let config = ProptestConfig {
        cases: 512,
        rng_seed: proptest::test_runner::RngSeed::Fixed(seed()),
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(s in scenario())| {
        let o = run(&s);
        check(&s, &o)?;
    });
}
