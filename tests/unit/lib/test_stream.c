/*
 * stream: deferred and streamed answers end to end, a real libmicrohttpd
 * server on a unix socket and raw client sockets (which show what libcurl
 * hides: when bytes arrive, the chunked framing, a client that stops
 * reading or leaves).  The test's main thread (or one it starts) is the
 * producer; the handler only defers and hands the handle over.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "metrics.h"
#include "raw_http.h"
#include "stream.h"


#define SLOTS_MAX  512
#define WAIT_MS    10000        /* a bound for a failing test, not a
                                   measure */

typedef struct {
    enc_defer_t  *d;
    atomic_int    cancels;
} slot_t;

static char             sock[108];
static slot_t           slots[SLOTS_MAX];
static atomic_int       nslots;
static pthread_mutex_t  mb_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t   mb_cond = PTHREAD_COND_INITIALIZER;
static int              mb_next;       /* slots handed to the test */
static atomic_int       refused;       /* enc_resp_defer said NULL */


static void
on_cancel(void *arg)
{
    slot_t  *s = arg;

    atomic_fetch_add(&s->cancels, 1);
}


static void
h_defer(enc_req_t *r, enc_resp_t *w, void *app)
{
    int           i;
    enc_defer_t  *d;

    d = enc_resp_defer(r, w);
    if (d == NULL) {
        atomic_fetch_add(&refused, 1);
        enc_resp_problem(w, 503, NULL, "cannot defer");
        return;
    }
    i = atomic_fetch_add(&nslots, 1);
    assert_true(i < SLOTS_MAX);
    atomic_store(&slots[i].cancels, 0);
    enc_defer_on_cancel(d, on_cancel, &slots[i]);
    pthread_mutex_lock(&mb_lock);
    slots[i].d = d;
    pthread_cond_broadcast(&mb_cond);
    pthread_mutex_unlock(&mb_lock);
}


static const enc_route_t  routes[] = {
    { "GET", "/defer", h_defer, 0, "defer" },
    { NULL, NULL, NULL, 0, NULL }
};


/* the next handle a handler deferred, in arrival order */
static slot_t *
take(void)
{
    slot_t           *s = NULL;
    struct timespec   until;

    (void) clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&mb_lock);
    while (mb_next >= SLOTS_MAX || slots[mb_next].d == NULL) {
        if (pthread_cond_timedwait(&mb_cond, &mb_lock, &until) != 0) {
            break;
        }
    }
    if (mb_next < SLOTS_MAX && slots[mb_next].d != NULL) {
        s = &slots[mb_next++];
    }
    pthread_mutex_unlock(&mb_lock);
    assert_non_null(s);
    return s;
}


static enc_config_t  *cfg;
static enc_http_t    *cur;          /* left running by a failed test */


static const char  *log_requests = "false";


static enc_http_t *
start(const char *threads, const char *stream_buffer)
{
    char                   err[256], listen[160];
    enc_http_t            *h;
    const enc_conf_key_t  *tables[] = { enc_runtime_conf_keys, NULL };

    if (cur != NULL) {
        enc_http_stop(cur);
        enc_config_free(cfg);
        cur = NULL;
    }
    enc_log_init("test", ENC_LOG_ERROR + 1);
    enc_metrics_reset();
    memset(slots, 0, sizeof(slots));
    atomic_store(&nslots, 0);
    atomic_store(&refused, 0);
    mb_next = 0;
    snprintf(sock, sizeof(sock), "/tmp/enc-test-stream-%d.sock",
             (int) getpid());
    snprintf(listen, sizeof(listen), "unix:%s", sock);
    cfg = enc_config_new(tables);
    assert_non_null(cfg);
    assert_int_equal(enc_config_load(cfg, NULL, err, sizeof(err)), 0);
    assert_int_equal(enc_config_set(cfg, "http.listen", listen, err,
                                    sizeof(err)), 0);
    assert_int_equal(enc_config_set(cfg, "http.threads", threads, err,
                                    sizeof(err)), 0);
    assert_int_equal(enc_config_set(cfg, "http.socket_group", "", err,
                                    sizeof(err)), 0);
    assert_int_equal(enc_config_set(cfg, "http.stream_buffer",
                                    stream_buffer, err, sizeof(err)), 0);
    assert_int_equal(enc_config_set(cfg, "drain.idle_close_ms", "100", err,
                                    sizeof(err)), 0);
    assert_int_equal(enc_config_set(cfg, "log.requests", log_requests, err,
                                    sizeof(err)), 0);
    h = enc_http_start(cfg, routes, NULL);
    assert_non_null(h);
    cur = h;
    return h;
}


static void
stop(enc_http_t *h)
{
    enc_http_stop(h);
    enc_config_free(cfg);
    cfg = NULL;
    cur = NULL;
}


/* ---- a client that reads what has arrived -------------------------------- */

typedef struct {
    int      fd;
    char    *buf;
    size_t   len;
    size_t   cap;
    int      eof;
} cli_t;


static void
cli_open(cli_t *c)
{
    memset(c, 0, sizeof(*c));
    c->fd = raw_connect(sock);
    assert_true(c->fd >= 0);
    c->cap = 4096;
    c->buf = malloc(c->cap);
    assert_non_null(c->buf);
    c->buf[0] = '\0';
    assert_int_equal(raw_send_get(c->fd, "/defer"), 0);
}


static void
cli_close(cli_t *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    free(c->buf);
    c->buf = NULL;
}


/* reads what is there within ms; -2 on timeout with nothing */
static ssize_t
cli_read(cli_t *c, long ms)
{
    ssize_t  n;

    if (c->len + 1024 > c->cap) {
        c->cap *= 2;
        c->buf = realloc(c->buf, c->cap);
        assert_non_null(c->buf);
    }
    n = raw_read(c->fd, c->buf + c->len, c->cap - c->len, ms);
    if (n > 0) {
        c->len += (size_t) n;
        c->buf[c->len] = '\0';
    } else if (n == 0 || (n == -1 && errno == ECONNRESET)) {
        c->eof = 1;
    }
    return n;
}


/* 1 once needle has arrived, 0 if not within WAIT_MS or at EOF */
static int
cli_wait(cli_t *c, const char *needle)
{
    struct timespec  t0;

    (void) clock_gettime(CLOCK_MONOTONIC, &t0);
    while (strstr(c->buf, needle) == NULL) {
        if (c->eof || raw_ms_since(&t0) >= WAIT_MS) {
            return 0;
        }
        (void) cli_read(c, WAIT_MS - raw_ms_since(&t0));
    }
    return 1;
}


/* the chunked body after the headers, decoded into out; 1 if complete
   (the last chunk seen) */
static int
dechunk(const char *raw, char *out, size_t cap)
{
    char          *end;
    size_t         n, o = 0;
    const char    *p = strstr(raw, "\r\n\r\n");

    if (p == NULL) {
        return 0;
    }
    p += 4;
    for ( ;; ) {
        n = strtoul(p, &end, 16);
        if (end == p || strncmp(end, "\r\n", 2) != 0) {
            return 0;
        }
        p = end + 2;
        if (n == 0) {
            out[o] = '\0';
            return strncmp(p, "\r\n", 2) == 0;
        }
        if (strlen(p) < n + 2 || o + n >= cap) {
            return 0;
        }
        memcpy(out + o, p, n);
        o += n;
        p += n + 2;
    }
}


static int
wait_cancels(slot_t *s, int n)
{
    int  i;

    for (i = 0; i < WAIT_MS / 10 && atomic_load(&s->cancels) < n; i++) {
        usleep(10 * 1000);
    }
    return atomic_load(&s->cancels);
}


static char *
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


static int
metrics_have(const char *line)
{
    char  *m = metrics_text();
    int    found = strstr(m, line) != NULL;

    free(m);
    return found;
}


static int
wait_metric(const char *line)
{
    int  i;

    for (i = 0; i < WAIT_MS / 10 && !metrics_have(line); i++) {
        usleep(10 * 1000);
    }
    return metrics_have(line);
}


/* ---- a buffered answer, later, from another thread ---------------------- */

static void *
answer_json(void *arg)
{
    enc_defer_t  *d = arg;

    enc_defer_header(d, "X-Answer", "later");
    enc_defer_json(d, 201, json_pack("{s:i}", "answer", 42));
    return NULL;
}


static void
test_deferred_json(void **state)
{
    int          fd;
    char         buf[4096];
    slot_t      *s;
    pthread_t    t;
    enc_http_t  *h;
    const char  *id;

    h = start("2", "262144");
    fd = raw_connect(sock);
    assert_true(fd >= 0);
    assert_int_equal(raw_send_get(fd, "/defer"), 0);
    s = take();
    id = enc_defer_request_id(s->d);
    assert_non_null(id);
    assert_true(strlen(id) > 0);
    assert_true(wait_metric("encore_http_streams_open 1\n"));
    /* no handler thread waits: the request is not answered and the
       other thread is free (/healthz on a second connection) */
    {
        int  fd2 = raw_connect(sock);

        assert_int_equal(raw_send_get(fd2, "/healthz"), 0);
        assert_int_equal(raw_response(fd2, buf, sizeof(buf), WAIT_MS), 200);
        close(fd2);
    }
    assert_int_equal(pthread_create(&t, NULL, answer_json, s->d), 0);
    assert_int_equal(pthread_join(t, NULL), 0);

    assert_int_equal(raw_response(fd, buf, sizeof(buf), WAIT_MS), 201);
    assert_non_null(strcasestr(buf, "\r\nX-Answer: later\r\n"));
    assert_non_null(strcasestr(buf, "\r\nContent-Type: application/json"));
    assert_non_null(strcasestr(buf, "\r\nX-Request-Id: "));
    assert_non_null(strstr(buf, "{\"answer\":42}"));
    /* counted when answered, and the connection is kept alive */
    assert_true(wait_metric("encore_http_requests_total{route=\"defer\","
                            "status=\"2xx\"} 1\n"));
    assert_int_equal(raw_send_get(fd, "/healthz"), 0);
    assert_int_equal(raw_response(fd, buf, sizeof(buf), WAIT_MS), 200);
    assert_true(wait_metric("encore_http_streams_open 0\n"));
    assert_int_equal(atomic_load(&s->cancels), 0);

    close(fd);
    stop(h);
}


/* ---- a stream: pieces in order, each before the next is written -------- */

static void
test_stream_incremental_in_order(void **state)
{
    int          i;
    char         piece[64], expect[8192], body[8192];
    cli_t        c;
    slot_t      *s;
    enc_http_t  *h;

    h = start("2", "262144");
    cli_open(&c);
    s = take();
    assert_int_equal(enc_defer_stream_begin(s->d, 200, "text/event-stream"),
                     0);
    expect[0] = '\0';
    for (i = 0; i < 100; i++) {
        snprintf(piece, sizeof(piece), "data: piece-%03d\n\n", i);
        strcat(expect, piece);
        assert_int_equal(enc_defer_write(s->d, piece, strlen(piece)), 0);
        /* it arrives while the producer still holds the rest */
        snprintf(piece, sizeof(piece), "piece-%03d", i);
        assert_true(cli_wait(&c, piece));
    }
    enc_defer_end(s->d);
    assert_true(cli_wait(&c, "\r\n0\r\n\r\n"));
    assert_int_equal(strncmp(c.buf, "HTTP/1.1 200 ", 13), 0);
    assert_non_null(strcasestr(c.buf, "\r\nContent-Type: text/event-stream"));
    assert_non_null(strcasestr(c.buf, "\r\nTransfer-Encoding: chunked\r\n"));
    assert_non_null(strcasestr(c.buf, "\r\nX-Accel-Buffering: no\r\n"));
    assert_null(strcasestr(c.buf, "\r\nContent-Length:"));
    assert_true(dechunk(c.buf, body, sizeof(body)));
    assert_string_equal(body, expect);
    assert_int_equal(atomic_load(&s->cancels), 0);
    assert_true(wait_metric("encore_http_requests_total{route=\"defer\","
                            "status=\"2xx\"} 1\n"));

    /* the connection serves the next request */
    c.len = 0;
    c.buf[0] = '\0';
    assert_int_equal(raw_send_get(c.fd, "/healthz"), 0);
    assert_true(cli_wait(&c, "\"ok\""));
    cli_close(&c);
    stop(h);
}


/* ---- the status line waits for the first byte ---------------------------- */

static void
test_headers_wait_for_first_byte(void **state)
{
    char         body[256];
    cli_t        c;
    slot_t      *s;
    enc_http_t  *h;

    h = start("2", "262144");
    cli_open(&c);
    s = take();
    enc_defer_header(s->d, "Cache-Control", "no-cache");
    assert_int_equal(enc_defer_stream_begin(s->d, 200, "text/event-stream"),
                     0);
    /* too late for a header, and a second begin is refused */
    enc_defer_header(s->d, "X-Late", "1");
    assert_int_equal(enc_defer_stream_begin(s->d, 201, "text/plain"), -1);
    /* nothing on the wire yet */
    assert_int_equal(cli_read(&c, 300), -2);
    assert_int_equal(c.len, 0);

    assert_int_equal(enc_defer_write(s->d, "first", 5), 0);
    assert_true(cli_wait(&c, "first"));
    assert_int_equal(strncmp(c.buf, "HTTP/1.1 200 ", 13), 0);
    assert_non_null(strcasestr(c.buf, "\r\nCache-Control: no-cache\r\n"));
    assert_null(strcasestr(c.buf, "X-Late"));
    enc_defer_end(s->d);
    assert_true(cli_wait(&c, "\r\n0\r\n\r\n"));
    assert_true(dechunk(c.buf, body, sizeof(body)));
    assert_string_equal(body, "first");

    /* a stream ended before its first byte: headers and an empty body */
    cli_close(&c);
    cli_open(&c);
    s = take();
    assert_int_equal(enc_defer_stream_begin(s->d, 200, "text/event-stream"),
                     0);
    enc_defer_end(s->d);
    assert_true(cli_wait(&c, "\r\n0\r\n\r\n"));
    assert_int_equal(strncmp(c.buf, "HTTP/1.1 200 ", 13), 0);
    cli_close(&c);
    stop(h);
}


/* ---- a problem before the first byte, with the producer's status -------- */

static void
test_problem_before_first_byte(void **state)
{
    int          fd;
    char         buf[4096];
    slot_t      *s;
    enc_http_t  *h;

    h = start("2", "262144");
    fd = raw_connect(sock);
    assert_int_equal(raw_send_get(fd, "/defer"), 0);
    s = take();
    enc_defer_header(s->d, "Retry-After", "7");
    enc_defer_header(s->d, "X-Bad", "a\r\nInjected: 1");
    enc_defer_problem(s->d, 503, NULL, "the model is busy");
    assert_int_equal(raw_response(fd, buf, sizeof(buf), WAIT_MS), 503);
    assert_non_null(strcasestr(buf, "\r\nRetry-After: 7\r\n"));
    assert_non_null(strcasestr(buf,
                               "\r\nContent-Type: application/problem+json"));
    assert_null(strcasestr(buf, "Injected"));
    assert_non_null(strstr(buf, "\"status\":503"));
    assert_non_null(strstr(buf, "the model is busy"));
    assert_true(wait_metric("encore_http_requests_total{route=\"defer\","
                            "status=\"5xx\"} 1\n"));
    close(fd);
    stop(h);
}


/* ---- the client leaves: on_cancel once, writes fail ---------------------- */

static void
test_client_leaves(void **state)
{
    int          i, rc;
    cli_t        c;
    slot_t      *s;
    enc_http_t  *h;

    h = start("2", "262144");

    /* while the producer has sent nothing (the connection suspended:
       libmicrohttpd does not look at it) */
    cli_open(&c);
    s = take();
    cli_close(&c);
    assert_int_equal(wait_cancels(s, 1), 1);
    assert_int_equal(enc_defer_cancelled(s->d), 1);
    assert_int_equal(enc_defer_stream_begin(s->d, 200, "text/plain"), -1);
    assert_int_equal(enc_defer_write(s->d, "x", 1), -1);
    enc_defer_end(s->d);
    assert_int_equal(atomic_load(&s->cancels), 1);

    /* in the middle of a stream */
    cli_open(&c);
    s = take();
    assert_int_equal(enc_defer_stream_begin(s->d, 200, "text/plain"), 0);
    assert_int_equal(enc_defer_write(s->d, "one;", 4), 0);
    assert_true(cli_wait(&c, "one;"));
    cli_close(&c);
    assert_int_equal(wait_cancels(s, 1), 1);
    rc = 0;
    for (i = 0; i < 3 && rc == 0; i++) {
        rc = enc_defer_write(s->d, "more;", 5);
    }
    assert_int_equal(rc, -1);
    enc_defer_end(s->d);
    assert_int_equal(atomic_load(&s->cancels), 1);

    /* after the terminal call nothing is cancelled any more */
    cli_open(&c);
    s = take();
    enc_defer_json(s->d, 200, json_pack("{s:b}", "ok", 1));
    cli_close(&c);
    assert_true(wait_metric("encore_http_streams_open 0\n"));
    assert_int_equal(atomic_load(&s->cancels), 0);
    stop(h);
}


/* ---- a client that does not read: cancelled past stream_buffer ---------- */

static void
test_slow_reader_cancelled(void **state)
{
    int          i, rc = 0;
    char         piece[512];
    cli_t        c;
    slot_t      *s;
    enc_http_t  *h;

    h = start("2", "1024");
    cli_open(&c);                 /* and never reads */
    s = take();
    memset(piece, 'x', sizeof(piece));
    assert_int_equal(enc_defer_stream_begin(s->d, 200, "text/plain"), 0);
    /* the kernel's socket buffers take the first hundreds of KiB; the
       bound only ends a failing test */
    for (i = 0; i < 1000000 && rc == 0; i++) {
        rc = enc_defer_write(s->d, piece, sizeof(piece));
        if (i % 64 == 0) {
            usleep(1000);         /* let libmicrohttpd send what it can */
        }
    }
    assert_int_equal(rc, -1);
    assert_int_equal(enc_defer_cancelled(s->d), 1);
    assert_int_equal(wait_cancels(s, 1), 1);
    assert_int_equal(enc_defer_write(s->d, "x", 1), -1);
    enc_defer_end(s->d);
    assert_true(wait_metric("encore_http_streams_open 0\n"));
    assert_int_equal(atomic_load(&s->cancels), 1);
    assert_true(metrics_have("encore_http_streams_cancelled_total 1\n"));
    cli_close(&c);
    stop(h);
}


/* ---- 200 open streams on 4 threads, every one moving --------------------- */

#define MANY  200

static void
test_many_streams_few_threads(void **state)
{
    int          i, round;
    char         piece[64];
    cli_t       *c;
    slot_t      *s[MANY];
    enc_http_t  *h;

    h = start("4", "262144");
    c = calloc(MANY, sizeof(cli_t));
    assert_non_null(c);
    for (i = 0; i < MANY; i++) {
        cli_open(&c[i]);
    }
    /* every handler returned at once: none holds its thread */
    for (i = 0; i < MANY; i++) {
        s[i] = take();
        assert_int_equal(enc_defer_stream_begin(s[i]->d, 200,
                                                "text/event-stream"), 0);
    }
    assert_true(wait_metric("encore_http_streams_open 200\n"));
    for (round = 0; round < 5; round++) {
        for (i = 0; i < MANY; i++) {
            snprintf(piece, sizeof(piece), "r%d-s%d;", round, i);
            assert_int_equal(enc_defer_write(s[i]->d, piece, strlen(piece)),
                             0);
        }
        /* the clients connected in one order, the handlers may have
           run in another: each client waits for its round's piece */
        for (i = 0; i < MANY; i++) {
            snprintf(piece, sizeof(piece), "r%d-", round);
            assert_true(cli_wait(&c[i], piece));
        }
    }
    for (i = 0; i < MANY; i++) {
        enc_defer_end(s[i]->d);
    }
    for (i = 0; i < MANY; i++) {
        assert_true(cli_wait(&c[i], "\r\n0\r\n\r\n"));
        assert_int_equal(atomic_load(&s[i]->cancels), 0);
        cli_close(&c[i]);
    }
    assert_true(wait_metric("encore_http_streams_open 0\n"));
    free(c);
    stop(h);
}


/* ---- drain: an open stream counts as in flight, and is cancelled at the
   deadline; one that ends in time is waited for ------------------------- */

static void *
end_later(void *arg)
{
    enc_defer_t  *d = arg;

    usleep(300 * 1000);
    (void) enc_defer_write(d, "last;", 5);
    enc_defer_end(d);
    return NULL;
}


static void
test_drain_with_open_stream(void **state)
{
    long             el;
    char             body[256];
    cli_t            c;
    slot_t          *s;
    pthread_t        t;
    enc_http_t      *h;
    struct timespec  t0;

    /* the stream ends during the drain: waited for, delivered whole */
    h = start("2", "262144");
    cli_open(&c);
    s = take();
    assert_int_equal(enc_defer_stream_begin(s->d, 200, "text/plain"), 0);
    assert_int_equal(enc_defer_write(s->d, "first;", 6), 0);
    assert_true(cli_wait(&c, "first;"));
    assert_int_equal(pthread_create(&t, NULL, end_later, s->d), 0);
    (void) clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(enc_http_drain(h, WAIT_MS), 0);
    el = raw_ms_since(&t0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(el >= 250 && el < WAIT_MS);
    assert_true(cli_wait(&c, "\r\n0\r\n\r\n"));
    assert_true(dechunk(c.buf, body, sizeof(body)));
    assert_string_equal(body, "first;last;");
    assert_int_equal(atomic_load(&s->cancels), 0);
    cli_close(&c);
    stop(h);

    /* the stream outlasts the drain: cancelled at the deadline, the
       producer told, the client's connection closed */
    h = start("2", "262144");
    cli_open(&c);
    s = take();
    assert_int_equal(enc_defer_stream_begin(s->d, 200, "text/plain"), 0);
    assert_int_equal(enc_defer_write(s->d, "first;", 6), 0);
    assert_true(cli_wait(&c, "first;"));
    (void) clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(enc_http_drain(h, 300), 0);
    el = raw_ms_since(&t0);
    assert_true(el >= 290);
    assert_int_equal(wait_cancels(s, 1), 1);
    assert_int_equal(enc_defer_write(s->d, "x", 1), -1);
    while (!c.eof && cli_read(&c, WAIT_MS) > 0) {
        /* what was sent, then the close */
    }
    assert_true(c.eof);
    assert_int_equal(enc_http_connections(h), 0);
    stop(h);
    /* the producer's terminal call may come after the server is gone */
    enc_defer_end(s->d);
    assert_int_equal(atomic_load(&s->cancels), 1);
    cli_close(&c);
}


/* ---- stopping with answers still deferred ---------------------------------- */

static void
test_stop_with_open_streams(void **state)
{
    cli_t        a, b;
    slot_t      *sa, *sb;
    enc_http_t  *h;

    h = start("2", "262144");
    cli_open(&a);
    sa = take();                  /* waiting, suspended */
    cli_open(&b);
    sb = take();                  /* streaming, suspended between pieces */
    assert_int_equal(enc_defer_stream_begin(sb->d, 200, "text/plain"), 0);
    assert_int_equal(enc_defer_write(sb->d, "piece;", 6), 0);
    assert_true(cli_wait(&b, "piece;"));

    /* libmicrohttpd panics if stopped with a connection suspended */
    stop(h);
    assert_int_equal(atomic_load(&sa->cancels), 1);
    assert_int_equal(atomic_load(&sb->cancels), 1);
    assert_int_equal(enc_defer_cancelled(sa->d), 1);
    assert_int_equal(enc_defer_write(sb->d, "late;", 5), -1);
    /* terminal calls after the server is freed: ASan sees any use */
    enc_defer_json(sa->d, 200, json_object());
    enc_defer_end(sb->d);
    assert_true(raw_closed_within(a.fd, WAIT_MS));
    while (!b.eof && cli_read(&b, WAIT_MS) > 0) {
    }
    assert_true(b.eof);
    cli_close(&a);
    cli_close(&b);
}


/* ---- the request's log line: at the terminal call, with its id ---------- */

static char *
slurp_fd(int fd)
{
    char    *buf;
    off_t    len = lseek(fd, 0, SEEK_END);

    buf = calloc(1, (size_t) len + 1);
    assert_non_null(buf);
    assert_int_equal(pread(fd, buf, (size_t) len, 0), len);
    return buf;
}


static void
test_log_line_at_terminal_call(void **state)
{
    int          fd, lfd;
    char         buf[4096], path[] = "/tmp/enc-test-stream-log-XXXXXX";
    char        *text;
    cli_t        c;
    slot_t      *s;
    enc_http_t  *h;

    log_requests = "true";
    h = start("2", "262144");
    log_requests = "false";
    lfd = mkstemp(path);
    assert_true(lfd >= 0);
    (void) unlink(path);
    enc_log_set_fd(lfd);
    enc_log_init("test", ENC_LOG_INFO);

    fd = raw_connect(sock);
    assert_true(fd >= 0);
    assert_true(send(fd, "GET /defer HTTP/1.1\r\nHost: x\r\n"
                     "X-Request-Id: rid-deferred-1\r\n\r\n", 62,
                     MSG_NOSIGNAL) == 62);
    s = take();
    assert_string_equal(enc_defer_request_id(s->d), "rid-deferred-1");
    /* the handler returned: nothing logged yet */
    text = slurp_fd(lfd);
    assert_null(strstr(text, "GET /defer"));
    free(text);

    /* the producer's thread keeps its own request id */
    enc_log_set_request_id("rid-producer");
    enc_defer_json(s->d, 201, json_object());
    assert_string_equal(enc_log_request_id(), "rid-producer");
    assert_int_equal(raw_response(fd, buf, sizeof(buf), WAIT_MS), 201);
    text = slurp_fd(lfd);
    assert_non_null(strstr(text, "GET /defer 201 "));
    assert_non_null(strstr(text, "\"request_id\":\"rid-deferred-1\""));
    free(text);
    close(fd);

    /* cancelled before its answer: 499, and why */
    cli_open(&c);
    s = take();
    cli_close(&c);
    assert_int_equal(wait_cancels(s, 1), 1);
    enc_defer_end(s->d);
    text = slurp_fd(lfd);
    assert_non_null(strstr(text, "GET /defer 499 "));
    assert_non_null(strstr(text, "(cancelled: client gone)"));
    free(text);

    enc_log_set_request_id(NULL);
    enc_log_init("test", ENC_LOG_ERROR + 1);
    enc_log_set_fd(2);
    close(lfd);
    stop(h);
}


/* ---- nothing is deferred once draining -------------------------------------- */

static void
test_no_defer_while_draining(void **state)
{
    int          fd;
    char         buf[4096];
    enc_http_t  *h;

    h = start("2", "262144");
    fd = raw_connect(sock);
    assert_true(fd >= 0);
    assert_int_equal(raw_send_get(fd, "/healthz"), 0);
    assert_int_equal(raw_response(fd, buf, sizeof(buf), WAIT_MS), 200);
    enc_http_quiesce(h);
    assert_int_equal(raw_send_get(fd, "/defer"), 0);
    assert_int_equal(raw_response(fd, buf, sizeof(buf), WAIT_MS), 503);
    assert_int_equal(atomic_load(&refused), 1);
    assert_int_equal(atomic_load(&nslots), 0);
    close(fd);
    stop(h);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_deferred_json),
        cmocka_unit_test(test_stream_incremental_in_order),
        cmocka_unit_test(test_headers_wait_for_first_byte),
        cmocka_unit_test(test_problem_before_first_byte),
        cmocka_unit_test(test_client_leaves),
        cmocka_unit_test(test_slow_reader_cancelled),
        cmocka_unit_test(test_many_streams_few_threads),
        cmocka_unit_test(test_drain_with_open_stream),
        cmocka_unit_test(test_stop_with_open_streams),
        cmocka_unit_test(test_no_defer_while_draining),
        cmocka_unit_test(test_log_line_at_terminal_call),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
