/*
 * stream_int: what http.c and stream.c tell each other about deferred
 * answers (stream.h).  Internal to libencore: no worker includes it.
 */
#ifndef ENC_STREAM_INT_H
#define ENC_STREAM_INT_H

#include <microhttpd.h>
#include <time.h>

#include "http.h"
#include "stream.h"

/* libmicrohttpd's buffer for a streamed body sent without chunks (an
   HTTP/1.0 client; chunks are read straight into the connection's write
   buffer).  Allocated, zeroed, with every streamed response: small */
#define ENC_STREAM_BLOCK  1024

typedef struct {
    enc_http_t             *h;
    struct MHD_Connection  *conn;
    int                     fd;           /* the connection's socket */
    const char             *id;           /* the request's, borrowed */
    const char             *method;
    const char             *path;
    const char             *route;        /* metrics label */
    struct timespec         start;
    int                     log_requests;
    size_t                  stream_buffer;
} enc_http_defer_info_t;

/* http.c, for stream.c */
int   enc_http_defer_info(enc_req_t *r, enc_http_defer_info_t *out);
/* 0 once quiescing or stopping: enc_resp_defer refuses */
int   enc_http_deferrable(enc_http_t *h);
/* r is answered through d; w needs nothing more */
void  enc_http_deferred(enc_req_t *r, enc_resp_t *w, enc_defer_t *d);
enc_resp_t *enc_http_resp_new(void);
void  enc_http_resp_free(enc_resp_t *w);
int   enc_http_resp_status(enc_resp_t *w);
/* status and content type of a streamed answer, no body */
void  enc_http_resp_stream(enc_resp_t *w, int status, const char *ctype);
struct MHD_Response *enc_http_response(enc_http_t *h, enc_resp_t *w,
    const char *id, MHD_ContentReaderCallback crc, void *cls,
    MHD_ContentReaderFreeCallback crfc);
void  enc_http_account(const char *route, int builtin, const char *method,
    const char *path, int status, const struct timespec *start,
    int log_requests, const char *note);

/* stream.c, for http.c */
/* the access handler's call for a deferred request (its first, right
   after the handler, and each after a resume) */
enum MHD_Result enc_stream_serve(enc_defer_t *d);
/* MHD_OPTION_NOTIFY_COMPLETED: the connection is done with d */
void  enc_stream_completed(enc_defer_t *d,
    enum MHD_RequestTerminationCode toe);
/* cancels every deferred answer of h still open; returns their count */
int   enc_stream_cancel_all(enc_http_t *h);
/* deferred answers of h whose connection is open */
int   enc_stream_open(enc_http_t *h);
/* after MHD_stop_daemon: the watcher thread ends if nothing is open */
void  enc_stream_idle(void);

#endif /* ENC_STREAM_INT_H */
