/*
 * log: JSON lines on stderr.
 *
 *   {"ts":"2026-11-26T03:16:08.123Z","level":"info","worker":"auth",
 *    "msg":"...","request_id":"..."}
 *
 * One write(2) per line, so lines from concurrent threads never interleave.
 * The request id is thread-local: the HTTP layer sets it on the handler's
 * thread for the duration of a request.
 */
#ifndef ENC_LOG_H
#define ENC_LOG_H

#include <stddef.h>

typedef enum {
    ENC_LOG_DEBUG,
    ENC_LOG_INFO,
    ENC_LOG_WARN,
    ENC_LOG_ERROR
} enc_log_level_t;

#define ENC_LOG_REQUEST_ID_MAX  128   /* longer ids are truncated */
#define ENC_LOG_LINE_MAX        8192  /* longer messages are truncated */

/* worker is copied; may be called again to change the level */
void enc_log_init(const char *worker, enc_log_level_t min);
int  enc_log_level_parse(const char *s, enc_log_level_t *out);
void enc_log(enc_log_level_t lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* thread-local, copied (truncated to ENC_LOG_REQUEST_ID_MAX); NULL clears */
void enc_log_set_request_id(const char *id);
/* thread-local or NULL */
const char *enc_log_request_id(void);

/*
 * Appends s as the contents of a JSON string (without the quotes) to
 * buf[*pos..cap), escaping quotes, backslashes, control characters and
 * invalid UTF-8 (replaced by U+FFFD).  Never writes past cap-1; *pos is
 * advanced; the buffer stays NUL-terminated.  Exposed for tests.
 */
void enc_log_json_escape(char *buf, size_t cap, size_t *pos, const char *s);

/* test hook: write lines to fd instead of 2 (stderr) */
void enc_log_set_fd(int fd);

/*
 * log.file: opens path (append, created 0640) onto the log descriptor
 * (stderr unless enc_log_set_fd changed it) with dup2, so that every
 * thread, and anything else writing to stderr, writes there.  NULL or ""
 * keeps the descriptor as inherited.  Call before threads start.
 */
int enc_log_open(const char *path);
/*
 * Opens log.file again (SIGUSR1, after the file was renamed by log
 * rotation): a line "log: reopening" goes to the old file, "log:
 * reopened" to the new one.  On failure the old file stays in use (and
 * the error is logged to it).  0 without a log.file.
 */
int enc_log_reopen(void);

#define enc_log_debug(...)  enc_log(ENC_LOG_DEBUG, __VA_ARGS__)
#define enc_log_info(...)   enc_log(ENC_LOG_INFO, __VA_ARGS__)
#define enc_log_warn(...)   enc_log(ENC_LOG_WARN, __VA_ARGS__)
#define enc_log_error(...)  enc_log(ENC_LOG_ERROR, __VA_ARGS__)

#endif /* ENC_LOG_H */
