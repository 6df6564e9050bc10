//! A user's conversation list, newest first, with each conversation's last message.
//!
//! Order: `updated_at DESC, channel_type DESC, channel_key DESC`. Personal rows carry their
//! channel's head (`last_msg_seq`, `updated_at`) and are read in order from the partial index
//! `conversations_recent`; group rows take the head from `conversation_channels` (the
//! projector fans group messages out on read, see migration V2). Each side yields its first
//! `limit` rows, the union is cut to `limit`, and only then is each row's last message joined.
//! Keyset: the next page is the rows whose `(updated_at, channel_type, channel_key)` sorts
//! below the cursor's.

use super::{client, limit_param, MessageRow, StoreError};
use crate::paging::ConversationCursor;
use deadpool_postgres::Pool;
use tokio_postgres::Row;

/// The page of `$2`'s conversations with `limit` = the given parameter, each side filtered by
/// the given extra conditions (`p` personal rows, `g` group rows with head `h`).
macro_rules! conversation_page {
    ($limit:literal, $personal:literal, $group:literal) => {
        concat!(
            "\
SELECT c.channel_type, c.channel_key, c.channel_id, c.last_msg_seq, c.read_seq, c.updated_at,
       lm.message_id, lm.message_seq, lm.client_msg_no, lm.from_uid, lm.payload, lm.sent_at
FROM (
    SELECT * FROM (
        (SELECT p.tenant, p.channel_type, p.channel_key, p.channel_id, p.last_msg_seq,
                p.read_seq, p.updated_at
         FROM conversations p
         WHERE p.tenant = $1 AND p.uid = $2 AND p.channel_type = 1 ",
            $personal,
            "
         ORDER BY p.updated_at DESC, p.channel_key DESC
         LIMIT ",
            $limit,
            ")
        UNION ALL
        (SELECT g.tenant, g.channel_type, g.channel_key, g.channel_id, h.last_msg_seq,
                g.read_seq, h.updated_at
         FROM conversations g
         JOIN conversation_channels h
           ON h.tenant = g.tenant AND h.channel_type = 2 AND h.channel_key = g.channel_key
         WHERE g.tenant = $1 AND g.uid = $2 AND g.channel_type = 2 ",
            $group,
            "
         ORDER BY h.updated_at DESC, g.channel_key DESC
         LIMIT ",
            $limit,
            ")
    ) u
    ORDER BY u.updated_at DESC, u.channel_type DESC, u.channel_key DESC
    LIMIT ",
            $limit,
            "
) c
LEFT JOIN LATERAL (
    SELECT m.message_id::text AS message_id, m.message_seq, m.client_msg_no, m.from_uid,
           m.payload, m.sent_at
    FROM messages m
    WHERE m.tenant = c.tenant AND m.channel_type = c.channel_type
      AND m.channel_key = c.channel_key AND m.message_seq = c.last_msg_seq
) lm ON true
ORDER BY c.updated_at DESC, c.channel_type DESC, c.channel_key DESC"
        )
    };
}

/// First page of `$2`'s conversations (`$1` tenant), `$3` rows.
pub const FIRST_PAGE: &str = conversation_page!("$3", "", "");

/// Page of `$2`'s conversations after the cursor `($3, $4, $5)` = (updated_at, channel_type,
/// channel_key), `$6` rows.
const NEXT_PAGE: &str = conversation_page!(
    "$6",
    "AND p.updated_at <= $3 AND (p.updated_at, p.channel_type, p.channel_key) < ($3, $4, $5)",
    "AND h.updated_at <= $3 AND (h.updated_at, g.channel_type, g.channel_key) < ($3, $4, $5)"
);

/// One row of the list.
#[derive(Debug, Clone)]
pub struct ConversationRow {
    /// 1 personal, 2 group.
    pub channel_type: i16,
    /// The channel's storage key (the cursor's `k`).
    pub channel_key: String,
    /// The channel as this user sees it: the peer's uid for personal.
    pub channel_id: String,
    /// Sequence of the channel's newest message.
    pub last_msg_seq: i64,
    /// Sequence of the newest message this user has read.
    pub read_seq: i64,
    /// ms since the Unix epoch.
    pub updated_at: i64,
    /// The message at `last_msg_seq`, if the messages projection has it.
    pub last_message: Option<MessageRow>,
}

impl ConversationRow {
    fn from_row(row: &Row) -> Result<Self, StoreError> {
        let last_id: Option<String> = row.try_get("message_id")?;
        Ok(Self {
            channel_type: row.try_get("channel_type")?,
            channel_key: row.try_get("channel_key")?,
            channel_id: row.try_get("channel_id")?,
            last_msg_seq: row.try_get("last_msg_seq")?,
            read_seq: row.try_get("read_seq")?,
            updated_at: row.try_get("updated_at")?,
            last_message: match last_id {
                Some(_) => Some(MessageRow::from_row(row)?),
                None => None,
            },
        })
    }

    /// The cursor that continues the list after this row.
    pub fn cursor(&self) -> ConversationCursor {
        ConversationCursor {
            updated_at: self.updated_at,
            channel_type: self.channel_type,
            channel_key: self.channel_key.clone(),
        }
    }
}

/// Up to `limit` conversations of `uid`, newest first, after `cursor` (none: from the newest),
/// and whether more follow.
///
/// # Errors
/// [`StoreError`] when Postgres fails.
pub async fn list(
    pool: &Pool,
    tenant: &str,
    uid: &str,
    cursor: Option<&ConversationCursor>,
    limit: usize,
) -> Result<(Vec<ConversationRow>, bool), StoreError> {
    let client = client(pool).await?;
    let fetch = limit_param(limit.saturating_add(1));
    let rows = match cursor {
        None => {
            let stmt = client.prepare_cached(FIRST_PAGE).await?;
            client.query(&stmt, &[&tenant, &uid, &fetch]).await?
        }
        Some(c) => {
            let stmt = client.prepare_cached(NEXT_PAGE).await?;
            client
                .query(
                    &stmt,
                    &[
                        &tenant,
                        &uid,
                        &c.updated_at,
                        &c.channel_type,
                        &c.channel_key,
                        &fetch,
                    ],
                )
                .await?
        }
    };
    let mut list = rows
        .iter()
        .map(ConversationRow::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let more = list.len() > limit;
    list.truncate(limit);
    Ok((list, more))
}
