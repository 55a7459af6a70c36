/*
 * holder — the server side of tests/bench/chat/streams: libencore's HTTP
 * server (enc_http_start, as a worker runs it) whose one route defers its
 * answer (stream.h), and a producer thread driven by commands on stdin:
 *
 *   count        prints "count N": answers deferred and still open
 *   begin        enc_defer_stream_begin on each (text/event-stream) and
 *                one "event: ready" piece, so every header is out
 *   tick K       K token events to every stream, as the chat worker
 *                writes them (event: token / data: {"content":"..."})
 *   end          a done event and enc_defer_end on each
 *   quit         drain (up to 10 s; answers "ok quit drained in N ms")
 *                and stop
 *
 * Each command is answered with one line on stdout once done ("ok ...").
 * usage: holder unix:/path threads
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "http.h"
#include "log.h"
#include "stream.h"


#define HANDLES_MAX  65536

static pthread_mutex_t  lock = PTHREAD_MUTEX_INITIALIZER;
static enc_defer_t     *handles[HANDLES_MAX];
static int              nhandles;
static int              cancelled;


static void
on_cancel(void *arg)
{
    __atomic_add_fetch(&cancelled, 1, __ATOMIC_SEQ_CST);
}


static void
h_stream(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_defer_t  *d = enc_resp_defer(r, w);

    if (d == NULL) {
        enc_resp_problem(w, 503, NULL, "cannot defer");
        return;
    }
    enc_defer_on_cancel(d, on_cancel, NULL);
    pthread_mutex_lock(&lock);
    if (nhandles == HANDLES_MAX) {
        pthread_mutex_unlock(&lock);
        enc_defer_problem(d, 503, NULL, "full");
        return;
    }
    handles[nhandles++] = d;
    pthread_mutex_unlock(&lock);
}


static const enc_route_t  routes[] = {
    { "GET", "/stream", h_stream, 0, "stream" },
    { NULL, NULL, NULL, 0, NULL }
};


static const char  token[] = "event: token\ndata: {\"content\":\"word \"}\n\n";


int
main(int argc, char **argv)
{
    int                    i, k, n, failed;
    char                   line[128], err[256];
    enc_http_t            *h;
    enc_config_t          *c;
    struct timespec        t0, t1;
    const enc_conf_key_t  *tables[] = { enc_runtime_conf_keys, NULL };

    if (argc != 3) {
        fprintf(stderr, "usage: holder unix:/path threads\n");
        return 2;
    }
    enc_log_init("holder", ENC_LOG_WARN);
    c = enc_config_new(tables);
    if (c == NULL || enc_config_load(c, NULL, err, sizeof(err)) != 0
        || enc_config_set(c, "http.listen", argv[1], err, sizeof(err)) != 0
        || enc_config_set(c, "http.threads", argv[2], err, sizeof(err)) != 0
        || enc_config_set(c, "http.socket_group", "", err, sizeof(err)) != 0
        || enc_config_set(c, "http.timeout_s", "3600", err, sizeof(err)) != 0)
    {
        fprintf(stderr, "holder: config: %s\n", err);
        return 1;
    }
    h = enc_http_start(c, routes, NULL);
    if (h == NULL) {
        return 1;
    }
    printf("ready %d\n", (int) getpid());
    fflush(stdout);

    while (fgets(line, sizeof(line), stdin) != NULL) {
        pthread_mutex_lock(&lock);
        n = nhandles;
        pthread_mutex_unlock(&lock);
        failed = 0;
        if (strncmp(line, "count", 5) == 0) {
            printf("count %d cancelled %d\n", n,
                   __atomic_load_n(&cancelled, __ATOMIC_SEQ_CST));
        } else if (strncmp(line, "begin", 5) == 0) {
            for (i = 0; i < n; i++) {
                failed += enc_defer_stream_begin(handles[i], 200,
                                                 "text/event-stream") != 0;
                failed += enc_defer_write(handles[i], "event: ready\n\n",
                                          14) != 0;
            }
            printf("ok begin %d failed %d\n", n, failed);
        } else if (strncmp(line, "tick ", 5) == 0) {
            k = atoi(line + 5);
            while (k-- > 0) {
                for (i = 0; i < n; i++) {
                    failed += enc_defer_write(handles[i], token,
                                              sizeof(token) - 1) != 0;
                }
            }
            printf("ok tick failed %d\n", failed);
        } else if (strncmp(line, "end", 3) == 0) {
            for (i = 0; i < n; i++) {
                failed += enc_defer_write(handles[i], "event: done\ndata: "
                                          "{}\n\n", 20) != 0;
                enc_defer_end(handles[i]);
            }
            pthread_mutex_lock(&lock);
            nhandles = 0;
            pthread_mutex_unlock(&lock);
            printf("ok end %d failed %d\n", n, failed);
        } else if (strncmp(line, "quit", 4) == 0) {
            break;
        } else {
            printf("error unknown command\n");
        }
        fflush(stdout);
    }

    (void) clock_gettime(CLOCK_MONOTONIC, &t0);
    n = enc_http_drain(h, 10000);
    (void) clock_gettime(CLOCK_MONOTONIC, &t1);
    enc_http_stop(h);
    pthread_mutex_lock(&lock);
    for (i = 0; i < nhandles; i++) {
        enc_defer_end(handles[i]);
    }
    pthread_mutex_unlock(&lock);
    enc_config_free(c);
    printf("ok quit drained in %ld ms (%d running)\n",
           (long) ((t1.tv_sec - t0.tv_sec) * 1000
                   + (t1.tv_nsec - t0.tv_nsec) / 1000000), n);
    return 0;
}
