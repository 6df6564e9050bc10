//! `projector`: runs the projections (`projector` or `projector run`, serving `/health`,
//! `/ready` and `/metrics` on `PARLEY_PROJECTOR_LISTEN`) and the operator commands
//! (`rebuild`, `replay`, `status`, `gc`, `dlq`, `migrate`). See `docs/operations.md`.
//!
//! - [`cli`]: the command line (clap).
//! - [`commands`]: one function per subcommand, each returning the exit code.

/// mimalloc: the services allocate many short-lived strings and JSON buffers per request,
/// where glibc malloc showed up as a third of the CPU profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;
mod commands;

use clap::Parser as _;
use cli::{Cli, Command};
use std::process::ExitCode;
use std::time::Duration;

/// `projector run` ends within this long of SIGTERM whatever is down.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    platform::telemetry::init_tracing();
    let _ = platform::telemetry::metrics();
    match execute(cli.command.unwrap_or(Command::Run)).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:?}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command) -> anyhow::Result<ExitCode> {
    let config = projector::Config::load(&platform::config::Source::from_env()?)?;
    match command {
        Command::Run => {
            platform::shutdown::bounded(platform::shutdown::signal(), SHUTDOWN_DEADLINE, |stop| {
                commands::run(config, stop)
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => commands::migrate(&config).await,
        Command::Rebuild {
            which,
            resume,
            discard,
            accept_differences,
        } => commands::rebuild(&config, &which, resume, discard, accept_differences).await,
        Command::Replay {
            which,
            to_event_seq,
            resume,
            discard,
        } => commands::replay(&config, &which, to_event_seq, resume, discard).await,
        Command::Status { all, json, watch } => commands::status(&config, all, json, watch).await,
        Command::Gc {
            older_than_hours,
            replays,
        } => commands::gc(&config, older_than_hours, replays).await,
        Command::Dlq { action } => commands::dlq(&config, action).await,
    }
}
