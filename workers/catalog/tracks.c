/*
 * tracks.c — the track, described once, and its endpoints.
 */

#include "catalog.h"


static const enc_field_t  track_fields[] = {
    { .name = "id", .type = ENC_UUID, .flags = ENC_OUT | ENC_KEY },
    /* a track does not move between albums: set on create only */
    { .name = "album_id", .type = ENC_UUID,
      .flags = ENC_OUT | ENC_IN_CREATE | ENC_REQUIRED },
    { .name = "title", .type = ENC_STRING,
      .flags = ENC_OUT | ENC_IN | ENC_REQUIRED | ENC_NOT_BLANK,
      .min = 1, .max = 200 },
    { .name = "position", .type = ENC_INT,
      .flags = ENC_OUT | ENC_IN | ENC_REQUIRED, .min = 1,
      .max = 2147483647 },
    /* integer milliseconds: 2^31 - 1 is 24 days, longer than any record */
    { .name = "duration_ms", .type = ENC_INT,
      .flags = ENC_OUT | ENC_IN | ENC_REQUIRED, .min = 0,
      .max = 2147483647 },
    { .name = "created_at", .type = ENC_TIME, .flags = ENC_OUT },
    { .name = "updated_at", .type = ENC_TIME, .flags = ENC_OUT },
    ENC_FIELD_END
};

static const enc_constraint_t  track_constraints[] = {
    { "tracks_album_id_fkey", 422, "album_id", "names no album" },
    { "tracks_album_position_key", 409, "position",
      "is taken by another track of this album" },
    { NULL, 0, NULL, NULL }
};

const enc_entity_t  catalog_track = {
    .name = "track", .plural = "tracks", .path = "/api/v1/tracks/",
    .topic = "encore.catalog.tracks", .fields = track_fields,
    .constraints = track_constraints
};


static const char *const  by_position[] = { "position", "id", NULL };

static const enc_list_t  album_tracks = {
    .name = "albums_tracks", .stmt = "album_tracks", .keys = by_position,
    .parent = "album_exists", .parent_name = "album"
};


void
catalog_albums_tracks(enc_req_t *r, enc_resp_t *w, void *app)
{
    const char  *album;

    if ((album = enc_kit_id(r, w, &catalog_album)) != NULL) {
        enc_kit_list(r, w, &catalog_track, &album_tracks, 1, &album);
    }
}


void
catalog_tracks_get(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_get(r, w, &catalog_track, "track_get");
}


void
catalog_tracks_create(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_create(r, w, &catalog_track, "track_insert");
}


void
catalog_tracks_patch(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_patch(r, w, &catalog_track, "track_update");
}


void
catalog_tracks_delete(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_delete(r, w, &catalog_track, "track_delete");
}
