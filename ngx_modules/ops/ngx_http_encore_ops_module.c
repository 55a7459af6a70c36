/*
 * Copyright (C) Encore
 *
 * ngx_http_encore_ops_module: the edge's readiness, /readyz.
 *
 * "encore_readyz auth catalog ...;" makes a location a content handler
 * that asks every listed worker at once, through a subrequest to
 * <encore_readyz_uri><worker> (an internal location that proxies to the
 * worker's own /readyz), and answers 200 when each said 2xx, else 503 as
 * problem+json naming the workers that are not ready.  A worker that is
 * down makes its subrequest fail (502, 504): not ready.
 *
 * With a revocation zone (the jwt module's encore_jwt_revocation_zone),
 * "revocations" is named too, as a worker would be: not ready (503) until
 * the revocation feed has replayed its window, and again while its posts
 * are stale; no subrequest is made for it.
 *
 * Only the status line counts, as for auth_request: the subrequests are
 * header-only, so a worker's body is never read.  An in-memory subrequest
 * read it into one buffer, and a body larger than that, or a malformed
 * chunked one, failed the subrequest with NGX_ERROR, which tore down the
 * client's connection instead of answering 503.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_encore_problem.h"
#include "ngx_http_encore_jwt.h"


typedef struct {
    ngx_array_t                 *workers;    /* ngx_str_t */
    ngx_str_t                    uri;
} ngx_http_encore_ops_loc_conf_t;


typedef struct {
    ngx_str_t                   *name;
    ngx_uint_t                   status;
    ngx_uint_t                   done;
} ngx_http_encore_ops_check_t;


typedef struct {
    ngx_http_encore_ops_check_t *checks;
    ngx_uint_t                   nchecks;
    ngx_uint_t                   pending;
} ngx_http_encore_ops_ctx_t;


static ngx_int_t ngx_http_encore_ops_readyz_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_encore_ops_readyz_done(ngx_http_request_t *r,
    void *data, ngx_int_t rc);
static ngx_int_t ngx_http_encore_ops_readyz_fail(
    ngx_http_encore_ops_ctx_t *ctx);
static void ngx_http_encore_ops_readyz_resume(ngx_http_request_t *r);
static ngx_int_t ngx_http_encore_ops_readyz_send(ngx_http_request_t *r,
    ngx_http_encore_ops_ctx_t *ctx);

static void *ngx_http_encore_ops_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_encore_ops_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);

static char *ngx_http_encore_ops_readyz(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


static ngx_str_t  ngx_http_encore_ops_revocations = ngx_string("revocations");


static ngx_command_t  ngx_http_encore_ops_commands[] = {

    { ngx_string("encore_readyz"),
      NGX_HTTP_LOC_CONF|NGX_CONF_ANY,
      ngx_http_encore_ops_readyz,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("encore_readyz_uri"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_encore_ops_loc_conf_t, uri),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_encore_ops_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_encore_ops_create_loc_conf,   /* create location configuration */
    ngx_http_encore_ops_merge_loc_conf     /* merge location configuration */
};


ngx_module_t  ngx_http_encore_ops_module = {
    NGX_MODULE_V1,
    &ngx_http_encore_ops_module_ctx,       /* module context */
    ngx_http_encore_ops_commands,          /* module directives */
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


static ngx_int_t
ngx_http_encore_ops_readyz_handler(ngx_http_request_t *r)
{
    ngx_int_t                        rc, rev;
    ngx_str_t                        uri, *name;
    ngx_uint_t                       i, nworkers;
    ngx_http_request_t              *sr;
    ngx_http_encore_ops_ctx_t       *ctx;
    ngx_http_post_subrequest_t      *ps;
    ngx_http_encore_ops_loc_conf_t  *olcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    olcf = ngx_http_get_module_loc_conf(r, ngx_http_encore_ops_module);

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_encore_ops_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_encore_ops_module);

    nworkers = olcf->workers ? olcf->workers->nelts : 0;
    rev = ngx_http_encore_jwt_revocations_ready(r);

    ctx->nchecks = nworkers + (rev != NGX_DECLINED);

    if (ctx->nchecks == 0) {
        return ngx_http_encore_ops_readyz_send(r, ctx);
    }

    ctx->checks = ngx_pcalloc(r->pool,
                            ctx->nchecks * sizeof(ngx_http_encore_ops_check_t));
    if (ctx->checks == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rev != NGX_DECLINED) {
        ctx->checks[nworkers].name = &ngx_http_encore_ops_revocations;
        ctx->checks[nworkers].status = (rev == NGX_OK)
                                       ? NGX_HTTP_OK
                                       : NGX_HTTP_SERVICE_UNAVAILABLE;
        ctx->checks[nworkers].done = 1;
    }

    if (nworkers == 0) {
        return ngx_http_encore_ops_readyz_send(r, ctx);
    }

    name = olcf->workers->elts;

    for (i = 0; i < nworkers; i++) {
        ctx->checks[i].name = &name[i];

        uri.len = olcf->uri.len + name[i].len;
        uri.data = ngx_pnalloc(r->pool, uri.len);
        if (uri.data == NULL) {
            return ngx_http_encore_ops_readyz_fail(ctx);
        }

        ngx_memcpy(ngx_cpymem(uri.data, olcf->uri.data, olcf->uri.len),
                   name[i].data, name[i].len);

        ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
        if (ps == NULL) {
            return ngx_http_encore_ops_readyz_fail(ctx);
        }

        ps->handler = ngx_http_encore_ops_readyz_done;
        ps->data = &ctx->checks[i];

        if (ngx_http_subrequest(r, &uri, NULL, &sr, ps,
                                NGX_HTTP_SUBREQUEST_WAITED)
            != NGX_OK)
        {
            /* it may have failed after taking a count: as auth_request */
            return NGX_ERROR;
        }

        ctx->pending++;

        /*
         * as auth_request: a fake request body, so that the subrequest
         * never reads or closes the client's; only the header is wanted,
         * nothing of the worker's answer is sent on
         */

        sr->request_body = ngx_pcalloc(r->pool,
                                       sizeof(ngx_http_request_body_t));
        if (sr->request_body == NULL) {
            return NGX_ERROR;
        }

        sr->header_only = 1;
    }

    /*
     * The subrequests run once this returns; each one's end wakes this
     * request, which answers when the last one has.  The count taken here
     * is given back by NGX_DONE.
     */
    r->write_event_handler = ngx_http_encore_ops_readyz_resume;
    r->main->count++;

    return NGX_DONE;
}


/*
 * A failure before any subrequest was posted can still be answered with a
 * 500 error page; once one is posted, an error page would be sent while
 * the subrequests run and end into a finalized request: NGX_ERROR
 * terminates the request and its subrequests together.
 */
static ngx_int_t
ngx_http_encore_ops_readyz_fail(ngx_http_encore_ops_ctx_t *ctx)
{
    return ctx->pending ? NGX_ERROR : NGX_HTTP_INTERNAL_SERVER_ERROR;
}


static ngx_int_t
ngx_http_encore_ops_readyz_done(ngx_http_request_t *r, void *data,
    ngx_int_t rc)
{
    ngx_http_encore_ops_check_t  *check = data;

    ngx_http_encore_ops_ctx_t  *ctx;

    /* a subrequest that ends while not active is finalized again later */
    if (check->done) {
        return rc;
    }

    check->done = 1;

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE || rc == NGX_ERROR) {
        /* the worker did not answer (502, 504) or the proxying failed */
        check->status = (rc == NGX_ERROR) ? NGX_HTTP_BAD_GATEWAY : rc;

    } else {
        check->status = r->headers_out.status;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "readyz: worker \"%V\" answered %ui",
                   check->name, check->status);

    ctx = ngx_http_get_module_ctx(r->parent, ngx_http_encore_ops_module);

    if (ctx != NULL && ctx->pending) {
        ctx->pending--;
    }

    /*
     * An error is recorded, not answered: NGX_OK ends the subrequest
     * without an error page of its own.
     */
    return (rc == NGX_ERROR) ? rc : NGX_OK;
}


static void
ngx_http_encore_ops_readyz_resume(ngx_http_request_t *r)
{
    ngx_http_encore_ops_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_encore_ops_module);

    if (ctx == NULL || ctx->pending) {
        return;
    }

    r->write_event_handler = ngx_http_request_empty_handler;

    ngx_http_finalize_request(r, ngx_http_encore_ops_readyz_send(r, ctx));
}


/*
 * 200 {"status":"ready","workers":{...}}, or a 503 problem (the edge's one
 * writer) whose detail names the workers not ready, with two members more:
 * "not_ready":[...] and the same "workers":{...}.
 */
static ngx_int_t
ngx_http_encore_ops_readyz_send(ngx_http_request_t *r,
    ngx_http_encore_ops_ctx_t *ctx)
{
    size_t        len;
    u_char       *p, *last;
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_str_t     detail, members;
    ngx_uint_t    i, ready, nbad;
    ngx_chain_t   out;

    /*
     * worker names are [a-z0-9_-]: nothing to escape in the JSON.  Each
     * name is written three times: in "detail", in "not_ready" and as a
     * key of "workers"
     */
    len = sizeof("workers not ready: ") - 1
          + sizeof("{\"status\":\"ready\",\"workers\":{}}\n") - 1
          + sizeof("\"not_ready\":[],\"workers\":{}") - 1;

    for (i = 0; i < ctx->nchecks; i++) {
        len += 3 * ctx->checks[i].name->len
               + sizeof(", ") - 1
               + sizeof(",\"\"") - 1
               + sizeof(",\"\":{\"ready\":false,\"status\":999}") - 1;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    last = p + len;

    nbad = 0;

    for (i = 0; i < ctx->nchecks; i++) {
        if (ctx->checks[i].status < 200 || ctx->checks[i].status > 299) {
            nbad++;
        }
    }

    if (nbad) {
        detail.data = p;
        p = ngx_cpymem(p, "workers not ready: ",
                       sizeof("workers not ready: ") - 1);

        for (i = 0, nbad = 0; i < ctx->nchecks; i++) {
            if (ctx->checks[i].status >= 200 && ctx->checks[i].status <= 299) {
                continue;
            }

            p = ngx_slprintf(p, last, "%s%V", nbad++ ? ", " : "",
                             ctx->checks[i].name);
        }

        detail.len = p - detail.data;

        members.data = p;
        p = ngx_slprintf(p, last, "\"not_ready\":[");

        for (i = 0, nbad = 0; i < ctx->nchecks; i++) {
            if (ctx->checks[i].status >= 200 && ctx->checks[i].status <= 299) {
                continue;
            }

            p = ngx_slprintf(p, last, "%s\"%V\"", nbad++ ? "," : "",
                             ctx->checks[i].name);
        }

        p = ngx_slprintf(p, last, "],\"workers\":{");

    } else {
        members.data = p;
        p = ngx_slprintf(p, last, "{\"status\":\"ready\",\"workers\":{");
    }

    for (i = 0; i < ctx->nchecks; i++) {
        ready = (ctx->checks[i].status >= 200 && ctx->checks[i].status <= 299);

        p = ngx_slprintf(p, last,
                         "%s\"%V\":{\"ready\":%s,\"status\":%ui}",
                         i ? "," : "", ctx->checks[i].name,
                         ready ? "true" : "false",
                         ngx_min(ctx->checks[i].status, 999));
    }

    if (last - p < 3) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "readyz: body of %uz bytes is too small", len);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *p++ = '}';

    if (nbad) {
        members.len = p - members.data;

        return ngx_http_encore_problem_send_members(r,
                                                NGX_HTTP_SERVICE_UNAVAILABLE,
                                                &detail, &members);
    }

    p = ngx_cpymem(p, "}\n", 2);

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = members.data;
    b->last = p;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static void *
ngx_http_encore_ops_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_encore_ops_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_encore_ops_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->uri = { 0, NULL };
     */

    conf->workers = NGX_CONF_UNSET_PTR;

    return conf;
}


static char *
ngx_http_encore_ops_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_encore_ops_loc_conf_t *prev = parent;
    ngx_http_encore_ops_loc_conf_t *conf = child;

    ngx_conf_merge_ptr_value(conf->workers, prev->workers, NULL);
    ngx_conf_merge_str_value(conf->uri, prev->uri, "/_readyz/");

    if (conf->uri.len == 0 || conf->uri.data[0] != '/') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"encore_readyz_uri\" must start with \"/\"");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_encore_ops_readyz(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_encore_ops_loc_conf_t *olcf = conf;

    u_char                    *c;
    ngx_str_t                 *value, *name;
    ngx_uint_t                 i, j;
    ngx_http_core_loc_conf_t  *clcf;

    if (olcf->workers != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    olcf->workers = ngx_array_create(cf->pool, cf->args->nelts,
                                     sizeof(ngx_str_t));
    if (olcf->workers == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        for (j = 0; j < value[i].len; j++) {
            c = &value[i].data[j];

            if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9')
                  || *c == '_' || *c == '-'))
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid worker name \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }
        }

        if (value[i].len == 0 || value[i].len > 64) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid worker name \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        name = ngx_array_push(olcf->workers);
        if (name == NULL) {
            return NGX_CONF_ERROR;
        }

        *name = value[i];
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_encore_ops_readyz_handler;

    return NGX_CONF_OK;
}
