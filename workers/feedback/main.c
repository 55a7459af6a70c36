/*
 * encore-feedback — feedback tickets (CONTRACT.md, Feedback).
 *
 * Threading model: libencore's enc_worker_main owns every thread.  The
 * handlers run on libmicrohttpd's pool, each with its thread's own
 * PostgreSQL connection, and share no state of their own: everything they
 * read is the constant ticket description.  The outbox relay publishes
 * encore.feedback.tickets on its own thread; the consumer reads
 * encore.auth.users on its own (feedback_events: a deleted user's
 * tickets lose their user_id).
 */

#include "feedback.h"


/* names are the edge's (conf/routes.conf): metric labels must agree */
static const enc_route_t  feedback_routes[] = {
    { "POST", "/api/v1/feedback", feedback_tickets_create,
      ENC_ROUTE_USER | ENC_ROUTE_JSON_BODY | ENC_ROUTE_STRICT,
      "feedback_create" },
    { "GET", "/api/v1/feedback", feedback_tickets_list, ENC_ROUTE_USER,
      "feedback_list" },
    { "GET", "/api/v1/feedback/{id}", feedback_tickets_get, ENC_ROUTE_USER,
      "feedback_get" },
    { "PATCH", "/api/v1/feedback/{id}", feedback_tickets_patch,
      ENC_ROUTE_MODERATOR | ENC_ROUTE_JSON_BODY | ENC_ROUTE_STRICT,
      "feedback_patch" },
    { NULL, NULL, NULL, 0, NULL }
};


static const enc_entity_t *const  feedback_entities[] = {
    &feedback_ticket, NULL
};


static const char *const  feedback_topics[] = { "encore.auth.users", NULL };


static const enc_worker_def_t  feedback_worker = {
    .name = "feedback",
    .routes = feedback_routes,
    .statements = feedback_statements,
    .entities = feedback_entities,
    .consumes = feedback_topics,
    .events = feedback_events,
};


int
main(int argc, char **argv)
{
    return enc_worker_main(argc, argv, &feedback_worker);
}
