/*
 * sql.c — every statement the catalog worker prepares, all parameterised.
 * {artist}, {album}, {track} expand to the entities' column lists
 * (entity.h); writes take the bound body as one jsonb parameter.
 */

#include "catalog.h"



const enc_pg_stmt_t  catalog_statements[] = {

    /* ---- artists ---- */

    { "artist_get",
      "SELECT {artist} FROM artists WHERE id = $1::uuid", 1 },

    { "artist_exists",
      "SELECT 1 FROM artists WHERE id = $1::uuid", 1 },

    /* $1 genre, $2 name prefix, $3/$4 the last (sort_name, id) seen,
       $5 page size + 1.  The prefix is a range on the C-collated sort key
       (an index scan with parameters; prefix_end is its inclusive end,
       002_prefix_end.sql), rechecked on the whole name since the key is
       cut at 64 characters; a prefix that folds to nothing (combining
       marks alone) is the prefix of no name. */
    { "artists_list",
      "SELECT {artist}, sort_name FROM artists "
      "WHERE ($1::text IS NULL OR genres @> ARRAY[$1::text]) "
      "AND ($2::text IS NULL "
      "     OR (fold($2) <> '' AND sort_name >= left(fold($2), 64) "
      "         AND sort_name <= prefix_end(left(fold($2), 64)) "
      "         AND starts_with(fold(name), fold($2)))) "
      "AND ($3::text IS NULL OR (sort_name, id) > ($3::text, $4::uuid)) "
      "ORDER BY sort_name, id LIMIT $5::int", 5 },

    /* $1 the ids as a JSON array, $2 the last position seen, $3 page
       size + 1: the artists in the order of the ids (internal_artists) */
    { "artists_batch",
      "SELECT {a.artist}, t.position FROM "
      "jsonb_array_elements_text($1::jsonb) WITH ORDINALITY t(id, position) "
      "JOIN artists a ON a.id = t.id::uuid "
      "WHERE ($2::bigint IS NULL OR t.position > $2::bigint) "
      "ORDER BY t.position LIMIT $3::int", 3 },

    { "artist_insert",
      "INSERT INTO artists ({artist:create}) "
      "SELECT {p.artist:create} "
      "FROM jsonb_populate_record(NULL::artists, $1::jsonb) p "
      "RETURNING {artist}", 1 },

    { "artist_update",
      "UPDATE artists t SET ({artist:patch}, updated_at) = "
      "(SELECT {p.artist:patch}, " ENC_TOUCHED("t") " "
      " FROM jsonb_populate_record(t, $2::jsonb) p) "
      "WHERE t.id = $1::uuid RETURNING {t.artist}", 2 },

    /* before artist_delete, each its own statement (cascade.c): the
       artist first, so no album can be added to it, then its albums, so
       no track can be added to them; the delete's snapshot, taken after
       both, then holds every child the foreign keys will look for */
    { "artist_lock",
      "SELECT id FROM artists WHERE id = $1::uuid FOR UPDATE", 1 },

    { "artist_albums_lock",
      "SELECT id FROM albums WHERE artist_id = $1::uuid FOR UPDATE", 1 },

    /* one statement, so the three deletes are one snapshot and the
       (NO ACTION) foreign keys are checked once, at its end */
    { "artist_delete",
      "WITH a AS (DELETE FROM artists WHERE id = $1::uuid RETURNING id), "
      "al AS (DELETE FROM albums WHERE artist_id IN (SELECT id FROM a) "
      "       RETURNING id), "
      "tr AS (DELETE FROM tracks WHERE album_id IN (SELECT id FROM al) "
      "       RETURNING id) "
      "SELECT 'track' AS kind, id FROM tr "
      "UNION ALL SELECT 'album', id FROM al "
      "UNION ALL SELECT 'artist', id FROM a", 1 },

    /* ---- albums ---- */

    { "album_get",
      "SELECT {album} FROM albums WHERE id = $1::uuid", 1 },

    { "album_exists",
      "SELECT 1 FROM albums WHERE id = $1::uuid", 1 },

    /* $1 artist, $2/$3 the last (sort_date, id) seen, $4 page size + 1 */
    { "artist_albums",
      "SELECT {album}, sort_date FROM albums WHERE artist_id = $1::uuid "
      "AND ($2::date IS NULL OR (sort_date, id) > ($2::date, $3::uuid)) "
      "ORDER BY sort_date, id LIMIT $4::int", 4 },

    { "album_insert",
      "INSERT INTO albums ({album:create}) "
      "SELECT {p.album:create} "
      "FROM jsonb_populate_record(NULL::albums, $1::jsonb) p "
      "RETURNING {album}", 1 },

    { "album_update",
      "UPDATE albums t SET ({album:patch}, updated_at) = "
      "(SELECT {p.album:patch}, " ENC_TOUCHED("t") " "
      " FROM jsonb_populate_record(t, $2::jsonb) p) "
      "WHERE t.id = $1::uuid RETURNING {t.album}", 2 },

    /* before album_delete: no track can be added meanwhile (cascade.c) */
    { "album_lock",
      "SELECT id FROM albums WHERE id = $1::uuid FOR UPDATE", 1 },

    { "album_delete",
      "WITH al AS (DELETE FROM albums WHERE id = $1::uuid RETURNING id), "
      "tr AS (DELETE FROM tracks WHERE album_id IN (SELECT id FROM al) "
      "       RETURNING id) "
      "SELECT 'track' AS kind, id FROM tr "
      "UNION ALL SELECT 'album', id FROM al", 1 },

    /* ---- tracks ---- */

    { "track_get",
      "SELECT {track} FROM tracks WHERE id = $1::uuid", 1 },

    /* $1 album, $2/$3 the last (position, id) seen, $4 page size + 1:
       the unique (album_id, position) index in order */
    { "album_tracks",
      "SELECT {track} FROM tracks WHERE album_id = $1::uuid "
      "AND ($2::int IS NULL OR (position, id) > ($2::int, $3::uuid)) "
      "ORDER BY position, id LIMIT $4::int", 4 },

    { "track_insert",
      "INSERT INTO tracks ({track:create}) "
      "SELECT {p.track:create} "
      "FROM jsonb_populate_record(NULL::tracks, $1::jsonb) p "
      "RETURNING {track}", 1 },

    { "track_update",
      "UPDATE tracks t SET ({track:patch}, updated_at) = "
      "(SELECT {p.track:patch}, " ENC_TOUCHED("t") " "
      " FROM jsonb_populate_record(t, $2::jsonb) p) "
      "WHERE t.id = $1::uuid RETURNING {t.track}", 2 },

    { "track_delete",
      "DELETE FROM tracks WHERE id = $1::uuid RETURNING id", 1 },

    /* ---- import-chinook (import.c): idempotent by id ---- */

    /* $1 id, $2 name, $3 genres (JSON array), $4 Chinook's id: the slug
       is the folded name, with "-<id>" when another artist has it */
    { "import_artist",
      "INSERT INTO artists (id, name, slug, genres) "
      "SELECT $1::uuid, left($2, 200), "
      "  CASE WHEN EXISTS (SELECT 1 FROM artists "
      "                    WHERE slug = s.slug AND id <> $1::uuid) "
      "       THEN s.slug || '-' || $4::text ELSE s.slug END, "
      "  ARRAY(SELECT jsonb_array_elements_text($3::jsonb)) "
      "FROM (SELECT coalesce(nullif(trim(BOTH '-' FROM left(regexp_replace("
      "        fold($2), '[^a-z0-9]+', '-', 'g'), 80)), ''), 'artist') "
      "      AS slug) s "
      "ON CONFLICT DO NOTHING RETURNING {artist}", 4 },

    { "import_album",
      "INSERT INTO albums (id, artist_id, title, kind) "
      "SELECT $1::uuid, $2::uuid, left($3, 200), 'album' "
      "WHERE EXISTS (SELECT 1 FROM artists WHERE id = $2::uuid) "
      "ON CONFLICT DO NOTHING RETURNING {album}", 3 },

    { "import_track",
      "INSERT INTO tracks (id, album_id, title, position, duration_ms) "
      "SELECT $1::uuid, $2::uuid, left($3, 200), $4::int, $5::int "
      "WHERE EXISTS (SELECT 1 FROM albums WHERE id = $2::uuid) "
      "ON CONFLICT DO NOTHING RETURNING {track}", 5 },

    { NULL, NULL, 0 }
};
