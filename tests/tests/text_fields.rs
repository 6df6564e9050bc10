//! Property test of the free-text rule "whatever the command side accepts, every projection can
//! apply": seeded arbitrary strings (controls, U+0000, whitespace, CJK, emoji, combining marks,
//! noncharacters, over-long) in every free-text and id field of every command, through the API
//! (decide → encode → project on the real database), and as records already in a log that no
//! rule checked. Every answer is 200 or a 400 naming the field; every accepted value reads back
//! exactly; nothing is parked.

use parley_tests::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// Characters the generator draws from, by kind.
const POOLS: &[&[char]] = &[
    &[
        'a', 'Z', '0', '9', '-', '_', '.', '*', '>', '~', '/', '%', '"', '\\', '\'',
    ],
    &[' ', '\t', '\n', '\r', '\u{a0}', '\u{2028}', '\u{3000}'],
    &[
        '\u{0}', '\u{1}', '\u{8}', '\u{1b}', '\u{1f}', '\u{7f}', '\u{85}', '\u{9f}',
    ],
    &[
        '用',
        '户',
        'é',
        'ß',
        'Ж',
        '\u{301}',
        '\u{200d}',
        '🎉',
        '👩',
        '\u{1F3FD}',
    ],
    &[
        '\u{fffd}',
        '\u{feff}',
        '\u{202e}',
        '\u{ffff}',
        '\u{10ffff}',
        '\u{e000}',
    ],
];

fn arbitrary(rng: &mut StdRng) -> String {
    let len = match rng.gen_range(0..10) {
        0 => 0,
        1 => rng.gen_range(120..300),
        _ => rng.gen_range(1..24),
    };
    // Mostly one kind with a few others mixed in, so both clean and dirty values occur.
    let main = rng.gen_range(0..POOLS.len());
    (0..len)
        .map(|_| {
            let pool = if rng.gen_bool(0.9) {
                POOLS[main]
            } else {
                POOLS[rng.gen_range(0..POOLS.len())]
            };
            pool[rng.gen_range(0..pool.len())]
        })
        .collect()
}

/// The documented id rule (README): 1–128 bytes, no whitespace or control characters.
fn valid_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The documented group-name rule: 1–256 bytes, no control characters.
fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && !s.chars().any(char::is_control)
}

/// An id: a fresh valid one, or (one time in three) an arbitrary string before `<prefix><i>`.
fn id(rng: &mut StdRng, prefix: &str, i: usize) -> String {
    if rng.gen_range(0..3) == 0 {
        // Arbitrary, but never another case's id (an accepted one must be new).
        format!("{}{prefix}{i}", arbitrary(rng))
    } else {
        format!(
            "{prefix}{i}-{}",
            arbitrary(rng).replace(|c: char| !valid_id(&c.to_string()), "")
        )
        .chars()
        .take(40)
        .collect()
    }
}

#[tokio::test]
async fn arbitrary_strings_in_every_field_are_refused_by_name_or_stored_exactly() {
    let mut rng = StdRng::seed_from_u64(seed());
    let env = TestEnv::new().await.expect("env");
    let cmd = env.command_svc().await.expect("command-svc");
    let _projector = env.projector().await.expect("projector");
    let query = env.query_svc().await.expect("query-svc");
    let c = Api::new(&cmd.url(), KEY_ACME);
    let q = Api::new(&query.url(), KEY_ACME);

    // Groups: channel_id, name and members.
    let mut groups = Vec::new();
    for i in 0..200 {
        let (gid, name, member) = (
            id(&mut rng, "g", i),
            arbitrary(&mut rng),
            id(&mut rng, "m", i),
        );
        let body = json!({"channel_id": gid, "name": name, "members": [member, "alice"]});
        let (st, v) = c.post("/v1/channels", &body).await.expect("create");
        let ok = valid_id(&gid) && valid_name(&name) && valid_id(&member);
        if ok {
            assert_eq!(st, 200, "{body} refused: {v}");
            groups.push((gid, name, member, v["event_seq"].as_u64().expect("seq")));
        } else {
            assert_eq!(st, 400, "{body}: {v}");
            let field = v["error"]["field"].as_str().unwrap_or_default();
            let named = match field {
                "channel_id" => !valid_id(&gid),
                "name" => !valid_name(&name),
                "members[0]" => !valid_id(&member),
                _ => false,
            };
            assert!(
                named,
                "{body}: the error names {field:?}, not a broken field: {v}"
            );
        }
    }
    assert!(groups.len() >= 10, "too few valid groups: {}", groups.len());

    // Sends: from_uid, channel_id and client_msg_no, in batches.
    let mut sends = Vec::new();
    let items: Vec<(String, String, String)> = (0..300)
        .map(|i| {
            (
                id(&mut rng, "f", i),
                id(&mut rng, "p", i),
                arbitrary(&mut rng),
            )
        })
        .collect();
    for chunk in items.chunks(100) {
        let messages: Vec<Value> = chunk
            .iter()
            .map(|(from, to, no)| {
                json!({"channel_id": to, "channel_type": 1, "from_uid": from,
                       "payload": b64(no.as_bytes()), "client_msg_no": no})
            })
            .collect();
        let (st, r) = c
            .post("/v1/messages/batch", &json!({ "messages": messages }))
            .await
            .expect("batch");
        assert_eq!(st, 200, "{r}");
        for (i, (x, (from, to, no))) in r["results"]
            .as_array()
            .expect("results")
            .iter()
            .zip(chunk)
            .enumerate()
        {
            if valid_id(from) && valid_id(to) && valid_id(no) {
                assert_eq!(x["status"], 200, "{from:?} → {to:?} ({no:?}) refused: {x}");
                sends.push((from.clone(), to.clone(), no.clone(), x["result"].clone()));
            } else {
                assert_eq!(x["status"], 400, "{x}");
                let field = x["error"]["field"].as_str().unwrap_or_default();
                let named = match field.strip_prefix(&format!("messages[{i}].")) {
                    Some("from_uid") => !valid_id(from),
                    Some("channel_id") => !valid_id(to),
                    Some("client_msg_no") => !valid_id(no),
                    _ => false,
                };
                assert!(
                    named,
                    "{from:?} → {to:?} ({no:?}): the error names {field:?}: {x}"
                );
            }
        }
    }
    let head = stream_head(&env).await.expect("head");

    for (gid, name, member, _) in &groups {
        let (st, info) = q
            .get(&format!(
                "/v1/channels/{}?uid={}&min_event_seq={head}",
                enc(gid),
                enc(member)
            ))
            .await
            .expect("info");
        assert_eq!(st, 200, "group {gid:?}: {info}");
        assert_eq!(info["name"].as_str(), Some(name.as_str()), "group {gid:?}");
    }
    for (from, to, no, result) in &sends {
        let (st, h) = q
            .get(&format!(
                "/v1/channels/1/{}/messages?uid={}&limit=100&min_event_seq={head}",
                enc(to),
                enc(from)
            ))
            .await
            .expect("history");
        assert_eq!(st, 200, "{h}");
        let found = h["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .any(|m| m["message_id"] == result["message_id"] && m["client_msg_no"] == *no);
        assert!(found, "{from:?} → {to:?} ({no:?}) not in history: {h}");
    }
    assert_eq!(
        parked_count(&env).await.expect("parked"),
        0,
        "an accepted command's event was parked"
    );
}

/// Records no rule checked (an old release's, or another writer's) with arbitrary names and
/// `client_msg_no`s, U+0000 included: every projection applies them, storing U+0000 as
/// U+FFFD (`events::text::storable`) and everything else exactly.
#[tokio::test]
async fn records_with_arbitrary_text_already_in_the_log_are_all_applied() {
    use events::event::{GroupCreated, MessageSent};
    use events::{ChannelId, ChannelKey, Envelope, Event, TenantId, Uid};
    let mut rng = StdRng::seed_from_u64(seed());
    let env = TestEnv::new().await.expect("env");
    // The command service creates the stream before it answers /health.
    let _cmd = env.command_svc().await.expect("command-svc");
    let _projector = env.projector().await.expect("projector");
    let query = env.query_svc().await.expect("query-svc");
    let q = Api::new(&query.url(), KEY_ACME);
    let js = async_nats::jetstream::new(async_nats::connect(&env.nats_url).await.expect("nats"));
    let subjects = events::subject::Subjects::new(env.subject_root.clone());
    let tenant = TenantId::parse("acme").expect("tenant");
    let alice = Uid::parse("alice").expect("uid");
    let mut cases = Vec::new();
    for i in 0..80 {
        let (name, no) = (arbitrary(&mut rng), arbitrary(&mut rng));
        let group = ChannelId::parse(format!("raw{i}")).expect("id");
        let peer = Uid::parse(format!("peer{i}")).expect("uid");
        let channel = ChannelKey::personal(&alice, &peer);
        let records = [
            (
                ChannelKey::Group { id: group.clone() },
                Event::GroupCreated(GroupCreated {
                    channel_id: group.clone(),
                    name: Some(name.clone()),
                    members: vec![alice.clone()],
                    owner: Some(alice.clone()),
                }),
            ),
            (
                channel.clone(),
                Event::MessageSent(MessageSent {
                    channel: channel.clone(),
                    message_id: uuid::Uuid::now_v7(),
                    message_seq: 1,
                    from_uid: alice.clone(),
                    client_msg_no: Some(no.clone()),
                    payload: b64(b"raw"),
                    timestamp: 1_700_000_000_000,
                }),
            ),
        ];
        for (key, event) in records {
            let env = Envelope {
                tenant: tenant.clone(),
                occurred_at: 1_700_000_000_000,
                event,
            };
            js.publish(
                subjects.channel(&tenant, &key),
                events::encode(&env).unwrap().into(),
            )
            .await
            .expect("publish")
            .await
            .expect("ack");
        }
        cases.push((group, name, peer, no));
    }
    let head = stream_head(&env).await.expect("head");
    let stored = |s: &str| events::text::storable(s).into_owned();
    for (group, name, peer, no) in &cases {
        let (st, info) = q
            .get(&format!(
                "/v1/channels/{group}?uid=alice&min_event_seq={head}"
            ))
            .await
            .expect("info");
        assert_eq!(st, 200, "{info}");
        assert_eq!(
            info["name"].as_str(),
            Some(stored(name).as_str()),
            "{name:?}"
        );
        let (st, h) = q
            .get(&format!(
                "/v1/channels/1/{peer}/messages?uid=alice&min_event_seq={head}"
            ))
            .await
            .expect("history");
        assert_eq!(st, 200, "{h}");
        assert_eq!(
            h["messages"][0]["client_msg_no"].as_str(),
            Some(stored(no).as_str())
        );
    }
    assert_eq!(
        parked_count(&env).await.expect("parked"),
        0,
        "a record already in the log was parked"
    );
}
