/*
 * encore-content — posts with drafts (CONTRACT.md, Content).
 *
 * Threading model: libencore's enc_worker_main owns every thread.  The
 * handlers run on libmicrohttpd's pool, each with its thread's own
 * PostgreSQL connection, and share no state of their own: everything they
 * read is the constant entity description.  The outbox relay publishes
 * encore.content.posts on its own thread; the consumer applies
 * encore.catalog.artists and encore.auth.users (replica.c) on its own.
 */

#include "content.h"


#define WRITE  (ENC_ROUTE_USER | ENC_ROUTE_JSON_BODY | ENC_ROUTE_STRICT)


/* names are the edge's (conf/routes.conf): metric labels must agree */
static const enc_route_t  content_routes[] = {
    { "GET", "/api/v1/posts", content_posts_list, 0, "posts_list" },
    { "POST", "/api/v1/posts", content_posts_create, WRITE,
      "posts_create" },
    { "GET", "/api/v1/posts/{id}", content_posts_get, 0, "posts_get" },
    { "PATCH", "/api/v1/posts/{id}", content_posts_patch, WRITE,
      "posts_patch" },
    { "DELETE", "/api/v1/posts/{id}", content_posts_delete, ENC_ROUTE_USER,
      "posts_delete" },
    { NULL, NULL, NULL, 0, NULL }
};


static const enc_entity_t *const  content_entities[] = {
    &content_post, NULL
};


static const char *const  content_consumes[] = {
    "encore.catalog.artists", "encore.auth.users", NULL
};


static const enc_worker_def_t  content_worker = {
    .name = "content",
    .routes = content_routes,
    .statements = content_statements,
    .entities = content_entities,
    .consumes = content_consumes,
    .events = content_events,
};


int
main(int argc, char **argv)
{
    return enc_worker_main(argc, argv, &content_worker);
}
