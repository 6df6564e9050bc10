//! `projector`: runs the projections (`projector` or `projector run`, serving `/health`,
//! `/ready` and `/metrics` on `PARLEY_PROJECTOR_LISTEN`) and the operator commands
//! (`rebuild`, `replay`, `status`, `gc`, `dlq`, `migrate`). See `docs/operations.md`.

/// mimalloc: the services allocate many short-lived strings and JSON buffers per request,
/// where glibc malloc showed up as a third of the CPU profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Args, Parser, Subcommand};
use poem::http::StatusCode;
use poem::web::Data;
use poem::{get, handler, EndpointExt, Response, Route};
use projector::ops::{self, rebuild::Start};
use projector::shell::runner::{Health, ReadyBounds};
use projector::{Config, Projection};
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "projector",
    about = "Parley's projector: builds the read models from the event log"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
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

#[derive(Args)]
struct Which {
    /// Projections (messages, channels, conversations).
    projections: Vec<String>,
    /// Every projection.
    #[arg(long)]
    all: bool,
}

impl Which {
    fn resolve(&self) -> anyhow::Result<Vec<Projection>> {
        if self.all {
            anyhow::ensure!(
                self.projections.is_empty(),
                "give projections or --all, not both"
            );
            return Ok(Projection::ALL.to_vec());
        }
        anyhow::ensure!(
            !self.projections.is_empty(),
            "name a projection or give --all"
        );
        self.projections
            .iter()
            .map(|s| {
                Projection::from_name(s).ok_or_else(|| {
                    anyhow::anyhow!("unknown projection {s} (messages, channels, conversations)")
                })
            })
            .collect()
    }
}

#[derive(Subcommand)]
enum Dlq {
    /// List parked events (open ones; --all includes skipped and resolved).
    List {
        /// Only this projection.
        projection: Option<String>,
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

#[derive(Args)]
struct DlqTarget {
    /// The projection.
    projection: String,
    /// The event's stream sequence.
    event_seq: Option<u64>,
    /// Every open parked event of the projection.
    #[arg(long, conflicts_with = "event_seq")]
    all: bool,
}

#[handler]
fn alive() -> &'static str {
    "{\"status\":\"ok\"}"
}

#[handler]
fn metrics() -> String {
    platform::telemetry::metrics().render()
}

/// 200 when every projection runs, is not halted, and lags at most the configured bounds;
/// 503 otherwise. The body lists each projection's progress.
#[handler]
fn ready(health: Data<&Health>, bounds: Data<&ReadyBounds>) -> Response {
    let (ok, body) = health.readiness(**bounds);
    Response::builder()
        .status(if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        })
        .content_type("application/json")
        .body(body.to_string())
}

async fn serve(config: Config, stop: platform::shutdown::Shutdown) -> anyhow::Result<()> {
    let (acceptor, addr) = platform::http::bind(&config.listen).await?;
    tracing::info!(%addr, "projector metrics at http://{addr}/metrics");
    let health = Health::default();
    let app = Route::new()
        .at("/health", get(alive))
        .at("/ready", get(ready))
        .at("/metrics", get(metrics))
        .data(health.clone())
        .data(ReadyBounds {
            events: config.ready_max_lag,
            seconds: config.ready_max_lag_seconds,
            expected: config.projections.len(),
        })
        .with(platform::edge::Edge::new(
            "projector",
            platform::edge::Routes::default()
                .add("/health", &[poem::http::Method::GET])
                .add("/ready", &[poem::http::Method::GET])
                .add("/metrics", &[poem::http::Method::GET]),
        ));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut http_stop = stop_rx.clone();
    let http = config.common.http;
    let server = tokio::spawn(async move {
        platform::server::serve(
            acceptor,
            app,
            http,
            "projector",
            async move {
                let _ = http_stop.wait_for(|s| *s).await;
            },
            Duration::from_secs(5),
        )
        .await
    });
    let result = projector::shell::runner::run_with(config, health, async move {
        stop.wait().await;
        let _ = stop_tx.send(true);
    })
    .await;
    let _ = server.await;
    result
}

fn start(resume: bool, discard: bool) -> Start {
    match (resume, discard) {
        (true, _) => Start::Resume,
        (_, true) => Start::Discard,
        _ => Start::Fresh,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    platform::telemetry::init_tracing();
    let _ = platform::telemetry::metrics();
    let src = platform::config::Source::from_env()?;
    let config = Config::load(&src)?;
    let command = cli.command.unwrap_or(Command::Run);
    match command {
        // The process ends within 10 s of SIGTERM whatever is down.
        Command::Run => {
            platform::shutdown::bounded(
                platform::shutdown::signal(),
                Duration::from_secs(10),
                |stop| serve(config, stop),
            )
            .await
        }
        Command::Migrate => readmodel::migrate::run(&config.common.database_url).await,
        Command::Rebuild {
            which,
            resume,
            discard,
            accept_differences,
        } => {
            let projections = which.resolve()?;
            let ops = ops::connect(&config).await?;
            match ops::rebuild::rebuild(
                &ops,
                &projections,
                start(resume, discard),
                accept_differences,
            )
            .await
            {
                Ok(Some(s)) => {
                    for r in &s.rebuilt {
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
                        s.bulk_events,
                        s.bulk_secs,
                        s.bulk_events as f64 / s.bulk_secs.max(1e-9),
                        s.total_secs
                    );
                    Ok(())
                }
                Ok(None) => Ok(()),
                Err(e) if e.is::<ops::rebuild::Mismatch>() => {
                    eprintln!("{e}");
                    std::process::exit(2);
                }
                Err(e) => Err(e),
            }
        }
        Command::Replay {
            which,
            to_event_seq,
            resume,
            discard,
        } => {
            let projections = which.resolve()?;
            let ops = ops::connect(&config).await?;
            let built =
                ops::rebuild::replay(&ops, &projections, to_event_seq, start(resume, discard))
                    .await?;
            for v in built {
                println!(
                    "{} v{}: schema {} as of event {}",
                    v.projection.name(),
                    v.version,
                    v.schema,
                    v.last_seq
                );
            }
            Ok(())
        }
        Command::Status { all, json, watch } => {
            let ops = ops::connect(&config).await?;
            loop {
                let lines = ops::status::read(&ops, all).await?;
                if json {
                    for l in &lines {
                        println!("{}", serde_json::to_string(l)?);
                    }
                } else {
                    print!("{}", ops::status::render(&lines));
                }
                match watch {
                    Some(secs) => {
                        tokio::time::sleep(Duration::from_secs_f64(secs.max(0.1))).await;
                        println!();
                    }
                    None => return Ok(()),
                }
            }
        }
        Command::Gc {
            older_than_hours,
            replays,
        } => {
            let ops = ops::connect(&config).await?;
            let grace = Duration::from_secs_f64(older_than_hours.max(0.0) * 3600.0);
            let dropped = ops::gc::collect(&ops.pool, grace, replays).await?;
            println!(
                "dropped {} version(s){}",
                dropped.len(),
                dropped
                    .iter()
                    .map(|s| format!("\n  {s}"))
                    .collect::<String>()
            );
            Ok(())
        }
        Command::Dlq { action } => {
            let ops = ops::connect(&config).await?;
            let client = ops.pool.get().await?;
            let parse = |s: &str| {
                Projection::from_name(s).ok_or_else(|| anyhow::anyhow!("unknown projection {s}"))
            };
            match action {
                Dlq::List {
                    projection,
                    all,
                    json,
                } => {
                    let p = projection.as_deref().map(parse).transpose()?;
                    let parked = projector::shell::dlq::list(&client, p, all).await?;
                    for e in &parked {
                        if json {
                            println!(
                                "{}",
                                serde_json::json!({
                                    "projection": e.projection, "version": e.version,
                                    "event_seq": e.event_seq, "subject": e.subject,
                                    "state": e.state, "attempts": e.attempts,
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
                    Ok(())
                }
                Dlq::Retry(t) | Dlq::Skip(t) if !t.all && t.event_seq.is_none() => {
                    anyhow::bail!("name an event sequence or give --all")
                }
                Dlq::Retry(ref t) | Dlq::Skip(ref t) => {
                    let (state, done) = if matches!(action, Dlq::Retry(_)) {
                        (
                            "retry",
                            "marked for retry; the running projector applies them within a second",
                        )
                    } else {
                        ("skipped", "skipped")
                    };
                    let n = projector::shell::dlq::mark(
                        &client,
                        Some(parse(&t.projection)?),
                        t.event_seq,
                        state,
                    )
                    .await?;
                    println!("{n} event(s) {done}");
                    Ok(())
                }
            }
        }
    }
}
