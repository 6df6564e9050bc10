//! Executes the moderation steps of a channels plan ([`crate::core::moderation`]) in SQL.

use crate::core::moderation::{Block, Change};
use deadpool_postgres::Transaction;

type Result<T> = std::result::Result<T, tokio_postgres::Error>;

const SET_MEMBER: &str = "UPDATE channel_members SET role = $4, muted_until = $5 \
     WHERE tenant = $1 AND channel_key = $2 AND uid = $3";

const SET_CHANNEL: &str = "UPDATE channels SET muted = $3, whitelist_only = $4 \
     WHERE tenant = $1 AND channel_type = 2 AND channel_key = $2";

const REMOVE_MEMBER: &str =
    "DELETE FROM channel_members WHERE tenant = $1 AND channel_key = $2 AND uid = $3";

const BAN: &str = "INSERT INTO channel_bans (tenant, channel_key, uid, until, banned_at, by_uid) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant, channel_key, uid) DO UPDATE SET \
       until = EXCLUDED.until, banned_at = EXCLUDED.banned_at, by_uid = EXCLUDED.by_uid";

const UNBAN: &str = "DELETE FROM channel_bans WHERE tenant = $1 AND channel_key = $2 AND uid = $3";

const LIST_ADD: &str = "INSERT INTO channel_send_lists (tenant, channel_key, list, uid, added_at) \
     SELECT $1, $2, $3, u, $5 FROM unnest($4::text[]) AS u ON CONFLICT DO NOTHING";

const LIST_REMOVE: &str = "DELETE FROM channel_send_lists \
     WHERE tenant = $1 AND channel_key = $2 AND list = $3 AND uid = ANY($4::text[])";

const BLOCK: &str = "INSERT INTO user_blocks (tenant, uid, blocked_uid, blocked_at) \
     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";

const UNBLOCK: &str = "DELETE FROM user_blocks WHERE tenant = $1 AND uid = $2 AND blocked_uid = $3";

const TOUCH_PERSONAL: &str = "UPDATE channels SET last_event_seq = GREATEST(last_event_seq, $3) \
     WHERE tenant = $1 AND channel_type = 1 AND channel_key = $2";

/// The owner's role, right after a group's members are inserted.
pub const SET_OWNER: &str = "UPDATE channel_members SET role = 'owner' \
     WHERE tenant = $1 AND channel_key = $2 AND uid = $3";

/// Applies one group change (the caller touches the group row after it).
///
/// # Errors
/// Database errors.
pub async fn apply_change(
    tx: &Transaction<'_>,
    tenant: &str,
    channel_key: &str,
    change: &Change,
    at: i64,
) -> Result<()> {
    match change {
        Change::Member {
            uid,
            role,
            muted_until,
        } => {
            tx.execute(SET_MEMBER, &[&tenant, &channel_key, uid, role, muted_until])
                .await?;
        }
        Change::Channel {
            muted,
            whitelist_only,
        } => {
            tx.execute(SET_CHANNEL, &[&tenant, &channel_key, muted, whitelist_only])
                .await?;
        }
        Change::Banned { uid, until, by } => {
            tx.execute(REMOVE_MEMBER, &[&tenant, &channel_key, uid])
                .await?;
            tx.execute(BAN, &[&tenant, &channel_key, uid, until, &at, by])
                .await?;
        }
        Change::Unbanned { uid } => {
            tx.execute(UNBAN, &[&tenant, &channel_key, uid]).await?;
        }
        Change::List {
            list,
            added,
            removed,
        } => {
            if !added.is_empty() {
                tx.execute(LIST_ADD, &[&tenant, &channel_key, list, added, &at])
                    .await?;
            }
            if !removed.is_empty() {
                tx.execute(LIST_REMOVE, &[&tenant, &channel_key, list, removed])
                    .await?;
            }
        }
    }
    Ok(())
}

/// Applies a block or unblock, and moves the personal row's `last_event_seq` if it exists.
///
/// # Errors
/// Database errors.
pub async fn apply_block(tx: &Transaction<'_>, b: &Block) -> Result<()> {
    if b.block {
        tx.execute(BLOCK, &[&b.tenant, &b.uid, &b.blocked_uid, &b.at])
            .await?;
    } else {
        tx.execute(UNBLOCK, &[&b.tenant, &b.uid, &b.blocked_uid])
            .await?;
    }
    tx.execute(TOUCH_PERSONAL, &[&b.tenant, &b.channel_key, &b.event_seq])
        .await?;
    Ok(())
}
