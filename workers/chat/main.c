/*
 * encore-chat — the chat assistant (CONTRACT.md, Chat).
 *
 * Threading model: libencore's enc_worker_main owns the HTTP pool, the
 * relay and the consumer; the engine (engine.h) adds one thread that
 * drives every open reply.  A question's handler runs on the pool: it
 * stores the question, asks the search worker (a short, bounded wait),
 * hands the prompt to the engine and returns with its answer deferred
 * (stream.h), so no pool thread waits on a model.  The engine thread then
 * streams the tokens and, at the end, stores the reply on its own
 * PostgreSQL connection (enc_pg_thread) and finishes the answer.  The
 * consumer reads encore.auth.users: a deleted user's sessions and
 * messages go.
 */

#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "chat.h"


/* names are the edge's (conf/routes.conf): metric labels must agree */
static const enc_route_t  chat_routes[] = {
    { "POST", "/api/v1/chat/sessions", chat_sessions_create,
      ENC_ROUTE_USER | ENC_ROUTE_JSON_BODY | ENC_ROUTE_STRICT,
      "chat_sessions_create" },
    { "GET", "/api/v1/chat/sessions", chat_sessions_list, ENC_ROUTE_USER,
      "chat_sessions_list" },
    { "GET", "/api/v1/chat/sessions/{id}", chat_sessions_get, ENC_ROUTE_USER,
      "chat_sessions_get" },
    { "DELETE", "/api/v1/chat/sessions/{id}", chat_sessions_delete,
      ENC_ROUTE_USER, "chat_sessions_delete" },
    { "GET", "/api/v1/chat/sessions/{id}/messages", chat_messages_list,
      ENC_ROUTE_USER, "chat_messages_list" },
    { "POST", "/api/v1/chat/sessions/{id}/messages", chat_messages_create,
      ENC_ROUTE_USER | ENC_ROUTE_JSON_BODY | ENC_ROUTE_STRICT,
      "chat_messages_create" },
    { NULL, NULL, NULL, 0, NULL }
};


const enc_conf_key_t  chat_conf_keys[] = {
    { "search.url", ENC_CONF_STR, "", 0, 0, 0,
      "the search worker: unix:/path/to/search.sock or http://host:port "
      "(empty: no grounding)" },
    { "search.timeout_ms", ENC_CONF_INT, "1500", 50, 30000, 0,
      "longest wait for search before answering without sources" },
    { "search.results", ENC_CONF_INT, "10", 1, 50, 0,
      "search results given to the model as sources" },
    { "chat.history", ENC_CONF_INT, "50", 0, 1000, 0,
      "earlier messages of the session given to the engine (it trims "
      "them to provider.history_budget, newest kept)" },
    { NULL, 0, NULL, 0, 0, 0, NULL }
};


static const enc_entity_t *const  chat_entities[] = {
    &chat_session, &chat_message, NULL
};


static const char *const  chat_topics[] = { "encore.auth.users", NULL };


static int
chat_init(const enc_config_t *c, void **app)
{
    chat_app_t  *a;

    /* before any thread of ours uses libcurl (the engine's, the pool's
       search requests); reference-counted, so the engine may call it too */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        enc_log_error("chat: libcurl could not be initialised");
        return -1;
    }

    a = calloc(1, sizeof(chat_app_t));
    if (a == NULL || (a->search_url = strdup(enc_config_str(c, "search.url")))
                     == NULL)
    {
        free(a);
        curl_global_cleanup();
        return -1;
    }

    a->search_timeout_ms = enc_config_int(c, "search.timeout_ms");
    a->search_results = enc_config_int(c, "search.results");
    a->history = enc_config_int(c, "chat.history");

    a->engine = chat_engine_start(c);
    if (a->engine == NULL) {
        free(a->search_url);
        free(a);
        curl_global_cleanup();
        return -1;
    }

    enc_log_info("chat: %s; grounding %s",
                 chat_engine_retrieval_only(a->engine)
                 ? "retrieval-only (no provider.url)" : "provider configured",
                 a->search_url[0] ? a->search_url : "off (no search.url)");

    *app = a;
    return 0;
}


/* after the drain: every reply still open is cancelled (its done stores
   what arrived and finishes its answer), then the engine's thread ends */
static void
chat_fini(void *app)
{
    chat_app_t  *a = app;

    if (a == NULL) {
        return;
    }

    chat_engine_stop(a->engine);
    free(a->search_url);
    free(a);
    curl_global_cleanup();
}


static const enc_worker_def_t  chat_worker = {
    .name = "chat",
    .routes = chat_routes,
    .statements = chat_statements,
    .entities = chat_entities,
    .consumes = chat_topics,
    .conf_keys = chat_conf_keys,
    .more_conf_keys = chat_engine_conf_keys,
    .on_event = chat_on_event,
    .init = chat_init,
    .fini = chat_fini,
};


int
main(int argc, char **argv)
{
    return enc_worker_main(argc, argv, &chat_worker);
}
