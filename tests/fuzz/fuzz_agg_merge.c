/*
 * libFuzzer harness for the aggregate module's select and place
 * (ngx_modules/aggregate/encore_agg.c), then the view's ETag.  The input
 * is up to 8 parts, two lines each:
 *
 *     key|pick|fields|deny|flags
 *     <the part's answer: one line of JSON>
 *
 * key and pick are dotted paths (empty pick: the whole answer), fields and
 * deny ","-separated names, flags "m" (merge) and "s" (the previous part's
 * answer again, the line ignored).  An answer that is not JSON stands for
 * a failed part: the answer is null.  Any bytes go in each field.
 *
 * Invariants: select gives NULL exactly when pick is absent, a filtered
 * object holds only allowed, undenied members (the answer's own values),
 * and an array keeps its length; place fails exactly on a clash, a
 * non-object merge or a key jansson refuses, leaving the view as it was
 * (but for a key that is not UTF-8), and on success the value is at the
 * key (or its members at the top); no answer changes; the view
 * always serialises and reads back equal (unless a key put a NUL in a
 * member name, which jansson does not read); its ETag has the documented
 * form and matches itself, weakly, in a list and "*"; the pick field, as
 * an If-None-Match value, never crashes the matcher; no leaks (LSan).
 *
 * auto/fuzz (make fuzz) builds it from this line:
 */
/* fuzz-sources: ngx_modules/aggregate/encore_agg.c */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encore_agg.h"


#define MAX_PARTS  8
#define MAX_NAMES  8


typedef struct {
    const char        *key;
    size_t             key_len;
    const char        *pick;          /* NULL: the whole answer */
    size_t             pick_len;
    encore_agg_str_t   allow[MAX_NAMES];
    size_t             nallow;
    encore_agg_str_t   deny[MAX_NAMES];
    size_t             ndeny;
    int                merge;
    int                same;
    json_t            *answer;
    char              *dump;          /* the answer as it came */
} part_t;


/* the next line of [*p, end): its start and length; *p moves past it */
static const char *
next_line(const char **p, const char *end, size_t *len)
{
    const char  *s, *nl;

    s = *p;

    if (s >= end) {
        *len = 0;
        return NULL;
    }

    nl = memchr(s, '\n', end - s);
    *len = (nl ? nl : end) - s;
    *p = nl ? nl + 1 : end;

    return s;
}


/* the next "|"-separated field of [*p, end) */
static const char *
next_field(const char **p, const char *end, size_t *len)
{
    const char  *s, *bar;

    s = *p;
    bar = memchr(s, '|', end - s);
    *len = (bar ? bar : end) - s;
    *p = bar ? bar + 1 : end;

    return s;
}


static size_t
names(const char *s, size_t len, encore_agg_str_t *list)
{
    size_t  i, n, start;

    if (len == 0) {
        return 0;
    }

    n = 0;
    start = 0;

    for (i = 0; i <= len && n < MAX_NAMES; i++) {
        if (i < len && s[i] != ',') {
            continue;
        }

        list[n].data = s + start;
        list[n].len = i - start;
        n++;
        start = i + 1;
    }

    return n;
}


static int
listed(const char *name, size_t len, const encore_agg_str_t *list, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (list[i].len == len && memcmp(list[i].data, name, len) == 0) {
            return 1;
        }
    }

    return 0;
}


static char *
dump(json_t *v)
{
    char  *s;

    s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s == NULL) {
        abort();
    }

    return s;
}


/* got is from's object filtered: only what passes, the same values */
static void
check_filtered(json_t *from, json_t *got, const part_t *pt)
{
    size_t       len, kept;
    json_t      *v;
    const char  *name;

    if (!json_is_object(got)) {
        abort();
    }

    kept = 0;

    json_object_keylen_foreach(from, name, len, v) {
        if ((pt->nallow && !listed(name, len, pt->allow, pt->nallow))
            || listed(name, len, pt->deny, pt->ndeny))
        {
            continue;
        }

        if (json_object_getn(got, name, len) != v) {
            abort();
        }

        kept++;
    }

    if (json_object_size(got) != kept) {
        abort();
    }
}


static void
check_select(json_t *answer, json_t *got, const part_t *pt)
{
    size_t   i;
    json_t  *from;

    from = pt->pick ? encore_agg_lookup(answer, pt->pick, pt->pick_len)
                    : answer;

    if ((from == NULL) != (got == NULL)) {
        abort();
    }

    if (got == NULL) {
        return;
    }

    if (pt->nallow == 0 && pt->ndeny == 0) {
        if (!json_equal(from, got)) {
            abort();
        }

        return;
    }

    if (json_is_object(from)) {
        check_filtered(from, got, pt);
        return;
    }

    if (!json_is_array(from)) {
        if (!json_equal(got, from)) {
            abort();
        }

        return;
    }

    if (!json_is_array(got) || json_array_size(got) != json_array_size(from))
    {
        abort();
    }

    for (i = 0; i < json_array_size(from); i++) {
        if (json_is_object(json_array_get(from, i))) {
            check_filtered(json_array_get(from, i), json_array_get(got, i),
                           pt);

        } else if (!json_equal(json_array_get(got, i),
                               json_array_get(from, i)))
        {
            abort();
        }
    }
}


/* whether jansson takes every member name of key (UTF-8) */
static int
key_valid(const char *key, size_t len)
{
    json_t  *o;
    int      ok;

    o = json_object();
    if (o == NULL) {
        abort();
    }

    ok = (json_object_setn_new(o, key, len, json_null()) == 0);
    json_decref(o);

    return ok;
}


static void
check_place(json_t *view, json_t *v, const part_t *pt)
{
    int          rc, clash;
    char        *before, *after;
    size_t       i, start, len;
    json_t      *at, *m;
    const char  *name;

    before = dump(view);

    /* one reference to look at the value after it is stolen */
    json_incref(v);

    rc = encore_agg_place(view, pt->key, pt->key_len, pt->merge, v);

    if (v == NULL) {
        if (rc != -1) {
            abort();
        }

        free(before);
        return;
    }

    if (pt->merge) {
        if ((rc == 0) != json_is_object(v)) {
            abort();
        }

        if (rc == 0) {
            json_object_keylen_foreach(v, name, len, m) {
                if (json_object_getn(view, name, len) != m) {
                    abort();
                }
            }
        }

        goto done;
    }

    /* a clash: a member on the key's way that is not an object */
    clash = 0;
    at = view;
    start = 0;

    for (i = 0; i < pt->key_len; i++) {
        if (pt->key[i] != '.') {
            continue;
        }

        at = at ? json_object_getn(at, pt->key + start, i - start) : NULL;

        if (at && !json_is_object(at)) {
            clash = 1;
        }

        start = i + 1;
    }

    if (rc == 0) {
        if (encore_agg_lookup(view, pt->key, pt->key_len) != v) {
            abort();
        }

    } else if (rc != -1 || (!clash && key_valid(pt->key, pt->key_len))) {
        /* a failure with nothing in the way and a good key */
        abort();
    }

done:

    if (rc != 0 && (pt->merge || key_valid(pt->key, pt->key_len))) {
        /*
         * a failed place leaves the view as it was (a key that is not
         * UTF-8, which configuration refuses, may leave the empty objects
         * created on its way)
         */
        after = dump(view);

        if (strcmp(before, after) != 0) {
            abort();
        }

        free(after);
    }

    free(before);
    json_decref(v);
}


static void
check_etag(json_t *view, const part_t *pt, size_t nparts)
{
    char          etag[ENCORE_AGG_ETAG_LEN + 1], h[3 * ENCORE_AGG_ETAG_LEN];
    char         *body;
    size_t        i, len;
    json_t       *back;
    json_error_t  err;

    body = json_dumps(view, JSON_COMPACT);
    if (body == NULL) {
        abort();
    }

    len = strlen(body);

    /* jansson reads no NUL in a member name: only a key can put one in */
    for (i = 0; i < nparts && memchr(pt[i].key, '\0', pt[i].key_len) == NULL;
         i++)
    { /* void */ }

    if (i == nparts) {
        back = json_loadb(body, len, JSON_ALLOW_NUL, &err);
        if (back == NULL || !json_equal(back, view)) {
            abort();
        }

        json_decref(back);
    }

    memset(etag, 'Z', sizeof(etag));
    encore_agg_etag(body, len, etag);

    if (etag[0] != '"' || etag[ENCORE_AGG_ETAG_LEN - 1] != '"'
        || etag[ENCORE_AGG_ETAG_LEN] != '\0')
    {
        abort();
    }

    for (i = 1; i < ENCORE_AGG_ETAG_LEN - 1; i++) {
        if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                   "0123456789-_", etag[i]) == NULL || etag[i] == '\0')
        {
            abort();
        }
    }

    if (!encore_agg_etag_match(etag, ENCORE_AGG_ETAG_LEN, etag,
                               ENCORE_AGG_ETAG_LEN))
    {
        abort();
    }

    snprintf(h, sizeof(h), "W/%s", etag);
    if (!encore_agg_etag_match(h, strlen(h), etag, ENCORE_AGG_ETAG_LEN)) {
        abort();
    }

    snprintf(h, sizeof(h), "\"x\", %s ,", etag);
    if (!encore_agg_etag_match(h, strlen(h), etag, ENCORE_AGG_ETAG_LEN)) {
        abort();
    }

    if (!encore_agg_etag_match(" * ", 3, etag, ENCORE_AGG_ETAG_LEN)) {
        abort();
    }

    /* any bytes as an If-None-Match value; the tag itself is no list */
    for (i = 0; i < nparts; i++) {
        if (pt[i].pick) {
            (void) encore_agg_etag_match(pt[i].pick, pt[i].pick_len, etag,
                                         ENCORE_AGG_ETAG_LEN);
        }
    }

    free(body);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char         *in, *now;
    size_t        i, n, len, flen;
    json_t       *view, *v;
    part_t        parts[MAX_PARTS], *pt;
    const char   *p, *end, *line, *f, *fp, *fend;

    /* an exact-size copy: ASan sees any read past it */
    in = malloc(size ? size : 1);
    if (in == NULL) {
        abort();
    }

    memcpy(in, data, size);

    p = in;
    end = in + size;
    n = 0;

    memset(parts, 0, sizeof(parts));

    while (n < MAX_PARTS && (line = next_line(&p, end, &len)) != NULL) {
        pt = &parts[n];

        fp = line;
        fend = line + len;

        pt->key = next_field(&fp, fend, &pt->key_len);

        f = next_field(&fp, fend, &flen);
        if (flen) {
            pt->pick = f;
            pt->pick_len = flen;
        }

        f = next_field(&fp, fend, &flen);
        pt->nallow = names(f, flen, pt->allow);

        f = next_field(&fp, fend, &flen);
        pt->ndeny = names(f, flen, pt->deny);

        f = next_field(&fp, fend, &flen);
        pt->merge = memchr(f, 'm', flen) != NULL;
        pt->same = n > 0 && memchr(f, 's', flen) != NULL;

        line = next_line(&p, end, &len);

        if (pt->same) {
            pt->answer = json_incref(parts[n - 1].answer);

        } else {
            pt->answer = line ? json_loadb(line, len, JSON_DECODE_ANY
                                                      | JSON_ALLOW_NUL, NULL)
                              : NULL;
            if (pt->answer == NULL) {
                pt->answer = json_null();
            }
        }

        pt->dump = dump(pt->answer);
        n++;
    }

    view = json_object();
    if (view == NULL) {
        abort();
    }

    for (i = 0; i < n; i++) {
        v = encore_agg_select(parts[i].answer, parts[i].pick,
                              parts[i].pick_len, parts[i].allow,
                              parts[i].nallow, parts[i].deny, parts[i].ndeny);

        check_select(parts[i].answer, v, &parts[i]);
        check_place(view, v, &parts[i]);
    }

    /* no part's answer changed */
    for (i = 0; i < n; i++) {
        now = dump(parts[i].answer);

        if (strcmp(now, parts[i].dump) != 0) {
            abort();
        }

        free(now);
    }

    check_etag(view, parts, n);

    /* answers first, as a view ends: LSan sees a loop left behind */
    for (i = 0; i < n; i++) {
        json_decref(parts[i].answer);
        free(parts[i].dump);
    }

    if (view->refcount != 1) {
        abort();
    }

    json_decref(view);
    free(in);

    return 0;
}
