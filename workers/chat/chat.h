/*
 * chat.h — the chat worker: a user's sessions with the assistant and
 * their messages (CONTRACT.md, Chat).  sessions.c describes the session
 * and its endpoints, and forgets a deleted user; messages.c the message,
 * its list and the question's orchestration (store, ground, reply,
 * store); grounding.c asks the search worker; the reply itself is the
 * engine's (engine.h); sql.c holds every statement.
 */

#ifndef ENCORE_CHAT_H
#define ENCORE_CHAT_H

#include <jansson.h>

#include "engine.h"
#include "kit.h"
#include "worker.h"

typedef struct {
    chat_engine_t  *engine;
    char           *search_url;      /* "" = no grounding */
    long            search_timeout_ms;
    long            search_results;
    long            history;         /* earlier messages given to the
                                        engine, newest kept */
} chat_app_t;

extern const enc_entity_t        chat_session;
extern const enc_entity_t        chat_message;
extern const enc_pg_stmt_t       chat_statements[];
extern const enc_conf_key_t      chat_conf_keys[];

/* sessions.c */
void chat_sessions_create(enc_req_t *r, enc_resp_t *w, void *app);
void chat_sessions_list(enc_req_t *r, enc_resp_t *w, void *app);
void chat_sessions_get(enc_req_t *r, enc_resp_t *w, void *app);
void chat_sessions_delete(enc_req_t *r, enc_resp_t *w, void *app);
/* the caller's session {id}: 0, or -1 after answering 404/503/500 */
int  chat_session_owned(enc_req_t *r, enc_resp_t *w, enc_pg_t *pg,
                        const char *id);
int  chat_on_event(enc_pg_t *pg, const enc_event_t *ev, void *app);

/* messages.c */
void chat_messages_list(enc_req_t *r, enc_resp_t *w, void *app);
void chat_messages_create(enc_req_t *r, enc_resp_t *w, void *app);
/* cancels the replies on their way in session (a deleted session), or
   of user (a deleted account); any thread, any number of times: their
   answers say the session is gone, nothing more is stored */
void chat_asks_cancel(const char *session, const char *user);

/* grounding.c */
typedef struct {
    char        q[512];           /* the search words, "" = none */
    const char *type;             /* search's type filter or NULL */
} chat_query_t;

/* the question shaped into a search query: question and stop words
   dropped, "albums", "songs", "bands"... turned into the type filter */
void    chat_query_shape(const char *question, chat_query_t *q);
/* the search worker's top results for the question as
   [{type, id, title, snippet}] (snippet as plain text); an empty array
   when search is not configured, down, slow or says nothing (logged).
   NULL only when out of memory. */
json_t *chat_ground(const chat_app_t *app, const char *question,
                    const char *request_id);

#endif /* ENCORE_CHAT_H */
