/*
 * consumer: CloudEvents parsing (table-driven), a round trip through the
 * outbox producer and the consumer's Kafka configuration on librdkafka's
 * mock cluster, and — when ENCORE_TEST_PGHOST is set (see db_fixture.h) —
 * the consumer thread with the inbox: duplicates skipped, a failing handler
 * retried, malformed events skipped, offsets committed; batches (a
 * transaction holds several events, never more than consumer.batch, an
 * alone event none but itself; a failure in the middle loses nothing,
 * applies nothing twice and keeps each partition's order); the lag gauge
 * from librdkafka's statistics; and its fault hook
 * (ENCORE_FAULT_CONSUMER_EXIT_AFTER_COMMIT) in a child process killed
 * between a database commit and its offsets' store.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "config.h"
#include "consumer.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "pg.h"
#include "db_fixture.h"


static char *metrics_text(void);
static double metric_value(const char *text, const char *prefix);


/* ---- parsing -------------------------------------------------------------- */

typedef struct {
    const char  *name;
    const char  *hdrs[20];     /* name, value pairs; value "" = empty */
    const char  *value;        /* NULL = no payload */
    const char  *err;          /* NULL = must parse; else substring */
} parse_case_t;

#define CE_OK  "ce_specversion", "1.0", "ce_id", "e-1",                     \
               "ce_source", "/encore/catalog", "ce_type",                   \
               "encore.artist.created"

static const parse_case_t  parse_cases[] = {
    { "minimal", { CE_OK, NULL }, "{\"id\":\"1\"}", NULL },
    { "full", { CE_OK, "ce_time", "2026-11-26T03:16:08Z", "ce_subject",
                "artists/1", "content-type", "application/json", NULL },
      "{\"id\":\"1\"}", NULL },
    { "content-type with charset", { CE_OK, "content-type",
      "application/json; charset=utf-8", NULL }, "[1,2]", NULL },
    { "scalar data", { CE_OK, NULL }, "42", NULL },
    { "no ce_id", { "ce_specversion", "1.0", "ce_source", "/x", "ce_type",
      "t", NULL }, "{}", "ce_id header missing" },
    { "empty ce_id", { "ce_specversion", "1.0", "ce_id", "", "ce_source",
      "/x", "ce_type", "t", NULL }, "{}", "ce_id header invalid" },
    { "no specversion", { "ce_id", "e", "ce_source", "/x", "ce_type", "t",
      NULL }, "{}", "ce_specversion header missing" },
    { "specversion 0.3", { "ce_specversion", "0.3", "ce_id", "e",
      "ce_source", "/x", "ce_type", "t", NULL }, "{}", "unsupported" },
    { "no type", { "ce_specversion", "1.0", "ce_id", "e", "ce_source", "/x",
      NULL }, "{}", "ce_type header missing" },
    { "no source", { "ce_specversion", "1.0", "ce_id", "e", "ce_type", "t",
      NULL }, "{}", "ce_source header missing" },
    { "no headers", { NULL }, "{}", "missing" },
    { "bad json", { CE_OK, NULL }, "{\"id\":", "not JSON" },
    { "duplicate keys", { CE_OK, NULL }, "{\"a\":1,\"a\":2}", "not JSON" },
    { "empty value", { CE_OK, NULL }, "", "empty value" },
    { "null value", { CE_OK, NULL }, NULL, "empty value" },
    { "xml", { CE_OK, "content-type", "application/xml", NULL }, "{}",
      "content-type" },
    { "json-seq", { CE_OK, "content-type", "application/json-seq", NULL },
      "{}", "content-type" },
};


static rd_kafka_headers_t *
make_headers(const char *const *kv)
{
    size_t               i;
    rd_kafka_headers_t  *h;

    if (kv[0] == NULL) {
        return NULL;
    }
    h = rd_kafka_headers_new(8);
    assert_non_null(h);
    for (i = 0; kv[i] != NULL; i += 2) {
        assert_int_equal(rd_kafka_header_add(h, kv[i], -1, kv[i + 1],
                                             (ssize_t) strlen(kv[i + 1])),
                         0);
    }
    return h;
}


static void
test_parse_table(void **state)
{
    int                  rc;
    char                 err[256];
    size_t               i;
    enc_event_msg_t      em;
    rd_kafka_headers_t  *h;
    const parse_case_t  *c;

    for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        c = &parse_cases[i];
        h = make_headers(c->hdrs);
        err[0] = '\0';
        rc = enc_event_parse("encore.catalog.artists", "1", 1, c->value,
                             c->value ? strlen(c->value) : 0, h, &em, err,
                             sizeof(err));
        if (c->err == NULL) {
            if (rc != 0) {
                fail_msg("case \"%s\": %s", c->name, err);
            }
            assert_string_equal(em.ev.id, "e-1");
            assert_non_null(em.ev.data);
            enc_event_msg_free(&em);
        } else {
            if (rc != -1) {
                fail_msg("case \"%s\" parsed", c->name);
            }
            if (strstr(err, c->err) == NULL) {
                fail_msg("case \"%s\": \"%s\" lacks \"%s\"", c->name, err,
                         c->err);
            }
            assert_null(em.mem);
            assert_null(em.data);
        }
        if (h != NULL) {
            rd_kafka_headers_destroy(h);
        }
    }
}


static void
test_parse_fields(void **state)
{
    char                 err[256];
    enc_event_msg_t      em;
    rd_kafka_headers_t  *h;
    static const char   *kv[] = {
        CE_OK, "ce_time", "2026-11-26T03:16:08Z", "ce_subject", "artists/7",
        "ce_id", "e-2", /* repeated: the last one wins */
        NULL
    };

    h = make_headers(kv);
    assert_int_equal(enc_event_parse("encore.catalog.artists", "7", 1,
                                     "{\"id\":\"7\",\"name\":\"N\"}", 21, h,
                                     &em, err, sizeof(err)), 0);
    rd_kafka_headers_destroy(h);

    /* everything is a copy: the message and headers may go */
    assert_string_equal(em.ev.id, "e-2");
    assert_string_equal(em.ev.type, "encore.artist.created");
    assert_string_equal(em.ev.source, "/encore/catalog");
    assert_string_equal(em.ev.time, "2026-11-26T03:16:08Z");
    assert_string_equal(em.ev.subject, "artists/7");
    assert_string_equal(em.ev.key, "7");
    assert_string_equal(em.ev.topic, "encore.catalog.artists");
    assert_string_equal(json_string_value(json_object_get(em.ev.data,
                                                          "name")), "N");
    enc_event_msg_free(&em);

    /* optional attributes and the key may be absent */
    h = make_headers((const char *const[]) { CE_OK, NULL });
    assert_int_equal(enc_event_parse("t", NULL, 0, "null", 4, h, &em, err,
                                     sizeof(err)), 0);
    assert_null(em.ev.key);
    assert_null(em.ev.subject);
    assert_null(em.ev.time);
    assert_true(json_is_null(em.ev.data));
    enc_event_msg_free(&em);
    rd_kafka_headers_destroy(h);
}


/* A header with a NUL inside would be cut short by every C string user;
   such events are malformed, as are NUL bytes in the key. */
static void
test_parse_nul(void **state)
{
    char                 err[256];
    enc_event_msg_t      em;
    rd_kafka_headers_t  *h;

    h = rd_kafka_headers_new(4);
    assert_int_equal(rd_kafka_header_add(h, "ce_specversion", -1, "1.0", 3),
                     0);
    assert_int_equal(rd_kafka_header_add(h, "ce_id", -1, "a\0b", 3), 0);
    assert_int_equal(rd_kafka_header_add(h, "ce_source", -1, "/x", 2), 0);
    assert_int_equal(rd_kafka_header_add(h, "ce_type", -1, "t", 1), 0);
    assert_int_equal(enc_event_parse("t", NULL, 0, "{}", 2, h, &em, err,
                                     sizeof(err)), -1);
    rd_kafka_headers_destroy(h);

    h = make_headers((const char *const[]) { CE_OK, NULL });
    assert_int_equal(enc_event_parse("t", "a\0b", 3, "{}", 2, h, &em, err,
                                     sizeof(err)), -1);
    rd_kafka_headers_destroy(h);
}


/* ---- round trip on the mock cluster --------------------------------------- */

/* Single-partition topics, so reading partition 0 sees every message in
   order (the mock cluster auto-creates topics with 4 partitions). */
static void
mock_topics(rd_kafka_t *rk)
{
    size_t                    i;
    rd_kafka_mock_cluster_t  *mc = rd_kafka_handle_mock_cluster(rk);
    static const char        *topics[] = {
        "encore.t.things", "encore.t.relay", "encore.t.round",
        "encore.t.inbox", "encore.t.fault", "encore.t.batch",
        "encore.t.alone"
    };

    assert_non_null(mc);
    for (i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
        assert_int_equal(rd_kafka_mock_topic_create(mc, topics[i], 1, 1), 0);
    }
    /* and one with several partitions, for batches that span them */
    assert_int_equal(rd_kafka_mock_topic_create(mc, "encore.t.parts", 4, 1),
                     0);
}


static rd_kafka_t *
mock_producer(void)
{
    char         err[512];
    rd_kafka_t  *rk;
    const char  *extra[] = { "test.mock.num.brokers", "1", NULL };

    rk = enc_outbox_producer_new(NULL, "test-consumer", extra, err,
                                 sizeof(err));
    if (rk == NULL) {
        fail_msg("producer: %s", err);
    }
    mock_topics(rk);
    return rk;
}


static const char *
bootstraps(rd_kafka_t *rk)
{
    return rd_kafka_mock_cluster_bootstraps(rd_kafka_handle_mock_cluster(rk));
}


/* What the relay produces, the consumer parses back unchanged, through a
   real consumer group with manual commits. */
static void
test_round_trip(void **state)
{
    int                   tries;
    char                  err[512];
    rd_kafka_t           *prk, *c;
    enc_event_msg_t       em;
    enc_outbox_row_t      row;
    rd_kafka_message_t   *m = NULL;
    rd_kafka_headers_t   *h;
    enc_outbox_state_t    st;
    rd_kafka_topic_partition_list_t  *sub, *committed;

    prk = mock_producer();

    memset(&row, 0, sizeof(row));
    row.id = 1;
    row.event_id = "0e3c5b7a-2d1f-4d51-9d6e-3a7b0b6c9f10";
    row.topic = "encore.t.round";
    row.key = "a-1";
    row.type = "encore.thing.updated";
    row.source = "/encore/t";
    row.subject = "things/a-1";
    row.time = "2026-11-26T03:16:08.000001Z";
    row.data = "{\"id\":\"a-1\",\"name\":\"caf\xc3\xa9\"}";
    row.request_id = "r-9";
    assert_int_equal(enc_outbox_publish(prk, &row, 1, &st), 1);

    c = enc_consumer_kafka_new(bootstraps(prk), "test-round", "test", NULL,
                               err, sizeof(err));
    if (c == NULL) {
        fail_msg("consumer: %s", err);
    }
    sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, row.topic, RD_KAFKA_PARTITION_UA);
    assert_int_equal(rd_kafka_subscribe(c, sub), 0);
    rd_kafka_topic_partition_list_destroy(sub);

    for (tries = 0; tries < 200; tries++) {
        m = rd_kafka_consumer_poll(c, 100);
        if (m != NULL && m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            break;
        }
        if (m != NULL) {
            rd_kafka_message_destroy(m);
            m = NULL;
        }
    }
    assert_non_null(m);

    h = NULL;
    assert_int_equal(rd_kafka_message_headers(m, &h), 0);
    assert_int_equal(enc_event_parse(rd_kafka_topic_name(m->rkt), m->key,
                                     m->key_len, m->payload, m->len, h, &em,
                                     err, sizeof(err)), 0);
    assert_string_equal(em.ev.id, row.event_id);
    assert_string_equal(em.ev.type, row.type);
    assert_string_equal(em.ev.source, row.source);
    assert_string_equal(em.ev.subject, row.subject);
    assert_string_equal(em.ev.time, row.time);
    assert_string_equal(em.ev.key, row.key);
    assert_string_equal(em.ev.topic, row.topic);
    assert_string_equal(json_string_value(json_object_get(em.ev.data,
                                                          "name")),
                        "caf\xc3\xa9");
    enc_event_msg_free(&em);

    /* manual, synchronous commit of exactly this message */
    assert_int_equal(rd_kafka_commit_message(c, m, 0), 0);
    committed = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(committed, row.topic, m->partition);
    assert_int_equal(rd_kafka_committed(c, committed, 5000), 0);
    assert_int_equal(committed->elems[0].offset, m->offset + 1);
    rd_kafka_topic_partition_list_destroy(committed);

    rd_kafka_message_destroy(m);
    (void) rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    rd_kafka_destroy(prk);
}


/* ---- the consumer thread with the inbox (needs PostgreSQL) ---------------- */

#define DB_TOPIC  "encore.t.inbox"

typedef struct {
    atomic_int  calls_a;
    atomic_int  calls_b;
    atomic_int  calls_other;
    atomic_int  fail_b;        /* fail B this many more times */
} handler_state_t;


static int
count_handler(enc_pg_t *pg, const enc_event_t *ev, void *app)
{
    handler_state_t  *hs = app;
    PGresult         *res;

    /* the handler runs inside the inbox transaction */
    if (PQtransactionStatus(enc_pg_conn(pg)) != PQTRANS_INTRANS) {
        return -1;
    }

    if (strcmp(ev->id, "ev-a") == 0) {
        atomic_fetch_add(&hs->calls_a, 1);
    } else if (strcmp(ev->id, "ev-b") == 0) {
        atomic_fetch_add(&hs->calls_b, 1);
        if (atomic_load(&hs->fail_b) > 0) {
            atomic_fetch_sub(&hs->fail_b, 1);
            /* a half-done effect that the rollback must undo */
            res = enc_pg_exec_sql(pg, "INSERT INTO inbox (event_id, topic)"
                                  " VALUES ('leak', 'x')", 0, NULL);
            if (res != NULL) {
                PQclear(res);
            }
            return -1;
        }
    } else {
        atomic_fetch_add(&hs->calls_other, 1);
    }
    return 0;
}


static void
produce_to(rd_kafka_t *rk, const char *topic, const char *id,
    const char *value)
{
    rd_kafka_headers_t  *h;

    h = rd_kafka_headers_new(4);
    assert_non_null(h);
    if (id != NULL) {
        assert_int_equal(rd_kafka_header_add(h, "ce_id", -1, id, -1), 0);
    }
    assert_int_equal(rd_kafka_header_add(h, "ce_specversion", -1, "1.0", -1),
                     0);
    assert_int_equal(rd_kafka_header_add(h, "ce_source", -1, "/encore/t",
                                         -1), 0);
    assert_int_equal(rd_kafka_header_add(h, "ce_type", -1, "encore.t.x", -1),
                     0);
    assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                         RD_KAFKA_V_KEY("k", 1),
                         RD_KAFKA_V_VALUE((void *) value, strlen(value)),
                         RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                         RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END), 0);
}


static void
produce_raw(rd_kafka_t *rk, const char *id, const char *value)
{
    produce_to(rk, DB_TOPIC, id, value);
}


static int
admin_count(PGconn *admin, const char *sql)
{
    int        n;
    PGresult  *res;

    res = PQexec(admin, sql);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    n = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    return n;
}


static void
test_consumer_inbox_db(void **state)
{
    int                               i;
    char                              sql[256], err[512];
    rd_kafka_t                       *prk, *c;
    db_fixture_t                      fx;
    handler_state_t                   hs;
    const char                       *topics[] = { DB_TOPIC, NULL };
    rd_kafka_topic_partition_list_t  *committed;

    if (db_fixture_skip()) {
        skip();
    }

    prk = mock_producer();
    db_fixture_init(&fx, "test_consumer", bootstraps(prk));

    /* A, a replay of A (relay crashed after the ack), a malformed event,
       B whose handler fails three times before it succeeds, then bad
       JSON.  The seek back after B's first failure fails (review finding:
       the next poll then returned ev-c, whose commit skipped B — lost),
       so B must be retried in place; the later seeks work. */
    produce_raw(prk, "ev-a", "{\"n\":1}");
    produce_raw(prk, "ev-a", "{\"n\":1}");
    produce_raw(prk, NULL, "{\"n\":2}");
    produce_raw(prk, "ev-b", "{\"n\":3}");
    produce_raw(prk, "ev-c", "{\"n\":");
    assert_int_equal(rd_kafka_flush(prk, 5000), 0);

    memset(&hs, 0, sizeof(hs));
    atomic_store(&hs.fail_b, 3);
    enc_consumer_test_fail_seeks(1);
    assert_int_equal(enc_consumer_start(fx.conf, topics, count_handler, &hs),
                     0);

    (void) snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s.inbox",
                    fx.schema);
    for (i = 0; i < 300 && admin_count(fx.admin, sql) < 2; i++) {
        usleep(50 * 1000);
    }
    /* let the consumer commit and run into the malformed tail */
    usleep(500 * 1000);
    enc_consumer_stop();

    /* A's replay never reaches the handler; A itself runs once per
       transaction that held it: once alone, twice when B's failure
       rolled back the batch that held them both */
    assert_true(atomic_load(&hs.calls_a) == 1
                || atomic_load(&hs.calls_a) == 2);
    assert_int_equal(atomic_load(&hs.calls_b), 4);
    assert_int_equal(atomic_load(&hs.calls_other), 0);
    /* ev-a and ev-b; the failed attempts' "leak" rows were rolled back */
    assert_int_equal(admin_count(fx.admin, sql), 2);

    /* every offset is committed, the malformed ones included */
    c = enc_consumer_kafka_new(bootstraps(prk), fx.schema, "test", NULL, err,
                               sizeof(err));
    assert_non_null(c);
    committed = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(committed, DB_TOPIC, 0);
    assert_int_equal(rd_kafka_committed(c, committed, 5000), 0);
    assert_int_equal(committed->elems[0].offset, 5);
    rd_kafka_topic_partition_list_destroy(committed);
    rd_kafka_destroy(c);

    db_fixture_fini(&fx);
    rd_kafka_destroy(prk);
}


/* Applied event ids older than consumer.inbox_retain_hours are forgotten;
   the recent ones stay (they may still be redelivered). */
static void
test_consumer_prunes_inbox_db(void **state)
{
    int               i;
    char              sql[320];
    rd_kafka_t       *prk;
    db_fixture_t      fx;
    handler_state_t   hs;
    const char       *topics[] = { DB_TOPIC, NULL };

    if (db_fixture_skip()) {
        skip();
    }

    prk = mock_producer();
    db_fixture_init(&fx, "test_consumer_prune", bootstraps(prk));

    (void) snprintf(sql, sizeof(sql), "INSERT INTO %s.inbox (event_id, topic,"
                    " received_at) SELECT 'ev-' || n, 't', now() -"
                    " CASE WHEN n <= 3 THEN interval '800 hours'"
                    " ELSE interval '1 hour' END FROM generate_series(1, 5) n",
                    fx.schema);
    db_admin_exec(fx.admin, sql);

    memset(&hs, 0, sizeof(hs));
    assert_int_equal(enc_consumer_start(fx.conf, topics, count_handler, &hs),
                     0);

    (void) snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s.inbox",
                    fx.schema);
    for (i = 0; i < 100 && admin_count(fx.admin, sql) > 2; i++) {
        usleep(50 * 1000);
    }
    enc_consumer_stop();
    assert_int_equal(admin_count(fx.admin, sql), 2);

    (void) snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s.inbox WHERE"
                    " event_id IN ('ev-4', 'ev-5')", fx.schema);
    assert_int_equal(admin_count(fx.admin, sql), 2);

    db_fixture_fini(&fx);
    rd_kafka_destroy(prk);
}


/* ---- the fault hook ------------------------------------------------------ */

static void
test_fault_parse(void **state)
{
    size_t  i;
    static const struct {
        const char  *v;
        long         n;
    } cases[] = {
        { NULL, 0 }, { "", 0 }, { "1", 1 }, { "3", 3 }, { "250", 250 },
        { "1000000000", 1000000000L },
        { "0", -1 }, { "-1", -1 }, { "+1", -1 }, { " 1", -1 }, { "1 ", -1 },
        { "1x", -1 }, { "x", -1 }, { "yes", -1 }, { "1.5", -1 },
        { "1000000001", -1 }, { "99999999999999999999999", -1 },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (enc_consumer_fault_parse(cases[i].v) != cases[i].n) {
            fail_msg("\"%s\": %ld, not %ld",
                     cases[i].v ? cases[i].v : "(null)",
                     enc_consumer_fault_parse(cases[i].v), cases[i].n);
        }
    }
}


/* An armed hook that does not parse refuses to start: a fault test that
   misspelt its number must not pass on an unarmed worker. */
static void
test_fault_invalid_refuses_start(void **state)
{
    enc_config_t                 *conf;
    const char                   *topics[] = { DB_TOPIC, NULL };
    static const enc_conf_key_t  *tables[] = { enc_runtime_conf_keys, NULL };

    conf = enc_config_new(tables);
    assert_non_null(conf);
    assert_int_equal(setenv("ENCORE_FAULT_CONSUMER_EXIT_AFTER_COMMIT", "two",
                            1), 0);
    assert_int_equal(enc_consumer_start(conf, topics, count_handler, NULL),
                     -1);
    assert_int_equal(unsetenv("ENCORE_FAULT_CONSUMER_EXIT_AFTER_COMMIT"), 0);
    enc_config_free(conf);
}


#define FAULT_TOPIC   "encore.t.fault"
#define FAULT_EVENTS  5
#define FAULT_AFTER   3

/* Records every application of an event: a table without a key, so an
   effect applied twice shows as two rows. */
static int
effect_handler(enc_pg_t *pg, const enc_event_t *ev, void *app)
{
    int          ok;
    PGresult    *res;
    const char  *params[1];

    params[0] = ev->id;
    res = enc_pg_exec_sql(pg, "INSERT INTO effects (event_id) VALUES ($1)",
                          1, params);
    if (res == NULL) {
        return -1;
    }
    ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    return ok ? 0 : -1;
}


/* The child: consumes with the hook armed until it fires.  Forked before
   the parent starts any thread, so nothing it inherits is locked; exits
   75 from the hook, anything else is a failure. */
static void
fault_child(db_fixture_t *fx, int rfd)
{
    int          i;
    char         brokers[256], err[256];
    ssize_t      n;
    const char  *topics[] = { FAULT_TOPIC, NULL };

    n = read(rfd, brokers, sizeof(brokers) - 1);
    if (n <= 0) {
        _exit(10);
    }
    brokers[n] = '\0';
    if (enc_config_set(fx->conf, "kafka.brokers", brokers, err, sizeof(err))
        != 0
        || setenv("ENCORE_FAULT_CONSUMER_EXIT_AFTER_COMMIT", "3", 1) != 0)
    {
        _exit(11);
    }
    if (enc_consumer_start(fx->conf, topics, effect_handler, NULL) != 0) {
        _exit(12);
    }
    for (i = 0; i < 600; i++) {
        usleep(100 * 1000);
    }
    _exit(13);
}


static long
committed_offset(rd_kafka_t *prk, const char *group)
{
    long                              off;
    char                              err[512];
    rd_kafka_t                       *c;
    rd_kafka_topic_partition_list_t  *parts;

    c = enc_consumer_kafka_new(bootstraps(prk), group, "test", NULL, err,
                               sizeof(err));
    assert_non_null(c);
    parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, FAULT_TOPIC, 0);
    assert_int_equal(rd_kafka_committed(c, parts, 5000), 0);
    off = (long) parts->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_destroy(c);
    return off;
}


/*
 * The process dies right after the database commit of the transaction
 * holding the 3rd event and before its offsets are stored: the effects of
 * events 1-3 (and of any batched after them) are in, the group's offset
 * points before them.  The next consumer of the group gets those events
 * again, the inbox skips them, and every event has exactly one effect.
 */
static void
test_fault_exit_after_commit_db(void **state)
{
    int            i, fds[2], status = 0, effects;
    char           id[16], sql[256], *t;
    pid_t          pid, done = 0;
    rd_kafka_t    *prk;
    db_fixture_t   fx;
    const char    *bs, *topics[] = { FAULT_TOPIC, NULL };

    if (db_fixture_skip()) {
        skip();
    }

    db_fixture_init(&fx, "test_consumer_fault", "unset");
    (void) snprintf(sql, sizeof(sql), "CREATE TABLE %s.effects"
                    " (event_id text NOT NULL)", fx.schema);
    db_admin_exec(fx.admin, sql);

    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        (void) close(fds[1]);
        fault_child(&fx, fds[0]);
    }
    (void) close(fds[0]);

    prk = mock_producer();
    for (i = 1; i <= FAULT_EVENTS; i++) {
        (void) snprintf(id, sizeof(id), "ev-%d", i);
        produce_to(prk, FAULT_TOPIC, id, "{}");
    }
    assert_int_equal(rd_kafka_flush(prk, 5000), 0);
    bs = bootstraps(prk);
    assert_int_equal(write(fds[1], bs, strlen(bs)), (ssize_t) strlen(bs));
    (void) close(fds[1]);

    for (i = 0; i < 600 && done == 0; i++) {
        done = waitpid(pid, &status, WNOHANG);
        if (done == 0) {
            usleep(100 * 1000);
        }
    }
    if (done == 0) {
        (void) kill(pid, SIGKILL);
        (void) waitpid(pid, &status, 0);
        fail_msg("the hook did not fire within 60 s");
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 75);

    /* the window: the transaction holding the third event committed
       (with the events batched with it), its offsets not */
    (void) snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s.effects",
                    fx.schema);
    effects = admin_count(fx.admin, sql);
    assert_true(effects >= FAULT_AFTER && effects <= FAULT_EVENTS);
    assert_true(committed_offset(prk, fx.schema) < effects);

    /* a consumer of the same group, unarmed, takes over (once the dead
       member's session expired) */
    assert_int_equal(enc_config_set(fx.conf, "kafka.brokers", bs, sql,
                                    sizeof(sql)), 0);
    enc_metrics_reset();
    assert_int_equal(enc_consumer_start(fx.conf, topics, effect_handler,
                                        NULL), 0);
    (void) snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s.inbox",
                    fx.schema);
    for (i = 0; i < 600 && admin_count(fx.admin, sql) < FAULT_EVENTS; i++) {
        usleep(100 * 1000);
    }
    /* (the inbox may have been full already: the child's last batch can
       hold every event; the group's offset shows the takeover) */
    for (i = 0; i < 600 && committed_offset(prk, fx.schema) < FAULT_EVENTS;
         i++)
    {
        usleep(100 * 1000);
    }
    enc_consumer_stop();
    /* what the child committed but never stored came again, skipped */
    t = metrics_text();
    assert_true(metric_value(t, "encore_consumer_duplicates_total ") >= 1);
    free(t);

    assert_int_equal(admin_count(fx.admin, sql), FAULT_EVENTS);
    (void) snprintf(sql, sizeof(sql), "SELECT count(*) FROM (SELECT event_id"
                    " FROM %s.effects GROUP BY event_id HAVING count(*) = 1)"
                    " once", fx.schema);
    assert_int_equal(admin_count(fx.admin, sql), FAULT_EVENTS);
    (void) snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s.effects",
                    fx.schema);
    assert_int_equal(admin_count(fx.admin, sql), FAULT_EVENTS);
    assert_int_equal(committed_offset(prk, fx.schema), FAULT_EVENTS);

    db_fixture_fini(&fx);
    rd_kafka_destroy(prk);
}


/* ---- batches (needs PostgreSQL) ------------------------------------------ */

#define ALONE_TYPE  "encore.t.alone"

static atomic_int  tx_fail;         /* fail this many more times ... */
static char        tx_fail_id[32];  /* ... the event with this id */


static void
produce_ev(rd_kafka_t *rk, const char *topic, int32_t partition,
    const char *id, const char *type)
{
    rd_kafka_headers_t  *h;

    h = rd_kafka_headers_new(4);
    assert_non_null(h);
    assert_int_equal(rd_kafka_header_add(h, "ce_id", -1, id, -1), 0);
    assert_int_equal(rd_kafka_header_add(h, "ce_specversion", -1, "1.0", -1),
                     0);
    assert_int_equal(rd_kafka_header_add(h, "ce_source", -1, "/encore/t",
                                         -1), 0);
    assert_int_equal(rd_kafka_header_add(h, "ce_type", -1, type, -1), 0);
    assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                         RD_KAFKA_V_PARTITION(partition),
                         RD_KAFKA_V_KEY(id, strlen(id)),
                         RD_KAFKA_V_VALUE("{}", 2),
                         RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                         RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END), 0);
}


/* Records each application with its transaction: events that shared a
   transaction share a tx.  tx_fail_id fails tx_fail times, after a
   half-done effect the rollback must undo. */
static int
tx_handler(enc_pg_t *pg, const enc_event_t *ev, void *app)
{
    int          ok;
    PGresult    *res;
    const char  *params[2];

    params[0] = ev->id;
    params[1] = ev->type;
    res = enc_pg_exec_sql(pg, "INSERT INTO effects (event_id, type, tx)"
                          " VALUES ($1, $2, txid_current())", 2, params);
    if (res == NULL) {
        return -1;
    }
    ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (ok && strcmp(ev->id, tx_fail_id) == 0 && atomic_load(&tx_fail) > 0) {
        atomic_fetch_sub(&tx_fail, 1);
        return -1;
    }
    return ok ? 0 : -1;
}


static int
alone_type(const enc_event_t *ev, void *app)
{
    return strcmp(ev->type, ALONE_TYPE) == 0;
}


static void
batch_fixture(db_fixture_t *fx, rd_kafka_t *prk, const char *prefix,
    const char *batch)
{
    char  sql[256], err[256];

    db_fixture_init(fx, prefix, bootstraps(prk));
    (void) snprintf(sql, sizeof(sql), "CREATE TABLE %s.effects (seq bigserial,"
                    " event_id text NOT NULL, type text NOT NULL,"
                    " tx bigint NOT NULL)", fx->schema);
    db_admin_exec(fx->admin, sql);
    assert_int_equal(enc_config_set(fx->conf, "consumer.batch", batch, err,
                                    sizeof(err)), 0);
}


/* waits until the inbox holds n events */
static void
wait_inbox(db_fixture_t *fx, int n)
{
    int   i;
    char  sql[128];

    (void) snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s.inbox",
                    fx->schema);
    for (i = 0; i < 600 && admin_count(fx->admin, sql) < n; i++) {
        usleep(100 * 1000);
    }
    assert_int_equal(admin_count(fx->admin, sql), n);
}


static int
effects_count(db_fixture_t *fx, const char *fmt)
{
    char  sql[512];

    /* fmt names the schema once or twice */
    (void) snprintf(sql, sizeof(sql), fmt, fx->schema, fx->schema);
    return admin_count(fx->admin, sql);
}


static long
committed_at(rd_kafka_t *prk, const char *group, const char *topic,
    int32_t partition)
{
    long                              off;
    char                              err[512];
    rd_kafka_t                       *c;
    rd_kafka_topic_partition_list_t  *parts;

    c = enc_consumer_kafka_new(bootstraps(prk), group, "test", NULL, err,
                               sizeof(err));
    assert_non_null(c);
    parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic, partition);
    assert_int_equal(rd_kafka_committed(c, parts, 5000), 0);
    off = (long) parts->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_destroy(c);
    return off;
}


/* (not inlined: GCC 12 then takes the stream's buffer for a dangling
   local) */
static __attribute__((noinline)) char *
metrics_text(void)
{
    char    *buf = NULL;
    size_t   len = 0;
    FILE    *f = open_memstream(&buf, &len);

    assert_non_null(f);
    enc_metrics_render(f);
    fclose(f);
    return buf;
}


/* the value of the sample line starting with prefix, -1 if none */
static double
metric_value(const char *text, const char *prefix)
{
    char         line[128];
    const char  *p;

    (void) snprintf(line, sizeof(line), "\n%s", prefix);
    p = strstr(text, line);
    return p != NULL ? strtod(p + strlen(line), NULL) : -1;
}


/*
 * 50 events waiting before the consumer starts (and two replays, one
 * right after its original), consumer.batch 20: they share transactions,
 * never more than 20 to one, each is applied once, in order, the replays
 * skipped, and every offset is committed.  The lag gauge reports the
 * partition, caught up.
 */
static void
test_consumer_batches_db(void **state)
{
    int            i;
    char           id[32], *t;
    rd_kafka_t    *prk;
    db_fixture_t   fx;
    const char    *topics[] = { "encore.t.batch", NULL };

    if (db_fixture_skip()) {
        skip();
    }

    enc_metrics_reset();
    prk = mock_producer();
    batch_fixture(&fx, prk, "test_consumer_batch", "20");
    for (i = 0; i < 50; i++) {
        (void) snprintf(id, sizeof(id), "ev-%02d", i);
        produce_ev(prk, "encore.t.batch", 0, id, "encore.t.x");
        if (i == 5) {
            /* a replay in the same batch: the first one counts */
            produce_ev(prk, "encore.t.batch", 0, id, "encore.t.x");
        }
    }
    produce_ev(prk, "encore.t.batch", 0, "ev-49", "encore.t.x");
    assert_int_equal(rd_kafka_flush(prk, 5000), 0);

    atomic_store(&tx_fail, 0);
    assert_int_equal(enc_consumer_start(fx.conf, topics, tx_handler, NULL),
                     0);
    wait_inbox(&fx, 50);

    /* the gauge comes with librdkafka's next statistics */
    t = NULL;
    for (i = 0; i < 100; i++) {
        free(t);
        t = metrics_text();
        if (strstr(t, "encore_consumer_lag{topic=\"encore.t.batch\","
                      "partition=\"0\"} 0\n") != NULL)
        {
            break;
        }
        usleep(100 * 1000);
    }
    enc_consumer_stop();

    assert_non_null(strstr(t, "# TYPE encore_consumer_lag gauge\n"));
    assert_non_null(strstr(t, "encore_consumer_lag{topic=\"encore.t.batch\","
                              "partition=\"0\"} 0\n"));
    assert_non_null(strstr(t, "# TYPE encore_consumer_batch_size histogram\n"));
    assert_non_null(strstr(t, "encore_consumer_batch_size_sum 52\n"));
    assert_non_null(strstr(t, "encore_consumer_applied_total 50\n"));
    assert_non_null(strstr(t, "encore_consumer_duplicates_total 2\n"));
    /* nothing above the batch size */
    assert_true(metric_value(t, "encore_consumer_batch_size_count ") > 0);
    assert_true(metric_value(t, "encore_consumer_batch_size_bucket{le=\"20\"} ")
                == metric_value(t, "encore_consumer_batch_size_count "));
    free(t);

    assert_int_equal(effects_count(&fx, "SELECT count(*) FROM %s.effects"),
                     50);
    assert_int_equal(effects_count(&fx, "SELECT count(DISTINCT event_id)"
                                   " FROM %s.effects"), 50);
    /* batched: fewer transactions than events, none over 20 */
    assert_true(effects_count(&fx, "SELECT count(DISTINCT tx) FROM"
                              " %s.effects") < 50);
    assert_int_equal(effects_count(&fx, "SELECT count(*) FROM (SELECT tx"
                                   " FROM %s.effects GROUP BY tx HAVING"
                                   " count(*) > 20) big"), 0);
    /* in the partition's order */
    assert_int_equal(effects_count(&fx, "SELECT count(*) FROM (SELECT"
                                   " event_id, lag(event_id) OVER (ORDER BY"
                                   " seq) AS prev FROM %s.effects) o WHERE"
                                   " prev > event_id"), 0);
    assert_int_equal(committed_at(prk, fx.schema, "encore.t.batch", 0), 52);

    db_fixture_fini(&fx);
    rd_kafka_destroy(prk);
}


/*
 * 40 events over 4 partitions in one or a few batches; the handler fails
 * p1-04 twice (after a half-done effect), and the first seek back after
 * the failure fails too (that partition's messages are retried in
 * place).  Every event is applied exactly once, each partition in its
 * order, and every offset is committed.
 */
static void
test_consumer_batch_failure_db(void **state)
{
    int            i, p;
    char           id[32], *t;
    rd_kafka_t    *prk;
    db_fixture_t   fx;
    const char    *topics[] = { "encore.t.parts", NULL };

    if (db_fixture_skip()) {
        skip();
    }

    enc_metrics_reset();
    prk = mock_producer();
    batch_fixture(&fx, prk, "test_consumer_fail", "500");
    for (i = 0; i < 10; i++) {
        for (p = 0; p < 4; p++) {
            (void) snprintf(id, sizeof(id), "p%d-%02d", p, i);
            produce_ev(prk, "encore.t.parts", p, id, "encore.t.x");
        }
    }
    assert_int_equal(rd_kafka_flush(prk, 5000), 0);

    (void) snprintf(tx_fail_id, sizeof(tx_fail_id), "p1-04");
    atomic_store(&tx_fail, 2);
    enc_consumer_test_fail_seeks(1);
    assert_int_equal(enc_consumer_start(fx.conf, topics, tx_handler, NULL),
                     0);
    wait_inbox(&fx, 40);
    enc_consumer_stop();
    enc_consumer_test_fail_seeks(0);
    tx_fail_id[0] = '\0';

    assert_int_equal(atomic_load(&tx_fail), 0);
    /* one row per event: the failed attempts' rows were rolled back */
    assert_int_equal(effects_count(&fx, "SELECT count(*) FROM %s.effects"),
                     40);
    assert_int_equal(effects_count(&fx, "SELECT count(DISTINCT event_id)"
                                   " FROM %s.effects"), 40);
    /* each partition in its order */
    assert_int_equal(effects_count(&fx, "SELECT count(*) FROM (SELECT"
                                   " event_id, lag(event_id) OVER (PARTITION"
                                   " BY left(event_id, 2) ORDER BY seq) AS"
                                   " prev FROM %s.effects) o WHERE prev >"
                                   " event_id"), 0);
    for (p = 0; p < 4; p++) {
        assert_int_equal(committed_at(prk, fx.schema, "encore.t.parts", p),
                         10);
    }
    t = metrics_text();
    assert_non_null(strstr(t, "encore_consumer_retries_total 2\n"));
    assert_non_null(strstr(t, "encore_consumer_applied_total 40\n"));
    free(t);

    db_fixture_fini(&fx);
    rd_kafka_destroy(prk);
}


/* An event the alone predicate names shares its transaction with no
   other; the others still share theirs. */
static void
test_consumer_alone_db(void **state)
{
    int            i;
    char           id[32];
    rd_kafka_t    *prk;
    db_fixture_t   fx;
    const char    *topics[] = { "encore.t.alone", NULL };

    if (db_fixture_skip()) {
        skip();
    }

    enc_metrics_reset();
    prk = mock_producer();
    batch_fixture(&fx, prk, "test_consumer_alone", "500");
    for (i = 0; i < 30; i++) {
        (void) snprintf(id, sizeof(id), "ev-%02d", i);
        produce_ev(prk, "encore.t.alone", 0, id,
                   i % 10 == 5 ? ALONE_TYPE : "encore.t.x");
    }
    assert_int_equal(rd_kafka_flush(prk, 5000), 0);

    atomic_store(&tx_fail, 0);
    assert_int_equal(enc_consumer_start_ex(fx.conf, topics, tx_handler,
                                           alone_type, NULL), 0);
    wait_inbox(&fx, 30);
    enc_consumer_stop();

    assert_int_equal(effects_count(&fx, "SELECT count(*) FROM %s.effects"),
                     30);
    assert_int_equal(effects_count(&fx, "SELECT count(*) FROM %s.effects a"
                                   " JOIN %s.effects b ON a.tx = b.tx AND"
                                   " a.event_id <> b.event_id WHERE a.type ="
                                   " '" ALONE_TYPE "'"), 0);
    assert_true(effects_count(&fx, "SELECT count(DISTINCT tx) FROM"
                              " %s.effects") < 30);

    db_fixture_fini(&fx);
    rd_kafka_destroy(prk);
}


/* The lag gauge from librdkafka's statistics JSON. */
static void
test_lag_from_stats(void **state)
{
    char        *t;
    const char  *j;

    enc_metrics_reset();
    j = "{\"topics\":{"
        "\"a\":{\"partitions\":{"
          "\"0\":{\"partition\":0,\"desired\":true,\"consumer_lag\":9,"
                 "\"consumer_lag_stored\":3},"
          "\"1\":{\"partition\":1,\"desired\":true,\"consumer_lag\":7,"
                 "\"consumer_lag_stored\":-1},"
          "\"2\":{\"partition\":2,\"desired\":true,\"consumer_lag\":-1,"
                 "\"consumer_lag_stored\":-1},"
          "\"3\":{\"partition\":3,\"desired\":false,\"consumer_lag\":4},"
          "\"-1\":{\"partition\":-1,\"desired\":false,\"consumer_lag\":1}}},"
        "\"b\":{\"partitions\":{"
          "\"0\":{\"partition\":0,\"desired\":true,\"consumer_lag\":0}}}}}";
    enc_consumer_lag_from_stats(j, strlen(j));
    t = metrics_text();
    assert_non_null(strstr(t, "encore_consumer_lag{topic=\"a\","
                              "partition=\"0\"} 3\n"));
    assert_non_null(strstr(t, "encore_consumer_lag{topic=\"a\","
                              "partition=\"1\"} 7\n"));
    assert_non_null(strstr(t, "encore_consumer_lag{topic=\"b\","
                              "partition=\"0\"} 0\n"));
    assert_null(strstr(t, "partition=\"2\""));
    assert_null(strstr(t, "partition=\"3\""));
    assert_null(strstr(t, "partition=\"-1\""));
    free(t);

    /* a rebalance took a away; garbage changes nothing */
    j = "{\"topics\":{\"b\":{\"partitions\":{"
        "\"0\":{\"partition\":0,\"desired\":true,\"consumer_lag\":2}}}}}";
    enc_consumer_lag_from_stats(j, strlen(j));
    enc_consumer_lag_from_stats("{\"topics\":", 10);
    t = metrics_text();
    assert_null(strstr(t, "topic=\"a\""));
    assert_non_null(strstr(t, "encore_consumer_lag{topic=\"b\","
                              "partition=\"0\"} 2\n"));
    free(t);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_parse_fields),
        cmocka_unit_test(test_parse_nul),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_consumer_inbox_db),
        cmocka_unit_test(test_consumer_prunes_inbox_db),
        cmocka_unit_test(test_consumer_batches_db),
        cmocka_unit_test(test_consumer_batch_failure_db),
        cmocka_unit_test(test_consumer_alone_db),
        cmocka_unit_test(test_lag_from_stats),
        cmocka_unit_test(test_fault_parse),
        cmocka_unit_test(test_fault_invalid_refuses_start),
        cmocka_unit_test(test_fault_exit_after_commit_db),
    };

    /* malformed events are logged on purpose; keep the output readable */
    enc_log_init("test", ENC_LOG_DEBUG);
    if (getenv("TEST_VERBOSE") == NULL) {
        enc_log_set_fd(open("/dev/null", O_WRONLY));
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
