//! `GET /v1/channels/{channel_type}/{channel_id}/messages` (history) and
//! `GET /v1/messages/{message_id}`. Both read the `messages` and `channels` projections.

use super::docs::{self, MessageErrors};
use super::{parse_channel_id, parse_channel_type, parse_limit, ApiTags, AppState, Message};
use crate::consistency::Projection;
use crate::paging::HistoryPage;
use crate::store;
use events::{ChannelKey, ChannelType};
use platform::auth::CallerAuth;
use platform::error::{ApiError, Failure};
use platform::http::SerdeJson;
use platform::params::Id;
use poem_openapi::param::{Path, Query};
use poem_openapi::{Object, OpenApi};
use std::sync::Arc;

/// Projections behind every operation here.
const READS: [Projection; 2] = [Projection::Messages, Projection::Channels];

/// Default and largest history page.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 100;

/// A page of history, ascending by `message_seq`.
#[derive(Debug, Object, serde::Serialize)]
pub struct MessagePage {
    /// The messages, oldest first.
    pub messages: Vec<Message>,
    /// Whether more messages exist in the page's direction: newer ones when `after_seq` was
    /// given, older ones otherwise.
    pub more: bool,
}

/// History and single messages.
pub struct MessagesApi {
    /// Shared state.
    pub state: Arc<AppState>,
}

#[OpenApi(tag = "ApiTags::Messages")]
impl MessagesApi {
    /// A page of a channel's history as `uid` sees it.
    ///
    /// `after_seq` given: the messages after it (and before `before_seq`, if given), oldest
    /// first. Only `before_seq`: the newest messages before it. Neither: the newest page.
    /// For a personal channel (`channel_type` 1) `channel_id` is the peer's uid; for a group
    /// (2) the viewer must be a member (403 `NOT_A_MEMBER`); a missing or disbanded group is
    /// 404 `CHANNEL_NOT_FOUND`.
    #[oai(
        path = "/v1/channels/:channel_type/:channel_id/messages",
        method = "get",
        operation_id = "history"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn history(
        &self,
        req: &poem::Request,
        auth: CallerAuth,
        /// 1 personal, 2 group.
        #[oai(
            example = "docs::personal",
            validator(minimum(value = "1"), maximum(value = "2"))
        )]
        channel_type: Path<u64>,
        /// The group id, or the peer's uid for a personal channel.
        #[oai(example = "docs::bob")]
        channel_id: Path<Id>,
        /// The viewer: required with an API key; with a user token it is the token's uid
        /// (another uid is 403 `FORBIDDEN_UID`).
        #[oai(example = "docs::alice_opt")]
        uid: Query<Option<Id>>,
        /// Only messages with a larger `message_seq`.
        after_seq: Query<Option<u64>>,
        /// Only messages with a smaller `message_seq`.
        before_seq: Query<Option<u64>>,
        /// Page size, 1–100, default 50.
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u64>>,
        /// Wait (up to the configured limit) until the read models include this event-log
        /// sequence; 503 `PROJECTION_LAGGING` if they do not in time.
        min_event_seq: Query<Option<u64>>,
    ) -> Result<SerdeJson<MessagePage>, Failure<MessageErrors>> {
        let tenant = auth.caller().tenant().clone();
        let channel_type = parse_channel_type(channel_type.0)?;
        let channel_id = parse_channel_id(&channel_id.0)?;
        let viewer = auth.caller().viewer("uid", uid.0.as_deref())?;
        super::count_read(&self.state, req, auth.caller().tenant(), &viewer)?;
        let limit = parse_limit(limit.0, DEFAULT_LIMIT, MAX_LIMIT)?;
        let page = HistoryPage::new(after_seq.0, before_seq.0);
        self.state.consistent(&READS, min_event_seq.0).await?;

        let pool = &self.state.pool;
        if channel_type == ChannelType::Group {
            match store::channels::group(
                pool,
                tenant.as_str(),
                channel_id.as_str(),
                Some(viewer.as_str()),
            )
            .await?
            {
                Some(g) if !g.disbanded => {
                    if !g.viewer_is_member {
                        return Err(not_a_member().into());
                    }
                }
                _ => return Err(channel_not_found().into()),
            }
        }
        let key = ChannelKey::for_viewer(&viewer, channel_type, &channel_id);
        let (rows, more) = store::messages::history(
            pool,
            tenant.as_str(),
            i16::from(channel_type.as_u8()),
            &key.storage_key(),
            page,
            limit,
        )
        .await?;
        let seen_as = key.channel_id_for(viewer.as_str());
        let messages = rows
            .into_iter()
            .map(|r| Message::from_row(r, seen_as.clone(), channel_type.as_u8()))
            .collect();
        Ok(SerdeJson(MessagePage { messages, more }))
    }

    /// One message by id, if `uid` may see it: a member of its group, or one of the two
    /// users of its personal channel (otherwise 404 `MESSAGE_NOT_FOUND`, as if it did not
    /// exist; a group non-member gets 403 `NOT_A_MEMBER`).
    #[oai(
        path = "/v1/messages/:message_id",
        method = "get",
        operation_id = "get_message"
    )]
    async fn get_message(
        &self,
        req: &poem::Request,
        auth: CallerAuth,
        /// The message's UUID (`message_id` of the send's answer).
        #[oai(example = "docs::message_id")]
        message_id: Path<String>,
        /// The viewer: required with an API key; with a user token it is the token's uid.
        #[oai(example = "docs::alice_opt")]
        uid: Query<Option<Id>>,
        /// Wait until the read models include this event-log sequence.
        min_event_seq: Query<Option<u64>>,
    ) -> Result<SerdeJson<Message>, Failure<MessageErrors>> {
        let tenant = auth.caller().tenant().clone();
        let id = uuid::Uuid::parse_str(message_id.0.trim())
            .map_err(|_| ApiError::validation("message_id", "message_id must be a UUID"))?;
        let viewer = auth.caller().viewer("uid", uid.0.as_deref())?;
        super::count_read(&self.state, req, auth.caller().tenant(), &viewer)?;
        self.state.consistent(&READS, min_event_seq.0).await?;

        let found = store::messages::by_id(
            &self.state.pool,
            tenant.as_str(),
            &id.hyphenated().to_string(),
            viewer.as_str(),
        )
        .await?
        .ok_or_else(message_not_found)?;
        let channel_type = u8::try_from(found.channel_type)
            .map_err(|_| format!("channel_type {}", found.channel_type))
            .and_then(ChannelType::try_from)
            .map_err(|e| ApiError::internal("messages row", e))?;
        let key = ChannelKey::from_storage(channel_type, &found.channel_key)
            .map_err(|e| ApiError::internal("messages row channel_key", e))?;
        match channel_type {
            ChannelType::Group if !found.viewer_is_member => return Err(not_a_member().into()),
            ChannelType::Personal if !key.is_pair_member(viewer.as_str()) => {
                return Err(message_not_found().into())
            }
            _ => {}
        }
        let seen_as = key.channel_id_for(viewer.as_str());
        Ok(SerdeJson(Message::from_row(
            found.message,
            seen_as,
            channel_type.as_u8(),
        )))
    }
}

/// 404 `CHANNEL_NOT_FOUND`.
pub fn channel_not_found() -> ApiError {
    ApiError::not_found("CHANNEL_NOT_FOUND", "no such channel")
}

/// 403 `NOT_A_MEMBER`.
pub fn not_a_member() -> ApiError {
    ApiError::forbidden("NOT_A_MEMBER", "the viewer is not a member of this channel")
}

fn message_not_found() -> ApiError {
    ApiError::not_found("MESSAGE_NOT_FOUND", "no such message")
}
