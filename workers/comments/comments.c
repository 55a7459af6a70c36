/*
 * comments.c — the comment, described once, and its endpoints.
 *
 * Who may do what is in the statements (sql.c), with the caller the kit
 * passes them: anyone lists the comments of a visible post (published, not
 * deleted: the replica); a user comments on one; only the author edits,
 * the author or a moderator deletes.  A comment is visible while its post
 * is and it is not deleted: a write on one the caller may see but not
 * change is 403, on any other 404 — a deleted comment is 404 to PATCH and
 * DELETE alike (its placeholder stays in the listing, but there is nothing
 * left to edit or delete).
 */

#include "comments.h"


static const enc_field_t  comment_fields[] = {
    { .name = "id", .type = ENC_UUID, .flags = ENC_OUT | ENC_KEY },
    /* the post of the path, /posts/{id}/comments */
    { .name = "post_id", .type = ENC_UUID, .flags = ENC_OUT | ENC_PATH_ID },
    /* a reply does not move: set on create only */
    { .name = "parent_id", .type = ENC_UUID,
      .flags = ENC_OUT | ENC_IN_CREATE | ENC_NULLABLE },
    /* the caller; NULL once the account is deleted (replica.c) */
    { .name = "author_id", .type = ENC_UUID,
      .flags = ENC_OUT | ENC_CALLER_ID },
    { .name = "author", .type = ENC_STRING,
      .flags = ENC_OUT | ENC_CALLER_NAME },
    { .name = "body", .type = ENC_STRING,
      .flags = ENC_OUT | ENC_IN | ENC_REQUIRED | ENC_NOT_BLANK,
      .min = 1, .max = 10000 },
    { .name = "depth", .type = ENC_INT, .flags = ENC_OUT },
    { .name = "deleted", .type = ENC_BOOL, .flags = ENC_OUT },
    { .name = "created_at", .type = ENC_TIME, .flags = ENC_OUT },
    { .name = "updated_at", .type = ENC_TIME, .flags = ENC_OUT },
    ENC_FIELD_END
};

/* sql.c's comment_insert computes depth and path from the parent when it
   is on the same post; the constraints say what was wrong otherwise */
static const enc_constraint_t  comment_constraints[] = {
    { "comments_parent_fkey", 422, "parent_id",
      "names no comment of this post" },
    { "comments_depth_check", 422, "parent_id",
      "names a comment at depth 8, the deepest: a reply would be deeper" },
    { NULL, 0, NULL, NULL }
};

const enc_entity_t  comments_comment = {
    .name = "comment", .plural = "comments", .path = "/api/v1/comments/",
    .topic = "encore.comments.comments", .fields = comment_fields,
    .constraints = comment_constraints,
    .visible = "comment_visible", .parent = "post"
};

/* for the 404 of a post id that is no UUID */
static const enc_entity_t  comments_post = { .name = "post" };


/* depth first, oldest first within a parent: the path (schema) */
static const char *const  by_path[] = { "path", NULL };

static const enc_list_t  thread = {
    .name = "comments_list", .stmt = "comments_list", .keys = by_path,
    .parent = "post_visible", .parent_name = "post"
};


void
comments_list(enc_req_t *r, enc_resp_t *w, void *app)
{
    const char  *post;

    if ((post = enc_kit_id(r, w, &comments_post)) != NULL) {
        enc_kit_list(r, w, &comments_comment, &thread, 1, &post);
    }
}


void
comments_create(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_create(r, w, &comments_comment, "comment_insert");
}


void
comments_patch(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_patch(r, w, &comments_comment, "comment_update");
}


void
comments_delete(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_delete(r, w, &comments_comment, "comment_delete");
}
