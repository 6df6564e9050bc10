//! HTTP plumbing: JSON bodies with per-type limits whose errors name the field, the JSON
//! error rendering of every framework error, hot JSON responses, binding a listener.

use crate::error::{ApiError, ErrorBody};
use poem::http::StatusCode;
use poem::{IntoResponse, Request, RequestBody, Response};
use poem_openapi::error::{
    AuthorizationError, ContentTypeError, ParseParamError, ParsePathError, ParseRequestPayloadError,
};
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use serde::de::DeserializeOwned;

/// What request bodies of a service may be: inject with `poem::EndpointExt::data(..)`.
/// Without it bodies are refused (limit 0), so every service states its rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyRules {
    /// Largest decoded message payload, bytes (`PARLEY_MAX_PAYLOAD_BYTES`; 0 where a service
    /// takes no payloads): what [`BoundedBody::max_body_bytes`] of a body holding payloads
    /// derives from.
    pub max_payload_bytes: usize,
    /// Longest read of one body (`PARLEY_HTTP_BODY_TIMEOUT_MS`); 408 after it.
    pub timeout: std::time::Duration,
}

/// A request body type and the largest body a correct client can send for it, so every
/// endpoint has its own limit.
pub trait BoundedBody {
    /// The limit in bytes under `rules`. Size it with room for JSON escaping (a client may
    /// send every character of an id as `\uXXXX`, 6 bytes per byte, and base64's `/` as
    /// `\/`).
    fn max_body_bytes(rules: &BodyRules) -> usize;
}

/// Worst-case JSON size of an id (128 bytes, each escaped as `\uXXXX`, plus quotes).
pub const MAX_ID_JSON_BYTES: usize = 128 * 6 + 2;

/// A JSON request body parsed with serde, whose errors name the offending field path
/// (`messages[3].payload`); its OpenAPI schema is `T`'s.
///
/// Before anything is read, a `Content-Length` above `T`'s [`BoundedBody`] limit is 413; a
/// body without one (chunked) is read only up to the limit. Errors: 400 `INVALID_JSON` for
/// malformed JSON or an empty body (`field` = `body`, or the field whose value is malformed),
/// 400 `VALIDATION_ERROR` naming the field for a missing or unknown field or a wrong type, 408
/// `BODY_TIMEOUT` when the body does not arrive within [`BodyRules::timeout`], 413
/// `PAYLOAD_TOO_LARGE`, 415 `UNSUPPORTED_MEDIA_TYPE` for a non-JSON content type.
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

/// The field a serde error message names (``missing field `x` ``, ``unknown field `x` ``).
fn named_field(msg: &str) -> Option<&str> {
    ["missing field `", "unknown field `"]
        .iter()
        .find_map(|p| msg.split_once(p))
        .and_then(|(_, rest)| rest.split('`').next())
}

/// Turns a serde error at `path` into the API's 400, naming the field in every case.
fn json_error(path: String, err: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let msg = err.to_string();
    let msg = msg.split(" at line ").next().unwrap_or_default().to_owned();
    // `?` stands for a position serde could not name (an unexpected end, say): its parent.
    let path = path.trim_end_matches('?').trim_end_matches('.').to_owned();
    let at_root = path.is_empty();
    // serde_path_to_error's path ends at the object of a missing field but at the key of an
    // unknown one.
    let ends_with = |name: &str| path == name || path.ends_with(&format!(".{name}"));
    let field = match named_field(&msg) {
        Some(name) if at_root => name.to_owned(),
        Some(name) if ends_with(name) => path,
        Some(name) => format!("{path}.{name}"),
        None if at_root => "body".to_owned(),
        None => path,
    };
    match err.classify() {
        Category::Io | Category::Syntax | Category::Eof => {
            ApiError::bad_field("INVALID_JSON", &field, format!("malformed JSON: {msg}"))
        }
        Category::Data => ApiError::validation(&field, msg),
    }
}

/// The body's declared length, when it has a readable `Content-Length`.
fn content_length(request: &Request) -> Option<u64> {
    request
        .headers()
        .get(poem::http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

impl<T: Type + DeserializeOwned + BoundedBody + Send> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let rules = request.data::<BodyRules>().copied().unwrap_or(BodyRules {
            max_payload_bytes: 0,
            timeout: std::time::Duration::from_secs(30),
        });
        let limit = T::max_body_bytes(&rules);
        let too_large =
            || ApiError::too_large("body", format!("request body exceeds {limit} bytes"));
        if content_length(request).is_some_and(|n| n > limit as u64) {
            return Err(too_large().into());
        }
        let read = tokio::time::timeout(rules.timeout, body.take()?.into_bytes_limit(limit));
        let data = match read.await {
            Err(_) => {
                return Err(ApiError::timeout(
                    "body",
                    format!(
                        "the request body did not arrive within {} ms",
                        rules.timeout.as_millis()
                    ),
                )
                .into())
            }
            Ok(Err(poem::error::ReadBodyError::PayloadTooLarge)) => return Err(too_large().into()),
            Ok(Err(other)) => {
                return Err(ApiError::bad_field("INVALID_BODY", "body", other.to_string()).into())
            }
            Ok(Ok(data)) => data,
        };
        if data.is_empty() {
            return Err(
                ApiError::bad_field("INVALID_JSON", "body", "request body is empty").into(),
            );
        }
        let mut de = serde_json::Deserializer::from_slice(&data);
        let value: T = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| json_error(e.path().to_string(), e.inner()))?;
        de.end().map_err(|e| json_error(String::new(), &e))?;
        Ok(Self(value))
    }
}

poem_openapi::impl_apirequest_for_payload!(JsonBody<T>, T: Type + DeserializeOwned + BoundedBody + Send);

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
            retry_after_ms: None,
        },
    };
    render(status, &body)
}

/// Renders any error reaching the top of the app as the JSON error body: framework errors
/// (bad parameters, missing auth, unknown routes, oversized bodies) included. Use with
/// `poem::EndpointExt::catch_all_error`, or through [`crate::edge::Edge`], which also names
/// path parameters.
pub async fn render_error(err: poem::Error) -> Response {
    render_error_named(err, |_| None).await
}

/// [`render_error`], naming a path parameter poem-openapi calls `param<n>` by
/// `path_variable(n)` (the route's own name for it).
pub async fn render_error_named<'a>(
    err: poem::Error,
    path_variable: impl Fn(usize) -> Option<&'a str>,
) -> Response {
    if err.is_from_response() {
        // An `ApiError` (its derive converts it into a ready response).
        return err.into_response();
    }
    let status = err.status();
    if let Some(e) = err.downcast_ref::<ParseParamError>() {
        return simple(status, "VALIDATION_ERROR", e.to_string(), Some(e.name));
    }
    if let Some(e) = err.downcast_ref::<ParsePathError>() {
        let name = e
            .name
            .strip_prefix("param")
            .and_then(|n| n.parse().ok())
            .and_then(&path_variable)
            .unwrap_or(e.name);
        let message = format!("failed to parse path parameter `{name}`: {}", e.reason);
        return simple(status, "VALIDATION_ERROR", message, Some(name));
    }
    if let Some(e) = err.downcast_ref::<ParseRequestPayloadError>() {
        return simple(status, "INVALID_JSON", e.to_string(), Some("body"));
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
        return simple(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            format!("{e}; send Content-Type: application/json"),
            Some("content-type"),
        );
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
