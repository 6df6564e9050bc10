//! `import-chitchat`: sends every message of the chitchat corpus (PyPI `chitchat-dataset`,
//! MIT: 7,168 conversations, 258,145 messages) through `POST /v1/messages/batch` as personal
//! messages between each conversation's two senders, then verifies through the query API
//! that every conversation's history is complete, in order and gap-free, and that each user's
//! conversation list and unread counts are what the corpus implies.
//!
//! Conversations with a single sender (3,150 of them) have no second party in the corpus;
//! they go to a placeholder peer `chitchat-peer-<conversation id>`. Several conversations
//! between the same two people share one personal channel (one per unordered pair), in the
//! order of their first message. Payloads are the JSON `{"text", "timestamp"}` of each message
//! (33 texts are empty, and an empty payload is refused). Each message carries
//! `client_msg_no = <conversation>:<turn>:<index>`, so a re-run is idempotent.
//!
//! Env: `PARLEY_COMMAND_URL`, `PARLEY_QUERY_URL`, `PARLEY_API_KEY`, `PARLEY_CHITCHAT_PATH`.

use anyhow::{ensure, Context};
use futures::StreamExt;
use parley_tests::{b64, enc, Api};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

#[derive(Deserialize)]
struct Msg {
    text: String,
    timestamp: String,
    sender: String,
}

#[derive(Deserialize)]
struct Conversation {
    messages: Vec<Vec<Msg>>,
}

/// One message to send, in pair order.
struct Out {
    from: String,
    to: String,
    payload: String,
    client_msg_no: String,
}

/// Per pair (low, high): its messages in order.
type Pairs = BTreeMap<(String, String), Vec<Out>>;

fn load(path: &str) -> anyhow::Result<(Pairs, usize)> {
    let raw = std::fs::read(path).with_context(|| format!("reading {path}"))?;
    let data: HashMap<String, Conversation> = serde_json::from_slice(&raw)?;
    let mut convs: Vec<(String, Conversation)> = data.into_iter().collect();
    // Order by first timestamp (ISO 8601 sorts as text), then id, for a deterministic import.
    let first = |c: &Conversation| {
        c.messages
            .iter()
            .flatten()
            .next()
            .map(|m| m.timestamp.clone())
            .unwrap_or_default()
    };
    convs.sort_by(|a, b| (first(&a.1), &a.0).cmp(&(first(&b.1), &b.0)));
    let mut pairs: Pairs = BTreeMap::new();
    let mut total = 0;
    for (id, conv) in convs {
        let mut senders: Vec<String> = Vec::new();
        for m in conv.messages.iter().flatten() {
            if !senders.contains(&m.sender) {
                senders.push(m.sender.clone());
            }
        }
        if senders.len() == 1 {
            senders.push(format!("chitchat-peer-{id}"));
        }
        ensure!(
            senders.len() == 2,
            "conversation {id} has {} senders",
            senders.len()
        );
        let key = if senders[0] < senders[1] {
            (senders[0].clone(), senders[1].clone())
        } else {
            (senders[1].clone(), senders[0].clone())
        };
        let list = pairs.entry(key).or_default();
        for (t, turn) in conv.messages.iter().enumerate() {
            for (i, m) in turn.iter().enumerate() {
                let to = if m.sender == senders[0] {
                    &senders[1]
                } else {
                    &senders[0]
                };
                let payload =
                    serde_json::to_vec(&json!({"text": m.text, "timestamp": m.timestamp}))?;
                list.push(Out {
                    from: m.sender.clone(),
                    to: to.clone(),
                    payload: b64(&payload),
                    client_msg_no: format!("{id}:{t}:{i}"),
                });
                total += 1;
            }
        }
    }
    Ok((pairs, total))
}

/// Sends all messages: each request carries the next message of up to 1000 pairs, so the
/// server works on 1000 channels at once while every pair's order is kept. Returns the
/// highest event_seq.
async fn send_all(c: &Api, pairs: &Pairs, workers: usize) -> anyhow::Result<u64> {
    let lists: Vec<&Vec<Out>> = pairs.values().collect();
    let shards: Vec<Vec<&Vec<Out>>> = (0..workers)
        .map(|w| lists.iter().skip(w).step_by(workers).copied().collect())
        .collect();
    let results = futures::future::try_join_all(shards.into_iter().map(|shard| async move {
        let mut max_seq = 0u64;
        let mut pos = vec![0usize; shard.len()];
        loop {
            let mut items = Vec::new();
            for (i, list) in shard.iter().enumerate() {
                if pos[i] < list.len() && items.len() < 1000 {
                    let m = &list[pos[i]];
                    items.push(json!({"channel_id": m.to, "channel_type": 1, "from_uid": m.from, "payload": m.payload, "client_msg_no": m.client_msg_no}));
                    pos[i] += 1;
                }
            }
            if items.is_empty() {
                return Ok::<u64, anyhow::Error>(max_seq);
            }
            let (status, v) = c.post("/v1/messages/batch", &json!({"messages": items})).await?;
            ensure!(status == 200, "batch answered {status}: {v}");
            for r in v["results"].as_array().context("results")? {
                ensure!(r["status"] == 200, "item failed: {r}");
                max_seq = max_seq.max(r["result"]["event_seq"].as_u64().unwrap_or(0));
            }
        }
    }))
    .await?;
    Ok(results.into_iter().max().unwrap_or(0))
}

async fn verify_pair(
    q: &Api,
    (low, high): &(String, String),
    list: &[Out],
    min: u64,
) -> anyhow::Result<usize> {
    let mut after = 0u64;
    let mut got = 0usize;
    loop {
        let (st, page) = q
            .get(&format!(
                "/v1/channels/1/{}/messages?uid={}&after_seq={after}&limit=100&min_event_seq={min}",
                enc(high),
                enc(low)
            ))
            .await?;
        ensure!(st == 200, "history {low}/{high}: {st} {page}");
        let msgs = page["messages"].as_array().context("messages")?;
        for m in msgs {
            let expected = list.get(got).context("more messages than sent")?;
            let seq = m["message_seq"].as_u64().unwrap_or(0);
            ensure!(
                seq == got as u64 + 1,
                "{low}/{high}: seq {seq} at position {got} (gap or reorder)"
            );
            ensure!(
                m["payload"] == expected.payload,
                "{low}/{high} seq {seq}: payload differs"
            );
            ensure!(
                m["from_uid"] == expected.from,
                "{low}/{high} seq {seq}: sender differs"
            );
            ensure!(
                m["client_msg_no"] == expected.client_msg_no,
                "{low}/{high} seq {seq}: client_msg_no differs"
            );
            got += 1;
            after = seq;
        }
        if msgs.is_empty() || page["more"] != true {
            break;
        }
    }
    ensure!(
        got == list.len(),
        "{low}/{high}: {got} of {} messages",
        list.len()
    );
    Ok(got)
}

/// Expected (peer → (last_msg_seq, unread)) per user.
fn expected_conversations(pairs: &Pairs) -> HashMap<&str, HashMap<&str, (u64, u64)>> {
    let mut out: HashMap<&str, HashMap<&str, (u64, u64)>> = HashMap::new();
    for ((low, high), list) in pairs {
        let n = list.len() as u64;
        for (me, peer) in [(low, high), (high, low)] {
            let read = list
                .iter()
                .rposition(|m| &m.from == me)
                .map_or(0, |i| i as u64 + 1);
            out.entry(me.as_str())
                .or_default()
                .insert(peer.as_str(), (n, n - read));
        }
    }
    out
}

async fn verify_user(
    q: &Api,
    uid: &str,
    expected: &HashMap<&str, (u64, u64)>,
    min: u64,
) -> anyhow::Result<()> {
    let mut cursor: Option<String> = None;
    let mut seen = 0;
    loop {
        let mut path = format!(
            "/v1/users/{}/conversations?limit=100&min_event_seq={min}",
            enc(uid)
        );
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", enc(c)));
        }
        let (st, page) = q.get(&path).await?;
        ensure!(st == 200, "conversations of {uid}: {st} {page}");
        for c in page["conversations"].as_array().context("conversations")? {
            let peer = c["channel_id"].as_str().unwrap_or_default();
            let (last, unread) = expected
                .get(peer)
                .with_context(|| format!("{uid}: unexpected conversation with {peer}"))?;
            ensure!(
                c["last_msg_seq"].as_u64() == Some(*last),
                "{uid}/{peer}: last_msg_seq {} ≠ {last}",
                c["last_msg_seq"]
            );
            ensure!(
                c["unread"].as_u64() == Some(*unread),
                "{uid}/{peer}: unread {} ≠ {unread}",
                c["unread"]
            );
            seen += 1;
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    ensure!(
        seen == expected.len(),
        "{uid}: {seen} conversations, expected {}",
        expected.len()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let var = |k: &str| std::env::var(k).with_context(|| format!("{k} is not set"));
    let key = var("PARLEY_API_KEY")?;
    let c = Api::new(&var("PARLEY_COMMAND_URL")?, &key);
    let q = Api::new(&var("PARLEY_QUERY_URL")?, &key);
    let (pairs, total) = load(&var("PARLEY_CHITCHAT_PATH")?)?;
    println!(
        "corpus: {total} messages in {} personal channels",
        pairs.len()
    );

    let started = Instant::now();
    let max_seq = send_all(&c, &pairs, 4).await?;
    let send_time = started.elapsed();
    println!(
        "sent: {total} messages in {:.1} s = {:.0} sends/s (last event_seq {max_seq})",
        send_time.as_secs_f64(),
        total as f64 / send_time.as_secs_f64()
    );

    let caught = Instant::now();
    loop {
        let (st, _) = q
            .get(&format!(
                "/v1/users/x/conversations?limit=1&min_event_seq={max_seq}"
            ))
            .await?;
        if st == 200 {
            break;
        }
        ensure!(
            caught.elapsed() < Duration::from_secs(600),
            "projections did not catch up in 10 min"
        );
    }
    println!(
        "projections caught up {:.2} s after the last send was acknowledged",
        caught.elapsed().as_secs_f64()
    );

    let verify = Instant::now();
    let counts: Vec<anyhow::Result<usize>> = futures::stream::iter(pairs.iter())
        .map(|(k, list)| verify_pair(&q, k, list, max_seq))
        .buffer_unordered(16)
        .collect()
        .await;
    let mut verified = 0;
    for r in counts {
        verified += r?;
    }
    let expected = expected_conversations(&pairs);
    let users: Vec<anyhow::Result<()>> = futures::stream::iter(expected.iter())
        .map(|(uid, convs)| verify_user(&q, uid, convs, max_seq))
        .buffer_unordered(16)
        .collect()
        .await;
    for r in users {
        r?;
    }
    println!(
        "verified: {verified}/{total} messages complete, in order and gap-free; {} users' conversation lists and unread counts match ({:.1} s)",
        expected.len(),
        verify.elapsed().as_secs_f64()
    );
    let _: Value = Value::Null;
    Ok(())
}
