//! given events / when command / then events.
use super::*;

fn uid(s: &str) -> Uid {
    Uid::parse(s).unwrap()
}
fn group() -> ChannelKey {
    ChannelKey::Group {
        id: ChannelId::parse("g").unwrap(),
    }
}
fn given(events: &[Event]) -> ChannelState {
    events
        .iter()
        .enumerate()
        .fold(ChannelState::default(), |s, (i, e)| {
            apply(s, e, i as u64 + 1)
        })
}
fn send(from: &str, no: Option<&str>, payload: &str) -> Command {
    Command::Send {
        from: uid(from),
        client_msg_no: no.map(str::to_owned),
        payload: payload.to_owned(),
        payload_sha256: events::payload_digest(payload),
        message_id: uuid::Uuid::now_v7(),
        timestamp: 1,
    }
}
fn created(members: &[&str]) -> Event {
    Event::GroupCreated(GroupCreated {
        channel_id: ChannelId::parse("g").unwrap(),
        name: None,
        members: members.iter().map(|m| uid(m)).collect(),
        owner: members.first().map(|m| uid(m)),
    })
}
fn appended(d: Result<Decision, DomainError>) -> Vec<Event> {
    match d {
        Ok(Decision::Append(ev)) => ev,
        other => panic!("expected events, got {other:?}"),
    }
}

#[test]
fn sequences_continue_from_the_state() {
    let key = ChannelKey::personal(&uid("a"), &uid("b"));
    let first = appended(decide(
        &ChannelState::default(),
        &key,
        send("a", None, "aGk="),
    ));
    let Event::MessageSent(m) = &first[0] else {
        panic!()
    };
    assert_eq!(m.message_seq, 1);
    let state = given(&first);
    let second = appended(decide(&state, &key, send("b", None, "aGk=")));
    let Event::MessageSent(m) = &second[0] else {
        panic!()
    };
    assert_eq!(m.message_seq, 2);
}

#[test]
fn personal_sender_must_be_one_of_the_pair() {
    let key = ChannelKey::personal(&uid("a"), &uid("b"));
    assert_eq!(
        decide(&ChannelState::default(), &key, send("c", None, "aGk=")),
        Err(DomainError::NotAMember("c".into()))
    );
}

#[test]
fn group_rules() {
    let key = group();
    assert_eq!(
        decide(&ChannelState::default(), &key, send("a", None, "aGk=")),
        Err(DomainError::ChannelNotFound)
    );
    let state = given(&[created(&["a", "b", "a"])]);
    assert_eq!(
        decide(&state, &key, send("c", None, "aGk=")),
        Err(DomainError::NotAMember("c".into()))
    );
    assert_eq!(
        appended(decide(&state, &key, send("a", None, "aGk="))).len(),
        1
    );
    assert_eq!(
        decide(
            &state,
            &key,
            Command::CreateGroup {
                name: None,
                members: vec![],
                max_members: None,
                owner: None,
                actor: None,
            }
        ),
        Err(DomainError::ChannelExists)
    );
    // re-adding members is a no-op; new ones only are listed
    let ev = appended(decide(
        &state,
        &key,
        Command::AddMembers {
            uids: vec![uid("a"), uid("c"), uid("c")],
            max_members: None,
            actor: None,
            now: 0,
        },
    ));
    assert_eq!(
        ev,
        vec![Event::MembersAdded(MembersAdded {
            channel_id: ChannelId::parse("g").unwrap(),
            uids: vec![uid("c")]
        })]
    );
    assert!(appended(decide(
        &state,
        &key,
        Command::AddMembers {
            uids: vec![uid("a")],
            max_members: None,
            actor: None,
            now: 0,
        }
    ))
    .is_empty());
    assert_eq!(
        decide(
            &state,
            &key,
            Command::RemoveMember {
                uid: uid("z"),
                actor: None
            }
        ),
        Err(DomainError::MemberNotFound("z".into()))
    );
    let removed = given(&[
        created(&["a", "b"]),
        Event::MemberRemoved(MemberRemoved {
            channel_id: ChannelId::parse("g").unwrap(),
            uid: uid("a"),
        }),
    ]);
    assert_eq!(
        decide(&removed, &key, send("a", None, "aGk=")),
        Err(DomainError::NotAMember("a".into()))
    );
    let gone = given(&[
        created(&["a"]),
        Event::GroupDisbanded(GroupDisbanded {
            channel_id: ChannelId::parse("g").unwrap(),
        }),
    ]);
    assert_eq!(
        decide(&gone, &key, send("a", None, "aGk=")),
        Err(DomainError::ChannelNotFound)
    );
    assert_eq!(
        decide(
            &gone,
            &key,
            Command::CreateGroup {
                name: None,
                members: vec![],
                max_members: None,
                owner: None,
                actor: None,
            }
        ),
        Err(DomainError::ChannelRetired)
    );
}

#[test]
fn idempotent_retry_returns_the_original_and_conflicts_on_other_payload() {
    let key = ChannelKey::personal(&uid("a"), &uid("b"));
    let first = appended(decide(
        &ChannelState::default(),
        &key,
        send("a", Some("k"), "aGk="),
    ));
    let Event::MessageSent(m) = &first[0] else {
        panic!()
    };
    let state = given(&first);
    match decide(&state, &key, send("a", Some("k"), "aGk=")) {
        Ok(Decision::Duplicate(r)) => {
            assert_eq!((r.message_id, r.message_seq), (m.message_id, 1))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        decide(&state, &key, send("a", Some("k"), "b3RoZXI=")),
        Err(DomainError::IdempotencyConflict)
    );
    // the same key from the other user is another key
    assert_eq!(
        appended(decide(&state, &key, send("b", Some("k"), "b3RoZXI="))).len(),
        1
    );
}

#[test]
fn read_positions_are_capped_and_need_a_conversation() {
    let key = ChannelKey::personal(&uid("a"), &uid("b"));
    assert_eq!(
        decide(
            &ChannelState::default(),
            &key,
            Command::SetRead {
                uid: uid("a"),
                message_seq: 1
            }
        ),
        Err(DomainError::ConversationNotFound)
    );
    let state = given(&appended(decide(
        &ChannelState::default(),
        &key,
        send("a", None, "aGk="),
    )));
    let ev = appended(decide(
        &state,
        &key,
        Command::SetRead {
            uid: uid("b"),
            message_seq: 99,
        },
    ));
    assert!(matches!(&ev[0], Event::ReadPositionSet(r) if r.message_seq == 1));
}

#[test]
fn a_group_never_grows_past_the_tenants_limit() {
    let key = ChannelKey::Group {
        id: ChannelId::parse("g").unwrap(),
    };
    let empty = ChannelState::default();
    assert_eq!(
        decide(
            &empty,
            &key,
            Command::CreateGroup {
                name: None,
                members: vec![uid("a"), uid("b"), uid("b"), uid("c")],
                max_members: Some(2),
                owner: None,
                actor: None,
            }
        ),
        Err(DomainError::GroupFull { max: 2, would: 3 })
    );
    let state = given(&[created(&["a", "b"])]);
    // Re-adding members costs nothing; one more than the limit is refused whole.
    assert!(appended(decide(
        &state,
        &key,
        Command::AddMembers {
            uids: vec![uid("a"), uid("b")],
            max_members: Some(2),
            actor: None,
            now: 0,
        }
    ))
    .is_empty());
    assert_eq!(
        decide(
            &state,
            &key,
            Command::AddMembers {
                uids: vec![uid("c")],
                max_members: Some(2),
                actor: None,
                now: 0,
            }
        ),
        Err(DomainError::GroupFull { max: 2, would: 3 })
    );
    assert_eq!(
        appended(decide(
            &state,
            &key,
            Command::AddMembers {
                uids: vec![uid("c")],
                max_members: Some(3),
                actor: None,
                now: 0,
            }
        ))
        .len(),
        1
    );
}
