/*
 * reply: the engine's own view of a reply, shared by engine.c (the
 * thread, the queue, the timers, the end), provider.c (one attempt at the
 * provider over libcurl) and retrieval.c (the answer without a model).
 * Not for the rest of the worker: engine.h is its interface.
 *
 * Everything here belongs to the engine thread, except what the comments
 * mark as the queue's (under chat_engine_t.lock) or atomic.
 */
#ifndef CHAT_REPLY_H
#define CHAT_REPLY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <curl/curl.h>
#include <jansson.h>

#include "engine.h"
#include "log.h"
#include "sse.h"


typedef struct {
    char    *s;                 /* NUL-terminated once anything is added */
    size_t   len;
    size_t   cap;
} chat_buf_t;

int  chat_buf_add(chat_buf_t *b, const char *s, size_t n);
void chat_buf_free(chat_buf_t *b);


typedef enum {
    CHAT_PHASE_WAIT,            /* before an attempt: timer = its start */
    CHAT_PHASE_RUN,             /* a transfer in the multi handle */
    CHAT_PHASE_WORDS            /* retrieval-only: timer = the next word */
} chat_phase_t;

typedef enum {
    CHAT_BODY_NONE,             /* no byte of the body yet */
    CHAT_BODY_SSE,              /* 2xx, an event stream */
    CHAT_BODY_JSON,             /* 2xx, one JSON answer (stream ignored) */
    CHAT_BODY_ERROR             /* not 2xx: the provider's error, kept */
} chat_body_t;


struct chat_reply_s {
    chat_engine_t       *engine;
    chat_reply_cb_t      cb;
    void                *arg;
    char                 request_id[129];

    /* the queue's, under engine->lock */
    chat_reply_t        *qnext;          /* the incoming queue */
    chat_reply_t        *cnext;          /* the cancel queue */
    unsigned             cancel_queued:1;

    atomic_int           cancel;         /* chat_reply_cancel() was called */

    /* the engine thread's */
    chat_reply_t        *prev, *next;    /* the open replies */
    chat_phase_t         phase;
    int64_t              started;        /* ms, monotonic */
    int64_t              timer;          /* WAIT, WORDS: when to act */
    int64_t              first_deadline; /* RUN, before the first token */
    int64_t              total_deadline;
    int64_t              linger;         /* after [DONE]: 0, or the end */
    int                  attempt;        /* 0 the first */
    size_t               tokens;
    chat_buf_t           content;        /* every token sent */

    /* provider: the request, and the attempt under way */
    char                *body;
    size_t               body_len;
    CURL                *easy;
    chat_body_t          kind;
    long                 status;         /* HTTP status, 0 before one */
    long                 retry_after;    /* seconds, -1 = none */
    int                  json_type;      /* Content-Type says JSON */
    chat_sse_t           sse;
    chat_buf_t           raw;            /* a JSON or error body, bounded */
    int                  finished;       /* finish_reason or [DONE] */
    int                  cut_short;      /* finish_reason "length" */
    int                  broken;         /* malformed, provider error,
                                            too long: the stream stopped */
    char                 why[256];       /* what broke it, for the log */
    char                 errbuf[CURL_ERROR_SIZE];

    /* retrieval-only */
    char                *text;
    size_t               pos;
};


struct chat_engine_s {
    pthread_t            thread;
    pthread_mutex_t      lock;
    CURLM               *multi;

    /* under lock */
    chat_reply_t        *incoming, *incoming_tail;
    chat_reply_t        *cancels;
    unsigned             open;           /* started, done not returned */
    int                  stopping;

    /* the engine thread's */
    chat_reply_t        *active;         /* doubly linked, newest first */
    struct curl_slist   *headers;        /* holds the key: never logged */
    char                *key;            /* to redact it, wiped at stop */

    /* configuration, read-only once started */
    int                  retrieval_only;
    char                *url;            /* .../chat/completions */
    char                *url_log;        /* the same without user:pass@ */
    uint64_t             rng;            /* the retries' jitter */
    char                *model;
    char                *key_file;
    long                 connect_timeout_ms;
    long                 first_token_timeout_ms;
    long                 total_timeout_ms;
    long                 retries;
    long                 backoff_ms;
    long                 retry_after_max_ms;
    long                 history_budget;
    long                 max_streams;
    long                 max_tokens;
    long                 max_reply_bytes;
    long                 word_ms;
};


int64_t chat_now_ms(void);

/* a log line with the reply's request id */
void chat_reply_log(chat_reply_t *r, enc_log_level_t lvl, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

/* engine.c: a token to the caller (appended to content first); -1 when
   the reply is cancelled or too long (stop reading) */
int  chat_reply_token(chat_reply_t *r, const char *text, size_t len);
/* engine.c: the end, with this outcome (the reply is freed) */
void chat_reply_finish(chat_reply_t *r, int status, const char *title,
    const char *detail, long retry_after, int incomplete);

/* provider.c */
int  chat_provider_configure(chat_engine_t *e, const enc_config_t *c);
int  chat_provider_request(chat_reply_t *r, const chat_prompt_t *p);
int  chat_provider_attempt(chat_reply_t *r);
void chat_provider_done(chat_reply_t *r, CURLcode res);
void chat_provider_detach(chat_reply_t *r);
void chat_provider_cleanup(chat_reply_t *r);
void chat_provider_cleanup_engine(chat_engine_t *e);

/* retrieval.c: the answer from the sources (malloc'd) */
char *chat_retrieval_text(json_t *sources);
/* the next word of r->text (with the spaces after it) to the caller;
   0 while words remain, 1 at the end */
int  chat_retrieval_next(chat_reply_t *r);

#endif /* CHAT_REPLY_H */
