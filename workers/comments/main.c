/*
 * encore-comments — threaded comments on posts (CONTRACT.md, Comments).
 *
 * Threading model: libencore's enc_worker_main owns every thread.  The
 * handlers run on libmicrohttpd's pool, each with its thread's own
 * PostgreSQL connection, and share no state of their own: everything they
 * read is the constant entity description.  The outbox relay publishes
 * encore.comments.comments on its own thread; the consumer thread applies
 * encore.content.posts (the post replica) and encore.auth.users (deleted
 * authors) through the event table of replica.c.
 */

#include "comments.h"


#define WRITE  (ENC_ROUTE_USER | ENC_ROUTE_JSON_BODY | ENC_ROUTE_STRICT)


/* names are the edge's (conf/routes.conf): metric labels must agree */
static const enc_route_t  comments_routes[] = {
    { "GET", "/api/v1/posts/{id}/comments", comments_list, 0,
      "comments_list" },
    { "POST", "/api/v1/posts/{id}/comments", comments_create, WRITE,
      "comments_create" },
    { "PATCH", "/api/v1/comments/{id}", comments_patch, WRITE,
      "comments_patch" },
    { "DELETE", "/api/v1/comments/{id}", comments_delete, ENC_ROUTE_USER,
      "comments_delete" },
    { NULL, NULL, NULL, 0, NULL }
};


static const enc_entity_t *const  comments_entities[] = {
    &comments_comment, NULL
};


static const enc_worker_def_t  comments_worker = {
    .name = "comments",
    .routes = comments_routes,
    .statements = comments_statements,
    .entities = comments_entities,
    .consumes = comments_topics,
    .events = comments_events,
};


int
main(int argc, char **argv)
{
    return enc_worker_main(argc, argv, &comments_worker);
}
