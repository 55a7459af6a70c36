/*
 * http: the worker's HTTP/1.1 server on libmicrohttpd, a route table with
 * {param} templates, and the request/response objects handlers see.
 *
 * Threading: libmicrohttpd's internal thread pool (http.threads) runs the
 * handlers; a handler may block (PostgreSQL).  The request id is set as the
 * thread's log request id for the duration of the handler.
 *
 * What the library answers before a handler runs:
 *   404 unknown path, 405 + Allow for a known path with another method,
 *   204 + Allow for OPTIONS, HEAD wherever GET is;
 *   401/403 for ENC_ROUTE_USER/_MODERATOR/_ADMIN routes without the
 *   identity or the role the route needs;
 *   413 when the body exceeds http.max_body;
 *   415 for a non-empty body with a Content-Encoding other than identity
 *   (no handler decodes one);
 *   for ENC_ROUTE_JSON_BODY routes with a non-empty body: 415 unless the
 *   Content-Type is application/json, 400 unless it parses (duplicate keys,
 *   bad UTF-8, "\u0000", overflowing numbers are all malformed) as an object.
 *   An empty body reaches the handler with enc_req_json() == NULL.
 * Built-in routes: GET /healthz (never touches the database), GET /readyz
 * (SELECT 1 with a 2 s deadline, 503 if it fails or while draining),
 * GET /metrics.
 * A handler that sets no response yields a 500 problem.
 */
#ifndef ENC_HTTP_H
#define ENC_HTTP_H

#include <stddef.h>
#include <jansson.h>

#include "caller.h"
#include "config.h"
#include "json.h"

typedef struct enc_req_s   enc_req_t;
typedef struct enc_resp_s  enc_resp_t;

/* runs on a pool thread; must set a response through enc_resp_*() */
typedef void (*enc_handler_pt)(enc_req_t *req, enc_resp_t *resp, void *app);

#define ENC_ROUTE_JSON_BODY  0x01   /* body must be a JSON object */
/* who may call the route, checked before the body (CONTRACT.md: route,
   then credentials, then the body): no identity from the edge -> 401 with
   WWW-Authenticate: Bearer, a role below the route's -> 403 */
#define ENC_ROUTE_USER       0x02   /* any signed-in user */
#define ENC_ROUTE_MODERATOR  0x04   /* moderator or admin */
#define ENC_ROUTE_ADMIN      0x08   /* admin only */
/* the kit's body binding refuses members its field table does not name
   (422) instead of ignoring them (bind.h, kit.h) */
#define ENC_ROUTE_STRICT     0x10

#define ENC_HTTP_PARAMS_MAX   8     /* {param} per template */
#define ENC_HTTP_SEGMENTS_MAX 32    /* path segments per template */

typedef struct {
    const char     *method;    /* "GET", "POST", ... */
    const char     *path;      /* template: "/api/v1/users/{id}" */
    enc_handler_pt  handler;
    unsigned        flags;     /* ENC_ROUTE_* */
    const char     *name;      /* metrics label, e.g. "users_get" */
} enc_route_t;

/* request accessors: all strings owned by the request, valid during the
   handler only */
const char *enc_req_method(enc_req_t *r);
const char *enc_req_path(enc_req_t *r);
const char *enc_req_param(enc_req_t *r, const char *name);
const char *enc_req_query(enc_req_t *r, const char *name);
const char *enc_req_header(enc_req_t *r, const char *name);  /* any case */
const char *enc_req_cookie(enc_req_t *r, const char *name);
json_t     *enc_req_json(enc_req_t *r);          /* borrowed; NULL if none */
const char *enc_req_id(enc_req_t *r);    /* X-Request-Id or generated */
/* identity set by the edge: X-Encore-User-Id / -Role / -Name; NULL if
   absent or empty */
const char *enc_req_user_id(enc_req_t *r);
const char *enc_req_user_role(enc_req_t *r);
const char *enc_req_user_name(enc_req_t *r);
/* the caller, parsed and validated by the runtime before the handler
   (caller.h); anonymous when the edge forwarded no identity */
const enc_caller_t *enc_req_caller(enc_req_t *r);
/* the matched route's ENC_ROUTE_* flags */
unsigned    enc_req_route_flags(enc_req_t *r);

/* responses; the last call wins.  json bodies are stolen (the response
   owns the reference, also on failure) */
void enc_resp_json(enc_resp_t *w, int status, json_t *body);
/* a JSON text made elsewhere (enc_jw_finish): taken, freed with the
   response; NULL answers 500 */
void enc_resp_json_text(enc_resp_t *w, int status, char *text, size_t len);
void enc_resp_problem(enc_resp_t *w, int status, const char *title,
                      const char *detail);
/* 422 + errors[]; takes v->errors (v is empty afterwards) */
void enc_resp_validation(enc_resp_t *w, enc_validation_t *v);
/* the same errors[] under another status and detail (409 naming the
   field that conflicts) */
void enc_resp_field_problem(enc_resp_t *w, int status, const char *detail,
                            enc_validation_t *v);
void enc_resp_empty(enc_resp_t *w, int status);
/* copied; may repeat (Set-Cookie); a name or value with CR, LF or NUL is
   dropped and logged */
void enc_resp_header(enc_resp_t *w, const char *name, const char *value);

typedef struct enc_http_s  enc_http_t;

/* routes end with {NULL} and must outlive the server; NULL on failure
   (logged) */
enc_http_t *enc_http_start(const enc_config_t *c, const enc_route_t *routes,
                           void *app);
/* /readyz runs this after its database check; 0 = ready */
void        enc_http_set_ready_check(enc_http_t *h, int (*check)(void *),
                                     void *arg);
/* stop accepting: the unix socket is removed, connections already in the
   accept queue are still served; from then on every answer carries
   "Connection: close" and /readyz is 503.  Once shared (below), or on a
   socket a service manager passed, only the accepting stops: the socket,
   its path and its queue stay for the process that serves them next */
void        enc_http_quiesce(enc_http_t *h);
/*
 * The listening socket (to pass to a successor), -1 once quiesced.  When
 * LISTEN_PID is this process and LISTEN_FDS >= 1 (sd_listen_fds(3): a
 * systemd socket unit, or a predecessor's hand-over, which also sets
 * LISTEN_FDNAMES=handover), enc_http_start serves descriptor 3 instead of
 * binding http.listen, and removes the three variables.
 */
int         enc_http_listen_fd(enc_http_t *h);
/* the listening socket now has another process serving it: the quiesce,
   the drain and the stop leave it, its path and its queue alone */
void        enc_http_share(enc_http_t *h);
/* open client connections, libmicrohttpd's count */
unsigned    enc_http_connections(enc_http_t *h);
/* quiesce, then wait up to timeout_ms until every connection is closed:
   each closes after its current request, and one with no request open is
   shut down once idle for drain.idle_close_ms (a client's keepalive
   pool; the edge closes its own sooner).  Returns 0,
   or the number of handlers still running at the deadline: threads that
   enc_http_stop would wait for */
int         enc_http_drain(enc_http_t *h, long timeout_ms);
void        enc_http_stop(enc_http_t *h);     /* frees h */

/*
 * Route matching, exposed for tests.  Finds the route for method and path:
 * the most specific template wins (a literal segment beats {param} at the
 * first position where they differ).  Returns the route index, -1 when no
 * template matches the path (404), -2 when templates match but none for
 * this method (405; allow receives "GET, HEAD, ..." when allowlen > 0).
 * HEAD matches GET routes.  Param values point into buf (a copy of path).
 */
typedef struct enc_router_s  enc_router_t;

typedef struct {
    const char  *name;
    const char  *value;
} enc_param_t;

enc_router_t *enc_router_new(const enc_route_t *routes);   /* NULL: invalid */
void          enc_router_free(enc_router_t *rt);
int           enc_router_match(const enc_router_t *rt, const char *method,
                               const char *path, char *buf, size_t buflen,
                               enc_param_t *params, size_t *nparams,
                               char *allow, size_t allowlen);

#endif /* ENC_HTTP_H */
