-- Search: an index of the catalog and the published posts, fed only by
-- their events (workers/search/replica.c), answering GET /api/v1/search
-- (CONTRACT.md, Search) through search_page().
--
-- artists, albums,    replicas of what the documents need, one row per
-- tracks, posts       entity ever seen: `version` is the updated_at of the
--                     state applied, or the time of its deletion
--                     (`deleted`, a tombstone kept so that an older state
--                     replayed after it changes nothing)
-- docs                the searchable documents, denormalised (an album
--                     knows its artist, a track its album and artist, a
--                     post its artists and tags), kept by the replicas'
--                     triggers; a weighted tsvector of the head (title A,
--                     context B), one of the body (a post's text), and a
--                     trigram index on the folded title
-- words               the index's vocabulary, for the typo budget: a
--                     query word matches the words within 1 edit (5+
--                     characters) or 2 (9+)
--
-- Text is folded (lower case, accents dropped) and cut into words at
-- every character that is not a letter or a digit, the same way for what
-- is indexed, what is asked and what is highlighted.

CREATE FUNCTION fold(t text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN lower(ext.unaccent('ext.unaccent'::regdictionary, t));

-- the words of a text, folded, separated by one space
CREATE FUNCTION words_of(t text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN btrim(regexp_replace(fold(t), '[^[:alnum:]]+', ' ', 'g'));

-- text as a uuid, NULL when it is not one (an event's key or field that
-- cannot be read changes nothing rather than failing for ever)
CREATE FUNCTION as_uuid(t text) RETURNS uuid
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN t ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                THEN t::uuid END;

-- an RFC 3339 UTC time as the events write it, NULL when it is not one
CREATE FUNCTION as_time(t text) RETURNS timestamptz
    LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    IF t !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$' THEN
        RETURN NULL;
    END IF;
    RETURN t::timestamptz;
EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
    RETURN NULL;
END $$;

-- text as HTML: the five characters that matter escaped
CREATE FUNCTION html(t text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN replace(replace(replace(replace(replace(t,
        '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'),
        '''', '&#39;');

-- a tsquery term for a word (only letters and digits reach here; quoted
-- all the same)
CREATE FUNCTION term(w text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN '''' || replace(replace(w, '\', '\\'), '''', '\''') || '''';


-- ---- replicas ----------------------------------------------------------------

CREATE TABLE artists (
    id         uuid PRIMARY KEY,
    name       text NOT NULL DEFAULT '',
    version    timestamptz NOT NULL,
    deleted    boolean NOT NULL DEFAULT false
);

CREATE TABLE albums (
    id         uuid PRIMARY KEY,
    artist_id  uuid,
    title      text NOT NULL DEFAULT '',
    version    timestamptz NOT NULL,
    deleted    boolean NOT NULL DEFAULT false
);
CREATE INDEX albums_artist ON albums (artist_id);

CREATE TABLE tracks (
    id         uuid PRIMARY KEY,
    album_id   uuid,
    title      text NOT NULL DEFAULT '',
    version    timestamptz NOT NULL,
    deleted    boolean NOT NULL DEFAULT false
);
CREATE INDEX tracks_album ON tracks (album_id);

CREATE TABLE posts (
    id          uuid PRIMARY KEY,
    title       text NOT NULL DEFAULT '',
    body        text NOT NULL DEFAULT '',
    tags        text[] NOT NULL DEFAULT '{}',
    artist_ids  uuid[] NOT NULL DEFAULT '{}',
    published   boolean NOT NULL DEFAULT false,
    version     timestamptz NOT NULL,
    deleted     boolean NOT NULL DEFAULT false
);
CREATE INDEX posts_artist_ids ON posts USING gin (artist_ids);


-- ---- documents ---------------------------------------------------------------

CREATE TABLE docs (
    kind     text NOT NULL CHECK (kind IN ('artist', 'album', 'track', 'post')),
    id       uuid NOT NULL,
    title    text NOT NULL,
    context  text NOT NULL DEFAULT '',
    body     text NOT NULL DEFAULT '',
    name     text GENERATED ALWAYS AS (left(words_of(title), 200)) STORED,
    -- apart, so that ranking reads the small head only: a common word
    -- matches tens of thousands of bodies, whose vectors stay unread
    head_tsv tsvector GENERATED ALWAYS AS (
                 setweight(to_tsvector('simple', words_of(title)), 'A')
                 || setweight(to_tsvector('simple', words_of(context)), 'B'))
             STORED,
    body_tsv tsvector GENERATED ALWAYS AS (
                 to_tsvector('simple', words_of(body))) STORED,
    PRIMARY KEY (kind, id)
);
CREATE INDEX docs_head ON docs USING gin (head_tsv);
CREATE INDEX docs_body ON docs USING gin (body_tsv);
CREATE INDEX docs_name_trgm ON docs USING gin (name ext.gin_trgm_ops);

CREATE TABLE words (
    word  text PRIMARY KEY,
    len   integer GENERATED ALWAYS AS (char_length(word)) STORED
);
CREATE INDEX words_len ON words (len);

-- what the documents of kind k with these ids are, from the replicas (a
-- parent not seen yet, or deleted, is simply not named); each kind's
-- query starts from the ids, one index lookup a document
CREATE FUNCTION doc_sources(k text, ids uuid[])
    RETURNS TABLE (id uuid, title text, context text, body text)
    LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
    IF k = 'artist' THEN
        RETURN QUERY
        SELECT a.id, a.name, '', '' FROM artists a
         WHERE a.id = ANY (ids) AND NOT a.deleted;
    ELSIF k = 'album' THEN
        RETURN QUERY
        SELECT al.id, al.title, coalesce(ar.name, ''), ''
          FROM albums al
          LEFT JOIN artists ar ON ar.id = al.artist_id AND NOT ar.deleted
         WHERE al.id = ANY (ids) AND NOT al.deleted;
    ELSIF k = 'track' THEN
        RETURN QUERY
        SELECT t.id, t.title,
               concat_ws(' · ', nullif(al.title, ''), nullif(ar.name, '')), ''
          FROM tracks t
          LEFT JOIN albums al ON al.id = t.album_id AND NOT al.deleted
          LEFT JOIN artists ar ON ar.id = al.artist_id AND NOT ar.deleted
         WHERE t.id = ANY (ids) AND NOT t.deleted;
    ELSIF k = 'post' THEN
        RETURN QUERY
        SELECT p.id, p.title,
               concat_ws(' · ',
                   (SELECT string_agg(ar.name, ', ' ORDER BY u.i)
                      FROM unnest(p.artist_ids) WITH ORDINALITY u(aid, i)
                      JOIN artists ar ON ar.id = u.aid AND NOT ar.deleted),
                   nullif(array_to_string(p.tags, ', '), '')),
               p.body
          FROM posts p
         WHERE p.id = ANY (ids) AND p.published AND NOT p.deleted;
    END IF;
END $$;

-- the documents of kind k with these ids, as the replicas say now: gone
-- when there is no source, written when it changed
CREATE FUNCTION refresh_docs(k text, ids uuid[]) RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE
    src  record;
    keep uuid[] := '{}';
BEGIN
    FOR src IN SELECT * FROM doc_sources(k, ids) LOOP
        keep := keep || src.id;
        INSERT INTO docs AS d (kind, id, title, context, body)
        VALUES (k, src.id, src.title, src.context, src.body)
        ON CONFLICT (kind, id) DO UPDATE
           SET title = EXCLUDED.title, context = EXCLUDED.context,
               body = EXCLUDED.body
         WHERE (d.title, d.context, d.body)
               IS DISTINCT FROM (EXCLUDED.title, EXCLUDED.context,
                                 EXCLUDED.body);
    END LOOP;
    DELETE FROM docs d
     WHERE d.kind = k AND d.id = ANY (ids) AND d.id <> ALL (keep);
END $$;

CREATE FUNCTION artists_after_write() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM refresh_docs('artist', ARRAY[NEW.id]);
    IF TG_OP = 'INSERT' OR NEW.name <> OLD.name OR NEW.deleted <> OLD.deleted
    THEN
        PERFORM refresh_docs('album', ARRAY(SELECT id FROM albums
                                             WHERE artist_id = NEW.id));
        PERFORM refresh_docs('track', ARRAY(
            SELECT t.id FROM tracks t JOIN albums al ON al.id = t.album_id
             WHERE al.artist_id = NEW.id));
        PERFORM refresh_docs('post', ARRAY(SELECT id FROM posts
                                            WHERE artist_ids @> ARRAY[NEW.id]));
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER artists_after_write AFTER INSERT OR UPDATE ON artists
    FOR EACH ROW EXECUTE FUNCTION artists_after_write();

CREATE FUNCTION albums_after_write() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM refresh_docs('album', ARRAY[NEW.id]);
    IF TG_OP = 'INSERT' OR NEW.title <> OLD.title
       OR NEW.artist_id IS DISTINCT FROM OLD.artist_id
       OR NEW.deleted <> OLD.deleted
    THEN
        PERFORM refresh_docs('track', ARRAY(SELECT id FROM tracks
                                             WHERE album_id = NEW.id));
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER albums_after_write AFTER INSERT OR UPDATE ON albums
    FOR EACH ROW EXECUTE FUNCTION albums_after_write();

-- a document with nothing depending on it: the kind is the trigger's
-- argument
CREATE FUNCTION doc_after_write() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM refresh_docs(TG_ARGV[0], ARRAY[NEW.id]);
    RETURN NULL;
END $$;
CREATE TRIGGER tracks_after_write AFTER INSERT OR UPDATE ON tracks
    FOR EACH ROW EXECUTE FUNCTION doc_after_write('track');
CREATE TRIGGER posts_after_write AFTER INSERT OR UPDATE ON posts
    FOR EACH ROW EXECUTE FUNCTION doc_after_write('post');

-- the vocabulary grows with the documents (words of a document gone stay:
-- a typo expanded to one matches nothing; a rebuild starts afresh).  Words
-- under 4 characters never take a typo (a query word needs 5)
CREATE FUNCTION docs_words() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO words (word)
    SELECT w FROM unnest(tsvector_to_array(NEW.head_tsv || NEW.body_tsv)) w
     WHERE char_length(w) BETWEEN 4 AND 64
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER docs_words AFTER INSERT OR UPDATE OF title, context, body
    ON docs FOR EACH ROW EXECUTE FUNCTION docs_words();


-- ---- the query ---------------------------------------------------------------

-- the typo budget of a word (Meilisearch's defaults)
CREATE FUNCTION typos(w text) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN CASE WHEN char_length(w) >= 9 THEN 2
                WHEN char_length(w) >= 5 THEN 1 ELSE 0 END;

-- the vocabulary's words within w's typo budget (w itself excluded); for
-- the last word of a query (prefix), also the words that start within
-- the budget ("metalic" -> "metallica"; one letter more or less at the
-- cut)
CREATE FUNCTION typo_words(w text, prefix boolean) RETURNS text[]
    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE AS $$
DECLARE
    n    integer := char_length(w);
    k    integer := typos(w);
    out  text[];
BEGIN
    IF k = 0 THEN
        RETURN '{}';
    END IF;
    -- planned for these values each time (EXECUTE): a generic plan
    -- knows no length and scans the whole vocabulary
    EXECUTE $q$
    SELECT coalesce(array_agg(v.word ORDER BY v.word), '{}')
      FROM words v
     WHERE v.word <> $1
       AND ((v.len BETWEEN $2 - $3 AND $2 + $3
             AND ext.levenshtein_less_equal(v.word, $1, $3) <= $3)
            -- a word the typed one begins, typos and all: its first
            -- letter right (what a typist rarely misses; it keeps the
            -- scan to a letter's words)
            OR ($4 AND v.len > $2 + $3
                AND v.word >= $5 AND v.word < $5 || chr(1114111)
                AND least(ext.levenshtein_less_equal(left(v.word, $2 - 1), $1, $3),
                          ext.levenshtein_less_equal(left(v.word, $2), $1, $3),
                          ext.levenshtein_less_equal(left(v.word, $2 + 1), $1, $3))
                    <= $3))
    $q$ INTO out USING w, n, k, prefix, left(w, 1);
    RETURN out;
END $$;

-- text as HTML with the matched words in <mark>: a word matches when it
-- is one of terms, or starts with pre (the query's last word); a window
-- of 60 pieces (words and what separates them) from a little before the
-- first match, "…" where it was cut
CREATE FUNCTION highlight(src text, terms text[], pre text) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH piece AS (
        SELECT m[1] AS s, o,
               m[1] ~ '^[[:alnum:]]' AND (fold(m[1]) = ANY (terms)
                   OR (pre IS NOT NULL AND starts_with(fold(m[1]), pre)))
                   AS hit
          FROM regexp_matches(src, '[[:alnum:]]+|[^[:alnum:]]+', 'g')
               WITH ORDINALITY r(m, o)
    ), win AS (
        SELECT greatest(1, least(coalesce(min(o) FILTER (WHERE hit), 1) - 12,
                                 max(o) - 59)) AS lo,
               max(o) AS last
          FROM piece
    )
    SELECT CASE WHEN win.lo > 1 THEN '…' ELSE '' END
           || coalesce(string_agg(CASE WHEN hit
                                      THEN '<mark>' || html(s) || '</mark>'
                                      ELSE html(s) END, '' ORDER BY o), '')
           || CASE WHEN win.last > win.lo + 59 THEN '…' ELSE '' END
      FROM piece, win
     WHERE piece.o BETWEEN win.lo AND win.lo + 59
     GROUP BY win.lo, win.last
$$;

-- One page of results, best first.  q: the query as typed; kinds: a JSON
-- array of kinds (NULL: all); the cursor's (score, kind, id) or NULLs;
-- lim rows at most.
--
-- The words of q (10 at most) must all match, each as itself or within
-- its typo budget, the last one also as a prefix (type-ahead); a title
-- merely similar (pg_trgm) is a match too.  The score's millions say how
-- a document matched: 5 its title is the query, 4 its title starts with
-- it, 3 its title or context without typos, 2 with typos, 1 its body
-- only, or a similar title.  The rest orders within a tier: the head's
-- rank (title over context) in tiers 2 to 5, the title's similarity to
-- the query, and kind (artist, album, track, post).  Scores are
-- integers: the cursor compares them exactly.
CREATE FUNCTION search_page(q text, kinds jsonb, after_score bigint,
                            after_kind text, after_id uuid, lim integer)
    RETURNS TABLE (id uuid, type text, title text, snippet text,
                   score bigint)
    LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
    ws        text[];
    n         integer;
    qn        text;
    ks        text[];
    alts      text[];
    terms     text[] := '{}';
    strict_q  text := '';
    loose_q   text := '';
    one       text;
    tq        tsquery;
    tq_exact  tsquery;
BEGIN
    ws := (string_to_array(nullif(words_of(q), ''), ' '))[1:10];
    n := coalesce(cardinality(ws), 0);
    IF n = 0 THEN
        RETURN;
    END IF;
    qn := array_to_string(ws, ' ');
    ks := CASE WHEN kinds IS NULL OR jsonb_typeof(kinds) <> 'array'
               THEN ARRAY['artist', 'album', 'track', 'post']
               ELSE ARRAY(SELECT jsonb_array_elements_text(kinds)) END;

    FOR i IN 1 .. n LOOP
        alts := typo_words(ws[i], i = n);
        terms := terms || ws[i] || alts;
        one := term(ws[i]) || CASE WHEN i = n THEN ':*' ELSE '' END;
        strict_q := strict_q || CASE WHEN i > 1 THEN ' & ' ELSE '' END
                    || one;
        loose_q := loose_q || CASE WHEN i > 1 THEN ' & ' ELSE '' END
                   || '(' || one
                   || coalesce((SELECT string_agg(' | ' || term(a), '')
                                  FROM unnest(alts) a), '')
                   || ')';
    END LOOP;
    tq_exact := strict_q::tsquery;
    tq := loose_q::tsquery;

    -- planned for this query's terms each time (EXECUTE): whether the
    -- indexes or a scan pay depends on how many documents they match
    RETURN QUERY EXECUTE $q$
    WITH hit AS (
        SELECT d.kind, d.id,
               CASE WHEN d.name = $1 THEN 5
                    WHEN starts_with(d.name, $1) THEN 4
                    WHEN d.head_tsv @@ $3 THEN 3
                    WHEN d.head_tsv @@ $2 THEN 2
                    ELSE 1 END AS tier,
               d.head_tsv, d.name
          FROM docs d
         WHERE d.kind = ANY ($4)
           AND (d.head_tsv @@ $2 OR d.body_tsv @@ $2
                OR d.name OPERATOR(ext.%) $1)
    ), scored AS (
        SELECT h.kind, h.id,
               h.tier * 1000000::bigint
               + CASE WHEN h.tier >= 2
                      THEN (500000 * ts_rank(h.head_tsv, $2)
                            / (1 + ts_rank(h.head_tsv, $2)))::bigint
                      ELSE 0 END
               + (400000 * ext.similarity(h.name, $1))::bigint
               + CASE h.kind WHEN 'artist' THEN 30000 WHEN 'album' THEN 20000
                             WHEN 'track' THEN 10000 ELSE 0 END AS score
          FROM hit h
    ), page AS (
        SELECT * FROM scored s
         WHERE $5 IS NULL
            OR (s.score, s.kind, s.id) < ($5, $6, $7)
         ORDER BY s.score DESC, s.kind DESC, s.id DESC
         LIMIT $8
    )
    SELECT p.id, p.kind, d.title,
           coalesce(highlight(concat_ws(' · ', d.title,
                                        nullif(d.context, ''))
                              || coalesce(' — '
                                          || nullif(left(d.body, 2000), ''),
                                          ''),
                              $9, $10), ''),
           p.score
      FROM page p JOIN docs d ON d.kind = p.kind AND d.id = p.id
     ORDER BY p.score DESC, p.kind DESC, p.id DESC
    $q$ USING qn, tq, tq_exact, ks, after_score, after_kind, after_id, lim,
              terms, ws[n];
END $$;
