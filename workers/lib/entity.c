/*
 * entity.c — select lists, row JSON, events and constraint errors from one
 * description of an entity (see entity.h).
 */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entity.h"
#include "log.h"
#include "outbox.h"


/* ---- statement expansion -------------------------------------------------- */

typedef struct {
    char    *buf;
    size_t   len;
    size_t   cap;
    int      failed;
} sbuf_t;


static void
sb_add(sbuf_t *b, const char *s, size_t n)
{
    char    *p;
    size_t   cap;

    if (b->failed) {
        return;
    }
    if (b->len + n + 1 > b->cap) {
        cap = (b->cap ? b->cap * 2 : 256);
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        p = realloc(b->buf, cap);
        if (p == NULL) {
            b->failed = 1;
            return;
        }
        b->buf = p;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
}


static void
sb_str(sbuf_t *b, const char *s)
{
    sb_add(b, s, strlen(s));
}


static void
sb_column(sbuf_t *b, const char *alias, const char *name)
{
    if (alias != NULL) {
        sb_str(b, alias);
        sb_str(b, ".");
    }
    sb_str(b, name);
}


/* the select expression of one field, "AS name" included */
static void
select_one(sbuf_t *b, const enc_field_t *f, const char *alias)
{
    if (f->sql != NULL) {
        sb_str(b, f->sql);

    } else if (f->type == ENC_TIME) {
        sb_str(b, "to_char(");
        sb_column(b, alias, f->name);
        sb_str(b, " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");

    } else if (f->type == ENC_DATE) {
        sb_str(b, "to_char(");
        sb_column(b, alias, f->name);
        sb_str(b, ", 'YYYY-MM-DD')");

    } else if (f->type == ENC_ARRAY) {
        sb_str(b, "array_to_json(");
        sb_column(b, alias, f->name);
        sb_str(b, ")::text");

    } else {
        sb_column(b, alias, f->name);
    }

    sb_str(b, " AS ");
    sb_str(b, f->name);
}


static int
writes(const enc_field_t *f, int create)
{
    return f->type != ENC_TIME
           && ((f->flags & ENC_IN)
               || (create && (f->flags & (ENC_IN_CREATE | ENC_FILLED))));
}


/* expands one reference "[alias.]name[:create|:patch]"; 0 if it names none
   of the entities (the text is then kept as it was: SQL has braces of its
   own, in array and JSON literals) */
static int
expand_ref(sbuf_t *b, const char *ref, size_t n,
    const enc_entity_t *const *entities)
{
    char                 text[128], *alias = NULL, *name, *mode, *dot;
    int                  first = 1, create = 0, patch = 0;
    const enc_field_t   *f;
    const enc_entity_t  *e = NULL;

    if (n == 0 || n >= sizeof(text)) {
        return 0;
    }
    memcpy(text, ref, n);
    text[n] = '\0';

    name = text;
    mode = strchr(text, ':');
    if (mode != NULL) {
        *mode++ = '\0';
        create = strcmp(mode, "create") == 0;
        patch = strcmp(mode, "patch") == 0;
        if (!create && !patch) {
            return 0;
        }
    }
    dot = strchr(text, '.');
    if (dot != NULL) {
        *dot = '\0';
        alias = text;
        name = dot + 1;
    }

    for (; *entities != NULL; entities++) {
        if (strcmp((*entities)->name, name) == 0) {
            e = *entities;
            break;
        }
    }
    if (e == NULL) {
        return 0;
    }

    for (f = e->fields; f->name != NULL; f++) {
        if (mode == NULL ? !(f->flags & ENC_OUT) : !writes(f, create)) {
            continue;
        }
        if (!first) {
            sb_str(b, ", ");
        }
        first = 0;
        if (mode == NULL) {
            select_one(b, f, alias);
        } else {
            sb_column(b, alias, f->name);
        }
    }

    return 1;
}


static char *
expand_sql(const char *sql, const enc_entity_t *const *entities)
{
    sbuf_t       b = { NULL, 0, 0, 0 };
    const char  *p, *open, *close, *inner;

    for (p = sql; (open = strchr(p, '{')) != NULL; p = close + 1) {
        sb_add(&b, p, (size_t) (open - p));
        close = strchr(open, '}');
        if (close == NULL) {
            p = open;
            break;
        }
        /* a lone literal '{' before a reference: keep it, and look for
           the reference from the last '{' before the '}' */
        inner = memrchr(open, '{', (size_t) (close - open));
        if (inner != open) {
            sb_add(&b, open, (size_t) (inner - open));
            open = inner;
        }
        if (!expand_ref(&b, open + 1, (size_t) (close - open - 1), entities)) {
            sb_add(&b, open, (size_t) (close - open + 1));
        }
    }
    sb_str(&b, p);

    if (b.failed) {
        free(b.buf);
        return NULL;
    }
    return b.buf;
}


enc_pg_stmt_t *
enc_entity_expand(const enc_pg_stmt_t *stmts,
    const enc_entity_t *const *entities)
{
    size_t          i, n;
    enc_pg_stmt_t  *out;

    for (n = 0; stmts[n].name != NULL; n++) {
        /* count */
    }

    out = calloc(n + 1, sizeof(*out));
    if (out == NULL) {
        return NULL;
    }

    for (i = 0; i < n; i++) {
        out[i] = stmts[i];
        out[i].sql = expand_sql(stmts[i].sql, entities);
        if (out[i].sql == NULL) {
            enc_log_error("entity: out of memory expanding statement %s",
                          stmts[i].name);
            enc_entity_expand_free(out);
            return NULL;
        }
    }

    return out;
}


void
enc_entity_expand_free(enc_pg_stmt_t *stmts)
{
    size_t  i;

    if (stmts == NULL) {
        return;
    }
    for (i = 0; stmts[i].name != NULL; i++) {
        free((char *) stmts[i].sql);
    }
    free(stmts);
}


/* ---- rows ------------------------------------------------------------------- */

static json_t *
column_json(const enc_field_t *f, const PGresult *res, int row, int col)
{
    const char  *s;
    int          len;

    if (PQgetisnull(res, row, col)) {
        return json_null();
    }

    s = PQgetvalue(res, row, col);
    len = PQgetlength(res, row, col);

    switch (f->type) {

    case ENC_INT:
        return json_integer(strtoll(s, NULL, 10));

    case ENC_BOOL:
        return json_boolean(s[0] == 't');

    case ENC_ARRAY:
        return json_loadb(s, (size_t) len, JSON_DECODE_ANY, NULL);

    default:
        return json_stringn(s, (size_t) len);
    }
}


/* whether a view answers a field: private ones to owners and admins,
   admin-only ones to admins */
static int
shown(const enc_field_t *f, enc_view_t view)
{
    return (!(f->flags & ENC_PRIVATE) || view >= ENC_VIEW_OWNER)
           && (!(f->flags & ENC_ADMIN_ONLY) || view == ENC_VIEW_ADMIN);
}


/* 1 when res has a column for every ENC_OUT field of e (a list's sort key
   may follow them), else 0 after saying so: a statement without the
   entity's select list */
static int
columns_fit(const enc_entity_t *e, const PGresult *res)
{
    int                 n = 0;
    const enc_field_t  *f;

    for (f = e->fields; f->name != NULL; f++) {
        n += (f->flags & ENC_OUT) != 0;
    }
    if (PQnfields(res) < n) {
        enc_log_error("entity: %s row has %d columns, fewer than its %d "
                      "fields", e->name, PQnfields(res), n);
        return 0;
    }
    return 1;
}


json_t *
enc_entity_json(const enc_entity_t *e, const PGresult *res, int row,
    enc_view_t view)
{
    int                 col = 0;
    json_t             *obj, *j;
    const enc_field_t  *f;

    if (!columns_fit(e, res)) {
        return NULL;
    }

    obj = json_object();
    if (obj == NULL) {
        return NULL;
    }

    for (f = e->fields; f->name != NULL; f++) {
        if (!(f->flags & ENC_OUT)) {
            continue;
        }
        if (shown(f, view)) {
            j = column_json(f, res, row, col);
            if (j == NULL || json_object_set_new(obj, f->name, j) != 0) {
                json_decref(obj);
                return NULL;
            }
        }
        col++;
    }

    return obj;
}


void
enc_entity_write(enc_jw_t *w, const enc_entity_t *e, const PGresult *res,
    int row, enc_view_t view)
{
    int                 col = 0, first = 1, len;
    const char         *s;
    const enc_field_t  *f;

    if (!columns_fit(e, res)) {
        w->failed = 1;
        return;
    }

    enc_jw_raw(w, "{", 1);

    for (f = e->fields; f->name != NULL; f++) {
        if (!(f->flags & ENC_OUT)) {
            continue;
        }
        if (!shown(f, view)) {
            col++;
            continue;
        }

        if (!first) {
            enc_jw_raw(w, ",", 1);
        }
        first = 0;
        enc_jw_string(w, f->name, strlen(f->name));
        enc_jw_raw(w, ":", 1);

        s = PQgetvalue(res, row, col);
        len = PQgetlength(res, row, col);

        if (PQgetisnull(res, row, col)) {
            enc_jw_raw(w, "null", 4);
        } else if (f->type == ENC_BOOL) {
            enc_jw_raw(w, s[0] == 't' ? "true" : "false", s[0] == 't' ? 4 : 5);
        } else if (f->type == ENC_INT || f->type == ENC_ARRAY) {
            /* an integer's text, or array_to_json's: JSON already */
            enc_jw_raw(w, s, (size_t) len);
        } else {
            enc_jw_string(w, s, (size_t) len);
        }
        col++;
    }

    enc_jw_raw(w, "}", 1);
}


int
enc_entity_event(enc_pg_t *pg, const enc_entity_t *e, const char *verb,
    const char *id, json_t *value)
{
    int      rc;
    char     type[96], subject[160];
    json_t  *deleted = NULL;

    snprintf(type, sizeof(type), "encore.%s.%s", e->name, verb);
    snprintf(subject, sizeof(subject), "%s/%s", e->plural, id);

    if (value == NULL) {
        deleted = json_pack("{s:s}", "id", id);
        if (deleted == NULL) {
            return -1;
        }
        value = deleted;
    }

    rc = enc_outbox_add(pg, e->topic, type, id, subject, value);
    json_decref(deleted);
    return rc;
}


const enc_constraint_t *
enc_entity_constraint(const enc_entity_t *e, const PGresult *res)
{
    const char              *state, *name;
    const enc_constraint_t  *c;

    state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    name = res != NULL ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME)
                       : NULL;

    /* class 23: integrity constraint violation */
    if (state == NULL || strncmp(state, "23", 2) != 0 || name == NULL
        || e->constraints == NULL)
    {
        return NULL;
    }

    for (c = e->constraints; c->name != NULL; c++) {
        if (strcmp(c->name, name) == 0) {
            return c;
        }
    }

    return NULL;
}
