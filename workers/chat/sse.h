/*
 * sse: the provider's streamed answer, parsed as it arrives.
 *
 * Server-Sent Events framing (lines ended by LF, CR or CRLF; "data:"
 * fields, several joined by LF; ":" comments; an event ends at a blank
 * line), then each event's data read as an OpenAI chat.completion.chunk:
 *
 *   data: {"choices":[{"delta":{"content":"Hel"}}]}     -> TOKEN "Hel"
 *   data: {"choices":[{"delta":{},"finish_reason":"stop"}]} -> FINISH "stop"
 *   data: {"error":{"message":"..."}}                     -> ERROR
 *   data: [DONE]                                          -> DONE
 *   data: {not json                                       -> MALFORMED
 *
 * Chunks that carry nothing for the reader (a role, usage, an empty
 * content, a reasoning delta) produce no callback.  Only choice 0 counts.
 *
 * Bounded: a line or an event's data longer than max bytes stops the
 * parser (MALFORMED, then every feed returns -1).  Input is taken in
 * pieces of any size, split anywhere; the parser copies what it keeps.
 * No I/O, no logging, no global state: the fuzzer drives it alone.
 */
#ifndef CHAT_SSE_H
#define CHAT_SSE_H

#include <stddef.h>

typedef enum {
    CHAT_SSE_TOKEN,       /* text: a piece of the reply (UTF-8, no NUL) */
    CHAT_SSE_FINISH,      /* text: the finish_reason ("stop", "length") */
    CHAT_SSE_DONE,        /* data: [DONE], the stream's end mark */
    CHAT_SSE_ERROR,       /* text: the provider's error message */
    CHAT_SSE_MALFORMED    /* text: what was wrong, for the log */
} chat_sse_kind_t;

/* text is valid during the call only.  Return 0 to go on, -1 to stop:
   the feed returns -1 at once and so does every later one. */
typedef int (*chat_sse_pt)(void *arg, chat_sse_kind_t kind,
    const char *text, size_t len);

typedef struct {
    chat_sse_pt   cb;
    void         *arg;
    size_t        max;        /* longest line, longest event data */
    char         *line;       /* the line being read */
    size_t        line_len;
    size_t        line_cap;
    char         *data;       /* the event being read: its data fields */
    size_t        data_len;
    size_t        data_cap;
    unsigned      has_data:1;
    unsigned      after_cr:1; /* a CR ended the last line: skip one LF */
    unsigned      started:1;  /* past a leading BOM */
    unsigned      stopped:1;
    unsigned      done:1;     /* [DONE] was seen */
    size_t        bom;        /* bytes of a leading BOM matched so far */
} chat_sse_t;

#define CHAT_SSE_MAX_DEFAULT  (256 * 1024)

void chat_sse_init(chat_sse_t *p, size_t max, chat_sse_pt cb, void *arg);
/* 0, or -1 once stopped (a callback said so, or a bound was passed) */
int  chat_sse_feed(chat_sse_t *p, const char *buf, size_t len);
/* 1 when [DONE] arrived */
int  chat_sse_done(const chat_sse_t *p);
/* frees what the parser holds; p may be fed again after chat_sse_init */
void chat_sse_free(chat_sse_t *p);

/* One event's data read as a chunk (what chat_sse_feed does with each):
   calls cb as above at most once per piece.  Exposed for tests. */
int  chat_sse_chunk(const char *data, size_t len, chat_sse_pt cb, void *arg);

#endif /* CHAT_SSE_H */
