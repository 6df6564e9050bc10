//! Executes plans in SQL. Every statement is set-based (`unnest` of arrays, or binary COPY for
//! message rows), so a batch of thousands of events costs a handful of round trips.

use super::moderation;
use crate::core::{channels, conversations, messages};
use deadpool_postgres::Transaction;
use futures::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

type Result<T> = std::result::Result<T, tokio_postgres::Error>;

const COPY_MESSAGES: &str =
    "COPY messages (tenant, channel_type, channel_key, message_seq, message_id, \
     from_uid, client_msg_no, payload, sent_at, event_seq) FROM STDIN (FORMAT binary)";

/// Inserts message rows with binary COPY.
///
/// # Errors
/// Database errors (a duplicate `(channel, message_seq)` is one: the checkpoint rules out
/// replays, so a duplicate means a corrupt log and must stop the projection).
pub async fn insert_messages(tx: &Transaction<'_>, rows: &[messages::MessageRow]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let sink = tx.copy_in(COPY_MESSAGES).await?;
    let writer = BinaryCopyInWriter::new(
        sink,
        &[
            Type::TEXT,
            Type::INT2,
            Type::TEXT,
            Type::INT8,
            Type::UUID,
            Type::TEXT,
            Type::TEXT,
            Type::BYTEA,
            Type::INT8,
            Type::INT8,
        ],
    );
    pin_mut!(writer);
    for r in rows {
        writer
            .as_mut()
            .write(&[
                &r.tenant,
                &r.channel_type,
                &r.channel_key,
                &r.message_seq,
                &r.message_id,
                &r.from_uid,
                &r.client_msg_no,
                &r.payload,
                &r.sent_at,
                &r.event_seq,
            ])
            .await?;
    }
    writer.finish().await?;
    Ok(())
}

const UPSERT_HEADS: &str = "INSERT INTO channels AS c (tenant, channel_type, channel_key, last_msg_seq, \
     last_message_id, last_event_seq, created_at, updated_at) \
     SELECT t, ct, k, s, m, e, f, u FROM unnest($1::text[], $2::int2[], $3::text[], $4::int8[], $5::uuid[], $6::int8[], $7::int8[], $8::int8[]) \
       AS v(t, ct, k, s, m, e, u, f) \
     ON CONFLICT (tenant, channel_type, channel_key) DO UPDATE SET \
       last_msg_seq = EXCLUDED.last_msg_seq, last_message_id = EXCLUDED.last_message_id, \
       last_event_seq = GREATEST(c.last_event_seq, EXCLUDED.last_event_seq), \
       updated_at = GREATEST(c.updated_at, EXCLUDED.updated_at)";

const INSERT_KEYS: &str = "INSERT INTO message_keys (tenant, channel_type, channel_key, from_uid, client_msg_no, \
     message_id, message_seq, payload_sha256, sent_at, event_seq) \
     SELECT * FROM unnest($1::text[], $2::int2[], $3::text[], $4::text[], $5::text[], $6::uuid[], $7::int8[], \
       $8::bytea[], $9::int8[], $10::int8[]) ON CONFLICT DO NOTHING";

const CREATE_GROUP: &str = "INSERT INTO channels (tenant, channel_type, channel_key, name, last_event_seq, \
     member_count, created_at, updated_at) VALUES ($1, 2, $2, $3, $4, 0, $5, $5) \
     ON CONFLICT (tenant, channel_type, channel_key) DO UPDATE SET name = EXCLUDED.name, \
       disbanded = false, last_event_seq = GREATEST(channels.last_event_seq, EXCLUDED.last_event_seq), \
       updated_at = GREATEST(channels.updated_at, EXCLUDED.updated_at)";

const ADD_MEMBERS: &str = "INSERT INTO channel_members (tenant, channel_key, uid, joined_at) \
     SELECT $1, $2, u, $4 FROM unnest($3::text[]) AS u ON CONFLICT DO NOTHING";

const REMOVE_MEMBER: &str =
    "DELETE FROM channel_members WHERE tenant = $1 AND channel_key = $2 AND uid = $3";

const REMOVE_ALL_MEMBERS: &str =
    "DELETE FROM channel_members WHERE tenant = $1 AND channel_key = $2";

const TOUCH_GROUP: &str = "UPDATE channels SET last_event_seq = GREATEST(last_event_seq, $3), updated_at = GREATEST(updated_at, $4), \
     disbanded = disbanded OR $5, \
     member_count = (SELECT count(*) FROM channel_members m WHERE m.tenant = $1 AND m.channel_key = $2) \
     WHERE tenant = $1 AND channel_type = 2 AND channel_key = $2";

/// Applies a channels plan.
///
/// # Errors
/// Database errors.
pub async fn apply_channels(tx: &Transaction<'_>, steps: &[channels::Step]) -> Result<()> {
    use channels::Step;
    for step in steps {
        match step {
            Step::Messages { heads, keys } => {
                if !heads.is_empty() {
                    let col =
                        |f: fn(&channels::Head) -> String| heads.iter().map(f).collect::<Vec<_>>();
                    let t = col(|h| h.tenant.clone());
                    let k = col(|h| h.channel_key.clone());
                    let ct: Vec<i16> = heads.iter().map(|h| h.channel_type).collect();
                    let s: Vec<i64> = heads.iter().map(|h| h.last_msg_seq).collect();
                    let m: Vec<uuid::Uuid> = heads.iter().map(|h| h.last_message_id).collect();
                    let e: Vec<i64> = heads.iter().map(|h| h.last_event_seq).collect();
                    let u: Vec<i64> = heads.iter().map(|h| h.updated_at).collect();
                    let f: Vec<i64> = heads.iter().map(|h| h.first_at).collect();
                    let stmt = tx.prepare_cached(UPSERT_HEADS).await?;
                    tx.execute(&stmt, &[&t, &ct, &k, &s, &m, &e, &u, &f])
                        .await?;
                }
                if !keys.is_empty() {
                    let t: Vec<&str> = keys.iter().map(|r| r.tenant.as_str()).collect();
                    let ct: Vec<i16> = keys.iter().map(|r| r.channel_type).collect();
                    let k: Vec<&str> = keys.iter().map(|r| r.channel_key.as_str()).collect();
                    let f: Vec<&str> = keys.iter().map(|r| r.from_uid.as_str()).collect();
                    let n: Vec<&str> = keys.iter().map(|r| r.client_msg_no.as_str()).collect();
                    let m: Vec<uuid::Uuid> = keys.iter().map(|r| r.message_id).collect();
                    let s: Vec<i64> = keys.iter().map(|r| r.message_seq).collect();
                    let h: Vec<&[u8]> = keys.iter().map(|r| r.payload_sha256.as_slice()).collect();
                    let at: Vec<i64> = keys.iter().map(|r| r.sent_at).collect();
                    let e: Vec<i64> = keys.iter().map(|r| r.event_seq).collect();
                    let stmt = tx.prepare_cached(INSERT_KEYS).await?;
                    tx.execute(&stmt, &[&t, &ct, &k, &f, &n, &m, &s, &h, &at, &e])
                        .await?;
                }
            }
            Step::Created {
                tenant,
                channel_key,
                name,
                members,
                owner,
                event_seq,
                at,
            } => {
                tx.execute(CREATE_GROUP, &[tenant, channel_key, name, event_seq, at])
                    .await?;
                tx.execute(ADD_MEMBERS, &[tenant, channel_key, members, at])
                    .await?;
                if let Some(owner) = owner {
                    tx.execute(moderation::SET_OWNER, &[tenant, channel_key, owner])
                        .await?;
                }
                tx.execute(TOUCH_GROUP, &[tenant, channel_key, event_seq, at, &false])
                    .await?;
            }
            Step::Added {
                tenant,
                channel_key,
                uids,
                event_seq,
                at,
            } => {
                tx.execute(ADD_MEMBERS, &[tenant, channel_key, uids, at])
                    .await?;
                tx.execute(TOUCH_GROUP, &[tenant, channel_key, event_seq, at, &false])
                    .await?;
            }
            Step::Removed {
                tenant,
                channel_key,
                uid,
                event_seq,
                at,
            } => {
                tx.execute(REMOVE_MEMBER, &[tenant, channel_key, uid])
                    .await?;
                tx.execute(TOUCH_GROUP, &[tenant, channel_key, event_seq, at, &false])
                    .await?;
            }
            Step::Disbanded {
                tenant,
                channel_key,
                event_seq,
                at,
            } => {
                tx.execute(REMOVE_ALL_MEMBERS, &[tenant, channel_key])
                    .await?;
                tx.execute(TOUCH_GROUP, &[tenant, channel_key, event_seq, at, &true])
                    .await?;
            }
            Step::Moderated {
                tenant,
                channel_key,
                change,
                event_seq,
                at,
            } => {
                moderation::apply_change(tx, tenant, channel_key, change, *at).await?;
                tx.execute(TOUCH_GROUP, &[tenant, channel_key, event_seq, at, &false])
                    .await?;
            }
            Step::Blocked(b) => moderation::apply_block(tx, b).await?,
        }
    }
    Ok(())
}

const UPSERT_PAIRS: &str = "INSERT INTO conversations AS c (tenant, uid, channel_type, channel_key, channel_id, \
     read_seq, last_msg_seq, updated_at) \
     SELECT t, u, 1, k, p, r, s, at FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], \
       $6::int8[], $7::int8[]) AS v(t, u, k, p, r, s, at) \
     ON CONFLICT (tenant, uid, channel_type, channel_key) DO UPDATE SET \
       read_seq = GREATEST(c.read_seq, EXCLUDED.read_seq), \
       last_msg_seq = GREATEST(c.last_msg_seq, EXCLUDED.last_msg_seq), \
       updated_at = GREATEST(c.updated_at, EXCLUDED.updated_at)";

/// Group heads (`conversation_channels` holds groups only; personal rows carry their head).
const UPSERT_GROUP_HEADS: &str =
    "INSERT INTO conversation_channels AS c (tenant, channel_type, channel_key, \
     last_msg_seq, updated_at) \
     SELECT t, 2, k, s, at FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[]) \
       AS v(t, k, s, at) \
     ON CONFLICT (tenant, channel_type, channel_key) DO UPDATE SET \
       last_msg_seq = GREATEST(c.last_msg_seq, EXCLUDED.last_msg_seq), \
       updated_at = GREATEST(c.updated_at, EXCLUDED.updated_at)";

const GROUP_SENDER_READS: &str = "UPDATE conversations c SET read_seq = GREATEST(c.read_seq, v.r) \
     FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[]) AS v(t, k, u, r) \
     WHERE c.tenant = v.t AND c.uid = v.u AND c.channel_type = 2 AND c.channel_key = v.k";

const REGISTER_GROUP: &str =
    "INSERT INTO conversation_channels (tenant, channel_type, channel_key, last_msg_seq, \
     updated_at) VALUES ($1, 2, $2, 0, $3) ON CONFLICT DO NOTHING";

/// Members `$3` join group `$2` at head `$5` (NULL: the stored head), nothing unread.
const JOIN_GROUP: &str =
    "INSERT INTO conversations (tenant, uid, channel_type, channel_key, channel_id, read_seq, \
     last_msg_seq, updated_at) \
     SELECT $1, u, 2, $2, $2, h.s, h.s, $4 \
     FROM unnest($3::text[]) AS u, \
       (SELECT COALESCE($5::int8, (SELECT cc.last_msg_seq FROM conversation_channels cc \
          WHERE cc.tenant = $1 AND cc.channel_type = 2 AND cc.channel_key = $2), 0) AS s) AS h \
     ON CONFLICT DO NOTHING";

const LEAVE_GROUP: &str = "DELETE FROM conversations WHERE tenant = $1 AND uid = $3 AND channel_type = 2 AND channel_key = $2";

const DISBAND_GROUP: &str =
    "DELETE FROM conversations WHERE tenant = $1 AND channel_type = 2 AND channel_key = $2";

const SET_READS: &str = "UPDATE conversations c \
     SET read_seq = GREATEST(v.r, v.f) \
     FROM unnest($1::text[], $2::text[], $3::int2[], $4::text[], $5::int8[], $6::int8[]) \
       AS v(t, u, ct, k, r, f) \
     WHERE c.tenant = v.t AND c.uid = v.u AND c.channel_type = v.ct AND c.channel_key = v.k";

/// Applies a conversations plan.
///
/// # Errors
/// Database errors.
pub async fn apply_conversations(
    tx: &Transaction<'_>,
    steps: &[conversations::Step],
) -> Result<()> {
    use conversations::Step;
    for step in steps {
        match step {
            Step::Messages {
                pairs,
                groups,
                sender_reads,
                reads,
            } => {
                if !pairs.is_empty() {
                    let t: Vec<&str> = pairs.iter().map(|p| p.tenant.as_str()).collect();
                    let u: Vec<&str> = pairs.iter().map(|p| p.uid.as_str()).collect();
                    let k: Vec<&str> = pairs.iter().map(|p| p.channel_key.as_str()).collect();
                    let p: Vec<&str> = pairs.iter().map(|p| p.channel_id.as_str()).collect();
                    let r: Vec<i64> = pairs.iter().map(|p| p.read_seq).collect();
                    let s: Vec<i64> = pairs.iter().map(|p| p.last_msg_seq).collect();
                    let at: Vec<i64> = pairs.iter().map(|p| p.updated_at).collect();
                    let stmt = tx.prepare_cached(UPSERT_PAIRS).await?;
                    tx.execute(&stmt, &[&t, &u, &k, &p, &r, &s, &at]).await?;
                }
                if !groups.is_empty() {
                    let t: Vec<&str> = groups.iter().map(|g| g.tenant.as_str()).collect();
                    let k: Vec<&str> = groups.iter().map(|g| g.channel_key.as_str()).collect();
                    let s: Vec<i64> = groups.iter().map(|g| g.last_msg_seq).collect();
                    let at: Vec<i64> = groups.iter().map(|g| g.updated_at).collect();
                    let stmt = tx.prepare_cached(UPSERT_GROUP_HEADS).await?;
                    tx.execute(&stmt, &[&t, &k, &s, &at]).await?;
                }
                if !sender_reads.is_empty() {
                    let t: Vec<&str> = sender_reads.iter().map(|r| r.tenant.as_str()).collect();
                    let k: Vec<&str> = sender_reads
                        .iter()
                        .map(|r| r.channel_key.as_str())
                        .collect();
                    let u: Vec<&str> = sender_reads.iter().map(|r| r.uid.as_str()).collect();
                    let r: Vec<i64> = sender_reads.iter().map(|r| r.read_seq).collect();
                    let stmt = tx.prepare_cached(GROUP_SENDER_READS).await?;
                    tx.execute(&stmt, &[&t, &k, &u, &r]).await?;
                }
                if !reads.is_empty() {
                    let t: Vec<&str> = reads.iter().map(|r| r.tenant.as_str()).collect();
                    let u: Vec<&str> = reads.iter().map(|r| r.uid.as_str()).collect();
                    let ct: Vec<i16> = reads.iter().map(|r| r.channel_type).collect();
                    let k: Vec<&str> = reads.iter().map(|r| r.channel_key.as_str()).collect();
                    let r: Vec<i64> = reads.iter().map(|r| r.read_seq).collect();
                    let f: Vec<i64> = reads.iter().map(|r| r.floor).collect();
                    let stmt = tx.prepare_cached(SET_READS).await?;
                    tx.execute(&stmt, &[&t, &u, &ct, &k, &r, &f]).await?;
                }
            }
            Step::Joined {
                tenant,
                channel_key,
                uids,
                created,
                head,
                at,
            } => {
                if *created {
                    tx.execute(REGISTER_GROUP, &[tenant, channel_key, at])
                        .await?;
                }
                tx.execute(JOIN_GROUP, &[tenant, channel_key, uids, at, head])
                    .await?;
            }
            Step::Left {
                tenant,
                channel_key,
                uid,
            } => {
                tx.execute(LEAVE_GROUP, &[tenant, channel_key, uid]).await?;
            }
            Step::Disbanded {
                tenant,
                channel_key,
            } => {
                tx.execute(DISBAND_GROUP, &[tenant, channel_key]).await?;
            }
        }
    }
    Ok(())
}
