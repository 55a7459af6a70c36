-- Comments: threaded comments on posts (CONTRACT.md, Comments), and the
-- replica of the posts they hang on, fed by encore.content.posts.
--
-- Thread order is a MATERIALISED PATH, not ltree.  Each comment's path is
-- its parent's path followed by one fixed-width segment of its own: 12
-- lower-case hex digits of a sequence value, so a younger sibling's
-- segment is always larger.  Compared bytewise (COLLATE "C"), a parent's
-- path is a prefix of, and so sorts before, every path of its subtree, and
-- siblings sort oldest first: ORDER BY path IS the depth-first walk, and
-- one scan of the unique (post_id, path) index serves the whole thread and
-- every keyset page of it (WHERE post_id = $1 AND path > $cursor).
-- Why not ltree: it is an extension, which only a superuser can create
-- (infrastructure/postgres/database.sql would have to grow one for this
-- schema alone); its labels compare as text, so sibling order would need
-- the same fixed-width labels anyway; and a plain text key goes into a
-- list cursor as it is.  A path is at most 9 segments (depth 0..8), 108
-- bytes.  The segment's last value is unique (the sequence), so the path
-- alone is a unique sort key.

-- a key or a member of a consumed event, read without failing: an event
-- whose value cannot be cast is applied as "unknown", never retried
-- forever (it would wedge its partition)
CREATE FUNCTION as_uuid(t text) RETURNS uuid
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
BEGIN
    RETURN t::uuid;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;

CREATE FUNCTION as_time(t text) RETURNS timestamptz
    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
AS $$
BEGIN
    RETURN t::timestamptz;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;

-- What comments knows of each post, from its events: published or not,
-- deleted or not.  A deleted post stays as a tombstone, so an older event
-- replayed after its delete cannot bring it back; updated_at is the post's
-- own, from the last event applied, so an older one is ignored (NULL when
-- an event had none: then the next event wins).
CREATE TABLE posts (
    id          uuid PRIMARY KEY,
    published   boolean NOT NULL DEFAULT false,
    deleted     boolean NOT NULL DEFAULT false,
    updated_at  timestamptz,
    -- can be commented on, and its comments listed
    visible     boolean GENERATED ALWAYS AS (published AND NOT deleted) STORED
);

-- a path segment: 12 hex digits; the sequence stops rather than wrap or
-- outgrow them
CREATE SEQUENCE comments_path_seq MAXVALUE 281474976710655;

CREATE TABLE comments (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    post_id     uuid NOT NULL CONSTRAINT comments_post_id_fkey
                     REFERENCES posts (id),
    -- a parent on the same post (the pair is the foreign key)
    parent_id   uuid,
    -- NULL, and author '[deleted]', once the author's account is deleted
    author_id   uuid,
    author      text NOT NULL,
    -- a deleted comment keeps its place (its path) with an empty body
    body        text NOT NULL,
    deleted     boolean NOT NULL DEFAULT false,
    depth       smallint NOT NULL CONSTRAINT comments_depth_check
                     CHECK (depth BETWEEN 0 AND 8),
    path        text COLLATE "C" NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT comments_body_check CHECK (CASE WHEN deleted THEN body = ''
        ELSE char_length(body) BETWEEN 1 AND 10000 END),
    CONSTRAINT comments_path_check CHECK (
        char_length(path) = 12 * (depth + 1) AND path ~ '^[0-9a-f]+$'),
    CONSTRAINT comments_id_post_key UNIQUE (id, post_id),
    CONSTRAINT comments_parent_fkey FOREIGN KEY (parent_id, post_id)
        REFERENCES comments (id, post_id)
);

-- the thread, in order: every listing is one range of it
CREATE UNIQUE INDEX comments_thread ON comments (post_id, path);
-- a deleted user's comments (encore.user.deleted)
CREATE INDEX comments_author ON comments (author_id)
    WHERE author_id IS NOT NULL;
