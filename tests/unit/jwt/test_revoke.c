/*
 * Unit tests: ngx_modules/jwt/encore_revoke.c, the edge's revocation table
 * (lookup, the larger not_before kept, expiry, eviction of the entries
 * closest to expiry, the hash table's and heap's invariants under random
 * operations) and the all-or-nothing parser of the agent's bodies.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../../ngx_modules/jwt/encore_revoke.h"


#define TTL  960


/* a table over malloc'd memory of size bytes */
static encore_revoke_t *
table(size_t size)
{
    void             *mem;
    encore_revoke_t  *t;

    t = malloc(sizeof(encore_revoke_t));
    mem = aligned_alloc(8, (size + 7) / 8 * 8);
    assert_non_null(t);
    assert_non_null(mem);
    assert_int_equal(encore_revoke_init(t, mem, size), 0);

    return t;
}


static void
table_free(encore_revoke_t *t)
{
    free(t->hdr);
    free(t);
}


/* bytes of a table of exactly n slots */
static size_t
slots_size(size_t n)
{
    return sizeof(encore_revoke_hdr_t)
           + n * (sizeof(encore_revoke_entry_t) + sizeof(uint32_t));
}


static void
id_of(unsigned char *id, uint32_t n)
{
    uint32_t  x;
    size_t    i;

    /* distinct ids, some with equal halves, spread like UUIDs are */
    x = n * 2654435761u + 12345;

    for (i = 0; i < 16; i++) {
        x = x * 1103515245u + 12345;
        id[i] = (unsigned char) (x >> 16);
    }

    memcpy(id + 12, &n, 4);
}


/* hash and heap invariants, and every entry found under its key */
static void
check_invariants(const encore_revoke_t *t)
{
    uint32_t                      i, used, l, r;
    const encore_revoke_entry_t  *e, *f;

    used = 0;

    for (i = 0; i < t->hdr->nslots; i++) {
        e = &t->slots[i];

        if (e->kind == 0) {
            continue;
        }

        used++;
        assert_true(e->heap < t->hdr->count);
        assert_int_equal(t->heap[e->heap], i);

        f = encore_revoke_find(t, e->kind, e->id, INT64_MIN);
        assert_ptr_equal(f, e);
    }

    assert_int_equal(used, t->hdr->count);
    assert_true(t->hdr->count <= t->hdr->max);

    for (i = 0; i < t->hdr->count; i++) {
        l = 2 * i + 1;
        r = l + 1;

        if (l < t->hdr->count) {
            assert_true(t->slots[t->heap[i]].expires
                        <= t->slots[t->heap[l]].expires);
        }

        if (r < t->hdr->count) {
            assert_true(t->slots[t->heap[i]].expires
                        <= t->slots[t->heap[r]].expires);
        }
    }
}


static void
test_uuid(void **state)
{
    unsigned char  id[16];

    static const unsigned char  want[16] = {
        0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
        0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10
    };

    assert_int_equal(encore_revoke_uuid(id,
                         "01234567-89ab-cdef-fedc-ba9876543210", 36), 0);
    assert_memory_equal(id, want, 16);
    assert_int_equal(encore_revoke_uuid(id,
                         "01234567-89AB-CDEF-FEDC-BA9876543210", 36), 0);
    assert_memory_equal(id, want, 16);

    assert_int_equal(encore_revoke_uuid(id,
                         "01234567-89ab-cdef-fedc-ba987654321", 35), -1);
    assert_int_equal(encore_revoke_uuid(id,
                         "01234567-89ab-cdef-fedc-ba98765432100", 37), -1);
    assert_int_equal(encore_revoke_uuid(id,
                         "0123456789ab-cdef-fedc-ba9876543210-", 36), -1);
    assert_int_equal(encore_revoke_uuid(id,
                         "01234567-89ab-cdef-fedc-ba987654321g", 36), -1);
    assert_int_equal(encore_revoke_uuid(id,
                         "01234567-89ab-cdef-fedc+ba9876543210", 36), -1);
    assert_int_equal(encore_revoke_uuid(id,
                         "{1234567-89ab-cdef-fedc-ba9876543210", 36), -1);
    assert_int_equal(encore_revoke_uuid(id, "", 0), -1);
}


static void
test_check(void **state)
{
    unsigned char     a[16], b[16], s[16];
    encore_revoke_t  *t;

    t = table(64 * 1024);
    id_of(a, 1);
    id_of(b, 2);
    id_of(s, 3);

    /* nothing revoked */
    assert_int_equal(encore_revoke_check(t, a, s, 1000, 1000), 0);

    /* a subject: tokens issued before not_before are refused */
    encore_revoke_put(t, ENCORE_REVOKE_SUB, a, 1001,
                      ENCORE_REVOKE_PASSWORD_CHANGED, TTL, 1000);
    assert_int_equal(encore_revoke_check(t, a, NULL, 1000, 1000),
                     ENCORE_REVOKE_PASSWORD_CHANGED);
    assert_int_equal(encore_revoke_check(t, a, NULL, 0, 1000),
                     ENCORE_REVOKE_PASSWORD_CHANGED);
    /* a login in the same second gets iat = not_before: it passes */
    assert_int_equal(encore_revoke_check(t, a, NULL, 1001, 1000), 0);
    assert_int_equal(encore_revoke_check(t, a, NULL, 1002, 1000), 0);
    /* another subject, or the same id as a session, is not revoked */
    assert_int_equal(encore_revoke_check(t, b, NULL, 1000, 1000), 0);
    assert_int_equal(encore_revoke_check(t, b, a, 1000, 1000), 0);
    assert_int_equal(encore_revoke_check(t, NULL, NULL, 1000, 1000), 0);

    /* a session: only tokens of that sid */
    encore_revoke_put(t, ENCORE_REVOKE_SID, s, 1001, ENCORE_REVOKE_LOGOUT,
                      TTL, 1000);
    assert_int_equal(encore_revoke_check(t, b, s, 1000, 1000),
                     ENCORE_REVOKE_LOGOUT);
    assert_int_equal(encore_revoke_check(t, b, NULL, 1000, 1000), 0);
    assert_int_equal(encore_revoke_check(t, s, NULL, 1000, 1000), 0);
    assert_int_equal(encore_revoke_check(t, b, s, 1001, 1000), 0);

    /* the subject's verdict comes first */
    assert_int_equal(encore_revoke_check(t, a, s, 1000, 1000),
                     ENCORE_REVOKE_PASSWORD_CHANGED);

    assert_int_equal(t->hdr->count, 2);
    check_invariants(t);
    table_free(t);
}


static void
test_max_not_before(void **state)
{
    unsigned char                 a[16];
    encore_revoke_t              *t;
    const encore_revoke_entry_t  *e;

    t = table(64 * 1024);
    id_of(a, 7);

    encore_revoke_put(t, ENCORE_REVOKE_SUB, a, 2000,
                      ENCORE_REVOKE_DISABLED, TTL, 1500);
    /* an older event replayed after a newer one changes nothing */
    encore_revoke_put(t, ENCORE_REVOKE_SUB, a, 1800,
                      ENCORE_REVOKE_ROLE_CHANGED, TTL, 1500);
    encore_revoke_put(t, ENCORE_REVOKE_SUB, a, 2000,
                      ENCORE_REVOKE_ROLE_CHANGED, TTL, 1500);

    e = encore_revoke_find(t, ENCORE_REVOKE_SUB, a, 1500);
    assert_non_null(e);
    assert_int_equal(e->not_before, 2000);
    assert_int_equal(e->expires, 2000 + TTL);
    assert_int_equal(e->cause, ENCORE_REVOKE_DISABLED);

    /* a later one raises it, with its cause and its expiry */
    encore_revoke_put(t, ENCORE_REVOKE_SUB, a, 2100,
                      ENCORE_REVOKE_DELETED, TTL, 1500);
    e = encore_revoke_find(t, ENCORE_REVOKE_SUB, a, 1500);
    assert_int_equal(e->not_before, 2100);
    assert_int_equal(e->expires, 2100 + TTL);
    assert_int_equal(e->cause, ENCORE_REVOKE_DELETED);
    assert_int_equal(encore_revoke_check(t, a, NULL, 2099, 1500),
                     ENCORE_REVOKE_DELETED);

    assert_int_equal(t->hdr->count, 1);
    check_invariants(t);
    table_free(t);
}


static void
test_expiry(void **state)
{
    uint32_t          i;
    unsigned char     a[16], b[16], c[16];
    encore_revoke_t  *t;

    t = table(64 * 1024);
    id_of(a, 1);
    id_of(b, 2);
    id_of(c, 3);

    encore_revoke_put(t, ENCORE_REVOKE_SUB, a, 1000, 1, TTL, 1000);
    encore_revoke_put(t, ENCORE_REVOKE_SUB, b, 1010, 1, TTL, 1000);

    /* refused until not_before + ttl, then no entry (and no token of
       before not_before is still valid anyway) */
    assert_int_equal(encore_revoke_check(t, a, NULL, 999, 1000 + TTL - 1),
                     1);
    assert_int_equal(encore_revoke_check(t, a, NULL, 999, 1000 + TTL), 0);
    assert_null(encore_revoke_find(t, ENCORE_REVOKE_SUB, a, 1000 + TTL));
    assert_non_null(encore_revoke_find(t, ENCORE_REVOKE_SUB, b, 1000 + TTL));

    /* lookups do not remove it; expire() and the next put() do */
    assert_int_equal(t->hdr->count, 2);
    encore_revoke_expire(t, 1000 + TTL);
    assert_int_equal(t->hdr->count, 1);
    assert_int_equal(t->hdr->expired, 1);
    check_invariants(t);

    encore_revoke_put(t, ENCORE_REVOKE_SUB, c, 2000, 1, TTL, 1010 + TTL);
    assert_int_equal(t->hdr->count, 1);
    assert_int_equal(t->hdr->expired, 2);
    assert_null(encore_revoke_find(t, ENCORE_REVOKE_SUB, b, 0));

    /* an event older than the ttl is not kept at all */
    encore_revoke_put(t, ENCORE_REVOKE_SUB, a, 100, 1, TTL, 100 + TTL);
    assert_null(encore_revoke_find(t, ENCORE_REVOKE_SUB, a, 0));
    assert_int_equal(t->hdr->count, 1);

    /* many at once: all of them at the same second */
    for (i = 0; i < 100; i++) {
        id_of(a, 100 + i);
        encore_revoke_put(t, ENCORE_REVOKE_SID, a, 3000 + i % 10, 1, TTL,
                          2500);
    }

    assert_int_equal(t->hdr->count, 101);
    encore_revoke_expire(t, 3005 + TTL);
    assert_int_equal(t->hdr->count, 40);
    check_invariants(t);

    table_free(t);
}


static void
test_eviction_order(void **state)
{
    uint32_t          i, max, order[64];
    unsigned char     id[16];
    encore_revoke_t  *t;

    t = table(slots_size(64));
    assert_int_equal(t->hdr->nslots, 64);
    max = t->hdr->max;
    assert_int_equal(max, 32);

    /* fill it with expiries in a shuffled order: 5000 + 10 k */
    for (i = 0; i < max; i++) {
        order[i] = (i * 29) % max;
    }

    for (i = 0; i < max; i++) {
        id_of(id, order[i]);
        encore_revoke_put(t, ENCORE_REVOKE_SUB, id, 5000 + 10 * order[i], 1,
                          TTL, 1000);
        check_invariants(t);
    }

    assert_int_equal(t->hdr->count, max);
    assert_int_equal(t->hdr->evictions, 0);

    /* one more, expiring later than all: the earliest go, one by one */
    for (i = 0; i < 5; i++) {
        id_of(id, 1000 + i);
        encore_revoke_put(t, ENCORE_REVOKE_SUB, id, 9000 + i, 2, TTL, 1000);

        assert_int_equal(t->hdr->count, max);
        assert_int_equal(t->hdr->evictions, i + 1);

        id_of(id, i);
        assert_null(encore_revoke_find(t, ENCORE_REVOKE_SUB, id, 1000));
        id_of(id, i + 1);
        assert_non_null(encore_revoke_find(t, ENCORE_REVOKE_SUB, id, 1000));
        check_invariants(t);
    }

    /* one expiring before every entry left is itself the one dropped */
    id_of(id, 2000);
    encore_revoke_put(t, ENCORE_REVOKE_SUB, id, 5001, 3, TTL, 1000);
    assert_int_equal(t->hdr->evictions, 6);
    assert_null(encore_revoke_find(t, ENCORE_REVOKE_SUB, id, 1000));
    id_of(id, 5);
    assert_non_null(encore_revoke_find(t, ENCORE_REVOKE_SUB, id, 1000));

    /* raising a present entry evicts nothing */
    encore_revoke_put(t, ENCORE_REVOKE_SUB, id, 9999, 4, TTL, 1000);
    assert_int_equal(t->hdr->evictions, 6);
    assert_int_equal(t->hdr->count, max);
    check_invariants(t);

    /* once time passes, expired entries make room first: no eviction */
    id_of(id, 3000);
    encore_revoke_put(t, ENCORE_REVOKE_SUB, id, 9500, 1, TTL, 5060 + TTL);
    assert_int_equal(t->hdr->evictions, 6);
    assert_true(t->hdr->expired > 0);
    check_invariants(t);

    table_free(t);
}


/*
 * Random puts, expiries and checks against a plain array: the same
 * verdicts, and the invariants after every step.  A table large enough
 * never to evict, so the reference need not model eviction; collisions
 * and wrap-around come from a small number of slots.
 */
static void
test_random_against_reference(void **state)
{
    uint32_t          i, k, n, seed;
    long long         now, nb[200], exp;
    unsigned          kind, cause[200];
    unsigned char     id[16];
    encore_revoke_t  *t;

    const encore_revoke_entry_t  *e;

    t = table(slots_size(420));
    memset(nb, 0, sizeof(nb));
    memset(cause, 0, sizeof(cause));
    seed = 42;
    now = 10000;

    for (n = 0; n < 20000; n++) {
        seed = seed * 1103515245u + 12345;
        k = (seed >> 8) % 200;
        kind = (k & 1) ? ENCORE_REVOKE_SID : ENCORE_REVOKE_SUB;
        id_of(id, k / 2);

        switch ((seed >> 20) % 8) {

        case 0:
            now += (seed >> 24) % 40;
            encore_revoke_expire(t, now);
            break;

        default:
            exp = now - 100 + (long long) ((seed >> 12) % 300);
            encore_revoke_put(t, kind, id, exp, 1 + k % 6, TTL, now);

            if (exp + TTL > now && (nb[k] + TTL <= now || exp > nb[k])) {
                nb[k] = exp;
                cause[k] = 1 + k % 6;
            }
        }

        assert_int_equal(t->hdr->evictions, 0);

        if (n % 97 == 0) {
            check_invariants(t);
        }

        for (i = 0; i < 200; i += 37) {
            id_of(id, i / 2);
            kind = (i & 1) ? ENCORE_REVOKE_SID : ENCORE_REVOKE_SUB;
            e = encore_revoke_find(t, kind, id, now);

            if (nb[i] == 0 || nb[i] + TTL <= now) {
                assert_null(e);

            } else {
                assert_non_null(e);
                assert_int_equal(e->not_before, nb[i]);
                assert_int_equal(e->cause, cause[i]);
            }
        }
    }

    check_invariants(t);
    table_free(t);
}


/* the same with eviction: the entries left are always the latest */
static void
test_random_eviction(void **state)
{
    uint32_t          n, seed, i;
    int64_t           min_left, max_gone;
    unsigned char     id[16];
    encore_revoke_t  *t;

    t = table(slots_size(40));
    seed = 7;
    max_gone = 0;

    for (n = 0; n < 5000; n++) {
        seed = seed * 1103515245u + 12345;
        id_of(id, n);
        encore_revoke_put(t, ENCORE_REVOKE_SUB, id,
                          100000 + (seed >> 8) % 100000, 1, TTL, 1000);
        check_invariants(t);
    }

    assert_int_equal(t->hdr->count, t->hdr->max);
    assert_int_equal(t->hdr->evictions, 5000 - t->hdr->max);

    /* every entry kept expires no sooner than any entry dropped */
    min_left = INT64_MAX;

    for (i = 0; i < t->hdr->nslots; i++) {
        if (t->slots[i].kind && t->slots[i].expires < min_left) {
            min_left = t->slots[i].expires;
        }
    }

    seed = 7;

    for (n = 0; n < 5000; n++) {
        seed = seed * 1103515245u + 12345;
        id_of(id, n);

        if (encore_revoke_find(t, ENCORE_REVOKE_SUB, id, 1000) == NULL) {
            if (100000 + (seed >> 8) % 100000 + TTL > max_gone) {
                max_gone = 100000 + (seed >> 8) % 100000 + TTL;
            }
        }
    }

    assert_true(max_gone <= min_left);
    table_free(t);
}


static void
test_attach(void **state)
{
    unsigned char     a[16];
    encore_revoke_t  *t, u;

    t = table(64 * 1024);
    id_of(a, 1);
    encore_revoke_put(t, ENCORE_REVOKE_SUB, a, 1001, 1, TTL, 1000);

    assert_int_equal(encore_revoke_attach(&u, t->hdr), 0);
    assert_int_equal(encore_revoke_check(&u, a, NULL, 1000, 1000), 1);

    t->hdr->magic = 0;
    assert_int_equal(encore_revoke_attach(&u, t->hdr), -1);

    table_free(t);

    /* too small for a table */
    assert_int_equal(encore_revoke_init(&u, a, 16), -1);
}


/* ---- the agent's bodies ------------------------------------------------- */

#define SUB  "\"sub\":\"01234567-89ab-cdef-fedc-ba9876543210\""
#define SID  "\"sid\":\"11111111-2222-4333-8444-555555555555\""
#define TAIL "\"replayed\":true,\"through\":1764640000123"


static encore_revoke_item_t  items[ENCORE_REVOKE_BATCH_MAX];


static int
parse(const char *body, encore_revoke_batch_t *b, const char **err)
{
    b->items = items;
    *err = NULL;

    return encore_revoke_parse(b, body, strlen(body), err);
}


static void
bad(const char *body, const char *why)
{
    const char             *err;
    encore_revoke_batch_t   b;

    assert_int_equal(parse(body, &b, &err), -1);
    assert_int_equal(b.nitems, 0);

    if (why) {
        assert_string_equal(err, why);
    }
}


static void
test_parse(void **state)
{
    char                   *big, *p;
    size_t                  i;
    const char             *err;
    encore_revoke_batch_t   b;

    assert_int_equal(parse("{\"revocations\":[{" SUB ",\"not_before\":"
                           "1764640000,\"cause\":\"password_changed\"},{"
                           SUB "," SID ",\"not_before\":1764640001,"
                           "\"cause\":\"logout\"}]," TAIL "}", &b, &err), 0);
    assert_int_equal(b.nitems, 2);
    assert_true(b.replayed);
    assert_int_equal(b.through_ms, 1764640000123LL);
    assert_false(items[0].has_sid);
    assert_int_equal(items[0].not_before, 1764640000);
    assert_int_equal(items[0].cause, ENCORE_REVOKE_PASSWORD_CHANGED);
    assert_int_equal(items[0].sub[0], 0x01);
    assert_true(items[1].has_sid);
    assert_int_equal(items[1].sid[0], 0x11);
    assert_int_equal(items[1].cause, ENCORE_REVOKE_LOGOUT);

    /* a heartbeat; members in any order; unknown members ignored */
    assert_int_equal(parse("{\"through\":0,\"replayed\":false,"
                           "\"revocations\":[],\"agent\":\"x\"}", &b, &err),
                     0);
    assert_int_equal(b.nitems, 0);
    assert_false(b.replayed);

    /* every cause */
    for (i = 1; i <= ENCORE_REVOKE_CAUSE_MAX; i++) {
        char  body[512];

        snprintf(body, sizeof(body), "{\"revocations\":[{" SUB ","
                 "\"not_before\":1,\"cause\":\"%s\"}]," TAIL "}",
                 encore_revoke_cause_name(i));
        assert_int_equal(parse(body, &b, &err), 0);
        assert_int_equal(items[0].cause, i);
    }

    assert_null(encore_revoke_cause_name(0));
    assert_null(encore_revoke_cause_name(ENCORE_REVOKE_CAUSE_MAX + 1));

    /* not JSON, not an object, duplicates, nesting */
    bad("", "body is not a JSON object");
    bad("[]", "body is not a JSON object");
    bad("{\"revocations\":[]," TAIL "", "body is not a JSON object");
    bad("{\"revocations\":[],\"revocations\":[]," TAIL "}",
        "body is not a JSON object");
    bad("{\"revocations\":[]," TAIL "}garbage", "body is not a JSON object");

    /* the envelope */
    bad("{" TAIL "}", "revocations missing");
    bad("{\"revocations\":{}," TAIL "}", "revocations is not an array");
    bad("{\"revocations\":null," TAIL "}", "revocations is not an array");
    bad("{\"revocations\":[],\"through\":1}", "replayed missing");
    bad("{\"revocations\":[],\"replayed\":1,\"through\":1}",
        "replayed is not a boolean");
    bad("{\"revocations\":[],\"replayed\":\"true\",\"through\":1}",
        "replayed is not a boolean");
    bad("{\"revocations\":[],\"replayed\":true}", "through missing");
    bad("{\"revocations\":[],\"replayed\":true,\"through\":-1}",
        "through is not an integer of milliseconds");
    bad("{\"revocations\":[],\"replayed\":true,\"through\":1.5}",
        "through is not an integer of milliseconds");
    bad("{\"revocations\":[],\"replayed\":true,\"through\":\"1\"}",
        "through is not an integer of milliseconds");

    /* an entry */
    bad("{\"revocations\":[1]," TAIL "}", "a revocation is not an object");
    bad("{\"revocations\":[{\"not_before\":1,\"cause\":\"logout\"}]," TAIL
        "}", "sub missing");
    bad("{\"revocations\":[{\"sub\":\"x\",\"not_before\":1,"
        "\"cause\":\"logout\"}]," TAIL "}", "sub is not a UUID");
    bad("{\"revocations\":[{\"sub\":42,\"not_before\":1,"
        "\"cause\":\"logout\"}]," TAIL "}", "sub is not a UUID");
    bad("{\"revocations\":[{" SUB ",\"sid\":null,\"not_before\":1,"
        "\"cause\":\"logout\"}]," TAIL "}", "sid is not a UUID");
    bad("{\"revocations\":[{" SUB ",\"sid\":\"01234567-89ab-cdef-fedc-"
        "ba987654321\",\"not_before\":1,\"cause\":\"logout\"}]," TAIL "}",
        "sid is not a UUID");
    bad("{\"revocations\":[{" SUB ",\"cause\":\"logout\"}]," TAIL "}",
        "not_before missing");
    bad("{\"revocations\":[{" SUB ",\"not_before\":\"1\","
        "\"cause\":\"logout\"}]," TAIL "}",
        "not_before is not an integer NumericDate");
    bad("{\"revocations\":[{" SUB ",\"not_before\":1.5,"
        "\"cause\":\"logout\"}]," TAIL "}",
        "not_before is not an integer NumericDate");
    bad("{\"revocations\":[{" SUB ",\"not_before\":-1,"
        "\"cause\":\"logout\"}]," TAIL "}",
        "not_before is not an integer NumericDate");
    bad("{\"revocations\":[{" SUB ",\"not_before\":253402300800,"
        "\"cause\":\"logout\"}]," TAIL "}",
        "not_before is not an integer NumericDate");
    bad("{\"revocations\":[{" SUB ",\"not_before\":1}]," TAIL "}",
        "cause missing");
    bad("{\"revocations\":[{" SUB ",\"not_before\":1,\"cause\":\"Logout\"}],"
        TAIL "}", "cause unknown");
    bad("{\"revocations\":[{" SUB ",\"not_before\":1,\"cause\":1}]," TAIL
        "}", "cause unknown");

    /* one bad entry after good ones: nothing at all */
    bad("{\"revocations\":[{" SUB ",\"not_before\":1,\"cause\":\"logout\"},"
        "{" SUB ",\"not_before\":1,\"cause\":\"nope\"}]," TAIL "}",
        "cause unknown");

    /* 1000 entries, and one more */
    big = malloc(1001 * 128 + 256);
    assert_non_null(big);

    for (i = 1000; i <= 1001; i++) {
        size_t  k;

        p = big + sprintf(big, "{\"revocations\":[");

        for (k = 0; k < i; k++) {
            p += sprintf(p, "%s{" SUB ",\"not_before\":%zu,"
                         "\"cause\":\"logout\"}", k ? "," : "", k);
        }

        sprintf(p, "]," TAIL "}");

        if (i == 1000) {
            assert_int_equal(parse(big, &b, &err), 0);
            assert_int_equal(b.nitems, 1000);
            assert_int_equal(items[999].not_before, 999);

        } else {
            bad(big, "more than 1000 revocations");
        }
    }

    free(big);
}


/* not_before at most ENCORE_REVOKE_AHEAD_MAX after the edge's now */
static void
test_bound(void **state)
{
    const char             *err;
    encore_revoke_batch_t   b;

    (void) state;

    assert_int_equal(parse("{\"revocations\":[{" SUB ",\"not_before\":"
                           "1764640000,\"cause\":\"logout\"},{" SUB ","
                           SID ",\"not_before\":1764640060,"
                           "\"cause\":\"logout\"}]," TAIL "}", &b, &err), 0);
    assert_int_equal(b.nitems, 2);

    /* now + 60 is taken, now + 61 is not */
    err = NULL;
    assert_int_equal(encore_revoke_bound(&b, 1764640000, &err), 0);
    assert_null(err);
    assert_int_equal(encore_revoke_bound(&b, 1764639999, &err), -1);
    assert_non_null(err);

    /* year 9999 is far ahead of any clock of ours */
    assert_int_equal(parse("{\"revocations\":[{" SUB ",\"not_before\":"
                           "253402300799,\"cause\":\"logout\"}]," TAIL "}",
                           &b, &err), 0);
    assert_int_equal(encore_revoke_bound(&b, 1764640000, &err), -1);

    /* an empty batch (a heartbeat) is always within bounds */
    assert_int_equal(parse("{\"revocations\":[]," TAIL "}", &b, &err), 0);
    assert_int_equal(encore_revoke_bound(&b, 0, &err), 0);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_uuid),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_max_not_before),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_eviction_order),
        cmocka_unit_test(test_random_against_reference),
        cmocka_unit_test(test_random_eviction),
        cmocka_unit_test(test_attach),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_bound),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
