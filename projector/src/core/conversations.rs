//! Projection `conversations`: one row per (user, channel) with `read_seq` and `last_msg_seq`.
//!
//! Rules (unread = `last_msg_seq − read_seq`, so it cannot drift):
//! - a message moves the channel's `last_msg_seq` for every member and advances the sender's
//!   own `read_seq` to it;
//! - a personal channel's two rows appear with its first message;
//! - joining a group starts the member at the channel's current seq (nothing unread);
//! - `read_position_set` sets `read_seq` exactly (lower = mark unread; the command service
//!   has capped it at the channel's head);
//! - a group's head lives in `conversation_channels` only (fan-out on read): a group message
//!   moves one row, not one per member;
//! - leaving a group or its disbanding removes the rows.
//!
//! Planning: a batch becomes its membership steps (join, leave, disband) in log order, then
//! one [`Step::Messages`] with every message and read position of the batch coalesced (one
//! row change per conversation, however many events touched it). That order is equivalent to
//! the log's because the two commute: a join records the group's head at the join (known from
//! the batch's earlier messages, else still the stored one); a leave or disband drops what the
//! batch had pending for those rows; the message writes are monotonic (`GREATEST`). A read
//! position overrides the reader's sends before it and is raised by their sends after it
//! ([`ReadSet::floor`]).

use super::{channel_columns, Record};
use events::event::{GroupCreated, MembersAdded};
use events::{ChannelKey, Event};
use std::collections::HashMap;

/// A personal conversation row to upsert after a run of messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairRow {
    /// Tenant.
    pub tenant: String,
    /// The row's owner.
    pub uid: String,
    /// Pair key.
    pub channel_key: String,
    /// The peer (the channel_id the owner sees).
    pub channel_id: String,
    /// The owner's read position candidate (their last own send in the run, or 0).
    pub read_seq: i64,
    /// The channel's head.
    pub last_msg_seq: i64,
    /// Head time, ms.
    pub updated_at: i64,
}

/// A group's head after a run of messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupHead {
    /// Tenant.
    pub tenant: String,
    /// Group id.
    pub channel_key: String,
    /// Head seq.
    pub last_msg_seq: i64,
    /// Head time, ms.
    pub updated_at: i64,
}

/// A sender's own read advance in a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderRead {
    /// Tenant.
    pub tenant: String,
    /// Group id.
    pub channel_key: String,
    /// The sender.
    pub uid: String,
    /// Their last own message seq in the run.
    pub read_seq: i64,
}

/// A read position set in a run: `read_seq = GREATEST(read_seq, floor)`, applied after the
/// run's heads and sender reads. The event's position is already at most the channel's head
/// (the command service caps it when deciding), so it is applied as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadSet {
    /// Tenant.
    pub tenant: String,
    /// Reader.
    pub uid: String,
    /// 1 or 2.
    pub channel_type: i16,
    /// Storage key.
    pub channel_key: String,
    /// The last position set in the run.
    pub read_seq: i64,
    /// The reader's last own message seq after that set in the run (0 = none).
    pub floor: i64,
}

/// One step of a conversations plan; steps apply in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A run of messages and read positions, coalesced per conversation; applied as pairs,
    /// then group heads, then sender reads, then read sets.
    Messages {
        /// Personal rows (two per pair).
        pairs: Vec<PairRow>,
        /// Group heads.
        groups: Vec<GroupHead>,
        /// Group senders' read advances.
        sender_reads: Vec<SenderRead>,
        /// Read positions set.
        reads: Vec<ReadSet>,
    },
    /// Users join a group at its current head (`created` also registers the channel).
    Joined {
        /// Tenant.
        tenant: String,
        /// Group id.
        channel_key: String,
        /// Who joined.
        uids: Vec<String>,
        /// Whether this is the group's creation.
        created: bool,
        /// The group's head when they joined, if the batch's messages before the join set it
        /// (else the head in `conversation_channels` is the one at the join).
        head: Option<i64>,
        /// Time, ms.
        at: i64,
    },
    /// One user leaves a group.
    Left {
        /// Tenant.
        tenant: String,
        /// Group id.
        channel_key: String,
        /// Who left.
        uid: String,
    },
    /// Everyone leaves a group.
    Disbanded {
        /// Tenant.
        tenant: String,
        /// Group id.
        channel_key: String,
    },
}

/// A personal channel in a run: (low, high, head seq, head time, low's max own seq, high's
/// max own seq).
type PairAcc = (String, String, i64, i64, i64, i64);

#[derive(Default)]
struct Run {
    /// (tenant, pair key) → its accumulated change
    pairs: HashMap<(String, String), PairAcc>,
    groups: HashMap<(String, String), GroupHead>,
    sender_reads: HashMap<(String, String, String), i64>,
    /// (tenant, channel_type, key, uid) → (position set, own seq after it)
    reads: HashMap<(String, i16, String, String), (i64, i64)>,
    /// (tenant, group, uid) removed in this batch and not back yet: their later reads are moot.
    gone: std::collections::HashSet<(String, String, String)>,
}

impl Run {
    fn push(&mut self, tenant: &str, channel: &ChannelKey, from: &str, seq: i64, at: i64) {
        let (channel_type, key) = channel_columns(channel);
        if let Some(read) = self.reads.get_mut(&(
            tenant.to_owned(),
            channel_type,
            key.clone(),
            from.to_owned(),
        )) {
            read.1 = seq;
        }
        match channel {
            ChannelKey::Personal { low, high } => {
                let e = self
                    .pairs
                    .entry((tenant.to_owned(), key))
                    .or_insert_with(|| (low.to_string(), high.to_string(), 0, 0, 0, 0));
                e.2 = seq;
                e.3 = at;
                if from == e.0 {
                    e.4 = seq;
                }
                if from == e.1 {
                    e.5 = seq;
                }
            }
            ChannelKey::Group { .. } => {
                self.groups.insert(
                    (tenant.to_owned(), key.clone()),
                    GroupHead {
                        tenant: tenant.to_owned(),
                        channel_key: key.clone(),
                        last_msg_seq: seq,
                        updated_at: at,
                    },
                );
                self.sender_reads
                    .insert((tenant.to_owned(), key, from.to_owned()), seq);
            }
        }
    }

    /// The group's head as of the batch so far, if a message of it has been seen.
    fn group_head(&self, tenant: &str, group: &str) -> Option<i64> {
        self.groups
            .get(&(tenant.to_owned(), group.to_owned()))
            .map(|g| g.last_msg_seq)
    }

    fn joined(&mut self, tenant: &str, group: &str, uids: &[String]) {
        for u in uids {
            self.gone
                .remove(&(tenant.to_owned(), group.to_owned(), u.clone()));
        }
    }

    /// `uid` left `group`: what the batch had pending for that row is moot.
    fn left(&mut self, tenant: &str, group: &str, uid: &str) {
        self.sender_reads
            .remove(&(tenant.to_owned(), group.to_owned(), uid.to_owned()));
        self.reads
            .remove(&(tenant.to_owned(), 2, group.to_owned(), uid.to_owned()));
        self.gone
            .insert((tenant.to_owned(), group.to_owned(), uid.to_owned()));
    }

    /// `group` was disbanded: every pending row change of it is moot.
    fn disbanded(&mut self, tenant: &str, group: &str) {
        self.sender_reads
            .retain(|(t, g, _), _| !(t == tenant && g == group));
        self.reads
            .retain(|(t, ct, g, _), _| !(t == tenant && *ct == 2 && g == group));
    }

    fn read(&mut self, tenant: &str, uid: &str, channel: &ChannelKey, read_seq: i64) {
        let (channel_type, key) = channel_columns(channel);
        if channel_type == 2
            && self
                .gone
                .contains(&(tenant.to_owned(), key.clone(), uid.to_owned()))
        {
            return;
        }
        self.reads.insert(
            (tenant.to_owned(), channel_type, key, uid.to_owned()),
            (read_seq, 0),
        );
    }

    fn flush(&mut self, steps: &mut Vec<Step>) {
        if self.pairs.is_empty() && self.groups.is_empty() && self.reads.is_empty() {
            return;
        }
        let mut pairs = Vec::with_capacity(self.pairs.len() * 2);
        for ((tenant, key), (low, high, seq, at, low_read, high_read)) in self.pairs.drain() {
            pairs.push(PairRow {
                tenant: tenant.clone(),
                uid: low.clone(),
                channel_key: key.clone(),
                channel_id: high.clone(),
                read_seq: low_read,
                last_msg_seq: seq,
                updated_at: at,
            });
            if low != high {
                pairs.push(PairRow {
                    tenant,
                    uid: high,
                    channel_key: key,
                    channel_id: low,
                    read_seq: high_read,
                    last_msg_seq: seq,
                    updated_at: at,
                });
            }
        }
        pairs.sort_by(|a, b| {
            (&a.tenant, &a.uid, &a.channel_key).cmp(&(&b.tenant, &b.uid, &b.channel_key))
        });
        let mut groups: Vec<GroupHead> = self.groups.drain().map(|(_, g)| g).collect();
        groups.sort_by(|a, b| (&a.tenant, &a.channel_key).cmp(&(&b.tenant, &b.channel_key)));
        let sender_reads = self
            .sender_reads
            .drain()
            .map(|((tenant, channel_key, uid), read_seq)| SenderRead {
                tenant,
                channel_key,
                uid,
                read_seq,
            })
            .collect();
        let mut reads: Vec<ReadSet> = self
            .reads
            .drain()
            .map(
                |((tenant, channel_type, channel_key, uid), (read_seq, floor))| ReadSet {
                    tenant,
                    uid,
                    channel_type,
                    channel_key,
                    read_seq,
                    floor,
                },
            )
            .collect();
        reads.sort_by(|a, b| {
            (&a.tenant, &a.uid, a.channel_type, &a.channel_key).cmp(&(
                &b.tenant,
                &b.uid,
                b.channel_type,
                &b.channel_key,
            ))
        });
        steps.push(Step::Messages {
            pairs,
            groups,
            sender_reads,
            reads,
        });
    }
}

/// The steps for a batch: its membership steps in log order, then its coalesced messages and
/// read positions (see the module docs for why that order is equivalent).
pub fn plan(batch: &[Record]) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut run = Run::default();
    for r in batch {
        let tenant = r.envelope.tenant.as_str();
        let at = r.envelope.occurred_at;
        match &r.envelope.event {
            Event::MessageSent(m) => run.push(
                tenant,
                &m.channel,
                m.from_uid.as_str(),
                m.message_seq as i64,
                m.timestamp,
            ),
            Event::ReadPositionSet(e) => {
                run.read(tenant, e.uid.as_str(), &e.channel, e.message_seq as i64)
            }
            Event::GroupCreated(GroupCreated {
                channel_id,
                members: uids,
                ..
            })
            | Event::MembersAdded(MembersAdded { channel_id, uids }) => {
                let group = channel_id.as_str();
                let uids: Vec<String> = uids.iter().map(ToString::to_string).collect();
                run.joined(tenant, group, &uids);
                steps.push(Step::Joined {
                    tenant: tenant.to_owned(),
                    channel_key: group.to_owned(),
                    uids,
                    created: matches!(r.envelope.event, Event::GroupCreated(_)),
                    head: run.group_head(tenant, group),
                    at,
                });
            }
            Event::MemberRemoved(e) => {
                run.left(tenant, e.channel_id.as_str(), e.uid.as_str());
                steps.push(Step::Left {
                    tenant: tenant.to_owned(),
                    channel_key: e.channel_id.to_string(),
                    uid: e.uid.to_string(),
                });
            }
            Event::GroupDisbanded(e) => {
                run.disbanded(tenant, e.channel_id.as_str());
                steps.push(Step::Disbanded {
                    tenant: tenant.to_owned(),
                    channel_key: e.channel_id.to_string(),
                });
            }
        }
    }
    run.flush(&mut steps);
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tests_support::*;

    #[test]
    fn personal_run_gives_both_rows_with_own_reads() {
        let steps = plan(&[
            personal_msg(1, "a", "b", 1, None),
            personal_msg(2, "a", "b", 2, None),
            personal_msg(3, "b", "a", 3, None),
            personal_msg(4, "a", "b", 4, None),
        ]);
        let [Step::Messages { pairs, .. }] = steps.as_slice() else {
            panic!("{steps:?}")
        };
        let a = pairs.iter().find(|p| p.uid == "a").unwrap();
        let b = pairs.iter().find(|p| p.uid == "b").unwrap();
        // a sent last: nothing unread for a; b read up to its own send at 3: one unread.
        assert_eq!(
            (a.last_msg_seq, a.read_seq, a.channel_id.as_str()),
            (4, 4, "b")
        );
        assert_eq!(
            (b.last_msg_seq, b.read_seq, b.channel_id.as_str()),
            (4, 3, "a")
        );
    }

    #[test]
    fn reads_coalesce_into_the_run_and_keep_their_order() {
        let key = events::ChannelKey::personal(
            &events::Uid::parse("a").unwrap(),
            &events::Uid::parse("b").unwrap(),
        );
        let steps = plan(&[
            personal_msg(1, "a", "b", 1, None),
            read_set(2, "b", key.clone(), 1),
            personal_msg(3, "a", "b", 2, None),
            read_set(4, "a", key.clone(), 1),
            personal_msg(5, "b", "a", 3, None),
        ]);
        let [Step::Messages { pairs, reads, .. }] = steps.as_slice() else {
            panic!("{steps:?}")
        };
        assert_eq!(pairs.len(), 2);
        let got: Vec<_> = reads
            .iter()
            .map(|r| (r.uid.as_str(), r.read_seq, r.floor))
            .collect();
        // a marked 1 after its own send at 2 (the set wins); b's set at 1 is raised by its
        // own send at 3.
        assert_eq!(got, vec![("a", 1, 0), ("b", 1, 3)]);
    }

    #[test]
    fn membership_steps_come_first_and_carry_the_head_at_join() {
        let steps = plan(&[
            group_created(1, "g", &["a", "b"]),
            group_msg(2, "g", "a", 1),
            members_added(3, "g", &["c"]),
            group_msg(4, "g", "c", 2),
        ]);
        assert_eq!(steps.len(), 3, "{steps:?}");
        assert!(matches!(
            &steps[0],
            Step::Joined {
                created: true,
                head: None,
                ..
            }
        ));
        assert!(matches!(
            &steps[1],
            Step::Joined {
                created: false,
                head: Some(1),
                ..
            }
        ));
        let Step::Messages { groups, .. } = &steps[2] else {
            panic!("{steps:?}")
        };
        assert_eq!(groups[0].last_msg_seq, 2);
    }

    /// The plan, applied the way the SQL in `shell::writer` applies it, gives the same rows as
    /// folding the events one at a time by the module's rules, over random histories.
    #[test]
    fn plan_matches_the_event_by_event_rules() {
        for seed in 1..=200u64 {
            let batch = random_history(seed, 60);
            for cut in [1, 7, 60] {
                let mut planned = Rows::default();
                for chunk in batch.chunks(cut) {
                    planned.apply_plan(&plan(chunk));
                }
                let mut naive = Rows::default();
                for r in &batch {
                    naive.apply_event(&r.envelope.event);
                }
                assert_eq!(
                    planned.view(),
                    naive.view(),
                    "seed {seed}, batches of {cut}"
                );
            }
        }
    }

    /// Conversation rows: (uid, channel_type, key) → (read_seq, last_msg_seq); channel heads.
    #[derive(Default)]
    struct Rows {
        rows: std::collections::BTreeMap<(String, i16, String), (i64, i64)>,
        heads: HashMap<(i16, String), i64>,
    }

    impl Rows {
        /// What a reader sees: a group row's head comes from the channel heads.
        #[allow(clippy::type_complexity)] // (key, (read_seq, last_msg_seq)) rows of a test model
        fn view(&self) -> Vec<((String, i16, String), (i64, i64))> {
            self.rows
                .iter()
                .map(|(k, &(read, last))| {
                    let last = match k.1 {
                        2 => self.heads.get(&(2, k.2.clone())).copied().unwrap_or(last),
                        _ => last,
                    };
                    (k.clone(), (read, last))
                })
                .collect()
        }

        fn apply_event(&mut self, event: &Event) {
            match event {
                Event::MessageSent(m) => {
                    let (ct, k) = channel_columns(&m.channel);
                    let s = m.message_seq as i64;
                    self.heads.insert((ct, k.clone()), s);
                    if let ChannelKey::Personal { low, high } = &m.channel {
                        for u in [low, high] {
                            self.rows
                                .entry((u.to_string(), 1, k.clone()))
                                .or_insert((0, 0));
                        }
                    }
                    for ((u, c, key), row) in self.rows.iter_mut() {
                        if *c == ct && *key == k {
                            row.1 = s;
                            if u == m.from_uid.as_str() {
                                row.0 = row.0.max(s);
                            }
                        }
                    }
                }
                Event::ReadPositionSet(e) => {
                    let (ct, k) = channel_columns(&e.channel);
                    if let Some(row) = self.rows.get_mut(&(e.uid.to_string(), ct, k)) {
                        row.0 = (e.message_seq as i64).min(row.1);
                    }
                }
                Event::GroupCreated(e) => self.join(e.channel_id.as_str(), &e.members),
                Event::MembersAdded(e) => self.join(e.channel_id.as_str(), &e.uids),
                Event::MemberRemoved(e) => {
                    self.rows
                        .remove(&(e.uid.to_string(), 2, e.channel_id.to_string()));
                }
                Event::GroupDisbanded(e) => {
                    self.rows
                        .retain(|(_, c, k), _| !(*c == 2 && k == e.channel_id.as_str()));
                }
            }
        }

        fn join(&mut self, group: &str, uids: &[events::Uid]) {
            let head = *self.heads.entry((2, group.to_owned())).or_insert(0);
            for u in uids {
                self.rows
                    .entry((u.to_string(), 2, group.to_owned()))
                    .or_insert((head, head));
            }
        }

        /// Mirrors the statements of `shell::writer::apply_conversations`.
        fn apply_plan(&mut self, steps: &[Step]) {
            for step in steps {
                match step {
                    Step::Messages {
                        pairs,
                        groups,
                        sender_reads,
                        reads,
                    } => {
                        for p in pairs {
                            let row = self
                                .rows
                                .entry((p.uid.clone(), 1, p.channel_key.clone()))
                                .or_insert((p.read_seq, p.last_msg_seq));
                            row.0 = row.0.max(p.read_seq);
                            row.1 = row.1.max(p.last_msg_seq);
                            self.heads
                                .insert((1, p.channel_key.clone()), p.last_msg_seq);
                        }
                        for g in groups {
                            self.heads
                                .insert((2, g.channel_key.clone()), g.last_msg_seq);
                        }
                        for r in sender_reads {
                            if let Some(row) =
                                self.rows
                                    .get_mut(&(r.uid.clone(), 2, r.channel_key.clone()))
                            {
                                row.0 = row.0.max(r.read_seq);
                            }
                        }
                        for r in reads {
                            let key = (r.uid.clone(), r.channel_type, r.channel_key.clone());
                            if let Some(row) = self.rows.get_mut(&key) {
                                row.0 = r.read_seq.max(r.floor);
                            }
                        }
                    }
                    Step::Joined {
                        channel_key,
                        uids,
                        head,
                        ..
                    } => {
                        let stored = *self.heads.entry((2, channel_key.clone())).or_insert(0);
                        let head = head.unwrap_or(stored);
                        for u in uids {
                            self.rows
                                .entry((u.clone(), 2, channel_key.clone()))
                                .or_insert((head, head));
                        }
                    }
                    Step::Left {
                        channel_key, uid, ..
                    } => {
                        self.rows.remove(&(uid.clone(), 2, channel_key.clone()));
                    }
                    Step::Disbanded { channel_key, .. } => {
                        self.rows
                            .retain(|(_, c, k), _| !(*c == 2 && k == channel_key));
                    }
                }
            }
        }
    }

    /// A valid history (as the command service decides them) over users a..d, personal
    /// channels among them and one group: sends by members, reads at most the head, joins
    /// and leaves.
    fn random_history(seed: u64, n: u64) -> Vec<Record> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut next = move |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        let users = ["a", "b", "c", "d"];
        let uid = |s: &str| events::Uid::parse(s).unwrap();
        let mut heads: HashMap<String, u64> = HashMap::new();
        let mut members: Vec<&str> = vec!["a", "b"];
        let mut out = vec![group_created(1, "g", &["a", "b"])];
        for seq in 2..=n {
            let who = users[next(4) as usize];
            let rec = match next(10) {
                0..=4 => {
                    let to = users[next(4) as usize];
                    let key = ChannelKey::personal(&uid(who), &uid(to));
                    let h = heads.entry(key.storage_key()).or_insert(0);
                    *h += 1;
                    personal_msg(seq, who, to, *h, None)
                }
                5 if members.contains(&who) => {
                    let h = heads.entry("g".into()).or_insert(0);
                    *h += 1;
                    group_msg(seq, "g", who, *h)
                }
                // Reads as the command service allows them: group reads by members only.
                6 | 7 => {
                    let (key, storage) = if next(2) == 0 && members.contains(&who) {
                        (
                            ChannelKey::Group {
                                id: events::ChannelId::parse("g").unwrap(),
                            },
                            "g".to_owned(),
                        )
                    } else {
                        let k = ChannelKey::personal(&uid(who), &uid(users[next(4) as usize]));
                        let s = k.storage_key();
                        (k, s)
                    };
                    let h = heads.get(&storage).copied().unwrap_or(0);
                    read_set(seq, who, key, next(h + 1))
                }
                8 if !members.contains(&who) => {
                    members.push(who);
                    members_added(seq, "g", &[who])
                }
                9 if members.contains(&who) && members.len() > 1 => {
                    members.retain(|m| *m != who);
                    let mut r = group_msg(seq, "g", who, 0);
                    r.envelope.event = Event::MemberRemoved(events::event::MemberRemoved {
                        channel_id: events::ChannelId::parse("g").unwrap(),
                        uid: uid(who),
                    });
                    r
                }
                _ => {
                    let key = ChannelKey::personal(&uid(who), &uid("a"));
                    let h = heads.entry(key.storage_key()).or_insert(0);
                    *h += 1;
                    personal_msg(seq, who, "a", *h, None)
                }
            };
            out.push(rec);
        }
        out
    }

    #[test]
    fn group_messages_advance_only_the_senders_read() {
        let steps = plan(&[
            group_created(1, "g", &["a", "b"]),
            group_msg(2, "g", "a", 1),
            group_msg(3, "g", "b", 2),
        ]);
        let Step::Messages {
            groups,
            sender_reads,
            ..
        } = &steps[1]
        else {
            panic!("{steps:?}")
        };
        assert_eq!(groups[0].last_msg_seq, 2);
        let mut reads: Vec<_> = sender_reads
            .iter()
            .map(|r| (r.uid.as_str(), r.read_seq))
            .collect();
        reads.sort();
        assert_eq!(reads, vec![("a", 1), ("b", 2)]);
    }
}
