//! One function per subcommand of the command line ([`crate::cli`]); each returns the
//! process's exit code: 0 done, 1 failed (the error is printed by `main`), 2 a rebuild whose
//! verification found differences.

use crate::cli::{Dlq, DlqTarget, Which};
use projector::ops::{self, rebuild::Start};
use projector::shell::dlq::{self, ParkedState};
use projector::shell::health::{Health, ReadyBounds};
use projector::Config;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// How long in-flight HTTP requests may run after shutdown begins.
const HTTP_DRAIN: Duration = Duration::from_secs(5);
/// Shortest interval of `status --watch`.
const MIN_WATCH: Duration = Duration::from_millis(100);
/// Exit code of a rebuild whose verification found differences (nothing switched).
const EXIT_MISMATCH: u8 = 2;

/// `/ready` of `projector run`: the runners' progress within the configured bounds.
struct RunnerProbe {
    health: Health,
    bounds: ReadyBounds,
}

impl platform::probes::Probe for RunnerProbe {
    type Report = serde_json::Value;

    async fn readiness(&self) -> (bool, serde_json::Value) {
        self.health.readiness(self.bounds)
    }
}

/// `projector run`: the projections and the probes (`/health`, `/ready`, `/metrics` on
/// `PARLEY_PROJECTOR_LISTEN`) until `stop`.
///
/// # Errors
/// The listen address cannot be bound, or the runner fails at start.
pub async fn run(config: Config, stop: platform::shutdown::Shutdown) -> anyhow::Result<()> {
    let (acceptor, addr) = platform::http::bind(&config.listen).await?;
    tracing::info!(%addr, "projector metrics at http://{addr}/metrics");
    let health = Health::default();
    let probes = platform::probes::service(
        Arc::new(RunnerProbe {
            health: health.clone(),
            bounds: ReadyBounds {
                events: config.ready_max_lag,
                seconds: config.ready_max_lag_seconds,
                expected: config.projections.len(),
            },
        }),
        "Parley projector",
    );
    let routes = platform::edge::Routes::from_openapi(&probes.spec());
    let app = poem::EndpointExt::with(probes, platform::edge::Edge::new("projector", routes));
    // The HTTP server stops after the runner has (it reports the runner's last progress).
    let runner_done = platform::shutdown::Shutdown::new();
    let http = config.common.http;
    let served = platform::server::serve(
        acceptor,
        app,
        http,
        "projector",
        runner_done.clone().wait(),
        HTTP_DRAIN,
    );
    let runner = async {
        let r = projector::shell::runner::run_with(config, health, stop.wait()).await;
        runner_done.begin();
        r
    };
    let (result, served) = tokio::join!(runner, served);
    if let Err(e) = served {
        tracing::warn!(error = %e, "the probes server failed");
    }
    result
}

/// `projector migrate`.
///
/// # Errors
/// Postgres unreachable or a failing migration.
pub async fn migrate(config: &Config) -> anyhow::Result<ExitCode> {
    readmodel::migrate::run(&config.common.database_url).await?;
    Ok(ExitCode::SUCCESS)
}

fn start(resume: bool, discard: bool) -> Start {
    match (resume, discard) {
        (true, _) => Start::Resume,
        (_, true) => Start::Discard,
        _ => Start::Fresh,
    }
}

/// `projector rebuild`: prints each rebuilt projection and the bulk rate; exit 2 when the
/// verification found differences.
///
/// # Errors
/// Connection, build or switch failures.
pub async fn rebuild(
    config: &Config,
    which: &Which,
    resume: bool,
    discard: bool,
    accept_differences: bool,
) -> anyhow::Result<ExitCode> {
    let ops = ops::connect(config).await?;
    let summary = match ops::rebuild::rebuild(
        &ops,
        &which.resolve(),
        start(resume, discard),
        accept_differences,
    )
    .await
    {
        Ok(Some(s)) => s,
        Ok(None) => return Ok(ExitCode::SUCCESS),
        Err(e) if e.is::<ops::rebuild::Mismatch>() => {
            eprintln!("{e}");
            return Ok(ExitCode::from(EXIT_MISMATCH));
        }
        Err(e) => return Err(e),
    };
    for r in &summary.rebuilt {
        println!(
            "{}: v{} serving (v{} retired){}",
            r.projection.name(),
            r.version,
            r.replaced,
            r.checks
                .iter()
                .map(|c| format!("\n  {c}"))
                .collect::<String>()
        );
    }
    println!(
        "bulk: {} events in {:.1} s ({:.0} events/s); total {:.1} s",
        summary.bulk_events,
        summary.bulk_secs,
        summary.bulk_events as f64 / summary.bulk_secs.max(1e-9),
        summary.total_secs
    );
    Ok(ExitCode::SUCCESS)
}

/// `projector replay`: prints each replayed version's schema.
///
/// # Errors
/// Connection or build failures.
pub async fn replay(
    config: &Config,
    which: &Which,
    to_event_seq: u64,
    resume: bool,
    discard: bool,
) -> anyhow::Result<ExitCode> {
    let ops = ops::connect(config).await?;
    let built =
        ops::rebuild::replay(&ops, &which.resolve(), to_event_seq, start(resume, discard)).await?;
    for v in built {
        println!(
            "{} v{}: schema {} as of event {}",
            v.projection.name(),
            v.version,
            v.schema,
            v.last_seq
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `projector status`: a table or JSON lines, once or every `watch` seconds.
///
/// # Errors
/// Connection or query failures.
pub async fn status(
    config: &Config,
    all: bool,
    json: bool,
    watch: Option<f64>,
) -> anyhow::Result<ExitCode> {
    let ops = ops::connect(config).await?;
    loop {
        let lines = ops::status::read(&ops, all).await?;
        if json {
            for l in &lines {
                println!("{}", serde_json::to_string(l)?);
            }
        } else {
            print!("{}", ops::status::render(&lines));
        }
        let Some(secs) = watch else {
            return Ok(ExitCode::SUCCESS);
        };
        let every = Duration::try_from_secs_f64(secs).map_or(MIN_WATCH, |d| d.max(MIN_WATCH));
        tokio::time::sleep(every).await;
        println!();
    }
}

/// `projector gc`: drops retired (and with `replays`, replay) versions.
///
/// # Errors
/// Connection or query failures.
pub async fn gc(config: &Config, older_than_hours: f64, replays: bool) -> anyhow::Result<ExitCode> {
    let ops = ops::connect(config).await?;
    // Negative means no grace; too large to represent keeps everything.
    let grace =
        Duration::try_from_secs_f64(older_than_hours.max(0.0) * 3600.0).unwrap_or(Duration::MAX);
    let dropped = ops::gc::collect(&ops.pool, grace, replays).await?;
    println!(
        "dropped {} version(s){}",
        dropped.len(),
        dropped
            .iter()
            .map(|s| format!("\n  {s}"))
            .collect::<String>()
    );
    Ok(ExitCode::SUCCESS)
}

/// `projector dlq list|retry|skip`.
///
/// # Errors
/// Connection or query failures.
pub async fn dlq(config: &Config, action: Dlq) -> anyhow::Result<ExitCode> {
    let ops = ops::connect(config).await?;
    let client = ops.pool.get().await?;
    match action {
        Dlq::List {
            projection,
            all,
            json,
        } => {
            let parked = dlq::list(&client, projection.map(Into::into), all).await?;
            for e in &parked {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "projection": e.projection, "version": e.version,
                            "event_seq": e.event_seq, "subject": e.subject,
                            "state": e.state.as_str(), "attempts": e.attempts,
                            "parked_at": e.parked_at, "error": e.error,
                        })
                    );
                } else {
                    println!(
                        "{} v{} event {} [{}] attempts={} parked_at={} subject={}\n  {}",
                        e.projection,
                        e.version,
                        e.event_seq,
                        e.state,
                        e.attempts,
                        e.parked_at,
                        e.subject,
                        e.error
                    );
                }
            }
            if parked.is_empty() && !json {
                println!("no parked events");
            }
        }
        Dlq::Retry(t) => {
            let n = mark(&client, &t, ParkedState::Retry).await?;
            println!(
                "{n} event(s) marked for retry; the running projector applies them within a second"
            );
        }
        Dlq::Skip(t) => {
            let n = mark(&client, &t, ParkedState::Skipped).await?;
            println!("{n} event(s) skipped");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn mark(
    client: &deadpool_postgres::Object,
    t: &DlqTarget,
    state: ParkedState,
) -> Result<u64, tokio_postgres::Error> {
    dlq::mark(client, Some(t.projection.into()), t.event_seq, state).await
}
