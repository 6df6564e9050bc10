//! `GET /v1/users/{uid}/conversations`: a user's conversations, newest first. Reads the
//! `conversations` and `messages` projections.

use super::docs::{self, ConversationErrors};
use super::{parse_limit, seq_out, ApiTags, AppState, Message};
use crate::consistency::Projection;
use crate::paging::ConversationCursor;
use crate::store;
use crate::store::conversations::ConversationRow;
use platform::auth::CallerAuth;
use platform::error::{ApiError, Failure};
use platform::http::SerdeJson;
use platform::params::Id;
use poem_openapi::param::{Path, Query};
use poem_openapi::{Object, OpenApi};
use std::sync::Arc;

const READS: [Projection; 2] = [Projection::Conversations, Projection::Messages];
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;

/// One conversation of a user.
#[derive(Debug, Object, serde::Serialize)]
pub struct Conversation {
    /// The channel as the user sees it: the group id, or the peer's uid for personal.
    pub channel_id: String,
    /// 1 personal, 2 group.
    pub channel_type: u8,
    /// Sequence of the channel's newest message (0 when none).
    pub last_msg_seq: u64,
    /// Sequence of the newest message the user has read.
    pub read_seq: u64,
    /// `max(0, last_msg_seq - read_seq)`.
    pub unread: u64,
    /// The newest message, or null when there is none (or the messages projection lacks it).
    #[oai(nullable)]
    pub last_message: Option<Message>,
    /// When the conversation last changed, ms since the Unix epoch.
    pub updated_at: i64,
}

impl Conversation {
    fn from_row(row: ConversationRow) -> Self {
        let channel_type = u8::try_from(row.channel_type).unwrap_or(0);
        let last_msg_seq = seq_out(row.last_msg_seq);
        let read_seq = seq_out(row.read_seq);
        Self {
            last_message: row
                .last_message
                .map(|m| Message::from_row(m, row.channel_id.clone(), channel_type)),
            channel_id: row.channel_id,
            channel_type,
            last_msg_seq,
            read_seq,
            unread: last_msg_seq.saturating_sub(read_seq),
            updated_at: row.updated_at,
        }
    }
}

/// A page of conversations.
#[derive(Debug, Object, serde::Serialize)]
pub struct ConversationPage {
    /// Newest first (`updated_at` descending).
    pub conversations: Vec<Conversation>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

/// Conversation lists.
pub struct ConversationsApi {
    /// Shared state.
    pub state: Arc<AppState>,
}

#[OpenApi(tag = "ApiTags::Conversations")]
impl ConversationsApi {
    /// The conversations of `uid`, most recently updated first, with unread counts and each
    /// last message. Page with the opaque `next_cursor`.
    #[oai(
        path = "/v1/users/:uid/conversations",
        method = "get",
        operation_id = "list_conversations"
    )]
    async fn list(
        &self,
        req: &poem::Request,
        auth: CallerAuth,
        /// The user.
        #[oai(example = "docs::alice")]
        uid: Path<Id>,
        /// Page size, 1–100, default 20.
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u64>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Wait until the read models include this event-log sequence.
        min_event_seq: Query<Option<u64>>,
    ) -> Result<SerdeJson<ConversationPage>, Failure<ConversationErrors>> {
        let tenant = auth.caller().tenant().clone();
        let uid = auth.caller().viewer("uid", Some(&uid.0))?;
        super::count_read(&self.state, req, &tenant, &uid)?;
        let limit = parse_limit(limit.0, DEFAULT_LIMIT, MAX_LIMIT)?;
        let cursor = cursor
            .0
            .as_deref()
            .map(ConversationCursor::decode)
            .transpose()
            .map_err(|_| ApiError::invalid_cursor())?;
        self.state.consistent(&READS, min_event_seq.0).await?;

        let (rows, more) = store::conversations::list(
            &self.state.pool,
            tenant.as_str(),
            uid.as_str(),
            cursor.as_ref(),
            limit,
        )
        .await?;
        let next_cursor = if more {
            rows.last().map(|r| r.cursor().encode())
        } else {
            None
        };
        let conversations = rows.into_iter().map(Conversation::from_row).collect();
        Ok(SerdeJson(ConversationPage {
            conversations,
            next_cursor,
        }))
    }
}
