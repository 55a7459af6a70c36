/*
 * Encore: the route table of the route module, nginx-independent.
 * See encore_route.h for the contract.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "encore_route.h"


/* up to this many literal children are compared in turn, not hashed */
#define ENCORE_ROUTE_LINEAR  4

typedef struct encore_route_node_s  encore_route_node_t;

struct encore_route_node_s {
    char                  *segment;      /* literal label, NUL-terminated */
    size_t                 len;

    encore_route_node_t  **children;     /* literal children */
    size_t                 nchildren;
    size_t                 nalloc;
    encore_route_node_t  **hash;         /* open addressing, after compile */
    size_t                 hash_mask;

    encore_route_node_t   *param;        /* the {param} child */

    unsigned               methods;      /* declared here, HEAD/OPTIONS added */
    void                  *routes[ENCORE_ROUTE_NMETHODS];
    char                 **names;        /* of the first route ending here */
    size_t                 nparams;
    char                   allow[ENCORE_ROUTE_ALLOW_LEN + 1];
    size_t                 allow_len;
};


struct encore_route_table_s {
    encore_route_node_t    root;
    size_t                 nroutes;
    size_t                 max_depth;
    int                    compiled;
};


typedef struct {
    const char            *data;
    size_t                 len;
} encore_route_seg_t;


static const struct {
    const char            *name;
    size_t                 len;
    unsigned               method;
} encore_route_methods[] = {
    { "GET", 3, ENCORE_ROUTE_GET },
    { "HEAD", 4, ENCORE_ROUTE_HEAD },
    { "POST", 4, ENCORE_ROUTE_POST },
    { "PUT", 3, ENCORE_ROUTE_PUT },
    { "PATCH", 5, ENCORE_ROUTE_PATCH },
    { "DELETE", 6, ENCORE_ROUTE_DELETE },
    { "OPTIONS", 7, ENCORE_ROUTE_OPTIONS },
};


static int
encore_route_method_index(unsigned method)
{
    int  i;

    for (i = 0; i < ENCORE_ROUTE_NMETHODS; i++) {
        if (encore_route_methods[i].method == method) {
            return i;
        }
    }

    return -1;
}


unsigned
encore_route_method(const char *name, size_t len)
{
    int  i;

    for (i = 0; i < ENCORE_ROUTE_NMETHODS; i++) {
        if (encore_route_methods[i].len == len
            && memcmp(encore_route_methods[i].name, name, len) == 0)
        {
            return encore_route_methods[i].method;
        }
    }

    return 0;
}


encore_route_table_t *
encore_route_table_create(void)
{
    return calloc(1, sizeof(encore_route_table_t));
}


static void
encore_route_node_free(encore_route_node_t *n)
{
    size_t  i;

    for (i = 0; i < n->nchildren; i++) {
        encore_route_node_free(n->children[i]);
        free(n->children[i]);
    }

    if (n->param) {
        encore_route_node_free(n->param);
        free(n->param);
    }

    if (n->names) {
        for (i = 0; i < n->nparams; i++) {
            free(n->names[i]);
        }

        free(n->names);
    }

    free(n->children);
    free(n->hash);
    free(n->segment);
}


void
encore_route_table_free(encore_route_table_t *t)
{
    if (t == NULL) {
        return;
    }

    encore_route_node_free(&t->root);
    free(t);
}


size_t
encore_route_count(const encore_route_table_t *t)
{
    return t->nroutes;
}


/* RFC 3986 pchar without pct-encoded: unreserved, sub-delims, ":", "@" */
static int
encore_route_pchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        || (c >= '0' && c <= '9'))
    {
        return 1;
    }

    return c != '\0' && strchr("-._~!$&'()*+,;=:@", c) != NULL;
}


static int
encore_route_param_name(const char *p, size_t len)
{
    size_t  i;

    if (len == 0 || len > ENCORE_ROUTE_MAX_NAME
        || !((p[0] >= 'a' && p[0] <= 'z') || p[0] == '_'))
    {
        return 0;
    }

    for (i = 1; i < len; i++) {
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9')
              || p[i] == '_'))
        {
            return 0;
        }
    }

    return 1;
}


static encore_route_node_t *
encore_route_child(encore_route_node_t *n, const char *seg, size_t len)
{
    size_t                 i;
    encore_route_node_t   *c, **children;

    for (i = 0; i < n->nchildren; i++) {
        c = n->children[i];

        if (c->len == len && memcmp(c->segment, seg, len) == 0) {
            return c;
        }
    }

    if (n->nchildren == n->nalloc) {
        children = realloc(n->children, (n->nalloc ? 2 * n->nalloc : 4)
                                        * sizeof(encore_route_node_t *));
        if (children == NULL) {
            return NULL;
        }

        n->children = children;
        n->nalloc = n->nalloc ? 2 * n->nalloc : 4;
    }

    c = calloc(1, sizeof(encore_route_node_t));
    if (c == NULL) {
        return NULL;
    }

    c->segment = malloc(len + 1);
    if (c->segment == NULL) {
        free(c);
        return NULL;
    }

    memcpy(c->segment, seg, len);
    c->segment[len] = '\0';
    c->len = len;

    n->children[n->nchildren++] = c;

    return c;
}


int
encore_route_add(encore_route_table_t *t, unsigned method, const char *tpl,
    size_t len, void *data, void **other, const char **err)
{
    int                    mi;
    size_t                 i, j, nsegs, nparams, depth;
    const char            *p, *end, *seg;
    encore_route_seg_t     names[ENCORE_ROUTE_MAX_PARAMS];
    encore_route_node_t   *n;

    *other = NULL;

    if (t->compiled) {
        *err = "the table is already compiled";
        return ENCORE_ROUTE_EINVAL;
    }

    if (method == ENCORE_ROUTE_HEAD) {
        *err = "HEAD is implied by GET";
        return ENCORE_ROUTE_EINVAL;
    }

    if (method == ENCORE_ROUTE_OPTIONS) {
        *err = "OPTIONS is answered by the route table";
        return ENCORE_ROUTE_EINVAL;
    }

    mi = encore_route_method_index(method);
    if (mi < 0) {
        *err = "unknown method";
        return ENCORE_ROUTE_EINVAL;
    }

    if (len == 0 || tpl[0] != '/') {
        *err = "a path template starts with \"/\"";
        return ENCORE_ROUTE_EINVAL;
    }

    /* validate first: a failed add leaves the trie unchanged */

    nsegs = 0;
    nparams = 0;
    end = tpl + len;

    for (p = tpl + 1; ; p++) {
        seg = p;

        while (p < end && *p != '/') {
            p++;
        }

        if (++nsegs > ENCORE_ROUTE_MAX_DEPTH) {
            *err = "too many segments";
            return ENCORE_ROUTE_EINVAL;
        }

        if (p - seg == 0) {
            if (p != end) {
                *err = "empty path segment";
                return ENCORE_ROUTE_EINVAL;
            }

            break;
        }

        if (seg[0] == '{') {
            if (p[-1] != '}'
                || !encore_route_param_name(seg + 1, p - seg - 2))
            {
                *err = "invalid parameter, use {name} with [a-z0-9_]";
                return ENCORE_ROUTE_EINVAL;
            }

            if (nparams == ENCORE_ROUTE_MAX_PARAMS) {
                *err = "too many parameters";
                return ENCORE_ROUTE_EINVAL;
            }

            for (j = 0; j < nparams; j++) {
                if (names[j].len == (size_t) (p - seg - 2)
                    && memcmp(names[j].data, seg + 1, names[j].len) == 0)
                {
                    *err = "duplicate parameter name";
                    return ENCORE_ROUTE_EINVAL;
                }
            }

            names[nparams].data = seg + 1;
            names[nparams].len = p - seg - 2;
            nparams++;

        } else {
            if ((p - seg == 1 && seg[0] == '.')
                || (p - seg == 2 && seg[0] == '.' && seg[1] == '.'))
            {
                *err = "dot segment in a path template";
                return ENCORE_ROUTE_EINVAL;
            }

            for (i = 0; i < (size_t) (p - seg); i++) {
                if (!encore_route_pchar((unsigned char) seg[i])) {
                    *err = "invalid character in a path segment";
                    return ENCORE_ROUTE_EINVAL;
                }
            }
        }

        if (p == end) {
            break;
        }
    }

    /* walk or grow the trie */

    n = &t->root;
    depth = 0;

    for (p = tpl + 1; ; p++) {
        seg = p;

        while (p < end && *p != '/') {
            p++;
        }

        depth++;

        if (p - seg > 0 && seg[0] == '{') {
            if (n->param == NULL) {
                n->param = calloc(1, sizeof(encore_route_node_t));
                if (n->param == NULL) {
                    goto nomem;
                }
            }

            n = n->param;

        } else {
            n = encore_route_child(n, seg, p - seg);
            if (n == NULL) {
                goto nomem;
            }
        }

        if (p >= end) {
            break;
        }
    }

    if (n->routes[mi] != NULL) {
        *other = n->routes[mi];
        *err = "duplicate route";
        return ENCORE_ROUTE_EDUP;
    }

    if (n->methods) {
        for (j = 0; j < nparams; j++) {
            if (strlen(n->names[j]) != names[j].len
                || memcmp(n->names[j], names[j].data, names[j].len) != 0)
            {
                for (i = 0; i < ENCORE_ROUTE_NMETHODS; i++) {
                    if (n->routes[i]) {
                        *other = n->routes[i];
                        break;
                    }
                }

                *err = "the same path is declared with other parameter names";
                return ENCORE_ROUTE_ECONFLICT;
            }
        }

    } else if (nparams) {
        n->names = calloc(nparams, sizeof(char *));
        if (n->names == NULL) {
            goto nomem;
        }

        for (j = 0; j < nparams; j++) {
            n->names[j] = strndup(names[j].data, names[j].len);
            if (n->names[j] == NULL) {
                for (i = 0; i < j; i++) {
                    free(n->names[i]);
                }

                free(n->names);
                n->names = NULL;
                goto nomem;
            }
        }
    }

    n->nparams = nparams;
    n->methods |= method;
    n->routes[mi] = data;

    if (depth > t->max_depth) {
        t->max_depth = depth;
    }

    t->nroutes++;

    return ENCORE_ROUTE_OK;

nomem:

    /* nodes grown so far stay: they are empty and never match */
    *err = "out of memory";
    return ENCORE_ROUTE_ENOMEM;
}


/*
 * The length and the first and last eight bytes (every byte of a segment
 * of up to 16): a hash probe always compares the whole segment, so a
 * collision costs a probe, never a wrong match.
 */
static uint32_t
encore_route_hash(const char *p, size_t len)
{
    size_t    i;
    uint64_t  a, b;

    if (len >= 8) {
        memcpy(&a, p, 8);
        memcpy(&b, p + len - 8, 8);

    } else {
        a = 0;

        for (i = 0; i < len; i++) {
            a = a << 8 | (unsigned char) p[i];
        }

        b = 0;
    }

    a = (a ^ (uint64_t) len) * 0x9e3779b97f4a7c15ull;
    a ^= (b + (a >> 29)) * 0xbf58476d1ce4e5b9ull;

    return (uint32_t) (a >> 32);
}


static int
encore_route_eq(const char *a, const char *b, size_t len)
{
    size_t  i;

    if (len > 16) {
        return memcmp(a, b, len) == 0;
    }

    for (i = 0; i < len; i++) {
        if (a[i] != b[i]) {
            return 0;
        }
    }

    return 1;
}


static int
encore_route_compile_node(encore_route_node_t *n)
{
    int                    i;
    char                  *a;
    size_t                 k, size, slot;
    encore_route_node_t   *c;

    if (n->methods) {
        if (n->methods & ENCORE_ROUTE_GET) {
            n->methods |= ENCORE_ROUTE_HEAD;
            n->routes[encore_route_method_index(ENCORE_ROUTE_HEAD)] =
                n->routes[encore_route_method_index(ENCORE_ROUTE_GET)];
        }

        n->methods |= ENCORE_ROUTE_OPTIONS;

        a = n->allow;

        for (i = 0; i < ENCORE_ROUTE_NMETHODS; i++) {
            if (!(n->methods & encore_route_methods[i].method)) {
                continue;
            }

            if (a != n->allow) {
                *a++ = ',';
                *a++ = ' ';
            }

            memcpy(a, encore_route_methods[i].name,
                   encore_route_methods[i].len);
            a += encore_route_methods[i].len;
        }

        *a = '\0';
        n->allow_len = a - n->allow;
    }

    for (k = 0; k < n->nchildren; k++) {
        if (encore_route_compile_node(n->children[k]) != ENCORE_ROUTE_OK) {
            return ENCORE_ROUTE_ENOMEM;
        }
    }

    if (n->nchildren > ENCORE_ROUTE_LINEAR) {
        size = 4;

        while (size < 2 * n->nchildren) {
            size *= 2;
        }

        n->hash = calloc(size, sizeof(encore_route_node_t *));
        if (n->hash == NULL) {
            return ENCORE_ROUTE_ENOMEM;
        }

        n->hash_mask = size - 1;

        for (k = 0; k < n->nchildren; k++) {
            c = n->children[k];
            slot = encore_route_hash(c->segment, c->len) & n->hash_mask;

            while (n->hash[slot]) {
                slot = (slot + 1) & n->hash_mask;
            }

            n->hash[slot] = c;
        }
    }

    if (n->param) {
        return encore_route_compile_node(n->param);
    }

    return ENCORE_ROUTE_OK;
}


int
encore_route_compile(encore_route_table_t *t)
{
    if (encore_route_compile_node(&t->root) != ENCORE_ROUTE_OK) {
        return ENCORE_ROUTE_ENOMEM;
    }

    t->compiled = 1;

    return ENCORE_ROUTE_OK;
}


static const encore_route_node_t *
encore_route_lookup(const encore_route_node_t *n, const char *seg,
    size_t len)
{
    size_t                      i, slot;
    const encore_route_node_t  *c;

    if (n->hash == NULL) {
        for (i = 0; i < n->nchildren; i++) {
            c = n->children[i];

            if (c->len == len && encore_route_eq(c->segment, seg, len)) {
                return c;
            }
        }

        return NULL;
    }

    slot = encore_route_hash(seg, len) & n->hash_mask;

    for ( ;; ) {
        c = n->hash[slot];

        if (c == NULL) {
            return NULL;
        }

        if (c->len == len && encore_route_eq(c->segment, seg, len)) {
            return c;
        }

        slot = (slot + 1) & n->hash_mask;
    }
}


/*
 * Depth first, literal before parameter: the first node in that order
 * that ends a route wins.  Every node is visited at most once; the
 * parameter branches not taken yet wait on a stack of at most one per
 * segment.
 */
static const encore_route_node_t *
encore_route_walk(const encore_route_node_t *n, const encore_route_seg_t *segs,
    size_t nsegs, encore_route_match_t *m)
{
    size_t                      i, np, top;
    const encore_route_node_t  *c;
    struct {
        const encore_route_node_t  *node;
        size_t                      i;
        size_t                      np;
    }                           alt[ENCORE_ROUTE_MAX_DEPTH];

    i = 0;
    np = 0;
    top = 0;

    for ( ;; ) {

        if (i == nsegs) {
            if (n->methods) {
                return n;
            }

        } else {
            c = encore_route_lookup(n, segs[i].data, segs[i].len);

            if (n->param && segs[i].len > 0) {

                if (c == NULL) {
                    m->values[np] = segs[i].data;
                    m->value_lens[np] = segs[i].len;
                    n = n->param;
                    i++;
                    np++;
                    continue;
                }

                alt[top].node = n->param;
                alt[top].i = i;
                alt[top].np = np;
                top++;
            }

            if (c) {
                n = c;
                i++;
                continue;
            }
        }

        /* a dead end: the latest parameter branch not taken */

        if (top == 0) {
            return NULL;
        }

        top--;
        n = alt[top].node;
        i = alt[top].i;
        np = alt[top].np;

        m->values[np] = segs[i].data;
        m->value_lens[np] = segs[i].len;
        i++;
        np++;
    }
}


static int
encore_route_hex(unsigned char c)
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
encore_route_match(const encore_route_table_t *t, unsigned method,
    const char *path, size_t len, int decode, char *scratch,
    encore_route_match_t *m)
{
    int                         hi, lo, mi;
    char                       *d;
    size_t                      nsegs;
    const char                 *p, *end, *seg;
    encore_route_seg_t          segs[ENCORE_ROUTE_MAX_DEPTH];
    const encore_route_node_t  *n;

    m->data = NULL;
    m->allowed = 0;
    m->allow = NULL;
    m->allow_len = 0;
    m->nparams = 0;
    m->names = NULL;

    if (len == 0 || path[0] != '/' || t->max_depth == 0) {
        return ENCORE_ROUTE_NOT_FOUND;
    }

    nsegs = 0;
    end = path + len;
    d = scratch;

    for (p = path + 1; ; p++) {
        seg = p;

        while (p < end && *p != '/') {
            p++;
        }

        /*
         * deeper than any route: cannot match, whatever the table size;
         * but a raw path may have dot segments further on that make its
         * normalised form shorter, so in decoding mode the normalised
         * match decides
         */
        if (nsegs == t->max_depth) {
            return decode ? ENCORE_ROUTE_NOT_CANONICAL
                          : ENCORE_ROUTE_NOT_FOUND;
        }

        if (!decode) {
            segs[nsegs].data = seg;
            segs[nsegs].len = p - seg;

        } else {
            segs[nsegs].data = d;

            while (seg < p) {
                if (*seg != '%') {
                    *d++ = *seg++;
                    continue;
                }

                if (p - seg < 3) {
                    return ENCORE_ROUTE_BAD_PATH;
                }

                hi = encore_route_hex((unsigned char) seg[1]);
                lo = encore_route_hex((unsigned char) seg[2]);

                if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                    return ENCORE_ROUTE_BAD_PATH;
                }

                *d++ = (char) (hi << 4 | lo);
                seg += 3;
            }

            segs[nsegs].len = d - segs[nsegs].data;

            if ((segs[nsegs].len == 0 && p != end)
                || (segs[nsegs].len == 1 && segs[nsegs].data[0] == '.')
                || (segs[nsegs].len == 2 && segs[nsegs].data[0] == '.'
                    && segs[nsegs].data[1] == '.'))
            {
                return ENCORE_ROUTE_NOT_CANONICAL;
            }
        }

        nsegs++;

        if (p >= end) {
            break;
        }
    }

    n = encore_route_walk(&t->root, segs, nsegs, m);

    if (n == NULL) {
        return ENCORE_ROUTE_NOT_FOUND;
    }

    m->allowed = n->methods;
    m->allow = n->allow;
    m->allow_len = n->allow_len;

    mi = encore_route_method_index(method);

    if (mi < 0 || n->routes[mi] == NULL) {
        return ENCORE_ROUTE_NOT_ALLOWED;
    }

    m->data = n->routes[mi];
    m->nparams = n->nparams;
    m->names = (const char *const *) n->names;

    return ENCORE_ROUTE_FOUND;
}
