-- tests/bench/search/seed.sql — 100,000 generated published posts in the
-- search worker's post replica (the bench's `seed`), written straight
-- into the schema as the superuser, the way post_upsert would have: the
-- triggers make their documents and vocabulary.  One run adds
-- bench.batch posts at most (run loops, with ANALYZE between: the
-- triggers' plans need the tables' growth in the statistics).  Titles and bodies are
-- drawn from a vocabulary of the Chinook titles' words plus 3,000 made-up
-- ones (Zipf-like: random()^3 favours the first), 2 to 4 of the demo
-- artists each.  Deterministic (setseed), idempotent (nothing happens once
-- the generated posts are there): bench.n posts in all.

-- the index's functions name its tables as the worker's role sees them
SET search_path = search;
-- each batch its own sequence, the same in every run
SELECT setseed((SELECT count(*) FROM search.posts WHERE title LIKE 'Bench %')
               / 1000000.0);

DO $$
DECLARE
    voc  text[];
    arts uuid[];
    nv   int;
    na   int;
    todo int;
BEGIN
    todo := least(current_setting('bench.batch')::int,
                  current_setting('bench.n')::int
                  - (SELECT count(*) FROM search.posts
                      WHERE title LIKE 'Bench %'));
    IF todo <= 0 THEN
        RETURN;
    END IF;

    SELECT array_agg(w ORDER BY w) INTO voc FROM (
        SELECT DISTINCT w FROM search.docs d,
               unnest(tsvector_to_array(d.head_tsv)) w
         WHERE d.kind <> 'post' AND char_length(w) >= 3
        UNION
        SELECT substr(md5(g::text), 1, 4 + g % 6)
          FROM generate_series(1, 3000) g) v;
    SELECT array_agg(id ORDER BY id) INTO arts FROM search.artists
     WHERE NOT deleted;
    nv := cardinality(voc);
    na := cardinality(arts);

    INSERT INTO search.posts (id, title, body, tags, artist_ids, published,
                              version)
    SELECT gen_random_uuid(),
           'Bench ' || (SELECT string_agg(voc[1 + floor(random() ^ 3 * nv)::int], ' ')
                          FROM generate_series(1, 3 + g % 5) k WHERE g > 0),
           (SELECT string_agg(voc[1 + floor(random() ^ 3 * nv)::int], ' ')
              FROM generate_series(1, 40 + g % 120) k WHERE g > 0),
           ARRAY['bench', 'tag' || (g % 50)],
           ARRAY(SELECT DISTINCT arts[1 + floor(random() * na)::int]
                   FROM generate_series(1, 2 + g % 3) k WHERE g > 0),
           true, now()
      FROM generate_series(1, todo) g;
END $$;
