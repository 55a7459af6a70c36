/*
 * sql.c — every statement the search worker prepares, all parameterised.
 * The events' statements take $1 = the event's key, $2 = its data, and
 * the deletions $3 = its time (event_table.h); the replicas' triggers
 * write the documents (schemas/search/001_search.sql).
 */

#include "search.h"


/* the state's version: its updated_at (NULL when the event has none,
   and then the event changes nothing) */
#define VERSION  "as_time(d->>'updated_at')"

/* an event whose key and version can be read (else it changes nothing:
   a poison event must not stop the ones after it) */
#define READABLE                                                             \
    "as_uuid($1) IS NOT NULL AND " VERSION " IS NOT NULL"

/* a newer state wins; a tombstone at least as new stays */
#define NEWER(t)                                                             \
    "WHERE " t ".version < EXCLUDED.version"

/* a deletion: a tombstone at the event's time (now when it has none),
   unless a newer state is there (the id came back) */
#define FORGET(t)                                                            \
    "INSERT INTO " t " (id, version, deleted) "                              \
    "SELECT as_uuid($1), coalesce(as_time($3), now()), true "                \
    "WHERE as_uuid($1) IS NOT NULL AND $2::jsonb IS NOT NULL "               \
    "ON CONFLICT (id) DO UPDATE SET deleted = true, "                        \
    "    version = EXCLUDED.version "                                        \
    "WHERE " t ".version <= EXCLUDED.version"

/* an album or a track: its parent's id and its title */
#define CHILD_UPSERT(t, parent)                                              \
    "INSERT INTO " t " (id, " parent ", title, version) "                    \
    "SELECT as_uuid($1), as_uuid(d->>'" parent "'), "                        \
    "       coalesce(d->>'title', ''), " VERSION " "                         \
    "FROM (SELECT $2::jsonb AS d) e WHERE " READABLE " "                     \
    "ON CONFLICT (id) DO UPDATE SET " parent " = EXCLUDED." parent ", "      \
    "    title = EXCLUDED.title, version = EXCLUDED.version, "               \
    "    deleted = false " NEWER(t)


const enc_pg_stmt_t  search_statements[] = {

    /* ---- the query (results.c): q, type (a JSON array or NULL), the
       cursor's score, type and id, the page size + 1 ---- */

    { "search_page",
      "SELECT id, type, title, snippet, score "
      "FROM search_page($1::text, $2::jsonb, $3::bigint, $4::text, "
      "                 $5::uuid, $6::int)", 6 },

    /* ---- consumed events (replica.c) ---- */

    { "artist_upsert",
      "INSERT INTO artists (id, name, version) "
      "SELECT as_uuid($1), coalesce(d->>'name', ''), " VERSION " "
      "FROM (SELECT $2::jsonb AS d) e WHERE " READABLE " "
      "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, "
      "    version = EXCLUDED.version, deleted = false "
      NEWER("artists"), 2 },

    { "artist_forget", FORGET("artists"), 3 },

    { "album_upsert", CHILD_UPSERT("albums", "artist_id"), 2 },

    { "album_forget", FORGET("albums"), 3 },

    { "track_upsert", CHILD_UPSERT("tracks", "album_id"), 2 },

    { "track_forget", FORGET("tracks"), 3 },

    /* a post is a document while published: a draft's state is kept
       (versioned) but not searchable */
    { "post_upsert",
      "INSERT INTO posts (id, title, body, tags, artist_ids, published, "
      "                   version) "
      "SELECT as_uuid($1), coalesce(d->>'title', ''), coalesce(d->>'body', ''), "
      "       ARRAY(SELECT jsonb_array_elements_text("
      "                 CASE jsonb_typeof(d->'tags') WHEN 'array' "
      "                 THEN d->'tags' ELSE '[]' END)), "
      "       ARRAY(SELECT as_uuid(a) FROM jsonb_array_elements_text("
      "                 CASE jsonb_typeof(d->'artist_ids') WHEN 'array' "
      "                 THEN d->'artist_ids' ELSE '[]' END) a "
      "             WHERE as_uuid(a) IS NOT NULL), "
      "       d->>'status' = 'published', " VERSION " "
      "FROM (SELECT $2::jsonb AS d) e WHERE " READABLE " "
      "ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title, "
      "    body = EXCLUDED.body, tags = EXCLUDED.tags, "
      "    artist_ids = EXCLUDED.artist_ids, "
      "    published = EXCLUDED.published, version = EXCLUDED.version, "
      "    deleted = false "
      NEWER("posts"), 2 },

    { "post_forget", FORGET("posts"), 3 },

    { NULL, NULL, 0 }
};
