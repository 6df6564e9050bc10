//! `/health` (alive), `/ready` (NATS and Postgres reachable), `/metrics` (Prometheus text).

use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{handler, IntoResponse, Response};

/// What readiness checks.
#[derive(Clone)]
pub struct Ops {
    /// NATS client.
    pub nats: async_nats::Client,
    /// Postgres pool.
    pub pool: deadpool_postgres::Pool,
}

#[handler]
/// `GET /health`: 200 while the process runs.
pub fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

#[handler]
/// `GET /ready`: 200 when NATS and Postgres answer, else 503.
pub async fn ready(ops: Data<&Ops>) -> Response {
    let nats = platform::log::connected(&ops.nats);
    let postgres = platform::db::ping(&ops.pool).await;
    let status = if nats && postgres {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Json(serde_json::json!({"ready": nats && postgres, "nats": nats, "postgres": postgres}))
        .with_status(status)
        .into_response()
}

#[handler]
/// `GET /metrics`: Prometheus text format.
pub fn metrics() -> String {
    platform::telemetry::metrics().render()
}
