//! `GET /v1/channels/{channel_id}/bans`, `…/blacklist`, `…/whitelist` and
//! `GET /v1/users/{uid}/blocks`: moderation state, read from the `channels` projection
//! (docs/moderation.md). Roles and mutes are in `GET /v1/channels/{channel_id}/members`.

use super::channels::{live_group, optional_uid, uid_cursor};
use super::docs::{self, BlockListErrors, ChannelErrors};
use super::{parse_channel_id, parse_limit, ApiTags, AppState};
use crate::consistency::Projection;
use crate::store;
use crate::store::moderation::Of;
use platform::auth::CallerAuth;
use platform::error::{ApiError, Failure};
use platform::params::Id;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use std::sync::Arc;

const READS: [Projection; 1] = [Projection::Channels];
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// A ban in force.
#[derive(Debug, Object)]
pub struct Ban {
    /// The banned user.
    pub uid: String,
    /// When it was banned, ms since the Unix epoch.
    pub banned_at: i64,
    /// When the ban ends, ms since the Unix epoch; null: until unbanned.
    #[oai(nullable)]
    pub until: Option<i64>,
    /// The member who banned; null for an operator call.
    #[oai(nullable)]
    pub by_uid: Option<String>,
}

/// A page of bans, by uid.
#[derive(Debug, Object)]
pub struct BanPage {
    /// Bans in force, in ascending uid order.
    pub bans: Vec<Ban>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

/// A uid on a list (a send list, or a user's blocks).
#[derive(Debug, Object)]
pub struct Listed {
    /// The uid.
    pub uid: String,
    /// When it was listed (or blocked), ms since the Unix epoch.
    pub added_at: i64,
}

/// A page of listed uids, by uid.
#[derive(Debug, Object)]
pub struct ListedPage {
    /// Entries in ascending uid order.
    pub uids: Vec<Listed>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

/// Moderation reads.
pub struct ModerationApi {
    /// Shared state.
    pub state: Arc<AppState>,
}

impl ModerationApi {
    /// A group's page of `of`, after the group and viewer checks of `GET …/members`.
    #[allow(clippy::too_many_arguments)] // the operation's parameters, passed through
    async fn group_page(
        &self,
        req: &poem::Request,
        auth: &CallerAuth,
        channel_id: &str,
        list: Option<&str>,
        uid: Option<&str>,
        cursor: Option<&str>,
        limit: Option<u64>,
        min_event_seq: Option<u64>,
    ) -> Result<(Vec<store::moderation::EntryRow>, Option<String>), ApiError> {
        let tenant = auth.caller().tenant().clone();
        let channel_id = parse_channel_id(channel_id)?;
        let viewer = optional_uid(auth.caller(), uid)?;
        if let Some(v) = &viewer {
            super::count_read(&self.state, req, &tenant, v)?;
        }
        let after = uid_cursor(cursor)?;
        let limit = parse_limit(limit, DEFAULT_LIMIT, MAX_LIMIT)?;
        self.state.consistent(&READS, min_event_seq).await?;
        live_group(&self.state, &tenant, &channel_id, viewer.as_ref()).await?;
        let of = match list {
            None => Of::Bans {
                channel_id: channel_id.as_str(),
                now: platform::now_ms(),
            },
            Some(list) => Of::List {
                channel_id: channel_id.as_str(),
                list,
            },
        };
        let (rows, more) =
            store::moderation::page(&self.state.pool, tenant.as_str(), of, &after, limit).await?;
        let next = if more {
            rows.last().map(|r| r.uid.clone())
        } else {
            None
        };
        Ok((rows, next))
    }
}

fn listed(rows: Vec<store::moderation::EntryRow>, next_cursor: Option<String>) -> ListedPage {
    ListedPage {
        uids: rows
            .into_iter()
            .map(|r| Listed {
                uid: r.uid,
                added_at: r.at,
            })
            .collect(),
        next_cursor,
    }
}

#[OpenApi(tag = "ApiTags::Channels")]
impl ModerationApi {
    /// A group's bans in force, by uid. Same 404/403 rules as the channel itself.
    #[oai(
        path = "/v1/channels/:channel_id/bans",
        method = "get",
        operation_id = "list_bans"
    )]
    #[allow(clippy::too_many_arguments)] // each argument is one documented parameter
    async fn bans(
        &self,
        req: &poem::Request,
        auth: CallerAuth,
        /// The group's id.
        #[oai(example = "docs::team")]
        channel_id: Path<Id>,
        /// Optional viewer whose membership is required.
        uid: Query<Option<Id>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Page size, 1–1000, default 100.
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
        limit: Query<Option<u64>>,
        /// Wait until the read models include this event-log sequence.
        min_event_seq: Query<Option<u64>>,
    ) -> Result<Json<BanPage>, Failure<ChannelErrors>> {
        let (rows, next_cursor) = self
            .group_page(
                req,
                &auth,
                &channel_id.0,
                None,
                uid.0.as_deref(),
                cursor.0.as_deref(),
                limit.0,
                min_event_seq.0,
            )
            .await?;
        let bans = rows
            .into_iter()
            .map(|r| Ban {
                uid: r.uid,
                banned_at: r.at,
                until: r.until,
                by_uid: r.by,
            })
            .collect();
        Ok(Json(BanPage { bans, next_cursor }))
    }

    /// A group's blacklist (uids that may not send), by uid.
    #[oai(
        path = "/v1/channels/:channel_id/blacklist",
        method = "get",
        operation_id = "list_blacklist"
    )]
    #[allow(clippy::too_many_arguments)] // each argument is one documented parameter
    async fn blacklist(
        &self,
        req: &poem::Request,
        auth: CallerAuth,
        /// The group's id.
        #[oai(example = "docs::team")]
        channel_id: Path<Id>,
        /// Optional viewer whose membership is required.
        uid: Query<Option<Id>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Page size, 1–1000, default 100.
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
        limit: Query<Option<u64>>,
        /// Wait until the read models include this event-log sequence.
        min_event_seq: Query<Option<u64>>,
    ) -> Result<Json<ListedPage>, Failure<ChannelErrors>> {
        let (rows, next) = self
            .group_page(
                req,
                &auth,
                &channel_id.0,
                Some("blacklist"),
                uid.0.as_deref(),
                cursor.0.as_deref(),
                limit.0,
                min_event_seq.0,
            )
            .await?;
        Ok(Json(listed(rows, next)))
    }

    /// A group's whitelist (with `whitelist_only`, the uids that may send besides owners and
    /// admins), by uid.
    #[oai(
        path = "/v1/channels/:channel_id/whitelist",
        method = "get",
        operation_id = "list_whitelist"
    )]
    #[allow(clippy::too_many_arguments)] // each argument is one documented parameter
    async fn whitelist(
        &self,
        req: &poem::Request,
        auth: CallerAuth,
        /// The group's id.
        #[oai(example = "docs::team")]
        channel_id: Path<Id>,
        /// Optional viewer whose membership is required.
        uid: Query<Option<Id>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Page size, 1–1000, default 100.
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
        limit: Query<Option<u64>>,
        /// Wait until the read models include this event-log sequence.
        min_event_seq: Query<Option<u64>>,
    ) -> Result<Json<ListedPage>, Failure<ChannelErrors>> {
        let (rows, next) = self
            .group_page(
                req,
                &auth,
                &channel_id.0,
                Some("whitelist"),
                uid.0.as_deref(),
                cursor.0.as_deref(),
                limit.0,
                min_event_seq.0,
            )
            .await?;
        Ok(Json(listed(rows, next)))
    }

    /// The users `uid` blocked, by uid. A user token reads its own blocks only.
    #[oai(
        path = "/v1/users/:uid/blocks",
        method = "get",
        operation_id = "list_blocks"
    )]
    async fn blocks(
        &self,
        req: &poem::Request,
        auth: CallerAuth,
        /// The user.
        #[oai(example = "docs::alice")]
        uid: Path<Id>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Page size, 1–1000, default 100.
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
        limit: Query<Option<u64>>,
        /// Wait until the read models include this event-log sequence.
        min_event_seq: Query<Option<u64>>,
    ) -> Result<Json<ListedPage>, Failure<BlockListErrors>> {
        let tenant = auth.caller().tenant().clone();
        let uid = auth.caller().viewer("uid", Some(&uid.0))?;
        super::count_read(&self.state, req, &tenant, &uid)?;
        let after = uid_cursor(cursor.0.as_deref())?;
        let limit = parse_limit(limit.0, DEFAULT_LIMIT, MAX_LIMIT)?;
        self.state.consistent(&READS, min_event_seq.0).await?;
        let of = Of::Blocks { uid: uid.as_str() };
        let (rows, more) =
            store::moderation::page(&self.state.pool, tenant.as_str(), of, &after, limit).await?;
        let next = if more {
            rows.last().map(|r| r.uid.clone())
        } else {
            None
        };
        Ok(Json(listed(rows, next)))
    }
}
