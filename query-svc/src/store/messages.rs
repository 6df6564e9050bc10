//! Channel history (keyset on the primary key `(tenant, channel_type, channel_key,
//! message_seq)`) and single messages by id (unique index `messages_by_id`).

use super::{client, limit_param, MessageRow, StoreError};
use crate::paging::HistoryPage;
use deadpool_postgres::Pool;

/// Ascending page after `$4` and before `$5`, `$6` rows.
const HISTORY_FORWARD: &str = "\
SELECT message_id::text AS message_id, message_seq, client_msg_no, from_uid, payload, sent_at
FROM messages
WHERE tenant = $1 AND channel_type = $2 AND channel_key = $3
  AND message_seq > $4 AND message_seq < $5
ORDER BY message_seq ASC
LIMIT $6";

/// Descending page before `$4`, `$5` rows.
pub const HISTORY_BACKWARD: &str = "\
SELECT message_id::text AS message_id, message_seq, client_msg_no, from_uid, payload, sent_at
FROM messages
WHERE tenant = $1 AND channel_type = $2 AND channel_key = $3
  AND message_seq < $4
ORDER BY message_seq DESC
LIMIT $5";

/// One message by id (`$2`, UUID text), with whether `$3` is a member of its group.
const BY_ID: &str = "\
SELECT m.message_id::text AS message_id, m.message_seq, m.client_msg_no, m.from_uid, m.payload,
       m.sent_at, m.channel_type, m.channel_key,
       (m.channel_type = 2 AND EXISTS (
           SELECT 1 FROM channel_members cm
           WHERE cm.tenant = m.tenant AND cm.channel_key = m.channel_key AND cm.uid = $3
       )) AS is_member
FROM messages m
WHERE m.message_id = $2::text::uuid AND m.tenant = $1";

/// Up to `limit` messages of the channel `(channel_type, channel_key)` for `page`, ascending
/// by `message_seq`, and whether more exist in the page's direction.
///
/// # Errors
/// [`StoreError`] when Postgres fails.
pub async fn history(
    pool: &Pool,
    tenant: &str,
    channel_type: i16,
    channel_key: &str,
    page: HistoryPage,
    limit: usize,
) -> Result<(Vec<MessageRow>, bool), StoreError> {
    let client = client(pool).await?;
    let fetch = limit_param(limit.saturating_add(1));
    let rows = match page {
        HistoryPage::Forward { after, before } => {
            let stmt = client.prepare_cached(HISTORY_FORWARD).await?;
            client
                .query(
                    &stmt,
                    &[
                        &tenant,
                        &channel_type,
                        &channel_key,
                        &after,
                        &before,
                        &fetch,
                    ],
                )
                .await?
        }
        HistoryPage::Backward { before } => {
            let stmt = client.prepare_cached(HISTORY_BACKWARD).await?;
            client
                .query(
                    &stmt,
                    &[&tenant, &channel_type, &channel_key, &before, &fetch],
                )
                .await?
        }
    };
    let rows = rows
        .iter()
        .map(MessageRow::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page.finish(rows, limit))
}

/// A message with the channel it belongs to.
#[derive(Debug, Clone)]
pub struct LocatedMessage {
    /// The message.
    pub message: MessageRow,
    /// `messages.channel_type` (1 personal, 2 group).
    pub channel_type: i16,
    /// `messages.channel_key`: the group id, or `"<low> <high>"`.
    pub channel_key: String,
    /// Whether the viewer is a member of the message's group (always false for personal).
    pub viewer_is_member: bool,
}

/// The message `message_id` (a valid UUID's text) of `tenant`, if it exists, with `viewer`'s
/// group membership.
///
/// # Errors
/// [`StoreError`] when Postgres fails.
pub async fn by_id(
    pool: &Pool,
    tenant: &str,
    message_id: &str,
    viewer: &str,
) -> Result<Option<LocatedMessage>, StoreError> {
    let client = client(pool).await?;
    let stmt = client.prepare_cached(BY_ID).await?;
    let Some(row) = client
        .query_opt(&stmt, &[&tenant, &message_id, &viewer])
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(LocatedMessage {
        message: MessageRow::from_row(&row)?,
        channel_type: row.try_get("channel_type")?,
        channel_key: row.try_get("channel_key")?,
        viewer_is_member: row.try_get("is_member")?,
    }))
}
