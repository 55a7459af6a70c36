/*
 * replica.c — the events the search worker consumes (worker.h, events):
 *
 *   encore.catalog.artists   artists: a document each, and the name their
 *                            albums, tracks and posts are found by
 *   encore.catalog.albums    albums: a document each, their tracks' album
 *   encore.catalog.tracks    tracks
 *   encore.content.posts     posts: a document while published
 *
 * Each event's statement runs in the consumer's transaction with its
 * inbox row, so the same event twice changes nothing.  Order: a state is
 * applied only when it is newer than the row's version (its updated_at,
 * which every write raises), and a deletion (ordered by its event's time,
 * $3) leaves a tombstone no older state replayed after it can revive.
 * Within a topic Kafka keeps a key's order anyway; across topics (a track
 * before its album) the documents are completed by the triggers when the
 * parent arrives (schemas/search/001_search.sql).
 */

#include "search.h"


const char *const  search_topics[] = {
    "encore.catalog.artists", "encore.catalog.albums",
    "encore.catalog.tracks", "encore.content.posts", NULL
};


const enc_event_route_t  search_events[] = {
    { "encore.artist.created", "artist_upsert", NULL },
    { "encore.artist.updated", "artist_upsert", NULL },
    { "encore.artist.deleted", "artist_forget", NULL },
    { "encore.album.created", "album_upsert", NULL },
    { "encore.album.updated", "album_upsert", NULL },
    { "encore.album.deleted", "album_forget", NULL },
    { "encore.track.created", "track_upsert", NULL },
    { "encore.track.updated", "track_upsert", NULL },
    { "encore.track.deleted", "track_forget", NULL },
    { "encore.post.created", "post_upsert", NULL },
    { "encore.post.updated", "post_upsert", NULL },
    { "encore.post.published", "post_upsert", NULL },
    { "encore.post.deleted", "post_forget", NULL },
    { NULL, NULL, NULL }
};
