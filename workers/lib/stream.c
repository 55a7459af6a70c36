/*
 * stream: deferred and streamed answers.  See stream.h.
 *
 * libmicrohttpd's rules (microhttpd.h, 0.9.75): a connection is suspended
 * only from its access handler or its content reader, on its own thread;
 * MHD_resume_connection may be called from any thread at any time, on a
 * connection that is suspended; a content reader must not return 0 in
 * internal polling mode unless it suspended the connection (a busy loop
 * otherwise); MHD_stop_daemon must not run while a connection is
 * suspended.
 *
 * So:
 *   - the handler's enc_resp_defer() only creates the handle; right after
 *     the handler returns, enc_stream_serve (the access handler's call)
 *     suspends the connection unless the answer is already there;
 *   - the producer's calls store what they have under the handle's lock
 *     and resume the connection if (and only if) we suspended it; the
 *     access handler, called again, queues the answer: a buffered one, or
 *     a callback response for a stream, whose reader hands out the bytes
 *     waiting and suspends again (returning 0) when there are none.  With
 *     the lock held around every suspend and resume, "suspended" is
 *     exactly MHD's view, so a resume always matches a suspend;
 *   - while suspended, libmicrohttpd does not notice the client leaving:
 *     a watcher thread polls the suspended connections' sockets for
 *     EPOLLRDHUP and resumes one whose client went, so that the producer
 *     hears of it at once (a reply waiting for its first token, say);
 *   - the connection ending before the producer's terminal call
 *     (MHD_OPTION_NOTIFY_COMPLETED with the handle still open) is the
 *     cancel: on_cancel runs there, once; writes fail from then on;
 *   - enc_http_stop cancels every handle still open (which resumes its
 *     connection) before MHD_stop_daemon, and nothing is deferred after.
 *
 * Lifetime: the handle is counted.  The producer holds a reference until
 * its terminal call, the connection one until NOTIFY_COMPLETED, a
 * streamed response one until libmicrohttpd frees it.  The terminal call
 * waits for an on_cancel that is running on another thread, so after it
 * returns on_cancel never runs (the producer may free what arg points
 * to).  Once the connection is gone the handle touches nothing of the
 * server's: it may outlive it (the producer finishing after
 * enc_http_stop).
 *
 * Lock order: streams_lock (the list of open handles), then a handle's
 * lock, then libmicrohttpd's own (MHD_suspend/resume_connection take its
 * cleanup mutex; libmicrohttpd calls none of our callbacks under it).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "stream_int.h"


#define STREAMS_OPEN_HELP  "deferred answers (streams included) whose" \
                           " connection is open"
#define CANCELLED_HELP     "deferred answers cancelled before their end" \
                           " (client gone, too slow, drain)"
#define WATCH_EVENTS       64

enum {
    D_WAITING = 0,      /* nothing from the producer yet */
    D_BUFFERED,         /* enc_defer_json / _problem: w holds it */
    D_STREAMING         /* enc_defer_stream_begin */
};

struct enc_defer_s {
    pthread_mutex_t         lock;
    pthread_cond_t          cond;         /* on_cancel returned */
    int                     refs;
    /* the connection's side, while attached (conn != NULL) */
    enc_http_t             *h;
    struct MHD_Connection  *conn;
    int                     fd;
    int                     suspended;    /* by us, not resumed since */
    int                     watched;      /* fd in the watcher's set */
    int                     queued;       /* answer handed to MHD */
    enc_defer_t            *prev;         /* streams list */
    enc_defer_t            *next;
    int                     listed;
    /* the answer */
    int                     state;
    enc_resp_t             *w;            /* status, type, headers, body */
    char                   *buf;          /* stream bytes waiting */
    size_t                  off;
    size_t                  end;
    size_t                  cap;
    size_t                  limit;        /* http.stream_buffer */
    size_t                  sent;
    int                     ended;        /* enc_defer_end */
    int                     terminal;     /* the producer let go */
    int                     cancelled;    /* writes fail */
    const char             *why;          /* the cancel's reason */
    int                     cancel_done;  /* on_cancel claimed */
    int                     in_cancel;
    pthread_t               cancel_thread;
    void                  (*on_cancel)(void *arg);
    void                   *cancel_arg;
    /* for the log line and the metrics, at the terminal call */
    char                   *method;
    char                   *path;
    char                   *route;
    char                    id[136];
    struct timespec         start;
    int                     log_requests;
};


static pthread_mutex_t  streams_lock = PTHREAD_MUTEX_INITIALIZER;
static enc_defer_t     *streams;
static int              streams_n;

/* the watcher: suspended connections whose client may leave */
static pthread_mutex_t  watch_lock = PTHREAD_MUTEX_INITIALIZER;
static int              watch_epfd = -1;
static int              watch_evfd = -1;
static int              watch_running;
static pthread_t        watch_thread;

static void kill_locked(enc_defer_t *d, const char *why);


static void
defer_free(enc_defer_t *d)
{
    enc_http_resp_free(d->w);
    free(d->buf);
    free(d->method);
    free(d->path);
    free(d->route);
    (void) pthread_cond_destroy(&d->cond);
    (void) pthread_mutex_destroy(&d->lock);
    free(d);
}


static void
defer_unref(enc_defer_t *d)
{
    int  last;

    pthread_mutex_lock(&d->lock);
    last = --d->refs == 0;
    pthread_mutex_unlock(&d->lock);
    if (last) {
        defer_free(d);
    }
}


/* ---- the watcher ---------------------------------------------------------- */

static int
peer_gone(int fd)
{
    char     c;
    ssize_t  n;

    n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK
                      && errno != EINTR);
}


static void *
watch_main(void *arg)
{
    int                 i, n, listed;
    uint64_t            v;
    enc_defer_t        *d, *p;
    struct epoll_event  evs[WATCH_EVENTS];

    for ( ;; ) {
        n = epoll_wait(watch_epfd, evs, WATCH_EVENTS, -1);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            enc_log_error("stream: epoll_wait: %s", strerror(errno));
            return NULL;
        }
        for (i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                /* stopping: the counter is consumed only to be tidy
                   (the descriptor is closed after the join) */
                if (read(watch_evfd, &v, sizeof(v)) < 0) {
                    v = 0;
                }
                return NULL;
            }
        }
        /*
         * An event may be stale: its handle resumed (and removed from the
         * set) meanwhile, even freed.  Only a handle still on the list is
         * looked at, and only its socket's state counts (a recycled
         * address is then harmless): a suspended connection whose client
         * has closed is resumed as cancelled, which closes it.
         */
        pthread_mutex_lock(&streams_lock);
        for (i = 0; i < n; i++) {
            d = evs[i].data.ptr;
            listed = 0;
            for (p = streams; p != NULL; p = p->next) {
                if (p == d) {
                    listed = 1;
                    break;
                }
            }
            if (!listed) {
                continue;
            }
            pthread_mutex_lock(&d->lock);
            if (d->suspended && d->conn != NULL && peer_gone(d->fd)) {
                kill_locked(d, "client gone");
            }
            pthread_mutex_unlock(&d->lock);
        }
        pthread_mutex_unlock(&streams_lock);
    }
}


static int
watch_start(void)
{
    struct epoll_event  ev;

    pthread_mutex_lock(&watch_lock);
    if (watch_running) {
        pthread_mutex_unlock(&watch_lock);
        return 0;
    }
    watch_epfd = epoll_create1(EPOLL_CLOEXEC);
    watch_evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (watch_epfd < 0 || watch_evfd < 0) {
        goto failed;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.ptr = NULL;
    if (epoll_ctl(watch_epfd, EPOLL_CTL_ADD, watch_evfd, &ev) != 0
        || pthread_create(&watch_thread, NULL, watch_main, NULL) != 0)
    {
        goto failed;
    }
    watch_running = 1;
    pthread_mutex_unlock(&watch_lock);
    return 0;

failed:
    enc_log_error("stream: cannot start the watcher: %s", strerror(errno));
    if (watch_epfd >= 0) {
        close(watch_epfd);
    }
    if (watch_evfd >= 0) {
        close(watch_evfd);
    }
    watch_epfd = -1;
    watch_evfd = -1;
    pthread_mutex_unlock(&watch_lock);
    return -1;
}


/* stops the watcher once no handle is open anywhere (enc_http_stop);
   lock order: watch_lock, then streams_lock (the watcher thread takes
   only the latter) */
void
enc_stream_idle(void)
{
    int       busy;
    uint64_t  one = 1;

    pthread_mutex_lock(&watch_lock);
    pthread_mutex_lock(&streams_lock);
    busy = streams != NULL;
    pthread_mutex_unlock(&streams_lock);
    if (busy || !watch_running) {
        pthread_mutex_unlock(&watch_lock);
        return;
    }
    /* an eventfd write fails only when its counter would overflow,
       which one write per stop cannot make happen */
    if (write(watch_evfd, &one, sizeof(one)) < 0) {
        enc_log_error("stream: waking the watcher: %s", strerror(errno));
    }
    (void) pthread_join(watch_thread, NULL);
    close(watch_epfd);
    close(watch_evfd);
    watch_epfd = -1;
    watch_evfd = -1;
    watch_running = 0;
    pthread_mutex_unlock(&watch_lock);
}


/* ---- suspend, resume, kill (d->lock held) -------------------------------- */

static void
suspend(enc_defer_t *d)
{
    struct epoll_event  ev;

    MHD_suspend_connection(d->conn);
    d->suspended = 1;
    if (d->fd >= 0 && watch_epfd >= 0) {
        memset(&ev, 0, sizeof(ev));
        ev.events = EPOLLRDHUP | EPOLLONESHOT;
        ev.data.ptr = d;
        if (epoll_ctl(watch_epfd, EPOLL_CTL_ADD, d->fd, &ev) == 0) {
            d->watched = 1;
        }
    }
}


/* lets libmicrohttpd look at the connection again, if we suspended it */
static void
wake(enc_defer_t *d)
{
    if (!d->suspended || d->conn == NULL) {
        return;
    }
    if (d->watched) {
        (void) epoll_ctl(watch_epfd, EPOLL_CTL_DEL, d->fd, NULL);
        d->watched = 0;
    }
    d->suspended = 0;
    MHD_resume_connection(d->conn);
}


/*
 * Ends the connection of a handle that will not be answered: writes fail
 * from now on, and the connection closes (the access handler or the
 * reader sees the flag), which runs on_cancel.  A connection busy
 * sending to a client that does not read is shut down: libmicrohttpd
 * would otherwise wait for it until http.timeout_s.  The descriptor is
 * still the connection's: NOTIFY_COMPLETED, which comes before
 * libmicrohttpd closes it, takes this lock.
 */
static void
kill_locked(enc_defer_t *d, const char *why)
{
    if (!d->cancelled) {
        d->cancelled = 1;
        d->why = why;
    }
    if (d->conn == NULL) {
        return;
    }
    if (d->suspended) {
        wake(d);
    } else if (d->queued && d->fd >= 0) {
        (void) shutdown(d->fd, SHUT_RDWR);
    }
}


/* ---- libmicrohttpd's side -------------------------------------------------- */

static ssize_t
stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    size_t        n;
    enc_defer_t  *d = cls;

    pthread_mutex_lock(&d->lock);
    if (d->cancelled || d->conn == NULL) {
        pthread_mutex_unlock(&d->lock);
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    n = d->end - d->off;
    if (n > 0) {
        if (n > max) {
            n = max;
        }
        memcpy(buf, d->buf + d->off, n);
        d->off += n;
        d->sent += n;
        if (d->off == d->end) {
            d->off = 0;
            d->end = 0;
        }
        pthread_mutex_unlock(&d->lock);
        return (ssize_t) n;
    }
    if (d->ended) {
        pthread_mutex_unlock(&d->lock);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    /* nothing yet: 0 is only allowed with the connection suspended (no
       busy loop); the next write or the end resumes it */
    if (!d->suspended) {
        suspend(d);
    }
    pthread_mutex_unlock(&d->lock);
    return 0;
}


static void
stream_read_free(void *cls)
{
    defer_unref(cls);
}


enum MHD_Result
enc_stream_serve(enc_defer_t *d)
{
    int                   status;
    enum MHD_Result       ret;
    struct MHD_Response  *mr;

    pthread_mutex_lock(&d->lock);
    if (d->cancelled || d->conn == NULL) {
        pthread_mutex_unlock(&d->lock);
        return MHD_NO;                   /* closes the connection */
    }
    if (d->queued || d->suspended) {
        pthread_mutex_unlock(&d->lock);
        return MHD_YES;
    }
    if (d->state == D_BUFFERED
        || (d->state == D_STREAMING && (d->end > d->off || d->ended)))
    {
        status = enc_http_resp_status(d->w);
        if (d->state == D_BUFFERED) {
            mr = enc_http_response(d->h, d->w, d->id, NULL, NULL, NULL);
        } else {
            d->refs++;                   /* the response's, see free */
            mr = enc_http_response(d->h, d->w, d->id, stream_read, d,
                                   stream_read_free);
            if (mr == NULL) {
                d->refs--;
            }
        }
        if (mr == NULL) {
            pthread_mutex_unlock(&d->lock);
            return MHD_NO;
        }
        ret = MHD_queue_response(d->conn, (unsigned) status, mr);
        d->queued = 1;
        pthread_mutex_unlock(&d->lock);
        /* the last reference may be the response's (queueing failed) */
        MHD_destroy_response(mr);
        return ret;
    }
    suspend(d);
    pthread_mutex_unlock(&d->lock);
    return MHD_YES;
}


static void
list_remove(enc_defer_t *d)
{
    if (!d->listed) {
        return;
    }
    if (d->prev != NULL) {
        d->prev->next = d->next;
    } else {
        streams = d->next;
    }
    if (d->next != NULL) {
        d->next->prev = d->prev;
    }
    d->prev = NULL;
    d->next = NULL;
    d->listed = 0;
    streams_n--;
    enc_metrics_gauge_set("encore_http_streams_open", STREAMS_OPEN_HELP,
                          (double) streams_n);
}


/* runs on_cancel once, unless the producer let go first; d->lock held,
   released and taken again around the call */
static void
fire_cancel(enc_defer_t *d)
{
    void  (*fn)(void *);
    void   *arg;

    if (d->cancel_done || d->terminal) {
        return;
    }
    d->cancel_done = 1;
    enc_metrics_counter_add("encore_http_streams_cancelled_total",
                            CANCELLED_HELP, 1);
    fn = d->on_cancel;
    arg = d->cancel_arg;
    if (fn == NULL) {
        return;
    }
    d->in_cancel = 1;
    d->cancel_thread = pthread_self();
    pthread_mutex_unlock(&d->lock);
    fn(arg);
    pthread_mutex_lock(&d->lock);
    d->in_cancel = 0;
    pthread_cond_broadcast(&d->cond);
}


void
enc_stream_completed(enc_defer_t *d, enum MHD_RequestTerminationCode toe)
{
    pthread_mutex_lock(&streams_lock);
    pthread_mutex_lock(&d->lock);
    list_remove(d);
    pthread_mutex_unlock(&streams_lock);

    if (d->watched) {
        (void) epoll_ctl(watch_epfd, EPOLL_CTL_DEL, d->fd, NULL);
        d->watched = 0;
    }
    d->conn = NULL;
    d->h = NULL;
    d->suspended = 0;
    if (!d->terminal) {
        if (!d->cancelled) {
            d->cancelled = 1;
            d->why = toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN
                     ? "server stopping" : "client gone";
        }
        fire_cancel(d);
    }
    pthread_mutex_unlock(&d->lock);
    defer_unref(d);
}


int
enc_stream_cancel_all(enc_http_t *h)
{
    int           n = 0;
    enc_defer_t  *d;

    pthread_mutex_lock(&streams_lock);
    for (d = streams; d != NULL; d = d->next) {
        pthread_mutex_lock(&d->lock);
        if (d->h == h) {
            kill_locked(d, "drain timed out or server stopping");
            n++;
        }
        pthread_mutex_unlock(&d->lock);
    }
    pthread_mutex_unlock(&streams_lock);
    if (n > 0) {
        enc_log_warn("http: %d deferred answers cancelled", n);
    }
    return n;
}


int
enc_stream_open(enc_http_t *h)
{
    int           n = 0;
    enc_defer_t  *d;

    pthread_mutex_lock(&streams_lock);
    for (d = streams; d != NULL; d = d->next) {
        n += d->h == h;
    }
    pthread_mutex_unlock(&streams_lock);
    return n;
}


/* ---- the handler's and the producer's side ------------------------------- */

enc_defer_t *
enc_resp_defer(enc_req_t *r, enc_resp_t *w)
{
    enc_defer_t            *d;
    enc_http_defer_info_t   info;

    if (r == NULL || w == NULL || enc_http_defer_info(r, &info) != 0) {
        return NULL;
    }
    d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return NULL;
    }
    if (pthread_mutex_init(&d->lock, NULL) != 0) {
        free(d);
        return NULL;
    }
    if (pthread_cond_init(&d->cond, NULL) != 0) {
        (void) pthread_mutex_destroy(&d->lock);
        free(d);
        return NULL;
    }
    d->w = enc_http_resp_new();
    d->method = strdup(info.method);
    d->path = strdup(info.path);
    d->route = strdup(info.route);
    if (d->w == NULL || d->method == NULL || d->path == NULL
        || d->route == NULL)
    {
        defer_free(d);
        return NULL;
    }
    d->refs = 2;                          /* the producer, the connection */
    d->h = info.h;
    d->conn = info.conn;
    d->fd = info.fd;
    d->limit = info.stream_buffer;
    d->start = info.start;
    d->log_requests = info.log_requests;
    snprintf(d->id, sizeof(d->id), "%s", info.id);

    /* the check and the insertion under the list's lock: enc_http_stop
       sets the flag before it cancels what is listed */
    pthread_mutex_lock(&streams_lock);
    if (!enc_http_deferrable(info.h)) {
        pthread_mutex_unlock(&streams_lock);
        defer_free(d);
        return NULL;
    }
    d->next = streams;
    if (streams != NULL) {
        streams->prev = d;
    }
    streams = d;
    d->listed = 1;
    streams_n++;
    enc_metrics_gauge_set("encore_http_streams_open", STREAMS_OPEN_HELP,
                          (double) streams_n);
    pthread_mutex_unlock(&streams_lock);

    /* after the insertion: enc_stream_idle stops the watcher only when
       nothing is listed.  Without it a client leaving is noticed at the
       next write only */
    (void) watch_start();
    enc_http_deferred(r, w, d);
    return d;
}


const char *
enc_defer_request_id(enc_defer_t *d)
{
    return d->id;
}


void
enc_defer_on_cancel(enc_defer_t *d, void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&d->lock);
    d->on_cancel = fn;
    d->cancel_arg = arg;
    pthread_mutex_unlock(&d->lock);
}


int
enc_defer_cancelled(enc_defer_t *d)
{
    int  c;

    pthread_mutex_lock(&d->lock);
    c = d->cancelled;
    pthread_mutex_unlock(&d->lock);
    return c;
}


void
enc_defer_header(enc_defer_t *d, const char *name, const char *value)
{
    pthread_mutex_lock(&d->lock);
    if (d->terminal || d->state != D_WAITING) {
        pthread_mutex_unlock(&d->lock);
        enc_log_error("stream: header \"%s\" after the answer began",
                      name ? name : "(null)");
        return;
    }
    enc_resp_header(d->w, name, value);
    pthread_mutex_unlock(&d->lock);
}


/*
 * The producer lets go: waits for an on_cancel running on another thread
 * (after this, on_cancel never runs), records the request's metrics and
 * log line, and drops the producer's reference.  Returns 0, or -1 when d
 * was let go already (the call is ignored).  d->lock held on entry.
 */
static int
let_go(enc_defer_t *d)
{
    if (d->terminal) {
        pthread_mutex_unlock(&d->lock);
        enc_log_error("stream: a second terminal call for request %s",
                      d->id);
        return -1;
    }
    d->terminal = 1;
    while (d->in_cancel && !pthread_equal(d->cancel_thread, pthread_self()))
    {
        pthread_cond_wait(&d->cond, &d->lock);
    }
    return 0;
}


static void
account(enc_defer_t *d, int status, const char *note)
{
    char        saved[136];
    const char *cur = enc_log_request_id();

    /* the line carries the request's id, on the producer's thread */
    saved[0] = '\0';
    if (cur != NULL) {
        snprintf(saved, sizeof(saved), "%s", cur);
    }
    enc_log_set_request_id(d->id);
    enc_http_account(d->route, 0, d->method, d->path, status, &d->start,
                     d->log_requests, note);
    enc_log_set_request_id(saved[0] != '\0' ? saved : NULL);
}


/* a buffered answer (w set), terminal */
static void
finish_buffered(enc_defer_t *d)
{
    int   status;
    char  note[96];

    /* d->lock held, let_go done */
    status = enc_http_resp_status(d->w);
    if (d->cancelled) {
        snprintf(note, sizeof(note), " (cancelled: %s)",
                 d->why ? d->why : "?");
        status = 499;              /* nginx's: the client went first */
    } else {
        note[0] = '\0';
        d->state = D_BUFFERED;
        wake(d);
    }
    pthread_mutex_unlock(&d->lock);
    account(d, status, note);
    defer_unref(d);
}


void
enc_defer_json(enc_defer_t *d, int status, json_t *body)
{
    pthread_mutex_lock(&d->lock);
    if (let_go(d) != 0) {
        json_decref(body);
        return;
    }
    if (d->state == D_STREAMING) {
        /* too late for a status: the stream is cut instead */
        json_decref(body);
        enc_log_error("stream: enc_defer_json after the stream began");
        kill_locked(d, "answer replaced mid-stream");
        finish_buffered(d);
        return;
    }
    enc_resp_json(d->w, status, body);
    finish_buffered(d);
}


void
enc_defer_problem(enc_defer_t *d, int status, const char *title,
    const char *detail)
{
    pthread_mutex_lock(&d->lock);
    if (let_go(d) != 0) {
        return;
    }
    if (d->state == D_STREAMING) {
        enc_log_error("stream: enc_defer_problem after the stream began");
        kill_locked(d, "answer replaced mid-stream");
        finish_buffered(d);
        return;
    }
    enc_resp_problem(d->w, status, title, detail);
    finish_buffered(d);
}


int
enc_defer_stream_begin(enc_defer_t *d, int status, const char *content_type)
{
    pthread_mutex_lock(&d->lock);
    if (d->terminal || d->state != D_WAITING) {
        pthread_mutex_unlock(&d->lock);
        enc_log_error("stream: enc_defer_stream_begin twice or too late");
        return -1;
    }
    if (d->cancelled) {
        pthread_mutex_unlock(&d->lock);
        return -1;
    }
    enc_http_resp_stream(d->w, status, content_type);
    enc_resp_header(d->w, "X-Accel-Buffering", "no");
    d->state = D_STREAMING;
    /* nothing is sent before the first byte (or the end): the connection
       stays suspended until then */
    pthread_mutex_unlock(&d->lock);
    return 0;
}


int
enc_defer_write(enc_defer_t *d, const char *data, size_t len)
{
    char    *nb;
    size_t   ncap, pending;

    pthread_mutex_lock(&d->lock);
    if (d->cancelled || d->terminal || d->conn == NULL
        || d->state != D_STREAMING)
    {
        if (!d->cancelled) {
            enc_log_error("stream: enc_defer_write %s",
                          d->state != D_STREAMING ? "before stream_begin"
                          : "after the end");
        }
        pthread_mutex_unlock(&d->lock);
        return -1;
    }
    if (len == 0) {
        pthread_mutex_unlock(&d->lock);
        return 0;
    }
    pending = d->end - d->off;
    if (len > d->limit || pending > d->limit - len) {
        enc_log_warn("stream: request %s: the client reads too slowly (%zu"
                     " bytes waiting); cancelled", d->id, pending + len);
        kill_locked(d, "client too slow");
        pthread_mutex_unlock(&d->lock);
        return -1;
    }
    if (d->off > 0 && d->end + len > d->cap) {
        memmove(d->buf, d->buf + d->off, pending);
        d->off = 0;
        d->end = pending;
    }
    if (d->end + len > d->cap) {
        ncap = d->cap ? d->cap : 1024;
        while (ncap < d->end + len) {
            ncap *= 2;
        }
        nb = realloc(d->buf, ncap);
        if (nb == NULL) {
            kill_locked(d, "out of memory");
            pthread_mutex_unlock(&d->lock);
            return -1;
        }
        d->buf = nb;
        d->cap = ncap;
    }
    memcpy(d->buf + d->end, data, len);
    d->end += len;
    wake(d);
    pthread_mutex_unlock(&d->lock);
    return 0;
}


void
enc_defer_end(enc_defer_t *d)
{
    int   status;
    char  note[96];

    pthread_mutex_lock(&d->lock);
    if (let_go(d) != 0) {
        return;
    }
    if (d->state == D_WAITING && !d->cancelled) {
        enc_log_error("stream: enc_defer_end without a stream");
        enc_resp_problem(d->w, 500, NULL, "internal error");
        finish_buffered(d);
        return;
    }
    status = enc_http_resp_status(d->w);
    if (d->cancelled) {
        snprintf(note, sizeof(note), " %zu bytes (cancelled: %s)", d->sent,
                 d->why ? d->why : "?");
        if (d->state == D_WAITING) {
            status = 499;
        }
    } else {
        snprintf(note, sizeof(note), " streamed");
        d->ended = 1;
        wake(d);
    }
    /* the memory of a long stream goes now, not with the connection */
    if (d->end == d->off && d->buf != NULL && d->queued) {
        free(d->buf);
        d->buf = NULL;
        d->off = d->end = d->cap = 0;
    }
    pthread_mutex_unlock(&d->lock);
    account(d, status, note);
    defer_unref(d);
}
