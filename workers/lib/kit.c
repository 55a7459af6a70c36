/*
 * kit.c — whole CRUD operations and the pieces they are made of (kit.h).
 *
 * Every function here answers the request itself when it fails, so a
 * handler's only duty after a NULL or -1 is to return.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "kit.h"
#include "log.h"
#include "outbox.h"


/* ---- the pieces ------------------------------------------------------------ */

enc_pg_t *
enc_kit_db(enc_resp_t *w)
{
    enc_pg_t  *pg;

    pg = enc_pg_thread();
    if (pg == NULL) {
        enc_resp_header(w, "Retry-After", "1");
        enc_resp_problem(w, 503, NULL, "the database is unreachable");
    }

    return pg;
}


void
enc_kit_not_found(enc_resp_t *w, const enc_entity_t *e)
{
    char  detail[96];

    snprintf(detail, sizeof(detail), "no such %s", e->name);
    enc_resp_problem(w, 404, NULL, detail);
}


const char *
enc_kit_id(enc_req_t *r, enc_resp_t *w, const enc_entity_t *e)
{
    const char  *id;

    id = enc_req_param(r, "id");
    if (!enc_uuid_valid(id)) {
        enc_kit_not_found(w, e);
        return NULL;
    }

    return id;
}


json_t *
enc_kit_body(enc_req_t *r, enc_resp_t *w, const enc_field_t *fields,
    unsigned mode, void *dst)
{
    json_t            *out;
    enc_validation_t   v;

    if (enc_req_route_flags(r) & ENC_ROUTE_STRICT) {
        mode |= ENC_BIND_STRICT;
    }

    enc_validation_init(&v);
    if (enc_bind_json(enc_req_json(r), fields, mode, &out, dst, &v) != 0) {
        json_decref(out);
        if (enc_validation_failed(&v)) {
            enc_resp_validation(w, &v);
        } else {
            enc_resp_problem(w, 500, NULL, "out of memory");
        }
        return NULL;
    }

    return out;
}


void
enc_kit_fail(enc_resp_t *w, enc_pg_t *pg, const enc_entity_t *e,
    const PGresult *res, const char *stmt)
{
    char                     detail[256];
    enc_validation_t         v;
    const enc_constraint_t  *c;

    c = e != NULL ? enc_entity_constraint(e, res) : NULL;
    enc_pg_rollback(pg);

    if (c != NULL) {
        snprintf(detail, sizeof(detail), "%s %s", c->field, c->message);
        enc_validation_init(&v);
        enc_validation_add(&v, c->field, "%s", c->message);
        enc_resp_field_problem(w, c->status, detail, &v);
        return;
    }

    if (res != NULL && enc_pg_ok(pg)) {
        enc_log_error("kit: statement %s failed: SQLSTATE %s: %s", stmt,
                      enc_pg_sqlstate(res),
                      PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                      ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                      : "");
    }
    enc_kit_db_error(w, res != NULL ? pg : NULL);
}


void
enc_kit_db_error(enc_resp_t *w, enc_pg_t *pg)
{
    /* a lost connection is the database's state, worth a retry; anything
       else is a bug of ours */
    if (pg == NULL || !enc_pg_ok(pg)) {
        enc_resp_header(w, "Retry-After", "1");
        enc_resp_problem(w, 503, NULL, "the database is unreachable");
        return;
    }

    enc_kit_internal(w);
}


void
enc_kit_internal(enc_resp_t *w)
{
    enc_resp_problem(w, 500, NULL, "the request could not be completed");
}


PGresult *
enc_kit_run(enc_resp_t *w, enc_pg_t *pg, const enc_entity_t *e,
    const char *stmt, int n, const char *const *params)
{
    PGresult        *res;
    ExecStatusType   st;

    res = enc_pg_exec(pg, stmt, n, params);
    st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        return res;
    }

    enc_kit_fail(w, pg, e, res, stmt);
    PQclear(res);
    return NULL;
}


int
enc_kit_begin(enc_resp_t *w, enc_pg_t *pg)
{
    if (enc_pg_begin(pg) != 0) {
        enc_pg_rollback(pg);
        enc_kit_db_error(w, pg);
        return -1;
    }

    return 0;
}


int
enc_kit_commit(enc_resp_t *w, enc_pg_t *pg)
{
    if (enc_pg_commit(pg) != 0) {
        /* a serialisation or deferred-constraint failure also lands here;
           the client may retry either */
        enc_resp_header(w, "Retry-After", "1");
        enc_resp_problem(w, 503, NULL, "the change could not be committed; "
                         "it was not made");
        return -1;
    }

    return 0;
}


int
enc_kit_event(enc_resp_t *w, enc_pg_t *pg, const enc_entity_t *e,
    const char *verb, const char *id, json_t *value)
{
    /* an entity published nowhere (a chat session: only its messages
       are) has no events */
    if (e->topic == NULL) {
        return 0;
    }

    if (enc_entity_event(pg, e, verb, id, value) != 0) {
        enc_log_error("kit: the %s.%s event of %s could not be queued",
                      e->name, verb, id);
        enc_pg_rollback(pg);
        enc_kit_db_error(w, pg);
        return -1;
    }

    return 0;
}


/* ---- the caller, for statements that ask for it --------------------------- */

/* The caller as two statement parameters, id (NULL when anonymous) and
   rank; room for them is ENC_KIT_CALLER_PARAMS. */
#define ENC_KIT_CALLER_PARAMS  2

typedef struct {
    const char  *id;
    char         rank[4];
} kit_caller_t;


static void
caller_params(enc_req_t *r, kit_caller_t *c)
{
    const enc_caller_t  *who;

    who = enc_req_caller(r);
    c->id = who->id;
    snprintf(c->rank, sizeof(c->rank), "%d", (int) who->role);
}


/* n of the operation's own parameters in params; when stmt declares the
   caller's two as well, they are appended: the new count */
static int
with_caller(const char *stmt, const char **params, int n,
    const kit_caller_t *c)
{
    if (enc_pg_stmt_nparams(stmt) != n + ENC_KIT_CALLER_PARAMS) {
        return n;
    }

    params[n] = c->id;
    params[n + 1] = c->rank;
    return n + ENC_KIT_CALLER_PARAMS;
}


/* ---- whole operations -------------------------------------------------------- */

/* one write: its statement and parameters, and what answers it */
typedef struct {
    const enc_entity_t  *e;
    const char          *stmt;
    const char          *params[2 + ENC_KIT_CALLER_PARAMS];
    int                  nparams;
    kit_caller_t         caller;
    json_t              *body;      /* bound, for e->check; or NULL */
    unsigned             mode;      /* ENC_BIND_CREATE or _PATCH */
    const char          *verb;      /* of the event */
    int                  status;    /* 201, 200 or 204 */
} kit_write_t;


/* e->check inside the transaction: 0 to go on, -1 after answering */
static int
write_check(enc_resp_t *w, enc_pg_t *pg, const kit_write_t *kw)
{
    int               rc;
    enc_validation_t  v;

    if (kw->e->check == NULL || kw->body == NULL) {
        return 0;
    }

    enc_validation_init(&v);
    rc = kw->e->check(pg, kw->body, kw->mode, &v);
    if (rc != 0) {
        enc_pg_rollback(pg);
        if (rc == -1 && enc_validation_failed(&v)) {
            enc_resp_validation(w, &v);
        } else {
            enc_kit_db_error(w, pg);
        }
    }
    enc_validation_free(&v);

    return rc == 0 ? 0 : -1;
}


/* A write that matched no row: on create, the parent the path named is
   not there (for this caller); otherwise the entity is not, or the caller
   sees it but may not change it (e->visible). */
static void
write_missed(enc_resp_t *w, enc_pg_t *pg, const kit_write_t *kw)
{
    int                 n;
    PGresult           *res;
    const char         *params[1 + ENC_KIT_CALLER_PARAMS];
    enc_entity_t        parent;
    const enc_entity_t *e = kw->e;

    if (kw->status == 201) {
        parent = (enc_entity_t) { .name = e->parent ? e->parent : e->name };
        enc_kit_not_found(w, &parent);
        return;
    }

    if (e->visible == NULL) {
        enc_kit_not_found(w, e);
        return;
    }

    params[0] = kw->params[0];
    n = with_caller(e->visible, params, 1, &kw->caller);
    res = enc_kit_run(w, pg, e, e->visible, n, params);
    if (res == NULL) {
        return;
    }

    if (PQntuples(res) == 0) {
        enc_kit_not_found(w, e);
    } else {
        char  detail[96];

        snprintf(detail, sizeof(detail), "you may not change this %s",
                 e->name);
        enc_resp_problem(w, 403, NULL, detail);
    }
    PQclear(res);
}


/* the events of the row written: the operation's own verb, then the one
   the statement's "event" column names, if any */
static int
write_events(enc_resp_t *w, enc_pg_t *pg, const kit_write_t *kw,
    PGresult *res, json_t *pub)
{
    int          col;
    const char  *id;

    id = PQgetvalue(res, 0, 0);
    if (enc_kit_event(w, pg, kw->e, kw->verb, id, pub) != 0) {
        return -1;
    }

    col = PQfnumber(res, "event");
    if (col >= 0 && !PQgetisnull(res, 0, col)) {
        return enc_kit_event(w, pg, kw->e, PQgetvalue(res, 0, col), id, pub);
    }

    return 0;
}


/* Runs the write in a transaction with its events (the row's public
   view: events go to every consumer), and answers its status with that
   row in the owner's view (204 when status is 204).  The row's id is its
   first column. */
static void
write_one(enc_resp_t *w, enc_pg_t *pg, const kit_write_t *kw)
{
    char                 location[256];
    json_t              *row = NULL, *pub = NULL;
    PGresult            *res;
    const enc_entity_t  *e = kw->e;

    if (enc_kit_begin(w, pg) != 0 || write_check(w, pg, kw) != 0) {
        return;
    }

    res = enc_kit_run(w, pg, e, kw->stmt, kw->nparams, kw->params);
    if (res == NULL) {
        return;
    }

    if (PQntuples(res) == 0) {
        PQclear(res);
        enc_pg_rollback(pg);
        write_missed(w, pg, kw);
        return;
    }

    if (kw->status != 204) {
        row = enc_entity_json(e, res, 0, ENC_VIEW_OWNER);
        pub = enc_entity_json(e, res, 0, ENC_VIEW_PUBLIC);
        if (row == NULL || pub == NULL) {
            json_decref(row);
            json_decref(pub);
            PQclear(res);
            enc_pg_rollback(pg);
            enc_kit_db_error(w, pg);
            return;
        }
    }

    if (write_events(w, pg, kw, res, pub) != 0 || enc_kit_commit(w, pg) != 0) {
        json_decref(row);
        json_decref(pub);
        PQclear(res);
        return;
    }
    json_decref(pub);

    if (kw->status == 201) {
        snprintf(location, sizeof(location), "%s%s", e->path,
                 PQgetvalue(res, 0, 0));
        enc_resp_header(w, "Location", location);
    }
    PQclear(res);

    if (kw->status == 204) {
        enc_resp_empty(w, 204);
    } else {
        enc_resp_json(w, kw->status, row);
    }
}


void
enc_kit_get(enc_req_t *r, enc_resp_t *w, const enc_entity_t *e,
    const char *stmt)
{
    int            n;
    char          *text;
    size_t         len;
    enc_jw_t       jw;
    enc_pg_t      *pg;
    PGresult      *res;
    const char    *params[1 + ENC_KIT_CALLER_PARAMS];
    kit_caller_t   caller;

    if ((params[0] = enc_kit_id(r, w, e)) == NULL
        || (pg = enc_kit_db(w)) == NULL)
    {
        return;
    }

    caller_params(r, &caller);
    n = with_caller(stmt, params, 1, &caller);
    res = enc_kit_run(w, pg, e, stmt, n, params);
    if (res == NULL) {
        return;
    }

    if (PQntuples(res) == 0) {
        enc_kit_not_found(w, e);
    } else {
        /* the row as text at once: no jansson tree for a read */
        enc_jw_init(&jw);
        enc_entity_write(&jw, e, res, 0, ENC_VIEW_PUBLIC);
        text = enc_jw_finish(&jw, &len);
        enc_resp_json_text(w, 200, text, len);
    }

    PQclear(res);
}


/* What the kit fills in on create (ENC_FILLED): 0, or -1 after answering
   (a path {id} that is no UUID names no parent; out of memory). */
static int
fill_body(enc_req_t *r, enc_resp_t *w, const enc_entity_t *e, json_t *body)
{
    json_t               *j;
    const char           *id;
    enc_entity_t          parent;
    const enc_field_t    *f;
    const enc_caller_t   *who;

    who = enc_req_caller(r);
    for (f = e->fields; f->name != NULL; f++) {
        if (f->flags & ENC_CALLER_ID) {
            j = who->id != NULL ? json_string(who->id) : json_null();
        } else if (f->flags & ENC_CALLER_NAME) {
            j = json_string(who->name);
        } else if (f->flags & ENC_PATH_ID) {
            id = enc_req_param(r, "id");
            if (!enc_uuid_valid(id)) {
                parent = (enc_entity_t) { .name = e->parent ? e->parent
                                                            : e->name };
                enc_kit_not_found(w, &parent);
                return -1;
            }
            j = json_string(id);
        } else {
            continue;
        }

        if (json_object_set_new(body, f->name, j) != 0) {
            enc_kit_internal(w);
            return -1;
        }
    }

    return 0;
}


/* create and patch: bind (and fill), then the write with its check */
static void
write_body(enc_req_t *r, enc_resp_t *w, const enc_entity_t *e,
    const char *stmt, unsigned mode)
{
    int          n = 0;
    char        *text = NULL;
    enc_pg_t    *pg;
    kit_write_t  kw = { .e = e, .stmt = stmt, .mode = mode };

    /* route, credentials, then the body (CONTRACT.md), then existence:
       an unknown id with a bad body is 422, as for any other id */
    kw.body = enc_kit_body(r, w, e->fields, mode, NULL);
    if (kw.body == NULL) {
        return;
    }

    if (mode & ENC_BIND_CREATE) {
        kw.verb = "created";
        kw.status = 201;
        if (fill_body(r, w, e, kw.body) != 0) {
            goto done;
        }
    } else {
        kw.verb = "updated";
        kw.status = 200;
        if ((kw.params[n++] = enc_kit_id(r, w, e)) == NULL) {
            goto done;
        }
    }

    text = enc_json_dumps(kw.body, NULL);
    if (text == NULL) {
        enc_kit_internal(w);
        goto done;
    }
    kw.params[n++] = text;

    caller_params(r, &kw.caller);
    kw.nparams = with_caller(stmt, kw.params, n, &kw.caller);

    if ((pg = enc_kit_db(w)) != NULL) {
        write_one(w, pg, &kw);
    }

done:

    free(text);
    json_decref(kw.body);
}


void
enc_kit_create(enc_req_t *r, enc_resp_t *w, const enc_entity_t *e,
    const char *stmt)
{
    write_body(r, w, e, stmt, ENC_BIND_CREATE);
}


void
enc_kit_patch(enc_req_t *r, enc_resp_t *w, const enc_entity_t *e,
    const char *stmt)
{
    write_body(r, w, e, stmt, ENC_BIND_PATCH);
}


void
enc_kit_delete(enc_req_t *r, enc_resp_t *w, const enc_entity_t *e,
    const char *stmt)
{
    enc_pg_t     *pg;
    kit_write_t   kw = { .e = e, .stmt = stmt, .verb = "deleted",
                         .status = 204 };

    if ((kw.params[0] = enc_kit_id(r, w, e)) == NULL
        || (pg = enc_kit_db(w)) == NULL)
    {
        return;
    }

    caller_params(r, &kw.caller);
    kw.nparams = with_caller(stmt, kw.params, 1, &kw.caller);
    write_one(w, pg, &kw);
}


/* ---- lists ------------------------------------------------------------------- */

static const char *
query_get(void *arg, const char *name)
{
    return enc_req_query(arg, name);
}


static const enc_field_t  page_fields[] = {
    { .name = "limit", .type = ENC_INT, .min = 1, .max = ENC_LIST_LIMIT_MAX },
    ENC_FIELD_END
};


/* "<list>\n<arg>\n...\n<filters as canonical JSON>[\n<caller>]": a cursor
   is valid only for the same list, path arguments and filters, and, when
   the statement takes the caller, the same caller */
static char *
list_scope(const enc_list_t *l, int nargs, const char *const *args,
    json_t *filters, const char *caller)
{
    int      i;
    char    *f, *scope;
    size_t   len;

    f = json_dumps(filters, JSON_COMPACT | JSON_SORT_KEYS);
    if (f == NULL) {
        return NULL;
    }

    len = strlen(l->name) + strlen(f) + 2;
    for (i = 0; i < nargs; i++) {
        len += (args[i] ? strlen(args[i]) : 0) + 1;
    }
    len += caller ? strlen(caller) + 1 : 0;

    scope = malloc(len);
    if (scope != NULL) {
        strcpy(scope, l->name);
        for (i = 0; i < nargs; i++) {
            strcat(scope, "\n");
            strcat(scope, args[i] ? args[i] : "");
        }
        strcat(scope, "\n");
        strcat(scope, f);
        if (caller != NULL) {
            strcat(scope, "\n");
            strcat(scope, caller);
        }
    }

    free(f);
    return scope;
}


/* a filter's value as a statement parameter (text form), malloc'd */
static char *
param_text(json_t *j)
{
    char  buf[32];

    if (j == NULL || json_is_null(j)) {
        return NULL;
    }
    if (json_is_string(j)) {
        return strdup(json_string_value(j));
    }
    if (json_is_integer(j)) {
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
                 json_integer_value(j));
        return strdup(buf);
    }
    if (json_is_boolean(j)) {
        return strdup(json_is_true(j) ? "true" : "false");
    }

    return json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
}


/* the page's answer: {items, next_cursor} */
/* the page's answer, {"items": [...], "next_cursor": ...}, written from
   the rows (no jansson tree: a page is the kit's hottest path); NULL when
   the cursor cannot be made or memory ran out */
static char *
list_page(const enc_entity_t *e, const enc_list_t *l, PGresult *res,
    int limit, const char *scope, size_t *len)
{
    int                  i, n, col;
    char                *next = NULL;
    json_t              *keys;
    enc_jw_t             jw;
    const char *const   *k;

    n = PQntuples(res);

    if (n > limit) {
        keys = json_array();
        for (k = l->keys; keys != NULL && *k != NULL; k++) {
            col = PQfnumber(res, *k);
            if (col < 0) {
                enc_log_error("kit: list %s has no sort key column \"%s\"",
                              l->name, *k);
                json_decref(keys);
                return NULL;
            }
            json_array_append_new(keys, json_string(PQgetvalue(res,
                                                                limit - 1,
                                                                col)));
        }
        next = keys != NULL ? enc_cursor_encode(scope, keys) : NULL;
        json_decref(keys);
        if (next == NULL) {
            return NULL;
        }
    }

    enc_jw_init(&jw);
    enc_jw_raw(&jw, "{\"items\":[", 10);
    for (i = 0; i < n && i < limit; i++) {
        if (i > 0) {
            enc_jw_raw(&jw, ",", 1);
        }
        enc_entity_write(&jw, e, res, i, l->view);
    }
    enc_jw_raw(&jw, "],\"next_cursor\":", 16);
    if (next != NULL) {
        enc_jw_string(&jw, next, strlen(next));
    } else {
        enc_jw_raw(&jw, "null", 4);
    }
    enc_jw_raw(&jw, "}", 1);
    free(next);

    return enc_jw_finish(&jw, len);
}


void
enc_kit_list(enc_req_t *r, enc_resp_t *w, const enc_entity_t *e,
    const enc_list_t *l, int nargs, const char *const *args)
{
    int                 i, np = 0, nkeys = 0, limit = ENC_LIST_LIMIT_DEFAULT,
                        takes_caller;
    char               *scope = NULL, *text, limit_s[16];
    size_t              len;
    char               *owned[ENC_LIST_FILTERS_MAX] = { NULL };
    json_t             *page = NULL, *filters = NULL, *after = NULL, *body;
    enc_pg_t           *pg;
    PGresult           *res = NULL;
    const char         *cursor, *params[ENC_LIST_ARGS_MAX
                                        + ENC_LIST_FILTERS_MAX
                                        + ENC_LIST_KEYS_MAX + 1
                                        + ENC_KIT_CALLER_PARAMS];
    kit_caller_t        caller;
    enc_validation_t    v;
    const enc_field_t   none[] = { ENC_FIELD_END }, *f;

    enc_validation_init(&v);
    (void) enc_bind_query(query_get, r, page_fields, &page, NULL, &v);
    (void) enc_bind_query(query_get, r, l->filters ? l->filters : none,
                          &filters, NULL, &v);
    if (enc_validation_failed(&v) || page == NULL || filters == NULL) {
        if (enc_validation_failed(&v)) {
            enc_resp_field_problem(w, 422, "the query parameters failed "
                                   "validation", &v);
        } else {
            enc_resp_problem(w, 500, NULL, "out of memory");
        }
        goto done;
    }

    if (json_object_get(page, "limit") != NULL) {
        limit = (int) json_integer_value(json_object_get(page, "limit"));

    } else if (l->limit > 0 && l->limit <= ENC_LIST_LIMIT_MAX) {
        limit = l->limit;
    }

    caller_params(r, &caller);
    for (i = 0, f = l->filters; f != NULL && f->name != NULL; f++) {
        i++;
    }
    for (; l->keys[nkeys] != NULL; nkeys++) {
        /* count */
    }
    takes_caller = enc_pg_stmt_nparams(l->stmt)
                   == nargs + i + nkeys + 1 + ENC_KIT_CALLER_PARAMS;

    scope = list_scope(l, nargs, args, filters,
                       takes_caller ? caller.id : NULL);
    if (scope == NULL) {
        enc_resp_problem(w, 500, NULL, "out of memory");
        goto done;
    }

    /* a parent statement takes args[0]: a list without one is our bug */
    if (nargs > ENC_LIST_ARGS_MAX || i > ENC_LIST_FILTERS_MAX
        || nkeys > ENC_LIST_KEYS_MAX || (l->parent != NULL && nargs < 1))
    {
        enc_log_error("kit: list %s exceeds the kit's bounds on arguments, "
                      "filters or sort keys", l->name);
        enc_resp_problem(w, 500, NULL, "the request could not be completed");
        goto done;
    }

    cursor = enc_req_query(r, "cursor");
    if (cursor != NULL) {
        after = enc_cursor_decode(cursor, scope);
        if (after == NULL || (int) json_array_size(after) != nkeys) {
            enc_resp_problem(w, 400, NULL, "cursor is not a cursor of this "
                             "list with these filters");
            goto done;
        }
    }

    for (i = 0; i < nargs; i++) {
        params[np++] = args[i];
    }
    for (i = 0, f = l->filters; f != NULL && f->name != NULL; f++, i++) {
        owned[i] = param_text(json_object_get(filters, f->name));
        params[np++] = owned[i];
    }
    for (i = 0; i < nkeys; i++) {
        params[np++] = after != NULL
                       ? json_string_value(json_array_get(after, i)) : NULL;
    }
    snprintf(limit_s, sizeof(limit_s), "%d", limit + 1);
    params[np++] = limit_s;
    np = with_caller(l->stmt, params, np, &caller);

    if ((pg = enc_kit_db(w)) == NULL) {
        goto done;
    }

    res = enc_kit_run(w, pg, e, l->stmt, np, params);
    if (res == NULL) {
        goto done;
    }

    /* an empty page of a child list: is there a parent at all?  Also
       past the first page: a parent gone (or hidden) while a client was
       paging is a 404, not an empty page */
    if (PQntuples(res) == 0 && l->parent != NULL) {
        PQclear(res);
        res = enc_kit_run(w, pg, e, l->parent, 1, args);
        if (res == NULL) {
            goto done;
        }
        if (PQntuples(res) == 0) {
            enc_entity_t  parent = { .name = l->parent_name ? l->parent_name
                                                            : "parent" };
            enc_kit_not_found(w, &parent);
            goto done;
        }
        PQclear(res);
        res = NULL;
        body = json_pack("{s:[], s:n}", "items", "next_cursor");
        enc_resp_json(w, 200, body);
        goto done;
    }

    text = list_page(e, l, res, limit, scope, &len);
    if (text == NULL) {
        enc_pg_rollback(pg);
        enc_kit_db_error(w, pg);
    } else {
        enc_resp_json_text(w, 200, text, len);
    }

done:

    for (i = 0; i < ENC_LIST_FILTERS_MAX; i++) {
        free(owned[i]);
    }
    PQclear(res);
    free(scope);
    json_decref(after);
    json_decref(filters);
    json_decref(page);
    enc_validation_free(&v);
}
