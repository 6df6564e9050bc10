-- Group roles and moderation, and personal blocks, in the channels projection: every version
-- of it (serving, building, retired, replay) gains the same columns and tables, so a switch
-- between versions keeps working, and the public views are redone over the serving version
-- (a view's `SELECT *` is expanded when the view is made).
--
-- Roles of groups created before this migration are not in their rows: their owner is the
-- first member of the `group_created` v1 event, an order the rows do not keep. Such rows get
-- `legacy_roles = true`: the command service folds those groups from the log instead of
-- trusting the row (so its decisions are right at once), and `projector rebuild channels`
-- writes their roles (docs/operations.md, "Upgrading to migration 5").
DO $$
DECLARE
    s text;
BEGIN
    FOR s IN SELECT schema_name FROM projection_versions WHERE projection = 'channels' LOOP
        EXECUTE format('ALTER TABLE %I.channels
            ADD COLUMN muted boolean NOT NULL DEFAULT false,
            ADD COLUMN whitelist_only boolean NOT NULL DEFAULT false,
            ADD COLUMN legacy_roles boolean NOT NULL DEFAULT false', s);
        EXECUTE format('UPDATE %I.channels SET legacy_roles = true
            WHERE channel_type = 2 AND NOT disbanded', s);
        EXECUTE format('ALTER TABLE %I.channel_members
            ADD COLUMN role text NOT NULL DEFAULT ''member'',
            ADD COLUMN muted_until bigint', s);
        EXECUTE format('CREATE TABLE %I.channel_bans (
            tenant text NOT NULL, channel_key text NOT NULL, uid text NOT NULL,
            until bigint, banned_at bigint NOT NULL, by_uid text,
            PRIMARY KEY (tenant, channel_key, uid))', s);
        EXECUTE format('CREATE TABLE %I.channel_send_lists (
            tenant text NOT NULL, channel_key text NOT NULL, list text NOT NULL,
            uid text NOT NULL, added_at bigint NOT NULL,
            PRIMARY KEY (tenant, channel_key, list, uid))', s);
        EXECUTE format('CREATE TABLE %I.user_blocks (
            tenant text NOT NULL, uid text NOT NULL, blocked_uid text NOT NULL,
            blocked_at bigint NOT NULL,
            PRIMARY KEY (tenant, uid, blocked_uid))', s);
    END LOOP;
    SELECT schema_name INTO s FROM projection_versions
        WHERE projection = 'channels' AND state = 'serving';
    EXECUTE format('CREATE OR REPLACE VIEW public.channels AS SELECT * FROM %I.channels', s);
    EXECUTE format('CREATE OR REPLACE VIEW public.channel_members AS SELECT * FROM %I.channel_members', s);
    EXECUTE format('CREATE VIEW public.channel_bans AS SELECT * FROM %I.channel_bans', s);
    EXECUTE format('CREATE VIEW public.channel_send_lists AS SELECT * FROM %I.channel_send_lists', s);
    EXECUTE format('CREATE VIEW public.user_blocks AS SELECT * FROM %I.user_blocks', s);
END $$;
