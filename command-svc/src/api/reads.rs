//! Read positions.

use super::docs::{self, ApiTags, ReadErrors};
use super::AppState;
use events::command::{ReadPositionMoved, SetReadPosition};
use platform::auth::TenantAuth;
use platform::error::Failure;
use platform::http::{BodyRules, BoundedBody, JsonBody};
use platform::params::Id;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

/// The new read position.
#[derive(Debug, Clone, Object, serde::Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct SetReadRequest {
    /// Read up to and including this message_seq; lower than before marks messages unread;
    /// above the channel's last seq it is capped.
    pub message_seq: u64,
}

impl poem_openapi::types::Example for SetReadRequest {
    fn example() -> Self {
        Self { message_seq: 1 }
    }
}

impl BoundedBody for SetReadRequest {
    fn max_body_bytes(_: &BodyRules) -> usize {
        1024
    }
}

/// The applied read position.
#[derive(Debug, Clone, Object)]
pub struct SetReadResult {
    /// The position stored (after capping).
    pub message_seq: u64,
    /// Log sequence of the event.
    pub event_seq: u64,
}

impl From<ReadPositionMoved> for SetReadResult {
    fn from(r: ReadPositionMoved) -> Self {
        SetReadResult {
            message_seq: r.message_seq,
            event_seq: r.event_seq,
        }
    }
}

/// Read-position endpoints.
pub struct ReadsApi {
    /// Shared state.
    pub state: AppState,
}

#[OpenApi(tag = "ApiTags::Reads")]
impl ReadsApi {
    /// Set `uid`'s read position in a conversation (personal: `channel_id` is the peer).
    /// 404 if the group or conversation does not exist, 403 if `uid` is not a member.
    #[oai(
        path = "/v1/users/:uid/conversations/:channel_type/:channel_id/read",
        method = "post",
        operation_id = "set_read_position"
    )]
    async fn set_read(
        &self,
        req: &poem::Request,
        auth: TenantAuth,
        /// The reader.
        #[oai(example = "docs::bob")]
        uid: Path<Id>,
        /// 1 personal, 2 group.
        #[oai(
            name = "channel_type",
            example = "docs::personal",
            validator(minimum(value = "1"), maximum(value = "2"))
        )]
        ct: Path<u8>,
        /// The group id, or for a personal conversation the peer's uid.
        #[oai(example = "docs::alice")]
        channel_id: Path<Id>,
        body: JsonBody<SetReadRequest>,
    ) -> Result<Json<SetReadResult>, Failure<ReadErrors>> {
        let cmd = SetReadPosition {
            uid: uid.0 .0,
            channel_id: channel_id.0 .0,
            channel_type: ct.0,
            message_seq: body.0.message_seq,
        };
        let moved = self
            .state
            .commands
            .run(&auth.0, cmd)
            .await
            .map_err(|e| super::errors::noted(req, e))?;
        Ok(Json(moved.into()))
    }
}
