//! Golden fixtures: the JSON of every event version ever written must keep decoding, and the
//! current versions must keep encoding to exactly these bytes.

use events::event::*;
use events::{decode, encode, ChannelId, ChannelKey, Envelope, TenantId, Uid};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    while bytes.last() == Some(&b'\n') {
        bytes.pop();
    }
    bytes
}

fn uid(s: &str) -> Uid {
    Uid::parse(s).unwrap()
}

fn group() -> ChannelId {
    ChannelId::parse("team>*").unwrap()
}

fn env(at: i64, event: Event) -> Envelope {
    Envelope {
        tenant: TenantId::parse("acme").unwrap(),
        occurred_at: at,
        event,
    }
}

fn cases() -> Vec<(&'static str, Envelope)> {
    vec![
        (
            "message_sent.v1.json",
            env(
                1700000000123,
                Event::MessageSent(MessageSent {
                    channel: ChannelKey::personal(&uid("bob.x"), &uid("alice")),
                    message_id: "01890a5d-ac96-774b-bcce-b302099a8057".into(),
                    message_seq: 7,
                    from_uid: uid("bob.x"),
                    client_msg_no: Some("c-1".into()),
                    payload: "aGVsbG8=".into(),
                    timestamp: 1700000000123,
                }),
            ),
        ),
        (
            "group_created.v1.json",
            env(
                1700000000000,
                Event::GroupCreated(GroupCreated {
                    channel_id: group(),
                    name: Some("Team".into()),
                    members: vec![uid("alice"), uid("用户7")],
                }),
            ),
        ),
        (
            "members_added.v1.json",
            env(
                1700000000001,
                Event::MembersAdded(MembersAdded {
                    channel_id: group(),
                    uids: vec![uid("carol")],
                }),
            ),
        ),
        (
            "member_removed.v1.json",
            env(
                1700000000002,
                Event::MemberRemoved(MemberRemoved {
                    channel_id: group(),
                    uid: uid("alice"),
                }),
            ),
        ),
        (
            "group_disbanded.v1.json",
            env(
                1700000000003,
                Event::GroupDisbanded(GroupDisbanded {
                    channel_id: group(),
                }),
            ),
        ),
        (
            "read_position_set.v1.json",
            env(
                1700000000004,
                Event::ReadPositionSet(ReadPositionSet {
                    uid: uid("alice"),
                    channel: ChannelKey::Group { id: group() },
                    message_seq: 3,
                }),
            ),
        ),
    ]
}

#[test]
fn every_fixture_decodes_to_the_current_type() {
    for (name, expected) in cases() {
        let decoded = decode(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(decoded, expected, "{name}");
    }
}

#[test]
fn current_versions_encode_to_the_frozen_bytes() {
    for (name, envelope) in cases() {
        assert_eq!(
            String::from_utf8(encode(&envelope)).unwrap(),
            String::from_utf8(fixture(name)).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn unknown_versions_and_garbage_are_errors_not_panics() {
    let unknown = br#"{"type":"message_sent","v":99,"tenant":"acme","at":1,"data":{}}"#;
    assert!(matches!(
        decode(unknown),
        Err(events::DecodeError::Unknown { version: 99, .. })
    ));
    assert!(matches!(
        decode(b"not json"),
        Err(events::DecodeError::Envelope(_))
    ));
    let bad_data =
        br#"{"type":"member_removed","v":1,"tenant":"acme","at":1,"data":{"channel_id":""}}"#;
    assert!(matches!(
        decode(bad_data),
        Err(events::DecodeError::Data { .. })
    ));
}
