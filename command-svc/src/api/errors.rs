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
            },
        )
    }
}

impl<S> From<CommandError> for Failure<S> {
    fn from(e: CommandError) -> Self {
        ApiError::from(e).into()
    }
}
