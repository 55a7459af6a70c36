/*
 * outbox: row mapping, CloudEvents headers, id arrays and the producer's
 * delivery handling against librdkafka's mock cluster.  The relay thread
 * itself (lock, LISTEN, stamping) runs only when ENCORE_TEST_PGHOST points
 * to a PostgreSQL (user ENCORE_TEST_PGUSER, default postgres; database
 * ENCORE_TEST_PGDATABASE, default postgres; port ENCORE_TEST_PGPORT).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
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


#define COLS  10

static const char  *row_cols[COLS] = {
    "id", "event_id", "topic", "key", "type", "source", "subject", "time",
    "data", "request_id"
};


/* A PGresult built in memory, shaped like enc_outbox_backlog_sql's. */
static PGresult *
fake_result(const char *const (*rows)[COLS], int n)
{
    int                 i, j;
    PGresult           *res;
    PGresAttDesc        att[COLS];

    res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    assert_non_null(res);

    memset(att, 0, sizeof(att));
    for (j = 0; j < COLS; j++) {
        att[j].name = (char *) row_cols[j];
        att[j].format = 0;
        att[j].typid = 25;    /* text */
        att[j].typlen = -1;
        att[j].atttypmod = -1;
    }
    assert_int_equal(PQsetResultAttrs(res, COLS, att), 1);

    for (i = 0; i < n; i++) {
        for (j = 0; j < COLS; j++) {
            /* len -1 with NULL value makes an SQL NULL */
            assert_int_equal(PQsetvalue(res, i, j, (char *) rows[i][j],
                                        rows[i][j] ? (int) strlen(rows[i][j])
                                                   : -1), 1);
        }
    }
    return res;
}


static const char *const  good_rows[][COLS] = {
    { "7", "3f1c2a64-6a55-4a0e-a3c1-0d63f9b0e111", "encore.t.things", "42",
      "encore.thing.created", "/encore/t", "things/42",
      "2026-11-26T03:16:08.123456Z", "{\"id\":\"42\",\"n\":1}", "req-1" },
    { "9", "5b0e7f7e-1111-4b6e-9d0e-7c3f8c0f2222", "encore.t.things", NULL,
      "encore.thing.deleted", "/encore/t", NULL,
      "2026-11-26T03:16:09.000000Z", "{\"id\":\"43\"}", NULL },
    /* no data: unmappable */
    { "10", "6b0e7f7e-1111-4b6e-9d0e-7c3f8c0f3333", "encore.t.things", "1",
      "encore.thing.created", "/encore/t", NULL,
      "2026-11-26T03:16:09.000000Z", NULL, NULL },
    /* id not a number */
    { "x1", "6b0e7f7e-1111-4b6e-9d0e-7c3f8c0f4444", "encore.t.things", "1",
      "encore.thing.created", "/encore/t", NULL,
      "2026-11-26T03:16:09.000000Z", "{}", NULL },
};


static void
test_row_from_result(void **state)
{
    PGresult          *res;
    enc_outbox_row_t   row;

    res = fake_result(good_rows, 4);

    assert_int_equal(enc_outbox_row_from_result(res, 0, &row), 0);
    assert_int_equal(row.id, 7);
    assert_string_equal(row.event_id, good_rows[0][1]);
    assert_string_equal(row.topic, "encore.t.things");
    assert_string_equal(row.key, "42");
    assert_string_equal(row.type, "encore.thing.created");
    assert_string_equal(row.source, "/encore/t");
    assert_string_equal(row.subject, "things/42");
    assert_string_equal(row.time, "2026-11-26T03:16:08.123456Z");
    assert_string_equal(row.data, "{\"id\":\"42\",\"n\":1}");
    assert_string_equal(row.request_id, "req-1");

    /* NULL columns map to NULL, not "" */
    assert_int_equal(enc_outbox_row_from_result(res, 1, &row), 0);
    assert_int_equal(row.id, 9);
    assert_null(row.key);
    assert_null(row.subject);
    assert_null(row.request_id);

    assert_int_equal(enc_outbox_row_from_result(res, 2, &row), -1);
    assert_int_equal(enc_outbox_row_from_result(res, 3, &row), -1);
    assert_int_equal(enc_outbox_row_from_result(res, 4, &row), -1);
    assert_int_equal(enc_outbox_row_from_result(res, -1, &row), -1);
    assert_int_equal(enc_outbox_row_from_result(NULL, 0, &row), -1);

    PQclear(res);
}


static void
assert_header(rd_kafka_headers_t *h, const char *name, const char *want)
{
    size_t       len;
    const void  *v;

    if (want == NULL) {
        assert_int_equal(rd_kafka_header_get_last(h, name, &v, &len),
                         RD_KAFKA_RESP_ERR__NOENT);
        return;
    }
    assert_int_equal(rd_kafka_header_get_last(h, name, &v, &len),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(v, want, len);
}


static void
test_headers(void **state)
{
    PGresult            *res;
    enc_outbox_row_t     row;
    rd_kafka_headers_t  *h;

    res = fake_result(good_rows, 2);

    assert_int_equal(enc_outbox_row_from_result(res, 0, &row), 0);
    h = enc_outbox_headers(&row);
    assert_non_null(h);
    assert_int_equal(rd_kafka_header_cnt(h), 8);
    assert_header(h, "ce_specversion", "1.0");
    assert_header(h, "ce_id", good_rows[0][1]);
    assert_header(h, "ce_source", "/encore/t");
    assert_header(h, "ce_type", "encore.thing.created");
    assert_header(h, "ce_time", "2026-11-26T03:16:08.123456Z");
    assert_header(h, "ce_subject", "things/42");
    assert_header(h, "content-type", "application/json");
    assert_header(h, "ce_encorerequestid", "req-1");
    rd_kafka_headers_destroy(h);

    /* optional attributes are left out rather than sent empty */
    assert_int_equal(enc_outbox_row_from_result(res, 1, &row), 0);
    h = enc_outbox_headers(&row);
    assert_non_null(h);
    assert_int_equal(rd_kafka_header_cnt(h), 6);
    assert_header(h, "ce_subject", NULL);
    assert_header(h, "ce_encorerequestid", NULL);
    rd_kafka_headers_destroy(h);

    PQclear(res);
}


static void
test_id_array(void **state)
{
    char                *s;
    size_t               count;
    enc_outbox_row_t     rows[4];
    enc_outbox_state_t   st[4] = {
        ENC_OUTBOX_DELIVERED, ENC_OUTBOX_FAILED, ENC_OUTBOX_DELIVERED,
        ENC_OUTBOX_PENDING
    };

    memset(rows, 0, sizeof(rows));
    rows[0].id = 1;
    rows[1].id = 22;
    rows[2].id = INT64_MAX;
    rows[3].id = 4;

    s = enc_outbox_id_array(rows, st, 4, ENC_OUTBOX_DELIVERED, &count);
    assert_int_equal(count, 2);
    assert_string_equal(s, "{1,9223372036854775807}");
    free(s);

    s = enc_outbox_id_array(rows, st, 4, ENC_OUTBOX_FAILED, &count);
    assert_int_equal(count, 1);
    assert_string_equal(s, "{22}");
    free(s);

    s = enc_outbox_id_array(rows, st, 2, ENC_OUTBOX_PENDING, &count);
    assert_int_equal(count, 0);
    assert_null(s);
}


/* ---- against the mock cluster ------------------------------------------- */

/* Single-partition topics, so reading partition 0 sees every message in
   order (the mock cluster auto-creates topics with 4 partitions). */
static void
mock_topics(rd_kafka_t *rk)
{
    size_t                    i;
    rd_kafka_mock_cluster_t  *mc = rd_kafka_handle_mock_cluster(rk);
    static const char        *topics[] = {
        "encore.t.things", "encore.t.relay", "encore.t.round",
        "encore.t.inbox"
    };

    assert_non_null(mc);
    for (i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
        assert_int_equal(rd_kafka_mock_topic_create(mc, topics[i], 1, 1), 0);
    }
}


static rd_kafka_t *
mock_producer(const char *timeout_ms)
{
    char         err[512];
    rd_kafka_t  *rk;
    const char  *extra[] = {
        "test.mock.num.brokers", "1",
        "message.timeout.ms", timeout_ms,
        /* the default backoff grows to 10 s after a broker goes down,
           longer than these tests' delivery timeouts */
        "reconnect.backoff.ms", "50",
        "reconnect.backoff.max.ms", "200",
        NULL
    };

    rk = enc_outbox_producer_new(NULL, "test-outbox", extra, err,
                                 sizeof(err));
    if (rk == NULL) {
        fail_msg("producer: %s", err);
    }
    mock_topics(rk);
    return rk;
}


/* A consumed message, copied so the reading handle can go first. */
typedef struct {
    char                *key;       /* NULL for a NULL key */
    size_t               key_len;
    char                *payload;
    size_t               len;
    rd_kafka_headers_t  *hdrs;      /* owned copy */
} got_msg_t;


static void
got_free(got_msg_t *g)
{
    free(g->key);
    free(g->payload);
    if (g->hdrs != NULL) {
        rd_kafka_headers_destroy(g->hdrs);
    }
}


/* Reads n messages of partition 0 of topic from the cluster prk uses. */
static void
consume_n(rd_kafka_t *prk, const char *topic, got_msg_t *out, int n)
{
    int                               got = 0, tries = 0;
    char                              err[512];
    rd_kafka_t                       *c;
    rd_kafka_message_t               *m;
    rd_kafka_headers_t               *h;
    rd_kafka_mock_cluster_t          *mc;
    rd_kafka_topic_partition_list_t  *parts;

    mc = rd_kafka_handle_mock_cluster(prk);
    assert_non_null(mc);
    c = enc_consumer_kafka_new(rd_kafka_mock_cluster_bootstraps(mc),
                               "test-outbox-reader", "test", NULL, err,
                               sizeof(err));
    if (c == NULL) {
        fail_msg("consumer: %s", err);
    }

    /* assign instead of subscribe: no group rebalance to wait for */
    parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic, 0)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(c, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);

    while (got < n && tries++ < 100) {
        m = rd_kafka_consumer_poll(c, 100);
        if (m == NULL) {
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            memset(&out[got], 0, sizeof(out[got]));
            if (m->key != NULL) {
                out[got].key = malloc(m->key_len + 1);
                assert_non_null(out[got].key);
                memcpy(out[got].key, m->key, m->key_len);
                out[got].key[m->key_len] = '\0';
                out[got].key_len = m->key_len;
            }
            out[got].payload = malloc(m->len + 1);
            assert_non_null(out[got].payload);
            memcpy(out[got].payload, m->payload, m->len);
            out[got].payload[m->len] = '\0';
            out[got].len = m->len;
            if (rd_kafka_message_headers(m, &h) == 0) {
                out[got].hdrs = rd_kafka_headers_copy(h);
            }
            got++;
        }
        rd_kafka_message_destroy(m);
    }
    assert_int_equal(got, n);

    (void) rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
}


static void
test_publish_mock(void **state)
{
    int                  i;
    size_t               n;
    PGresult            *res;
    rd_kafka_t          *rk;
    enc_outbox_row_t     rows[2];
    enc_outbox_state_t   st[2];
    got_msg_t            msgs[2];
    const void          *v;
    size_t               len;

    rk = mock_producer("5000");
    res = fake_result(good_rows, 2);
    for (i = 0; i < 2; i++) {
        assert_int_equal(enc_outbox_row_from_result(res, i, &rows[i]), 0);
    }

    n = enc_outbox_publish(rk, rows, 2, st);
    assert_int_equal(n, 2);
    assert_int_equal(st[0], ENC_OUTBOX_DELIVERED);
    assert_int_equal(st[1], ENC_OUTBOX_DELIVERED);

    /* data was copied: the result can go before the messages are read */
    PQclear(res);

    consume_n(rk, "encore.t.things", msgs, 2);

    /* in id order, key = aggregate id, value = the exact JSON bytes */
    assert_string_equal(msgs[0].key, "42");
    assert_string_equal(msgs[0].payload, good_rows[0][8]);
    assert_null(msgs[1].key);
    assert_string_equal(msgs[1].payload, good_rows[1][8]);

    assert_non_null(msgs[0].hdrs);
    assert_int_equal(rd_kafka_header_get_last(msgs[0].hdrs, "ce_id", &v,
                                              &len), 0);
    assert_int_equal(len, strlen(good_rows[0][1]));
    assert_memory_equal(v, good_rows[0][1], len);
    assert_int_equal(rd_kafka_header_get_last(msgs[0].hdrs,
                                              "ce_encorerequestid", &v,
                                              &len), 0);
    assert_memory_equal(v, "req-1", len);

    for (i = 0; i < 2; i++) {
        got_free(&msgs[i]);
    }
    rd_kafka_destroy(rk);
}


/* A broker that is down makes deliveries fail (not hang); the rows are
   reported FAILED and go through on the next round once it is back. */
static void
test_publish_failure_then_retry(void **state)
{
    int                       round;
    size_t                    n;
    PGresult                 *res;
    rd_kafka_t               *rk;
    enc_outbox_row_t          rows[2];
    enc_outbox_state_t        st[2];
    rd_kafka_mock_cluster_t  *mc;

    rk = mock_producer("1500");
    mc = rd_kafka_handle_mock_cluster(rk);
    assert_non_null(mc);

    res = fake_result(good_rows, 2);
    assert_int_equal(enc_outbox_row_from_result(res, 0, &rows[0]), 0);
    assert_int_equal(enc_outbox_row_from_result(res, 1, &rows[1]), 0);

    assert_int_equal(rd_kafka_mock_broker_set_down(mc, 1), 0);
    n = enc_outbox_publish(rk, rows, 2, st);
    assert_int_equal(n, 0);
    assert_int_equal(st[0], ENC_OUTBOX_FAILED);
    assert_int_equal(st[1], ENC_OUTBOX_FAILED);

    /* As the relay does, retry in rounds: the idempotent producer may
       spend the first round re-establishing its producer id after the
       failures, which a short message timeout can expire. */
    assert_int_equal(rd_kafka_mock_broker_set_up(mc, 1), 0);
    for (round = 0; round < 10; round++) {
        n = enc_outbox_publish(rk, rows, 2, st);
        if (n == 2) {
            break;
        }
    }
    assert_int_equal(n, 2);
    assert_int_equal(st[0], ENC_OUTBOX_DELIVERED);
    assert_int_equal(st[1], ENC_OUTBOX_DELIVERED);

    PQclear(res);
    rd_kafka_destroy(rk);
}


/* Produce errors the broker keeps returning fail the delivery; the relay
   leaves the row in the backlog. */
static void
test_publish_broker_error(void **state)
{
    size_t                    n;
    PGresult                 *res;
    rd_kafka_t               *rk;
    enc_outbox_row_t          row;
    enc_outbox_state_t        st[1];
    rd_kafka_mock_cluster_t  *mc;

    rk = mock_producer("5000");
    mc = rd_kafka_handle_mock_cluster(rk);
    res = fake_result(good_rows, 1);
    assert_int_equal(enc_outbox_row_from_result(res, 0, &row), 0);

    /* a non-retriable error on Produce (ApiKey 0) */
    rd_kafka_mock_push_request_errors(mc, 0, 1,
        RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    n = enc_outbox_publish(rk, &row, 1, st);
    assert_int_equal(n, 0);
    assert_int_equal(st[0], ENC_OUTBOX_FAILED);

    n = enc_outbox_publish(rk, &row, 1, st);
    assert_int_equal(n, 1);
    assert_int_equal(st[0], ENC_OUTBOX_DELIVERED);

    PQclear(res);
    rd_kafka_destroy(rk);
}


/* A row whose produce call is refused (over message.max.bytes) holds back
   the later rows of its topic and key, which are not produced at all;
   other keys, and the same key on another topic, go through. */
static void
test_publish_refused_holds_its_key(void **state)
{
    int                  i, j;
    char                *big;
    size_t               n;
    PGresult            *res;
    rd_kafka_t          *rk;
    enc_outbox_row_t     rows[4];
    enc_outbox_state_t   st[4];
    const char          *cells[4][COLS];

    big = malloc(1100001);
    assert_non_null(big);
    memset(big, 'x', 1100000);
    big[1100000] = '\0';

    for (i = 0; i < 4; i++) {
        for (j = 0; j < COLS; j++) {
            cells[i][j] = good_rows[0][j];
        }
    }
    cells[0][0] = "1"; cells[0][3] = "k"; cells[0][8] = big;
    cells[1][0] = "2"; cells[1][3] = "k";
    cells[2][0] = "3"; cells[2][3] = "other";
    cells[3][0] = "4"; cells[3][3] = "k"; cells[3][2] = "encore.t.others";

    rk = mock_producer("5000");
    res = fake_result((const char *const (*)[COLS]) cells, 4);
    for (i = 0; i < 4; i++) {
        assert_int_equal(enc_outbox_row_from_result(res, i, &rows[i]), 0);
    }

    n = enc_outbox_publish(rk, rows, 4, st);
    assert_int_equal(n, 2);
    assert_int_equal(st[0], ENC_OUTBOX_FAILED);
    assert_int_equal(st[1], ENC_OUTBOX_HELD);
    assert_int_equal(st[2], ENC_OUTBOX_DELIVERED);
    assert_int_equal(st[3], ENC_OUTBOX_DELIVERED);

    PQclear(res);
    free(big);
    rd_kafka_destroy(rk);
}


/* After a fatal error the producer refuses everything (the relay then
   recreates it): publish must report FAILED promptly, not hang. */
static void
test_publish_fatal(void **state)
{
    char                 errstr[256];
    size_t               n;
    PGresult            *res;
    rd_kafka_t          *rk;
    enc_outbox_row_t     row;
    enc_outbox_state_t   st[1];

    rk = mock_producer("5000");
    res = fake_result(good_rows, 1);
    assert_int_equal(enc_outbox_row_from_result(res, 0, &row), 0);

    assert_int_equal(rd_kafka_test_fatal_error(rk,
                         RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                         "test"), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_not_equal(rd_kafka_fatal_error(rk, errstr, sizeof(errstr)),
                         RD_KAFKA_RESP_ERR_NO_ERROR);

    n = enc_outbox_publish(rk, &row, 1, st);
    assert_int_equal(n, 0);
    assert_int_equal(st[0], ENC_OUTBOX_FAILED);

    PQclear(res);
    rd_kafka_destroy(rk);

    /* a new producer is healthy again */
    rk = mock_producer("5000");
    res = fake_result(good_rows, 1);
    assert_int_equal(enc_outbox_row_from_result(res, 0, &row), 0);
    assert_int_equal(enc_outbox_publish(rk, &row, 1, st), 1);
    PQclear(res);
    rd_kafka_destroy(rk);
}


/* ---- the relay against a real PostgreSQL (optional) --------------------- */

static int
backlog(enc_pg_t *pg)
{
    int        n;
    PGresult  *res;

    res = enc_pg_exec_sql(pg, "SELECT count(*) FROM outbox"
                          " WHERE published_at IS NULL", 0, NULL);
    assert_non_null(res);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    n = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    return n;
}


/* Waits up to ms for the backlog to drain; returns what is left. */
static int
wait_backlog(enc_pg_t *pg, int ms)
{
    int  n;

    while ((n = backlog(pg)) > 0 && ms > 0) {
        usleep(50 * 1000);
        ms -= 50;
    }
    return n;
}


static void
add_events(enc_pg_t *pg, int from, int to)
{
    int      i;
    char     key[16];
    json_t  *data;

    assert_int_equal(enc_pg_begin(pg), 0);
    for (i = from; i <= to; i++) {
        data = json_pack("{s:i}", "n", i);
        (void) snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(enc_outbox_add(pg, "encore.t.relay",
                                         "encore.t.created", key, "t/1",
                                         data), 0);
        json_decref(data);
    }
    assert_int_equal(enc_pg_commit(pg), 0);
}


/*
 * A relay test's world: a mock cluster (its handle in *mrk), the
 * fixture's schema and configuration pointing at it, with key = value set
 * (key NULL: none), and a connection to write the outbox with.  Undone by
 * relay_fixture_fini.
 */
static enc_pg_t *
relay_fixture_init(db_fixture_t *fx, const char *prefix, const char *key,
    const char *value, rd_kafka_t **mrk)
{
    char       err[128];
    enc_pg_t  *pg;

    /* a handle only to own the mock cluster the relay talks to */
    *mrk = mock_producer("5000");
    db_fixture_init(fx, prefix,
        rd_kafka_mock_cluster_bootstraps(rd_kafka_handle_mock_cluster(*mrk)));
    if (key != NULL) {
        assert_int_equal(enc_config_set(fx->conf, key, value, err,
                                        sizeof(err)), 0);
    }

    pg = enc_pg_connect_new();
    assert_non_null(pg);
    return pg;
}


static void
relay_fixture_fini(db_fixture_t *fx, enc_pg_t *pg, rd_kafka_t *mrk)
{
    enc_pg_close(pg);
    db_fixture_fini(fx);
    rd_kafka_destroy(mrk);
}


/* a gauge as rendered, -1 if absent */
static double
gauge(const char *name)
{
    double   v = -1;
    char    *buf = NULL, *p, line[128];
    size_t   len = 0;
    FILE    *f;

    f = open_memstream(&buf, &len);
    assert_non_null(f);
    enc_metrics_render(f);
    assert_int_equal(fclose(f), 0);
    (void) snprintf(line, sizeof(line), "\n%s ", name);
    p = strstr(buf, line);
    if (p != NULL) {
        v = strtod(p + strlen(line), NULL);
    }
    free(buf);
    return v;
}


/* encore_outbox_backlog as rendered, -1 if absent */
static long
backlog_gauge(void)
{
    return (long) gauge("encore_outbox_backlog");
}


/*
 * The relay end to end on PostgreSQL and the mock cluster: rolled-back
 * events never appear; a standby waits while another session holds the
 * schema's lock; the backlog left before start is published; with the
 * polling fallback at 10 minutes, a later commit is published at once
 * (LISTEN/NOTIFY); every row is stamped; enc_relay_stop interrupts the wait.
 */
static void
test_relay_db(void **state)
{
    int                  i;
    char                 v[32], sql[160];
    json_t              *data;
    enc_pg_t            *pg;
    PGresult            *res;
    rd_kafka_t          *mrk;
    got_msg_t            msgs[5];
    db_fixture_t         fx;

    if (db_fixture_skip()) {
        skip();
    }

    pg = relay_fixture_init(&fx, "test_outbox", "outbox.poll_ms", "600000",
                            &mrk);

    /* outside a transaction the outbox refuses: atomicity is the point */
    data = json_pack("{s:i}", "n", 0);
    assert_int_equal(enc_outbox_add(pg, "encore.t.relay", "encore.t.created",
                                     "k", NULL, data), -1);

    /* rolled back: must never be published */
    assert_int_equal(enc_pg_begin(pg), 0);
    assert_int_equal(enc_outbox_add(pg, "encore.t.relay", "encore.t.created",
                                     "k", NULL, data), 0);
    enc_pg_rollback(pg);
    json_decref(data);

    add_events(pg, 1, 3);

    /* another process relays this schema: ours stands by */
    (void) snprintf(sql, sizeof(sql), "SELECT pg_advisory_lock(hashtext("
                    "'encore.relay.%s'))", fx.schema);
    res = PQexec(fx.admin, sql);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    PQclear(res);

    assert_int_equal(enc_relay_start(fx.conf), 0);
    usleep(1500 * 1000);
    assert_int_equal(backlog(pg), 3);
    assert_int_equal(enc_relay_ready(), 1);

    /* the holder goes away: the standby takes over within a second */
    (void) snprintf(sql, sizeof(sql), "SELECT pg_advisory_unlock(hashtext("
                    "'encore.relay.%s'))", fx.schema);
    res = PQexec(fx.admin, sql);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    PQclear(res);
    assert_int_equal(wait_backlog(pg, 5000), 0);

    /* poll_ms is 10 minutes: only NOTIFY can make this quick */
    add_events(pg, 4, 5);
    assert_int_equal(wait_backlog(pg, 5000), 0);
    /* nothing waits: no age */
    for (i = 0; i < 60 && gauge("encore_outbox_oldest_age_seconds") != 0;
         i++)
    {
        usleep(50 * 1000);
    }
    assert_true(gauge("encore_outbox_oldest_age_seconds") == 0);

    enc_relay_stop();

    res = enc_pg_exec_sql(pg, "SELECT count(*) FROM outbox WHERE attempts > 0"
                          " OR published_at IS NULL", 0, NULL);
    assert_non_null(res);
    assert_string_equal(PQgetvalue(res, 0, 0), "0");
    PQclear(res);

    consume_n(mrk, "encore.t.relay", msgs, 5);
    for (i = 0; i < 5; i++) {
        (void) snprintf(v, sizeof(v), "{\"n\":%d}", i + 1);
        assert_string_equal(msgs[i].payload, v);
        (void) snprintf(v, sizeof(v), "k%d", i + 1);
        assert_string_equal(msgs[i].key, v);
        got_free(&msgs[i]);
    }

    relay_fixture_fini(&fx, pg, mrk);
}


static int
file_contains(int fd, const char *needle)
{
    char     buf[65536];
    ssize_t  n;

    n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0) {
        return 0;
    }
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}


/*
 * Review finding: poison rows (a delivery that fails every time, here a
 * message over message.max.bytes) and malformed rows were re-read at the
 * head of every batch, so batch-many of them wedged the relay for good;
 * attempts was counted but nothing ever looked at it; the backlog gauge was
 * never set while batches were full.  Now they sit out with a backoff (kept,
 * never dropped), an error names a row at 10 attempts, the good rows behind
 * them flow and the gauge counts what is left.
 */
static void
test_relay_poison_db(void **state)
{
    int            i, logfd, left;
    double         age;
    char           sql[256], want[96];
    enc_pg_t      *pg;
    PGresult      *res;
    rd_kafka_t    *mrk;
    db_fixture_t   fx;

    if (db_fixture_skip()) {
        skip();
    }

    pg = relay_fixture_init(&fx, "test_outbox_poison", "outbox.batch", "2",
                            &mrk);

    /* a row too large to ever be produced (a step from the error
       threshold), a good one of the same key behind it, a malformed one,
       then three good ones of other keys */
    (void) snprintf(sql, sizeof(sql), "ALTER TABLE %s.outbox ALTER COLUMN"
                    " source DROP NOT NULL", fx.schema);
    db_admin_exec(fx.admin, sql);
    res = enc_pg_exec_sql(pg, "INSERT INTO outbox (topic, key, type, source,"
                          " data, attempts) SELECT 'encore.t.relay', 'p',"
                          " 'encore.t.created', '/encore/t', d, a"
                          " FROM (VALUES (1, repeat('x', 1100000), 9),"
                          " (2, '{}', 0)) AS v(o, d, a) ORDER BY o"
                          " RETURNING id", 0, NULL);
    assert_non_null(res);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    (void) snprintf(want, sizeof(want), "outbox row %s failed 10 deliveries",
                    PQgetvalue(res, 0, 0));
    PQclear(res);
    res = enc_pg_exec_sql(pg, "INSERT INTO outbox (topic, type, source, data)"
                          " VALUES ('encore.t.relay', 'encore.t.created',"
                          " NULL, '{}')", 0, NULL);
    assert_non_null(res);
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    add_events(pg, 1, 3);

    logfd = open("/tmp", O_TMPFILE | O_RDWR, 0600);
    assert_true(logfd >= 0);
    enc_log_set_fd(logfd);

    assert_int_equal(enc_relay_start(fx.conf), 0);
    left = 6;
    for (i = 0; i < 100 && (left = backlog(pg)) > 3; i++) {
        usleep(50 * 1000);
    }
    assert_int_equal(left, 3);

    /* the gauge settles on the three rows that stay */
    for (i = 0; i < 60 && backlog_gauge() != 3; i++) {
        usleep(50 * 1000);
    }
    assert_int_equal(backlog_gauge(), 3);
    /* and the age of the oldest of them, which only grows while it
       stays (the relay looks at most once a second) */
    age = gauge("encore_outbox_oldest_age_seconds");
    assert_true(age > 0);
    for (i = 0; i < 100 && gauge("encore_outbox_oldest_age_seconds") <= age;
         i++)
    {
        usleep(50 * 1000);
    }
    assert_true(gauge("encore_outbox_oldest_age_seconds") > age);
    enc_relay_stop();

    assert_true(file_contains(logfd, want));
    assert_true(file_contains(logfd, "is malformed"));
    enc_log_set_fd(open("/dev/null", O_WRONLY));
    close(logfd);

    /* kept, never dropped, and every failure counted; the row behind the
       poison one, of the same key, was held back and never tried */
    res = enc_pg_exec_sql(pg, "SELECT count(*) FROM outbox WHERE"
                          " published_at IS NULL AND attempts > 0", 0, NULL);
    assert_non_null(res);
    assert_string_equal(PQgetvalue(res, 0, 0), "2");
    PQclear(res);
    res = enc_pg_exec_sql(pg, "SELECT attempts FROM outbox WHERE key = 'p'"
                          " AND data = '{}' AND published_at IS NULL",
                          0, NULL);
    assert_non_null(res);
    assert_int_equal(PQntuples(res), 1);
    assert_string_equal(PQgetvalue(res, 0, 0), "0");
    PQclear(res);

    relay_fixture_fini(&fx, pg, mrk);
}


/* The relay deletes published rows past outbox.retain_hours, and only
   those: recent published rows and the backlog stay. */
static void
test_relay_prunes_published_db(void **state)
{
    int            i, left;
    enc_pg_t      *pg;
    PGresult      *res;
    rd_kafka_t    *mrk;
    db_fixture_t   fx;

    if (db_fixture_skip()) {
        skip();
    }

    pg = relay_fixture_init(&fx, "test_outbox_prune", "outbox.retain_hours",
                            "24", &mrk);

    /* three published two days ago, two published an hour ago */
    add_events(pg, 1, 5);
    res = enc_pg_exec_sql(pg, "UPDATE outbox SET published_at = now() -"
                          " CASE WHEN key IN ('k1', 'k2', 'k3')"
                          " THEN interval '48 hours' ELSE interval '1 hour'"
                          " END", 0, NULL);
    assert_non_null(res);
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);

    assert_int_equal(enc_relay_start(fx.conf), 0);
    for (i = 0, left = 5; i < 100 && left > 2; i++) {
        usleep(50 * 1000);
        res = enc_pg_exec_sql(pg, "SELECT count(*) FROM outbox", 0, NULL);
        assert_non_null(res);
        left = atoi(PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    enc_relay_stop();
    assert_int_equal(left, 2);

    res = enc_pg_exec_sql(pg, "SELECT string_agg(key, ',' ORDER BY key)"
                          " FROM outbox", 0, NULL);
    assert_non_null(res);
    assert_string_equal(PQgetvalue(res, 0, 0), "k4,k5");
    PQclear(res);

    relay_fixture_fini(&fx, pg, mrk);
}


/* Stopping the relay while Kafka is down does not wait out the 30 s
   message timeout of the batch in flight: the rows are given up at once
   and stay in the backlog. */
static void
test_relay_stops_promptly_with_kafka_down_db(void **state)
{
    long                      el;
    enc_pg_t                 *pg;
    rd_kafka_t               *mrk;
    db_fixture_t              fx;
    struct timespec           t0, t1;
    rd_kafka_mock_cluster_t  *mc;

    if (db_fixture_skip()) {
        skip();
    }

    pg = relay_fixture_init(&fx, "test_outbox_stop", NULL, NULL, &mrk);
    mc = rd_kafka_handle_mock_cluster(mrk);
    add_events(pg, 1, 2);

    assert_int_equal(rd_kafka_mock_broker_set_down(mc, 1), 0);
    assert_int_equal(enc_relay_start(fx.conf), 0);
    usleep(1500 * 1000);            /* the batch is in flight by now */

    (void) clock_gettime(CLOCK_MONOTONIC, &t0);
    enc_relay_stop();
    (void) clock_gettime(CLOCK_MONOTONIC, &t1);
    el = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;

    /* not the 30 s message timeout (plus 10 s grace) */
    assert_true(el < 15000);
    assert_int_equal(backlog(pg), 2);

    assert_int_equal(rd_kafka_mock_broker_set_up(mc, 1), 0);
    relay_fixture_fini(&fx, pg, mrk);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_row_from_result),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_id_array),
        cmocka_unit_test(test_publish_mock),
        cmocka_unit_test(test_publish_failure_then_retry),
        cmocka_unit_test(test_publish_refused_holds_its_key),
        cmocka_unit_test(test_publish_broker_error),
        cmocka_unit_test(test_publish_fatal),
        cmocka_unit_test(test_relay_db),
        cmocka_unit_test(test_relay_poison_db),
        cmocka_unit_test(test_relay_prunes_published_db),
        cmocka_unit_test(test_relay_stops_promptly_with_kafka_down_db),
    };

    /* the failure tests log on purpose; keep the output readable */
    enc_log_init("test", ENC_LOG_DEBUG);
    if (getenv("TEST_VERBOSE") == NULL) {
        enc_log_set_fd(open("/dev/null", O_WRONLY));
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
