/*
 * albums.c — the album, described once, and its endpoints.
 */

#include "catalog.h"


static const char *const  album_kinds[] = {
    "album", "ep", "single", "compilation", NULL
};

static const enc_field_t  album_fields[] = {
    { .name = "id", .type = ENC_UUID, .flags = ENC_OUT | ENC_KEY },
    /* an album does not move between artists: set on create only */
    { .name = "artist_id", .type = ENC_UUID,
      .flags = ENC_OUT | ENC_IN_CREATE | ENC_REQUIRED },
    { .name = "title", .type = ENC_STRING,
      .flags = ENC_OUT | ENC_IN | ENC_REQUIRED | ENC_NOT_BLANK,
      .min = 1, .max = 200 },
    { .name = "release_date", .type = ENC_DATE,
      .flags = ENC_OUT | ENC_IN | ENC_NULLABLE },
    { .name = "kind", .type = ENC_ENUM,
      .flags = ENC_OUT | ENC_IN | ENC_REQUIRED, .values = album_kinds },
    { .name = "created_at", .type = ENC_TIME, .flags = ENC_OUT },
    { .name = "updated_at", .type = ENC_TIME, .flags = ENC_OUT },
    ENC_FIELD_END
};

static const enc_constraint_t  album_constraints[] = {
    { "albums_artist_id_fkey", 422, "artist_id", "names no artist" },
    { NULL, 0, NULL, NULL }
};

const enc_entity_t  catalog_album = {
    .name = "album", .plural = "albums", .path = "/api/v1/albums/",
    .topic = "encore.catalog.albums", .fields = album_fields,
    .constraints = album_constraints
};


static const char *const  by_date[] = { "sort_date", "id", NULL };

static const enc_list_t  artist_albums = {
    .name = "artists_albums", .stmt = "artist_albums", .keys = by_date,
    .parent = "artist_exists", .parent_name = "artist"
};


void
catalog_artists_albums(enc_req_t *r, enc_resp_t *w, void *app)
{
    const char  *artist;

    if ((artist = enc_kit_id(r, w, &catalog_artist)) != NULL) {
        enc_kit_list(r, w, &catalog_album, &artist_albums, 1, &artist);
    }
}


void
catalog_albums_get(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_get(r, w, &catalog_album, "album_get");
}


void
catalog_albums_create(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_create(r, w, &catalog_album, "album_insert");
}


void
catalog_albums_patch(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_patch(r, w, &catalog_album, "album_update");
}


/* the album and its tracks, one event each */
void
catalog_albums_delete(enc_req_t *r, enc_resp_t *w, void *app)
{
    static const char *const  locks[] = { "album_lock", NULL };

    catalog_delete_cascade(r, w, &catalog_album, locks, "album_delete");
}
