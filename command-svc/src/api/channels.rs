//! Group channels: create, disband, add and remove members, change a member (role, mute) and
//! the channel's send settings (one path, one API: the document keeps one entry per path).

use super::docs::{self, AddErrors, ApiTags, CreateErrors, GroupPathErrors, ModerationErrors};
use super::AppState;
use events::command::{
    AddMembers, CreateGroup, DisbandGroup, GroupChanged, RemoveMember, UpdateChannel, UpdateMember,
};
use platform::auth::TenantAuth;
use platform::error::Failure;
use platform::http::{BodyRules, BoundedBody, JsonBody, MAX_ID_JSON_BYTES};
use platform::params::Id;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{Object, OpenApi};

pub use crate::commands::fields::MAX_MEMBERS_PER_REQUEST;

/// Largest body of the small member and moderation requests: a few ids and numbers.
pub(super) const SMALL_BODY: usize = 4 * MAX_ID_JSON_BYTES + 256;

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
    /// The owner (role `owner`): default `actor_uid`, else the first member; added to the
    /// members if missing.
    #[oai(validator(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$"
    ))]
    #[serde(default)]
    pub owner: Option<String>,
    /// The user creating the group (its default owner). Absent: an operator call.
    #[oai(validator(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$"
    ))]
    #[serde(default)]
    pub actor_uid: Option<String>,
}

impl poem_openapi::types::Example for CreateChannelRequest {
    fn example() -> Self {
        Self {
            channel_id: "team".into(),
            name: Some("Team".into()),
            members: vec!["alice".into(), "bob".into()],
            owner: None,
            actor_uid: Some("alice".into()),
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
    /// The member acting: must be an owner or admin. Absent: an operator call.
    #[oai(validator(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$"
    ))]
    #[serde(default)]
    pub actor_uid: Option<String>,
}

impl poem_openapi::types::Example for AddMembersRequest {
    fn example() -> Self {
        Self {
            uids: vec!["carol".into()],
            actor_uid: Some("alice".into()),
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

/// A member's new role and/or mute.
#[derive(Debug, Clone, Object, serde::Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct UpdateMemberRequest {
    /// `owner`, `admin` or `member`. An actor grants at most its own role; the last owner may
    /// not step down.
    #[serde(default)]
    pub role: Option<String>,
    /// Muted until this time, ms since the Unix epoch (a past time unmutes); `null` unmutes.
    /// A muted member's sends are 403 `MEMBER_MUTED`.
    #[serde(default)]
    pub muted_until: MaybeUndefined<i64>,
    /// The member acting (an owner or admin who outranks `uid`). Absent: an operator call.
    #[serde(default)]
    pub actor_uid: Option<String>,
}

impl poem_openapi::types::Example for UpdateMemberRequest {
    fn example() -> Self {
        Self {
            role: Some("admin".into()),
            muted_until: MaybeUndefined::Undefined,
            actor_uid: Some("alice".into()),
        }
    }
}

/// A group's new send settings.
#[derive(Debug, Clone, Object, serde::Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct UpdateChannelRequest {
    /// Channel-wide mute: only owners and admins may send (others get 403 `CHANNEL_MUTED`).
    #[serde(default)]
    pub muted: Option<bool>,
    /// Whitelist mode: only whitelisted uids, owners and admins may send (others get 403
    /// `NOT_WHITELISTED`).
    #[serde(default)]
    pub whitelist_only: Option<bool>,
    /// The member acting (an owner or admin). Absent: an operator call.
    #[serde(default)]
    pub actor_uid: Option<String>,
}

impl poem_openapi::types::Example for UpdateChannelRequest {
    fn example() -> Self {
        Self {
            muted: Some(false),
            whitelist_only: Some(false),
            actor_uid: Some("alice".into()),
        }
    }
}

impl BoundedBody for UpdateMemberRequest {
    fn max_body_bytes(_: &BodyRules) -> usize {
        SMALL_BODY
    }
}
impl BoundedBody for UpdateChannelRequest {
    fn max_body_bytes(_: &BodyRules) -> usize {
        SMALL_BODY
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

impl From<GroupChanged> for CommandResult {
    fn from(g: GroupChanged) -> Self {
        CommandResult {
            channel_id: g.channel_id,
            event_seq: g.event_seq,
        }
    }
}

impl From<GroupChanged> for AddMembersResult {
    fn from(g: GroupChanged) -> Self {
        AddMembersResult {
            channel_id: g.channel_id,
            added: g.added,
            event_seq: g.event_seq,
        }
    }
}

/// Channel endpoints.
pub struct ChannelsApi {
    /// Shared state.
    pub state: AppState,
}

#[OpenApi(tag = "ApiTags::Channels")]
impl ChannelsApi {
    /// Create a group channel. 409 `CHANNEL_EXISTS` if the id is or was in use. The owner is
    /// `owner`, else `actor_uid`, else the first member (docs/moderation.md).
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
        let b = body.0;
        let cmd = CreateGroup {
            channel_id: b.channel_id,
            name: b.name,
            members: b.members,
            owner: b.owner,
            actor_uid: b.actor_uid,
        };
        Ok(Json(self.state.commands.run(&auth.0, cmd).await?.into()))
    }

    /// Disband a group: members are removed and the id is retired. 404 if it does not exist;
    /// with `actor_uid`, only an owner or admin may.
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
        /// The member acting (an owner or admin). Absent: an operator call.
        #[oai(example = "docs::some_alice")]
        actor_uid: Query<Option<Id>>,
    ) -> Result<Json<CommandResult>, Failure<GroupPathErrors>> {
        let cmd = DisbandGroup {
            channel_id: channel_id.0 .0,
            actor_uid: actor_uid.0.map(|a| a.0),
        };
        Ok(Json(self.state.commands.run(&auth.0, cmd).await?.into()))
    }

    /// Add members (idempotent). New members start with nothing unread. With `actor_uid`,
    /// only an owner or admin may; a banned uid is 403 `BANNED`.
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
        let cmd = AddMembers {
            channel_id: channel_id.0 .0,
            uids: body.0.uids,
            actor_uid: body.0.actor_uid,
        };
        Ok(Json(self.state.commands.run(&auth.0, cmd).await?.into()))
    }

    /// Remove a member. 404 `MEMBER_NOT_FOUND` if `uid` is not a member. With `actor_uid`: a
    /// member may remove itself (leave; the last owner may not while others remain, 409
    /// `LAST_OWNER`), an owner or admin those it outranks.
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
        /// The member acting. Absent: an operator call.
        #[oai(example = "docs::some_alice")]
        actor_uid: Query<Option<Id>>,
    ) -> Result<Json<CommandResult>, Failure<GroupPathErrors>> {
        let cmd = RemoveMember {
            channel_id: channel_id.0 .0,
            uid: uid.0 .0,
            actor_uid: actor_uid.0.map(|a| a.0),
        };
        Ok(Json(self.state.commands.run(&auth.0, cmd).await?.into()))
    }

    /// Change a member's role and/or mute. Roles and mutes are listed by `GET
    /// /v1/channels/{channel_id}/members` and pushed as `member_updated` frames.
    #[oai(
        path = "/v1/channels/:channel_id/members/:uid",
        method = "patch",
        operation_id = "update_member"
    )]
    async fn update_member(
        &self,
        auth: TenantAuth,
        /// The group.
        #[oai(example = "docs::team")]
        channel_id: Path<Id>,
        /// The member.
        #[oai(example = "docs::bob")]
        uid: Path<Id>,
        body: JsonBody<UpdateMemberRequest>,
    ) -> Result<Json<CommandResult>, Failure<ModerationErrors>> {
        let b = body.0;
        let muted_until = match b.muted_until {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(t) => Some(Some(t)),
        };
        let cmd = UpdateMember {
            channel_id: channel_id.0 .0,
            uid: uid.0 .0,
            role: b.role,
            muted_until,
            actor_uid: b.actor_uid,
        };
        Ok(Json(self.state.commands.run(&auth.0, cmd).await?.into()))
    }

    /// Change a group's send settings: channel-wide mute, whitelist mode.
    #[oai(
        path = "/v1/channels/:channel_id",
        method = "patch",
        operation_id = "update_channel"
    )]
    async fn update_channel(
        &self,
        auth: TenantAuth,
        /// The group.
        #[oai(example = "docs::team")]
        channel_id: Path<Id>,
        body: JsonBody<UpdateChannelRequest>,
    ) -> Result<Json<CommandResult>, Failure<ModerationErrors>> {
        let cmd = UpdateChannel {
            channel_id: channel_id.0 .0,
            muted: body.0.muted,
            whitelist_only: body.0.whitelist_only,
            actor_uid: body.0.actor_uid,
        };
        Ok(Json(self.state.commands.run(&auth.0, cmd).await?.into()))
    }
}
