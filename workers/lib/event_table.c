/*
 * event_table.c — consumed events applied from a table (event_table.h).
 */

#include <stdlib.h>
#include <string.h>

#include "event_table.h"
#include "json.h"
#include "log.h"


/* each row of res is a changed e: its "updated" event */
static int
emit_rows(enc_pg_t *pg, const enc_entity_t *e, const PGresult *res)
{
    int      i, rc;
    json_t  *value;

    for (i = 0; i < PQntuples(res); i++) {
        value = enc_entity_json(e, res, i, ENC_VIEW_PUBLIC);
        if (value == NULL) {
            enc_log_error("events: a changed %s could not be read", e->name);
            return -1;
        }
        rc = enc_entity_event(pg, e, "updated", PQgetvalue(res, i, 0), value);
        json_decref(value);
        if (rc != 0) {
            enc_log_error("events: the %s.updated event of %s could not be "
                          "queued", e->name, PQgetvalue(res, i, 0));
            return -1;
        }
    }

    return 0;
}


int
enc_event_table_apply(enc_pg_t *pg, const enc_event_t *ev, void *app)
{
    int                       rc = 0, matched = 0;
    char                     *data;
    PGresult                 *res;
    ExecStatusType            st;
    const char               *params[3];
    const enc_event_route_t  *t;

    if (ev->key == NULL || ev->key[0] == '\0') {
        enc_log_warn("events: %s %s from %s has no key; skipped", ev->type,
                     ev->id, ev->topic);
        return 0;
    }

    data = enc_json_dumps(ev->data, NULL);
    if (data == NULL) {
        return -1;
    }
    params[0] = ev->key;
    params[1] = data;
    params[2] = ev->time;

    for (t = app; t->type != NULL && rc == 0; t++) {
        if (strcmp(t->type, ev->type) != 0) {
            continue;
        }
        matched = 1;

        /* a statement that declares a third parameter gets the event's
           time: deletions carry no updated_at to order them by */
        res = enc_pg_exec(pg, t->stmt,
                          enc_pg_stmt_nparams(t->stmt) == 3 ? 3 : 2, params);
        st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
        if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
            enc_log_error("events: %s %s: statement %s failed: %s%s",
                          ev->type, ev->id, t->stmt,
                          res != NULL ? "SQLSTATE " : "the connection failed",
                          res != NULL ? enc_pg_sqlstate(res) : "");
            rc = -1;

        } else if (t->emits != NULL) {
            rc = emit_rows(pg, t->emits, res);
        }
        PQclear(res);
    }

    if (!matched) {
        enc_log_debug("events: %s %s is not one this worker applies",
                      ev->type, ev->id);
    }

    free(data);
    return rc;
}


int
enc_event_table_alone(const enc_event_t *ev, void *app)
{
    const enc_event_route_t  *t;

    for (t = app; t->type != NULL; t++) {
        if (t->emits != NULL && strcmp(t->type, ev->type) == 0) {
            return 1;
        }
    }
    return 0;
}
