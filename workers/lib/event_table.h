/*
 * event_table: a worker's consumed events as a table, the way its routes
 * are one (kit.h): which ce_type runs which statement, and which entity
 * the rows it changed are, so that a replica or a cascade driven by
 * another worker's events is a few declarative lines.
 *
 * Each statement runs inside the consumer's transaction, after the event
 * id went into the inbox (consumer.h), so a replayed event changes
 * nothing; a failing statement rolls the whole event back and the
 * consumer retries it.  Parameters: $1 = the event's key (the id of the
 * entity it is about), $2 = its data as jsonb text, and for a statement
 * that declares three, $3 = its time (ce_time, RFC 3339; NULL when the
 * record has none): what orders a deletion, whose data is only {"id"},
 * against the states a replica already holds.
 *
 * A type may appear several times: its statements run in table order in
 * the same transaction, each with its own snapshot (delete a replica row,
 * then unlink what named it: the second statement sees rows committed
 * while the first waited for a lock).
 */

#ifndef ENC_EVENT_TABLE_H
#define ENC_EVENT_TABLE_H

#include "consumer.h"
#include "entity.h"
#include "pg.h"

typedef struct {
    const char          *type;      /* ce_type, "encore.artist.deleted";
                                       NULL ends the table */
    const char          *stmt;
    const enc_entity_t  *emits;     /* optional: every row the statement
                                       returns is this entity's select
                                       list, published "updated" through
                                       the outbox in the same transaction */
} enc_event_route_t;

/*
 * An enc_event_handler_pt over the table in app (an enc_event_route_t
 * array): runs the rows of the event's type; types the table does not
 * name, and events without a key, change nothing (logged at debug and
 * warn).  0, or -1 to roll back and retry.
 */
int enc_event_table_apply(enc_pg_t *pg, const enc_event_t *ev, void *app);

/*
 * An enc_event_alone_pt over the same table: 1 when a statement of the
 * event's type emits (changes another aggregate's rows, which the
 * worker's HTTP writes lock too), so the consumer applies that event in
 * a transaction of its own, as the deadlock-freedom arguments of the
 * replicas assume (content's and comments' replica.c); every other event
 * is batched.
 */
int enc_event_table_alone(const enc_event_t *ev, void *app);

#endif /* ENC_EVENT_TABLE_H */
