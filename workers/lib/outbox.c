/*
 * outbox: the transactional outbox and its relay.  See outbox.h.
 *
 * The relay thread runs this loop:
 *
 *   connect ──▶ pg_try_advisory_lock ──no──▶ stand by (poll_ms), retry
 *                    │yes
 *                    ▼
 *               LISTEN encore_outbox_<schema>
 *                    │
 *        ┌──▶ read backlog (published_at IS NULL ORDER BY id LIMIT batch)
 *        │        │ rows                       │ none
 *        │        ▼                            ▼
 *        │   produce, wait for every     wait for NOTIFY, poll_ms or stop
 *        │   delivery report
 *        │        ▼
 *        └── stamp delivered rows, count the failed ones (they stay in the
 *            backlog, sit out of the query for a backoff, are retried; an
 *            error names a row every RELAY_POISON_ATTEMPTS failures)
 *
 * The advisory lock is session-level, so a relay that dies or loses its
 * connection gives the schema up to a standby automatically.  Any
 * connection-level failure drops the connection and starts over at the top.
 *
 * Ordering: one relay per schema and an idempotent producer keep a batch in
 * id order per partition.  Per topic and key, order also holds across
 * failures: a row whose produce call is refused holds back the later rows
 * of its key in the same batch (HELD), and a row sitting out of the backlog
 * query holds back the later rows of its key in the query itself, so a
 * failing row blocks only its own key while every other key flows.  A
 * message timeout of the idempotent producer fails every later message of
 * its partition too.  The one gap: a broker that rejects one message for
 * good (e.g. a topic's max.message.bytes below the producer's) while
 * accepting the next of the same key; such a row is poison and logged.
 */

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"


#define RELAY_LOCK_SQL                                                      \
    "SELECT pg_try_advisory_lock(hashtext('encore.relay.' || $1))"

#define RELAY_MARK_SQL                                                      \
    "UPDATE outbox SET published_at = now()"                                \
    " WHERE id = ANY($1::bigint[]) AND published_at IS NULL"

#define RELAY_FAILED_SQL                                                    \
    "UPDATE outbox SET attempts = attempts + 1 WHERE id = ANY($1::bigint[])" \
    " AND published_at IS NULL RETURNING id, attempts"

/* published rows past outbox.retain_hours, oldest first, a chunk at a time
   (outbox_published_idx) */
#define RELAY_PRUNE_SQL                                                     \
    "DELETE FROM outbox WHERE id = ANY(ARRAY(SELECT id FROM outbox"         \
    " WHERE published_at < now() - make_interval(hours => $1::int)"          \
    " ORDER BY published_at LIMIT $2::int))"

/* the backlog and the age in seconds of its oldest row (the lowest id,
   by the partial index), 0 when it is empty */
#define RELAY_BACKLOG_COUNT_SQL                                             \
    "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM clock_timestamp() -"      \
    " (SELECT created_at FROM outbox WHERE published_at IS NULL"            \
    " ORDER BY id LIMIT 1)), 0)::float8"                                    \
    " FROM outbox WHERE published_at IS NULL"

#define RELAY_INSERT_SQL                                                    \
    "INSERT INTO outbox (topic, key, type, source, subject, data,"          \
    " request_id) VALUES ($1, $2, $3, $4, $5, $6, $7)"

/* librdkafka gives up on a message after this; the relay retries it in a
   later round, so this only bounds how long one round can take */
#define RELAY_MESSAGE_TIMEOUT_MS  "30000"

/* after message.timeout.ms, wait this much longer before purging */
#define RELAY_GRACE_MS            10000

/* how often a standby retries the schema's lock: a relay that died is
   replaced within this, whatever outbox.poll_ms says */
#define RELAY_STANDBY_MS          1000

#define RELAY_BACKOFF_MIN_MS      100
#define RELAY_BACKOFF_MAX_MS      10000

/* a row that failed this many deliveries is logged as an error (again
   every this many more): it is retried forever, never dropped, and an
   operator has to look at it (too large, unknown topic ...) */
#define RELAY_POISON_ATTEMPTS     10

/* a row that failed on its own (see relay_round) or is malformed sits out
   of the backlog query for 100 ms << attempts, at most this long, so it
   neither wedges a batch nor is retried at NOTIFY rate; at most
   RELAY_SKIP_MAX rows sit out at once */
#define RELAY_RETRY_MAX_MS        60000
#define RELAY_SKIP_MAX            1024

/* how often the relay deletes old published rows, and at most how many
   per statement (short transactions; the next pass takes the rest) */
#define RELAY_PRUNE_EVERY_MS      60000
#define RELAY_PRUNE_CHUNK         "5000"

/* a full batch asks the table for the backlog at most this often */
#define RELAY_COUNT_EVERY_MS      1000

/* exit status of the fault hook; EX_TEMPFAIL, easy to tell from a crash */
#define RELAY_FAULT_EXIT          75


const char enc_outbox_backlog_sql[] =
    "SELECT id, event_id::text, topic, key, type, source, subject,"
    " to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
    " data, request_id"
    " FROM outbox o WHERE published_at IS NULL AND id <> ALL($2::bigint[])"
    /* a row sitting out holds back the later rows of its topic and key */
    " AND NOT EXISTS (SELECT 1 FROM outbox s WHERE s.id = ANY($2::bigint[])"
    " AND s.id < o.id AND s.topic = o.topic AND s.key = o.key)"
    " ORDER BY id LIMIT $1";


typedef struct {
    int64_t  id;
    int64_t  until_ms;          /* sits out of the backlog query till then */
} relay_skip_t;


typedef struct {
    const enc_config_t  *conf;
    pthread_t            thread;
    int                  started;
    int                  wake[2];    /* self-pipe: stop interrupts waits */
    atomic_int           stop;
    atomic_int           ready;
    int                  fault_exit; /* ENCORE_FAULT_RELAY_EXIT_AFTER_ACK */
    char                 schema[64];
    char                 channel[96];
    rd_kafka_t          *rk;
    enc_pg_t            *pg;
    int                  locked;
    long                 last_backlog;
    double               last_age;   /* of the oldest unpublished row, s */
    int64_t              last_count_ms;
    int64_t              last_prune_ms;
    size_t               nskip;
    relay_skip_t         skip[RELAY_SKIP_MAX];
} relay_t;

static relay_t  relay = { .wake = { -1, -1 } };


static void *relay_main(void *arg);
static int relay_session(relay_t *r);
static int relay_round(relay_t *r, int *more);
static int relay_wait(relay_t *r, int ms);
static int relay_stamp(relay_t *r, const char *sql, const char *ids);
static void relay_backlog_metric(relay_t *r);
static int relay_backlog_count(relay_t *r);
static int relay_failed(relay_t *r, const char *ids, int sit_out);
static int relay_prune(relay_t *r);
static int relay_backlog_short(relay_t *r, long left, size_t skipped);
static char *relay_skip_list(relay_t *r);
static int relay_producer(relay_t *r);
static void relay_sleep(relay_t *r, int ms);
static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m,
    void *opaque);
static int add_header(rd_kafka_headers_t *h, const char *name,
    const char *value);


/* ---- enc_outbox_add: on the caller's transaction ---------------------- */

int
enc_outbox_add(enc_pg_t *pg, const char *topic, const char *type,
    const char *key, const char *subject, json_t *data)
{
    int          rc = -1;
    char        *json = NULL;
    char         source[96];
    PGresult    *res = NULL;
    const char  *params[7];

    if (pg == NULL || topic == NULL || type == NULL || data == NULL) {
        enc_log_error("outbox: missing topic, type or data");
        return -1;
    }

    /* the whole point of the outbox is atomicity with the domain change */
    if (PQtransactionStatus(enc_pg_conn(pg)) != PQTRANS_INTRANS) {
        enc_log_error("outbox: enc_outbox_add outside a transaction "
                      "(topic \"%s\", type \"%s\")", topic, type);
        return -1;
    }

    json = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
    if (json == NULL) {
        enc_log_error("outbox: cannot serialise data of \"%s\"", type);
        return -1;
    }

    (void) snprintf(source, sizeof(source), "/encore/%s", enc_pg_schema());

    params[0] = topic;
    params[1] = key;
    params[2] = type;
    params[3] = source;
    params[4] = subject;
    params[5] = json;
    params[6] = enc_log_request_id();

    res = enc_pg_exec_sql(pg, RELAY_INSERT_SQL, 7, params);
    if (res == NULL) {
        enc_log_error("outbox: insert failed: connection lost");
        goto failed;
    }
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        enc_log_error("outbox: insert failed: %s",
                      PQresultErrorMessage(res));
        goto failed;
    }

    rc = 0;

failed:
    if (res != NULL) {
        PQclear(res);
    }
    free(json);
    return rc;
}


/* ---- rows, headers, batches: the Kafka side --------------------------- */

static const char *
field(const PGresult *res, int i, int col)
{
    return PQgetisnull(res, i, col) ? NULL : PQgetvalue(res, i, col);
}


int
enc_outbox_row_from_result(const PGresult *res, int i, enc_outbox_row_t *out)
{
    char        *end;
    const char  *id;

    if (res == NULL || i < 0 || i >= PQntuples(res) || PQnfields(res) != 10) {
        return -1;
    }

    id = field(res, i, 0);
    if (id == NULL) {
        return -1;
    }
    errno = 0;
    out->id = strtoll(id, &end, 10);
    if (errno != 0 || end == id || *end != '\0') {
        return -1;
    }

    out->event_id = field(res, i, 1);
    out->topic = field(res, i, 2);
    out->key = field(res, i, 3);
    out->type = field(res, i, 4);
    out->source = field(res, i, 5);
    out->subject = field(res, i, 6);
    out->time = field(res, i, 7);
    out->data = field(res, i, 8);
    out->request_id = field(res, i, 9);

    if (out->event_id == NULL || out->topic == NULL || out->type == NULL
        || out->source == NULL || out->time == NULL || out->data == NULL)
    {
        return -1;
    }

    return 0;
}


static int
add_header(rd_kafka_headers_t *h, const char *name, const char *value)
{
    if (value == NULL) {
        return 0;
    }
    return rd_kafka_header_add(h, name, -1, value, -1)
           == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}


rd_kafka_headers_t *
enc_outbox_headers(const enc_outbox_row_t *row)
{
    rd_kafka_headers_t  *h;

    h = rd_kafka_headers_new(8);
    if (h == NULL) {
        return NULL;
    }

    if (add_header(h, "ce_specversion", "1.0") != 0
        || add_header(h, "ce_id", row->event_id) != 0
        || add_header(h, "ce_source", row->source) != 0
        || add_header(h, "ce_type", row->type) != 0
        || add_header(h, "ce_time", row->time) != 0
        || add_header(h, "ce_subject", row->subject) != 0
        || add_header(h, "content-type", "application/json") != 0
        || add_header(h, "ce_encorerequestid", row->request_id) != 0)
    {
        rd_kafka_headers_destroy(h);
        return NULL;
    }

    return h;
}


/* Runs on the thread that polls the producer (enc_outbox_publish's caller),
   never concurrently with it. */
static void
dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    enc_outbox_state_t  *slot = m->_private;

    if (slot == NULL) {
        return;
    }

    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        *slot = ENC_OUTBOX_DELIVERED;
    } else {
        *slot = ENC_OUTBOX_FAILED;
        enc_log_warn("relay: delivery to \"%s\" failed: %s",
                     rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
    }
}


rd_kafka_t *
enc_outbox_producer_new(const char *brokers, const char *client_id,
    const char *const *extra, char *err, size_t errlen)
{
    size_t                i;
    rd_kafka_t           *rk;
    rd_kafka_conf_t      *conf;
    static const char    *base[] = {
        "enable.idempotence", "true",    /* no duplicates from retries, */
        "acks", "all",                   /* ...in order, on every ISR */
        "message.timeout.ms", RELAY_MESSAGE_TIMEOUT_MS,
        "linger.ms", "5",
        "compression.type", "lz4",
        NULL
    };

    conf = rd_kafka_conf_new();
    if (conf == NULL) {
        (void) snprintf(err, errlen, "rd_kafka_conf_new failed");
        return NULL;
    }

    for (i = 0; base[i] != NULL; i += 2) {
        if (rd_kafka_conf_set(conf, base[i], base[i + 1], err, errlen)
            != RD_KAFKA_CONF_OK)
        {
            goto failed;
        }
    }

    if ((brokers != NULL && brokers[0] != '\0'
         && rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err,
                              errlen) != RD_KAFKA_CONF_OK)
        || (client_id != NULL && client_id[0] != '\0'
            && rd_kafka_conf_set(conf, "client.id", client_id, err, errlen)
               != RD_KAFKA_CONF_OK))
    {
        goto failed;
    }

    for (i = 0; extra != NULL && extra[i] != NULL; i += 2) {
        if (extra[i + 1] == NULL
            || rd_kafka_conf_set(conf, extra[i], extra[i + 1], err, errlen)
               != RD_KAFKA_CONF_OK)
        {
            goto failed;
        }
    }

    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    enc_kafka_conf_set_logging(conf);

    /* on success rd_kafka_new owns conf */
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errlen);
    if (rk == NULL) {
        goto failed;
    }
    return rk;

failed:
    rd_kafka_conf_destroy(conf);
    return NULL;
}


static int64_t
now_ms(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static size_t
count_state(const enc_outbox_state_t *state, size_t n, enc_outbox_state_t s)
{
    size_t  i, c;

    for (c = 0, i = 0; i < n; i++) {
        c += state[i] == s;
    }
    return c;
}


/* Whether an earlier row of rows[i]'s topic and key failed to produce in
   this batch.  Rows without a key promise no order. */
static int
held_back(const enc_outbox_row_t *rows, const enc_outbox_state_t *state,
    size_t i)
{
    size_t  j;

    if (rows[i].key == NULL) {
        return 0;
    }

    for (j = 0; j < i; j++) {
        if ((state[j] == ENC_OUTBOX_FAILED || state[j] == ENC_OUTBOX_HELD)
            && rows[j].key != NULL
            && strcmp(rows[j].key, rows[i].key) == 0
            && strcmp(rows[j].topic, rows[i].topic) == 0)
        {
            return 1;
        }
    }

    return 0;
}


size_t
enc_outbox_publish(rd_kafka_t *rk, const enc_outbox_row_t *rows, size_t n,
    enc_outbox_state_t *state)
{
    int                  purged;
    size_t               i, pending, refused;
    int64_t              deadline;
    rd_kafka_resp_err_t  err;
    rd_kafka_headers_t  *h;

    for (i = 0; i < n; i++) {
        state[i] = ENC_OUTBOX_PENDING;
    }

    refused = 0;

    for (i = 0; i < n; i++) {
        if (refused > 0 && held_back(rows, state, i)) {
            state[i] = ENC_OUTBOX_HELD;
            continue;
        }

        h = enc_outbox_headers(&rows[i]);
        if (h == NULL) {
            state[i] = ENC_OUTBOX_FAILED;
            refused++;
            continue;
        }

        for ( ;; ) {
            /* data is copied, so the PGresult may go before the report;
               the headers are owned by librdkafka once this succeeds; the
               message opaque is the row's slot, written by dr_msg_cb */
            err = rd_kafka_producev(rk,
                      RD_KAFKA_V_TOPIC(rows[i].topic),
                      RD_KAFKA_V_KEY(rows[i].key,
                                     rows[i].key ? strlen(rows[i].key) : 0),
                      RD_KAFKA_V_VALUE((void *) rows[i].data,
                                       strlen(rows[i].data)),
                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                      RD_KAFKA_V_HEADERS(h),
                      RD_KAFKA_V_OPAQUE(&state[i]),
                      RD_KAFKA_V_END);

            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                break;
            }
            /* local queue full: serve reports to make room */
            (void) rd_kafka_poll(rk, 100);
        }

        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_headers_destroy(h);
            state[i] = ENC_OUTBOX_FAILED;
            refused++;
            enc_log_warn("relay: produce to \"%s\" refused: %s",
                         rows[i].topic, rd_kafka_err2str(err));
        }
    }

    /* Wait for every report: message.timeout.ms bounds it, and after a
       grace period the in-flight messages are purged, which reports them
       as failed.  state[] must not be written after we return, so this
       loop only ends when no slot is pending. */
    deadline = now_ms() + atoi(RELAY_MESSAGE_TIMEOUT_MS) + RELAY_GRACE_MS;
    purged = 0;
    for ( ;; ) {
        pending = count_state(state, n, ENC_OUTBOX_PENDING);
        if (pending == 0) {
            break;
        }
        if (!purged && now_ms() > deadline) {
            enc_log_error("relay: %zu deliveries overdue, purging", pending);
            (void) rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE
                                      | RD_KAFKA_PURGE_F_INFLIGHT);
            purged = 1;
        }

        /*
         * the relay is asked to stop (SIGTERM) while Kafka is slow or
         * down: give the rows up now rather than after the message
         * timeout; they stay in the backlog for the next relay
         */
        if (!purged && atomic_load(&relay.stop)) {
            enc_log_warn("relay: stopping with %zu deliveries pending; they"
                         " stay in the outbox", pending);
            (void) rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE
                                      | RD_KAFKA_PURGE_F_INFLIGHT);
            purged = 1;
        }
        (void) rd_kafka_poll(rk, 100);
    }

    return count_state(state, n, ENC_OUTBOX_DELIVERED);
}


char *
enc_outbox_id_array(const enc_outbox_row_t *rows,
    const enc_outbox_state_t *state, size_t n, enc_outbox_state_t want,
    size_t *count)
{
    char    *buf, *p;
    size_t   i, cap;

    *count = 0;
    for (i = 0; i < n; i++) {
        if (state[i] == want) {
            (*count)++;
        }
    }
    if (*count == 0) {
        return NULL;
    }

    /* 20 digits and a sign per int64, a comma, braces and NUL */
    cap = *count * 22 + 3;
    buf = malloc(cap);
    if (buf == NULL) {
        return NULL;
    }

    p = buf;
    *p++ = '{';
    for (i = 0; i < n; i++) {
        if (state[i] != want) {
            continue;
        }
        p += snprintf(p, cap - (size_t) (p - buf), "%s%" PRId64,
                      p == buf + 1 ? "" : ",", rows[i].id);
    }
    *p++ = '}';
    *p = '\0';
    return buf;
}


/* ---- the relay thread ---------------------------------------------------- */

int
enc_relay_start(const enc_config_t *c)
{
    int          rc;
    char         pw[256], err[512];
    const char  *fault, *kv[16];

    if (!enc_config_bool(c, "outbox.enabled")) {
        enc_log_info("relay: disabled (outbox.enabled = false)");
        atomic_store(&relay.ready, 1);
        return 0;
    }
    if (relay.started) {
        enc_log_error("relay: already started");
        return -1;
    }
    /* the connection's settings are checked now: a producer that could
       never be made would leave the worker unready with no other word */
    rc = enc_kafka_security(c, kv, 0, 16, pw, sizeof(pw), err, sizeof(err));
    explicit_bzero(pw, sizeof(pw));
    if (rc < 0) {
        enc_log_error("relay: %s", err);
        return -1;
    }

    relay.conf = c;
    atomic_store(&relay.stop, 0);
    atomic_store(&relay.ready, 0);
    relay.rk = NULL;
    relay.pg = NULL;
    relay.last_backlog = 0;
    relay.last_age = 0;
    relay.last_count_ms = 0;
    relay.last_prune_ms = 0;
    relay.nskip = 0;

    if ((size_t) snprintf(relay.schema, sizeof(relay.schema), "%s",
                          enc_pg_schema()) >= sizeof(relay.schema))
    {
        enc_log_error("relay: schema name too long");
        return -1;
    }
    (void) snprintf(relay.channel, sizeof(relay.channel), "encore_outbox_%s",
                    relay.schema);

    /* integration-test hook, inert unless explicitly armed */
    fault = getenv("ENCORE_FAULT_RELAY_EXIT_AFTER_ACK");
    relay.fault_exit = fault != NULL && strcmp(fault, "1") == 0;
    if (relay.fault_exit) {
        enc_log_warn("relay: fault injection armed: exiting %d after the "
                     "first acked batch, before marking it sent",
                     RELAY_FAULT_EXIT);
    }

    if (pipe(relay.wake) != 0) {
        enc_log_error("relay: pipe: %s", strerror(errno));
        return -1;
    }

    rc = pthread_create(&relay.thread, NULL, relay_main, &relay);
    if (rc != 0) {
        enc_log_error("relay: pthread_create: %s", strerror(rc));
        (void) close(relay.wake[0]);
        (void) close(relay.wake[1]);
        relay.wake[0] = relay.wake[1] = -1;
        return -1;
    }

    relay.started = 1;
    return 0;
}


void
enc_relay_stop(void)
{
    char  c = 1;

    if (!relay.started) {
        return;
    }

    atomic_store(&relay.stop, 1);
    /* a full pipe already wakes the thread, so a failed write is harmless */
    if (write(relay.wake[1], &c, 1) != 1) {
        enc_log_debug("relay: wake pipe full");
    }

    (void) pthread_join(relay.thread, NULL);
    (void) close(relay.wake[0]);
    (void) close(relay.wake[1]);
    relay.wake[0] = relay.wake[1] = -1;
    relay.started = 0;
    atomic_store(&relay.ready, 0);
}


int
enc_relay_ready(void)
{
    return atomic_load(&relay.ready);
}


static void *
relay_main(void *arg)
{
    relay_t  *r = arg;
    int       backoff = RELAY_BACKOFF_MIN_MS;

    while (!atomic_load(&r->stop)) {
        if (r->rk == NULL && relay_producer(r) != 0) {
            atomic_store(&r->ready, 0);
            relay_sleep(r, backoff);
            backoff = backoff * 2 > RELAY_BACKOFF_MAX_MS
                      ? RELAY_BACKOFF_MAX_MS : backoff * 2;
            continue;
        }

        if (relay_session(r) == 0) {
            backoff = RELAY_BACKOFF_MIN_MS;
        }

        /* closing the connection also releases the advisory lock */
        if (r->pg != NULL) {
            enc_pg_close(r->pg);
            r->pg = NULL;
        }
        if (r->locked) {
            enc_log_info("relay: released schema \"%s\"", r->schema);
            r->locked = 0;
        }

        if (!atomic_load(&r->stop)) {
            atomic_store(&r->ready, 0);
            relay_sleep(r, backoff);
            backoff = backoff * 2 > RELAY_BACKOFF_MAX_MS
                      ? RELAY_BACKOFF_MAX_MS : backoff * 2;
        }
    }

    if (r->rk != NULL) {
        /* every batch waited for its reports, so this is normally empty */
        if (rd_kafka_flush(r->rk, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            enc_log_warn("relay: flush timed out, %d messages left",
                         rd_kafka_outq_len(r->rk));
        }
        rd_kafka_destroy(r->rk);
        r->rk = NULL;
    }

    return NULL;
}


/* Creates r->rk.  The previous producer, if any, was destroyed by the
   caller. */
static int
relay_producer(relay_t *r)
{
    int          n;
    char         client_id[96], err[512], linger[24], pw[256];
    const char  *id, *extra[16];

    /* the relay hands librdkafka a whole batch at once, so waiting for
       more only delays it (tests/bench/events: 5 ms was the bulk of an
       event's freshness) */
    (void) snprintf(linger, sizeof(linger), "%ld",
                    enc_config_int(r->conf, "outbox.linger_ms"));
    extra[0] = "linger.ms";
    extra[1] = linger;
    n = enc_kafka_security(r->conf, extra, 2, 16, pw, sizeof(pw), err,
                           sizeof(err));
    if (n < 0) {
        enc_log_error("relay: %s", err);
        return -1;
    }

    id = enc_config_str(r->conf, "kafka.client_id");
    if (id == NULL || id[0] == '\0') {
        (void) snprintf(client_id, sizeof(client_id), "encore-%s",
                        r->schema);
        id = client_id;
    }

    r->rk = enc_outbox_producer_new(enc_config_str(r->conf, "kafka.brokers"),
                                    id, extra, err, sizeof(err));
    explicit_bzero(pw, sizeof(pw));
    if (r->rk == NULL) {
        enc_log_error("relay: cannot create producer: %s", err);
        return -1;
    }
    return 0;
}


/*
 * One connection's life: connect, win the schema's lock, LISTEN, relay
 * until stopped or the connection fails.  Returns 0 when stopped, -1 on a
 * failure (the caller reconnects after a backoff).
 */
static int
relay_session(relay_t *r)
{
    int                  more, stood_by = 0;
    char                *ident, sql[160], errstr[512];
    PGconn              *conn;
    PGresult            *res;
    const char          *params[1];
    rd_kafka_resp_err_t  fatal;

    r->pg = enc_pg_connect_new();
    if (r->pg == NULL) {
        enc_log_warn("relay: database unreachable");
        return -1;
    }
    atomic_store(&r->ready, 1);

    /* one relay per schema, so per-key order holds across processes */
    params[0] = r->schema;
    for ( ;; ) {
        if (atomic_load(&r->stop)) {
            return 0;
        }

        res = enc_pg_exec_sql(r->pg, RELAY_LOCK_SQL, 1, params);
        if (res == NULL) {
            return -1;
        }
        if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
            enc_log_error("relay: advisory lock: %s",
                          PQresultErrorMessage(res));
            PQclear(res);
            return -1;
        }
        r->locked = PQgetvalue(res, 0, 0)[0] == 't';
        PQclear(res);

        if (r->locked) {
            break;
        }
        if (!stood_by) {
            enc_log_info("relay: another process relays schema \"%s\", "
                         "standing by", r->schema);
            stood_by = 1;
        }
        relay_sleep(r, RELAY_STANDBY_MS);
    }
    enc_log_info("relay: relaying schema \"%s\"", r->schema);

    /* LISTEN takes no parameters; the channel is quoted by libpq */
    conn = enc_pg_conn(r->pg);
    if (conn == NULL) {
        return -1;
    }
    ident = PQescapeIdentifier(conn, r->channel, strlen(r->channel));
    if (ident == NULL) {
        enc_log_error("relay: %s", PQerrorMessage(conn));
        return -1;
    }
    (void) snprintf(sql, sizeof(sql), "LISTEN %s", ident);
    PQfreemem(ident);

    res = enc_pg_exec_sql(r->pg, sql, 0, NULL);
    if (res == NULL) {
        return -1;
    }
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        enc_log_error("relay: listen: %s", PQresultErrorMessage(res));
        PQclear(res);
        return -1;
    }
    PQclear(res);

    /* the backlog left by a previous run is read by the first round */
    while (!atomic_load(&r->stop)) {
        if (r->rk == NULL && relay_producer(r) != 0) {
            relay_sleep(r, RELAY_BACKOFF_MAX_MS);
            continue;
        }

        if (relay_round(r, &more) != 0 || relay_prune(r) != 0) {
            return -1;
        }

        /* an idempotent producer that lost its guarantees (e.g. a fenced
           producer id) is unusable; a new one gets a new id */
        fatal = rd_kafka_fatal_error(r->rk, errstr, sizeof(errstr));
        if (fatal != RD_KAFKA_RESP_ERR_NO_ERROR) {
            enc_log_error("relay: producer fatal error %s: %s, recreating",
                          rd_kafka_err2name(fatal), errstr);
            rd_kafka_destroy(r->rk);
            r->rk = NULL;
            continue;
        }

        if (!more && relay_wait(r, (int) enc_config_int(r->conf,
                                                        "outbox.poll_ms"))
                     != 0)
        {
            return -1;
        }
    }

    return 0;
}


/*
 * Reads one batch of the backlog, publishes it and stamps the outcome.
 * *more is set when the batch was full and made progress, so the caller
 * goes on without waiting.  -1 on a database failure.
 */
static int
relay_round(relay_t *r, int *more)
{
    int                  rc = -1, i, n;
    char                *ids = NULL, *skip, limit[24], *end;
    long                 batch;
    size_t               m, k, delivered, count, skipped;
    PGresult            *res;
    const char          *params[2], *id;
    enc_outbox_row_t    *rows = NULL;
    enc_outbox_state_t  *state = NULL;

    *more = 0;
    batch = enc_config_int(r->conf, "outbox.batch");
    (void) snprintf(limit, sizeof(limit), "%ld", batch);
    skip = relay_skip_list(r);
    if (skip == NULL) {
        enc_log_error("relay: out of memory");
        return -1;
    }
    params[0] = limit;
    params[1] = skip;
    skipped = r->nskip;

    res = enc_pg_exec_sql(r->pg, enc_outbox_backlog_sql, 2, params);
    free(skip);
    if (res == NULL) {
        return -1;
    }
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        enc_log_error("relay: backlog: %s", PQresultErrorMessage(res));
        PQclear(res);
        return -1;
    }

    n = PQntuples(res);
    if (n == 0) {
        PQclear(res);
        return relay_backlog_short(r, 0, skipped);
    }

    rows = calloc((size_t) n, sizeof(*rows));
    state = calloc((size_t) n, sizeof(*state));
    if (rows == NULL || state == NULL) {
        enc_log_error("relay: out of memory");
        goto failed;
    }

    /*
     * NOT NULL constraints make unmappable rows impossible; should one
     * appear anyway it is logged, counted as a failed delivery and sits
     * out like one, so it can neither wedge the batch nor be lost.  Its
     * slot goes to the end of rows[] (after the ones published), state
     * FAILED.
     */
    for (m = 0, k = (size_t) n, i = 0; i < n; i++) {
        if (enc_outbox_row_from_result(res, i, &rows[m]) == 0) {
            m++;
            continue;
        }
        id = PQgetvalue(res, i, 0);
        enc_log_error("relay: outbox row %s is malformed (a required column"
                      " is NULL), not published; fix or remove it", id);
        enc_metrics_counter_add("encore_outbox_malformed_total",
                                "outbox rows that cannot be published", 1);
        errno = 0;
        k--;
        memset(&rows[k], 0, sizeof(rows[k]));
        rows[k].id = strtoll(id, &end, 10);
        state[k] = (errno == 0 && end != id && *end == '\0')
                   ? ENC_OUTBOX_FAILED : ENC_OUTBOX_PENDING;
    }

    delivered = enc_outbox_publish(r->rk, rows, m, state);

    if (delivered > 0 && r->fault_exit) {
        /* "never lost, possibly duplicated": Kafka has the messages, the
           rows are still unpublished, so the next relay sends them again */
        enc_log_warn("relay: fault injection: exiting after %zu acked "
                     "deliveries, before marking them sent", delivered);
        _exit(RELAY_FAULT_EXIT);
    }

    ids = enc_outbox_id_array(rows, state, m, ENC_OUTBOX_DELIVERED, &count);
    if (count > 0) {
        if (ids == NULL || relay_stamp(r, RELAY_MARK_SQL, ids) != 0) {
            /* delivered but not stamped: published again later with the
               same ce_id, which consumers deduplicate */
            goto failed;
        }
        enc_metrics_counter_add("encore_outbox_published_total",
                                "outbox events acknowledged by Kafka",
                                (double) count);
    }
    free(ids);

    /*
     * Failed deliveries.  When others in the batch went through, the
     * failure is the row's own (too large, say): it sits out, so the rows
     * of other keys behind it flow.  When nothing went through, Kafka is
     * likely down: the rows stay at the head and are retried in order,
     * unless one has failed RELAY_POISON_ATTEMPTS times (a batch of poison
     * rows must not wedge the relay either).  A row sitting out holds back
     * the rest of its key (enc_outbox_backlog_sql); HELD rows were never
     * tried and just stay in the backlog.
     */
    ids = enc_outbox_id_array(rows, state, m, ENC_OUTBOX_FAILED, &count);
    if (count > 0) {
        enc_metrics_counter_add("encore_outbox_failed_total",
                                "outbox deliveries that failed (retried)",
                                (double) count);
        enc_log_warn("relay: %zu of %zu events not delivered, retrying "
                     "later", count, m);
        if (ids == NULL || relay_failed(r, ids, delivered > 0) != 0) {
            goto failed;
        }
    }
    free(ids);

    /* the malformed rows, in slots k..n, always sit out */
    ids = enc_outbox_id_array(rows + k, state + k, (size_t) n - k,
                              ENC_OUTBOX_FAILED, &count);
    if (count > 0 && (ids == NULL || relay_failed(r, ids, 1) != 0)) {
        goto failed;
    }

    /* a short batch was the whole backlog; otherwise ask the table */
    if (n < batch) {
        if (relay_backlog_short(r, (long) (n - (int) delivered), skipped)
            != 0)
        {
            goto failed;
        }
    } else {
        *more = delivered > 0;
        if (relay_backlog_count(r) != 0) {
            goto failed;
        }
    }

    rc = 0;

failed:
    free(ids);
    free(state);
    free(rows);
    PQclear(res);
    return rc;
}


/* "{id,...}" of the rows sitting out now; expired entries are dropped.
   Caller frees; NULL on allocation failure. */
static char *
relay_skip_list(relay_t *r)
{
    char     *buf, *p;
    size_t    i, j;
    int64_t   now = now_ms();

    for (i = 0, j = 0; i < r->nskip; i++) {
        if (r->skip[i].until_ms > now) {
            r->skip[j++] = r->skip[i];
        }
    }
    r->nskip = j;

    buf = malloc(r->nskip * 22 + 3);
    if (buf == NULL) {
        return NULL;
    }
    p = buf;
    *p++ = '{';
    for (i = 0; i < r->nskip; i++) {
        p += sprintf(p, "%s%" PRId64, i == 0 ? "" : ",", r->skip[i].id);
    }
    *p++ = '}';
    *p = '\0';
    return buf;
}


/*
 * Counts a failed attempt for each row in ids ("{...}") and logs an error
 * for the rows that keep failing.  A row sits out of the backlog query for
 * a backoff when sit_out is set or it failed RELAY_POISON_ATTEMPTS times or
 * more.  -1 on a database failure.
 */
static int
relay_failed(relay_t *r, const char *ids, int sit_out)
{
    int          i, attempts;
    int64_t      now = now_ms(), delay;
    PGresult    *res;
    const char  *params[1];

    params[0] = ids;
    res = enc_pg_exec_sql(r->pg, RELAY_FAILED_SQL, 1, params);
    if (res == NULL) {
        enc_log_error("relay: connection lost while updating the outbox");
        return -1;
    }
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        enc_log_error("relay: update: %s", PQresultErrorMessage(res));
        PQclear(res);
        return -1;
    }

    for (i = 0; i < PQntuples(res); i++) {
        attempts = atoi(PQgetvalue(res, i, 1));
        if (attempts >= RELAY_POISON_ATTEMPTS
            && attempts % RELAY_POISON_ATTEMPTS == 0)
        {
            enc_log_error("relay: outbox row %s failed %d deliveries; it is "
                          "kept and retried, check it (size, topic)",
                          PQgetvalue(res, i, 0), attempts);
        }
        if ((!sit_out && attempts < RELAY_POISON_ATTEMPTS)
            || r->nskip == RELAY_SKIP_MAX)
        {
            continue;            /* stays at the head of the backlog */
        }
        delay = (int64_t) RELAY_BACKOFF_MIN_MS << (attempts < 10 ? attempts
                                                                  : 10);
        r->skip[r->nskip].id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        r->skip[r->nskip].until_ms = now + (delay < RELAY_RETRY_MAX_MS
                                            ? delay : RELAY_RETRY_MAX_MS);
        r->nskip++;
    }
    PQclear(res);
    return 0;
}


/*
 * Deletes published rows older than outbox.retain_hours, at most once per
 * RELAY_PRUNE_EVERY_MS, so the table does not grow forever.  Only the
 * schema's relay (it holds the lock) prunes.  -1 on a lost connection; a
 * failed statement is logged and retried on the next pass.
 */
static int
relay_prune(relay_t *r)
{
    long         hours;
    char         retain[24];
    int64_t      now = now_ms();
    PGresult    *res;
    const char  *params[2];

    hours = enc_config_int(r->conf, "outbox.retain_hours");
    if (hours == 0
        || (r->last_prune_ms != 0
            && now - r->last_prune_ms < RELAY_PRUNE_EVERY_MS))
    {
        return 0;
    }
    r->last_prune_ms = now;

    (void) snprintf(retain, sizeof(retain), "%ld", hours);
    params[0] = retain;
    params[1] = RELAY_PRUNE_CHUNK;

    res = enc_pg_exec_sql(r->pg, RELAY_PRUNE_SQL, 2, params);
    if (res == NULL) {
        return -1;
    }
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        enc_log_warn("relay: pruning published rows: %s",
                     PQresultErrorMessage(res));
    } else if (atol(PQcmdTuples(res)) > 0) {
        enc_log_info("relay: deleted %s published rows older than %ld h",
                     PQcmdTuples(res), hours);
        /* more may be left: take the next chunk on the next round */
        if (atol(PQcmdTuples(res)) == atol(RELAY_PRUNE_CHUNK)) {
            r->last_prune_ms = 0;
        }
    }
    PQclear(res);
    return 0;
}


/*
 * The backlog after a short batch: what it left plus the rows sitting out,
 * exact unless rows sitting out hold back others of their key (those were
 * not selected), when the table is asked instead.  -1 on a lost connection.
 */
static int
relay_backlog_short(relay_t *r, long left, size_t skipped)
{
    /* rows left behind: their age is the table's to tell */
    if (skipped > 0 || left > 0) {
        return relay_backlog_count(r);
    }

    r->last_backlog = 0;
    r->last_age = 0;
    relay_backlog_metric(r);
    return 0;
}


/* the backlog of a full batch, from the table (the partial index keeps it
   cheap; at most once per RELAY_COUNT_EVERY_MS).  -1 on a lost
   connection */
static int
relay_backlog_count(relay_t *r)
{
    int64_t    now = now_ms();
    PGresult  *res;

    if (r->last_count_ms != 0 && now - r->last_count_ms < RELAY_COUNT_EVERY_MS)
    {
        return 0;
    }
    res = enc_pg_exec_sql(r->pg, RELAY_BACKLOG_COUNT_SQL, 0, NULL);
    if (res == NULL) {
        return -1;
    }
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        r->last_backlog = atol(PQgetvalue(res, 0, 0));
        r->last_age = strtod(PQgetvalue(res, 0, 1), NULL);
        if (!(r->last_age >= 0)) {              /* a clock step back, NaN */
            r->last_age = 0;
        }
        r->last_count_ms = now;
        relay_backlog_metric(r);
    } else {
        enc_log_warn("relay: backlog count: %s", PQresultErrorMessage(res));
    }
    PQclear(res);
    return 0;
}


static int
relay_stamp(relay_t *r, const char *sql, const char *ids)
{
    PGresult    *res;
    const char  *params[1];

    params[0] = ids;
    res = enc_pg_exec_sql(r->pg, sql, 1, params);
    if (res == NULL) {
        enc_log_error("relay: connection lost while updating the outbox");
        return -1;
    }
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        enc_log_error("relay: update: %s", PQresultErrorMessage(res));
        PQclear(res);
        return -1;
    }
    PQclear(res);
    return 0;
}


/* the backlog goes up and down: gauges, as of the relay's last look */
static void
relay_backlog_metric(relay_t *r)
{
    enc_metrics_gauge_set("encore_outbox_backlog",
                          "outbox events waiting to be published",
                          (double) r->last_backlog);
    enc_metrics_gauge_set("encore_outbox_oldest_age_seconds",
                          "age of the oldest outbox event waiting to be"
                          " published, 0 when none waits",
                          r->last_age);
}


/*
 * Waits up to ms for a NOTIFY on the relay's channel, a stop request or
 * the timeout (the polling fallback for lost notifications, e.g. across a
 * reconnect).  -1 if the connection broke.
 */
static int
relay_wait(relay_t *r, int ms)
{
    int              got = 0, rc;
    char             buf[64];
    PGconn          *conn;
    PGnotify        *nt;
    struct pollfd    fds[2];

    /* pg.c would silently reconnect a broken connection, losing the lock
       and the LISTEN: the relay bails out on any failure before it comes
       back here, so this is the session it locked */
    conn = enc_pg_conn(r->pg);
    if (conn == NULL) {
        return -1;
    }

    /* notifications that arrived during the last round: rows may have
       committed after its snapshot, so go again at once */
    if (PQconsumeInput(conn) == 0) {
        enc_log_warn("relay: %s", PQerrorMessage(conn));
        return -1;
    }
    while ((nt = PQnotifies(conn)) != NULL) {
        PQfreemem(nt);
        got = 1;
    }
    if (got) {
        return 0;
    }

    fds[0].fd = PQsocket(conn);
    fds[0].events = POLLIN;
    fds[1].fd = r->wake[0];
    fds[1].events = POLLIN;

    rc = poll(fds, 2, ms);
    if (rc < 0) {
        if (errno != EINTR) {
            enc_log_error("relay: poll: %s", strerror(errno));
        }
        return 0;
    }

    if (fds[1].revents & POLLIN) {
        (void) !read(r->wake[0], buf, sizeof(buf));
    }

    if (fds[0].revents & (POLLIN | POLLERR | POLLHUP)) {
        if (PQconsumeInput(conn) == 0) {
            enc_log_warn("relay: %s", PQerrorMessage(conn));
            return -1;
        }
        while ((nt = PQnotifies(conn)) != NULL) {
            PQfreemem(nt);
        }
    }

    return 0;
}


/* Sleeps ms or until enc_relay_stop. */
static void
relay_sleep(relay_t *r, int ms)
{
    char           buf[64];
    struct pollfd  fd;

    fd.fd = r->wake[0];
    fd.events = POLLIN;
    if (poll(&fd, 1, ms) > 0 && (fd.revents & POLLIN)) {
        (void) !read(r->wake[0], buf, sizeof(buf));
    }
}
