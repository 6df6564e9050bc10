//! [`CommandError`]: why a command was not carried out, in the terms every transport answers
//! with (REST: the status and the `{"error": …}` body; socket: a [`Reply::Err`] with the same
//! status and body).
//!
//! [`Reply::Err`]: events::command::Reply::Err

use crate::domain::error::DomainError;
use crate::executor::ExecError;
use crate::log::LogError;
use events::command::Refusal;

/// Why a command was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// A field is malformed or breaks a rule (400 `VALIDATION_ERROR` naming it).
    #[error("{message}")]
    Invalid {
        /// The field, e.g. `payload`, `messages[3].channel_id`, `uids[2]`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The payload is larger than the configured limit (413 `PAYLOAD_TOO_LARGE`).
    #[error("{message}")]
    TooLarge {
        /// The field (`payload`, possibly prefixed).
        field: String,
        /// The limit, in words.
        message: String,
    },
    /// A rule of the channel refused it: not found (404), not a member (403), exists or
    /// idempotency key reused (409).
    #[error(transparent)]
    Refused(#[from] DomainError),
    /// The event log or the snapshot store is down, or other writers kept winning (503; retry,
    /// with `client_msg_no` for a send to stay idempotent).
    #[error("unavailable")]
    Unavailable(#[source] ExecError),
    /// A fault of this service or its data (500; logged, not shown).
    #[error("internal: {0}")]
    Internal(String),
    /// The user's rate limit refused it (429 `RATE_LIMIT_EXCEEDED`; on a socket the frame's
    /// code is `RATE_LIMITED`), with when a retry can pass.
    #[error("rate limited")]
    RateLimited(platform::ratelimit::Outcome),
}

impl From<ExecError> for CommandError {
    fn from(e: ExecError) -> Self {
        match e {
            ExecError::Domain(d) => CommandError::Refused(d),
            ExecError::Log(LogError::Corrupt { .. } | LogError::Conflict) => {
                CommandError::Internal(platform::error::chain(&e))
            }
            e @ (ExecError::Log(_) | ExecError::Contention) => CommandError::Unavailable(e),
        }
    }
}

impl CommandError {
    /// 400 naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        CommandError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same error with its field named inside `prefix` (`messages[3]` + `payload` →
    /// `messages[3].payload`): how a batch reports an item's field.
    pub fn within(self, prefix: &str) -> Self {
        match self {
            CommandError::Invalid { field, message } => CommandError::Invalid {
                field: format!("{prefix}.{field}"),
                message,
            },
            CommandError::TooLarge { field, message } => CommandError::TooLarge {
                field: format!("{prefix}.{field}"),
                message,
            },
            other => other,
        }
    }

    /// The HTTP status of this error (also what a socket reply carries).
    pub fn status(&self) -> u16 {
        match self {
            CommandError::Invalid { .. } => 400,
            CommandError::TooLarge { .. } => 413,
            CommandError::Refused(d) => match d {
                DomainError::ChannelNotFound
                | DomainError::ConversationNotFound
                | DomainError::MemberNotFound(_) => 404,
                DomainError::NotAMember(_)
                | DomainError::ActorNotMember(_)
                | DomainError::PermissionDenied(_)
                | DomainError::MemberMuted { .. }
                | DomainError::ChannelMuted
                | DomainError::Banned { .. }
                | DomainError::Blacklisted(_)
                | DomainError::NotWhitelisted(_)
                | DomainError::Blocked(_) => 403,
                DomainError::ChannelExists
                | DomainError::ChannelRetired
                | DomainError::IdempotencyConflict
                | DomainError::GroupFull { .. }
                | DomainError::LastOwner(_) => 409,
            },
            CommandError::Unavailable(_) => 503,
            CommandError::Internal(_) => 500,
            CommandError::RateLimited(_) => 429,
        }
    }

    /// The status and the error body every transport answers with. Logs the cause of a 500
    /// (hidden from the caller) and of a 503 (the caller only learns what to do).
    pub fn into_refusal(self) -> (u16, Refusal) {
        let status = self.status();
        let retry_after_ms = match &self {
            CommandError::RateLimited(o) => o.retry_after_ms(),
            _ => None,
        };
        let (code, field, message) = match self {
            CommandError::Invalid { field, message } => ("VALIDATION_ERROR", Some(field), message),
            CommandError::TooLarge { field, message } => {
                ("PAYLOAD_TOO_LARGE", Some(field), message)
            }
            CommandError::Refused(d) => {
                let (code, field) = refusal(&d);
                (code, field.map(str::to_owned), d.to_string())
            }
            CommandError::Unavailable(e) => {
                tracing::warn!(error = %platform::error::chain(&e), "command not carried out");
                let (code, message) = match e {
                    ExecError::Log(LogError::Log { .. }) => (
                        "LOG_UNAVAILABLE",
                        "the event log is unavailable; retry (with client_msg_no to stay \
                         idempotent)",
                    ),
                    ExecError::Contention => (
                        "CONTENTION",
                        "too many concurrent writers on the channel; retry",
                    ),
                    _ => (
                        "DATABASE_UNAVAILABLE",
                        "the snapshot store is unavailable; retry",
                    ),
                };
                (code, None, message.to_owned())
            }
            CommandError::Internal(cause) => {
                tracing::error!(error = %cause, "internal error");
                ("INTERNAL", None, "internal error".to_owned())
            }
            CommandError::RateLimited(o) => ("RATE_LIMIT_EXCEEDED", None, o.message()),
        };
        (
            status,
            Refusal {
                code: code.to_owned(),
                message,
                field,
                retry_after_ms,
            },
        )
    }
}

/// The code of a domain refusal and the field it is about (if one).
pub(crate) fn refusal(d: &DomainError) -> (&'static str, Option<&'static str>) {
    match d {
        DomainError::ChannelNotFound => ("CHANNEL_NOT_FOUND", None),
        DomainError::ConversationNotFound => ("CONVERSATION_NOT_FOUND", None),
        DomainError::MemberNotFound(_) => ("MEMBER_NOT_FOUND", Some("uid")),
        DomainError::NotAMember(_) => ("NOT_A_MEMBER", None),
        DomainError::ChannelExists | DomainError::ChannelRetired => ("CHANNEL_EXISTS", None),
        DomainError::IdempotencyConflict => ("IDEMPOTENCY_CONFLICT", Some("client_msg_no")),
        DomainError::GroupFull { .. } => ("GROUP_FULL", None),
        DomainError::ActorNotMember(_) => ("NOT_A_MEMBER", Some("actor_uid")),
        DomainError::PermissionDenied(_) => ("PERMISSION_DENIED", Some("actor_uid")),
        DomainError::LastOwner(_) => ("LAST_OWNER", Some("uid")),
        DomainError::MemberMuted { .. } => ("MEMBER_MUTED", Some("from_uid")),
        DomainError::ChannelMuted => ("CHANNEL_MUTED", Some("channel_id")),
        DomainError::Banned { field, .. } => ("BANNED", Some(field)),
        DomainError::Blacklisted(_) => ("BLACKLISTED", Some("from_uid")),
        DomainError::NotWhitelisted(_) => ("NOT_WHITELISTED", Some("from_uid")),
        DomainError::Blocked(_) => ("BLOCKED", Some("channel_id")),
    }
}
