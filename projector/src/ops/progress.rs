//! Progress of a long operator command: an `indicatif` bar with events/s, applied/total and ETA
//! when stderr is a terminal, otherwise a plain log line every five seconds (and at the end).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Progress of applying events `start + 1 ..= end`.
pub struct Progress {
    what: String,
    bar: Option<ProgressBar>,
    start: u64,
    end: u64,
    pos: u64,
    began: Instant,
    last_line: Instant,
}

impl Progress {
    /// Starts reporting `what` over events after `start` up to `end`.
    pub fn new(what: &str, start: u64, end: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(end.saturating_sub(start)),
                ProgressDrawTarget::stderr_with_hz(4),
            );
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} events \
                     {per_sec} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_prefix(what.to_owned());
            bar
        });
        let now = Instant::now();
        Self {
            what: what.to_owned(),
            bar,
            start,
            end,
            pos: start,
            began: now,
            last_line: now,
        }
    }

    /// Every event up to `seq` is applied.
    pub fn set(&mut self, seq: u64) {
        self.pos = seq.max(self.pos);
        if let Some(bar) = &self.bar {
            bar.set_position(self.pos - self.start);
        } else if self.last_line.elapsed() >= Duration::from_secs(5) {
            self.last_line = Instant::now();
            self.line();
        }
    }

    /// Events per second so far.
    pub fn rate(&self) -> f64 {
        (self.pos - self.start) as f64 / self.began.elapsed().as_secs_f64().max(1e-9)
    }

    /// Seconds since the start.
    pub fn elapsed(&self) -> f64 {
        self.began.elapsed().as_secs_f64()
    }

    fn line(&self) {
        let done = self.pos - self.start;
        let total = self.end - self.start;
        let rate = self.rate();
        let eta = if rate > 0.0 {
            format!("{:.0} s", (total - done.min(total)) as f64 / rate)
        } else {
            "?".into()
        };
        tracing::info!(
            "{}: {done}/{total} events ({:.0}%), {rate:.0} events/s, ETA {eta}",
            self.what,
            if total == 0 {
                100.0
            } else {
                done as f64 * 100.0 / total as f64
            }
        );
    }

    /// Ends the bar (or logs the final line).
    pub fn finish(self) {
        match &self.bar {
            Some(bar) => bar.finish(),
            None => self.line(),
        }
    }
}
