//! The REST API (poem-openapi): request and answer shapes, and handlers that turn them into
//! [`crate::commands`] and back. No rule lives here beyond what the OpenAPI document declares.
//!
//! - [`messages`]: `POST /v1/messages`, `POST /v1/messages/batch`
//! - [`channels`]: group lifecycle and members
//! - [`moderation`]: roles, mutes, channel settings, bans, send lists, user blocks
//! - [`reads`]: read positions
//! - [`tokens`]: end-user tokens
//! - [`admin`]: the admin API (tenants, API keys; master key) and token revocation
//! - [`errors`]: a command's error → HTTP
//! - [`docs`]: each operation's error statuses, the operation tags, path-parameter examples

pub mod admin;
pub mod channels;
pub mod docs;
pub mod errors;
pub mod messages;
pub mod moderation;
pub mod reads;
pub mod tokens;

use crate::commands::Commands;

/// What every handler needs.
#[derive(Clone)]
pub struct AppState {
    /// The command layer.
    pub commands: Commands,
    /// Mints user tokens.
    pub tokens: platform::token::UserTokens,
}
