/*
 * libFuzzer harness for the route module's matcher: the input is a request
 * path (raw, as on the request line, and as nginx's normalised $uri) matched
 * against CONTRACT.md's routes (a copy of conf/routes.conf's table, so the
 * harness runs from any directory) plus some routes that force the literal
 * branch to backtrack.  Invariants: a found route's parameters lie inside
 * the path or the scratch buffer, a decoded match never needs more scratch
 * than the path's length, and decoding is idempotent for paths without "%".
 *
 * auto/fuzz (make fuzz) builds it from this line:
 */
/* fuzz-sources: ngx_modules/route/encore_route.c */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "encore_route.h"


static const char  *fuzz_routes[][2] = {
    { "POST", "/api/v1/auth/register" }, { "POST", "/api/v1/auth/login" },
    { "POST", "/api/v1/auth/refresh" }, { "POST", "/api/v1/auth/logout" },
    { "GET", "/api/v1/auth/me" }, { "GET", "/.well-known/jwks.json" },
    { "GET", "/api/v1/users" }, { "GET", "/api/v1/users/{id}" },
    { "PATCH", "/api/v1/users/{id}" }, { "PATCH", "/api/v1/users/me" },
    { "DELETE", "/api/v1/users/me" }, { "GET", "/api/v1/artists" },
    { "POST", "/api/v1/artists" }, { "GET", "/api/v1/artists/{id}" },
    { "GET", "/api/v1/artists/{id}/albums" },
    { "GET", "/api/v1/posts/{id}/comments" },
    { "POST", "/api/v1/chat/sessions/{id}/messages" },
    { "GET", "/api/v1/views/post/{id}" }, { "GET", "/api/v1/views/home" },
    { "GET", "/a/{x}/b/{y}/c" }, { "GET", "/a/l/{y}/l/{z}" },
    { "GET", "/a/l/b/{y}/c/d" }, { "PUT", "/" }, { "GET", "/t/" },
};


static encore_route_table_t  *table;


static void
fuzz_init(void)
{
    void        *other;
    size_t       i;
    const char  *err;

    table = encore_route_table_create();
    if (table == NULL) {
        abort();
    }

    for (i = 0; i < sizeof(fuzz_routes) / sizeof(fuzz_routes[0]); i++) {
        if (encore_route_add(table,
                encore_route_method(fuzz_routes[i][0],
                                    strlen(fuzz_routes[i][0])),
                fuzz_routes[i][1], strlen(fuzz_routes[i][1]),
                (void *) fuzz_routes[i][1], &other, &err)
            != ENCORE_ROUTE_OK)
        {
            abort();
        }
    }

    if (encore_route_compile(table) != ENCORE_ROUTE_OK) {
        abort();
    }
}


static void
check(const encore_route_match_t *m, int rc, const char *path, size_t len,
    const char *scratch)
{
    size_t  i;

    if (rc != ENCORE_ROUTE_FOUND) {
        return;
    }

    if (m->data == NULL || m->nparams > ENCORE_ROUTE_MAX_PARAMS) {
        abort();
    }

    for (i = 0; i < m->nparams; i++) {
        if (m->value_lens[i] == 0) {
            abort();
        }

        if (!(m->values[i] >= path
              && m->values[i] + m->value_lens[i] <= path + len)
            && !(scratch && m->values[i] >= scratch
                 && m->values[i] + m->value_lens[i] <= scratch + len))
        {
            abort();
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                    rc, rc2;
    char                  *path, *scratch;
    unsigned               method;
    encore_route_match_t   m, m2;

    if (table == NULL) {
        fuzz_init();
    }

    if (size < 1) {
        return 0;
    }

    method = 1u << (data[0] % 8);     /* 0x80: an unknown method */
    size--;

    /* exact-size copies: ASan sees any read past the path */
    path = malloc(size ? size : 1);
    scratch = malloc(size ? size : 1);
    if (path == NULL || scratch == NULL) {
        abort();
    }

    memcpy(path, data + 1, size);

    rc = encore_route_match(table, method, path, size, 1, scratch, &m);
    check(&m, rc, path, size, scratch);

    rc2 = encore_route_match(table, method, path, size, 0, NULL, &m2);
    check(&m2, rc2, path, size, NULL);

    if (memchr(path, '%', size) == NULL && rc != ENCORE_ROUTE_NOT_CANONICAL
        && (rc != rc2 || m.data != m2.data))
    {
        abort();
    }

    free(path);
    free(scratch);

    return 0;
}
