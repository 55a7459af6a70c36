/*
 * posts.c — the post, described once, and its endpoints.
 *
 * Who may do what is in the statements (sql.c), which take the caller
 * (kit.h): a draft is seen by its author and moderators+ only, and a post
 * is changed or deleted by its author or a moderator+.  A write that
 * matches no row asks post_visible whether the caller may see the post:
 * 403 if so, 404 if not, so a draft's existence never leaks.
 */

#include <stdlib.h>
#include <string.h>

#include "content.h"


static const char *const  statuses[] = { "draft", "published", NULL };

static const enc_field_t  artist_id = {
    .name = "artist_id", .type = ENC_UUID
};

static const enc_field_t  tag = {
    .name = "tag", .type = ENC_STRING, .flags = ENC_LOWER | ENC_NOT_BLANK,
    .min = 1, .max = 50
};

static const enc_field_t  post_fields[] = {
    { .name = "id", .type = ENC_UUID, .flags = ENC_OUT | ENC_KEY },
    { .name = "author_id", .type = ENC_UUID,
      .flags = ENC_OUT | ENC_NULLABLE | ENC_CALLER_ID },
    { .name = "author", .type = ENC_STRING,
      .flags = ENC_OUT | ENC_CALLER_NAME },
    { .name = "title", .type = ENC_STRING,
      .flags = ENC_OUT | ENC_IN | ENC_REQUIRED | ENC_NOT_BLANK,
      .min = 1, .max = 200 },
    { .name = "body", .type = ENC_STRING,
      .flags = ENC_OUT | ENC_IN | ENC_REQUIRED | ENC_NOT_BLANK,
      .min = 1, .max = 50000 },
    { .name = "status", .type = ENC_ENUM, .flags = ENC_OUT | ENC_IN,
      .values = statuses, .def = "\"draft\"" },
    { .name = "artist_ids", .type = ENC_ARRAY,
      .flags = ENC_OUT | ENC_IN | ENC_UNIQUE, .max = CONTENT_ARTISTS_MAX,
      .item = &artist_id, .def = "[]" },
    { .name = "tags", .type = ENC_ARRAY,
      .flags = ENC_OUT | ENC_IN | ENC_UNIQUE, .max = CONTENT_TAGS_MAX,
      .item = &tag, .def = "[]" },
    { .name = "created_at", .type = ENC_TIME, .flags = ENC_OUT },
    { .name = "updated_at", .type = ENC_TIME, .flags = ENC_OUT },
    { .name = "published_at", .type = ENC_TIME, .flags = ENC_OUT },
    ENC_FIELD_END
};


/*
 * artist_ids must name artists of the replica (replica.c).  Inside the
 * write's transaction, before its statement: artists_check locks the
 * replica rows it found FOR KEY SHARE until the write commits, so the
 * consumer's delete of one of them waits for this post and then unlinks
 * it (replica.c); an artist the consumer deleted first is not found here.
 */
static int
posts_check(enc_pg_t *pg, json_t *body, unsigned mode, enc_validation_t *v)
{
    int          i, n;
    char        *ids;
    json_t      *a;
    PGresult    *res;

    a = json_object_get(body, "artist_ids");
    if (!json_is_array(a) || json_array_size(a) == 0) {
        return 0;
    }

    ids = enc_json_dumps(a, NULL);
    if (ids == NULL) {
        return -2;
    }
    res = enc_pg_exec(pg, "artists_check", 1, (const char *const *) &ids);
    free(ids);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        return -2;
    }

    n = PQntuples(res);
    for (i = 0; i < n; i++) {
        enc_validation_add(v, PQgetvalue(res, i, 0), "names no artist (%s)",
                           PQgetvalue(res, i, 1));
    }
    PQclear(res);

    return n > 0 ? -1 : 0;
}


const enc_entity_t  content_post = {
    .name = "post", .plural = "posts", .path = "/api/v1/posts/",
    .topic = "encore.content.posts", .fields = post_fields,
    .visible = "post_visible", .check = posts_check
};


/*
 * Lists: published posts newest first, or with ?status=draft the caller's
 * drafts newest first.  Each filter shape has its own statement, driven by
 * its own index (001_content.sql), the other filters applied to what it
 * reads; all take the same parameters: the filters in this order, the
 * sort key, the page size.
 */
static const enc_field_t  post_filters[] = {
    { .name = "artist_id", .type = ENC_UUID },
    { .name = "author_id", .type = ENC_UUID },
    { .name = "tag", .type = ENC_STRING, .flags = ENC_LOWER,
      .min = 1, .max = 50 },
    { .name = "status", .type = ENC_ENUM, .values = statuses },
    ENC_FIELD_END
};

static const char *const  by_listed[] = { "k_at", "k_id", NULL };

static const enc_list_t  posts_all = {
    .name = "posts_list", .stmt = "posts_list",
    .filters = post_filters, .keys = by_listed
};

static const enc_list_t  posts_by_artist = {
    .name = "posts_list_artist", .stmt = "posts_list_artist",
    .filters = post_filters, .keys = by_listed
};

static const enc_list_t  posts_by_tag = {
    .name = "posts_list_tag", .stmt = "posts_list_tag",
    .filters = post_filters, .keys = by_listed
};

static const enc_list_t  posts_by_author = {
    .name = "posts_list_author", .stmt = "posts_list_author",
    .filters = post_filters, .keys = by_listed
};

/* the caller's drafts: the statement takes the caller (kit.h), whose id
   is then in the cursors' scope */
static const enc_list_t  posts_drafts = {
    .name = "posts_list_drafts", .stmt = "posts_list_drafts",
    .filters = post_filters, .keys = by_listed
};


void
content_posts_list(enc_req_t *r, enc_resp_t *w, void *app)
{
    const char        *status;
    const enc_list_t  *l;

    status = enc_req_query(r, "status");
    if (status != NULL && strcmp(status, "draft") == 0) {
        if (enc_req_caller(r)->role == ENC_ROLE_ANONYMOUS) {
            enc_resp_header(w, "WWW-Authenticate", "Bearer");
            enc_resp_problem(w, 401, NULL, "drafts are listed to their "
                             "author: authentication required");
            return;
        }
        l = &posts_drafts;

    } else if (enc_req_query(r, "artist_id") != NULL) {
        l = &posts_by_artist;

    } else if (enc_req_query(r, "tag") != NULL) {
        l = &posts_by_tag;

    } else if (enc_req_query(r, "author_id") != NULL) {
        l = &posts_by_author;

    } else {
        l = &posts_all;
    }

    enc_kit_list(r, w, &content_post, l, 0, NULL);
}


void
content_posts_get(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_get(r, w, &content_post, "post_get");
}


void
content_posts_create(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_create(r, w, &content_post, "post_insert");
}


void
content_posts_patch(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_patch(r, w, &content_post, "post_update");
}


void
content_posts_delete(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_delete(r, w, &content_post, "post_delete");
}
