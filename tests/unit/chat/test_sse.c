/*
 * Unit tests: workers/chat/sse.c — the provider's event stream, fed in
 * pieces of every size, and each chunk's reading.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../../workers/chat/sse.h"


/* what the callbacks saw, as text: "T:Hel|T:lo|F:stop|D|" */
typedef struct {
    char    out[8192];
    size_t  len;
    int     stop_at;       /* return -1 on this callback (1-based), 0 never */
    int     calls;
} seen_t;


static int
record(void *arg, chat_sse_kind_t kind, const char *text, size_t len)
{
    seen_t      *s = arg;
    const char  *tag;

    tag = kind == CHAT_SSE_TOKEN ? "T:" : kind == CHAT_SSE_FINISH ? "F:"
          : kind == CHAT_SSE_DONE ? "D" : kind == CHAT_SSE_ERROR ? "E:"
          : "M:";
    s->len += (size_t) snprintf(s->out + s->len, sizeof(s->out) - s->len,
                                "%s%.*s|", tag,
                                kind == CHAT_SSE_DONE ? 0 : (int) len, text);
    assert_true(s->len < sizeof(s->out));
    assert_int_equal(strlen(text), len);
    s->calls++;
    return s->stop_at == s->calls ? -1 : 0;
}


#define CHUNK(c)  "data: {\"choices\":[{\"delta\":{\"content\":\"" c "\"}}]}\n\n"

static const char  stream[] =
    ": a comment\n"
    "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n"
    CHUNK("Hel")
    CHUNK("lo \\u00e9\\\"")
    "event: message\r\nid: 7\r\n"
    "data: {\"choices\":[{\"delta\":{\"content\":\"\\n\"}}]}\r\n\r\n"
    "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\r\r"
    "data: {\"choices\":[],\"usage\":{\"total_tokens\":3}}\n\n"
    "data: [DONE]\n\n";

static const char  expect[] = "T:Hel|T:lo \xc3\xa9\"|T:\n|F:stop|D|";


static void
feed_split(const char *in, size_t len, size_t step, seen_t *s)
{
    chat_sse_t  p;
    size_t      i, n;

    memset(s, 0, sizeof(*s));
    chat_sse_init(&p, 0, record, s);
    for (i = 0; i < len; i += n) {
        n = len - i < step ? len - i : step;
        assert_int_equal(chat_sse_feed(&p, in + i, n), 0);
    }
    assert_true(chat_sse_done(&p));
    chat_sse_free(&p);
}


static void
test_whole_and_every_split(void **state)
{
    seen_t  s;
    size_t  step;

    (void) state;

    for (step = 1; step <= sizeof(stream); step++) {
        feed_split(stream, sizeof(stream) - 1, step, &s);
        assert_string_equal(s.out, expect);
    }
}


static void
test_bom_and_multiline_data(void **state)
{
    seen_t      s;
    chat_sse_t  p;
    const char  in[] = "\xef\xbb\xbf" "data: {\"choices\":\n"
                       "data: [{\"delta\":{\"content\":\"x\"}}]}\n\n"
                       "data:[DONE]\n\n";

    (void) state;

    feed_split(in, sizeof(in) - 1, 1, &s);
    assert_string_equal(s.out, "T:x|D|");

    /* a BOM's first byte not followed by the rest is data, not a BOM */
    memset(&s, 0, sizeof(s));
    chat_sse_init(&p, 0, record, &s);
    assert_int_equal(chat_sse_feed(&p, "\xef" "data: [DONE]\n\n", 15), 0);
    assert_false(chat_sse_done(&p));
    assert_string_equal(s.out, "");
    chat_sse_free(&p);
}


static void
test_malformed_chunks(void **state)
{
    seen_t  s;
    const char  in[] = CHUNK("a")
                       "data: {not json\n\n"
                       "data: [1,2]\n\n"
                       "data: {\"choices\":{}}\n\n"
                       "data: {\"choices\":[7]}\n\n"
                       "data: {\"choices\":[{\"delta\":\"x\"}]}\n\n"
                       "data: {\"choices\":[{\"delta\":{\"content\":5}}]}\n\n"
                       "data: {\"choices\":[{\"delta\":{\"content\":\"\\u0000\"}}]}\n\n"
                       "data:\n\n"
                       "data: {\"error\":{\"message\":\"overloaded\"}}\n\n"
                       "data: {\"error\":\"plain\"}\n\n"
                       "data: {\"error\":{}}\n\n"
                       CHUNK("b")
                       "data: [DONE]\n\n";

    (void) state;

    feed_split(in, sizeof(in) - 1, 3, &s);
    assert_string_equal(s.out,
        "T:a|M:a chunk that is not JSON|M:a chunk that is not a JSON object|"
        "M:a chunk whose choices are not an array|"
        "M:a chunk whose choice is not an object|"
        "M:a chunk whose delta is not an object|"
        "M:a chunk whose content is not a string|"
        "M:a chunk that is not JSON|"
        "E:overloaded|E:plain|E:|T:b|D|");
}


static void
test_callback_stops(void **state)
{
    seen_t      s;
    chat_sse_t  p;

    (void) state;

    memset(&s, 0, sizeof(s));
    s.stop_at = 2;
    chat_sse_init(&p, 0, record, &s);
    assert_int_equal(chat_sse_feed(&p, CHUNK("a") CHUNK("b") CHUNK("c"),
                                   3 * strlen(CHUNK("a"))), -1);
    assert_int_equal(chat_sse_feed(&p, CHUNK("d"), strlen(CHUNK("d"))), -1);
    assert_string_equal(s.out, "T:a|T:b|");
    chat_sse_free(&p);
}


static void
test_bounds(void **state)
{
    seen_t      s;
    chat_sse_t  p;
    char        big[300];
    size_t      i;

    (void) state;

    /* a line longer than the bound, arriving a byte at a time */
    memset(&s, 0, sizeof(s));
    chat_sse_init(&p, 64, record, &s);
    memset(big, 'x', sizeof(big));
    for (i = 0; i < sizeof(big); i++) {
        if (chat_sse_feed(&p, big + i, 1) != 0) {
            break;
        }
    }
    assert_int_equal(i, 64);
    assert_string_equal(s.out, "M:a line longer than the bound|");
    assert_int_equal(chat_sse_feed(&p, "\n\n", 2), -1);
    chat_sse_free(&p);

    /* an event's data over the bound in short lines */
    memset(&s, 0, sizeof(s));
    chat_sse_init(&p, 64, record, &s);
    for (i = 0; i < 20; i++) {
        if (chat_sse_feed(&p, "data: 0123456789\n", 17) != 0) {
            break;
        }
    }
    assert_int_equal(i, 5);
    assert_string_equal(s.out, "M:an event longer than the bound|");
    chat_sse_free(&p);

    /* exactly at the bound is fine */
    memset(&s, 0, sizeof(s));
    chat_sse_init(&p, 12, record, &s);
    assert_int_equal(chat_sse_feed(&p, "data: [DONE]\n\n", 14), 0);
    assert_true(chat_sse_done(&p));
    chat_sse_free(&p);
}


static void
test_no_done_mark(void **state)
{
    seen_t      s;
    chat_sse_t  p;

    (void) state;

    /* an event without its blank line is not dispatched */
    memset(&s, 0, sizeof(s));
    chat_sse_init(&p, 0, record, &s);
    assert_int_equal(chat_sse_feed(&p, CHUNK("a") "data: [DONE]\n",
                                   strlen(CHUNK("a")) + 13), 0);
    assert_false(chat_sse_done(&p));
    assert_string_equal(s.out, "T:a|");
    chat_sse_free(&p);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_whole_and_every_split),
        cmocka_unit_test(test_bom_and_multiline_data),
        cmocka_unit_test(test_malformed_chunks),
        cmocka_unit_test(test_callback_stops),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_no_done_mark),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
