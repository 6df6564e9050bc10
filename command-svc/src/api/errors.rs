//! Maps domain and service errors to HTTP answers.

use crate::domain::channel::DomainError;
use crate::log::LogError;
use crate::service::ServiceError;
use platform::error::ApiError;

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Domain(d) => match d {
                DomainError::ChannelNotFound => {
                    ApiError::not_found("CHANNEL_NOT_FOUND", d.to_string())
                }
                DomainError::ConversationNotFound => {
                    ApiError::not_found("CONVERSATION_NOT_FOUND", d.to_string())
                }
                DomainError::NotAMember(_) => ApiError::forbidden("NOT_A_MEMBER", d.to_string()),
                DomainError::ChannelExists | DomainError::ChannelRetired => {
                    ApiError::conflict("CHANNEL_EXISTS", d.to_string())
                }
                DomainError::MemberNotFound(_) => {
                    ApiError::not_found("MEMBER_NOT_FOUND", d.to_string())
                }
                DomainError::IdempotencyConflict => {
                    ApiError::Conflict(poem_openapi::payload::Json(platform::error::ErrorBody {
                        error: platform::error::ErrorDetail {
                            code: "IDEMPOTENCY_CONFLICT".into(),
                            message: d.to_string(),
                            field: Some("client_msg_no".into()),
                        },
                    }))
                }
            },
            ServiceError::Log(e @ (LogError::Snapshot(_) | LogError::SnapshotUnstable)) => {
                tracing::warn!(error = %platform::error::chain(&e), "snapshot store unavailable");
                ApiError::unavailable(
                    "DATABASE_UNAVAILABLE",
                    "the snapshot store is unavailable; retry",
                )
            }
            ServiceError::Log(LogError::Log(m)) => {
                tracing::warn!(error = %m, "event log unavailable");
                ApiError::unavailable(
                    "LOG_UNAVAILABLE",
                    "the event log is unavailable; retry (with client_msg_no to stay idempotent)",
                )
            }
            ServiceError::Log(e @ (LogError::Corrupt { .. } | LogError::Conflict)) => {
                ApiError::internal("event log", e)
            }
            ServiceError::Contention => ApiError::unavailable(
                "CONTENTION",
                "too many concurrent writers on the channel; retry",
            ),
        }
    }
}

impl<S> From<ServiceError> for platform::error::Failure<S> {
    fn from(e: ServiceError) -> Self {
        ApiError::from(e).into()
    }
}
