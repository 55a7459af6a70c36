
/*
 * Copyright (C) Encore
 */


#ifndef _NGX_HTTP_ENCORE_JWT_H_INCLUDED_
#define _NGX_HTTP_ENCORE_JWT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "encore_claims.h"


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


#endif /* _NGX_HTTP_ENCORE_JWT_H_INCLUDED_ */
