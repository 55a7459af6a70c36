-- Closed is final: a closed ticket's status and response no longer
-- change, and a write that names either (a PATCH with a status or a
-- response, changed or not) is refused, here rather than in the worker, so
-- that no path skips it; the refusal rolls the write back with its event.
-- The guard runs on every UPDATE naming status or response (a PATCH
-- always names both: ticket_update); the consumer's update of user_id
-- names neither and still reaches closed tickets.
--
-- A move out of closed is tickets_status_guard's refusal
-- (tickets_status_closed_to_<to>); a closed ticket staying closed is this
-- one's: tickets_closed_response when its response would change,
-- tickets_closed (on status) when nothing would.  The worker's entity maps
-- each to its field.

CREATE FUNCTION ticket_closed_guard() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'closed' AND NEW.status = 'closed' THEN
        IF NEW.response IS DISTINCT FROM OLD.response THEN
            RAISE EXCEPTION 'the ticket is closed: its response is final'
                USING ERRCODE = 'check_violation',
                      CONSTRAINT = 'tickets_closed_response',
                      TABLE = 'tickets', COLUMN = 'response';
        END IF;
        RAISE EXCEPTION 'the ticket is closed'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'tickets_closed',
                  TABLE = 'tickets', COLUMN = 'status';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER tickets_closed_guard
    BEFORE UPDATE OF status, response ON tickets
    FOR EACH ROW EXECUTE FUNCTION ticket_closed_guard();
