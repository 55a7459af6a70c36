-- Chat: a user's sessions with the assistant and their messages
-- (CONTRACT.md, Chat; workers/chat/).
--
-- sessions    owned by one user (user_id), who alone sees them: another
--             user's is 404 (the statements' WHERE, workers/chat/sql.c).
--             A session created without a title is "New chat" until its
--             first question names it (auto_title: the question's first
--             60 characters).
-- messages    the user's questions and the assistant's replies, oldest
--             first; an assistant message keeps the catalog items it
--             drew on (sources, [{type, id, title}]) and whether the
--             provider's stream was cut (incomplete).  They go with their
--             session (ON DELETE CASCADE), and the worker publishes each
--             one's encore.message.deleted first.
-- gone_users  accounts whose encore.user.deleted was applied: their
--             sessions are gone, and a session created for one of them
--             later (an access token lives on for minutes) is refused.

CREATE TABLE sessions (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL,
    title       text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    auto_title  boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- the caller's sessions, newest updated first, keyset on (updated_at, id)
CREATE INDEX sessions_by_user ON sessions (user_id, updated_at, id);

CREATE TABLE messages (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id  uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('user', 'assistant')),
    -- a reply cut before its first token may be empty; a question never is
    content     text NOT NULL CHECK (char_length(content) <= 100000
                                     AND (role = 'assistant'
                                          OR char_length(content) >= 1)),
    sources     jsonb NOT NULL DEFAULT '[]'
                      CHECK (jsonb_typeof(sources) = 'array'),
    incomplete  boolean NOT NULL DEFAULT false,
    -- clock_timestamp(): a question and its reply are written in one
    -- request's two transactions, and the reply must sort after it even
    -- when both land in the same microsecond of now()
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- a session's messages, oldest first, keyset on (created_at, id); also
-- the history given to the model (the newest, backwards)
CREATE INDEX messages_by_session ON messages (session_id, created_at, id);

CREATE TABLE gone_users (
    id          uuid PRIMARY KEY,
    gone_at     timestamptz NOT NULL DEFAULT now()
);

-- the advisory lock key of a user (advisory locks are per database: the
-- prefix keeps these apart from other workers' keys)
CREATE FUNCTION chat_user_lock(owner uuid) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN hashtextextended('chat.user:' || owner::text, 0);

-- A session for a deleted account is refused.  The race with the consumer
-- is closed as the feedback worker's (schemas/feedback/002_gone_users.sql):
-- each insert takes the user's lock shared, the consumer exclusively and
-- then remembers the user before deleting their sessions, so whichever
-- comes second sees the first.
CREATE FUNCTION sessions_gone_user() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(chat_user_lock(NEW.user_id));
    IF EXISTS (SELECT 1 FROM gone_users WHERE id = NEW.user_id) THEN
        RAISE EXCEPTION 'the account is deleted'
            USING ERRCODE = 'check_violation',
                  CONSTRAINT = 'sessions_user_gone', TABLE = 'sessions';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER sessions_gone_user BEFORE INSERT ON sessions
    FOR EACH ROW EXECUTE FUNCTION sessions_gone_user();
