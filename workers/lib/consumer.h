/*
 * consumer.h — Kafka in, an exactly-once effect through the inbox.
 *
 * One thread per process consumes the worker's topics in the consumer group
 * consumer.group (default "encore-<worker>").  Events are applied in
 * batches: what librdkafka has already fetched, up to consumer.batch
 * (500), taken without waiting for more (a lone event is applied at
 * once), in one PostgreSQL transaction that also inserts each ce_id into
 * <schema>.inbox; an event whose id is already there is skipped, so
 * redelivery (after a crash, a rebalance, or a relay that published
 * twice) changes nothing.  An event the alone predicate names gets a
 * transaction of its own.
 *
 * Offsets are stored only after the database commit and committed by
 * librdkafka in the background (every second, and when partitions are
 * revoked or the consumer closes): a crash redelivers at most what was
 * applied since, and the inbox absorbs it.  When an event's handler or the
 * database fails, the batch is rolled back, the events before it are
 * applied again in a transaction of their own, and the consumer seeks
 * back to the failed event and retries it with backoff: the partition
 * waits, nothing is skipped.  Malformed events are logged and skipped
 * (their offset stored) so they cannot wedge their partition.
 *
 * Metrics: encore_consumer_applied_total, _duplicates_total,
 * _retries_total, _malformed_total, the histogram
 * encore_consumer_batch_size (events per transaction) and the gauge
 * encore_consumer_lag{topic,partition} (events not yet applied in each
 * assigned partition, from librdkafka's statistics every 2 s).
 *
 * Threading: the consumer thread owns its Kafka handle and its PostgreSQL
 * connection; the handler runs on that thread only.
 */

#ifndef ENC_CONSUMER_H
#define ENC_CONSUMER_H

#include <stddef.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "config.h"
#include "pg.h"


/* One CloudEvent.  All fields are borrowed for the duration of the handler
   call; subject and key may be NULL. */
typedef struct {
    const char *id, *type, *source, *subject, *time, *key, *topic;
    json_t     *data;              /* borrowed */
} enc_event_t;

/* Called inside an open transaction on the consumer's connection, after
   the event id was inserted into <schema>.inbox; return 0 to go on, -1 to
   roll back and retry later.  Must not commit or roll back itself.  The
   transaction may hold other events' effects before and after this one,
   and may be rolled back after the handler returned 0 (another event
   failed) and the event applied again: effects belong in the
   transaction. */
typedef int (*enc_event_handler_pt)(enc_pg_t *pg, const enc_event_t *ev,
                                    void *app);

/* 1 when ev must be applied in a transaction of its own (it takes locks
   that other writers take in another order), 0 when it may share one. */
typedef int (*enc_event_alone_pt)(const enc_event_t *ev, void *app);

/* Starts the consumer thread.  topics (NULL-terminated), c and app are
   borrowed and must outlive the consumer.  alone may be NULL: every
   event may share a transaction. */
int  enc_consumer_start_ex(const enc_config_t *c, const char *const *topics,
                           enc_event_handler_pt handler,
                           enc_event_alone_pt alone, void *app);

/* enc_consumer_start_ex without an alone predicate. */
int  enc_consumer_start(const enc_config_t *c, const char *const *topics,
                        enc_event_handler_pt handler, void *app);

/* Stops after the batch in hand (if any) is applied or rolled back, then
   leaves the group, committing the stored offsets.  Safe to call when
   never started. */
void enc_consumer_stop(void);


/* ---- parsing (exposed for tests) ------------------------------------------ */

/* A parsed event and the memory its strings live in. */
typedef struct {
    enc_event_t   ev;
    char         *mem;             /* owned: NUL-terminated copies */
    json_t       *data;            /* owned reference; ev.data borrows it */
} enc_event_msg_t;

/*
 * Parses a message in CloudEvents 1.0 Kafka binary mode: ce_specversion
 * "1.0", ce_id, ce_source and ce_type are required, ce_time and ce_subject
 * optional; content-type, when present, must be application/json; the
 * value must be JSON.  topic, key, payload and hdrs are borrowed (hdrs may
 * be NULL).  On success fills *out (release with enc_event_msg_free);
 * on failure returns -1 with the reason in err and *out empty.
 */
int  enc_event_parse(const char *topic, const void *key, size_t keylen,
                     const void *payload, size_t len,
                     const rd_kafka_headers_t *hdrs, enc_event_msg_t *out,
                     char *err, size_t errlen);

void enc_event_msg_free(enc_event_msg_t *m);

/* The consumer's Kafka configuration: group, offsets stored by hand and
   committed in the background, earliest reset, statistics every 2 s to
   the lag gauge.  extra is an optional NULL-terminated list of name,
   value pairs applied last (tests).  Caller owns the handle (already in
   consumer mode: rd_kafka_poll_set_consumer was called). */
rd_kafka_t *enc_consumer_kafka_new(const char *brokers, const char *group,
                                   const char *client_id,
                                   const char *const *extra,
                                   char *err, size_t errlen);

/*
 * Fault injection (integration tests only, inert unless armed): with
 * ENCORE_FAULT_CONSUMER_EXIT_AFTER_COMMIT=N in the environment,
 * enc_consumer_start logs a warning and the process _exit()s with status
 * 75 right after the database commit of the transaction holding the Nth
 * event this process applied (replays skipped by the inbox do not
 * count), before its offsets are stored: the window in which a crash
 * makes Kafka deliver that transaction's events again.  A value that is not a positive integer makes
 * enc_consumer_start fail.
 *
 * enc_consumer_fault_parse: N, 0 for NULL or "" (disarmed), -1 invalid.
 */
long enc_consumer_fault_parse(const char *v);

/* librdkafka's statistics JSON to encore_consumer_lag{topic,partition}:
   each partition assigned (desired) gets its consumer_lag_stored, or
   consumer_lag before an offset was stored; unknown lags (-1) and the
   series of partitions no longer listed go. */
void enc_consumer_lag_from_stats(const char *json, size_t len);

/* Tests: the next n seeks back to a failed event fail as if librdkafka
   had refused them (the partition staying assigned). */
void enc_consumer_test_fail_seeks(int n);

#endif /* ENC_CONSUMER_H */
