//! Group channels: the `channels` row with the viewer's membership, and `channel_members`.

use super::{client, limit_param, StoreError};
use deadpool_postgres::Pool;

/// The group `$2` of tenant `$1`, with whether `$3` (may be NULL) is a member.
const GROUP: &str = "\
SELECT c.name, c.disbanded, c.member_count, c.last_msg_seq, c.created_at, c.updated_at,
       c.muted, c.whitelist_only,
       EXISTS (
           SELECT 1 FROM channel_members cm
           WHERE cm.tenant = c.tenant AND cm.channel_key = c.channel_key AND cm.uid = $3
       ) AS is_member
FROM channels c
WHERE c.tenant = $1 AND c.channel_type = 2 AND c.channel_key = $2";

/// Members of group `$2` with uid after `$3`, by uid, `$4` rows.
const MEMBERS: &str = "\
SELECT uid, joined_at, role, muted_until
FROM channel_members
WHERE tenant = $1 AND channel_key = $2 AND uid > $3
ORDER BY uid ASC
LIMIT $4";

/// A group's row.
#[derive(Debug, Clone)]
pub struct GroupRow {
    /// The group's name, if it has one.
    pub name: Option<String>,
    /// Whether the group was disbanded.
    pub disbanded: bool,
    /// Number of members.
    pub member_count: i32,
    /// Sequence of the group's newest message (0 when none).
    pub last_msg_seq: i64,
    /// ms since the Unix epoch.
    pub created_at: i64,
    /// ms since the Unix epoch.
    pub updated_at: i64,
    /// Whether the viewer asked about is a member (false when none was given).
    pub viewer_is_member: bool,
    /// Channel-wide mute.
    pub muted: bool,
    /// Whitelist mode.
    pub whitelist_only: bool,
}

/// The group `channel_id` of `tenant`, if a row exists (disbanded included), with `viewer`'s
/// membership.
///
/// # Errors
/// [`StoreError`] when Postgres fails.
pub async fn group(
    pool: &Pool,
    tenant: &str,
    channel_id: &str,
    viewer: Option<&str>,
) -> Result<Option<GroupRow>, StoreError> {
    let client = client(pool).await?;
    let stmt = client.prepare_cached(GROUP).await?;
    let Some(row) = client
        .query_opt(&stmt, &[&tenant, &channel_id, &viewer])
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(GroupRow {
        name: row.try_get("name")?,
        disbanded: row.try_get("disbanded")?,
        member_count: row.try_get("member_count")?,
        last_msg_seq: row.try_get("last_msg_seq")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        viewer_is_member: row.try_get("is_member")?,
        muted: row.try_get("muted")?,
        whitelist_only: row.try_get("whitelist_only")?,
    }))
}

/// A member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    /// The member.
    pub uid: String,
    /// When they joined, ms since the Unix epoch.
    pub joined_at: i64,
    /// `owner`, `admin` or `member`.
    pub role: String,
    /// Muted until, ms since the Unix epoch (possibly past).
    pub muted_until: Option<i64>,
}

/// Up to `limit` members of group `channel_id` whose uid sorts after `after_uid` (`""` for the
/// first page), by uid, and whether more follow.
///
/// # Errors
/// [`StoreError`] when Postgres fails.
pub async fn members(
    pool: &Pool,
    tenant: &str,
    channel_id: &str,
    after_uid: &str,
    limit: usize,
) -> Result<(Vec<MemberRow>, bool), StoreError> {
    let client = client(pool).await?;
    let stmt = client.prepare_cached(MEMBERS).await?;
    let fetch = limit_param(limit.saturating_add(1));
    let rows = client
        .query(&stmt, &[&tenant, &channel_id, &after_uid, &fetch])
        .await?;
    let mut members = rows
        .iter()
        .map(|r| {
            Ok(MemberRow {
                uid: r.try_get("uid")?,
                joined_at: r.try_get("joined_at")?,
                role: r.try_get("role")?,
                muted_until: r.try_get("muted_until")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let more = members.len() > limit;
    members.truncate(limit);
    Ok((members, more))
}
