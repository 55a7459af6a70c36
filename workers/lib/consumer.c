/*
 * consumer: Kafka in, applied exactly once through the inbox.  See
 * consumer.h.
 *
 * Per message:
 *
 *   parse ──malformed──▶ log, commit offset (skip)
 *     │
 *   BEGIN; INSERT INTO inbox ... ON CONFLICT DO NOTHING
 *     │ inserted                      │ already there (replay)
 *   handler()                         │
 *     │ 0                 -1 / DB error ──▶ ROLLBACK, seek back, backoff
 *     │                     (seek failed, still assigned: retry in place)
 *   COMMIT ──▶ commit the Kafka offset (synchronous)
 *
 * The offset is committed after the database: a crash in between
 * redelivers the event, and the inbox row makes the redelivery a no-op.
 * Committing first would lose the event instead.
 */

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "consumer.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"


#define CONSUMER_INBOX_SQL                                                  \
    "INSERT INTO inbox (event_id, topic) VALUES ($1, $2)"                   \
    " ON CONFLICT (event_id) DO NOTHING"

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

#define HDR_MAX                  1024    /* longest header value accepted */

/* exit status of the fault hook (EX_TEMPFAIL, as the relay's): easy to
   tell from a crash */
#define CONSUMER_FAULT_EXIT      75
#define CONSUMER_FAULT_ENV       "ENCORE_FAULT_CONSUMER_EXIT_AFTER_COMMIT"


typedef struct {
    const enc_config_t    *conf;
    const char *const     *topics;
    enc_event_handler_pt   handler;
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
} consumer_t;

static consumer_t  consumer;
static atomic_int  seek_fail_next;      /* tests: fail this many seeks */


static void *consumer_main(void *arg);
static int consumer_apply(consumer_t *c, const rd_kafka_message_t *m);
static void consumer_drop_pg(consumer_t *c);
static int consumer_seek_back(consumer_t *c, const rd_kafka_message_t *m);
static int consumer_assigned(consumer_t *c, const rd_kafka_message_t *m);
static void consumer_sleep(consumer_t *c, int ms);
static void consumer_prune(consumer_t *c);


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
        /* offsets are committed by hand, after the database commit */
        "enable.auto.commit", "false",
        "enable.auto.offset.store", "false",
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
                     " before its offset commit", CONSUMER_FAULT_EXIT,
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

    rc = pthread_create(&consumer.thread, NULL, consumer_main, &consumer);
    if (rc != 0) {
        enc_log_error("consumer: pthread_create: %s", strerror(rc));
        goto failed;
    }

    consumer.started = 1;
    enc_log_info("consumer: group \"%s\", %zu topic(s) from \"%s\"", g, i,
                 topics[0]);
    return 0;

failed:
    rd_kafka_destroy(consumer.rk);
    consumer.rk = NULL;
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
    time_t               now;
    consumer_t          *c = arg;
    rd_kafka_resp_err_t  err;
    rd_kafka_message_t  *m, *held = NULL;

    while (!atomic_load(&c->stop)) {
        consumer_prune(c);

        if (held != NULL) {
            m = held;
            held = NULL;
        } else {
            m = rd_kafka_consumer_poll(c->rk, CONSUMER_POLL_MS);
            if (m == NULL) {
                continue;
            }
        }

        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            /* e.g. a subscribed topic that does not exist yet; librdkafka
               keeps trying, we only keep the log readable */
            now = time(NULL);
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF
                && now - c->last_errlog >= CONSUMER_ERRLOG_EVERY_S)
            {
                enc_log_warn("consumer: %s", rd_kafka_message_errstr(m));
                c->last_errlog = now;
            }
            rd_kafka_message_destroy(m);
            continue;
        }

        if (consumer_apply(c, m) == 0) {
            backoff = CONSUMER_BACKOFF_MIN_MS;
            /* synchronous, so a crash after this line never redelivers;
               a failure here only means a harmless redelivery */
            err = rd_kafka_commit_message(c->rk, m, 0);
            if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                enc_log_warn("consumer: offset commit %s [%d] @%lld: %s",
                             rd_kafka_topic_name(m->rkt), (int) m->partition,
                             (long long) m->offset, rd_kafka_err2str(err));
            }
        } else {
            /*
             * The next poll must return this message again.  If the seek
             * failed while the partition is still ours, the next poll
             * would return the message after it, and committing that one
             * would skip this event: keep it and retry it here instead
             * (the seek is tried again after each failed attempt).  A
             * revoked partition needs nothing: its next owner starts from
             * the last committed offset.
             */
            if (consumer_seek_back(c, m) != 0 && consumer_assigned(c, m)) {
                enc_log_warn("consumer: seek failed, retrying %s [%d] @%lld"
                             " in place", rd_kafka_topic_name(m->rkt),
                             (int) m->partition, (long long) m->offset);
                held = m;
                m = NULL;
            }
            enc_metrics_counter_add("encore_consumer_retries_total",
                                    "events rolled back to be retried", 1);
            consumer_sleep(c, backoff);
            backoff = backoff * 2 > CONSUMER_BACKOFF_MAX_MS
                      ? CONSUMER_BACKOFF_MAX_MS : backoff * 2;
        }

        if (m != NULL) {
            rd_kafka_message_destroy(m);
        }
    }
    if (held != NULL) {
        rd_kafka_message_destroy(held);
    }

    /* leaves the group now rather than after session.timeout.ms */
    err = rd_kafka_consumer_close(c->rk);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        enc_log_warn("consumer: close: %s", rd_kafka_err2str(err));
    }
    rd_kafka_destroy(c->rk);
    c->rk = NULL;
    consumer_drop_pg(c);
    return NULL;
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
 * Applies one message.  0: applied, replayed or skipped as malformed (the
 * offset may be committed); -1: rolled back, to be retried.
 */
static int
consumer_apply(consumer_t *c, const rd_kafka_message_t *m)
{
    int                  rc = -1, fresh;
    char                 err[256];
    size_t               rlen;
    PGresult            *res;
    const char          *params[2], *rid;
    enc_event_msg_t      em;
    rd_kafka_headers_t  *hdrs = NULL;

    /* ERR__NOENT leaves hdrs NULL: no headers at all, so no ce_id */
    (void) rd_kafka_message_headers(m, &hdrs);

    if (enc_event_parse(rd_kafka_topic_name(m->rkt), m->key, m->key_len,
                        m->payload, m->len, hdrs, &em, err, sizeof(err))
        != 0)
    {
        enc_log_warn("consumer: skipping malformed event %s [%d] @%lld: %s",
                     rd_kafka_topic_name(m->rkt), (int) m->partition,
                     (long long) m->offset, err);
        enc_metrics_counter_add("encore_consumer_malformed_total",
                                "malformed events skipped", 1);
        return 0;
    }

    if (c->pg == NULL) {
        c->pg = enc_pg_connect_new();
        if (c->pg == NULL) {
            enc_log_warn("consumer: database unreachable");
            goto done;
        }
    }

    /* a broken connection is rebuilt by pg.c (with its own backoff) on
       the next use, so failures here simply retry the event */
    if (enc_pg_begin(c->pg) != 0) {
        goto done;
    }

    params[0] = em.ev.id;
    params[1] = em.ev.topic;
    res = enc_pg_exec_sql(c->pg, CONSUMER_INBOX_SQL, 2, params);
    if (res == NULL) {
        /* pg.c keeps a connection lost mid-transaction failed until the
           rollback, so nothing continues on a fresh session */
        enc_pg_rollback(c->pg);
        goto done;
    }
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        enc_log_error("consumer: inbox: %s", PQresultErrorMessage(res));
        PQclear(res);
        enc_pg_rollback(c->pg);
        goto done;
    }
    fresh = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);

    if (fresh) {
        /* the producing request's id, so the handler's logs line up */
        rid = NULL;
        if (hdrs != NULL
            && rd_kafka_header_get_last(hdrs, "ce_encorerequestid",
                                        (const void **) &rid, &rlen)
               == RD_KAFKA_RESP_ERR_NO_ERROR
            && rid != NULL && rlen < 128)
        {
            char  buf[128];

            memcpy(buf, rid, rlen);
            buf[rlen] = '\0';
            enc_log_set_request_id(buf);
        }

        rc = c->handler(c->pg, &em.ev, c->app);
        enc_log_set_request_id(NULL);

        if (rc != 0) {
            rc = -1;
            enc_log_warn("consumer: handler failed for %s (%s), retrying",
                         em.ev.id, em.ev.type);
            enc_pg_rollback(c->pg);
            goto done;
        }
    } else {
        enc_log_debug("consumer: %s already applied, skipped", em.ev.id);
        enc_metrics_counter_add("encore_consumer_duplicates_total",
                                "redelivered events skipped by the inbox",
                                1);
    }

    rc = -1;
    if (enc_pg_commit(c->pg) != 0) {
        enc_log_warn("consumer: commit failed for %s, retrying", em.ev.id);
        enc_pg_rollback(c->pg);
        goto done;
    }

    if (fresh) {
        enc_metrics_counter_add("encore_consumer_applied_total",
                                "events applied", 1);

        if (c->fault_after > 0 && ++c->applied == c->fault_after) {
            /* the window a crash leaves: the effect is committed, the
               offset is not, so the event is delivered again and the
               inbox must make that delivery a no-op */
            enc_log_warn("consumer: fault injection: exiting after the"
                         " database commit of %s (%s, %s [%d] @%lld),"
                         " before its offset commit", em.ev.id, em.ev.type,
                         rd_kafka_topic_name(m->rkt), (int) m->partition,
                         (long long) m->offset);
            _exit(CONSUMER_FAULT_EXIT);
        }
    }
    rc = 0;

done:
    enc_event_msg_free(&em);
    return rc;
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
consumer_seek_back(consumer_t *c, const rd_kafka_message_t *m)
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
    tp = rd_kafka_topic_partition_list_add(parts, rd_kafka_topic_name(m->rkt),
                                           m->partition);
    tp->offset = m->offset;

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


/* 1 if m's partition is (as far as we can tell) still assigned to us */
static int
consumer_assigned(consumer_t *c, const rd_kafka_message_t *m)
{
    int                               i, found = 0;
    const char                       *topic = rd_kafka_topic_name(m->rkt);
    rd_kafka_resp_err_t               err;
    rd_kafka_topic_partition_list_t  *parts = NULL;

    err = rd_kafka_assignment(c->rk, &parts);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR || parts == NULL) {
        /* unknown: retrying in place is safe (the inbox dedups) */
        enc_log_warn("consumer: assignment: %s", rd_kafka_err2str(err));
        return 1;
    }
    for (i = 0; i < parts->cnt; i++) {
        if (parts->elems[i].partition == m->partition
            && strcmp(parts->elems[i].topic, topic) == 0)
        {
            found = 1;
            break;
        }
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return found;
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
