
/*
 * Copyright (C) Encore
 *
 * Verified-token cache in a shared memory zone, after limit_req's: an
 * rbtree of SHA-256(entry version, key set generation, token) with an LRU
 * queue.  An entry means "this token's signature verified under this key
 * set" and keeps the token's algorithm and claims facts (encore_claims.h)
 * so that a hit needs no decoding; it expires with the token, and time and
 * claim checks run on every request, against the facts.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_encore_jwt.h"


typedef struct {
    u_char                       color;
    u_char                       alg;
    u_char                       pad[2];
    uint32_t                     facts_len;
    ngx_queue_t                  queue;
    time_t                       expires;
    u_char                       hash[NGX_HTTP_ENCORE_JWT_HASH_LEN];
    u_char                       facts[1];    /* facts_len bytes */
} ngx_http_encore_jwt_cache_node_t;


struct ngx_http_encore_jwt_cache_sh_s {
    ngx_rbtree_t                 rbtree;
    ngx_rbtree_node_t            sentinel;
    ngx_queue_t                  queue;
};


static void ngx_http_encore_jwt_cache_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_rbtree_node_t *ngx_http_encore_jwt_cache_find(
    ngx_http_encore_jwt_cache_t *cache, u_char *hash);
static void ngx_http_encore_jwt_cache_expire(
    ngx_http_encore_jwt_cache_t *cache, time_t now, ngx_uint_t force);


#define ngx_http_encore_jwt_cache_data(node)                                 \
    ((ngx_http_encore_jwt_cache_node_t *) &(node)->color)


static void
ngx_http_encore_jwt_cache_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t                **p;
    ngx_http_encore_jwt_cache_node_t  *cn, *cnt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else { /* node->key == temp->key */

            cn = ngx_http_encore_jwt_cache_data(node);
            cnt = ngx_http_encore_jwt_cache_data(temp);

            p = (ngx_memcmp(cn->hash, cnt->hash,
                            NGX_HTTP_ENCORE_JWT_HASH_LEN) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


ngx_int_t
ngx_http_encore_jwt_cache_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_encore_jwt_cache_t  *ocache = data;

    size_t                        len;
    ngx_http_encore_jwt_cache_t  *cache;

    cache = shm_zone->data;

    if (ocache) {
        /* reload: keep the entries; their keys carry the key set's hash */
        cache->sh = ocache->sh;
        cache->shpool = ocache->shpool;
        return NGX_OK;
    }

    cache->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        cache->sh = cache->shpool->data;
        return NGX_OK;
    }

    cache->sh = ngx_slab_alloc(cache->shpool,
                               sizeof(ngx_http_encore_jwt_cache_sh_t));
    if (cache->sh == NULL) {
        return NGX_ERROR;
    }

    cache->shpool->data = cache->sh;

    ngx_rbtree_init(&cache->sh->rbtree, &cache->sh->sentinel,
                    ngx_http_encore_jwt_cache_rbtree_insert);

    ngx_queue_init(&cache->sh->queue);

    len = sizeof(" in encore_jwt_cache_zone \"\"") + shm_zone->shm.name.len;

    cache->shpool->log_ctx = ngx_slab_alloc(cache->shpool, len);
    if (cache->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(cache->shpool->log_ctx, " in encore_jwt_cache_zone \"%V\"%Z",
                &shm_zone->shm.name);

    cache->shpool->log_nomem = 0;

    return NGX_OK;
}


static ngx_rbtree_node_t *
ngx_http_encore_jwt_cache_find(ngx_http_encore_jwt_cache_t *cache,
    u_char *hash)
{
    ngx_int_t                          rc;
    ngx_uint_t                         key;
    ngx_rbtree_node_t                 *node, *sentinel;
    ngx_http_encore_jwt_cache_node_t  *cn;

    key = ((ngx_uint_t) hash[0] << 24) | (hash[1] << 16) | (hash[2] << 8)
          | hash[3];

    node = cache->sh->rbtree.root;
    sentinel = cache->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (key < node->key) {
            node = node->left;
            continue;
        }

        if (key > node->key) {
            node = node->right;
            continue;
        }

        cn = ngx_http_encore_jwt_cache_data(node);

        rc = ngx_memcmp(hash, cn->hash, NGX_HTTP_ENCORE_JWT_HASH_LEN);

        if (rc == 0) {
            return node;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


ngx_int_t
ngx_http_encore_jwt_cache_lookup(ngx_shm_zone_t *shm_zone, u_char *hash,
    time_t now, ngx_uint_t *alg, encore_claims_facts_t *facts)
{
    ngx_int_t                          rc;
    ngx_rbtree_node_t                 *node;
    ngx_http_encore_jwt_cache_t       *cache;
    ngx_http_encore_jwt_cache_node_t  *cn;

    cache = shm_zone->data;
    rc = NGX_DECLINED;

    ngx_shmtx_lock(&cache->shpool->mutex);

    node = ngx_http_encore_jwt_cache_find(cache, hash);

    if (node) {
        cn = ngx_http_encore_jwt_cache_data(node);

        if (cn->expires > now) {
            ngx_queue_remove(&cn->queue);
            ngx_queue_insert_head(&cache->sh->queue, &cn->queue);

            /* copied under the lock: the entry may go once it is released */
            *alg = cn->alg;
            ngx_memcpy(facts, cn->facts, cn->facts_len);
            rc = NGX_OK;

        } else {
            ngx_queue_remove(&cn->queue);
            ngx_rbtree_delete(&cache->sh->rbtree, node);
            ngx_slab_free_locked(cache->shpool, node);
        }
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);

    return rc;
}


void
ngx_http_encore_jwt_cache_store(ngx_shm_zone_t *shm_zone, u_char *hash,
    time_t expires, time_t now, ngx_uint_t alg,
    const encore_claims_facts_t *facts)
{
    size_t                             size;
    ngx_rbtree_node_t                 *node;
    ngx_http_encore_jwt_cache_t       *cache;
    ngx_http_encore_jwt_cache_node_t  *cn;

    if (expires <= now) {
        return;
    }

    cache = shm_zone->data;

    size = offsetof(ngx_rbtree_node_t, color)
           + offsetof(ngx_http_encore_jwt_cache_node_t, facts)
           + encore_claims_facts_size(facts);

    ngx_shmtx_lock(&cache->shpool->mutex);

    if (ngx_http_encore_jwt_cache_find(cache, hash) != NULL) {
        ngx_shmtx_unlock(&cache->shpool->mutex);
        return;
    }

    ngx_http_encore_jwt_cache_expire(cache, now, 0);

    node = ngx_slab_alloc_locked(cache->shpool, size);

    if (node == NULL) {
        ngx_http_encore_jwt_cache_expire(cache, now, 1);

        node = ngx_slab_alloc_locked(cache->shpool, size);
        if (node == NULL) {
            /* a cache miss costs a verification, not an error */
            ngx_shmtx_unlock(&cache->shpool->mutex);
            return;
        }
    }

    node->key = ((ngx_uint_t) hash[0] << 24) | (hash[1] << 16)
                | (hash[2] << 8) | hash[3];

    cn = ngx_http_encore_jwt_cache_data(node);
    cn->expires = expires;
    cn->alg = (u_char) alg;
    cn->facts_len = (uint32_t) encore_claims_facts_size(facts);
    ngx_memcpy(cn->hash, hash, NGX_HTTP_ENCORE_JWT_HASH_LEN);
    ngx_memcpy(cn->facts, facts, cn->facts_len);

    ngx_rbtree_insert(&cache->sh->rbtree, node);
    ngx_queue_insert_head(&cache->sh->queue, &cn->queue);

    ngx_shmtx_unlock(&cache->shpool->mutex);
}


/*
 * Free up to two entries from the LRU end: expired ones, or with force
 * (allocation failed) the least recently used whatever their expiry.
 */
static void
ngx_http_encore_jwt_cache_expire(ngx_http_encore_jwt_cache_t *cache,
    time_t now, ngx_uint_t force)
{
    ngx_uint_t                         n;
    ngx_queue_t                       *q;
    ngx_rbtree_node_t                 *node;
    ngx_http_encore_jwt_cache_node_t  *cn;

    for (n = 0; n < 2; n++) {

        if (ngx_queue_empty(&cache->sh->queue)) {
            return;
        }

        q = ngx_queue_last(&cache->sh->queue);
        cn = ngx_queue_data(q, ngx_http_encore_jwt_cache_node_t, queue);

        if (!force && cn->expires > now) {
            return;
        }

        node = (ngx_rbtree_node_t *)
                   ((u_char *) cn - offsetof(ngx_rbtree_node_t, color));

        ngx_queue_remove(q);
        ngx_rbtree_delete(&cache->sh->rbtree, node);
        ngx_slab_free_locked(cache->shpool, node);
    }
}
