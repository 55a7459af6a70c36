/*
 * sql.c — every statement the content worker prepares, all parameterised.
 * {post} expands to the post's column list (entity.h); writes take the
 * bound body as one jsonb parameter.  Statements that declare the caller's
 * two parameters after their own get them (kit.h): caller id (NULL when
 * anonymous), rank (0 anonymous, 1 user, 2 moderator, 3 admin).
 */

#include "content.h"



/* who may see a post ($id, $caller, $rank): published, or its author's,
   or a moderator's+ */
#define SEEN(t, id, caller, rank)                                            \
    t ".id = " id "::uuid AND (" t ".status = 'published' OR "              \
    t ".author_id = " caller "::uuid OR " rank "::int >= 2)"

/* who may change it: its author or a moderator+ */
#define OWNED(t, caller, rank)                                               \
    "(" t ".author_id = " caller "::uuid OR " rank "::int >= 2)"

/* the list filters other than the one driving a statement's index:
   $1 artist_id, $2 author_id, $3 tag (lower-cased), $4 status */
#define BY_ARTIST(p)                                                         \
    "($1::uuid IS NULL OR " p ".artist_ids @> ARRAY[$1::uuid]) "
#define BY_AUTHOR(p)                                                         \
    "($2::uuid IS NULL OR " p ".author_id = $2::uuid) "
#define BY_TAG(p)                                                            \
    "($3::text IS NULL OR " p ".tags @> ARRAY[$3::text]) "
/* ?status=published is the published list itself (draft has its own) */
#define PUBLISHED_LIST                                                       \
    "($4::text IS NULL OR $4::text = 'published') "

/* page: $5/$6 the last (sort time, id) seen, $7 page size + 1; newest
   first */
#define AFTER(at, id)                                                        \
    "($5::timestamptz IS NULL OR (" at ", " id ") < ($5::timestamptz, "     \
    "$6::uuid)) "


const enc_pg_stmt_t  content_statements[] = {

    /* ---- posts ---- */

    { "post_get",
      "SELECT {p.post} FROM posts p WHERE " SEEN("p", "$1", "$2", "$3"),
      3 },

    /* for the 403-or-404 of a write that matched no row (entity.h) */
    { "post_visible",
      "SELECT 1 FROM posts p WHERE " SEEN("p", "$1", "$2", "$3"), 3 },

    /* published_at and first_publish are the trigger's (001_content.sql):
       event "published" after "created" on a first publish */
    { "post_insert",
      "INSERT INTO posts ({post:create}) "
      "SELECT {p.post:create} "
      "FROM jsonb_populate_record(NULL::posts, $1::jsonb) p "
      "RETURNING {post}, "
      "CASE WHEN first_publish THEN 'published' END AS event", 1 },

    { "post_update",
      "UPDATE posts t SET ({post:patch}, updated_at) = "
      "(SELECT {p.post:patch}, " ENC_TOUCHED("t") " "
      " FROM jsonb_populate_record(t, $2::jsonb) p) "
      "WHERE t.id = $1::uuid AND " OWNED("t", "$3", "$4") " "
      "RETURNING {t.post}, "
      "CASE WHEN t.first_publish THEN 'published' END AS event", 4 },

    { "post_delete",
      "DELETE FROM posts t WHERE t.id = $1::uuid AND "
      OWNED("t", "$2", "$3") " RETURNING t.id", 3 },

    /* $1 a JSON array of artist ids: those the replica does not have, as
       (field, id), in the body's order; those it has are locked until
       the write commits (posts.c, posts_check) */
    { "artists_check",
      "WITH want AS (SELECT w.id::uuid AS id, w.i "
      "              FROM jsonb_array_elements_text($1::jsonb) "
      "                   WITH ORDINALITY w(id, i)), "
      "have AS (SELECT a.id FROM artists a "
      "         WHERE a.id IN (SELECT id FROM want) FOR KEY SHARE) "
      "SELECT 'artist_ids[' || (w.i - 1) || ']', w.id FROM want w "
      "WHERE w.id NOT IN (SELECT id FROM have) ORDER BY w.i", 1 },

    /* ---- lists: one per filter shape, each one index scan in order ---- */

    { "posts_list",
      "SELECT {p.post}, p.listed_at AS k_at, p.id AS k_id FROM posts p "
      "WHERE p.listed_at IS NOT NULL AND " BY_ARTIST("p") "AND "
      BY_AUTHOR("p") "AND " BY_TAG("p") "AND " PUBLISHED_LIST "AND "
      AFTER("p.listed_at", "p.id")
      "ORDER BY p.listed_at DESC, p.id DESC LIMIT $7::int", 7 },

    { "posts_list_artist",
      "SELECT {p.post}, pa.listed_at AS k_at, pa.post_id AS k_id "
      "FROM post_artists pa JOIN posts p ON p.id = pa.post_id "
      "WHERE pa.artist_id = $1::uuid AND pa.listed_at IS NOT NULL AND "
      BY_AUTHOR("p") "AND " BY_TAG("p") "AND " PUBLISHED_LIST "AND "
      AFTER("pa.listed_at", "pa.post_id")
      "ORDER BY pa.listed_at DESC, pa.post_id DESC LIMIT $7::int", 7 },

    { "posts_list_tag",
      "SELECT {p.post}, pt.listed_at AS k_at, pt.post_id AS k_id "
      "FROM post_tags pt JOIN posts p ON p.id = pt.post_id "
      "WHERE pt.tag = $3::text AND pt.listed_at IS NOT NULL AND "
      BY_ARTIST("p") "AND " BY_AUTHOR("p") "AND " PUBLISHED_LIST "AND "
      AFTER("pt.listed_at", "pt.post_id")
      "ORDER BY pt.listed_at DESC, pt.post_id DESC LIMIT $7::int", 7 },

    { "posts_list_author",
      "SELECT {p.post}, p.listed_at AS k_at, p.id AS k_id FROM posts p "
      "WHERE p.author_id = $2::uuid AND p.listed_at IS NOT NULL AND "
      BY_ARTIST("p") "AND " BY_TAG("p") "AND " PUBLISHED_LIST "AND "
      AFTER("p.listed_at", "p.id")
      "ORDER BY p.listed_at DESC, p.id DESC LIMIT $7::int", 7 },

    /* $8 the caller (never anonymous here: posts.c answers 401), $9 its
       rank; newest first by creation, which no write moves */
    { "posts_list_drafts",
      "SELECT {p.post}, p.created_at AS k_at, p.id AS k_id FROM posts p "
      "WHERE p.author_id = $8::uuid AND p.status = 'draft' "
      "AND $9::int >= 1 AND $4::text = 'draft' AND "
      BY_ARTIST("p") "AND " BY_AUTHOR("p") "AND " BY_TAG("p") "AND "
      AFTER("p.created_at", "p.id")
      "ORDER BY p.created_at DESC, p.id DESC LIMIT $7::int", 9 },

    /* ---- consumed events (replica.c): $1 the event's key, $2 its data ---- */

    /* a create or an update of an artist: the replica row as it is now
       (per-key order on the topic makes the last event win) */
    { "artist_upsert",
      "INSERT INTO artists (id, name, slug, updated_at) "
      "SELECT $1::uuid, coalesce(d->>'name', ''), coalesce(d->>'slug', ''), "
      "       now() "
      "FROM (SELECT $2::jsonb AS d) e "
      "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, "
      "    slug = EXCLUDED.slug, updated_at = EXCLUDED.updated_at", 2 },

    /* first of an artist's deletion: the replica row goes, after the
       writes that checked it (holding it FOR KEY SHARE) commit; from now
       on a write naming it waits for this transaction, then finds it gone
       (422).  $2 is the event's data ({"id"}), unused */
    { "artist_forget",
      "DELETE FROM artists WHERE id = $1::uuid AND $2::jsonb IS NOT NULL",
      2 },

    /* second: the posts naming it lose it, each answered as an updated
       post (its event).  Its own statement, so its snapshot is taken
       after artist_forget's wait: it sees every post written by the
       writes that waited it out (a CTE would see the snapshot taken
       before the wait and miss them) */
    { "artist_unlink",
      "UPDATE posts t SET artist_ids = array_remove(t.artist_ids, $1::uuid), "
      "    updated_at = " ENC_TOUCHED("t") " "
      "WHERE t.artist_ids @> ARRAY[$1::uuid] AND $2::jsonb IS NOT NULL "
      "RETURNING {t.post}", 2 },

    /* first of a user's deletion: the author's lock, exclusively; every
       insert for that author takes it shared (the trigger,
       001_content.sql).  An insert that got it first has committed when
       this returns, so author_forget's snapshot, taken after, has its
       post; one that comes later waits for this transaction and then
       finds the user in gone_authors */
    { "author_lock",
      "SELECT pg_advisory_xact_lock(content_author_lock($1::uuid)), "
      "$2::jsonb IS NULL", 2 },

    /* second: remembered, for the inserts that wait */
    { "author_gone",
      "INSERT INTO gone_authors (id) SELECT $1::uuid "
      "WHERE $2::jsonb IS NOT NULL ON CONFLICT DO NOTHING", 2 },

    /* third: their posts, drafts included, each an updated post */
    { "author_forget",
      "UPDATE posts t SET author_id = NULL, author = '[deleted]', "
      "    updated_at = " ENC_TOUCHED("t") " "
      "WHERE t.author_id = $1::uuid AND $2::jsonb IS NOT NULL "
      "RETURNING {t.post}", 2 },

    { NULL, NULL, 0 }
};
