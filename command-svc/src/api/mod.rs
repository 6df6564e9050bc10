//! The REST API (poem-openapi): DTOs, validation into domain commands, handlers.
//!
//! - [`messages`]: `POST /v1/messages`, `POST /v1/messages/batch`
//! - [`channels`]: group lifecycle and members
//! - [`reads`]: read positions
//! - [`tokens`]: end-user tokens
//! - [`errors`]: domain and service errors → HTTP
//! - [`docs`]: each operation's error statuses, the operation tags, path-parameter examples

pub mod channels;
pub mod docs;
pub mod errors;
pub mod messages;
pub mod reads;
pub mod tokens;

use crate::service::Commands;
use std::sync::Arc;

/// What every handler needs.
#[derive(Clone)]
pub struct AppState {
    /// The command executor.
    pub commands: Arc<Commands>,
    /// Largest decoded payload, bytes.
    pub max_payload_bytes: usize,
    /// Mints user tokens.
    pub tokens: platform::token::UserTokens,
}

/// Validates an id field.
pub(crate) fn id<T>(
    field: &str,
    raw: &str,
    parse: fn(String) -> Result<T, events::IdError>,
) -> Result<T, platform::error::ApiError> {
    parse(raw.to_owned())
        .map_err(|e| platform::error::ApiError::validation(field, format!("{field} {e}")))
}

/// `channel_type` 1 or 2.
pub(crate) fn channel_type(
    field: &str,
    raw: u8,
) -> Result<events::ChannelType, platform::error::ApiError> {
    events::ChannelType::try_from(raw).map_err(|e| platform::error::ApiError::validation(field, e))
}
