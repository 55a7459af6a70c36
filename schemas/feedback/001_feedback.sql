-- Feedback: tickets users open and staff answer (CONTRACT.md, Feedback).
--
-- The status machine lives here, not only in the worker, so that no path
-- (a statement, a consumer, an operator's psql) can skip it:
--
--     open -> in_progress -> resolved -> closed
--                  ^-------------'
--
-- An unchanged status is no transition.  Any other change raises
-- check_violation naming a constraint tickets_status_<from>_to_<to>, which
-- the worker's entity maps to 422 on "status" (workers/feedback/tickets.c).

CREATE TABLE tickets (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- the author; NULL once their account is deleted (encore.user.deleted)
    user_id     uuid,
    category    text NOT NULL
                     CHECK (category IN ('bug', 'feature', 'content', 'other')),
    subject     text NOT NULL CHECK (char_length(subject) BETWEEN 1 AND 200),
    message     text NOT NULL CHECK (char_length(message) BETWEEN 1 AND 10000),
    status      text NOT NULL DEFAULT 'open'
                     CHECK (status IN ('open', 'in_progress', 'resolved',
                                       'closed')),
    response    text CHECK (char_length(response) <= 10000),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- GET /feedback, newest first, keyset on (created_at, id): the caller's
-- own tickets (also the consumer's "this user's tickets"), everybody's
-- (staff), everybody's in one status (staff, ?status=)
CREATE INDEX tickets_by_user ON tickets (user_id, created_at, id);
CREATE INDEX tickets_by_time ON tickets (created_at, id);
CREATE INDEX tickets_by_status ON tickets (status, created_at, id);

-- the transitions a ticket may make besides staying where it is
CREATE FUNCTION ticket_transition_allowed(old text, new text)
    RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN old = new
        OR (old, new) IN (('open', 'in_progress'),
                          ('in_progress', 'resolved'),
                          ('resolved', 'closed'),
                          ('resolved', 'in_progress'));

CREATE FUNCTION ticket_status_guard() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- a ticket is born open and unanswered
        IF NEW.status <> 'open' THEN
            RAISE EXCEPTION 'a new ticket is open, not %', NEW.status
                USING ERRCODE = 'check_violation',
                      CONSTRAINT = 'tickets_status_new', TABLE = 'tickets',
                      COLUMN = 'status';
        END IF;
        IF NEW.response IS NOT NULL THEN
            RAISE EXCEPTION 'a new ticket has no response'
                USING ERRCODE = 'check_violation',
                      CONSTRAINT = 'tickets_response_new', TABLE = 'tickets',
                      COLUMN = 'response';
        END IF;
    ELSIF NOT ticket_transition_allowed(OLD.status, NEW.status) THEN
        RAISE EXCEPTION 'a ticket may not go from % to %', OLD.status,
                        NEW.status
            USING ERRCODE = 'check_violation',
                  CONSTRAINT = 'tickets_status_' || OLD.status || '_to_'
                               || NEW.status,
                  TABLE = 'tickets', COLUMN = 'status';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER tickets_status_guard
    BEFORE INSERT OR UPDATE OF status ON tickets
    FOR EACH ROW EXECUTE FUNCTION ticket_status_guard();
