
/*
 * Copyright (C) Encore
 */


#ifndef _NGX_HTTP_ENCORE_JWT_H_INCLUDED_
#define _NGX_HTTP_ENCORE_JWT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "encore_claims.h"
#include "encore_revoke.h"


#define NGX_HTTP_ENCORE_JWT_HASH_LEN  32


/*
 * verified-token cache, keyed by a SHA-256 of the token: an entry holds the
 * signature verdict, the token's algorithm and its claims facts, against
 * which time and claim checks run on every request
 */

typedef struct ngx_http_encore_jwt_cache_sh_s  ngx_http_encore_jwt_cache_sh_t;

typedef struct {
    ngx_http_encore_jwt_cache_sh_t  *sh;
    ngx_slab_pool_t                 *shpool;
} ngx_http_encore_jwt_cache_t;


ngx_int_t ngx_http_encore_jwt_cache_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
/* NGX_OK with *alg and facts copied out of the entry, or NGX_DECLINED */
ngx_int_t ngx_http_encore_jwt_cache_lookup(ngx_shm_zone_t *shm_zone,
    u_char *hash, time_t now, ngx_uint_t *alg, encore_claims_facts_t *facts);
void ngx_http_encore_jwt_cache_store(ngx_shm_zone_t *shm_zone, u_char *hash,
    time_t expires, time_t now, ngx_uint_t alg,
    const encore_claims_facts_t *facts);


/*
 * revocation zone: the table of encore_revoke.h in a shared memory zone,
 * behind a reader-writer spinlock (ngx_rwlock): checks of tokens share it,
 * posts of the agent take it alone
 */

typedef struct {
    ngx_atomic_t                     lock;       /* ngx_rwlock_*() */
    ngx_atomic_t                     revoked;    /* tokens refused */
    void                            *mem;        /* the table */
    u_char                           id[16];     /* this zone's, in hex */
} ngx_http_encore_jwt_revoke_sh_t;

typedef struct {
    ngx_http_encore_jwt_revoke_sh_t *sh;
    ngx_slab_pool_t                 *shpool;
    encore_revoke_t                  table;
} ngx_http_encore_jwt_revoke_t;

typedef struct {
    ngx_uint_t                       entries;
    ngx_uint_t                       replayed;
    uint64_t                         evictions;
    uint64_t                         revoked;
    int64_t                          last_post_ms;   /* 0: none yet */
    int64_t                          through_ms;
} ngx_http_encore_jwt_revoke_state_t;


ngx_int_t ngx_http_encore_jwt_revoke_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
/* the cause of a revocation refusing the token of facts, or 0 */
ngx_uint_t ngx_http_encore_jwt_revoke_check(ngx_shm_zone_t *shm_zone,
    const encore_claims_facts_t *facts, time_t now);
void ngx_http_encore_jwt_revoke_apply(ngx_shm_zone_t *shm_zone,
    const encore_revoke_batch_t *batch, time_t ttl, int64_t now_ms);
void ngx_http_encore_jwt_revoke_state(ngx_shm_zone_t *shm_zone,
    ngx_http_encore_jwt_revoke_state_t *st);

/*
 * For the ops and metrics modules.  Readiness of the revocation feed:
 * NGX_DECLINED when no revocation zone is configured, NGX_OK, or NGX_BUSY
 * (no replayed post yet, or the last post too old).
 */
ngx_int_t ngx_http_encore_jwt_revocations_ready(ngx_http_request_t *r);
/* the revocation metrics in Prometheus text at p, up to last; p if none */
u_char *ngx_http_encore_jwt_revocation_metrics(ngx_http_request_t *r,
    u_char *p, u_char *last);

#define NGX_HTTP_ENCORE_JWT_REVOCATION_METRICS_LEN  1024


#endif /* _NGX_HTTP_ENCORE_JWT_H_INCLUDED_ */
