/*
 * writes: the probe worker's only resource.  See main.c.
 */
#ifndef ENC_PROBE_WRITES_H
#define ENC_PROBE_WRITES_H

#include "consumer.h"
#include "http.h"
#include "pg.h"

#define PROBE_TOPIC       "encore.probe.writes"
#define PROBE_EVENT_TYPE  "encore.probe.created"

extern const enc_route_t    probe_routes[];
extern const enc_pg_stmt_t  probe_statements[];

/* the consumer's handler for PROBE_TOPIC */
int probe_on_event(enc_pg_t *pg, const enc_event_t *ev, void *app);

#endif /* ENC_PROBE_WRITES_H */
