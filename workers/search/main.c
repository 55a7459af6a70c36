/*
 * encore-search — typo-tolerant search over the catalog and the posts
 * (CONTRACT.md, Search).
 *
 * Threading model: libencore's enc_worker_main owns every thread.  The
 * handlers run on libmicrohttpd's pool, each with its thread's own
 * PostgreSQL connection, and share no state of their own.  The consumer
 * thread applies encore.catalog.artists, .albums, .tracks and
 * encore.content.posts through the event table of replica.c.  The worker
 * publishes nothing (outbox.enabled = false).
 */

#include <stdio.h>
#include <string.h>

#include "search.h"


/* names are the edge's (conf/routes.conf): metric labels must agree */
static const enc_route_t  search_routes[] = {
    { "GET", "/api/v1/search", search_query, 0, "search" },
    { NULL, NULL, NULL, 0, NULL }
};


static const enc_worker_cmd_t  search_commands[] = {
    { "rebuild", "",
      "build a fresh index from the beginning of the entity topics and swap"
      " it in while search answers" },
    { NULL, NULL, NULL }
};


static int
search_command(const enc_config_t *c, int argc, char **argv)
{
    if (strcmp(argv[0], "rebuild") != 0 || argc != 1) {
        fprintf(stderr, "usage: encore-search rebuild\n");
        return 2;
    }
    return search_rebuild(c);
}


static const enc_worker_def_t  search_worker = {
    .name = "search",
    .routes = search_routes,
    .statements = search_statements,
    .consumes = search_topics,
    .events = search_events,
    .command = search_command,
    .commands = search_commands,
};


int
main(int argc, char **argv)
{
    return enc_worker_main(argc, argv, &search_worker);
}
