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
 * encore.comment.updated.  Its access token lives on for minutes, so it
 * may still comment: a comment written after the event was applied is
 * stored as "[deleted]" already (gone_authors, the insert trigger of
 * 002_gone_authors.sql), and one racing the event is kept apart from it
 * by an advisory lock per author, taken shared by each insert and
 * exclusively by author_lock: if the insert locked first, author_forget,
 * a later statement with a later snapshot, sees and forgets its comment;
 * if the consumer did, the insert waits for its commit and then finds the
 * author in gone_authors.  The consumer holds no comment row while it
 * waits for the lock, and an insert holds none the consumer could want,
 * so they cannot deadlock.
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
    { "encore.user.deleted", "author_lock", NULL },
    { "encore.user.deleted", "author_gone", NULL },
    { "encore.user.deleted", "author_forget", &comments_comment },
    { NULL, NULL, NULL }
};
