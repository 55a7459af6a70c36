/*
 * feedback.h — the feedback worker: tickets users open and staff answer
 * (CONTRACT.md, Feedback).  The ticket is described once in tickets.c
 * with its handlers; sql.c holds every statement; the status machine is
 * the schema's (schemas/feedback/001_feedback.sql).
 */

#ifndef ENCORE_FEEDBACK_H
#define ENCORE_FEEDBACK_H

#include "kit.h"
#include "worker.h"

extern const enc_entity_t        feedback_ticket;
extern const enc_pg_stmt_t       feedback_statements[];
extern const enc_event_route_t   feedback_events[];

/* tickets.c */
void feedback_tickets_list(enc_req_t *r, enc_resp_t *w, void *app);
void feedback_tickets_get(enc_req_t *r, enc_resp_t *w, void *app);
void feedback_tickets_create(enc_req_t *r, enc_resp_t *w, void *app);
void feedback_tickets_patch(enc_req_t *r, enc_resp_t *w, void *app);

#endif /* ENCORE_FEEDBACK_H */
