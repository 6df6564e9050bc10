//! Group channels: create, disband, add and remove members.

use super::docs::{self, AddErrors, ApiTags, CreateErrors, GroupPathErrors};
use super::{id, AppState};
use crate::domain::channel::Command;
use crate::service::Outcome;
use events::{ChannelId, ChannelKey, Event, Uid};
use platform::auth::TenantAuth;
use platform::error::{ApiError, Failure};
use platform::http::{BodyRules, BoundedBody, JsonBody, MAX_ID_JSON_BYTES};
use platform::params::Id;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

/// Most members in one create or add request.
pub const MAX_MEMBERS_PER_REQUEST: usize = 1000;

/// A new group.
#[derive(Debug, Clone, Object, serde::Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct CreateChannelRequest {
    /// The group's id: 1–128 bytes of UTF-8 without whitespace or control characters; never
    /// reused, also after the group is disbanded.
    #[oai(validator(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$"
    ))]
    pub channel_id: String,
    /// Display name: 1–256 bytes of UTF-8 without control characters
    /// ([`events::text::GROUP_NAME`]).
    #[oai(
        nullable,
        validator(
            min_length = 1,
            max_length = 256,
            pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"
        )
    )]
    #[serde(default)]
    pub name: Option<String>,
    /// Initial members (uids, at most 1000; duplicates ignored).
    #[oai(validator(max_items = 1000))]
    #[serde(default)]
    pub members: Vec<String>,
}

impl poem_openapi::types::Example for CreateChannelRequest {
    fn example() -> Self {
        Self {
            channel_id: "team".into(),
            name: Some("Team".into()),
            members: vec!["alice".into(), "bob".into()],
        }
    }
}

/// Members to add.
#[derive(Debug, Clone, Object, serde::Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct AddMembersRequest {
    /// 1–1000 uids; current members are ignored.
    #[oai(validator(min_items = 1, max_items = 1000))]
    pub uids: Vec<String>,
}

impl poem_openapi::types::Example for AddMembersRequest {
    fn example() -> Self {
        Self {
            uids: vec!["carol".into()],
        }
    }
}

/// Largest body of a member list: every id escaped, with room for the other fields.
fn max_members_bytes() -> usize {
    MAX_MEMBERS_PER_REQUEST * (MAX_ID_JSON_BYTES + 1) + 2 * MAX_ID_JSON_BYTES + 256 * 6 + 256
}

impl BoundedBody for CreateChannelRequest {
    fn max_body_bytes(_: &BodyRules) -> usize {
        max_members_bytes()
    }
}

impl BoundedBody for AddMembersRequest {
    fn max_body_bytes(_: &BodyRules) -> usize {
        max_members_bytes()
    }
}

/// A command's result.
#[derive(Debug, Clone, Object)]
pub struct CommandResult {
    /// The group.
    pub channel_id: String,
    /// Log sequence of the command's last event (or of the channel's last event if nothing
    /// changed); pass as `min_event_seq` to read your write.
    pub event_seq: u64,
}

/// The result of adding members.
#[derive(Debug, Clone, Object)]
pub struct AddMembersResult {
    /// The group.
    pub channel_id: String,
    /// Uids that were not members before.
    pub added: Vec<String>,
    /// As in [`CommandResult`].
    pub event_seq: u64,
}

fn uids(field: &str, raw: &[String]) -> Result<Vec<Uid>, ApiError> {
    if raw.len() > MAX_MEMBERS_PER_REQUEST {
        return Err(ApiError::validation(
            field,
            format!("at most {MAX_MEMBERS_PER_REQUEST} uids per request"),
        ));
    }
    raw.iter()
        .enumerate()
        .map(|(i, u)| id(&format!("{field}[{i}]"), u, Uid::parse))
        .collect()
}

fn event_seq(o: &Outcome) -> u64 {
    match o {
        Outcome::Appended { event_seq, .. } | Outcome::Unchanged { event_seq } => *event_seq,
        Outcome::Duplicate(r) => r.event_seq,
    }
}

/// Channel endpoints.
pub struct ChannelsApi {
    /// Shared state.
    pub state: AppState,
}

#[OpenApi(tag = "ApiTags::Channels")]
impl ChannelsApi {
    /// Create a group channel. 409 `CHANNEL_EXISTS` if the id is or was in use.
    #[oai(
        path = "/v1/channels",
        method = "post",
        operation_id = "create_channel"
    )]
    async fn create(
        &self,
        auth: TenantAuth,
        body: JsonBody<CreateChannelRequest>,
    ) -> Result<Json<CommandResult>, Failure<CreateErrors>> {
        let req = body.0;
        let channel_id = id("channel_id", &req.channel_id, ChannelId::parse)?;
        if let Some(name) = &req.name {
            events::text::GROUP_NAME
                .check(name)
                .map_err(|e| ApiError::validation("name", format!("name {e}")))?;
        }
        let members = uids("members", &req.members)?;
        let key = ChannelKey::Group {
            id: channel_id.clone(),
        };
        let o = self
            .state
            .commands
            .execute(
                &auth.0,
                &key,
                Command::CreateGroup {
                    name: req.name,
                    members,
                },
            )
            .await?;
        Ok(Json(CommandResult {
            channel_id: channel_id.to_string(),
            event_seq: event_seq(&o),
        }))
    }

    /// Disband a group: members are removed and the id is retired. 404 if it does not exist.
    #[oai(
        path = "/v1/channels/:channel_id",
        method = "delete",
        operation_id = "disband_channel"
    )]
    async fn disband(
        &self,
        auth: TenantAuth,
        /// The group.
        #[oai(example = "docs::team")]
        channel_id: Path<Id>,
    ) -> Result<Json<CommandResult>, Failure<GroupPathErrors>> {
        let channel_id = id("channel_id", &channel_id.0, ChannelId::parse)?;
        let key = ChannelKey::Group {
            id: channel_id.clone(),
        };
        let o = self
            .state
            .commands
            .execute(&auth.0, &key, Command::Disband)
            .await?;
        Ok(Json(CommandResult {
            channel_id: channel_id.to_string(),
            event_seq: event_seq(&o),
        }))
    }

    /// Add members (idempotent). New members start with nothing unread.
    #[oai(
        path = "/v1/channels/:channel_id/members",
        method = "post",
        operation_id = "add_members"
    )]
    async fn add_members(
        &self,
        auth: TenantAuth,
        /// The group.
        #[oai(example = "docs::team")]
        channel_id: Path<Id>,
        body: JsonBody<AddMembersRequest>,
    ) -> Result<Json<AddMembersResult>, Failure<AddErrors>> {
        let channel_id = id("channel_id", &channel_id.0, ChannelId::parse)?;
        if body.0.uids.is_empty() {
            return Err(ApiError::validation("uids", "uids must not be empty").into());
        }
        let list = uids("uids", &body.0.uids)?;
        let key = ChannelKey::Group {
            id: channel_id.clone(),
        };
        let o = self
            .state
            .commands
            .execute(&auth.0, &key, Command::AddMembers { uids: list })
            .await?;
        let added = match &o {
            Outcome::Appended {
                event: Event::MembersAdded(e),
                ..
            } => e.uids.iter().map(ToString::to_string).collect(),
            _ => vec![],
        };
        Ok(Json(AddMembersResult {
            channel_id: channel_id.to_string(),
            added,
            event_seq: event_seq(&o),
        }))
    }

    /// Remove a member. 404 `MEMBER_NOT_FOUND` if `uid` is not a member.
    #[oai(
        path = "/v1/channels/:channel_id/members/:uid",
        method = "delete",
        operation_id = "remove_member"
    )]
    async fn remove_member(
        &self,
        auth: TenantAuth,
        /// The group.
        #[oai(example = "docs::team")]
        channel_id: Path<Id>,
        /// The member to remove.
        #[oai(example = "docs::carol")]
        uid: Path<Id>,
    ) -> Result<Json<CommandResult>, Failure<GroupPathErrors>> {
        let channel_id = id("channel_id", &channel_id.0, ChannelId::parse)?;
        let uid = id("uid", &uid.0, Uid::parse)?;
        let key = ChannelKey::Group {
            id: channel_id.clone(),
        };
        let o = self
            .state
            .commands
            .execute(&auth.0, &key, Command::RemoveMember { uid })
            .await?;
        Ok(Json(CommandResult {
            channel_id: channel_id.to_string(),
            event_seq: event_seq(&o),
        }))
    }
}
