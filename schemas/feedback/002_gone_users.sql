-- A deleted account's tickets lose their user_id (workers/feedback/sql.c,
-- tickets_forget_user), including those opened after its
-- encore.user.deleted was applied, under an access token issued before
-- the deletion (it lives on for minutes): gone_users remembers the
-- accounts, and a ticket inserted for one of them is stored without its
-- user.  The race with the consumer is closed as the content worker's
-- (workers/content/replica.c): an advisory lock per user, taken shared by
-- each insert here and exclusively by the consumer, which then remembers
-- the user and forgets their tickets in later statements.

CREATE TABLE gone_users (
    id          uuid PRIMARY KEY,
    gone_at     timestamptz NOT NULL DEFAULT now()
);

-- the advisory lock key of a user (advisory locks are per database: the
-- prefix keeps these apart from other workers' keys; a collision only
-- makes two users' writes wait for each other)
CREATE FUNCTION feedback_user_lock(author uuid) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN hashtextextended('feedback.user:' || author::text, 0);

CREATE FUNCTION tickets_gone_user() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.user_id IS NOT NULL THEN
        -- shared with other writers of this user, exclusive against the
        -- consumer forgetting them: whichever comes second sees the first
        PERFORM pg_advisory_xact_lock_shared(feedback_user_lock(NEW.user_id));
        IF EXISTS (SELECT 1 FROM gone_users WHERE id = NEW.user_id) THEN
            NEW.user_id := NULL;
        END IF;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER tickets_gone_user BEFORE INSERT ON tickets
    FOR EACH ROW EXECUTE FUNCTION tickets_gone_user();
