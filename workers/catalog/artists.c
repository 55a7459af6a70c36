/*
 * artists.c — the artist, described once, and its endpoints.
 */

#include "catalog.h"


static const enc_field_t  genre = {
    .name = "genre", .type = ENC_STRING, .min = 1, .max = 50
};

static const enc_field_t  artist_fields[] = {
    { .name = "id", .type = ENC_UUID, .flags = ENC_OUT | ENC_KEY },
    { .name = "name", .type = ENC_STRING,
      .flags = ENC_OUT | ENC_IN | ENC_REQUIRED | ENC_NOT_BLANK,
      .min = 1, .max = 200 },
    { .name = "slug", .type = ENC_SLUG,
      .flags = ENC_OUT | ENC_IN | ENC_REQUIRED, .min = 1, .max = 100 },
    { .name = "bio", .type = ENC_STRING, .flags = ENC_OUT | ENC_IN,
      .max = 10000, .def = "\"\"" },
    { .name = "country", .type = ENC_COUNTRY,
      .flags = ENC_OUT | ENC_IN | ENC_NULLABLE },
    { .name = "formed_year", .type = ENC_INT,
      .flags = ENC_OUT | ENC_IN | ENC_NULLABLE | ENC_NOT_FUTURE,
      .min = 1000 },
    { .name = "genres", .type = ENC_ARRAY,
      .flags = ENC_OUT | ENC_IN | ENC_UNIQUE, .max = CATALOG_GENRES_MAX,
      .item = &genre, .def = "[]" },
    { .name = "created_at", .type = ENC_TIME, .flags = ENC_OUT },
    { .name = "updated_at", .type = ENC_TIME, .flags = ENC_OUT },
    ENC_FIELD_END
};

static const enc_constraint_t  artist_constraints[] = {
    { "artists_slug_key", 409, "slug", "is taken by another artist" },
    { NULL, 0, NULL, NULL }
};

const enc_entity_t  catalog_artist = {
    .name = "artist", .plural = "artists", .path = "/api/v1/artists/",
    .topic = "encore.catalog.artists", .fields = artist_fields,
    .constraints = artist_constraints
};


/* ?genre= exact genre, ?q= name prefix ignoring case and accents */
static const enc_field_t  artist_filters[] = {
    { .name = "genre", .type = ENC_STRING, .min = 1, .max = 50 },
    { .name = "q", .type = ENC_STRING, .min = 1, .max = 200 },
    ENC_FIELD_END
};

static const char *const  by_name[] = { "sort_name", "id", NULL };

static const enc_list_t  artists_list = {
    .name = "artists_list", .stmt = "artists_list",
    .filters = artist_filters, .keys = by_name
};


void
catalog_artists_list(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_list(r, w, &catalog_artist, &artists_list, 0, NULL);
}


/*
 * GET /internal/artists?ids=<id>,<id>: the artists of up to 100 ids in the
 * order of the ids, unknown ones skipped, in one page: the post view's
 * batch (conf/views.conf).  Internal: no route of the edge forwards to it.
 */
static const enc_field_t  artist_id = {
    .name = "id", .type = ENC_UUID
};

static const enc_field_t  batch_filters[] = {
    { .name = "ids", .type = ENC_ARRAY, .flags = ENC_REQUIRED | ENC_UNIQUE,
      .min = 1, .max = ENC_LIST_LIMIT_MAX, .item = &artist_id },
    ENC_FIELD_END
};

static const char *const  by_position[] = { "position", NULL };

static const enc_list_t  artists_batch = {
    .name = "internal_artists", .stmt = "artists_batch",
    .filters = batch_filters, .keys = by_position,
    .limit = ENC_LIST_LIMIT_MAX
};


void
catalog_artists_batch(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_list(r, w, &catalog_artist, &artists_batch, 0, NULL);
}


void
catalog_artists_get(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_get(r, w, &catalog_artist, "artist_get");
}


void
catalog_artists_create(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_create(r, w, &catalog_artist, "artist_insert");
}


void
catalog_artists_patch(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_patch(r, w, &catalog_artist, "artist_update");
}


/* the artist, its albums and their tracks, one event each */
void
catalog_artists_delete(enc_req_t *r, enc_resp_t *w, void *app)
{
    static const char *const  locks[] = {
        "artist_lock", "artist_albums_lock", NULL
    };

    catalog_delete_cascade(r, w, &catalog_artist, locks, "artist_delete");
}
