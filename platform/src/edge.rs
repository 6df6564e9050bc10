//! [`Edge`]: what every request passes before and after the routes — the same for every
//! service, so no endpoint can forget it.
//!
//! - **Bytes that are not UTF-8** in a path segment or a query parameter (after
//!   percent-decoding) are refused with 400 `VALIDATION_ERROR` naming the parameter (the
//!   path variable of the matching route, or the query key); nothing decodes them lossily.
//! - **Errors** of the framework (bad parameters, unknown routes, wrong methods, missing
//!   credentials) become the JSON error body ([`crate::http::render_error`]); a path
//!   parameter poem-openapi calls `param0` is named as the route names it (`channel_type`).
//! - **405** answers carry `Allow` with the route's methods (RFC 9110 §15.5.6).
//! - **Rate-limit headers** ([`crate::ratelimit::headers`]) of every limit the request was
//!   counted against, gathered in a [`crate::ratelimit::Slot`] the edge puts in its
//!   extensions.
//! - **Metrics** `<service>_http_requests_total{operation,status}` and
//!   `<service>_http_request_duration_seconds{operation}` (`operation` = the OpenAPI operation
//!   id, or `other`).
//!
//! The routes come from the service's OpenAPI document ([`Routes::from_openapi`]) plus the
//! plain routes beside it ([`Routes::add`]).

use crate::error::ApiError;
use poem::http::{HeaderValue, Method, StatusCode};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};
use std::sync::Arc;
use std::time::Instant;

/// One segment of a route template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Variable(String),
}

/// One route template (`/v1/channels/{channel_type}/{channel_id}/messages`) and its methods.
#[derive(Debug, Clone)]
struct Template {
    segments: Vec<Segment>,
    methods: Vec<Method>,
}

impl Template {
    fn parse(path: &str, methods: Vec<Method>) -> Self {
        let segments = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(
                |s| match s.strip_prefix('{').and_then(|v| v.strip_suffix('}')) {
                    Some(var) => Segment::Variable(var.to_owned()),
                    None => Segment::Literal(s.to_owned()),
                },
            )
            .collect();
        Self { segments, methods }
    }

    fn matches(&self, raw: &[&str]) -> bool {
        self.segments.len() == raw.len()
            && self.segments.iter().zip(raw).all(|(t, r)| match t {
                Segment::Literal(l) => l == r,
                Segment::Variable(_) => true,
            })
    }

    /// The name of the `n`th variable (0-based), as poem-openapi numbers them.
    fn variable(&self, n: usize) -> Option<&str> {
        self.segments
            .iter()
            .filter_map(|s| match s {
                Segment::Variable(v) => Some(v.as_str()),
                Segment::Literal(_) => None,
            })
            .nth(n)
    }
}

/// The routes of a service, for naming path parameters and answering `Allow`.
#[derive(Debug, Clone, Default)]
pub struct Routes(Vec<Template>);

impl Routes {
    /// Every path and method of an OpenAPI document (JSON, as `OpenApiService::spec` gives).
    pub fn from_openapi(spec: &str) -> Self {
        let mut out = Vec::new();
        if let Ok(doc) = serde_json::from_str::<serde_json::Value>(spec) {
            if let Some(paths) = doc["paths"].as_object() {
                for (path, ops) in paths {
                    let methods = ops
                        .as_object()
                        .map(|o| {
                            o.keys()
                                .filter_map(|m| {
                                    Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok()
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    out.push(Template::parse(path, methods));
                }
            }
        }
        Self(out)
    }

    /// Adds a plain route (`/health`, `/v1/ws`) answered for `methods`.
    #[must_use]
    pub fn add(mut self, path: &str, methods: &[Method]) -> Self {
        self.0.push(Template::parse(path, methods.to_vec()));
        self
    }

    /// The templates matching `path`; literal segments win over variables (as in the router).
    fn find(&self, path: &str) -> Option<&Template> {
        let raw: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        self.0.iter().filter(|t| t.matches(&raw)).max_by_key(|t| {
            t.segments
                .iter()
                .filter(|s| matches!(s, Segment::Literal(_)))
                .count()
        })
    }

    /// Methods of every template matching `path`, for `Allow`.
    fn allowed(&self, path: &str) -> Vec<Method> {
        let raw: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut methods: Vec<Method> = self
            .0
            .iter()
            .filter(|t| t.matches(&raw))
            .flat_map(|t| t.methods.iter().cloned())
            .collect();
        if methods.contains(&Method::GET) && !methods.contains(&Method::HEAD) {
            methods.push(Method::HEAD);
        }
        methods.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        methods.dedup();
        methods
    }
}

/// Percent-decodes `s` into bytes (`+` stays `+`: callers decide what it means).
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// The first path segment or query parameter that is not UTF-8 once decoded, as the name of
/// the field to blame.
fn non_utf8_field(req: &Request, routes: &Routes) -> Option<String> {
    let uri = req.uri();
    let path = uri.path();
    let raw: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if let Some(i) = raw
        .iter()
        .position(|seg| std::str::from_utf8(&percent_decode(seg)).is_err())
    {
        let name = routes.find(path).and_then(|t| match t.segments.get(i) {
            Some(Segment::Variable(v)) => Some(v.clone()),
            _ => None,
        });
        return Some(name.unwrap_or_else(|| "path".to_owned()));
    }
    for pair in uri.query().unwrap_or_default().split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(&k.replace('+', " "));
        let value = percent_decode(&v.replace('+', " "));
        match std::str::from_utf8(&key) {
            Err(_) => return Some("query".to_owned()),
            Ok(name) if std::str::from_utf8(&value).is_err() => return Some(name.to_owned()),
            Ok(_) => {}
        }
    }
    None
}

/// The middleware; see the module docs.
#[derive(Debug, Clone)]
pub struct Edge {
    service: &'static str,
    routes: Arc<Routes>,
}

impl Edge {
    /// The edge of service `service` (metric prefix, e.g. `command_svc`) over `routes`.
    pub fn new(service: &'static str, routes: Routes) -> Self {
        Self {
            service,
            routes: Arc::new(routes),
        }
    }
}

impl<E: Endpoint> Middleware<E> for Edge {
    type Output = EdgeEndpoint<E>;
    fn transform(&self, ep: E) -> Self::Output {
        EdgeEndpoint {
            inner: ep,
            edge: self.clone(),
        }
    }
}

/// The endpoint [`Edge`] wraps.
pub struct EdgeEndpoint<E> {
    inner: E,
    edge: Edge,
}

impl<E: Endpoint> EdgeEndpoint<E> {
    async fn respond(&self, req: Request) -> Response {
        if let Some(field) = non_utf8_field(&req, &self.edge.routes) {
            return ApiError::validation(
                &field,
                format!("{field} is not valid UTF-8 (after percent-decoding)"),
            )
            .into_response();
        }
        let path = req.uri().path().to_owned();
        let mut resp = match self.inner.call(req).await {
            Ok(r) => r.into_response(),
            Err(e) => {
                let template = self.edge.routes.find(&path);
                crate::http::render_error_named(e, |n| template.and_then(|t| t.variable(n))).await
            }
        };
        if resp.status() == StatusCode::METHOD_NOT_ALLOWED {
            let methods = self.edge.routes.allowed(&path);
            let allow: Vec<&str> = methods.iter().map(Method::as_str).collect();
            if let Ok(v) = HeaderValue::from_str(&allow.join(", ")) {
                resp.headers_mut().insert(poem::http::header::ALLOW, v);
            }
        }
        resp
    }
}

impl<E: Endpoint> Endpoint for EdgeEndpoint<E> {
    type Output = Response;
    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let start = Instant::now();
        let limits = crate::ratelimit::Slot::default();
        req.extensions_mut().insert(limits.clone());
        let mut resp = self.respond(req).await;
        for (name, value) in crate::ratelimit::headers(&limits.take()) {
            if let Ok(v) = HeaderValue::from_str(&value) {
                resp.headers_mut().entry(name).or_insert(v);
            }
        }
        let op = resp
            .data::<poem_openapi::OperationId>()
            .map(|o| o.0)
            .unwrap_or("other");
        let status = resp.status().as_u16().to_string();
        metrics::counter!(format!("{}_http_requests_total", self.edge.service), "operation" => op, "status" => status)
            .increment(1);
        metrics::histogram!(format!("{}_http_request_duration_seconds", self.edge.service), "operation" => op)
            .record(start.elapsed().as_secs_f64());
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"{"paths": {
        "/v1/channels/{channel_type}/{channel_id}/messages": {"get": {}},
        "/v1/channels/{channel_id}": {"get": {}, "delete": {}},
        "/v1/channels": {"post": {}},
        "/v1/messages/batch": {"post": {}},
        "/v1/messages/{message_id}": {"get": {}}
    }}"#;

    #[test]
    fn routes_name_variables_and_methods() {
        let r = Routes::from_openapi(SPEC).add("/health", &[Method::GET]);
        let t = r.find("/v1/channels/1/bob/messages").expect("template");
        assert_eq!(t.variable(0), Some("channel_type"));
        assert_eq!(t.variable(1), Some("channel_id"));
        // A literal beats a variable.
        assert!(r
            .find("/v1/messages/batch")
            .is_some_and(|t| t.variable(0).is_none()));
        assert_eq!(
            r.allowed("/v1/channels/team"),
            vec![Method::DELETE, Method::GET, Method::HEAD]
        );
        assert_eq!(r.allowed("/health"), vec![Method::GET, Method::HEAD]);
        assert!(r.allowed("/nowhere").is_empty());
    }

    #[test]
    fn percent_decoding_keeps_bytes() {
        assert_eq!(percent_decode("a%FFb"), vec![b'a', 0xFF, b'b']);
        assert_eq!(percent_decode("%E7%94%A8"), "用".as_bytes());
        assert_eq!(percent_decode("100%"), b"100%");
        assert_eq!(percent_decode("%4"), b"%4");
        assert_eq!(percent_decode("%zz"), b"%zz");
    }
}
