//! A [`CommandError`] as an HTTP answer: the status and body the command layer gives it.

use crate::commands::CommandError;
use platform::error::{ApiError, ErrorDetail, Failure};

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        let (status, r) = e.into_refusal();
        ApiError::with_status(
            status,
            ErrorDetail {
                code: r.code,
                message: r.message,
                field: r.field,
                retry_after_ms: r.retry_after_ms,
            },
        )
    }
}

impl<S> From<CommandError> for Failure<S> {
    fn from(e: CommandError) -> Self {
        ApiError::from(e).into()
    }
}

/// `e`, with a user-limit refusal noted for the answer's rate-limit headers (`Retry-After`,
/// `RateLimit`, …: the [`platform::ratelimit::Slot`] of the request).
pub fn noted(req: &poem::Request, e: CommandError) -> CommandError {
    if let CommandError::RateLimited(o) = &e {
        if let Some(slot) = req.extensions().get::<platform::ratelimit::Slot>() {
            slot.push(o.clone());
        }
    }
    e
}
