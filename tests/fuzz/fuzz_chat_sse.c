/*
 * libFuzzer harness for the chat provider's event stream parser
 * (workers/chat/sse.c).  The input is the stream; it is fed whole, then
 * again in pieces whose sizes come from the input's own bytes.  Whatever
 * it holds, the parser must not crash nor read or keep more than its
 * bound, and both feedings must give the same callbacks in the same order
 * (a piece boundary never changes what a stream means).
 *
 * auto/fuzz (make fuzz) builds it from this line:
 */
/* fuzz-sources: workers/chat/sse.c */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sse.h"


#define BOUND  4096


typedef struct {
    unsigned char  *log;
    size_t          len;
    size_t          cap;
} trace_t;


static int
trace(void *arg, chat_sse_kind_t kind, const char *text, size_t len)
{
    trace_t        *t = arg;
    size_t          need;
    unsigned char  *nb;

    if (strlen(text) != len && kind != CHAT_SSE_TOKEN) {
        abort();
    }
    if (kind == CHAT_SSE_TOKEN && (len == 0 || memchr(text, 0, len))) {
        abort();                 /* tokens are non-empty, without NUL */
    }
    if (len > BOUND) {
        abort();
    }

    need = t->len + 1 + sizeof(size_t) + len;
    if (need > t->cap) {
        t->cap = need * 2;
        nb = realloc(t->log, t->cap);
        if (nb == NULL) {
            abort();
        }
        t->log = nb;
    }
    t->log[t->len++] = (unsigned char) kind;
    memcpy(t->log + t->len, &len, sizeof(size_t));
    t->len += sizeof(size_t);
    memcpy(t->log + t->len, text, len);
    t->len += len;
    return 0;
}


static int
run(const uint8_t *data, size_t size, const uint8_t *steps, size_t nsteps,
    trace_t *t)
{
    size_t      i, n, k;
    chat_sse_t  p;
    int         rc, done;

    chat_sse_init(&p, BOUND, trace, t);
    rc = 0;
    for (i = 0, k = 0; i < size && rc == 0; i += n, k++) {
        n = nsteps ? (size_t) steps[k % nsteps] % 17 + 1 : size;
        if (n > size - i) {
            n = size - i;
        }
        rc = chat_sse_feed(&p, (const char *) data + i, n);
    }
    if (p.line_cap > BOUND + 1 || p.data_cap > BOUND + 1) {
        abort();
    }
    done = chat_sse_done(&p);
    chat_sse_free(&p);
    return rc * 2 + done;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    trace_t  whole, split;
    int      a, b;

    memset(&whole, 0, sizeof(whole));
    memset(&split, 0, sizeof(split));

    a = run(data, size, NULL, 0, &whole);
    b = run(data, size, data, size < 8 ? size : 8, &split);

    if (a != b || whole.len != split.len
        || (whole.len && memcmp(whole.log, split.log, whole.len) != 0))
    {
        abort();
    }

    free(whole.log);
    free(split.log);
    return 0;
}
