/*
 * writes: POST /writes, GET /seen, GET /outbox and the consumer handler
 * that fills `seen` from encore.probe.writes.
 *
 * POST /writes {"value": "..."} inserts a row and its outbox event in one
 * transaction and answers 201 {"id": n}; with ?rollback=1 it does the same
 * and rolls back (answering 200 {"id": n, "rolled_back": true}), so the
 * event must never reach Kafka.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "echo.h"
#include "log.h"
#include "outbox.h"
#include "writes.h"


static void writes_post(enc_req_t *req, enc_resp_t *resp, void *app);
static void seen_get(enc_req_t *req, enc_resp_t *resp, void *app);
static void outbox_get(enc_req_t *req, enc_resp_t *resp, void *app);


const enc_route_t  probe_routes[] = {
    { "POST", "/writes", writes_post, ENC_ROUTE_JSON_BODY, "writes_post" },
    { "GET",  "/seen",   seen_get,    0,                   "seen_get" },
    { "GET",  "/outbox", outbox_get,  0,                   "outbox_get" },
    { "GET",  "/echo-identity", probe_echo_identity_get, 0, "echo_identity" },
    { NULL, NULL, NULL, 0, NULL }
};

const enc_pg_stmt_t  probe_statements[] = {
    { "probe_write_insert",
      "INSERT INTO writes (value) VALUES ($1) RETURNING id", 1 },
    /* a second application of one event would show as applications = 2 */
    { "probe_seen_apply",
      "INSERT INTO seen (event_id, write_id, value, type)"
      " VALUES ($1, $2, $3, $4)"
      " ON CONFLICT (event_id) DO UPDATE"
      " SET applications = seen.applications + 1", 4 },
    { "probe_seen_list",
      "SELECT event_id, write_id, value, type, applications FROM seen"
      " ORDER BY write_id, event_id", 0 },
    { "probe_outbox_stats",
      "SELECT count(*) FILTER (WHERE published_at IS NULL),"
      " count(*) FILTER (WHERE published_at IS NOT NULL),"
      " coalesce(sum(attempts), 0) FROM outbox", 0 },
    { NULL, NULL, 0 }
};


static void
writes_post(enc_req_t *req, enc_resp_t *resp, void *app)
{
    int               rollback;
    char              idbuf[32], subject[48];
    json_t           *body, *data;
    enc_pg_t         *pg;
    PGresult         *res;
    long long         id;
    const char       *value = NULL, *q, *params[1];
    enc_validation_t  v;

    body = enc_req_json(req);
    if (body == NULL) {
        enc_resp_problem(resp, 400, "Bad Request", "a JSON body is required");
        return;
    }
    enc_validation_init(&v);
    (void) enc_json_get_str(body, "value", 1, 0, 10000, &value, &v);
    if (enc_validation_failed(&v)) {
        enc_resp_validation(resp, &v);
        return;
    }
    enc_validation_free(&v);

    q = enc_req_query(req, "rollback");
    rollback = q != NULL && strcmp(q, "1") == 0;

    pg = enc_pg_thread();
    if (pg == NULL || enc_pg_begin(pg) != 0) {
        enc_resp_problem(resp, 503, "Service Unavailable",
                         "database unavailable");
        return;
    }

    params[0] = value;
    res = enc_pg_exec(pg, "probe_write_insert", 1, params);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        enc_log_error("probe: insert: %s",
                      res ? PQresultErrorMessage(res) : "connection lost");
        goto failed;
    }
    id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    res = NULL;

    (void) snprintf(idbuf, sizeof(idbuf), "%lld", id);
    (void) snprintf(subject, sizeof(subject), "writes/%lld", id);

    data = json_pack("{s:I, s:s}", "id", (json_int_t) id, "value", value);
    if (data == NULL) {
        goto failed;
    }
    /* same transaction as the row: both commit or neither does */
    if (enc_outbox_add(pg, PROBE_TOPIC, PROBE_EVENT_TYPE, idbuf, subject,
                       data) != 0)
    {
        json_decref(data);
        goto failed;
    }
    json_decref(data);

    if (rollback) {
        enc_pg_rollback(pg);
        enc_resp_json(resp, 200, json_pack("{s:I, s:b}", "id", (json_int_t) id,
                                           "rolled_back", 1));
        return;
    }

    if (enc_pg_commit(pg) != 0) {
        enc_resp_problem(resp, 503, "Service Unavailable", "commit failed");
        return;
    }
    enc_resp_json(resp, 201, json_pack("{s:I}", "id", (json_int_t) id));
    return;

failed:
    if (res != NULL) {
        PQclear(res);
    }
    enc_pg_rollback(pg);
    enc_resp_problem(resp, 500, "Internal Server Error", "write failed");
}


static void
seen_get(enc_req_t *req, enc_resp_t *resp, void *app)
{
    int        i, n;
    json_t    *items, *item;
    enc_pg_t  *pg;
    PGresult  *res;

    pg = enc_pg_thread();
    res = pg != NULL ? enc_pg_exec(pg, "probe_seen_list", 0, NULL) : NULL;
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        if (res != NULL) {
            PQclear(res);
        }
        enc_resp_problem(resp, 503, "Service Unavailable",
                         "database unavailable");
        return;
    }

    items = json_array();
    n = PQntuples(res);
    for (i = 0; items != NULL && i < n; i++) {
        /* "count" is what the integration suite reads; "applications"
           says the same for humans */
        item = json_pack("{s:s, s:I, s:s?, s:s, s:I, s:I}",
                         "event_id", PQgetvalue(res, i, 0),
                         "write_id",
                         (json_int_t) strtoll(PQgetvalue(res, i, 1), NULL, 10),
                         "value",
                         PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2),
                         "type", PQgetvalue(res, i, 3),
                         "count",
                         (json_int_t) strtoll(PQgetvalue(res, i, 4), NULL,
                                              10),
                         "applications",
                         (json_int_t) strtoll(PQgetvalue(res, i, 4), NULL,
                                              10));
        if (item == NULL || json_array_append_new(items, item) != 0) {
            json_decref(items);
            items = NULL;
        }
    }
    PQclear(res);

    if (items == NULL) {
        enc_resp_problem(resp, 500, "Internal Server Error", "out of memory");
        return;
    }
    enc_resp_json(resp, 200, json_pack("{s:o, s:i}", "items", items,
                                       "count", n));
}


static void
outbox_get(enc_req_t *req, enc_resp_t *resp, void *app)
{
    enc_pg_t  *pg;
    PGresult  *res;

    pg = enc_pg_thread();
    res = pg != NULL ? enc_pg_exec(pg, "probe_outbox_stats", 0, NULL) : NULL;
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        if (res != NULL) {
            PQclear(res);
        }
        enc_resp_problem(resp, 503, "Service Unavailable",
                         "database unavailable");
        return;
    }

    enc_resp_json(resp, 200, json_pack("{s:I, s:I, s:I, s:b}",
        "pending", (json_int_t) strtoll(PQgetvalue(res, 0, 0), NULL, 10),
        "published", (json_int_t) strtoll(PQgetvalue(res, 0, 1), NULL, 10),
        "failed_attempts",
        (json_int_t) strtoll(PQgetvalue(res, 0, 2), NULL, 10),
        "relay_ready", enc_relay_ready()));
    PQclear(res);
}


/*
 * Records the event in `seen`.  Runs inside the consumer's transaction,
 * after the inbox insert, so a replay never gets here.  Data that is not a
 * probe write is recorded with write_id 0 rather than retried forever.
 */
int
probe_on_event(enc_pg_t *pg, const enc_event_t *ev, void *app)
{
    char        idbuf[32];
    json_t     *id, *value;
    PGresult   *res;
    const char *params[4];

    id = json_object_get(ev->data, "id");
    value = json_object_get(ev->data, "value");
    (void) snprintf(idbuf, sizeof(idbuf), "%lld",
                    json_is_integer(id) ? (long long) json_integer_value(id)
                                        : 0LL);

    params[0] = ev->id;
    params[1] = idbuf;
    params[2] = json_is_string(value) ? json_string_value(value) : NULL;
    params[3] = ev->type;

    res = enc_pg_exec(pg, "probe_seen_apply", 4, params);
    if (res == NULL) {
        return -1;
    }
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        enc_log_error("probe: seen: %s", PQresultErrorMessage(res));
        PQclear(res);
        return -1;
    }
    PQclear(res);
    return 0;
}
