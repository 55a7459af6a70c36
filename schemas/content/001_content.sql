-- Content: posts, and what the posts' lists and rules need (CONTRACT.md,
-- Content).
--
-- posts           the posts, drafts included
-- post_artists    one row per (artist, post), maintained from
--                 posts.artist_ids by a trigger: ?artist_id= is one index
--                 scan in list order
-- post_tags       the same for ?tag=
-- artists         a replica of the catalog's artists, fed by
--                 encore.catalog.artists (workers/content/replica.c):
--                 artist_ids are checked against it
-- gone_authors    users whose encore.user.deleted was applied: a post
--                 written later under a token issued before the deletion
--                 is stored as "[deleted]" too

CREATE TABLE artists (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    slug        text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE gone_authors (
    id          uuid PRIMARY KEY,
    gone_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE posts (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    author_id     uuid,             -- NULL once the author's account is gone
    author        text NOT NULL,    -- the username then, "[deleted]" after
    title         text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    body          text NOT NULL CHECK (char_length(body) BETWEEN 1 AND 50000),
    status        text NOT NULL DEFAULT 'draft'
                       CHECK (status IN ('draft', 'published')),
    artist_ids    uuid[] NOT NULL DEFAULT '{}',
    tags          text[] NOT NULL DEFAULT '{}'
                       CHECK (cardinality(tags) <= 10),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz,      -- the first publish; never moved
    -- true when the row's last write was its first publish: the write
    -- statements answer it as their `event` column ("published"), which
    -- a statement cannot tell from the new row alone (RETURNING sees no
    -- old values)
    first_publish boolean NOT NULL DEFAULT false,
    -- in the published lists while published, at its first publish time
    listed_at     timestamptz GENERATED ALWAYS AS
                       (CASE WHEN status = 'published' THEN published_at END)
                       STORED
);

-- GET /posts: published, newest first
CREATE INDEX posts_listed ON posts (listed_at DESC, id DESC)
    WHERE listed_at IS NOT NULL;
-- ?author_id=
CREATE INDEX posts_by_author ON posts (author_id, listed_at DESC, id DESC)
    WHERE listed_at IS NOT NULL;
-- ?status=draft: the caller's drafts, newest first
CREATE INDEX posts_drafts ON posts (author_id, created_at DESC, id DESC)
    WHERE status = 'draft';
-- encore.user.deleted: the user's posts, drafts included
CREATE INDEX posts_author ON posts (author_id);
-- encore.artist.deleted: the posts naming the artist
CREATE INDEX posts_artist_ids ON posts USING gin (artist_ids);

CREATE TABLE post_artists (
    artist_id  uuid NOT NULL,
    post_id    uuid NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    listed_at  timestamptz,         -- posts.listed_at
    PRIMARY KEY (post_id, artist_id)
);

CREATE INDEX post_artists_listed ON post_artists
    (artist_id, listed_at DESC, post_id DESC) WHERE listed_at IS NOT NULL;

CREATE TABLE post_tags (
    tag        text NOT NULL,
    post_id    uuid NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    listed_at  timestamptz,
    PRIMARY KEY (post_id, tag)
);

CREATE INDEX post_tags_listed ON post_tags
    (tag, listed_at DESC, post_id DESC) WHERE listed_at IS NOT NULL;


-- the advisory lock key of an author (advisory locks are per database:
-- the prefix keeps these apart from other workers' keys; a collision only
-- makes two authors' writes wait for each other)
CREATE FUNCTION content_author_lock(author uuid) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN hashtextextended('content.author:' || author::text, 0);

-- published_at is set by the first write that makes the post published
-- (a create with status published, or a patch to it) and kept by every
-- later one, whoever writes: the rule holds in the table, not in each
-- statement.  A post written for a user already gone is "[deleted]" (the
-- race with the consumer: workers/content/replica.c).
CREATE FUNCTION posts_before_write() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        NEW.published_at := OLD.published_at;
    ELSE
        NEW.published_at := NULL;
    END IF;
    NEW.first_publish := NEW.status = 'published' AND NEW.published_at IS NULL;
    IF NEW.first_publish THEN
        NEW.published_at := now();
    END IF;

    IF TG_OP = 'INSERT' AND NEW.author_id IS NOT NULL THEN
        -- shared with other writers of this author, exclusive against the
        -- consumer forgetting them: whichever comes second sees the first
        PERFORM pg_advisory_xact_lock_shared(content_author_lock(NEW.author_id));
        IF EXISTS (SELECT 1 FROM gone_authors WHERE id = NEW.author_id) THEN
            NEW.author_id := NULL;
            NEW.author := '[deleted]';
        END IF;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER posts_before_write BEFORE INSERT OR UPDATE ON posts
    FOR EACH ROW EXECUTE FUNCTION posts_before_write();

-- post_artists and post_tags follow the post's artist_ids, tags and
-- listed_at, in the same transaction
CREATE FUNCTION posts_after_write() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.artist_ids = OLD.artist_ids
       AND NEW.listed_at IS NOT DISTINCT FROM OLD.listed_at
    THEN
        NULL;
    ELSE
        DELETE FROM post_artists WHERE post_id = NEW.id;
        INSERT INTO post_artists (artist_id, post_id, listed_at)
            SELECT DISTINCT a, NEW.id, NEW.listed_at FROM unnest(NEW.artist_ids) a;
    END IF;

    IF TG_OP = 'UPDATE' AND NEW.tags = OLD.tags
       AND NEW.listed_at IS NOT DISTINCT FROM OLD.listed_at
    THEN
        NULL;
    ELSE
        DELETE FROM post_tags WHERE post_id = NEW.id;
        INSERT INTO post_tags (tag, post_id, listed_at)
            SELECT DISTINCT t, NEW.id, NEW.listed_at FROM unnest(NEW.tags) t;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER posts_after_write AFTER INSERT OR UPDATE ON posts
    FOR EACH ROW EXECUTE FUNCTION posts_after_write();
