/*
 * engine: the assistant's replies — an OpenAI-compatible provider
 * (/v1/chat/completions with stream: true, over libcurl's multi interface)
 * or, with no provider configured, the built-in retrieval-only mode that
 * answers from the grounding results — on one thread of its own that
 * drives every open reply, so no HTTP thread waits on a model.
 *
 * The caller (messages.c) hands over a prompt and two callbacks; tokens
 * come in order on the engine thread, then done exactly once.
 */
#ifndef CHAT_ENGINE_H
#define CHAT_ENGINE_H

#include <stddef.h>
#include <jansson.h>

#include "config.h"

typedef struct {
    const char  *request_id;   /* for log lines */
    const char  *question;     /* the user's new message */
    json_t      *history;      /* the session's earlier messages, oldest
                                  first, [{role, content}], without the
                                  question; the engine trims it to
                                  provider.history_budget */
    json_t      *sources;      /* grounding: [{type, id, title, snippet}]
                                  from search, best first; may be empty */
} chat_prompt_t;                /* borrowed for the call; copied */

typedef struct {
    /* 0: a reply (complete, cut or cancelled).  Otherwise no token was
       sent and this is the answer's status: 502 (the provider refused,
       401/403/4xx, or spoke nonsense), 503 (429, 5xx, unreachable,
       overloaded; retry_after from its Retry-After), 504 (no first token
       within provider.first_token_timeout_ms) */
    int          status;
    const char  *title;        /* problem+json for status != 0 */
    const char  *detail;
    long         retry_after;  /* seconds, -1 = none */
    const char  *content;      /* every token sent, NUL-terminated */
    int          incomplete;   /* the stream ended without its end mark,
                                  timed out after the first token, or was
                                  cancelled */
    int          cancelled;    /* chat_reply_cancel() was called */
} chat_outcome_t;

typedef struct {
    void  (*token)(void *arg, const char *text, size_t len);
    void  (*done)(void *arg, const chat_outcome_t *o);   /* o valid during
                                                             the call */
} chat_reply_cb_t;

typedef struct chat_engine_s  chat_engine_t;
typedef struct chat_reply_s   chat_reply_t;

/* provider.url (empty = retrieval-only), provider.model,
   provider.api_key_file (0600, never logged), provider.connect_timeout_ms,
   provider.first_token_timeout_ms, provider.total_timeout_ms,
   provider.retries, provider.history_budget (characters),
   provider.max_streams ... (engine.c lists them) */
extern const enc_conf_key_t  chat_engine_conf_keys[];

/* starts the engine's thread; NULL after logging what is wrong */
chat_engine_t *chat_engine_start(const enc_config_t *c);
/* cancels every open reply (each gets its done), then joins */
void chat_engine_stop(chat_engine_t *e);
/* 1 in retrieval-only mode */
int chat_engine_retrieval_only(const chat_engine_t *e);

/* 1 when a reply started now would be refused: provider.max_streams
   replies are open, or the engine is stopping (logged and counted as a
   refusal: the caller answers 503).  Asked before anything is stored for
   the question; chat_reply_start() may still refuse, a race lost. */
int chat_engine_full(chat_engine_t *e);

/* NULL when provider.max_streams replies are open (answer 503).  The
   callbacks run on the engine thread, never before this returns. */
chat_reply_t *chat_reply_start(chat_engine_t *e, const chat_prompt_t *p,
    const chat_reply_cb_t *cb, void *arg);
/* any thread; done still comes, with cancelled = 1.  Never call it once
   done has returned (the reply is freed then): serialise with a lock of
   your own. */
void chat_reply_cancel(chat_reply_t *r);

#endif /* CHAT_ENGINE_H */
