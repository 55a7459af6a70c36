/*
 * results.c — GET /api/v1/search (CONTRACT.md, Search): a keyset list
 * (kit.h) over search_page() (schemas/search/002_bounded.sql), best first.
 *
 * A result is {id, type, title, snippet, score}: snippet is HTML, the
 * matched words in <mark> and everything else escaped (by the SQL);
 * score an integer, so the cursor (score, type, id) compares exactly.
 * The cursor is scoped to q and type: another query's is 400.  q is 1-200
 * characters and not blank (422); a q with no letter or digit in it
 * matches nothing.
 */

#include "search.h"


static const char *const  kinds[] = {
    "artist", "album", "track", "post", NULL
};

static const enc_field_t  kind = {
    .name = "type", .type = ENC_ENUM, .values = kinds
};

static const enc_field_t  result_fields[] = {
    { .name = "id", .type = ENC_UUID, .flags = ENC_OUT | ENC_KEY },
    { .name = "type", .type = ENC_STRING, .flags = ENC_OUT },
    { .name = "title", .type = ENC_STRING, .flags = ENC_OUT },
    { .name = "snippet", .type = ENC_STRING, .flags = ENC_OUT },
    { .name = "score", .type = ENC_INT, .flags = ENC_OUT },
    ENC_FIELD_END
};

static const enc_entity_t  search_result = {
    .name = "result", .plural = "results", .path = "/api/v1/search",
    .fields = result_fields
};

static const enc_field_t  query_filters[] = {
    { .name = "q", .type = ENC_STRING, .flags = ENC_REQUIRED | ENC_NOT_BLANK,
      .min = 1, .max = 200 },
    { .name = "type", .type = ENC_ARRAY, .flags = ENC_UNIQUE, .min = 1,
      .max = 4, .item = &kind },
    ENC_FIELD_END
};

static const char *const  score_keys[] = { "score", "type", "id", NULL };

static const enc_list_t  search_list = {
    .name = "search", .stmt = "search_page", .filters = query_filters,
    .keys = score_keys
};


void
search_query(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_list(r, w, &search_result, &search_list, 0, NULL);
}
