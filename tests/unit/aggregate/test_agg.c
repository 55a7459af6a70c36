/*
 * Unit tests: ngx_modules/aggregate/encore_agg.c, the nginx-independent core
 * of views (template split, field references, select, place, entity tags).
 *
 * The cases are data beside this file, agg_cases.json, one array per
 * function ({why, ...inputs, ...expected}); its ETags were computed with
 * Python's hashlib (base64url of the first 16 bytes of SHA-256).  Then what
 * a table says less well: every too-small buffer for every reference case,
 * reals that must read back as themselves, long arrays, the piece limit,
 * and the ownership rules of select and place.
 */

#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "../../../ngx_modules/aggregate/encore_agg.h"


#define OUT_MAX     4096
#define LIST_MAX    16

/* the ETag of the empty body: the default tag of etag_match cases */
#define EMPTY_ETAG  "\"47DEQpj8HBSa-_TImW-5JA\""


static json_t  *cases;


static const char *
here(const char *file, char *buf, size_t len)
{
    char  dir[512];

    /* __FILE__ is relative to where make runs (the project root) */
    snprintf(dir, sizeof(dir), "%s", __FILE__);
    snprintf(buf, len, "%s/%s", dirname(dir), file);
    return buf;
}


static int
cases_setup(void **state)
{
    char          path[600];
    json_error_t  err;

    cases = json_load_file(here("agg_cases.json", path, sizeof(path)),
                           JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
    if (cases == NULL) {
        fprintf(stderr, "agg_cases.json:%d: %s\n", err.line, err.text);
        return -1;
    }

    return 0;
}


static int
cases_teardown(void **state)
{
    json_decref(cases);
    return 0;
}


static json_t *
section(const char *name)
{
    json_t  *s;

    s = json_object_get(cases, name);
    assert_true(json_is_array(s));
    assert_true(json_array_size(s) > 0);

    return s;
}


static const char *
why(json_t *c)
{
    return json_string_value(json_object_get(c, "why"));
}


/* compact, in member order: order is part of a view's contract */
static char *
dump(json_t *v)
{
    char  *s;

    s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_non_null(s);

    return s;
}


static void
assert_json(json_t *c, json_t *got, json_t *want)
{
    char  *g, *w;

    g = dump(got);
    w = dump(want);

    if (strcmp(g, w) != 0) {
        fail_msg("%s: %s, want %s", why(c), g, w);
    }

    free(g);
    free(w);
}


/* a JSON array of strings as the encore_agg_str_t list select takes */
static size_t
str_list(json_t *a, encore_agg_str_t *list)
{
    size_t  i;

    assert_true(json_array_size(a) <= LIST_MAX);

    for (i = 0; i < json_array_size(a); i++) {
        list[i].data = json_string_value(json_array_get(a, i));
        list[i].len = json_string_length(json_array_get(a, i));
        assert_non_null(list[i].data);
    }

    return json_array_size(a);
}


static int
str_is(encore_agg_str_t *s, json_t *want)
{
    return s->len == json_string_length(want)
           && memcmp(s->data, json_string_value(want), s->len) == 0;
}


/* ---- template split ----------------------------------------------------- */

static void
test_split(void **state)
{
    int                  rc;
    size_t               i, k, max, n, off;
    json_t              *c, *want, *w;
    const char          *tmpl, *err;
    encore_agg_piece_t  *pieces;

    json_array_foreach(section("split"), i, c) {
        tmpl = json_string_value(json_object_get(c, "template"));
        want = json_object_get(c, "pieces");
        max = json_object_get(c, "max")
              ? (size_t) json_integer_value(json_object_get(c, "max"))
              : ENCORE_AGG_MAX_PIECES;

        /* exactly max pieces: ASan sees a write past them */
        pieces = malloc(max ? max * sizeof(encore_agg_piece_t) : 1);
        assert_non_null(pieces);

        err = NULL;
        rc = encore_agg_template_split(tmpl, strlen(tmpl), pieces, max, &n,
                                       &err);
        if (rc != 0) {
            fail_msg("%s: %s", why(c), err);
        }

        if (n != json_array_size(want)) {
            fail_msg("%s: %zu pieces, want %zu", why(c), n,
                     json_array_size(want));
        }

        off = 0;

        for (k = 0; k < n; k++) {
            w = json_array_get(want, k);

            /* the pieces cover the template, in order */
            assert_ptr_equal(pieces[k].text.data, tmpl + off);
            off += pieces[k].text.len;

            if (strcmp(json_string_value(json_array_get(w, 0)), "lit") == 0) {
                if (pieces[k].ref || !str_is(&pieces[k].text,
                                             json_array_get(w, 1)))
                {
                    fail_msg("%s: piece %zu is not literal \"%s\"", why(c),
                             k, json_string_value(json_array_get(w, 1)));
                }

                continue;
            }

            if (!pieces[k].ref
                || !str_is(&pieces[k].part, json_array_get(w, 1))
                || !str_is(&pieces[k].path, json_array_get(w, 2)))
            {
                fail_msg("%s: piece %zu is not {%s.%s}", why(c), k,
                         json_string_value(json_array_get(w, 1)),
                         json_string_value(json_array_get(w, 2)));
            }

            /* text is the whole "{part.path}" */
            assert_int_equal(pieces[k].text.len,
                             pieces[k].part.len + pieces[k].path.len + 3);
            assert_ptr_equal(pieces[k].part.data, pieces[k].text.data + 1);
            assert_ptr_equal(pieces[k].path.data,
                             pieces[k].part.data + pieces[k].part.len + 1);
        }

        assert_int_equal(off, strlen(tmpl));

        free(pieces);
    }
}


static void
test_split_errors(void **state)
{
    int                 rc;
    size_t              i, max, n;
    json_t             *c;
    const char         *tmpl, *err, *want;
    encore_agg_piece_t  pieces[ENCORE_AGG_MAX_PIECES];

    json_array_foreach(section("split_errors"), i, c) {
        tmpl = json_string_value(json_object_get(c, "template"));
        want = json_string_value(json_object_get(c, "error"));
        max = json_object_get(c, "max")
              ? (size_t) json_integer_value(json_object_get(c, "max"))
              : ENCORE_AGG_MAX_PIECES;

        err = NULL;
        rc = encore_agg_template_split(tmpl, strlen(tmpl), pieces, max, &n,
                                       &err);

        if (rc != -1 || err == NULL || strcmp(err, want) != 0) {
            fail_msg("%s: \"%s\" gives %d (%s), want \"%s\"", why(c), tmpl,
                     rc, err ? err : "no error", want);
        }
    }
}


/* the length given is the template: nothing past it is read */
static void
test_split_length(void **state)
{
    size_t              n;
    const char         *err;
    encore_agg_piece_t  pieces[ENCORE_AGG_MAX_PIECES];

    /* "{p.x}" cut before its "}" */
    assert_int_equal(encore_agg_template_split("/{p.x}", 5, pieces,
                         ENCORE_AGG_MAX_PIECES, &n, &err), -1);
    assert_string_equal(err, "a reference must end with \"}\"");

    assert_int_equal(encore_agg_template_split("/a}", 2, pieces,
                         ENCORE_AGG_MAX_PIECES, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(pieces[0].text.len, 2);

    assert_int_equal(encore_agg_template_split(NULL, 0, pieces,
                         ENCORE_AGG_MAX_PIECES, &n, &err), 0);
    assert_int_equal(n, 0);

    /* a NUL is literal text */
    assert_int_equal(encore_agg_template_split("a\0{p.x}", 7, pieces,
                         ENCORE_AGG_MAX_PIECES, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(pieces[0].text.len, 2);
}


/* ENCORE_AGG_MAX_PIECES pieces fit; one more does not */
static void
test_split_max_pieces(void **state)
{
    char                tmpl[256];
    size_t              i, n, len;
    const char         *err;
    encore_agg_piece_t  pieces[ENCORE_AGG_MAX_PIECES];

    len = 0;

    for (i = 0; i < ENCORE_AGG_MAX_PIECES / 2; i++) {
        len += sprintf(tmpl + len, "&%zu={p%zu.x}", i, i);
    }

    assert_int_equal(encore_agg_template_split(tmpl, len, pieces,
                         ENCORE_AGG_MAX_PIECES, &n, &err), 0);
    assert_int_equal(n, ENCORE_AGG_MAX_PIECES);

    for (i = 0; i < n; i++) {
        assert_int_equal(pieces[i].ref, i % 2);
    }

    tmpl[len] = '/';

    err = NULL;
    assert_int_equal(encore_agg_template_split(tmpl, len + 1, pieces,
                         ENCORE_AGG_MAX_PIECES, &n, &err), -1);
    assert_string_equal(err, "too many pieces");

    err = NULL;
    assert_int_equal(encore_agg_template_split(tmpl, len, pieces,
                         ENCORE_AGG_MAX_PIECES - 1, &n, &err), -1);
    assert_string_equal(err, "too many pieces");
}


/* ---- lookup ------------------------------------------------------------- */

static void
test_lookup(void **state)
{
    size_t       i;
    json_t      *c, *got, *want;
    const char  *path;

    json_array_foreach(section("lookup"), i, c) {
        path = json_string_value(json_object_get(c, "path"));
        want = json_object_get(c, "value");

        got = encore_agg_lookup(json_object_get(c, "doc"), path, strlen(path));

        if (want == NULL) {
            if (got != NULL) {
                fail_msg("%s: found %s", why(c), dump(got));
            }

            continue;
        }

        if (got == NULL) {
            fail_msg("%s: not found", why(c));
        }

        assert_json(c, got, want);
    }

    assert_null(encore_agg_lookup(NULL, "a", 1));
}


/* ---- references --------------------------------------------------------- */

typedef struct {
    json_t       *doc;
    const char   *path;
    const char   *prefix;
    size_t        max_items;
    int           rc;              /* ENCORE_AGG_* or the count */
    const char   *out;
    size_t        out_len;
} ref_case_t;


static void
ref_case(json_t *c, ref_case_t *rc)
{
    json_t  *v;

    rc->doc = json_object_get(c, "doc");
    rc->path = json_string_value(json_object_get(c, "path"));
    rc->prefix = json_object_get(c, "prefix")
                 ? json_string_value(json_object_get(c, "prefix")) : "";
    rc->max_items = json_object_get(c, "max_items")
                    ? (size_t) json_integer_value(json_object_get(c,
                                                  "max_items"))
                    : 20;

    v = json_object_get(c, "rc");

    if (json_is_integer(v)) {
        rc->rc = (int) json_integer_value(v);

    } else {
        assert_string_equal(json_string_value(v), "missing");
        rc->rc = ENCORE_AGG_MISSING;
    }

    rc->out = json_string_value(json_object_get(c, "out"));
    rc->out_len = json_string_length(json_object_get(c, "out"));
}


static void
test_ref(void **state)
{
    int          rc;
    char        *out;
    size_t       i, len, plen;
    json_t      *c;
    ref_case_t   t;

    json_array_foreach(section("ref"), i, c) {
        ref_case(c, &t);

        out = malloc(OUT_MAX);
        assert_non_null(out);

        plen = strlen(t.prefix);
        memcpy(out, t.prefix, plen);
        len = plen;

        rc = encore_agg_ref_append(t.doc, t.path, strlen(t.path),
                                   t.max_items, out, OUT_MAX, &len);

        if (rc != t.rc) {
            fail_msg("%s: %d, want %d", why(c), rc, t.rc);
        }

        if (rc < 0) {
            assert_int_equal(len, plen);
            assert_memory_equal(out, t.prefix, plen);

        } else if (len != t.out_len || memcmp(out, t.out, len) != 0) {
            fail_msg("%s: \"%.*s\", want \"%s\"", why(c), (int) len, out,
                     t.out);
        }

        free(out);
    }
}


/*
 * Every buffer too small by one byte or more: ENCORE_AGG_NO_ROOM, with
 * *len and out as they were (a value that does not fit leaves no half
 * list behind, as the header says).  The exact size fits.
 */
static void
test_ref_no_room(void **state)
{
    int          rc;
    char         buf[8], *out, *was;
    size_t       i, cap, len, plen;
    json_t      *c, *doc;
    ref_case_t   t;

    json_array_foreach(section("ref"), i, c) {
        ref_case(c, &t);

        if (t.rc < 0) {
            continue;
        }

        plen = strlen(t.prefix);

        for (cap = plen; cap <= t.out_len; cap++) {
            /* exactly cap bytes: ASan sees a write past them */
            out = malloc(cap ? cap : 1);
            was = malloc(cap ? cap : 1);
            assert_non_null(out);
            assert_non_null(was);

            memset(out, 'Z', cap);
            memcpy(out, t.prefix, plen);
            memcpy(was, out, cap);

            len = plen;
            rc = encore_agg_ref_append(t.doc, t.path, strlen(t.path),
                                       t.max_items, out, cap, &len);

            if (cap == t.out_len) {
                if (rc != t.rc || len != t.out_len
                    || memcmp(out, t.out, len) != 0)
                {
                    fail_msg("%s: cap %zu: %d \"%.*s\"", why(c), cap, rc,
                             (int) len, out);
                }

            } else if (rc != ENCORE_AGG_NO_ROOM || len != plen
                       || memcmp(out, was, cap) != 0)
            {
                fail_msg("%s: cap %zu: %d, len %zu, out \"%.*s\"", why(c),
                         cap, rc, len, (int) cap, out);
            }

            free(out);
            free(was);
        }
    }

    /* *len past cap, a caller's mistake: no room, and nothing written */
    doc = json_loads("{\"a\":[]}", 0, NULL);
    assert_non_null(doc);

    memset(buf, 'Z', sizeof(buf));
    len = 5;
    assert_int_equal(encore_agg_ref_append(doc, "a", 1, 20, buf, 4, &len),
                     ENCORE_AGG_NO_ROOM);
    assert_int_equal(len, 5);
    assert_int_equal(buf[4], 'Z');

    json_decref(doc);
}


static size_t
pct_decode(const char *s, size_t n, char *out)
{
    size_t        i, o;
    unsigned int  c;

    o = 0;

    for (i = 0; i < n; i++) {
        if (s[i] == '%') {
            assert_true(i + 2 < n);
            assert_int_equal(sscanf(s + i + 1, "%2X", &c), 1);
            out[o++] = (char) c;
            i += 2;
            continue;
        }

        out[o++] = s[i];
    }

    out[o] = '\0';

    return o;
}


/*
 * A real gives the fewest digits that read back as the same double (the
 * text a JSON writer would choose, give or take the exponent's form);
 * NULL: a denormal, where only reading back is checked.
 */
static void
test_ref_reals(void **state)
{
    static const struct {
        double       d;
        const char  *text;
    } reals[] = {
        { 0.1, "0.1" },
        { 1.0 / 3, "0.3333333333333333" },
        { 2.0 / 3, "0.6666666666666666" },
        { 0.30000000000000004, "0.30000000000000004" },
        { 1e-300, "1e-300" },
        { 5e-324, NULL },
        { 2.2250738585072014e-308, "2.2250738585072014e-308" },
        { 1.7976931348623157e308, "1.7976931348623157e%2B308" },
        { -2.5, "-2.5" },
        { 123456789.125, "123456789.125" },
        { 1e21, "1e%2B21" },
        { 1e22, "1e%2B22" },
        { 0.0, "0" },
        { -0.0, "-0" },
        { 9007199254740993.0, "9007199254740992" },
        { 100.0, "100" },
        { -1e-7, "-1e-07" },
    };

    int      rc;
    char     out[64], dec[64], *end;
    size_t   i, len;
    double   d;
    json_t  *doc;

    for (i = 0; i < sizeof(reals) / sizeof(reals[0]); i++) {
        doc = json_pack("{s:f}", "x", reals[i].d);
        assert_non_null(doc);

        len = 0;
        rc = encore_agg_ref_append(doc, "x", 1, 20, out, sizeof(out), &len);
        assert_int_equal(rc, 1);

        if (reals[i].text
            && (len != strlen(reals[i].text)
                || memcmp(out, reals[i].text, len) != 0))
        {
            fail_msg("%.17g gives \"%.*s\", want \"%s\"", reals[i].d,
                     (int) len, out, reals[i].text);
        }

        pct_decode(out, len, dec);

        d = strtod(dec, &end);
        assert_int_equal(*end, '\0');

        if (d != reals[i].d || signbit(d) != signbit(reals[i].d)) {
            fail_msg("%.17g gives \"%s\"", reals[i].d, dec);
        }

        json_decref(doc);
    }
}


/* max_items bounds a long array; the separators are the only "," */
static void
test_ref_long_array(void **state)
{
    int      rc;
    char    *out;
    size_t   i, len, commas, max;
    json_t  *doc, *a;

    a = json_array();
    assert_non_null(a);

    for (i = 0; i < 1000; i++) {
        assert_int_equal(json_array_append_new(a,
                             (i % 2) ? json_integer((json_int_t) i)
                                     : json_string("x,y")), 0);
    }

    doc = json_pack("{s:o}", "ids", a);
    assert_non_null(doc);

    out = malloc(16384);
    assert_non_null(out);

    for (max = 0; max <= 1001; max += (max < 30) ? 1 : 97) {
        len = 0;
        rc = encore_agg_ref_append(doc, "ids", 3, max, out, 16384, &len);
        assert_int_equal(rc, max < 1000 ? max : 1000);

        commas = 0;

        for (i = 0; i < len; i++) {
            commas += (out[i] == ',');
        }

        assert_int_equal(commas, rc ? (size_t) rc - 1 : 0);
    }

    free(out);
    json_decref(doc);
}


/* ---- select ------------------------------------------------------------- */

static void
test_select(void **state)
{
    char              *before, *after;
    size_t             i, nallow, ndeny;
    json_t            *c, *answer, *want, *got, *pick;
    encore_agg_str_t   allow[LIST_MAX], deny[LIST_MAX];

    json_array_foreach(section("select"), i, c) {
        answer = json_object_get(c, "answer");
        pick = json_object_get(c, "pick");
        want = json_object_get(c, "result");

        nallow = str_list(json_object_get(c, "fields"), allow);
        ndeny = str_list(json_object_get(c, "deny"), deny);

        before = dump(answer);

        got = encore_agg_select(answer, json_string_value(pick),
                                json_string_length(pick), allow, nallow,
                                deny, ndeny);

        if (want == NULL) {
            if (got != NULL) {
                fail_msg("%s: selected %s", why(c), dump(got));
            }

        } else {
            if (got == NULL) {
                fail_msg("%s: nothing selected", why(c));
            }

            assert_json(c, got, want);
        }

        /* the answer is the part's: select leaves it alone */
        after = dump(answer);
        assert_string_equal(before, after);

        json_decref(got);
        free(before);
        free(after);
    }
}


/* a new reference: what select gives outlives the answer */
static void
check_outlives(const char *text, const char *pick, size_t pick_len,
    const encore_agg_str_t *deny, size_t ndeny, const char *want)
{
    char    *s;
    json_t  *answer, *got;

    answer = json_loads(text, 0, NULL);
    assert_non_null(answer);

    got = encore_agg_select(answer, pick, pick_len, NULL, 0, deny, ndeny);
    assert_non_null(got);
    json_decref(answer);

    s = dump(got);
    assert_string_equal(s, want);

    free(s);
    json_decref(got);
}


static void
test_select_reference(void **state)
{
    encore_agg_str_t  deny = { "b", 1 };

    check_outlives("{\"items\":[{\"a\":1,\"b\":2}],\"n\":null}", "items", 5,
                   NULL, 0, "[{\"a\":1,\"b\":2}]");
    check_outlives("{\"items\":[{\"a\":1,\"b\":2}]}", "items", 5, &deny, 1,
                   "[{\"a\":1}]");
    check_outlives("{\"a\":1,\"b\":2}", NULL, 0, &deny, 1, "{\"a\":1}");

    /* pick is a length, not a C string */
    check_outlives("{\"a\":{\"b\":1},\"ab\":2}", "abc", 1, NULL, 0,
                   "{\"b\":1}");
}


/* ---- place -------------------------------------------------------------- */

static void
test_place(void **state)
{
    int          rc, want_rc;
    char        *before, *after;
    size_t       i, k;
    json_t      *c, *view, *step, *key, *value;

    json_array_foreach(section("place"), i, c) {
        view = json_deep_copy(json_object_get(c, "view"));
        assert_non_null(view);

        /* the values stay the case's too, as answers stay the parts' */
        before = dump(c);

        json_array_foreach(json_object_get(c, "steps"), k, step) {
            key = json_object_get(step, "key");
            value = json_incref(json_object_get(step, "value"));
            assert_non_null(value);
            want_rc = json_object_get(step, "rc")
                      ? (int) json_integer_value(json_object_get(step, "rc"))
                      : 0;

            rc = encore_agg_place(view, json_string_value(key),
                                  json_string_length(key),
                                  json_is_true(json_object_get(step, "merge")),
                                  value);

            if (rc != want_rc) {
                fail_msg("%s: step %zu gives %d, want %d", why(c), k, rc,
                         want_rc);
            }
        }

        assert_json(c, view, json_object_get(c, "result"));

        after = dump(c);
        if (strcmp(before, after) != 0) {
            fail_msg("%s: placing changed a value: %s", why(c), after);
        }

        free(before);
        free(after);
        json_decref(view);
    }
}


/*
 * Placing changes only the view: a part placed under a key another part
 * groups into, or merged and then grouped into, keeps its answer as it
 * came (an answer is its part's, whoever reads it after); and one answer
 * placed twice (a pick and the whole) does not make a loop, which would
 * leak and never serialise.
 */
static void
check_places(const char *answers, const char *steps, const char *want)
{
    char          *before, *after, *got;
    size_t         i;
    json_t        *a, *s, *view, *step, *v;
    json_error_t   err;

    a = json_loads(answers, 0, &err);
    s = json_loads(steps, 0, &err);
    assert_non_null(a);
    assert_non_null(s);

    before = dump(a);

    view = json_object();
    assert_non_null(view);

    /* [answer index, pick or null, key or null for merge] */
    json_array_foreach(s, i, step) {
        v = encore_agg_select(
                json_array_get(a, json_integer_value(json_array_get(step, 0))),
                json_string_value(json_array_get(step, 1)),
                json_string_length(json_array_get(step, 1)), NULL, 0, NULL, 0);
        assert_non_null(v);

        assert_int_equal(encore_agg_place(view,
                             json_string_value(json_array_get(step, 2)),
                             json_string_length(json_array_get(step, 2)),
                             json_is_null(json_array_get(step, 2)), v), 0);
    }

    after = dump(a);
    assert_string_equal(before, after);

    got = json_dumps(view, JSON_COMPACT);
    assert_non_null(got);
    assert_string_equal(got, want);

    /* the answers go first, as when a view is done: LSan sees a loop */
    json_decref(a);
    json_decref(s);
    json_decref(view);
    free(before);
    free(after);
    free(got);
}


static void
test_place_answers_unchanged(void **state)
{
    check_places("[{\"a\":1}, 2]",
                 "[[0, null, \"group\"], [1, null, \"group.b\"]]",
                 "{\"group\":{\"a\":1,\"b\":2}}");

    check_places("[{\"g\":{\"a\":1}}, 2]",
                 "[[0, null, null], [1, null, \"g.b\"]]",
                 "{\"g\":{\"a\":1,\"b\":2}}");

    check_places("[{\"y\":{\"z\":{}}}, 1]",
                 "[[0, null, \"x\"], [1, null, \"x.y.z.w\"]]",
                 "{\"x\":{\"y\":{\"z\":{\"w\":1}}}}");

    check_places("[{\"x\":{}}]",
                 "[[0, \"x\", \"a\"], [0, null, \"a.b\"]]",
                 "{\"a\":{\"b\":{\"x\":{}}}}");

    check_places("[{\"x\":{\"k\":1}}]",
                 "[[0, null, null], [0, null, \"x.y\"]]",
                 "{\"x\":{\"k\":1,\"y\":{\"x\":{\"k\":1}}}}");
}


/* value is stolen on success and on every failure */
static void
test_place_steals(void **state)
{
    json_t  *view, *v;

    view = json_loads("{\"n\":1}", 0, NULL);
    assert_non_null(view);

    v = json_array();
    assert_non_null(v);

    /* one reference for the test, one to be stolen each time */
    json_incref(v);
    assert_int_equal(encore_agg_place(view, "a", 1, 0, v), 0);
    assert_int_equal(v->refcount, 2);
    assert_int_equal(json_object_del(view, "a"), 0);
    assert_int_equal(v->refcount, 1);

    json_incref(v);
    assert_int_equal(encore_agg_place(view, "n.x", 3, 0, v), -1);
    assert_int_equal(v->refcount, 1);

    json_incref(v);
    assert_int_equal(encore_agg_place(view, NULL, 0, 1, v), -1);
    assert_int_equal(v->refcount, 1);

    /* a key jansson refuses (not UTF-8), last member and on the way */
    json_incref(v);
    assert_int_equal(encore_agg_place(view, "\xff", 1, 0, v), -1);
    assert_int_equal(v->refcount, 1);

    json_incref(v);
    assert_int_equal(encore_agg_place(view, "\xff.a", 3, 0, v), -1);
    assert_int_equal(v->refcount, 1);

    /* nothing to place: a part that selected nothing */
    assert_int_equal(encore_agg_place(view, "a", 1, 0, NULL), -1);

    assert_int_equal(json_object_size(view), 1);

    json_decref(v);
    json_decref(view);
}


/* ---- entity tags -------------------------------------------------------- */

static void
check_etag_form(const char *etag)
{
    size_t  i;

    assert_int_equal(strlen(etag), ENCORE_AGG_ETAG_LEN);
    assert_int_equal(etag[0], '"');
    assert_int_equal(etag[ENCORE_AGG_ETAG_LEN - 1], '"');

    for (i = 1; i < ENCORE_AGG_ETAG_LEN - 1; i++) {
        assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                               "abcdefghijklmnopqrstuvwxyz0123456789-_",
                               etag[i]));
    }
}


static void
test_etag(void **state)
{
    static const struct {
        char         fill[3];
        size_t       unit, count;
        const char  *etag;
    } big[] = {
        /* python3: hashlib.sha256(b"\0\xff" * 3), b"a" * 1000, ... */
        { "\0\xff", 2, 3, "\"R-N8ZnZ3EaLIhdIELK5LKQ\"" },
        { "a", 1, 1000, "\"Qe3s5C1j6Nm_UVqbppMuHA\"" },
        { "x", 1, 100000, "\"1p5omIFXgzJyMFqvIfRTyA\"" },
    };

    char     etag[ENCORE_AGG_ETAG_LEN + 1], *body;
    size_t   i, k;
    json_t  *c, *b;

    json_array_foreach(section("etag"), i, c) {
        b = json_object_get(c, "body");

        memset(etag, 'Z', sizeof(etag));
        encore_agg_etag(json_string_value(b), json_string_length(b), etag);

        check_etag_form(etag);
        assert_string_equal(etag,
                            json_string_value(json_object_get(c, "etag")));
    }

    for (i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
        body = malloc(big[i].unit * big[i].count);
        assert_non_null(body);

        for (k = 0; k < big[i].count; k++) {
            memcpy(body + k * big[i].unit, big[i].fill, big[i].unit);
        }

        encore_agg_etag(body, big[i].unit * big[i].count, etag);
        assert_string_equal(etag, big[i].etag);

        free(body);
    }
}


static void
test_etag_match(void **state)
{
    int          got;
    char        *h;
    size_t       i, len;
    json_t      *c;
    const char  *etag;

    json_array_foreach(section("etag_match"), i, c) {
        etag = json_object_get(c, "etag")
               ? json_string_value(json_object_get(c, "etag")) : EMPTY_ETAG;
        len = json_string_length(json_object_get(c, "header"));

        /* exactly the header's bytes: ASan sees a read past them */
        h = malloc(len ? len : 1);
        assert_non_null(h);
        memcpy(h, json_string_value(json_object_get(c, "header")), len);

        got = encore_agg_etag_match(h, len, etag, strlen(etag));

        if (got != json_is_true(json_object_get(c, "match"))) {
            fail_msg("%s: [%.*s] gives %d", why(c), (int) len, h, got);
        }

        free(h);
    }
}


/* the scanner: what jansson refuses, and the pick's bytes */
static void
test_scan(void **state)
{
    int          got, want;
    char        *text;
    size_t       i, len, start, end;
    json_t      *c;
    const char  *rc, *value, *pick;

    json_array_foreach(section("scan"), i, c) {
        rc = json_string_value(json_object_get(c, "rc"));
        pick = json_string_value(json_object_get(c, "pick"));
        len = json_string_length(json_object_get(c, "json"));

        want = strcmp(rc, "ok") == 0 ? ENCORE_AGG_SCAN_OK
               : strcmp(rc, "invalid") == 0 ? ENCORE_AGG_SCAN_INVALID
               : strcmp(rc, "no_pick") == 0 ? ENCORE_AGG_SCAN_NO_PICK
               : ENCORE_AGG_SCAN_ESCAPED;

        /* exactly the text's bytes: ASan sees a read past them */
        text = malloc(len ? len : 1);
        assert_non_null(text);
        memcpy(text, json_string_value(json_object_get(c, "json")), len);

        start = end = 0;
        got = encore_agg_scan(text, len, pick, strlen(pick), &start, &end);

        if (got != want) {
            fail_msg("%s: [%.*s] gives %d, not %s", why(c), (int) len, text,
                     got, rc);
        }

        value = json_string_value(json_object_get(c, "value"));

        if (got == ENCORE_AGG_SCAN_OK && value != NULL
            && (end - start != strlen(value)
                || memcmp(text + start, value, end - start) != 0))
        {
            fail_msg("%s: found [%.*s], not [%s]", why(c),
                     (int) (end - start), text + start, value);
        }

        free(text);
    }
}


/* a view's own tag matches it, in every form a client sends it back */
static void
test_etag_roundtrip(void **state)
{
    char         etag[ENCORE_AGG_ETAG_LEN + 1], other[ENCORE_AGG_ETAG_LEN + 1],
                 h[256];
    size_t       i;
    const char  *bodies[] = { "", "{}", "{\"a\":1}", "[1,2,3]" };

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        encore_agg_etag(bodies[i], strlen(bodies[i]), etag);
        encore_agg_etag("x", 1, other);

        assert_true(encore_agg_etag_match(etag, strlen(etag), etag,
                                          strlen(etag)));

        snprintf(h, sizeof(h), "W/%s", etag);
        assert_true(encore_agg_etag_match(h, strlen(h), etag, strlen(etag)));

        snprintf(h, sizeof(h), "%s, W/%s", other, etag);
        assert_true(encore_agg_etag_match(h, strlen(h), etag, strlen(etag)));

        assert_false(encore_agg_etag_match(other, strlen(other), etag,
                                           strlen(etag)));
    }
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_split_errors),
        cmocka_unit_test(test_split_length),
        cmocka_unit_test(test_split_max_pieces),
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_ref),
        cmocka_unit_test(test_ref_no_room),
        cmocka_unit_test(test_ref_reals),
        cmocka_unit_test(test_ref_long_array),
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_select_reference),
        cmocka_unit_test(test_place),
        cmocka_unit_test(test_place_answers_unchanged),
        cmocka_unit_test(test_place_steals),
        cmocka_unit_test(test_etag),
        cmocka_unit_test(test_etag_match),
        cmocka_unit_test(test_etag_roundtrip),
        cmocka_unit_test(test_scan),
    };

    return cmocka_run_group_tests_name("aggregate", tests, cases_setup,
                                       cases_teardown);
}
