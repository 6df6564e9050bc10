//! What the command service reads from the `channels` projection: a channel's state as of its
//! last applied event (the snapshot its state is folded from), and idempotency keys.
//!
//! Both queries read the `public` views, so they follow the serving version through rebuilds.

use crate::channel_columns;
use deadpool_postgres::Client;
use events::{ChannelKey, TenantId};

/// The channel's row, members with their roles and mutes, bans and send lists (groups),
/// blocks between the two users (personal channels: `$5`, `$6`), and whether the channels
/// projection holds an open parked event of the channel's subject (`$4`): such a snapshot
/// lacks that event's effect.
const CHANNEL: &str = "SELECT c.disbanded, c.last_msg_seq, c.last_event_seq, c.muted, c.whitelist_only, \
       c.legacy_roles, \
       coalesce(mm.uids, '{}'), coalesce(mm.roles, '{}'), coalesce(mm.muted, '{}'), \
       coalesce(bb.uids, '{}'), coalesce(bb.untils, '{}'), \
       coalesce(ll.lists, '{}'), coalesce(ll.uids, '{}'), \
       coalesce(ub.uids, '{}'), coalesce(ub.blocked, '{}'), \
       EXISTS (SELECT 1 FROM parked_events p WHERE p.projection = 'channels' AND p.subject = $4 \
               AND p.state IN ('parked', 'retry')) AS parked \
     FROM channels c \
     LEFT JOIN LATERAL (SELECT array_agg(m.uid) AS uids, array_agg(m.role) AS roles, \
         array_agg(m.muted_until) AS muted FROM channel_members m \
         WHERE m.tenant = c.tenant AND m.channel_key = c.channel_key AND c.channel_type = 2) mm ON true \
     LEFT JOIN LATERAL (SELECT array_agg(b.uid) AS uids, array_agg(b.until) AS untils \
         FROM channel_bans b \
         WHERE b.tenant = c.tenant AND b.channel_key = c.channel_key AND c.channel_type = 2) bb ON true \
     LEFT JOIN LATERAL (SELECT array_agg(l.list) AS lists, array_agg(l.uid) AS uids \
         FROM channel_send_lists l \
         WHERE l.tenant = c.tenant AND l.channel_key = c.channel_key AND c.channel_type = 2) ll ON true \
     LEFT JOIN LATERAL (SELECT array_agg(u.uid) AS uids, array_agg(u.blocked_uid) AS blocked \
         FROM user_blocks u WHERE c.channel_type = 1 AND u.tenant = c.tenant \
           AND ((u.uid = $5 AND u.blocked_uid = $6) OR (u.uid = $6 AND u.blocked_uid = $5))) ub ON true \
     WHERE c.tenant = $1 AND c.channel_type = $2 AND c.channel_key = $3";

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
    /// The role of each of `members` (`owner`, `admin`, `member`), in the same order.
    pub roles: Vec<String>,
    /// The mute end of each of `members`, ms, in the same order.
    pub muted_until: Vec<Option<i64>>,
    /// Channel-wide mute.
    pub muted: bool,
    /// Whitelist mode.
    pub whitelist_only: bool,
    /// Banned uids and when each ban ends (ms; `None`: until unbanned).
    pub bans: Vec<(String, Option<i64>)>,
    /// Send-list entries: `(list, uid)` with list `blacklist` or `whitelist`.
    pub send_lists: Vec<(String, String)>,
    /// Personal channels: `(blocker, blocked)` between the two users.
    pub blocks: Vec<(String, String)>,
    /// The row predates roles (migration 5) and lacks its owner: fold the channel from the
    /// log instead.
    pub legacy_roles: bool,
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
    let (low, high) = match key {
        ChannelKey::Personal { low, high } => (low.as_str(), high.as_str()),
        ChannelKey::Group { .. } => ("", ""),
    };
    let stmt = client.prepare_cached(CHANNEL).await?;
    let Some(r) = client
        .query_opt(&stmt, &[&tenant.as_str(), &ct, &k, &subject, &low, &high])
        .await?
    else {
        return Ok(None);
    };
    let zip = |a: Vec<String>, b: Vec<String>| a.into_iter().zip(b).collect::<Vec<_>>();
    let ban_uids: Vec<String> = r.try_get(9)?;
    let ban_untils: Vec<Option<i64>> = r.try_get(10)?;
    Ok(Some(ChannelSnapshot {
        disbanded: r.try_get(0)?,
        last_msg_seq: crate::sql::seq(&r, 1)?,
        last_event_seq: crate::sql::seq(&r, 2)?,
        muted: r.try_get(3)?,
        whitelist_only: r.try_get(4)?,
        legacy_roles: r.try_get(5)?,
        members: r.try_get(6)?,
        roles: r.try_get(7)?,
        muted_until: r.try_get(8)?,
        bans: ban_uids.into_iter().zip(ban_untils).collect(),
        send_lists: zip(r.try_get(11)?, r.try_get(12)?),
        blocks: zip(r.try_get(13)?, r.try_get(14)?),
        parked: r.try_get(15)?,
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
