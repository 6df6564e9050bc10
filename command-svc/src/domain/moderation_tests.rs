//! Roles and moderation: given events / when command / then events or refusal, and seeded
//! random command sequences (`PARLEY_TEST_SEED` repeats a run) checked against invariants.

use super::*;
use crate::domain::channel::{
    apply as fold, decide as decide_channel, ChannelState, Command, Decision,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn uid(s: &str) -> Uid {
    Uid::parse(s).unwrap()
}
fn key() -> ChannelKey {
    ChannelKey::Group {
        id: ChannelId::parse("g").unwrap(),
    }
}
fn run(state: ChannelState, cmd: Command) -> Result<ChannelState, DomainError> {
    let seq = state.last_event_seq + 1;
    match decide_channel(&state, &key(), cmd)? {
        Decision::Append(events) => Ok(events
            .iter()
            .enumerate()
            .fold(state, |s, (i, e)| fold(s, e, seq + i as u64))),
        Decision::Duplicate(_) => Ok(state),
    }
}
fn group(owner: &str, members: &[&str]) -> ChannelState {
    run(
        ChannelState::default(),
        Command::CreateGroup {
            name: None,
            members: members.iter().map(|m| uid(m)).collect(),
            max_members: None,
            owner: None,
            actor: Some(uid(owner)),
        },
    )
    .unwrap()
}
fn act(s: &ChannelState, actor: Option<&str>, act: Act) -> Result<ChannelState, DomainError> {
    run(
        s.clone(),
        Command::Moderate {
            act,
            actor: actor.map(uid),
            now: 1_000,
        },
    )
}
fn role(s: &ChannelState, who: &str, r: Role, by: &str) -> Result<ChannelState, DomainError> {
    act(
        s,
        Some(by),
        Act::UpdateMember {
            uid: uid(who),
            role: Some(r),
            muted_until: None,
        },
    )
}
fn send(s: &ChannelState, from: &str, at: i64) -> Result<ChannelState, DomainError> {
    run(
        s.clone(),
        Command::Send {
            from: uid(from),
            client_msg_no: None,
            payload: "aGk=".into(),
            payload_sha256: events::payload_digest("aGk="),
            message_id: uuid::Uuid::now_v7(),
            timestamp: at,
        },
    )
}
fn remove(s: &ChannelState, who: &str, by: Option<&str>) -> Result<ChannelState, DomainError> {
    run(
        s.clone(),
        Command::RemoveMember {
            uid: uid(who),
            actor: by.map(uid),
        },
    )
}

#[test]
fn the_creator_owns_the_group_and_is_made_a_member() {
    let s = group("olga", &["ann", "bo"]);
    assert_eq!(s.moderation.role("olga"), Role::Owner);
    assert!(s.members.contains("olga"));
    assert_eq!(s.moderation.role("ann"), Role::Member);
    let first = run(
        ChannelState::default(),
        Command::CreateGroup {
            name: None,
            members: vec![uid("ann"), uid("bo")],
            max_members: None,
            owner: None,
            actor: None,
        },
    )
    .unwrap();
    assert_eq!(
        first.moderation.role("ann"),
        Role::Owner,
        "else the first member"
    );
}

#[test]
fn members_remove_only_themselves_and_moderators_only_whom_they_outrank() {
    let s = group("olga", &["ann", "bo", "cy"]);
    let s = role(&s, "ann", Role::Admin, "olga").unwrap();
    assert!(matches!(
        remove(&s, "bo", Some("cy")),
        Err(DomainError::PermissionDenied(_))
    ));
    assert!(remove(&s, "cy", Some("cy")).is_ok(), "a member leaves");
    assert!(
        remove(&s, "bo", Some("ann")).is_ok(),
        "an admin removes a member"
    );
    let s2 = role(&s, "bo", Role::Admin, "olga").unwrap();
    assert!(
        matches!(
            remove(&s2, "bo", Some("ann")),
            Err(DomainError::PermissionDenied(_))
        ),
        "an admin does not outrank an admin"
    );
    assert!(matches!(
        remove(&s, "olga", Some("ann")),
        Err(DomainError::PermissionDenied(_))
    ));
    assert!(
        remove(&s, "olga", None).is_ok(),
        "an operator call keeps working"
    );
    assert!(matches!(
        remove(&s, "bo", Some("zed")),
        Err(DomainError::ActorNotMember(_))
    ));
}

#[test]
fn the_last_owner_cannot_leave_or_step_down_until_it_hands_over() {
    let s = group("olga", &["ann"]);
    assert_eq!(
        remove(&s, "olga", Some("olga")),
        Err(DomainError::LastOwner("olga".into()))
    );
    assert_eq!(
        role(&s, "olga", Role::Admin, "olga").map(|_| ()),
        Err(DomainError::LastOwner("olga".into()))
    );
    let s = role(&s, "ann", Role::Owner, "olga").unwrap();
    let s = remove(&s, "olga", Some("olga")).expect("handed over, olga may leave");
    assert_eq!(s.moderation.role("ann"), Role::Owner);
    let alone = group("solo", &[]);
    assert!(
        remove(&alone, "solo", Some("solo")).is_ok(),
        "the only member may leave"
    );
}

#[test]
fn an_admin_grants_at_most_admin() {
    let s = group("olga", &["ann", "bo"]);
    let s = role(&s, "ann", Role::Admin, "olga").unwrap();
    assert!(matches!(
        role(&s, "bo", Role::Owner, "ann"),
        Err(DomainError::PermissionDenied(_))
    ));
    let s = role(&s, "bo", Role::Admin, "ann").unwrap();
    assert_eq!(s.moderation.role("bo"), Role::Admin);
    assert!(
        role(&s, "ann", Role::Admin, "bo").is_ok(),
        "no change is no event"
    );
}

#[test]
fn each_refused_send_has_its_own_code_and_changes_nothing() {
    let s = group("olga", &["ann", "bo"]);
    let muted = act(
        &s,
        Some("olga"),
        Act::UpdateMember {
            uid: uid("ann"),
            role: None,
            muted_until: Some(Some(5_000)),
        },
    )
    .unwrap();
    assert_eq!(
        send(&muted, "ann", 4_999).map(|_| ()),
        Err(DomainError::MemberMuted {
            uid: "ann".into(),
            until: 5_000
        })
    );
    assert!(
        send(&muted, "ann", 5_000).is_ok(),
        "the mute ends at muted_until"
    );

    let quiet = act(
        &s,
        None,
        Act::UpdateChannel {
            muted: Some(true),
            whitelist_only: None,
        },
    )
    .unwrap();
    assert_eq!(
        send(&quiet, "ann", 1).map(|_| ()),
        Err(DomainError::ChannelMuted)
    );
    assert!(
        send(&quiet, "olga", 1).is_ok(),
        "owners speak in a muted channel"
    );

    let listed = act(
        &s,
        Some("olga"),
        Act::ChangeList {
            list: SendList::Blacklist,
            add: vec![uid("bo")],
            remove: vec![],
        },
    )
    .unwrap();
    assert_eq!(
        send(&listed, "bo", 1).map(|_| ()),
        Err(DomainError::Blacklisted("bo".into()))
    );

    let wl = act(
        &s,
        Some("olga"),
        Act::UpdateChannel {
            muted: None,
            whitelist_only: Some(true),
        },
    )
    .unwrap();
    let wl = act(
        &wl,
        Some("olga"),
        Act::ChangeList {
            list: SendList::Whitelist,
            add: vec![uid("ann")],
            remove: vec![],
        },
    )
    .unwrap();
    assert!(send(&wl, "ann", 1).is_ok());
    assert_eq!(
        send(&wl, "bo", 1).map(|_| ()),
        Err(DomainError::NotWhitelisted("bo".into()))
    );

    let banned = act(
        &s,
        Some("olga"),
        Act::Ban {
            uid: uid("bo"),
            until: Some(9_000),
        },
    )
    .unwrap();
    assert!(!banned.members.contains("bo"), "a ban removes the member");
    assert_eq!(
        send(&banned, "bo", 1).map(|_| ()),
        Err(DomainError::Banned {
            uid: "bo".into(),
            field: "from_uid"
        })
    );
    let add = |s: &ChannelState, now| {
        run(
            s.clone(),
            Command::AddMembers {
                uids: vec![uid("bo")],
                max_members: None,
                actor: None,
                now,
            },
        )
    };
    assert!(matches!(
        add(&banned, 8_999),
        Err(DomainError::Banned { .. })
    ));
    assert!(add(&banned, 9_000).is_ok(), "the ban ended");
    let lifted = act(&banned, None, Act::Unban { uid: uid("bo") }).unwrap();
    assert!(add(&lifted, 1).is_ok());
}

#[test]
fn a_blocked_user_cannot_send_to_the_blocker_and_the_blocker_still_can() {
    let pair = ChannelKey::personal(&uid("ann"), &uid("bo"));
    let block = decide_channel(
        &ChannelState::default(),
        &pair,
        Command::Block {
            uid: uid("ann"),
            block: true,
        },
    )
    .unwrap();
    let Decision::Append(events) = block else {
        panic!()
    };
    let s = fold(ChannelState::default(), &events[0], 1);
    let send_to = |from: &str| {
        decide_channel(
            &s,
            &pair,
            Command::Send {
                from: uid(from),
                client_msg_no: None,
                payload: "aGk=".into(),
                payload_sha256: events::payload_digest("aGk="),
                message_id: uuid::Uuid::now_v7(),
                timestamp: 1,
            },
        )
    };
    assert_eq!(
        send_to("bo").map(|_| ()),
        Err(DomainError::Blocked("bo".into()))
    );
    assert!(send_to("ann").is_ok());
    let again = decide_channel(
        &s,
        &pair,
        Command::Block {
            uid: uid("ann"),
            block: true,
        },
    );
    assert_eq!(
        again,
        Ok(Decision::Append(vec![])),
        "blocking twice changes nothing"
    );
}

fn seed() -> u64 {
    let seed = std::env::var("PARLEY_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen());
    println!("seed {seed} (PARLEY_TEST_SEED={seed} repeats this run)");
    seed
}

const USERS: [&str; 5] = ["u0", "u1", "u2", "u3", "u4"];

fn random_command(rng: &mut StdRng) -> Command {
    let who = |rng: &mut StdRng| uid(USERS[rng.gen_range(0..USERS.len())]);
    let actor = |rng: &mut StdRng| {
        if rng.gen_bool(0.9) {
            Some(who(rng))
        } else {
            None
        }
    };
    let now = rng.gen_range(0..100);
    match rng.gen_range(0..8) {
        0 => Command::AddMembers {
            uids: vec![who(rng), who(rng)],
            max_members: None,
            actor: actor(rng),
            now,
        },
        1 => Command::RemoveMember {
            uid: who(rng),
            actor: actor(rng),
        },
        2 => Command::Send {
            from: who(rng),
            client_msg_no: None,
            payload: "aGk=".into(),
            payload_sha256: events::payload_digest("aGk="),
            message_id: uuid::Uuid::now_v7(),
            timestamp: now,
        },
        n => Command::Moderate {
            act: match n {
                3 => Act::UpdateMember {
                    uid: who(rng),
                    role: Some([Role::Owner, Role::Admin, Role::Member][rng.gen_range(0..3)]),
                    muted_until: rng.gen_bool(0.5).then(|| rng.gen_bool(0.5).then_some(50)),
                },
                4 => Act::Ban {
                    uid: who(rng),
                    until: rng.gen_bool(0.5).then_some(60),
                },
                5 => Act::Unban { uid: who(rng) },
                6 => Act::UpdateChannel {
                    muted: Some(rng.gen_bool(0.3)),
                    whitelist_only: Some(rng.gen_bool(0.2)),
                },
                _ => Act::ChangeList {
                    list: if rng.gen_bool(0.5) {
                        SendList::Blacklist
                    } else {
                        SendList::Whitelist
                    },
                    add: vec![who(rng)],
                    remove: vec![who(rng)],
                },
            },
            actor: actor(rng),
            now,
        },
    }
}

/// Invariants over random sequences: roles and mutes belong to members only; a user banned
/// without end is never a member; a group some member owns keeps an owner through actor calls; the
/// state folded from the accepted events alone equals the state the run kept; and a member
/// whom `may_send` lets through has its send accepted.
#[test]
fn random_sequences_keep_the_invariants() {
    let mut rng = StdRng::seed_from_u64(seed());
    for _ in 0..300 {
        let mut s = group("u0", &["u1", "u2"]);
        let mut log: Vec<Event> = Vec::new();
        let mut seq = s.last_event_seq;
        for _ in 0..60 {
            let cmd = random_command(&mut rng);
            let operator = matches!(
                &cmd,
                Command::AddMembers { actor: None, .. }
                    | Command::RemoveMember { actor: None, .. }
                    | Command::Moderate { actor: None, .. }
            );
            let had_owner = s.moderation.roles.values().any(|r| *r == Role::Owner);
            let Ok(Decision::Append(events)) = decide_channel(&s, &key(), cmd) else {
                continue;
            };
            for e in &events {
                seq += 1;
                s = fold(s, e, seq);
                log.push(e.clone());
            }
            for u in s
                .moderation
                .roles
                .keys()
                .chain(s.moderation.muted_until.keys())
            {
                assert!(s.members.contains(u), "{u} has a role or mute but left");
            }
            for (u, until) in &s.moderation.bans {
                if until.is_none() {
                    assert!(!s.members.contains(u), "banned {u} is a member");
                }
            }
            if had_owner && !operator && !s.members.is_empty() {
                assert!(
                    s.moderation.roles.values().any(|r| *r == Role::Owner),
                    "an actor call left members without an owner: {:?}",
                    log.last()
                );
            }
        }
        let mut again = group("u0", &["u1", "u2"]);
        let mut seq2 = again.last_event_seq;
        for e in &log {
            seq2 += 1;
            again = fold(again, e, seq2);
        }
        assert_eq!(again.moderation, s.moderation);
        assert_eq!(again.members, s.members);
        for m in s.members.clone() {
            if may_send(&s.moderation, &m, 99).is_ok() {
                assert!(send(&s, &m, 99).is_ok(), "{m} may send but was refused");
            }
        }
    }
}
