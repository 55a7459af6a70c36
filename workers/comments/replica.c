/*
 * replica.c — what the comments worker learns from other workers' events.
 *
 * encore.content.posts keeps the post replica (sql.c: posts): a post can be
 * commented on, and its comments listed, while it is published and not
 * deleted.  created, updated and published carry the post (its status and
 * updated_at); deleted only {"id"}, and leaves a tombstone.
 *
 * encore.auth.users: a deleted account's comments show the author as
 * "[deleted]" with no author_id, each changed comment publishing
 * encore.comment.updated.
 *
 * Each statement runs in the consumer's transaction with the inbox insert
 * (consumer.h), so a replayed event changes nothing.
 */

#include "comments.h"


const char *const  comments_topics[] = {
    "encore.content.posts", "encore.auth.users", NULL
};


const enc_event_route_t  comments_events[] = {
    { "encore.post.created", "post_upsert", NULL },
    { "encore.post.updated", "post_upsert", NULL },
    { "encore.post.published", "post_upsert", NULL },
    { "encore.post.deleted", "post_forget", NULL },
    { "encore.user.deleted", "author_forget", &comments_comment },
    { NULL, NULL, NULL }
};
