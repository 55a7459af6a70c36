-- A deleted account's comments show "[deleted]" (replica.c), including
-- those written after its encore.user.deleted was applied, under an access
-- token issued before the deletion (it lives on for minutes): gone_authors
-- remembers the accounts, and a comment inserted for one of them is stored
-- without its author.  The race with the consumer is closed as the content
-- worker's (workers/content/replica.c): an advisory lock per author, taken
-- shared by each insert here and exclusively by the consumer, which then
-- remembers the author and forgets their comments in later statements.

CREATE TABLE gone_authors (
    id          uuid PRIMARY KEY,
    gone_at     timestamptz NOT NULL DEFAULT now()
);

-- the advisory lock key of an author (advisory locks are per database:
-- the prefix keeps these apart from other workers' keys; a collision only
-- makes two authors' writes wait for each other)
CREATE FUNCTION comments_author_lock(author uuid) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN hashtextextended('comments.author:' || author::text, 0);

CREATE FUNCTION comments_before_insert() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.author_id IS NOT NULL THEN
        -- shared with other writers of this author, exclusive against the
        -- consumer forgetting them: whichever comes second sees the first
        PERFORM pg_advisory_xact_lock_shared(comments_author_lock(NEW.author_id));
        IF EXISTS (SELECT 1 FROM gone_authors WHERE id = NEW.author_id) THEN
            NEW.author_id := NULL;
            NEW.author := '[deleted]';
        END IF;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER comments_before_insert BEFORE INSERT ON comments
    FOR EACH ROW EXECUTE FUNCTION comments_before_insert();
