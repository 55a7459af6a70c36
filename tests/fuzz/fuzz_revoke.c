/*
 * libFuzzer harness for the revocation feed: the parser of the agent's
 * bodies (POST /internal/revocations) and the table it fills.  A body
 * that parses is applied to a small table (so that it fills, evicts and
 * expires), and the table's invariants are checked: every entry found
 * under its key, heap order by expiry, heap positions and the count
 * consistent.  Any break aborts.
 *
 *   clang -fsanitize=fuzzer,address -g -O1 -I ngx_modules/jwt \
 *       tests/fuzz/fuzz_revoke.c ngx_modules/jwt/encore_revoke.c \
 *       ngx_modules/jwt/encore_jws.c ngx_modules/jwt/encore_jwks.c \
 *       ngx_modules/jwt/encore_flat.c \
 *       -ljansson -lcrypto -o build-fuzz/fuzz_revoke
 *
 * auto/fuzz (make fuzz) builds it from this line:
 */
/* fuzz-sources: ngx_modules/jwt/encore_revoke.c ngx_modules/jwt/encore_jws.c ngx_modules/jwt/encore_jwks.c ngx_modules/jwt/encore_flat.c */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "encore_revoke.h"


/* file-scope state is the fuzzer's, not Encore's */
static encore_revoke_item_t  fuzz_items[ENCORE_REVOKE_BATCH_MAX];
static uint64_t              fuzz_mem[(sizeof(encore_revoke_hdr_t)
                                       + 64 * (sizeof(encore_revoke_entry_t)
                                               + sizeof(uint32_t))) / 8 + 1];


static void
fuzz_check(const encore_revoke_t *t)
{
    uint32_t                      i, used, c;
    const encore_revoke_entry_t  *e;

    used = 0;

    for (i = 0; i < t->hdr->nslots; i++) {
        e = &t->slots[i];

        if (e->kind == 0) {
            continue;
        }

        used++;

        if (e->heap >= t->hdr->count || t->heap[e->heap] != i
            || encore_revoke_find(t, e->kind, e->id, INT64_MIN) != e
            || e->cause == 0 || e->cause > ENCORE_REVOKE_CAUSE_MAX)
        {
            abort();
        }
    }

    if (used != t->hdr->count || t->hdr->count > t->hdr->max) {
        abort();
    }

    for (i = 1; i < t->hdr->count; i++) {
        c = (i - 1) / 2;

        if (t->slots[t->heap[c]].expires > t->slots[t->heap[i]].expires) {
            abort();
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                     ahead;
    size_t                  i;
    long long               now;
    const char             *error;
    encore_revoke_t         t;
    encore_revoke_batch_t   b;
    encore_revoke_item_t   *it;

    b.items = fuzz_items;
    error = NULL;

    if (encore_revoke_parse(&b, data, size, &error) != 0) {
        if (error == NULL || b.nitems != 0) {
            abort();
        }

        return 0;
    }

    if (b.nitems > ENCORE_REVOKE_BATCH_MAX) {
        abort();
    }

    if (encore_revoke_init(&t, fuzz_mem, sizeof(fuzz_mem)) != 0) {
        abort();
    }

    /* "now" moves with the input, so that some entries expire */
    now = b.through_ms / 1000;

    /* the edge's clock bound: refused exactly when an entry is ahead */
    ahead = 0;
    for (i = 0; i < b.nitems; i++) {
        ahead |= b.items[i].not_before > now + ENCORE_REVOKE_AHEAD_MAX;
    }
    if ((encore_revoke_bound(&b, now, &error) != 0) != ahead) {
        abort();
    }

    for (i = 0; i < b.nitems; i++) {
        it = &b.items[i];

        if (it->cause == 0 || it->cause > ENCORE_REVOKE_CAUSE_MAX
            || it->not_before < 0 || it->not_before > ENCORE_REVOKE_TIME_MAX)
        {
            abort();
        }

        encore_revoke_put(&t, it->has_sid ? ENCORE_REVOKE_SID
                                          : ENCORE_REVOKE_SUB,
                          it->has_sid ? it->sid : it->sub, it->not_before,
                          it->cause, 960, now);

        if (i % 7 == 0) {
            now += 60;
            encore_revoke_expire(&t, now);
        }

        (void) encore_revoke_check(&t, it->sub, it->has_sid ? it->sid : NULL,
                                   it->not_before - 1, now);
    }

    fuzz_check(&t);

    return 0;
}
