/*
 * provider.c — one attempt at an OpenAI-compatible /v1/chat/completions,
 * streamed, on the engine's multi handle (reply.h).
 *
 * What the provider answers, and what the reply becomes:
 *   2xx event stream     tokens as they come; complete at [DONE] (or a
 *                        finish_reason, for servers that never send it);
 *                        cut (the connection ended), malformed or an error
 *                        event: what came is kept, incomplete — or 502 with
 *                        no token yet
 *   2xx JSON             a server that ignored "stream": one token
 *   401, 403             502, never retried (the key is wrong)
 *   429, 408, 5xx        503 after the retries (Retry-After waited out up to
 *                        provider.retry_after_max_ms), with its Retry-After
 *   other 4xx            502
 *   no answer            503 after the retries (refused, reset, no route,
 *                        provider.connect_timeout_ms)
 * Retries happen only before the first token.  Every failure is logged for
 * the operator, with what to do about it; the key never is (and is masked
 * in the provider's own messages).
 */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "metrics.h"
#include "prompt.h"
#include "reply.h"


#define KEY_MAX          4096
#define ERROR_BODY_MAX   8192
#define LINGER_MS        1000
#define BACKOFF_MAX_MS   30000


static const char  unavailable[] =
    "The assistant's language model is unavailable or overloaded;"
    " try again later.";
static const char  refused[] =
    "The assistant's language model refused the request.";
static const char  nonsense[] =
    "The assistant's language model gave an answer that could not be read.";


static int provider_key(chat_engine_t *e, const char *path);
static size_t provider_header(char *buf, size_t size, size_t n, void *arg);
static size_t provider_write(char *buf, size_t size, size_t n, void *arg);
static int provider_event(void *arg, chat_sse_kind_t kind, const char *text,
    size_t len);
static void provider_json(chat_reply_t *r);
static void provider_failed(chat_reply_t *r, int retry, int status,
    const char *detail, const char *what, const char *hint);
static void provider_redact(chat_engine_t *e, char *s);
static char *provider_url_log(const char *url);
static long provider_jitter(chat_engine_t *e, long wait);
static const char *provider_curl_hint(CURLcode res);


int
chat_provider_configure(chat_engine_t *e, const enc_config_t *c)
{
    size_t       len;
    const char  *url, *model, *key_file, *path;

    url = enc_config_str(c, "provider.url");
    model = enc_config_str(c, "provider.model");
    key_file = enc_config_str(c, "provider.api_key_file");

    if (url == NULL || url[0] == '\0') {
        e->retrieval_only = 1;
        return 0;
    }

    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        enc_log_error("chat: provider.url \"%s\" is not an http:// or"
                      " https:// URL", url);
        return -1;
    }
    if (model == NULL || model[0] == '\0') {
        enc_log_error("chat: provider.url is set but provider.model is"
                      " empty: name the model the provider serves");
        return -1;
    }

    /* the API's base (as OpenAI's clients take it), the endpoint itself,
       or a server alone (its API at /v1, as every one of them serves) */
    len = strlen(url);
    while (len > 0 && url[len - 1] == '/') {
        len--;
    }
    path = strchr(strstr(url, "://") + 3, '/');
    if (len >= 17 && strncmp(url + len - 17, "/chat/completions", 17) == 0) {
        e->url = strndup(url, len);
    } else if (asprintf(&e->url, "%.*s%s/chat/completions", (int) len, url,
                        path == NULL || path >= url + len ? "/v1" : "") < 0)
    {
        e->url = NULL;
    }
    e->model = strdup(model);
    e->url_log = e->url ? provider_url_log(e->url) : NULL;
    if (e->url == NULL || e->model == NULL || e->url_log == NULL) {
        enc_log_error("chat: engine: out of memory");
        return -1;
    }

    e->headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (e->headers == NULL
        || curl_slist_append(e->headers, "Accept: text/event-stream") == NULL
        || curl_slist_append(e->headers, "Expect:") == NULL)
    {
        enc_log_error("chat: engine: out of memory");
        return -1;
    }

    if (key_file != NULL && key_file[0] != '\0') {
        e->key_file = strdup(key_file);
        if (e->key_file == NULL || provider_key(e, key_file) != 0) {
            return -1;
        }
    }

    return 0;
}


/* reads the API key: the file must be private to its owner */
static int
provider_key(chat_engine_t *e, const char *path)
{
    int          fd, rc;
    char         buf[KEY_MAX + 1], *hdr;
    size_t       len, i;
    ssize_t      n;
    struct stat  st;

    rc = -1;
    hdr = NULL;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        enc_log_error("chat: provider.api_key_file \"%s\" cannot be read:"
                      " %s", path, strerror(errno));
        return -1;
    }

    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        enc_log_error("chat: provider.api_key_file \"%s\" is not a regular"
                      " file", path);
        goto done;
    }
    if (st.st_mode & 077) {
        enc_log_error("chat: provider.api_key_file \"%s\" is open to others"
                      " (mode %04o): make it 0600 (chmod 600), owned by the"
                      " worker's user", path, (unsigned) (st.st_mode & 07777));
        goto done;
    }

    len = 0;
    while (len < sizeof(buf) - 1) {
        n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            enc_log_error("chat: provider.api_key_file \"%s\" cannot be"
                          " read: %s", path, strerror(errno));
            goto done;
        }
        if (n == 0) {
            break;
        }
        len += (size_t) n;
    }
    if (len == sizeof(buf) - 1) {
        enc_log_error("chat: provider.api_key_file \"%s\" is longer than"
                      " an API key (%d bytes at most)", path, KEY_MAX);
        goto done;
    }

    while (len > 0 && isspace((unsigned char) buf[len - 1])) {
        len--;
    }
    for (i = 0; i < len && isspace((unsigned char) buf[i]); i++) {
        /* void */
    }
    if (i == len) {
        enc_log_error("chat: provider.api_key_file \"%s\" is empty", path);
        goto done;
    }
    buf[len] = '\0';
    for (len = i; buf[len]; len++) {
        if ((unsigned char) buf[len] < 0x21 || buf[len] == 0x7f) {
            enc_log_error("chat: provider.api_key_file \"%s\" holds more"
                          " than one key: spaces, line breaks or control"
                          " characters inside it", path);
            goto done;
        }
    }

    e->key = strdup(buf + i);
    if (e->key == NULL || asprintf(&hdr, "Authorization: Bearer %s", e->key)
                          < 0)
    {
        hdr = NULL;
        enc_log_error("chat: engine: out of memory");
        goto done;
    }
    if (curl_slist_append(e->headers, hdr) == NULL) {
        enc_log_error("chat: engine: out of memory");
        goto done;
    }
    rc = 0;

done:
    explicit_bzero(buf, sizeof(buf));
    if (hdr) {
        explicit_bzero(hdr, strlen(hdr));
        free(hdr);
    }
    close(fd);
    return rc;
}


void
chat_provider_cleanup_engine(chat_engine_t *e)
{
    struct curl_slist  *h;

    for (h = e->headers; h; h = h->next) {
        explicit_bzero(h->data, strlen(h->data));
    }
    curl_slist_free_all(e->headers);
    e->headers = NULL;
    if (e->key) {
        explicit_bzero(e->key, strlen(e->key));
        free(e->key);
        e->key = NULL;
    }
    free(e->url);
    free(e->url_log);
    free(e->model);
    free(e->key_file);
    e->url = e->url_log = e->model = e->key_file = NULL;
}


int
chat_provider_request(chat_reply_t *r, const chat_prompt_t *p)
{
    char            boundary[CHAT_PROMPT_BOUNDARY_LEN + 1];
    json_t         *msgs, *body;
    chat_engine_t  *e = r->engine;

    chat_prompt_boundary(boundary);
    msgs = chat_prompt_messages(p, (size_t) e->history_budget, boundary);
    if (msgs == NULL) {
        return -1;
    }

    body = json_pack("{s:s,s:o,s:b}", "model", e->model, "messages", msgs,
                     "stream", 1);
    if (body == NULL) {
        return -1;
    }
    if (e->max_tokens > 0
        && json_object_set_new(body, "max_tokens",
                               json_integer(e->max_tokens)) != 0)
    {
        json_decref(body);
        return -1;
    }

    r->body = enc_json_dumps(body, &r->body_len);
    json_decref(body);
    return r->body ? 0 : -1;
}


int
chat_provider_attempt(chat_reply_t *r)
{
    CURL           *h;
    chat_engine_t  *e = r->engine;

    r->kind = CHAT_BODY_NONE;
    r->status = 0;
    r->retry_after = -1;
    r->json_type = 0;
    r->finished = 0;
    r->cut_short = 0;
    r->broken = 0;
    r->why[0] = '\0';
    r->errbuf[0] = '\0';
    r->linger = 0;
    chat_buf_free(&r->raw);
    chat_sse_free(&r->sse);
    chat_sse_init(&r->sse, CHAT_SSE_MAX_DEFAULT, provider_event, r);

    h = curl_easy_init();
    if (h == NULL) {
        chat_reply_log(r, ENC_LOG_ERROR, "chat: provider: libcurl cannot"
                       " make a handle (out of memory?)");
        return -1;
    }

    if (curl_easy_setopt(h, CURLOPT_URL, e->url) != CURLE_OK
        || curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https")
           != CURLE_OK
        || curl_easy_setopt(h, CURLOPT_POST, 1L) != CURLE_OK
        || curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body) != CURLE_OK
        || curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                            (curl_off_t) r->body_len) != CURLE_OK
        || curl_easy_setopt(h, CURLOPT_HTTPHEADER, e->headers) != CURLE_OK
        || curl_easy_setopt(h, CURLOPT_USERAGENT, "encore-chat/1")
           != CURLE_OK
        || curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK
        || curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                            e->connect_timeout_ms) != CURLE_OK
        || curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK
        || curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L) != CURLE_OK
        || curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->errbuf) != CURLE_OK
        || curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, provider_header)
           != CURLE_OK
        || curl_easy_setopt(h, CURLOPT_HEADERDATA, r) != CURLE_OK
        || curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, provider_write)
           != CURLE_OK
        || curl_easy_setopt(h, CURLOPT_WRITEDATA, r) != CURLE_OK
        || curl_easy_setopt(h, CURLOPT_PRIVATE, r) != CURLE_OK)
    {
        chat_reply_log(r, ENC_LOG_ERROR, "chat: provider: libcurl refused"
                       " an option (too old a libcurl?)");
        curl_easy_cleanup(h);
        return -1;
    }

    if (curl_multi_add_handle(e->multi, h) != CURLM_OK) {
        chat_reply_log(r, ENC_LOG_ERROR, "chat: provider: libcurl refused"
                       " a transfer");
        curl_easy_cleanup(h);
        return -1;
    }

    r->easy = h;
    r->phase = CHAT_PHASE_RUN;
    r->first_deadline = chat_now_ms() + e->first_token_timeout_ms;
    return 0;
}


void
chat_provider_detach(chat_reply_t *r)
{
    if (r->easy) {
        curl_multi_remove_handle(r->engine->multi, r->easy);
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
    }
}


void
chat_provider_cleanup(chat_reply_t *r)
{
    chat_provider_detach(r);
    chat_sse_free(&r->sse);
    chat_buf_free(&r->raw);
    free(r->body);
    r->body = NULL;
}


static int
header_is(const char *buf, size_t len, const char *name, const char **value,
    size_t *vlen)
{
    size_t  n = strlen(name);

    if (len <= n || strncasecmp(buf, name, n) != 0 || buf[n] != ':') {
        return 0;
    }
    buf += n + 1;
    len -= n + 1;
    while (len > 0 && (*buf == ' ' || *buf == '\t')) {
        buf++;
        len--;
    }
    while (len > 0 && isspace((unsigned char) buf[len - 1])) {
        len--;
    }
    *value = buf;
    *vlen = len;
    return 1;
}


static size_t
provider_header(char *buf, size_t size, size_t n, void *arg)
{
    char           text[128], *end;
    long           v;
    size_t         len = size * n, vlen;
    time_t         at, now;
    const char    *value;
    chat_reply_t  *r = arg;

    if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
        /* a new answer (after a 1xx): forget the last one's headers */
        r->retry_after = -1;
        r->json_type = 0;
        return len;
    }

    if (header_is(buf, len, "Content-Type", &value, &vlen)) {
        snprintf(text, sizeof(text), "%.*s", (int) vlen, value);
        r->json_type = strcasestr(text, "json") != NULL;

    } else if (header_is(buf, len, "Retry-After", &value, &vlen)
               && vlen > 0 && vlen < sizeof(text))
    {
        snprintf(text, sizeof(text), "%.*s", (int) vlen, value);
        errno = 0;
        v = strtol(text, &end, 10);
        if (*end == '\0' && errno == 0 && isdigit((unsigned char) text[0])) {
            r->retry_after = v > 86400 ? 86400 : v;
        } else if ((at = curl_getdate(text, NULL)) != -1) {
            now = time(NULL);
            r->retry_after = at > now ? (long) (at - now) : 0;
        }

    } else if (header_is(buf, len, "retry-after-ms", &value, &vlen)
               && vlen > 0 && vlen < sizeof(text) && r->retry_after < 0)
    {
        snprintf(text, sizeof(text), "%.*s", (int) vlen, value);
        errno = 0;
        v = strtol(text, &end, 10);
        if (*end == '\0' && errno == 0 && v >= 0) {
            r->retry_after = v / 1000 + (v % 1000 != 0);
        }
    }

    return len;
}


static size_t
provider_write(char *buf, size_t size, size_t n, void *arg)
{
    long            status;
    size_t          len = size * n;
    chat_reply_t   *r = arg;
    chat_engine_t  *e = r->engine;

    if (atomic_load(&r->cancel)) {
        return 0;                        /* stops the transfer */
    }

    if (r->kind == CHAT_BODY_NONE) {
        status = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        r->status = status;
        r->kind = status >= 200 && status < 300
                  ? (r->json_type ? CHAT_BODY_JSON : CHAT_BODY_SSE)
                  : CHAT_BODY_ERROR;
    }

    switch (r->kind) {

    case CHAT_BODY_SSE:
        if (chat_sse_done(&r->sse)) {
            return len;                  /* after [DONE]: nothing counts */
        }
        return chat_sse_feed(&r->sse, buf, len) == 0 ? len : 0;

    case CHAT_BODY_JSON:
        if (r->raw.len + len > (size_t) e->max_reply_bytes * 2 + 65536) {
            r->broken = 1;
            snprintf(r->why, sizeof(r->why), "an answer longer than"
                     " provider.max_reply_bytes allows");
            return 0;
        }
        return chat_buf_add(&r->raw, buf, len) == 0 ? len : 0;

    default:
        if (r->raw.len < ERROR_BODY_MAX) {
            if (len > ERROR_BODY_MAX - r->raw.len) {
                len = ERROR_BODY_MAX - r->raw.len;
            }
            (void) chat_buf_add(&r->raw, buf, len);
        }
        return size * n;
    }
}


static int
provider_event(void *arg, chat_sse_kind_t kind, const char *text, size_t len)
{
    chat_reply_t  *r = arg;

    switch (kind) {

    case CHAT_SSE_TOKEN:
        return chat_reply_token(r, text, len);

    case CHAT_SSE_FINISH:
        r->finished = 1;
        if (len == 6 && memcmp(text, "length", 6) == 0) {
            r->cut_short = 1;
        }
        return 0;

    case CHAT_SSE_DONE:
        r->finished = 1;
        r->linger = chat_now_ms() + LINGER_MS;
        return 0;

    case CHAT_SSE_ERROR:
        r->broken = 1;
        snprintf(r->why, sizeof(r->why), "the stream carried an error:"
                 " \"%.*s\"", (int) (len > 160 ? 160 : len), text);
        provider_redact(r->engine, r->why);
        return -1;

    case CHAT_SSE_MALFORMED:
    default:
        r->broken = 1;
        snprintf(r->why, sizeof(r->why), "%.*s", (int) len, text);
        return -1;
    }
}


/* the transfer ended (res), or lingered long enough after [DONE] */
void
chat_provider_done(chat_reply_t *r, CURLcode res)
{
    char        what[512];
    long        status;
    const char  *hint, *msg;
    json_t      *body;

    if (r->status == 0 && r->easy) {
        status = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        r->status = status;
    }
    chat_provider_detach(r);

    if (atomic_load(&r->cancel)) {
        chat_reply_finish(r, 0, NULL, NULL, -1, 1);
        return;
    }

    if (r->kind == CHAT_BODY_JSON && !r->broken) {
        if (res != CURLE_OK) {
            snprintf(what, sizeof(what), "the answer broke off (%s)",
                     r->errbuf[0] ? r->errbuf : curl_easy_strerror(res));
            provider_failed(r, 1, 503, unavailable, what,
                            provider_curl_hint(res));
            return;
        }
        provider_json(r);
        /* on to the stream's rules with what it found */
    }

    if (r->kind == CHAT_BODY_SSE || r->kind == CHAT_BODY_JSON) {
        if (r->tokens > 0) {
            if (r->broken) {
                chat_reply_log(r, ENC_LOG_WARN, "chat: provider: the reply"
                               " stopped after %zu tokens, kept incomplete:"
                               " %s", r->tokens, r->why);
            } else if (!r->finished) {
                chat_reply_log(r, ENC_LOG_WARN, "chat: provider: the stream"
                               " was cut after %zu tokens, kept incomplete"
                               " (%s)", r->tokens, r->errbuf[0] ? r->errbuf
                               : res != CURLE_OK ? curl_easy_strerror(res)
                               : "it ended without [DONE]");
            } else if (r->cut_short) {
                chat_reply_log(r, ENC_LOG_INFO, "chat: provider: the model"
                               " stopped at its length limit (raise"
                               " provider.max_tokens?): kept incomplete");
            }
            chat_reply_finish(r, 0, NULL, NULL, -1,
                              r->broken || !r->finished || r->cut_short);
            return;
        }

        if (r->broken) {
            snprintf(what, sizeof(what), "an unreadable answer: %s", r->why);
            provider_failed(r, 0, 502, nonsense, what, "is provider.url an"
                            " OpenAI-compatible /v1 API?");
        } else if (r->finished) {
            provider_failed(r, 0, 502, nonsense, "an empty answer",
                            "check provider.model and provider.max_tokens");
        } else {
            snprintf(what, sizeof(what), "the answer broke off before its"
                     " first token (%s)", r->errbuf[0] ? r->errbuf
                     : res != CURLE_OK ? curl_easy_strerror(res)
                     : "it ended without [DONE]");
            provider_failed(r, 1, 503, unavailable, what,
                            provider_curl_hint(res));
        }
        return;
    }

    if (r->kind == CHAT_BODY_NONE && res != CURLE_OK) {
        snprintf(what, sizeof(what), "%s",
                 r->errbuf[0] ? r->errbuf : curl_easy_strerror(res));
        provider_failed(r, 1, 503, unavailable, what,
                        provider_curl_hint(res));
        return;
    }

    /* an HTTP answer that is not a stream: an error, or an empty 2xx */
    status = r->status;

    msg = NULL;
    body = r->raw.len ? json_loadb(r->raw.s, r->raw.len, 0, NULL) : NULL;
    if (body) {
        msg = json_string_value(json_object_get(
                  json_object_get(body, "error"), "message"));
        if (msg == NULL) {
            msg = json_string_value(json_object_get(body, "error"));
        }
    }
    snprintf(what, sizeof(what), "HTTP %ld%s%.200s%s", status,
             msg ? ": \"" : "", msg ? msg : "", msg ? "\"" : "");
    json_decref(body);
    provider_redact(r->engine, what);

    if (status == 401 || status == 403) {
        hint = "the provider refused the API key: check"
               " provider.api_key_file";
        provider_failed(r, 0, 502, refused, what, hint);
    } else if (status == 429) {
        provider_failed(r, 1, 503, unavailable, what, "the provider rate"
                        " limits this server (or its quota is spent)");
    } else if (status == 408 || status >= 500) {
        provider_failed(r, 1, 503, unavailable, what, "the provider is"
                        " failing or overloaded");
    } else if (status == 404) {
        provider_failed(r, 0, 502, refused, what, "check provider.url (the"
                        " API's base, e.g. https://api.openai.com/v1) and"
                        " provider.model");
    } else if (status >= 400) {
        provider_failed(r, 0, 502, refused, what, "check provider.model and"
                        " provider.max_tokens");
    } else {
        provider_failed(r, 0, 502, nonsense, what, "is provider.url an"
                        " OpenAI-compatible /v1 API?");
    }
}


/* a whole (unstreamed) answer in r->raw: its content as one token */
static void
provider_json(chat_reply_t *r)
{
    json_t      *body, *choice, *content, *err, *finish;
    const char  *why;

    body = json_loadb(r->raw.s ? r->raw.s : "", r->raw.len, 0, NULL);
    choice = json_array_get(json_object_get(body, "choices"), 0);
    content = json_object_get(json_object_get(choice, "message"),
                              "content");
    err = json_object_get(body, "error");

    if (body == NULL || (err != NULL && !json_is_null(err))
        || !json_is_string(content))
    {
        r->broken = 1;
        why = body == NULL ? "an answer that is not JSON"
              : err != NULL && !json_is_null(err) ? "an error in the answer"
              : "an answer without choices[0].message.content";
        snprintf(r->why, sizeof(r->why), "%s", why);
        json_decref(body);
        return;
    }

    r->finished = 1;
    finish = json_object_get(choice, "finish_reason");
    if (json_is_string(finish)
        && strcmp(json_string_value(finish), "length") == 0)
    {
        r->cut_short = 1;
    }
    if (json_string_length(content) > 0) {
        (void) chat_reply_token(r, json_string_value(content),
                                json_string_length(content));
    }
    json_decref(body);
}


/* before the first token: a retry if allowed and worth it, else the end */
static void
provider_failed(chat_reply_t *r, int retry, int status, const char *detail,
    const char *what, const char *hint)
{
    long            wait, ra_ms;
    int64_t         now;
    chat_engine_t  *e = r->engine;

    if (retry && r->tokens == 0 && r->attempt < e->retries) {
        wait = e->backoff_ms << (r->attempt < 10 ? r->attempt : 10);
        if (wait > BACKOFF_MAX_MS) {
            wait = BACKOFF_MAX_MS;
        }
        wait = provider_jitter(e, wait);
        ra_ms = r->retry_after >= 0 ? r->retry_after * 1000 : -1;
        now = chat_now_ms();

        if (ra_ms > e->retry_after_max_ms) {
            chat_reply_log(r, ENC_LOG_WARN, "chat: provider: %s; it asks to"
                           " wait %ld s, past provider.retry_after_max_ms:"
                           " answering %d (%s)", what, r->retry_after,
                           status, hint);
            goto done;
        }
        if (ra_ms > wait) {
            wait = ra_ms;
        }
        if (now + wait < r->total_deadline) {
            chat_reply_log(r, ENC_LOG_WARN, "chat: provider \"%s\": %s;"
                           " retry %ld of %ld (provider.retries) in %ld ms"
                           " — %s", e->url_log, what, (long) r->attempt + 1,
                           e->retries, wait, hint);
            enc_metrics_counter_add("encore_chat_provider_retries_total",
                "Attempts at the provider repeated before a first token", 1);
            r->attempt++;
            r->phase = CHAT_PHASE_WAIT;
            r->timer = now + wait;
            return;
        }
    }

    chat_reply_log(r, ENC_LOG_WARN, "chat: provider \"%s\": %s%s; answering"
                   " %d — %s", e->url_log, what,
                   r->attempt ? " (after its retries)" : "", status, hint);

done:
    chat_reply_finish(r, status, enc_http_reason(status), detail,
                      status == 503 ? r->retry_after : -1, 0);
}


/* between half of wait and all of it: workers that failed together do
   not retry together */
static long
provider_jitter(chat_engine_t *e, long wait)
{
    uint64_t  x;

    if (wait < 2) {
        return wait;
    }
    if (e->rng == 0) {
        if (getrandom(&e->rng, sizeof(e->rng), 0) != sizeof(e->rng)
            || e->rng == 0)
        {
            e->rng = (uint64_t) chat_now_ms() * 0x9e3779b97f4a7c15ULL + 1;
        }
    }
    /* xorshift64 */
    x = e->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    e->rng = x;
    return wait / 2 + (long) (x % (uint64_t) (wait / 2 + 1));
}


/* url without its user:pass@, if it has one, for the log (malloc'd) */
static char *
provider_url_log(const char *url)
{
    char        *out;
    const char  *host, *at, *slash;

    host = strstr(url, "://");
    host = host ? host + 3 : url;
    slash = strchr(host, '/');
    at = memchr(host, '@', slash ? (size_t) (slash - host) : strlen(host));
    if (at == NULL) {
        return strdup(url);
    }
    if (asprintf(&out, "%.*s***@%s", (int) (host - url), url, at + 1) < 0) {
        return NULL;
    }
    return out;
}


/* masks the key, and anything shaped like an OpenAI key, in s */
static void
provider_redact(chat_engine_t *e, char *s)
{
    char    *p;
    size_t   n, klen;

    if (e->key && (klen = strlen(e->key)) >= 4) {
        while ((p = strstr(s, e->key)) != NULL) {
            memset(p, '*', klen);
        }
    }

    for (p = s; (p = strstr(p, "sk-")) != NULL; p += 3) {
        for (n = 3; isalnum((unsigned char) p[n]) || p[n] == '-'
                    || p[n] == '_'; n++)
        {
            if (n >= 6) {
                p[n] = '*';
            }
        }
    }
}


static const char *
provider_curl_hint(CURLcode res)
{
    switch (res) {
    case CURLE_OK:
        return "the provider closed the connection early";
    case CURLE_COULDNT_RESOLVE_HOST:
        return "check the host name in provider.url";
    case CURLE_COULDNT_CONNECT:
        return "is the model server running and listening where"
               " provider.url says?";
    case CURLE_OPERATION_TIMEDOUT:
        return "no connection within provider.connect_timeout_ms: check"
               " the network, or raise it";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
        return "TLS failed: check the provider's certificate and the CA"
               " certificates installed (ca-certificates)";
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
        return "the provider closed the connection: is it overloaded or"
               " restarting?";
    case CURLE_UNSUPPORTED_PROTOCOL:
        return "provider.url must be http:// or https://";
    default:
        return "see libcurl's message";
    }
}
