/*
 * stream: answers a handler gives later, from any thread — a whole JSON
 * answer once a slow producer has it, or a body streamed piece by piece
 * (Server-Sent Events) — without holding one of libmicrohttpd's few pool
 * threads while it waits.
 *
 * A handler calls enc_resp_defer() and returns.  The connection is
 * suspended (MHD_suspend_connection): no pool thread waits on it.  The
 * producer, on a thread of its own, then finishes the answer with exactly
 * one terminal call:
 *
 *   enc_defer_json() / enc_defer_problem()     a buffered answer, or
 *   enc_defer_stream_begin(), enc_defer_write() ..., enc_defer_end()
 *                                               a streamed one.
 *
 * The terminal call (json, problem, end) also releases the producer's
 * reference: the handle must not be used after it.  Every call is
 * thread-safe.
 *
 * Cancellation: when the client goes away before the terminal call (or
 * the worker stops and its drain times out), the on_cancel function runs
 * once, on a libmicrohttpd thread; it must not block (set a flag, wake the
 * producer).  From then on writes return -1 and the answer is discarded,
 * but the producer still makes its terminal call to release the handle.
 *
 * Headers (status, Content-Type, enc_defer_header()) are sent with the
 * first byte of the answer, so a producer that fails before its first
 * token can still answer a problem with its own status.
 */
#ifndef ENC_STREAM_H
#define ENC_STREAM_H

#include <stddef.h>
#include <jansson.h>

#include "http.h"

typedef struct enc_defer_s  enc_defer_t;

/* In a handler: the answer comes later.  NULL when it cannot be deferred
   (out of memory, the worker draining): the handler then answers as
   usual, a 503 say.  After a non-NULL return the handler sets no response
   on w and returns. */
enc_defer_t *enc_resp_defer(enc_req_t *r, enc_resp_t *w);

/* the request's id, for the producer's log lines (valid until the
   terminal call) */
const char *enc_defer_request_id(enc_defer_t *d);

/* Set before anything can cancel (right after enc_resp_defer, on the
   handler's thread).  fn(arg) runs at most once. */
void enc_defer_on_cancel(enc_defer_t *d, void (*fn)(void *arg), void *arg);
int  enc_defer_cancelled(enc_defer_t *d);          /* 1 once cancelled */

/* a header for the answer, before the terminal call or stream_begin
   (copied; may repeat; CR/LF refused as enc_resp_header does) */
void enc_defer_header(enc_defer_t *d, const char *name, const char *value);

/* terminal: a buffered answer (body stolen), as enc_resp_json does */
void enc_defer_json(enc_defer_t *d, int status, json_t *body);
void enc_defer_problem(enc_defer_t *d, int status, const char *title,
    const char *detail);

/* A streamed body: status and content type now, the bytes as they come.
   The answer is sent without Content-Length (chunked) and with
   X-Accel-Buffering: no (nginx relays each piece at once).
   enc_defer_write copies; it returns 0, or -1 once cancelled or when the
   client reads too slowly and more than http.stream_buffer bytes wait
   (then the stream is cancelled: on_cancel runs).  enc_defer_end is
   terminal. */
int  enc_defer_stream_begin(enc_defer_t *d, int status,
    const char *content_type);
int  enc_defer_write(enc_defer_t *d, const char *data, size_t len);
void enc_defer_end(enc_defer_t *d);

#endif /* ENC_STREAM_H */
