/*
 * raw_http.h — a bare HTTP/1.1 client over a unix socket for the drain
 * tests, which need what libcurl hides: one keepalive connection held
 * across a quiesce, the exact response headers, and whether the server
 * closed the socket.  Header-only (static inline functions, each used by
 * only some of the tests that include it).
 */
#ifndef ENC_TEST_RAW_HTTP_H
#define ENC_TEST_RAW_HTTP_H

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>


/* a connected socket, or -1 */
static inline int
raw_connect(const char *path)
{
    int                 fd;
    struct sockaddr_un  sa;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}


/* "GET <path>" on fd; 0 or -1 */
static inline int
raw_send_get(int fd, const char *path)
{
    char     req[512];
    int      n;
    ssize_t  w;

    n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n"
                 "\r\n", path);
    w = send(fd, req, (size_t) n, MSG_NOSIGNAL);
    return w == n ? 0 : -1;
}


static inline long
raw_ms_since(const struct timespec *t)
{
    struct timespec  now;

    (void) clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t->tv_sec) * 1000
           + (now.tv_nsec - t->tv_nsec) / 1000000;
}


/* reads up to cap - 1 bytes within ms; returns the count read, 0 at EOF,
   -1 on error (errno), -2 on timeout */
static inline ssize_t
raw_read(int fd, char *buf, size_t cap, long ms)
{
    int            rc;
    struct pollfd  pfd = { fd, POLLIN, 0 };

    rc = poll(&pfd, 1, ms < 0 ? 0 : (int) ms);
    if (rc == 0) {
        return -2;
    }
    if (rc < 0) {
        return -1;
    }
    return recv(fd, buf, cap - 1, 0);
}


/*
 * Reads one response (headers and a Content-Length body) within ms into
 * buf (NUL-terminated, headers included).  Returns the status code, or -1.
 */
static inline int
raw_response(int fd, char *buf, size_t cap, long ms)
{
    char             *end, *cl;
    size_t            len = 0, want;
    ssize_t           n;
    struct timespec   start;

    (void) clock_gettime(CLOCK_MONOTONIC, &start);
    buf[0] = '\0';
    for ( ;; ) {
        end = strstr(buf, "\r\n\r\n");
        if (end != NULL) {
            cl = strcasestr(buf, "\r\nContent-Length:");
            want = (size_t) (end + 4 - buf)
                   + (cl != NULL && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
            if (len >= want) {
                return strncmp(buf, "HTTP/1.1 ", 9) == 0 ? atoi(buf + 9) : -1;
            }
        }
        if (len + 1 >= cap || raw_ms_since(&start) >= ms) {
            return -1;
        }
        n = raw_read(fd, buf + len, cap - len, ms - raw_ms_since(&start));
        if (n <= 0) {
            return -1;
        }
        len += (size_t) n;
        buf[len] = '\0';
    }
}


/* 1 if the server closes fd (EOF or reset) within ms, without sending
   anything more */
static inline int
raw_closed_within(int fd, long ms)
{
    char     buf[256];
    ssize_t  n;

    n = raw_read(fd, buf, sizeof(buf), ms);
    return n == 0 || (n == -1 && errno == ECONNRESET);
}

#endif /* ENC_TEST_RAW_HTTP_H */
