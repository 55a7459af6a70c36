/*
 * sse.c — the provider's event stream, incrementally (sse.h).
 */

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sse.h"


static int sse_append(char **buf, size_t *len, size_t *cap, size_t max,
    const char *s, size_t n);
static int sse_line(chat_sse_t *p);
static int sse_dispatch(chat_sse_t *p);
static int sse_stop(chat_sse_t *p, const char *why);


void
chat_sse_init(chat_sse_t *p, size_t max, chat_sse_pt cb, void *arg)
{
    memset(p, 0, sizeof(*p));
    p->cb = cb;
    p->arg = arg;
    p->max = max ? max : CHAT_SSE_MAX_DEFAULT;
}


void
chat_sse_free(chat_sse_t *p)
{
    free(p->line);
    free(p->data);
    p->line = p->data = NULL;
    p->line_len = p->line_cap = p->data_len = p->data_cap = 0;
}


int
chat_sse_done(const chat_sse_t *p)
{
    return p->done;
}


int
chat_sse_feed(chat_sse_t *p, const char *buf, size_t len)
{
    static const char  bom[3] = { '\xef', '\xbb', '\xbf' };
    const char        *end, *nl;

    if (p->stopped) {
        return -1;
    }

    end = buf + len;

    /* a byte order mark may open the stream (and only there) */
    while (!p->started && buf < end) {
        if (*buf != bom[p->bom]) {
            p->started = 1;
            if (p->bom > 0
                && sse_append(&p->line, &p->line_len, &p->line_cap, p->max,
                              bom, p->bom) != 0)
            {
                return sse_stop(p, "a line longer than the bound");
            }
            break;
        }
        buf++;
        if (++p->bom == sizeof(bom)) {
            p->started = 1;
        }
    }

    while (buf < end) {
        if (p->after_cr) {
            p->after_cr = 0;
            if (*buf == '\n') {
                buf++;
                continue;
            }
        }

        for (nl = buf; nl < end && *nl != '\n' && *nl != '\r'; nl++) {
            /* void */
        }

        if (sse_append(&p->line, &p->line_len, &p->line_cap, p->max,
                       buf, (size_t) (nl - buf)) != 0)
        {
            return sse_stop(p, "a line longer than the bound");
        }

        if (nl == end) {
            break;
        }

        p->after_cr = (*nl == '\r');
        buf = nl + 1;

        if (sse_line(p) != 0) {
            p->stopped = 1;
            return -1;
        }
        p->line_len = 0;
    }

    return 0;
}


/* one whole line in p->line (without its end) */
static int
sse_line(chat_sse_t *p)
{
    const char  *value;
    size_t       nlen, vlen;

    if (p->line_len == 0) {
        return sse_dispatch(p);
    }

    if (p->line[0] == ':') {
        return 0;
    }

    value = memchr(p->line, ':', p->line_len);
    if (value == NULL) {
        nlen = p->line_len;
        value = p->line + p->line_len;
        vlen = 0;

    } else {
        nlen = (size_t) (value - p->line);
        value++;
        vlen = p->line_len - nlen - 1;
        if (vlen > 0 && *value == ' ') {
            value++;
            vlen--;
        }
    }

    if (nlen == 4 && memcmp(p->line, "data", 4) == 0) {
        if (p->has_data
            && sse_append(&p->data, &p->data_len, &p->data_cap, p->max,
                          "\n", 1) != 0)
        {
            return sse_stop(p, "an event longer than the bound");
        }
        if (sse_append(&p->data, &p->data_len, &p->data_cap, p->max,
                       value, vlen) != 0)
        {
            return sse_stop(p, "an event longer than the bound");
        }
        p->has_data = 1;
    }

    /* event:, id:, retry: and unknown fields change nothing here */
    return 0;
}


static int
sse_dispatch(chat_sse_t *p)
{
    size_t  len;

    if (!p->has_data) {
        return 0;
    }

    len = p->data_len;
    p->data_len = 0;
    p->has_data = 0;

    if (len == 6 && memcmp(p->data, "[DONE]", 6) == 0) {
        p->done = 1;
        return p->cb(p->arg, CHAT_SSE_DONE, "", 0);
    }

    if (len == 0) {
        return 0;                        /* "data:" alone: a keep-alive */
    }

    return chat_sse_chunk(p->data, len, p->cb, p->arg);
}


static int
sse_stop(chat_sse_t *p, const char *why)
{
    p->stopped = 1;
    (void) p->cb(p->arg, CHAT_SSE_MALFORMED, why, strlen(why));
    return -1;
}


int
chat_sse_chunk(const char *data, size_t len, chat_sse_pt cb, void *arg)
{
    int           rc;
    json_t       *root, *choices, *choice, *delta, *content, *err, *msg;
    json_t       *finish;
    const char   *why;
    json_error_t  jerr;

    root = json_loadb(data, len, 0, &jerr);
    if (root == NULL) {
        why = "a chunk that is not JSON";
        return cb(arg, CHAT_SSE_MALFORMED, why, strlen(why));
    }

    rc = 0;

    if (!json_is_object(root)) {
        why = "a chunk that is not a JSON object";
        rc = cb(arg, CHAT_SSE_MALFORMED, why, strlen(why));
        goto done;
    }

    err = json_object_get(root, "error");
    if (err != NULL && !json_is_null(err)) {
        msg = json_is_object(err) ? json_object_get(err, "message") : err;
        if (json_is_string(msg)) {
            rc = cb(arg, CHAT_SSE_ERROR, json_string_value(msg),
                    json_string_length(msg));
        } else {
            rc = cb(arg, CHAT_SSE_ERROR, "", 0);
        }
        goto done;
    }

    choices = json_object_get(root, "choices");
    if (choices == NULL || json_is_null(choices)) {
        goto done;                       /* usage, or something else */
    }
    if (!json_is_array(choices)) {
        why = "a chunk whose choices are not an array";
        rc = cb(arg, CHAT_SSE_MALFORMED, why, strlen(why));
        goto done;
    }

    choice = json_array_get(choices, 0);
    if (choice == NULL) {
        goto done;                       /* the usage chunk: choices [] */
    }
    if (!json_is_object(choice)) {
        why = "a chunk whose choice is not an object";
        rc = cb(arg, CHAT_SSE_MALFORMED, why, strlen(why));
        goto done;
    }

    delta = json_object_get(choice, "delta");
    if (delta != NULL && !json_is_null(delta)) {
        if (!json_is_object(delta)) {
            why = "a chunk whose delta is not an object";
            rc = cb(arg, CHAT_SSE_MALFORMED, why, strlen(why));
            goto done;
        }
        content = json_object_get(delta, "content");
        if (content != NULL && !json_is_null(content)
            && !json_is_string(content))
        {
            why = "a chunk whose content is not a string";
            rc = cb(arg, CHAT_SSE_MALFORMED, why, strlen(why));
            goto done;
        }
        if (json_string_length(content) > 0) {
            rc = cb(arg, CHAT_SSE_TOKEN, json_string_value(content),
                    json_string_length(content));
            if (rc != 0) {
                goto done;
            }
        }
    }

    finish = json_object_get(choice, "finish_reason");
    if (json_is_string(finish)) {
        rc = cb(arg, CHAT_SSE_FINISH, json_string_value(finish),
                json_string_length(finish));
    }

done:
    json_decref(root);
    return rc;
}


/* appends n bytes to a buffer kept NUL-terminated; -1 past max */
static int
sse_append(char **buf, size_t *len, size_t *cap, size_t max,
    const char *s, size_t n)
{
    size_t  want;
    char   *nb;

    if (n > max || *len > max - n) {
        return -1;
    }

    want = *len + n + 1;
    if (want > *cap) {
        want = want < 256 ? 256 : want;
        if (*cap * 2 > want) {
            want = *cap * 2;
        }
        if (want > max + 1) {
            want = max + 1;
        }
        nb = realloc(*buf, want);
        if (nb == NULL) {
            return -1;
        }
        *buf = nb;
        *cap = want;
    }

    if (n > 0) {
        memcpy(*buf + *len, s, n);
    }
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}
