//! Moderation reads of the `channels` projection: a group's active bans and send lists, a
//! user's blocks. Each is a page by uid.

use super::{client, limit_param, StoreError};
use deadpool_postgres::Pool;

/// Active bans (`$5` = now, ms) of group `$2`, uid after `$3`, `$4` rows.
const BANS: &str = "SELECT uid, banned_at, until, by_uid FROM channel_bans \
     WHERE tenant = $1 AND channel_key = $2 AND uid > $3 AND (until IS NULL OR until > $5) \
     ORDER BY uid LIMIT $4";

/// Entries of list `$5` of group `$2`, uid after `$3`, `$4` rows.
const LIST: &str = "SELECT uid, added_at, NULL::int8 AS until, NULL::text AS by_uid \
     FROM channel_send_lists WHERE tenant = $1 AND channel_key = $2 AND uid > $3 AND list = $5 \
     ORDER BY uid LIMIT $4";

/// Users `$2` blocked, uid after `$3`, `$4` rows.
const BLOCKS: &str = "SELECT blocked_uid AS uid, blocked_at, NULL::int8 AS until, \
       NULL::text AS by_uid FROM user_blocks WHERE tenant = $1 AND uid = $2 AND blocked_uid > $3 \
     ORDER BY blocked_uid LIMIT $4";

/// One entry of a moderation page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRow {
    /// The banned, listed or blocked uid.
    pub uid: String,
    /// When it was banned, listed or blocked, ms since the Unix epoch.
    pub at: i64,
    /// A ban's end, ms (none: until unbanned; always none for lists and blocks).
    pub until: Option<i64>,
    /// Who banned (none: an operator call, and for lists and blocks).
    pub by: Option<String>,
}

/// What to page through.
#[derive(Debug, Clone, Copy)]
pub enum Of<'a> {
    /// A group's bans still in force at `now` (ms).
    Bans {
        /// The group.
        channel_id: &'a str,
        /// Now, ms.
        now: i64,
    },
    /// A group's `blacklist` or `whitelist`.
    List {
        /// The group.
        channel_id: &'a str,
        /// The list's name.
        list: &'a str,
    },
    /// The users `uid` blocked.
    Blocks {
        /// The blocker.
        uid: &'a str,
    },
}

/// Up to `limit` entries after `after_uid` (`""` for the first page), by uid, and whether
/// more follow.
///
/// # Errors
/// [`StoreError`] when Postgres fails.
pub async fn page(
    pool: &Pool,
    tenant: &str,
    of: Of<'_>,
    after_uid: &str,
    limit: usize,
) -> Result<(Vec<EntryRow>, bool), StoreError> {
    let client = client(pool).await?;
    let fetch = limit_param(limit.saturating_add(1));
    let rows = match of {
        Of::Bans { channel_id, now } => {
            let stmt = client.prepare_cached(BANS).await?;
            client
                .query(&stmt, &[&tenant, &channel_id, &after_uid, &fetch, &now])
                .await?
        }
        Of::List { channel_id, list } => {
            let stmt = client.prepare_cached(LIST).await?;
            client
                .query(&stmt, &[&tenant, &channel_id, &after_uid, &fetch, &list])
                .await?
        }
        Of::Blocks { uid } => {
            let stmt = client.prepare_cached(BLOCKS).await?;
            client
                .query(&stmt, &[&tenant, &uid, &after_uid, &fetch])
                .await?
        }
    };
    let mut out = rows
        .iter()
        .map(|r| {
            Ok(EntryRow {
                uid: r.try_get(0)?,
                at: r.try_get(1)?,
                until: r.try_get(2)?,
                by: r.try_get(3)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let more = out.len() > limit;
    out.truncate(limit);
    Ok((out, more))
}
