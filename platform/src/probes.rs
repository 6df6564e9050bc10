//! The probes every binary serves, as one OpenAPI-documented API: `GET /health` (liveness,
//! always 200 `{"status": "ok"}`), `GET /ready` (200 or 503 with the service's own report of
//! what it checked) and `GET /metrics` (Prometheus text exposition format). Not secured: load
//! balancers, orchestrators and Prometheus call them without a key.
//!
//! A service says what readiness means by implementing [`Probe`] and serves
//! [`ProbesApi`] beside its other APIs (or alone, as the projector does).

use poem_openapi::payload::{Json, PlainText};
use poem_openapi::types::{ToJSON, Type};
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use std::future::Future;
use std::sync::Arc;

/// What a service checks for `/ready`.
pub trait Probe: Send + Sync + 'static {
    /// The JSON body of `/ready`: what was checked and how it stood.
    type Report: ToJSON + Type + Send + Sync;

    /// Checks the service's dependencies; `true` with the report when it can serve.
    fn readiness(&self) -> impl Future<Output = (bool, Self::Report)> + Send;
}

/// `{"status": "ok"}`.
#[derive(Debug, Object)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

/// `/ready`'s answers.
#[derive(Debug, ApiResponse)]
pub enum ReadyResponse<T: ToJSON + Type + Send + Sync> {
    /// Everything the service depends on is up (the body says what was checked).
    #[oai(status = 200)]
    Ready(Json<T>),
    /// Something is down or behind (the body says which).
    #[oai(status = 503)]
    NotReady(Json<T>),
}

/// The operation group of the probes in an OpenAPI document.
#[derive(Tags)]
pub enum ProbeTags {
    /// Health, readiness and metrics.
    Ops,
}

/// `/health`, `/ready` and `/metrics` for the service whose readiness `probe` checks.
pub struct ProbesApi<P> {
    probe: Arc<P>,
}

impl<P> ProbesApi<P> {
    /// The probes of `probe`'s service.
    pub fn new(probe: Arc<P>) -> Self {
        Self { probe }
    }
}

#[OpenApi(tag = "ProbeTags::Ops")]
impl<P: Probe> ProbesApi<P> {
    /// Liveness: always 200 `{"status": "ok"}` while the process runs.
    #[oai(path = "/health", method = "get", operation_id = "health")]
    async fn health(&self) -> Json<Health> {
        Json(Health {
            status: "ok".into(),
        })
    }

    /// Readiness: 200 when the service's dependencies are up, 503 otherwise. The body says
    /// what was checked.
    #[oai(path = "/ready", method = "get", operation_id = "ready")]
    async fn ready(&self) -> ReadyResponse<P::Report> {
        match self.probe.readiness().await {
            (true, report) => ReadyResponse::Ready(Json(report)),
            (false, report) => ReadyResponse::NotReady(Json(report)),
        }
    }

    /// Prometheus metrics in the text exposition format.
    #[oai(path = "/metrics", method = "get", operation_id = "metrics")]
    async fn metrics(&self) -> PlainText<String> {
        PlainText(crate::telemetry::metrics().render())
    }
}

/// A standalone endpoint serving only the probes (for a binary with no other HTTP API).
pub fn service<P: Probe>(
    probe: Arc<P>,
    title: &str,
) -> poem_openapi::OpenApiService<ProbesApi<P>, ()> {
    poem_openapi::OpenApiService::new(ProbesApi::new(probe), title, env!("CARGO_PKG_VERSION"))
}
