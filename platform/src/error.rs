//! The one error shape every endpoint answers with.
//!
//! `{"error": {"code": "VALIDATION_ERROR", "message": "…", "field": "payload"}}` with the
//! status that fits: 400 bad input, 401 no or unknown credentials, 403 not allowed, 404 no such
//! thing, 409 conflict, 413 too large, 503 a dependency is down or a projection lags.

use poem_openapi::{payload::Json, ApiResponse, Object};

/// The inner object of an error body.
#[derive(Debug, Clone, Object, serde::Serialize, serde::Deserialize)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `VALIDATION_ERROR`, `CHANNEL_NOT_FOUND`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// The offending request field (`payload`, `messages[3].channel_id`, a parameter name).
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For 429 `RATE_LIMIT_EXCEEDED` (and the socket's `RATE_LIMITED`): milliseconds until
    /// a retry can pass.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

/// `{"error": {…}}`.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Every error an endpoint can answer, with its HTTP status.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// Malformed or invalid input; `field` names it.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing, unknown or expired credentials.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// The caller may not do this (e.g. not a member of the group).
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// The channel, message or user does not exist.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The request conflicts with the current state (exists already, idempotency key reused).
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// The request body did not arrive in time (`BODY_TIMEOUT`).
    #[oai(status = 408)]
    RequestTimeout(Json<ErrorBody>),
    /// The payload or body is larger than allowed.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// Over a rate limit (`RATE_LIMIT_EXCEEDED`, with `retry_after_ms`).
    #[oai(status = 429)]
    TooManyRequests(Json<ErrorBody>),
    /// Unexpected server fault; logged with details, answered without them.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// A dependency (NATS, Postgres) is unreachable, or a projection lags (`PROJECTION_LAGGING`).
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

fn body(code: &str, message: impl Into<String>, field: Option<&str>) -> Json<ErrorBody> {
    Json(ErrorBody {
        error: ErrorDetail {
            code: code.to_owned(),
            message: message.into(),
            field: field.map(str::to_owned),
            retry_after_ms: None,
        },
    })
}

impl ApiError {
    /// 400 `VALIDATION_ERROR` naming `field`.
    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        ApiError::BadRequest(body("VALIDATION_ERROR", message, Some(field)))
    }
    /// 400 with a custom code naming `field`.
    pub fn bad_field(code: &str, field: &str, message: impl Into<String>) -> Self {
        ApiError::BadRequest(body(code, message, Some(field)))
    }
    /// 400 `INVALID_CURSOR` (field `cursor`): not a `next_cursor` this service returned.
    pub fn invalid_cursor() -> Self {
        Self::bad_field(
            "INVALID_CURSOR",
            "cursor",
            "cursor is not a next_cursor this service returned",
        )
    }
    /// 400 with a custom code and no field.
    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        ApiError::BadRequest(body(code, message, None))
    }
    /// 401 `UNAUTHORIZED`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::Unauthorized(body("UNAUTHORIZED", message, None))
    }
    /// 403 with `code`.
    pub fn forbidden(code: &str, message: impl Into<String>) -> Self {
        ApiError::Forbidden(body(code, message, None))
    }
    /// 404 with `code`.
    pub fn not_found(code: &str, message: impl Into<String>) -> Self {
        ApiError::NotFound(body(code, message, None))
    }
    /// 409 with `code`.
    pub fn conflict(code: &str, message: impl Into<String>) -> Self {
        ApiError::Conflict(body(code, message, None))
    }
    /// 413 `PAYLOAD_TOO_LARGE` naming `field`.
    pub fn too_large(field: &str, message: impl Into<String>) -> Self {
        ApiError::PayloadTooLarge(body("PAYLOAD_TOO_LARGE", message, Some(field)))
    }
    /// 408 `BODY_TIMEOUT` naming `field`.
    pub fn timeout(field: &str, message: impl Into<String>) -> Self {
        ApiError::RequestTimeout(body("BODY_TIMEOUT", message, Some(field)))
    }
    /// 503 with `code`.
    pub fn unavailable(code: &str, message: impl Into<String>) -> Self {
        ApiError::Unavailable(body(code, message, None))
    }
    /// 500 `INTERNAL`: logs `err` once here, at the boundary, and hides it from the caller.
    pub fn internal(context: &str, err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, context, "internal error");
        ApiError::Internal(body("INTERNAL", "internal error", None))
    }

    /// The error of `status` with `detail` (a status without a variant here answers 500).
    pub fn with_status(status: u16, detail: ErrorDetail) -> Self {
        let b = Json(ErrorBody { error: detail });
        match status {
            400 => ApiError::BadRequest(b),
            401 => ApiError::Unauthorized(b),
            403 => ApiError::Forbidden(b),
            404 => ApiError::NotFound(b),
            408 => ApiError::RequestTimeout(b),
            409 => ApiError::Conflict(b),
            413 => ApiError::PayloadTooLarge(b),
            429 => ApiError::TooManyRequests(b),
            503 => ApiError::Unavailable(b),
            _ => ApiError::Internal(b),
        }
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized(_) => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::NotFound(_) => 404,
            ApiError::Conflict(_) => 409,
            ApiError::RequestTimeout(_) => 408,
            ApiError::PayloadTooLarge(_) => 413,
            ApiError::TooManyRequests(_) => 429,
            ApiError::Internal(_) => 500,
            ApiError::Unavailable(_) => 503,
        }
    }

    /// The error body.
    pub fn body(&self) -> &ErrorBody {
        match self {
            ApiError::BadRequest(b)
            | ApiError::Unauthorized(b)
            | ApiError::Forbidden(b)
            | ApiError::NotFound(b)
            | ApiError::Conflict(b)
            | ApiError::RequestTimeout(b)
            | ApiError::PayloadTooLarge(b)
            | ApiError::TooManyRequests(b)
            | ApiError::Internal(b)
            | ApiError::Unavailable(b) => &b.0,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let e = &self.body().error;
        write!(f, "{} {}: {}", self.status(), e.code, e.message)
    }
}

impl std::error::Error for ApiError {}

/// The error statuses one operation answers with, each with what it means there: the
/// operation's OpenAPI responses list exactly these (see [`Failure`] and [`error_set!`]).
pub trait ErrorSet: Send + Sync + 'static {
    /// `(status, description)` pairs.
    const STATUSES: &'static [(u16, &'static str)];
}

/// Declares an [`ErrorSet`]: `error_set!(pub SendErrors { 400 => "…", 401 => "…" });`.
#[macro_export]
macro_rules! error_set {
    ($(#[$doc:meta])* $vis:vis $name:ident { $($status:literal => $desc:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug)]
        $vis struct $name;
        impl $crate::error::ErrorSet for $name {
            const STATUSES: &'static [(u16, &'static str)] = &[$(($status, $desc)),+];
        }
    };
}

/// An operation's error: an [`ApiError`] whose OpenAPI document lists only the statuses of
/// `S` (so a client generator sees each operation's real errors), answered as the JSON error
/// body. Any `ApiError` converts into it with `?`.
pub struct Failure<S>(pub ApiError, std::marker::PhantomData<fn() -> S>);

impl<S> std::fmt::Debug for Failure<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<S> From<ApiError> for Failure<S> {
    fn from(e: ApiError) -> Self {
        Self(e, std::marker::PhantomData)
    }
}

impl<S> From<Failure<S>> for poem::Error {
    fn from(f: Failure<S>) -> Self {
        poem::Error::from(f.0)
    }
}

impl<S: Send> poem::IntoResponse for Failure<S> {
    fn into_response(self) -> poem::Response {
        self.0.into_response()
    }
}

impl<S: ErrorSet> ApiResponse for Failure<S> {
    fn meta() -> poem_openapi::registry::MetaResponses {
        use poem_openapi::types::Type as _;
        poem_openapi::registry::MetaResponses {
            responses: S::STATUSES
                .iter()
                .map(
                    |&(status, description)| poem_openapi::registry::MetaResponse {
                        description,
                        status: Some(status),
                        status_range: None,
                        content: vec![poem_openapi::registry::MetaMediaType {
                            content_type: "application/json; charset=utf-8",
                            schema: ErrorBody::schema_ref(),
                        }],
                        headers: vec![],
                    },
                )
                .collect(),
        }
    }

    fn register(registry: &mut poem_openapi::registry::Registry) {
        use poem_openapi::types::Type as _;
        ErrorBody::register(registry);
    }
}

/// `err` and its `source()` chain as one line, `outer: inner: innermost` — what logs show of a
/// typed error, so the root cause (a Postgres error code, a NATS timeout) is not lost.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(e) = next {
        out.push_str(": ");
        out.push_str(&e.to_string());
        next = e.source();
    }
    out
}
