/*
 * Encore: the revocation table and the parser of the agent's bodies.
 */

#include <string.h>

#include <jansson.h>

#include "encore_revoke.h"
#include "encore_jws.h"


#define ENCORE_REVOKE_MAGIC  0x52564b31    /* "RVK1": this layout */


static const char  *encore_revoke_causes[] = {
    NULL,
    "logout",
    "password_changed",
    "refresh_reuse",
    "disabled",
    "role_changed",
    "deleted"
};


static uint32_t
encore_revoke_home(const encore_revoke_t *t, unsigned kind,
    const unsigned char *id)
{
    uint64_t  a, b, h;

    /* UUIDs are random but for version bits (v4) or a time prefix (v7) */
    memcpy(&a, id, 8);
    memcpy(&b, id + 8, 8);

    h = (a ^ (b * 0x9e3779b97f4a7c15ULL) ^ kind) * 0xff51afd7ed558ccdULL;
    h ^= h >> 29;

    /* h's top 32 bits scaled to [0, nslots): no power of two needed */
    return (uint32_t) (((h >> 32) * (uint64_t) t->hdr->nslots) >> 32);
}


static int
encore_revoke_less(const encore_revoke_t *t, uint32_t a, uint32_t b)
{
    return t->slots[t->heap[a]].expires < t->slots[t->heap[b]].expires;
}


static void
encore_revoke_swap(encore_revoke_t *t, uint32_t a, uint32_t b)
{
    uint32_t  s;

    s = t->heap[a];
    t->heap[a] = t->heap[b];
    t->heap[b] = s;

    t->slots[t->heap[a]].heap = a;
    t->slots[t->heap[b]].heap = b;
}


static void
encore_revoke_sift_up(encore_revoke_t *t, uint32_t pos)
{
    uint32_t  parent;

    while (pos > 0) {
        parent = (pos - 1) / 2;

        if (!encore_revoke_less(t, pos, parent)) {
            return;
        }

        encore_revoke_swap(t, pos, parent);
        pos = parent;
    }
}


static void
encore_revoke_sift_down(encore_revoke_t *t, uint32_t pos)
{
    uint32_t  l, r, min, n;

    n = t->hdr->count;

    for ( ;; ) {
        l = 2 * pos + 1;
        r = l + 1;
        min = pos;

        if (l < n && encore_revoke_less(t, l, min)) {
            min = l;
        }

        if (r < n && encore_revoke_less(t, r, min)) {
            min = r;
        }

        if (min == pos) {
            return;
        }

        encore_revoke_swap(t, pos, min);
        pos = min;
    }
}


/* the slot of that key, or -1 */
static int64_t
encore_revoke_slot(const encore_revoke_t *t, unsigned kind,
    const unsigned char *id)
{
    uint32_t                      i, n;
    uint64_t                      a, b, ea, eb;
    const encore_revoke_entry_t  *e;

    i = encore_revoke_home(t, kind, id);

    /* the id as two words: two compares a probe, no memcmp() call */
    memcpy(&a, id, 8);
    memcpy(&b, id + 8, 8);

    /* at most half the slots are used: a free one ends every probe */
    for (n = 0; n < t->hdr->nslots; n++) {
        e = &t->slots[i];

        if (e->kind == 0) {
            return -1;
        }

        memcpy(&ea, e->id, 8);
        memcpy(&eb, e->id + 8, 8);

        if (ea == a && eb == b && e->kind == kind) {
            return i;
        }

        if (++i == t->hdr->nslots) {
            i = 0;
        }
    }

    return -1;
}


/* remove the entry of slot i from the heap and the table */
static void
encore_revoke_remove(encore_revoke_t *t, uint32_t i)
{
    uint32_t  pos, last, moved, j, k, n;

    /* the heap: the last entry takes its place, then finds its own */
    pos = t->slots[i].heap;
    last = --t->hdr->count;

    if (pos != last) {
        moved = t->heap[last];
        t->heap[pos] = moved;
        t->slots[moved].heap = pos;
        encore_revoke_sift_down(t, pos);
        encore_revoke_sift_up(t, t->slots[moved].heap);
    }

    /*
     * The table: backward-shift deletion.  Every later entry of the probe
     * run that may live at i (its home is not cyclically in (i, j]) moves
     * there, so that lookups never meet a hole before their key.
     */
    n = t->hdr->nslots;
    j = i;

    for ( ;; ) {
        if (++j == n) {
            j = 0;
        }

        if (t->slots[j].kind == 0) {
            break;
        }

        k = encore_revoke_home(t, t->slots[j].kind, t->slots[j].id);

        if (i <= j ? (i < k && k <= j) : (i < k || k <= j)) {
            continue;
        }

        t->slots[i] = t->slots[j];
        t->heap[t->slots[i].heap] = i;
        i = j;
    }

    memset(&t->slots[i], 0, sizeof(encore_revoke_entry_t));
}


int
encore_revoke_init(encore_revoke_t *t, void *mem, size_t size)
{
    size_t                n;
    encore_revoke_hdr_t  *hdr;

    if (size < sizeof(encore_revoke_hdr_t)) {
        return -1;
    }

    /* per slot: the entry and a heap position (the heap is half as long) */
    n = (size - sizeof(encore_revoke_hdr_t))
        / (sizeof(encore_revoke_entry_t) + sizeof(uint32_t));

    if (n < 22 || n > UINT32_MAX / 4) {
        return -1;
    }

    hdr = mem;
    memset(hdr, 0, sizeof(encore_revoke_hdr_t));

    hdr->magic = ENCORE_REVOKE_MAGIC;
    hdr->nslots = (uint32_t) n;
    /*
     * at most half full: a lookup of an absent key (every token not
     * revoked) probes about 2.5 slots on average at that load, 8.5 at
     * 3/4 (Knuth's linear probing), and it runs on every request
     */
    hdr->max = (uint32_t) (n / 2);

    t->hdr = hdr;
    t->slots = (encore_revoke_entry_t *) (hdr + 1);
    t->heap = (uint32_t *) (t->slots + n);

    memset(t->slots, 0, n * sizeof(encore_revoke_entry_t));

    return 0;
}


int
encore_revoke_attach(encore_revoke_t *t, void *mem)
{
    encore_revoke_hdr_t  *hdr;

    hdr = mem;

    if (hdr->magic != ENCORE_REVOKE_MAGIC) {
        return -1;
    }

    t->hdr = hdr;
    t->slots = (encore_revoke_entry_t *) (hdr + 1);
    t->heap = (uint32_t *) (t->slots + hdr->nslots);

    return 0;
}


void
encore_revoke_expire(encore_revoke_t *t, long long now)
{
    while (t->hdr->count
           && t->slots[t->heap[0]].expires <= (int64_t) now)
    {
        encore_revoke_remove(t, t->heap[0]);
        t->hdr->expired++;
    }
}


void
encore_revoke_put(encore_revoke_t *t, unsigned kind, const unsigned char *id,
    long long not_before, unsigned cause, long long ttl, long long now)
{
    int64_t                 s, expires;
    uint32_t                i, pos;
    encore_revoke_entry_t  *e;

    expires = (int64_t) not_before + (int64_t) ttl;

    /* every token it could refuse has expired too */
    if (expires <= (int64_t) now) {
        return;
    }

    s = encore_revoke_slot(t, kind, id);

    if (s >= 0) {
        e = &t->slots[s];

        /* an expired entry not yet dropped counts as absent */
        if ((int64_t) not_before > e->not_before
            || e->expires <= (int64_t) now)
        {
            e->not_before = not_before;
            e->expires = expires;
            e->cause = (uint8_t) cause;

            pos = e->heap;
            encore_revoke_sift_down(t, pos);
            encore_revoke_sift_up(t, t->slots[s].heap);
        }

        return;
    }

    encore_revoke_expire(t, now);

    if (t->hdr->count >= t->hdr->max) {
        t->hdr->evictions++;

        /* the one closest to expiry goes: the new one, if it is */
        if (expires < t->slots[t->heap[0]].expires) {
            return;
        }

        encore_revoke_remove(t, t->heap[0]);
    }

    i = encore_revoke_home(t, kind, id);

    while (t->slots[i].kind != 0) {
        if (++i == t->hdr->nslots) {
            i = 0;
        }
    }

    e = &t->slots[i];
    memcpy(e->id, id, 16);
    e->not_before = not_before;
    e->expires = expires;
    e->kind = (uint8_t) kind;
    e->cause = (uint8_t) cause;

    pos = t->hdr->count++;
    t->heap[pos] = i;
    e->heap = pos;

    encore_revoke_sift_up(t, pos);
}


const encore_revoke_entry_t *
encore_revoke_find(const encore_revoke_t *t, unsigned kind,
    const unsigned char *id, long long now)
{
    int64_t  s;

    s = encore_revoke_slot(t, kind, id);

    if (s < 0 || t->slots[s].expires <= (int64_t) now) {
        return NULL;
    }

    return &t->slots[s];
}


unsigned
encore_revoke_check(const encore_revoke_t *t, const unsigned char *sub,
    const unsigned char *sid, long long iat, long long now)
{
    const encore_revoke_entry_t  *e;

    if (t->hdr->count == 0) {
        return 0;
    }

    if (sub) {
        e = encore_revoke_find(t, ENCORE_REVOKE_SUB, sub, now);

        if (e && (int64_t) iat < e->not_before) {
            return e->cause;
        }
    }

    if (sid) {
        e = encore_revoke_find(t, ENCORE_REVOKE_SID, sid, now);

        if (e && (int64_t) iat < e->not_before) {
            return e->cause;
        }
    }

    return 0;
}


const char *
encore_revoke_cause_name(unsigned cause)
{
    if (cause == 0 || cause > ENCORE_REVOKE_CAUSE_MAX) {
        return NULL;
    }

    return encore_revoke_causes[cause];
}


static int
encore_revoke_hex(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


int
encore_revoke_uuid(unsigned char *out, const char *s, size_t len)
{
    int     hi, lo;
    size_t  i, k;

    if (len != 36) {
        return -1;
    }

    for (i = 0, k = 0; i < 36; /* void */) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') {
                return -1;
            }

            i++;
            continue;
        }

        hi = encore_revoke_hex((unsigned char) s[i]);
        lo = encore_revoke_hex((unsigned char) s[i + 1]);

        if (hi < 0 || lo < 0) {
            return -1;
        }

        out[k++] = (unsigned char) (hi << 4 | lo);
        i += 2;
    }

    return 0;
}


static int
encore_revoke_cause(const json_t *v)
{
    unsigned     c;
    const char  *name;

    if (!json_is_string(v)) {
        return -1;
    }

    for (c = 1; c <= ENCORE_REVOKE_CAUSE_MAX; c++) {
        name = encore_revoke_causes[c];

        if (json_string_length(v) == strlen(name)
            && memcmp(json_string_value(v), name, strlen(name)) == 0)
        {
            return (int) c;
        }
    }

    return -1;
}


static int
encore_revoke_parse_item(encore_revoke_item_t *it, const json_t *o,
    const char **error)
{
    int      cause;
    json_t  *v;

    if (!json_is_object(o)) {
        *error = "a revocation is not an object";
        return -1;
    }

    v = json_object_get(o, "sub");

    if (!json_is_string(v)
        || encore_revoke_uuid(it->sub, json_string_value(v),
                              json_string_length(v)) != 0)
    {
        *error = v ? "sub is not a UUID" : "sub missing";
        return -1;
    }

    v = json_object_get(o, "sid");
    it->has_sid = (v != NULL);

    if (v != NULL
        && (!json_is_string(v)
            || encore_revoke_uuid(it->sid, json_string_value(v),
                                  json_string_length(v)) != 0))
    {
        *error = "sid is not a UUID";
        return -1;
    }

    v = json_object_get(o, "not_before");

    if (!json_is_integer(v) || json_integer_value(v) < 0
        || json_integer_value(v) > ENCORE_REVOKE_TIME_MAX)
    {
        *error = v ? "not_before is not an integer NumericDate"
                   : "not_before missing";
        return -1;
    }

    it->not_before = (long long) json_integer_value(v);

    v = json_object_get(o, "cause");
    cause = encore_revoke_cause(v);

    if (cause < 0) {
        *error = v ? "cause unknown" : "cause missing";
        return -1;
    }

    it->cause = (unsigned) cause;

    return 0;
}


int
encore_revoke_parse(encore_revoke_batch_t *b, const void *data, size_t len,
    const char **error)
{
    size_t   i;
    json_t  *root, *list, *v;

    b->nitems = 0;
    b->replayed = 0;
    b->through_ms = 0;

    root = encore_json_object_parse(data, len);
    if (root == NULL) {
        *error = "body is not a JSON object";
        return -1;
    }

    list = json_object_get(root, "revocations");

    if (!json_is_array(list)) {
        *error = list ? "revocations is not an array"
                      : "revocations missing";
        goto failed;
    }

    if (json_array_size(list) > ENCORE_REVOKE_BATCH_MAX) {
        *error = "more than 1000 revocations";
        goto failed;
    }

    json_array_foreach(list, i, v) {
        if (encore_revoke_parse_item(&b->items[i], v, error) != 0) {
            goto failed;
        }
    }

    v = json_object_get(root, "replayed");

    if (!json_is_boolean(v)) {
        *error = v ? "replayed is not a boolean" : "replayed missing";
        goto failed;
    }

    b->replayed = json_is_true(v);

    v = json_object_get(root, "through");

    if (!json_is_integer(v) || json_integer_value(v) < 0
        || json_integer_value(v) > ENCORE_REVOKE_TIME_MAX * 1000)
    {
        *error = v ? "through is not an integer of milliseconds"
                   : "through missing";
        goto failed;
    }

    b->through_ms = (long long) json_integer_value(v);
    b->nitems = json_array_size(list);

    json_decref(root);

    return 0;

failed:

    b->nitems = 0;
    json_decref(root);

    return -1;
}


int
encore_revoke_bound(const encore_revoke_batch_t *b, long long now,
    const char **error)
{
    size_t  i;

    for (i = 0; i < b->nitems; i++) {
        if (b->items[i].not_before > now + ENCORE_REVOKE_AHEAD_MAX) {
            *error = "not_before is more than 60 s ahead of the edge's clock";
            return -1;
        }
    }

    return 0;
}
