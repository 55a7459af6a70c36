/*
 * search.h — the search worker: GET /api/v1/search over an index of the
 * catalog and the published posts (CONTRACT.md, Search), fed only by
 * their events.  replica.c applies encore.catalog.* and
 * encore.content.posts to the replicas, whose triggers keep the
 * documents (schemas/search/001_search.sql); results.c answers the
 * query; rebuild.c builds a fresh index from the topics and swaps it in;
 * sql.c holds every statement.
 */

#ifndef ENCORE_SEARCH_H
#define ENCORE_SEARCH_H

#include "event_table.h"
#include "kit.h"
#include "worker.h"

extern const enc_pg_stmt_t       search_statements[];
extern const enc_event_route_t   search_events[];
extern const char *const         search_topics[];

/* results.c */
void search_query(enc_req_t *r, enc_resp_t *w, void *app);

/* rebuild.c: `encore-search rebuild`; the exit status */
int search_rebuild(const enc_config_t *c);

#endif /* ENCORE_SEARCH_H */
