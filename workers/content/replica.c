/*
 * replica.c — the events the content worker consumes (worker.h, events):
 *
 *   encore.catalog.artists   the artist replica artist_ids are checked
 *                            against; a deleted artist is unlinked from
 *                            the posts naming it
 *   encore.auth.users        a deleted user's posts show "[deleted]"
 *
 * Each event's statements run in order in the consumer's transaction, with
 * its inbox row (a replay changes nothing); each post a statement returns
 * publishes encore.post.updated through the outbox, in that transaction.
 *
 * The races with the writes of posts, and how they are closed:
 *
 * - An artist deleted while a post naming it is written: the write's check
 *   holds the replica row FOR KEY SHARE until it commits (posts.c), and
 *   artist_forget's DELETE needs it FOR UPDATE.  If the write locked it
 *   first, the delete waits for its commit and artist_unlink, a later
 *   statement with a later snapshot, sees and unlinks the new post.  If
 *   the delete came first, the write's check waits for the consumer's
 *   commit and then finds no artist: 422.  A write holds no post row when
 *   it waits (the check runs before its statement), and the consumer holds
 *   no artist row a write could be waiting for when it updates posts, so
 *   the two cannot deadlock.
 *
 * - A user deleted while a post of theirs is written (their access token
 *   lives on for minutes): the same shape with an advisory lock per
 *   author, taken shared by each insert (the trigger, 001_content.sql) and
 *   exclusively by author_lock here, and gone_authors for the inserts that
 *   come after.
 */

#include "content.h"


const enc_event_route_t  content_events[] = {
    { "encore.artist.created", "artist_upsert", NULL },
    { "encore.artist.updated", "artist_upsert", NULL },
    { "encore.artist.deleted", "artist_forget", NULL },
    { "encore.artist.deleted", "artist_unlink", &content_post },
    { "encore.user.deleted", "author_lock", NULL },
    { "encore.user.deleted", "author_gone", NULL },
    { "encore.user.deleted", "author_forget", &content_post },
    { NULL, NULL, NULL }
};
