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
#[path = "seam_tests.rs"]
mod tests;
