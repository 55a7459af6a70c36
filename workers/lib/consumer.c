/*
 * consumer: Kafka in, applied exactly once through the inbox.  See
 * consumer.h.
 *
 * Per batch (the messages librdkafka already holds, up to consumer.batch):
 *
 *   poll (waits for the first) ─▶ poll(0) while it has more ─▶ parse each
 *     │
 *   runs: events that may share a transaction; one that must be alone
 *   (the alone predicate) is a run of its own
 *     │
 *   per run:  BEGIN
 *             INSERT INTO inbox ... ON CONFLICT DO NOTHING, every event
 *             of the run in one statement
 *             per event: malformed ─▶ nothing (logged, skipped)
 *                        inserted: handler()     already there: skip
 *             every event 0 ─▶ COMMIT ─▶ store the offsets (librdkafka
 *                                        commits them in the background)
 *             event k fails ─▶ ROLLBACK; the run's events before k again
 *                              in a transaction of their own; then every
 *                              partition with messages from k on is sought
 *                              back (kept in hand if the seek fails while
 *                              it is still ours), backoff, k retried
 *
 * Offsets are stored after the database commit: a crash in between
 * redelivers those events, and their inbox rows make the redelivery a
 * no-op.  Storing first would lose them instead.  One transaction per
 * batch instead of per event is what makes a backlog cheap: one commit
 * (one WAL flush) and no broker round trip per event, while an event
 * that arrives alone is applied as soon as it is fetched.
 *
 * No savepoint per event: a failure is rare, a retry costs only the
 * run's prefix again, and hundreds of subtransactions in one transaction
 * would overflow PostgreSQL's per-backend subxid cache (every snapshot
 * in the cluster then reads pg_subtrans).
 */

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "consumer.h"
#include "json.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"


#define CONSUMER_INBOX_SQL                                                  \
    "INSERT INTO inbox (event_id, topic) VALUES ($1, $2)"                   \
    " ON CONFLICT (event_id) DO NOTHING"

/* a run's events in one statement: $1 = [[id, topic], ...]; the answer
   is the 1-based position of the first occurrence of each id inserted
   (a later one of the same id, or one already there, is a replay) */
#define CONSUMER_INBOX_RUN_SQL                                              \
    "WITH v AS (SELECT e->>0 AS id, e->>1 AS topic, n"                      \
    " FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS x (e, n)),"  \
    " ins AS (INSERT INTO inbox (event_id, topic) SELECT id, topic FROM v"  \
    " ORDER BY n ON CONFLICT (event_id) DO NOTHING RETURNING event_id)"     \
    " SELECT min(v.n) FROM v JOIN ins ON ins.event_id = v.id GROUP BY v.id"

/* applied event ids older than consumer.inbox_retain_hours, oldest first,
   a chunk at a time (inbox_received_idx) */
#define CONSUMER_PRUNE_SQL                                                  \
    "DELETE FROM inbox WHERE event_id = ANY(ARRAY(SELECT event_id FROM"     \
    " inbox WHERE received_at < now() - make_interval(hours => $1::int)"     \
    " ORDER BY received_at LIMIT 5000))"

#define CONSUMER_PRUNE_EVERY_S   60
#define CONSUMER_POLL_MS         500
#define CONSUMER_BACKOFF_MIN_MS  200
#define CONSUMER_BACKOFF_MAX_MS  30000   /* well below max.poll.interval.ms */
#define CONSUMER_ERRLOG_EVERY_S  60      /* repeated consumer errors */
#define CONSUMER_STATS_MS        "2000"  /* the lag gauge's refresh */
#define CONSUMER_COMMIT_MS       "1000"  /* stored offsets to the broker */

#define HDR_MAX                  1024    /* longest header value accepted */

/* exit status of the fault hook (EX_TEMPFAIL, as the relay's): easy to
   tell from a crash */
#define CONSUMER_FAULT_EXIT      75
#define CONSUMER_FAULT_ENV       "ENCORE_FAULT_CONSUMER_EXIT_AFTER_COMMIT"



/* one message of the batch in hand */
typedef struct {
    rd_kafka_message_t  *m;
    enc_event_msg_t      em;
    int                  ok;             /* parsed; else err says why */
    int                  fresh;          /* applied, not a replay */
    int                  keep;           /* consumer_hold_back */
    char                 err[160];
} item_t;

typedef struct {
    const enc_config_t    *conf;
    const char *const     *topics;
    enc_event_handler_pt   handler;
    enc_event_alone_pt     alone;
    void                  *app;
    rd_kafka_t            *rk;
    enc_pg_t              *pg;
    pthread_t              thread;
    int                    started;
    atomic_int             stop;
    time_t                 last_errlog;
    time_t                 last_prune;
    long                   fault_after;    /* CONSUMER_FAULT_ENV, 0: off */
    long                   applied;        /* events applied by this run */
    item_t                *items;          /* the batch in hand */
    size_t                *firsts;         /* consumer_hold_back's */
    size_t                 max;            /* consumer.batch */
} consumer_t;

static consumer_t  consumer;
static atomic_int  seek_fail_next;      /* tests: fail this many seeks */

/* events per transaction */
static const double  batch_bounds[] = {
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000
};


static void *consumer_main(void *arg);
static size_t consumer_fill(consumer_t *c);
static void consumer_message_error(consumer_t *c, rd_kafka_message_t *m);
static size_t consumer_apply(consumer_t *c, size_t n);
static size_t consumer_apply_run(consumer_t *c, size_t s, size_t e);
static int consumer_inbox(consumer_t *c, size_t s, size_t e);
static int consumer_apply_one(consumer_t *c, item_t *it);
static void consumer_committed(consumer_t *c, size_t s, size_t e);
static void consumer_store(consumer_t *c, size_t s, size_t e);
static size_t consumer_hold_back(consumer_t *c, size_t s, size_t n);
static void consumer_release(consumer_t *c, size_t s, size_t e);
static int consumer_alone(consumer_t *c, const item_t *it);
static void consumer_drop_pg(consumer_t *c);
static int consumer_seek(consumer_t *c, const char *topic, int32_t partition,
    int64_t offset);
static int consumer_assigned(consumer_t *c, const char *topic,
    int32_t partition);
static void consumer_sleep(consumer_t *c, int ms);
static void consumer_prune(consumer_t *c);
static int consumer_stats(rd_kafka_t *rk, char *json, size_t len,
    void *opaque);


/* ---- parsing ------------------------------------------------------------ */

/*
 * Looks up header `name` (last one wins, as the binding says a header must
 * appear once).  The value is borrowed from hdrs.  Returns 1 if present,
 * 0 if absent, -1 if present but unusable (empty, NUL inside, too long).
 */
static int
header(const rd_kafka_headers_t *hdrs, const char *name, const char **val,
    size_t *len)
{
    const void  *v;

    *val = NULL;
    *len = 0;
    if (hdrs == NULL
        || rd_kafka_header_get_last(hdrs, name, &v, len)
           != RD_KAFKA_RESP_ERR_NO_ERROR)
    {
        return 0;
    }
    if (v == NULL || *len == 0 || *len > HDR_MAX
        || memchr(v, '\0', *len) != NULL)
    {
        return -1;
    }
    *val = v;
    return 1;
}


/* Appends a NUL-terminated copy of s[0..len) at *p; returns the copy. */
static const char *
put(char **p, const char *s, size_t len)
{
    char  *d = *p;

    memcpy(d, s, len);
    d[len] = '\0';
    *p = d + len + 1;
    return d;
}


int
enc_event_parse(const char *topic, const void *key, size_t keylen,
    const void *payload, size_t len, const rd_kafka_headers_t *hdrs,
    enc_event_msg_t *out, char *err, size_t errlen)
{
    int           rc, i;
    char         *p;
    size_t        need, tlen, vl[6];
    json_t       *data;
    const char   *v[6], *ct;
    size_t        ctlen;
    json_error_t  jerr;
    static const char  *names[6] = {
        "ce_specversion", "ce_id", "ce_source", "ce_type",
        "ce_time", "ce_subject"
    };

    memset(out, 0, sizeof(*out));

    for (i = 0; i < 6; i++) {
        rc = header(hdrs, names[i], &v[i], &vl[i]);
        if (rc < 0 || (rc == 0 && i < 4)) {
            (void) snprintf(err, errlen, "%s header %s", names[i],
                            rc < 0 ? "invalid" : "missing");
            return -1;
        }
    }

    if (vl[0] != 3 || memcmp(v[0], "1.0", 3) != 0) {
        (void) snprintf(err, errlen, "unsupported ce_specversion \"%.*s\"",
                        (int) vl[0], v[0]);
        return -1;
    }

    /* binary mode: the value is the data; only JSON is understood here.
       Parameters ("; charset=utf-8") are allowed. */
    rc = header(hdrs, "content-type", &ct, &ctlen);
    if (rc < 0
        || (rc == 1
            && (ctlen < 16 || strncasecmp(ct, "application/json", 16) != 0
                || (ctlen > 16 && ct[16] != ';' && ct[16] != ' '))))
    {
        (void) snprintf(err, errlen, "content-type is not application/json");
        return -1;
    }

    if (payload == NULL || len == 0) {
        (void) snprintf(err, errlen, "empty value");
        return -1;
    }
    data = json_loadb(payload, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
                      &jerr);
    if (data == NULL) {
        /* jansson's text quotes the input near the error: position only */
        (void) snprintf(err, errlen, "value is not JSON (line %d, column %d,"
                        " byte %d)", jerr.line, jerr.column, jerr.position);
        return -1;
    }

    if (key != NULL && memchr(key, '\0', keylen) != NULL) {
        json_decref(data);
        (void) snprintf(err, errlen, "key contains NUL");
        return -1;
    }

    /* one allocation for every string the event exposes */
    tlen = topic != NULL ? strlen(topic) : 0;
    need = tlen + 1 + (key != NULL ? keylen + 1 : 0);
    for (i = 1; i < 6; i++) {
        need += vl[i] + 1;
    }
    out->mem = malloc(need);
    if (out->mem == NULL) {
        json_decref(data);
        (void) snprintf(err, errlen, "out of memory");
        return -1;
    }

    p = out->mem;
    out->ev.topic = put(&p, topic != NULL ? topic : "", tlen);
    out->ev.key = key != NULL ? put(&p, key, keylen) : NULL;
    out->ev.id = put(&p, v[1], vl[1]);
    out->ev.source = put(&p, v[2], vl[2]);
    out->ev.type = put(&p, v[3], vl[3]);
    out->ev.time = v[4] != NULL ? put(&p, v[4], vl[4]) : NULL;
    out->ev.subject = v[5] != NULL ? put(&p, v[5], vl[5]) : NULL;
    out->data = data;
    out->ev.data = data;

    return 0;
}


void
enc_event_msg_free(enc_event_msg_t *m)
{
    if (m->data != NULL) {
        json_decref(m->data);
    }
    free(m->mem);
    memset(m, 0, sizeof(*m));
}


/* ---- the fault hook ------------------------------------------------------ */

long
enc_consumer_fault_parse(const char *v)
{
    long   n;
    char  *end;

    if (v == NULL || v[0] == '\0') {
        return 0;
    }
    if (v[0] < '0' || v[0] > '9') {
        return -1;
    }
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno != 0 || *end != '\0' || n <= 0 || n > 1000000000L) {
        return -1;
    }
    return n;
}


/* ---- the Kafka handle ---------------------------------------------------- */

rd_kafka_t *
enc_consumer_kafka_new(const char *brokers, const char *group,
    const char *client_id, const char *const *extra, char *err,
    size_t errlen)
{
    size_t              i;
    rd_kafka_t         *rk;
    rd_kafka_conf_t    *conf;
    static const char  *base[] = {
        /* offsets are stored by hand, after the database commit, and
           committed from there in the background, on revocation and on
           close */
        "enable.auto.commit", "true",
        "auto.commit.interval.ms", CONSUMER_COMMIT_MS,
        "enable.auto.offset.store", "false",
        "statistics.interval.ms", CONSUMER_STATS_MS,
        "auto.offset.reset", "earliest",
        /* notice topics created after we subscribed within seconds, not
           the default five minutes */
        "topic.metadata.refresh.interval.ms", "10000",
        /* a worker that died without leaving the group holds its
           partitions until the session times out: 10 s, not the default
           45 s, bounds how long its events wait after a crash */
        "session.timeout.ms", "10000",
        "heartbeat.interval.ms", "2000",
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

    if (rd_kafka_conf_set(conf, "group.id", group, err, errlen)
        != RD_KAFKA_CONF_OK
        || (brokers != NULL && brokers[0] != '\0'
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

    enc_kafka_conf_set_logging(conf);
    rd_kafka_conf_set_stats_cb(conf, consumer_stats);

    /* on success rd_kafka_new owns conf */
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, errlen);
    if (rk == NULL) {
        goto failed;
    }

    /* one queue: rebalances, errors and messages all come out of
       rd_kafka_consumer_poll on the consumer thread */
    if (rd_kafka_poll_set_consumer(rk) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        (void) snprintf(err, errlen, "rd_kafka_poll_set_consumer failed");
        rd_kafka_destroy(rk);
        return NULL;
    }
    return rk;

failed:
    rd_kafka_conf_destroy(conf);
    return NULL;
}


/* ---- the consumer thread -------------------------------------------------- */

int
enc_consumer_start(const enc_config_t *c, const char *const *topics,
    enc_event_handler_pt handler, void *app)
{
    return enc_consumer_start_ex(c, topics, handler, NULL, app);
}


int
enc_consumer_start_ex(const enc_config_t *c, const char *const *topics,
    enc_event_handler_pt handler, enc_event_alone_pt alone, void *app)
{
    int                               rc;
    char                              group[128], client_id[128], err[512];
    char                              pw[256];
    size_t                            i;
    const char                       *g, *id, *extra[16];
    rd_kafka_resp_err_t               kerr;
    rd_kafka_topic_partition_list_t  *sub;

    if (consumer.started) {
        enc_log_error("consumer: already started");
        return -1;
    }
    if (topics == NULL || topics[0] == NULL || handler == NULL) {
        enc_log_error("consumer: no topics or no handler");
        return -1;
    }

    /* integration-test hook, inert unless explicitly armed; a value that
       does not parse refuses to start rather than run unarmed */
    consumer.applied = 0;
    consumer.fault_after =
        enc_consumer_fault_parse(getenv(CONSUMER_FAULT_ENV));
    if (consumer.fault_after < 0) {
        enc_log_error("consumer: " CONSUMER_FAULT_ENV " must be a positive"
                      " integer");
        return -1;
    }
    if (consumer.fault_after > 0) {
        enc_log_warn("consumer: fault injection armed: exiting %d right"
                     " after the database commit of applied event #%ld,"
                     " before its offsets are stored", CONSUMER_FAULT_EXIT,
                     consumer.fault_after);
    }

    g = enc_config_str(c, "consumer.group");
    if (g == NULL || g[0] == '\0') {
        (void) snprintf(group, sizeof(group), "encore-%s", enc_pg_schema());
        g = group;
    }
    id = enc_config_str(c, "kafka.client_id");
    if (id == NULL || id[0] == '\0') {
        (void) snprintf(client_id, sizeof(client_id), "encore-%s",
                        enc_pg_schema());
        id = client_id;
    }

    consumer.conf = c;
    consumer.topics = topics;
    consumer.handler = handler;
    consumer.alone = alone;
    consumer.app = app;
    consumer.pg = NULL;
    consumer.last_errlog = 0;
    consumer.last_prune = 0;
    atomic_store(&consumer.stop, 0);

    if (enc_kafka_security(c, extra, 0, 16, pw, sizeof(pw), err,
                           sizeof(err)) < 0)
    {
        enc_log_error("consumer: %s", err);
        return -1;
    }
    consumer.rk = enc_consumer_kafka_new(enc_config_str(c, "kafka.brokers"),
                                         g, id, extra, err, sizeof(err));
    explicit_bzero(pw, sizeof(pw));
    if (consumer.rk == NULL) {
        enc_log_error("consumer: cannot create consumer: %s", err);
        return -1;
    }

    sub = rd_kafka_topic_partition_list_new(4);
    if (sub == NULL) {
        goto failed;
    }
    for (i = 0; topics[i] != NULL; i++) {
        (void) rd_kafka_topic_partition_list_add(sub, topics[i],
                                                 RD_KAFKA_PARTITION_UA);
    }
    kerr = rd_kafka_subscribe(consumer.rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        enc_log_error("consumer: subscribe: %s", rd_kafka_err2str(kerr));
        goto failed;
    }

    consumer.max = (size_t) enc_config_int(c, "consumer.batch");
    if (consumer.max < 1) {
        consumer.max = 1;
    }
    consumer.items = calloc(consumer.max, sizeof(item_t));
    consumer.firsts = calloc(consumer.max, sizeof(size_t));
    if (consumer.items == NULL || consumer.firsts == NULL) {
        enc_log_error("consumer: out of memory");
        goto failed;
    }

    rc = pthread_create(&consumer.thread, NULL, consumer_main, &consumer);
    if (rc != 0) {
        enc_log_error("consumer: pthread_create: %s", strerror(rc));
        goto failed;
    }

    consumer.started = 1;
    enc_log_info("consumer: group \"%s\", %zu topic(s) from \"%s\", up to"
                 " %zu events a transaction", g, i, topics[0], consumer.max);
    return 0;

failed:
    rd_kafka_destroy(consumer.rk);
    consumer.rk = NULL;
    free(consumer.items);
    free(consumer.firsts);
    consumer.items = NULL;
    consumer.firsts = NULL;
    return -1;
}


void
enc_consumer_stop(void)
{
    if (!consumer.started) {
        return;
    }
    atomic_store(&consumer.stop, 1);
    (void) pthread_join(consumer.thread, NULL);
    consumer.started = 0;
}


static void *
consumer_main(void *arg)
{
    int                  backoff = CONSUMER_BACKOFF_MIN_MS;
    size_t               n = 0, done;
    consumer_t          *c = arg;
    rd_kafka_resp_err_t  err;

    while (!atomic_load(&c->stop)) {
        consumer_prune(c);

        /* messages kept from a failed batch (their seek failed) are
           retried before anything new is taken */
        if (n == 0) {
            n = consumer_fill(c);
            if (n == 0) {
                continue;
            }
        }

        done = consumer_apply(c, n);
        consumer_release(c, 0, done);
        if (done == n) {
            n = 0;
            backoff = CONSUMER_BACKOFF_MIN_MS;
            continue;
        }
        if (atomic_load(&c->stop)) {
            /* neither applied nor stored: the partitions' next owner
               gets them from the last committed offset */
            break;
        }

        /* items[done] failed: it and everything after it are fetched
           again, or kept when their seek fails */
        n = consumer_hold_back(c, done, n);
        enc_metrics_counter_add("encore_consumer_retries_total",
                                "events rolled back to be retried", 1);
        consumer_sleep(c, backoff);
        backoff = backoff * 2 > CONSUMER_BACKOFF_MAX_MS
                  ? CONSUMER_BACKOFF_MAX_MS : backoff * 2;
    }
    consumer_release(c, 0, c->max);

    /* leaves the group now rather than after session.timeout.ms; the
       stored offsets are committed on the way out */
    err = rd_kafka_consumer_close(c->rk);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        enc_log_warn("consumer: close: %s", rd_kafka_err2str(err));
    }
    rd_kafka_destroy(c->rk);
    c->rk = NULL;
    consumer_drop_pg(c);
    free(c->items);
    free(c->firsts);
    c->items = NULL;
    c->firsts = NULL;
    return NULL;
}


/*
 * Takes the next batch into c->items: waits up to CONSUMER_POLL_MS for a
 * first message, then takes what librdkafka already holds without
 * waiting, up to c->max.  Returns the number taken.
 */
static size_t
consumer_fill(consumer_t *c)
{
    int                  timeout = CONSUMER_POLL_MS;
    size_t               n = 0;
    item_t              *it;
    rd_kafka_headers_t  *hdrs;
    rd_kafka_message_t  *m;

    while (n < c->max) {
        m = rd_kafka_consumer_poll(c->rk, timeout);
        if (m == NULL) {
            break;
        }
        timeout = 0;
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            consumer_message_error(c, m);
            continue;
        }

        it = &c->items[n++];
        memset(it, 0, sizeof(*it));
        it->m = m;
        /* ERR__NOENT leaves hdrs NULL: no headers at all, so no ce_id */
        hdrs = NULL;
        (void) rd_kafka_message_headers(m, &hdrs);
        it->ok = enc_event_parse(rd_kafka_topic_name(m->rkt), m->key,
                                 m->key_len, m->payload, m->len, hdrs,
                                 &it->em, it->err, sizeof(it->err)) == 0;
    }
    return n;
}


static void
consumer_message_error(consumer_t *c, rd_kafka_message_t *m)
{
    time_t  now;

    /* e.g. a subscribed topic that does not exist yet; librdkafka keeps
       trying, we only keep the log readable */
    now = time(NULL);
    if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF
        && now - c->last_errlog >= CONSUMER_ERRLOG_EVERY_S)
    {
        enc_log_warn("consumer: %s", rd_kafka_message_errstr(m));
        c->last_errlog = now;
    }
    rd_kafka_message_destroy(m);
}


/*
 * Applies items[0..n) in order: runs of events that may share a
 * transaction, and each event that must be alone in one of its own.
 * Returns how many leading items are done (applied, replayed or skipped as
 * malformed, and their offsets stored): fewer than n when items[return]
 * failed or the consumer is stopping.
 */
static size_t
consumer_apply(consumer_t *c, size_t n)
{
    size_t  s = 0, e, k;

    while (s < n) {
        e = s + 1;
        if (!consumer_alone(c, &c->items[s])) {
            while (e < n && !consumer_alone(c, &c->items[e])) {
                e++;
            }
        }

        k = consumer_apply_run(c, s, e);
        if (k > 0) {
            consumer_store(c, s, s + k);
        }
        s += k;
        if (s < e || atomic_load(&c->stop)) {
            break;
        }
    }
    return s;
}


/*
 * Applies items[s..e) in one transaction.  When item k fails, the
 * transaction is rolled back and items[s..k) are applied again without
 * it; when the inbox insert or the commit fails, items[s] is tried alone
 * (the next batch takes the others).  Returns how many leading items were committed: e - s
 * on success, 0 when items[s] itself failed.
 */
static size_t
consumer_apply_run(consumer_t *c, size_t s, size_t e)
{
    size_t  i;

    for ( ;; ) {
        i = s;
        while (i < e && !c->items[i].ok) {
            i++;
        }
        if (i == e) {
            /* only malformed events: nothing to write */
            consumer_committed(c, s, e);
            return e - s;
        }

        if (c->pg == NULL) {
            c->pg = enc_pg_connect_new();
            if (c->pg == NULL) {
                enc_log_warn("consumer: database unreachable");
                return 0;
            }
        }

        /* a broken connection is rebuilt by pg.c (with its own backoff)
           on the next use, so failures here simply retry the event */
        if (enc_pg_begin(c->pg) != 0) {
            return 0;
        }
        if (consumer_inbox(c, s, e) != 0) {
            /* pg.c keeps a connection lost mid-transaction failed until
               the rollback */
            enc_pg_rollback(c->pg);
            if (e - s == 1) {
                return 0;
            }
            e = s + 1;
            continue;
        }
        for (i = s; i < e; i++) {
            if (consumer_apply_one(c, &c->items[i]) != 0) {
                break;
            }
        }

        if (i == e) {
            if (enc_pg_commit(c->pg) == 0) {
                consumer_committed(c, s, e);
                return e - s;
            }
            enc_log_warn("consumer: commit failed for %s%s, retrying",
                         c->items[s].ok ? c->items[s].em.ev.id : "a malformed"
                         " event", e - s > 1 ? " and the events after it" : "");
            enc_pg_rollback(c->pg);
            if (e - s == 1) {
                return 0;
            }
            e = s + 1;
            continue;
        }

        /* pg.c keeps a connection lost mid-transaction failed until the
           rollback, so nothing continues on a fresh session */
        enc_pg_rollback(c->pg);
        if (i == s) {
            return 0;
        }
        e = i;
    }
}


/*
 * Inserts the inbox rows of items[s..e) and sets each one's fresh: 1 when
 * its row went in (the first of its id), 0 for a replay.  One statement
 * for the run; one event alone takes the one-row statement.  0, or -1 to
 * roll back.
 */
static int
consumer_inbox(consumer_t *c, size_t s, size_t e)
{
    int          rc = -1;
    char        *text;
    size_t       i, n = 0;
    long         pos;
    json_t      *rows, *row;
    PGresult    *res;
    const char  *params[2];
    item_t      *it;

    for (i = s; i < e; i++) {
        c->items[i].fresh = 0;
        n += c->items[i].ok;
    }

    if (n == 1) {
        i = s;
        while (!c->items[i].ok) {
            i++;
        }
        it = &c->items[i];
        params[0] = it->em.ev.id;
        params[1] = it->em.ev.topic;
        res = enc_pg_exec_sql(c->pg, CONSUMER_INBOX_SQL, 2, params);
        if (res == NULL) {
            return -1;
        }
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            enc_log_error("consumer: inbox: %s", PQresultErrorMessage(res));
            PQclear(res);
            return -1;
        }
        it->fresh = strcmp(PQcmdTuples(res), "1") == 0;
        PQclear(res);
        return 0;
    }

    /* [[id, topic], ...] in the run's order; c->firsts maps a position
       back to its item (consumer_hold_back uses it only later) */
    rows = json_array();
    if (rows == NULL) {
        return -1;
    }
    n = 0;
    for (i = s; i < e; i++) {
        if (!c->items[i].ok) {
            continue;
        }
        row = json_pack("[ss]", c->items[i].em.ev.id, c->items[i].em.ev.topic);
        if (row == NULL || json_array_append_new(rows, row) != 0) {
            /* e.g. an id that is not UTF-8: the event alone will tell */
            enc_log_warn("consumer: event %s [%d] @%lld: its id cannot be"
                         " batched", rd_kafka_topic_name(c->items[i].m->rkt),
                         (int) c->items[i].m->partition,
                         (long long) c->items[i].m->offset);
            json_decref(rows);
            return -1;
        }
        c->firsts[n++] = i;
    }
    text = enc_json_dumps(rows, NULL);
    json_decref(rows);
    if (text == NULL) {
        return -1;
    }

    params[0] = text;
    res = enc_pg_exec_sql(c->pg, CONSUMER_INBOX_RUN_SQL, 1, params);
    free(text);
    if (res == NULL) {
        return -1;
    }
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        enc_log_error("consumer: inbox: %s", PQresultErrorMessage(res));
        goto done;
    }
    for (i = 0; i < (size_t) PQntuples(res); i++) {
        pos = atol(PQgetvalue(res, (int) i, 0));
        if (pos < 1 || (size_t) pos > n) {
            enc_log_error("consumer: inbox: position %ld of %zu", pos, n);
            goto done;
        }
        c->items[c->firsts[pos - 1]].fresh = 1;
    }
    rc = 0;

done:
    PQclear(res);
    return rc;
}


/* One event inside the open transaction, its inbox row in: 0, or -1 to
   roll back. */
static int
consumer_apply_one(consumer_t *c, item_t *it)
{
    int                  rc;
    char                 buf[128];
    size_t               rlen;
    const char          *rid;
    rd_kafka_headers_t  *hdrs = NULL;

    if (!it->ok || !it->fresh) {
        return 0;
    }

    /* the producing request's id, so the handler's logs line up */
    (void) rd_kafka_message_headers(it->m, &hdrs);
    rid = NULL;
    if (hdrs != NULL
        && rd_kafka_header_get_last(hdrs, "ce_encorerequestid",
                                    (const void **) &rid, &rlen)
           == RD_KAFKA_RESP_ERR_NO_ERROR
        && rid != NULL && rlen < sizeof(buf))
    {
        memcpy(buf, rid, rlen);
        buf[rlen] = '\0';
        enc_log_set_request_id(buf);
    }

    rc = c->handler(c->pg, &it->em.ev, c->app);
    enc_log_set_request_id(NULL);

    if (rc != 0) {
        enc_log_warn("consumer: handler failed for %s (%s), retrying",
                     it->em.ev.id, it->em.ev.type);
        return -1;
    }
    return 0;
}


/* items[s..e) are committed: counts them, and fires the fault hook */
static void
consumer_committed(consumer_t *c, size_t s, size_t e)
{
    size_t   i, applied = 0, dups = 0, parsed = 0;
    item_t  *it, *fault = NULL;

    for (i = s; i < e; i++) {
        it = &c->items[i];
        if (!it->ok) {
            enc_log_warn("consumer: skipping malformed event %s [%d] @%lld:"
                         " %s", rd_kafka_topic_name(it->m->rkt),
                         (int) it->m->partition, (long long) it->m->offset,
                         it->err);
            enc_metrics_counter_add("encore_consumer_malformed_total",
                                    "malformed events skipped", 1);
            continue;
        }
        parsed++;
        if (!it->fresh) {
            enc_log_debug("consumer: %s already applied, skipped",
                          it->em.ev.id);
            dups++;
            continue;
        }
        applied++;
        if (c->fault_after > 0 && ++c->applied == c->fault_after) {
            fault = it;
        }
    }

    if (parsed > 0) {
        enc_metrics_histogram_observe("encore_consumer_batch_size",
            "events applied or skipped as replays in one transaction",
            batch_bounds, sizeof(batch_bounds) / sizeof(batch_bounds[0]),
            (double) parsed);
    }
    if (applied > 0) {
        enc_metrics_counter_add("encore_consumer_applied_total",
                                "events applied", (double) applied);
    }
    if (dups > 0) {
        enc_metrics_counter_add("encore_consumer_duplicates_total",
                                "redelivered events skipped by the inbox",
                                (double) dups);
    }

    if (fault != NULL) {
        /* the window a crash leaves: the effects are committed, the
           offsets are not, so the events are delivered again and the
           inbox must make that delivery a no-op */
        enc_log_warn("consumer: fault injection: exiting after the database"
                     " commit of %s (%s, %s [%d] @%lld) and %zu other"
                     " event(s), before their offsets are stored",
                     fault->em.ev.id, fault->em.ev.type,
                     rd_kafka_topic_name(fault->m->rkt),
                     (int) fault->m->partition, (long long) fault->m->offset,
                     e - s - 1);
        _exit(CONSUMER_FAULT_EXIT);
    }
}


/*
 * Stores the offsets after items[s..e) (each partition's last + 1) for
 * librdkafka to commit.  A partition no longer assigned refuses: its next
 * owner gets those events again, and the inbox skips them.
 */
static void
consumer_store(consumer_t *c, size_t s, size_t e)
{
    int                               j;
    size_t                            i;
    const char                       *topic;
    rd_kafka_resp_err_t               err, perr;
    rd_kafka_topic_partition_t       *tp;
    rd_kafka_topic_partition_list_t  *offs;

    offs = rd_kafka_topic_partition_list_new(4);
    if (offs == NULL) {
        return;
    }
    for (i = s; i < e; i++) {
        topic = rd_kafka_topic_name(c->items[i].m->rkt);
        tp = rd_kafka_topic_partition_list_find(offs, topic,
                                                c->items[i].m->partition);
        if (tp == NULL) {
            tp = rd_kafka_topic_partition_list_add(offs, topic,
                                                   c->items[i].m->partition);
        }
        tp->offset = c->items[i].m->offset + 1;
    }

    err = rd_kafka_offsets_store(c->rk, offs);
    for (j = 0; j < offs->cnt; j++) {
        perr = offs->elems[j].err != RD_KAFKA_RESP_ERR_NO_ERROR
               ? offs->elems[j].err : err;
        if (perr != RD_KAFKA_RESP_ERR_NO_ERROR) {
            enc_log_info("consumer: offset %s [%d] @%lld not stored: %s",
                         offs->elems[j].topic, (int) offs->elems[j].partition,
                         (long long) offs->elems[j].offset,
                         rd_kafka_err2str(perr));
        }
    }
    rd_kafka_topic_partition_list_destroy(offs);
}


/*
 * Forgets applied event ids older than consumer.inbox_retain_hours, at most
 * once per CONSUMER_PRUNE_EVERY_S, so the inbox does not grow forever.  An
 * id only has to outlive every redelivery of its event, i.e. the topics'
 * retention.  Several consumers of a group may prune at once; they only
 * race to delete the same rows.  Failures are logged and retried later.
 */
static void
consumer_prune(consumer_t *c)
{
    long         hours;
    char         retain[24];
    time_t       now;
    PGresult    *res;
    const char  *params[1];

    hours = enc_config_int(c->conf, "consumer.inbox_retain_hours");
    now = time(NULL);
    if (hours == 0 || now - c->last_prune < CONSUMER_PRUNE_EVERY_S) {
        return;
    }
    c->last_prune = now;

    if (c->pg == NULL) {
        c->pg = enc_pg_connect_new();
        if (c->pg == NULL) {
            return;
        }
    }

    (void) snprintf(retain, sizeof(retain), "%ld", hours);
    params[0] = retain;
    res = enc_pg_exec_sql(c->pg, CONSUMER_PRUNE_SQL, 1, params);
    if (res == NULL) {
        return;
    }
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        enc_log_warn("consumer: pruning the inbox: %s",
                     PQresultErrorMessage(res));
    } else if (atol(PQcmdTuples(res)) > 0) {
        enc_log_info("consumer: forgot %s event ids older than %ld h",
                     PQcmdTuples(res), hours);
    }
    PQclear(res);
}


/*
 * items[s] failed: seeks each partition that has messages in items[s..n)
 * back to its first one, so the next polls return them again (a seek also
 * drops what was fetched past it).  Where the seek fails while the
 * partition is still ours, the next poll would return the messages after
 * them, and storing those would skip them: they are kept, moved to the
 * front of items, and retried in place before anything is polled (the
 * seek is tried again after each failed attempt).  A revoked partition
 * needs nothing: its next owner starts from the last committed offset.
 * Returns how many items are kept.
 */
static size_t
consumer_hold_back(consumer_t *c, size_t s, size_t n)
{
    size_t       i, j, nfirst = 0, kept = 0;
    item_t      *it, *first;
    const char  *topic;

    /* the first message of each partition decides for the partition */
    for (i = s; i < n; i++) {
        it = &c->items[i];
        for (j = 0; j < nfirst; j++) {
            first = &c->items[c->firsts[j]];
            if (first->m->rkt == it->m->rkt
                && first->m->partition == it->m->partition)
            {
                break;
            }
        }
        if (j < nfirst) {
            it->keep = c->items[c->firsts[j]].keep;
            continue;
        }
        c->firsts[nfirst++] = i;
        topic = rd_kafka_topic_name(it->m->rkt);
        it->keep = consumer_seek(c, topic, it->m->partition, it->m->offset)
                       != 0
                   && consumer_assigned(c, topic, it->m->partition);
        if (it->keep) {
            enc_log_warn("consumer: seek failed, retrying %s [%d] @%lld in"
                         " place", topic, (int) it->m->partition,
                         (long long) it->m->offset);
        }
    }

    for (i = s; i < n; i++) {
        if (c->items[i].keep) {
            if (kept != i) {
                c->items[kept] = c->items[i];
                memset(&c->items[i], 0, sizeof(item_t));
            }
            kept++;
        } else {
            consumer_release(c, i, i + 1);
        }
    }
    return kept;
}


/* Frees items[s..e): their messages and parsed events. */
static void
consumer_release(consumer_t *c, size_t s, size_t e)
{
    size_t   i;
    item_t  *it;

    for (i = s; i < e; i++) {
        it = &c->items[i];
        if (it->ok) {
            enc_event_msg_free(&it->em);
        }
        if (it->m != NULL) {
            rd_kafka_message_destroy(it->m);
        }
        memset(it, 0, sizeof(*it));
    }
}


static int
consumer_alone(consumer_t *c, const item_t *it)
{
    return c->alone != NULL && it->ok && c->alone(&it->em.ev, c->app) != 0;
}


static void
consumer_drop_pg(consumer_t *c)
{
    if (c->pg != NULL) {
        enc_pg_close(c->pg);
        c->pg = NULL;
    }
}


static int
consumer_seek(consumer_t *c, const char *topic, int32_t partition,
    int64_t offset)
{
    int                                 rc = 0;
    rd_kafka_error_t                   *e;
    rd_kafka_topic_partition_t         *tp;
    rd_kafka_topic_partition_list_t    *parts;

    if (atomic_load(&seek_fail_next) > 0) {
        atomic_fetch_sub(&seek_fail_next, 1);
        enc_log_warn("consumer: seek: failure injected (test)");
        return -1;
    }

    parts = rd_kafka_topic_partition_list_new(1);
    if (parts == NULL) {
        return -1;
    }
    tp = rd_kafka_topic_partition_list_add(parts, topic, partition);
    tp->offset = offset;

    /* also discards messages of this partition already fetched past it */
    e = rd_kafka_seek_partitions(c->rk, parts, 5000);
    if (e != NULL) {
        enc_log_error("consumer: seek: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        rc = -1;
    } else if (parts->elems[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* typically the partition was revoked meanwhile: its next owner
           starts from the last committed offset, so nothing is lost */
        enc_log_warn("consumer: seek %s [%d]: %s", tp->topic,
                     (int) tp->partition,
                     rd_kafka_err2str(parts->elems[0].err));
        rc = -1;
    }

    rd_kafka_topic_partition_list_destroy(parts);
    return rc;
}


/* 1 if the partition is (as far as we can tell) still assigned to us */
static int
consumer_assigned(consumer_t *c, const char *topic, int32_t partition)
{
    int                               i, found = 0;
    rd_kafka_resp_err_t               err;
    rd_kafka_topic_partition_list_t  *parts = NULL;

    err = rd_kafka_assignment(c->rk, &parts);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR || parts == NULL) {
        /* unknown: retrying in place is safe (the inbox dedups) */
        enc_log_warn("consumer: assignment: %s", rd_kafka_err2str(err));
        return 1;
    }
    for (i = 0; i < parts->cnt; i++) {
        if (parts->elems[i].partition == partition
            && strcmp(parts->elems[i].topic, topic) == 0)
        {
            found = 1;
            break;
        }
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return found;
}


/*
 * librdkafka's statistics (every CONSUMER_STATS_MS, served by the
 * consumer's polls) to encore_consumer_lag{topic,partition} for every
 * partition assigned to us, the events between its high watermark and
 * the offset stored after our last commit (or, before we stored one, the
 * group's committed offset).  Series of partitions no longer ours go.
 */
void
enc_consumer_lag_from_stats(const char *json, size_t len)
{
    char         part[24];
    json_t      *root, *topics, *t, *parts, *p, *v;
    long long    partition;
    json_int_t   lag;
    const char  *tname, *pname;

    root = json_loadb(json, len, 0, NULL);
    if (root == NULL) {
        return;
    }
    enc_metrics_gauge_clear("encore_consumer_lag");
    topics = json_object_get(root, "topics");
    json_object_foreach(topics, tname, t) {
        parts = json_object_get(t, "partitions");
        json_object_foreach(parts, pname, p) {
            v = json_object_get(p, "partition");
            partition = json_is_integer(v) ? json_integer_value(v) : -1;
            if (partition < 0
                || !json_is_true(json_object_get(p, "desired")))
            {
                continue;
            }
            v = json_object_get(p, "consumer_lag_stored");
            lag = json_is_integer(v) ? json_integer_value(v) : -1;
            if (lag < 0) {
                v = json_object_get(p, "consumer_lag");
                lag = json_is_integer(v) ? json_integer_value(v) : -1;
            }
            if (lag < 0) {
                continue;
            }
            (void) snprintf(part, sizeof(part), "%lld", partition);
            enc_metrics_gauge_set_labels("encore_consumer_lag",
                "events in the partition not yet applied",
                (const char *const[]) { "topic", tname, "partition", part,
                                        NULL },
                (double) lag);
        }
    }
    json_decref(root);
}


static int
consumer_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    (void) rk;
    (void) opaque;
    enc_consumer_lag_from_stats(json, len);
    return 0;       /* librdkafka frees json */
}


void
enc_consumer_test_fail_seeks(int n)
{
    atomic_store(&seek_fail_next, n);
}


/* Sleeps ms in short steps so enc_consumer_stop is not held up. */
static void
consumer_sleep(consumer_t *c, int ms)
{
    struct timespec  ts = { 0, 50 * 1000000L };

    while (ms > 0 && !atomic_load(&c->stop)) {
        (void) nanosleep(&ts, NULL);
        ms -= 50;
    }
}
