//! Shutdown: the signal, a future several owners share, and a hard deadline on the whole
//! process's shutdown.

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

/// One shutdown future shared by several owners (the HTTP server, background loops): each
/// clone's [`Shutdown::wait`] completes once the source future has.
#[derive(Debug, Clone)]
pub struct Shutdown(tokio::sync::watch::Receiver<bool>);

impl Shutdown {
    /// Watches `source` (e.g. [`signal`]) on a task of its own, which ends with it.
    pub fn new(source: impl std::future::Future<Output = ()> + Send + 'static) -> Self {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            source.await;
            let _ = tx.send(true);
        });
        Self(rx)
    }

    /// Completes once shutdown has begun (at once if it already has).
    pub async fn wait(mut self) {
        // A dropped sender also means the source is gone: shut down.
        let _ = self.0.wait_for(|&v| v).await;
    }

    /// Whether shutdown has begun.
    pub fn started(&self) -> bool {
        *self.0.borrow()
    }
}

/// Runs `service` with a [`Shutdown`] fed by `signal` until it returns, or until `deadline`
/// has passed since shutdown began, whatever the service is still waiting for (a broker or
/// database that is down, a connection that will not drain): SIGTERM always ends the process
/// within the deadline. Services drain in-flight work themselves within a shorter deadline of
/// their own; this bound is the backstop.
///
/// # Errors
/// The service's own error.
pub async fn bounded<T, F, Fut>(
    signal: impl std::future::Future<Output = ()> + Send + 'static,
    deadline: std::time::Duration,
    service: F,
) -> anyhow::Result<T>
where
    F: FnOnce(Shutdown) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
    T: Default,
{
    let stop = Shutdown::new(signal);
    let expired = {
        let stop = stop.clone();
        async move {
            stop.wait().await;
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
