//! Group roles and moderation, and personal blocks (docs/moderation.md): member roles and
//! mutes, channel settings, bans, the blacklist and whitelist, user blocks.

use super::channels::{CommandResult, SMALL_BODY};
use super::docs::{self, ApiTags, BlockErrors, ModerationErrors};
use super::AppState;
use events::command::{BanUser, BlockChanged, BlockUser, ChangeSendList};
use events::moderation::SendList;
use platform::auth::TenantAuth;
use platform::error::Failure;
use platform::http::{BodyRules, BoundedBody, JsonBody, MAX_ID_JSON_BYTES};
use platform::params::Id;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

/// A ban.
#[derive(Debug, Clone, Object, serde::Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct BanRequest {
    /// The user to ban: removed if a member, and not added again until unbanned.
    pub uid: String,
    /// The ban ends at this time, ms since the Unix epoch (in the future). Absent: until
    /// unbanned.
    #[serde(default)]
    pub until: Option<i64>,
    /// The member acting (an owner or admin who outranks `uid`). Absent: an operator call.
    #[serde(default)]
    pub actor_uid: Option<String>,
}

impl poem_openapi::types::Example for BanRequest {
    fn example() -> Self {
        Self {
            uid: "mallory".into(),
            until: None,
            actor_uid: Some("alice".into()),
        }
    }
}

/// Uids to put on a send list.
#[derive(Debug, Clone, Object, serde::Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct ListRequest {
    /// 1–1000 uids (members or not); listed ones are ignored.
    #[oai(validator(min_items = 1, max_items = 1000))]
    pub uids: Vec<String>,
    /// The member acting (an owner or admin). Absent: an operator call.
    #[serde(default)]
    pub actor_uid: Option<String>,
}

impl poem_openapi::types::Example for ListRequest {
    fn example() -> Self {
        Self {
            uids: vec!["mallory".into()],
            actor_uid: Some("alice".into()),
        }
    }
}

/// A user to block.
#[derive(Debug, Clone, Object, serde::Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct BlockRequest {
    /// The user whose sends to the blocker become 403 `BLOCKED`.
    pub uid: String,
}

impl poem_openapi::types::Example for BlockRequest {
    fn example() -> Self {
        Self {
            uid: "mallory".into(),
        }
    }
}

impl BoundedBody for BanRequest {
    fn max_body_bytes(_: &BodyRules) -> usize {
        SMALL_BODY
    }
}
impl BoundedBody for BlockRequest {
    fn max_body_bytes(_: &BodyRules) -> usize {
        SMALL_BODY
    }
}
impl BoundedBody for ListRequest {
    fn max_body_bytes(_: &BodyRules) -> usize {
        crate::commands::fields::MAX_MEMBERS_PER_REQUEST * (MAX_ID_JSON_BYTES + 1) + SMALL_BODY
    }
}

/// A block's result.
#[derive(Debug, Clone, Object)]
pub struct BlockResult {
    /// Who blocks.
    pub uid: String,
    /// Who is (or was) blocked.
    pub blocked_uid: String,
    /// Log sequence of the event (or of the pair's last event if nothing changed; 0 when they
    /// have none); pass as `min_event_seq` to read your write.
    pub event_seq: u64,
}

impl From<BlockChanged> for BlockResult {
    fn from(b: BlockChanged) -> Self {
        BlockResult {
            uid: b.uid,
            blocked_uid: b.blocked_uid,
            event_seq: b.event_seq,
        }
    }
}

/// Moderation endpoints.
pub struct ModerationApi {
    /// Shared state.
    pub state: AppState,
}

impl ModerationApi {
    async fn list(
        &self,
        auth: &TenantAuth,
        channel_id: String,
        list: SendList,
        add: Vec<String>,
        remove: Vec<String>,
        actor_uid: Option<String>,
    ) -> Result<Json<CommandResult>, Failure<ModerationErrors>> {
        let cmd = ChangeSendList {
            channel_id,
            list,
            add,
            remove,
            actor_uid,
        };
        Ok(Json(self.state.commands.run(&auth.0, cmd).await?.into()))
    }
}

#[OpenApi(tag = "ApiTags::Moderation")]
impl ModerationApi {
    /// Ban a user: removed if a member (a `member_banned` frame reaches it and the members),
    /// its sends are 403 `BANNED`, and adding it is 403 `BANNED` until the ban ends or is
    /// lifted.
    #[oai(
        path = "/v1/channels/:channel_id/bans",
        method = "post",
        operation_id = "ban_user"
    )]
    async fn ban(
        &self,
        auth: TenantAuth,
        /// The group.
        #[oai(example = "docs::team")]
        channel_id: Path<Id>,
        body: JsonBody<BanRequest>,
    ) -> Result<Json<CommandResult>, Failure<ModerationErrors>> {
        let cmd = BanUser {
            channel_id: channel_id.0 .0,
            uid: body.0.uid,
            until: body.0.until,
            lift: false,
            actor_uid: body.0.actor_uid,
        };
        Ok(Json(self.state.commands.run(&auth.0, cmd).await?.into()))
    }

    /// Lift a ban (idempotent); the user is not added back.
    #[oai(
        path = "/v1/channels/:channel_id/bans/:uid",
        method = "delete",
        operation_id = "unban_user"
    )]
    async fn unban(
        &self,
        auth: TenantAuth,
        /// The group.
        #[oai(example = "docs::team")]
        channel_id: Path<Id>,
        /// The banned user.
        #[oai(example = "docs::mallory")]
        uid: Path<Id>,
        /// The member acting (an owner or admin). Absent: an operator call.
        #[oai(example = "docs::some_alice")]
        actor_uid: Query<Option<Id>>,
    ) -> Result<Json<CommandResult>, Failure<ModerationErrors>> {
        let cmd = BanUser {
            channel_id: channel_id.0 .0,
            uid: uid.0 .0,
            until: None,
            lift: true,
            actor_uid: actor_uid.0.map(|a| a.0),
        };
        Ok(Json(self.state.commands.run(&auth.0, cmd).await?.into()))
    }

    /// Put uids on the blacklist: their sends are 403 `BLACKLISTED` (owners excepted).
    #[oai(
        path = "/v1/channels/:channel_id/blacklist",
        method = "post",
        operation_id = "add_to_blacklist"
    )]
    async fn blacklist_add(
        &self,
        auth: TenantAuth,
        /// The group.
        #[oai(example = "docs::team")]
        channel_id: Path<Id>,
        body: JsonBody<ListRequest>,
    ) -> Result<Json<CommandResult>, Failure<ModerationErrors>> {
        let b = body.0;
        self.list(
            &auth,
            channel_id.0 .0,
            SendList::Blacklist,
            b.uids,
            vec![],
            b.actor_uid,
        )
        .await
    }

    /// Take a uid off the blacklist (idempotent).
    #[oai(
        path = "/v1/channels/:channel_id/blacklist/:uid",
        method = "delete",
        operation_id = "remove_from_blacklist"
    )]
    async fn blacklist_remove(
        &self,
        auth: TenantAuth,
        /// The group.
        #[oai(example = "docs::team")]
        channel_id: Path<Id>,
        /// The listed uid.
        #[oai(example = "docs::mallory")]
        uid: Path<Id>,
        /// The member acting (an owner or admin). Absent: an operator call.
        #[oai(example = "docs::some_alice")]
        actor_uid: Query<Option<Id>>,
    ) -> Result<Json<CommandResult>, Failure<ModerationErrors>> {
        let actor = actor_uid.0.map(|a| a.0);
        self.list(
            &auth,
            channel_id.0 .0,
            SendList::Blacklist,
            vec![],
            vec![uid.0 .0],
            actor,
        )
        .await
    }

    /// Put uids on the whitelist: with `whitelist_only`, only they (and owners and admins)
    /// may send.
    #[oai(
        path = "/v1/channels/:channel_id/whitelist",
        method = "post",
        operation_id = "add_to_whitelist"
    )]
    async fn whitelist_add(
        &self,
        auth: TenantAuth,
        /// The group.
        #[oai(example = "docs::team")]
        channel_id: Path<Id>,
        body: JsonBody<ListRequest>,
    ) -> Result<Json<CommandResult>, Failure<ModerationErrors>> {
        let b = body.0;
        self.list(
            &auth,
            channel_id.0 .0,
            SendList::Whitelist,
            b.uids,
            vec![],
            b.actor_uid,
        )
        .await
    }

    /// Take a uid off the whitelist (idempotent).
    #[oai(
        path = "/v1/channels/:channel_id/whitelist/:uid",
        method = "delete",
        operation_id = "remove_from_whitelist"
    )]
    async fn whitelist_remove(
        &self,
        auth: TenantAuth,
        /// The group.
        #[oai(example = "docs::team")]
        channel_id: Path<Id>,
        /// The listed uid.
        #[oai(example = "docs::mallory")]
        uid: Path<Id>,
        /// The member acting (an owner or admin). Absent: an operator call.
        #[oai(example = "docs::some_alice")]
        actor_uid: Query<Option<Id>>,
    ) -> Result<Json<CommandResult>, Failure<ModerationErrors>> {
        let actor = actor_uid.0.map(|a| a.0);
        self.list(
            &auth,
            channel_id.0 .0,
            SendList::Whitelist,
            vec![],
            vec![uid.0 .0],
            actor,
        )
        .await
    }

    /// `uid` blocks a user (idempotent): the blocked user's sends to `uid`'s personal
    /// channel are 403 `BLOCKED` and create nothing.
    #[oai(
        path = "/v1/users/:uid/blocks",
        method = "post",
        operation_id = "block_user"
    )]
    async fn block(
        &self,
        auth: TenantAuth,
        /// The user who blocks.
        #[oai(example = "docs::alice")]
        uid: Path<Id>,
        body: JsonBody<BlockRequest>,
    ) -> Result<Json<BlockResult>, Failure<BlockErrors>> {
        let cmd = BlockUser {
            uid: uid.0 .0,
            blocked_uid: body.0.uid,
            unblock: false,
        };
        Ok(Json(self.state.commands.run(&auth.0, cmd).await?.into()))
    }

    /// `uid` unblocks a user (idempotent).
    #[oai(
        path = "/v1/users/:uid/blocks/:blocked_uid",
        method = "delete",
        operation_id = "unblock_user"
    )]
    async fn unblock(
        &self,
        auth: TenantAuth,
        /// The user who blocked.
        #[oai(example = "docs::alice")]
        uid: Path<Id>,
        /// The blocked user.
        #[oai(example = "docs::mallory")]
        blocked_uid: Path<Id>,
    ) -> Result<Json<BlockResult>, Failure<BlockErrors>> {
        let cmd = BlockUser {
            uid: uid.0 .0,
            blocked_uid: blocked_uid.0 .0,
            unblock: true,
        };
        Ok(Json(self.state.commands.run(&auth.0, cmd).await?.into()))
    }
}
