/*
 * Unit tests: ngx_modules/route/encore_route.c, the route matcher.
 *
 * The table is the real one: conf/routes.conf's encore_routes block is
 * read and added route by route.  Cases are data beside this file:
 * match_cases.json ({method, path, decode, result, route, allow, params})
 * and add_cases.json (routes added in order; the last one gives result).
 * Then the limits: very long segments, very many segments, deep and wide
 * tables, and that a bigger table matches the same way.
 */

#include <libgen.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "../../../ngx_modules/route/encore_route.h"


#define MAX_ROUTES  256


typedef struct {
    char   method[16];
    char   path[256];
    char   name[64];
} conf_route_t;


static conf_route_t  conf_routes[MAX_ROUTES];
static size_t        conf_nroutes;


static const char *
here(const char *file, char *buf, size_t len)
{
    char  dir[512];

    /* __FILE__ is relative to where make runs (the project root) */
    snprintf(dir, sizeof(dir), "%s", __FILE__);
    snprintf(buf, len, "%s/%s", dirname(dir), file);
    return buf;
}


/* the encore_routes block of conf/routes.conf: METHOD "PATH" NAME ... ; */
static void
read_routes_conf(void)
{
    int      in;
    char     line[1024], *p;
    FILE    *f;

    f = fopen("conf/routes.conf", "r");
    assert_non_null(f);

    in = 0;
    conf_nroutes = 0;

    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "encore_routes {", 15) == 0) {
            in = 1;
            continue;
        }

        if (!in) {
            continue;
        }

        if (line[0] == '}') {
            break;
        }

        for (p = line; *p == ' '; p++) { /* void */ }

        if (*p == '#' || *p == '\n') {
            continue;
        }

        assert_true(conf_nroutes < MAX_ROUTES);
        assert_int_equal(sscanf(p, "%15s \"%255[^\"]\" %63s",
                                conf_routes[conf_nroutes].method,
                                conf_routes[conf_nroutes].path,
                                conf_routes[conf_nroutes].name), 3);
        conf_nroutes++;
    }

    fclose(f);

    assert_true(conf_nroutes > 40);
}


static encore_route_table_t *
conf_table(void)
{
    int                    rc;
    void                  *other;
    size_t                 i;
    unsigned               method;
    const char            *err;
    encore_route_table_t  *t;

    read_routes_conf();

    t = encore_route_table_create();
    assert_non_null(t);

    for (i = 0; i < conf_nroutes; i++) {
        method = encore_route_method(conf_routes[i].method,
                                     strlen(conf_routes[i].method));
        assert_int_not_equal(method, 0);

        rc = encore_route_add(t, method, conf_routes[i].path,
                              strlen(conf_routes[i].path),
                              conf_routes[i].name, &other, &err);
        if (rc != ENCORE_ROUTE_OK) {
            fail_msg("%s %s: %s", conf_routes[i].method, conf_routes[i].path,
                     err);
        }
    }

    assert_int_equal(encore_route_compile(t), ENCORE_ROUTE_OK);
    assert_int_equal(encore_route_count(t), conf_nroutes);

    return t;
}


static int
result_code(const char *name)
{
    static const char  *names[] = {
        "found", "not_found", "not_allowed", "bad_path", "not_canonical"
    };
    int  i;

    for (i = 0; i < 5; i++) {
        if (strcmp(names[i], name) == 0) {
            return i;
        }
    }

    fail_msg("unknown result \"%s\"", name);
    return -1;
}


static unsigned
method_of(const char *name)
{
    return encore_route_method(name, strlen(name));
}


static void
check_match(encore_route_table_t *t, json_t *c)
{
    int                    rc, want;
    char                  *scratch;
    size_t                 i, len;
    json_t                *params, *v;
    const char            *path, *why, *key, *s;
    encore_route_match_t   m;

    why = json_string_value(json_object_get(c, "why"));
    path = json_string_value(json_object_get(c, "path"));
    len = strlen(path);
    want = result_code(json_string_value(json_object_get(c, "result")));

    scratch = malloc(len + 1);
    assert_non_null(scratch);

    rc = encore_route_match(t,
                 method_of(json_string_value(json_object_get(c, "method"))),
                 path, len, json_is_true(json_object_get(c, "decode")),
                 scratch, &m);

    if (rc != want) {
        fail_msg("%s: %s gives %d, want %d", why, path, rc, want);
    }

    s = json_string_value(json_object_get(c, "route"));
    if (s) {
        assert_non_null(m.data);
        if (strcmp(m.data, s) != 0) {
            fail_msg("%s: route %s, want %s", why, (char *) m.data, s);
        }
    }

    s = json_string_value(json_object_get(c, "allow"));
    if (s) {
        assert_int_equal(m.allow_len, strlen(s));
        assert_memory_equal(m.allow, s, m.allow_len);
    }

    params = json_object_get(c, "params");

    if (rc == ENCORE_ROUTE_FOUND) {
        assert_int_equal(m.nparams, params ? json_object_size(params) : 0);
    }

    json_object_foreach(params, key, v) {
        for (i = 0; i < m.nparams; i++) {
            if (strcmp(m.names[i], key) == 0) {
                break;
            }
        }

        if (i == m.nparams) {
            fail_msg("%s: no param %s", why, key);
        }

        s = json_string_value(v);
        if (m.value_lens[i] != strlen(s)
            || memcmp(m.values[i], s, m.value_lens[i]) != 0)
        {
            fail_msg("%s: param %s = \"%.*s\", want \"%s\"", why, key,
                     (int) m.value_lens[i], m.values[i], s);
        }
    }

    free(scratch);
}


static void
test_match_cases(void **state)
{
    char                   path[600];
    size_t                 i;
    json_t                *cases;
    encore_route_table_t  *t;

    t = conf_table();

    cases = json_load_file(here("match_cases.json", path, sizeof(path)),
                           JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(cases);
    assert_true(json_array_size(cases) > 30);

    for (i = 0; i < json_array_size(cases); i++) {
        check_match(t, json_array_get(cases, i));
    }

    json_decref(cases);
    encore_route_table_free(t);
}


/* every route of routes.conf matches itself, with "x" for its params */
static void
test_every_conf_route_matches(void **state)
{
    int                    rc;
    char                   path[256], *d;
    char                   scratch[256];
    size_t                 i;
    const char            *s;
    encore_route_match_t   m;
    encore_route_table_t  *t;

    t = conf_table();

    for (i = 0; i < conf_nroutes; i++) {
        d = path;

        for (s = conf_routes[i].path; *s; s++) {
            if (*s == '{') {
                *d++ = 'x';
                s = strchr(s, '}');
                continue;
            }

            *d++ = *s;
        }

        *d = '\0';

        rc = encore_route_match(t, method_of(conf_routes[i].method), path,
                                strlen(path), 1, scratch, &m);
        assert_int_equal(rc, ENCORE_ROUTE_FOUND);
        assert_string_equal(m.data, conf_routes[i].name);
    }

    encore_route_table_free(t);
}


static void
test_add_cases(void **state)
{
    int                    rc, want;
    void                  *other;
    char                   path[600];
    size_t                 i, j, n;
    json_t                *cases, *c, *routes, *r;
    const char            *err, *res, *tpl;
    encore_route_table_t  *t;

    cases = json_load_file(here("add_cases.json", path, sizeof(path)),
                           JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(cases);

    for (i = 0; i < json_array_size(cases); i++) {
        c = json_array_get(cases, i);
        routes = json_object_get(c, "routes");
        n = json_array_size(routes);
        res = json_string_value(json_object_get(c, "result"));

        want = strcmp(res, "ok") == 0 ? ENCORE_ROUTE_OK
               : strcmp(res, "dup") == 0 ? ENCORE_ROUTE_EDUP
               : strcmp(res, "conflict") == 0 ? ENCORE_ROUTE_ECONFLICT
               : ENCORE_ROUTE_EINVAL;

        t = encore_route_table_create();
        assert_non_null(t);

        rc = ENCORE_ROUTE_OK;
        other = NULL;

        for (j = 0; j < n; j++) {
            r = json_array_get(routes, j);
            tpl = json_string_value(json_array_get(r, 1));

            rc = encore_route_add(t,
                     method_of(json_string_value(json_array_get(r, 0))),
                     tpl, strlen(tpl), (void *) (uintptr_t) (j + 1), &other,
                     &err);

            if (j + 1 < n && rc != ENCORE_ROUTE_OK) {
                fail_msg("%s: route %zu: %s", json_string_value(
                         json_object_get(c, "why")), j, err);
            }
        }

        if (rc != want) {
            fail_msg("%s: %d, want %d",
                     json_string_value(json_object_get(c, "why")), rc, want);
        }

        if (json_object_get(c, "other")) {
            /* the route in the way, for the "declared in file:line" */
            assert_int_equal((uintptr_t) other,
                    json_integer_value(json_object_get(c, "other")) + 1);
        }

        if (rc != ENCORE_ROUTE_OK) {
            assert_non_null(err);
        }

        assert_int_equal(encore_route_compile(t), ENCORE_ROUTE_OK);
        encore_route_table_free(t);
    }

    json_decref(cases);
}


/* a literal branch that leads nowhere gives way to the parameter */
static void
test_backtracking(void **state)
{
    void                  *other;
    char                   scratch[64];
    const char            *err;
    encore_route_match_t   m;
    encore_route_table_t  *t;

    t = encore_route_table_create();
    assert_non_null(t);

    assert_int_equal(encore_route_add(t, ENCORE_ROUTE_GET, "/a/{x}/b", 8,
                                      "param", &other, &err), 0);
    assert_int_equal(encore_route_add(t, ENCORE_ROUTE_GET, "/a/c/{y}", 8,
                                      "literal", &other, &err), 0);
    assert_int_equal(encore_route_compile(t), 0);

    assert_int_equal(encore_route_match(t, ENCORE_ROUTE_GET, "/a/c/b", 6, 0,
                                        scratch, &m), ENCORE_ROUTE_FOUND);
    assert_string_equal(m.data, "literal");
    assert_int_equal(m.value_lens[0], 1);
    assert_memory_equal(m.values[0], "b", 1);

    assert_int_equal(encore_route_match(t, ENCORE_ROUTE_GET, "/a/c/d/b", 8, 0,
                                        scratch, &m), ENCORE_ROUTE_NOT_FOUND);

    assert_int_equal(encore_route_match(t, ENCORE_ROUTE_GET, "/a/d/b", 6, 0,
                                        scratch, &m), ENCORE_ROUTE_FOUND);
    assert_string_equal(m.data, "param");

    /* /a/c alone is not a route: "c" goes to {x}, which needs /b */
    assert_int_equal(encore_route_match(t, ENCORE_ROUTE_GET, "/a/c", 4, 0,
                                        scratch, &m), ENCORE_ROUTE_NOT_FOUND);

    encore_route_table_free(t);
}


static void
test_long_and_many_segments(void **state)
{
    int                    rc;
    char                  *path, *scratch;
    size_t                 i, len;
    encore_route_match_t   m;
    encore_route_table_t  *t;

    t = conf_table();

    /* a 1 MiB parameter */
    len = sizeof("/api/v1/users/") - 1 + (1 << 20);
    path = malloc(len + 1);
    scratch = malloc(len + 1);
    assert_non_null(path);
    assert_non_null(scratch);

    memcpy(path, "/api/v1/users/", sizeof("/api/v1/users/") - 1);
    memset(path + sizeof("/api/v1/users/") - 1, 'a', 1 << 20);
    path[len] = '\0';

    rc = encore_route_match(t, ENCORE_ROUTE_GET, path, len, 1, scratch, &m);
    assert_int_equal(rc, ENCORE_ROUTE_FOUND);
    assert_int_equal(m.value_lens[0], 1 << 20);

    /* a 1 MiB literal */
    rc = encore_route_match(t, ENCORE_ROUTE_GET, path + 13, len - 13, 0,
                            scratch, &m);
    assert_int_equal(rc, ENCORE_ROUTE_NOT_FOUND);

    /*
     * 500,000 segments: refused at the depth of the deepest route; a raw
     * path is handed to the normalised match then (dot segments further
     * on could shorten it), which refuses it the same way
     */
    for (i = 0; i + 1 < len; i += 2) {
        path[i] = '/';
        path[i + 1] = 'x';
    }

    rc = encore_route_match(t, ENCORE_ROUTE_GET, path, len & ~1u, 1, scratch,
                            &m);
    assert_int_equal(rc, ENCORE_ROUTE_NOT_CANONICAL);

    rc = encore_route_match(t, ENCORE_ROUTE_GET, path, len & ~1u, 0, NULL,
                            &m);
    assert_int_equal(rc, ENCORE_ROUTE_NOT_FOUND);

    /* only slashes */
    memset(path, '/', len);
    rc = encore_route_match(t, ENCORE_ROUTE_GET, path, len, 0, NULL, &m);
    assert_int_equal(rc, ENCORE_ROUTE_NOT_FOUND);
    rc = encore_route_match(t, ENCORE_ROUTE_GET, path, len, 1, scratch, &m);
    assert_int_equal(rc, ENCORE_ROUTE_NOT_CANONICAL);

    free(path);
    free(scratch);
    encore_route_table_free(t);
}


static void
test_depth_and_param_limits(void **state)
{
    int                    rc;
    void                  *other;
    char                   tpl[1024], *p, scratch[1024];
    size_t                 i;
    const char            *err;
    encore_route_match_t   m;
    encore_route_table_t  *t;

    t = encore_route_table_create();
    assert_non_null(t);

    /* 32 segments, 16 of them params: the most a template may have */
    p = tpl;
    for (i = 0; i < ENCORE_ROUTE_MAX_DEPTH; i++) {
        p += (i % 2) ? sprintf(p, "/{p%zu}", i) : sprintf(p, "/s%zu", i);
    }

    rc = encore_route_add(t, ENCORE_ROUTE_GET, tpl, p - tpl, "deep", &other,
                          &err);
    assert_int_equal(rc, ENCORE_ROUTE_OK);

    /* one more segment */
    sprintf(p, "/x");
    rc = encore_route_add(t, ENCORE_ROUTE_GET, tpl, strlen(tpl), "deeper",
                          &other, &err);
    assert_int_equal(rc, ENCORE_ROUTE_EINVAL);

    /* 17 params */
    p = tpl;
    for (i = 0; i < ENCORE_ROUTE_MAX_PARAMS + 1; i++) {
        p += sprintf(p, "/{q%zu}", i);
    }

    rc = encore_route_add(t, ENCORE_ROUTE_POST, tpl, p - tpl, "params",
                          &other, &err);
    assert_int_equal(rc, ENCORE_ROUTE_EINVAL);

    assert_int_equal(encore_route_compile(t), ENCORE_ROUTE_OK);

    p = tpl;
    for (i = 0; i < ENCORE_ROUTE_MAX_DEPTH; i++) {
        p += (i % 2) ? sprintf(p, "/v%zu", i) : sprintf(p, "/s%zu", i);
    }

    rc = encore_route_match(t, ENCORE_ROUTE_GET, tpl, p - tpl, 1, scratch, &m);
    assert_int_equal(rc, ENCORE_ROUTE_FOUND);
    assert_int_equal(m.nparams, ENCORE_ROUTE_MAX_PARAMS);
    assert_string_equal(m.names[15], "p31");
    assert_int_equal(m.value_lens[15], 3);
    assert_memory_equal(m.values[15], "v31", 3);

    /* adding after compile is refused */
    rc = encore_route_add(t, ENCORE_ROUTE_GET, "/late", 5, "late", &other,
                          &err);
    assert_int_equal(rc, ENCORE_ROUTE_EINVAL);

    encore_route_table_free(t);
}


/* 10,000 siblings and 10,000 distinct routes all find themselves */
static void
test_many_routes(void **state)
{
    int                    rc;
    void                  *other;
    char                   path[64], scratch[64];
    char                  *names;
    size_t                 i, len;
    const char            *err;
    encore_route_match_t   m;
    encore_route_table_t  *t;

    t = encore_route_table_create();
    assert_non_null(t);

    names = malloc(10000 * 16);
    assert_non_null(names);

    for (i = 0; i < 10000; i++) {
        sprintf(names + 16 * i, "r%zu", i);
        len = sprintf(path, "/api/v1/bench%zu/{id}", i);
        rc = encore_route_add(t, (i % 2) ? ENCORE_ROUTE_POST : ENCORE_ROUTE_GET,
                              path, len, names + 16 * i, &other, &err);
        assert_int_equal(rc, ENCORE_ROUTE_OK);
    }

    assert_int_equal(encore_route_compile(t), ENCORE_ROUTE_OK);
    assert_int_equal(encore_route_count(t), 10000);

    for (i = 0; i < 10000; i++) {
        len = sprintf(path, "/api/v1/bench%zu/7", i);
        rc = encore_route_match(t, (i % 2) ? ENCORE_ROUTE_POST
                                           : ENCORE_ROUTE_GET,
                                path, len, 0, scratch, &m);
        assert_int_equal(rc, ENCORE_ROUTE_FOUND);
        assert_ptr_equal(m.data, names + 16 * i);

        rc = encore_route_match(t, ENCORE_ROUTE_DELETE, path, len, 0,
                                scratch, &m);
        assert_int_equal(rc, ENCORE_ROUTE_NOT_ALLOWED);
    }

    len = sprintf(path, "/api/v1/bench10000/7");
    rc = encore_route_match(t, ENCORE_ROUTE_GET, path, len, 0, scratch, &m);
    assert_int_equal(rc, ENCORE_ROUTE_NOT_FOUND);

    free(names);
    encore_route_table_free(t);
}


static void
test_methods(void **state)
{
    assert_int_equal(method_of("GET"), ENCORE_ROUTE_GET);
    assert_int_equal(method_of("DELETE"), ENCORE_ROUTE_DELETE);
    assert_int_equal(method_of("OPTIONS"), ENCORE_ROUTE_OPTIONS);
    assert_int_equal(method_of("get"), 0);
    assert_int_equal(method_of("GETX"), 0);
    assert_int_equal(encore_route_method("GET", 2), 0);
}


static void
test_empty_table(void **state)
{
    char                   scratch[8];
    encore_route_match_t   m;
    encore_route_table_t  *t;

    t = encore_route_table_create();
    assert_non_null(t);
    assert_int_equal(encore_route_compile(t), ENCORE_ROUTE_OK);
    assert_int_equal(encore_route_match(t, ENCORE_ROUTE_GET, "/", 1, 1,
                                        scratch, &m), ENCORE_ROUTE_NOT_FOUND);
    encore_route_table_free(t);
    encore_route_table_free(NULL);
}


/* "/p<k>/aaa<c>aaa": a segment of len bytes with c in its middle */
static int
similar_path(char *path, int k, int len, int c)
{
    memset(path, 'a', 4 + len + 1);
    path[0] = '/';
    path[1] = 'p';
    path[2] = (char) ('0' + k);
    path[3] = '/';
    path[4 + len / 2] = (char) c;

    return 4 + len;
}


/*
 * Siblings that differ only where the child hash does not look (the
 * middle of segments longer than 16 bytes), in every length around the
 * hash's 8-byte words, under parents with 4 children (compared in turn)
 * and 10 (hashed): each still matches itself and nothing else.
 */
static void
test_similar_siblings(void **state)
{
    int                    i, k, len, rc, nsib;
    char                   path[64], scratch[64];
    void                  *other;
    const char            *err;
    encore_route_match_t   m;
    encore_route_table_t  *t;

    static const int  lens[] = { 1, 2, 7, 8, 9, 15, 16, 17, 24, 40 };

    for (nsib = 4; nsib <= 10; nsib += 6) {
        t = encore_route_table_create();
        assert_non_null(t);

        for (k = 0; k < 10; k++) {
            for (i = 0; i < nsib; i++) {
                len = similar_path(path, k, lens[k], '0' + i);
                rc = encore_route_add(t, ENCORE_ROUTE_GET, path, len,
                                      (void *) (intptr_t) (k * 10 + i + 1),
                                      &other, &err);
                assert_int_equal(rc, ENCORE_ROUTE_OK);
            }
        }

        assert_int_equal(encore_route_compile(t), ENCORE_ROUTE_OK);

        for (k = 0; k < 10; k++) {
            for (i = 0; i < nsib; i++) {
                len = similar_path(path, k, lens[k], '0' + i);

                rc = encore_route_match(t, ENCORE_ROUTE_GET, path, len, 0,
                                        NULL, &m);
                assert_int_equal(rc, ENCORE_ROUTE_FOUND);
                assert_int_equal((intptr_t) m.data, k * 10 + i + 1);

                rc = encore_route_match(t, ENCORE_ROUTE_GET, path, len, 1,
                                        scratch, &m);
                assert_int_equal(rc, ENCORE_ROUTE_FOUND);
                assert_int_equal((intptr_t) m.data, k * 10 + i + 1);

                /* one byte longer or shorter, one byte off, a missing one */
                assert_int_equal(encore_route_match(t, ENCORE_ROUTE_GET,
                                                    path, len + 1, 0, NULL,
                                                    &m),
                                 ENCORE_ROUTE_NOT_FOUND);
                assert_int_equal(encore_route_match(t, ENCORE_ROUTE_GET,
                                                    path, len - 1, 0, NULL,
                                                    &m),
                                 ENCORE_ROUTE_NOT_FOUND);

                len = similar_path(path, k, lens[k], 'b');
                assert_int_equal(encore_route_match(t, ENCORE_ROUTE_GET,
                                                    path, len, 0, NULL, &m),
                                 ENCORE_ROUTE_NOT_FOUND);

                len = similar_path(path, k, lens[k], '0' + nsib);
                assert_int_equal(encore_route_match(t, ENCORE_ROUTE_GET,
                                                    path, len, 0, NULL, &m),
                                 ENCORE_ROUTE_NOT_FOUND);
            }
        }

        encore_route_table_free(t);
    }
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_match_cases),
        cmocka_unit_test(test_every_conf_route_matches),
        cmocka_unit_test(test_add_cases),
        cmocka_unit_test(test_backtracking),
        cmocka_unit_test(test_long_and_many_segments),
        cmocka_unit_test(test_depth_and_param_limits),
        cmocka_unit_test(test_many_routes),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_empty_table),
        cmocka_unit_test(test_similar_siblings),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
