/*
 * entity: statement expansion (pure), and against PostgreSQL (skipped
 * unless ENCORE_TEST_PGHOST is set, see db_fixture.h): the expanded select
 * list run on a real table and turned into JSON, constraint violations
 * mapped by name, and the outbox row of an event.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db_fixture.h"
#include "entity.h"
#include "log.h"


static const enc_field_t  tag = {
    .name = "tag", .type = ENC_STRING, .min = 1, .max = 20
};

static const enc_field_t  thing_fields[] = {
    { .name = "id", .type = ENC_UUID, .flags = ENC_OUT | ENC_KEY },
    { .name = "name", .type = ENC_STRING, .flags = ENC_OUT | ENC_IN,
      .min = 1, .max = 50 },
    { .name = "secret", .type = ENC_STRING,
      .flags = ENC_OUT | ENC_IN | ENC_PRIVATE | ENC_NULLABLE },
    { .name = "owner", .type = ENC_UUID,
      .flags = ENC_OUT | ENC_IN_CREATE | ENC_NULLABLE },
    { .name = "score", .type = ENC_INT, .flags = ENC_OUT },
    { .name = "live", .type = ENC_BOOL, .flags = ENC_OUT | ENC_IN },
    { .name = "tags", .type = ENC_ARRAY, .flags = ENC_OUT | ENC_IN,
      .item = &tag, .def = "[]" },
    { .name = "born", .type = ENC_DATE,
      .flags = ENC_OUT | ENC_IN | ENC_NULLABLE },
    { .name = "hidden", .type = ENC_STRING, .flags = ENC_IN },
    { .name = "created_at", .type = ENC_TIME, .flags = ENC_OUT },
    { .name = "name_len", .type = ENC_INT, .flags = ENC_OUT,
      .sql = "length(name)" },
    ENC_FIELD_END
};

static const enc_constraint_t  thing_constraints[] = {
    { "things_name_key", 409, "name", "is taken by another thing" },
    { "things_owner_fkey", 422, "owner", "names no owner" },
    { NULL, 0, NULL, NULL }
};

static const enc_entity_t  thing = {
    .name = "thing", .plural = "things", .path = "/api/v1/things/",
    .topic = "encore.test.things", .fields = thing_fields,
    .constraints = thing_constraints
};

static const enc_field_t  pal_fields[] = {
    { .name = "id", .type = ENC_UUID, .flags = ENC_OUT | ENC_KEY },
    { .name = "nick", .type = ENC_STRING, .flags = ENC_OUT | ENC_IN },
    ENC_FIELD_END
};

static const enc_entity_t  pal = {
    .name = "pal", .plural = "pals", .path = "/api/v1/pals/",
    .topic = "encore.test.pals", .fields = pal_fields
};

static const enc_field_t  account_fields[] = {
    { .name = "id", .type = ENC_UUID, .flags = ENC_OUT | ENC_KEY },
    { .name = "name", .type = ENC_STRING, .flags = ENC_OUT },
    { .name = "email", .type = ENC_STRING, .flags = ENC_OUT | ENC_PRIVATE },
    { .name = "banned", .type = ENC_BOOL,
      .flags = ENC_OUT | ENC_ADMIN_ONLY },
    { .name = "note", .type = ENC_STRING,
      .flags = ENC_OUT | ENC_PRIVATE | ENC_ADMIN_ONLY },
    { .name = "age", .type = ENC_INT, .flags = ENC_OUT },
    ENC_FIELD_END
};

static const enc_entity_t  account = {
    .name = "acct", .plural = "accts", .path = "/api/v1/accts/",
    .topic = "encore.test.accts", .fields = account_fields
};

static const enc_entity_t *const  entities[] = { &thing, &pal, NULL };

#define THING_SELECT(a)                                                       \
    a "id AS id, " a "name AS name, " a "secret AS secret, "                  \
    a "owner AS owner, " a "score AS score, " a "live AS live, "              \
    "array_to_json(" a "tags)::text AS tags, "                                \
    "to_char(" a "born, 'YYYY-MM-DD') AS born, "                              \
    "to_char(" a "created_at AT TIME ZONE 'UTC', "                            \
    "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS created_at, "                    \
    "length(name) AS name_len"


static const struct {
    const char  *in;
    const char  *out;       /* NULL: the same as in */
} expand_cases[] = {
    { "SELECT {thing} FROM things", "SELECT " THING_SELECT("") " FROM things" },
    { "SELECT {t.thing} FROM things t",
      "SELECT " THING_SELECT("t.") " FROM things t" },
    { "INSERT INTO things ({thing:create})",
      "INSERT INTO things (name, secret, owner, live, tags, born, hidden)" },
    { "SELECT {p.thing:create}",
      "SELECT p.name, p.secret, p.owner, p.live, p.tags, p.born, p.hidden" },
    { "{thing:patch}", "name, secret, live, tags, born, hidden" },
    { "{p.thing:patch}", "p.name, p.secret, p.live, p.tags, p.born, p.hidden" },
    { "{pal}|{x.pal:create}", "id AS id, nick AS nick|x.nick" },
    /* several in one statement, text between kept */
    { "a{pal:patch}b{pal:patch}c", "anickbnickc" },
    /* nothing to expand */
    { "SELECT 1", NULL },
    { "", NULL },
    /* unknown names, modes and shapes are kept verbatim */
    { "SELECT {nope}", NULL },
    { "SELECT {thing:delete}", NULL },
    { "SELECT {THING}", NULL },
    { "SELECT {a.b.thing}", NULL },
    { "SELECT { thing}", NULL },
    { "SELECT {thing }", NULL },
    /* literal braces: array and JSON literals */
    { "SELECT '{}'::text[]", NULL },
    { "SELECT '{a,b}'::text[], '{\"k\": 1}'::jsonb", NULL },
    { "SELECT '{}'::text[], {pal:patch}", "SELECT '{}'::text[], nick" },
    /* unbalanced braces are kept as they are */
    { "SELECT '{' FROM t", NULL },
    { "SELECT '}' FROM t", NULL },
    { "SELECT {thing", NULL },
    { "}{", NULL },
    /* a lone '{' does not hide the references after it */
    { "SELECT '{', {pal:patch} FROM t", "SELECT '{', nick FROM t" },
    { "SELECT '{{' || {pal:patch}", "SELECT '{{' || nick" },
    { "{ {pal:patch}}", "{ nick}" },
    /* a reference longer than any name */
    { "{aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      ".thing}", NULL },
};


static void
test_expand_cases(void **state)
{
    size_t          i, n = sizeof(expand_cases) / sizeof(expand_cases[0]);
    enc_pg_stmt_t  *in, *out;

    in = calloc(n + 1, sizeof(*in));
    assert_non_null(in);
    for (i = 0; i < n; i++) {
        in[i].name = "s";
        in[i].sql = expand_cases[i].in;
        in[i].nparams = (int) i;
    }

    out = enc_entity_expand(in, entities);
    assert_non_null(out);
    for (i = 0; i < n; i++) {
        const char  *want = expand_cases[i].out ? expand_cases[i].out
                                                : expand_cases[i].in;

        if (strcmp(out[i].sql, want) != 0) {
            fail_msg("case %zu: \"%s\"\n got  \"%s\"\n want \"%s\"", i,
                     expand_cases[i].in, out[i].sql, want);
        }
        assert_string_equal(out[i].name, "s");
        assert_int_equal(out[i].nparams, (int) i);
        /* a copy, never the original */
        assert_ptr_not_equal(out[i].sql, in[i].sql);
    }
    assert_null(out[n].name);

    enc_entity_expand_free(out);
    enc_entity_expand_free(NULL);
    free(in);
}


static void
test_expand_empty(void **state)
{
    enc_pg_stmt_t        *out;
    static const enc_pg_stmt_t  none[] = { { NULL, NULL, 0 } };

    out = enc_entity_expand(none, entities);
    assert_non_null(out);
    assert_null(out[0].name);
    enc_entity_expand_free(out);
}


/* ---- against PostgreSQL ---------------------------------------------------- */

static db_fixture_t   fx;
static enc_pg_t      *pg;
static int            have_db;


static int
setup(void **state)
{
    if (db_fixture_skip()) {
        return 0;
    }
    db_fixture_init(&fx, "test_entity", "localhost:1");
    pg = enc_pg_connect_new();
    assert_non_null(pg);
    have_db = 1;

    {
        char  sql[1024];

        snprintf(sql, sizeof(sql),
                 "SET search_path = %s;"
                 "CREATE TABLE owners (id uuid PRIMARY KEY);"
                 "CREATE TABLE things ("
                 " id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
                 " name text NOT NULL CONSTRAINT things_name_key UNIQUE,"
                 " secret text, owner uuid CONSTRAINT things_owner_fkey"
                 "  REFERENCES owners (id),"
                 " score bigint NOT NULL DEFAULT 0,"
                 " live boolean NOT NULL DEFAULT false,"
                 " tags text[] NOT NULL DEFAULT '{}',"
                 " born date, hidden text,"
                 " created_at timestamptz NOT NULL DEFAULT now(),"
                 " CONSTRAINT things_score_check CHECK (score >= 0));"
                 "INSERT INTO owners VALUES"
                 " ('11111111-2222-4333-8444-555555555555')",
                 fx.schema);
        db_admin_exec(fx.admin, sql);
    }
    return 0;
}


static int
teardown(void **state)
{
    if (have_db) {
        enc_pg_close(pg);
        db_fixture_fini(&fx);
    }
    return 0;
}


static PGresult *
sql_ok(const char *sql, int n, const char *const *params)
{
    PGresult  *res;

    res = enc_pg_exec_sql(pg, sql, n, params);
    assert_non_null(res);
    if (PQresultStatus(res) != PGRES_TUPLES_OK
        && PQresultStatus(res) != PGRES_COMMAND_OK)
    {
        fail_msg("%s: %s", sql, PQresultErrorMessage(res));
    }
    return res;
}


/* one statement expanded, as a worker would have it */
static char *
expanded(const char *sql)
{
    char           *s;
    enc_pg_stmt_t   in[2] = { { "s", sql, 0 }, { NULL, NULL, 0 } }, *out;

    out = enc_entity_expand(in, entities);
    assert_non_null(out);
    s = strdup(out[0].sql);
    enc_entity_expand_free(out);
    return s;
}


/*
 * The select list on a real row, whatever the session's time zone and
 * date style: JSON types from the field types, NULL as null, private
 * fields only in the owner's view, ENC_IN-only fields never.  The writes
 * of entity.h's example statements go through too.
 */
/* the row as enc_entity_write writes it, read back; it must equal what
   enc_entity_json builds (reads answer the first, writes the second) */
static void
assert_written_equals(const enc_entity_t *e, const PGresult *res, int row,
    enc_view_t view, const json_t *want)
{
    char      *text;
    size_t     len;
    json_t    *got;
    enc_jw_t   jw;

    enc_jw_init(&jw);
    enc_entity_write(&jw, e, res, row, view);
    text = enc_jw_finish(&jw, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    got = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    if (got == NULL || !json_equal(got, want)) {
        fail_msg("written %s differs from the jansson row", text);
    }
    json_decref(got);
    free(text);
}


static void
test_entity_json_db(void **state)
{
    char        *sql, *text;
    json_t      *pub, *own, *want;
    PGresult    *res;
    const char  *params[2];

    if (!have_db) {
        skip();
    }

    PQclear(sql_ok("SET TimeZone = 'Asia/Tokyo'", 0, NULL));
    PQclear(sql_ok("SET DateStyle = 'SQL, DMY'", 0, NULL));

    /* the insert of entity.h, with a bound body */
    sql = expanded("INSERT INTO things ({thing:create}) SELECT"
                   " {p.thing:create} FROM jsonb_populate_record("
                   "NULL::things, $1::jsonb) p RETURNING {thing}");
    params[0] = "{\"name\": \"\\u00e9t\\u00e9 \\ud83c\\udfb8\","
                " \"secret\": \"s\", \"owner\": null, \"live\": true,"
                " \"tags\": [\"a\", \"b \\\"c\\\"\"], \"born\": \"2024-02-29\","
                " \"hidden\": \"h\"}";
    res = sql_ok(sql, 1, params);
    free(sql);
    assert_int_equal(PQntuples(res), 1);

    pub = enc_entity_json(&thing, res, 0, ENC_VIEW_PUBLIC);
    own = enc_entity_json(&thing, res, 0, ENC_VIEW_OWNER);
    assert_non_null(pub);
    assert_non_null(own);

    assert_true(enc_uuid_valid(json_string_value(json_object_get(pub, "id"))));
    assert_string_equal(json_string_value(json_object_get(pub, "name")),
                        "\xc3\xa9t\xc3\xa9 \xf0\x9f\x8e\xb8");
    assert_null(json_object_get(pub, "secret"));
    assert_string_equal(json_string_value(json_object_get(own, "secret")),
                        "s");
    assert_true(json_is_null(json_object_get(pub, "owner")));
    assert_true(json_is_integer(json_object_get(pub, "score")));
    assert_int_equal(json_integer_value(json_object_get(pub, "score")), 0);
    assert_true(json_is_true(json_object_get(pub, "live")));
    /* the read path's writer, on the same row: escapes, astral
       characters, arrays as PostgreSQL made them, both views */
    assert_written_equals(&thing, res, 0, ENC_VIEW_PUBLIC, pub);
    assert_written_equals(&thing, res, 0, ENC_VIEW_OWNER, own);
    want = json_pack("[ss]", "a", "b \"c\"");
    assert_true(json_equal(json_object_get(pub, "tags"), want));
    json_decref(want);
    assert_string_equal(json_string_value(json_object_get(pub, "born")),
                        "2024-02-29");
    text = (char *) json_string_value(json_object_get(pub, "created_at"));
    assert_non_null(text);
    /* RFC 3339 UTC with microseconds: 2024-01-01T00:00:00.000000Z */
    assert_int_equal(strlen(text), 27);
    assert_int_equal(text[10], 'T');
    assert_int_equal(text[19], '.');
    assert_int_equal(text[26], 'Z');
    assert_int_equal(json_integer_value(json_object_get(pub, "name_len")), 5);
    assert_null(json_object_get(own, "hidden"));
    assert_int_equal(json_object_size(pub), 9);
    assert_int_equal(json_object_size(own), 10);

    /* created_at is the UTC time whatever the session's zone */
    PQclear(res);
    params[0] = json_string_value(json_object_get(pub, "id"));
    params[1] = json_string_value(json_object_get(pub, "created_at"));
    res = sql_ok("SELECT to_char(created_at AT TIME ZONE 'UTC',"
                 " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') = $2 FROM things"
                 " WHERE id = $1", 2, params);
    assert_string_equal(PQgetvalue(res, 0, 0), "t");
    PQclear(res);

    /* the update of entity.h: absent members keep the row's values, JSON
       null stores NULL */
    sql = expanded("UPDATE things t SET ({thing:patch}) = (SELECT"
                   " {p.thing:patch} FROM jsonb_populate_record(t, $2::jsonb)"
                   " p) WHERE t.id = $1::uuid RETURNING {t.thing}");
    params[0] = json_string_value(json_object_get(pub, "id"));
    params[1] = "{\"born\": null, \"tags\": []}";
    res = sql_ok(sql, 2, params);
    free(sql);
    json_decref(own);
    own = enc_entity_json(&thing, res, 0, ENC_VIEW_OWNER);
    assert_non_null(own);
    assert_true(json_is_null(json_object_get(own, "born")));
    assert_int_equal(json_array_size(json_object_get(own, "tags")), 0);
    assert_true(json_is_array(json_object_get(own, "tags")));
    assert_string_equal(json_string_value(json_object_get(own, "secret")),
                        "s");
    assert_string_equal(json_string_value(json_object_get(own, "name")),
                        json_string_value(json_object_get(pub, "name")));
    PQclear(res);
    json_decref(own);
    json_decref(pub);

    PQclear(sql_ok("SET TimeZone = 'UTC'", 0, NULL));
    PQclear(sql_ok("SET DateStyle = 'ISO, MDY'", 0, NULL));
}


/* literal rows: NULL arrays, big integers, a malformed array column and a
   short row */
static void
test_entity_json_literals_db(void **state)
{
    json_t    *j;
    PGresult  *res;

    if (!have_db) {
        skip();
    }

    res = sql_ok("SELECT '0b5e7c3a-1f2d-4e5b-8a9c-0d1e2f3a4b5c'::uuid,"
                 " NULL::text, NULL, NULL, 9007199254740993::bigint, false,"
                 " NULL::text, NULL::text, NULL::text, 0", 0, NULL);
    j = enc_entity_json(&thing, res, 0, ENC_VIEW_OWNER);
    assert_non_null(j);
    assert_true(json_is_null(json_object_get(j, "name")));
    assert_true(json_is_null(json_object_get(j, "tags")));
    assert_true(json_is_false(json_object_get(j, "live")));
    assert_int_equal(json_integer_value(json_object_get(j, "score")),
                     9007199254740993LL);
    assert_written_equals(&thing, res, 0, ENC_VIEW_OWNER, j);
    json_decref(j);
    PQclear(res);

    /* an array column that is not JSON text */
    res = sql_ok("SELECT 'x', 'n', NULL, NULL, 1, true, '{a,b}', NULL, NULL,"
                 " 1", 0, NULL);
    enc_log_init("test", ENC_LOG_ERROR + 1);
    assert_null(enc_entity_json(&thing, res, 0, ENC_VIEW_PUBLIC));
    PQclear(res);

    /* fewer columns than the entity's fields */
    res = sql_ok("SELECT 'x', 'n'", 0, NULL);
    assert_null(enc_entity_json(&thing, res, 0, ENC_VIEW_PUBLIC));
    PQclear(res);
    enc_log_init("test", ENC_LOG_INFO);

    /* more columns are fine: a list's sort key follows the select list */
    res = sql_ok("SELECT 'x', 'nick', 'extra'", 0, NULL);
    j = enc_entity_json(&pal, res, 0, ENC_VIEW_PUBLIC);
    assert_non_null(j);
    assert_int_equal(json_object_size(j), 2);
    json_decref(j);
    PQclear(res);
}


/* the three views: public, owner (private fields), admin (everything);
   hidden columns are still consumed, so the next field reads its own */
static void
test_entity_views_db(void **state)
{
    json_t    *pub, *own, *adm;
    PGresult  *res;

    if (!have_db) {
        skip();
    }

    res = sql_ok("SELECT 'i', 'n', 'e@x', true, 'nb', 42", 0, NULL);
    pub = enc_entity_json(&account, res, 0, ENC_VIEW_PUBLIC);
    own = enc_entity_json(&account, res, 0, ENC_VIEW_OWNER);
    adm = enc_entity_json(&account, res, 0, ENC_VIEW_ADMIN);
    assert_non_null(pub);
    assert_non_null(own);
    assert_non_null(adm);

    assert_int_equal(json_object_size(pub), 3);
    assert_null(json_object_get(pub, "email"));
    assert_null(json_object_get(pub, "banned"));
    assert_null(json_object_get(pub, "note"));
    assert_int_equal(json_integer_value(json_object_get(pub, "age")), 42);

    assert_int_equal(json_object_size(own), 4);
    assert_string_equal(json_string_value(json_object_get(own, "email")),
                        "e@x");
    assert_null(json_object_get(own, "banned"));
    assert_null(json_object_get(own, "note"));

    assert_int_equal(json_object_size(adm), 6);
    assert_true(json_is_true(json_object_get(adm, "banned")));
    assert_string_equal(json_string_value(json_object_get(adm, "note")),
                        "nb");
    assert_int_equal(json_integer_value(json_object_get(adm, "age")), 42);

    assert_written_equals(&account, res, 0, ENC_VIEW_PUBLIC, pub);
    assert_written_equals(&account, res, 0, ENC_VIEW_OWNER, own);
    assert_written_equals(&account, res, 0, ENC_VIEW_ADMIN, adm);

    json_decref(pub);
    json_decref(own);
    json_decref(adm);
    PQclear(res);
}


/* the statement's failure, mapped by constraint name */
static const enc_constraint_t *
constraint_of(const enc_entity_t *e, const char *sql)
{
    PGresult                *res;
    const enc_constraint_t  *c;

    res = enc_pg_exec_sql(pg, sql, 0, NULL);
    assert_non_null(res);
    assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR);
    c = enc_entity_constraint(e, res);
    PQclear(res);
    return c;
}


static void
test_constraint_db(void **state)
{
    const enc_constraint_t  *c;

    if (!have_db) {
        skip();
    }

    assert_null(enc_entity_constraint(&thing, NULL));

    PQclear(sql_ok("INSERT INTO things (name) VALUES ('taken')", 0, NULL));

    /* unique violation: 23505 on things_name_key */
    c = constraint_of(&thing, "INSERT INTO things (name) VALUES ('taken')");
    assert_non_null(c);
    assert_int_equal(c->status, 409);
    assert_string_equal(c->field, "name");

    /* foreign-key violation: 23503 on things_owner_fkey */
    c = constraint_of(&thing, "INSERT INTO things (name, owner) VALUES"
                      " ('o', '99999999-2222-4333-8444-555555555555')");
    assert_non_null(c);
    assert_int_equal(c->status, 422);
    assert_string_equal(c->field, "owner");

    /* a constraint the entity does not list */
    assert_null(constraint_of(&thing, "INSERT INTO things (name, score)"
                              " VALUES ('neg', -1)"));
    /* a NOT NULL violation names no constraint */
    assert_null(constraint_of(&thing, "INSERT INTO things (name) VALUES"
                              " (NULL)"));
    /* not a constraint violation at all */
    assert_null(constraint_of(&thing, "SELECT nonsense FROM things"));
    assert_null(constraint_of(&thing, "SELECT 1/0"));
    /* an entity without constraints */
    assert_null(constraint_of(&pal, "INSERT INTO things (name) VALUES"
                              " ('taken')"));
}


/* the outbox row of one event, inside the caller's transaction */
static void
test_event_db(void **state)
{
    json_t      *value, *data;
    PGresult    *res;
    const char  *id = "0b5e7c3a-1f2d-4e5b-8a9c-0d1e2f3a4b5c";

    if (!have_db) {
        skip();
    }

    PQclear(sql_ok("DELETE FROM outbox", 0, NULL));

    /* outside a transaction: refused */
    value = json_pack("{s:s, s:s}", "id", id, "name", "n");
    enc_log_init("test", ENC_LOG_ERROR + 1);
    assert_int_not_equal(enc_entity_event(pg, &thing, "created", id, value),
                         0);
    enc_log_init("test", ENC_LOG_INFO);

    /* rolled back: gone */
    assert_int_equal(enc_pg_begin(pg), 0);
    assert_int_equal(enc_entity_event(pg, &thing, "created", id, value), 0);
    enc_pg_rollback(pg);
    res = sql_ok("SELECT count(*) FROM outbox", 0, NULL);
    assert_string_equal(PQgetvalue(res, 0, 0), "0");
    PQclear(res);

    assert_int_equal(enc_pg_begin(pg), 0);
    assert_int_equal(enc_entity_event(pg, &thing, "created", id, value), 0);
    assert_int_equal(enc_entity_event(pg, &thing, "deleted", id, NULL), 0);
    assert_int_equal(enc_pg_commit(pg), 0);

    res = sql_ok("SELECT topic, key, type, subject, data FROM outbox"
                 " ORDER BY id", 0, NULL);
    assert_int_equal(PQntuples(res), 2);

    assert_string_equal(PQgetvalue(res, 0, 0), "encore.test.things");
    assert_string_equal(PQgetvalue(res, 0, 1), id);
    assert_string_equal(PQgetvalue(res, 0, 2), "encore.thing.created");
    assert_string_equal(PQgetvalue(res, 0, 3), "things/"
                        "0b5e7c3a-1f2d-4e5b-8a9c-0d1e2f3a4b5c");
    data = json_loads(PQgetvalue(res, 0, 4), 0, NULL);
    assert_true(json_equal(data, value));
    json_decref(data);

    assert_string_equal(PQgetvalue(res, 1, 2), "encore.thing.deleted");
    assert_string_equal(PQgetvalue(res, 1, 3), "things/"
                        "0b5e7c3a-1f2d-4e5b-8a9c-0d1e2f3a4b5c");
    data = json_loads(PQgetvalue(res, 1, 4), 0, NULL);
    assert_non_null(data);
    assert_int_equal(json_object_size(data), 1);
    assert_string_equal(json_string_value(json_object_get(data, "id")), id);
    json_decref(data);

    PQclear(res);
    json_decref(value);
}


int
main(void)
{
    const struct CMUnitTest  pure[] = {
        cmocka_unit_test(test_expand_cases),
        cmocka_unit_test(test_expand_empty),
    };
    const struct CMUnitTest  db[] = {
        cmocka_unit_test(test_entity_json_db),
        cmocka_unit_test(test_entity_json_literals_db),
        cmocka_unit_test(test_entity_views_db),
        cmocka_unit_test(test_constraint_db),
        cmocka_unit_test(test_event_db),
    };
    int  rc;

    enc_log_init("test", ENC_LOG_INFO);
    rc = cmocka_run_group_tests_name("expand", pure, NULL, NULL);
    rc |= cmocka_run_group_tests_name("db", db, setup, teardown);
    return rc;
}
