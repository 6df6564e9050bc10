-- Readers wait for a checkpoint (`min_event_seq`, catch-ups) without polling: every change of a
-- serving version's checkpoint, and every switch of the serving version, is announced on the
-- channel `parley_checkpoints` as '<projection>:<last_seq>' when its transaction commits
-- (NOTIFY is transactional: a rolled-back batch announces nothing). Whoever writes the
-- registry (the runner, a rebuild's switch, `projector dlq retry`) announces through this
-- trigger, so no writer can forget to.
CREATE FUNCTION notify_checkpoint() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state = 'serving' AND (TG_OP = 'INSERT'
        OR OLD.last_seq IS DISTINCT FROM NEW.last_seq
        OR OLD.state IS DISTINCT FROM NEW.state) THEN
        PERFORM pg_notify('parley_checkpoints', NEW.projection || ':' || NEW.last_seq);
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER projection_versions_notify
    AFTER INSERT OR UPDATE ON projection_versions
    FOR EACH ROW EXECUTE FUNCTION notify_checkpoint();
