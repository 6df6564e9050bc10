//! Unit tests of `conversations.rs`.

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
            Event::MemberBanned(e) => {
                self.rows
                    .remove(&(e.uid.to_string(), 2, e.channel_id.to_string()));
            }
            Event::GroupDisbanded(e) => {
                self.rows
                    .retain(|(_, c, k), _| !(*c == 2 && k == e.channel_id.as_str()));
            }
            Event::MemberUpdated(_)
            | Event::ChannelUpdated(_)
            | Event::MemberUnbanned(_)
            | Event::SendListChanged(_)
            | Event::UserBlocked(_)
            | Event::UserUnblocked(_) => {}
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
                let channel_id = events::ChannelId::parse("g").unwrap();
                // A ban removes a member as a removal does.
                r.envelope.event = if next(2) == 0 {
                    Event::MemberRemoved(events::event::MemberRemoved {
                        channel_id,
                        uid: uid(who),
                    })
                } else {
                    Event::MemberBanned(events::event::MemberBanned {
                        channel_id,
                        uid: uid(who),
                        until: None,
                        by: None,
                    })
                };
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
