-- Search: bounded queries and a smaller index (issue 10's latency aim).
--
-- Until now search_page() scored every document that matched before the
-- page was cut: "the" as a prefix matched 27,000 of 108,000 documents
-- and took 760 ms.  Now each way of matching is one index step that
-- yields `cap` (200) candidates at most, for the catalog and for the
-- posts apart (partial indexes), so that the posts never crowd out the
-- catalog's few thousand documents:
--
--   the title is the query or starts with it   btree on name (C order)
--   the head's words, without typos            GIN on head_tsv
--   the head's words, with typos               GIN on head_tsv
--   a similar catalog title (q of 3+ chars)    GIN trigram on name
--   a post's body (only when the tiers above   GIN on the post replica's
--   do not fill the page)                      to_tsvector(body)
--
-- Only their union is scored, and only in the tiers the page can come
-- from; the snippet is made for the page's rows only, from the 300
-- characters around the first match.  A step with more matches than
-- `cap` keeps the shortest catalog titles, and for the posts some `cap`
-- of them (the same for every page of a query while the index does not
-- change, so paging stays stable).  A last word under 3 characters is
-- not expanded as a prefix in the word steps ("a" would match every
-- word starting with a); the title step still takes it as one.
--
-- The documents hold no body any more, nor its tsvector: a post's body
-- is matched through an expression index on the post replica, and read
-- from there for its snippet (a body was stored three times, as the
-- replica's text, the document's and the document's tsvector).

DROP TRIGGER docs_words ON docs;
ALTER TABLE docs DROP COLUMN body CASCADE;      -- body_tsv and its index too

-- a published post's body, matched through an expression index on the
-- replica: no second copy of the text or its words
CREATE INDEX posts_body ON posts
    USING gin (to_tsvector('simple', words_of(body)))
    WHERE published AND NOT deleted;
-- no statistics of its own: ANALYZE would compute the tsvector of every
-- row it samples, and the step reading it is bounded anyway
ALTER INDEX posts_body ALTER COLUMN 1 SET STATISTICS 0;

-- the vocabulary: the documents' heads, and the published posts' bodies
CREATE OR REPLACE FUNCTION docs_words() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO words (word)
    SELECT w FROM unnest(tsvector_to_array(NEW.head_tsv)) w
     WHERE char_length(w) BETWEEN 4 AND 64
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER docs_words AFTER INSERT OR UPDATE OF title, context
    ON docs FOR EACH ROW EXECUTE FUNCTION docs_words();

CREATE FUNCTION posts_words() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO words (word)
    SELECT w FROM unnest(tsvector_to_array(
                      to_tsvector('simple', words_of(NEW.body)))) w
     WHERE char_length(w) BETWEEN 4 AND 64
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER posts_words AFTER INSERT OR UPDATE OF body, published, deleted
    ON posts FOR EACH ROW WHEN (NEW.published AND NOT NEW.deleted)
    EXECUTE FUNCTION posts_words();

-- each index in two: the catalog's (a few thousand documents, what a
-- name typed is mostly after) and the posts' (many), so that neither's
-- candidates crowd out the other's; only the catalog's titles are
-- matched by similarity
DROP INDEX docs_head;
DROP INDEX docs_name_trgm;
CREATE INDEX docs_head_catalog ON docs USING gin (head_tsv)
    WHERE kind <> 'post';
CREATE INDEX docs_head_post ON docs USING gin (head_tsv)
    WHERE kind = 'post';
CREATE INDEX docs_name_catalog ON docs (name COLLATE "C")
    WHERE kind <> 'post';
CREATE INDEX docs_name_post ON docs (name COLLATE "C")
    WHERE kind = 'post';
CREATE INDEX docs_name_trgm ON docs USING gin (name ext.gin_trgm_ops)
    WHERE kind <> 'post';

-- the documents of kind k with these ids, as the replicas say now: gone
-- when there is no source, written when it changed (the body is no
-- longer a document's)
CREATE OR REPLACE FUNCTION refresh_docs(k text, ids uuid[]) RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE
    src  record;
    keep uuid[] := '{}';
BEGIN
    FOR src IN SELECT * FROM doc_sources(k, ids) LOOP
        keep := keep || src.id;
        INSERT INTO docs AS d (kind, id, title, context)
        VALUES (k, src.id, src.title, src.context)
        ON CONFLICT (kind, id) DO UPDATE
           SET title = EXCLUDED.title, context = EXCLUDED.context
         WHERE (d.title, d.context)
               IS DISTINCT FROM (EXCLUDED.title, EXCLUDED.context);
    END LOOP;
    DELETE FROM docs d
     WHERE d.kind = k AND d.id = ANY (ids) AND d.id <> ALL (keep);
END $$;

-- the vocabulary's words within w's typo budget (typo_words() of
-- 001_search.sql): those of a similar length are now taken from a
-- trigram index first.  k edits change at most 3k of a word's n + 2
-- trigrams, so a word within the budget (1 edit at 5+ characters, 2 at
-- 9+) keeps a similarity of 0.26 at least (unless its trigrams repeat):
-- 0.2 loses none of them, and levenshtein then runs on a few dozen
-- words, not on the thousands of a similar length.  The prefix branch
-- is as it was.
CREATE INDEX words_trgm ON words USING gin (word ext.gin_trgm_ops);

CREATE OR REPLACE FUNCTION typo_words(w text, prefix boolean)
    RETURNS text[]
    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
    SET pg_trgm.similarity_threshold = 0.2 AS $$
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
    SELECT coalesce(array_agg(x.word ORDER BY x.word), '{}')
      FROM (SELECT v.word FROM words v
             WHERE v.word OPERATOR(ext.%) $1 AND v.word <> $1
               AND v.len BETWEEN $2 - $3 AND $2 + $3
               AND ext.levenshtein_less_equal(v.word, $1, $3) <= $3
            UNION
            -- a word the typed one begins, typos and all: its first
            -- letter right (what a typist rarely misses; it keeps the
            -- scan to a letter's words)
            SELECT v.word FROM words v
             WHERE $4 AND v.len > $2 + $3
               AND v.word >= $5 AND v.word < $5 || chr(1114111)
               AND least(ext.levenshtein_less_equal(left(v.word, $2 - 1), $1, $3),
                         ext.levenshtein_less_equal(left(v.word, $2), $1, $3),
                         ext.levenshtein_less_equal(left(v.word, $2 + 1), $1, $3))
                   <= $3) x
    $q$ INTO out USING w, n, k, prefix, left(w, 1);
    RETURN out;
END $$;

-- text as HTML with the matched words in <mark>: a word matches when it
-- is one of terms, or starts with pre (the query's last word); a window
-- of 60 pieces (words and what separates them) from a little before the
-- first match, "…" where it was cut.  As 001_search.sql's, but cheaper
-- (it was most of a query's time, folding each word of a post's body
-- alone): a long text is first cut to the 300 characters around its
-- first match, found by one regular expression over the folded text
-- (terms and pre are letters and digits only: words_of()), and the
-- pieces are folded all at once, one by one only when folding changed
-- how the text cuts into pieces.
CREATE OR REPLACE FUNCTION highlight(src text, terms text[], pre text)
    RETURNS text
    LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    pos         integer;
    lo          integer := 1;
    part        text := src;
    cut_before  boolean := false;
    cut_after   boolean := false;
    o           text[];
    f           text[];
BEGIN
    IF char_length(src) > 300 THEN
        pos := regexp_instr(fold(src),
                   '(^|[^[:alnum:]])(('
                   || coalesce(array_to_string(terms, '|'), '')
                   || ')([^[:alnum:]]|$)'
                   || CASE WHEN pre <> '' THEN '|' || pre ELSE '' END
                   || ')');
        lo := greatest(1, pos - 60);
        part := substr(src, lo, 300);
        cut_before := lo > 1;
        cut_after := lo + 300 <= char_length(src);
        -- whole words only at a cut
        IF cut_before THEN
            part := regexp_replace(part, '^[[:alnum:]]+', '');
        END IF;
        IF cut_after THEN
            part := regexp_replace(part, '[[:alnum:]]+$', '');
        END IF;
    END IF;
    o := ARRAY(SELECT r.m[1] FROM regexp_matches(part,
                   '[[:alnum:]]+|[^[:alnum:]]+', 'g') r(m));
    f := ARRAY(SELECT r.m[1] FROM regexp_matches(fold(part),
                   '[[:alnum:]]+|[^[:alnum:]]+', 'g') r(m));
    IF cardinality(f) <> cardinality(o) THEN
        f := ARRAY(SELECT fold(x) FROM unnest(o) x);
    END IF;
    RETURN (
        WITH piece AS (
            SELECT u.s, u.o,
                   u.s ~ '^[[:alnum:]]' AND u.fs ~ '^[[:alnum:]]'
                   AND (u.fs = ANY (terms)
                        OR (pre IS NOT NULL AND starts_with(u.fs, pre)))
                       AS hit
              FROM unnest(o, f) WITH ORDINALITY u(s, fs, o)
        ), win AS (
            SELECT greatest(1, least(coalesce(min(piece.o)
                                              FILTER (WHERE hit), 1) - 12,
                                     max(piece.o) - 59)) AS lo,
                   max(piece.o) AS last
              FROM piece
        )
        SELECT CASE WHEN win.lo > 1 OR cut_before THEN '…' ELSE '' END
               || coalesce(string_agg(CASE WHEN hit
                                          THEN '<mark>' || html(s) || '</mark>'
                                          ELSE html(s) END, ''
                                      ORDER BY piece.o), '')
               || CASE WHEN win.last > win.lo + 59 OR cut_after THEN '…'
                       ELSE '' END
          FROM piece, win
         WHERE piece.o BETWEEN win.lo AND win.lo + 59
         GROUP BY win.lo, win.last);
END $$;

-- One page of results, best first.  q: the query as typed; kinds: a JSON
-- array of kinds (NULL: all); the cursor's (score, kind, id) or NULLs;
-- lim rows at most; cap: the candidates of each index step.
--
-- The words of q (10 at most) must all match, each as itself or within
-- its typo budget, the last one (3+ characters) also as a prefix
-- (type-ahead); a title that starts with q is a match, and so is a
-- catalog title merely similar to a q of 3+ characters (pg_trgm).  The
-- score's millions say how a document matched: 5 its title is the
-- query, 4 its title starts with it, 3 its title or context without
-- typos, 2 with typos, 1 its body only, or a similar title.  The rest
-- orders within a tier: the head's rank (title over context) in tiers 2
-- to 5, the title's similarity to the query, and kind (artist, album,
-- track, post).  Scores are integers: the cursor compares them exactly.
--
-- The candidates: for the catalog and for the posts apart, `cap` at
-- most from each index step (above); only their union is scored.
DROP FUNCTION search_page(text, jsonb, bigint, text, uuid, integer);
CREATE FUNCTION search_page(q text, kinds jsonb, after_score bigint,
                            after_kind text, after_id uuid, lim integer,
                            cap integer DEFAULT 200)
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
    typo      boolean := false;
    terms     text[] := '{}';
    strict_q  text := '';
    loose_q   text := '';
    one       text;
    tq        tsquery;
    tq_exact  tsquery;
    catalog   boolean;
    grp       text;
    ord       text;
    steps     text[] := '{}';
    body      text := '';
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
        alts := typo_words(ws[i], i = n AND char_length(ws[i]) >= 3);
        typo := typo OR cardinality(alts) > 0;
        terms := terms || ws[i] || alts;
        one := term(ws[i])
               || CASE WHEN i = n AND char_length(ws[i]) >= 3 THEN ':*'
                       ELSE '' END;
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

    -- the index steps, each bounded (fixed text only: every value is a
    -- parameter); the group's condition picks its partial indexes
    FOREACH catalog IN ARRAY ARRAY[true, false] LOOP
        CONTINUE WHEN catalog AND NOT ks && ARRAY['artist', 'album', 'track'];
        CONTINUE WHEN NOT catalog AND NOT 'post' = ANY (ks);
        grp := CASE WHEN catalog THEN 'd.kind <> ''post'''
                    ELSE 'd.kind = ''post''' END;
        -- the catalog's few thousand documents afford an order: the
        -- shortest titles (the most similar) first, the same ones
        -- whatever the table's physical order (a rebuild's is another)
        ord := CASE WHEN catalog THEN 'ORDER BY char_length(d.name), d.id'
                    ELSE '' END;
        steps := steps
            || format($s$SELECT d.kind, d.id, d.name, d.head_tsv FROM docs d
                  WHERE %s AND d.name COLLATE "C" >= $1
                    AND d.name COLLATE "C" < $1 || chr(1114111)
                    AND d.kind = ANY ($4)
                  ORDER BY d.name COLLATE "C" LIMIT $11$s$, grp)
            || format($s$SELECT d.kind, d.id, d.name, d.head_tsv FROM docs d
                  WHERE %s AND d.head_tsv @@ $3 AND d.kind = ANY ($4)
                  %s LIMIT $11$s$, grp, ord);
        IF typo THEN
            steps := steps
                || format($s$SELECT d.kind, d.id, d.name, d.head_tsv
                      FROM docs d
                      WHERE %s AND d.head_tsv @@ $2 AND d.kind = ANY ($4)
                      %s LIMIT $11$s$, grp, ord);
        END IF;
        IF catalog AND char_length(qn) >= 3 THEN
            steps := steps
                || format($s$SELECT d.kind, d.id, d.name, d.head_tsv
                      FROM docs d
                      WHERE %s AND d.name OPERATOR(ext.%%) $1
                        AND d.kind = ANY ($4) %s LIMIT $11$s$, grp, ord);
        END IF;
    END LOOP;
    IF cardinality(steps) = 0 THEN
        RETURN;
    END IF;
    -- the posts' bodies: the lowest tier, read only when the tiers above
    -- it (below the cursor's) do not fill the page by themselves
    IF 'post' = ANY (ks) THEN
        body := $s$
        UNION
        SELECT b.kind, b.id, b.name, b.head_tsv,
               CASE WHEN b.name = $1 THEN 5
                    WHEN starts_with(b.name, $1) THEN 4
                    WHEN b.head_tsv @@ $3 THEN 3
                    WHEN b.head_tsv @@ $2 THEN 2
                    ELSE 1 END AS tier
          FROM (SELECT p.id FROM posts p
                 WHERE p.published AND NOT p.deleted
                   AND to_tsvector('simple', words_of(p.body)) @@ $2
                 LIMIT $11) m
          JOIN docs b ON b.kind = 'post' AND b.id = m.id
         WHERE (SELECT count(*) FROM head h
                 WHERE h.tier BETWEEN 2 AND coalesce($5 / 1000000 - 1, 5))
               < $8$s$;
    END IF;

    -- planned for this query's values each time (EXECUTE)
    RETURN QUERY EXECUTE $q$
    WITH cand AS (
        ($q$ || array_to_string(steps, ')
        UNION
        (') || $q$)
    ), head AS MATERIALIZED (
        SELECT c.kind, c.id, c.name, c.head_tsv,
               CASE WHEN c.name = $1 THEN 5
                    WHEN starts_with(c.name, $1) THEN 4
                    WHEN c.head_tsv @@ $3 THEN 3
                    WHEN c.head_tsv @@ $2 THEN 2
                    ELSE 1 END AS tier
          FROM cand c
    ), hit AS MATERIALIZED (
        SELECT * FROM head$q$ || body || $q$
    ), cut AS (
        -- the tiers the page can come from: the cursor's (all of it
        -- when there is none) and those below it down to the first
        -- that, with the ones between, holds a page (a lower tier's
        -- rows all rank after those); only they are scored
        SELECT coalesce(max(t.tier) FILTER (WHERE t.upto >= $8), 0) AS lo,
               coalesce($5 / 1000000, 5) AS hi
          FROM (SELECT h.tier, sum(count(*)) OVER (ORDER BY h.tier DESC)
                           AS upto
                  FROM hit h
                 WHERE h.tier < coalesce($5 / 1000000, 6)
                 GROUP BY h.tier) t
    ), scored AS (
        SELECT h.kind, h.id,
               h.tier * 1000000::bigint
               + (500000 * r.r / (1 + r.r))::bigint
               + (400000 * ext.similarity(h.name, $1))::bigint
               + CASE h.kind WHEN 'artist' THEN 30000 WHEN 'album' THEN 20000
                             WHEN 'track' THEN 10000 ELSE 0 END AS score
          FROM hit h CROSS JOIN cut,
               LATERAL (SELECT CASE WHEN h.tier >= 2
                                    THEN ts_rank(h.head_tsv, $2)
                                    ELSE 0 END AS r OFFSET 0) r
         WHERE h.tier BETWEEN cut.lo AND cut.hi
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
                                          || nullif(left(b.body, 2000), ''),
                                          ''),
                              $9, $10), ''),
           p.score
      FROM page p JOIN docs d ON d.kind = p.kind AND d.id = p.id
      LEFT JOIN posts b ON p.kind = 'post' AND b.id = p.id
     ORDER BY p.score DESC, p.kind DESC, p.id DESC
    $q$ USING qn, tq, tq_exact, ks, after_score, after_kind, after_id, lim,
              terms, ws[n], cap;
END $$;
