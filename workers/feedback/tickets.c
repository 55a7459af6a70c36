/*
 * tickets.c — the ticket, described once, and its endpoints.
 *
 * Who may do what is the routes' flags (main.c: signed in to open, read
 * and list; moderator+ to change) and the statements' WHERE clauses (a
 * user reads and lists only their own tickets: another's is 404, as if
 * it did not exist).  The status machine is the schema's trigger, closed
 * being final (no status nor response written to a closed ticket); its
 * refusals come back as constraint names mapped below.
 */

#include "feedback.h"


static const char *const  categories[] = {
    "bug", "feature", "content", "other", NULL
};

static const char *const  statuses[] = {
    "open", "in_progress", "resolved", "closed", NULL
};

static const enc_field_t  ticket_fields[] = {
    { .name = "id", .type = ENC_UUID, .flags = ENC_OUT | ENC_KEY },
    /* the caller who opened it; NULL once their account is deleted */
    { .name = "user_id", .type = ENC_UUID, .flags = ENC_OUT | ENC_CALLER_ID },
    /* what the user wrote does not change; staff change the rest */
    { .name = "category", .type = ENC_ENUM,
      .flags = ENC_OUT | ENC_IN_CREATE | ENC_REQUIRED, .values = categories },
    { .name = "subject", .type = ENC_STRING,
      .flags = ENC_OUT | ENC_IN_CREATE | ENC_REQUIRED | ENC_NOT_BLANK,
      .min = 1, .max = 200 },
    { .name = "message", .type = ENC_STRING,
      .flags = ENC_OUT | ENC_IN_CREATE | ENC_REQUIRED | ENC_NOT_BLANK,
      .min = 1, .max = 10000 },
    /* writable on create too (the kit has no patch-only flag): the
       schema refuses a new ticket that is not open or has a response */
    { .name = "status", .type = ENC_ENUM, .flags = ENC_OUT | ENC_IN,
      .values = statuses, .def = "\"open\"" },
    /* null clears it; blank text is refused, as an answer that says
       nothing (one way to have none) */
    { .name = "response", .type = ENC_STRING,
      .flags = ENC_OUT | ENC_IN | ENC_NULLABLE | ENC_NOT_BLANK, .max = 10000 },
    { .name = "created_at", .type = ENC_TIME, .flags = ENC_OUT },
    { .name = "updated_at", .type = ENC_TIME, .flags = ENC_OUT },
    ENC_FIELD_END
};

/* the schema's status trigger names each refused move
   tickets_status_<from>_to_<to> (001_feedback.sql) */
#define REFUSED(from, to)                                                     \
    { "tickets_status_" from "_to_" to, 422, "status",                        \
      "may not change from " from " to " to }

static const enc_constraint_t  ticket_constraints[] = {
    REFUSED("open", "resolved"),
    REFUSED("open", "closed"),
    REFUSED("in_progress", "open"),
    REFUSED("in_progress", "closed"),
    REFUSED("resolved", "open"),
    REFUSED("closed", "open"),
    REFUSED("closed", "in_progress"),
    REFUSED("closed", "resolved"),
    /* closed is final (003_closed_is_final.sql): a move out of it is
       REFUSED above; a response, or a status left as it is, these */
    { "tickets_closed_response", 422, "response",
      "cannot change: the ticket is closed" },
    { "tickets_closed", 422, "status", "cannot change: the ticket is closed" },
    { "tickets_status_new", 422, "status", "of a new ticket is open" },
    { "tickets_response_new", 422, "response",
      "cannot be written on a new ticket" },
    { NULL, 0, NULL, NULL }
};

const enc_entity_t  feedback_ticket = {
    .name = "ticket", .plural = "tickets", .path = "/api/v1/feedback/",
    .topic = "encore.feedback.tickets", .fields = ticket_fields,
    .constraints = ticket_constraints
};


/* ?status=: the same rule as the field */
static const enc_field_t  ticket_filters[] = {
    { .name = "status", .type = ENC_ENUM, .values = statuses },
    ENC_FIELD_END
};

/* newest first; each list is one index scan (001_feedback.sql) */
static const char *const  newest[] = { "created_at", "id", NULL };

/* a user's own tickets: the statement takes the caller, so a cursor is
   the caller's alone */
static const enc_list_t  own_list = {
    .name = "feedback_list", .stmt = "tickets_own",
    .filters = ticket_filters, .keys = newest
};

/* staff: everybody's, or everybody's in one status */
static const enc_list_t  all_list = {
    .name = "feedback_list_all", .stmt = "tickets_all", .keys = newest
};

static const enc_list_t  status_list = {
    .name = "feedback_list_status", .stmt = "tickets_in_status",
    .filters = ticket_filters, .keys = newest
};


void
feedback_tickets_list(enc_req_t *r, enc_resp_t *w, void *app)
{
    const enc_list_t  *l;

    if (!enc_caller_is(enc_req_caller(r), ENC_ROLE_MODERATOR)) {
        l = &own_list;
    } else if (enc_req_query(r, "status") != NULL) {
        l = &status_list;
    } else {
        l = &all_list;
    }

    enc_kit_list(r, w, &feedback_ticket, l, 0, NULL);
}


void
feedback_tickets_get(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_get(r, w, &feedback_ticket, "ticket_get");
}


void
feedback_tickets_create(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_create(r, w, &feedback_ticket, "ticket_insert");
}


void
feedback_tickets_patch(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_patch(r, w, &feedback_ticket, "ticket_update");
}
