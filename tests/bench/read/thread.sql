-- tests/bench/read/thread.sql — the thread the comments targets read
-- (`seed-file thread.sql` in targets): a published post in comments' post
-- replica and 10,000 comments under it, written straight into the schema
-- as the superuser, the way comment_insert (workers/comments/sql.c) would
-- have: path = the parent's path and a 12-hex-digit segment of
-- comments_path_seq, depth = the parent's + 1.
--
-- The tree: a fifth of the comments start a thread, the rest reply to one
-- of the 50 latest comments, biased towards the very latest (random()^3),
-- so chains run deep; a reply under a comment at depth 8 goes to its
-- parent instead.  1 % are deleted (empty body, deleted).  Deterministic
-- (setseed), idempotent (nothing happens once the post has comments).

DO $$
DECLARE
    p        uuid := 'b0000000-0000-4000-8000-00000000c0de';
    n        int := 10000;
    ids      uuid[] := '{}';
    paths    text[] := '{}';
    depths   int[] := '{}';
    parents  int[] := '{}';
    i        int;
    j        int;
    k        int;
    del      boolean;
    v_id     uuid;
    v_path   text;
BEGIN
    INSERT INTO comments.posts (id, published, updated_at)
        VALUES (p, true, now()) ON CONFLICT (id) DO NOTHING;
    IF EXISTS (SELECT 1 FROM comments.comments WHERE post_id = p) THEN
        RETURN;
    END IF;
    PERFORM setseed(0.42);
    FOR i IN 1..n LOOP
        IF i = 1 OR random() < 0.2 THEN
            j := 0;
        ELSE
            j := i - 1 - floor(random() ^ 3 * least(i - 1, 50))::int;
            WHILE depths[j] >= 8 LOOP
                j := parents[j];
            END LOOP;
        END IF;
        v_id := gen_random_uuid();
        v_path := CASE WHEN j = 0 THEN '' ELSE paths[j] END
                || lpad(to_hex(nextval('comments.comments_path_seq')), 12, '0');
        k := (random() * 59)::int + 1;
        del := random() < 0.01;
        INSERT INTO comments.comments (id, post_id, parent_id, author_id,
                author, body, deleted, depth, path, created_at, updated_at)
            VALUES (v_id, p, CASE WHEN j = 0 THEN NULL ELSE ids[j] END,
                md5('bench-reader-' || k)::uuid, 'reader_' || k,
                CASE WHEN del THEN '' ELSE 'Comment ' || i || ': '
                    || repeat('the bridge still gets me every time. ',
                              1 + (random() * 6)::int) END,
                del, CASE WHEN j = 0 THEN 0 ELSE depths[j] + 1 END, v_path,
                now() - (n - i) * interval '1 minute',
                now() - (n - i) * interval '1 minute');
        ids := ids || v_id;
        paths := paths || v_path;
        depths := depths || CASE WHEN j = 0 THEN 0 ELSE depths[j] + 1 END;
        parents := parents || j;
    END LOOP;
END
$$;
ANALYZE comments.comments;
