
/*
 * Copyright (C) Encore
 *
 * ngx_http_encore_problem_module: problem+json for every error a client
 * sees (RFC 9457; ngx_http_encore_problem.h writes them).
 *
 * "encore_problem" makes a location answer a problem document for the
 * error that led to it: the error pages (conf/errors.conf) are one
 * location with it, and the titles and details stay in the writer's table
 * rather than in one "return" string per status.
 *
 * "encore_problem_filter on" is the safety net: an answer of 400 or more
 * to a client that is not application/problem+json, whoever produced it
 * (a worker's HTTP library refusing a request with its own HTML page,
 * nginx's built-in page for a status without an error_page, a worker's
 * bug), is replaced by the standard problem document of its status.  The
 * contract promises problem+json for every error; a page naming the
 * library also tells an attacker what runs behind the edge.  Headers other
 * than the body's own (Allow, Retry-After, WWW-Authenticate, X-Request-Id)
 * are kept.  Subrequests are never touched: their bodies are their
 * parent's to read (the aggregate module captures parts' errors itself).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_encore_problem.h"


typedef struct {
    ngx_uint_t                  status;      /* encore_problem STATUS */
    ngx_flag_t                  filter;
} ngx_http_encore_problem_loc_conf_t;


typedef struct {
    ngx_buf_t                  *buf;
    ngx_uint_t                  sent;        /* unsigned  sent:1; */
} ngx_http_encore_problem_ctx_t;


static ngx_int_t ngx_http_encore_problem_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_encore_problem_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_encore_problem_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_uint_t ngx_http_encore_problem_is_problem(ngx_str_t *type);

static void *ngx_http_encore_problem_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_encore_problem_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static ngx_int_t ngx_http_encore_problem_init(ngx_conf_t *cf);

static char *ngx_http_encore_problem(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


static ngx_command_t  ngx_http_encore_problem_commands[] = {

    { ngx_string("encore_problem"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_encore_problem,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("encore_problem_filter"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_encore_problem_loc_conf_t, filter),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_encore_problem_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_encore_problem_init,          /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_encore_problem_create_loc_conf, /* create location configuration */
    ngx_http_encore_problem_merge_loc_conf /* merge location configuration */
};


ngx_module_t  ngx_http_encore_problem_module = {
    NGX_MODULE_V1,
    &ngx_http_encore_problem_module_ctx,   /* module context */
    ngx_http_encore_problem_commands,      /* module directives */
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


/*
 * The status is the directive's, else the error's that redirected here
 * (error_page keeps it in r->err_status, after any "=code"; it is the
 * status nginx sends whatever a location sets).  nginx's own codes above
 * 493 never reach a client: 494 (a header too large) is answered 431 as
 * RFC 6585 has it, the others (TLS client certificates, a closed
 * connection) 400.
 */
static ngx_int_t
ngx_http_encore_problem_handler(ngx_http_request_t *r)
{
    ngx_uint_t                           status;
    ngx_http_encore_problem_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_encore_problem_module);

    status = plcf->status;

    if (status == 0) {
        status = r->err_status;
    }

    if (status == NGX_HTTP_REQUEST_HEADER_TOO_LARGE) {
        status = 431;

    } else if (status > NGX_HTTP_REQUEST_HEADER_TOO_LARGE && status < 500) {
        status = NGX_HTTP_BAD_REQUEST;

    } else if (status < NGX_HTTP_BAD_REQUEST || status > 599) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "problem: no error status for \"%V\"", &r->uri);
        status = NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (r->err_status) {
        r->err_status = status;
    }

    return ngx_http_encore_problem_send(r, status, NULL);
}


static ngx_int_t
ngx_http_encore_problem_header_filter(ngx_http_request_t *r)
{
    ngx_str_t                           *type;
    ngx_uint_t                           status;
    ngx_http_encore_problem_ctx_t       *ctx;
    ngx_http_encore_problem_loc_conf_t  *plcf;

    status = r->headers_out.status;

    if (r != r->main || status < NGX_HTTP_BAD_REQUEST) {
        return ngx_http_next_header_filter(r);
    }

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_encore_problem_module);

    if (!plcf->filter
        || ngx_http_encore_problem_is_problem(&r->headers_out.content_type))
    {
        return ngx_http_next_header_filter(r);
    }

    type = &r->headers_out.content_type;

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "problem: a %ui answer of type \"%V\"%s is replaced by "
                  "problem+json", status, type,
                  r->upstream ? " from an upstream" : "");

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_encore_problem_ctx_t));
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ctx->buf = ngx_http_encore_problem_create_buf(r->pool, status, NULL, NULL);
    if (ctx->buf == NULL) {
        return NGX_ERROR;
    }

    ctx->buf->last_buf = 1;
    ctx->buf->last_in_chain = 1;

    ngx_http_set_ctx(r, ctx, ngx_http_encore_problem_module);

    /* the headers that described the replaced body */

    ngx_http_clear_content_length(r);
    ngx_http_clear_accept_ranges(r);
    ngx_http_clear_last_modified(r);
    ngx_http_clear_etag(r);

    if (r->headers_out.content_encoding) {
        r->headers_out.content_encoding->hash = 0;
        r->headers_out.content_encoding = NULL;
    }

    if (r->headers_out.content_range) {
        r->headers_out.content_range->hash = 0;
        r->headers_out.content_range = NULL;
    }

    r->headers_out.content_length_n = ctx->buf->last - ctx->buf->pos;

    ngx_str_set(&r->headers_out.content_type, NGX_HTTP_ENCORE_PROBLEM_TYPE);
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.charset.len = 0;

    r->allow_ranges = 0;

    return ngx_http_next_header_filter(r);
}


/*
 * The replaced body is read and dropped as it comes (an upstream's
 * buffers are consumed, so that it goes on reading to the end and the
 * connection stays usable); the problem document goes out once, on the
 * first call, with last_buf: the answer is complete even if the original
 * body never is.
 */
static ngx_int_t
ngx_http_encore_problem_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_chain_t                     *cl, out;
    ngx_http_encore_problem_ctx_t   *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_encore_problem_module);

    if (ctx == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    for (cl = in; cl; cl = cl->next) {
        cl->buf->pos = cl->buf->last;

        if (cl->buf->in_file) {
            cl->buf->file_pos = cl->buf->file_last;
        }
    }

    if (ctx->sent || r->header_only) {
        return ngx_http_next_body_filter(r, NULL);
    }

    ctx->sent = 1;

    out.buf = ctx->buf;
    out.next = NULL;

    return ngx_http_next_body_filter(r, &out);
}


/* application/problem+json, with or without parameters */
static ngx_uint_t
ngx_http_encore_problem_is_problem(ngx_str_t *type)
{
    size_t  len;

    len = sizeof(NGX_HTTP_ENCORE_PROBLEM_TYPE) - 1;

    if (type->len < len
        || ngx_strncasecmp(type->data, (u_char *) NGX_HTTP_ENCORE_PROBLEM_TYPE,
                           len)
           != 0)
    {
        return 0;
    }

    return type->len == len || type->data[len] == ';' || type->data[len] == ' ';
}


static void *
ngx_http_encore_problem_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_encore_problem_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_encore_problem_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->status = 0;
     */

    conf->filter = NGX_CONF_UNSET;

    return conf;
}


static char *
ngx_http_encore_problem_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_encore_problem_loc_conf_t *prev = parent;
    ngx_http_encore_problem_loc_conf_t *conf = child;

    ngx_conf_merge_value(conf->filter, prev->filter, 0);

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_encore_problem_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_encore_problem_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_encore_problem_body_filter;

    return NGX_OK;
}


static char *
ngx_http_encore_problem(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_encore_problem_loc_conf_t *plcf = conf;

    ngx_int_t                  n;
    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler == ngx_http_encore_problem_handler) {
        return "is duplicate";
    }

    if (cf->args->nelts == 2) {
        value = cf->args->elts;

        n = ngx_atoi(value[1].data, value[1].len);

        if (n < NGX_HTTP_BAD_REQUEST || n > 599) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid status \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }

        plcf->status = n;
    }

    clcf->handler = ngx_http_encore_problem_handler;

    return NGX_CONF_OK;
}
