/*
 * comments.h — the comments worker: threaded comments on posts (CONTRACT.md,
 * Comments) and the replica of posts they need (replica.c).  The comment
 * is described once in comments.c together with its handlers; sql.c holds
 * every statement.  Listing is public; writing takes a user (route flags),
 * editing the author, deleting the author or a moderator (the statements'
 * WHERE clauses, with the caller the kit passes them).
 */

#ifndef ENCORE_COMMENTS_H
#define ENCORE_COMMENTS_H

#include "kit.h"
#include "worker.h"

#define COMMENTS_DEPTH_MAX  8       /* 0 is a top-level comment */

extern const enc_entity_t        comments_comment;
extern const enc_pg_stmt_t       comments_statements[];
extern const enc_event_route_t   comments_events[];
extern const char *const         comments_topics[];

/* comments.c */
void comments_list(enc_req_t *r, enc_resp_t *w, void *app);
void comments_create(enc_req_t *r, enc_resp_t *w, void *app);
void comments_patch(enc_req_t *r, enc_resp_t *w, void *app);
void comments_delete(enc_req_t *r, enc_resp_t *w, void *app);

#endif /* ENCORE_COMMENTS_H */
