/*
 * catalog.h — the catalog worker: artists, albums, tracks (CONTRACT.md,
 * Catalog).  Each entity is described once in its own file (artists.c,
 * albums.c, tracks.c) together with its handlers; sql.c holds every
 * statement.  Reads are public, writes moderator+ (the route flags).
 */

#ifndef ENCORE_CATALOG_H
#define ENCORE_CATALOG_H

#include "kit.h"
#include "worker.h"

#define CATALOG_GENRES_MAX  10      /* genres per artist */

extern const enc_entity_t    catalog_artist;
extern const enc_entity_t    catalog_album;
extern const enc_entity_t    catalog_track;
extern const enc_pg_stmt_t   catalog_statements[];
extern const enc_worker_cmd_t  catalog_commands[];

/* artists.c */
void catalog_artists_list(enc_req_t *r, enc_resp_t *w, void *app);
void catalog_artists_batch(enc_req_t *r, enc_resp_t *w, void *app);
void catalog_artists_get(enc_req_t *r, enc_resp_t *w, void *app);
void catalog_artists_create(enc_req_t *r, enc_resp_t *w, void *app);
void catalog_artists_patch(enc_req_t *r, enc_resp_t *w, void *app);
void catalog_artists_delete(enc_req_t *r, enc_resp_t *w, void *app);

/* albums.c */
void catalog_artists_albums(enc_req_t *r, enc_resp_t *w, void *app);
void catalog_albums_get(enc_req_t *r, enc_resp_t *w, void *app);
void catalog_albums_create(enc_req_t *r, enc_resp_t *w, void *app);
void catalog_albums_patch(enc_req_t *r, enc_resp_t *w, void *app);
void catalog_albums_delete(enc_req_t *r, enc_resp_t *w, void *app);

/* tracks.c */
void catalog_albums_tracks(enc_req_t *r, enc_resp_t *w, void *app);
void catalog_tracks_get(enc_req_t *r, enc_resp_t *w, void *app);
void catalog_tracks_create(enc_req_t *r, enc_resp_t *w, void *app);
void catalog_tracks_patch(enc_req_t *r, enc_resp_t *w, void *app);
void catalog_tracks_delete(enc_req_t *r, enc_resp_t *w, void *app);

/* cascade.c: deletes that take their children along, one event each;
   locks: statements ($1 = the id) run first, NULL-terminated */
void catalog_delete_cascade(enc_req_t *r, enc_resp_t *w,
                            const enc_entity_t *e, const char *const *locks,
                            const char *stmt);

/* import.c: `encore-catalog import-chinook FILE` */
int  catalog_command(const enc_config_t *c, int argc, char **argv);

#endif /* ENCORE_CATALOG_H */
