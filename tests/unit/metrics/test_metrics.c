/*
 * Unit tests of the metrics module's core (ngx_modules/metrics/
 * encore_metrics.c): histogram bucketing, label escaping, the series
 * table (lookup, insert, the "other" series on overflow, reattaching
 * after a reload, several processes at once) and the exposition text.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "../../../ngx_modules/metrics/encore_metrics.h"


#define S(s)  { s, sizeof(s) - 1 }


typedef struct {
    encore_metrics_t  m;
    void             *mem;
    size_t            size;
} table_t;


static int  locks;


static void
count_lock(void *data)
{
    (void) data;
    locks++;
}


static void
count_unlock(void *data)
{
    (void) data;
}


static void
table_new(table_t *t, uint32_t max_series)
{
    t->size = encore_metrics_size(max_series);
    assert_true(t->size > 0);
    t->mem = aligned_alloc(8, (t->size + 7) & ~(size_t) 7);
    assert_non_null(t->mem);
    memset(&t->m, 0, sizeof(t->m));
    t->m.lock = count_lock;
    t->m.unlock = count_unlock;
    assert_int_equal(encore_metrics_init(&t->m, t->mem, t->size, max_series),
                     0);
}


/* the whole exposition, NUL-terminated; free() it */
static char *
render(encore_metrics_t *m)
{
    char    *buf;
    size_t   len;

    len = encore_metrics_render(m, NULL, 0, 1048576);
    buf = malloc(len + 1);
    assert_non_null(buf);
    assert_int_equal(encore_metrics_render(m, buf, len + 1, 1048576), len);
    buf[len] = '\0';

    return buf;
}


static void
assert_line(const char *text, const char *line)
{
    char        *want;
    const char  *p;
    size_t       n;

    n = strlen(line);
    want = malloc(n + 3);
    assert_non_null(want);
    snprintf(want, n + 3, "\n%s\n", line);

    p = strstr(text, want);

    if (p == NULL) {
        fail_msg("line not found: %s\n----\n%s", line, text);
    }

    free(want);
}


static void
test_bucket_bounds(void **state)
{
    (void) state;

    assert_int_equal(encore_metrics_bucket(0), 0);
    assert_int_equal(encore_metrics_bucket(1000), 0);          /* le 0.001 */
    assert_int_equal(encore_metrics_bucket(1001), 1);
    assert_int_equal(encore_metrics_bucket(2500), 1);
    assert_int_equal(encore_metrics_bucket(5000), 2);
    assert_int_equal(encore_metrics_bucket(999999), 9);
    assert_int_equal(encore_metrics_bucket(1000000), 9);       /* le 1 */
    assert_int_equal(encore_metrics_bucket(10000000), 12);     /* le 10 */
    assert_int_equal(encore_metrics_bucket(10000001),
                     ENCORE_METRICS_NBUCKETS);                 /* +Inf */
    assert_int_equal(encore_metrics_bucket(UINT64_MAX),
                     ENCORE_METRICS_NBUCKETS);

    assert_string_equal(encore_metrics_bucket_le(0), "0.001");
    assert_string_equal(encore_metrics_bucket_le(9), "1");
    assert_string_equal(encore_metrics_bucket_le(ENCORE_METRICS_NBUCKETS),
                        "+Inf");
    assert_null(encore_metrics_bucket_le(ENCORE_METRICS_NBUCKETS + 1));
}


static void
test_escape(void **state)
{
    char    out[64];
    size_t  n;

    (void) state;

    n = encore_metrics_escape(out, "a\"b\\c\nd", 7);
    assert_int_equal(n, 10);
    assert_memory_equal(out, "a\\\"b\\\\c\\nd", 10);

    n = encore_metrics_escape(out, "plain_route", 11);
    assert_int_equal(n, 11);
    assert_memory_equal(out, "plain_route", 11);

    assert_int_equal(encore_metrics_escape(out, "", 0), 0);
}


static void
test_sizes(void **state)
{
    size_t    s;
    uint32_t  n;

    (void) state;

    /* below one series per family plus one: refused */
    assert_int_equal(encore_metrics_size(0), 0);
    assert_int_equal(encore_metrics_size(ENCORE_METRICS_NFAMILIES), 0);
    assert_true(encore_metrics_size(ENCORE_METRICS_NFAMILIES + 1) > 0);
    assert_int_equal(encore_metrics_size((1u << 24) + 1), 0);

    for (s = 4096; s <= 4 * 1048576; s = s * 3 / 2) {
        n = encore_metrics_max_series(s);

        if (n == 0) {
            assert_true(encore_metrics_size(ENCORE_METRICS_NFAMILIES + 1) > s);
            continue;
        }

        assert_true(encore_metrics_size(n) <= s);
        assert_true(encore_metrics_size(n + 1) > s);
    }

    assert_int_equal(encore_metrics_max_series(100), 0);
}


static void
test_counter_and_exposition(void **state)
{
    char                     *text;
    table_t                   t;
    encore_metrics_series_t  *a, *b;
    encore_metrics_str_t      l1[] = { S("posts_list"), S("GET"), S("2xx") };
    encore_metrics_str_t      l2[] = { S("posts_list"), S("GET"), S("4xx") };
    encore_metrics_str_t      q[] = { S("odd \"route\"\\\n") };

    (void) state;

    table_new(&t, 64);

    locks = 0;
    a = encore_metrics_get(&t.m, ENCORE_METRICS_HTTP_REQUESTS, l1);
    assert_int_equal(locks, 1);

    /* found again without the lock */
    assert_ptr_equal(encore_metrics_get(&t.m, ENCORE_METRICS_HTTP_REQUESTS,
                                        l1), a);
    assert_int_equal(locks, 1);

    b = encore_metrics_get(&t.m, ENCORE_METRICS_HTTP_REQUESTS, l2);
    assert_ptr_not_equal(a, b);

    /* the same label values in another family are another series */
    assert_ptr_not_equal(encore_metrics_get(&t.m,
                                            ENCORE_METRICS_HTTP_DURATION, l1),
                         a);

    encore_metrics_inc(a, 3);
    encore_metrics_inc(a, 2);
    encore_metrics_inc(b, 1);
    encore_metrics_inc(encore_metrics_get(&t.m,
                                          ENCORE_METRICS_JWT_VERIFICATIONS,
                                          q),
                       7);

    text = render(&t.m);

    assert_line(text, "# TYPE encore_http_requests_total counter");
    assert_line(text, "encore_http_requests_total{route=\"posts_list\","
                      "method=\"GET\",status=\"2xx\"} 5");
    assert_line(text, "encore_http_requests_total{route=\"posts_list\","
                      "method=\"GET\",status=\"4xx\"} 1");
    assert_line(text, "encore_jwt_verifications_total{outcome="
                      "\"odd \\\"route\\\"\\\\\\n\"} 7");
    assert_line(text, "encore_metrics_series_max 64");
    assert_line(text, "encore_metrics_series_overflow_total 0");
    assert_line(text, "encore_metrics_zone_size_bytes 1048576");
    /* the families' own "other" series are not shown while zero */
    assert_null(strstr(text, "=\"other\""));
    /* HELP precedes TYPE precedes samples, once per family */
    assert_true(strstr(text, "# HELP encore_http_requests_total ")
                < strstr(text, "# TYPE encore_http_requests_total "));
    assert_null(strstr(strstr(text, "# TYPE encore_http_requests_total ")
                       + 1, "# TYPE encore_http_requests_total "));
    assert_int_equal(text[strlen(text) - 1], '\n');

    free(text);
    free(t.mem);
}


static void
test_histogram(void **state)
{
    char                     *text;
    table_t                   t;
    encore_metrics_series_t  *h;
    encore_metrics_str_t      l[] = { S("encore_auth") };

    (void) state;

    table_new(&t, 32);

    h = encore_metrics_get(&t.m, ENCORE_METRICS_UPSTREAM_DURATION, l);

    encore_metrics_observe(h, 0);              /* le 0.001 */
    encore_metrics_observe(h, 1000);           /* le 0.001 */
    encore_metrics_observe(h, 30000);          /* le 0.05 */
    encore_metrics_observe(h, 12345678);       /* +Inf only */

    text = render(&t.m);

    assert_line(text, "# TYPE encore_upstream_response_duration_seconds "
                      "histogram");
    assert_line(text, "encore_upstream_response_duration_seconds_bucket"
                      "{upstream=\"encore_auth\",le=\"0.001\"} 2");
    assert_line(text, "encore_upstream_response_duration_seconds_bucket"
                      "{upstream=\"encore_auth\",le=\"0.025\"} 2");
    assert_line(text, "encore_upstream_response_duration_seconds_bucket"
                      "{upstream=\"encore_auth\",le=\"0.05\"} 3");
    assert_line(text, "encore_upstream_response_duration_seconds_bucket"
                      "{upstream=\"encore_auth\",le=\"10\"} 3");
    assert_line(text, "encore_upstream_response_duration_seconds_bucket"
                      "{upstream=\"encore_auth\",le=\"+Inf\"} 4");
    assert_line(text, "encore_upstream_response_duration_seconds_sum"
                      "{upstream=\"encore_auth\"} 12.376678");
    assert_line(text, "encore_upstream_response_duration_seconds_count"
                      "{upstream=\"encore_auth\"} 4");

    free(text);
    free(t.mem);
}


static void
test_overflow(void **state)
{
    char                     *text;
    table_t                   t;
    uint32_t                  max;
    encore_metrics_series_t  *a, *b, *o, *o2;
    encore_metrics_str_t      la[] = { S("a") };
    encore_metrics_str_t      lb[] = { S("b") };
    encore_metrics_str_t      lc[] = { S("c") };
    encore_metrics_str_t      lr[] = { S("r"), S("GET"), S("2xx") };
    char                      big[ENCORE_METRICS_VALUE_MAX + 1];
    encore_metrics_str_t      ll[] = { { big, sizeof(big) } };

    (void) state;

    /* room for the "other" series and two more */
    max = ENCORE_METRICS_NFAMILIES + 2;
    table_new(&t, max);

    a = encore_metrics_get(&t.m, ENCORE_METRICS_UPSTREAM_FAILURES, la);
    b = encore_metrics_get(&t.m, ENCORE_METRICS_UPSTREAM_FAILURES, lb);
    o = encore_metrics_get(&t.m, ENCORE_METRICS_UPSTREAM_FAILURES, lc);
    o2 = encore_metrics_get(&t.m, ENCORE_METRICS_HTTP_REQUESTS, lr);

    assert_ptr_not_equal(a, b);
    assert_ptr_not_equal(o, a);
    assert_ptr_not_equal(o, b);
    assert_ptr_not_equal(o, o2);
    assert_int_equal(o->other, 1);
    assert_int_equal(o2->other, 1);

    /* existing series still work when full */
    assert_ptr_equal(encore_metrics_get(&t.m,
                                        ENCORE_METRICS_UPSTREAM_FAILURES, la),
                     a);

    /* a label value too long for a series goes to "other" as well */
    memset(big, 'x', sizeof(big));
    assert_ptr_equal(encore_metrics_get(&t.m,
                                        ENCORE_METRICS_UPSTREAM_FAILURES, ll),
                     o);

    encore_metrics_inc(a, 1);
    encore_metrics_inc(o, 4);
    encore_metrics_inc(o2, 1);

    text = render(&t.m);

    assert_line(text, "encore_upstream_failures_total{upstream=\"a\"} 1");
    assert_line(text, "encore_upstream_failures_total{upstream=\"other\"} 4");
    assert_line(text, "encore_http_requests_total{route=\"other\","
                      "method=\"other\",status=\"other\"} 1");
    assert_line(text, "encore_metrics_series_overflow_total 3");
    assert_null(strstr(text, "upstream=\"c\""));

    free(text);
    free(t.mem);
}


static void
test_attach(void **state)
{
    char                     *text;
    table_t                   t;
    encore_metrics_t          again;
    encore_metrics_series_t  *s;
    encore_metrics_str_t      l[] = { S("valid") };

    (void) state;

    table_new(&t, 40);

    s = encore_metrics_get(&t.m, ENCORE_METRICS_JWT_VERIFICATIONS, l);
    encore_metrics_inc(s, 9);

    /* a reload: a new handle on the same memory keeps the counts */
    memset(&again, 0, sizeof(again));
    assert_int_equal(encore_metrics_attach(&again, t.mem, 40), 0);
    assert_ptr_equal(encore_metrics_get(&again,
                                        ENCORE_METRICS_JWT_VERIFICATIONS, l),
                     s);

    memset(&again, 0, sizeof(again));
    assert_int_equal(encore_metrics_attach(&again, t.mem, 0), 0);

    text = render(&again);
    assert_line(text, "encore_jwt_verifications_total{outcome=\"valid\"} 9");
    free(text);

    /* another max_series, or memory never formatted: refused */
    assert_int_equal(encore_metrics_attach(&again, t.mem, 41), -1);
    memset(t.mem, 0xa5, 64);
    assert_int_equal(encore_metrics_attach(&again, t.mem, 40), -1);

    /* too small a block */
    assert_int_equal(encore_metrics_init(&again, t.mem, t.size - 1, 40), -1);

    free(t.mem);
}


static void
test_render_truncated(void **state)
{
    char                     *full, small[100];
    size_t                    len;
    table_t                   t;
    encore_metrics_str_t      l[] = { S("route"), S("POST"), S("5xx") };

    (void) state;

    table_new(&t, 16);
    encore_metrics_inc(encore_metrics_get(&t.m, ENCORE_METRICS_HTTP_REQUESTS,
                                          l),
                       1);

    full = render(&t.m);

    /* as snprintf: the length of the whole text, and a prefix of it */
    memset(small, 0, sizeof(small));
    len = encore_metrics_render(&t.m, small, sizeof(small) - 1, 1048576);
    assert_int_equal(len, strlen(full));
    assert_memory_equal(small, full, sizeof(small) - 1);

    free(full);
    free(t.mem);
}


static void
shm_lock(void *data)
{
    int  *l = data;

    while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE)) {
        /* spin */
    }
}


static void
shm_unlock(void *data)
{
    int  *l = data;

    __atomic_store_n(l, 0, __ATOMIC_RELEASE);
}


/* what nginx does: several processes add to one table in shared memory */
static void
test_processes(void **state)
{
    int                       i, j, st, *lock;
    char                      name[16], *text, line[128];
    void                     *mem;
    pid_t                     pid[4];
    size_t                    size;
    encore_metrics_t          m;
    encore_metrics_str_t      l[3];

    (void) state;

    size = encore_metrics_size(256);
    mem = mmap(NULL, size + 64, PROT_READ|PROT_WRITE,
               MAP_SHARED|MAP_ANONYMOUS, -1, 0);
    assert_true(mem != MAP_FAILED);

    lock = (int *) ((char *) mem + size);
    memset(&m, 0, sizeof(m));
    m.lock = shm_lock;
    m.unlock = shm_unlock;
    m.lock_data = lock;
    assert_int_equal(encore_metrics_init(&m, mem, size, 256), 0);

    for (i = 0; i < 4; i++) {
        pid[i] = fork();
        assert_true(pid[i] >= 0);

        if (pid[i] == 0) {
            for (j = 0; j < 20000; j++) {
                /* 50 routes, created by whichever process comes first */
                snprintf(name, sizeof(name), "r%d", j % 50);
                l[0].data = name;
                l[0].len = strlen(name);
                l[1].data = "GET";
                l[1].len = 3;
                l[2].data = "2xx";
                l[2].len = 3;
                encore_metrics_inc(encore_metrics_get(&m,
                                          ENCORE_METRICS_HTTP_REQUESTS, l),
                                   1);
                encore_metrics_observe(encore_metrics_get(&m,
                                          ENCORE_METRICS_HTTP_DURATION, l),
                                       (uint64_t) j);
            }

            _exit(0);
        }
    }

    for (i = 0; i < 4; i++) {
        assert_int_equal(waitpid(pid[i], &st, 0), pid[i]);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }

    text = render(&m);

    /* every route exactly once, with every process' counts */
    for (i = 0; i < 50; i++) {
        snprintf(line, sizeof(line), "encore_http_requests_total{route="
                 "\"r%d\",method=\"GET\",status=\"2xx\"} %d", i, 4 * 400);
        assert_line(text, line);
        snprintf(line, sizeof(line), "encore_http_request_duration_seconds_"
                 "count{route=\"r%d\"} %d", i, 4 * 400);
        assert_line(text, line);
    }

    assert_line(text, "encore_metrics_series 106");
    assert_line(text, "encore_metrics_series_overflow_total 0");

    free(text);
    munmap(mem, size + 64);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_bucket_bounds),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_counter_and_exposition),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_attach),
        cmocka_unit_test(test_render_truncated),
        cmocka_unit_test(test_processes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
