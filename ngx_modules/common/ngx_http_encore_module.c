
/*
 * Copyright (C) Encore
 *
 * The first module of ngx_http_encore_module.so: nginx names a dynamic
 * module after the first entry of its module list, and "load_module
 * modules/ngx_http_encore_module.so" loads jwt, route, aggregate and
 * metrics together.
 *
 * It holds the edge's request limits that no stock directive has:
 * "encore_client_max_headers" refuses a request of more header lines than
 * the workers can hold.  large_client_header_buffers bounds their bytes,
 * not their number, and a worker (libmicrohttpd) keeps a record per line
 * in a fixed per-connection pool: a few hundred short lines within the
 * byte limit reached it and exhausted the pool, and it answered 431 with
 * its own HTML page.  Refused here, they are nginx's 494, which the error
 * pages answer 431 problem+json, as for a line that is too long.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


typedef struct {
    ngx_uint_t                  max_headers;
} ngx_http_encore_srv_conf_t;


static ngx_int_t ngx_http_encore_headers_handler(ngx_http_request_t *r);

static void *ngx_http_encore_create_srv_conf(ngx_conf_t *cf);
static char *ngx_http_encore_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_encore_init(ngx_conf_t *cf);


static ngx_command_t  ngx_http_encore_commands[] = {

    { ngx_string("encore_client_max_headers"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_encore_srv_conf_t, max_headers),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_encore_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_encore_init,                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_http_encore_create_srv_conf,       /* create server configuration */
    ngx_http_encore_merge_srv_conf,        /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_encore_module = {
    NGX_MODULE_V1,
    &ngx_http_encore_module_ctx,           /* module context */
    ngx_http_encore_commands,              /* module directives */
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
ngx_http_encore_headers_handler(ngx_http_request_t *r)
{
    ngx_uint_t                   n;
    ngx_list_part_t             *part;
    ngx_http_encore_srv_conf_t  *escf;

    escf = ngx_http_get_module_srv_conf(r, ngx_http_encore_module);

    if (escf->max_headers == 0) {
        return NGX_DECLINED;
    }

    n = 0;

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        n += part->nelts;
    }

    if (n <= escf->max_headers) {
        return NGX_DECLINED;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "client sent %ui header lines, more than %ui",
                  n, escf->max_headers);

    return NGX_HTTP_REQUEST_HEADER_TOO_LARGE;
}


static void *
ngx_http_encore_create_srv_conf(ngx_conf_t *cf)
{
    ngx_http_encore_srv_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_encore_srv_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->max_headers = NGX_CONF_UNSET_UINT;

    return conf;
}


static char *
ngx_http_encore_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_encore_srv_conf_t *prev = parent;
    ngx_http_encore_srv_conf_t *conf = child;

    ngx_conf_merge_uint_value(conf->max_headers, prev->max_headers, 0);

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_encore_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_POST_READ_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_encore_headers_handler;

    return NGX_OK;
}
