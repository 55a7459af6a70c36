/*
 * log: JSON lines on stderr.  See log.h.
 *
 * log.file: the file is opened onto the log descriptor (stderr) with
 * dup2, and reopened the same way on SIGUSR1: a line is written whole to
 * the old file or whole to the new one, every thread keeps writing to the
 * same descriptor number, and whatever else writes to stderr (the
 * sanitizers, libraries) follows the file too.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"


static char             log_worker[64] = "encore";
static enc_log_level_t  log_min = ENC_LOG_INFO;
static int              log_fd = 2;
/* log.file; set before threads start, read by the thread that reopens */
static char             log_path[PATH_MAX];

/* the second the thread formatted last, and its text */
static __thread time_t  ts_sec = -1;
static __thread char    ts_text[24];

/* set once per request by the HTTP layer, read by every enc_log on that thread */
static __thread char    log_request_id[ENC_LOG_REQUEST_ID_MAX + 1];
static __thread int     log_request_id_set;

static const char *const level_names[] = { "debug", "info", "warn", "error" };


void
enc_log_init(const char *worker, enc_log_level_t min)
{
    if (worker != NULL) {
        snprintf(log_worker, sizeof(log_worker), "%s", worker);
    }
    log_min = min;
}


void
enc_log_set_fd(int fd)
{
    log_fd = fd;
}


/* opens path onto log_fd */
static int
open_onto_fd(const char *path)
{
    int  fd, rc = 0;

    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        enc_log_error("log: cannot open log.file \"%s\": %s", path,
                      strerror(errno));
        return -1;
    }
    if (fd != log_fd) {
        /* atomic: no write of another thread sees the descriptor closed */
        if (dup2(fd, log_fd) < 0) {
            enc_log_error("log: cannot redirect to \"%s\": %s", path,
                          strerror(errno));
            rc = -1;
        }
        close(fd);
    }
    return rc;
}


int
enc_log_open(const char *path)
{
    if (path == NULL || path[0] == '\0') {
        log_path[0] = '\0';
        return 0;
    }
    if (strlen(path) >= sizeof(log_path)) {
        enc_log_error("log: log.file is longer than %zu bytes",
                      sizeof(log_path) - 1);
        return -1;
    }
    if (open_onto_fd(path) != 0) {
        return -1;
    }
    strcpy(log_path, path);
    return 0;
}


int
enc_log_reopen(void)
{
    if (log_path[0] == '\0') {
        enc_log_info("log: no log.file to reopen");
        return 0;
    }
    enc_log_info("log: reopening \"%s\"", log_path);
    if (open_onto_fd(log_path) != 0) {
        return -1;                     /* logged; the old file stays */
    }
    enc_log_info("log: reopened \"%s\"", log_path);
    return 0;
}


int
enc_log_level_parse(const char *s, enc_log_level_t *out)
{
    size_t  i;

    if (s == NULL) {
        return -1;
    }
    for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enc_log_level_t) i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = ENC_LOG_WARN;
        return 0;
    }
    return -1;
}


void
enc_log_set_request_id(const char *id)
{
    if (id == NULL) {
        log_request_id[0] = '\0';
        log_request_id_set = 0;
        return;
    }
    snprintf(log_request_id, sizeof(log_request_id), "%s", id);
    log_request_id_set = 1;
}


const char *
enc_log_request_id(void)
{
    return log_request_id_set ? log_request_id : NULL;
}


/* length of a valid UTF-8 sequence at s, or 0 if invalid (RFC 3629) */
static size_t
utf8_seq_len(const unsigned char *s)
{
    unsigned char  c = s[0];

    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    }
    if (c >= 0xe0 && c <= 0xef) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80) {
            return 0;
        }
        if (c == 0xe0 && s[1] < 0xa0) {
            return 0;                   /* overlong */
        }
        if (c == 0xed && s[1] >= 0xa0) {
            return 0;                   /* surrogate */
        }
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80
            || (s[3] & 0xc0) != 0x80)
        {
            return 0;
        }
        if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90)) {
            return 0;
        }
        return 4;
    }
    return 0;
}


static void
put(char *buf, size_t cap, size_t *pos, const char *s, size_t n)
{
    if (*pos + n >= cap) {
        return;                         /* truncate at a whole token */
    }
    memcpy(buf + *pos, s, n);
    *pos += n;
    buf[*pos] = '\0';
}


void
enc_log_json_escape(char *buf, size_t cap, size_t *pos, const char *s)
{
    const unsigned char  *p = (const unsigned char *) s;
    char                  esc[8];
    size_t                n;

    if (cap == 0 || *pos >= cap) {
        return;
    }
    buf[*pos] = '\0';

    while (*p != '\0') {
        switch (*p) {
        case '"':  put(buf, cap, pos, "\\\"", 2); p++; continue;
        case '\\': put(buf, cap, pos, "\\\\", 2); p++; continue;
        case '\n': put(buf, cap, pos, "\\n", 2);  p++; continue;
        case '\r': put(buf, cap, pos, "\\r", 2);  p++; continue;
        case '\t': put(buf, cap, pos, "\\t", 2);  p++; continue;
        default:
            break;
        }
        if (*p < 0x20 || *p == 0x7f) {
            snprintf(esc, sizeof(esc), "\\u%04x", *p);
            put(buf, cap, pos, esc, 6);
            p++;
            continue;
        }
        n = utf8_seq_len(p);
        if (n == 0) {
            put(buf, cap, pos, "\\ufffd", 6);
            p++;
            continue;
        }
        put(buf, cap, pos, (const char *) p, n);
        p += n;
    }
}


void
enc_log(enc_log_level_t lvl, const char *fmt, ...)
{
    char            msg[ENC_LOG_LINE_MAX];
    char            line[ENC_LOG_LINE_MAX + 512];
    char            ms[6];
    unsigned        frac;
    size_t          pos = 0;
    ssize_t         n;
    va_list         ap;
    struct tm       tm;
    struct timeval  tv;

    if (lvl < log_min || lvl > ENC_LOG_ERROR) {
        return;
    }

    va_start(ap, fmt);
    (void) vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    /* the date and time change once a second: formatted once per second
       and thread */
    (void) gettimeofday(&tv, NULL);
    if (tv.tv_sec != ts_sec) {
        (void) gmtime_r(&tv.tv_sec, &tm);
        if (strftime(ts_text, sizeof(ts_text), "%Y-%m-%dT%H:%M:%S", &tm)
            == 0)
        {
            ts_text[0] = '\0';
        }
        ts_sec = tv.tv_sec;
    }
    frac = (unsigned) (tv.tv_usec / 1000) % 1000u;
    ms[0] = '.';
    ms[1] = (char) ('0' + frac / 100);
    ms[2] = (char) ('0' + frac / 10 % 10);
    ms[3] = (char) ('0' + frac % 10);
    ms[4] = 'Z';

    /* reserve 2 bytes for the closing "}\n" whatever gets truncated */
    line[0] = '\0';
    put(line, sizeof(line) - 2, &pos, "{\"ts\":\"", 7);
    put(line, sizeof(line) - 2, &pos, ts_text, strlen(ts_text));
    put(line, sizeof(line) - 2, &pos, ms, 5);
    put(line, sizeof(line) - 2, &pos, "\",\"level\":\"", 11);
    put(line, sizeof(line) - 2, &pos, level_names[lvl],
        strlen(level_names[lvl]));
    put(line, sizeof(line) - 2, &pos, "\",\"worker\":\"", 12);
    enc_log_json_escape(line, sizeof(line) - 2, &pos, log_worker);
    put(line, sizeof(line) - 2, &pos, "\",\"msg\":\"", 9);
    enc_log_json_escape(line, sizeof(line) - 64 - ENC_LOG_REQUEST_ID_MAX * 6,
                        &pos, msg);
    put(line, sizeof(line) - 2, &pos, "\"", 1);
    if (log_request_id_set) {
        put(line, sizeof(line) - 2, &pos, ",\"request_id\":\"", 15);
        enc_log_json_escape(line, sizeof(line) - 3, &pos, log_request_id);
        put(line, sizeof(line) - 2, &pos, "\"", 1);
    }
    line[pos++] = '}';
    line[pos++] = '\n';

    /* one write: lines of concurrent threads must not interleave */
    do {
        n = write(log_fd, line, pos);
    } while (n < 0 && errno == EINTR);
}
