/*
 * content.h — the content worker: posts with drafts (CONTRACT.md, Content).
 * posts.c describes the post once, with its handlers; replica.c the events
 * it consumes (the catalog's artists, the users auth deletes); sql.c holds
 * every statement.  Reads are public (a draft only to its author and
 * moderators+: in the statements), writes need a user (the route flags),
 * and changing a post needs its author or a moderator+ (the statements).
 */

#ifndef ENCORE_CONTENT_H
#define ENCORE_CONTENT_H

#include "kit.h"
#include "worker.h"

#define CONTENT_TAGS_MAX  10        /* tags per post */
#define CONTENT_ARTISTS_MAX  20     /* artists a post is about */

extern const enc_entity_t        content_post;
extern const enc_pg_stmt_t       content_statements[];
extern const enc_event_route_t   content_events[];

/* posts.c */
void content_posts_list(enc_req_t *r, enc_resp_t *w, void *app);
void content_posts_get(enc_req_t *r, enc_resp_t *w, void *app);
void content_posts_create(enc_req_t *r, enc_resp_t *w, void *app);
void content_posts_patch(enc_req_t *r, enc_resp_t *w, void *app);
void content_posts_delete(enc_req_t *r, enc_resp_t *w, void *app);

#endif /* ENCORE_CONTENT_H */
