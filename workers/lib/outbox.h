/*
 * outbox.h — transactional outbox and its relay to Kafka.
 *
 * A worker writes its domain rows and one outbox row per event in the same
 * PostgreSQL transaction (enc_outbox_add), so an event exists if and only if
 * the change committed.  The relay thread publishes the backlog
 * (published_at IS NULL) with an idempotent producer and stamps published_at
 * only after Kafka acknowledged the message: every committed event is
 * published at least once; a crash between the ack and the stamp publishes
 * it again with the same ce_id, which consumers drop through their inbox.
 *
 * Threading: enc_outbox_add runs on the caller's thread and connection.  The
 * relay is one thread with its own connection and producer; one relay per
 * schema holds pg_try_advisory_lock at a time, others stand by.
 *
 * The lower half of this header (rows, headers, batches) is the relay's
 * Kafka side, free of PostgreSQL so unit tests drive it against librdkafka's
 * mock cluster.
 */

#ifndef ENC_OUTBOX_H
#define ENC_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

#include "config.h"
#include "pg.h"


/*
 * Inside the caller's open transaction: insert one event into
 * <schema>.outbox.  type e.g. "encore.user.registered", key = aggregate id
 * (may be NULL), subject e.g. "users/<id>" (may be NULL).  data is borrowed
 * and serialised compactly; those exact bytes become the Kafka value.  The
 * calling thread's request id (enc_log_request_id) becomes the
 * ce_encorerequestid header.  Refuses (-1) when no transaction is open,
 * since an outbox row outside the domain transaction breaks the guarantee.
 */
int  enc_outbox_add(enc_pg_t *pg, const char *topic, const char *type,
                    const char *key, const char *subject, json_t *data);

/* Starts the relay thread; no-op returning 0 if outbox.enabled is false.
   The config must outlive the relay. */
int  enc_relay_start(const enc_config_t *c);

/* Stops the relay: lets the batch in flight finish its deliveries (bounded
   by the producer's message timeout), stamps what was delivered, flushes and
   destroys the producer.  Safe to call when the relay never started. */
void enc_relay_stop(void);

/* 1 when the relay is disabled, or running with a producer (whether it holds
   the schema's lock or stands by); 0 while it cannot reach the DB. */
int  enc_relay_ready(void);


/* ---- the relay's Kafka side (exposed for tests) ------------------------ */

/* One outbox row as the relay reads it.  All strings are borrowed (from a
   PGresult in the relay); NULL means SQL NULL. */
typedef struct {
    int64_t      id;
    const char  *event_id;
    const char  *topic;
    const char  *key;
    const char  *type;
    const char  *source;
    const char  *subject;
    const char  *time;          /* RFC 3339 UTC, formatted by the query */
    const char  *data;          /* exact JSON bytes */
    const char  *request_id;
} enc_outbox_row_t;

/* The relay's backlog query; its columns are what enc_outbox_row_from_result
   expects, in this order.  $1 = batch size, $2 = ids to leave out
   (bigint[] text, "{}" for none: rows sitting out after a failure). */
extern const char enc_outbox_backlog_sql[];

/* Maps row `i` of a result of enc_outbox_backlog_sql.  Strings in *out point
   into res and live as long as it does.  -1 if the row lacks a required
   field (id, event_id, topic, type, source, time, data). */
int  enc_outbox_row_from_result(const PGresult *res, int i,
                                enc_outbox_row_t *out);

/* New CloudEvents 1.0 binary-mode headers for a row: ce_specversion, ce_id,
   ce_source, ce_type, ce_time, ce_subject (if set), content-type,
   ce_encorerequestid (if set).  Caller owns the result (librdkafka takes it
   over when a produce call succeeds).  NULL on allocation failure. */
rd_kafka_headers_t *enc_outbox_headers(const enc_outbox_row_t *row);

/* Per-row delivery state of a batch. */
typedef enum {
    ENC_OUTBOX_PENDING = 0,     /* not produced, or no report yet */
    ENC_OUTBOX_DELIVERED,       /* acked by all in-sync replicas */
    ENC_OUTBOX_FAILED,          /* produce refused or delivery failed */
    ENC_OUTBOX_HELD             /* not produced: an earlier row of its
                                   topic and key failed in this batch */
} enc_outbox_state_t;

/*
 * A producer configured the way the relay needs it: idempotent, acks=all,
 * delivery reports routed to enc_outbox_publish.  `extra` is an optional
 * NULL-terminated list of name, value pairs applied last (tests use it for
 * test.mock.num.brokers and shorter timeouts).  Caller owns the handle.
 * NULL with a message in err on failure.
 */
rd_kafka_t *enc_outbox_producer_new(const char *brokers,
                                    const char *client_id,
                                    const char *const *extra,
                                    char *err, size_t errlen);

/*
 * Produces rows[0..n) in order and waits until every one has a delivery
 * report, filling state[i].  A row whose produce call is refused holds back
 * the later rows of its topic and key (HELD, not produced), so that they
 * never overtake it.  Waiting is bounded by the producer's
 * message.timeout.ms (plus a grace period after which in-flight messages
 * are purged; purged at once when the relay is being stopped), so state[]
 * never sees a late report after the return.
 * Returns the number delivered.  rows and state are borrowed.
 */
size_t enc_outbox_publish(rd_kafka_t *rk, const enc_outbox_row_t *rows,
                          size_t n, enc_outbox_state_t *state);

/* Text array literal "{1,2,3}" of the ids of rows in state `want`, for
   "WHERE id = ANY($1::bigint[])".  Caller frees.  NULL if none match or on
   allocation failure (*count tells them apart). */
char *enc_outbox_id_array(const enc_outbox_row_t *rows,
                          const enc_outbox_state_t *state, size_t n,
                          enc_outbox_state_t want, size_t *count);

#endif /* ENC_OUTBOX_H */
