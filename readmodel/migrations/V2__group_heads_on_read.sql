-- Group conversations take their head from conversation_channels when read (fan-out on read):
-- a group message writes one head row, not one row per member. From here on,
-- conversations.last_msg_seq and updated_at are maintained for personal rows (channel_type 1)
-- only; a group row keeps the values of its join and its read_seq.
--
-- The list index covers personal rows only; group rows are found through the primary key
-- prefix (tenant, uid, channel_type = 2). Group rows change only on join, leave and reads,
-- and read_seq is in no index, so those updates can be HOT (fillfactor leaves room).
DROP INDEX conversations_recent;
CREATE INDEX conversations_recent ON conversations (tenant, uid, updated_at DESC, channel_key DESC)
    WHERE channel_type = 1;
DROP INDEX conversations_by_channel;
CREATE INDEX conversations_by_group ON conversations (tenant, channel_key) WHERE channel_type = 2;
ALTER TABLE conversations SET (fillfactor = 90);

-- conversation_channels now holds group heads only (personal rows carry their own head).
DELETE FROM conversation_channels WHERE channel_type = 1;
