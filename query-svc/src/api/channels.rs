//! `GET /v1/channels/{channel_id}` and `GET /v1/channels/{channel_id}/members`: groups. Read
//! the `channels` projection.

use super::docs::{self, ChannelErrors};
use super::messages::{channel_not_found, not_a_member};
use super::{parse_channel_id, parse_limit, parse_uid, seq_out, ApiTags, AppState};
use crate::consistency::Projection;
use crate::store;
use crate::store::channels::GroupRow;
use events::{ChannelId, TenantId, Uid};
use platform::auth::{Caller, CallerAuth};
use platform::error::{ApiError, Failure};
use platform::params::Id;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use std::sync::Arc;

const READS: [Projection; 1] = [Projection::Channels];
const DEFAULT_MEMBERS: usize = 100;
const MAX_MEMBERS: usize = 1000;

/// A group channel.
#[derive(Debug, Object)]
pub struct ChannelInfo {
    /// The group's id.
    pub channel_id: String,
    /// Always 2 (group).
    pub channel_type: u8,
    /// The group's name, or null.
    #[oai(nullable)]
    pub name: Option<String>,
    /// Number of members.
    pub member_count: u32,
    /// Sequence of the newest message (0 when none).
    pub last_msg_seq: u64,
    /// ms since the Unix epoch.
    pub created_at: i64,
    /// ms since the Unix epoch.
    pub updated_at: i64,
    /// Channel-wide mute: only owners and admins may send.
    pub muted: bool,
    /// Whitelist mode: only whitelisted uids, owners and admins may send.
    pub whitelist_only: bool,
}

/// A member of a group.
#[derive(Debug, Object)]
pub struct Member {
    /// The member's uid.
    pub uid: String,
    /// When they joined, ms since the Unix epoch.
    pub joined_at: i64,
    /// `owner`, `admin` or `member`.
    pub role: String,
    /// Muted until, ms since the Unix epoch; null when not muted (a mute that ended reads as
    /// null).
    #[oai(nullable)]
    pub muted_until: Option<i64>,
}

/// A page of members, by uid.
#[derive(Debug, Object)]
pub struct MemberPage {
    /// Members in ascending uid order.
    pub members: Vec<Member>,
    /// Pass as `cursor` for the next page (it is the last uid of this page); null on the last
    /// page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

/// Group info and members.
pub struct ChannelsApi {
    /// Shared state.
    pub state: Arc<AppState>,
}

/// The live group `channel_id`, checking `viewer`'s membership when given.
pub(super) async fn live_group(
    state: &AppState,
    tenant: &TenantId,
    channel_id: &ChannelId,
    viewer: Option<&Uid>,
) -> Result<GroupRow, ApiError> {
    let group = store::channels::group(
        &state.pool,
        tenant.as_str(),
        channel_id.as_str(),
        viewer.map(Uid::as_str),
    )
    .await?
    .filter(|g| !g.disbanded)
    .ok_or_else(channel_not_found)?;
    if viewer.is_some() && !group.viewer_is_member {
        return Err(not_a_member());
    }
    Ok(group)
}

/// A `cursor` of a page by uid (the last uid of the previous page) as the uid to start after
/// (`""` for the first page).
pub(super) fn uid_cursor(cursor: Option<&str>) -> Result<String, ApiError> {
    match cursor {
        None => Ok(String::new()),
        Some(c) => Uid::parse(c)
            .map(|u| u.to_string())
            .map_err(|_| ApiError::invalid_cursor()),
    }
}

/// The viewer whose membership is checked: optional for a service, the token's uid for a user.
pub(super) fn optional_uid(caller: &Caller, raw: Option<&str>) -> Result<Option<Uid>, ApiError> {
    match caller {
        Caller::Service(_) => raw.map(|u| parse_uid("uid", u)).transpose(),
        Caller::User(_) => caller.viewer("uid", raw).map(Some),
    }
}

#[OpenApi(tag = "ApiTags::Channels")]
impl ChannelsApi {
    /// A group channel. 404 `CHANNEL_NOT_FOUND` when missing or disbanded; with `uid`, 403
    /// `NOT_A_MEMBER` unless that user is a member.
    #[oai(
        path = "/v1/channels/:channel_id",
        method = "get",
        operation_id = "get_channel"
    )]
    async fn get_channel(
        &self,
        req: &poem::Request,
        auth: CallerAuth,
        /// The group's id.
        #[oai(example = "docs::team")]
        channel_id: Path<Id>,
        /// Optional viewer whose membership is required.
        #[oai(example = "docs::alice_opt")]
        uid: Query<Option<Id>>,
        /// Wait until the read models include this event-log sequence.
        min_event_seq: Query<Option<u64>>,
    ) -> Result<Json<ChannelInfo>, Failure<ChannelErrors>> {
        let tenant = auth.caller().tenant().clone();
        let channel_id = parse_channel_id(&channel_id.0)?;
        let viewer = optional_uid(auth.caller(), uid.0.as_deref())?;
        if let Some(v) = &viewer {
            super::count_read(&self.state, req, &tenant, v)?;
        }
        self.state.consistent(&READS, min_event_seq.0).await?;

        let g = live_group(&self.state, &tenant, &channel_id, viewer.as_ref()).await?;
        Ok(Json(ChannelInfo {
            channel_id: channel_id.to_string(),
            channel_type: 2,
            name: g.name,
            member_count: u32::try_from(g.member_count).unwrap_or(0),
            last_msg_seq: seq_out(g.last_msg_seq),
            created_at: g.created_at,
            updated_at: g.updated_at,
            muted: g.muted,
            whitelist_only: g.whitelist_only,
        }))
    }

    /// A group's members by uid, with each one's role and mute. Same 404/403 rules as the
    /// channel itself.
    #[oai(
        path = "/v1/channels/:channel_id/members",
        method = "get",
        operation_id = "list_members"
    )]
    // Each argument is one documented parameter of the operation (poem-openapi's shape).
    #[allow(clippy::too_many_arguments)]
    async fn list_members(
        &self,
        req: &poem::Request,
        auth: CallerAuth,
        /// The group's id.
        #[oai(example = "docs::team")]
        channel_id: Path<Id>,
        /// Optional viewer whose membership is required.
        uid: Query<Option<Id>>,
        /// `next_cursor` of the previous page: members with a larger uid follow.
        cursor: Query<Option<String>>,
        /// Page size, 1–1000, default 100.
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
        limit: Query<Option<u64>>,
        /// Wait until the read models include this event-log sequence.
        min_event_seq: Query<Option<u64>>,
    ) -> Result<Json<MemberPage>, Failure<ChannelErrors>> {
        let tenant = auth.caller().tenant().clone();
        let channel_id = parse_channel_id(&channel_id.0)?;
        let viewer = optional_uid(auth.caller(), uid.0.as_deref())?;
        if let Some(v) = &viewer {
            super::count_read(&self.state, req, &tenant, v)?;
        }
        let after = uid_cursor(cursor.0.as_deref())?;
        let limit = parse_limit(limit.0, DEFAULT_MEMBERS, MAX_MEMBERS)?;
        self.state.consistent(&READS, min_event_seq.0).await?;

        live_group(&self.state, &tenant, &channel_id, viewer.as_ref()).await?;
        let (rows, more) = store::channels::members(
            &self.state.pool,
            tenant.as_str(),
            channel_id.as_str(),
            &after,
            limit,
        )
        .await?;
        let next_cursor = if more {
            rows.last().map(|m| m.uid.clone())
        } else {
            None
        };
        let now = platform::now_ms();
        let members = rows
            .into_iter()
            .map(|m| Member {
                uid: m.uid,
                joined_at: m.joined_at,
                role: m.role,
                muted_until: m.muted_until.filter(|t| *t > now),
            })
            .collect();
        Ok(Json(MemberPage {
            members,
            next_cursor,
        }))
    }
}
