//! Valid event streams published straight to the log with the `events` codec, as the command
//! service would have written them (gap-free `message_seq` per channel, senders are members,
//! read positions within the channel), but without going through HTTP: S5 measures the
//! projector, not the send path.
//!
//! - [`Mix`]: 2,000 users; 10,000 personal channels, 1,000 of them between `u0` and each of
//!   `u1..=u1000` (so `u0` has 1,000 conversations, the S4 user, and is in no group); 500
//!   groups of 20 members.
//!   After the 500 `group_created`, each event is a `message_sent` (95.3%: 70% personal, 30%
//!   group), a `read_position_set` (4%), a `members_added` (0.5%) or a `member_removed` (0.2%).
//! - [`Deep`]: one personal channel (`deep-a`, `deep-b`) with `n` messages (S3).

use events::event::{GroupCreated, MemberRemoved, MembersAdded, MessageSent, ReadPositionSet};
use events::subject::Subjects;
use events::{ChannelId, ChannelKey, Envelope, Event, TenantId, Uid};
use futures::stream::{FuturesUnordered, StreamExt};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use std::collections::HashSet;
use std::time::Instant;

/// Users in the mix.
const USERS: usize = 2_000;
/// Personal channels in the mix.
const PERSONAL: usize = 10_000;
/// Conversations of `u0`.
pub const HEAVY_CONVERSATIONS: usize = 1_000;
/// The S4 user.
pub const HEAVY_UID: &str = "u0";
/// Groups in the mix.
const GROUPS: usize = 500;
/// Initial members per group.
const GROUP_SIZE: usize = 20;
/// The S3 channel's two users.
pub const DEEP: (&str, &str) = ("deep-a", "deep-b");

/// One log record: subject and encoded event.
pub type Item = (String, Vec<u8>);

fn uid(s: &str) -> Uid {
    Uid::parse(s).expect("bench uids are valid")
}

/// Where the records go: one tenant's subjects under a root.
struct Log {
    subjects: Subjects,
    tenant: TenantId,
}

impl Log {
    fn new(root: &str, tenant: &str) -> Self {
        Self {
            subjects: Subjects::new(root),
            tenant: TenantId::parse(tenant).expect("valid tenant"),
        }
    }

    /// `event` encoded at `subject`.
    fn record(&self, subject: String, event: Event) -> Item {
        let env = Envelope {
            tenant: self.tenant.clone(),
            occurred_at: now_ms(),
            event,
        };
        (subject, events::encode(&env).expect("encodable"))
    }

    /// `event` on the subject of channel `key`.
    fn on_channel(&self, key: &ChannelKey, event: Event) -> Item {
        self.record(self.subjects.channel(&self.tenant, key), event)
    }
}

/// A `message_sent` with a fresh UUIDv7 and the current time.
fn message_sent(key: &ChannelKey, seq: u64, from: Uid, no: String, payload: String) -> Event {
    Event::MessageSent(MessageSent {
        channel: key.clone(),
        message_id: uuid::Uuid::now_v7(),
        message_seq: seq,
        from_uid: from,
        client_msg_no: Some(no),
        payload,
        timestamp: now_ms(),
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Payload pool: 256 base64 strings of 40..200 random bytes (chat-sized).
fn payloads(rng: &mut StdRng) -> Vec<String> {
    use base64::Engine;
    (0..256)
        .map(|_| {
            let mut b = vec![0u8; rng.gen_range(40..200)];
            rng.fill_bytes(&mut b);
            base64::engine::general_purpose::STANDARD.encode(b)
        })
        .collect()
}

struct Channel {
    key: ChannelKey,
    members: Vec<Uid>,
    seq: u64,
}

/// The personal/group mix: an iterator of `n` records.
pub struct Mix {
    rng: StdRng,
    log: Log,
    users: Vec<Uid>,
    personal: Vec<Channel>,
    groups: Vec<Channel>,
    payloads: Vec<String>,
    emitted: u64,
    n: u64,
    /// `message_sent` events emitted so far.
    pub messages: u64,
}

impl Mix {
    /// `n` events (at least the 500 `group_created`) under `root` for `tenant`.
    pub fn new(root: &str, tenant: &str, n: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(0x5eed);
        let users: Vec<Uid> = (0..USERS).map(|i| uid(&format!("u{i}"))).collect();
        let mut pairs = HashSet::new();
        let mut personal = Vec::with_capacity(PERSONAL);
        let mut push = |a: usize, b: usize, personal: &mut Vec<Channel>| {
            let key = ChannelKey::personal(&users[a], &users[b]);
            if pairs.insert(key.storage_key()) {
                personal.push(Channel {
                    key,
                    members: vec![users[a].clone(), users[b].clone()],
                    seq: 0,
                });
            }
        };
        for i in 1..=HEAVY_CONVERSATIONS {
            push(0, i, &mut personal);
        }
        while personal.len() < PERSONAL {
            let (a, b) = (rng.gen_range(1..USERS), rng.gen_range(1..USERS));
            if a != b {
                push(a, b, &mut personal);
            }
        }
        let groups = (0..GROUPS)
            .map(|g| Channel {
                key: ChannelKey::Group {
                    id: ChannelId::parse(format!("g{g}")).expect("valid"),
                },
                members: users[1..]
                    .choose_multiple(&mut rng, GROUP_SIZE)
                    .cloned()
                    .collect(),
                seq: 0,
            })
            .collect();
        let payloads = payloads(&mut rng);
        Self {
            rng,
            log: Log::new(root, tenant),
            users,
            personal,
            groups,
            payloads,
            emitted: 0,
            n,
            messages: 0,
        }
    }

    /// Conversations of [`HEAVY_UID`] so far: its personal channels that have a message.
    pub fn heavy_conversations(&self) -> usize {
        self.personal[..HEAVY_CONVERSATIONS]
            .iter()
            .filter(|c| c.seq > 0)
            .count()
    }

    fn group_id(c: &Channel) -> ChannelId {
        match &c.key {
            ChannelKey::Group { id } => id.clone(),
            ChannelKey::Personal { .. } => unreachable!("groups hold group keys"),
        }
    }

    fn message(&mut self, group: bool) -> Item {
        let list = if group {
            &mut self.groups
        } else {
            &mut self.personal
        };
        let i = self.rng.gen_range(0..list.len());
        let c = &mut list[i];
        c.seq += 1;
        let from = c.members.choose(&mut self.rng).expect("members").clone();
        self.messages += 1;
        let payload = self.payloads[self.rng.gen_range(0..self.payloads.len())].clone();
        let event = message_sent(&c.key, c.seq, from, format!("m{}", self.messages), payload);
        self.log.on_channel(&c.key, event)
    }

    /// A member reads a channel up to its head (a message instead if it has none yet).
    fn read(&mut self) -> Item {
        let group = !self.rng.gen_bool(0.7);
        let list = if group { &self.groups } else { &self.personal };
        let i = self.rng.gen_range(0..list.len());
        let c = &list[i];
        if c.seq == 0 {
            return self.message(group);
        }
        let reader = c.members.choose(&mut self.rng).expect("members").clone();
        let event = Event::ReadPositionSet(ReadPositionSet {
            uid: reader.clone(),
            channel: c.key.clone(),
            message_seq: c.seq,
        });
        self.log
            .record(self.log.subjects.reads(&self.log.tenant, &reader), event)
    }

    fn add_members(&mut self) -> Item {
        let g = self.rng.gen_range(0..self.groups.len());
        let mut uids = Vec::new();
        while uids.is_empty() {
            for _ in 0..self.rng.gen_range(1..=3) {
                let u = self.users[1..]
                    .choose(&mut self.rng)
                    .expect("users")
                    .clone();
                if !self.groups[g].members.contains(&u) && !uids.contains(&u) {
                    uids.push(u);
                }
            }
        }
        self.groups[g].members.extend(uids.iter().cloned());
        let c = &self.groups[g];
        let event = Event::MembersAdded(MembersAdded {
            channel_id: Self::group_id(c),
            uids,
        });
        self.log.on_channel(&c.key, event)
    }

    /// Removes a random member of a random group, unless the group is down to 3.
    fn remove_member(&mut self) -> Option<Item> {
        let g = self.rng.gen_range(0..self.groups.len());
        let c = &mut self.groups[g];
        if c.members.len() <= 3 {
            return None;
        }
        let i = self.rng.gen_range(0..c.members.len());
        let uid = c.members.swap_remove(i);
        let event = Event::MemberRemoved(MemberRemoved {
            channel_id: Self::group_id(c),
            uid,
        });
        Some(self.log.on_channel(&c.key, event))
    }
}

impl Iterator for Mix {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        if self.emitted >= self.n {
            return None;
        }
        self.emitted += 1;
        let i = self.emitted as usize - 1;
        if i < self.groups.len() {
            let c = &self.groups[i];
            let event = Event::GroupCreated(GroupCreated {
                channel_id: Self::group_id(c),
                name: Some(format!("Group {i}")),
                members: c.members.clone(),
                owner: c.members.first().cloned(),
            });
            return Some(self.log.on_channel(&c.key, event));
        }
        let r: f64 = self.rng.gen();
        Some(if r < 0.04 {
            self.read()
        } else if r < 0.045 {
            self.add_members()
        } else if r < 0.047 {
            match self.remove_member() {
                Some(item) => item,
                None => self.message(true),
            }
        } else {
            let group = self.rng.gen_bool(0.3);
            self.message(group)
        })
    }
}

/// `n` messages in the personal channel [`DEEP`], alternating senders.
pub struct Deep {
    log: Log,
    key: ChannelKey,
    users: [Uid; 2],
    payloads: Vec<String>,
    seq: u64,
    n: u64,
}

impl Deep {
    /// The channel's `n` messages under `root` for `tenant`.
    pub fn new(root: &str, tenant: &str, n: u64) -> Self {
        let users = [uid(DEEP.0), uid(DEEP.1)];
        Self {
            log: Log::new(root, tenant),
            key: ChannelKey::personal(&users[0], &users[1]),
            users,
            payloads: payloads(&mut StdRng::seed_from_u64(0xdee9)),
            seq: 0,
            n,
        }
    }
}

impl Iterator for Deep {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        if self.seq >= self.n {
            return None;
        }
        self.seq += 1;
        let event = message_sent(
            &self.key,
            self.seq,
            self.users[(self.seq % 2) as usize].clone(),
            format!("d{}", self.seq),
            self.payloads[(self.seq % 256) as usize].clone(),
        );
        Some(self.log.on_channel(&self.key, event))
    }
}

/// Publishes every record with up to `inflight` unacked; returns (records, records/s).
///
/// # Errors
/// A publish is refused.
pub async fn publish(
    js: &async_nats::jetstream::Context,
    items: impl Iterator<Item = Item>,
    inflight: usize,
) -> anyhow::Result<(u64, f64)> {
    let started = Instant::now();
    let mut pending = FuturesUnordered::new();
    let mut n = 0u64;
    for (subject, body) in items {
        let ack = js.publish(subject, body.into()).await?;
        pending.push(std::future::IntoFuture::into_future(ack));
        n += 1;
        while pending.len() >= inflight {
            if let Some(r) = pending.next().await {
                r?;
            }
        }
    }
    while let Some(r) = pending.next().await {
        r?;
    }
    Ok((n, n as f64 / started.elapsed().as_secs_f64()))
}
