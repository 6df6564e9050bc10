//! Shutdown and background tasks: the signal, one cancellation token every owner shares
//! ([`Shutdown`], a `tokio_util` `CancellationToken`), the tracker every background task is
//! spawned on ([`Tasks`], a `TaskTracker`: no detached task), and a hard deadline on the whole
//! process's shutdown ([`bounded`]).

use futures::FutureExt as _;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        _ = term => tracing::info!("SIGTERM received, shutting down"),
    }
}

/// The process's (or one service's) shutdown, shared by every owner (the HTTP server,
/// background loops, connections): a cancellation token. Clones observe the same state.
#[derive(Debug, Clone, Default)]
pub struct Shutdown(CancellationToken);

impl Shutdown {
    /// A shutdown that has not begun.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Begins the shutdown: every [`Shutdown::wait`] completes.
    pub fn begin(&self) {
        self.0.cancel();
    }

    /// Completes once shutdown has begun (at once if it already has).
    pub async fn wait(self) {
        self.0.cancelled_owned().await;
    }

    /// Whether shutdown has begun.
    #[must_use]
    pub fn started(&self) -> bool {
        self.0.is_cancelled()
    }

    /// The underlying token, for `tokio_util` APIs that take one.
    #[must_use]
    pub fn token(&self) -> &CancellationToken {
        &self.0
    }

    /// Runs `work(stop)` with a `stop` that begins when `source` completes, on the caller's
    /// task (no task is spawned to watch `source`). Returns when `work` does.
    pub async fn scope<T, W, Fut>(source: impl Future<Output = ()>, work: W) -> T
    where
        W: FnOnce(Shutdown) -> Fut,
        Fut: Future<Output = T>,
    {
        let stop = Shutdown::new();
        let trigger = stop.clone();
        let watch = async move {
            source.await;
            trigger.begin();
            std::future::pending::<()>().await;
        };
        tokio::select! {
            r = work(stop) => r,
            () = watch => unreachable!("the watch never completes"),
        }
    }
}

/// The background tasks of one service: each is spawned on a `TaskTracker`, a panic is logged
/// with the task's name, and [`Tasks::finish`] waits for all of them (bounded) at shutdown.
#[derive(Debug, Clone, Default)]
pub struct Tasks(TaskTracker);

impl Tasks {
    /// An empty set of tasks.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Spawns `task`, named `name` in the log if it panics. The task must end on its own once
    /// shutdown begins (every long wait in it selects on a [`Shutdown`]).
    pub fn spawn<F>(&self, name: &'static str, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.0.spawn(async move {
            if AssertUnwindSafe(task).catch_unwind().await.is_err() {
                metrics::counter!("task_panics_total", "task" => name).increment(1);
                tracing::error!(task = name, "background task panicked");
            }
        });
    }

    /// Tasks still running.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no task runs.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Closes the set and waits until every task has ended, for at most `deadline`.
    /// Returns whether they all did.
    pub async fn finish(&self, deadline: Duration) -> bool {
        self.0.close();
        let done = tokio::time::timeout(deadline, self.0.wait()).await.is_ok();
        if !done {
            tracing::warn!(
                running = self.0.len(),
                deadline_s = deadline.as_secs_f64(),
                "background tasks still running after the shutdown deadline"
            );
        }
        done
    }
}

/// Runs `service` with a [`Shutdown`] begun by `signal` until it returns, or until `deadline`
/// has passed since shutdown began, whatever the service is still waiting for (a broker or
/// database that is down, a connection that will not drain): SIGTERM always ends the process
/// within the deadline. Services drain in-flight work themselves within a shorter deadline of
/// their own; this bound is the backstop.
///
/// # Errors
/// The service's own error.
pub async fn bounded<T, F, Fut>(
    signal: impl Future<Output = ()>,
    deadline: Duration,
    service: F,
) -> anyhow::Result<T>
where
    F: FnOnce(Shutdown) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
    T: Default,
{
    let stop = Shutdown::new();
    let expired = {
        let stop = stop.clone();
        async move {
            signal.await;
            stop.begin();
            tokio::time::sleep(deadline).await;
        }
    };
    tokio::select! {
        r = service(stop) => r,
        () = expired => {
            tracing::warn!(deadline_s = deadline.as_secs_f64(), "shutdown did not finish within its deadline; exiting");
            Ok(T::default())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn scope_begins_the_shutdown_when_its_source_completes() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let work = Shutdown::scope(
            async move {
                let _ = rx.await;
            },
            |stop| async move {
                stop.clone().wait().await;
                stop.started()
            },
        );
        let _ = tx.send(());
        assert!(work.await);
    }

    #[tokio::test]
    async fn finish_waits_for_every_task_and_survives_a_panic() {
        let tasks = Tasks::new();
        let stop = Shutdown::new();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tasks.spawn("waits", {
            let stop = stop.clone();
            async move {
                stop.wait().await;
                let _ = tx.send(());
            }
        });
        tasks.spawn("panics", async { panic!("boom") });
        stop.begin();
        assert!(tasks.finish(Duration::from_secs(5)).await);
        assert!(rx.await.is_ok(), "the waiting task ran to its end");
        assert!(tasks.is_empty());
    }
}
