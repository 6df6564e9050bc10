-- Blue/green read models. Each version of a projection lives in its own schema
-- (proj_<projection>_v<version>); public holds a view per table over the serving version, so
-- readers (query-svc, command-svc, the realtime hub) name tables unqualified and a switch is one
-- transaction that replaces the views. The projector writes to version schemas only.

-- Every version of every projection: the serving one, rebuilds under way, retired ones (kept
-- until `projector gc`) and replays (audit views as of a past log position, never serving).
CREATE TABLE projection_versions (
    projection   text    NOT NULL,
    version      integer NOT NULL,
    schema_name  text    NOT NULL UNIQUE,
    state        text    NOT NULL CHECK (state IN ('serving', 'building', 'retired', 'replay')),
    -- The last stream sequence whose effects are in this version's tables.
    last_seq     bigint  NOT NULL DEFAULT 0,
    -- Replays stop here; NULL: follow the log.
    target_seq   bigint,
    -- Set while the projection is halted on a poison event (policy `stop`): its stream sequence.
    parked_seq   bigint,
    -- Events per second over the last few batches, for `projector status`.
    apply_rate   double precision NOT NULL DEFAULT 0,
    -- Secondary indexes exist (a rebuild creates them after its bulk phase).
    indexed      boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    switched_at  timestamptz,
    retired_at   timestamptz,
    PRIMARY KEY (projection, version)
);
CREATE UNIQUE INDEX projection_versions_serving ON projection_versions (projection)
    WHERE state = 'serving';

CREATE SCHEMA proj_messages_v1;
ALTER TABLE messages SET SCHEMA proj_messages_v1;
CREATE SCHEMA proj_channels_v1;
ALTER TABLE channels SET SCHEMA proj_channels_v1;
ALTER TABLE channel_members SET SCHEMA proj_channels_v1;
ALTER TABLE message_keys SET SCHEMA proj_channels_v1;
CREATE SCHEMA proj_conversations_v1;
ALTER TABLE conversations SET SCHEMA proj_conversations_v1;
ALTER TABLE conversation_channels SET SCHEMA proj_conversations_v1;

INSERT INTO projection_versions (projection, version, schema_name, state, last_seq, switched_at)
SELECT p, 1, 'proj_' || p || '_v1', 'serving', coalesce(c.last_seq, 0), now()
FROM unnest(ARRAY['messages', 'channels', 'conversations']) AS p
LEFT JOIN projection_checkpoints c ON c.projection = p;
DROP TABLE projection_checkpoints;

-- Readers' names, unchanged: the serving version of each table, and its checkpoint.
CREATE VIEW projection_checkpoints AS
    SELECT projection, last_seq, updated_at FROM projection_versions WHERE state = 'serving';
CREATE VIEW messages AS SELECT * FROM proj_messages_v1.messages;
CREATE VIEW channels AS SELECT * FROM proj_channels_v1.channels;
CREATE VIEW channel_members AS SELECT * FROM proj_channels_v1.channel_members;
CREATE VIEW message_keys AS SELECT * FROM proj_channels_v1.message_keys;
CREATE VIEW conversations AS SELECT * FROM proj_conversations_v1.conversations;
CREATE VIEW conversation_channels AS SELECT * FROM proj_conversations_v1.conversation_channels;

-- Dead letters per version, with their handling state:
--   parked: waiting for an operator; retry: `projector dlq retry` asked the runner to apply it
--   again; skipped: `projector dlq skip` gave it up; resolved: a retry applied it.
ALTER TABLE parked_events ADD COLUMN version integer NOT NULL DEFAULT 1;
ALTER TABLE parked_events ADD COLUMN attempts integer NOT NULL DEFAULT 1;
ALTER TABLE parked_events ADD COLUMN state text NOT NULL DEFAULT 'parked'
    CHECK (state IN ('parked', 'retry', 'skipped', 'resolved'));
ALTER TABLE parked_events ADD COLUMN resolved_at timestamptz;
ALTER TABLE parked_events DROP CONSTRAINT parked_events_pkey;
ALTER TABLE parked_events ADD PRIMARY KEY (projection, version, event_seq);
ALTER TABLE parked_events ALTER COLUMN version DROP DEFAULT;
