/*
 * sessions.c — the chat session, described once, and its endpoints; and
 * what a deleted user's account takes with it.
 *
 * Who may: a session is its creator's alone.  The routes ask for a
 * signed-in caller (main.c) and every statement names the caller as the
 * owner (sql.c), so another user's session is 404, staff's too.
 *
 * Sessions are published nowhere (the entity has no topic); their
 * messages are, on encore.chat.messages: deleting a session publishes
 * each of its messages' encore.message.deleted, so that the compacted
 * topic forgets them too.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"


static const enc_field_t  session_fields[] = {
    { .name = "id", .type = ENC_UUID, .flags = ENC_OUT | ENC_KEY },
    /* the owner: never answered, never read from a body */
    { .name = "user_id", .type = ENC_UUID, .flags = ENC_CALLER_ID },
    /* optional: "New chat" until the first question names it */
    { .name = "title", .type = ENC_STRING,
      .flags = ENC_OUT | ENC_IN_CREATE | ENC_NOT_BLANK, .min = 1, .max = 200 },
    { .name = "created_at", .type = ENC_TIME, .flags = ENC_OUT },
    { .name = "updated_at", .type = ENC_TIME, .flags = ENC_OUT },
    ENC_FIELD_END
};

static const enc_constraint_t  session_constraints[] = {
    /* the account was deleted while its access token lives on */
    { "sessions_user_gone", 422, "", "the account is deleted" },
    { NULL, 0, NULL, NULL }
};

const enc_entity_t  chat_session = {
    .name = "session", .plural = "sessions", .path = "/api/v1/chat/sessions/",
    .fields = session_fields, .constraints = session_constraints
};


/* newest updated first: the session of the latest question on top */
static const char *const  newest[] = { "updated_at", "id", NULL };

static const enc_list_t  own_list = {
    .name = "chat_sessions_list", .stmt = "sessions_own", .keys = newest
};


void
chat_sessions_create(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_create(r, w, &chat_session, "session_insert");
}


void
chat_sessions_list(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_list(r, w, &chat_session, &own_list, 0, NULL);
}


void
chat_sessions_get(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_kit_get(r, w, &chat_session, "session_get");
}


/* the caller's id and rank, as the statements take them */
static void
caller_params(enc_req_t *r, const char **id, char rank[4])
{
    const enc_caller_t  *c = enc_req_caller(r);

    *id = c->id;
    snprintf(rank, 4, "%d", (int) c->role);
}


int
chat_session_owned(enc_req_t *r, enc_resp_t *w, enc_pg_t *pg, const char *id)
{
    char         rank[4];
    PGresult    *res;
    const char  *params[3];

    params[0] = id;
    caller_params(r, &params[1], rank);
    params[2] = rank;

    res = enc_kit_run(w, pg, &chat_session, "session_get", 3, params);
    if (res == NULL) {
        return -1;
    }

    if (PQntuples(res) == 0) {
        PQclear(res);
        enc_kit_not_found(w, &chat_session);
        return -1;
    }

    PQclear(res);
    return 0;
}


/* deletes the messages of session $1 in the open transaction, each
   published deleted: 0, or -1 (rolled back) */
static int
messages_forget(enc_pg_t *pg, const char *stmt, int n,
    const char *const *params)
{
    int        i;
    PGresult  *res;

    res = enc_pg_exec(pg, stmt, n, params);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        enc_log_error("chat: %s failed: %s", stmt,
                      res ? PQresultErrorMessage(res) : "no connection");
        PQclear(res);
        return -1;
    }

    for (i = 0; i < PQntuples(res); i++) {
        if (enc_entity_event(pg, &chat_message, "deleted",
                             PQgetvalue(res, i, 0), NULL) != 0)
        {
            PQclear(res);
            return -1;
        }
    }

    PQclear(res);
    return 0;
}


void
chat_sessions_delete(enc_req_t *r, enc_resp_t *w, void *app)
{
    char         rank[4];
    enc_pg_t    *pg;
    PGresult    *res;
    const char  *params[3];

    if ((params[0] = enc_kit_id(r, w, &chat_session)) == NULL
        || (pg = enc_kit_db(w)) == NULL || enc_kit_begin(w, pg) != 0)
    {
        return;
    }
    caller_params(r, &params[1], rank);
    params[2] = rank;

    /* the caller's session, locked: a question on its way waits */
    res = enc_kit_run(w, pg, &chat_session, "session_lock", 3, params);
    if (res == NULL) {
        return;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        enc_pg_rollback(pg);
        enc_kit_not_found(w, &chat_session);
        return;
    }
    PQclear(res);

    if (messages_forget(pg, "session_messages_delete", 1, params) != 0) {
        enc_pg_rollback(pg);
        enc_kit_db_error(w, pg);
        return;
    }

    res = enc_kit_run(w, pg, &chat_session, "session_delete", 1, params);
    if (res == NULL) {
        return;
    }
    PQclear(res);

    if (enc_kit_commit(w, pg) == 0) {
        /* its replies on their way stop: nobody can keep them */
        chat_asks_cancel(params[0], NULL);
        enc_resp_empty(w, 204);
    }
}


/* encore.auth.users: a deleted account's sessions and messages go (the
   order and the lock: sql.c, user_lock), and its replies on their way are
   cancelled (again, harmlessly, when the transaction is rolled back and
   the event applied anew).  Other events change nothing. */
int
chat_on_event(enc_pg_t *pg, const enc_event_t *ev, void *app)
{
    int                        i;
    PGresult                  *res;
    const char                *params[2], *user;
    char                      *data;
    static const char *const   steps[] = { "user_lock", "user_gone", NULL };

    if (ev->type == NULL || strcmp(ev->type, "encore.user.deleted") != 0) {
        return 0;
    }

    data = ev->data != NULL ? json_dumps(ev->data, JSON_COMPACT) : NULL;
    params[0] = ev->key;
    params[1] = data != NULL ? data : "{}";

    for (i = 0; steps[i] != NULL; i++) {
        res = enc_pg_exec(pg, steps[i], 2, params);
        if (res == NULL || (PQresultStatus(res) != PGRES_TUPLES_OK
                            && PQresultStatus(res) != PGRES_COMMAND_OK))
        {
            enc_log_error("chat: %s failed: %s", steps[i],
                          res ? PQresultErrorMessage(res) : "no connection");
            PQclear(res);
            free(data);
            return -1;
        }
        PQclear(res);
    }

    if (messages_forget(pg, "user_messages_delete", 2, params) != 0) {
        free(data);
        return -1;
    }

    res = enc_pg_exec(pg, "user_sessions_delete", 2, params);
    i = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
    if (i != 0) {
        enc_log_error("chat: user_sessions_delete failed: %s",
                      res ? PQresultErrorMessage(res) : "no connection");
    } else {
        user = ev->key;
        if (user == NULL && ev->data != NULL) {
            user = json_string_value(json_object_get(ev->data, "id"));
        }
        if (user != NULL && user[0] != '\0') {
            chat_asks_cancel(NULL, user);
        }
    }
    PQclear(res);
    free(data);

    return i;
}
