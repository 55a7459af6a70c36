/*
 * http: libmicrohttpd server, request/response objects.  See http.h.
 *
 * Request life cycle in libmicrohttpd terms: the access handler is called
 * once with the headers (we create the enc_req_t and decide what we can:
 * only an oversized Content-Length is answered that early), then once per
 * chunk of body (accumulated up to http.max_body, the rest discarded), then
 * a last time with no data, where routing errors, 413/415/400 and the
 * handler run.  The completed callback frees the request.  Deciding late
 * keeps the connection in a well-defined state for every method; an early
 * answer is only worth it to avoid reading a body we will refuse anyway.
 * A handler that defers its answer (stream.h) leaves the connection to
 * stream.c: suspended after the handler, the access handler called again
 * once resumed, the answer queued from there (enc_stream_serve).
 *
 * Drain: nginx keeps idle keepalive connections to us and reuses them, so
 * stopping at the first moment no request is in flight would close
 * sockets nginx may be writing a request to (a 502, and a POST it will not
 * retry).  Once quiesced, every answer carries "Connection: close" and
 * connections with no request open are shut down after
 * drain.idle_close_ms; enc_http_drain waits for libmicrohttpd's connection
 * count to reach 0.  That is longer than the edge keeps an idle upstream
 * connection (keepalive_timeout, conf/upstreams.conf), so nginx closes its
 * own idle ones first, which has no race: it never picks a connection it
 * closed, while it may pick one this side is shutting down (a POST in it
 * would fail, not retried).
 * The connections are known through MHD_OPTION_NOTIFY_CONNECTION (conn_t).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "metrics.h"
#include "pg.h"
#include "stream_int.h"


/* body bytes read and thrown away past max_body before we hang up: enough
   for an honest client to get its 413, not a bandwidth sink */
#define DISCARD_SLACK      (1024 * 1024)
#define REQUEST_ID_MAX     128
/* bounds header sizes (431).  It must hold whatever the edge forwards,
   or the client gets libmicrohttpd's own 431 page: conf/nginx.conf lets
   through 64k of request line and header bytes (large_client_header_buffers
   4 16k) in at most 100 lines (encore_client_max_headers) and 64 query
   parameters, and libmicrohttpd keeps them in the read buffer plus a
   record of about 56 bytes per line or parameter, all from this pool */
#define CONN_MEMORY_LIMIT  (128 * 1024)
/* /readyz's deadline for its database round trip */
#define READYZ_TIMEOUT_MS  2000
#define DRAIN_POLL_MS      10
/* how long a drain that timed out waits for the deferred answers it
   cancelled to close */
#define DRAIN_CANCEL_MS    1000

enum {
    ROUTE_NONE = -1,          /* 404 */
    ROUTE_BAD_METHOD = -2,    /* 405 / OPTIONS */
    ROUTE_HEALTHZ = -10,
    ROUTE_READYZ = -11,
    ROUTE_METRICS = -12
};

typedef struct {
    char  *name;
    char  *value;
} header_t;

/* one per open connection (its MHD socket context), listed in enc_http_t
   under h->lock so that a drain can find the idle ones */
typedef struct conn_s  conn_t;

struct conn_s {
    conn_t           *prev;
    conn_t           *next;
    int               fd;
    int               busy;           /* a request is open on it */
    int               closing;        /* shut down by close_idle */
    struct timespec   idle_since;
};

struct enc_resp_s {
    int        set;
    int        status;
    char      *body;              /* owned */
    size_t     len;
    char       ctype[128];
    header_t  *hdrs;              /* owned, with their strings */
    size_t     nhdrs;
    size_t     cap;
    int        deferred;          /* enc_resp_defer: answered later */
};

struct enc_http_s {
    struct MHD_Daemon   *d;
    enc_router_t        *router;
    const enc_route_t   *routes;
    void                *app;
    size_t               max_body;
    size_t               stream_buffer; /* http.stream_buffer */
    int                  log_requests;  /* log.requests */
    long                 idle_close_ms; /* drain.idle_close_ms */
    atomic_int           inflight;
    atomic_int           running;      /* handlers executing */
    atomic_int           quiesced;
    atomic_int           stopping;     /* enc_http_stop: no more defers */
    atomic_int           adopted;      /* queued connections handed to MHD
                                          at quiesce */
    atomic_int           started_late; /* connections MHD started since */
    char                 unix_path[sizeof(((struct sockaddr_un *) 0)->sun_path)];
    int                  listen_fd;    /* MHD's until the quiesce */
    int                  shared;       /* the listening socket outlives us:
                                          a service manager's, or handed
                                          over to a successor */
    int                  (*ready_check)(void *);
    void                *ready_arg;
    pthread_mutex_t      lock;         /* guards conns and their fields */
    conn_t              *conns;
};

struct enc_req_s {
    enc_http_t             *h;
    struct MHD_Connection  *conn;
    conn_t                 *cs;         /* NULL if untracked */
    const char             *method;     /* owned by libmicrohttpd */
    char                   *path;       /* owned */
    char                   *segbuf;     /* owned; params point here */
    enc_param_t             params[ENC_HTTP_PARAMS_MAX];
    size_t                  nparams;
    int                     route;      /* index or ROUTE_* */
    char                    allow[128];
    char                    id[REQUEST_ID_MAX + 1];
    char                   *body;       /* owned, NUL-terminated */
    size_t                  len;
    size_t                  cap;
    size_t                  discarded;
    int                     too_large;
    int                     answered;
    json_t                 *json;       /* owned */
    enc_caller_t            caller;     /* points into MHD's headers */
    struct timespec         start;
    enc_defer_t            *defer;      /* enc_resp_defer (stream.c) */
};


/* ---- responses ----------------------------------------------------------- */

static void
resp_set(enc_resp_t *w, int status, const char *ctype, char *body,
         size_t len)
{
    free(w->body);
    w->set = 1;
    w->status = status;
    w->body = body;
    w->len = len;
    snprintf(w->ctype, sizeof(w->ctype), "%s", ctype ? ctype : "");
}


/* fallback when even building a problem failed (allocation, bad UTF-8) */
static void
resp_static_problem(enc_resp_t *w, int status)
{
    char  *b;
    int    n;

    b = malloc(160);
    if (b == NULL) {
        resp_set(w, status, NULL, NULL, 0);
        return;
    }
    n = snprintf(b, 160, "{\"type\":\"about:blank\",\"title\":\"%s\","
                 "\"status\":%d,\"detail\":\"%s\"}",
                 enc_http_reason(status), status, enc_http_reason(status));
    resp_set(w, status, "application/problem+json", b, (size_t) n);
}


static void
resp_json_ctype(enc_resp_t *w, int status, json_t *body, const char *ctype)
{
    char    *s;
    size_t   len;

    if (body == NULL) {
        resp_static_problem(w, 500);
        return;
    }
    s = enc_json_dumps(body, &len);
    json_decref(body);
    if (s == NULL) {
        enc_log_error("http: cannot serialise a response body");
        resp_static_problem(w, 500);
        return;
    }
    resp_set(w, status, ctype, s, len);
}


void
enc_resp_json_text(enc_resp_t *w, int status, char *text, size_t len)
{
    if (text == NULL) {
        enc_log_error("http: cannot serialise a response body");
        resp_static_problem(w, 500);
        return;
    }
    resp_set(w, status, "application/json; charset=utf-8", text, len);
}


void
enc_resp_json(enc_resp_t *w, int status, json_t *body)
{
    resp_json_ctype(w, status, body, "application/json; charset=utf-8");
}


void
enc_resp_problem(enc_resp_t *w, int status, const char *title,
                 const char *detail)
{
    json_t  *p = enc_problem_new(status, title, detail);

    if (p == NULL) {
        resp_static_problem(w, status);
        return;
    }
    resp_json_ctype(w, status, p, "application/problem+json");
}


void
enc_resp_validation(enc_resp_t *w, enc_validation_t *v)
{
    enc_resp_field_problem(w, 422, "the request body failed validation", v);
}


void
enc_resp_field_problem(enc_resp_t *w, int status, const char *detail,
    enc_validation_t *v)
{
    json_t  *p, *errors;

    errors = v->errors != NULL ? v->errors : json_array();
    v->errors = NULL;
    p = enc_problem_new(status, NULL, detail);
    if (p == NULL || errors == NULL
        || json_object_set_new(p, "errors", errors) != 0)
    {
        json_decref(p);
        resp_static_problem(w, status);
        return;
    }
    resp_json_ctype(w, status, p, "application/problem+json");
}


void
enc_resp_empty(enc_resp_t *w, int status)
{
    resp_set(w, status, NULL, NULL, 0);
}


static int
header_safe(const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\r' || *s == '\n') {
            return 0;
        }
    }
    return 1;
}


void
enc_resp_header(enc_resp_t *w, const char *name, const char *value)
{
    header_t  *n;

    if (name == NULL || value == NULL || name[0] == '\0'
        || !header_safe(name) || !header_safe(value)
        || strchr(name, ':') != NULL)
    {
        enc_log_error("http: refusing unsafe response header \"%s\"",
                      name ? name : "(null)");
        return;
    }
    if (w->nhdrs == w->cap) {
        n = realloc(w->hdrs, (w->cap ? w->cap * 2 : 4) * sizeof(header_t));
        if (n == NULL) {
            return;
        }
        w->hdrs = n;
        w->cap = w->cap ? w->cap * 2 : 4;
    }
    w->hdrs[w->nhdrs].name = strdup(name);
    w->hdrs[w->nhdrs].value = strdup(value);
    if (w->hdrs[w->nhdrs].name == NULL || w->hdrs[w->nhdrs].value == NULL) {
        free(w->hdrs[w->nhdrs].name);
        free(w->hdrs[w->nhdrs].value);
        return;
    }
    w->nhdrs++;
}


static void
resp_free(enc_resp_t *w)
{
    size_t  i;

    for (i = 0; i < w->nhdrs; i++) {
        free(w->hdrs[i].name);
        free(w->hdrs[i].value);
    }
    free(w->hdrs);
    free(w->body);
}


/* ---- request accessors -------------------------------------------------- */

const char *
enc_req_method(enc_req_t *r)
{
    return r->method;
}


const char *
enc_req_path(enc_req_t *r)
{
    return r->path;
}


const char *
enc_req_param(enc_req_t *r, const char *name)
{
    size_t  i;

    for (i = 0; i < r->nparams; i++) {
        if (strcmp(r->params[i].name, name) == 0) {
            return r->params[i].value;
        }
    }
    return NULL;
}


const char *
enc_req_query(enc_req_t *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}


const char *
enc_req_header(enc_req_t *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}


const char *
enc_req_cookie(enc_req_t *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, name);
}


json_t *
enc_req_json(enc_req_t *r)
{
    return r->json;
}


const char *
enc_req_id(enc_req_t *r)
{
    return r->id;
}


static const char *
nonempty_header(enc_req_t *r, const char *name)
{
    const char  *v = enc_req_header(r, name);

    return (v != NULL && v[0] != '\0') ? v : NULL;
}


const char *
enc_req_user_id(enc_req_t *r)
{
    return nonempty_header(r, "X-Encore-User-Id");
}


const char *
enc_req_user_role(enc_req_t *r)
{
    return nonempty_header(r, "X-Encore-User-Role");
}


const char *
enc_req_user_name(enc_req_t *r)
{
    return nonempty_header(r, "X-Encore-User-Name");
}


const enc_caller_t *
enc_req_caller(enc_req_t *r)
{
    return &r->caller;
}


unsigned
enc_req_route_flags(enc_req_t *r)
{
    return r->route >= 0 ? r->h->routes[r->route].flags : 0;
}


/* ---- deferred answers (stream.c) ---------------------------------------- */

int
enc_http_defer_info(enc_req_t *r, enc_http_defer_info_t *out)
{
    const union MHD_ConnectionInfo  *ci;

    if (r->defer != NULL) {
        enc_log_error("http: a request deferred twice");
        return -1;
    }
    ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    out->h = r->h;
    out->conn = r->conn;
    out->fd = ci != NULL ? ci->connect_fd : -1;
    out->id = r->id;
    out->method = r->method;
    out->path = r->path;
    out->route = r->route >= 0 && r->h->routes[r->route].name != NULL
                 ? r->h->routes[r->route].name : "unnamed";
    out->start = r->start;
    out->log_requests = r->h->log_requests;
    out->stream_buffer = r->h->stream_buffer;
    return 0;
}


int
enc_http_deferrable(enc_http_t *h)
{
    return !atomic_load(&h->quiesced) && !atomic_load(&h->stopping);
}


void
enc_http_deferred(enc_req_t *r, enc_resp_t *w, enc_defer_t *d)
{
    r->defer = d;
    w->deferred = 1;
    w->set = 1;
}


enc_resp_t *
enc_http_resp_new(void)
{
    return calloc(1, sizeof(enc_resp_t));
}


void
enc_http_resp_free(enc_resp_t *w)
{
    if (w != NULL) {
        resp_free(w);
        free(w);
    }
}


int
enc_http_resp_status(enc_resp_t *w)
{
    return w->set ? w->status : 500;
}


void
enc_http_resp_stream(enc_resp_t *w, int status, const char *ctype)
{
    resp_set(w, status, ctype, NULL, 0);
}


/* ---- request processing ------------------------------------------------- */

static int
request_id_valid(const char *s)
{
    size_t  n = 0;

    for (; s[n] != '\0'; n++) {
        char  c = s[n];
        if (n == REQUEST_ID_MAX
            || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                 || (c >= '0' && c <= '9') || c == '-' || c == '_'
                 || c == '.' || c == ':' || c == '+' || c == '/' || c == '='))
        {
            return 0;
        }
    }
    return n > 0;
}


static void
request_id_generate(char *out)
{
    static atomic_ulong  counter;
    unsigned char        rnd[16];
    size_t               i;
    struct timespec      ts;

    if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t) sizeof(rnd)) {
        /* entropy not ready (early boot): unique is all we need */
        (void) clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(out, REQUEST_ID_MAX + 1, "%lx%lx-%lx", (long) ts.tv_sec,
                 (long) ts.tv_nsec, atomic_fetch_add(&counter, 1));
        return;
    }
    for (i = 0; i < sizeof(rnd); i++) {
        snprintf(out + i * 2, 3, "%02x", rnd[i]);
    }
}


/* marks the connection busy while a request is open on it */
static void
conn_busy(enc_http_t *h, conn_t *c, int busy)
{
    if (c == NULL) {
        return;
    }
    pthread_mutex_lock(&h->lock);
    c->busy = busy;
    if (!busy) {
        (void) clock_gettime(CLOCK_MONOTONIC, &c->idle_since);
    }
    pthread_mutex_unlock(&h->lock);
}


static enc_req_t *
req_new(enc_http_t *h, struct MHD_Connection *conn, const char *url,
        const char *method)
{
    enc_req_t                       *r;
    const char                      *id;
    const union MHD_ConnectionInfo  *ci;

    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return NULL;
    }
    r->h = h;
    r->conn = conn;
    r->method = method;
    r->route = ROUTE_NONE;
    (void) clock_gettime(CLOCK_MONOTONIC, &r->start);
    r->path = strdup(url);
    r->segbuf = malloc(strlen(url) + 1);
    if (r->path == NULL || r->segbuf == NULL) {
        free(r->path);
        free(r->segbuf);
        free(r);
        return NULL;
    }

    id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (id != NULL && request_id_valid(id)) {
        snprintf(r->id, sizeof(r->id), "%s", id);
    } else {
        request_id_generate(r->id);
    }

    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    r->cs = ci != NULL ? ci->socket_context : NULL;
    conn_busy(h, r->cs, 1);
    atomic_fetch_add(&h->inflight, 1);
    return r;
}


static void
req_free(enc_req_t *r)
{
    conn_busy(r->h, r->cs, 0);
    atomic_fetch_sub(&r->h->inflight, 1);
    json_decref(r->json);
    free(r->body);
    free(r->path);
    free(r->segbuf);
    free(r);
}


static int
is_get(const char *method)
{
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}


static void
route_request(enc_req_t *r)
{
    static const struct {
        const char  *path;
        int          route;
    } builtins[] = {
        { "/healthz", ROUTE_HEALTHZ },
        { "/readyz", ROUTE_READYZ },
        { "/metrics", ROUTE_METRICS },
    };
    size_t  i;

    for (i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
        if (strcmp(r->path, builtins[i].path) == 0) {
            if (is_get(r->method)) {
                r->route = builtins[i].route;
            } else {
                r->route = ROUTE_BAD_METHOD;
                snprintf(r->allow, sizeof(r->allow), "GET, HEAD, OPTIONS");
            }
            return;
        }
    }
    r->route = enc_router_match(r->h->router, r->method, r->path, r->segbuf,
                                strlen(r->path) + 1, r->params, &r->nparams,
                                r->allow, sizeof(r->allow));
}


static const char *
metric_name(enc_req_t *r)
{
    switch (r->route) {
    case ROUTE_NONE:       return "not_found";
    case ROUTE_BAD_METHOD: return "method_not_allowed";
    case ROUTE_HEALTHZ:    return "healthz";
    case ROUTE_READYZ:     return "readyz";
    case ROUTE_METRICS:    return "metrics";
    default:
        break;
    }
    return r->h->routes[r->route].name ? r->h->routes[r->route].name
                                       : "unnamed";
}


/*
 * The libmicrohttpd response for w: the body is handed over, not copied
 * (malloc'ed, see resp_set: libmicrohttpd frees it with the response),
 * or with crc a body read from crc as it comes, chunked (stream.c).  NULL
 * on failure (crfc is then not called).
 */
struct MHD_Response *
enc_http_response(enc_http_t *h, enc_resp_t *w, const char *id,
    MHD_ContentReaderCallback crc, void *cls,
    MHD_ContentReaderFreeCallback crfc)
{
    size_t                i;
    struct MHD_Response  *mr;

    if (!w->set) {
        resp_static_problem(w, 500);
    }
    if (crc != NULL) {
        mr = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN,
                                               ENC_STREAM_BLOCK, crc, cls,
                                               crfc);
    } else if (w->body != NULL) {
        mr = MHD_create_response_from_buffer(w->len, w->body,
                                             MHD_RESPMEM_MUST_FREE);
        if (mr != NULL) {
            w->body = NULL;
        }
    } else {
        mr = MHD_create_response_from_buffer(0, (char *) "",
                                             MHD_RESPMEM_PERSISTENT);
    }
    if (mr == NULL) {
        return NULL;
    }
    if (w->ctype[0] != '\0') {
        (void) MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE,
                                       w->ctype);
    }
    (void) MHD_add_response_header(mr, "X-Request-Id", id);
    /* draining: libmicrohttpd closes the connection after this answer, and
       the client (nginx) will not send another request on it */
    if (atomic_load(&h->quiesced)) {
        (void) MHD_add_response_header(mr, MHD_HTTP_HEADER_CONNECTION,
                                       "close");
    }
    for (i = 0; i < w->nhdrs; i++) {
        if (MHD_add_response_header(mr, w->hdrs[i].name, w->hdrs[i].value)
            != MHD_YES)
        {
            enc_log_warn("http: response header \"%s\" rejected",
                         w->hdrs[i].name);
        }
    }
    return mr;
}


/* the request's metrics and log line, once its answer is known */
void
enc_http_account(const char *route, int builtin, const char *method,
    const char *path, int status, const struct timespec *start,
    int log_requests, const char *note)
{
    double           secs;
    struct timespec  now;

    (void) clock_gettime(CLOCK_MONOTONIC, &now);
    secs = (double) (now.tv_sec - start->tv_sec)
           + (double) (now.tv_nsec - start->tv_nsec) / 1e9;
    enc_metrics_http(route, status, secs);
    /* nginx's access log has every request with the same request id: the
       line here is a choice (log.requests), except for server errors */
    if (builtin) {
        enc_log_debug("%s %s %d %.3fms%s", method, path, status,
                      secs * 1000, note);
    } else if (log_requests) {
        enc_log_info("%s %s %d %.3fms%s", method, path, status, secs * 1000,
                     note);
    } else if (status >= 500) {
        enc_log_warn("%s %s %d %.3fms%s", method, path, status, secs * 1000,
                     note);
    }
}


static enum MHD_Result
send_resp(enc_req_t *r, enc_resp_t *w)
{
    enum MHD_Result       ret;
    struct MHD_Response  *mr;

    mr = enc_http_response(r->h, w, r->id, NULL, NULL, NULL);
    if (mr == NULL) {
        return MHD_NO;
    }
    ret = MHD_queue_response(r->conn, (unsigned) w->status, mr);
    MHD_destroy_response(mr);
    r->answered = 1;

    enc_http_account(metric_name(r), r->route == ROUTE_HEALTHZ
                     || r->route == ROUTE_METRICS
                     || r->route == ROUTE_READYZ,
                     r->method, r->path, w->status, &r->start,
                     r->h->log_requests, "");
    return ret;
}


/* /healthz answers from memory only: a stalled database must not make a
   live process look dead (restarted); /readyz is the one that asks it, with
   a short deadline so a stalled database reads as "not ready" in time */
static void
builtin_readyz(enc_req_t *r, enc_resp_t *w)
{
    if (atomic_load(&r->h->quiesced)) {
        enc_resp_problem(w, 503, NULL, "draining");
        return;
    }
    if (enc_pg_configured()
        && enc_pg_ping(enc_pg_thread(), READYZ_TIMEOUT_MS) != 0)
    {
        enc_resp_problem(w, 503, NULL, "database unreachable");
        return;
    }
    if (r->h->ready_check != NULL && r->h->ready_check(r->h->ready_arg) != 0) {
        enc_resp_problem(w, 503, NULL, "not ready");
        return;
    }
    enc_resp_json(w, 200, json_pack("{s:s}", "status", "ready"));
}


static void
builtin_metrics(enc_resp_t *w)
{
    char    *buf = NULL;
    size_t   len = 0;
    FILE    *f;

    f = open_memstream(&buf, &len);
    if (f == NULL) {
        resp_static_problem(w, 500);
        return;
    }
    enc_metrics_render(f);
    if (fclose(f) != 0) {
        free(buf);
        resp_static_problem(w, 500);
        return;
    }
    resp_set(w, 200, "text/plain; version=0.0.4; charset=utf-8", buf, len);
}


static int
content_type_json(const char *ct)
{
    size_t  n = sizeof("application/json") - 1;

    if (ct == NULL || strncasecmp(ct, "application/json", n) != 0) {
        return 0;
    }
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t';
}


/* 0 when the caller may use the route, else a problem is set.  The
   identity is parsed here once for every route, so handlers read a
   validated enc_caller_t */
static int
check_identity(enc_req_t *r, enc_resp_t *w)
{
    unsigned     flags = r->h->routes[r->route].flags;
    enc_role_t   min;

    if (enc_caller_parse(enc_req_user_id(r), enc_req_user_role(r),
                         enc_req_user_name(r), &r->caller) != 0)
    {
        enc_log_warn("http: refusing a malformed identity from the edge "
                     "(X-Encore-User-Id/-Role); is a client reaching the "
                     "worker around nginx?");
        enc_resp_header(w, "WWW-Authenticate", "Bearer");
        enc_resp_problem(w, 401, NULL, "the forwarded identity is not valid");
        return -1;
    }

    if (!(flags & (ENC_ROUTE_USER | ENC_ROUTE_MODERATOR | ENC_ROUTE_ADMIN))) {
        return 0;
    }
    if (r->caller.id == NULL) {
        enc_resp_header(w, "WWW-Authenticate", "Bearer");
        enc_resp_problem(w, 401, NULL, "authentication required");
        return -1;
    }
    min = (flags & ENC_ROUTE_ADMIN) ? ENC_ROLE_ADMIN
          : (flags & ENC_ROUTE_MODERATOR) ? ENC_ROLE_MODERATOR
          : ENC_ROLE_USER;
    if (!enc_caller_is(&r->caller, min)) {
        enc_resp_problem(w, 403, NULL, "this needs a higher role");
        return -1;
    }
    return 0;
}


static enum MHD_Result
query_nul(void *cls, enum MHD_ValueKind kind, const char *key,
    size_t key_size, const char *value, size_t value_size)
{
    const char  **bad = cls;

    if (memchr(key, '\0', key_size) != NULL
        || (value != NULL && memchr(value, '\0', value_size) != NULL))
    {
        *bad = key;
        return MHD_NO;
    }
    return MHD_YES;
}


/* 0 when the query string can be read, else a problem is set: a %00 in a
   parameter would cut its value short at enc_req_query (a C string), so
   "?q=a%00b" would be read as "?q=a" */
static int
check_query(enc_req_t *r, enc_resp_t *w)
{
    char         detail[160];
    const char  *bad = NULL;

    MHD_get_connection_values_n(r->conn, MHD_GET_ARGUMENT_KIND, query_nul,
                                &bad);
    if (bad == NULL) {
        return 0;
    }
    snprintf(detail, sizeof(detail), "the query parameter \"%.64s\" holds "
             "U+0000 (%%00)", bad);
    enc_resp_problem(w, 400, NULL, detail);
    return -1;
}


static enum MHD_Result
coding_other(void *cls, enum MHD_ValueKind kind, const char *key,
    size_t key_size, const char *value, size_t value_size)
{
    int    *other = cls;
    size_t  n = sizeof("identity") - 1;

    if (strcasecmp(key, "Content-Encoding") != 0 || value == NULL) {
        return MHD_YES;
    }
    while (value_size > 0 && (*value == ' ' || *value == '\t')) {
        value++;
        value_size--;
    }
    while (value_size > 0
           && (value[value_size - 1] == ' ' || value[value_size - 1] == '\t'))
    {
        value_size--;
    }
    if (value_size == 0
        || (value_size == n && strncasecmp(value, "identity", n) == 0))
    {
        return MHD_YES;
    }
    *other = 1;
    return MHD_NO;
}


/* 0 when the body is acceptable for the route, else a problem is set */
static int
check_body(enc_req_t *r, enc_resp_t *w)
{
    int            coded = 0;
    const char    *detail;
    json_error_t   err;

    if (r->too_large) {
        enc_resp_problem(w, 413, NULL, "request body too large");
        return -1;
    }
    /* no handler decodes a body: a gzip one must not be read as the JSON
       it is not.  The edge refuses it first (the route module); this is
       for whatever reaches a worker around it */
    if (r->len > 0) {
        MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, coding_other,
                                    &coded);
        if (coded) {
            enc_resp_problem(w, 415, NULL, "the request body must be sent "
                             "without a Content-Encoding");
            return -1;
        }
    }
    if (!(r->h->routes[r->route].flags & ENC_ROUTE_JSON_BODY) || r->len == 0) {
        return 0;
    }
    if (!content_type_json(enc_req_header(r, "Content-Type"))) {
        enc_resp_problem(w, 415, NULL,
                         "the request body must be application/json");
        return -1;
    }
    /* \u0000 in a string parses (the getters refuse NUL in a member they
       read: 422); jansson refuses outright what it cannot represent, though
       RFC 8259 allows it: a \u escape of a lone surrogate (text here is
       UTF-8), \u0000 in a member name, a number beyond a long long or a
       double (RFC 8259 section 6 lets a parser limit them).  Those stay
       400 with a detail saying so (schemas/api/openapi.yaml, BadRequest) */
    r->json = json_loadb(r->body, r->len,
                         JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
    if (r->json == NULL) {
        /* err.text quotes the input near the error (a password, say):
           the position only, and a fixed detail for the client */
        enc_log_debug("http: malformed json at line %d column %d",
                      err.line, err.column);
        if (json_error_code(&err) == json_error_null_byte_in_key) {
            detail = "the request body has \\u0000 in a member name";
        } else if (json_error_code(&err) == json_error_numeric_overflow) {
            detail = "the request body has a number out of range: integers "
                     "must fit in 64 bits, others in a double";
        } else if (strncmp(err.text, "invalid Unicode", 15) == 0) {
            detail = "the request body has a \\u escape of a lone "
                     "surrogate: strings must be Unicode text";
        } else {
            detail = "the request body is not valid JSON";
        }
        enc_resp_problem(w, 400, NULL, detail);
        return -1;
    }
    if (!json_is_object(r->json)) {
        enc_resp_problem(w, 400, NULL,
                         "the request body must be a JSON object");
        return -1;
    }
    return 0;
}


static enum MHD_Result
finish(enc_req_t *r)
{
    enc_resp_t       w;
    enum MHD_Result  ret;

    memset(&w, 0, sizeof(w));
    enc_log_set_request_id(r->id);
    atomic_fetch_add(&r->h->running, 1);

    switch (r->route) {
    case ROUTE_NONE:
        enc_resp_problem(&w, 404, NULL, "no such resource");
        break;
    case ROUTE_BAD_METHOD:
        enc_resp_header(&w, "Allow", r->allow);
        if (strcmp(r->method, "OPTIONS") == 0) {
            enc_resp_empty(&w, 204);
        } else {
            enc_resp_problem(&w, 405, NULL, "method not allowed");
        }
        break;
    case ROUTE_HEALTHZ:
        enc_resp_json(&w, 200, json_pack("{s:s}", "status", "ok"));
        break;
    case ROUTE_READYZ:
        builtin_readyz(r, &w);
        break;
    case ROUTE_METRICS:
        builtin_metrics(&w);
        break;
    default:
        if (check_identity(r, &w) != 0 || check_query(r, &w) != 0
            || check_body(r, &w) != 0)
        {
            break;
        }
        r->h->routes[r->route].handler(r, &w, r->h->app);
        if (w.deferred) {
            break;
        }
        if (!w.set) {
            enc_log_error("http: handler \"%s\" set no response",
                          metric_name(r));
            enc_resp_problem(&w, 500, NULL, "internal error");
        }
        break;
    }
    atomic_fetch_sub(&r->h->running, 1);

    if (w.deferred) {
        /* the producer answers (stream.c); the connection is suspended
           until it does, unless it already has */
        resp_free(&w);
        enc_log_set_request_id(NULL);
        return enc_stream_serve(r->defer);
    }
    ret = send_resp(r, &w);
    resp_free(&w);
    enc_log_set_request_id(NULL);
    return ret;
}


/* appends upload data; past max_body only counts it */
static enum MHD_Result
accumulate(enc_req_t *r, const char *data, size_t size)
{
    size_t   ncap;
    char    *nb;

    if (r->route < 0 || r->too_large || r->answered) {
        r->discarded += size;
        return r->discarded > r->h->max_body + DISCARD_SLACK ? MHD_NO : MHD_YES;
    }
    if (size > r->h->max_body - r->len) {
        r->too_large = 1;
        r->discarded = r->len + size;
        free(r->body);
        r->body = NULL;
        r->len = 0;
        return MHD_YES;
    }
    if (r->len + size + 1 > r->cap) {
        ncap = r->cap ? r->cap : 1024;
        while (ncap < r->len + size + 1) {
            ncap *= 2;
        }
        if (ncap > r->h->max_body + 1) {
            ncap = r->h->max_body + 1;
        }
        nb = realloc(r->body, ncap);
        if (nb == NULL) {
            return MHD_NO;
        }
        r->body = nb;
        r->cap = ncap;
    }
    memcpy(r->body + r->len, data, size);
    r->len += size;
    r->body[r->len] = '\0';
    return MHD_YES;
}


static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
           const char *method, const char *version, const char *upload_data,
           size_t *upload_data_size, void **con_cls)
{
    char                *end;
    enc_req_t           *r = *con_cls;
    enc_resp_t           w;
    enc_http_t          *h = cls;
    const char          *cl;
    enum MHD_Result      ret;
    unsigned long long   n;

    if (r == NULL) {
        r = req_new(h, conn, url, method);
        if (r == NULL) {
            return MHD_NO;
        }
        *con_cls = r;
        route_request(r);

        /* refuse an announced oversized body before reading it */
        cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                         MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl != NULL && r->route >= 0) {
            errno = 0;
            n = strtoull(cl, &end, 10);
            if (errno != 0 || n > h->max_body) {
                memset(&w, 0, sizeof(w));
                enc_log_set_request_id(r->id);
                /* the contract's order: route, credentials, then body */
                if (check_identity(r, &w) == 0) {
                    enc_resp_problem(&w, 413, NULL, "request body too large");
                }
                ret = send_resp(r, &w);
                resp_free(&w);
                enc_log_set_request_id(NULL);
                return ret;
            }
        }
        return MHD_YES;
    }

    if (*upload_data_size > 0) {
        ret = accumulate(r, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return ret;
    }
    if (r->defer != NULL) {
        /* called again once resumed: the producer answered, or went */
        return enc_stream_serve(r->defer);
    }
    if (r->answered) {
        return MHD_YES;
    }
    return finish(r);
}


static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    enc_req_t  *r = *con_cls;

    if (r == NULL) {
        return;
    }
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && !r->answered
        && r->defer == NULL)
    {
        enc_log_debug("http: %s %s aborted (%d)", r->method, r->path,
                      (int) toe);
    }
    if (r->defer != NULL) {
        /* before the request goes: the producer learns the client left */
        enc_stream_completed(r->defer, toe);
        r->defer = NULL;
    }
    req_free(r);
    *con_cls = NULL;
}


/*
 * MHD_OPTION_NOTIFY_CONNECTION, on the connection's pool thread: keeps
 * h->conns.  libmicrohttpd reports CLOSED before it closes the socket, so
 * while h->lock is held every fd on the list is still its connection's
 * (close_idle never shuts down a reused descriptor).
 */
static void
on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
              enum MHD_ConnectionNotificationCode toe)
{
    conn_t                          *c;
    enc_http_t                      *h = cls;
    const union MHD_ConnectionInfo  *ci;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        *socket_context = NULL;
        if (atomic_load(&h->quiesced)) {
            atomic_fetch_add(&h->started_late, 1);
        }
        ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        c = calloc(1, sizeof(*c));
        if (c == NULL || ci == NULL) {
            /* untracked: a drain waits for it to close by itself */
            free(c);
            return;
        }
        c->fd = ci->connect_fd;
        (void) clock_gettime(CLOCK_MONOTONIC, &c->idle_since);
        pthread_mutex_lock(&h->lock);
        c->next = h->conns;
        if (h->conns != NULL) {
            h->conns->prev = c;
        }
        h->conns = c;
        pthread_mutex_unlock(&h->lock);
        *socket_context = c;
        return;
    }

    c = *socket_context;
    if (c == NULL) {
        return;
    }
    pthread_mutex_lock(&h->lock);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        h->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    pthread_mutex_unlock(&h->lock);
    free(c);
    *socket_context = NULL;
}


static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char  msg[512];
    size_t n;

    (void) vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) {
        msg[--n] = '\0';
    }
    enc_log_warn("microhttpd: %s", msg);
}


/* ---- listening sockets -------------------------------------------------- */

static int
listen_unix(enc_http_t *h, const char *path, const enc_config_t *c)
{
    int                 fd, probe, rc;
    long                mode;
    char               *end, grbuf[4096];
    mode_t              old_mask;
    const char         *group;
    struct stat         st;
    struct group        gr, *grp = NULL;
    struct sockaddr_un  sa;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        enc_log_error("http: unix socket path \"%s\" longer than %zu bytes",
                      path, sizeof(sa.sun_path) - 1);
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    strcpy(sa.sun_path, path);

    errno = 0;
    mode = strtol(enc_config_str(c, "http.socket_mode"), &end, 8);
    if (errno != 0 || *end != '\0' || mode < 0 || mode > 0777) {
        enc_log_error("http: bad http.socket_mode \"%s\"",
                      enc_config_str(c, "http.socket_mode"));
        return -1;
    }

    /* a stale socket from a crashed run is removed; a live one is not
       stolen from the process still serving it */
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            enc_log_error("http: \"%s\" exists and is not a socket", path);
            return -1;
        }
        probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0
            && connect(probe, (struct sockaddr *) &sa, sizeof(sa)) == 0)
        {
            close(probe);
            enc_log_error("http: \"%s\" is in use by another process", path);
            return -1;
        }
        if (probe >= 0) {
            close(probe);
        }
        (void) unlink(path);
    }

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        enc_log_error("http: socket(): %s", strerror(errno));
        return -1;
    }
    /*
     * The socket appears owner-only (umask 0177) and gets its group and
     * mode after: never, even for an instant, wider than configured.  The
     * umask is process-wide, but this runs at start-up and only narrows.
     */
    old_mask = umask(0177);
    rc = bind(fd, (struct sockaddr *) &sa, sizeof(sa));
    (void) umask(old_mask);
    if (rc != 0) {
        enc_log_error("http: bind \"%s\": %s", path, strerror(errno));
        goto failed;
    }
    snprintf(h->unix_path, sizeof(h->unix_path), "%s", path);

    group = enc_config_str(c, "http.socket_group");
    if (group != NULL && group[0] != '\0') {
        rc = getgrnam_r(group, &gr, grbuf, sizeof(grbuf), &grp);
        if (rc != 0 || grp == NULL) {
            enc_log_warn("http: http.socket_group \"%s\" %s; socket \"%s\""
                         " keeps its group", group,
                         rc != 0 ? strerror(rc) : "does not exist", path);
        } else if (chown(path, (uid_t) -1, grp->gr_gid) != 0) {
            enc_log_warn("http: cannot give socket \"%s\" to group \"%s\":"
                         " %s", path, group, strerror(errno));
        }
    }
    if (chmod(path, (mode_t) mode) != 0) {
        enc_log_error("http: chmod \"%s\": %s", path, strerror(errno));
        goto failed;
    }
    if (listen(fd, 511) != 0) {
        enc_log_error("http: listen \"%s\": %s", path, strerror(errno));
        goto failed;
    }
    return fd;

failed:
    close(fd);
    if (h->unix_path[0] != '\0') {
        (void) unlink(h->unix_path);
        h->unix_path[0] = '\0';
    }
    return -1;
}


/*
 * The listening socket a service manager (systemd's socket units) or the
 * predecessor in a hand-over passed: sd_listen_fds(3)'s protocol, without
 * libsystemd.  LISTEN_PID must be this process and LISTEN_FDS at least 1;
 * the first descriptor, 3, is used.  The variables are removed, so that
 * nothing this process starts takes them for its own.  Returns the fd, -1
 * when none was passed, -2 when one was passed but is not a listening
 * stream socket (logged).  *ours: it came from a hand-over (LISTEN_FDNAMES
 * "handover"), so the socket's path is this process's to remove at exit;
 * a service manager's socket is left alone.
 */
static int
listen_inherited(int *ours)
{
    int          fd = 3, type = 0, acc = 0;
    long         pid, n;
    char        *end;
    socklen_t    len;
    const char  *vpid = getenv("LISTEN_PID"), *vfds = getenv("LISTEN_FDS");
    const char  *names = getenv("LISTEN_FDNAMES");

    *ours = 0;
    if (vpid == NULL || vfds == NULL) {
        return -1;
    }
    errno = 0;
    pid = strtol(vpid, &end, 10);
    if (errno != 0 || *end != '\0' || pid != (long) getpid()) {
        return -1;                 /* meant for another process */
    }
    n = strtol(vfds, &end, 10);
    *ours = names != NULL && strcmp(names, "handover") == 0;
    (void) unsetenv("LISTEN_PID");
    (void) unsetenv("LISTEN_FDS");
    (void) unsetenv("LISTEN_FDNAMES");
    if (errno != 0 || *end != '\0' || n < 1) {
        enc_log_error("http: LISTEN_FDS \"%s\" names no socket", vfds);
        return -2;
    }
    if (n > 1) {
        enc_log_warn("http: %ld sockets passed; serving the first only", n);
    }
    len = sizeof(type);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0
        || type != SOCK_STREAM)
    {
        enc_log_error("http: the passed descriptor 3 is not a stream socket");
        return -2;
    }
    len = sizeof(acc);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) != 0
        || !acc)
    {
        enc_log_error("http: the passed socket 3 is not listening");
        return -2;
    }
    (void) fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
}


/* the address of a passed socket, for the log ("unix:/run/x.sock") */
static void
socket_name(int fd, char *buf, size_t len)
{
    char                     host[64];
    socklen_t                sl;
    struct sockaddr_storage  ss;
    struct sockaddr_un      *un = (struct sockaddr_un *) &ss;

    sl = sizeof(ss);
    memset(&ss, 0, sizeof(ss));
    if (getsockname(fd, (struct sockaddr *) &ss, &sl) != 0) {
        snprintf(buf, len, "fd %d", fd);
    } else if (ss.ss_family == AF_UNIX) {
        snprintf(buf, len, "unix:%s", un->sun_path[0] != '\0'
                 ? un->sun_path : "(abstract)");
    } else if (getnameinfo((struct sockaddr *) &ss, sl, host, sizeof(host),
                           NULL, 0, NI_NUMERICHOST) == 0)
    {
        snprintf(buf, len, "tcp:%s:%d", host,
                 ntohs(((struct sockaddr_in *) &ss)->sin_port));
    } else {
        snprintf(buf, len, "fd %d", fd);
    }
}


static int
listen_tcp(const char *spec)
{
    int               fd = -1, on = 1, rc;
    char              host[256], *colon;
    const char       *port;
    struct addrinfo   hints, *res = NULL, *ai;

    if (strlen(spec) >= sizeof(host)) {
        return -1;
    }
    strcpy(host, spec);
    colon = strrchr(host, ':');
    if (colon == NULL) {
        enc_log_error("http: tcp listen address needs host:port");
        return -1;
    }
    *colon = '\0';
    port = colon + 1;
    if (host[0] == '[' && colon > host + 1 && colon[-1] == ']') {
        colon[-1] = '\0';
        memmove(host, host + 1, strlen(host));
    }

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (rc != 0) {
        enc_log_error("http: cannot resolve \"%s\": %s", spec,
                      gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            continue;
        }
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == 0
            && bind(fd, ai->ai_addr, ai->ai_addrlen) == 0
            && listen(fd, 511) == 0)
        {
            break;
        }
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        enc_log_error("http: cannot listen on \"%s\": %s", spec,
                      strerror(errno));
    }
    freeaddrinfo(res);
    return fd;
}


/* ---- server ------------------------------------------------------------- */

enc_http_t *
enc_http_start(const enc_config_t *c, const enc_route_t *routes, void *app)
{
    int          fd = -1, ours = 0;
    char         name[160];
    unsigned     flags;
    const char  *listen_spec;
    enc_http_t  *h;

    h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return NULL;
    }
    h->routes = routes;
    h->app = app;
    h->max_body = (size_t) enc_config_int(c, "http.max_body");
    h->stream_buffer = (size_t) enc_config_int(c, "http.stream_buffer");
    h->log_requests = enc_config_bool(c, "log.requests");
    h->idle_close_ms = enc_config_int(c, "drain.idle_close_ms");
    atomic_init(&h->inflight, 0);
    atomic_init(&h->running, 0);
    atomic_init(&h->quiesced, 0);
    atomic_init(&h->stopping, 0);
    atomic_init(&h->adopted, 0);
    atomic_init(&h->started_late, 0);
    h->listen_fd = -1;
    if (pthread_mutex_init(&h->lock, NULL) != 0) {
        free(h);
        return NULL;
    }

    h->router = enc_router_new(routes);
    if (h->router == NULL) {
        goto failed;
    }

    listen_spec = enc_config_str(c, "http.listen");
    if (listen_spec == NULL) {
        goto failed;
    }
    /* a passed socket is bound already: its path is not unlinked and
       bound again (the predecessor or the service manager keeps serving
       it meanwhile) */
    fd = listen_inherited(&ours);
    if (fd >= 0) {
        socket_name(fd, name, sizeof(name));
        if (strcmp(name, listen_spec) != 0) {
            enc_log_warn("http: serving the passed socket %s, not"
                         " http.listen %s", name, listen_spec);
        }
        h->shared = !ours;
        if (ours && strncmp(name, "unix:/", 6) == 0
            && strlen(name + 5) < sizeof(h->unix_path))
        {
            memcpy(h->unix_path, name + 5, strlen(name + 5) + 1);
        }
        listen_spec = name;
    } else if (fd == -2) {
        fd = -1;
    } else if (strncmp(listen_spec, "unix:", 5) == 0) {
        fd = listen_unix(h, listen_spec + 5, c);
    } else if (strncmp(listen_spec, "tcp:", 4) == 0) {
        fd = listen_tcp(listen_spec + 4);
    } else {
        enc_log_error("http: http.listen must be unix:/path or tcp:host:port,"
                      " not \"%s\"", listen_spec);
    }
    if (fd < 0) {
        goto failed;
    }

    /* ITC is what lets MHD_quiesce_daemon wake the pool threads, and
       MHD_resume_connection a suspended connection's (stream.c) */
    flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC
            | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
               MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
               MHD_OPTION_LISTEN_SOCKET, fd,
               MHD_OPTION_THREAD_POOL_SIZE,
                   (unsigned) enc_config_int(c, "http.threads"),
               MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
               MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
               MHD_OPTION_CONNECTION_TIMEOUT,
                   (unsigned) enc_config_int(c, "http.timeout_s"),
               MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) CONN_MEMORY_LIMIT,
               MHD_OPTION_STRICT_FOR_CLIENT, (int) 1,
               MHD_OPTION_END);
    if (h->d == NULL) {
        enc_log_error("http: cannot start libmicrohttpd on \"%s\"",
                      listen_spec);
        goto failed;
    }
    h->listen_fd = fd;
    enc_log_info("http: listening on %s with %ld threads%s", listen_spec,
                 enc_config_int(c, "http.threads"),
                 ours ? " (handed over)" : h->shared ? " (passed)" : "");
    return h;

failed:
    if (fd >= 0) {
        close(fd);
    }
    if (h->unix_path[0] != '\0' && !ours) {
        (void) unlink(h->unix_path);
    }
    enc_router_free(h->router);
    (void) pthread_mutex_destroy(&h->lock);
    free(h);
    return NULL;
}


void
enc_http_set_ready_check(enc_http_t *h, int (*check)(void *), void *arg)
{
    h->ready_arg = arg;
    h->ready_check = check;
}


/*
 * Connections the kernel completed that libmicrohttpd had not accepted yet
 * (all pool threads busy) would be reset when the listen socket closes,
 * though the client may already have written its request to them: hand
 * them to libmicrohttpd, which answers them like the others.
 */
static void
adopt_queued(enc_http_t *h, int fd)
{
    int                      cfd, flags;
    socklen_t                len;
    struct sockaddr_storage  sa;

    flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
        return;
    }
    for ( ;; ) {
        len = sizeof(sa);
        cfd = accept4(fd, (struct sockaddr *) &sa, &len, SOCK_CLOEXEC);
        if (cfd < 0 && errno == EINTR) {
            continue;
        }
        if (cfd < 0) {
            return;                   /* EAGAIN: the queue is empty */
        }
        /* closes cfd itself on failure */
        if (MHD_add_connection(h->d, cfd, (struct sockaddr *) &sa, len)
            != MHD_YES)
        {
            enc_log_warn("http: a queued connection could not be taken"
                         " over while quiescing");
            continue;
        }
        atomic_fetch_add(&h->adopted, 1);
    }
}


void
enc_http_quiesce(enc_http_t *h)
{
    MHD_socket  fd;

    if (h == NULL || atomic_exchange(&h->quiesced, 1)) {
        return;
    }
    if (h->shared) {
        /* the socket, its path and its accept queue are the successor's
           (or the service manager's, which starts one): only stop
           accepting from it */
        fd = MHD_quiesce_daemon(h->d);
        h->listen_fd = -1;
        if (fd != MHD_INVALID_SOCKET) {
            close(fd);
        }
        return;
    }
    /* first, so that no client can connect by path any more: the accept
       queue adopt_queued empties is then the last one */
    if (h->unix_path[0] != '\0') {
        (void) unlink(h->unix_path);
        h->unix_path[0] = '\0';
    }
    fd = MHD_quiesce_daemon(h->d);
    h->listen_fd = -1;
    if (fd != MHD_INVALID_SOCKET) {
        adopt_queued(h, fd);
        close(fd);
    }
}


int
enc_http_listen_fd(enc_http_t *h)
{
    return h != NULL && !atomic_load(&h->quiesced) ? h->listen_fd : -1;
}


void
enc_http_share(enc_http_t *h)
{
    if (h != NULL) {
        h->shared = 1;
        h->unix_path[0] = '\0';
    }
}


unsigned
enc_http_connections(enc_http_t *h)
{
    const union MHD_DaemonInfo  *di;

    /* libmicrohttpd 0.9.75 (Debian 12) sums its pool threads' counts for
       a daemon with an internal polling thread (what we start); it writes
       the sum into the daemon, so only the draining thread may ask */
    di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return di != NULL ? di->num_connections : 0;
}


static long
ms_since(const struct timespec *t, const struct timespec *now)
{
    return (now->tv_sec - t->tv_sec) * 1000
           + (now->tv_nsec - t->tv_nsec) / 1000000;
}


/*
 * Shuts down the connections that have no request open, have been idle
 * for drain.idle_close_ms and hold no unread bytes (a request arriving).  The
 * connection's pool thread then reads EOF and closes it; the client sees
 * the close on its idle connection and does not reuse it.  The window in
 * which a client picks the connection just as it is shut down cannot be
 * closed from this side; it is the one every HTTP/1.1 server closing idle
 * connections has, and these checks keep it to the instant itself (and to
 * a client whose request headers are still arriving piecemeal, which
 * nginx, writing them at once, is not).  nginx never meets it: it closes
 * its idle connections sooner (see the top of this file).
 */
static void
close_idle(enc_http_t *h)
{
    int              unread;
    conn_t          *c;
    struct timespec  now;

    (void) clock_gettime(CLOCK_MONOTONIC, &now);
    pthread_mutex_lock(&h->lock);
    for (c = h->conns; c != NULL; c = c->next) {
        if (c->busy || c->closing
            || ms_since(&c->idle_since, &now) < h->idle_close_ms
            || ioctl(c->fd, FIONREAD, &unread) != 0 || unread > 0)
        {
            continue;
        }
        (void) shutdown(c->fd, SHUT_RDWR);
        c->closing = 1;
    }
    pthread_mutex_unlock(&h->lock);
}


int
enc_http_drain(enc_http_t *h, long timeout_ms)
{
    unsigned         n;
    struct timespec  start, now, pause = { 0, DRAIN_POLL_MS * 1000000L };

    if (h == NULL) {
        return 0;
    }
    enc_http_quiesce(h);
    (void) clock_gettime(CLOCK_MONOTONIC, &start);
    for ( ;; ) {
        close_idle(h);
        n = enc_http_connections(h);
        /* a connection adopted at quiesce is counted only once its pool
           thread has started it: until then 0 does not mean drained */
        if (n == 0
            && atomic_load(&h->started_late) >= atomic_load(&h->adopted))
        {
            return 0;
        }
        (void) clock_gettime(CLOCK_MONOTONIC, &now);
        if (ms_since(&start, &now) >= timeout_ms) {
            break;
        }
        (void) nanosleep(&pause, NULL);
    }
    enc_log_warn("http: drain timed out with %u connections open and %d"
                 " requests in flight", n, atomic_load(&h->inflight));
    /* answers still deferred (a reply streaming, a producer that never
       answered) are cancelled: their producers are told, their
       connections closed, which takes a moment */
    if (enc_stream_cancel_all(h) > 0) {
        (void) clock_gettime(CLOCK_MONOTONIC, &start);
        do {
            (void) nanosleep(&pause, NULL);
            (void) clock_gettime(CLOCK_MONOTONIC, &now);
        } while (enc_stream_open(h) > 0
                 && ms_since(&start, &now) < DRAIN_CANCEL_MS);
    }
    return atomic_load(&h->running);
}


void
enc_http_stop(enc_http_t *h)
{
    if (h == NULL) {
        return;
    }
    /* libmicrohttpd must not be stopped with a connection suspended
       (MHD_stop_daemon panics): every deferred answer still open is
       cancelled, which resumes its connection, and none is deferred
       from now on */
    atomic_store(&h->stopping, 1);
    (void) enc_stream_cancel_all(h);
    /* after quiesce MHD no longer owns the listen socket; before it,
       MHD_stop_daemon closes it */
    MHD_stop_daemon(h->d);
    enc_stream_idle();
    if (h->unix_path[0] != '\0' && !h->shared) {
        (void) unlink(h->unix_path);
    }
    enc_router_free(h->router);
    /* every connection was reported CLOSED by MHD_stop_daemon: conns is
       empty */
    (void) pthread_mutex_destroy(&h->lock);
    free(h);
}
