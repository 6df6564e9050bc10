-- Parley read models. Owned by the projector; every table is keyed by tenant first.
-- Times are ms since the Unix epoch (bigint); *_seq columns are sequences:
--   message_seq / last_msg_seq / read_seq: per-channel message sequence (1, 2, 3, … gap-free)
--   event_seq / last_event_seq / last_seq: JetStream stream sequence of the event log
-- channel_key: a group's id, or '<low uid> <high uid>' for a personal channel (ids hold no space).

-- One row per projection: the last stream sequence whose effects are in the tables.
CREATE TABLE projection_checkpoints (
    projection  text PRIMARY KEY,
    last_seq    bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Events a projection could not decode or apply, with the error; never silently dropped.
CREATE TABLE parked_events (
    projection  text   NOT NULL,
    event_seq   bigint NOT NULL,
    subject     text   NOT NULL,
    error       text   NOT NULL,
    body        bytea  NOT NULL,
    parked_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, event_seq)
);

-- projection "messages": the history.
CREATE TABLE messages (
    tenant         text     NOT NULL,
    channel_type   smallint NOT NULL,
    channel_key    text     NOT NULL,
    message_seq    bigint   NOT NULL,
    message_id     uuid     NOT NULL,
    from_uid       text     NOT NULL,
    client_msg_no  text,
    payload        bytea    NOT NULL,
    sent_at        bigint   NOT NULL,
    event_seq      bigint   NOT NULL,
    PRIMARY KEY (tenant, channel_type, channel_key, message_seq)
);
CREATE UNIQUE INDEX messages_by_id ON messages (message_id);

-- projection "channels": channel state, group members, idempotency keys.
-- It is also the command service's snapshot: state as of last_event_seq on the channel's subject.
CREATE TABLE channels (
    tenant           text     NOT NULL,
    channel_type     smallint NOT NULL,
    channel_key      text     NOT NULL,
    name             text,
    disbanded        boolean  NOT NULL DEFAULT false,
    last_msg_seq     bigint   NOT NULL DEFAULT 0,
    last_message_id  uuid,
    last_event_seq   bigint   NOT NULL,
    member_count     integer  NOT NULL DEFAULT 0,
    created_at       bigint   NOT NULL,
    updated_at       bigint   NOT NULL,
    PRIMARY KEY (tenant, channel_type, channel_key)
);

-- Members of group channels (channel_type 2 only).
CREATE TABLE channel_members (
    tenant       text   NOT NULL,
    channel_key  text   NOT NULL,
    uid          text   NOT NULL,
    joined_at    bigint NOT NULL,
    PRIMARY KEY (tenant, channel_key, uid)
);

-- Every client_msg_no ever accepted: idempotency "forever", not only inside a dedup window.
CREATE TABLE message_keys (
    tenant          text     NOT NULL,
    channel_type    smallint NOT NULL,
    channel_key     text     NOT NULL,
    from_uid        text     NOT NULL,
    client_msg_no   text     NOT NULL,
    message_id      uuid     NOT NULL,
    message_seq     bigint   NOT NULL,
    payload_sha256  bytea    NOT NULL,
    sent_at         bigint   NOT NULL,
    event_seq       bigint   NOT NULL,
    PRIMARY KEY (tenant, channel_type, channel_key, from_uid, client_msg_no)
);

-- projection "conversations": one row per (user, channel) the user is in.
-- unread = last_msg_seq - read_seq (never stored, so it cannot drift).
CREATE TABLE conversations (
    tenant        text     NOT NULL,
    uid           text     NOT NULL,
    channel_type  smallint NOT NULL,
    channel_key   text     NOT NULL,
    channel_id    text     NOT NULL,   -- as this uid sees it: the peer's uid for personal
    read_seq      bigint   NOT NULL DEFAULT 0,
    last_msg_seq  bigint   NOT NULL DEFAULT 0,
    updated_at    bigint   NOT NULL,
    PRIMARY KEY (tenant, uid, channel_type, channel_key)
);
CREATE INDEX conversations_recent ON conversations (tenant, uid, updated_at DESC, channel_type DESC, channel_key DESC);
CREATE INDEX conversations_by_channel ON conversations (tenant, channel_type, channel_key);

-- The conversations projection's own view of each channel's head (so it needs no other projection).
CREATE TABLE conversation_channels (
    tenant        text     NOT NULL,
    channel_type  smallint NOT NULL,
    channel_key   text     NOT NULL,
    last_msg_seq  bigint   NOT NULL DEFAULT 0,
    updated_at    bigint   NOT NULL,
    PRIMARY KEY (tenant, channel_type, channel_key)
);
