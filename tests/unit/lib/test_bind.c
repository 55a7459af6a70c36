/*
 * bind: field tables checked against bodies and query strings.
 *
 * The body cases are data: bind_cases.json beside this file lists
 * {why, mode, body, errors[], out?} against one table exercising every
 * type (thing_fields below); errors[] names every field expected to fail
 * and nothing else, out (when given) is the normalised object expected.
 * What depends on today's date, the slots and the query strings are C.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bind.h"


typedef struct {
    enc_value_t  name;
    enc_value_t  country;
    enc_value_t  count;
    enc_value_t  live;
    enc_value_t  ref;
    enc_value_t  kind;
    enc_value_t  genres;
} thing_in_t;

static const char *const  kinds[] = { "album", "single", "ep", NULL };

static const enc_field_t  genre = {
    .name = "genre", .type = ENC_STRING, .min = 1, .max = 5
};

static const enc_field_t  tag = {
    .name = "tag", .type = ENC_STRING, .flags = ENC_LOWER, .min = 1,
    .max = 10
};

static const enc_field_t  thing_fields[] = {
    { .name = "id", .type = ENC_UUID, .flags = ENC_OUT | ENC_KEY },
    { .name = "name", .type = ENC_STRING,
      .flags = ENC_OUT | ENC_IN | ENC_REQUIRED | ENC_NOT_BLANK,
      .min = 1, .max = 5, .slot = ENC_SLOT(thing_in_t, name) },
    { .name = "slug", .type = ENC_SLUG,
      .flags = ENC_OUT | ENC_IN | ENC_REQUIRED, .min = 2, .max = 10 },
    { .name = "bio", .type = ENC_STRING, .flags = ENC_OUT | ENC_IN,
      .def = "\"\"" },
    { .name = "country", .type = ENC_COUNTRY,
      .flags = ENC_OUT | ENC_IN | ENC_NULLABLE,
      .slot = ENC_SLOT(thing_in_t, country) },
    { .name = "year", .type = ENC_INT,
      .flags = ENC_OUT | ENC_IN | ENC_NULLABLE, .min = 1000, .max = 2100 },
    { .name = "count", .type = ENC_INT, .flags = ENC_OUT | ENC_IN,
      .min = -5, .max = 5, .def = "0", .slot = ENC_SLOT(thing_in_t, count) },
    { .name = "live", .type = ENC_BOOL, .flags = ENC_OUT | ENC_IN,
      .def = "false", .slot = ENC_SLOT(thing_in_t, live) },
    { .name = "ref", .type = ENC_UUID,
      .flags = ENC_OUT | ENC_IN | ENC_NULLABLE,
      .slot = ENC_SLOT(thing_in_t, ref) },
    { .name = "released", .type = ENC_DATE,
      .flags = ENC_OUT | ENC_IN | ENC_NULLABLE },
    { .name = "kind", .type = ENC_ENUM, .flags = ENC_OUT | ENC_IN,
      .values = kinds, .def = "\"album\"",
      .slot = ENC_SLOT(thing_in_t, kind) },
    { .name = "genres", .type = ENC_ARRAY,
      .flags = ENC_OUT | ENC_IN | ENC_UNIQUE, .max = 3, .item = &genre,
      .def = "[]", .slot = ENC_SLOT(thing_in_t, genres) },
    { .name = "tags", .type = ENC_ARRAY,
      .flags = ENC_OUT | ENC_IN | ENC_UNIQUE, .min = 1, .item = &tag },
    { .name = "owner", .type = ENC_UUID,
      .flags = ENC_OUT | ENC_IN_CREATE },
    { .name = "created_at", .type = ENC_TIME, .flags = ENC_OUT },
    ENC_FIELD_END
};


static unsigned
parse_mode(const char *s)
{
    unsigned  mode = 0;

    if (strncmp(s, "create", 6) == 0) {
        mode = ENC_BIND_CREATE;
    } else if (strncmp(s, "patch", 5) == 0) {
        mode = ENC_BIND_PATCH;
    } else if (strncmp(s, "all", 3) == 0) {
        mode = ENC_BIND_ALL;
    } else {
        fail_msg("unknown mode \"%s\"", s);
    }
    if (strstr(s, " strict") != NULL) {
        mode |= ENC_BIND_STRICT;
    }
    return mode;
}


/* the "field" members of v's errors, as a JSON array */
static json_t *
error_fields(const enc_validation_t *v)
{
    size_t   i;
    json_t  *e, *names = json_array();

    json_array_foreach(v->errors, i, e) {
        json_array_append(names, json_object_get(e, "field"));
    }
    return names;
}


/* 1 if the two arrays hold the same strings, whatever the order */
static int
same_set(json_t *a, json_t *b)
{
    size_t  i, k;
    int     found;

    if (json_array_size(a) != json_array_size(b)) {
        return 0;
    }
    for (i = 0; i < json_array_size(a); i++) {
        found = 0;
        for (k = 0; k < json_array_size(b); k++) {
            found |= json_equal(json_array_get(a, i), json_array_get(b, k));
        }
        if (!found) {
            return 0;
        }
    }
    return 1;
}


/* 1 if obj has a member named by one of the error fields ("genres[1]"
   names "genres") */
static int
holds_failed(json_t *obj, json_t *fields)
{
    char         name[128], *br;
    size_t       i;
    json_t      *f;

    json_array_foreach(fields, i, f) {
        snprintf(name, sizeof(name), "%s", json_string_value(f));
        if ((br = strchr(name, '[')) != NULL) {
            *br = '\0';
        }
        if (json_object_get(obj, name) != NULL) {
            return 1;
        }
    }
    return 0;
}


static void
test_body_cases(void **state)
{
    int                rc;
    char               dir[512], path[600], *got_s, *want_s, *body_s;
    size_t             i;
    json_t            *cases, *c, *body, *out, *names, *want, *expect;
    thing_in_t         in;
    const char        *why;
    enc_validation_t   v;

    /* __FILE__ is relative to where make runs (the project root); NUL
       inside strings is allowed so that the cases can hold it */
    snprintf(dir, sizeof(dir), "%s", __FILE__);
    snprintf(path, sizeof(path), "%s/bind_cases.json", dirname(dir));
    cases = json_load_file(path, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
                           NULL);
    assert_non_null(cases);
    assert_true(json_array_size(cases) > 100);

    json_array_foreach(cases, i, c) {
        why = json_string_value(json_object_get(c, "why"));
        body = json_object_get(c, "body");
        want = json_object_get(c, "errors");
        expect = json_object_get(c, "out");
        assert_non_null(why);
        assert_true(json_is_array(want));

        enc_validation_init(&v);
        memset(&in, 0x5a, sizeof(in));
        rc = enc_bind_json(json_is_null(body) ? NULL : body, thing_fields,
                           parse_mode(json_string_value(
                               json_object_get(c, "mode"))),
                           &out, &in, &v);
        names = error_fields(&v);
        body_s = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);

        if (json_array_size(want) == 0 && rc != 0) {
            got_s = json_dumps(v.errors, JSON_COMPACT);
            fail_msg("case %zu (%s) %s: refused: %s", i, why, body_s, got_s);
        }
        if (json_array_size(want) != 0 && rc == 0) {
            fail_msg("case %zu (%s) %s: accepted", i, why, body_s);
        }
        if (!same_set(names, want)) {
            got_s = json_dumps(names, JSON_COMPACT);
            want_s = json_dumps(want, JSON_COMPACT);
            fail_msg("case %zu (%s) %s: errors for %s, want %s", i, why,
                     body_s, got_s, want_s);
        }

        if (rc == 0) {
            assert_true(json_is_object(out));
            assert_false(enc_validation_failed(&v));
            if (expect != NULL && !json_equal(out, expect)) {
                got_s = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
                want_s = json_dumps(expect, JSON_COMPACT | JSON_SORT_KEYS);
                fail_msg("case %zu (%s): out %s, want %s", i, why, got_s,
                         want_s);
            }
            /* never a member the table does not name as an input */
            assert_null(json_object_get(out, "created_at"));
            assert_null(json_object_get(out, "nope"));
        } else {
            /* every error carries a message; out holds the fields that
               passed (none that failed), or is NULL for a non-object */
            for (size_t k = 0; k < json_array_size(v.errors); k++) {
                assert_true(json_is_string(json_object_get(
                    json_array_get(v.errors, k), "message")));
            }
            if (body != NULL && !json_is_null(body)
                && !json_is_object(body))
            {
                assert_null(out);
            } else {
                assert_true(json_is_object(out));
                assert_false(holds_failed(out, names));
            }
        }

        free(body_s);
        json_decref(names);
        json_decref(out);
        enc_validation_free(&v);
    }

    json_decref(cases);
}


static int
bind_one(const enc_field_t *fields, const char *text, unsigned mode,
    json_t **out)
{
    int                rc;
    json_t            *body;
    enc_validation_t   v;

    body = json_loads(text, 0, NULL);
    assert_non_null(body);
    enc_validation_init(&v);
    rc = enc_bind_json(body, fields, mode, out, NULL, &v);
    assert_int_equal(rc == 0, !enc_validation_failed(&v));
    if (rc != 0) {
        json_decref(*out);
        *out = NULL;
    }
    enc_validation_free(&v);
    json_decref(body);
    return rc;
}


/* NOT_FUTURE: INT up to this year (UTC), DATE up to today (UTC) */
static void
test_not_future(void **state)
{
    char               text[128], today[16], tomorrow[16];
    time_t             now;
    json_t            *out;
    struct tm          tm;
    static const enc_field_t  fields[] = {
        { .name = "year", .type = ENC_INT,
          .flags = ENC_IN | ENC_NULLABLE | ENC_NOT_FUTURE, .min = 1000 },
        { .name = "day", .type = ENC_DATE,
          .flags = ENC_IN | ENC_NOT_FUTURE },
        ENC_FIELD_END
    };

    now = time(NULL);
    gmtime_r(&now, &tm);
    strftime(today, sizeof(today), "%Y-%m-%d", &tm);
    /* two days on: tomorrow in UTC whatever the hour */
    now += 2 * 86400;
    gmtime_r(&now, &tm);
    strftime(tomorrow, sizeof(tomorrow), "%Y-%m-%d", &tm);
    now -= 2 * 86400;
    gmtime_r(&now, &tm);

    snprintf(text, sizeof(text), "{\"year\": %d}", tm.tm_year + 1900);
    assert_int_equal(bind_one(fields, text, ENC_BIND_PATCH, &out), 0);
    json_decref(out);
    snprintf(text, sizeof(text), "{\"year\": %d}", tm.tm_year + 1901);
    assert_int_equal(bind_one(fields, text, ENC_BIND_PATCH, &out), -1);
    assert_int_equal(bind_one(fields, "{\"year\": 1000}", ENC_BIND_PATCH,
                              &out), 0);
    json_decref(out);
    assert_int_equal(bind_one(fields, "{\"year\": 999}", ENC_BIND_PATCH,
                              &out), -1);

    snprintf(text, sizeof(text), "{\"day\": \"%s\"}", today);
    assert_int_equal(bind_one(fields, text, ENC_BIND_PATCH, &out), 0);
    json_decref(out);
    snprintf(text, sizeof(text), "{\"day\": \"%s\"}", tomorrow);
    assert_int_equal(bind_one(fields, text, ENC_BIND_PATCH, &out), -1);
    assert_int_equal(bind_one(fields, "{\"day\": \"9999-12-31\"}",
                              ENC_BIND_PATCH, &out), -1);
    assert_int_equal(bind_one(fields, "{\"day\": \"1970-01-01\"}",
                              ENC_BIND_PATCH, &out), 0);
    json_decref(out);
}


/* slots: the three PATCH states, and every type's C view */
static void
test_slots(void **state)
{
    json_t            *body, *out;
    thing_in_t         in;
    enc_validation_t   v;

    body = json_loads("{\"name\": \"\\u00e9t\\u00e9\", \"country\": null,"
                      " \"count\": -3, \"live\": true,"
                      " \"ref\": \"ABCDEF01-2345-6789-ABCD-EF0123456789\","
                      " \"genres\": [\"a\"]}", 0, NULL);
    assert_non_null(body);
    enc_validation_init(&v);
    memset(&in, 0x5a, sizeof(in));
    assert_int_equal(enc_bind_json(body, thing_fields, ENC_BIND_PATCH, &out,
                                   &in, &v), 0);

    assert_int_equal(in.name.state, ENC_SET);
    assert_string_equal(in.name.str, "\xc3\xa9t\xc3\xa9");
    assert_int_equal(in.name.len, 5);
    assert_ptr_equal(in.name.json, json_object_get(out, "name"));

    assert_int_equal(in.country.state, ENC_NULL);
    assert_null(in.country.str);
    assert_true(json_is_null(in.country.json));

    assert_int_equal(in.count.state, ENC_SET);
    assert_int_equal(in.count.num, -3);
    assert_null(in.count.str);

    assert_int_equal(in.live.state, ENC_SET);
    assert_int_equal(in.live.num, 1);

    /* the normalised text, not the client's */
    assert_int_equal(in.ref.state, ENC_SET);
    assert_string_equal(in.ref.str, "abcdef01-2345-6789-abcd-ef0123456789");
    assert_int_equal(in.ref.len, 36);

    assert_int_equal(in.genres.state, ENC_SET);
    assert_true(json_is_array(in.genres.json));
    assert_ptr_equal(in.genres.json, json_object_get(out, "genres"));

    /* absent on a patch: all zero, whatever was there before */
    assert_int_equal(in.kind.state, ENC_ABSENT);
    assert_null(in.kind.str);
    assert_null(in.kind.json);
    assert_int_equal(in.kind.num, 0);
    json_decref(out);

    /* a create fills defaults: absent there means the default is set */
    memset(&in, 0x5a, sizeof(in));
    json_object_clear(body);
    json_object_set_new(body, "name", json_string("n"));
    json_object_set_new(body, "slug", json_string("sl"));
    assert_int_equal(enc_bind_json(body, thing_fields, ENC_BIND_CREATE, &out,
                                   &in, &v), 0);
    assert_int_equal(in.kind.state, ENC_SET);
    assert_string_equal(in.kind.str, "album");
    assert_int_equal(in.live.state, ENC_SET);
    assert_int_equal(in.live.num, 0);
    assert_int_equal(in.count.state, ENC_SET);
    assert_int_equal(in.count.num, 0);
    assert_int_equal(in.country.state, ENC_NULL);
    assert_int_equal(in.ref.state, ENC_NULL);
    json_decref(out);

    /* refused: out and the slots hold the fields that passed, so that
       cross-field rules can still run; the failed one is absent */
    json_object_set_new(body, "count", json_integer(99));
    memset(&in, 0x5a, sizeof(in));
    assert_int_equal(enc_bind_json(body, thing_fields, ENC_BIND_CREATE, &out,
                                   &in, &v), -1);
    assert_true(json_is_object(out));
    assert_null(json_object_get(out, "count"));
    assert_int_equal(in.count.state, ENC_ABSENT);
    assert_int_equal(in.name.state, ENC_SET);
    assert_string_equal(in.name.str, "n");
    assert_ptr_equal(in.name.json, json_object_get(out, "name"));
    json_decref(out);
    enc_validation_free(&v);
    json_decref(body);
}


/* the error messages name the rule, and field names stay exact */
static void
test_messages(void **state)
{
    json_t            *body, *out;
    enc_validation_t   v;
    const char        *msg;

    body = json_loads("{\"count\": 9}", 0, NULL);
    enc_validation_init(&v);
    assert_int_equal(enc_bind_json(body, thing_fields, ENC_BIND_PATCH, &out,
                                   NULL, &v), -1);
    json_decref(out);
    assert_int_equal(json_array_size(v.errors), 1);
    msg = json_string_value(json_object_get(json_array_get(v.errors, 0),
                                            "message"));
    assert_non_null(strstr(msg, "-5"));
    assert_non_null(strstr(msg, "5"));
    enc_validation_free(&v);
    json_decref(body);

    body = json_loads("{\"name\": \"toolong\"}", 0, NULL);
    enc_validation_init(&v);
    assert_int_equal(enc_bind_json(body, thing_fields, ENC_BIND_PATCH, &out,
                                   NULL, &v), -1);
    json_decref(out);
    msg = json_string_value(json_object_get(json_array_get(v.errors, 0),
                                            "message"));
    assert_non_null(strstr(msg, "characters"));
    enc_validation_free(&v);
    json_decref(body);
}


/* a default that is not JSON is a table bug: refused, not crashed on */
static void
test_bad_default(void **state)
{
    json_t            *body, *out;
    enc_validation_t   v;
    static const enc_field_t  fields[] = {
        { .name = "x", .type = ENC_STRING, .flags = ENC_IN, .def = "nope" },
        ENC_FIELD_END
    };

    body = json_object();
    enc_validation_init(&v);
    assert_int_equal(enc_bind_json(body, fields, ENC_BIND_CREATE, &out, NULL,
                                   &v), -1);
    assert_null(json_object_get(out, "x"));
    json_decref(out);
    enc_validation_free(&v);
    json_decref(body);
}


/* ---- query strings -------------------------------------------------------- */

typedef struct {
    const char  *pairs[16];     /* name, value, ..., NULL */
} query_t;


static const char *
query_get(void *arg, const char *name)
{
    size_t    i;
    query_t  *q = arg;

    for (i = 0; q->pairs[i] != NULL; i += 2) {
        if (strcmp(q->pairs[i], name) == 0) {
            return q->pairs[i + 1];
        }
    }
    return NULL;
}


typedef struct {
    enc_value_t  limit;
    enc_value_t  type;
} list_in_t;

static const char *const  types[] = { "artist", "album", "track", NULL };

static const enc_field_t  type_item = {
    .name = "type", .type = ENC_ENUM, .values = types
};

static const enc_field_t  int_item = {
    .name = "n", .type = ENC_INT, .min = 0, .max = 9
};

static const enc_field_t  query_fields[] = {
    { .name = "limit", .type = ENC_INT, .min = 1, .max = 100,
      .slot = ENC_SLOT(list_in_t, limit) },
    { .name = "live", .type = ENC_BOOL },
    { .name = "type", .type = ENC_ARRAY, .flags = ENC_UNIQUE, .min = 1,
      .max = 3, .item = &type_item, .slot = ENC_SLOT(list_in_t, type) },
    { .name = "ns", .type = ENC_ARRAY, .item = &int_item },
    { .name = "q", .type = ENC_STRING, .min = 1, .max = 5 },
    { .name = "ref", .type = ENC_UUID },
    { .name = "since", .type = ENC_DATE },
    { .name = "tag", .type = ENC_STRING, .flags = ENC_LOWER, .max = 10 },
    ENC_FIELD_END
};

static const struct {
    query_t      q;
    const char  *errors;    /* space-separated fields, "" for none */
    const char  *out;       /* the normalised object, or NULL */
} query_cases[] = {
    { { { NULL } }, "", "{}" },
    { { { "limit", "1", NULL } }, "", "{\"limit\": 1}" },
    { { { "limit", "100", NULL } }, "", "{\"limit\": 100}" },
    { { { "limit", "0", NULL } }, "limit", NULL },
    { { { "limit", "101", NULL } }, "limit", NULL },
    { { { "limit", "-1", NULL } }, "limit", NULL },
    { { { "limit", "+1", NULL } }, "limit", NULL },
    { { { "limit", " 1", NULL } }, "limit", NULL },
    { { { "limit", "1 ", NULL } }, "limit", NULL },
    { { { "limit", "1x", NULL } }, "limit", NULL },
    { { { "limit", "0x10", NULL } }, "limit", NULL },
    { { { "limit", "1.0", NULL } }, "limit", NULL },
    { { { "limit", "", NULL } }, "limit", NULL },
    { { { "limit", "-", NULL } }, "limit", NULL },
    { { { "limit", "abc", NULL } }, "limit", NULL },
    { { { "limit", "99999999999999999999999", NULL } }, "limit", NULL },
    { { { "limit", "-99999999999999999999999", NULL } }, "limit", NULL },
    { { { "limit", "007", NULL } }, "", "{\"limit\": 7}" },
    { { { "live", "true", NULL } }, "", "{\"live\": true}" },
    { { { "live", "false", NULL } }, "", "{\"live\": false}" },
    { { { "live", "1", NULL } }, "live", NULL },
    { { { "live", "TRUE", NULL } }, "live", NULL },
    { { { "live", "", NULL } }, "live", NULL },
    { { { "type", "artist", NULL } }, "", "{\"type\": [\"artist\"]}" },
    { { { "type", "artist,album", NULL } }, "",
      "{\"type\": [\"artist\", \"album\"]}" },
    { { { "type", "artist,artist", NULL } }, "type[1]", NULL },
    { { { "type", "artist,song", NULL } }, "type[1]", NULL },
    { { { "type", "artist,", NULL } }, "type[1]", NULL },
    { { { "type", "", NULL } }, "type[0]", NULL },
    { { { "type", "artist,album,track,artist", NULL } }, "type", NULL },
    { { { "ns", "1,2,3", NULL } }, "", "{\"ns\": [1, 2, 3]}" },
    { { { "ns", "1,x", NULL } }, "ns[1]", NULL },
    { { { "ns", "1,10", NULL } }, "ns[1]", NULL },
    { { { "q", "abcde", NULL } }, "", "{\"q\": \"abcde\"}" },
    { { { "q", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", NULL } }, "",
      "{\"q\": \"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\"}" },
    { { { "q", "abcdef", NULL } }, "q", NULL },
    { { { "q", "", NULL } }, "q", NULL },
    /* invalid UTF-8: a 422, not a crash */
    { { { "q", "\xff\xfe", NULL } }, "q", NULL },
    { { { "q", "\xc3", NULL } }, "q", NULL },
    { { { "type", "artist,\xc3", NULL } }, "type[1]", NULL },
    { { { "ref", "\xed\xa0\x80", NULL } }, "ref", NULL },
    { { { "tag", "\xe0\x80\x80", NULL } }, "tag", NULL },
    { { { "ref", "ABCDEF01-2345-6789-ABCD-EF0123456789", NULL } }, "",
      "{\"ref\": \"abcdef01-2345-6789-abcd-ef0123456789\"}" },
    { { { "since", "2021-02-29", NULL } }, "since", NULL },
    { { { "tag", "RoCk", NULL } }, "", "{\"tag\": \"rock\"}" },
    /* every error, and unknown parameters ignored */
    { { { "limit", "0", "live", "no", "q", "", "utm_source", "x",
          "ref", "x", NULL } }, "limit live q ref", NULL },
};


static void
test_query_cases(void **state)
{
    int                rc;
    char               want[128], *got_s, *tok, *save;
    size_t             i;
    json_t            *out, *names, *wnames, *wout;
    enc_validation_t   v;

    for (i = 0; i < sizeof(query_cases) / sizeof(query_cases[0]); i++) {
        enc_validation_init(&v);
        rc = enc_bind_query(query_get, (void *) &query_cases[i].q,
                            query_fields, &out, NULL, &v);
        names = error_fields(&v);
        wnames = json_array();
        snprintf(want, sizeof(want), "%s", query_cases[i].errors);
        for (tok = strtok_r(want, " ", &save); tok != NULL;
             tok = strtok_r(NULL, " ", &save))
        {
            json_array_append_new(wnames, json_string(tok));
        }

        if ((rc == 0) != (json_array_size(wnames) == 0)
            || !same_set(names, wnames))
        {
            got_s = json_dumps(names, JSON_COMPACT);
            fail_msg("query case %zu: rc %d, errors %s, want \"%s\"", i, rc,
                     got_s, query_cases[i].errors);
        }
        if (query_cases[i].out != NULL) {
            wout = json_loads(query_cases[i].out, 0, NULL);
            assert_non_null(wout);
            if (!json_equal(out, wout)) {
                got_s = json_dumps(out, JSON_COMPACT);
                fail_msg("query case %zu: out %s, want %s", i, got_s,
                         query_cases[i].out);
            }
            json_decref(wout);
        }
        if (rc != 0) {
            assert_true(json_is_object(out));
            assert_false(holds_failed(out, names));
        }

        json_decref(names);
        json_decref(wnames);
        json_decref(out);
        enc_validation_free(&v);
    }
}


static void
test_query_slots_and_required(void **state)
{
    json_t            *out;
    list_in_t          in;
    enc_validation_t   v;
    query_t            q = { { "limit", "42", "type", "album,track", NULL } };
    query_t            none = { { NULL } };
    static const enc_field_t  need[] = {
        { .name = "q", .type = ENC_STRING, .flags = ENC_REQUIRED, .min = 1 },
        ENC_FIELD_END
    };

    enc_validation_init(&v);
    memset(&in, 0x5a, sizeof(in));
    assert_int_equal(enc_bind_query(query_get, &q, query_fields, &out, &in,
                                    &v), 0);
    assert_int_equal(in.limit.state, ENC_SET);
    assert_int_equal(in.limit.num, 42);
    assert_int_equal(in.type.state, ENC_SET);
    assert_int_equal(json_array_size(in.type.json), 2);
    json_decref(out);

    memset(&in, 0x5a, sizeof(in));
    assert_int_equal(enc_bind_query(query_get, &none, query_fields, &out,
                                    &in, &v), 0);
    assert_int_equal(in.limit.state, ENC_ABSENT);
    assert_int_equal(in.type.state, ENC_ABSENT);
    json_decref(out);

    /* a query parameter is required only when flagged */
    assert_int_equal(enc_bind_query(query_get, &none, need, &out, NULL, &v),
                     -1);
    assert_int_equal(json_object_size(out), 0);
    json_decref(out);
    assert_string_equal(json_string_value(json_object_get(
        json_array_get(v.errors, 0), "field")), "q");
    enc_validation_free(&v);
}


static void
test_single_value_checks(void **state)
{
    assert_true(enc_date_valid("2024-02-29"));
    assert_false(enc_date_valid("2023-02-29"));
    assert_false(enc_date_valid(NULL));
    assert_false(enc_date_valid(""));
    assert_true(enc_country_valid("IS"));
    assert_false(enc_country_valid("is"));
    assert_false(enc_country_valid(NULL));
    assert_false(enc_country_valid(""));
    assert_true(enc_slug_valid("a"));
    assert_false(enc_slug_valid(""));
    assert_false(enc_slug_valid(NULL));
    assert_false(enc_slug_valid("-"));
}


/* an enum's error lists its values: a client cannot guess them from
   "the documented values" (review of issue 7) */
static void
test_enum_message_lists_values(void **state)
{
    json_t            *body, *out = NULL;
    enc_validation_t   v;

    (void) state;

    enc_validation_init(&v);
    body = json_pack("{s:s}", "kind", "lp");
    assert_int_equal(enc_bind_json(body, thing_fields, ENC_BIND_PATCH, &out,
                                   NULL, &v), -1);
    assert_string_equal(json_string_value(json_object_get(
        json_array_get(v.errors, 0), "message")),
        "must be one of album, single, ep");
    json_decref(out);
    json_decref(body);
    enc_validation_free(&v);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_body_cases),
        cmocka_unit_test(test_enum_message_lists_values),
        cmocka_unit_test(test_not_future),
        cmocka_unit_test(test_slots),
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_bad_default),
        cmocka_unit_test(test_query_cases),
        cmocka_unit_test(test_query_slots_and_required),
        cmocka_unit_test(test_single_value_checks),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
