//! `projector status`: every projection version with its checkpoint, the log head, lag in
//! events and seconds, apply rate, parked events and state.

use crate::schema::{self, State};
use crate::shell::context::Context;
use crate::shell::dlq;
use serde::Serialize;

/// One line of `projector status` (also its `--json` shape).
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    /// Projection name.
    pub projection: String,
    /// Version number.
    pub version: i32,
    /// `serving`, `rebuilding`, `replay`, `retired`, or `parked` (halted on a poison event).
    pub state: String,
    /// Schema of its tables.
    pub schema: String,
    /// Last applied stream sequence.
    pub checkpoint: u64,
    /// The stream's last sequence (for a replay: its target).
    pub head: u64,
    /// `head - checkpoint`.
    pub lag_events: u64,
    /// Age in seconds of the oldest event not yet applied (0 when caught up).
    pub lag_seconds: f64,
    /// Events per second over its last batches (0 when idle for 10 s).
    pub apply_rate: f64,
    /// Parked events waiting for an operator (`parked` or `retry`).
    pub parked: i64,
    /// The poison event it is halted on, if any.
    pub halted_at: Option<u64>,
}

/// Reads the status of every version (retired ones only with `all`).
///
/// # Errors
/// NATS or database failures.
pub async fn read(ops: &Context, all: bool) -> anyhow::Result<Vec<Line>> {
    let mut stream = ops.js.get_stream(&ops.stream).await?;
    let head = stream.info().await?.state.last_sequence;
    let client = ops.pool.get().await?;
    let now_ns = platform::now_ms() as i128 * 1_000_000;
    let mut out = Vec::new();
    for v in schema::all(&client).await? {
        if v.state == State::Retired && !all {
            continue;
        }
        let target = match v.state {
            State::Replay => v.target_seq.unwrap_or(head),
            _ => head,
        };
        let lag_events = target.saturating_sub(v.last_seq);
        let lag_seconds = if lag_events > 0 && v.state != State::Replay {
            match stream.get_raw_message(v.last_seq + 1).await {
                Ok(m) => ((now_ns - m.time.unix_timestamp_nanos()).max(0) as f64) / 1e9,
                Err(_) => 0.0,
            }
        } else {
            0.0
        };
        let state = match (v.parked_seq, v.state) {
            (Some(_), _) => "parked",
            (None, State::Building) => "rebuilding",
            (None, s) => s.as_str(),
        };
        out.push(Line {
            projection: v.projection.name().to_owned(),
            version: v.version,
            state: state.to_owned(),
            schema: v.schema.clone(),
            checkpoint: v.last_seq,
            head: target,
            lag_events,
            lag_seconds,
            apply_rate: if v.idle_secs > 10.0 {
                0.0
            } else {
                v.apply_rate
            },
            parked: dlq::open_count(&client, &v).await?,
            halted_at: v.parked_seq,
        });
    }
    Ok(out)
}

/// Renders lines as an aligned table.
pub fn render(lines: &[Line]) -> String {
    let mut rows = vec![[
        "PROJECTION".to_owned(),
        "VERSION".into(),
        "STATE".into(),
        "CHECKPOINT".into(),
        "HEAD".into(),
        "LAG(EV)".into(),
        "LAG(S)".into(),
        "RATE(EV/S)".into(),
        "PARKED".into(),
    ]];
    for l in lines {
        rows.push([
            l.projection.clone(),
            format!("v{}", l.version),
            match l.halted_at {
                Some(seq) => format!("parked@{seq}"),
                None => l.state.clone(),
            },
            l.checkpoint.to_string(),
            l.head.to_string(),
            l.lag_events.to_string(),
            format!("{:.1}", l.lag_seconds),
            format!("{:.0}", l.apply_rate),
            l.parked.to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..9)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut s = String::new();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i < 3 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect();
        s.push_str(cells.join("  ").trim_end());
        s.push('\n');
    }
    s
}
