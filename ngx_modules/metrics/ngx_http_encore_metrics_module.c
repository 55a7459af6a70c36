/*
 * Copyright (C) Encore
 *
 * ngx_http_encore_metrics_module: Prometheus counters and histograms of
 * the edge, kept in a shared memory zone that every nginx worker process
 * adds to, and their text exposition for a location.
 *
 * Samples are taken in the log phase: per main request the route, method
 * and status class, the request time, and the jwt module's verdict (read
 * from its variables); per upstream try its response time or its
 * failure.  Label values come from configuration (route and upstream
 * names, the jwt module's fixed reasons), never from request paths, and
 * the zone holds a fixed number of series (encore_metrics.c); a reload
 * with the same zone name and size keeps the counters.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "encore_metrics.h"
#include "ngx_http_encore_jwt.h"


#define NGX_HTTP_ENCORE_METRICS_LABEL_LEN  ENCORE_METRICS_VALUE_MAX


typedef struct {
    encore_metrics_t             metrics;     /* process-local handle */
    ngx_slab_pool_t             *shpool;
    ngx_uint_t                   max_series;  /* 0: as many as fit */
} ngx_http_encore_metrics_zone_t;


/*
 * A worker's cache of series: (route label as read, method, status class)
 * -> the requests and duration series encore_metrics_get() returned for
 * them, and (upstream label as read, NGX_HTTP_ENCORE_METRICS_UPSTREAM) ->
 * its duration series (in requests); direct-mapped.  Series never move
 * or go away while the zone is mapped, and only series that are not a
 * family's "other" are kept (those count an overflow per call), so a hit
 * gives what encore_metrics_get() would.
 */
#define NGX_HTTP_ENCORE_METRICS_CACHE     64
#define NGX_HTTP_ENCORE_METRICS_UPSTREAM  8    /* after the 8 methods */

typedef struct {
    encore_metrics_series_t     *requests;    /* NULL: empty */
    encore_metrics_series_t     *duration;
    size_t                       len;
    ngx_uint_t                   method;
    ngx_uint_t                   status;
    u_char                       route[NGX_HTTP_ENCORE_METRICS_LABEL_LEN];
} ngx_http_encore_metrics_cache_t;


typedef struct {
    ngx_shm_zone_t                   *shm_zone;
    ngx_http_encore_metrics_cache_t  *cache;
    ngx_uint_t                        expose;  /* encore_metrics_expose used */
    ngx_int_t                         route_index;
    ngx_int_t                         saved_route_index;
    ngx_int_t                         saved_upstream_index;
    ngx_int_t                         jwt_sub_index;
    ngx_int_t                         jwt_error_index;
    ngx_int_t                         jwt_cache_index;
} ngx_http_encore_metrics_main_conf_t;


typedef struct {
    ngx_flag_t                   enable;
    ngx_http_complex_value_t    *route;
    ngx_http_complex_value_t    *upstream;
} ngx_http_encore_metrics_loc_conf_t;


static ngx_int_t ngx_http_encore_metrics_save_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_encore_metrics_log_handler(ngx_http_request_t *r);
static void ngx_http_encore_metrics_value(ngx_http_request_t *r,
    ngx_http_complex_value_t *cv, ngx_int_t saved, ngx_str_t *value);
static void ngx_http_encore_metrics_log_request(ngx_http_request_t *r,
    ngx_http_encore_metrics_main_conf_t *mmcf,
    ngx_http_encore_metrics_loc_conf_t *mlcf, encore_metrics_t *m);
static ngx_inline ngx_uint_t ngx_http_encore_metrics_cache_key(u_char *data,
    size_t len, ngx_uint_t mi, ngx_uint_t ci);
static void ngx_http_encore_metrics_log_jwt(ngx_http_request_t *r,
    ngx_http_encore_metrics_main_conf_t *mmcf, encore_metrics_t *m);
static void ngx_http_encore_metrics_log_upstream(ngx_http_request_t *r,
    ngx_http_encore_metrics_main_conf_t *mmcf,
    ngx_http_encore_metrics_loc_conf_t *mlcf, encore_metrics_t *m);
static void ngx_http_encore_metrics_label(encore_metrics_str_t *label,
    u_char *buf, u_char *data, size_t len, ngx_uint_t slug);
static ngx_int_t ngx_http_encore_metrics_expose_handler(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_encore_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_encore_metrics_lock(void *data);
static void ngx_http_encore_metrics_unlock(void *data);
static ngx_int_t ngx_http_encore_metrics_variable(ngx_conf_t *cf,
    char *name);
static ngx_int_t ngx_http_encore_metrics_saved_variable(
    ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data);
static void ngx_http_encore_metrics_method(ngx_http_request_t *r,
    ngx_str_t *name);
static ngx_int_t ngx_http_encore_metrics_method_variable(
    ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data);

static ngx_int_t ngx_http_encore_metrics_add_variables(ngx_conf_t *cf);

static void *ngx_http_encore_metrics_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_encore_metrics_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_encore_metrics_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static ngx_int_t ngx_http_encore_metrics_init(ngx_conf_t *cf);

static char *ngx_http_encore_metrics_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_encore_metrics_expose(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);


static ngx_command_t  ngx_http_encore_metrics_commands[] = {

    { ngx_string("encore_metrics_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_encore_metrics_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("encore_metrics"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_encore_metrics_loc_conf_t, enable),
      NULL },

    { ngx_string("encore_metrics_route"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_encore_metrics_loc_conf_t, route),
      NULL },

    { ngx_string("encore_metrics_upstream"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_encore_metrics_loc_conf_t, upstream),
      NULL },

    { ngx_string("encore_metrics_expose"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_encore_metrics_expose,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_encore_metrics_module_ctx = {
    ngx_http_encore_metrics_add_variables, /* preconfiguration */
    ngx_http_encore_metrics_init,          /* postconfiguration */

    ngx_http_encore_metrics_create_main_conf, /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_encore_metrics_create_loc_conf, /* create location configuration */
    ngx_http_encore_metrics_merge_loc_conf /* merge location configuration */
};


ngx_module_t  ngx_http_encore_metrics_module = {
    NGX_MODULE_V1,
    &ngx_http_encore_metrics_module_ctx,   /* module context */
    ngx_http_encore_metrics_commands,      /* module directives */
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


/*
 * The labels a location sets with encore_metrics_route and
 * encore_metrics_upstream, saved when the request enters it: an error
 * page's internal redirect clears module contexts but not variables, and
 * the log phase runs in the location the request ended in.
 */
static ngx_http_variable_t  ngx_http_encore_metrics_vars[] = {

    { ngx_string("encore_metrics_route"), NULL,
      ngx_http_encore_metrics_saved_variable, 0, 0, 0 },

    { ngx_string("encore_metrics_upstream"), NULL,
      ngx_http_encore_metrics_saved_variable, 0, 0, 0 },

    { ngx_string("encore_request_method"), NULL,
      ngx_http_encore_metrics_method_variable, 0, 0, 0 },

      ngx_http_null_variable
};


static ngx_str_t  ngx_http_encore_metrics_unmatched = ngx_string("unmatched");
static ngx_str_t  ngx_http_encore_metrics_unnamed = ngx_string("unnamed");


static ngx_int_t
ngx_http_encore_metrics_save_handler(ngx_http_request_t *r)
{
    ngx_str_t                             value;
    ngx_http_variable_value_t            *vv;
    ngx_http_encore_metrics_loc_conf_t   *mlcf;
    ngx_http_encore_metrics_main_conf_t  *mmcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_encore_metrics_module);

    if (mlcf->route == NULL && mlcf->upstream == NULL) {
        return NGX_DECLINED;
    }

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_encore_metrics_module);

    if (mlcf->route
        && ngx_http_complex_value(r, mlcf->route, &value) == NGX_OK)
    {
        vv = &r->variables[mmcf->saved_route_index];
        vv->data = value.data;
        vv->len = value.len;
        vv->valid = 1;
        vv->no_cacheable = 0;
        vv->not_found = 0;
    }

    if (mlcf->upstream
        && ngx_http_complex_value(r, mlcf->upstream, &value) == NGX_OK)
    {
        vv = &r->variables[mmcf->saved_upstream_index];
        vv->data = value.data;
        vv->len = value.len;
        vv->valid = 1;
        vv->no_cacheable = 0;
        vv->not_found = 0;
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_encore_metrics_log_handler(ngx_http_request_t *r)
{
    ngx_http_encore_metrics_zone_t       *zone;
    ngx_http_encore_metrics_loc_conf_t   *mlcf;
    ngx_http_encore_metrics_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_encore_metrics_module);

    if (mmcf->shm_zone == NULL) {
        return NGX_OK;
    }

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_encore_metrics_module);

    if (!mlcf->enable) {
        return NGX_OK;
    }

    zone = mmcf->shm_zone->data;

    if (zone->metrics.sh == NULL) {
        return NGX_OK;
    }

    /* subrequests reach the log phase only with "log_subrequest on" */
    if (r == r->main) {
        ngx_http_encore_metrics_log_request(r, mmcf, mlcf, &zone->metrics);
        ngx_http_encore_metrics_log_jwt(r, mmcf, &zone->metrics);
    }

    ngx_http_encore_metrics_log_upstream(r, mmcf, mlcf, &zone->metrics);

    return NGX_OK;
}


static void
ngx_http_encore_metrics_log_request(ngx_http_request_t *r,
    ngx_http_encore_metrics_main_conf_t *mmcf,
    ngx_http_encore_metrics_loc_conf_t *mlcf, encore_metrics_t *m)
{
    u_char                            buf[NGX_HTTP_ENCORE_METRICS_LABEL_LEN];
    ngx_str_t                         route, method;
    ngx_uint_t                        status, mi, ci;
    ngx_time_t                       *tp;
    ngx_msec_int_t                    ms;
    encore_metrics_str_t              labels[3];
    encore_metrics_series_t          *requests, *duration;
    ngx_http_variable_value_t        *vv;
    ngx_http_encore_metrics_cache_t  *c;

    static const char  *classes[] = {
        "1xx", "2xx", "3xx", "4xx", "5xx", "other"
    };

    static const encore_metrics_str_t  methods[] = {
        { "GET", 3 }, { "HEAD", 4 }, { "POST", 4 }, { "PUT", 3 },
        { "PATCH", 5 }, { "DELETE", 6 }, { "OPTIONS", 7 }, { "other", 5 }
    };

    ngx_http_encore_metrics_value(r, mlcf->route, mmcf->saved_route_index,
                                  &route);

    if (route.len == 0 && mmcf->route_index != NGX_ERROR) {
        vv = ngx_http_get_indexed_variable(r, mmcf->route_index);

        if (vv != NULL && !vv->not_found) {
            route.data = vv->data;
            route.len = vv->len;
        }
    }

    if (route.len == 0) {
        route = ngx_http_encore_metrics_unmatched;
    }

    /* the method the client sent, not an error page's GET: 7 is "other" */

    ngx_http_encore_metrics_method(r, &method);

    for (mi = 0; mi < 7; mi++) {
        if (method.len == methods[mi].len
            && ngx_strncmp(method.data, methods[mi].data, method.len) == 0)
        {
            break;
        }
    }

    /* as $status */
    if (r->err_status) {
        status = r->err_status;

    } else if (r->headers_out.status) {
        status = r->headers_out.status;

    } else {
        status = 0;
    }

    /* 0 ... 4: 1xx ... 5xx, 5: other */
    ci = (status >= 100 && status < 600) ? status / 100 - 1 : 5;

    c = NULL;
    requests = NULL;

    if (route.len <= NGX_HTTP_ENCORE_METRICS_LABEL_LEN) {
        c = &mmcf->cache[ngx_http_encore_metrics_cache_key(route.data,
                                                           route.len, mi, ci)];

        if (c->requests != NULL && c->len == route.len && c->method == mi
            && c->status == ci && ngx_memcmp(c->route, route.data, route.len)
                                  == 0)
        {
            requests = c->requests;
            duration = c->duration;
        }
    }

    if (requests == NULL) {
        ngx_http_encore_metrics_label(&labels[0], buf, route.data, route.len,
                                      0);

        labels[1].data = methods[mi].data;
        labels[1].len = methods[mi].len;
        labels[2].data = classes[ci];
        labels[2].len = ci < 5 ? 3 : sizeof("other") - 1;

        requests = encore_metrics_get(m, ENCORE_METRICS_HTTP_REQUESTS, labels);
        duration = encore_metrics_get(m, ENCORE_METRICS_HTTP_DURATION, labels);

        if (c != NULL && !requests->other && !duration->other) {
            c->requests = requests;
            c->duration = duration;
            c->len = route.len;
            c->method = mi;
            c->status = ci;
            ngx_memcpy(c->route, route.data, route.len);
        }
    }

    encore_metrics_inc(requests, 1);

    /* as $request_time */
    tp = ngx_timeofday();
    ms = (ngx_msec_int_t)
             ((tp->sec - r->start_sec) * 1000 + (tp->msec - r->start_msec));
    ms = ngx_max(ms, 0);

    encore_metrics_observe(duration, (uint64_t) ms * 1000);
}


static ngx_inline ngx_uint_t
ngx_http_encore_metrics_cache_key(u_char *data, size_t len, ngx_uint_t mi,
    ngx_uint_t ci)
{
    size_t    i;
    uint64_t  a, b;

    if (len >= 8) {
        ngx_memcpy(&a, data, 8);
        ngx_memcpy(&b, data + len - 8, 8);

    } else {
        a = 0;

        for (i = 0; i < len; i++) {
            a = a << 8 | data[i];
        }

        b = 0;
    }

    a = (a ^ (uint64_t) (len << 7 | mi << 3 | ci)) * 0x9e3779b97f4a7c15ull;
    a ^= (b + (a >> 29)) * 0xbf58476d1ce4e5b9ull;

    return (ngx_uint_t) (a >> 58) & (NGX_HTTP_ENCORE_METRICS_CACHE - 1);
}


static void
ngx_http_encore_metrics_log_jwt(ngx_http_request_t *r,
    ngx_http_encore_metrics_main_conf_t *mmcf, encore_metrics_t *m)
{
    u_char                      buf[NGX_HTTP_ENCORE_METRICS_LABEL_LEN];
    encore_metrics_str_t        label;
    ngx_http_variable_value_t  *vv;

    if (mmcf->jwt_cache_index != NGX_ERROR) {
        vv = ngx_http_get_indexed_variable(r, mmcf->jwt_cache_index);

        /* "hit" or "miss"; "off" and empty: the cache was not asked */
        if (vv != NULL && !vv->not_found && vv->len
            && !(vv->len == 3 && ngx_strncmp(vv->data, "off", 3) == 0))
        {
            ngx_http_encore_metrics_label(&label, buf, vv->data, vv->len, 1);
            encore_metrics_inc(encore_metrics_get(m,
                                                  ENCORE_METRICS_JWT_CACHE,
                                                  &label),
                               1);
        }
    }

    if (mmcf->jwt_sub_index != NGX_ERROR) {
        vv = ngx_http_get_indexed_variable(r, mmcf->jwt_sub_index);

        if (vv != NULL && !vv->not_found && vv->len) {
            label.data = "valid";
            label.len = sizeof("valid") - 1;

            encore_metrics_inc(encore_metrics_get(m,
                                          ENCORE_METRICS_JWT_VERIFICATIONS,
                                          &label),
                               1);
            return;
        }
    }

    if (mmcf->jwt_error_index != NGX_ERROR) {
        vv = ngx_http_get_indexed_variable(r, mmcf->jwt_error_index);

        /* the jwt module's reasons are fixed strings: a bounded set */
        if (vv != NULL && !vv->not_found && vv->len) {
            ngx_http_encore_metrics_label(&label, buf, vv->data, vv->len, 1);
            encore_metrics_inc(encore_metrics_get(m,
                                          ENCORE_METRICS_JWT_VERIFICATIONS,
                                          &label),
                               1);
        }
    }
}


static void
ngx_http_encore_metrics_log_upstream(ngx_http_request_t *r,
    ngx_http_encore_metrics_main_conf_t *mmcf,
    ngx_http_encore_metrics_loc_conf_t *mlcf, encore_metrics_t *m)
{
    u_char                            buf[NGX_HTTP_ENCORE_METRICS_LABEL_LEN];
    ngx_str_t                         name;
    ngx_uint_t                        i, labelled;
    encore_metrics_str_t              label;
    encore_metrics_series_t          *duration, *failures;
    ngx_http_upstream_state_t        *state;
    ngx_http_encore_metrics_cache_t  *c;

    if (r->upstream_states == NULL || r->upstream_states->nelts == 0) {
        return;
    }

    ngx_http_encore_metrics_value(r, mlcf->upstream,
                                  mmcf->saved_upstream_index, &name);

    if (name.len == 0 && r->upstream && r->upstream->upstream) {
        name = r->upstream->upstream->host;
    }

    if (name.len == 0) {
        name = ngx_http_encore_metrics_unnamed;
    }

    /* series are made on first use only: a hit is one that exists */

    c = NULL;
    duration = NULL;

    if (name.len <= NGX_HTTP_ENCORE_METRICS_LABEL_LEN) {
        c = &mmcf->cache[ngx_http_encore_metrics_cache_key(name.data,
                                   name.len, NGX_HTTP_ENCORE_METRICS_UPSTREAM,
                                   0)];

        if (c->requests != NULL && c->len == name.len
            && c->method == NGX_HTTP_ENCORE_METRICS_UPSTREAM
            && ngx_memcmp(c->route, name.data, name.len) == 0)
        {
            duration = c->requests;
        }
    }

    labelled = 0;
    failures = NULL;
    state = r->upstream_states->elts;

    for (i = 0; i < r->upstream_states->nelts; i++) {

        /* a separator pushed by an internal redirect, not a try */
        if (state[i].peer == NULL) {
            continue;
        }

        if (state[i].header_time == (ngx_msec_t) -1) {
            if (failures == NULL) {
                if (!labelled) {
                    ngx_http_encore_metrics_label(&label, buf, name.data,
                                                  name.len, 0);
                    labelled = 1;
                }

                failures = encore_metrics_get(m,
                                              ENCORE_METRICS_UPSTREAM_FAILURES,
                                              &label);
            }

            encore_metrics_inc(failures, 1);
        }

        if (state[i].response_time != (ngx_msec_t) -1) {
            if (duration == NULL) {
                if (!labelled) {
                    ngx_http_encore_metrics_label(&label, buf, name.data,
                                                  name.len, 0);
                    labelled = 1;
                }

                duration = encore_metrics_get(m,
                                             ENCORE_METRICS_UPSTREAM_DURATION,
                                             &label);

                if (c != NULL && !duration->other) {
                    c->requests = duration;
                    c->duration = NULL;
                    c->len = name.len;
                    c->method = NGX_HTTP_ENCORE_METRICS_UPSTREAM;
                    c->status = 0;
                    ngx_memcpy(c->route, name.data, name.len);
                }
            }

            encore_metrics_observe(duration,
                                   (uint64_t) state[i].response_time * 1000);
        }
    }
}


/*
 * A label set by configuration: the final location's value, else the one
 * saved in a location the request passed (see the variables above).
 */
static void
ngx_http_encore_metrics_value(ngx_http_request_t *r,
    ngx_http_complex_value_t *cv, ngx_int_t saved, ngx_str_t *value)
{
    ngx_http_variable_value_t  *vv;

    if (cv != NULL && ngx_http_complex_value(r, cv, value) == NGX_OK) {
        return;
    }

    vv = &r->variables[saved];

    if (vv->valid && !vv->not_found) {
        value->data = vv->data;
        value->len = vv->len;
        return;
    }

    ngx_str_null(value);
}


/*
 * A label value from a variable: printable ASCII only (the exposition is
 * UTF-8 and a value from a complex value could be anything); with slug,
 * also lower-case words joined by "_" ("token expired" → token_expired).
 * Longer values are passed whole: encore_metrics_get() folds them into
 * the "other" series.
 */
static void
ngx_http_encore_metrics_label(encore_metrics_str_t *label, u_char *buf,
    u_char *data, size_t len, ngx_uint_t slug)
{
    u_char  *p, ch;
    size_t   i;

    if (len > NGX_HTTP_ENCORE_METRICS_LABEL_LEN) {
        label->data = (const char *) data;
        label->len = len;
        return;
    }

    p = buf;

    for (i = 0; i < len; i++) {
        ch = data[i];

        if (slug) {
            ch = ngx_tolower(ch);

            if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))) {
                if (p == buf || p[-1] == '_') {
                    continue;
                }

                ch = '_';
            }

        } else if (ch < 0x20 || ch > 0x7e) {
            ch = '_';
        }

        *p++ = ch;
    }

    if (slug && p > buf && p[-1] == '_') {
        p--;
    }

    label->data = (const char *) buf;
    label->len = p - buf;
}


static ngx_int_t
ngx_http_encore_metrics_expose_handler(ngx_http_request_t *r)
{
    size_t                                size, len, room;
    ngx_int_t                             rc;
    ngx_buf_t                            *b;
    ngx_uint_t                            tries;
    ngx_chain_t                           out;
    ngx_http_encore_metrics_zone_t       *zone;
    ngx_http_encore_metrics_main_conf_t  *mmcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_encore_metrics_module);
    zone = mmcf->shm_zone->data;

    if (zone->metrics.sh == NULL) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    /* series may be added while rendering: retry with the size it took;
       the jwt module's revocation metrics follow them */
    size = 16384 + encore_metrics_bytes_used(&zone->metrics) * 8
           + NGX_HTTP_ENCORE_JWT_REVOCATION_METRICS_LEN;
    b = NULL;
    len = 0;
    room = 0;

    for (tries = 0; tries < 4; tries++) {
        b = ngx_create_temp_buf(r->pool, size);
        if (b == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        room = size - NGX_HTTP_ENCORE_JWT_REVOCATION_METRICS_LEN;

        len = encore_metrics_render(&zone->metrics, (char *) b->pos, room,
                                    mmcf->shm_zone->shm.size);
        if (len <= room) {
            break;
        }

        size = len + 16384 + NGX_HTTP_ENCORE_JWT_REVOCATION_METRICS_LEN;
    }

    if (len > room) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "metrics: exposition kept growing, gave up");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_http_encore_jwt_revocation_metrics(r, b->pos + len, b->end);
    len = b->last - b->pos;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = len;
    ngx_str_set(&r->headers_out.content_type,
                "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_type_len = sizeof("text/plain") - 1;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static ngx_int_t
ngx_http_encore_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_encore_metrics_zone_t  *ozone = data;

    void                            *mem;
    size_t                           len;
    ngx_uint_t                       max;
    ngx_http_encore_metrics_zone_t  *zone;

    zone = shm_zone->data;

    zone->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;
    zone->metrics.lock = ngx_http_encore_metrics_lock;
    zone->metrics.unlock = ngx_http_encore_metrics_unlock;
    zone->metrics.lock_data = zone->shpool;

    if (ozone || shm_zone->shm.exists) {

        /*
         * A reload with the same name and size: the zone is the old one,
         * and the old generation's workers keep adding to its table until
         * they exit.  The table can be neither freed nor moved, so another
         * max_series is refused, as limit_req refuses another key.
         */
        if (ozone && ozone->max_series != zone->max_series) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "encore_metrics_zone \"%V\" is already declared "
                          "with a different max_series (%ui, now %ui); "
                          "change its name or size, or restart",
                          &shm_zone->shm.name, ozone->max_series,
                          zone->max_series);
            return NGX_ERROR;
        }

        mem = zone->shpool->data;

        if (mem == NULL
            || encore_metrics_attach(&zone->metrics, mem,
                                     (uint32_t) zone->max_series)
               != 0)
        {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "encore_metrics_zone \"%V\" holds a table this "
                          "configuration cannot use", &shm_zone->shm.name);
            return NGX_ERROR;
        }

        return NGX_OK;

    } else {
        len = sizeof(" in encore_metrics_zone \"\"") + shm_zone->shm.name.len;

        zone->shpool->log_ctx = ngx_slab_alloc(zone->shpool, len);
        if (zone->shpool->log_ctx == NULL) {
            return NGX_ERROR;
        }

        ngx_sprintf(zone->shpool->log_ctx, " in encore_metrics_zone \"%V\"%Z",
                    &shm_zone->shm.name);
    }

    max = zone->max_series;

    if (max == 0) {
        /* as many as the free pages hold: the table is one block */
        max = encore_metrics_max_series(zone->shpool->pfree * ngx_pagesize);
    }

    len = encore_metrics_size((uint32_t) max);

    mem = (len == 0) ? NULL : ngx_slab_alloc(zone->shpool, len);

    if (mem == NULL) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "encore_metrics_zone \"%V\" of %uz bytes is too small "
                      "for max_series=%ui", &shm_zone->shm.name,
                      shm_zone->shm.size, max);
        return NGX_ERROR;
    }

    if (encore_metrics_init(&zone->metrics, mem, len, (uint32_t) max) != 0) {
        return NGX_ERROR;
    }

    zone->shpool->data = mem;

    return NGX_OK;
}


static void
ngx_http_encore_metrics_lock(void *data)
{
    ngx_slab_pool_t  *shpool = data;

    ngx_shmtx_lock(&shpool->mutex);
}


static void
ngx_http_encore_metrics_unlock(void *data)
{
    ngx_slab_pool_t  *shpool = data;

    ngx_shmtx_unlock(&shpool->mutex);
}


/*
 * The index of a variable that another module may define ($encore_route,
 * $encore_jwt_*), or NGX_ERROR when no loaded module does: asking for
 * an undefined variable would fail the configuration.  Every module has
 * added its variables in preconfiguration, before this runs.
 */
static ngx_int_t
ngx_http_encore_metrics_variable(ngx_conf_t *cf, char *name)
{
    ngx_str_t                   var;
    ngx_uint_t                  i;
    ngx_hash_key_t             *key;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    var.data = (u_char *) name;
    var.len = ngx_strlen(name);

    key = cmcf->variables_keys->keys.elts;

    for (i = 0; i < cmcf->variables_keys->keys.nelts; i++) {
        if (key[i].key.len == var.len
            && ngx_strncmp(key[i].key.data, var.data, var.len) == 0)
        {
            return ngx_http_get_variable_index(cf, &var);
        }
    }

    return NGX_ERROR;
}


static ngx_int_t
ngx_http_encore_metrics_saved_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    /* nothing saved: a saved value is stored in r->variables directly */
    v->not_found = 1;

    return NGX_OK;
}


/*
 * The method the client sent.  An error page's redirect makes the request
 * a GET (ngx_http_send_error_page()), so r->method_name tells the method
 * of the error page; the request line keeps the client's (HTTP/2 builds
 * one too).  Empty (the variable: not found) when the request line could
 * not be parsed.
 */
static void
ngx_http_encore_metrics_method(ngx_http_request_t *r, ngx_str_t *name)
{
    u_char  *p;

    r = r->main;

    if (r->request_line.len) {
        p = ngx_strlchr(r->request_line.data,
                        r->request_line.data + r->request_line.len, ' ');

        if (p != NULL) {
            name->data = r->request_line.data;
            name->len = p - r->request_line.data;
            return;
        }
    }

    ngx_str_null(name);
}


static ngx_int_t
ngx_http_encore_metrics_method_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t  name;

    ngx_http_encore_metrics_method(r, &name);

    if (name.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = name.data;
    v->len = name.len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_encore_metrics_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_encore_metrics_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static void *
ngx_http_encore_metrics_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_encore_metrics_main_conf_t  *mmcf;

    mmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_encore_metrics_main_conf_t));
    if (mmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     mmcf->shm_zone = NULL;
     *     mmcf->expose = 0;
     */

    mmcf->route_index = NGX_ERROR;
    mmcf->saved_route_index = NGX_ERROR;
    mmcf->saved_upstream_index = NGX_ERROR;
    mmcf->jwt_sub_index = NGX_ERROR;
    mmcf->jwt_error_index = NGX_ERROR;
    mmcf->jwt_cache_index = NGX_ERROR;

    return mmcf;
}


static void *
ngx_http_encore_metrics_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_encore_metrics_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_encore_metrics_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->enable = NGX_CONF_UNSET;
    conf->route = NGX_CONF_UNSET_PTR;
    conf->upstream = NGX_CONF_UNSET_PTR;

    return conf;
}


static char *
ngx_http_encore_metrics_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_encore_metrics_loc_conf_t *prev = parent;
    ngx_http_encore_metrics_loc_conf_t *conf = child;

    ngx_conf_merge_value(conf->enable, prev->enable, 1);
    ngx_conf_merge_ptr_value(conf->route, prev->route, NULL);
    ngx_conf_merge_ptr_value(conf->upstream, prev->upstream, NULL);

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_encore_metrics_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt                  *h;
    ngx_http_core_main_conf_t            *cmcf;
    ngx_http_encore_metrics_main_conf_t  *mmcf;

    mmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_encore_metrics_module);

    if (mmcf->shm_zone == NULL) {
        if (mmcf->expose) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"encore_metrics_expose\" needs an "
                               "\"encore_metrics_zone\"");
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    mmcf->cache = ngx_pcalloc(cf->pool,
                              NGX_HTTP_ENCORE_METRICS_CACHE
                              * sizeof(ngx_http_encore_metrics_cache_t));
    if (mmcf->cache == NULL) {
        return NGX_ERROR;
    }

    mmcf->route_index = ngx_http_encore_metrics_variable(cf, "encore_route");
    mmcf->saved_route_index = ngx_http_encore_metrics_variable(cf,
                                                     "encore_metrics_route");
    mmcf->saved_upstream_index = ngx_http_encore_metrics_variable(cf,
                                                  "encore_metrics_upstream");

    if (mmcf->saved_route_index == NGX_ERROR
        || mmcf->saved_upstream_index == NGX_ERROR)
    {
        return NGX_ERROR;
    }
    mmcf->jwt_sub_index = ngx_http_encore_metrics_variable(cf,
                                                           "encore_jwt_sub");
    mmcf->jwt_error_index = ngx_http_encore_metrics_variable(cf,
                                                         "encore_jwt_error");
    mmcf->jwt_cache_index = ngx_http_encore_metrics_variable(cf,
                                                         "encore_jwt_cache");

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_encore_metrics_log_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PREACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_encore_metrics_save_handler;

    return NGX_OK;
}


static char *
ngx_http_encore_metrics_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_encore_metrics_main_conf_t *mmcf = conf;

    u_char                          *p;
    ssize_t                          size;
    ngx_str_t                       *value, name, s;
    ngx_int_t                        max;
    ngx_http_encore_metrics_zone_t  *zone;

    if (mmcf->shm_zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    p = (u_char *) ngx_strchr(value[1].data, ':');

    if (p == NULL || p == value[1].data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    name.data = value[1].data;
    name.len = p - value[1].data;

    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);

    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small", &value[1]);
        return NGX_CONF_ERROR;
    }

    max = 0;

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "max_series=", 11) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        max = ngx_atoi(value[2].data + 11, value[2].len - 11);

        if (max == NGX_ERROR || encore_metrics_size((uint32_t) max) == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid max_series \"%V\", it must be "
                               "between %d and %d", &value[2],
                               ENCORE_METRICS_NFAMILIES + 1, 1 << 24);
            return NGX_CONF_ERROR;
        }
    }

    zone = ngx_pcalloc(cf->pool, sizeof(ngx_http_encore_metrics_zone_t));
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    zone->max_series = max;

    mmcf->shm_zone = ngx_shared_memory_add(cf, &name, size,
                                           &ngx_http_encore_metrics_module);
    if (mmcf->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (mmcf->shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    mmcf->shm_zone->init = ngx_http_encore_metrics_init_zone;
    mmcf->shm_zone->data = zone;

    return NGX_CONF_OK;
}


static char *
ngx_http_encore_metrics_expose(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_encore_metrics_main_conf_t *mmcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_encore_metrics_expose_handler;

    mmcf->expose = 1;

    return NGX_CONF_OK;
}
