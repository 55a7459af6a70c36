/*
 * kit: the whole operations over a real enc_http server on a unix socket
 * against the throwaway PostgreSQL (skipped unless ENCORE_TEST_PGHOST is
 * set, see pg_env.h): create, get, patch, delete with their statuses,
 * problems and outbox events on a tiny entity in a schema of its own, and
 * keyset lists (limits, pages, cursors and their scope, a parent's 404).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cursor.h"
#include "event_table.h"
#include "kit.h"
#include "log.h"
#include "pg_env.h"
#include "raw_http.h"


/* ---- the entity and its endpoints ----------------------------------------- */

static const enc_field_t  thing_fields[] = {
    { .name = "id", .type = ENC_UUID, .flags = ENC_OUT | ENC_KEY },
    { .name = "name", .type = ENC_STRING,
      .flags = ENC_OUT | ENC_IN | ENC_REQUIRED, .min = 1, .max = 20 },
    { .name = "owner", .type = ENC_UUID,
      .flags = ENC_OUT | ENC_IN_CREATE | ENC_NULLABLE },
    { .name = "live", .type = ENC_BOOL, .flags = ENC_OUT | ENC_IN,
      .def = "false" },
    { .name = "secret", .type = ENC_STRING,
      .flags = ENC_OUT | ENC_IN | ENC_PRIVATE | ENC_NULLABLE },
    { .name = "created_at", .type = ENC_TIME, .flags = ENC_OUT },
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

/* a note on a board: its author and board filled in by the kit, visible
   to all when public, else to its author and moderators */
static int  note_check(enc_pg_t *pg, json_t *body, unsigned mode,
                       enc_validation_t *v);

static const enc_field_t  note_fields[] = {
    { .name = "id", .type = ENC_UUID, .flags = ENC_OUT | ENC_KEY },
    { .name = "board", .type = ENC_UUID, .flags = ENC_OUT | ENC_PATH_ID },
    { .name = "author_id", .type = ENC_UUID,
      .flags = ENC_OUT | ENC_CALLER_ID | ENC_NULLABLE },
    { .name = "author", .type = ENC_STRING,
      .flags = ENC_OUT | ENC_CALLER_NAME },
    { .name = "text", .type = ENC_STRING,
      .flags = ENC_OUT | ENC_IN | ENC_REQUIRED, .min = 1, .max = 40 },
    { .name = "public", .type = ENC_BOOL, .flags = ENC_OUT | ENC_IN,
      .def = "false" },
    ENC_FIELD_END
};

static const enc_entity_t  note = {
    .name = "note", .plural = "notes", .path = "/api/v1/notes/",
    .topic = "encore.test.notes", .fields = note_fields,
    .visible = "note_visible", .parent = "board", .check = note_check
};

static const enc_entity_t *const  entities[] = { &thing, &note, NULL };

static const enc_pg_stmt_t  raw_stmts[] = {
    { "thing_get", "SELECT {thing} FROM things WHERE id = $1::uuid", 1 },
    { "thing_insert",
      "INSERT INTO things ({thing:create}) SELECT {p.thing:create}"
      " FROM jsonb_populate_record(NULL::things, $1::jsonb) p"
      " RETURNING {thing}", 1 },
    { "thing_update",
      "UPDATE things t SET ({thing:patch}) = (SELECT {p.thing:patch}"
      " FROM jsonb_populate_record(t, $2::jsonb) p)"
      " WHERE t.id = $1::uuid RETURNING {t.thing}", 2 },
    { "thing_delete", "DELETE FROM things WHERE id = $1::uuid RETURNING id",
      1 },
    /* filters $1 live, $2 prefix; keys $3 name, $4 id; $5 page size + 1 */
    { "things_list",
      "SELECT {thing} FROM things"
      " WHERE ($1::boolean IS NULL OR live = $1::boolean)"
      " AND ($2::text IS NULL OR starts_with(name, $2::text))"
      " AND ($3::text IS NULL OR (name, id) > ($3::text, $4::uuid))"
      " ORDER BY name, id LIMIT $5::int", 5 },
    /* $1 owner; keys $2 name, $3 id; $4 page size + 1 */
    { "owner_things",
      "SELECT {thing} FROM things WHERE owner = $1::uuid"
      " AND ($2::text IS NULL OR (name, id) > ($2::text, $3::uuid))"
      " ORDER BY name, id LIMIT $4::int", 4 },
    { "owner_exists", "SELECT 1 FROM owners WHERE id = $1::uuid", 1 },
    { "broken", "SELECT {thing} FROM nowhere WHERE id = $1::uuid", 1 },
    /* notes: the caller as the last two parameters */
    { "note_insert",
      "INSERT INTO notes ({note:create}) SELECT {p.note:create}"
      " FROM jsonb_populate_record(NULL::notes, $1::jsonb) p"
      " WHERE EXISTS (SELECT 1 FROM boards b WHERE b.id = p.board)"
      " RETURNING {note}, CASE WHEN public THEN 'published' END AS event",
      1 },
    { "note_get",
      "SELECT {note} FROM notes WHERE id = $1::uuid"
      " AND (public OR author_id = $2::uuid OR $3::int >= 2)", 3 },
    { "note_visible",
      "SELECT 1 FROM notes WHERE id = $1::uuid"
      " AND (public OR author_id = $2::uuid OR $3::int >= 2)", 3 },
    { "note_update",
      "UPDATE notes t SET ({note:patch}) = (SELECT {p.note:patch}"
      " FROM jsonb_populate_record(t, $2::jsonb) p)"
      " WHERE t.id = $1::uuid AND (t.author_id = $3::uuid OR $4::int >= 2)"
      " RETURNING {t.note}", 4 },
    { "note_delete",
      "DELETE FROM notes WHERE id = $1::uuid"
      " AND (author_id = $2::uuid OR $3::int >= 2) RETURNING id", 3 },
    /* the caller's own notes: key $1 id, $2 page size + 1, caller $3, $4 */
    { "my_notes",
      "SELECT {note} FROM notes WHERE author_id = $3::uuid AND $4::int >= 1"
      " AND ($1::uuid IS NULL OR id > $1::uuid) ORDER BY id LIMIT $2::int",
      4 },
    { "check_broken", "SELECT 1 FROM nowhere WHERE $1::text IS NULL", 1 },
    /* the event table: a board's deletion orphans its notes */
    { "board_forget",
      "DELETE FROM boards WHERE id = $1::uuid AND $2::jsonb IS NOT NULL", 2 },
    { "notes_orphan",
      "UPDATE notes SET author = $2::jsonb->>'by' WHERE board = $1::uuid"
      " RETURNING {note}", 2 },
    /* the event's time as $3: fails unless it is the test's */
    { "stamped",
      "SELECT 1 / coalesce(($3::timestamptz = '2026-01-02T03:04:05Z')::int,"
      " 0) WHERE $1::text IS NOT NULL AND $2::jsonb IS NOT NULL", 3 },
    /* a row with fewer columns than the entity answers */
    { "short_row", "SELECT $1::uuid AS id", 1 },
    { NULL, NULL, 0 }
};

static const enc_field_t  list_filters[] = {
    { .name = "live", .type = ENC_BOOL },
    { .name = "prefix", .type = ENC_STRING, .min = 1, .max = 20 },
    ENC_FIELD_END
};

static const char *const  by_name[] = { "name", "id", NULL };

static const enc_list_t  things_list = {
    .name = "things_list", .stmt = "things_list", .filters = list_filters,
    .keys = by_name
};

/* the same list answering whole pages of 100 unless ?limit= says */
static const enc_list_t  things_whole = {
    .name = "things_whole", .stmt = "things_list", .filters = list_filters,
    .keys = by_name, .limit = ENC_LIST_LIMIT_MAX
};

static const enc_list_t  owner_things = {
    .name = "owner_things", .stmt = "owner_things", .keys = by_name,
    .parent = "owner_exists", .parent_name = "owner"
};


static void
h_get(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_get(r, w, &thing, "thing_get");
}

static void
h_create(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_create(r, w, &thing, "thing_insert");
}

static void
h_patch(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_patch(r, w, &thing, "thing_update");
}

static void
h_delete(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_delete(r, w, &thing, "thing_delete");
}

static void
h_list(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_list(r, w, &thing, &things_list, 0, NULL);
}

static void
h_whole(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_list(r, w, &thing, &things_whole, 0, NULL);
}

static void
h_owner_list(enc_req_t *r, enc_resp_t *w, void *app)
{
    const char  *oid = enc_req_param(r, "oid");

    if (!enc_uuid_valid(oid)) {
        enc_resp_problem(w, 404, NULL, "no such owner");
        return;
    }
    enc_kit_list(r, w, &thing, &owner_things, 1, &oid);
}

static void
h_broken(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_get(r, w, &thing, "broken");
}

static void
h_short(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_get(r, w, &thing, "short_row");
}


static const char *const  by_id[] = { "id", NULL };

static const enc_list_t  my_notes = {
    .name = "my_notes", .stmt = "my_notes", .keys = by_id
};


/* "forbidden" text is a rule across rows; "broken" a check whose
   statement fails */
static int
note_check(enc_pg_t *pg, json_t *body, unsigned mode, enc_validation_t *v)
{
    int          ok;
    PGresult    *res;
    const char  *text;

    text = json_string_value(json_object_get(body, "text"));
    if (text != NULL && strcmp(text, "forbidden") == 0) {
        enc_validation_add(v, "text", "is forbidden on this board");
        return -1;
    }
    if (text != NULL && strcmp(text, "broken") == 0) {
        res = enc_pg_exec(pg, "check_broken", 1, &text);
        ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK;
        PQclear(res);
        return ok ? 0 : -2;
    }
    return 0;
}

static void
h_note_create(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_create(r, w, &note, "note_insert");
}

static void
h_note_get(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_get(r, w, &note, "note_get");
}

static void
h_note_patch(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_patch(r, w, &note, "note_update");
}

static void
h_note_delete(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_delete(r, w, &note, "note_delete");
}

static void
h_my_notes(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_list(r, w, &note, &my_notes, 0, NULL);
}


static const enc_route_t  routes[] = {
    { "POST", "/boards/{id}/notes", h_note_create,
      ENC_ROUTE_USER | ENC_ROUTE_JSON_BODY | ENC_ROUTE_STRICT,
      "notes_create" },
    { "GET", "/notes", h_my_notes, ENC_ROUTE_USER, "my_notes" },
    { "GET", "/notes/{id}", h_note_get, 0, "notes_get" },
    { "PATCH", "/notes/{id}", h_note_patch,
      ENC_ROUTE_USER | ENC_ROUTE_JSON_BODY | ENC_ROUTE_STRICT, "notes_patch" },
    { "DELETE", "/notes/{id}", h_note_delete, ENC_ROUTE_USER,
      "notes_delete" },
    { "GET", "/things", h_list, 0, "things_list" },
    { "GET", "/whole", h_whole, 0, "things_whole" },
    { "POST", "/things", h_create, ENC_ROUTE_JSON_BODY | ENC_ROUTE_STRICT,
      "things_create" },
    { "POST", "/lenient", h_create, ENC_ROUTE_JSON_BODY, "lenient_create" },
    { "GET", "/things/{id}", h_get, 0, "things_get" },
    { "PATCH", "/things/{id}", h_patch,
      ENC_ROUTE_JSON_BODY | ENC_ROUTE_STRICT, "things_patch" },
    { "DELETE", "/things/{id}", h_delete, 0, "things_delete" },
    { "GET", "/owners/{oid}/things", h_owner_list, 0, "owner_things" },
    { "GET", "/broken/{id}", h_broken, 0, "broken" },
    { "GET", "/short/{id}", h_short, 0, "short" },
    { NULL, NULL, NULL, 0, NULL }
};


/* ---- the world: schema, statements, server --------------------------------- */

#define OWNER      "11111111-2222-4333-8444-555555555555"
#define LONELY     "22222222-2222-4333-8444-555555555555"
#define NOBODY     "33333333-2222-4333-8444-555555555555"

static char            sock_path[108], schema[64];
static PGconn         *admin;
static enc_config_t   *conf;
static enc_http_t     *http;
static enc_pg_stmt_t  *stmts;
static int             have_db;


static void
admin_exec(const char *sql)
{
    if (pg_env_exec(admin, sql) != 0) {
        fail_msg("setup failed: %s", sql);
    }
}


static char *
read_file(const char *path)
{
    long   n;
    char  *buf;
    FILE  *f = fopen(path, "r");

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_int_equal(fseek(f, 0, SEEK_SET), 0);
    buf = malloc((size_t) n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t) n, f), (size_t) n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}


static int
setup(void **state)
{
    char           sql[1024], path[1024], err[256], listen[160];
    char          *ddl;
    size_t         i;
    glob_t         g;
    unsigned char  key[32];

    if (pg_env_missing()) {
        return 0;
    }

    enc_log_init("test", ENC_LOG_INFO);
    if (getenv("TEST_VERBOSE") == NULL) {
        enc_log_set_fd(open("/dev/null", O_WRONLY));
    }

    snprintf(schema, sizeof(schema), "test_kit_%d", (int) getpid());
    admin = pg_env_admin();
    assert_int_equal(PQstatus(admin), CONNECTION_OK);
    snprintf(sql, sizeof(sql), "SET client_min_messages = warning;"
             " DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s;"
             " SET search_path = %s", schema, schema, schema);
    admin_exec(sql);

    /* the runtime's tables (the outbox), as enc_migrate applies them */
    snprintf(path, sizeof(path), "%s/schemas/runtime/*.sql",
             pg_env("ENCORE_TEST_SRCDIR", "."));
    assert_int_equal(glob(path, 0, NULL, &g), 0);
    for (i = 0; i < g.gl_pathc; i++) {
        ddl = read_file(g.gl_pathv[i]);
        admin_exec(ddl);
        free(ddl);
    }
    globfree(&g);

    admin_exec("CREATE TABLE owners (id uuid PRIMARY KEY);"
               "CREATE TABLE things ("
               " id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
               " name text NOT NULL CONSTRAINT things_name_key UNIQUE,"
               " owner uuid CONSTRAINT things_owner_fkey"
               "  REFERENCES owners (id),"
               " live boolean NOT NULL DEFAULT false,"
               " secret text,"
               " created_at timestamptz NOT NULL DEFAULT now());"
               "INSERT INTO owners VALUES ('" OWNER "'), ('" LONELY "');"
               "CREATE TABLE boards (id uuid PRIMARY KEY);"
               "CREATE TABLE notes ("
               " id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
               " board uuid NOT NULL, author_id uuid, author text NOT NULL,"
               " text text NOT NULL, public boolean NOT NULL);"
               "INSERT INTO boards VALUES ('" OWNER "'), ('" LONELY "')");

    stmts = enc_entity_expand(raw_stmts, entities);
    assert_non_null(stmts);

    conf = pg_env_config(schema);
    assert_non_null(conf);
    snprintf(sock_path, sizeof(sock_path), "/tmp/enc-test-kit-%d.sock",
             (int) getpid());
    snprintf(listen, sizeof(listen), "unix:%s", sock_path);
    assert_int_equal(enc_config_set(conf, "db.password_file", "", err,
                                    sizeof(err)), 0);
    assert_int_equal(enc_config_set(conf, "http.listen", listen, err,
                                    sizeof(err)), 0);
    assert_int_equal(enc_config_set(conf, "http.threads", "2", err,
                                    sizeof(err)), 0);
    assert_int_equal(enc_config_set(conf, "http.socket_group", "", err,
                                    sizeof(err)), 0);
    assert_int_equal(enc_pg_configure(conf, stmts), 0);

    memset(key, 7, sizeof(key));
    assert_int_equal(enc_cursor_set_key(key, sizeof(key)), 0);

    http = enc_http_start(conf, routes, NULL);
    assert_non_null(http);
    have_db = 1;
    return 0;
}


static int
teardown(void **state)
{
    char  sql[256];

    if (!have_db) {
        return 0;
    }
    enc_http_stop(http);
    snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE", schema);
    admin_exec(sql);
    PQfinish(admin);
    enc_config_free(conf);
    enc_entity_expand_free(stmts);
    return 0;
}


/* ---- the client ---------------------------------------------------------------- */

typedef struct {
    int      status;
    char     head[4096];
    json_t  *body;          /* NULL when empty or not JSON */
} resp_t;

static char  buf[1 << 18];


/* a request as the edge forwards it for who, "<id> <role> <name>" (NULL:
   anonymous) */
static void
call_as(const char *who, const char *method, const char *path,
    const char *body, resp_t *rp)
{
    int      fd, n;
    char     req[4096], id[40], role[16], name[32], identity[256] = "";
    char    *end;
    size_t   blen = body ? strlen(body) : 0;

    if (who != NULL) {
        assert_int_equal(sscanf(who, "%39s %15s %31s", id, role, name), 3);
        snprintf(identity, sizeof(identity), "X-Encore-User-Id: %s\r\n"
                 "X-Encore-User-Role: %s\r\nX-Encore-User-Name: %s\r\n",
                 id, role, name);
    }

    fd = raw_connect(sock_path);
    assert_true(fd >= 0);
    n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: localhost\r\n"
                 "Connection: close\r\n%s%s"
                 "Content-Length: %zu\r\n\r\n%s", method, path,
                 body ? "Content-Type: application/json\r\n" : "", identity,
                 blen, body ? body : "");
    assert_true(n > 0 && (size_t) n < sizeof(req));
    assert_int_equal(send(fd, req, (size_t) n, MSG_NOSIGNAL), n);
    rp->status = raw_response(fd, buf, sizeof(buf), 10000);
    close(fd);
    assert_true(rp->status > 0);

    end = strstr(buf, "\r\n\r\n");
    assert_non_null(end);
    snprintf(rp->head, sizeof(rp->head), "%.*s", (int) (end - buf), buf);
    rp->body = end[4] ? json_loads(end + 4, 0, NULL) : NULL;
}


static void
call(const char *method, const char *path, const char *body, resp_t *rp)
{
    call_as(NULL, method, path, body, rp);
}


static void
resp_free(resp_t *rp)
{
    json_decref(rp->body);
    rp->body = NULL;
}


static const char *
str_of(json_t *obj, const char *name)
{
    return json_string_value(json_object_get(obj, name));
}


/* 1 if the problem's errors[] names field */
static int
names_field(json_t *problem, const char *field)
{
    size_t   i;
    json_t  *e;

    json_array_foreach(json_object_get(problem, "errors"), i, e) {
        if (strcmp(str_of(e, "field"), field) == 0) {
            return 1;
        }
    }
    return 0;
}


static PGresult *
admin_query(const char *sql)
{
    PGresult  *res;
    char       set[128];

    snprintf(set, sizeof(set), "SET search_path = %s", schema);
    admin_exec(set);
    res = PQexec(admin, sql);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    return res;
}


/* the number of outbox rows of this type and subject <plural>/<id> */
static int
events_of(const char *plural, const char *type, const char *id)
{
    int          n;
    char         sql[512];
    PGresult    *res;

    snprintf(sql, sizeof(sql), "SELECT count(*) FROM outbox WHERE type = '%s'"
             " AND subject = '%s/%s' AND key = '%s'", type, plural, id, id);
    res = admin_query(sql);
    n = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    return n;
}


static int
events(const char *type, const char *id)
{
    return events_of("things", type, id);
}


/* ---- whole operations ------------------------------------------------------------ */

static void
test_crud_db(void **state)
{
    char         path[128], id[40], loc[160];
    resp_t       r;
    PGresult    *res;

    if (!have_db) {
        skip();
    }

    /* create: 201, Location, the owner's view, an event */
    call("POST", "/things", "{\"name\": \"first\", \"live\": true,"
         " \"secret\": \"s\", \"owner\": \"" OWNER "\"}", &r);
    assert_int_equal(r.status, 201);
    assert_non_null(r.body);
    assert_true(enc_uuid_valid(str_of(r.body, "id")));
    snprintf(id, sizeof(id), "%s", str_of(r.body, "id"));
    assert_string_equal(str_of(r.body, "name"), "first");
    assert_string_equal(str_of(r.body, "secret"), "s");
    assert_string_equal(str_of(r.body, "owner"), OWNER);
    assert_true(json_is_true(json_object_get(r.body, "live")));
    assert_non_null(str_of(r.body, "created_at"));
    snprintf(loc, sizeof(loc), "\r\nLocation: /api/v1/things/%s", id);
    assert_non_null(strcasestr(r.head, loc));
    resp_free(&r);
    assert_int_equal(events("encore.thing.created", id), 1);

    /* the event carries the public view: private fields never reach the
       consumers */
    res = admin_query("SELECT data FROM outbox WHERE type ="
                      " 'encore.thing.created' AND data LIKE '%\"first\"%'");
    assert_int_equal(PQntuples(res), 1);
    assert_null(strstr(PQgetvalue(res, 0, 0), "secret"));
    assert_non_null(strstr(PQgetvalue(res, 0, 0), OWNER));
    PQclear(res);

    /* get: 200, the public view */
    snprintf(path, sizeof(path), "/things/%s", id);
    call("GET", path, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(str_of(r.body, "id"), id);
    assert_null(json_object_get(r.body, "secret"));
    assert_int_equal(json_object_size(r.body), 5);
    resp_free(&r);

    /* upper-case ids name the same row */
    {
        char    up[128];
        size_t  k;

        snprintf(up, sizeof(up), "/things/%s", id);
        for (k = sizeof("/things/") - 1; up[k] != '\0'; k++) {
            up[k] = (char) toupper((unsigned char) up[k]);
        }
        call("GET", up, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(str_of(r.body, "id"), id);
        resp_free(&r);
    }

    /* patch: only what was given; null clears a nullable field */
    call("PATCH", path, "{\"live\": false, \"secret\": null}", &r);
    assert_int_equal(r.status, 200);
    assert_true(json_is_false(json_object_get(r.body, "live")));
    assert_true(json_is_null(json_object_get(r.body, "secret")));
    assert_string_equal(str_of(r.body, "name"), "first");
    assert_string_equal(str_of(r.body, "owner"), OWNER);
    resp_free(&r);
    assert_int_equal(events("encore.thing.updated", id), 1);
    call("PATCH", path, "{\"secret\": \"hush\"}", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(str_of(r.body, "secret"), "hush");
    resp_free(&r);
    res = admin_query("SELECT count(*) FROM outbox WHERE data LIKE"
                      " '%hush%'");
    assert_string_equal(PQgetvalue(res, 0, 0), "0");
    PQclear(res);

    /* delete: 204, an event of {"id"}; then it is gone */
    call("DELETE", path, NULL, &r);
    assert_int_equal(r.status, 204);
    assert_null(r.body);
    resp_free(&r);
    assert_int_equal(events("encore.thing.deleted", id), 1);
    res = admin_query("SELECT data FROM outbox WHERE type ="
                      " 'encore.thing.deleted'");
    assert_int_equal(PQntuples(res), 1);
    snprintf(loc, sizeof(loc), "{\"id\":\"%s\"}", id);
    assert_string_equal(PQgetvalue(res, 0, 0), loc);
    PQclear(res);

    call("GET", path, NULL, &r);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(str_of(r.body, "detail"), "no such thing"));
    resp_free(&r);
    call("DELETE", path, NULL, &r);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    call("PATCH", path, "{\"live\": true}", &r);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    /* nothing more was written for what did not exist */
    assert_int_equal(events("encore.thing.deleted", id), 1);
    assert_int_equal(events("encore.thing.updated", id), 2);
}


static void
test_create_problems_db(void **state)
{
    resp_t     r;
    PGresult  *res;
    int        before;

    if (!have_db) {
        skip();
    }

    res = admin_query("SELECT count(*) FROM outbox");
    before = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);

    /* every field problem at once */
    call("POST", "/things", "{\"name\": \"\", \"live\": 1, \"owner\": \"x\"}",
         &r);
    assert_int_equal(r.status, 422);
    assert_true(names_field(r.body, "name"));
    assert_true(names_field(r.body, "live"));
    assert_true(names_field(r.body, "owner"));
    resp_free(&r);

    /* an empty body: the required field */
    call("POST", "/things", NULL, &r);
    assert_int_equal(r.status, 422);
    assert_true(names_field(r.body, "name"));
    resp_free(&r);

    /* strict route: unknown and output-only members refused */
    call("POST", "/things", "{\"name\": \"x\", \"nmae\": \"y\","
         " \"created_at\": \"2020-01-01T00:00:00Z\"}", &r);
    assert_int_equal(r.status, 422);
    assert_true(names_field(r.body, "nmae"));
    assert_true(names_field(r.body, "created_at"));
    assert_false(names_field(r.body, "name"));
    resp_free(&r);

    /* lenient route: ignored */
    call("POST", "/lenient", "{\"name\": \"lenient\", \"nmae\": \"y\"}", &r);
    assert_int_equal(r.status, 201);
    assert_null(json_object_get(r.body, "nmae"));
    resp_free(&r);

    /* unique violation: 409 naming the field */
    call("POST", "/things", "{\"name\": \"lenient\"}", &r);
    assert_int_equal(r.status, 409);
    assert_true(names_field(r.body, "name"));
    resp_free(&r);

    /* foreign-key violation: 422 naming the field */
    call("POST", "/things", "{\"name\": \"orphan\", \"owner\": \"" NOBODY
         "\"}", &r);
    assert_int_equal(r.status, 422);
    assert_true(names_field(r.body, "owner"));
    resp_free(&r);

    /* only the lenient create wrote an event; nothing half-written */
    res = admin_query("SELECT count(*) FROM outbox");
    assert_int_equal(atoi(PQgetvalue(res, 0, 0)), before + 1);
    PQclear(res);
    res = admin_query("SELECT count(*) FROM things WHERE name = 'orphan'");
    assert_string_equal(PQgetvalue(res, 0, 0), "0");
    PQclear(res);

    /* a statement that fails for another reason: 500 */
    call("GET", "/broken/" OWNER, NULL, &r);
    assert_int_equal(r.status, 500);
    assert_null(strcasestr(r.head, "\r\nRetry-After:"));
    resp_free(&r);

    /* a row the entity cannot be answered from is a bug of ours too, not
       an unreachable database (503) */
    call("GET", "/short/" OWNER, NULL, &r);
    assert_int_equal(r.status, 500);
    assert_null(strcasestr(r.head, "\r\nRetry-After:"));
    resp_free(&r);
}


static void
test_patch_problems_db(void **state)
{
    char     path[128];
    resp_t   r;

    if (!have_db) {
        skip();
    }

    call("POST", "/things", "{\"name\": \"patchme\"}", &r);
    assert_int_equal(r.status, 201);
    snprintf(path, sizeof(path), "/things/%s", str_of(r.body, "id"));
    resp_free(&r);
    call("POST", "/things", "{\"name\": \"other\"}", &r);
    assert_int_equal(r.status, 201);
    resp_free(&r);

    /* an empty patch names nothing to change */
    call("PATCH", path, "{}", &r);
    assert_int_equal(r.status, 422);
    assert_true(names_field(r.body, ""));
    resp_free(&r);
    call("PATCH", path, NULL, &r);
    assert_int_equal(r.status, 422);
    resp_free(&r);

    /* a create-only field, a required one cleared */
    call("PATCH", path, "{\"owner\": \"" OWNER "\", \"name\": null}", &r);
    assert_int_equal(r.status, 422);
    assert_true(names_field(r.body, "owner"));
    assert_true(names_field(r.body, "name"));
    resp_free(&r);

    /* taken */
    call("PATCH", path, "{\"name\": \"other\"}", &r);
    assert_int_equal(r.status, 409);
    assert_true(names_field(r.body, "name"));
    resp_free(&r);

    /* the body is checked before existence: a bad body on an id that
       cannot exist is 422, a good one 404 */
    call("PATCH", "/things/nope", "{}", &r);
    assert_int_equal(r.status, 422);
    resp_free(&r);
    call("PATCH", "/things/nope", "{\"live\": true}", &r);
    assert_int_equal(r.status, 404);
    resp_free(&r);

    /* ids that are not UUIDs name nothing */
    call("GET", "/things/nope", NULL, &r);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    call("DELETE", "/things/" OWNER "0", NULL, &r);
    assert_int_equal(r.status, 404);
    resp_free(&r);
}


/* ---- lists ----------------------------------------------------------------------- */

/* follows next_cursor from path; returns the names seen, comma-separated,
   and the number of pages */
static int
walk(const char *first, char *names, size_t cap)
{
    int          pages = 0;
    char         path[1024];
    size_t       i;
    json_t      *item, *next;
    resp_t       r;

    names[0] = '\0';
    snprintf(path, sizeof(path), "%s", first);
    for ( ;; ) {
        call("GET", path, NULL, &r);
        assert_int_equal(r.status, 200);
        pages++;
        json_array_foreach(json_object_get(r.body, "items"), i, item) {
            assert_null(json_object_get(item, "secret"));
            if (names[0] != '\0') {
                strncat(names, ",", cap - strlen(names) - 1);
            }
            strncat(names, str_of(item, "name"), cap - strlen(names) - 1);
        }
        next = json_object_get(r.body, "next_cursor");
        assert_non_null(next);
        if (json_is_null(next)) {
            resp_free(&r);
            return pages;
        }
        assert_true(json_is_string(next));
        snprintf(path, sizeof(path), "%s%scursor=%s", first,
                 strchr(first, '?') ? "&" : "?", json_string_value(next));
        resp_free(&r);
        assert_true(pages < 50);
    }
}


static void
test_list_db(void **state)
{
    int      i;
    char     names[4096], want[4096], sql[512], path[1024], cur[600];
    resp_t   r;

    if (!have_db) {
        skip();
    }

    snprintf(sql, sizeof(sql), "SET search_path = %s", schema);
    admin_exec(sql);
    admin_exec("DELETE FROM things");
    /* 25 rows: l00..l24, the even ones live */
    admin_exec("INSERT INTO things (name, live, owner, secret)"
               " SELECT 'l' || lpad(i::text, 2, '0'), i % 2 = 0, '" OWNER
               "', 's' FROM generate_series(0, 24) i");

    want[0] = '\0';
    for (i = 0; i < 25; i++) {
        snprintf(want + strlen(want), sizeof(want) - strlen(want), "%sl%02d",
                 i ? "," : "", i);
    }

    /* the default page is 20; every row once, in order */
    assert_int_equal(walk("/things", names, sizeof(names)), 2);
    assert_string_equal(names, want);
    assert_int_equal(walk("/things?limit=10", names, sizeof(names)), 3);
    assert_string_equal(names, want);
    assert_int_equal(walk("/things?limit=1", names, sizeof(names)), 25);
    assert_string_equal(names, want);
    assert_int_equal(walk("/things?limit=100", names, sizeof(names)), 1);
    assert_string_equal(names, want);
    /* a list's own default page size; ?limit= still says */
    assert_int_equal(walk("/whole", names, sizeof(names)), 1);
    assert_string_equal(names, want);
    assert_int_equal(walk("/whole?limit=10", names, sizeof(names)), 3);
    assert_string_equal(names, want);
    /* exactly a page: no next page announced */
    assert_int_equal(walk("/things?limit=25", names, sizeof(names)), 1);
    assert_int_equal(walk("/things?limit=5", names, sizeof(names)), 5);

    /* filters */
    assert_int_equal(walk("/things?live=true&limit=5", names,
                          sizeof(names)), 3);
    assert_string_equal(names, "l00,l02,l04,l06,l08,l10,l12,l14,l16,l18,"
                               "l20,l22,l24");
    assert_int_equal(walk("/things?prefix=l1&limit=4", names,
                          sizeof(names)), 3);
    assert_string_equal(names, "l10,l11,l12,l13,l14,l15,l16,l17,l18,l19");
    assert_int_equal(walk("/things?prefix=zz", names, sizeof(names)), 1);
    assert_string_equal(names, "");

    /* limits out of bounds, and bad filters: 422 naming them */
    static const char *const  bad[][2] = {
        { "/things?limit=0", "limit" }, { "/things?limit=101", "limit" },
        { "/things?limit=abc", "limit" }, { "/things?limit=-1", "limit" },
        { "/things?limit=", "limit" }, { "/things?limit=%2B5", "limit" },
        { "/things?limit=99999999999999999999", "limit" },
        { "/things?live=yes", "live" }, { "/things?prefix=", "prefix" },
        { "/things?prefix=%FF", "prefix" },
    };
    for (i = 0; i < (int) (sizeof(bad) / sizeof(bad[0])); i++) {
        call("GET", bad[i][0], NULL, &r);
        if (r.status != 422 || !names_field(r.body, bad[i][1])) {
            fail_msg("%s: %d", bad[i][0], r.status);
        }
        resp_free(&r);
    }
    call("GET", "/things?limit=0&live=x", NULL, &r);
    assert_int_equal(r.status, 422);
    assert_true(names_field(r.body, "limit"));
    assert_true(names_field(r.body, "live"));
    resp_free(&r);

    /* a cursor is good only for the filters it was made under */
    call("GET", "/things?live=true&limit=2", NULL, &r);
    assert_int_equal(r.status, 200);
    snprintf(cur, sizeof(cur), "%s", str_of(r.body, "next_cursor"));
    resp_free(&r);
    snprintf(path, sizeof(path), "/things?live=true&limit=2&cursor=%s", cur);
    call("GET", path, NULL, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    /* the page size may change between pages */
    snprintf(path, sizeof(path), "/things?live=true&limit=7&cursor=%s", cur);
    call("GET", path, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.body, "items")), 7);
    resp_free(&r);
    static const char *const  other[] = {
        "/things?live=false&limit=2&cursor=%s",
        "/things?limit=2&cursor=%s",
        "/things?live=true&prefix=l&limit=2&cursor=%s",
        "/owners/" OWNER "/things?limit=2&cursor=%s",
    };
    for (i = 0; i < (int) (sizeof(other) / sizeof(other[0])); i++) {
        snprintf(path, sizeof(path), other[i], cur);
        call("GET", path, NULL, &r);
        if (r.status != 400) {
            fail_msg("cursor accepted by %s: %d", other[i], r.status);
        }
        resp_free(&r);
    }
    /* garbage, and a cursor with a character changed */
    call("GET", "/things?cursor=abc", NULL, &r);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    call("GET", "/things?cursor=", NULL, &r);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    cur[10] = cur[10] == 'A' ? 'B' : 'A';
    snprintf(path, sizeof(path), "/things?live=true&limit=2&cursor=%s", cur);
    call("GET", path, NULL, &r);
    assert_int_equal(r.status, 400);
    resp_free(&r);
}


static void
test_child_list_db(void **state)
{
    char     names[4096];
    resp_t   r;

    if (!have_db) {
        skip();
    }

    /* the owner of test_list_db's rows */
    assert_int_equal(walk("/owners/" OWNER "/things?limit=10", names,
                          sizeof(names)), 3);
    assert_int_equal(strlen(names), 25 * 4 - 1);

    /* an owner without things: an empty list, not a 404 */
    call("GET", "/owners/" LONELY "/things", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.body, "items")), 0);
    assert_true(json_is_null(json_object_get(r.body, "next_cursor")));
    resp_free(&r);

    /* no such owner */
    call("GET", "/owners/" NOBODY "/things", NULL, &r);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(str_of(r.body, "detail"), "no such owner"));
    resp_free(&r);
    call("GET", "/owners/" NOBODY "/things?limit=0", NULL, &r);
    assert_int_equal(r.status, 422);
    resp_free(&r);
}


/* past the first page too: an empty page of an owner still there is an
   empty page, of an owner gone while the client paged a 404 */
static void
test_child_list_parent_gone_db(void **state)
{
    int     i;
    char    body[160], path[512], cur[256];
    resp_t  r;

#define GONER  "44444444-2222-4333-8444-555555555555"

    if (!have_db) {
        skip();
    }

    admin_exec("SET search_path = pg_catalog");
    snprintf(path, sizeof(path), "INSERT INTO %s.owners VALUES ('" GONER "')",
             schema);
    admin_exec(path);
    for (i = 0; i < 3; i++) {
        snprintf(body, sizeof(body), "{\"name\": \"gone-%d\", \"owner\": \""
                 GONER "\"}", i);
        call("POST", "/things", body, &r);
        assert_int_equal(r.status, 201);
        resp_free(&r);
    }

    call("GET", "/owners/" GONER "/things?limit=2", NULL, &r);
    assert_int_equal(r.status, 200);
    snprintf(cur, sizeof(cur), "%s", str_of(r.body, "next_cursor"));
    resp_free(&r);
    snprintf(path, sizeof(path), "/owners/" GONER "/things?limit=2&cursor=%s",
             cur);

    /* the rest of its things gone, the owner still there: an empty page */
    snprintf(body, sizeof(body), "DELETE FROM %s.things WHERE owner = '"
             GONER "'", schema);
    admin_exec(body);
    call("GET", path, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.body, "items")), 0);
    assert_true(json_is_null(json_object_get(r.body, "next_cursor")));
    resp_free(&r);

    /* the owner gone too: the same cursor names nothing */
    snprintf(body, sizeof(body), "DELETE FROM %s.owners WHERE id = '" GONER
             "'", schema);
    admin_exec(body);
    call("GET", path, NULL, &r);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(str_of(r.body, "detail"), "no such owner"));
    resp_free(&r);

#undef GONER
}


/* ---- the caller ---------------------------------------------------------------- */

#define ANN   "aaaaaaaa-0000-4000-8000-000000000001 user ann"
#define BOB   "bbbbbbbb-0000-4000-8000-000000000002 user bob"
#define MOD   "cccccccc-0000-4000-8000-000000000003 moderator max"
#define ANN_ID  "aaaaaaaa-0000-4000-8000-000000000001"


/* a note by who on a board: its id in id */
static void
note_on(const char *board, const char *who, const char *body, char *id,
    size_t len)
{
    char    path[128];
    resp_t  r;

    snprintf(path, sizeof(path), "/boards/%s/notes", board);
    call_as(who, "POST", path, body, &r);
    assert_int_equal(r.status, 201);
    snprintf(id, len, "%s", str_of(r.body, "id"));
    resp_free(&r);
}


static int
status_of(const char *who, const char *method, const char *path,
    const char *body)
{
    int     st;
    resp_t  r;

    call_as(who, method, path, body, &r);
    st = r.status;
    resp_free(&r);
    return st;
}


static void
test_filled_fields_db(void **state)
{
    char      id[40];
    resp_t    r;

    if (!have_db) {
        skip();
    }

    /* the author and the board come from the caller and the path */
    call_as(ANN, "POST", "/boards/" OWNER "/notes", "{\"text\": \"hi\"}", &r);
    assert_int_equal(r.status, 201);
    assert_string_equal(str_of(r.body, "author_id"), ANN_ID);
    assert_string_equal(str_of(r.body, "author"), "ann");
    assert_string_equal(str_of(r.body, "board"), OWNER);
    snprintf(id, sizeof(id), "%s", str_of(r.body, "id"));
    resp_free(&r);

    /* ... and never from the body: strict routes refuse them by name */
    call_as(ANN, "POST", "/boards/" OWNER "/notes",
            "{\"text\": \"hi\", \"author_id\": \"" OWNER "\","
            " \"author\": \"eve\", \"board\": \"" LONELY "\"}", &r);
    assert_int_equal(r.status, 422);
    assert_true(names_field(r.body, "author_id"));
    assert_true(names_field(r.body, "author"));
    assert_true(names_field(r.body, "board"));
    resp_free(&r);

    /* a board that is not there, or no UUID: 404 naming the parent, after
       the body was checked */
    call_as(ANN, "POST", "/boards/" NOBODY "/notes", "{\"text\": \"hi\"}", &r);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(str_of(r.body, "detail"), "no such board"));
    resp_free(&r);
    call_as(ANN, "POST", "/boards/nope/notes", "{\"text\": \"hi\"}", &r);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(str_of(r.body, "detail"), "no such board"));
    resp_free(&r);
    assert_int_equal(status_of(ANN, "POST", "/boards/" NOBODY "/notes",
                               "{}"), 422);

    /* the statement's event column: a second event, only when set */
    assert_int_equal(events_of("notes", "encore.note.created", id), 1);
    assert_int_equal(events_of("notes", "encore.note.published", id), 0);
    note_on(OWNER, ANN, "{\"text\": \"out\", \"public\": true}", id, sizeof(id));
    assert_int_equal(events_of("notes", "encore.note.created", id), 1);
    assert_int_equal(events_of("notes", "encore.note.published", id), 1);
}


static void
test_check_db(void **state)
{
    resp_t     r;
    PGresult  *res;

    if (!have_db) {
        skip();
    }

    call_as(BOB, "POST", "/boards/" LONELY "/notes",
            "{\"text\": \"forbidden\"}", &r);
    assert_int_equal(r.status, 422);
    assert_true(names_field(r.body, "text"));
    resp_free(&r);
    call_as(BOB, "POST", "/boards/" LONELY "/notes", "{\"text\": \"broken\"}",
            &r);
    assert_int_equal(r.status, 500);
    resp_free(&r);

    /* neither wrote anything, and the connection is usable again */
    res = admin_query("SELECT count(*) FROM notes WHERE board = '" LONELY
                      "'");
    assert_string_equal(PQgetvalue(res, 0, 0), "0");
    PQclear(res);
    assert_int_equal(status_of(BOB, "POST", "/boards/" LONELY "/notes",
                               "{\"text\": \"fine\"}"), 201);
}


static void
test_who_may_db(void **state)
{
    char   mine[40], open[40], path[64], opath[64];

    if (!have_db) {
        skip();
    }

    note_on(OWNER, ANN, "{\"text\": \"private\"}", mine, sizeof(mine));
    note_on(OWNER, ANN, "{\"text\": \"public\", \"public\": true}", open,
            sizeof(open));
    snprintf(path, sizeof(path), "/notes/%s", mine);
    snprintf(opath, sizeof(opath), "/notes/%s", open);

    /* seeing: a private note is there for its author and moderators only */
    assert_int_equal(status_of(NULL, "GET", path, NULL), 404);
    assert_int_equal(status_of(BOB, "GET", path, NULL), 404);
    assert_int_equal(status_of(ANN, "GET", path, NULL), 200);
    assert_int_equal(status_of(MOD, "GET", path, NULL), 200);
    assert_int_equal(status_of(NULL, "GET", opath, NULL), 200);

    /* changing: 404 where the caller cannot see it, 403 where it can */
    assert_int_equal(status_of(BOB, "PATCH", path, "{\"text\": \"x\"}"), 404);
    assert_int_equal(status_of(BOB, "PATCH", opath, "{\"text\": \"x\"}"), 403);
    assert_int_equal(status_of(BOB, "DELETE", path, NULL), 404);
    assert_int_equal(status_of(BOB, "DELETE", opath, NULL), 403);
    assert_int_equal(events_of("notes", "encore.note.updated", open), 0);
    assert_int_equal(status_of(ANN, "PATCH", opath, "{\"text\": \"y\"}"),
                     200);
    assert_int_equal(status_of(MOD, "PATCH", path, "{\"text\": \"z\"}"), 200);
    assert_int_equal(events_of("notes", "encore.note.updated", open), 1);
    assert_int_equal(events_of("notes", "encore.note.updated", mine), 1);
    assert_int_equal(status_of(BOB, "PATCH",
                               "/notes/" NOBODY, "{\"text\": \"x\"}"), 404);
    assert_int_equal(status_of(MOD, "DELETE", path, NULL), 204);
    assert_int_equal(status_of(ANN, "DELETE", opath, NULL), 204);
    assert_int_equal(status_of(ANN, "DELETE", opath, NULL), 404);
}


static void
test_caller_list_db(void **state)
{
    int     i;
    char    id[40], path[512], cur[256];
    resp_t  r;

    if (!have_db) {
        skip();
    }

    for (i = 0; i < 3; i++) {
        note_on(OWNER, BOB, "{\"text\": \"bob's\"}", id, sizeof(id));
    }

    /* only the caller's own notes, and its cursor is its own */
    call_as(BOB, "GET", "/notes?limit=2", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.body, "items")), 2);
    assert_string_equal(str_of(json_array_get(json_object_get(r.body,
                                                              "items"), 0),
                               "author"), "bob");
    snprintf(cur, sizeof(cur), "%s", str_of(r.body, "next_cursor"));
    resp_free(&r);

    snprintf(path, sizeof(path), "/notes?limit=2&cursor=%s", cur);
    call_as(BOB, "GET", path, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_true(json_array_size(json_object_get(r.body, "items")) >= 1);
    resp_free(&r);
    assert_int_equal(status_of(ANN, "GET", path, NULL), 400);

    call_as(MOD, "GET", "/notes", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.body, "items")), 0);
    resp_free(&r);
}


static void
test_event_table_db(void **state)
{
    char                       id[40];
    enc_pg_t                  *pg;
    PGresult                  *res;
    enc_event_t                ev;
    static const enc_event_route_t  table[] = {
        { "encore.board.deleted", "board_forget", NULL },
        { "encore.board.deleted", "notes_orphan", &note },
        { "encore.board.broken", "broken", NULL },
        { "encore.board.stamped", "stamped", NULL },
        { NULL, NULL, NULL }
    };

    if (!have_db) {
        skip();
    }

    note_on(LONELY, BOB, "{\"text\": \"on lonely\"}", id, sizeof(id));
    pg = enc_pg_thread();
    assert_non_null(pg);

    memset(&ev, 0, sizeof(ev));
    ev.id = "e1";
    ev.topic = "encore.test.boards";
    ev.key = LONELY;
    ev.data = json_pack("{s:s, s:s}", "id", LONELY, "by", "[gone]");

    /* the type's statements in order; the rows returned are published */
    ev.type = "encore.board.deleted";
    assert_int_equal(enc_pg_begin(pg), 0);
    assert_int_equal(enc_event_table_apply(pg, &ev, (void *) table), 0);
    assert_int_equal(enc_pg_commit(pg), 0);
    assert_int_equal(events_of("notes", "encore.note.updated", id), 1);
    res = admin_query("SELECT count(*) FROM boards WHERE id = '" LONELY "'");
    assert_string_equal(PQgetvalue(res, 0, 0), "0");
    PQclear(res);
    res = admin_query("SELECT data FROM outbox WHERE type ="
                      " 'encore.note.updated' AND data LIKE '%[gone]%'");
    assert_true(PQntuples(res) >= 1);
    PQclear(res);

    /* what the table does not name, or without a key: nothing */
    ev.type = "encore.board.created";
    assert_int_equal(enc_event_table_apply(pg, &ev, (void *) table), 0);
    ev.type = "encore.board.deleted";
    ev.key = NULL;
    assert_int_equal(enc_event_table_apply(pg, &ev, (void *) table), 0);
    assert_int_equal(events_of("notes", "encore.note.updated", id), 1);

    /* a failing statement: -1, for the consumer to roll back and retry */
    ev.key = LONELY;
    ev.type = "encore.board.broken";
    assert_int_equal(enc_pg_begin(pg), 0);
    assert_int_equal(enc_event_table_apply(pg, &ev, (void *) table), -1);
    enc_pg_rollback(pg);

    /* a statement declaring three parameters gets the event's time */
    ev.type = "encore.board.stamped";
    ev.time = "2026-01-02T03:04:05.000000Z";
    assert_int_equal(enc_pg_begin(pg), 0);
    assert_int_equal(enc_event_table_apply(pg, &ev, (void *) table), 0);
    enc_pg_rollback(pg);
    ev.time = "2026-01-02T03:04:06Z";
    assert_int_equal(enc_pg_begin(pg), 0);
    assert_int_equal(enc_event_table_apply(pg, &ev, (void *) table), -1);
    enc_pg_rollback(pg);
    ev.time = NULL;
    assert_int_equal(enc_pg_begin(pg), 0);
    assert_int_equal(enc_event_table_apply(pg, &ev, (void *) table), -1);
    enc_pg_rollback(pg);

    json_decref(ev.data);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_crud_db),
        cmocka_unit_test(test_create_problems_db),
        cmocka_unit_test(test_patch_problems_db),
        cmocka_unit_test(test_list_db),
        cmocka_unit_test(test_child_list_db),
        cmocka_unit_test(test_child_list_parent_gone_db),
        cmocka_unit_test(test_filled_fields_db),
        cmocka_unit_test(test_check_db),
        cmocka_unit_test(test_who_may_db),
        cmocka_unit_test(test_caller_list_db),
        cmocka_unit_test(test_event_table_db),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
