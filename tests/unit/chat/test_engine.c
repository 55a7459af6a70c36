/*
 * Unit tests: workers/chat/engine.c, provider.c, retrieval.c — the reply
 * engine against tests/fakes/fake_llm.py, started as a subprocess on a
 * free port: every scenario of the fake, the key file, retries and
 * Retry-After, timeouts, cancellation reaching the provider, the bound on
 * open replies, stopping with replies open, and retrieval-only mode.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "config.h"
#include "log.h"
#include "../../../workers/chat/engine.h"


#define KEY       "sk-test-0123456789abcdefghij"
#define WAIT_S    30         /* a hang guard, not a timing assertion */


typedef struct {
    pid_t   pid;
    int     port;
} fake_t;

static fake_t  fake;          /* the default one, with --key-file */
static char    key_path[256];
static char    dir[64];


/* ---- the fake provider -------------------------------------------------- */

static int
fake_start(fake_t *f, const char *const *extra)
{
    int          fds[2], n;
    char         line[64], script[512];
    const char  *src, *argv[16];
    FILE        *out;
    size_t       i;

    src = getenv("ENCORE_TEST_SRCDIR");
    snprintf(script, sizeof(script), "%s/tests/fakes/fake_llm.py",
             src ? src : ".");

    if (pipe(fds) != 0) {
        return -1;
    }
    f->pid = fork();
    if (f->pid < 0) {
        return -1;
    }
    if (f->pid == 0) {
        /* the fake goes with this process, even when a test crashes */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        n = 0;
        argv[n++] = "python3";
        argv[n++] = script;
        argv[n++] = "--port";
        argv[n++] = "0";
        for (i = 0; extra && extra[i]; i++) {
            argv[n++] = extra[i];
        }
        argv[n] = NULL;
        execvp("python3", (char *const *) argv);
        _exit(127);
    }
    close(fds[1]);
    out = fdopen(fds[0], "r");
    if (out == NULL || fgets(line, sizeof(line), out) == NULL
        || sscanf(line, "ready %d", &f->port) != 1)
    {
        fprintf(stderr, "fake_llm.py did not start (%s)\n", script);
        if (out) {
            fclose(out);
        }
        return -1;
    }
    fclose(out);
    return 0;
}


static void
fake_stop(fake_t *f)
{
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        waitpid(f->pid, NULL, 0);
        f->pid = 0;
    }
}


static size_t
sink(char *buf, size_t size, size_t n, void *arg)
{
    return fwrite(buf, size, n, arg) * size;
}


static json_t *
fake_call(fake_t *f, const char *method, const char *path)
{
    char      url[128], *text;
    size_t    len;
    FILE     *mem;
    CURL     *h;
    json_t   *out;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", f->port, path);
    mem = open_memstream(&text, &len);
    h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, mem);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    curl_easy_cleanup(h);
    fclose(mem);
    out = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(out);
    return out;
}


static json_t *
fake_requests(fake_t *f)
{
    return fake_call(f, "GET", "/_fake/requests");
}


/* the fake's record of its request i, once cond holds (polled: the fake
   notices a client leaving a little after the fact) */
static json_t *
fake_request_when(fake_t *f, size_t i, const char *member, int want)
{
    int      tries;
    json_t  *all, *r;

    for (tries = 0; tries < WAIT_S * 20; tries++) {
        all = fake_requests(f);
        r = json_array_get(all, i);
        if (r && (member == NULL
                  || json_is_true(json_object_get(r, member)) == want))
        {
            json_incref(r);
            json_decref(all);
            return r;
        }
        json_decref(all);
        usleep(50000);
    }
    fail_msg("the fake's request %zu never had %s = %d", i,
             member ? member : "-", want);
    return NULL;
}


/* ---- a caller ------------------------------------------------------------ */

typedef struct {
    pthread_mutex_t   lock;
    pthread_cond_t    cond;
    char              tokens[65536];
    size_t            len;
    int               ntokens;
    int               done;
    int               status;
    char              title[128];
    char              detail[256];
    long              retry_after;
    char             *content;
    int               incomplete;
    int               cancelled;
    int               cancel_after;   /* cancel from the token callback */
    chat_reply_t     *reply;
    pthread_t         engine_thread;
    int               same_thread;
} call_t;


static void
on_token(void *arg, const char *text, size_t len)
{
    call_t  *c = arg;

    pthread_mutex_lock(&c->lock);
    assert_true(c->len + len < sizeof(c->tokens));
    assert_false(c->done);
    memcpy(c->tokens + c->len, text, len);
    c->len += len;
    c->tokens[c->len] = '\0';
    c->ntokens++;
    if (c->ntokens == 1) {
        c->engine_thread = pthread_self();
        c->same_thread = 1;
    } else if (!pthread_equal(c->engine_thread, pthread_self())) {
        c->same_thread = 0;
    }
    if (c->cancel_after && c->ntokens == c->cancel_after) {
        chat_reply_cancel(c->reply);
    }
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}


static void
on_done(void *arg, const chat_outcome_t *o)
{
    call_t  *c = arg;

    pthread_mutex_lock(&c->lock);
    assert_false(c->done);
    c->done++;
    c->status = o->status;
    snprintf(c->title, sizeof(c->title), "%s", o->title ? o->title : "");
    snprintf(c->detail, sizeof(c->detail), "%s", o->detail ? o->detail : "");
    c->retry_after = o->retry_after;
    c->content = strdup(o->content);
    c->incomplete = o->incomplete;
    c->cancelled = o->cancelled;
    c->reply = NULL;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}


static const chat_reply_cb_t  cbs = { on_token, on_done };


static void
call_init(call_t *c)
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
}


static void
call_wait(call_t *c, int tokens)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += WAIT_S;
    pthread_mutex_lock(&c->lock);
    while (!c->done && (tokens == 0 || c->ntokens < tokens)) {
        if (pthread_cond_timedwait(&c->cond, &c->lock, &ts) == ETIMEDOUT) {
            pthread_mutex_unlock(&c->lock);
            fail_msg("no %s within %d s", tokens ? "tokens" : "done",
                     WAIT_S);
        }
    }
    pthread_mutex_unlock(&c->lock);
}


static void
call_free(call_t *c)
{
    free(c->content);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cond);
}


/* ---- an engine ----------------------------------------------------------- */

static enc_config_t *
conf(int port, const char *const *kv)
{
    char           url[128], err[256];
    size_t         i;
    enc_config_t  *c;
    const enc_conf_key_t *const  tables[] = { chat_engine_conf_keys, NULL };

    c = enc_config_new(tables);
    assert_non_null(c);
    assert_int_equal(enc_config_load(c, NULL, err, sizeof(err)), 0);
    if (port > 0) {
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/", port);
        assert_int_equal(enc_config_set(c, "provider.url", url, err,
                                        sizeof(err)), 0);
        assert_int_equal(enc_config_set(c, "provider.model", "fake-model",
                                        err, sizeof(err)), 0);
        assert_int_equal(enc_config_set(c, "provider.api_key_file",
                                        key_path, err, sizeof(err)), 0);
    }
    assert_int_equal(enc_config_set(c, "provider.retry_backoff_ms", "10",
                                    err, sizeof(err)), 0);
    for (i = 0; kv && kv[i]; i += 2) {
        if (enc_config_set(c, kv[i], kv[i + 1], err, sizeof(err)) != 0) {
            fail_msg("%s: %s", kv[i], err);
        }
    }
    return c;
}


static chat_engine_t *
engine(int port, const char *const *kv)
{
    enc_config_t   *c;
    chat_engine_t  *e;

    c = conf(port, kv);
    e = chat_engine_start(c);
    enc_config_free(c);
    assert_non_null(e);
    return e;
}


static json_t *
iron_maiden(void)
{
    return json_pack("[{s:s,s:s,s:s,s:s},{s:s,s:s,s:s,s:s}]",
        "type", "album", "id", "9f1a0000-0000-4000-8000-000000000001",
        "title", "Killers", "snippet", "<mark>Iron</mark> Maiden",
        "type", "album", "id", "9f1a0000-0000-4000-8000-000000000002",
        "title", "Powerslave", "snippet", "");
}


/* asks question; the reply's outcome in c */
static void
ask(chat_engine_t *e, call_t *c, const char *question, json_t *history)
{
    json_t         *src;
    chat_prompt_t   p;

    src = iron_maiden();
    memset(&p, 0, sizeof(p));
    p.request_id = "test-request";
    p.question = question;
    p.history = history;
    p.sources = src;

    pthread_mutex_lock(&c->lock);
    c->reply = chat_reply_start(e, &p, &cbs, c);
    assert_non_null(c->reply);
    pthread_mutex_unlock(&c->lock);
    json_decref(src);
}


static void
reset(void)
{
    json_decref(fake_call(&fake, "POST", "/_fake/reset"));
}


/* ---- the tests ----------------------------------------------------------- */

static void
test_normal_stream(void **state)
{
    call_t          c;
    chat_engine_t  *e;
    json_t         *reqs, *r, *msgs;
    const char     *sys;

    (void) state;
    reset();
    e = engine(fake.port, NULL);
    assert_false(chat_engine_retrieval_only(e));

    call_init(&c);
    ask(e, &c, "what albums by Iron Maiden are there?", NULL);
    call_wait(&c, 0);

    assert_int_equal(c.status, 0);
    assert_false(c.incomplete);
    assert_false(c.cancelled);
    assert_true(c.ntokens >= 10);
    assert_true(c.same_thread);
    assert_string_equal(c.content, c.tokens);
    /* the sources reached the model: the fake names their titles */
    assert_non_null(strstr(c.content, "Killers"));
    assert_non_null(strstr(c.content, "Powerslave"));

    reqs = fake_requests(&fake);
    assert_int_equal(json_array_size(reqs), 1);
    r = json_array_get(reqs, 0);
    assert_true(json_is_true(json_object_get(r, "authorized")));
    assert_true(json_is_true(json_object_get(r, "stream")));
    assert_true(json_is_true(json_object_get(r, "finished")));
    assert_false(json_is_true(json_object_get(r, "client_closed")));
    assert_string_equal(json_string_value(json_object_get(r, "model")),
                        "fake-model");
    msgs = json_object_get(r, "messages");
    assert_int_equal(json_array_size(msgs), 2);
    sys = json_string_value(json_object_get(json_array_get(msgs, 0),
                                            "content"));
    assert_non_null(strstr(sys, "\"title\":\"Killers\""));
    assert_string_equal(json_string_value(json_object_get(
        json_array_get(msgs, 1), "content")),
        "what albums by Iron Maiden are there?");
    json_decref(reqs);

    call_free(&c);
    chat_engine_stop(e);
}


static void
test_provider_url_forms(void **state)
{
    char            url[128], err[256];
    size_t          i;
    call_t          c;
    enc_config_t   *cf;
    chat_engine_t  *e;
    const char     *forms[] = { "http://127.0.0.1:%d",
                                "http://127.0.0.1:%d/",
                                "http://127.0.0.1:%d/v1",
                                "http://127.0.0.1:%d/v1/chat/completions/",
                                NULL };

    (void) state;

    /* a server alone, the API's base, the endpoint: all reach it */
    for (i = 0; forms[i]; i++) {
        reset();
        cf = conf(fake.port, NULL);
        snprintf(url, sizeof(url), forms[i], fake.port);
        assert_int_equal(enc_config_set(cf, "provider.url", url, err,
                                        sizeof(err)), 0);
        e = chat_engine_start(cf);
        enc_config_free(cf);
        assert_non_null(e);
        call_init(&c);
        ask(e, &c, "hello", NULL);
        call_wait(&c, 0);
        assert_int_equal(c.status, 0);
        call_free(&c);
        chat_engine_stop(e);
    }
}


static void
test_history_trimmed_at_provider(void **state)
{
    call_t          c;
    chat_engine_t  *e;
    json_t         *h, *r, *msgs;
    const char *const  kv[] = { "provider.history_budget", "10", NULL };

    (void) state;
    reset();
    e = engine(fake.port, kv);

    h = json_pack("[{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s}]",
                  "role", "user", "content", "an old long question",
                  "role", "assistant", "content", "an old long answer",
                  "role", "user", "content", "new q",
                  "role", "assistant", "content", "new a");
    call_init(&c);
    ask(e, &c, "and then?", h);
    call_wait(&c, 0);
    assert_int_equal(c.status, 0);

    r = fake_request_when(&fake, 0, NULL, 0);
    msgs = json_object_get(r, "messages");
    assert_int_equal(json_array_size(msgs), 4);
    assert_string_equal(json_string_value(json_object_get(
        json_array_get(msgs, 1), "content")), "new q");
    assert_string_equal(json_string_value(json_object_get(
        json_array_get(msgs, 2), "content")), "new a");
    assert_string_equal(json_string_value(json_object_get(
        json_array_get(msgs, 3), "content")), "and then?");
    json_decref(r);
    json_decref(h);

    call_free(&c);
    chat_engine_stop(e);
}


static void
test_json_answer(void **state)
{
    call_t          c;
    chat_engine_t  *e;

    (void) state;
    reset();
    e = engine(fake.port, NULL);
    call_init(&c);
    ask(e, &c, "whole please [[fake:json]]", NULL);
    call_wait(&c, 0);
    assert_int_equal(c.status, 0);
    assert_false(c.incomplete);
    assert_int_equal(c.ntokens, 1);
    assert_non_null(strstr(c.content, "Killers"));
    call_free(&c);
    chat_engine_stop(e);
}


static void
test_cut_keeps_what_came(void **state)
{
    call_t          c;
    chat_engine_t  *e;

    (void) state;
    reset();
    e = engine(fake.port, NULL);
    call_init(&c);
    ask(e, &c, "[[fake:cut]]", NULL);
    call_wait(&c, 0);
    assert_int_equal(c.status, 0);
    assert_true(c.incomplete);
    assert_false(c.cancelled);
    assert_int_equal(c.ntokens, 3);
    assert_string_equal(c.content, c.tokens);
    call_free(&c);
    chat_engine_stop(e);
}


static void
test_malformed_chunk_ends_incomplete(void **state)
{
    call_t          c;
    chat_engine_t  *e;
    json_t         *reqs;

    (void) state;
    reset();
    e = engine(fake.port, NULL);
    call_init(&c);
    ask(e, &c, "[[fake:malformed]]", NULL);
    call_wait(&c, 0);
    assert_int_equal(c.status, 0);
    assert_true(c.incomplete);
    assert_int_equal(c.ntokens, 2);
    /* no retry after a token */
    reqs = fake_requests(&fake);
    assert_int_equal(json_array_size(reqs), 1);
    json_decref(reqs);
    call_free(&c);
    chat_engine_stop(e);
}


static void
test_r429_long_retry_after_answers_503_at_once(void **state)
{
    call_t          c;
    chat_engine_t  *e;
    json_t         *reqs;

    (void) state;
    reset();
    e = engine(fake.port, NULL);       /* retries 2, retry_after_max 3 s */
    call_init(&c);
    ask(e, &c, "[[fake:r429]]", NULL);
    call_wait(&c, 0);
    assert_int_equal(c.status, 503);
    assert_int_equal(c.retry_after, 7);
    assert_int_equal(c.ntokens, 0);
    assert_string_equal(c.content, "");
    assert_string_equal(c.title, "Service Unavailable");
    assert_true(strlen(c.detail) > 0);
    reqs = fake_requests(&fake);
    assert_int_equal(json_array_size(reqs), 1);
    json_decref(reqs);
    call_free(&c);
    chat_engine_stop(e);
}


static void
test_r429_retry_after_waited_out(void **state)
{
    fake_t          f;
    call_t          c;
    chat_engine_t  *e;
    json_t         *reqs;
    double          t0, t1;
    const char *const  extra[] = { "--retry-after", "1", NULL };
    const char *const  kv[] = { "provider.retries", "3", NULL };

    (void) state;
    assert_int_equal(fake_start(&f, extra), 0);
    e = engine(f.port, kv);

    /* 429 with Retry-After: 1 once, then an answer */
    call_init(&c);
    ask(e, &c, "[[fake:r429_once]]", NULL);
    call_wait(&c, 0);
    assert_int_equal(c.status, 0);
    assert_false(c.incomplete);
    reqs = fake_requests(&f);
    assert_int_equal(json_array_size(reqs), 2);
    t0 = json_real_value(json_object_get(json_array_get(reqs, 0),
                                         "started_at"));
    t1 = json_real_value(json_object_get(json_array_get(reqs, 1),
                                         "started_at"));
    assert_true(t1 - t0 >= 1.0);        /* it waited as it was told */
    json_decref(reqs);
    call_free(&c);

    /* always 429: the retries, then 503 with the provider's Retry-After */
    call_init(&c);
    ask(e, &c, "[[fake:r429]]", NULL);
    call_wait(&c, 0);
    assert_int_equal(c.status, 503);
    assert_int_equal(c.retry_after, 1);
    reqs = fake_requests(&f);
    assert_int_equal(json_array_size(reqs), 2 + 4);
    json_decref(reqs);
    call_free(&c);

    chat_engine_stop(e);
    fake_stop(&f);
}


static void
test_r500_retried_then_503(void **state)
{
    call_t          c;
    chat_engine_t  *e;
    json_t         *reqs;

    (void) state;
    reset();
    e = engine(fake.port, NULL);
    call_init(&c);
    ask(e, &c, "[[fake:r500]]", NULL);
    call_wait(&c, 0);
    assert_int_equal(c.status, 503);
    assert_int_equal(c.retry_after, -1);
    reqs = fake_requests(&fake);
    assert_int_equal(json_array_size(reqs), 3);     /* 1 + 2 retries */
    json_decref(reqs);
    call_free(&c);

    /* a 500 once: the retry answers */
    reset();
    call_init(&c);
    ask(e, &c, "[[fake:r500_once]]", NULL);
    call_wait(&c, 0);
    assert_int_equal(c.status, 0);
    assert_false(c.incomplete);
    assert_true(c.ntokens > 0);
    reqs = fake_requests(&fake);
    assert_int_equal(json_array_size(reqs), 2);
    json_decref(reqs);
    call_free(&c);

    chat_engine_stop(e);
}


static void
test_r401_is_502_never_retried(void **state)
{
    call_t          c;
    chat_engine_t  *e;
    json_t         *reqs;

    (void) state;
    reset();
    e = engine(fake.port, NULL);
    call_init(&c);
    ask(e, &c, "[[fake:r401]]", NULL);
    call_wait(&c, 0);
    assert_int_equal(c.status, 502);
    assert_int_equal(c.retry_after, -1);
    reqs = fake_requests(&fake);
    assert_int_equal(json_array_size(reqs), 1);
    json_decref(reqs);
    call_free(&c);
    chat_engine_stop(e);
}


static void
test_wrong_key_is_502(void **state)
{
    char            path[300], err[256];
    FILE           *f;
    call_t          c;
    enc_config_t   *cf;
    chat_engine_t  *e;
    json_t         *r;

    (void) state;
    reset();
    snprintf(path, sizeof(path), "%s/wrong.key", dir);
    f = fopen(path, "w");
    fputs("sk-wrong\n", f);
    fclose(f);
    chmod(path, 0600);

    cf = conf(fake.port, NULL);
    assert_int_equal(enc_config_set(cf, "provider.api_key_file", path, err,
                                    sizeof(err)), 0);
    e = chat_engine_start(cf);
    enc_config_free(cf);
    assert_non_null(e);

    call_init(&c);
    ask(e, &c, "hello", NULL);
    call_wait(&c, 0);
    assert_int_equal(c.status, 502);
    r = fake_request_when(&fake, 0, NULL, 0);
    assert_false(json_is_true(json_object_get(r, "authorized")));
    assert_true(json_is_true(json_object_get(r, "bearer_present")));
    json_decref(r);
    call_free(&c);
    chat_engine_stop(e);
    unlink(path);
}


static void
test_key_file_must_be_private(void **state)
{
    char            path[300], err[256];
    FILE           *f;
    enc_config_t   *cf;
    chat_engine_t  *e;

    (void) state;
    snprintf(path, sizeof(path), "%s/open.key", dir);
    f = fopen(path, "w");
    fputs(KEY "\n", f);
    fclose(f);

    cf = conf(fake.port, NULL);
    assert_int_equal(enc_config_set(cf, "provider.api_key_file", path, err,
                                    sizeof(err)), 0);

    chmod(path, 0644);
    assert_null(chat_engine_start(cf));
    chmod(path, 0640);
    assert_null(chat_engine_start(cf));
    chmod(path, 0400);
    e = chat_engine_start(cf);
    assert_non_null(e);
    chat_engine_stop(e);

    /* empty, two words, missing */
    chmod(path, 0600);
    f = fopen(path, "w");
    fputs("  \n", f);
    fclose(f);
    assert_null(chat_engine_start(cf));
    f = fopen(path, "w");
    fputs("sk-one\nsk-two\n", f);
    fclose(f);
    assert_null(chat_engine_start(cf));
    unlink(path);
    assert_null(chat_engine_start(cf));

    /* a url without a model, a url that is not http */
    assert_int_equal(enc_config_set(cf, "provider.api_key_file", "", err,
                                    sizeof(err)), 0);
    assert_int_equal(enc_config_set(cf, "provider.model", "", err,
                                    sizeof(err)), 0);
    assert_null(chat_engine_start(cf));
    assert_int_equal(enc_config_set(cf, "provider.model", "m", err,
                                    sizeof(err)), 0);
    assert_int_equal(enc_config_set(cf, "provider.url", "ftp://x/v1", err,
                                    sizeof(err)), 0);
    assert_null(chat_engine_start(cf));
    enc_config_free(cf);
}


static void
test_slow_first_token_is_504(void **state)
{
    call_t          c;
    chat_engine_t  *e;
    json_t         *r;
    const char *const  kv[] = { "provider.first_token_timeout_ms", "300",
                                NULL };

    (void) state;
    reset();
    e = engine(fake.port, kv);

    call_init(&c);
    ask(e, &c, "[[fake:slow_first]]", NULL);
    call_wait(&c, 0);
    assert_int_equal(c.status, 504);
    assert_int_equal(c.ntokens, 0);
    /* not retried, and the provider saw the client go */
    r = fake_request_when(&fake, 0, "client_closed", 1);
    json_decref(r);
    r = fake_requests(&fake);
    assert_int_equal(json_array_size(r), 1);
    json_decref(r);
    call_free(&c);

    reset();
    call_init(&c);
    ask(e, &c, "[[fake:hang]]", NULL);
    call_wait(&c, 0);
    assert_int_equal(c.status, 504);
    json_decref(fake_request_when(&fake, 0, "client_closed", 1));
    call_free(&c);

    chat_engine_stop(e);
}


static void
test_total_timeout_keeps_what_came(void **state)
{
    call_t          c;
    chat_engine_t  *e;
    const char *const  kv[] = { "provider.total_timeout_ms", "700", NULL };

    (void) state;
    reset();
    e = engine(fake.port, kv);
    call_init(&c);
    ask(e, &c, "[[fake:slow]]", NULL);
    call_wait(&c, 0);
    assert_int_equal(c.status, 0);
    assert_true(c.incomplete);
    assert_false(c.cancelled);
    assert_true(c.ntokens >= 1 && c.ntokens < 40);
    json_decref(fake_request_when(&fake, 0, "client_closed", 1));
    call_free(&c);
    chat_engine_stop(e);
}


static void
test_cancel_reaches_the_provider(void **state)
{
    call_t          c;
    chat_engine_t  *e;
    json_t         *r;

    (void) state;
    reset();
    e = engine(fake.port, NULL);

    /* from another thread, after 2 tokens */
    call_init(&c);
    ask(e, &c, "[[fake:slow]]", NULL);
    call_wait(&c, 2);
    pthread_mutex_lock(&c.lock);
    if (c.reply) {
        chat_reply_cancel(c.reply);
    }
    pthread_mutex_unlock(&c.lock);
    call_wait(&c, 0);
    assert_int_equal(c.status, 0);
    assert_true(c.cancelled);
    assert_true(c.incomplete);
    assert_string_equal(c.content, c.tokens);
    r = fake_request_when(&fake, 0, "client_closed", 1);
    assert_false(json_is_true(json_object_get(r, "finished")));
    assert_true(json_integer_value(json_object_get(r, "tokens_sent")) < 40);
    json_decref(r);
    call_free(&c);

    /* from the token callback itself (the client's write failed) */
    reset();
    call_init(&c);
    c.cancel_after = 3;
    ask(e, &c, "[[fake:slow]]", NULL);
    call_wait(&c, 0);
    assert_true(c.cancelled);
    assert_int_equal(c.ntokens, 3);
    json_decref(fake_request_when(&fake, 0, "client_closed", 1));
    call_free(&c);

    /* before anything came (a hanging provider) */
    reset();
    call_init(&c);
    ask(e, &c, "[[fake:hang]]", NULL);
    json_decref(fake_request_when(&fake, 0, NULL, 0));
    pthread_mutex_lock(&c.lock);
    if (c.reply) {
        chat_reply_cancel(c.reply);
    }
    pthread_mutex_unlock(&c.lock);
    call_wait(&c, 0);
    assert_int_equal(c.status, 0);
    assert_true(c.cancelled);
    assert_string_equal(c.content, "");
    json_decref(fake_request_when(&fake, 0, "client_closed", 1));
    call_free(&c);

    /* at once, before the engine may even have begun it */
    reset();
    call_init(&c);
    ask(e, &c, "[[fake:slow]]", NULL);
    pthread_mutex_lock(&c.lock);
    if (c.reply) {
        chat_reply_cancel(c.reply);
    }
    pthread_mutex_unlock(&c.lock);
    call_wait(&c, 0);
    assert_int_equal(c.status, 0);
    assert_true(c.cancelled);
    r = fake_requests(&fake);
    if (json_array_size(r) > 0) {
        json_decref(r);
        json_decref(fake_request_when(&fake, 0, "client_closed", 1));
    } else {
        json_decref(r);
    }
    call_free(&c);

    chat_engine_stop(e);
}


static void
test_unreachable_is_503(void **state)
{
    fake_t          f;
    call_t          c;
    chat_engine_t  *e;
    const char *const  kv[] = { "provider.retries", "1", NULL };

    (void) state;
    /* a port nothing listens on: the fake's, once it is gone */
    assert_int_equal(fake_start(&f, NULL), 0);
    fake_stop(&f);
    e = engine(f.port, kv);
    call_init(&c);
    ask(e, &c, "hello", NULL);
    call_wait(&c, 0);
    assert_int_equal(c.status, 503);
    assert_int_equal(c.ntokens, 0);
    call_free(&c);
    chat_engine_stop(e);
}


static void
test_max_streams_and_stop(void **state)
{
    call_t          a, b, d;
    json_t         *src;
    chat_prompt_t   p;
    chat_engine_t  *e;
    const char *const  kv[] = { "provider.max_streams", "2", NULL };

    (void) state;
    reset();
    e = engine(fake.port, kv);

    call_init(&a);
    call_init(&b);
    call_init(&d);
    assert_false(chat_engine_full(e));
    ask(e, &a, "[[fake:slow]]", NULL);
    assert_false(chat_engine_full(e));
    ask(e, &b, "[[fake:hang]]", NULL);
    /* asked before a question is stored: full now */
    assert_true(chat_engine_full(e));

    src = iron_maiden();
    memset(&p, 0, sizeof(p));
    p.question = "one too many";
    p.sources = src;
    assert_null(chat_reply_start(e, &p, &cbs, &d));
    json_decref(src);

    call_wait(&a, 1);
    /* stopping ends both, cancelled, each with its done */
    chat_engine_stop(e);
    assert_int_equal(a.done, 1);
    assert_true(a.cancelled);
    assert_true(a.incomplete);
    assert_int_equal(b.done, 1);
    assert_true(b.cancelled);
    assert_int_equal(d.done, 0);
    call_free(&a);
    call_free(&b);
    call_free(&d);
}


static void
test_many_at_once(void **state)
{
    call_t          c[16];
    chat_engine_t  *e;
    size_t          i;
    json_t         *reqs;

    (void) state;
    reset();
    e = engine(fake.port, NULL);
    for (i = 0; i < 16; i++) {
        call_init(&c[i]);
        ask(e, &c[i], i % 2 ? "[[fake:normal]] odd" : "even", NULL);
    }
    for (i = 0; i < 16; i++) {
        call_wait(&c[i], 0);
        assert_int_equal(c[i].status, 0);
        assert_false(c[i].incomplete);
        assert_string_equal(c[i].content, c[i].tokens);
        assert_non_null(strstr(c[i].content, "Killers"));
        call_free(&c[i]);
    }
    reqs = fake_requests(&fake);
    assert_int_equal(json_array_size(reqs), 16);
    json_decref(reqs);
    chat_engine_stop(e);
}


static void
test_retrieval_only(void **state)
{
    call_t          c;
    chat_engine_t  *e;
    chat_prompt_t   p;
    int             words;
    const char     *s;
    json_t         *reqs;
    const char *const  kv[] = { "retrieval.word_ms", "1", NULL };

    (void) state;
    reset();
    e = engine(0, kv);
    assert_true(chat_engine_retrieval_only(e));

    call_init(&c);
    ask(e, &c, "what albums by Iron Maiden are there?", NULL);
    call_wait(&c, 0);
    assert_int_equal(c.status, 0);
    assert_false(c.incomplete);
    assert_string_equal(c.content, c.tokens);
    assert_string_equal(c.content, "No language model is configured on this"
        " server, so this answer lists what the catalog holds: 2 albums"
        " (Killers [1], Powerslave [2]).");
    /* a word a token */
    for (words = 1, s = c.content; (s = strchr(s, ' ')) != NULL; s++) {
        words++;
    }
    assert_int_equal(c.ntokens, words);
    assert_true(c.same_thread);
    call_free(&c);

    /* nothing found: said plainly */
    call_init(&c);
    memset(&p, 0, sizeof(p));
    p.question = "zzz";
    pthread_mutex_lock(&c.lock);
    c.reply = chat_reply_start(e, &p, &cbs, &c);
    assert_non_null(c.reply);
    pthread_mutex_unlock(&c.lock);
    call_wait(&c, 0);
    assert_int_equal(c.status, 0);
    assert_non_null(strstr(c.content, "nothing in it matched"));
    call_free(&c);

    /* cancelled midway */
    call_init(&c);
    c.cancel_after = 2;
    ask(e, &c, "albums?", NULL);
    call_wait(&c, 0);
    assert_true(c.cancelled);
    assert_true(c.incomplete);
    assert_int_equal(c.ntokens, 2);
    call_free(&c);

    chat_engine_stop(e);

    /* the provider was never asked */
    reqs = fake_requests(&fake);
    assert_int_equal(json_array_size(reqs), 0);
    json_decref(reqs);
}


static void
test_retrieval_many_at_once(void **state)
{
    size_t          i, n = 200;
    call_t         *c;
    chat_engine_t  *e;

    (void) state;

    /* every reply's words on the one timer list, each complete, in order */
    e = engine(0, NULL);
    c = calloc(n, sizeof(call_t));
    assert_non_null(c);
    for (i = 0; i < n; i++) {
        call_init(&c[i]);
        ask(e, &c[i], "albums?", NULL);
    }
    for (i = 0; i < n; i++) {
        call_wait(&c[i], 0);
        assert_int_equal(c[i].status, 0);
        assert_false(c[i].incomplete);
        assert_string_equal(c[i].content, c[i].tokens);
        assert_string_equal(c[i].content, c[0].content);
        assert_true(c[i].ntokens > 10);
    }
    for (i = 0; i < n; i++) {
        call_free(&c[i]);
    }
    free(c);
    chat_engine_stop(e);
}


static int
setup(void **state)
{
    FILE        *f;
    const char  *extra[3];

    (void) state;
    enc_log_init("chat", getenv("CHAT_TEST_LOG") ? ENC_LOG_DEBUG : ENC_LOG_ERROR);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(dir, sizeof(dir), "/tmp/encore-chat-test-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        return -1;
    }
    snprintf(key_path, sizeof(key_path), "%s/provider.key", dir);
    f = fopen(key_path, "w");
    if (f == NULL) {
        return -1;
    }
    fputs(KEY "\n", f);
    fclose(f);
    chmod(key_path, 0600);

    extra[0] = "--key-file";
    extra[1] = key_path;
    extra[2] = NULL;
    return fake_start(&fake, extra);
}


static int
teardown(void **state)
{
    (void) state;
    fake_stop(&fake);
    unlink(key_path);
    rmdir(dir);
    curl_global_cleanup();
    return 0;
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_normal_stream),
        cmocka_unit_test(test_provider_url_forms),
        cmocka_unit_test(test_history_trimmed_at_provider),
        cmocka_unit_test(test_json_answer),
        cmocka_unit_test(test_cut_keeps_what_came),
        cmocka_unit_test(test_malformed_chunk_ends_incomplete),
        cmocka_unit_test(test_r429_long_retry_after_answers_503_at_once),
        cmocka_unit_test(test_r429_retry_after_waited_out),
        cmocka_unit_test(test_r500_retried_then_503),
        cmocka_unit_test(test_r401_is_502_never_retried),
        cmocka_unit_test(test_wrong_key_is_502),
        cmocka_unit_test(test_key_file_must_be_private),
        cmocka_unit_test(test_slow_first_token_is_504),
        cmocka_unit_test(test_total_timeout_keeps_what_came),
        cmocka_unit_test(test_cancel_reaches_the_provider),
        cmocka_unit_test(test_unreachable_is_503),
        cmocka_unit_test(test_max_streams_and_stop),
        cmocka_unit_test(test_many_at_once),
        cmocka_unit_test(test_retrieval_only),
        cmocka_unit_test(test_retrieval_many_at_once),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, setup, teardown);
}
