/*
 * sql.c — every statement the comments worker prepares, all
 * parameterised.  {comment} expands to the comment's column list
 * (entity.h); writes take the bound body as one jsonb parameter, and those
 * that decide by the caller declare two more parameters, which the kit
 * fills with the caller's id and rank (kit.h: 0 anonymous, 1 user,
 * 2 moderator, 3 admin).
 *
 * A post is "visible" while the replica says it is published and not
 * deleted (001_comments.sql); every statement that reads or writes a
 * comment asks for it.
 */

#include "comments.h"


const enc_pg_stmt_t  comments_statements[] = {

    /* ---- comments ---- */

    /* $1 post, $2 the last path seen, $3 page size + 1: one range scan of
       the unique (post_id, path) index, which is thread order */
    { "comments_list",
      "SELECT {c.comment}, c.path FROM comments c "
      "WHERE c.post_id = $1::uuid "
      "AND EXISTS (SELECT 1 FROM posts po "
      "            WHERE po.id = $1::uuid AND po.visible) "
      "AND ($2::text IS NULL OR c.path > $2::text) "
      "ORDER BY c.path LIMIT $3::int", 3 },

    /* the list's 404: run when its first page is empty */
    { "post_visible",
      "SELECT 1 FROM posts WHERE id = $1::uuid AND visible", 1 },

    /* $1 the bound body, with post_id, author_id and author filled by the
       kit.  No row when the post is not visible: 404 "no such post".  The
       parent is joined on the same post only, so a parent elsewhere (or
       nowhere) leaves the reply at depth 0 and the (parent_id, post_id)
       foreign key refuses it; a reply under depth 8 breaks the depth
       check: both 422 on parent_id (comments.c).  FOR SHARE: a concurrent
       unpublish or delete of the post waits for this insert, or, committed
       first, is seen by it. */
    { "comment_insert",
      "INSERT INTO comments ({comment:create}, depth, path) "
      "SELECT {p.comment:create}, coalesce(par.depth + 1, 0), "
      "  coalesce(par.path, '') || lpad(to_hex(s.n), 12, '0') "
      "FROM jsonb_populate_record(NULL::comments, $1::jsonb) p "
      "JOIN posts po ON po.id = p.post_id AND po.visible "
      "LEFT JOIN comments par "
      "  ON par.id = p.parent_id AND par.post_id = p.post_id "
      "CROSS JOIN (SELECT nextval('comments_path_seq') AS n) s "
      "FOR SHARE OF po "
      "RETURNING {comment}", 1 },

    /* $1 id, $2 the bound patch, $3 caller id, $4 rank: the author only */
    { "comment_update",
      "UPDATE comments t SET ({comment:patch}, updated_at) = "
      "(SELECT {p.comment:patch}, " ENC_TOUCHED("t") " "
      " FROM jsonb_populate_record(t, $2::jsonb) p) "
      "WHERE t.id = $1::uuid AND NOT t.deleted "
      "AND t.author_id = $3::uuid AND $4::int >= 1 "
      "AND EXISTS (SELECT 1 FROM posts po "
      "            WHERE po.id = t.post_id AND po.visible) "
      "RETURNING {t.comment}", 4 },

    /* $1 id, $2 caller id, $3 rank: the author or a moderator.  The
       comment keeps its place in the thread, emptied. */
    { "comment_delete",
      "UPDATE comments t SET body = '', deleted = true, "
      "updated_at = " ENC_TOUCHED("t") " "
      "WHERE t.id = $1::uuid AND NOT t.deleted "
      "AND (t.author_id = $2::uuid OR $3::int >= 2) "
      "AND EXISTS (SELECT 1 FROM posts po "
      "            WHERE po.id = t.post_id AND po.visible) "
      "RETURNING t.id", 3 },

    /* a write that matched no row: 403 when this returns one (the caller
       may see the comment, not change it), else 404 */
    { "comment_visible",
      "SELECT 1 FROM comments c JOIN posts po ON po.id = c.post_id "
      "WHERE c.id = $1::uuid AND NOT c.deleted AND po.visible", 1 },

    /* ---- the post replica (replica.c): $1 key, $2 data ---- */

    /* created, updated, published: the post's status; an event older than
       the one applied (updated_at) or after the delete changes nothing */
    { "post_upsert",
      "INSERT INTO posts AS po (id, published, updated_at) "
      "SELECT e.id, coalesce(e.d->>'status' = 'published', false), "
      "  as_time(e.d->>'updated_at') "
      "FROM (SELECT as_uuid($1) AS id, $2::jsonb AS d) e "
      "WHERE e.id IS NOT NULL "
      "ON CONFLICT (id) DO UPDATE "
      "SET published = excluded.published, updated_at = excluded.updated_at "
      "WHERE NOT po.deleted AND (po.updated_at IS NULL "
      "  OR excluded.updated_at IS NULL "
      "  OR po.updated_at <= excluded.updated_at)", 2 },

    /* deleted: a tombstone, whatever came before or comes after */
    { "post_forget",
      "INSERT INTO posts (id, deleted) "
      "SELECT e.id, true FROM (SELECT as_uuid($1) AS id, $2::jsonb AS d) e "
      "WHERE e.id IS NOT NULL "
      "ON CONFLICT (id) DO UPDATE SET deleted = true", 2 },

    /* encore.user.deleted, first: the author's lock, exclusively; every
       insert for that author takes it shared (the trigger,
       002_gone_authors.sql).  An insert that got it first has committed
       when this returns, so author_forget's snapshot, taken after, has its
       comment; one that comes later waits for this transaction and then
       finds the author in gone_authors.  A key that is no UUID locks
       nothing (the lock functions are strict) */
    { "author_lock",
      "SELECT pg_advisory_xact_lock(comments_author_lock(as_uuid($1))), "
      "$2::jsonb IS NULL", 2 },

    /* second: remembered, for the inserts that wait or come later */
    { "author_gone",
      "INSERT INTO gone_authors (id) SELECT as_uuid($1) "
      "WHERE as_uuid($1) IS NOT NULL AND $2::jsonb IS NOT NULL "
      "ON CONFLICT DO NOTHING", 2 },

    /* third: every comment of the account, published as updated
       (replica.c) */
    { "author_forget",
      "UPDATE comments t SET author_id = NULL, author = '[deleted]', "
      "updated_at = " ENC_TOUCHED("t") " "
      "WHERE author_id = as_uuid($1) AND $2::jsonb IS NOT NULL "
      "RETURNING {comment}", 2 },

    { NULL, NULL, 0 }
};
