/*
 * metrics: exposition text, cumulative buckets, counters, concurrency,
 * bounded tables.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"


static char *
render(void)
{
    char    *buf = NULL;
    size_t   len = 0;
    FILE    *f = open_memstream(&buf, &len);

    assert_non_null(f);
    enc_metrics_render(f);
    fclose(f);
    return buf;
}


static void
test_http_histogram(void **state)
{
    char  *t;

    enc_metrics_reset();
    enc_metrics_init("auth");
    enc_metrics_http("users_get", 200, 0.003);
    enc_metrics_http("users_get", 404, 0.2);
    enc_metrics_http("users_get", 999, 0.2);       /* folded into 5xx */
    enc_metrics_http("bad name\n", 200, 0.1);      /* folded into invalid */
    t = render();
    assert_non_null(strstr(t, "encore_worker_info{worker=\"auth\"} 1\n"));
    assert_non_null(strstr(t, "encore_http_requests_total{route=\"users_get\","
                              "status=\"2xx\"} 1\n"));
    assert_non_null(strstr(t, "status=\"4xx\"} 1\n"));
    assert_non_null(strstr(t, "status=\"5xx\"} 1\n"));
    assert_non_null(strstr(t, "route=\"invalid\""));
    assert_non_null(strstr(t, "_bucket{route=\"users_get\",le=\"0.005\"} 1\n"));
    assert_non_null(strstr(t, "_bucket{route=\"users_get\",le=\"0.25\"} 3\n"));
    assert_non_null(strstr(t, "_bucket{route=\"users_get\",le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(t, "_count{route=\"users_get\"} 3\n"));
    assert_non_null(strstr(t, "# TYPE encore_http_request_duration_seconds "
                              "histogram\n"));
    free(t);
}


static void
test_counters(void **state)
{
    char    *t, name[32];
    int      i;

    enc_metrics_reset();
    enc_metrics_counter_add("encore_logins_total", "Logins.\nx", 1);
    enc_metrics_counter_add("encore_logins_total", "ignored", 2);
    enc_metrics_counter_add("9bad", "x", 1);
    enc_metrics_counter_add("bad-name", "x", 1);
    t = render();
    assert_non_null(strstr(t, "# HELP encore_logins_total Logins. x\n"));
    assert_non_null(strstr(t, "encore_logins_total 3\n"));
    assert_null(strstr(t, "9bad"));
    assert_null(strstr(t, "bad-name"));
    free(t);

    /* a full table drops, never grows */
    enc_log_init("test", ENC_LOG_ERROR + 1);
    for (i = 0; i < ENC_METRICS_COUNTERS_MAX + 10; i++) {
        snprintf(name, sizeof(name), "c_%d", i);
        enc_metrics_counter_add(name, "h", 1);
    }
    enc_log_init("test", ENC_LOG_INFO);
    t = render();
    assert_non_null(strstr(t, "\nc_0 1\n"));
    assert_null(strstr(t, "\nc_70 1\n"));
    free(t);
}


static void
test_gauges(void **state)
{
    char  *t;

    enc_metrics_reset();
    enc_metrics_gauge_set("encore_outbox_backlog", "Backlog.", 7);
    enc_metrics_gauge_set("encore_outbox_backlog", "ignored", 3);
    enc_metrics_counter_add("encore_logins_total", "Logins.", 2);
    t = render();
    assert_non_null(strstr(t, "# TYPE encore_outbox_backlog gauge\n"
                              "encore_outbox_backlog 3\n"));
    assert_non_null(strstr(t, "# TYPE encore_logins_total counter\n"));
    free(t);

    /* a gauge goes down to zero, not by deltas */
    enc_metrics_gauge_set("encore_outbox_backlog", "Backlog.", 0);
    t = render();
    assert_non_null(strstr(t, "\nencore_outbox_backlog 0\n"));
    free(t);
}


static void
test_observe(void **state)
{
    int    i;
    char  *t, name[32];

    enc_metrics_reset();
    enc_metrics_observe("encore_pg_statement_duration_seconds",
                        "Statement time.\nx", 0.002);
    enc_metrics_observe("encore_pg_statement_duration_seconds", "ignored",
                        0.3);
    enc_metrics_observe("encore_pg_statement_duration_seconds", "", 60);
    enc_metrics_observe("encore_pg_statement_duration_seconds", "", -1);
    enc_metrics_observe("bad name", "x", 1);
    t = render();
    assert_non_null(strstr(t,
        "# HELP encore_pg_statement_duration_seconds Statement time. x\n"
        "# TYPE encore_pg_statement_duration_seconds histogram\n"
        "encore_pg_statement_duration_seconds_bucket{le=\"0.001\"} 1\n"
        "encore_pg_statement_duration_seconds_bucket{le=\"0.0025\"} 2\n"));
    assert_non_null(strstr(t, "_bucket{le=\"0.25\"} 2\n"));
    assert_non_null(strstr(t, "_bucket{le=\"0.5\"} 3\n"));
    assert_non_null(strstr(t, "_bucket{le=\"10\"} 3\n"));
    assert_non_null(strstr(t, "encore_pg_statement_duration_seconds_bucket"
                              "{le=\"+Inf\"} 4\n"
                              "encore_pg_statement_duration_seconds_sum"
                              " 60.30"));
    assert_non_null(strstr(t, "encore_pg_statement_duration_seconds_count"
                              " 4\n"));
    assert_null(strstr(t, "bad name"));
    free(t);

    /* a name is one kind: a counter's name is no histogram, and back */
    enc_metrics_counter_add("encore_x_total", "x", 1);
    enc_metrics_observe("encore_x_total", "x", 1);
    enc_metrics_counter_add("encore_pg_statement_duration_seconds", "x", 1);
    t = render();
    assert_null(strstr(t, "encore_x_total_bucket"));
    assert_null(strstr(t, "\nencore_pg_statement_duration_seconds 1"));
    free(t);

    /* a full table drops, never grows */
    enc_log_init("test", ENC_LOG_ERROR + 1);
    for (i = 0; i < ENC_METRICS_HISTS_MAX + 2; i++) {
        snprintf(name, sizeof(name), "h_%d", i);
        enc_metrics_observe(name, "h", 1);
    }
    enc_log_init("test", ENC_LOG_INFO);
    t = render();
    assert_non_null(strstr(t, "\nh_0_count 1\n"));
    assert_null(strstr(t, "\nh_17_count"));
    free(t);
}


static void
test_labelled_gauges(void **state)
{
    int    i;
    char  *t, part[16];

    enc_metrics_reset();
    enc_metrics_gauge_set_labels("encore_consumer_lag", "Lag.\n",
        (const char *const[]) { "topic", "a.b", "partition", "0", NULL }, 5);
    enc_metrics_gauge_set_labels("encore_consumer_lag", "ignored",
        (const char *const[]) { "topic", "a.b", "partition", "1", NULL }, 2);
    enc_metrics_gauge_set_labels("encore_consumer_lag", "ignored",
        (const char *const[]) { "topic", "a.b", "partition", "0", NULL }, 4);
    /* escaped values; refused names and shapes */
    enc_metrics_gauge_set_labels("encore_odd", "Odd.",
        (const char *const[]) { "v", "q\"b\\n\nx", NULL }, 1);
    enc_metrics_gauge_set_labels("encore_bad", "x",
        (const char *const[]) { "bad-label", "1", NULL }, 1);
    enc_metrics_gauge_set_labels("encore_bad", "x",
        (const char *const[]) { "a:b", "1", NULL }, 1);
    enc_metrics_gauge_set_labels("encore_bad", "x",
        (const char *const[]) { "a", NULL }, 1);
    enc_metrics_gauge_set_labels("bad name", "x", NULL, 1);
    t = render();
    assert_non_null(strstr(t, "# HELP encore_consumer_lag Lag. \n"
                              "# TYPE encore_consumer_lag gauge\n"
                              "encore_consumer_lag{topic=\"a.b\","
                              "partition=\"0\"} 4\n"
                              "encore_consumer_lag{topic=\"a.b\","
                              "partition=\"1\"} 2\n"));
    assert_non_null(strstr(t, "encore_odd{v=\"q\\\"b\\\\n\\nx\"} 1\n"));
    assert_null(strstr(t, "encore_bad"));
    assert_null(strstr(t, "bad name"));
    free(t);

    /* a family cleared is gone, the others stay; it may come back */
    enc_metrics_gauge_clear("encore_consumer_lag");
    t = render();
    assert_null(strstr(t, "encore_consumer_lag"));
    assert_non_null(strstr(t, "encore_odd{"));
    free(t);
    enc_metrics_gauge_set_labels("encore_consumer_lag", "Lag.",
        (const char *const[]) { "topic", "c", "partition", "3", NULL }, 0);
    t = render();
    assert_non_null(strstr(t, "\nencore_consumer_lag{topic=\"c\","
                              "partition=\"3\"} 0\n"));
    assert_null(strstr(t, "partition=\"1\""));
    free(t);

    /* a full table drops, never grows */
    enc_metrics_reset();
    enc_log_init("test", ENC_LOG_ERROR + 1);
    for (i = 0; i < ENC_METRICS_SERIES_MAX + 10; i++) {
        snprintf(part, sizeof(part), "%d", i);
        enc_metrics_gauge_set_labels("g", "h",
            (const char *const[]) { "p", part, NULL }, 1);
    }
    enc_log_init("test", ENC_LOG_INFO);
    t = render();
    assert_non_null(strstr(t, "\ng{p=\"0\"} 1\n"));
    assert_null(strstr(t, "\ng{p=\"260\"} 1\n"));
    free(t);
}


static void
test_histograms(void **state)
{
    char                 *t;
    static const double   bounds[] = { 1, 10, 100 };
    static const double   unsorted[] = { 10, 1 };

    enc_metrics_reset();
    enc_metrics_histogram_observe("encore_batch", "Batch.", bounds, 3, 1);
    enc_metrics_histogram_observe("encore_batch", "Batch.", bounds, 3, 7);
    enc_metrics_histogram_observe("encore_batch", "Batch.", bounds, 3, 10);
    enc_metrics_histogram_observe("encore_batch", "Batch.", bounds, 3, 500);
    /* the bounds of the first observation are kept */
    enc_metrics_histogram_observe("encore_batch", "x", bounds, 1, 2);
    enc_metrics_histogram_observe("encore_unsorted", "x", unsorted, 2, 1);
    enc_metrics_histogram_observe("encore_many", "x", bounds,
                                  ENC_METRICS_BOUNDS_MAX + 1, 1);
    t = render();
    assert_non_null(strstr(t, "# TYPE encore_batch histogram\n"
                              "encore_batch_bucket{le=\"1\"} 1\n"
                              "encore_batch_bucket{le=\"10\"} 4\n"
                              "encore_batch_bucket{le=\"100\"} 4\n"
                              "encore_batch_bucket{le=\"+Inf\"} 5\n"
                              "encore_batch_sum 520\n"
                              "encore_batch_count 5\n"));
    assert_null(strstr(t, "encore_unsorted"));
    assert_null(strstr(t, "encore_many"));
    free(t);
}


static void *
hammer(void *arg)
{
    int  i;

    for (i = 0; i < 10000; i++) {
        enc_metrics_http("r", 200, 0.001);
        enc_metrics_counter_add("n_total", "n", 1);
        enc_metrics_observe("h_seconds", "h", 0.001);
    }
    return NULL;
}


static void
test_threads(void **state)
{
    int        i;
    char      *t;
    pthread_t  th[4];

    enc_metrics_reset();
    for (i = 0; i < 4; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, hammer, NULL), 0);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
    }
    t = render();
    assert_non_null(strstr(t, "route=\"r\",status=\"2xx\"} 40000\n"));
    assert_non_null(strstr(t, "n_total 40000\n"));
    assert_non_null(strstr(t, "h_seconds_count 40000\n"));
    free(t);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_http_histogram),
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_gauges),
        cmocka_unit_test(test_labelled_gauges),
        cmocka_unit_test(test_observe),
        cmocka_unit_test(test_histograms),
        cmocka_unit_test(test_threads),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
