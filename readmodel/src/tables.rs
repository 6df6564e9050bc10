//! The tables of a projection version and the row form of a channel key.
//!
//! Version 1 of every projection is built by the migrations; every later version (a rebuild,
//! a replay) from the DDL below, so the two must agree: a change of shape is a new migration
//! *and* an edit here (`tests/tests/readmodel.rs` compares a fresh version with the migrated
//! one, column by column and index by index).

use crate::Projection;
use events::ChannelKey;

/// `(channel_type, channel_key)` as stored in rows: 1 or 2, and
/// [`ChannelKey::storage_key`].
pub fn channel_columns(key: &ChannelKey) -> (i16, String) {
    (i16::from(key.channel_type().as_u8()), key.storage_key())
}

/// `(table, CREATE TABLE …)` of a projection, unqualified (run with the version's
/// `search_path`).
pub fn tables(p: Projection) -> &'static [(&'static str, &'static str)] {
    match p {
        Projection::Messages => &[(
            "messages",
            "CREATE TABLE messages (
                tenant text NOT NULL, channel_type smallint NOT NULL, channel_key text NOT NULL,
                message_seq bigint NOT NULL, message_id uuid NOT NULL, from_uid text NOT NULL,
                client_msg_no text, payload bytea NOT NULL, sent_at bigint NOT NULL,
                event_seq bigint NOT NULL,
                PRIMARY KEY (tenant, channel_type, channel_key, message_seq))",
        )],
        Projection::Channels => &[
            (
                "channels",
                "CREATE TABLE channels (
                    tenant text NOT NULL, channel_type smallint NOT NULL, channel_key text NOT NULL,
                    name text, disbanded boolean NOT NULL DEFAULT false,
                    last_msg_seq bigint NOT NULL DEFAULT 0, last_message_id uuid,
                    last_event_seq bigint NOT NULL, member_count integer NOT NULL DEFAULT 0,
                    created_at bigint NOT NULL, updated_at bigint NOT NULL,
                    muted boolean NOT NULL DEFAULT false,
                    whitelist_only boolean NOT NULL DEFAULT false,
                    legacy_roles boolean NOT NULL DEFAULT false,
                    PRIMARY KEY (tenant, channel_type, channel_key))",
            ),
            (
                "channel_members",
                "CREATE TABLE channel_members (
                    tenant text NOT NULL, channel_key text NOT NULL, uid text NOT NULL,
                    joined_at bigint NOT NULL,
                    role text NOT NULL DEFAULT 'member', muted_until bigint,
                    PRIMARY KEY (tenant, channel_key, uid))",
            ),
            (
                "message_keys",
                "CREATE TABLE message_keys (
                    tenant text NOT NULL, channel_type smallint NOT NULL, channel_key text NOT NULL,
                    from_uid text NOT NULL, client_msg_no text NOT NULL, message_id uuid NOT NULL,
                    message_seq bigint NOT NULL, payload_sha256 bytea NOT NULL,
                    sent_at bigint NOT NULL, event_seq bigint NOT NULL,
                    PRIMARY KEY (tenant, channel_type, channel_key, from_uid, client_msg_no))",
            ),
            (
                "channel_bans",
                "CREATE TABLE channel_bans (
                    tenant text NOT NULL, channel_key text NOT NULL, uid text NOT NULL,
                    until bigint, banned_at bigint NOT NULL, by_uid text,
                    PRIMARY KEY (tenant, channel_key, uid))",
            ),
            (
                "channel_send_lists",
                "CREATE TABLE channel_send_lists (
                    tenant text NOT NULL, channel_key text NOT NULL, list text NOT NULL,
                    uid text NOT NULL, added_at bigint NOT NULL,
                    PRIMARY KEY (tenant, channel_key, list, uid))",
            ),
            (
                "user_blocks",
                "CREATE TABLE user_blocks (
                    tenant text NOT NULL, uid text NOT NULL, blocked_uid text NOT NULL,
                    blocked_at bigint NOT NULL,
                    PRIMARY KEY (tenant, uid, blocked_uid))",
            ),
        ],
        Projection::Conversations => &[
            (
                "conversations",
                "CREATE TABLE conversations (
                    tenant text NOT NULL, uid text NOT NULL, channel_type smallint NOT NULL,
                    channel_key text NOT NULL, channel_id text NOT NULL,
                    read_seq bigint NOT NULL DEFAULT 0, last_msg_seq bigint NOT NULL DEFAULT 0,
                    updated_at bigint NOT NULL,
                    PRIMARY KEY (tenant, uid, channel_type, channel_key))
                 WITH (fillfactor = 90);
                 CREATE INDEX conversations_by_group ON conversations (tenant, channel_key)
                    WHERE channel_type = 2",
            ),
            (
                "conversation_channels",
                "CREATE TABLE conversation_channels (
                    tenant text NOT NULL, channel_type smallint NOT NULL, channel_key text NOT NULL,
                    last_msg_seq bigint NOT NULL DEFAULT 0, updated_at bigint NOT NULL,
                    PRIMARY KEY (tenant, channel_type, channel_key))",
            ),
        ],
    }
}

/// Secondary indexes that only readers need: a rebuild creates them after its bulk phase
/// (maintaining them row by row would slow the bulk load), before it catches up and switches.
pub fn deferred_indexes(p: Projection) -> &'static [&'static str] {
    match p {
        Projection::Messages => {
            &["CREATE UNIQUE INDEX IF NOT EXISTS messages_by_id ON messages (message_id)"]
        }
        Projection::Channels => &[],
        Projection::Conversations => &["CREATE INDEX IF NOT EXISTS conversations_recent \
             ON conversations (tenant, uid, updated_at DESC, channel_key DESC) \
             WHERE channel_type = 1"],
    }
}
