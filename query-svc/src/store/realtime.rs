//! Reads behind the live push: the membership snapshot the fan-out hub starts from, a user's
//! channels for `sync`, and catch-up pages of history with each message's `event_seq`.

use super::{client, limit_param, MessageRow, StoreError};
use deadpool_postgres::Pool;
use readmodel::sql::{seq, Seq};

/// The channels projection's checkpoint; read in the same snapshot as [`ALL_MEMBERS`].
const CHANNELS_CHECKPOINT: &str =
    "SELECT last_seq FROM projection_checkpoints WHERE projection = 'channels'";

/// Every member of every live group (disbanded groups have no member rows).
const ALL_MEMBERS: &str = "SELECT tenant, channel_key, uid FROM channel_members";

/// `$2`'s conversations in tenant `$1` with each channel's head and last event.
const USER_CHANNELS: &str = "\
SELECT c.channel_type, c.channel_key, ch.last_msg_seq, ch.last_event_seq
FROM conversations c
JOIN channels ch
  ON ch.tenant = c.tenant AND ch.channel_type = c.channel_type AND ch.channel_key = c.channel_key
WHERE c.tenant = $1 AND c.uid = $2";

/// Ascending page of a channel after `$4`, `$5` rows, with each message's log position.
const AFTER: &str = "\
SELECT message_id::text AS message_id, message_seq, client_msg_no, from_uid, payload, sent_at,
       event_seq
FROM messages
WHERE tenant = $1 AND channel_type = $2 AND channel_key = $3 AND message_seq > $4
ORDER BY message_seq ASC
LIMIT $5";

/// `(message_seq, event_seq)` of the newest `$5` messages at or below `$4`, newest first.
const TAIL: &str = "\
SELECT message_seq, event_seq
FROM messages
WHERE tenant = $1 AND channel_type = $2 AND channel_key = $3 AND message_seq <= $4
ORDER BY message_seq DESC
LIMIT $5";

/// Group memberships as of one checkpoint of the channels projection.
#[derive(Debug, Default)]
pub struct MembershipSnapshot {
    /// The last stream sequence the rows include.
    pub checkpoint: u64,
    /// `(tenant, group id, uid)`.
    pub members: Vec<(String, String, String)>,
}

/// Reads every group membership and the checkpoint they are as of, in one REPEATABLE READ
/// snapshot (the projector writes rows and checkpoint in one transaction).
///
/// # Errors
/// [`StoreError`] when Postgres fails (also before the migrations have run).
pub async fn membership_snapshot(pool: &Pool) -> Result<MembershipSnapshot, StoreError> {
    let mut conn = client(pool).await?;
    let tx = conn
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    // No row yet: the projection has applied nothing.
    let checkpoint = tx
        .query_opt(CHANNELS_CHECKPOINT, &[])
        .await?
        .map(|r| seq(&r, 0))
        .transpose()?
        .unwrap_or(0);
    let members = tx
        .query(ALL_MEMBERS, &[])
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect::<Result<Vec<_>, tokio_postgres::Error>>()?;
    tx.commit().await?;
    Ok(MembershipSnapshot {
        checkpoint,
        members,
    })
}

/// One of a user's channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserChannel {
    /// 1 personal, 2 group.
    pub channel_type: i16,
    /// The group id, or `"<low> <high>"`.
    pub channel_key: String,
    /// The channel's last `message_seq` (0 without messages).
    pub last_msg_seq: u64,
    /// The last stream sequence that touched the channel.
    pub last_event_seq: u64,
}

/// The channels `uid` is in (its conversations).
///
/// # Errors
/// [`StoreError`] when Postgres fails.
pub async fn user_channels(
    pool: &Pool,
    tenant: &str,
    uid: &str,
) -> Result<Vec<UserChannel>, StoreError> {
    let client = client(pool).await?;
    let stmt = client.prepare_cached(USER_CHANNELS).await?;
    client
        .query(&stmt, &[&tenant, &uid])
        .await?
        .iter()
        .map(|r| {
            Ok(UserChannel {
                channel_type: r.try_get(0)?,
                channel_key: r.try_get(1)?,
                last_msg_seq: seq(r, 2)?,
                last_event_seq: seq(r, 3)?,
            })
        })
        .collect()
}

/// Up to `limit` messages of a channel after `after_seq`, ascending, each with its
/// `event_seq` (an `after_seq` beyond `int8` is clamped: nothing lies there).
///
/// # Errors
/// [`StoreError`] when Postgres fails.
pub async fn after(
    pool: &Pool,
    tenant: &str,
    channel_type: i16,
    channel_key: &str,
    after_seq: u64,
    limit: usize,
) -> Result<Vec<(MessageRow, u64)>, StoreError> {
    let client = client(pool).await?;
    let stmt = client.prepare_cached(AFTER).await?;
    client
        .query(
            &stmt,
            &[
                &tenant,
                &channel_type,
                &channel_key,
                &Seq(after_seq.min(readmodel::sql::MAX)),
                &limit_param(limit),
            ],
        )
        .await?
        .iter()
        .map(|r| Ok((MessageRow::from_row(r)?, seq(r, "event_seq")?)))
        .collect()
}

/// The last `message_seq` of a channel whose event is at or before `event_seq` (0 if none):
/// the cursor from which "everything after `event_seq`" starts. Walks back from `head` in
/// windows, so the cost grows with the messages after `event_seq`, not with the channel.
///
/// # Errors
/// [`StoreError`] when Postgres fails.
pub async fn seq_at_event(
    pool: &Pool,
    tenant: &str,
    channel_type: i16,
    channel_key: &str,
    head: u64,
    event_seq: u64,
) -> Result<u64, StoreError> {
    const WINDOW: usize = 512;
    let client = client(pool).await?;
    let stmt = client.prepare_cached(TAIL).await?;
    let mut hi = head;
    loop {
        let rows = client
            .query(
                &stmt,
                &[
                    &tenant,
                    &channel_type,
                    &channel_key,
                    &Seq(hi),
                    &limit_param(WINDOW),
                ],
            )
            .await?;
        for r in &rows {
            let (message_seq, ev) = (seq(r, 0)?, seq(r, 1)?);
            if ev <= event_seq {
                return Ok(message_seq);
            }
            hi = message_seq.saturating_sub(1);
        }
        if rows.len() < WINDOW {
            return Ok(0);
        }
    }
}
