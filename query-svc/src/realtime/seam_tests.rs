//! Unit tests of `seam.rs`.

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
