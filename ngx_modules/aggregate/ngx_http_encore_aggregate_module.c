/*
 * Copyright (C) Encore
 *
 * ngx_http_encore_aggregate_module: views, one JSON answer made of several
 * workers' answers (README.md in this folder).
 *
 * A location with "encore_aggregate_part" directives is a view.  Its
 * content handler fetches the parts as background subrequests through
 * stock locations (so proxy timeouts, keepalive and proxy_cache apply per
 * part), captures their bodies in this module's header and body filters
 * (first in the chain: nothing of a part reaches the client or another
 * filter), and when every part has answered or timed out merges them in
 * configuration order.  Parts that refer to a field of an earlier part
 * ({post.artist_ids}) start once the earlier ones have settled.
 *
 * Background subrequests, as the mirror module's: the view is not
 * postponed behind them, so a part that times out is abandoned and the
 * view answers at once; the part still holds the request until its own
 * location's proxy timeouts end it.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "encore_agg.h"
#include "ngx_http_encore_problem.h"


#define NGX_HTTP_ENCORE_AGG_URI_MAX    4096
#define NGX_HTTP_ENCORE_AGG_MAX_PARTS  16

/* why a part has no value; the status in errors[] */
#define NGX_HTTP_ENCORE_AGG_GARBAGE     NGX_HTTP_BAD_GATEWAY
#define NGX_HTTP_ENCORE_AGG_TIMED_OUT   NGX_HTTP_GATEWAY_TIME_OUT
#define NGX_HTTP_ENCORE_AGG_DEPENDENCY  424


typedef struct {
    ngx_http_complex_value_t        *literal;   /* NULL: a reference */
    ngx_str_t                        path;      /* the reference's field */
} ngx_http_encore_agg_piece_t;


typedef struct {
    ngx_str_t                        name;
    ngx_array_t                      pieces;    /* ngx_http_encore_agg_piece_t */
    ngx_int_t                        depends;   /* a part's index, or -1 */

    ngx_msec_t                       timeout;
    size_t                           max_size;
    ngx_uint_t                       max_items;

    ngx_str_t                        pick;      /* empty: the whole answer */
    ngx_str_t                        key;       /* default: name */
    encore_agg_str_t                *allow;
    ngx_uint_t                       nallow;
    encore_agg_str_t                *deny;
    ngx_uint_t                       ndeny;

    unsigned                         main:1;
    unsigned                         required:1;
    unsigned                         merge:1;
    unsigned                         referenced:1;  /* by a stage-2 part */
} ngx_http_encore_agg_part_conf_t;


typedef struct {
    ngx_array_t                     *parts;    /* ngx_http_encore_agg_part_conf_t */
    ngx_msec_t                       timeout;
    size_t                           max_part_size;
    ngx_uint_t                       max_items;

    /*
     * No part is filtered, merged or grouped: the view is the parts'
     * own bytes spliced together, never decoded and encoded again
     */
    unsigned                         splice:1;
} ngx_http_encore_agg_loc_conf_t;


typedef struct ngx_http_encore_agg_ctx_s  ngx_http_encore_agg_ctx_t;

typedef struct {
    ngx_http_encore_agg_part_conf_t *conf;
    ngx_http_encore_agg_ctx_t       *ctx;
    ngx_http_request_t              *sr;
    ngx_event_t                      timer;

    u_char                          *body;     /* ngx_alloc()ed, see cleanup */
    size_t                           len;
    size_t                           cap;

    ngx_uint_t                       status;   /* the part's HTTP status */
    ngx_uint_t                       failure;  /* 0, or the errors[] status */
    json_t                          *doc;      /* the parsed answer */
    u_char                          *value;    /* its pick's bytes */
    size_t                           value_len;

    unsigned                         started:1;
    unsigned                         settled:1;
    unsigned                         json:1;       /* Content-Type */
    unsigned                         problem:1;    /* problem+json */
    unsigned                         too_large:1;
    unsigned                         encoded:1;    /* Content-Encoding */
    unsigned                         empty:1;      /* no items to ask for */
} ngx_http_encore_agg_part_t;


struct ngx_http_encore_agg_ctx_s {
    ngx_http_request_t              *request;
    ngx_http_encore_agg_loc_conf_t  *conf;
    ngx_http_encore_agg_part_t      *parts;
    ngx_uint_t                       nparts;
    ngx_uint_t                       pending;  /* started, not settled */
    ngx_uint_t                       stage;    /* 1, then 2 */
    unsigned                         done:1;
};


static ngx_int_t ngx_http_encore_agg_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_encore_agg_start_stage(ngx_http_encore_agg_ctx_t *ctx);
static ngx_int_t ngx_http_encore_agg_start_part(ngx_http_encore_agg_ctx_t *ctx,
    ngx_http_encore_agg_part_t *part);
static ngx_int_t ngx_http_encore_agg_part_uri(ngx_http_encore_agg_ctx_t *ctx,
    ngx_http_encore_agg_part_t *part, ngx_str_t *uri);
static ngx_int_t ngx_http_encore_agg_part_done(ngx_http_request_t *sr,
    void *data, ngx_int_t rc);
static void ngx_http_encore_agg_settle(ngx_http_encore_agg_part_t *part,
    ngx_uint_t failure);
static void ngx_http_encore_agg_timeout(ngx_event_t *ev);
static void ngx_http_encore_agg_abandon(ngx_http_encore_agg_part_t *part);
static void ngx_http_encore_agg_wake(ngx_http_request_t *r);
static ngx_int_t ngx_http_encore_agg_answer(ngx_http_request_t *r,
    ngx_http_encore_agg_ctx_t *ctx);
static ngx_int_t ngx_http_encore_agg_splice(ngx_http_request_t *r,
    ngx_http_encore_agg_ctx_t *ctx, u_char **body, size_t *len);
static ngx_int_t ngx_http_encore_agg_merge(ngx_http_request_t *r,
    ngx_http_encore_agg_ctx_t *ctx, u_char **body, size_t *len);
static ngx_int_t ngx_http_encore_agg_pass_through(ngx_http_request_t *r,
    ngx_http_encore_agg_part_t *part);
static ngx_int_t ngx_http_encore_agg_send(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *type, u_char *body, size_t len);
static void ngx_http_encore_agg_cleanup(void *data);

static ngx_http_encore_agg_part_t *ngx_http_encore_agg_find(
    ngx_http_request_t *r);
static ngx_uint_t ngx_http_encore_agg_is_json(ngx_str_t *type,
    unsigned *problem);
static ngx_int_t ngx_http_encore_agg_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_encore_agg_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_encore_agg_capture(ngx_http_encore_agg_part_t *part,
    ngx_buf_t *b, ngx_log_t *log);

static ngx_int_t ngx_http_encore_agg_init(ngx_conf_t *cf);
static void *ngx_http_encore_agg_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_encore_agg_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static char *ngx_http_encore_agg_part(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_encore_agg_names(ngx_conf_t *cf, ngx_str_t *value,
    encore_agg_str_t **names, ngx_uint_t *n);


static ngx_command_t  ngx_http_encore_agg_commands[] = {

    { ngx_string("encore_aggregate_part"),
      NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_encore_agg_part,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("encore_aggregate_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_encore_agg_loc_conf_t, timeout),
      NULL },

    { ngx_string("encore_aggregate_max_part_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_encore_agg_loc_conf_t, max_part_size),
      NULL },

    { ngx_string("encore_aggregate_max_items"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_encore_agg_loc_conf_t, max_items),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_encore_aggregate_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_encore_agg_init,              /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_encore_agg_create_loc_conf,   /* create location configuration */
    ngx_http_encore_agg_merge_loc_conf     /* merge location configuration */
};


ngx_module_t  ngx_http_encore_aggregate_module = {
    NGX_MODULE_V1,
    &ngx_http_encore_aggregate_module_ctx, /* module context */
    ngx_http_encore_agg_commands,          /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;

static ngx_str_t  ngx_http_encore_agg_json_type =
    ngx_string("application/json; charset=utf-8");
static ngx_str_t  ngx_http_encore_agg_problem_type =
    ngx_string("application/problem+json");


/* ---- the view ---------------------------------------------------------- */


static ngx_int_t
ngx_http_encore_agg_handler(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_uint_t                       i;
    ngx_http_cleanup_t              *cln;
    ngx_http_encore_agg_ctx_t       *ctx;
    ngx_http_encore_agg_part_t      *part;
    ngx_http_encore_agg_loc_conf_t  *alcf;
    ngx_http_encore_agg_part_conf_t *pcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    if (r != r->main) {
        /* a view inside a view would capture itself */
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    /*
     * The view answers If-None-Match and If-Match itself, against its
     * ETag; nginx's not_modified filter would also answer 412 to any
     * If-Unmodified-Since, since a view has no Last-Modified (RFC 9110
     * says to ignore it then)
     */
    r->disable_not_modified = 1;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_encore_aggregate_module);

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_encore_agg_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;
    ctx->conf = alcf;
    ctx->nparts = alcf->parts->nelts;
    ctx->parts = ngx_pcalloc(r->pool,
                             ctx->nparts * sizeof(ngx_http_encore_agg_part_t));
    if (ctx->parts == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    pcf = alcf->parts->elts;

    for (i = 0; i < ctx->nparts; i++) {
        part = &ctx->parts[i];
        part->conf = &pcf[i];
        part->ctx = ctx;

        part->timer.handler = ngx_http_encore_agg_timeout;
        part->timer.data = part;
        part->timer.log = r->connection->log;
    }

    /* timers and captured bodies go with the request, however it ends */
    cln = ngx_http_cleanup_add(r, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_encore_agg_cleanup;
    cln->data = ctx;

    ngx_http_set_ctx(r, ctx, ngx_http_encore_aggregate_module);

    ctx->stage = 1;

    rc = ngx_http_encore_agg_start_stage(ctx);

    if (rc != NGX_OK) {
        /* a subrequest may have been posted: end them with the request */
        return NGX_ERROR;
    }

    if (ctx->pending == 0) {
        ctx->done = 1;
        return ngx_http_encore_agg_answer(r, ctx);
    }

    /*
     * The parts run once this returns; each one's end (or timeout) wakes
     * this request.  The count taken here is given back by NGX_DONE.  A
     * client that goes away meanwhile ends the view (test_reading).
     */
    r->write_event_handler = ngx_http_encore_agg_wake;
    r->read_event_handler = ngx_http_test_reading;
    r->main->count++;

    return NGX_DONE;
}


/*
 * Starts the parts of the current stage: stage 1, the parts without
 * references; stage 2, the others, once stage 1 has settled.
 */
static ngx_int_t
ngx_http_encore_agg_start_stage(ngx_http_encore_agg_ctx_t *ctx)
{
    ngx_uint_t                   i;
    ngx_http_encore_agg_part_t  *part;

    for (i = 0; i < ctx->nparts; i++) {
        part = &ctx->parts[i];

        if (part->started
            || (ctx->stage == 1) != (part->conf->depends == -1))
        {
            continue;
        }

        if (ngx_http_encore_agg_start_part(ctx, part) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_encore_agg_start_part(ngx_http_encore_agg_ctx_t *ctx,
    ngx_http_encore_agg_part_t *part)
{
    ngx_int_t                    rc;
    ngx_str_t                    uri, args;
    ngx_uint_t                   flags;
    ngx_http_request_t          *r, *sr;
    ngx_http_post_subrequest_t  *ps;

    r = ctx->request;
    part->started = 1;

    rc = ngx_http_encore_agg_part_uri(ctx, part, &uri);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_DECLINED) {
        /* settled already: no items to ask for, or a failed dependency */
        return NGX_OK;
    }

    args.len = 0;
    args.data = NULL;
    flags = NGX_HTTP_LOG_UNSAFE;

    if (ngx_http_parse_unsafe_uri(r, &uri, &args, &flags) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "view part \"%V\": unsafe URI \"%V\"",
                      &part->conf->name, &uri);
        ngx_http_encore_agg_settle(part, NGX_HTTP_ENCORE_AGG_GARBAGE);
        return NGX_OK;
    }

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NGX_ERROR;
    }

    ps->handler = ngx_http_encore_agg_part_done;
    ps->data = part;

    if (ngx_http_subrequest(r, &uri, &args, &sr, ps,
                            NGX_HTTP_SUBREQUEST_BACKGROUND)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    part->sr = sr;
    ctx->pending++;

    /*
     * A part is a GET without a body, whatever the view's request had: a
     * fake empty body (as auth_request's) so that the subrequest never
     * reads the client's, and no Content-Length to forward.
     */
    sr->request_body = ngx_pcalloc(r->pool, sizeof(ngx_http_request_body_t));
    if (sr->request_body == NULL) {
        return NGX_ERROR;
    }

    sr->headers_in.content_length = NULL;
    sr->headers_in.content_length_n = -1;
    sr->headers_in.transfer_encoding = NULL;
    sr->headers_in.chunked = 0;

    ngx_add_timer(&part->timer, part->conf->timeout);

    return NGX_OK;
}


/*
 * The part's URI: its literal pieces evaluated, its references replaced
 * by the fields of the part they name.  NGX_DECLINED when the part need
 * not (or cannot) be asked: it is settled then.
 */
static ngx_int_t
ngx_http_encore_agg_part_uri(ngx_http_encore_agg_ctx_t *ctx,
    ngx_http_encore_agg_part_t *part, ngx_str_t *uri)
{
    int                           n;
    u_char                       *buf;
    size_t                        len;
    ngx_str_t                     text;
    ngx_uint_t                    i;
    ngx_http_encore_agg_part_t   *dep;
    ngx_http_encore_agg_piece_t  *piece;

    piece = part->conf->pieces.elts;

    if (part->conf->pieces.nelts == 1 && piece[0].literal) {
        /* no reference: the evaluated text is the URI, nothing to copy */
        if (ngx_http_complex_value(ctx->request, piece[0].literal, uri)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (uri->len > NGX_HTTP_ENCORE_AGG_URI_MAX) {
            goto too_long;
        }

        return NGX_OK;
    }

    buf = ngx_pnalloc(ctx->request->pool, NGX_HTTP_ENCORE_AGG_URI_MAX);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    len = 0;
    dep = NULL;

    if (part->conf->depends != -1) {
        dep = &ctx->parts[part->conf->depends];

        if (dep->failure) {
            ngx_http_encore_agg_settle(part, NGX_HTTP_ENCORE_AGG_DEPENDENCY);
            return NGX_DECLINED;
        }
    }

    for (i = 0; i < part->conf->pieces.nelts; i++) {

        if (piece[i].literal) {
            if (ngx_http_complex_value(ctx->request, piece[i].literal, &text)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            if (text.len > NGX_HTTP_ENCORE_AGG_URI_MAX - len) {
                goto too_long;
            }

            len = ngx_cpymem(buf + len, text.data, text.len) - buf;
            continue;
        }

        n = encore_agg_ref_append(dep->doc, (char *) piece[i].path.data,
                                  piece[i].path.len, part->conf->max_items,
                                  (char *) buf, NGX_HTTP_ENCORE_AGG_URI_MAX,
                                  &len);

        if (n == ENCORE_AGG_NO_ROOM) {
            goto too_long;
        }

        if (n == ENCORE_AGG_MISSING) {
            ngx_log_error(NGX_LOG_WARN, ctx->request->connection->log, 0,
                          "view part \"%V\": \"%V\" of part \"%V\" is "
                          "missing or not a value", &part->conf->name,
                          &piece[i].path, &dep->conf->name);
            ngx_http_encore_agg_settle(part, NGX_HTTP_ENCORE_AGG_DEPENDENCY);
            return NGX_DECLINED;
        }

        if (n == 0) {
            /* an empty array: nothing to ask for, the value is [] */
            part->empty = 1;
            ngx_http_encore_agg_settle(part, 0);
            return NGX_DECLINED;
        }
    }

    uri->data = buf;
    uri->len = len;

    return NGX_OK;

too_long:

    ngx_log_error(NGX_LOG_ERR, ctx->request->connection->log, 0,
                  "view part \"%V\": its URI is longer than %d bytes",
                  &part->conf->name, NGX_HTTP_ENCORE_AGG_URI_MAX);
    ngx_http_encore_agg_settle(part, NGX_HTTP_ENCORE_AGG_GARBAGE);

    return NGX_DECLINED;
}


/*
 * Called each time the part's subrequest is finalized.  A status of 300
 * or more is followed by its error page (errors.conf turns a 502 into
 * problem+json), which finalizes it again: the part settles then.
 */
static ngx_int_t
ngx_http_encore_agg_part_done(ngx_http_request_t *sr, void *data,
    ngx_int_t rc)
{
    ngx_http_encore_agg_part_t *part = data;

    ngx_uint_t  failure, ended;

    /*
     * Codes that end a request rather than answer it (an error, 444, 408,
     * 499): from a part they would end the client's connection with it,
     * so they are recorded as the part's failure and replaced by NGX_OK,
     * unless the client's connection failed itself
     */
    ended = (rc == NGX_ERROR || rc == NGX_HTTP_CLOSE
             || rc == NGX_HTTP_REQUEST_TIME_OUT
             || rc == NGX_HTTP_CLIENT_CLOSED_REQUEST);

    if (part->settled) {
        /* timed out earlier: the view no longer waits for it */
        return (ended && !sr->connection->error) ? NGX_OK : rc;
    }

    if (!ended && rc >= NGX_HTTP_SPECIAL_RESPONSE && !sr->header_sent) {
        /* its error page follows and finalizes it again */
        part->status = rc;
        return rc;
    }

    failure = 0;

    if (ended || rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        ngx_log_error(NGX_LOG_WARN, sr->connection->log, 0,
                      "view part \"%V\": the proxying failed%s (%i); see "
                      "the upstream's error above", &part->conf->name,
                      sr->header_sent ? " half-way through the answer" : "",
                      rc);
        failure = NGX_HTTP_ENCORE_AGG_GARBAGE;
        ended = 1;

    } else if (sr->headers_out.status) {
        part->status = sr->headers_out.status;
    }

    ngx_http_encore_agg_settle(part, failure);

    /* the view goes on in its write handler, once this has returned */
    if (!part->ctx->done
        && ngx_http_post_request(part->ctx->request, NULL) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ended) {
        return sr->connection->error ? NGX_ERROR : NGX_OK;
    }

    return rc;
}


/*
 * A part's outcome: failure is 0 when it answered; its answer is then
 * checked here (2xx, JSON, an object or array that holds its pick).
 */
static void
ngx_http_encore_agg_settle(ngx_http_encore_agg_part_t *part,
    ngx_uint_t failure)
{
    int                               rc;
    size_t                            start, end;
    json_t                           *doc, *picked;
    ngx_uint_t                        level;
    json_error_t                      err;
    ngx_log_t                        *log;
    ngx_http_encore_agg_ctx_t        *ctx;
    ngx_http_encore_agg_part_conf_t  *pcf;

    ctx = part->ctx;
    pcf = part->conf;
    log = ctx->request->connection->log;

    if (part->settled) {
        return;
    }

    part->settled = 1;

    if (part->timer.timer_set) {
        ngx_del_timer(&part->timer);
    }

    if (part->sr) {
        ctx->pending--;
    }

    if (failure || part->empty) {
        part->failure = failure;
        return;
    }

    if (part->status < 200 || part->status > 299) {
        part->failure = part->status ? part->status
                                     : NGX_HTTP_ENCORE_AGG_GARBAGE;

        /* a 404 is the view's answer, not the operator's problem */
        level = (part->status >= 500 || part->status < 200) ? NGX_LOG_WARN
                                                             : NGX_LOG_INFO;

        ngx_log_error(level, log, 0,
                      "view part \"%V\" answered %ui",
                      &pcf->name, part->status);

        /* a problem+json body is kept for a required part's answer */
        return;
    }

    if (part->too_large || part->encoded || !part->json || part->len == 0) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "view part \"%V\" answered %s", &pcf->name,
                      part->too_large ? "more than its max_size"
                      : part->encoded ? "a compressed answer (Content-Encoding)"
                      : !part->json ? "a Content-Type other than JSON"
                      : "an empty body");
        part->failure = NGX_HTTP_ENCORE_AGG_GARBAGE;
        return;
    }

    /*
     * The answer is checked and its pick found by the scanner; jansson
     * decodes it only when a stage-2 part reads its fields or the view
     * filters, merges or groups (and for a pick written with escapes)
     */

    rc = encore_agg_scan((char *) part->body, part->len,
                         (char *) pcf->pick.data, pcf->pick.len,
                         &start, &end);

    if (rc == ENCORE_AGG_SCAN_INVALID || rc == ENCORE_AGG_SCAN_NO_PICK) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "view part \"%V\" answered %s", &pcf->name,
                      rc == ENCORE_AGG_SCAN_INVALID
                      ? "malformed JSON (or not an object or array)"
                      : "JSON without its pick");
        part->failure = NGX_HTTP_ENCORE_AGG_GARBAGE;
        return;
    }

    if (rc == ENCORE_AGG_SCAN_OK) {
        part->value = part->body + start;
        part->value_len = end - start;
    }

    if (rc == ENCORE_AGG_SCAN_OK && ctx->conf->splice && !pcf->referenced) {
        return;
    }

    doc = json_loadb((char *) part->body, part->len, 0, &err);

    if (doc == NULL) {
        /* the scanner and jansson agree on what is JSON: out of memory */
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "view part \"%V\" could not be decoded: %s",
                      &pcf->name, err.text);
        part->failure = NGX_HTTP_ENCORE_AGG_GARBAGE;
        return;
    }

    part->doc = doc;

    if (rc == ENCORE_AGG_SCAN_ESCAPED) {
        picked = pcf->pick.len ? encore_agg_lookup(doc, (char *) pcf->pick.data,
                                                   pcf->pick.len)
                               : doc;

        if (picked == NULL) {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "view part \"%V\": its answer has no \"%V\"",
                          &pcf->name, &pcf->pick);
            part->failure = NGX_HTTP_ENCORE_AGG_GARBAGE;
            return;
        }

        if (ctx->conf->splice) {
            /* the pick's bytes, from its decoded value */
            part->value_len = json_dumpb(picked, NULL, 0,
                                         JSON_COMPACT|JSON_ENCODE_ANY);
            part->value = ngx_pnalloc(ctx->request->pool, part->value_len);

            if (part->value == NULL
                || json_dumpb(picked, (char *) part->value, part->value_len,
                              JSON_COMPACT|JSON_ENCODE_ANY)
                   != part->value_len)
            {
                part->failure = NGX_HTTP_INTERNAL_SERVER_ERROR;
                return;
            }
        }
    }
}


static void
ngx_http_encore_agg_timeout(ngx_event_t *ev)
{
    ngx_http_encore_agg_part_t *part = ev->data;

    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = part->ctx->request;
    c = r->connection;

    ngx_log_error(NGX_LOG_WARN, c->log, 0,
                  "view part \"%V\" timed out after %Mms",
                  &part->conf->name, part->conf->timeout);

    ngx_http_encore_agg_settle(part, NGX_HTTP_ENCORE_AGG_TIMED_OUT);
    ngx_http_encore_agg_abandon(part);

    ngx_http_encore_agg_wake(r);
    ngx_http_run_posted_requests(c);
}


/*
 * Ends a part that timed out, as a client that goes away ends a proxied
 * request: the upstream's own cleanup closes the connection to the worker
 * and gives the view's count back.  A background subrequest whose
 * response outgrew its proxy buffers and temporary file would otherwise
 * wait for ever: its event pipe writes to the client connection only when
 * the subrequest is the connection's active request, which a background
 * one never is, and it reads no more, so no proxy timeout fires either.
 * A part that is not proxying at the moment (an error page, a cache lock)
 * ends by itself.
 */
static void
ngx_http_encore_agg_abandon(ngx_http_encore_agg_part_t *part)
{
    ngx_http_request_t     *sr;
    ngx_http_cleanup_pt    *cleanup;
    ngx_http_upstream_t    *u;

    sr = part->sr;

    if (sr == NULL || sr->done) {
        return;
    }

    u = sr->upstream;

    if (u == NULL || u->cleanup == NULL) {
        return;
    }

    cleanup = u->cleanup;
    (*cleanup)(sr);
}


/* the view's write handler: goes on when every started part has settled */
static void
ngx_http_encore_agg_wake(ngx_http_request_t *r)
{
    ngx_http_encore_agg_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_encore_aggregate_module);

    if (ctx == NULL || ctx->done || ctx->pending) {
        return;
    }

    if (ctx->stage == 1) {
        ctx->stage = 2;

        if (ngx_http_encore_agg_start_stage(ctx) != NGX_OK) {
            ctx->done = 1;
            ngx_http_finalize_request(r, NGX_ERROR);
            return;
        }

        if (ctx->pending) {
            return;
        }
    }

    ctx->done = 1;
    r->write_event_handler = ngx_http_request_empty_handler;
    r->read_event_handler = ngx_http_block_reading;

    ngx_http_finalize_request(r, ngx_http_encore_agg_answer(r, ctx));
}


/* ---- the answer --------------------------------------------------------- */


static ngx_int_t
ngx_http_encore_agg_answer(ngx_http_request_t *r,
    ngx_http_encore_agg_ctx_t *ctx)
{
    size_t                       len, plen;
    u_char                      *body, *p;
    ngx_int_t                    rc;
    ngx_str_t                    type;
    ngx_uint_t                   i;
    ngx_table_elt_t             *h;
    ngx_http_encore_agg_part_t  *part;
    char                         etag[ENCORE_AGG_ETAG_LEN + 1];

    /* the main part's failure, then any required part's, is the view's */

    for (i = 0; i < ctx->nparts; i++) {
        part = &ctx->parts[i];

        if (part->conf->main && part->failure) {
            return ngx_http_encore_agg_pass_through(r, part);
        }
    }

    for (i = 0; i < ctx->nparts; i++) {
        part = &ctx->parts[i];

        if (part->conf->required && part->failure) {
            return ngx_http_encore_agg_pass_through(r, part);
        }
    }

    rc = ctx->conf->splice ? ngx_http_encore_agg_splice(r, ctx, &body, &len)
                           : ngx_http_encore_agg_merge(r, ctx, &body, &len);

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "view could not be merged (out of memory?)");

        return ngx_http_encore_problem_send(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                            "the view could not be merged");
    }

    /* X-Encore-Partial: the parts missing, in configuration order */

    plen = 0;

    for (i = 0; i < ctx->nparts; i++) {
        if (ctx->parts[i].failure) {
            plen += ctx->parts[i].conf->name.len + sizeof(", ") - 1;
        }
    }

    if (plen) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        p = ngx_pnalloc(r->pool, plen);
        if (p == NULL) {
            return NGX_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "X-Encore-Partial");
        h->value.data = p;

        for (i = 0; i < ctx->nparts; i++) {
            part = &ctx->parts[i];

            if (!part->failure) {
                continue;
            }

            if (p != h->value.data) {
                *p++ = ','; *p++ = ' ';
            }

            p = ngx_cpymem(p, part->conf->name.data, part->conf->name.len);
        }

        h->value.len = p - h->value.data;
    }

    /* an entity tag over the merged body; 304 when the client has it */

    encore_agg_etag(body, len, etag);

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "ETag");
    h->value.len = ENCORE_AGG_ETAG_LEN;
    h->value.data = ngx_pnalloc(r->pool, ENCORE_AGG_ETAG_LEN);
    if (h->value.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(h->value.data, etag, ENCORE_AGG_ETAG_LEN);
    r->headers_out.etag = h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "private, no-cache");

    if (r->headers_in.if_match
        && !encore_agg_etag_match((char *) r->headers_in.if_match->value.data,
                                  r->headers_in.if_match->value.len,
                                  etag, ENCORE_AGG_ETAG_LEN))
    {
        return ngx_http_encore_problem_send(r, NGX_HTTP_PRECONDITION_FAILED,
                   "If-Match names no current version of this view");
    }

    if (r->headers_in.if_none_match
        && encore_agg_etag_match(
               (char *) r->headers_in.if_none_match->value.data,
               r->headers_in.if_none_match->value.len,
               etag, ENCORE_AGG_ETAG_LEN))
    {
        r->header_only = 1;
        return ngx_http_encore_agg_send(r, NGX_HTTP_NOT_MODIFIED, NULL,
                                        NULL, 0);
    }

    type = ngx_http_encore_agg_json_type;

    return ngx_http_encore_agg_send(r, NGX_HTTP_OK, &type, body, len);
}


/*
 * The view as the parts' own bytes: {"key":<the pick's bytes>,...} in
 * configuration order, then "errors".  Keys are [A-Za-z0-9_-] (checked at
 * load), statuses numbers: nothing to escape.
 */
static ngx_int_t
ngx_http_encore_agg_splice(ngx_http_request_t *r,
    ngx_http_encore_agg_ctx_t *ctx, u_char **body, size_t *len)
{
    size_t                       n;
    u_char                      *p;
    ngx_uint_t                   i, nerrors;
    ngx_http_encore_agg_part_t  *part;

    n = sizeof("{}\n") - 1;
    nerrors = 0;

    for (i = 0; i < ctx->nparts; i++) {
        part = &ctx->parts[i];

        n += sizeof(",\"\":") - 1 + part->conf->key.len;

        if (part->failure) {
            n += sizeof("null") - 1
                 + sizeof(",{\"part\":\"\",\"status\":}") - 1
                 + part->conf->name.len + NGX_INT_T_LEN;
            nerrors++;

        } else if (part->empty) {
            n += sizeof("[]") - 1;

        } else {
            n += part->value_len;
        }
    }

    n += sizeof(",\"errors\":[]") - 1;

    p = ngx_pnalloc(r->pool, n);
    if (p == NULL) {
        return NGX_ERROR;
    }

    *body = p;
    *p++ = '{';

    for (i = 0; i < ctx->nparts; i++) {
        part = &ctx->parts[i];

        if (i) {
            *p++ = ',';
        }

        *p++ = '"';
        p = ngx_cpymem(p, part->conf->key.data, part->conf->key.len);
        *p++ = '"'; *p++ = ':';

        if (part->failure) {
            p = ngx_cpymem(p, "null", sizeof("null") - 1);

        } else if (part->empty) {
            *p++ = '['; *p++ = ']';

        } else {
            p = ngx_cpymem(p, part->value, part->value_len);
        }
    }

    if (nerrors) {
        p = ngx_cpymem(p, ",\"errors\":[", sizeof(",\"errors\":[") - 1);

        nerrors = 0;

        for (i = 0; i < ctx->nparts; i++) {
            part = &ctx->parts[i];

            if (!part->failure) {
                continue;
            }

            p = ngx_sprintf(p, "%s{\"part\":\"%V\",\"status\":%ui}",
                            nerrors++ ? "," : "", &part->conf->name,
                            part->failure);
        }

        *p++ = ']';
    }

    *p++ = '}';
    *p++ = '\n';

    *len = p - *body;

    return NGX_OK;
}


/*
 * The view built with jansson, for parts that are filtered, merged or
 * grouped under a key: each part's value selected from its decoded answer
 * and placed, then "errors".
 */
static ngx_int_t
ngx_http_encore_agg_merge(ngx_http_request_t *r,
    ngx_http_encore_agg_ctx_t *ctx, u_char **body, size_t *len)
{
    char                             *text;
    size_t                            n;
    json_t                           *view, *errors, *value, *entry;
    ngx_uint_t                        i;
    ngx_http_encore_agg_part_t       *part;
    ngx_http_encore_agg_part_conf_t  *pcf;

    text = NULL;
    view = json_object();
    errors = json_array();

    if (view == NULL || errors == NULL) {
        goto failed;
    }

    for (i = 0; i < ctx->nparts; i++) {
        part = &ctx->parts[i];
        pcf = part->conf;

        if (part->failure) {
            value = json_null();

            entry = json_pack("{s:s%,s:i}", "part", pcf->name.data,
                              pcf->name.len, "status", (int) part->failure);

            if (json_array_append_new(errors, entry) != 0) {
                goto failed;
            }

            if (pcf->merge) {
                continue;
            }

        } else if (part->empty) {
            value = json_array();

        } else {
            value = encore_agg_select(part->doc, (char *) pcf->pick.data,
                                      pcf->pick.len, pcf->allow, pcf->nallow,
                                      pcf->deny, pcf->ndeny);
        }

        if (encore_agg_place(view, (char *) pcf->key.data, pcf->key.len,
                             pcf->merge, value)
            != 0)
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "view part \"%V\" could not be placed at \"%V\"",
                          &pcf->name, &pcf->key);
            goto failed;
        }
    }

    if (json_array_size(errors)
        && json_object_set(view, "errors", errors) != 0)
    {
        goto failed;
    }

    /* one encoding, copied into the request's pool */

    text = json_dumps(view, JSON_COMPACT);
    if (text == NULL) {
        goto failed;
    }

    n = ngx_strlen(text);

    *body = ngx_pnalloc(r->pool, n + 1);
    if (*body == NULL) {
        goto failed;
    }

    ngx_memcpy(*body, text, n);
    (*body)[n++] = '\n';
    *len = n;

    free(text);
    json_decref(view);
    json_decref(errors);

    return NGX_OK;

failed:

    free(text);
    json_decref(view);
    json_decref(errors);

    return NGX_ERROR;
}


/*
 * A failed main or required part fails the view: a timeout is a 504, an
 * answer that is not JSON a 502, and an answer with a status passes it
 * through with its problem+json body (a body of another type is replaced:
 * the view speaks problem+json whoever failed).
 */
static ngx_int_t
ngx_http_encore_agg_pass_through(ngx_http_request_t *r,
    ngx_http_encore_agg_part_t *part)
{
    ngx_str_t  type;

    switch (part->failure) {

    case NGX_HTTP_ENCORE_AGG_TIMED_OUT:
        return ngx_http_encore_problem_send(r, NGX_HTTP_GATEWAY_TIME_OUT,
                   "a required part of this view did not answer in time");

    case NGX_HTTP_ENCORE_AGG_DEPENDENCY:
        return ngx_http_encore_problem_send(r, NGX_HTTP_BAD_GATEWAY,
                   "a required part of this view could not be asked for");
    }

    if (part->status >= 400 && part->problem && !part->too_large
        && part->len > 0)
    {
        type = ngx_http_encore_agg_problem_type;
        return ngx_http_encore_agg_send(r, part->status, &type, part->body,
                                        part->len);
    }

    if (part->status >= 400 && part->status < 600
        && part->failure == part->status)
    {
        return ngx_http_encore_problem_send(r, part->status,
                   "a required part of this view failed");
    }

    return ngx_http_encore_problem_send(r, NGX_HTTP_BAD_GATEWAY,
               "a required part of this view answered garbage");
}


static ngx_int_t
ngx_http_encore_agg_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, u_char *body, size_t len)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.status = status;

    if (status == NGX_HTTP_NOT_MODIFIED) {
        /* as the not_modified filter: no length, the 200's would be wrong */
        ngx_http_clear_content_length(r);

    } else {
        r->headers_out.content_length_n = len;
    }

    if (type) {
        r->headers_out.content_type = *type;
        r->headers_out.content_type_len = type->len;
        r->headers_out.content_type_lowcase = NULL;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only || len == 0) {
        return rc;
    }

    /*
     * a captured part's body passed through is freed by the request's
     * cleanup, which runs after the last byte is sent
     */

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = body;
    b->last = body + len;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static void
ngx_http_encore_agg_cleanup(void *data)
{
    ngx_http_encore_agg_ctx_t *ctx = data;

    ngx_uint_t                   i;
    ngx_http_encore_agg_part_t  *part;

    for (i = 0; i < ctx->nparts; i++) {
        part = &ctx->parts[i];

        if (part->timer.timer_set) {
            ngx_del_timer(&part->timer);
        }

        json_decref(part->doc);
        part->doc = NULL;

        if (part->body) {
            ngx_free(part->body);
            part->body = NULL;
            part->len = 0;
            part->cap = 0;
        }

        /* a part that ends after this must find nothing to fill */
        part->settled = 1;
    }

    ctx->done = 1;
}


/* ---- capturing the parts' answers ---------------------------------------- */


static ngx_http_encore_agg_part_t *
ngx_http_encore_agg_find(ngx_http_request_t *r)
{
    ngx_uint_t                  i;
    ngx_http_encore_agg_ctx_t  *ctx;

    if (r == r->main || r->parent == NULL) {
        return NULL;
    }

    ctx = ngx_http_get_module_ctx(r->parent, ngx_http_encore_aggregate_module);

    if (ctx == NULL) {
        return NULL;
    }

    for (i = 0; i < ctx->nparts; i++) {
        if (ctx->parts[i].sr == r) {
            return &ctx->parts[i];
        }
    }

    return NULL;
}


/*
 * application/json or application/<anything>+json, parameters aside;
 * *problem tells application/problem+json
 */
static ngx_uint_t
ngx_http_encore_agg_is_json(ngx_str_t *type, unsigned *problem)
{
    u_char  *p, *last;
    size_t   len;

    *problem = 0;

    last = ngx_strlchr(type->data, type->data + type->len, ';');

    if (last == NULL) {
        last = type->data + type->len;
    }

    while (last > type->data && (last[-1] == ' ' || last[-1] == '\t')) {
        last--;
    }

    len = last - type->data;
    p = type->data;

    if (len < sizeof("application/json") - 1
        || ngx_strncasecmp(p, (u_char *) "application/",
                           sizeof("application/") - 1) != 0)
    {
        return 0;
    }

    if (len == sizeof("application/problem+json") - 1
        && ngx_strncasecmp(p, (u_char *) "application/problem+json", len) == 0)
    {
        *problem = 1;
        return 1;
    }

    if (len == sizeof("application/json") - 1
        && ngx_strncasecmp(p, (u_char *) "application/json", len) == 0)
    {
        return 1;
    }

    return ngx_strncasecmp(last - 5, (u_char *) "+json", 5) == 0;
}


static ngx_int_t
ngx_http_encore_agg_header_filter(ngx_http_request_t *r)
{
    unsigned                     problem;
    ngx_str_t                   *type;
    ngx_http_encore_agg_part_t  *part;

    part = ngx_http_encore_agg_find(r);

    if (part == NULL) {
        return ngx_http_next_header_filter(r);
    }

    /* the part's header goes no further: the view has its own */
    r->header_sent = 1;

    if (part->settled) {
        return NGX_OK;
    }

    part->status = r->headers_out.status;

    type = &r->headers_out.content_type;

    part->json = ngx_http_encore_agg_is_json(type, &problem);
    part->problem = problem;

    if (r->headers_out.content_length_n > (off_t) part->conf->max_size) {
        /* NGX_ERROR ends the proxying now; the part settles as garbage */
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "view part \"%V\" answered %O bytes, more than its "
                      "max_size %uz", &part->conf->name,
                      r->headers_out.content_length_n, part->conf->max_size);
        part->too_large = 1;
        return NGX_ERROR;
    }

    if (r->headers_out.content_encoding
        && r->headers_out.content_encoding->value.len)
    {
        /* a compressed part is not JSON to this module */
        part->encoded = 1;
        part->problem = 0;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_encore_agg_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_chain_t                 *cl;
    ngx_http_encore_agg_part_t  *part;

    part = ngx_http_encore_agg_find(r);

    if (part == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    /* every buffer is consumed here, so that its producer may reuse it */

    for (cl = in; cl; cl = cl->next) {

        if (!part->settled && !part->too_large) {
            if (ngx_http_encore_agg_capture(part, cl->buf, r->connection->log)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        cl->buf->pos = cl->buf->last;
        cl->buf->file_pos = cl->buf->file_last;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_encore_agg_capture(ngx_http_encore_agg_part_t *part, ngx_buf_t *b,
    ngx_log_t *log)
{
    off_t    size;
    u_char  *p;
    size_t   cap;
    ssize_t  n;

    if (ngx_buf_special(b)) {
        return NGX_OK;
    }

    size = ngx_buf_in_memory(b) ? (off_t) (b->last - b->pos)
                                : b->file_last - b->file_pos;

    if (size <= 0) {
        return NGX_OK;
    }

    if (size > (off_t) (part->conf->max_size - part->len)) {
        part->too_large = 1;
        return NGX_OK;
    }

    if (part->len + size > part->cap) {
        cap = part->cap ? part->cap : 4096;

        while (cap < part->len + size) {
            cap *= 2;
        }

        p = ngx_alloc(cap, log);
        if (p == NULL) {
            return NGX_ERROR;
        }

        if (part->len) {
            ngx_memcpy(p, part->body, part->len);
        }

        if (part->body) {
            ngx_free(part->body);
        }

        part->body = p;
        part->cap = cap;
    }

    if (ngx_buf_in_memory(b)) {
        ngx_memcpy(part->body + part->len, b->pos, (size_t) size);

    } else {
        /* proxy_max_temp_file_size 0 avoids this; read it back if not */
        n = ngx_read_file(b->file, part->body + part->len, (size_t) size,
                          b->file_pos);

        if (n != (ssize_t) size) {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "view part \"%V\": could not read its answer back "
                          "from \"%V\"", &part->conf->name, &b->file->name);
            return NGX_ERROR;
        }
    }

    part->len += (size_t) size;

    return NGX_OK;
}


/* ---- configuration ------------------------------------------------------- */


static ngx_int_t
ngx_http_encore_agg_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_encore_agg_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_encore_agg_body_filter;

    return NGX_OK;
}


static void *
ngx_http_encore_agg_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_encore_agg_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_encore_agg_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->parts = NULL;
     */

    conf->timeout = NGX_CONF_UNSET_MSEC;
    conf->max_part_size = NGX_CONF_UNSET_SIZE;
    conf->max_items = NGX_CONF_UNSET_UINT;

    return conf;
}


static char *
ngx_http_encore_agg_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_encore_agg_loc_conf_t *prev = parent;
    ngx_http_encore_agg_loc_conf_t *conf = child;

    ngx_uint_t                        i;
    ngx_http_core_loc_conf_t         *clcf;
    ngx_http_encore_agg_part_conf_t  *pcf;

    ngx_conf_merge_msec_value(conf->timeout, prev->timeout, 5000);
    ngx_conf_merge_size_value(conf->max_part_size, prev->max_part_size,
                              4 * 1024 * 1024);
    ngx_conf_merge_uint_value(conf->max_items, prev->max_items, 20);

    if (conf->max_items == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"encore_aggregate_max_items\" must be at least 1");
        return NGX_CONF_ERROR;
    }

    /* parts are not inherited: a view is the location that lists them */

    if (conf->parts == NULL) {
        return NGX_CONF_OK;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler != ngx_http_encore_agg_handler) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "a location with \"encore_aggregate_part\" is a "
                           "view and cannot have another content handler "
                           "(proxy_pass, fastcgi_pass, ...)");
        return NGX_CONF_ERROR;
    }

    pcf = conf->parts->elts;

    conf->splice = 1;

    for (i = 0; i < conf->parts->nelts; i++) {
        if (pcf[i].depends != -1) {
            pcf[pcf[i].depends].referenced = 1;
        }

        if (pcf[i].merge || pcf[i].nallow || pcf[i].ndeny
            || ngx_strlchr(pcf[i].key.data, pcf[i].key.data + pcf[i].key.len,
                           '.'))
        {
            conf->splice = 0;
        }

        if (pcf[i].timeout == NGX_CONF_UNSET_MSEC) {
            pcf[i].timeout = conf->timeout;
        }

        if (pcf[i].max_size == NGX_CONF_UNSET_SIZE) {
            pcf[i].max_size = conf->max_part_size;
        }

        if (pcf[i].max_items == NGX_CONF_UNSET_UINT) {
            pcf[i].max_items = conf->max_items;
        }
    }

    return NGX_CONF_OK;
}


/*
 * encore_aggregate_part NAME URI [main|required] [timeout=] [max_size=]
 *     [pick=] [key=|merge] [fields=] [deny=] [max_items=];
 */
static char *
ngx_http_encore_agg_part(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_encore_agg_loc_conf_t *alcf = conf;

    size_t                             n;
    ngx_str_t                         *value, s;
    ngx_int_t                          num;
    ngx_uint_t                         i, j;
    const char                        *err;
    ngx_http_core_loc_conf_t          *clcf;
    encore_agg_piece_t                 pieces[ENCORE_AGG_MAX_PIECES];
    ngx_http_encore_agg_piece_t       *piece;
    ngx_http_encore_agg_part_conf_t   *part, *parts;
    ngx_http_compile_complex_value_t   ccv;

    value = cf->args->elts;

    if (alcf->parts == NULL) {
        alcf->parts = ngx_array_create(cf->pool, 4,
                                       sizeof(ngx_http_encore_agg_part_conf_t));
        if (alcf->parts == NULL) {
            return NGX_CONF_ERROR;
        }

        clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
        clcf->handler = ngx_http_encore_agg_handler;
    }

    if (alcf->parts->nelts == NGX_HTTP_ENCORE_AGG_MAX_PARTS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "a view has at most %d parts",
                           NGX_HTTP_ENCORE_AGG_MAX_PARTS);
        return NGX_CONF_ERROR;
    }

    /* the name */

    if (value[1].len == 0 || value[1].len > 64
        || !((value[1].data[0] >= 'a' && value[1].data[0] <= 'z')
             || value[1].data[0] == '_'))
    {
        goto bad_name;
    }

    for (i = 0; i < value[1].len; i++) {
        if (!((value[1].data[i] >= 'a' && value[1].data[i] <= 'z')
              || (value[1].data[i] >= '0' && value[1].data[i] <= '9')
              || value[1].data[i] == '_'))
        {
            goto bad_name;
        }
    }

    parts = alcf->parts->elts;

    for (i = 0; i < alcf->parts->nelts; i++) {
        if (parts[i].name.len == value[1].len
            && ngx_strncmp(parts[i].name.data, value[1].data, value[1].len)
               == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate view part \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    part = ngx_array_push(alcf->parts);
    if (part == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(part, sizeof(ngx_http_encore_agg_part_conf_t));

    part->name = value[1];
    part->key = value[1];
    part->depends = -1;
    part->timeout = NGX_CONF_UNSET_MSEC;
    part->max_size = NGX_CONF_UNSET_SIZE;
    part->max_items = NGX_CONF_UNSET_UINT;

    /* the URI: literal pieces compiled as complex values, references */

    if (value[2].len == 0 || value[2].data[0] != '/') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "view part \"%V\": the URI \"%V\" must start "
                           "with \"/\" (an internal location)",
                           &value[1], &value[2]);
        return NGX_CONF_ERROR;
    }

    if (encore_agg_template_split((char *) value[2].data, value[2].len,
                                  pieces, ENCORE_AGG_MAX_PIECES, &n, &err)
        != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "view part \"%V\": invalid URI \"%V\": %s",
                           &value[1], &value[2], err);
        return NGX_CONF_ERROR;
    }

    if (ngx_array_init(&part->pieces, cf->pool, n ? n : 1,
                       sizeof(ngx_http_encore_agg_piece_t))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < n; i++) {
        piece = ngx_array_push(&part->pieces);
        if (piece == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(piece, sizeof(ngx_http_encore_agg_piece_t));

        if (!pieces[i].ref) {
            piece->literal = ngx_palloc(cf->pool,
                                        sizeof(ngx_http_complex_value_t));
            if (piece->literal == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

            ccv.cf = cf;
            ccv.value = &s;
            ccv.complex_value = piece->literal;

            s.data = (u_char *) pieces[i].text.data;
            s.len = pieces[i].text.len;

            if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        piece->path.data = (u_char *) pieces[i].path.data;
        piece->path.len = pieces[i].path.len;

        /* the part it names: earlier, in stage 1, the only one referred to */

        for (j = 0; j + 1 < alcf->parts->nelts; j++) {
            if (parts[j].name.len == pieces[i].part.len
                && ngx_strncmp(parts[j].name.data, pieces[i].part.data,
                               pieces[i].part.len) == 0)
            {
                break;
            }
        }

        parts = alcf->parts->elts;

        if (j + 1 == alcf->parts->nelts) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "view part \"%V\" refers to \"%*s\", which is "
                               "not a part declared before it", &value[1],
                               pieces[i].part.len, pieces[i].part.data);
            return NGX_CONF_ERROR;
        }

        if (parts[j].depends != -1) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "view part \"%V\" refers to \"%V\", which "
                               "refers to another part itself (a view has "
                               "two stages)", &value[1], &parts[j].name);
            return NGX_CONF_ERROR;
        }

        if (part->depends != -1 && part->depends != (ngx_int_t) j) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "view part \"%V\" refers to two parts; it "
                               "may refer to one", &value[1]);
            return NGX_CONF_ERROR;
        }

        part->depends = j;
    }

    /* the options */

    for (i = 3; i < cf->args->nelts; i++) {
        s = value[i];

        if (s.len == 4 && ngx_strncmp(s.data, "main", 4) == 0) {
            parts = alcf->parts->elts;

            for (j = 0; j + 1 < alcf->parts->nelts; j++) {
                if (parts[j].main) {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "view part \"%V\": \"%V\" is the "
                                       "main part already", &value[1],
                                       &parts[j].name);
                    return NGX_CONF_ERROR;
                }
            }

            part->main = 1;
            part->required = 1;
            continue;
        }

        if (s.len == 8 && ngx_strncmp(s.data, "required", 8) == 0) {
            part->required = 1;
            continue;
        }

        if (s.len == 5 && ngx_strncmp(s.data, "merge", 5) == 0) {
            part->merge = 1;
            continue;
        }

        if (s.len > 8 && ngx_strncmp(s.data, "timeout=", 8) == 0) {
            s.data += 8;
            s.len -= 8;
            part->timeout = ngx_parse_time(&s, 0);

            if (part->timeout == (ngx_msec_t) NGX_ERROR
                || part->timeout == 0)
            {
                goto bad_option;
            }

            continue;
        }

        if (s.len > 9 && ngx_strncmp(s.data, "max_size=", 9) == 0) {
            s.data += 9;
            s.len -= 9;
            part->max_size = ngx_parse_size(&s);

            if (part->max_size == (size_t) NGX_ERROR || part->max_size == 0) {
                goto bad_option;
            }

            continue;
        }

        if (s.len > 10 && ngx_strncmp(s.data, "max_items=", 10) == 0) {
            num = ngx_atoi(s.data + 10, s.len - 10);

            if (num == NGX_ERROR || num == 0) {
                goto bad_option;
            }

            part->max_items = num;
            continue;
        }

        if (s.len > 5 && ngx_strncmp(s.data, "pick=", 5) == 0) {
            part->pick.data = s.data + 5;
            part->pick.len = s.len - 5;
            continue;
        }

        if (s.len > 4 && ngx_strncmp(s.data, "key=", 4) == 0) {
            part->key.data = s.data + 4;
            part->key.len = s.len - 4;

            /* dotted names of [A-Za-z0-9_-]: nothing to escape in JSON */
            for (j = 0; j < part->key.len; j++) {
                num = part->key.data[j];

                if (num == '.') {
                    if (j == 0 || j + 1 == part->key.len
                        || part->key.data[j - 1] == '.')
                    {
                        goto bad_option;
                    }

                    continue;
                }

                if (!((num >= 'a' && num <= 'z') || (num >= 'A' && num <= 'Z')
                      || (num >= '0' && num <= '9') || num == '_'
                      || num == '-'))
                {
                    goto bad_option;
                }
            }

            continue;
        }

        if (s.len > 7 && ngx_strncmp(s.data, "fields=", 7) == 0) {
            s.data += 7;
            s.len -= 7;

            if (ngx_http_encore_agg_names(cf, &s, &part->allow, &part->nallow)
                != NGX_CONF_OK)
            {
                goto bad_option;
            }

            continue;
        }

        if (s.len > 5 && ngx_strncmp(s.data, "deny=", 5) == 0) {
            s.data += 5;
            s.len -= 5;

            if (ngx_http_encore_agg_names(cf, &s, &part->deny, &part->ndeny)
                != NGX_CONF_OK)
            {
                goto bad_option;
            }

            continue;
        }

        goto bad_option;
    }

    if (part->merge && part->key.data != part->name.data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "view part \"%V\": \"merge\" and \"key=\" "
                           "exclude each other", &value[1]);
        return NGX_CONF_ERROR;
    }

    /* the view's own member */
    if (part->key.len >= 6 && ngx_strncmp(part->key.data, "errors", 6) == 0
        && (part->key.len == 6 || part->key.data[6] == '.'))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "view part \"%V\": the key \"errors\" is the "
                           "view's own list of failed parts; use key=",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    /*
     * Two keys where one is the other or a group of it ("g" and "g.b")
     * would clash in every answer, whatever the parts say
     */

    parts = alcf->parts->elts;

    for (j = 0; j + 1 < alcf->parts->nelts; j++) {
        if (part->merge || parts[j].merge) {
            continue;
        }

        n = ngx_min(parts[j].key.len, part->key.len);

        if (ngx_strncmp(parts[j].key.data, part->key.data, n) == 0
            && (parts[j].key.len == part->key.len
                || (parts[j].key.len > n ? parts[j].key.data[n]
                                         : part->key.data[n]) == '.'))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "view part \"%V\": its key \"%V\" clashes "
                               "with part \"%V\"'s key \"%V\"", &value[1],
                               &part->key, &parts[j].name, &parts[j].key);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;

bad_name:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid view part name \"%V\": use [a-z_][a-z0-9_]*, "
                       "at most 64 characters", &value[1]);
    return NGX_CONF_ERROR;

bad_option:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "view part \"%V\": invalid option \"%V\"",
                       &value[1], &value[i]);
    return NGX_CONF_ERROR;
}


/* "a,b,c" → three names; empty names are refused */
static char *
ngx_http_encore_agg_names(ngx_conf_t *cf, ngx_str_t *value,
    encore_agg_str_t **names, ngx_uint_t *n)
{
    u_char            *p, *last, *comma;
    ngx_uint_t         count, k;
    encore_agg_str_t  *list;

    count = 1;

    for (p = value->data; p < value->data + value->len; p++) {
        if (*p == ',') {
            count++;
        }
    }

    list = ngx_palloc(cf->pool, count * sizeof(encore_agg_str_t));
    if (list == NULL) {
        return NGX_CONF_ERROR;
    }

    p = value->data;
    last = value->data + value->len;

    for (k = 0; k < count; k++) {
        comma = ngx_strlchr(p, last, ',');

        if (comma == NULL) {
            comma = last;
        }

        if (comma == p) {
            return NGX_CONF_ERROR;
        }

        list[k].data = (char *) p;
        list[k].len = comma - p;

        p = comma + 1;
    }

    *names = list;
    *n = count;

    return NGX_CONF_OK;
}
