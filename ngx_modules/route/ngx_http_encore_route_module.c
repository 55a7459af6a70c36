
/*
 * Copyright (C) Encore
 *
 * The route table: METHOD + path template -> route name, upstream, auth
 * policy and optionally a named location.  Matching runs in the rewrite
 * phase of locations with "encore_route on", so 404 and 405 (with Allow)
 * precede the access phase's 401/403; the policy is checked in the
 * precontent phase against the jwt module's variables, then the body: the
 * size the named location the route went to allows (nginx checks it only
 * in locations found by URI), and no Content-Encoding.  Forwarding is
 * stock proxy_pass: a route's location (one per upstream,
 * encore_route_location) names its upstream literally, so nginx resolves
 * it at load, not per request.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "encore_route.h"


#define NGX_HTTP_ENCORE_ROUTE_PUBLIC     0
#define NGX_HTTP_ENCORE_ROUTE_USER       1
#define NGX_HTTP_ENCORE_ROUTE_MODERATOR  2
#define NGX_HTTP_ENCORE_ROUTE_ADMIN      3


typedef struct {
    ngx_str_t                   method;
    ngx_str_t                   path;
    ngx_str_t                   name;
    ngx_str_t                   upstream;
    ngx_str_t                   location;
    ngx_uint_t                  policy;
    ngx_http_core_loc_conf_t   *target;     /* NULL: served where matched */
    u_char                     *file;
    ngx_uint_t                  line;
} ngx_http_encore_route_t;


typedef struct {
    ngx_int_t                   route_index;
    ngx_int_t                   upstream_index;
    ngx_int_t                   user_index;
    ngx_int_t                   sub_index;
    ngx_int_t                   role_index;
} ngx_http_encore_route_main_conf_t;


/* encore_route_location upstream @name */
typedef struct {
    ngx_str_t                   upstream;
    ngx_str_t                   location;
    u_char                     *file;
    ngx_uint_t                  line;
} ngx_http_encore_route_upstream_location_t;


typedef struct {
    encore_route_table_t       *table;
    ngx_array_t                *routes;     /* ngx_http_encore_route_t * */
    ngx_str_t                   location;
    ngx_array_t                *upstream_locations;
} ngx_http_encore_route_srv_conf_t;


typedef struct {
    ngx_flag_t                  enable;
    ngx_uint_t                  target;     /* a route's named location */
} ngx_http_encore_route_loc_conf_t;


typedef struct {
    ngx_http_encore_route_t    *route;
    const char *const          *names;
    ngx_uint_t                  nparams;
    ngx_str_t                   params[ENCORE_ROUTE_MAX_PARAMS];
    ngx_uint_t                  checked;    /* unsigned  checked:1; */
} ngx_http_encore_route_ctx_t;


static ngx_int_t ngx_http_encore_route_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_encore_route_match(ngx_http_request_t *r,
    ngx_http_encore_route_srv_conf_t *rscf, encore_route_match_t *m);
static ngx_int_t ngx_http_encore_route_set(ngx_http_request_t *r,
    encore_route_match_t *m);
static ngx_int_t ngx_http_encore_route_enter(ngx_http_request_t *r,
    ngx_http_core_loc_conf_t *clcf);
static ngx_int_t ngx_http_encore_route_allow(ngx_http_request_t *r,
    encore_route_match_t *m);
static ngx_int_t ngx_http_encore_route_policy_handler(ngx_http_request_t *r);
static ngx_uint_t ngx_http_encore_route_encoded(ngx_http_request_t *r);
static ngx_uint_t ngx_http_encore_route_rank(ngx_http_variable_value_t *v);

static ngx_int_t ngx_http_encore_route_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_encore_route_param_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_encore_route_allow_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

static ngx_int_t ngx_http_encore_route_add_variables(ngx_conf_t *cf);
static void *ngx_http_encore_route_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_encore_route_create_srv_conf(ngx_conf_t *cf);
static char *ngx_http_encore_route_merge_srv_conf(ngx_conf_t *cf,
    void *parent, void *child);
static void *ngx_http_encore_route_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_encore_route_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static ngx_int_t ngx_http_encore_route_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_encore_route_resolve(ngx_conf_t *cf,
    ngx_http_core_srv_conf_t *cscf);
static ngx_http_core_loc_conf_t *ngx_http_encore_route_named(
    ngx_http_core_srv_conf_t *cscf, ngx_str_t *name);
static ngx_uint_t ngx_http_encore_route_has_upstream(
    ngx_http_upstream_main_conf_t *umcf, ngx_str_t *name);
static ngx_int_t ngx_http_encore_route_check_proxy(ngx_conf_t *cf,
    ngx_http_encore_route_t *route, ngx_http_core_loc_conf_t *clcf);
static void ngx_http_encore_route_cleanup_table(void *data);

static char *ngx_http_encore_routes_block(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_encore_routes_line(ngx_conf_t *cf, ngx_command_t *dummy,
    void *conf);
static char *ngx_http_encore_route_location(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


static ngx_command_t  ngx_http_encore_route_commands[] = {

    { ngx_string("encore_routes"),
      NGX_HTTP_SRV_CONF|NGX_CONF_BLOCK|NGX_CONF_NOARGS,
      ngx_http_encore_routes_block,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("encore_route_location"),
      NGX_HTTP_SRV_CONF|NGX_CONF_TAKE12,
      ngx_http_encore_route_location,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("encore_route"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_encore_route_loc_conf_t, enable),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_encore_route_module_ctx = {
    ngx_http_encore_route_add_variables,   /* preconfiguration */
    ngx_http_encore_route_init,            /* postconfiguration */

    ngx_http_encore_route_create_main_conf, /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_http_encore_route_create_srv_conf, /* create server configuration */
    ngx_http_encore_route_merge_srv_conf,  /* merge server configuration */

    ngx_http_encore_route_create_loc_conf, /* create location configuration */
    ngx_http_encore_route_merge_loc_conf   /* merge location configuration */
};


ngx_module_t  ngx_http_encore_route_module = {
    NGX_MODULE_V1,
    &ngx_http_encore_route_module_ctx,     /* module context */
    ngx_http_encore_route_commands,        /* module directives */
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


static ngx_str_t  ngx_http_encore_route_var_route =
    ngx_string("encore_route");
static ngx_str_t  ngx_http_encore_route_var_upstream =
    ngx_string("encore_upstream");
static ngx_str_t  ngx_http_encore_route_var_param =
    ngx_string("encore_param_");
static ngx_str_t  ngx_http_encore_route_var_user =
    ngx_string("encore_route_user");
static ngx_str_t  ngx_http_encore_route_var_allow =
    ngx_string("encore_route_allow");
static ngx_str_t  ngx_http_encore_route_var_sub =
    ngx_string("encore_jwt_sub");
static ngx_str_t  ngx_http_encore_route_var_role =
    ngx_string("encore_jwt_role");


/* RFC 6750 3.1, by policy */
static ngx_str_t  ngx_http_encore_route_scope[] = {
    ngx_null_string,
    ngx_null_string,
    ngx_string("Bearer error=\"insufficient_scope\", "
               "error_description=\"the route needs the role moderator\""),
    ngx_string("Bearer error=\"insufficient_scope\", "
               "error_description=\"the route needs the role admin\"")
};


static ngx_str_t  ngx_http_encore_route_policies[] = {
    ngx_string("public"),
    ngx_string("user"),
    ngx_string("moderator"),
    ngx_string("admin"),
    ngx_null_string
};


static ngx_int_t
ngx_http_encore_route_handler(ngx_http_request_t *r)
{
    ngx_int_t                           rc;
    encore_route_match_t                m;
    ngx_http_core_loc_conf_t           *clcf;
    ngx_http_encore_route_t            *route;
    ngx_http_encore_route_srv_conf_t   *rscf;
    ngx_http_encore_route_loc_conf_t   *rlcf;

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_encore_route_module);

    if (!rlcf->enable && !rlcf->target) {
        return NGX_DECLINED;
    }

    if (ngx_http_get_module_ctx(r, ngx_http_encore_route_module) != NULL) {
        return NGX_DECLINED;
    }

    rscf = ngx_http_get_module_srv_conf(r, ngx_http_encore_route_module);

    if (rscf->table == NULL) {
        return rlcf->enable ? NGX_HTTP_NOT_FOUND : NGX_DECLINED;
    }

    rc = ngx_http_encore_route_match(r, rscf, &m);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!rlcf->enable) {

        /*
         * a route's named location entered by an internal redirect (an
         * error_page or try_files naming it), which cleared the module
         * contexts: the match is made again for the policy check.  With
         * no route for the request there is no policy to check, while
         * $encore_upstream may still hold an earlier match's upstream:
         * refused, not forwarded
         */

        if (rc != ENCORE_ROUTE_FOUND) {
            clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "route: \"%V\" entered with no route for \"%V\"",
                          &clcf->name, &r->uri);

            return NGX_HTTP_NOT_FOUND;
        }

        return ngx_http_encore_route_set(r, &m);
    }

    switch (rc) {

    case ENCORE_ROUTE_FOUND:
        break;

    case ENCORE_ROUTE_NOT_ALLOWED:
        if (ngx_http_encore_route_allow(r, &m) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (r->method == NGX_HTTP_OPTIONS) {
            if (ngx_http_discard_request_body(r) != NGX_OK) {
                r->keepalive = 0;
            }

            return NGX_HTTP_NO_CONTENT;
        }

        return NGX_HTTP_NOT_ALLOWED;

    case ENCORE_ROUTE_BAD_PATH:
        return NGX_HTTP_BAD_REQUEST;

    default: /* ENCORE_ROUTE_NOT_FOUND */
        return NGX_HTTP_NOT_FOUND;
    }

    if (ngx_http_encore_route_set(r, &m) != NGX_DECLINED) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    route = m.data;
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (route->target == NULL || route->target == clcf) {
        return NGX_DECLINED;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "route: \"%V\" continues in \"%V\"",
                   &route->name, &route->target->name);

    return ngx_http_encore_route_enter(r, route->target);
}


/*
 * The route's named location, entered as ngx_http_named_location() enters
 * one but within the running phase engine: no redirect (no second run of
 * the phases from the start, no extra finalization) and the module
 * contexts are kept rather than cleared, this match among them, so that
 * the named location need not match again.  The other contexts are those
 * of the phases before (post-read, server rewrite), kept as for any
 * location found by URI: the access and later handlers of the named
 * location (jwt, limit_req, metrics) have not run yet.  As after the
 * redirect, the request is internal (proxy_pass escapes the URI it
 * forwards, the jwt module strips identity headers again in a location
 * without jwt) and the location rewrite phase starts again, in the named
 * location; a rewrite there may leave it as from any location.
 */
static ngx_int_t
ngx_http_encore_route_enter(ngx_http_request_t *r,
    ngx_http_core_loc_conf_t *clcf)
{
    ngx_http_core_main_conf_t  *cmcf;

    r->internal = 1;
    r->content_handler = NULL;
    r->uri_changed = 0;
    r->loc_conf = clcf->loc_conf;

    ngx_http_update_location_config(r);

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_core_module);

    /* the rewrite phase checker's r->phase_handler++ makes it the first */
    r->phase_handler = cmcf->phase_engine.location_rewrite_index - 1;

    return NGX_DECLINED;
}


/*
 * The raw path keeps %2F inside its segment; it is used when the request
 * line has a percent-encoded byte and its segments are canonical.  Any
 * other path is matched as nginx normalised it, and so is one with a "#":
 * nginx ends the path there (what follows is a fragment, which a client
 * should not send), while the raw path would carry it into a segment.
 */
static ngx_int_t
ngx_http_encore_route_match(ngx_http_request_t *r,
    ngx_http_encore_route_srv_conf_t *rscf, encore_route_match_t *m)
{
    int        rc;
    char      *scratch;
    u_char    *end;
    unsigned   method;
    ngx_str_t  raw;

    switch (r->method) {
    case NGX_HTTP_GET:
        method = ENCORE_ROUTE_GET;
        break;
    case NGX_HTTP_HEAD:
        method = ENCORE_ROUTE_HEAD;
        break;
    case NGX_HTTP_POST:
        method = ENCORE_ROUTE_POST;
        break;
    case NGX_HTTP_PUT:
        method = ENCORE_ROUTE_PUT;
        break;
    case NGX_HTTP_PATCH:
        method = ENCORE_ROUTE_PATCH;
        break;
    case NGX_HTTP_DELETE:
        method = ENCORE_ROUTE_DELETE;
        break;
    case NGX_HTTP_OPTIONS:
        method = ENCORE_ROUTE_OPTIONS;
        break;
    default:
        method = 0;
    }

    if (r->quoted_uri && r->valid_unparsed_uri && r->uri_start
        && r->uri_start[0] == '/')
    {
        raw.data = r->uri_start;
        end = r->args_start ? r->args_start - 1 : r->uri_end;
        raw.len = end - raw.data;

        if (ngx_strlchr(raw.data, end, '#') == NULL) {

            scratch = ngx_pnalloc(r->pool, raw.len);
            if (scratch == NULL) {
                return NGX_ERROR;
            }

            rc = encore_route_match(rscf->table, method, (char *) raw.data,
                                    raw.len, 1, scratch, m);

            if (rc != ENCORE_ROUTE_NOT_CANONICAL) {
                return rc;
            }
        }
    }

    rc = encore_route_match(rscf->table, method, (char *) r->uri.data,
                            r->uri.len, 0, NULL, m);

    if (rc == ENCORE_ROUTE_FOUND && (r->complex_uri || r->quoted_uri)) {

        /*
         * the route was found on the normalised URI (dot segments, double
         * slashes or escapes resolved): forward that URI, not the raw one,
         * so that the worker sees the path the edge matched and checked;
         * nginx's proxy escapes r->uri when the unparsed URI is not valid,
         * as after a rewrite
         */

        r->valid_unparsed_uri = 0;
    }

    return rc;
}


/*
 * The context for the policy check and $encore_param_*; $encore_route and
 * $encore_upstream go into the request's variables, which outlive internal
 * redirects (error pages), so the access log and metrics keep the route.
 */
static ngx_int_t
ngx_http_encore_route_set(ngx_http_request_t *r, encore_route_match_t *m)
{
    ngx_uint_t                          i;
    ngx_http_encore_route_t            *route;
    ngx_http_variable_value_t          *vv;
    ngx_http_encore_route_ctx_t        *ctx;
    ngx_http_encore_route_main_conf_t  *rmcf;

    route = m->data;

    /* every field is set below; params only up to nparams are read */

    ctx = ngx_palloc(r->pool, sizeof(ngx_http_encore_route_ctx_t));
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ctx->route = route;
    ctx->names = m->names;
    ctx->nparams = m->nparams;

    for (i = 0; i < m->nparams; i++) {
        ctx->params[i].data = (u_char *) m->values[i];
        ctx->params[i].len = m->value_lens[i];
    }

    ctx->checked = 0;

    ngx_http_set_ctx(r, ctx, ngx_http_encore_route_module);

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_encore_route_module);

    vv = &r->variables[rmcf->route_index];
    vv->data = route->name.data;
    vv->len = route->name.len;
    vv->valid = 1;
    vv->no_cacheable = 0;
    vv->not_found = 0;
    vv->escape = 0;

    vv = &r->variables[rmcf->upstream_index];
    vv->data = route->upstream.data;
    vv->len = route->upstream.len;
    vv->valid = 1;
    vv->no_cacheable = 0;
    vv->not_found = 0;
    vv->escape = 0;

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_encore_route_allow(ngx_http_request_t *r, encore_route_match_t *m)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Allow");
    h->value.data = (u_char *) m->allow;
    h->value.len = m->allow_len;

    return NGX_OK;
}


static ngx_int_t
ngx_http_encore_route_policy_handler(ngx_http_request_t *r)
{
    ngx_table_elt_t                    *h;
    ngx_http_variable_value_t          *sub, *role, *vv;
    ngx_http_core_loc_conf_t           *clcf;
    ngx_http_encore_route_t            *route;
    ngx_http_encore_route_ctx_t        *ctx;
    ngx_http_encore_route_main_conf_t  *rmcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_encore_route_module);

    if (ctx == NULL || ctx->checked) {
        return NGX_DECLINED;
    }

    ctx->checked = 1;
    route = ctx->route;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_encore_route_module);

    sub = ngx_http_get_indexed_variable(r, rmcf->sub_index);
    if (sub == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!sub->not_found && sub->len) {

        /* kept like $encore_route: the log outlives the jwt module's ctx */

        vv = &r->variables[rmcf->user_index];
        vv->data = sub->data;
        vv->len = sub->len;
        vv->valid = 1;
        vv->no_cacheable = 0;
        vv->not_found = 0;
        vv->escape = 0;
    }

    if (route->policy != NGX_HTTP_ENCORE_ROUTE_PUBLIC) {

        if (sub->not_found || sub->len == 0) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "route: \"%V\" needs an identity", &route->name);

            h = ngx_list_push(&r->headers_out.headers);
            if (h == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            /* RFC 6750 3.1: no error code when no credentials were sent */
            h->hash = 1;
            ngx_str_set(&h->key, "WWW-Authenticate");
            ngx_str_set(&h->value, "Bearer");
            r->headers_out.www_authenticate = h;

            return NGX_HTTP_UNAUTHORIZED;
        }

        if (route->policy > NGX_HTTP_ENCORE_ROUTE_USER) {
            role = ngx_http_get_indexed_variable(r, rmcf->role_index);
            if (role == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            if (ngx_http_encore_route_rank(role) < route->policy) {
                ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                              "route: \"%V\" needs the role \"%V\"",
                              &route->name,
                              &ngx_http_encore_route_policies[route->policy]);

                h = ngx_list_push(&r->headers_out.headers);
                if (h == NULL) {
                    return NGX_HTTP_INTERNAL_SERVER_ERROR;
                }

                h->hash = 1;
                ngx_str_set(&h->key, "WWW-Authenticate");
                h->value = ngx_http_encore_route_scope[route->policy];
                r->headers_out.www_authenticate = h;

                return NGX_HTTP_FORBIDDEN;
            }
        }
    }

    /* nginx compares Content-Length only in locations found by URI */

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (clcf->named
        && clcf->client_max_body_size
        && r->headers_in.content_length_n > clcf->client_max_body_size)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "client intended to send too large body: %O bytes",
                      r->headers_in.content_length_n);

        r->expect_tested = 1;
        (void) ngx_http_discard_request_body(r);

        return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
    }

    if (ngx_http_encore_route_encoded(r)) {
        r->expect_tested = 1;
        (void) ngx_http_discard_request_body(r);

        return NGX_HTTP_UNSUPPORTED_MEDIA_TYPE;
    }

    return NGX_DECLINED;
}


/*
 * A body with a Content-Encoding other than identity: no worker decodes
 * one, and a gzip body must not be read as the JSON it is not (a worker
 * ignoring the header parsed it as plain JSON).  A request without a body
 * may carry the header: there is nothing to decode.
 */
static ngx_uint_t
ngx_http_encore_route_encoded(ngx_http_request_t *r)
{
    u_char           *p, *last;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    if (r->headers_in.content_length_n <= 0 && !r->headers_in.chunked) {
        return 0;
    }

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len != sizeof("Content-Encoding") - 1
            || ngx_strncasecmp(h[i].key.data, (u_char *) "Content-Encoding",
                               sizeof("Content-Encoding") - 1)
               != 0)
        {
            continue;
        }

        p = h[i].value.data;
        last = p + h[i].value.len;

        while (p < last && (*p == ' ' || *p == '\t')) {
            p++;
        }

        while (last > p && (last[-1] == ' ' || last[-1] == '\t')) {
            last--;
        }

        if (p == last) {
            continue;
        }

        if (last - p != sizeof("identity") - 1
            || ngx_strncasecmp(p, (u_char *) "identity",
                               sizeof("identity") - 1)
               != 0)
        {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "route: a request body with Content-Encoding "
                          "\"%V\" is refused", &h[i].value);
            return 1;
        }
    }

    return 0;
}


static ngx_uint_t
ngx_http_encore_route_rank(ngx_http_variable_value_t *v)
{
    ngx_uint_t  i;

    if (v->not_found) {
        return NGX_HTTP_ENCORE_ROUTE_PUBLIC;
    }

    for (i = NGX_HTTP_ENCORE_ROUTE_USER;
         ngx_http_encore_route_policies[i].len;
         i++)
    {
        if (v->len == ngx_http_encore_route_policies[i].len
            && ngx_strncmp(v->data, ngx_http_encore_route_policies[i].data,
                           v->len)
               == 0)
        {
            return i;
        }
    }

    /* an identity with a role we do not know is a plain user */
    return NGX_HTTP_ENCORE_ROUTE_USER;
}


/* only reached before a route matched: the match sets the value itself */
static ngx_int_t
ngx_http_encore_route_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    v->not_found = 1;

    return NGX_OK;
}


static ngx_int_t
ngx_http_encore_route_param_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t *var = (ngx_str_t *) data;

    u_char                       *name;
    size_t                        len;
    ngx_uint_t                    i, k;
    ngx_http_encore_route_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_encore_route_module);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    name = var->data + ngx_http_encore_route_var_param.len;
    len = var->len - ngx_http_encore_route_var_param.len;

    for (i = 0; i < ctx->nparams; i++) {
        if (ngx_strlen(ctx->names[i]) == len
            && ngx_strncmp(ctx->names[i], name, len) == 0)
        {
            /*
             * a value that decoded to CR, LF or another control is no
             * value: an operator's proxy_set_header or add_header with it
             * must not split a header
             */
            for (k = 0; k < ctx->params[i].len; k++) {
                if (ctx->params[i].data[k] < 0x20
                    || ctx->params[i].data[k] == 0x7f)
                {
                    v->not_found = 1;
                    return NGX_OK;
                }
            }

            v->data = ctx->params[i].data;
            v->len = ctx->params[i].len;
            v->valid = 1;
            v->no_cacheable = 0;
            v->not_found = 0;

            return NGX_OK;
        }
    }

    v->not_found = 1;

    return NGX_OK;
}


/*
 * The Allow value the table has for the path the client asked for
 * ($request_uri, which internal redirects keep), in whatever location the
 * request is now: an error page for a 405 that nginx answered itself
 * (TRACE, before any location) sends it.  Not found when the table does
 * not know the path or the raw path is not canonical.
 */
static ngx_int_t
ngx_http_encore_route_allow_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    int                                rc;
    char                              *scratch;
    u_char                            *end;
    encore_route_match_t               m;
    ngx_http_encore_route_srv_conf_t  *rscf;

    v->not_found = 1;

    rscf = ngx_http_get_module_srv_conf(r, ngx_http_encore_route_module);

    if (rscf->table == NULL
        || r->unparsed_uri.len == 0
        || r->unparsed_uri.data[0] != '/')
    {
        return NGX_OK;
    }

    /* the path ends at "?" or, as nginx parses it, at "#" */

    for (end = r->unparsed_uri.data;
         end < r->unparsed_uri.data + r->unparsed_uri.len;
         end++)
    {
        if (*end == '?' || *end == '#') {
            break;
        }
    }

    scratch = ngx_pnalloc(r->pool, end - r->unparsed_uri.data);
    if (scratch == NULL) {
        return NGX_ERROR;
    }

    /* no method is one of the route's: a known path is NOT_ALLOWED */

    rc = encore_route_match(rscf->table, 0, (char *) r->unparsed_uri.data,
                            end - r->unparsed_uri.data, 1, scratch, &m);

    if (rc == ENCORE_ROUTE_NOT_ALLOWED) {
        v->data = (u_char *) m.allow;
        v->len = m.allow_len;
        v->valid = 1;
        v->no_cacheable = 0;
        v->not_found = 0;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_encore_route_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var;

    var = ngx_http_add_variable(cf, &ngx_http_encore_route_var_route, 0);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_encore_route_variable;

    var = ngx_http_add_variable(cf, &ngx_http_encore_route_var_upstream, 0);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_encore_route_variable;

    var = ngx_http_add_variable(cf, &ngx_http_encore_route_var_user, 0);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_encore_route_variable;

    var = ngx_http_add_variable(cf, &ngx_http_encore_route_var_param,
                                NGX_HTTP_VAR_PREFIX);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_encore_route_param_variable;

    var = ngx_http_add_variable(cf, &ngx_http_encore_route_var_allow, 0);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_encore_route_allow_variable;

    return NGX_OK;
}


static void *
ngx_http_encore_route_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_encore_route_main_conf_t  *rmcf;

    rmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_encore_route_main_conf_t));
    if (rmcf == NULL) {
        return NULL;
    }

    rmcf->route_index = NGX_CONF_UNSET;
    rmcf->upstream_index = NGX_CONF_UNSET;
    rmcf->user_index = NGX_CONF_UNSET;
    rmcf->sub_index = NGX_CONF_UNSET;
    rmcf->role_index = NGX_CONF_UNSET;

    return rmcf;
}


static void *
ngx_http_encore_route_create_srv_conf(ngx_conf_t *cf)
{
    ngx_http_encore_route_srv_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_encore_route_srv_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->table = NULL;
     *     conf->routes = NULL;
     *     conf->location = { 0, NULL };
     *     conf->upstream_locations = NULL;
     */

    return conf;
}


static char *
ngx_http_encore_route_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_encore_route_srv_conf_t *prev = parent;
    ngx_http_encore_route_srv_conf_t *conf = child;

    ngx_conf_merge_str_value(conf->location, prev->location, "");

    return NGX_CONF_OK;
}


static void *
ngx_http_encore_route_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_encore_route_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_encore_route_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->target = 0;
     */

    conf->enable = NGX_CONF_UNSET;

    return conf;
}


static char *
ngx_http_encore_route_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_encore_route_loc_conf_t *prev = parent;
    ngx_http_encore_route_loc_conf_t *conf = child;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_encore_route_init(ngx_conf_t *cf)
{
    ngx_uint_t                          s;
    ngx_http_handler_pt                *h;
    ngx_http_core_srv_conf_t          **cscfp;
    ngx_http_core_main_conf_t          *cmcf;
    ngx_http_encore_route_main_conf_t  *rmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    rmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_encore_route_module);

    rmcf->route_index = ngx_http_get_variable_index(cf,
                                          &ngx_http_encore_route_var_route);
    if (rmcf->route_index == NGX_ERROR) {
        return NGX_ERROR;
    }

    rmcf->upstream_index = ngx_http_get_variable_index(cf,
                                          &ngx_http_encore_route_var_upstream);
    if (rmcf->upstream_index == NGX_ERROR) {
        return NGX_ERROR;
    }

    rmcf->user_index = ngx_http_get_variable_index(cf,
                                          &ngx_http_encore_route_var_user);
    if (rmcf->user_index == NGX_ERROR) {
        return NGX_ERROR;
    }

    /* the jwt module's: modules exchange data through variables only */

    rmcf->sub_index = ngx_http_get_variable_index(cf,
                                          &ngx_http_encore_route_var_sub);
    if (rmcf->sub_index == NGX_ERROR) {
        return NGX_ERROR;
    }

    rmcf->role_index = ngx_http_get_variable_index(cf,
                                          &ngx_http_encore_route_var_role);
    if (rmcf->role_index == NGX_ERROR) {
        return NGX_ERROR;
    }

    cscfp = cmcf->servers.elts;

    for (s = 0; s < cmcf->servers.nelts; s++) {
        if (ngx_http_encore_route_resolve(cf, cscfp[s]) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_REWRITE_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_encore_route_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_encore_route_policy_handler;

    return NGX_OK;
}


/*
 * Named locations and upstreams exist once the http block is parsed: each
 * route's are looked up here, so that a typo fails the configuration.  A
 * route continues in its location=, else in the location
 * "encore_route_location" gives its upstream, else in the server's
 * default one.
 */
static ngx_int_t
ngx_http_encore_route_resolve(ngx_conf_t *cf, ngx_http_core_srv_conf_t *cscf)
{
    ngx_str_t                                  *name;
    ngx_uint_t                                  i, j, nul;
    ngx_http_core_loc_conf_t                   *clcf;
    ngx_http_encore_route_t                   **routes, *route;
    ngx_http_upstream_main_conf_t              *umcf;
    ngx_http_encore_route_srv_conf_t           *rscf;
    ngx_http_encore_route_loc_conf_t           *rlcf;
    ngx_http_encore_route_upstream_location_t  *ul;

    rscf = cscf->ctx->srv_conf[ngx_http_encore_route_module.ctx_index];

    umcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_upstream_module);

    ul = NULL;
    nul = 0;

    if (rscf->upstream_locations) {
        ul = rscf->upstream_locations->elts;
        nul = rscf->upstream_locations->nelts;
    }

    for (j = 0; j < nul; j++) {

        if (!ngx_http_encore_route_has_upstream(umcf, &ul[j].upstream)) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"encore_route_location\" names upstream \"%V\" "
                          "that no \"upstream\" block defines in %s:%ui",
                          &ul[j].upstream, ul[j].file, ul[j].line);
            return NGX_ERROR;
        }

        if (ngx_http_encore_route_named(cscf, &ul[j].location) == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"encore_route_location\" names location \"%V\" "
                          "that its server does not define in %s:%ui",
                          &ul[j].location, ul[j].file, ul[j].line);
            return NGX_ERROR;
        }
    }

    if (rscf->routes == NULL) {
        return NGX_OK;
    }

    routes = rscf->routes->elts;

    for (i = 0; i < rscf->routes->nelts; i++) {
        route = routes[i];

        if (!ngx_http_encore_route_has_upstream(umcf, &route->upstream)) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "route \"%V\" names upstream \"%V\" that no "
                          "\"upstream\" block defines in %s:%ui",
                          &route->name, &route->upstream,
                          route->file, route->line);
            return NGX_ERROR;
        }

        name = &route->location;

        for (j = 0; name->len == 0 && j < nul; j++) {
            if (ul[j].upstream.len == route->upstream.len
                && ngx_strncmp(ul[j].upstream.data, route->upstream.data,
                               route->upstream.len)
                   == 0)
            {
                name = &ul[j].location;
            }
        }

        if (name->len == 0) {
            name = &rscf->location;
        }

        if (name->len == 0) {
            continue;
        }

        clcf = ngx_http_encore_route_named(cscf, name);

        if (clcf == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "route \"%V\" names location \"%V\" that its "
                          "server does not define in %s:%ui",
                          &route->name, name, route->file, route->line);
            return NGX_ERROR;
        }

        if (ngx_http_encore_route_check_proxy(cf, route, clcf) != NGX_OK) {
            return NGX_ERROR;
        }

        route->target = clcf;

        rlcf = clcf->loc_conf[ngx_http_encore_route_module.ctx_index];
        rlcf->target = 1;
    }

    return NGX_OK;
}


static ngx_http_core_loc_conf_t *
ngx_http_encore_route_named(ngx_http_core_srv_conf_t *cscf, ngx_str_t *name)
{
    ngx_http_core_loc_conf_t  **clcfp;

    for (clcfp = cscf->named_locations; clcfp && *clcfp; clcfp++) {
        if ((*clcfp)->name.len == name->len
            && ngx_strncmp((*clcfp)->name.data, name->data, name->len) == 0)
        {
            return *clcfp;
        }
    }

    return NULL;
}


static ngx_uint_t
ngx_http_encore_route_has_upstream(ngx_http_upstream_main_conf_t *umcf,
    ngx_str_t *name)
{
    ngx_uint_t                      i;
    ngx_http_upstream_srv_conf_t  **uscfp;

    uscfp = umcf->upstreams.elts;

    for (i = 0; i < umcf->upstreams.nelts; i++) {
        if ((uscfp[i]->flags & NGX_HTTP_UPSTREAM_CREATE)
            && uscfp[i]->host.len == name->len
            && ngx_strncmp(uscfp[i]->host.data, name->data, name->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * A location whose proxy_pass names its upstream literally (no variables)
 * forwards there whatever $encore_upstream says, and the metrics and the
 * log label the request with $encore_upstream: the two must agree.  The
 * proxy module's configuration is private to it; like that of every
 * upstream module it starts with its ngx_http_upstream_conf_t, whose
 * "upstream" a literal proxy_pass sets (NULL with variables).
 */
static ngx_int_t
ngx_http_encore_route_check_proxy(ngx_conf_t *cf,
    ngx_http_encore_route_t *route, ngx_http_core_loc_conf_t *clcf)
{
    ngx_uint_t                      i;
    ngx_module_t                  **modules;
    ngx_http_upstream_conf_t       *ucf;
    ngx_http_upstream_srv_conf_t   *uscf;

    modules = cf->cycle->modules;

    for (i = 0; modules[i]; i++) {
        if (modules[i]->type == NGX_HTTP_MODULE
            && ngx_strcmp(modules[i]->name, "ngx_http_proxy_module") == 0)
        {
            break;
        }
    }

    if (modules[i] == NULL) {
        return NGX_OK;
    }

    ucf = clcf->loc_conf[modules[i]->ctx_index];
    uscf = ucf->upstream;

    if (uscf == NULL
        || (uscf->host.len == route->upstream.len
            && ngx_strncasecmp(uscf->host.data, route->upstream.data,
                               route->upstream.len)
               == 0))
    {
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                  "route \"%V\" names upstream \"%V\" but continues in "
                  "location \"%V\", whose proxy_pass goes to \"%V\" "
                  "in %s:%ui",
                  &route->name, &route->upstream, &clcf->name, &uscf->host,
                  route->file, route->line);

    return NGX_ERROR;
}


/*
 * encore_route_location @name;            where routes continue by default
 * encore_route_location upstream @name;   ... the routes of that upstream
 */
static char *
ngx_http_encore_route_location(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_encore_route_srv_conf_t *rscf = conf;

    ngx_str_t                                  *value, *location;
    ngx_uint_t                                  i;
    ngx_http_encore_route_upstream_location_t  *ul;

    value = cf->args->elts;
    location = &value[cf->args->nelts - 1];

    if (location->len < 2 || location->data[0] != '@') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"encore_route_location\" must name a named "
                           "location, not \"%V\"", location);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 2) {
        if (rscf->location.data) {
            return "is duplicate";
        }

        rscf->location = *location;
        return NGX_CONF_OK;
    }

    if (rscf->upstream_locations == NULL) {
        rscf->upstream_locations = ngx_array_create(cf->pool, 8,
                               sizeof(ngx_http_encore_route_upstream_location_t));
        if (rscf->upstream_locations == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    ul = rscf->upstream_locations->elts;

    for (i = 0; i < rscf->upstream_locations->nelts; i++) {
        if (ul[i].upstream.len == value[1].len
            && ngx_strncmp(ul[i].upstream.data, value[1].data, value[1].len)
               == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate \"encore_route_location\" for "
                               "upstream \"%V\", first declared in %s:%ui",
                               &value[1], ul[i].file, ul[i].line);
            return NGX_CONF_ERROR;
        }
    }

    ul = ngx_array_push(rscf->upstream_locations);
    if (ul == NULL) {
        return NGX_CONF_ERROR;
    }

    ul->upstream = value[1];
    ul->location = *location;
    ul->file = cf->conf_file->file.name.data;
    ul->line = cf->conf_file->line;

    return NGX_CONF_OK;
}


static void
ngx_http_encore_route_cleanup_table(void *data)
{
    encore_route_table_free(data);
}


static char *
ngx_http_encore_routes_block(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_encore_route_srv_conf_t *rscf = conf;

    char                *rv;
    ngx_conf_t           save;
    ngx_pool_cleanup_t  *cln;

    if (rscf->table != NULL) {
        return "is duplicate";
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    rscf->table = encore_route_table_create();
    if (rscf->table == NULL) {
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_encore_route_cleanup_table;
    cln->data = rscf->table;

    rscf->routes = ngx_array_create(cf->pool, 64,
                                    sizeof(ngx_http_encore_route_t *));
    if (rscf->routes == NULL) {
        return NGX_CONF_ERROR;
    }

    save = *cf;
    cf->handler = ngx_http_encore_routes_line;
    cf->handler_conf = conf;

    rv = ngx_conf_parse(cf, NULL);

    *cf = save;

    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (encore_route_compile(rscf->table) != ENCORE_ROUTE_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * One route: METHOD /path/{param} name upstream policy [location=@name]
 */
static char *
ngx_http_encore_routes_line(ngx_conf_t *cf, ngx_command_t *dummy, void *conf)
{
    ngx_http_encore_route_srv_conf_t *rscf = conf;

    int                        rc;
    void                      *other;
    unsigned                   method;
    ngx_str_t                 *value;
    ngx_uint_t                 i;
    const char                *err;
    ngx_http_encore_route_t   *route, *prev, **routes, **slot;

    value = cf->args->elts;

    if (cf->args->nelts != 5 && cf->args->nelts != 6) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid route \"%V\", use: method path name "
                           "upstream policy [location=@name]", &value[0]);
        return NGX_CONF_ERROR;
    }

    route = ngx_pcalloc(cf->pool, sizeof(ngx_http_encore_route_t));
    if (route == NULL) {
        return NGX_CONF_ERROR;
    }

    route->method = value[0];
    route->path = value[1];
    route->name = value[2];
    route->upstream = value[3];
    route->file = cf->conf_file->file.name.data;
    route->line = cf->conf_file->line;

    method = encore_route_method((char *) value[0].data, value[0].len);

    if (method == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid method \"%V\"", &value[0]);
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < route->name.len; i++) {
        if (!((route->name.data[i] >= 'a' && route->name.data[i] <= 'z')
              || (route->name.data[i] >= '0' && route->name.data[i] <= '9')
              || route->name.data[i] == '_'))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid route name \"%V\", use [a-z0-9_]",
                               &route->name);
            return NGX_CONF_ERROR;
        }
    }

    for (i = 0; ngx_http_encore_route_policies[i].len; i++) {
        if (value[4].len == ngx_http_encore_route_policies[i].len
            && ngx_strncmp(value[4].data,
                           ngx_http_encore_route_policies[i].data,
                           value[4].len)
               == 0)
        {
            break;
        }
    }

    if (ngx_http_encore_route_policies[i].len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid policy \"%V\", use public, user, "
                           "moderator or admin", &value[4]);
        return NGX_CONF_ERROR;
    }

    route->policy = i;

    if (cf->args->nelts == 6) {
        if (value[5].len < sizeof("location=@") - 1 + 1
            || ngx_strncmp(value[5].data, "location=@",
                           sizeof("location=@") - 1)
               != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\", "
                               "use location=@name", &value[5]);
            return NGX_CONF_ERROR;
        }

        route->location.data = value[5].data + sizeof("location=") - 1;
        route->location.len = value[5].len - (sizeof("location=") - 1);
    }

    /* names label metrics: one per route */

    routes = rscf->routes->elts;

    for (i = 0; i < rscf->routes->nelts; i++) {
        prev = routes[i];

        if (prev->name.len == route->name.len
            && ngx_strncmp(prev->name.data, route->name.data,
                           route->name.len)
               == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate route name \"%V\", first "
                               "declared in %s:%ui",
                               &route->name, prev->file, prev->line);
            return NGX_CONF_ERROR;
        }
    }

    rc = encore_route_add(rscf->table, method, (char *) value[1].data,
                          value[1].len, route, &other, &err);

    if (rc == ENCORE_ROUTE_ENOMEM) {
        return NGX_CONF_ERROR;
    }

    if (rc == ENCORE_ROUTE_EDUP || rc == ENCORE_ROUTE_ECONFLICT) {
        prev = other;

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "route \"%V\" (%V %V) conflicts with route "
                           "\"%V\" (%V %V) declared in %s:%ui: %s",
                           &route->name, &route->method, &route->path,
                           &prev->name, &prev->method, &prev->path,
                           prev->file, prev->line, err);
        return NGX_CONF_ERROR;
    }

    if (rc != ENCORE_ROUTE_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid route \"%V\" (%V %V): %s",
                           &route->name, &route->method, &route->path, err);
        return NGX_CONF_ERROR;
    }

    slot = ngx_array_push(rscf->routes);
    if (slot == NULL) {
        return NGX_CONF_ERROR;
    }

    *slot = route;

    return NGX_CONF_OK;
}
