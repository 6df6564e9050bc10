//! What the command service reads from the `channels` projection: a channel's state as of its
//! last applied event (the snapshot its state is folded from), and idempotency keys.
//!
//! Both queries read the `public` views, so they follow the serving version through rebuilds.

use crate::channel_columns;
use deadpool_postgres::Client;
use events::{ChannelKey, TenantId};

/// The channel's row and members, and whether the channels projection holds an open parked
/// event of the channel's subject (`$4`): such a snapshot lacks that event's effect.
const CHANNEL: &str = "SELECT disbanded, last_msg_seq, last_event_seq, \
       ARRAY(SELECT uid FROM channel_members m WHERE m.tenant = c.tenant AND m.channel_key = c.channel_key \
             AND c.channel_type = 2) AS members, \
       EXISTS (SELECT 1 FROM parked_events p WHERE p.projection = 'channels' AND p.subject = $4 \
               AND p.state IN ('parked', 'retry')) AS parked \
     FROM channels c WHERE tenant = $1 AND channel_type = $2 AND channel_key = $3";

/// A key's record read in one snapshot with the channel's `last_msg_seq`.
const KEY: &str = "SELECT c.last_msg_seq, k.message_id, k.message_seq, k.payload_sha256, \
       k.sent_at, k.event_seq \
     FROM channels c LEFT JOIN message_keys k ON k.tenant = c.tenant \
       AND k.channel_type = c.channel_type AND k.channel_key = c.channel_key \
       AND k.from_uid = $4 AND k.client_msg_no = $5 \
     WHERE c.tenant = $1 AND c.channel_type = $2 AND c.channel_key = $3";

/// A channel's state as the `channels` projection holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSnapshot {
    /// A disbanded group.
    pub disbanded: bool,
    /// The channel's last `message_seq`.
    pub last_msg_seq: u64,
    /// The last stream sequence applied to the row.
    pub last_event_seq: u64,
    /// A group's members (empty for personal channels).
    pub members: Vec<String>,
    /// The projection parked an event of the channel's subject and has not resolved it: the
    /// row lacks that event's effect.
    pub parked: bool,
}

/// An idempotency key's original message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    /// The message's id.
    pub message_id: uuid::Uuid,
    /// Its seq.
    pub message_seq: u64,
    /// SHA-256 of its payload's base64 text.
    pub payload_sha256: Vec<u8>,
    /// Its acceptance time, ms.
    pub sent_at: i64,
    /// Its stream sequence.
    pub event_seq: u64,
}

/// A key lookup: the channel's `last_msg_seq` in the same snapshot (what the key table
/// covers), and the key's row if the key was used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLookup {
    /// Messages up to this seq have their keys in the table.
    pub covered_msg_seq: u64,
    /// The key's original message, if the key was used.
    pub row: Option<KeyRow>,
}

/// The snapshot of `key` in `tenant` (its events live on `subject`), if the projection has
/// the channel.
///
/// # Errors
/// The query fails (statements are prepared with `prepare_cached` on `client`).
pub async fn channel(
    client: &Client,
    tenant: &TenantId,
    key: &ChannelKey,
    subject: &str,
) -> Result<Option<ChannelSnapshot>, tokio_postgres::Error> {
    let (ct, k) = channel_columns(key);
    let stmt = client.prepare_cached(CHANNEL).await?;
    let Some(r) = client
        .query_opt(&stmt, &[&tenant.as_str(), &ct, &k, &subject])
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(ChannelSnapshot {
        disbanded: r.try_get(0)?,
        last_msg_seq: crate::sql::seq(&r, 1)?,
        last_event_seq: crate::sql::seq(&r, 2)?,
        members: r.try_get(3)?,
        parked: r.try_get(4)?,
    }))
}

/// The key `(from_uid, client_msg_no)` of `key`; `None` when the projection does not have the
/// channel at all.
///
/// # Errors
/// The query fails (statements are prepared with `prepare_cached` on `client`).
pub async fn key(
    client: &Client,
    tenant: &TenantId,
    key: &ChannelKey,
    from_uid: &str,
    client_msg_no: &str,
) -> Result<Option<KeyLookup>, tokio_postgres::Error> {
    let (ct, k) = channel_columns(key);
    let stmt = client.prepare_cached(KEY).await?;
    let Some(r) = client
        .query_opt(
            &stmt,
            &[&tenant.as_str(), &ct, &k, &from_uid, &client_msg_no],
        )
        .await?
    else {
        return Ok(None);
    };
    let row = match r.try_get::<_, Option<uuid::Uuid>>(1)? {
        None => None,
        Some(message_id) => Some(KeyRow {
            message_id,
            message_seq: crate::sql::seq(&r, 2)?,
            payload_sha256: r.try_get(3)?,
            sent_at: r.try_get(4)?,
            event_seq: crate::sql::seq(&r, 5)?,
        }),
    };
    Ok(Some(KeyLookup {
        covered_msg_seq: crate::sql::seq(&r, 0)?,
        row,
    }))
}
