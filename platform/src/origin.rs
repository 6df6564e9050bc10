//! Browser origins: which `Origin`s may use a tenant's user tokens (WebSocket and SSE upgrades,
//! CORS), and the same-origin rule.
//!
//! A request without `Origin` is not from a browser page (or is a same-origin `GET`, which
//! browsers send without one) and passes. A same-origin request — its `Origin`'s host and port
//! equal its `Host` — always passes: the query service's own chat client is served from `/`.
//! A cross-origin request passes only when its origin is listed: the tenant's
//! `allowed_origins` setting, else the deployment's `PARLEY_ALLOWED_ORIGINS`.

use poem::http::header;

/// The request's `Origin`, if it has one that is not `null`.
pub fn of(req: &poem::Request) -> Option<&str> {
    req.headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| *o != "null")
}

/// Whether the request's `Origin` names its own `Host`.
pub fn same(req: &poem::Request) -> bool {
    let (Some(origin), Some(host)) = (
        of(req),
        req.headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
}

/// Whether the request may go on from its origin, given the listed origins.
pub fn allowed(req: &poem::Request, listed: &[String]) -> bool {
    match of(req) {
        None => true,
        Some(o) => same(req) || listed.iter().any(|l| l == o),
    }
}

/// The query service's CORS ([`poem::middleware::Cors`]): origins for which `listed` holds get
/// credentialed `GET`s with `Authorization` (preflights answered, `Max-Age` 10 minutes, the
/// rate-limit headers exposed); a same-origin request passes untouched (its `Origin` is taken
/// off before the CORS check, which would otherwise refuse an unlisted one); any other origin
/// is 403.
pub fn cors(listed: impl Fn(&str) -> bool + Send + Sync + 'static) -> SameOriginFirst {
    SameOriginFirst(
        poem::middleware::Cors::new()
            .allow_origins_fn(listed)
            .allow_credentials(true)
            .allow_methods([poem::http::Method::GET, poem::http::Method::HEAD])
            .allow_headers(["authorization", "content-type", "last-event-id"])
            .expose_headers([
                "ratelimit",
                "ratelimit-policy",
                "retry-after",
                "x-ratelimit-limit",
                "x-ratelimit-remaining",
                "x-ratelimit-reset",
            ])
            .max_age(600),
    )
}

/// [`cors`]'s middleware.
pub struct SameOriginFirst(poem::middleware::Cors);

impl poem::Middleware<poem::endpoint::BoxEndpoint<'static>> for SameOriginFirst {
    type Output = poem::endpoint::BoxEndpoint<'static>;

    fn transform(&self, ep: poem::endpoint::BoxEndpoint<'static>) -> Self::Output {
        use poem::EndpointExt as _;
        self.0
            .transform(ep)
            .before(|mut req: poem::Request| async move {
                if same(&req) {
                    req.headers_mut().remove(header::ORIGIN);
                }
                Ok(req)
            })
            .boxed()
    }
}

/// Parses `PARLEY_ALLOWED_ORIGINS` (comma-separated origins).
///
/// # Errors
/// An entry that is not an origin (`scheme://host[:port]`, lowercase, no path).
pub fn parse_list(spec: &str) -> Result<Vec<String>, String> {
    spec.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|o| {
            if events::tenancy::is_origin(o) {
                Ok(o.to_owned())
            } else {
                Err(format!(
                    "PARLEY_ALLOWED_ORIGINS: {o:?} is not an origin (scheme://host[:port], lowercase)"
                ))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(origin: Option<&str>, host: &str) -> poem::Request {
        let mut b = poem::Request::builder().header(header::HOST, host);
        if let Some(o) = origin {
            b = b.header(header::ORIGIN, o);
        }
        b.finish()
    }

    #[test]
    fn same_origin_and_listed_origins_pass() {
        let listed = vec!["https://app.example.com".to_owned()];
        assert!(allowed(&req(None, "q:5002"), &[]));
        assert!(allowed(&req(Some("http://q:5002"), "q:5002"), &[]));
        assert!(allowed(
            &req(Some("https://app.example.com"), "q:5002"),
            &listed
        ));
        assert!(!allowed(
            &req(Some("https://evil.example"), "q:5002"),
            &listed
        ));
        assert!(!allowed(&req(Some("http://q:5003"), "q:5002"), &[]));
        assert!(parse_list("https://a.example, http://localhost:3000").is_ok());
        assert!(parse_list("https://a.example/").is_err());
    }
}
