//! What this service's `/ready` checks: NATS connected and Postgres answering. The probes
//! themselves (`/health`, `/ready`, `/metrics`) are the shared [`platform::probes::ProbesApi`].

use poem_openapi::Object;

/// What `/ready` checks.
#[derive(Clone)]
pub struct CommandProbe {
    /// NATS client.
    pub nats: async_nats::Client,
    /// Postgres pool.
    pub pool: deadpool_postgres::Pool,
}

/// `/ready`'s body.
#[derive(Debug, Object)]
pub struct Readiness {
    /// Whether both dependencies are up.
    pub ready: bool,
    /// Whether the NATS connection is up.
    pub nats: bool,
    /// Whether Postgres answers.
    pub postgres: bool,
}

impl platform::probes::Probe for CommandProbe {
    type Report = Readiness;

    async fn readiness(&self) -> (bool, Readiness) {
        let nats = platform::log::connected(&self.nats);
        let postgres = platform::db::ping(&self.pool).await;
        let ready = nats && postgres;
        (
            ready,
            Readiness {
                ready,
                nats,
                postgres,
            },
        )
    }
}
