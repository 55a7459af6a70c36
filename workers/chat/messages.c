/*
 * messages.c — the chat message, described once, its list, and a
 * question's way from the client to the stored reply.
 *
 * POST /sessions/{id}/messages runs in two halves on two threads:
 *
 *   the handler (a pool thread)      the engine (its own thread)
 *   ---------------------------      ---------------------------
 *   refuse at once if the engine
 *   is full (503, nothing stored),
 *   store the question (+ event),
 *   read the history, ground it
 *   in search, start the reply,
 *   defer the answer and return  ->  token, token, ...  (SSE: each one
 *                                    written as it comes)
 *                                    done: store the reply (+ event),
 *                                    finish the answer (SSE done, or 201
 *                                    with both messages, or a problem)
 *
 * so a reply that takes a minute holds no pool thread, and the client
 * leaving cancels the provider's request (on_cancel, on a libmicrohttpd
 * thread).  What arrived before a cut or a cancel is stored, marked
 * incomplete: the reply as far as the user saw it.  A question whose
 * reply cannot start after all (the engine filled up meanwhile, the
 * worker stopping) is taken back, with its deleted event, before the
 * 503: a refused question leaves nothing behind.
 *
 * Every question on its way is in a registry by session and user, so
 * that deleting a session, or a user's account, cancels its replies at
 * once instead of paying the provider for answers nobody can keep.
 */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chat.h"
#include "stream.h"


static const char *const  roles[] = { "user", "assistant", NULL };

/* item of sources: what an assistant message drew on */
static const enc_field_t  source_item = {
    .name = "source", .type = ENC_STRING
};

static const enc_field_t  message_fields[] = {
    { .name = "id", .type = ENC_UUID, .flags = ENC_OUT | ENC_KEY },
    { .name = "session_id", .type = ENC_UUID, .flags = ENC_OUT },
    { .name = "role", .type = ENC_ENUM, .flags = ENC_OUT, .values = roles },
    /* the question, the only input; its bounds are CONTRACT.md's */
    { .name = "content", .type = ENC_STRING,
      .flags = ENC_OUT | ENC_IN_CREATE | ENC_REQUIRED | ENC_NOT_BLANK,
      .min = 1, .max = 10000 },
    /* [{type, id, title}]: empty for questions and replies that drew on
       nothing */
    { .name = "sources", .type = ENC_ARRAY, .flags = ENC_OUT,
      .item = &source_item, .sql = "sources::text" },
    /* true when the reply was cut (the provider's stream broke, timed
       out, or the client left); false otherwise */
    { .name = "incomplete", .type = ENC_BOOL, .flags = ENC_OUT },
    { .name = "created_at", .type = ENC_TIME, .flags = ENC_OUT },
    ENC_FIELD_END
};

const enc_entity_t  chat_message = {
    .name = "message", .plural = "messages", .path = "/api/v1/chat/sessions/",
    .topic = "encore.chat.messages", .fields = message_fields
};


/* oldest first: a conversation reads downwards */
static const char *const  oldest[] = { "created_at", "id", NULL };

static const enc_list_t  session_list = {
    .name = "chat_messages_list", .stmt = "messages_of_session",
    .keys = oldest
};


void
chat_messages_list(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_pg_t    *pg;
    const char  *id;

    /* another user's session is 404 even when it has no messages: asked
       before the page, which cannot tell "none" from "not yours" */
    if ((id = enc_kit_id(r, w, &chat_session)) == NULL
        || (pg = enc_kit_db(w)) == NULL
        || chat_session_owned(r, w, pg, id) != 0)
    {
        return;
    }

    enc_kit_list(r, w, &chat_message, &session_list, 1, &id);
}


/* ---- the question and its reply ------------------------------------------ */

/* One question on its way.  The handler makes it, the engine's done frees
   it.  lock serialises chat_reply_cancel (on_cancel, an MHD thread; or
   chat_asks_cancel, a handler or the consumer) against done (the engine
   thread), which frees the reply: after done, cancel must not be called
   (engine.h). */
typedef struct ask_s  ask_t;

struct ask_s {
    pthread_mutex_t   lock;
    chat_reply_t     *reply;        /* NULL until started, and after done */
    int               cancelled;    /* cancelled before the start */
    int               finished;     /* done has run */
    int               gone;         /* its session or user was deleted */

    /* the registry's, under asks_lock */
    ask_t            *prev, *next;
    int               listed;

    enc_defer_t      *defer;
    int               sse;          /* Accept: text/event-stream */
    int               begun;        /* the stream's headers are out */
    char              request_id[129];
    char              session_id[37];
    char              user_id[37];
    json_t           *question;     /* the stored user message */
    json_t           *sources;      /* [{type, id, title, snippet}] */
};


/* the questions on their way, from before the question is stored until
   done: lock order asks_lock, then an ask's lock, then the engine's */
static pthread_mutex_t  asks_lock = PTHREAD_MUTEX_INITIALIZER;
static ask_t           *asks;


static void
ask_list(ask_t *a)
{
    pthread_mutex_lock(&asks_lock);
    a->prev = NULL;
    a->next = asks;
    if (asks != NULL) {
        asks->prev = a;
    }
    asks = a;
    a->listed = 1;
    pthread_mutex_unlock(&asks_lock);
}


static void
ask_unlist(ask_t *a)
{
    pthread_mutex_lock(&asks_lock);
    if (a->listed) {
        if (a->prev != NULL) {
            a->prev->next = a->next;
        } else {
            asks = a->next;
        }
        if (a->next != NULL) {
            a->next->prev = a->prev;
        }
        a->listed = 0;
    }
    pthread_mutex_unlock(&asks_lock);
}


void
chat_asks_cancel(const char *session, const char *user)
{
    int     n = 0;
    ask_t  *a;

    pthread_mutex_lock(&asks_lock);
    for (a = asks; a != NULL; a = a->next) {
        if ((session != NULL && strcasecmp(a->session_id, session) != 0)
            || (user != NULL && strcasecmp(a->user_id, user) != 0)
            || (session == NULL && user == NULL))
        {
            continue;
        }
        /* done has not unlisted it: a is alive, its reply too unless
           finished */
        pthread_mutex_lock(&a->lock);
        if (!a->finished) {
            a->gone = 1;
            a->cancelled = 1;
            if (a->reply != NULL) {
                chat_reply_cancel(a->reply);
            }
            n++;
        }
        pthread_mutex_unlock(&a->lock);
    }
    pthread_mutex_unlock(&asks_lock);

    if (n > 0) {
        enc_log_info("chat: %d open %s cancelled: the %s was deleted", n,
                     n == 1 ? "reply" : "replies",
                     session != NULL ? "session" : "account");
    }
}


static void
ask_free(ask_t *a)
{
    ask_unlist(a);
    pthread_mutex_destroy(&a->lock);
    json_decref(a->question);
    json_decref(a->sources);
    free(a);
}


/* text/event-stream, with or without parameters or other types: the
   client asks for a stream when it names it at all */
static int
wants_sse(enc_req_t *r)
{
    const char  *accept = enc_req_header(r, "Accept");

    return accept != NULL && strstr(accept, "text/event-stream") != NULL;
}


/* Stores the question in the caller's session, with its event, and reads
   the history before it: the question's message, or NULL after
   answering (404 not the caller's session, 422, 503, 500). */
static json_t *
ask_store(enc_req_t *r, enc_resp_t *w, enc_pg_t *pg, const char *session,
    const char *content, long history, json_t **earlier)
{
    int                  i;
    char                 rank[4], limit[24];
    json_t              *msg;
    PGresult            *res;
    const char          *params[4];
    const enc_caller_t  *c = enc_req_caller(r);

    snprintf(rank, sizeof(rank), "%d", (int) c->role);
    params[0] = session;
    params[1] = content;
    params[2] = c->id;
    params[3] = rank;

    if (enc_kit_begin(w, pg) != 0) {
        return NULL;
    }
    res = enc_kit_run(w, pg, &chat_message, "message_ask", 4, params);
    if (res == NULL) {
        return NULL;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        enc_pg_rollback(pg);
        enc_kit_not_found(w, &chat_session);
        return NULL;
    }

    msg = enc_entity_json(&chat_message, res, 0, ENC_VIEW_PUBLIC);
    PQclear(res);
    if (msg == NULL) {
        enc_pg_rollback(pg);
        enc_kit_internal(w);
        return NULL;
    }
    if (enc_kit_event(w, pg, &chat_message, "created",
                      json_string_value(json_object_get(msg, "id")), msg) != 0)
    {
        json_decref(msg);
        return NULL;
    }

    /* the history in the same snapshot: the question is not in it */
    snprintf(limit, sizeof(limit), "%ld", history);
    params[1] = json_string_value(json_object_get(msg, "id"));
    params[2] = limit;
    res = enc_kit_run(w, pg, &chat_message, "message_history", 3, params);
    if (res == NULL) {
        json_decref(msg);
        return NULL;
    }

    *earlier = json_array();
    for (i = 0; i < PQntuples(res) && *earlier != NULL; i++) {
        json_array_append_new(*earlier,
            json_pack("{s:s, s:s}", "role", PQgetvalue(res, i, 0),
                      "content", PQgetvalue(res, i, 1)));
    }
    PQclear(res);

    if (*earlier == NULL) {
        enc_pg_rollback(pg);
        enc_kit_internal(w);
        json_decref(msg);
        return NULL;
    }
    if (enc_kit_commit(w, pg) != 0) {
        json_decref(*earlier);
        json_decref(msg);
        return NULL;
    }

    return msg;
}


/* The question taken back (with its deleted event), when no reply could
   be started for it: 1, or 0 when it stays stored (logged). */
static int
ask_undo(enc_pg_t *pg, json_t *question, const char *session)
{
    PGresult    *res;
    const char  *params[2];

    params[0] = json_string_value(json_object_get(question, "id"));
    params[1] = session;

    if (enc_pg_begin(pg) != 0) {
        goto failed;
    }
    res = enc_pg_exec(pg, "message_unask", 2, params);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        enc_log_error("chat: message_unask failed: %s",
                      res ? PQresultErrorMessage(res) : "no connection");
        PQclear(res);
        enc_pg_rollback(pg);
        goto failed;
    }
    /* none: the session was deleted meanwhile, and the question with it */
    if (PQntuples(res) == 1
        && enc_entity_event(pg, &chat_message, "deleted", params[0], NULL)
           != 0)
    {
        PQclear(res);
        enc_pg_rollback(pg);
        goto failed;
    }
    PQclear(res);
    if (enc_pg_commit(pg) != 0) {
        goto failed;
    }
    return 1;

failed:

    enc_log_error("chat: the question %s could not be taken back: it stays"
                  " without a reply", params[0]);
    return 0;
}


/* the sources as the message keeps them: [{type, id, title}] (the
   snippet was for the prompt) */
static char *
sources_text(json_t *sources)
{
    char    *text;
    size_t   i;
    json_t  *out, *s;

    out = json_array();
    json_array_foreach(sources, i, s) {
        json_array_append_new(out, json_pack("{s:O, s:O, s:O}",
            "type", json_object_get(s, "type"),
            "id", json_object_get(s, "id"),
            "title", json_object_get(s, "title")));
    }
    text = out ? json_dumps(out, JSON_COMPACT) : NULL;
    json_decref(out);

    return text;
}


/* On the engine thread: the reply stored with its event, on the engine's
   own connection.  The reply's message, or NULL (logged): the database
   failed, or the session was deleted meanwhile (*gone). */
static json_t *
reply_store(ask_t *a, const chat_outcome_t *o, int *gone)
{
    char       *sources;
    json_t     *msg = NULL;
    enc_pg_t   *pg;
    PGresult   *res = NULL;
    const char *params[4];

    *gone = 0;
    sources = sources_text(a->sources);
    pg = enc_pg_thread();
    if (sources == NULL || pg == NULL || enc_pg_begin(pg) != 0) {
        enc_log_error("chat: the reply could not be stored: %s",
                      sources == NULL ? "out of memory"
                                      : "the database is unreachable");
        free(sources);
        return NULL;
    }

    params[0] = a->session_id;
    params[1] = o->content ? o->content : "";
    params[2] = sources;
    params[3] = o->incomplete ? "true" : "false";

    res = enc_pg_exec(pg, "message_reply", 4, params);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        enc_log_error("chat: message_reply failed: %s",
                      res ? PQresultErrorMessage(res) : "no connection");
        goto failed;
    }
    if (PQntuples(res) == 0) {
        *gone = 1;
        goto failed;
    }

    msg = enc_entity_json(&chat_message, res, 0, ENC_VIEW_PUBLIC);
    if (msg == NULL
        || enc_entity_event(pg, &chat_message, "created",
                            json_string_value(json_object_get(msg, "id")),
                            msg) != 0
        || enc_pg_commit(pg) != 0)
    {
        enc_log_error("chat: the reply could not be stored");
        json_decref(msg);
        msg = NULL;
        goto failed;
    }

    PQclear(res);
    free(sources);
    return msg;

failed:

    PQclear(res);
    enc_pg_rollback(pg);
    free(sources);
    return NULL;
}


/* one SSE event; the data is one line of JSON (no raw newlines).  One
   write per event: a reader woken between pieces would take a partial
   event and suspend again. */
static void
sse_event_text(ask_t *a, const char *event, const char *json, size_t len)
{
    char      *frame;
    size_t     n;
    enc_jw_t   w;

    enc_jw_init(&w);
    enc_jw_raw(&w, "event: ", 7);
    enc_jw_raw(&w, event, strlen(event));
    enc_jw_raw(&w, "\ndata: ", 7);
    enc_jw_raw(&w, json, len);
    enc_jw_raw(&w, "\n\n", 2);

    frame = enc_jw_finish(&w, &n);
    if (frame != NULL) {
        enc_defer_write(a->defer, frame, n);
        free(frame);
    }
}


static void
sse_event(ask_t *a, const char *event, json_t *data)
{
    char    *text;
    size_t   len;

    text = enc_json_dumps(data, &len);
    if (text == NULL) {
        return;
    }
    sse_event_text(a, event, text, len);
    free(text);
}


/* 201 as the buffered answer (CONTRACT.md): the question and the reply
   are created either way; the stream is the reply's body, UTF-8 (as SSE
   always is: said, for clients that would guess otherwise), never kept
   by a cache */
static void
sse_begin(ask_t *a)
{
    char  location[80];

    if (!a->begun) {
        a->begun = 1;
        snprintf(location, sizeof(location),
                 "/api/v1/chat/sessions/%s/messages", a->session_id);
        enc_defer_header(a->defer, "Location", location);
        enc_defer_header(a->defer, "Cache-Control", "no-cache");
        enc_defer_stream_begin(a->defer, 201,
                               "text/event-stream; charset=utf-8");
    }
}


/* engine thread: a piece of the reply.  A streamed answer gets it at
   once; a buffered one waits for done (the engine keeps the whole). */
static void
on_token(void *arg, const char *text, size_t len)
{
    ask_t     *a = arg;
    char      *data;
    size_t     n;
    enc_jw_t   w;

    if (!a->sse) {
        return;
    }

    sse_begin(a);

    /* {"content": ...} written straight, escaped as enc_json_dumps
       escapes: no jansson tree per token */
    enc_jw_init(&w);
    enc_jw_raw(&w, "{\"content\":", 11);
    enc_jw_string(&w, text, len);
    enc_jw_raw(&w, "}", 1);

    data = enc_jw_finish(&w, &n);
    if (data != NULL) {
        sse_event_text(a, "token", data, n);
        free(data);
    }
}


/* engine thread: the end, exactly once.  Stores the reply (unless there
   is none: a refusal before the first token, or a cancel before any),
   then makes the answer's one terminal call, and frees the question. */
static void
on_done(void *arg, const chat_outcome_t *o)
{
    int      gone = 0;
    char     retry[24], location[80];
    ask_t   *a = arg;
    json_t  *reply = NULL, *body;

    pthread_mutex_lock(&a->lock);
    a->finished = 1;
    a->reply = NULL;
    gone = a->gone;
    pthread_mutex_unlock(&a->lock);
    ask_unlist(a);

    enc_log_set_request_id(a->request_id);

    /* no token was sent: the provider's status is the answer's, and the
       question stays stored without a reply (asked again, it is asked
       anew) */
    if (o->status != 0 && !a->begun) {
        if (o->retry_after >= 0) {
            snprintf(retry, sizeof(retry), "%ld", o->retry_after);
            enc_defer_header(a->defer, "Retry-After", retry);
        }
        enc_defer_problem(a->defer, o->status, o->title, o->detail);
        goto done;
    }

    /* a client gone before the first token leaves nothing to keep; a
       session or account deleted, nothing at all */
    if (!gone
        && !(o->cancelled && (o->content == NULL || o->content[0] == '\0')))
    {
        reply = reply_store(a, o, &gone);
    }

    /* no stream begun and nothing to say in one: a problem */
    if (a->sse && (a->begun || reply != NULL)) {
        sse_begin(a);
        if (reply != NULL) {
            sse_event(a, "done", reply);
        } else {
            body = enc_problem_new(gone ? 404 : 503, NULL,
                                   gone ? "the session was deleted"
                                        : "the reply could not be stored");
            sse_event(a, "error", body);
            json_decref(body);
        }
        enc_defer_end(a->defer);

    } else if (reply != NULL) {
        snprintf(location, sizeof(location),
                 "/api/v1/chat/sessions/%s/messages", a->session_id);
        enc_defer_header(a->defer, "Location", location);
        body = json_pack("{s:O, s:O}", "user_message", a->question,
                         "assistant_message", reply);
        enc_defer_json(a->defer, 201, body);

    } else if (gone) {
        enc_defer_problem(a->defer, 404, NULL, "no such session");
    } else {
        enc_defer_header(a->defer, "Retry-After", "1");
        enc_defer_problem(a->defer, 503, NULL,
                          "the reply could not be stored");
    }

done:

    enc_log_set_request_id(NULL);
    json_decref(reply);
    ask_free(a);
}


/* an MHD thread: the client left.  Before the reply started, the flag
   makes the handler cancel it; after done, there is nothing to cancel. */
static void
on_cancel(void *arg)
{
    ask_t  *a = arg;

    pthread_mutex_lock(&a->lock);
    a->cancelled = 1;
    if (a->reply != NULL && !a->finished) {
        chat_reply_cancel(a->reply);
    }
    pthread_mutex_unlock(&a->lock);
}


static const chat_reply_cb_t  reply_cb = { on_token, on_done };


/* 503, the question refused: its reply cannot start.  Said on the
   deferred answer when there is one; kept says the question stayed
   stored anyway (it could not be taken back). */
static void
ask_refuse(enc_resp_t *w, enc_defer_t *d, const char *detail, int kept)
{
    char  text[160];

    snprintf(text, sizeof(text), "%s; %s", detail,
             kept ? "the question was stored without a reply"
                  : "the question was not stored, ask again");
    if (d != NULL) {
        enc_defer_header(d, "Retry-After", "1");
        enc_defer_problem(d, 503, NULL, text);
    } else {
        enc_resp_header(w, "Retry-After", "1");
        enc_resp_problem(w, 503, NULL, text);
    }
}


void
chat_messages_create(enc_req_t *r, enc_resp_t *w, void *app)
{
    chat_app_t     *ca = app;
    ask_t          *a;
    json_t         *body, *earlier = NULL, *question;
    enc_pg_t       *pg;
    const char     *session, *content;
    chat_reply_t   *reply;
    chat_prompt_t   prompt;

    /* 1. the question, stored in the caller's session with its event,
       unless no reply could start now: then nothing is stored */
    body = enc_kit_body(r, w, message_fields, ENC_BIND_CREATE, NULL);
    if (body == NULL) {
        return;
    }
    content = json_string_value(json_object_get(body, "content"));
    if ((session = enc_kit_id(r, w, &chat_session)) == NULL) {
        json_decref(body);
        return;
    }
    if (chat_engine_full(ca->engine)) {
        ask_refuse(w, NULL, "too many replies at once", 0);
        json_decref(body);
        return;
    }

    a = calloc(1, sizeof(ask_t));
    if (a == NULL) {
        enc_log_error("chat: out of memory for a question");
        enc_kit_internal(w);
        json_decref(body);
        return;
    }
    pthread_mutex_init(&a->lock, NULL);
    a->sse = wants_sse(r);
    snprintf(a->request_id, sizeof(a->request_id), "%s", enc_req_id(r));
    snprintf(a->session_id, sizeof(a->session_id), "%s", session);
    snprintf(a->user_id, sizeof(a->user_id), "%s",
             enc_req_caller(r)->id ? enc_req_caller(r)->id : "");
    /* listed before the question is stored: the session's delete waits
       for the store (the session's lock), then finds it */
    ask_list(a);

    if ((pg = enc_kit_db(w)) == NULL
        || (question = ask_store(r, w, pg, session, content, ca->history,
                                 &earlier)) == NULL)
    {
        json_decref(body);
        ask_free(a);
        return;
    }
    a->question = question;

    /* 2. grounding: search's answer, or none; never a failure */
    a->sources = chat_ground(ca, content, a->request_id);
    if (a->sources == NULL) {
        goto internal;
    }

    /* 3. the answer comes later, from the engine's thread */
    a->defer = enc_resp_defer(r, w);
    if (a->defer == NULL) {
        ask_refuse(w, NULL, "the worker is shutting down",
                   !ask_undo(pg, question, session));
        goto failed;
    }
    enc_defer_on_cancel(a->defer, on_cancel, a);

    /* 4. the reply: the engine copies the prompt */
    prompt = (chat_prompt_t) { .request_id = a->request_id,
                               .question = content, .history = earlier,
                               .sources = a->sources };

    pthread_mutex_lock(&a->lock);
    reply = chat_reply_start(ca->engine, &prompt, &reply_cb, a);
    if (reply == NULL) {
        pthread_mutex_unlock(&a->lock);
        /* every stream of the engine taken since it was asked (or out of
           memory, or stopping): the question goes */
        ask_refuse(w, a->defer, "too many replies at once",
                   !ask_undo(pg, question, session));
        json_decref(earlier);
        json_decref(body);
        ask_free(a);
        return;
    }
    /* the client may have left between the defer and the start */
    a->reply = reply;
    if (a->cancelled) {
        chat_reply_cancel(reply);
    }
    pthread_mutex_unlock(&a->lock);

    json_decref(earlier);
    json_decref(body);
    return;

internal:

    enc_log_error("chat: out of memory for a question");
    ask_undo(pg, question, session);
    enc_kit_internal(w);

failed:

    json_decref(earlier);
    json_decref(body);
    ask_free(a);
}
