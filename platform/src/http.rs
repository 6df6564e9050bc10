//! HTTP plumbing: JSON bodies whose errors name the field, the catch-all that renders every
//! framework error as the JSON error body, request metrics, and serving with graceful shutdown.

use crate::error::{ApiError, ErrorBody};
use poem::http::StatusCode;
use poem::{Endpoint, IntoResponse, Middleware, Request, RequestBody, Response};
use poem_openapi::error::{
    AuthorizationError, ContentTypeError, ParseParamError, ParsePathError, ParseRequestPayloadError,
};
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use serde::de::DeserializeOwned;
use std::time::Instant;

/// Largest JSON request body in bytes, read by [`JsonBody`]; inject with
/// `poem::EndpointExt::data(BodyLimit(n))` (default: unlimited).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// A JSON request body parsed with serde, whose errors name the offending field path
/// (`messages[3].payload`); its OpenAPI schema is `T`'s.
///
/// Errors: 400 `INVALID_JSON` for malformed JSON or an empty body, 400 `VALIDATION_ERROR` with
/// `field` for a missing field or a wrong type, 413 over the [`BodyLimit`], 415 for a non-JSON
/// content type.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn check_content_type(content_type: &str) -> bool {
        matches!(content_type.parse::<mime::Mime>(), Ok(m) if m.type_() == "application"
            && (m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json")))
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

/// Turns a serde error at `path` into the API's 400.
fn json_error(path: String, err: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match err.classify() {
        Category::Io | Category::Syntax | Category::Eof => {
            ApiError::bad_request("INVALID_JSON", format!("malformed JSON: {err}"))
        }
        Category::Data => {
            let msg = err.to_string();
            // serde names a missing field only in its message: "missing field `payload`".
            let field = match msg.split_once("missing field `") {
                Some((_, rest)) => {
                    let name = rest.split('`').next().unwrap_or_default();
                    if path == "." {
                        name.to_owned()
                    } else {
                        format!("{path}.{name}")
                    }
                }
                None if path == "." => "body".to_owned(),
                None => path,
            };
            let msg = msg.split(" at line ").next().unwrap_or_default().to_owned();
            ApiError::validation(&field, msg)
        }
    }
}

impl<T: Type + DeserializeOwned + Send> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let limit = request.data::<BodyLimit>().map_or(usize::MAX, |l| l.0);
        let data = body
            .take()?
            .into_bytes_limit(limit)
            .await
            .map_err(|e| match e {
                poem::error::ReadBodyError::PayloadTooLarge => {
                    ApiError::too_large("body", format!("request body exceeds {limit} bytes"))
                }
                other => ApiError::bad_request("INVALID_BODY", other.to_string()),
            })?;
        if data.is_empty() {
            return Err(ApiError::bad_request("INVALID_JSON", "request body is empty").into());
        }
        let mut de = serde_json::Deserializer::from_slice(&data);
        let value: T = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| json_error(e.path().to_string(), e.inner()))?;
        de.end().map_err(|e| json_error(".".into(), &e))?;
        Ok(Self(value))
    }
}

poem_openapi::impl_apirequest_for_payload!(JsonBody<T>, T: Type + DeserializeOwned + Send);

/// A JSON response body written straight by serde, documented with `T`'s OpenAPI schema.
///
/// poem-openapi's `Json` first builds a `serde_json::Value` tree (a `BTreeMap` per object) and
/// then serializes that; on a history page of 50 messages that tree is most of the request's
/// CPU. `T` derives both `Object` (schema) and `Serialize` (wire), with the same field names.
#[derive(Debug)]
pub struct SerdeJson<T>(pub T);

impl<T: Type> Payload for SerdeJson<T> {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: serde::Serialize + Send> IntoResponse for SerdeJson<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => Response::builder()
                .content_type("application/json; charset=utf-8")
                .body(body),
            Err(e) => {
                tracing::error!(error = %e, "response serialization failed");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}

impl<T: Type + serde::Serialize + Send> poem_openapi::ApiResponse for SerdeJson<T> {
    fn meta() -> poem_openapi::registry::MetaResponses {
        poem_openapi::registry::MetaResponses {
            responses: vec![poem_openapi::registry::MetaResponse {
                description: "",
                status: Some(200),
                status_range: None,
                content: vec![poem_openapi::registry::MetaMediaType {
                    content_type: Self::CONTENT_TYPE,
                    schema: Self::schema_ref(),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

fn render(status: StatusCode, body: &ErrorBody) -> Response {
    poem::web::Json(body).with_status(status).into_response()
}

fn simple(status: StatusCode, code: &str, message: String, field: Option<&str>) -> Response {
    let body = ErrorBody {
        error: crate::error::ErrorDetail {
            code: code.to_owned(),
            message,
            field: field.map(str::to_owned),
        },
    };
    render(status, &body)
}

/// Renders any error reaching the top of the app as the JSON error body: framework errors
/// (bad parameters, missing auth, unknown routes, oversized bodies) included. Use with
/// `poem::EndpointExt::catch_all_error`.
pub async fn render_error(err: poem::Error) -> Response {
    if err.is_from_response() {
        // An `ApiError` (its derive converts it into a ready response).
        return err.into_response();
    }
    let status = err.status();
    if let Some(e) = err.downcast_ref::<ParseParamError>() {
        return simple(status, "VALIDATION_ERROR", e.to_string(), Some(e.name));
    }
    if let Some(e) = err.downcast_ref::<ParsePathError>() {
        return simple(status, "VALIDATION_ERROR", e.to_string(), Some(e.name));
    }
    if let Some(e) = err.downcast_ref::<ParseRequestPayloadError>() {
        return simple(status, "INVALID_JSON", e.to_string(), None);
    }
    if err.is::<AuthorizationError>() {
        return simple(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "missing or unknown credentials: send Authorization: Bearer <key>".into(),
            None,
        );
    }
    if let Some(e) = err.downcast_ref::<ContentTypeError>() {
        return simple(status, "UNSUPPORTED_MEDIA_TYPE", e.to_string(), None);
    }
    let code = match status {
        StatusCode::NOT_FOUND => "NOT_FOUND",
        StatusCode::METHOD_NOT_ALLOWED => "METHOD_NOT_ALLOWED",
        StatusCode::PAYLOAD_TOO_LARGE => "PAYLOAD_TOO_LARGE",
        StatusCode::UNAUTHORIZED => "UNAUTHORIZED",
        s if s.is_client_error() => "BAD_REQUEST",
        _ => {
            tracing::error!(error = %err, status = status.as_u16(), "unhandled error");
            "INTERNAL"
        }
    };
    let message = if status.is_server_error() {
        "internal error".into()
    } else {
        err.to_string()
    };
    simple(status, code, message, None)
}

/// Middleware counting requests and timing them:
/// `<service>_http_requests_total{operation,status}` and
/// `<service>_http_request_duration_seconds{operation}`; `operation` is the OpenAPI operation
/// id (or `other`).
#[derive(Clone)]
pub struct RequestMetrics {
    /// Metric name prefix, e.g. `command_svc`.
    pub service: &'static str,
}

impl<E: Endpoint> Middleware<E> for RequestMetrics {
    type Output = RequestMetricsEndpoint<E>;
    fn transform(&self, ep: E) -> Self::Output {
        RequestMetricsEndpoint {
            inner: ep,
            service: self.service,
        }
    }
}

/// The endpoint [`RequestMetrics`] wraps.
pub struct RequestMetricsEndpoint<E> {
    inner: E,
    service: &'static str,
}

impl<E: Endpoint> Endpoint for RequestMetricsEndpoint<E> {
    type Output = Response;
    async fn call(&self, req: Request) -> poem::Result<Response> {
        let start = Instant::now();
        let resp = match self.inner.call(req).await {
            Ok(r) => r.into_response(),
            Err(e) => render_error(e).await,
        };
        let op = resp
            .data::<poem_openapi::OperationId>()
            .map(|o| o.0)
            .unwrap_or("other");
        let status = resp.status().as_u16().to_string();
        metrics::counter!(format!("{}_http_requests_total", self.service), "operation" => op, "status" => status)
            .increment(1);
        metrics::histogram!(format!("{}_http_request_duration_seconds", self.service), "operation" => op)
            .record(start.elapsed().as_secs_f64());
        Ok(resp)
    }
}

/// Binds `addr` (use port 0 for a free port) and returns the acceptor and the bound address.
///
/// # Errors
/// The bind's I/O error.
pub async fn bind(
    addr: &str,
) -> std::io::Result<(poem::listener::TcpAcceptor, std::net::SocketAddr)> {
    use poem::listener::{Acceptor, Listener};
    let acceptor = poem::listener::TcpListener::bind(addr.to_owned())
        .into_acceptor()
        .await?;
    let local = acceptor
        .local_addr()
        .into_iter()
        .find_map(|a| a.as_socket_addr().copied())
        .ok_or_else(|| std::io::Error::other("listener has no socket address"))?;
    Ok((acceptor, local))
}
