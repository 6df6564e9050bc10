//! The projector's command line (clap): `run` (the default), `migrate`, `rebuild`, `replay`,
//! `status`, `gc`, `dlq list|retry|skip`. `docs/operations.md` describes each.

use clap::{Args, Parser, Subcommand, ValueEnum};
use projector::Projection;

/// `projector [COMMAND]`.
#[derive(Parser)]
#[command(
    name = "projector",
    about = "Parley's projector: builds the read models from the event log"
)]
pub struct Cli {
    /// What to do; `run` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Run the projections (the default).
    Run,
    /// Apply pending schema migrations and exit.
    Migrate,
    /// Rebuild projections from event 1 beside the serving version, verify, switch.
    Rebuild {
        #[command(flatten)]
        which: Which,
        /// Continue an unfinished rebuild from its own checkpoint.
        #[arg(long, conflicts_with = "discard")]
        resume: bool,
        /// Drop an unfinished rebuild.
        #[arg(long)]
        discard: bool,
        /// Switch even if the rebuilt tables differ from the serving ones (the differences
        /// are still reported): for rebuilds meant to change rows, e.g. after a projection
        /// bug fix.
        #[arg(long)]
        accept_differences: bool,
    },
    /// Build projections as of a past log position into new schemas (audits; never serving).
    Replay {
        #[command(flatten)]
        which: Which,
        /// The last event to apply.
        #[arg(long)]
        to_event_seq: u64,
        /// Continue an unfinished replay to the same position.
        #[arg(long, conflicts_with = "discard")]
        resume: bool,
        /// Drop an unfinished replay to that position.
        #[arg(long)]
        discard: bool,
    },
    /// Every projection version: checkpoint, log head, lag, apply rate, state.
    Status {
        /// Include retired versions.
        #[arg(long)]
        all: bool,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
        /// Repeat every this many seconds until interrupted.
        #[arg(long)]
        watch: Option<f64>,
    },
    /// Drop retired versions (and replays with --replays).
    Gc {
        /// Only versions retired at least this many hours ago (default: all).
        #[arg(long, default_value_t = 0.0)]
        older_than_hours: f64,
        /// Drop replay versions too.
        #[arg(long)]
        replays: bool,
    },
    /// Manage parked (dead-letter) events.
    Dlq {
        #[command(subcommand)]
        action: Dlq,
    },
}

/// A projection as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProjectionArg {
    /// Message history.
    Messages,
    /// Channels, members and idempotency keys.
    Channels,
    /// Conversation lists and read positions.
    Conversations,
}

impl From<ProjectionArg> for Projection {
    fn from(p: ProjectionArg) -> Self {
        match p {
            ProjectionArg::Messages => Projection::Messages,
            ProjectionArg::Channels => Projection::Channels,
            ProjectionArg::Conversations => Projection::Conversations,
        }
    }
}

/// The projections a command acts on: named ones, or `--all`.
#[derive(Args)]
pub struct Which {
    /// Projections.
    #[arg(value_enum, required_unless_present = "all", conflicts_with = "all")]
    pub projections: Vec<ProjectionArg>,
    /// Every projection.
    #[arg(long)]
    pub all: bool,
}

impl Which {
    /// The projections meant, in the order given (every one for `--all`).
    pub fn resolve(&self) -> Vec<Projection> {
        if self.all {
            return Projection::ALL.to_vec();
        }
        let mut out: Vec<Projection> = Vec::new();
        for p in self.projections.iter().copied().map(Projection::from) {
            if !out.contains(&p) {
                out.push(p);
            }
        }
        out
    }
}

/// `projector dlq …`.
#[derive(Subcommand)]
pub enum Dlq {
    /// List parked events (open ones; --all includes skipped and resolved).
    List {
        /// Only this projection.
        #[arg(value_enum)]
        projection: Option<ProjectionArg>,
        /// Include skipped and resolved events.
        #[arg(long)]
        all: bool,
        /// JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Ask the projector to apply parked events again.
    Retry(DlqTarget),
    /// Give parked events up (a halted projection moves past them).
    Skip(DlqTarget),
}

/// The parked events a `dlq retry|skip` acts on: one (`EVENT_SEQ`) or `--all` open ones.
#[derive(Args)]
pub struct DlqTarget {
    /// The projection.
    #[arg(value_enum)]
    pub projection: ProjectionArg,
    /// The event's stream sequence.
    #[arg(required_unless_present = "all")]
    pub event_seq: Option<u64>,
    /// Every open parked event of the projection.
    #[arg(long, conflicts_with = "event_seq")]
    pub all: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn projections_are_named_or_all_never_both() {
        let parse = |args: &[&str]| Cli::try_parse_from(["projector"].iter().chain(args));
        let Some(Command::Rebuild { which, .. }) =
            parse(&["rebuild", "channels", "messages", "channels"])
                .unwrap()
                .command
        else {
            panic!("rebuild")
        };
        assert_eq!(
            which.resolve(),
            [Projection::Channels, Projection::Messages]
        );
        assert!(parse(&["rebuild"]).is_err(), "nothing named");
        assert!(parse(&["rebuild", "messages", "--all"]).is_err(), "both");
        assert!(
            parse(&["rebuild", "nonsense"]).is_err(),
            "unknown projection"
        );
        assert!(
            parse(&["dlq", "skip", "messages"]).is_err(),
            "no event, no --all"
        );
        assert!(parse(&["dlq", "skip", "messages", "--all"]).is_ok());
    }
}
