//! [`Seam`]: the pure bookkeeping behind a connection's gap-free, duplicate-free, in-order
//! stream per channel — what the client holds of each channel, which live items wait, and what
//! to fetch from the read models. No I/O: the session executes what it decides.
//!
//! The rules (documented for clients in `docs/realtime.md`):
//! 1. Live items are **held** (not sent) until the connection's first `sync` has finished its
//!    catch-up, or until the hold window passes without a `sync`; and again while anything
//!    older is being sent (a catch-up, a hole fill, held items): [`Seam::pause`],
//!    [`Seam::take_held`], [`Seam::resume`]. So a client never gets a channel's newer messages
//!    before its older missed ones, and the connection never waits on the read models with
//!    live items piling up in the hub's queue.
//!    `typing` and `presence` items are momentary and never held.
//! 2. A held `message` past the hold capacity is not kept: the channel's lowest and highest
//!    such messages are remembered and fetched from the read models when going live (they
//!    hold every message the log has); any other item past the capacity makes the connection a
//!    slow consumer.
//! 3. Live, per channel: a message at or below what the client holds is dropped; one more
//!    than a message ahead first fills the hole from the read models ([`Step::Fill`]).
//! 4. A `sync` names, per channel, the last `message_seq` the client holds ([`Seam::plan`]).
//!    If this connection already sent messages of that channel (a later `sync`), older
//!    messages are never sent after newer ones: the range below the first one sent is
//!    reported as a gap for the client to read over REST.
//! 5. What a `sync` claims for channels it does not plan is still the client's: a live message
//!    of a channel nothing is known of on this connection is dropped when its event is at or
//!    below `since_event_seq` ([`Seam::claim_events_through`]), or its seq at or below the
//!    `last_seq` the client listed for it ([`Seam::claim`]) — the hub of this instance may be
//!    behind the one the client last read from. Such a claim never fills holes: the client
//!    may not have been allowed to read what came before.

use super::hub::Out;
use events::ChannelKey;
use std::collections::{HashMap, VecDeque};

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the first `sync` (or the end of the hold window): live items are held.
    Holding,
    /// Older messages are being sent (a `sync`'s catch-up, a hole fill, held items): live
    /// items are held.
    Busy,
    /// Live items go out as they come.
    Live,
}

/// What to do with one live message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The client holds it already.
    Skip,
    /// Send it.
    Send,
    /// Send the messages after `after` up to `upto` (events at most `max_event_seq`) from
    /// the read models first, then it.
    Fill {
        /// The last seq the client holds.
        after: u64,
        /// The seq before the live one.
        upto: u64,
        /// The live one's event minus one.
        max_event_seq: u64,
    },
}

/// What a `sync` does for one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Send every message after `after` from the read models.
    CatchUp {
        /// The last seq the client holds.
        after: u64,
    },
    /// The client holds everything there is (or will get it live).
    Nothing,
    /// Messages `from..=to` are older than ones this connection already sent: not sent here,
    /// reported in `synced.gaps` for the client to read over REST.
    Gap {
        /// The first missing seq.
        from: u64,
        /// The last missing seq.
        to: u64,
    },
}

/// What [`Seam::hold`] did with a live item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// Live: deliver it now.
    Deliver(Out),
    /// Kept (or remembered for a refill, or dropped as momentary) until going live.
    Kept,
    /// Over capacity with an item that can be neither refilled nor dropped.
    Overflow,
}

/// One channel's messages to fetch when going live: after the client's position (or from
/// `from` when it has none) up to `upto`, events at most `max_event_seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refill {
    /// The channel.
    pub channel: ChannelKey,
    /// The lowest message remembered instead of held.
    pub from: u64,
    /// The highest message remembered instead of held.
    pub upto: u64,
    /// Its event.
    pub max_event_seq: u64,
}

/// What the client holds of one channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Span {
    /// The first `message_seq` sent on this connection (0: none yet).
    first_sent: u64,
    /// The last `message_seq` the client holds: sent on this connection, or claimed by its
    /// `sync`.
    last: u64,
}

/// See the module docs.
#[derive(Debug)]
pub struct Seam {
    /// Per channel, what the client holds (one map, one lookup per live message).
    channels: HashMap<ChannelKey, Span>,
    phase: Phase,
    held: VecDeque<Out>,
    refill: HashMap<ChannelKey, (u64, u64, u64)>,
    capacity: usize,
    /// Rule 5: the client holds every event up to this one.
    floor: u64,
    /// Rule 5: listed channels the plan did not cover, and the last seq the client holds.
    claims: HashMap<ChannelKey, u64>,
}

impl Seam {
    /// A new connection's seam, holding at most `capacity` live items before going live.
    pub fn new(capacity: usize) -> Self {
        Self {
            channels: HashMap::new(),
            phase: Phase::Holding,
            held: VecDeque::new(),
            refill: HashMap::new(),
            capacity: capacity.max(1),
            floor: 0,
            claims: HashMap::new(),
        }
    }

    /// The phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Older messages are about to be sent: hold live items from now on.
    pub fn pause(&mut self) {
        self.phase = Phase::Busy;
    }

    /// Everything older went out: live items go out as they come.
    pub fn resume(&mut self) {
        self.phase = Phase::Live;
    }

    /// Takes a live item from the hub: passes it on when live (and `typing`/`presence`
    /// always), else holds it (rules 1 and 2).
    pub fn hold(&mut self, out: Out) -> Held {
        let momentary =
            matches!(&out, Out::Frame { kind, .. } if matches!(*kind, "typing" | "presence"));
        if self.phase == Phase::Live || momentary {
            return Held::Deliver(out);
        }
        if self.held.len() < self.capacity {
            self.held.push_back(out);
            return Held::Kept;
        }
        match out {
            Out::Message {
                channel,
                message_seq,
                event_seq,
                ..
            } => {
                let entry = self.refill.entry((*channel).clone()).or_insert((
                    message_seq,
                    message_seq,
                    event_seq,
                ));
                entry.0 = entry.0.min(message_seq);
                if message_seq >= entry.1 {
                    (entry.1, entry.2) = (message_seq, event_seq);
                }
                Held::Kept
            }
            Out::Frame { .. } => Held::Overflow,
        }
    }

    /// [`Seam::take_held`], then [`Seam::resume`].
    pub fn go_live(&mut self) -> (Vec<Out>, Vec<Refill>) {
        let out = self.take_held();
        self.resume();
        out
    }

    /// The held items in arrival order and the channels to refill (rule 2), both to pass
    /// through [`Seam::step`] and the read models before anything newer; live items keep being
    /// held meanwhile.
    pub fn take_held(&mut self) -> (Vec<Out>, Vec<Refill>) {
        // Taken, not drained: an idle connection keeps no buffer it once needed.
        let held = Vec::from(std::mem::take(&mut self.held));
        let mut refills: Vec<Refill> = std::mem::take(&mut self.refill)
            .into_iter()
            .map(|(channel, (from, upto, max_event_seq))| Refill {
                channel,
                from,
                upto,
                max_event_seq,
            })
            .collect();
        refills.sort_by_key(|r| r.max_event_seq);
        (held, refills)
    }

    /// The client holds every event up to `event_seq` (rule 5).
    pub fn claim_events_through(&mut self, event_seq: u64) {
        self.floor = self.floor.max(event_seq);
    }

    /// The client holds up to `message_seq` of `channel`, which its `sync` listed but the plan
    /// did not cover (rule 5); ignored once the channel is known.
    pub fn claim(&mut self, channel: &ChannelKey, message_seq: u64) {
        if !self.channels.contains_key(channel) {
            let c = self.claims.entry(channel.clone()).or_default();
            *c = (*c).max(message_seq);
        }
    }

    /// Whether the client holds message `message_seq` (event `event_seq`) of `channel` by rule
    /// 5 alone: nothing of the channel is known on this connection, and a claim covers it.
    pub fn claimed(&self, channel: &ChannelKey, message_seq: u64, event_seq: u64) -> bool {
        !self.channels.contains_key(channel)
            && (event_seq <= self.floor
                || self.claims.get(channel).is_some_and(|&c| message_seq <= c))
    }

    /// What to do with live message `message_seq` (event `event_seq`) of `channel` (rules 3
    /// and 5).
    pub fn step(&self, channel: &ChannelKey, message_seq: u64, event_seq: u64) -> Step {
        match self.channels.get(channel).map(|s| s.last) {
            None if self.claimed(channel, message_seq, event_seq) => Step::Skip,
            Some(last) if message_seq <= last => Step::Skip,
            Some(last) if message_seq > last + 1 => Step::Fill {
                after: last,
                upto: message_seq - 1,
                max_event_seq: event_seq.saturating_sub(1),
            },
            _ => Step::Send,
        }
    }

    /// The last seq the client holds of `channel`, if known.
    pub fn last(&self, channel: &ChannelKey) -> Option<u64> {
        self.channels.get(channel).map(|s| s.last)
    }

    /// Records that message `message_seq` of `channel` went out.
    pub fn sent(&mut self, channel: &ChannelKey, message_seq: u64) {
        match self.channels.get_mut(channel) {
            Some(span) => {
                span.last = span.last.max(message_seq);
                if span.first_sent == 0 {
                    span.first_sent = message_seq;
                }
            }
            None => {
                self.channels.insert(
                    channel.clone(),
                    Span {
                        first_sent: message_seq,
                        last: message_seq,
                    },
                );
            }
        }
    }

    /// What a `sync` does for `channel`, whose client holds up to `client_last` and whose
    /// newest message is `channel_last` (rule 4). Records the client's claim.
    pub fn plan(&mut self, channel: &ChannelKey, client_last: u64, channel_last: u64) -> Plan {
        let span = self.channels.get(channel).copied().unwrap_or_default();
        let first = span.first_sent;
        if first > 0 {
            return if client_last + 1 < first {
                Plan::Gap {
                    from: client_last + 1,
                    to: first - 1,
                }
            } else {
                Plan::Nothing
            };
        }
        let known = span.last.max(client_last);
        self.channels.insert(
            channel.clone(),
            Span {
                first_sent: 0,
                last: known,
            },
        );
        if channel_last > known {
            Plan::CatchUp { after: known }
        } else {
            Plan::Nothing
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::sync::Arc;

    fn key(n: u8) -> ChannelKey {
        ChannelKey::Group {
            id: events::ChannelId::parse(format!("g{n}")).expect("id"),
        }
    }

    fn msg(channel: &ChannelKey, seq: u64) -> Out {
        Out::Message {
            channel: Arc::new(channel.clone()),
            message_seq: seq,
            event_seq: seq * 10,
            frame: Arc::from(format!("{seq}")),
        }
    }

    /// Runs `seam` over one item like the session does, appending what the client receives
    /// per channel; the read model holds every message `1..=head`.
    fn deliver(seam: &mut Seam, out: Out, got: &mut HashMap<ChannelKey, Vec<u64>>) {
        let Out::Message {
            channel,
            message_seq,
            event_seq,
            ..
        } = out
        else {
            return;
        };
        match seam.step(&channel, message_seq, event_seq) {
            Step::Skip => return,
            Step::Fill { after, upto, .. } => {
                for s in after + 1..=upto {
                    got.entry((*channel).clone()).or_default().push(s);
                    seam.sent(&channel, s);
                }
            }
            Step::Send => {}
        }
        got.entry((*channel).clone()).or_default().push(message_seq);
        seam.sent(&channel, message_seq);
    }

    /// Refills as the session does: after the client's position, or from the lowest one.
    fn refill(seam: &mut Seam, refills: Vec<Refill>, got: &mut HashMap<ChannelKey, Vec<u64>>) {
        for r in refills {
            let after = seam.last(&r.channel).unwrap_or(r.from - 1);
            for s in after + 1..=r.upto {
                got.entry(r.channel.clone()).or_default().push(s);
                seam.sent(&r.channel, s);
            }
        }
    }

    fn seed() -> u64 {
        let seed = std::env::var("PARLEY_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| rand::thread_rng().gen());
        println!("seed {seed} (PARLEY_TEST_SEED={seed} repeats this run)");
        seed
    }

    /// Random interleavings of live messages, a `sync` at a random moment (or none, then the
    /// hold window ends), catch-up pages and a small hold capacity: per channel the client
    /// receives exactly `client_last+1..=head`, in order, without duplicates.
    #[test]
    fn a_since_claim_drops_live_messages_of_unknown_channels_at_or_below_it() {
        let (a, b) = (key(1), key(2));
        let mut seam = Seam::new(4);
        seam.resume();
        seam.claim_events_through(25);
        // Channel a was planned (known); b the client holds through event 25 only by claim.
        assert_eq!(seam.plan(&a, 1, 3), Plan::CatchUp { after: 1 });
        assert_eq!(seam.step(&b, 2, 20), Step::Skip);
        assert!(seam.claimed(&b, 2, 25));
        assert_eq!(seam.step(&b, 3, 30), Step::Send);
        seam.sent(&b, 3);
        assert!(!seam.claimed(&b, 2, 20), "known channels follow rule 3");
        // A listed claim skips what it covers and never fills what comes before.
        let c = key(3);
        seam.claim(&c, 4);
        assert_eq!(seam.step(&c, 4, 40), Step::Skip);
        assert_eq!(seam.step(&c, 9, 90), Step::Send);
        assert_eq!(seam.step(&a, 2, 20), Step::Send);
    }

    #[test]
    fn every_interleaving_is_in_order_gap_free_and_duplicate_free() {
        let mut rng = StdRng::seed_from_u64(seed());
        for _ in 0..2000 {
            let channels: Vec<ChannelKey> = (0..rng.gen_range(1..4)).map(key).collect();
            let capacity = rng.gen_range(1..8);
            let mut seam = Seam::new(capacity);
            let mut got: HashMap<ChannelKey, Vec<u64>> = HashMap::new();
            // Per channel: what the client holds, the head when it connects, and live ones.
            let mut heads: HashMap<ChannelKey, u64> = HashMap::new();
            let mut client: HashMap<ChannelKey, u64> = HashMap::new();
            for c in &channels {
                let head = rng.gen_range(0..20);
                heads.insert(c.clone(), head);
                client.insert(c.clone(), rng.gen_range(0..=head));
            }
            let syncs = rng.gen_bool(0.8);
            let sync_at = rng.gen_range(0..10);
            let mut live_sent = 0;
            let mut synced = false;
            // Live arrivals: each appends the next message of a random channel.
            for step in 0..rng.gen_range(0..25) {
                if syncs && step == sync_at && seam.phase() == Phase::Holding {
                    synced = true;
                    seam.pause();
                    for c in &channels {
                        if let Plan::CatchUp { after } = seam.plan(c, client[c], heads[c]) {
                            // The catch-up covers the read models up to the hub's position.
                            for s in after + 1..=heads[c] {
                                got.entry(c.clone()).or_default().push(s);
                                seam.sent(c, s);
                            }
                        }
                    }
                    let (held, refills) = seam.go_live();
                    for out in held {
                        deliver(&mut seam, out, &mut got);
                    }
                    refill(&mut seam, refills, &mut got);
                }
                let c = &channels[rng.gen_range(0..channels.len())];
                let next = heads[c] + 1;
                heads.insert(c.clone(), next);
                match seam.hold(msg(c, next)) {
                    Held::Deliver(out) => {
                        live_sent += 1;
                        deliver(&mut seam, out, &mut got);
                    }
                    Held::Kept => {}
                    Held::Overflow => panic!("messages never overflow"),
                }
            }
            if seam.phase() != Phase::Live {
                // No sync (or not yet): the hold window ends.
                let (held, refills) = seam.go_live();
                for out in held {
                    deliver(&mut seam, out, &mut got);
                }
                refill(&mut seam, refills, &mut got);
            }
            for c in &channels {
                let mine = got.get(c).cloned().unwrap_or_default();
                if synced {
                    // Resumed: exactly what the client lacked, in order.
                    let want: Vec<u64> = (client[c] + 1..=heads[c]).collect();
                    assert_eq!(mine, want, "capacity {capacity}, live sent {live_sent}");
                } else if let Some(&first) = mine.first() {
                    // No resume: from the first live message on, contiguous to the head.
                    let want: Vec<u64> = (first..=heads[c]).collect();
                    assert_eq!(mine, want, "capacity {capacity}, live sent {live_sent}");
                }
            }
        }
    }

    #[test]
    fn a_late_sync_reports_a_gap_instead_of_sending_older_after_newer() {
        let g = key(1);
        let mut seam = Seam::new(4);
        let (held, _) = seam.go_live();
        assert!(held.is_empty());
        for seq in 112..=116 {
            assert!(matches!(seam.hold(msg(&g, seq)), Held::Deliver(_)));
            seam.sent(&g, seq);
        }
        assert_eq!(seam.plan(&g, 5, 116), Plan::Gap { from: 6, to: 111 });
        assert_eq!(seam.plan(&g, 111, 116), Plan::Nothing);
        assert_eq!(seam.step(&g, 116, 1160), Step::Skip);
        assert_eq!(
            seam.step(&g, 119, 1190),
            Step::Fill {
                after: 116,
                upto: 118,
                max_event_seq: 1189
            }
        );
    }

    #[test]
    fn held_items_past_capacity_refill_or_drop_or_overflow() {
        let g = key(1);
        let mut seam = Seam::new(1);
        assert_eq!(seam.hold(msg(&g, 1)), Held::Kept);
        assert_eq!(seam.hold(msg(&g, 3)), Held::Kept);
        assert_eq!(seam.hold(msg(&g, 2)), Held::Kept);
        let typing = Out::Frame {
            kind: "typing",
            event_seq: None,
            frame: Arc::from("{}"),
        };
        assert!(
            matches!(seam.hold(typing), Held::Deliver(_)),
            "typing is never held"
        );
        let read = Out::Frame {
            kind: "read",
            event_seq: Some(5),
            frame: Arc::from("{}"),
        };
        assert_eq!(seam.hold(read), Held::Overflow);
        let (held, refills) = seam.go_live();
        assert_eq!(held.len(), 1);
        assert_eq!(
            refills,
            vec![Refill {
                channel: g,
                from: 2,
                upto: 3,
                max_event_seq: 30
            }]
        );
    }
}
