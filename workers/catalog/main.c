/*
 * encore-catalog — artists, albums and tracks (CONTRACT.md, Catalog).
 *
 * Threading model: libencore's enc_worker_main owns every thread.  The
 * handlers run on libmicrohttpd's pool, each with its thread's own
 * PostgreSQL connection, and share no state of their own: everything they
 * read is the constant entity descriptions.  The outbox relay publishes
 * encore.catalog.artists|albums|tracks on its own thread.  No consumer.
 *
 * Command: `encore-catalog import-chinook FILE` loads the Chinook sample
 * catalog (import.c) instead of serving.
 */

#include "catalog.h"


#define WRITE  (ENC_ROUTE_MODERATOR | ENC_ROUTE_JSON_BODY | ENC_ROUTE_STRICT)
#define ERASE  ENC_ROUTE_MODERATOR


/* names are the edge's (conf/routes.conf): metric labels must agree */
static const enc_route_t  catalog_routes[] = {
    { "GET", "/api/v1/artists", catalog_artists_list, 0, "artists_list" },
    { "POST", "/api/v1/artists", catalog_artists_create, WRITE,
      "artists_create" },
    { "GET", "/api/v1/artists/{id}", catalog_artists_get, 0, "artists_get" },
    { "PATCH", "/api/v1/artists/{id}", catalog_artists_patch, WRITE,
      "artists_patch" },
    { "DELETE", "/api/v1/artists/{id}", catalog_artists_delete, ERASE,
      "artists_delete" },
    { "GET", "/api/v1/artists/{id}/albums", catalog_artists_albums, 0,
      "artists_albums" },
    { "POST", "/api/v1/albums", catalog_albums_create, WRITE,
      "albums_create" },
    { "GET", "/api/v1/albums/{id}", catalog_albums_get, 0, "albums_get" },
    { "PATCH", "/api/v1/albums/{id}", catalog_albums_patch, WRITE,
      "albums_patch" },
    { "DELETE", "/api/v1/albums/{id}", catalog_albums_delete, ERASE,
      "albums_delete" },
    { "GET", "/api/v1/albums/{id}/tracks", catalog_albums_tracks, 0,
      "albums_tracks" },
    { "POST", "/api/v1/tracks", catalog_tracks_create, WRITE,
      "tracks_create" },
    { "GET", "/api/v1/tracks/{id}", catalog_tracks_get, 0, "tracks_get" },
    { "PATCH", "/api/v1/tracks/{id}", catalog_tracks_patch, WRITE,
      "tracks_patch" },
    { "DELETE", "/api/v1/tracks/{id}", catalog_tracks_delete, ERASE,
      "tracks_delete" },
    /* the views' batch (conf/views.conf); no edge route forwards to it */
    { "GET", "/internal/artists", catalog_artists_batch, 0,
      "internal_artists" },
    { NULL, NULL, NULL, 0, NULL }
};


static const enc_entity_t *const  catalog_entities[] = {
    &catalog_artist, &catalog_album, &catalog_track, NULL
};


static const enc_worker_def_t  catalog_worker = {
    .name = "catalog",
    .routes = catalog_routes,
    .statements = catalog_statements,
    .entities = catalog_entities,
    .command = catalog_command,
    .commands = catalog_commands,
};


int
main(int argc, char **argv)
{
    return enc_worker_main(argc, argv, &catalog_worker);
}
