
/*
 * Copyright (C) Encore
 *
 * JWT access control: verifies a compact JWS (Authorization: Bearer, a
 * cookie or a variable) against a JWKS loaded at configuration time,
 * checks its claims, exposes them as variables and forwards the identity
 * upstream as X-Encore-User-* headers, having first removed every
 * X-Encore-* header the client sent.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_encore_jwt.h"
#include "ngx_http_encore_problem.h"
#include "encore_jws.h"
#include "encore_claims.h"
#include "encore_flat.h"


#define NGX_HTTP_ENCORE_JWT_OFF       0
#define NGX_HTTP_ENCORE_JWT_REQUIRED  1
#define NGX_HTTP_ENCORE_JWT_OPTIONAL  2

#define NGX_HTTP_ENCORE_JWT_BEARER    0
#define NGX_HTTP_ENCORE_JWT_COOKIE    1
#define NGX_HTTP_ENCORE_JWT_VARIABLE  2

/* mixed into every cache key: entries of another layout never match */
#define NGX_HTTP_ENCORE_JWT_CACHE_VERSION  3


typedef struct {
    ngx_uint_t                  type;
    ngx_str_t                   cookie;
    ngx_http_complex_value_t   *value;
    /* browsers send it on their own (a cookie): unsafe methods need Origin */
    ngx_uint_t                  ambient;
} ngx_http_encore_jwt_source_t;


typedef struct {
    ngx_shm_zone_t             *cache_zone;
    EVP_MD                     *sha256;
    EVP_MD_CTX                 *md_ctx;     /* reused; workers are threadless */
    ngx_shm_zone_t             *revoke_zone;
    time_t                      revoke_ttl;
    ngx_msec_t                  revoke_stale;
} ngx_http_encore_jwt_main_conf_t;


typedef struct {
    ngx_uint_t                  mode;
    encore_jwks_t              *jwks;
    ngx_array_t                *sources;    /* ngx_http_encore_jwt_source_t */
    ngx_uint_t                  algorithms;
    time_t                      leeway;
    size_t                      max_size;
    ngx_str_t                   issuer;
    ngx_str_t                   audience;
    ngx_array_t                *reqs;       /* encore_claim_req_t */
    ngx_array_t                *roles;      /* char *, NUL-terminated */
    ngx_array_t                *origins;    /* ngx_str_t, lower case */
    ngx_flag_t                  cache;
    ngx_flag_t                  revocations; /* the agent's endpoint here */
    encore_claims_policy_t      policy;
} ngx_http_encore_jwt_loc_conf_t;


#define NGX_HTTP_ENCORE_JWT_CACHE_NONE  0
#define NGX_HTTP_ENCORE_JWT_CACHE_HIT   1
#define NGX_HTTP_ENCORE_JWT_CACHE_MISS  2
#define NGX_HTTP_ENCORE_JWT_CACHE_OFF   3


typedef struct {
    json_t                     *claims;     /* parsed, or NULL */
    encore_claims_facts_t      *facts;      /* a cache hit's, or NULL */
    ngx_str_t                   token;      /* verified: for lazy claims */
    const char                 *error;
    ngx_str_t                   detail;     /* when not error (revoked) */
    ngx_uint_t                  status;
    ngx_uint_t                  cache;      /* NGX_HTTP_ENCORE_JWT_CACHE_* */
    /* checked in the preaccess phase (ngx_http_encore_jwt_check): the
       verdict the access phase answers, and whether a cookie carried it */
    ngx_int_t                   verdict;
    ngx_uint_t                  cookie;
    unsigned                    checked:1;
} ngx_http_encore_jwt_ctx_t;


static ngx_int_t ngx_http_encore_jwt_strip_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_encore_jwt_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_encore_jwt_early_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_encore_jwt_check(ngx_http_request_t *r,
    ngx_http_encore_jwt_loc_conf_t *jlcf, ngx_http_encore_jwt_ctx_t *ctx);
static ngx_int_t ngx_http_encore_jwt_verify(ngx_http_request_t *r,
    ngx_http_encore_jwt_loc_conf_t *jlcf, ngx_http_encore_jwt_ctx_t *ctx,
    ngx_str_t *token);
static ngx_int_t ngx_http_encore_jwt_check_facts(ngx_http_request_t *r,
    ngx_http_encore_jwt_loc_conf_t *jlcf, ngx_http_encore_jwt_ctx_t *ctx,
    encore_claims_facts_t *facts, ngx_str_t *token);
static ngx_int_t ngx_http_encore_jwt_claims_status(int rc);
static ngx_int_t ngx_http_encore_jwt_revoked(ngx_http_request_t *r,
    ngx_http_encore_jwt_main_conf_t *jmcf, ngx_http_encore_jwt_ctx_t *ctx);
static ngx_int_t ngx_http_encore_jwt_revocations_handler(
    ngx_http_request_t *r);
static void ngx_http_encore_jwt_revocations_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_encore_jwt_zone_sent(ngx_http_request_t *r,
    ngx_http_encore_jwt_revoke_t *rz);
static ngx_int_t ngx_http_encore_jwt_loopback(ngx_connection_t *c);
static ngx_int_t ngx_http_encore_jwt_parse_claims(ngx_http_request_t *r,
    ngx_http_encore_jwt_ctx_t *ctx);
static ngx_int_t ngx_http_encore_jwt_json_claims(ngx_http_request_t *r,
    ngx_http_encore_jwt_ctx_t *ctx, const u_char *data, size_t len);
static ngx_int_t ngx_http_encore_jwt_token(ngx_http_request_t *r,
    ngx_http_encore_jwt_loc_conf_t *jlcf, ngx_str_t *token,
    ngx_uint_t *cookie);
static ngx_int_t ngx_http_encore_jwt_origin_ok(ngx_http_request_t *r,
    ngx_http_encore_jwt_loc_conf_t *jlcf);
static ngx_int_t ngx_http_encore_jwt_origin_is(ngx_str_t *origin,
    ngx_str_t *scheme, u_char *host, size_t host_len, ngx_str_t *port);
static ngx_int_t ngx_http_encore_jwt_strip(ngx_http_request_t *r);
static ngx_int_t ngx_http_encore_jwt_set_identity(ngx_http_request_t *r,
    ngx_http_encore_jwt_ctx_t *ctx);
static ngx_int_t ngx_http_encore_jwt_reject(ngx_http_request_t *r,
    ngx_http_encore_jwt_ctx_t *ctx, ngx_uint_t status);
static void ngx_http_encore_jwt_cleanup_claims(void *data);
static time_t ngx_http_encore_jwt_clock(void *data);

static ngx_int_t ngx_http_encore_jwt_claim_value(ngx_http_request_t *r,
    ngx_http_encore_jwt_ctx_t *ctx, const char *name, ngx_str_t *value);
static ngx_uint_t ngx_http_encore_jwt_has_ctl(ngx_str_t *value);
static ngx_int_t ngx_http_encore_jwt_claim_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_encore_jwt_prefix_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_encore_jwt_error_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_encore_jwt_cache_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_encore_jwt_origin_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

static ngx_int_t ngx_http_encore_jwt_add_variables(ngx_conf_t *cf);
static void *ngx_http_encore_jwt_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_encore_jwt_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_encore_jwt_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_encore_jwt_init(ngx_conf_t *cf);
static void ngx_http_encore_jwt_cleanup_jwks(void *data);
static void ngx_http_encore_jwt_cleanup_main(void *data);

static char *ngx_http_encore_jwt_key_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_encore_jwt_token_source(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_encore_jwt_algorithms(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_encore_jwt_require(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_encore_jwt_roles(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_encore_jwt_origins(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_encore_jwt_cache_zone(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_encore_jwt_revocation_zone(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_encore_jwt_revocations(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_encore_jwt_init_main_conf(ngx_conf_t *cf, void *conf);


static ngx_conf_enum_t  ngx_http_encore_jwt_modes[] = {
    { ngx_string("off"), NGX_HTTP_ENCORE_JWT_OFF },
    { ngx_string("required"), NGX_HTTP_ENCORE_JWT_REQUIRED },
    { ngx_string("optional"), NGX_HTTP_ENCORE_JWT_OPTIONAL },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_encore_jwt_commands[] = {

    { ngx_string("encore_jwt"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_encore_jwt_loc_conf_t, mode),
      &ngx_http_encore_jwt_modes },

    { ngx_string("encore_jwt_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_encore_jwt_key_file,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("encore_jwt_token"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_encore_jwt_token_source,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("encore_jwt_algorithms"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_encore_jwt_algorithms,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("encore_jwt_leeway"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_encore_jwt_loc_conf_t, leeway),
      NULL },

    { ngx_string("encore_jwt_max_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_encore_jwt_loc_conf_t, max_size),
      NULL },

    { ngx_string("encore_jwt_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_encore_jwt_loc_conf_t, issuer),
      NULL },

    { ngx_string("encore_jwt_audience"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_encore_jwt_loc_conf_t, audience),
      NULL },

    { ngx_string("encore_jwt_require"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_encore_jwt_require,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("encore_jwt_roles"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_encore_jwt_roles,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("encore_jwt_origins"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_encore_jwt_origins,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("encore_jwt_cache"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_encore_jwt_loc_conf_t, cache),
      NULL },

    { ngx_string("encore_jwt_cache_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_encore_jwt_cache_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("encore_jwt_revocation_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_encore_jwt_revocation_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("encore_jwt_revocation_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_encore_jwt_main_conf_t, revoke_ttl),
      NULL },

    { ngx_string("encore_jwt_revocation_stale"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_encore_jwt_main_conf_t, revoke_stale),
      NULL },

    { ngx_string("encore_jwt_revocations"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_encore_jwt_revocations,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_encore_jwt_module_ctx = {
    ngx_http_encore_jwt_add_variables,     /* preconfiguration */
    ngx_http_encore_jwt_init,              /* postconfiguration */

    ngx_http_encore_jwt_create_main_conf,  /* create main configuration */
    ngx_http_encore_jwt_init_main_conf,    /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_encore_jwt_create_loc_conf,   /* create location configuration */
    ngx_http_encore_jwt_merge_loc_conf     /* merge location configuration */
};


ngx_module_t  ngx_http_encore_jwt_module = {
    NGX_MODULE_V1,
    &ngx_http_encore_jwt_module_ctx,       /* module context */
    ngx_http_encore_jwt_commands,          /* module directives */
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


static ngx_http_variable_t  ngx_http_encore_jwt_vars[] = {

    { ngx_string("encore_jwt_sub"), NULL,
      ngx_http_encore_jwt_claim_variable, (uintptr_t) "sub",
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("encore_jwt_role"), NULL,
      ngx_http_encore_jwt_claim_variable, (uintptr_t) "role",
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("encore_jwt_name"), NULL,
      ngx_http_encore_jwt_claim_variable, (uintptr_t) "name",
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("encore_jwt_error"), NULL,
      ngx_http_encore_jwt_error_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("encore_jwt_cache"), NULL,
      ngx_http_encore_jwt_cache_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("encore_jwt_origin_allowed"), NULL,
      ngx_http_encore_jwt_origin_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("encore_jwt_claim_"), NULL,
      ngx_http_encore_jwt_prefix_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE|NGX_HTTP_VAR_PREFIX, 0 },

      ngx_http_null_variable
};


static ngx_str_t  ngx_http_encore_jwt_header_prefix =
    ngx_string("x-encore-");

static ngx_str_t  ngx_http_encore_jwt_default_cookie =
    ngx_string("encore_access");


static ngx_int_t
ngx_http_encore_jwt_strip_handler(ngx_http_request_t *r)
{
    if (ngx_http_encore_jwt_strip(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_encore_jwt_handler(ngx_http_request_t *r)
{
    ngx_int_t                         rc;
    ngx_uint_t                        cookie;
    ngx_http_encore_jwt_ctx_t        *ctx;
    ngx_http_encore_jwt_loc_conf_t   *jlcf;

    jlcf = ngx_http_get_module_loc_conf(r, ngx_http_encore_jwt_module);

    /*
     * an internal redirect clears the ctx and comes back here: identity
     * headers a previous location set are dropped, before they are set
     * again, and also when the new location has no jwt at all (error_page,
     * try_files or X-Accel-Redirect into "encore_jwt off")
     */

    if (jlcf->mode == NGX_HTTP_ENCORE_JWT_OFF) {
        if (r->internal && ngx_http_encore_jwt_strip(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return NGX_DECLINED;
    }

    if (ngx_http_encore_jwt_strip(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the preaccess phase has checked the token already (it did unless
       this is a subrequest, or the location changed since) */
    ctx = ngx_http_get_module_ctx(r, ngx_http_encore_jwt_module);

    if (ctx == NULL || !ctx->checked) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_encore_jwt_ctx_t));
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_http_set_ctx(r, ctx, ngx_http_encore_jwt_module);

        rc = ngx_http_encore_jwt_check(r, jlcf, ctx);

    } else {
        rc = ctx->verdict;
        ctx->status = 0;
    }

    cookie = ctx->cookie;

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        if (jlcf->mode == NGX_HTTP_ENCORE_JWT_OPTIONAL) {
            return NGX_DECLINED;
        }

        ctx->error = "token missing";
        return ngx_http_encore_jwt_reject(r, ctx, NGX_HTTP_UNAUTHORIZED);
    }

    if (rc != NGX_OK) {
        if (ctx->error != NULL) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "jwt: rejected: %s", ctx->error);
        } else {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "jwt: rejected: %V", &ctx->detail);
        }

        return ngx_http_encore_jwt_reject(r, ctx, rc);
    }

    /* a cookie rides along with cross-site requests: demand our Origin */
    if (cookie
        && !(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_OPTIONS))
        && ngx_http_encore_jwt_origin_ok(r, jlcf) != NGX_OK)
    {
        ctx->error = "cookie authentication needs a same-origin Origin";

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "jwt: rejected: %s", ctx->error);

        return ngx_http_encore_jwt_reject(r, ctx, NGX_HTTP_FORBIDDEN);
    }

    rc = ngx_http_encore_jwt_set_identity(r, ctx);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        return ngx_http_encore_jwt_reject(r, ctx, rc);
    }

    return NGX_OK;
}


/*
 * The token's verdict, without answering: NGX_OK (verified, not revoked),
 * NGX_DECLINED (no token), NGX_ERROR, or the HTTP status to refuse with
 * (ctx->error, or ctx->detail for a revocation).  ctx->cookie says
 * whether the token came in a cookie.
 */
static ngx_int_t
ngx_http_encore_jwt_check(ngx_http_request_t *r,
    ngx_http_encore_jwt_loc_conf_t *jlcf, ngx_http_encore_jwt_ctx_t *ctx)
{
    ngx_int_t                         rc;
    ngx_str_t                         token;
    ngx_http_encore_jwt_main_conf_t  *jmcf;

    rc = ngx_http_encore_jwt_token(r, jlcf, &token, &ctx->cookie);

    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_encore_jwt_verify(r, jlcf, ctx, &token);

    if (rc != NGX_OK) {
        return rc;
    }

    jmcf = ngx_http_get_module_main_conf(r, ngx_http_encore_jwt_module);

    if (jmcf->revoke_zone) {
        return ngx_http_encore_jwt_revoked(r, jmcf, ctx);
    }

    return NGX_OK;
}


/*
 * Preaccess: the token checked before limit_req (a preaccess handler
 * registered before this one, so it runs after it), so that a zone keyed
 * on $encore_jwt_sub counts verified users (conf/limits.conf: chat
 * questions); nothing is answered here.  The access phase answers the
 * verdict as before: an invalid token is still 401 there, after
 * limit_req, which counted it under no key.  Subrequests are left to
 * the access phase, which skips them.
 */
static ngx_int_t
ngx_http_encore_jwt_early_handler(ngx_http_request_t *r)
{
    ngx_http_encore_jwt_ctx_t       *ctx;
    ngx_http_encore_jwt_loc_conf_t  *jlcf;

    jlcf = ngx_http_get_module_loc_conf(r, ngx_http_encore_jwt_module);

    if (r != r->main || jlcf->mode == NGX_HTTP_ENCORE_JWT_OFF
        || ngx_http_get_module_ctx(r, ngx_http_encore_jwt_module) != NULL)
    {
        return NGX_DECLINED;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_encore_jwt_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_encore_jwt_module);

    ctx->verdict = ngx_http_encore_jwt_check(r, jlcf, ctx);
    ctx->checked = 1;

    /* no claim of a refused token is a variable's value meanwhile (the
       access phase sets the status it answers); nor of a cookie on a
       cross-site unsafe request, which the access phase refuses 403: a
       limit keyed on $encore_jwt_sub must not count a request the victim
       never made */
    if (ctx->verdict != NGX_OK && ctx->verdict != NGX_DECLINED) {
        ctx->status = NGX_HTTP_UNAUTHORIZED;

    } else if (ctx->verdict == NGX_OK && ctx->cookie
               && !(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_OPTIONS))
               && ngx_http_encore_jwt_origin_ok(r, jlcf) != NGX_OK)
    {
        ctx->status = NGX_HTTP_FORBIDDEN;
    }

    return NGX_DECLINED;
}


/*
 * NGX_OK, NGX_ERROR, or the HTTP status to answer with (ctx->error set).
 *
 * With the cache, a token is first looked up by its hash: a hit whose
 * algorithm the location allows is checked against the entry's facts
 * (time, iss, aud, required claims), with no base64 and no JSON.  Anything
 * the facts cannot decide, and every miss, takes the full path: parse,
 * time checks, signature (unless the hit vouched for it), claim checks.
 */
static ngx_int_t
ngx_http_encore_jwt_verify(ngx_http_request_t *r,
    ngx_http_encore_jwt_loc_conf_t *jlcf, ngx_http_encore_jwt_ctx_t *ctx,
    ngx_str_t *token)
{
    int                               rc;
    u_char                            hash[NGX_HTTP_ENCORE_JWT_HASH_LEN];
    u_char                            key[9];
    time_t                            now;
    ngx_int_t                         status;
    ngx_uint_t                        i, alg, cached, use_cache, flat;
    long long                         exp;
    encore_jws_t                      jws;
    encore_flat_t                     fl;
    encore_claims_facts_t            *facts;
    ngx_http_encore_jwt_main_conf_t  *jmcf;

    if (jlcf->jwks == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "jwt: no encore_jwt_key_file for this location");
        return NGX_ERROR;
    }

    /* the location's size limit comes first, cached or not */
    if (token->len > jlcf->max_size) {
        ctx->error = "token too large";
        return NGX_HTTP_UNAUTHORIZED;
    }

    jmcf = ngx_http_get_module_main_conf(r, ngx_http_encore_jwt_module);

    now = ngx_time();
    alg = 0;
    cached = 0;
    facts = NULL;
    use_cache = (jlcf->cache && jmcf->cache_zone);

    if (use_cache) {
        key[0] = NGX_HTTP_ENCORE_JWT_CACHE_VERSION;

        for (i = 0; i < 8; i++) {
            key[i + 1] = (u_char) (jlcf->jwks->generation >> (56 - 8 * i));
        }

        if (EVP_DigestInit_ex(jmcf->md_ctx, jmcf->sha256, NULL) != 1
            || EVP_DigestUpdate(jmcf->md_ctx, key, sizeof(key)) != 1
            || EVP_DigestUpdate(jmcf->md_ctx, token->data, token->len) != 1
            || EVP_DigestFinal_ex(jmcf->md_ctx, hash, NULL) != 1)
        {
            return NGX_ERROR;
        }

        facts = ngx_palloc(r->pool, sizeof(encore_claims_facts_t));
        if (facts == NULL) {
            return NGX_ERROR;
        }

        if (ngx_http_encore_jwt_cache_lookup(jmcf->cache_zone, hash, now,
                                             &alg, facts)
            == NGX_OK)
        {
            cached = 1;

            /* a token of an algorithm not allowed here fails parsing */
            if (alg & jlcf->algorithms) {
                status = ngx_http_encore_jwt_check_facts(r, jlcf, ctx, facts,
                                                         token);
                if (status != NGX_DECLINED) {
                    return status;
                }
            }
        }
    }

    rc = encore_jws_parse(&jws, (const char *) token->data, token->len,
                          jlcf->max_size, (unsigned) jlcf->algorithms);

    if (rc != ENCORE_JWS_OK) {
        ctx->error = jws.error;
        encore_jws_free(&jws);
        return rc == ENCORE_JWS_ENOMEM ? NGX_ERROR : NGX_HTTP_UNAUTHORIZED;
    }

    if (facts == NULL) {
        facts = ngx_palloc(r->pool, sizeof(encore_claims_facts_t));
        if (facts == NULL) {
            encore_jws_free(&jws);
            return NGX_ERROR;
        }
    }

    /* the usual claims are flat: their facts without jansson */
    flat = (encore_flat_parse(&fl, jws.payload, jws.payload_len) == 0
            && encore_claims_facts_flat(facts, &fl) == 0);

    if (flat) {
        rc = encore_claims_check_time_facts(facts, &jlcf->policy,
                                            &ctx->error);
        exp = facts->has_exp ? facts->exp : 0;

    } else {
        if (ngx_http_encore_jwt_json_claims(r, ctx, jws.payload,
                                            jws.payload_len)
            != NGX_OK)
        {
            encore_jws_free(&jws);
            return NGX_ERROR;
        }

        if (ctx->claims == NULL) {
            ctx->error = "claims are not a JSON object";
            encore_jws_free(&jws);
            return NGX_HTTP_UNAUTHORIZED;
        }

        rc = encore_claims_check_time(ctx->claims, &jlcf->policy, &exp,
                                      &ctx->error);
    }

    if (rc != ENCORE_CLAIMS_OK) {
        encore_jws_free(&jws);
        return NGX_HTTP_UNAUTHORIZED;
    }

    if (use_cache) {
        ctx->cache = cached ? NGX_HTTP_ENCORE_JWT_CACHE_HIT
                            : NGX_HTTP_ENCORE_JWT_CACHE_MISS;

    } else {
        ctx->cache = NGX_HTTP_ENCORE_JWT_CACHE_OFF;
    }

    if (!cached) {
        rc = encore_jws_verify(&jws, jlcf->jwks);

        if (rc != ENCORE_JWS_OK) {
            ctx->error = jws.error;
            encore_jws_free(&jws);
            return rc == ENCORE_JWS_ENOMEM ? NGX_ERROR
                                           : NGX_HTTP_UNAUTHORIZED;
        }

        if (use_cache
            && (flat || encore_claims_facts_init(facts, ctx->claims) == 0))
        {
            ngx_http_encore_jwt_cache_store(jmcf->cache_zone, hash,
                                            (time_t) exp, now, jws.alg,
                                            facts);
        }
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "jwt: signature ok (%s), cached:%ui, flat:%ui",
                   encore_jws_alg_name(jws.alg), cached, flat);

    if (flat) {
        rc = encore_claims_check_identity_facts(facts, &jlcf->policy,
                                                &ctx->error);

        if (rc != ENCORE_CLAIMS_EUNKNOWN) {
            encore_jws_free(&jws);

            ctx->facts = facts;
            ctx->token = *token;

            return ngx_http_encore_jwt_claims_status(rc);
        }

        /* a requirement the facts do not hold: the claims decide */
        if (ngx_http_encore_jwt_json_claims(r, ctx, jws.payload,
                                            jws.payload_len)
            != NGX_OK)
        {
            encore_jws_free(&jws);
            return NGX_ERROR;
        }

        if (ctx->claims == NULL) {
            ctx->error = "claims are not a JSON object";
            encore_jws_free(&jws);
            return NGX_HTTP_UNAUTHORIZED;
        }
    }

    encore_jws_free(&jws);

    rc = encore_claims_check_identity(ctx->claims, &jlcf->policy,
                                      &ctx->error);

    return ngx_http_encore_jwt_claims_status(rc);
}


/*
 * A verified token, cache hit or miss alike: refused (401) when the
 * revocation zone holds an entry for its sub or its sid whose not_before
 * is after its iat.  NGX_OK, NGX_ERROR, or 401 with ctx->error and
 * ctx->detail set.
 */
static ngx_int_t
ngx_http_encore_jwt_revoked(ngx_http_request_t *r,
    ngx_http_encore_jwt_main_conf_t *jmcf, ngx_http_encore_jwt_ctx_t *ctx)
{
    u_char                 *p;
    ngx_uint_t              cause;
    const char             *name, *advice;
    encore_claims_facts_t  *facts;

    facts = ctx->facts;

    if (facts == NULL) {
        /* the claims took jansson: their facts, for this request only */
        if (ctx->claims == NULL) {
            return NGX_OK;
        }

        facts = ngx_palloc(r->pool, sizeof(encore_claims_facts_t));
        if (facts == NULL) {
            return NGX_ERROR;
        }

        /* the claims passed their checks, so this does not fail; if it
           did, a token the zone cannot key is refused, never let through */
        if (encore_claims_facts_init(facts, ctx->claims) != 0) {
            ctx->error = "claims not readable for the revocation check";
            ctx->detail.data = (u_char *) ctx->error;
            ctx->detail.len = ngx_strlen(ctx->error);
            return NGX_HTTP_UNAUTHORIZED;
        }
    }

    /*
     * auth issues no other: a token the zone cannot key (a sub that is not
     * a UUID, a sid that is not a UUID string) would never be revoked
     */
    if (!facts->has_sub_id || (facts->has_sid && !facts->has_sid_id)) {
        ctx->error = facts->has_sub_id ? "sid is not a UUID"
                                       : "sub is not a UUID";
        ctx->detail.data = (u_char *) ctx->error;
        ctx->detail.len = ngx_strlen(ctx->error);
        return NGX_HTTP_UNAUTHORIZED;
    }

    cause = ngx_http_encore_jwt_revoke_check(jmcf->revoke_zone, facts,
                                             ngx_time());
    if (cause == 0) {
        return NGX_OK;
    }

    name = encore_revoke_cause_name(cause);

    p = ngx_pnalloc(r->pool, 128);
    if (p == NULL) {
        return NGX_ERROR;
    }

    /* what is true of each cause: no new token helps a closed account */
    switch (cause) {

    case ENCORE_REVOKE_DISABLED:
        advice = "the account is disabled";
        break;

    case ENCORE_REVOKE_DELETED:
        advice = "the account no longer exists";
        break;

    default:
        advice = "sign in again or refresh";
    }

    ctx->detail.data = p;
    ctx->detail.len = ngx_snprintf(p, 128, "the access token was revoked "
                                   "(%s); %s", name ? name : "unknown",
                                   advice)
                      - p;
    ctx->error = "token revoked";

    return NGX_HTTP_UNAUTHORIZED;
}


/*
 * POST /internal/revocations: the agent's batches (REVOKE-SPEC: a JSON
 * body of at most 1 MiB and 1000 entries), applied all or nothing.  Only a
 * loopback peer may post (the location's allow/deny is the first line;
 * this is the second).
 */
static ngx_int_t
ngx_http_encore_jwt_revocations_handler(ngx_http_request_t *r)
{
    ngx_int_t                         rc;
    ngx_str_t                         detail;
    ngx_http_encore_jwt_main_conf_t  *jmcf;

    if (!(r->method & NGX_HTTP_POST)) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    if (ngx_http_encore_jwt_loopback(r->connection) != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "jwt: revocations posted from a non-loopback peer");

        rc = ngx_http_discard_request_body(r);

        if (rc != NGX_OK) {
            return rc;
        }

        ngx_str_set(&detail, "revocations are taken from loopback only");
        return ngx_http_encore_problem_send_members(r, NGX_HTTP_FORBIDDEN,
                                                    &detail, NULL);
    }

    jmcf = ngx_http_get_module_main_conf(r, ngx_http_encore_jwt_module);

    if (jmcf->revoke_zone == NULL) {
        /* refused at configuration time: defence in depth */
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* one buffer when the body fits client_body_buffer_size */
    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r,
                                        ngx_http_encore_jwt_revocations_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


#define NGX_HTTP_ENCORE_JWT_REVOCATIONS_MAX  (1024 * 1024)


static void
ngx_http_encore_jwt_revocations_body(ngx_http_request_t *r)
{
    u_char                           *body, *p;
    off_t                             len;
    ssize_t                           n;
    ngx_int_t                         rc;
    ngx_str_t                         detail;
    ngx_buf_t                        *b;
    ngx_time_t                       *tp;
    ngx_chain_t                      *cl;
    ngx_table_elt_t                  *h;
    const char                       *error;
    encore_revoke_batch_t             batch;
    ngx_http_encore_jwt_revoke_t     *rz;
    ngx_http_encore_jwt_main_conf_t  *jmcf;

    jmcf = ngx_http_get_module_main_conf(r, ngx_http_encore_jwt_module);

    len = 0;

    if (r->request_body) {
        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            len += ngx_buf_size(cl->buf);
        }
    }

    if (len > NGX_HTTP_ENCORE_JWT_REVOCATIONS_MAX) {
        ngx_http_finalize_request(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE);
        return;
    }

    body = ngx_pnalloc(r->pool, (size_t) len + 1);
    if (body == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = body;

    for (cl = r->request_body ? r->request_body->bufs : NULL;
         cl;
         cl = cl->next)
    {
        b = cl->buf;

        if (b->in_file) {
            n = ngx_read_file(b->file, p, (size_t) (b->file_last - b->file_pos),
                              b->file_pos);

            if (n != b->file_last - b->file_pos) {
                ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }

            p += n;
            continue;
        }

        p = ngx_cpymem(p, b->pos, b->last - b->pos);
    }

    batch.items = ngx_palloc(r->pool, ENCORE_REVOKE_BATCH_MAX
                                      * sizeof(encore_revoke_item_t));
    if (batch.items == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /*
     * the zone's id, on every answer (a refusal too): a new one tells the
     * agent to replay its window, so an answer without it must not be
     */
    rz = jmcf->revoke_zone->data;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Encore-Revocation-Zone");
    h->value.data = rz->sh->id;
    h->value.len = sizeof(rz->sh->id);

    if (encore_revoke_parse(&batch, body, p - body, &error) != 0
        || encore_revoke_bound(&batch, (long long) ngx_time(), &error) != 0)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "jwt: revocations refused: %s", error);

        detail.data = (u_char *) error;
        detail.len = ngx_strlen(error);

        ngx_http_finalize_request(r,
                 ngx_http_encore_problem_send_members(r, NGX_HTTP_BAD_REQUEST,
                                                      &detail, NULL));
        return;
    }

    rz = jmcf->revoke_zone->data;

    /*
     * "replayed" counts only from an agent that replayed into this zone:
     * it sends back the id this zone answered it with.  An agent still
     * feeding the zone of an nginx that restarted since (its answer tells
     * it to replay again), or a post with no id, has not.
     */
    if (batch.replayed && ngx_http_encore_jwt_zone_sent(r, rz) != NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "jwt: \"replayed\" not taken: not for this zone");

        batch.replayed = 0;
    }

    tp = ngx_timeofday();

    ngx_http_encore_jwt_revoke_apply(jmcf->revoke_zone, &batch,
                                     jmcf->revoke_ttl,
                                     (int64_t) tp->sec * 1000
                                     + (int64_t) tp->msec);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "jwt: %uz revocations applied, replayed:%ui, "
                   "through:%L", batch.nitems, batch.replayed,
                   (int64_t) batch.through_ms);

    r->headers_out.status = NGX_HTTP_NO_CONTENT;
    r->headers_out.content_length_n = 0;
    r->header_only = 1;

    rc = ngx_http_send_header(r);

    ngx_http_finalize_request(r, rc);
}


/* whether the request has one Encore-Revocation-Zone, this zone's id */
static ngx_int_t
ngx_http_encore_jwt_zone_sent(ngx_http_request_t *r,
    ngx_http_encore_jwt_revoke_t *rz)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *zone;

    zone = NULL;
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

        if (h[i].key.len == sizeof("Encore-Revocation-Zone") - 1
            && ngx_strncasecmp(h[i].key.data,
                               (u_char *) "Encore-Revocation-Zone",
                               sizeof("Encore-Revocation-Zone") - 1)
               == 0)
        {
            if (zone) {
                return NGX_DECLINED;
            }

            zone = &h[i];
        }
    }

    /* the id never changes while the zone lives: no lock */
    if (zone == NULL
        || zone->value.len != sizeof(rz->sh->id)
        || ngx_memcmp(zone->value.data, rz->sh->id, sizeof(rz->sh->id)) != 0)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104 or a unix socket */
static ngx_int_t
ngx_http_encore_jwt_loopback(ngx_connection_t *c)
{
    struct sockaddr_in   *sin;
#if (NGX_HAVE_INET6)
    u_char               *a;
    struct sockaddr_in6  *sin6;
#endif

    switch (c->sockaddr->sa_family) {

    case AF_INET:
        sin = (struct sockaddr_in *) c->sockaddr;
        return (ntohl(sin->sin_addr.s_addr) >> 24) == 127
               ? NGX_OK : NGX_DECLINED;

#if (NGX_HAVE_INET6)
    case AF_INET6:
        sin6 = (struct sockaddr_in6 *) c->sockaddr;
        a = sin6->sin6_addr.s6_addr;

        if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr)
            || (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) && a[12] == 127))
        {
            return NGX_OK;
        }

        return NGX_DECLINED;
#endif

#if (NGX_HAVE_UNIX_DOMAIN)
    case AF_UNIX:
        return NGX_OK;
#endif

    default:
        return NGX_DECLINED;
    }
}


ngx_int_t
ngx_http_encore_jwt_revocations_ready(ngx_http_request_t *r)
{
    ngx_time_t                          *tp;
    ngx_http_encore_jwt_main_conf_t     *jmcf;
    ngx_http_encore_jwt_revoke_state_t   st;

    jmcf = ngx_http_get_module_main_conf(r, ngx_http_encore_jwt_module);

    if (jmcf == NULL || jmcf->revoke_zone == NULL) {
        return NGX_DECLINED;
    }

    ngx_http_encore_jwt_revoke_state(jmcf->revoke_zone, &st);

    tp = ngx_timeofday();

    if (st.last_post_ms == 0 || !st.replayed
        || (int64_t) tp->sec * 1000 + (int64_t) tp->msec - st.last_post_ms
           > (int64_t) jmcf->revoke_stale)
    {
        return NGX_BUSY;
    }

    return NGX_OK;
}


u_char *
ngx_http_encore_jwt_revocation_metrics(ngx_http_request_t *r, u_char *p,
    u_char *last)
{
    int64_t                              now_ms, age;
    ngx_time_t                          *tp;
    ngx_http_encore_jwt_main_conf_t     *jmcf;
    ngx_http_encore_jwt_revoke_state_t   st;

    jmcf = ngx_http_get_module_main_conf(r, ngx_http_encore_jwt_module);

    if (jmcf == NULL || jmcf->revoke_zone == NULL) {
        return p;
    }

    ngx_http_encore_jwt_revoke_state(jmcf->revoke_zone, &st);

    tp = ngx_timeofday();
    now_ms = (int64_t) tp->sec * 1000 + (int64_t) tp->msec;

    p = ngx_slprintf(p, last,
            "# HELP encore_jwt_revoked_total Verified tokens refused "
            "because they were revoked.\n"
            "# TYPE encore_jwt_revoked_total counter\n"
            "encore_jwt_revoked_total %uL\n"
            "# HELP encore_revocation_entries Revocations held in the "
            "edge's zone.\n"
            "# TYPE encore_revocation_entries gauge\n"
            "encore_revocation_entries %ui\n"
            "# HELP encore_revocation_evictions_total Revocations dropped "
            "before their expiry because the zone was full.\n"
            "# TYPE encore_revocation_evictions_total counter\n"
            "encore_revocation_evictions_total %uL\n"
            "# HELP encore_revocation_feed_age_seconds How far the "
            "revocations applied are behind now (the last post's "
            "\"through\"); +Inf before the first post.\n"
            "# TYPE encore_revocation_feed_age_seconds gauge\n",
            st.revoked, st.entries, st.evictions);

    if (st.last_post_ms == 0) {
        return ngx_slprintf(p, last,
                            "encore_revocation_feed_age_seconds +Inf\n");
    }

    age = now_ms - st.through_ms;

    if (age < 0) {
        age = 0;
    }

    return ngx_slprintf(p, last,
                        "encore_revocation_feed_age_seconds %L.%03L\n",
                        age / 1000, age % 1000);
}


/*
 * Parse claims with jansson into ctx->claims (NULL when they are not a JSON
 * object), released with the request.  NGX_OK or NGX_ERROR.
 */
static ngx_int_t
ngx_http_encore_jwt_json_claims(ngx_http_request_t *r,
    ngx_http_encore_jwt_ctx_t *ctx, const u_char *data, size_t len)
{
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    /* the claims live as long as the request: variables read them */
    ctx->claims = encore_json_object_parse(data, len);

    cln->handler = ngx_http_encore_jwt_cleanup_claims;
    cln->data = ctx;

    return NGX_OK;
}


/*
 * A cache hit: the signature verified under this key set.  The time and
 * claim checks run on the entry's facts; NGX_DECLINED when the facts
 * cannot decide and the claims must be parsed.
 */
static ngx_int_t
ngx_http_encore_jwt_check_facts(ngx_http_request_t *r,
    ngx_http_encore_jwt_loc_conf_t *jlcf, ngx_http_encore_jwt_ctx_t *ctx,
    encore_claims_facts_t *facts, ngx_str_t *token)
{
    int          rc;
    const char  *error;

    error = NULL;

    rc = encore_claims_check_time_facts(facts, &jlcf->policy, &error);
    if (rc != ENCORE_CLAIMS_OK) {
        ctx->error = error;
        return NGX_HTTP_UNAUTHORIZED;
    }

    rc = encore_claims_check_identity_facts(facts, &jlcf->policy, &error);
    if (rc == ENCORE_CLAIMS_EUNKNOWN) {
        return NGX_DECLINED;
    }

    ctx->error = error;
    ctx->facts = facts;
    ctx->token = *token;
    ctx->cache = NGX_HTTP_ENCORE_JWT_CACHE_HIT;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "jwt: signature ok (cached), claims from the cache");

    return ngx_http_encore_jwt_claims_status(rc);
}


static ngx_int_t
ngx_http_encore_jwt_claims_status(int rc)
{
    switch (rc) {
    case ENCORE_CLAIMS_OK:
        return NGX_OK;
    case ENCORE_CLAIMS_EFORBIDDEN:
        return NGX_HTTP_FORBIDDEN;
    default:
        return NGX_HTTP_UNAUTHORIZED;
    }
}


/*
 * Claims of a token verified through the cache, parsed only when a claim
 * the facts do not hold is asked for.  NGX_OK (ctx->claims may stay NULL
 * if they do not parse, which a verified token's claims always do), or
 * NGX_ERROR.
 */
static ngx_int_t
ngx_http_encore_jwt_parse_claims(ngx_http_request_t *r,
    ngx_http_encore_jwt_ctx_t *ctx)
{
    u_char  *p, *last, *payload, *buf;
    size_t   len;

    p = ngx_strlchr(ctx->token.data, ctx->token.data + ctx->token.len, '.');
    if (p == NULL) {
        return NGX_OK;
    }

    payload = p + 1;
    last = ctx->token.data + ctx->token.len;

    p = ngx_strlchr(payload, last, '.');
    if (p == NULL) {
        return NGX_OK;
    }

    buf = ngx_pnalloc(r->pool, (p - payload) / 4 * 3 + 3);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    if (encore_base64url_decode(buf, &len, (char *) payload, p - payload)
        != 0)
    {
        return NGX_OK;
    }

    return ngx_http_encore_jwt_json_claims(r, ctx, buf, len);
}


/*
 * NGX_OK with the token, NGX_DECLINED when no source has one, NGX_ERROR.
 * *cookie tells whether it came from a cookie.
 */
static ngx_int_t
ngx_http_encore_jwt_token(ngx_http_request_t *r,
    ngx_http_encore_jwt_loc_conf_t *jlcf, ngx_str_t *token,
    ngx_uint_t *cookie)
{
    u_char                        *p, *end;
    ngx_uint_t                     i;
    ngx_table_elt_t               *h;
    ngx_http_encore_jwt_source_t  *src;

    *cookie = 0;
    src = jlcf->sources->elts;

    for (i = 0; i < jlcf->sources->nelts; i++) {

        switch (src[i].type) {

        case NGX_HTTP_ENCORE_JWT_BEARER:
            h = r->headers_in.authorization;
            if (h == NULL) {
                continue;
            }

            p = h->value.data;
            end = p + h->value.len;

            /* RFC 6750 2.1: "Bearer" 1*SP token; the scheme is caseless */
            if (h->value.len < sizeof("Bearer ") - 1
                || ngx_strncasecmp(p, (u_char *) "Bearer ",
                                   sizeof("Bearer ") - 1) != 0)
            {
                continue;
            }

            p += sizeof("Bearer ") - 1;

            while (p < end && *p == ' ') {
                p++;
            }

            while (end > p && end[-1] == ' ') {
                end--;
            }

            if (p == end) {
                continue;
            }

            token->data = p;
            token->len = end - p;
            return NGX_OK;

        case NGX_HTTP_ENCORE_JWT_COOKIE:
#if (nginx_version >= 1023000)
            if (ngx_http_parse_multi_header_lines(r, r->headers_in.cookie,
                                                  &src[i].cookie, token)
                == NULL)
            {
                continue;
            }
#else
            if (ngx_http_parse_multi_header_lines(&r->headers_in.cookies,
                                                  &src[i].cookie, token)
                == NGX_DECLINED)
            {
                continue;
            }
#endif

            if (token->len == 0) {
                continue;
            }

            *cookie = src[i].ambient;
            return NGX_OK;

        default: /* NGX_HTTP_ENCORE_JWT_VARIABLE */
            if (ngx_http_complex_value(r, src[i].value, token) != NGX_OK) {
                return NGX_ERROR;
            }

            if (token->len == 0) {
                continue;
            }

            *cookie = src[i].ambient;
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


/*
 * Origin must be one the server is configured with, never one derived from
 * the request: with Host: evil.example a page of evil.example would
 * otherwise pass.  Those of encore_jwt_origins, or by default this
 * connection's scheme with the address it reached (the listen address) or
 * the server's (first) server_name, and the port it reached
 * (omitted when the scheme's default, as browsers do).  An https edge
 * refuses http:// (a page injected into plain HTTP); "null" never matches.
 */
static ngx_int_t
ngx_http_encore_jwt_origin_ok(ngx_http_request_t *r,
    ngx_http_encore_jwt_loc_conf_t *jlcf)
{
    u_char                     *p, addr[NGX_SOCKADDR_STRLEN];
    ngx_str_t                  *o, *host, value, scheme, port, local;
    in_port_t                   pn;
    ngx_uint_t                  i;
    ngx_list_part_t            *part;
    ngx_table_elt_t            *h, *origin;
    ngx_http_core_srv_conf_t   *cscf;
    u_char                      buf[sizeof(":65535")];

    origin = NULL;
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

        if (h[i].key.len == sizeof("Origin") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Origin",
                               sizeof("Origin") - 1) == 0)
        {
            if (origin) {
                return NGX_DECLINED;
            }

            origin = &h[i];
        }
    }

    if (origin == NULL) {
        return NGX_DECLINED;
    }

    value = origin->value;

    if (jlcf->origins) {
        o = jlcf->origins->elts;

        for (i = 0; i < jlcf->origins->nelts; i++) {
            if (value.len == o[i].len
                && ngx_strncasecmp(value.data, o[i].data, value.len) == 0)
            {
                return NGX_OK;
            }
        }

        return NGX_DECLINED;
    }

    /* the default: the server's own origins */

#if (NGX_HTTP_SSL)
    if (r->connection->ssl) {
        ngx_str_set(&scheme, "https://");

    } else
#endif
    {
        ngx_str_set(&scheme, "http://");
    }

    local.data = addr;
    local.len = NGX_SOCKADDR_STRLEN;

    if (ngx_connection_local_sockaddr(r->connection, &local, 0) != NGX_OK) {
        return NGX_DECLINED;
    }

    pn = ngx_inet_get_port(r->connection->local_sockaddr);

    port.data = buf;
    port.len = 0;

    if (!((pn == 80 && scheme.len == sizeof("http://") - 1)
          || (pn == 443 && scheme.len == sizeof("https://") - 1)))
    {
        port.len = ngx_sprintf(buf, ":%d", (int) pn) - buf;
    }

    /* an IPv6 address is written in brackets in an origin */
    if (r->connection->local_sockaddr->sa_family == AF_INET6) {
        p = ngx_pnalloc(r->pool, local.len + 2);
        if (p == NULL) {
            return NGX_DECLINED;
        }

        p[0] = '[';
        ngx_memcpy(p + 1, local.data, local.len);
        p[local.len + 1] = ']';

        local.data = p;
        local.len += 2;
    }

    if (ngx_http_encore_jwt_origin_is(&value, &scheme, local.data, local.len,
                                      &port)
        == NGX_OK)
    {
        return NGX_OK;
    }

    /*
     * the server's name: its first server_name (the list itself lives in
     * the configuration's temporary pool); a wildcard or a regex names no
     * origin
     */
    cscf = ngx_http_get_module_srv_conf(r, ngx_http_core_module);
    host = &cscf->server_name;

    if (host->len
        && ngx_strlchr(host->data, host->data + host->len, '*') == NULL
        && host->data[0] != '.' && host->data[0] != '~'
        && ngx_http_encore_jwt_origin_is(&value, &scheme, host->data,
                                         host->len, &port)
           == NGX_OK)
    {
        return NGX_OK;
    }

    return NGX_DECLINED;
}


/* whether origin is scheme + host + port, caseless */
static ngx_int_t
ngx_http_encore_jwt_origin_is(ngx_str_t *origin, ngx_str_t *scheme,
    u_char *host, size_t host_len, ngx_str_t *port)
{
    u_char  *p;

    if (origin->len != scheme->len + host_len + port->len) {
        return NGX_DECLINED;
    }

    p = origin->data;

    if (ngx_strncasecmp(p, scheme->data, scheme->len) != 0) {
        return NGX_DECLINED;
    }

    p += scheme->len;

    if (ngx_strncasecmp(p, host, host_len) != 0) {
        return NGX_DECLINED;
    }

    p += host_len;

    if (ngx_memcmp(p, port->data, port->len) != 0) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * Drop every X-Encore-* request header.  ngx_list_t has no removal, so the
 * list is rebuilt, and only when such a header is present.
 */
static ngx_int_t
ngx_http_encore_jwt_strip(ngx_http_request_t *r)
{
    ngx_str_t        *prefix;
    ngx_uint_t        i, found, pass;
    ngx_list_t        list;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *nh;

    prefix = &ngx_http_encore_jwt_header_prefix;
    found = 0;

    for (pass = 0; pass < 2; pass++) {

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

            if (h[i].key.len >= prefix->len
                && ngx_strncasecmp(h[i].key.data, prefix->data, prefix->len)
                   == 0)
            {
                found = 1;

                if (pass == 0) {
                    break;
                }

                ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                               "jwt: dropping client header \"%V\"",
                               &h[i].key);
                continue;
            }

            if (pass == 1) {
                nh = ngx_list_push(&list);
                if (nh == NULL) {
                    return NGX_ERROR;
                }

                *nh = h[i];
            }
        }

        if (!found) {
            return NGX_OK;
        }

        if (pass == 0) {
            if (ngx_list_init(&list, r->pool, 20, sizeof(ngx_table_elt_t))
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    /* a copied list must not keep "last" pointing into the local one */
    r->headers_in.headers = list;

    if (list.last == &list.part) {
        r->headers_in.headers.last = &r->headers_in.headers.part;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_encore_jwt_push_header(ngx_http_request_t *r, ngx_str_t *key,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_in.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->key = *key;
    h->value = *value;

    h->lowcase_key = ngx_pnalloc(r->pool, key->len);
    if (h->lowcase_key == NULL) {
        return NGX_ERROR;
    }

    h->hash = ngx_hash_strlow(h->lowcase_key, key->data, key->len);

    return NGX_OK;
}


/* NGX_OK, NGX_ERROR, or 401 when a claim cannot travel in a header */
static ngx_int_t
ngx_http_encore_jwt_set_identity(ngx_http_request_t *r,
    ngx_http_encore_jwt_ctx_t *ctx)
{
    ngx_str_t   value;
    ngx_uint_t  i;

    static const char  *claims[] = { "sub", "role", "name" };
    static ngx_str_t    headers[] = {
        ngx_string("X-Encore-User-Id"),
        ngx_string("X-Encore-User-Role"),
        ngx_string("X-Encore-User-Name")
    };

    for (i = 0; i < 3; i++) {
        if (ngx_http_encore_jwt_claim_value(r, ctx, claims[i], &value)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (value.len == 0) {
            continue;
        }

        /* no header splitting through a claim */
        if (ngx_http_encore_jwt_has_ctl(&value)) {
            ctx->error = "claim has control characters";
            return NGX_HTTP_UNAUTHORIZED;
        }

        if (ngx_http_encore_jwt_push_header(r, &headers[i], &value)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * Answer 401 or 403 with an RFC 9457 problem document (the edge's one
 * writer, ngx_http_encore_problem.h).  The response is sent here, so the
 * access phase is told NGX_DONE.
 */
static ngx_int_t
ngx_http_encore_jwt_reject(ngx_http_request_t *r,
    ngx_http_encore_jwt_ctx_t *ctx, ngx_uint_t status)
{
    size_t            len;
    ngx_str_t         error;
    ngx_table_elt_t  *h;

    ctx->status = status;

    error.data = (u_char *) ctx->error;
    error.len = ngx_strlen(ctx->error);

    h = NULL;

    if (status == NGX_HTTP_UNAUTHORIZED
        || ((ctx->claims || ctx->facts)
            && ngx_strcmp(ctx->error,
                          "claims do not satisfy the requirement") == 0))
    {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        len = sizeof("Bearer error=\"insufficient_scope\", "
                     "error_description=\"\"") - 1 + error.len;

        h->value.data = ngx_pnalloc(r->pool, len);
        if (h->value.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "WWW-Authenticate");

        if (status == NGX_HTTP_FORBIDDEN) {
            h->value.len = ngx_sprintf(h->value.data,
                                 "Bearer error=\"insufficient_scope\", "
                                 "error_description=\"%V\"", &error)
                           - h->value.data;

        } else if (ngx_strcmp(ctx->error, "token missing") == 0) {
            /* RFC 6750 3.1: no error code when no credentials were sent */
            ngx_str_set(&h->value, "Bearer");

        } else {
            h->value.len = ngx_sprintf(h->value.data,
                                 "Bearer error=\"invalid_token\", "
                                 "error_description=\"%V\"", &error)
                           - h->value.data;
        }

        r->headers_out.www_authenticate = h;
    }

    ngx_http_finalize_request(r,
                  ngx_http_encore_problem_send_members(r, status,
                                        ctx->detail.len ? &ctx->detail : &error,
                                        NULL));

    return NGX_DONE;
}


static void
ngx_http_encore_jwt_cleanup_claims(void *data)
{
    ngx_http_encore_jwt_ctx_t  *ctx = data;

    if (ctx->claims) {
        json_decref(ctx->claims);
        ctx->claims = NULL;
    }
}


static time_t
ngx_http_encore_jwt_clock(void *data)
{
    return ngx_time();
}


/* the claim as text: strings as they are, numbers and booleans as JSON */
static ngx_int_t
ngx_http_encore_jwt_claim_value(ngx_http_request_t *r,
    ngx_http_encore_jwt_ctx_t *ctx, const char *name, ngx_str_t *value)
{
    int          kind;
    size_t       len;
    json_t      *v;
    const char  *text;

    ngx_str_null(value);

    if (ctx == NULL || ctx->status != 0) {
        return NGX_OK;
    }

    if (ctx->claims == NULL) {
        if (ctx->facts == NULL) {
            return NGX_OK;
        }

        kind = encore_claims_facts_text(ctx->facts, name, &text, &len);

        if (kind == ENCORE_CLAIM_TEXT) {
            value->data = (u_char *) text;
            value->len = len;
            return NGX_OK;
        }

        if (kind == ENCORE_CLAIM_ABSENT) {
            return NGX_OK;
        }

        if (ngx_http_encore_jwt_parse_claims(r, ctx) != NGX_OK) {
            return NGX_ERROR;
        }

        if (ctx->claims == NULL) {
            return NGX_OK;
        }
    }

    v = json_object_get(ctx->claims, name);

    if (v == NULL) {
        return NGX_OK;
    }

    if (json_is_string(v)) {
        value->data = (u_char *) json_string_value(v);
        value->len = json_string_length(v);
        return NGX_OK;
    }

    if (json_is_integer(v)) {
        value->data = ngx_pnalloc(r->pool, NGX_INT64_LEN);
        if (value->data == NULL) {
            return NGX_ERROR;
        }

        value->len = ngx_sprintf(value->data, "%L",
                                 (int64_t) json_integer_value(v))
                     - value->data;
        return NGX_OK;
    }

    if (json_is_true(v)) {
        ngx_str_set(value, "true");

    } else if (json_is_false(v)) {
        ngx_str_set(value, "false");
    }

    return NGX_OK;
}


static ngx_uint_t
ngx_http_encore_jwt_has_ctl(ngx_str_t *value)
{
    ngx_uint_t  i;

    for (i = 0; i < value->len; i++) {
        if (value->data[i] < 0x20 || value->data[i] == 0x7f) {
            return 1;
        }
    }

    return 0;
}


static ngx_int_t
ngx_http_encore_jwt_set_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, const char *name)
{
    ngx_str_t                   value;
    ngx_http_encore_jwt_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_encore_jwt_module);

    if (ngx_http_encore_jwt_claim_value(r, ctx, name, &value) != NGX_OK) {
        return NGX_ERROR;
    }

    /*
     * a claim with CR, LF or other controls is no value: an operator's
     * proxy_set_header or add_header with it must not split a header
     */
    if (value.data == NULL || ngx_http_encore_jwt_has_ctl(&value)) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = value.data;
    v->len = value.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_encore_jwt_claim_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    return ngx_http_encore_jwt_set_variable(r, v, (const char *) data);
}


static ngx_int_t
ngx_http_encore_jwt_prefix_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t  *var = (ngx_str_t *) data;

    u_char     *name;
    size_t      len;

    len = var->len - (sizeof("encore_jwt_claim_") - 1);

    name = ngx_pnalloc(r->pool, len + 1);
    if (name == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(name, var->data + sizeof("encore_jwt_claim_") - 1, len);
    name[len] = '\0';

    return ngx_http_encore_jwt_set_variable(r, v, (const char *) name);
}


static ngx_int_t
ngx_http_encore_jwt_error_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_encore_jwt_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_encore_jwt_module);

    if (ctx == NULL || ctx->error == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = (u_char *) ctx->error;
    v->len = ngx_strlen(ctx->error);
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * "1" when the request has one Origin and it is one of the location's
 * (encore_jwt_origins, or the server's own: the same check as for a cookie
 * here), else "0": for an upstream that checks the Origin of a cookie of
 * its own (proxy.conf passes it to the workers)
 */
static ngx_int_t
ngx_http_encore_jwt_origin_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_encore_jwt_loc_conf_t  *jlcf;

    jlcf = ngx_http_get_module_loc_conf(r, ngx_http_encore_jwt_module);

    if (ngx_http_encore_jwt_origin_ok(r, jlcf) == NGX_OK) {
        v->data = (u_char *) "1";

    } else {
        v->data = (u_char *) "0";
    }

    v->len = 1;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* "hit", "miss", "off" (no cache for this location), or empty: no
   signature was checked */
static ngx_int_t
ngx_http_encore_jwt_cache_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_encore_jwt_ctx_t  *ctx;

    static ngx_str_t  names[] = {
        ngx_null_string, ngx_string("hit"), ngx_string("miss"),
        ngx_string("off")
    };

    ctx = ngx_http_get_module_ctx(r, ngx_http_encore_jwt_module);

    if (ctx == NULL || ctx->cache == NGX_HTTP_ENCORE_JWT_CACHE_NONE) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = names[ctx->cache].data;
    v->len = names[ctx->cache].len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_encore_jwt_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_encore_jwt_vars; v->name.len; v++) {
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
ngx_http_encore_jwt_create_main_conf(ngx_conf_t *cf)
{
    ngx_pool_cleanup_t               *cln;
    ngx_http_encore_jwt_main_conf_t  *jmcf;

    jmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_encore_jwt_main_conf_t));
    if (jmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     jmcf->cache_zone = NULL;
     *     jmcf->revoke_zone = NULL;
     */

    jmcf->revoke_ttl = NGX_CONF_UNSET;
    jmcf->revoke_stale = NGX_CONF_UNSET_MSEC;

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    jmcf->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    jmcf->md_ctx = EVP_MD_CTX_new();

    cln->handler = ngx_http_encore_jwt_cleanup_main;
    cln->data = jmcf;

    if (jmcf->sha256 == NULL || jmcf->md_ctx == NULL) {
        return NULL;
    }

    return jmcf;
}


static void *
ngx_http_encore_jwt_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_encore_jwt_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_encore_jwt_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->jwks = NULL;
     *     conf->sources = NULL;
     *     conf->issuer = { 0, NULL };
     *     conf->audience = { 0, NULL };
     *     conf->reqs = NULL;
     *     conf->roles = NULL;
     *     conf->origins = NULL;
     *     conf->policy = { 0 };
     */

    conf->mode = NGX_CONF_UNSET_UINT;
    conf->algorithms = NGX_CONF_UNSET_UINT;
    conf->leeway = NGX_CONF_UNSET;
    conf->max_size = NGX_CONF_UNSET_SIZE;
    conf->cache = NGX_CONF_UNSET;
    conf->revocations = NGX_CONF_UNSET;

    return conf;
}


static char *
ngx_http_encore_jwt_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_encore_jwt_loc_conf_t *prev = parent;
    ngx_http_encore_jwt_loc_conf_t *conf = child;

    ngx_http_encore_jwt_source_t  *src;

    ngx_conf_merge_uint_value(conf->mode, prev->mode,
                              NGX_HTTP_ENCORE_JWT_OFF);
    ngx_conf_merge_uint_value(conf->algorithms, prev->algorithms,
                              ENCORE_JWS_ES256);
    ngx_conf_merge_sec_value(conf->leeway, prev->leeway, 0);
    ngx_conf_merge_size_value(conf->max_size, prev->max_size,
                              ENCORE_JWS_DEFAULT_MAX_SIZE);
    ngx_conf_merge_str_value(conf->issuer, prev->issuer, "");
    ngx_conf_merge_str_value(conf->audience, prev->audience, "");
    ngx_conf_merge_value(conf->cache, prev->cache, 1);

    if (conf->jwks == NULL) {
        conf->jwks = prev->jwks;
    }

    if (conf->reqs == NULL) {
        conf->reqs = prev->reqs;
    }

    if (conf->roles == NULL) {
        conf->roles = prev->roles;
    }

    if (conf->origins == NULL) {
        conf->origins = prev->origins;
    }

    if (conf->sources == NULL) {
        conf->sources = prev->sources;
    }

    if (conf->sources == NULL) {
        /* default: Authorization: Bearer, then the encore_access cookie */
        conf->sources = ngx_array_create(cf->pool, 2,
                                         sizeof(ngx_http_encore_jwt_source_t));
        if (conf->sources == NULL) {
            return NGX_CONF_ERROR;
        }

        src = ngx_array_push_n(conf->sources, 2);
        if (src == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(src, 2 * sizeof(ngx_http_encore_jwt_source_t));
        src[0].type = NGX_HTTP_ENCORE_JWT_BEARER;
        src[1].type = NGX_HTTP_ENCORE_JWT_COOKIE;
        src[1].ambient = 1;
        src[1].cookie = ngx_http_encore_jwt_default_cookie;

        prev->sources = conf->sources;
    }

    if (conf->mode != NGX_HTTP_ENCORE_JWT_OFF && conf->jwks == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"encore_jwt\" is on but no "
                           "\"encore_jwt_key_file\" is set");
        return NGX_CONF_ERROR;
    }

    /* directive values are NUL-terminated, as the core wants them */
    conf->policy.clock = ngx_http_encore_jwt_clock;
    conf->policy.clock_data = NULL;
    conf->policy.leeway = (long) conf->leeway;
    conf->policy.require_exp = 1;
    conf->policy.require_iat = 1;
    conf->policy.issuer = conf->issuer.len ? (char *) conf->issuer.data
                                           : NULL;
    conf->policy.audience = conf->audience.len ? (char *) conf->audience.data
                                               : NULL;
    conf->policy.reqs = conf->reqs ? conf->reqs->elts : NULL;
    conf->policy.nreqs = conf->reqs ? conf->reqs->nelts : 0;
    conf->policy.roles = conf->roles ? conf->roles->elts : NULL;
    conf->policy.nroles = conf->roles ? conf->roles->nelts : 0;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_encore_jwt_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    /* every request, authenticated or not, loses client X-Encore-* */
    h = ngx_array_push(&cmcf->phases[NGX_HTTP_POST_READ_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_encore_jwt_strip_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_encore_jwt_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PREACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_encore_jwt_early_handler;

    return NGX_OK;
}


static void
ngx_http_encore_jwt_cleanup_jwks(void *data)
{
    encore_jwks_free(data);
}


static void
ngx_http_encore_jwt_cleanup_main(void *data)
{
    ngx_http_encore_jwt_main_conf_t  *jmcf = data;

    EVP_MD_CTX_free(jmcf->md_ctx);
    EVP_MD_free(jmcf->sha256);
}


static char *
ngx_http_encore_jwt_key_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_encore_jwt_loc_conf_t *jlcf = conf;

    char                 err[256];
    ngx_str_t           *value, path;
    ngx_pool_cleanup_t  *cln;

    if (jlcf->jwks != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;
    path = value[1];

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    /* read at configuration time: "nginx -s reload" rotates the keys */
    jlcf->jwks = encore_jwks_load_file((char *) path.data, err, sizeof(err));

    if (jlcf->jwks == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "jwt: cannot load key set \"%V\": %s",
                           &path, err);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_encore_jwt_cleanup_jwks;
    cln->data = jlcf->jwks;

    return NGX_CONF_OK;
}


static char *
ngx_http_encore_jwt_token_source(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_encore_jwt_loc_conf_t *jlcf = conf;

    ngx_str_t                         *value;
    ngx_uint_t                         i;
    ngx_http_encore_jwt_source_t      *src;
    ngx_http_compile_complex_value_t   ccv;

    if (jlcf->sources != NULL) {
        return "is duplicate";
    }

    jlcf->sources = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                     sizeof(ngx_http_encore_jwt_source_t));
    if (jlcf->sources == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        src = ngx_array_push(jlcf->sources);
        if (src == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(src, sizeof(ngx_http_encore_jwt_source_t));

        if (ngx_strcmp(value[i].data, "bearer") == 0) {
            src->type = NGX_HTTP_ENCORE_JWT_BEARER;
            continue;
        }

        if (value[i].len > sizeof("cookie=") - 1
            && ngx_strncmp(value[i].data, "cookie=", sizeof("cookie=") - 1)
               == 0)
        {
            src->type = NGX_HTTP_ENCORE_JWT_COOKIE;
            src->cookie.data = value[i].data + sizeof("cookie=") - 1;
            src->cookie.len = value[i].len - (sizeof("cookie=") - 1);
            src->ambient = 1;
            continue;
        }

        if (value[i].data[0] != '$') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid token source \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        src->type = NGX_HTTP_ENCORE_JWT_VARIABLE;

        /* $cookie_x or $http_cookie: as ambient as cookie=x */
        src->ambient =
            ngx_strlcasestrn(value[i].data, value[i].data + value[i].len,
                             (u_char *) "$cookie_", sizeof("$cookie_") - 2)
                != NULL
            || ngx_strlcasestrn(value[i].data, value[i].data + value[i].len,
                                (u_char *) "$http_cookie",
                                sizeof("$http_cookie") - 2)
               != NULL;
        src->value = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
        if (src->value == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

        ccv.cf = cf;
        ccv.value = &value[i];
        ccv.complex_value = src->value;

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_encore_jwt_algorithms(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_encore_jwt_loc_conf_t *jlcf = conf;

    unsigned     alg;
    ngx_str_t   *value;
    ngx_uint_t   i;

    if (jlcf->algorithms != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    jlcf->algorithms = 0;
    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        alg = encore_jws_alg_from_name((char *) value[i].data, value[i].len);

        if (alg == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid algorithm \"%V\", "
                               "use ES256, RS256, EdDSA or HS256", &value[i]);
            return NGX_CONF_ERROR;
        }

        jlcf->algorithms |= alg;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_encore_jwt_require(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_encore_jwt_loc_conf_t *jlcf = conf;

    ngx_str_t            *value;
    ngx_uint_t            i;
    const char          **values;
    encore_claim_req_t   *req;

    if (jlcf->reqs == NULL) {
        jlcf->reqs = ngx_array_create(cf->pool, 2, sizeof(encore_claim_req_t));
        if (jlcf->reqs == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    req = ngx_array_push(jlcf->reqs);
    if (req == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    req->name = (char *) value[1].data;
    req->values = NULL;
    req->nvalues = cf->args->nelts - 2;

    if (req->nvalues == 0) {
        return NGX_CONF_OK;
    }

    values = ngx_palloc(cf->pool, req->nvalues * sizeof(char *));
    if (values == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < req->nvalues; i++) {
        values[i] = (char *) value[i + 2].data;
    }

    req->values = values;

    return NGX_CONF_OK;
}


static char *
ngx_http_encore_jwt_roles(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_encore_jwt_loc_conf_t *jlcf = conf;

    char        **role;
    ngx_str_t    *value;
    ngx_uint_t    i;

    if (jlcf->roles != NULL) {
        return "is duplicate";
    }

    jlcf->roles = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                   sizeof(char *));
    if (jlcf->roles == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        role = ngx_array_push(jlcf->roles);
        if (role == NULL) {
            return NGX_CONF_ERROR;
        }

        /* directive values are NUL-terminated */
        *role = (char *) value[i].data;
    }

    return NGX_CONF_OK;
}


/* scheme://host[:port], nothing else: what a browser sends as Origin */
static char *
ngx_http_encore_jwt_origins(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_encore_jwt_loc_conf_t *jlcf = conf;

    u_char      *p, *last;
    ngx_str_t   *value, *o;
    ngx_uint_t   i;

    if (jlcf->origins != NULL) {
        return "is duplicate";
    }

    jlcf->origins = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                     sizeof(ngx_str_t));
    if (jlcf->origins == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        p = value[i].data;
        last = p + value[i].len;

        if (value[i].len > sizeof("https://") - 1
            && ngx_strncasecmp(p, (u_char *) "https://",
                               sizeof("https://") - 1) == 0)
        {
            p += sizeof("https://") - 1;

        } else if (value[i].len > sizeof("http://") - 1
                   && ngx_strncasecmp(p, (u_char *) "http://",
                                      sizeof("http://") - 1) == 0)
        {
            p += sizeof("http://") - 1;

        } else {
            p = NULL;
        }

        for ( /* void */ ; p && p < last; p++) {
            if (*p <= 0x20 || *p >= 0x7f || *p == '/' || *p == '?'
                || *p == '#' || *p == '@' || *p == '*')
            {
                p = NULL;
            }
        }

        if (p == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid origin \"%V\", "
                               "use scheme://host[:port]", &value[i]);
            return NGX_CONF_ERROR;
        }

        o = ngx_array_push(jlcf->origins);
        if (o == NULL) {
            return NGX_CONF_ERROR;
        }

        *o = value[i];
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_encore_jwt_cache_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_encore_jwt_main_conf_t *jmcf = conf;

    u_char                       *p;
    ssize_t                       size;
    ngx_str_t                    *value, name, s;
    ngx_http_encore_jwt_cache_t  *cache;

    if (jmcf->cache_zone != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    p = (u_char *) ngx_strchr(value[1].data, ':');

    if (p == NULL || p == value[1].data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\", use name:size", &value[1]);
        return NGX_CONF_ERROR;
    }

    name.data = value[1].data;
    name.len = p - value[1].data;

    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);

    if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    cache = ngx_pcalloc(cf->pool, sizeof(ngx_http_encore_jwt_cache_t));
    if (cache == NULL) {
        return NGX_CONF_ERROR;
    }

    jmcf->cache_zone = ngx_shared_memory_add(cf, &name, size,
                                             &ngx_http_encore_jwt_module);
    if (jmcf->cache_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (jmcf->cache_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    jmcf->cache_zone->init = ngx_http_encore_jwt_cache_init_zone;
    jmcf->cache_zone->data = cache;

    return NGX_CONF_OK;
}


static char *
ngx_http_encore_jwt_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_encore_jwt_main_conf_t *jmcf = conf;

    /* the longest token lifetime (15 min) and the leeway, rounded up */
    ngx_conf_init_value(jmcf->revoke_ttl, 960);
    ngx_conf_init_msec_value(jmcf->revoke_stale, 5000);

    return NGX_CONF_OK;
}


static char *
ngx_http_encore_jwt_revocation_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_encore_jwt_main_conf_t *jmcf = conf;

    ssize_t                        size;
    ngx_str_t                     *value;
    ngx_http_encore_jwt_revoke_t  *rz;

    if (jmcf->revoke_zone != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    size = ngx_parse_size(&value[2]);

    if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", &value[2]);
        return NGX_CONF_ERROR;
    }

    rz = ngx_pcalloc(cf->pool, sizeof(ngx_http_encore_jwt_revoke_t));
    if (rz == NULL) {
        return NGX_CONF_ERROR;
    }

    jmcf->revoke_zone = ngx_shared_memory_add(cf, &value[1], size,
                                              &ngx_http_encore_jwt_module);
    if (jmcf->revoke_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (jmcf->revoke_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    jmcf->revoke_zone->init = ngx_http_encore_jwt_revoke_init_zone;
    jmcf->revoke_zone->data = rz;

    return NGX_CONF_OK;
}


static char *
ngx_http_encore_jwt_revocations(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_encore_jwt_loc_conf_t *jlcf = conf;

    ngx_http_core_loc_conf_t         *clcf;
    ngx_http_encore_jwt_main_conf_t  *jmcf;

    if (jlcf->revocations != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    jmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_encore_jwt_module);

    /* http-level directives come first in Encore's configuration */
    if (jmcf->revoke_zone == NULL) {
        return "needs \"encore_jwt_revocation_zone\" before it";
    }

    jlcf->revocations = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_encore_jwt_revocations_handler;

    return NGX_CONF_OK;
}
