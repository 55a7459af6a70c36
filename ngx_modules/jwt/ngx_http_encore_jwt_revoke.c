
/*
 * Copyright (C) Encore
 *
 * Revocation zone: the table of encore_revoke.h (subjects and sessions
 * whose tokens issued before a time are refused) in a shared memory zone.
 * Token checks, on every verified request, take the zone's reader-writer
 * spinlock shared: one rbtree-free hash lookup per key, no allocation, no
 * write to shared memory but the lock word.  The agent's posts take it
 * exclusively while they apply a parsed batch, which cannot fail.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_encore_jwt.h"


ngx_int_t
ngx_http_encore_jwt_revoke_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_encore_jwt_revoke_t  *orz = data;

    u_char                        *p;
    size_t                         size, len;
    uint32_t                       rnd[2];
    ngx_http_encore_jwt_revoke_t  *rz;

    rz = shm_zone->data;

    if (orz) {
        /* reload with the same name and size: keep every revocation */
        rz->sh = orz->sh;
        rz->shpool = orz->shpool;
        rz->table = orz->table;
        return NGX_OK;
    }

    rz->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        rz->sh = rz->shpool->data;
        return encore_revoke_attach(&rz->table, rz->sh->mem) == 0
               ? NGX_OK : NGX_ERROR;
    }

    rz->sh = ngx_slab_calloc(rz->shpool,
                             sizeof(ngx_http_encore_jwt_revoke_sh_t));
    if (rz->sh == NULL) {
        return NGX_ERROR;
    }

    rz->shpool->data = rz->sh;

    len = sizeof(" in encore_jwt_revocation_zone \"\"")
          + shm_zone->shm.name.len;

    rz->shpool->log_ctx = ngx_slab_alloc(rz->shpool, len);
    if (rz->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(rz->shpool->log_ctx, " in encore_jwt_revocation_zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* the search below may fail a few times: not worth a log line */
    rz->shpool->log_nomem = 0;

    /* the table takes every free page left */
    for (size = rz->shpool->pfree * ngx_pagesize; size; size -= ngx_pagesize)
    {
        rz->sh->mem = ngx_slab_alloc(rz->shpool, size);

        if (rz->sh->mem) {
            break;
        }
    }

    if (rz->sh->mem == NULL
        || encore_revoke_init(&rz->table, rz->sh->mem, size) != 0)
    {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "encore_jwt_revocation_zone \"%V\" is too small",
                      &shm_zone->shm.name);
        return NGX_ERROR;
    }

    /*
     * an id of this zone's life: the agent replays its window when the
     * id it is answered with changes (nginx restarted, the zone is empty)
     */
    rnd[0] = (uint32_t) ngx_random();
    rnd[1] = (uint32_t) ngx_time() ^ (uint32_t) ngx_random();
    p = ngx_hex_dump(rz->sh->id, (u_char *) rnd, 8);
    (void) p;

    ngx_log_error(NGX_LOG_NOTICE, shm_zone->shm.log, 0,
                  "encore_jwt_revocation_zone \"%V\": %uD entries at most",
                  &shm_zone->shm.name, rz->table.hdr->max);

    return NGX_OK;
}


ngx_uint_t
ngx_http_encore_jwt_revoke_check(ngx_shm_zone_t *shm_zone,
    const encore_claims_facts_t *facts, time_t now)
{
    ngx_uint_t                     cause;
    ngx_http_encore_jwt_revoke_t  *rz;

    if (!facts->has_iat || !(facts->has_sub_id || facts->has_sid_id)) {
        return 0;
    }

    rz = shm_zone->data;

    ngx_rwlock_rlock(&rz->sh->lock);

    cause = encore_revoke_check(&rz->table,
                                facts->has_sub_id ? facts->sub_id : NULL,
                                facts->has_sid_id ? facts->sid_id : NULL,
                                facts->iat, now);

    ngx_rwlock_unlock(&rz->sh->lock);

    if (cause) {
        (void) ngx_atomic_fetch_add(&rz->sh->revoked, 1);
    }

    return cause;
}


void
ngx_http_encore_jwt_revoke_apply(ngx_shm_zone_t *shm_zone,
    const encore_revoke_batch_t *b, time_t ttl, int64_t now_ms)
{
    time_t                         now;
    ngx_uint_t                     i;
    encore_revoke_item_t          *it;
    ngx_http_encore_jwt_revoke_t  *rz;

    rz = shm_zone->data;
    now = (time_t) (now_ms / 1000);

    ngx_rwlock_wlock(&rz->sh->lock);

    encore_revoke_expire(&rz->table, now);

    for (i = 0; i < b->nitems; i++) {
        it = &b->items[i];

        if (it->has_sid) {
            encore_revoke_put(&rz->table, ENCORE_REVOKE_SID, it->sid,
                              it->not_before, it->cause, ttl, now);

        } else {
            encore_revoke_put(&rz->table, ENCORE_REVOKE_SUB, it->sub,
                              it->not_before, it->cause, ttl, now);
        }
    }

    rz->table.hdr->last_post_ms = now_ms;
    rz->table.hdr->through_ms = b->through_ms;
    rz->table.hdr->replayed = b->replayed;

    ngx_rwlock_unlock(&rz->sh->lock);
}


void
ngx_http_encore_jwt_revoke_state(ngx_shm_zone_t *shm_zone,
    ngx_http_encore_jwt_revoke_state_t *st)
{
    ngx_http_encore_jwt_revoke_t  *rz;

    rz = shm_zone->data;

    ngx_rwlock_rlock(&rz->sh->lock);

    st->entries = rz->table.hdr->count;
    st->evictions = rz->table.hdr->evictions;
    st->last_post_ms = rz->table.hdr->last_post_ms;
    st->through_ms = rz->table.hdr->through_ms;
    st->replayed = rz->table.hdr->replayed;

    ngx_rwlock_unlock(&rz->sh->lock);

    st->revoked = rz->sh->revoked;
}
