/*
 * engine.c — the reply engine's thread (engine.h).
 *
 * Threading: one thread of its own drives every open reply.  It sleeps in
 * curl_multi_poll() until a transfer has bytes, a timer is due (a retry's
 * backoff, a first-token or total deadline, retrieval-only's next word) or
 * another thread wakes it (curl_multi_wakeup) because it queued a reply
 * or a cancellation.  Replies reach it through two queues under one
 * mutex; everything else (the open list, the multi handle, each reply's
 * state) is touched by the engine thread alone.  Callbacks run on it, the
 * mutex not held, so they may start or cancel replies.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "reply.h"


#define POLL_MAX_MS  1000
/* a word due this soon goes now: many replies' words share a wake-up */
#define WORD_SLACK_MS  2


const enc_conf_key_t  chat_engine_conf_keys[] = {
    { "provider.url", ENC_CONF_STR, "", 0, 0, 0,
      "the OpenAI-compatible API's base URL, e.g. https://api.openai.com/v1,"
      " http://127.0.0.1:8080/v1 (llama.cpp), http://127.0.0.1:11434/v1"
      " (Ollama); /chat/completions is added (/v1/chat/completions to a"
      " URL without a path).  Empty: retrieval-only mode,"
      " answers listing what the catalog search found" },
    { "provider.model", ENC_CONF_STR, "", 0, 0, 0,
      "the model's name as the provider knows it (required with a url)" },
    { "provider.api_key_file", ENC_CONF_STR, "", 0, 0, 0,
      "a file holding the API key, mode 0600 or narrower (empty: no key,"
      " as a local server needs); sent as Authorization: Bearer, never"
      " logged" },
    { "provider.connect_timeout_ms", ENC_CONF_INT, "5000", 100, 120000, 0,
      "deadline of a connection to the provider" },
    { "provider.first_token_timeout_ms", ENC_CONF_INT, "30000", 100,
      3600000, 0,
      "an attempt without a first token by then ends the reply: 504" },
    { "provider.total_timeout_ms", ENC_CONF_INT, "120000", 100, 3600000, 0,
      "deadline of a whole reply, retries included; a reply still"
      " streaming then is kept as it is, incomplete" },
    { "provider.retries", ENC_CONF_INT, "2", 0, 10, 0,
      "attempts after the first when the provider is unreachable, answers"
      " 429 or 5xx, before any token (never after one)" },
    { "provider.retry_backoff_ms", ENC_CONF_INT, "500", 0, 60000, 0,
      "wait before the first retry, doubled for each next (with jitter)" },
    { "provider.retry_after_max_ms", ENC_CONF_INT, "3000", 0, 600000, 0,
      "a provider's Retry-After up to this is waited out before a retry;"
      " a longer one answers 503 with it at once" },
    { "provider.history_budget", ENC_CONF_INT, "8000", 0, 10000000, 0,
      "characters of the session's earlier messages sent with a question,"
      " the newest kept" },
    { "provider.max_streams", ENC_CONF_INT, "256", 1, 100000, 0,
      "replies open at once; past it a question is answered 503" },
    { "provider.max_tokens", ENC_CONF_INT, "0", 0, 1000000, 0,
      "max_tokens sent to the provider (0: not sent, its own default)" },
    { "provider.max_reply_bytes", ENC_CONF_INT, "65536", 1024, 16777216, 0,
      "a reply is cut there (kept, incomplete)" },
    { "retrieval.word_ms", ENC_CONF_INT, "20", 0, 1000, 0,
      "retrieval-only mode streams its answer a word every this often" },
    { NULL, 0, NULL, 0, 0, 0, NULL }
};


static void *engine_run(void *arg);
static void engine_open(chat_engine_t *e, chat_reply_t *r);
static int64_t engine_timers(chat_engine_t *e);
static void engine_gauge(unsigned open);
static void reply_free(chat_reply_t *r);


int64_t
chat_now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


void
chat_reply_log(chat_reply_t *r, enc_log_level_t lvl, const char *fmt, ...)
{
    char     msg[2048];
    va_list  ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    enc_log_set_request_id(r->request_id[0] ? r->request_id : NULL);
    enc_log(lvl, "%s", msg);
    enc_log_set_request_id(NULL);
}


int
chat_buf_add(chat_buf_t *b, const char *s, size_t n)
{
    size_t   want;
    char    *nb;

    if (b->len + n + 1 > b->cap) {
        want = b->cap ? b->cap * 2 : 256;
        while (want < b->len + n + 1) {
            want *= 2;
        }
        nb = realloc(b->s, want);
        if (nb == NULL) {
            return -1;
        }
        b->s = nb;
        b->cap = want;
    }
    if (n > 0) {
        memcpy(b->s + b->len, s, n);
    }
    b->len += n;
    b->s[b->len] = '\0';
    return 0;
}


void
chat_buf_free(chat_buf_t *b)
{
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
}


chat_engine_t *
chat_engine_start(const enc_config_t *c)
{
    chat_engine_t  *e;

    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        enc_log_error("chat: engine: out of memory");
        return NULL;
    }

    e->connect_timeout_ms = enc_config_int(c, "provider.connect_timeout_ms");
    e->first_token_timeout_ms =
        enc_config_int(c, "provider.first_token_timeout_ms");
    e->total_timeout_ms = enc_config_int(c, "provider.total_timeout_ms");
    e->retries = enc_config_int(c, "provider.retries");
    e->backoff_ms = enc_config_int(c, "provider.retry_backoff_ms");
    e->retry_after_max_ms = enc_config_int(c, "provider.retry_after_max_ms");
    e->history_budget = enc_config_int(c, "provider.history_budget");
    e->max_streams = enc_config_int(c, "provider.max_streams");
    e->max_tokens = enc_config_int(c, "provider.max_tokens");
    e->max_reply_bytes = enc_config_int(c, "provider.max_reply_bytes");
    e->word_ms = enc_config_int(c, "retrieval.word_ms");

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        enc_log_error("chat: engine: libcurl failed to initialise");
        free(e);
        return NULL;
    }

    if (chat_provider_configure(e, c) != 0) {
        goto failed;
    }

    e->multi = curl_multi_init();
    if (e->multi == NULL) {
        enc_log_error("chat: engine: libcurl failed to initialise");
        goto failed;
    }

    if (pthread_mutex_init(&e->lock, NULL) != 0) {
        curl_multi_cleanup(e->multi);
        enc_log_error("chat: engine: pthread_mutex_init failed");
        goto failed;
    }

    if (pthread_create(&e->thread, NULL, engine_run, e) != 0) {
        enc_log_error("chat: engine: cannot start its thread: %s",
                      strerror(errno));
        pthread_mutex_destroy(&e->lock);
        curl_multi_cleanup(e->multi);
        goto failed;
    }

    if (e->retrieval_only) {
        enc_log_info("chat: engine: retrieval-only mode (provider.url is"
                     " empty): answers list what the catalog search found");
    } else {
        enc_log_info("chat: engine: provider \"%s\", model \"%s\", %s",
                     e->url_log, e->model,
                     e->key ? "an API key from provider.api_key_file"
                            : "no API key");
    }
    engine_gauge(0);
    return e;

failed:
    chat_provider_cleanup_engine(e);
    curl_global_cleanup();
    free(e);
    return NULL;
}


void
chat_engine_stop(chat_engine_t *e)
{
    if (e == NULL) {
        return;
    }

    pthread_mutex_lock(&e->lock);
    e->stopping = 1;
    pthread_mutex_unlock(&e->lock);
    curl_multi_wakeup(e->multi);
    pthread_join(e->thread, NULL);

    curl_multi_cleanup(e->multi);
    pthread_mutex_destroy(&e->lock);
    chat_provider_cleanup_engine(e);
    curl_global_cleanup();
    free(e);
}


int
chat_engine_retrieval_only(const chat_engine_t *e)
{
    return e->retrieval_only;
}


/* a question refused, provider.max_streams replies open: said and
   counted */
static void
engine_refused(chat_reply_t *r, unsigned open)
{
    if (r != NULL) {
        chat_reply_log(r, ENC_LOG_WARN, "chat: engine: %u replies open,"
                       " provider.max_streams: answering 503", open);
    } else {
        enc_log_warn("chat: engine: %u replies open, provider.max_streams:"
                     " answering 503", open);
    }
    enc_metrics_counter_add("encore_chat_replies_refused_total",
        "Questions refused: provider.max_streams replies were open", 1);
}


int
chat_engine_full(chat_engine_t *e)
{
    int       stopping, full;
    unsigned  open;

    pthread_mutex_lock(&e->lock);
    stopping = e->stopping;
    open = e->open;
    full = stopping || open >= (unsigned long) e->max_streams;
    pthread_mutex_unlock(&e->lock);

    if (full && !stopping) {
        engine_refused(NULL, open);
    }
    return full;
}


chat_reply_t *
chat_reply_start(chat_engine_t *e, const chat_prompt_t *p,
    const chat_reply_cb_t *cb, void *arg)
{
    unsigned       open;
    chat_reply_t  *r;

    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        enc_log_error("chat: engine: out of memory");
        return NULL;
    }
    r->engine = e;
    r->cb = *cb;
    r->arg = arg;
    r->retry_after = -1;
    atomic_init(&r->cancel, 0);
    if (p->request_id != NULL) {
        snprintf(r->request_id, sizeof(r->request_id), "%s", p->request_id);
    }

    if (e->retrieval_only) {
        r->text = chat_retrieval_text(p->sources);
        if (r->text == NULL) {
            chat_reply_log(r, ENC_LOG_ERROR, "chat: engine: out of memory");
            reply_free(r);
            return NULL;
        }
    } else if (chat_provider_request(r, p) != 0) {
        chat_reply_log(r, ENC_LOG_ERROR,
                       "chat: engine: cannot build the provider's request");
        reply_free(r);
        return NULL;
    }

    pthread_mutex_lock(&e->lock);
    if (e->stopping || e->open >= (unsigned long) e->max_streams) {
        open = e->open;
        pthread_mutex_unlock(&e->lock);
        if (!e->stopping) {
            engine_refused(r, open);
        }
        reply_free(r);
        return NULL;
    }
    e->open++;
    open = e->open;
    if (e->incoming_tail) {
        e->incoming_tail->qnext = r;
    } else {
        e->incoming = r;
    }
    e->incoming_tail = r;
    pthread_mutex_unlock(&e->lock);

    engine_gauge(open);
    curl_multi_wakeup(e->multi);
    return r;
}


void
chat_reply_cancel(chat_reply_t *r)
{
    chat_engine_t  *e = r->engine;

    atomic_store(&r->cancel, 1);

    pthread_mutex_lock(&e->lock);
    if (!r->cancel_queued) {
        r->cancel_queued = 1;
        r->cnext = e->cancels;
        e->cancels = r;
    }
    pthread_mutex_unlock(&e->lock);

    curl_multi_wakeup(e->multi);
}


int
chat_reply_token(chat_reply_t *r, const char *text, size_t len)
{
    chat_engine_t  *e = r->engine;

    if (atomic_load(&r->cancel)) {
        return -1;
    }

    if (!e->retrieval_only
        && r->content.len + len > (size_t) e->max_reply_bytes)
    {
        r->broken = 1;
        snprintf(r->why, sizeof(r->why), "the reply passed"
                 " provider.max_reply_bytes (%ld)", e->max_reply_bytes);
        return -1;
    }

    if (chat_buf_add(&r->content, text, len) != 0) {
        r->broken = 1;
        snprintf(r->why, sizeof(r->why), "out of memory");
        return -1;
    }

    if (r->tokens++ == 0) {
        enc_metrics_observe("encore_chat_first_token_seconds",
            "From a question handed to the engine to its reply's first"
            " token", (double) (chat_now_ms() - r->started) / 1000.0);
    }

    r->cb.token(r->arg, text, len);

    return atomic_load(&r->cancel) ? -1 : 0;
}


void
chat_reply_finish(chat_reply_t *r, int status, const char *title,
    const char *detail, long retry_after, int incomplete)
{
    unsigned         open;
    chat_reply_t   **pp;
    chat_engine_t   *e = r->engine;
    chat_outcome_t   o;

    chat_provider_detach(r);

    memset(&o, 0, sizeof(o));
    o.status = status;
    o.title = status ? title : NULL;
    o.detail = status ? detail : NULL;
    o.retry_after = status ? retry_after : -1;
    o.content = r->content.s ? r->content.s : "";
    o.cancelled = atomic_load(&r->cancel);
    o.incomplete = status == 0 && (incomplete || o.cancelled);

    enc_metrics_counter_add("encore_chat_replies_total",
        "Replies ended (complete, cut, cancelled or failed)", 1);
    if (status != 0) {
        enc_metrics_counter_add("encore_chat_replies_failed_total",
            "Replies that ended before their first token with an error", 1);
    } else if (o.cancelled) {
        enc_metrics_counter_add("encore_chat_replies_cancelled_total",
            "Replies cancelled, the client gone", 1);
    } else if (o.incomplete) {
        enc_metrics_counter_add("encore_chat_replies_incomplete_total",
            "Replies kept incomplete: cut, broken or timed out", 1);
    }

    r->cb.done(r->arg, &o);

    /* off the open list and the cancel queue: nobody can reach r now */
    if (r->prev) {
        r->prev->next = r->next;
    } else if (e->active == r) {
        e->active = r->next;
    }
    if (r->next) {
        r->next->prev = r->prev;
    }

    pthread_mutex_lock(&e->lock);
    if (r->cancel_queued) {
        for (pp = &e->cancels; *pp; pp = &(*pp)->cnext) {
            if (*pp == r) {
                *pp = r->cnext;
                break;
            }
        }
    }
    open = --e->open;
    pthread_mutex_unlock(&e->lock);

    engine_gauge(open);
    reply_free(r);
}


static void
reply_free(chat_reply_t *r)
{
    chat_provider_cleanup(r);
    chat_buf_free(&r->content);
    free(r->text);
    free(r);
}


static void
engine_gauge(unsigned open)
{
    enc_metrics_gauge_set("encore_chat_replies_open",
        "Replies the engine holds open", (double) open);
}


/* a reply taken off the incoming queue: on the open list, under way */
static void
engine_open(chat_engine_t *e, chat_reply_t *r)
{
    r->prev = NULL;
    r->next = e->active;
    if (e->active) {
        e->active->prev = r;
    }
    e->active = r;

    r->started = chat_now_ms();
    r->total_deadline = r->started + e->total_timeout_ms;

    if (atomic_load(&r->cancel)) {
        /* cancelled before it began (or the engine stopping) */
        chat_reply_finish(r, 0, NULL, NULL, -1, 1);
        return;
    }

    if (e->retrieval_only) {
        r->phase = CHAT_PHASE_WORDS;
        r->timer = r->started;
        return;
    }

    if (chat_provider_attempt(r) != 0) {
        chat_reply_finish(r, 503, "Service Unavailable",
                          "The assistant could not reach its language"
                          " model; try again later.", -1, 0);
    }
}


static void *
engine_run(void *arg)
{
    int             stopping, n;
    int64_t         next, now, wait;
    CURLMsg        *msg;
    chat_reply_t   *r, *in, *rnext;
    chat_engine_t  *e = arg;

    for ( ;; ) {
        pthread_mutex_lock(&e->lock);
        in = e->incoming;
        e->incoming = e->incoming_tail = NULL;
        stopping = e->stopping;
        pthread_mutex_unlock(&e->lock);

        for (r = in; r; r = rnext) {
            rnext = r->qnext;
            r->qnext = NULL;
            if (stopping) {
                atomic_store(&r->cancel, 1);
            }
            engine_open(e, r);
        }

        /* cancellations, one at a time: finishing a reply takes it off
           the queue, so what is popped was never freed */
        for ( ;; ) {
            pthread_mutex_lock(&e->lock);
            r = e->cancels;
            if (r) {
                e->cancels = r->cnext;
                r->cancel_queued = 0;
            }
            pthread_mutex_unlock(&e->lock);
            if (r == NULL) {
                break;
            }
            chat_reply_finish(r, 0, NULL, NULL, -1, 1);
        }

        if (stopping) {
            while (e->active) {
                atomic_store(&e->active->cancel, 1);
                chat_reply_finish(e->active, 0, NULL, NULL, -1, 1);
            }
            break;
        }

        curl_multi_perform(e->multi, &n);
        while ((msg = curl_multi_info_read(e->multi, &n)) != NULL) {
            if (msg->msg != CURLMSG_DONE) {
                continue;
            }
            r = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &r);
            if (r != NULL) {
                chat_provider_done(r, msg->data.result);
            }
        }

        next = engine_timers(e);
        now = chat_now_ms();
        wait = next < 0 ? POLL_MAX_MS : next - now;
        if (wait > POLL_MAX_MS) {
            wait = POLL_MAX_MS;
        }
        if (wait < 0) {
            wait = 0;
        }
        curl_multi_poll(e->multi, NULL, 0, (int) wait, NULL);
    }

    return NULL;
}


/* acts on every timer due; returns when the next one is (-1: none) */
static int64_t
engine_timers(chat_engine_t *e)
{
    int64_t        now, next, at;
    chat_reply_t  *r, *rnext;

    next = -1;

    for (r = e->active; r; r = rnext) {
        rnext = r->next;
        now = chat_now_ms();

        switch (r->phase) {

        case CHAT_PHASE_WORDS:
            while (r->timer <= now + WORD_SLACK_MS) {
                if (chat_retrieval_next(r) != 0) {
                    chat_reply_finish(r, 0, NULL, NULL, -1,
                                      atomic_load(&r->cancel));
                    r = NULL;
                    break;
                }
                r->timer += e->word_ms;
                if (e->word_ms > 0) {
                    break;
                }
            }
            if (r == NULL) {
                continue;
            }
            at = r->timer;
            break;

        case CHAT_PHASE_WAIT:
            if (r->timer <= now) {
                if (chat_provider_attempt(r) != 0) {
                    chat_reply_finish(r, 503, "Service Unavailable",
                                      "The assistant could not reach its"
                                      " language model; try again later.",
                                      -1, 0);
                    continue;
                }
                at = r->first_deadline;
            } else {
                at = r->timer;
            }
            break;

        case CHAT_PHASE_RUN:
        default:
            if (r->linger && r->linger <= now) {
                /* [DONE] came but the body did not end: enough */
                chat_provider_done(r, CURLE_OK);
                continue;
            }
            if (r->tokens == 0 && r->first_deadline <= now) {
                chat_reply_log(r, ENC_LOG_WARN, "chat: provider: no first"
                    " token within provider.first_token_timeout_ms (%ld ms):"
                    " the model is slow or overloaded (a local model on a"
                    " small machine may need more)",
                    e->first_token_timeout_ms);
                chat_reply_finish(r, 504, "Gateway Timeout",
                                  "The language model did not start"
                                  " answering in time.", -1, 0);
                continue;
            }
            if (r->total_deadline <= now) {
                if (r->tokens == 0) {
                    chat_reply_log(r, ENC_LOG_WARN, "chat: provider: no"
                        " first token within provider.total_timeout_ms"
                        " (%ld ms)", e->total_timeout_ms);
                    chat_reply_finish(r, 504, "Gateway Timeout",
                                      "The language model did not start"
                                      " answering in time.", -1, 0);
                } else {
                    chat_reply_log(r, ENC_LOG_WARN, "chat: provider: the"
                        " reply passed provider.total_timeout_ms (%ld ms):"
                        " kept as it is, incomplete", e->total_timeout_ms);
                    chat_reply_finish(r, 0, NULL, NULL, -1, 1);
                }
                continue;
            }
            at = r->total_deadline;
            if (r->tokens == 0 && r->first_deadline < at) {
                at = r->first_deadline;
            }
            if (r->linger && r->linger < at) {
                at = r->linger;
            }
            break;
        }

        if (next < 0 || at < next) {
            next = at;
        }
    }

    return next;
}
