/*
 * tests/bench/views/vclient.c — a closed-loop HTTP/1.1 client that times a
 * sequence of dependent calls as one sample (issue 9, item 6).
 *
 *     vclient -p PORT -f PLAN [-c CLIENTS] [-d SECONDS] [-m seq|par]
 *             [-H "Name: value"]... [-s SAMPLES_FILE]
 *
 * PLAN has one request per line, "STAGE PATH" (STAGE 1, 2, ...; "#"
 * starts a comment).  One iteration of a client is the whole plan:
 *
 *   seq  every request one after the other, on one keep-alive connection
 *   par  the requests of a stage at the same time, each on its own
 *        keep-alive connection; the next stage starts when every answer
 *        of the stage is in (a client cannot build the second stage's
 *        URIs before the first stage's answers)
 *
 * CLIENTS clients run the plan in a loop for SECONDS (no new iteration
 * starts after that), all on one thread with epoll.  A sample is the time
 * from an iteration's first byte sent to its last answer's last byte
 * received (CLOCK_MONOTONIC).  Prints one line:
 *
 *   iterations requests seconds p50_us p90_us p99_us mean_us max_us
 *   non2xx body_bytes_per_iteration
 *
 * Answers are read completely (Content-Length or chunked) and their
 * bodies are not parsed: the plan's URIs are resolved beforehand by the
 * run script, from the same data, so a client here does the network part
 * of the work and none of the JSON.  Any non-2xx answer is counted (the
 * first is shown on stderr); a connection the server closes is reopened.
 */

#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>


#define MAX_REQS     64
#define MAX_STAGES   8
#define MAX_HEADERS  8


typedef struct {
    int     stage;
    char   *req;          /* the whole request text */
    size_t  req_len;
} plan_req_t;


typedef struct client_s  client_t;

typedef struct {
    client_t  *client;
    int        fd;
    int        busy;
    char      *buf;
    size_t     len, cap;
} conn_t;


struct client_s {
    conn_t    *conns;
    int        nconns;
    int        next;          /* seq: the next request; par: the stage */
    int        pending;
    int        active;
    uint64_t   start_ns;
    size_t     bytes;
};


static plan_req_t   reqs[MAX_REQS];
static int          nreqs;
static int          nstages;
static int          par;
static int          port;
static int          ep;
static uint64_t     *samples;
static size_t       nsamples, samples_cap;
static uint64_t     nrequests, non2xx, body_bytes;
static int          shown_error;


static uint64_t
now_ns(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + ts.tv_nsec;
}


static void
die(const char *what)
{
    perror(what);
    exit(1);
}


static int
conn_open(conn_t *c)
{
    int                 fd, one = 1;
    struct sockaddr_in  sa;
    struct epoll_event  ev;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        die("socket");
    }

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == -1) {
        die("connect");
    }

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    if (fcntl(fd, F_SETFL, O_NONBLOCK) == -1) {
        die("fcntl");
    }

    ev.events = EPOLLIN;
    ev.data.ptr = c;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
        die("epoll_ctl");
    }

    c->fd = fd;
    c->len = 0;
    return 0;
}


static void
conn_reopen(conn_t *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    conn_open(c);
}


static void
conn_send(conn_t *c, const plan_req_t *r)
{
    size_t   off = 0;
    ssize_t  n;

    /* a request of a few hundred bytes always fits an idle socket's buffer */
    while (off < r->req_len) {
        n = write(c->fd, r->req + off, r->req_len - off);
        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }
            die("write");
        }
        off += n;
    }

    c->busy = 1;
    c->len = 0;
    nrequests++;
}


/*
 * Whether c->buf holds a complete answer: returns its length (and its
 * status, body size, whether the server closes) or 0 when more is needed.
 */
static size_t
answer_complete(conn_t *c, int *status, size_t *body, int *closing)
{
    char    *end, *p, *line, *next, *hdr_end;
    size_t   hlen, clen = 0, pos, csize;
    int      chunked = 0, have_len = 0;

    if (c->len < 12) {
        return 0;
    }

    end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (end == NULL) {
        return 0;
    }

    hlen = end + 4 - c->buf;
    hdr_end = end;
    *status = atoi(c->buf + 9);
    *closing = 0;

    line = memchr(c->buf, '\n', hlen) + 1;
    while (line < hdr_end) {
        next = memchr(line, '\n', hdr_end + 2 - line);
        if (next == NULL) {
            break;
        }
        if (strncasecmp(line, "Content-Length:", 15) == 0) {
            clen = strtoul(line + 15, NULL, 10);
            have_len = 1;
        } else if (strncasecmp(line, "Transfer-Encoding:", 18) == 0) {
            chunked = memmem(line, next - line, "chunked", 7) != NULL;
        } else if (strncasecmp(line, "Connection:", 11) == 0) {
            *closing = memmem(line, next - line, "close", 5) != NULL;
        }
        line = next + 1;
    }

    if (*status == 204 || *status == 304) {
        *body = 0;
        return hlen;
    }

    if (!chunked) {
        if (!have_len) {
            fprintf(stderr, "vclient: an answer without a length\n");
            exit(1);
        }
        if (c->len < hlen + clen) {
            return 0;
        }
        *body = clen;
        return hlen + clen;
    }

    /* chunked: walk the chunks from the start of the body */
    pos = hlen;
    *body = 0;

    for ( ;; ) {
        p = memmem(c->buf + pos, c->len - pos, "\r\n", 2);
        if (p == NULL) {
            return 0;
        }
        csize = strtoul(c->buf + pos, NULL, 16);
        pos = p + 2 - c->buf;
        if (csize == 0) {
            /* no trailers expected: the last chunk then an empty line */
            if (c->len < pos + 2) {
                return 0;
            }
            return pos + 2;
        }
        if (c->len < pos + csize + 2) {
            return 0;
        }
        pos += csize + 2;
        *body += csize;
    }
}


static void
client_start(client_t *cl, uint64_t deadline)
{
    int  i;

    if (now_ns() >= deadline) {
        cl->active = 0;
        return;
    }

    cl->active = 1;
    cl->bytes = 0;
    cl->start_ns = now_ns();

    if (!par) {
        cl->next = 1;
        cl->pending = 1;
        conn_send(&cl->conns[0], &reqs[0]);
        return;
    }

    cl->next = 1;
    cl->pending = 0;
    for (i = 0; i < nreqs; i++) {
        if (reqs[i].stage == 1) {
            conn_send(&cl->conns[cl->pending++], &reqs[i]);
        }
    }
}


static void
client_answered(client_t *cl, uint64_t deadline)
{
    int  i, n;

    if (--cl->pending > 0) {
        return;
    }

    if (!par && cl->next < nreqs) {
        cl->pending = 1;
        conn_send(&cl->conns[0], &reqs[cl->next++]);
        return;
    }

    if (par && cl->next < nstages) {
        cl->next++;
        n = 0;
        for (i = 0; i < nreqs; i++) {
            if (reqs[i].stage == cl->next) {
                conn_send(&cl->conns[n++], &reqs[i]);
            }
        }
        cl->pending = n;
        return;
    }

    if (nsamples == samples_cap) {
        samples_cap = samples_cap ? samples_cap * 2 : 65536;
        samples = realloc(samples, samples_cap * sizeof(uint64_t));
        if (samples == NULL) {
            die("realloc");
        }
    }
    samples[nsamples++] = now_ns() - cl->start_ns;
    body_bytes += cl->bytes;

    client_start(cl, deadline);
}


static int
cmp_u64(const void *a, const void *b)
{
    uint64_t  x = *(const uint64_t *) a, y = *(const uint64_t *) b;

    return x < y ? -1 : x > y;
}


static double
pct(double p)
{
    size_t  i;

    i = (size_t) (p / 100.0 * nsamples);
    if (i >= nsamples) {
        i = nsamples - 1;
    }
    return samples[i] / 1000.0;
}


static void
usage(void)
{
    fprintf(stderr, "usage: vclient -p PORT -f PLAN [-c CLIENTS] [-d SECONDS]"
            " [-m seq|par] [-H 'Name: value']... [-s SAMPLES_FILE]\n");
    exit(2);
}


int
main(int argc, char **argv)
{
    int                  opt, nclients = 1, i, j, width[MAX_STAGES + 1];
    int                  nhdr = 0, maxw, stage, n, status, closing, active, eof;
    double               secs = 3, sum;
    char                 line[4096], path[4096], extra[2048];
    const char          *plan = NULL, *hdrs[MAX_HEADERS], *out = NULL;
    FILE                *f;
    client_t            *clients;
    conn_t              *c;
    uint64_t             t0, deadline;
    size_t               len, body;
    ssize_t              r;
    struct epoll_event   evs[256];

    while ((opt = getopt(argc, argv, "p:f:c:d:m:H:s:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'f': plan = optarg; break;
        case 'c': nclients = atoi(optarg); break;
        case 'd': secs = atof(optarg); break;
        case 'm':
            if (strcmp(optarg, "par") == 0) {
                par = 1;
            } else if (strcmp(optarg, "seq") != 0) {
                usage();
            }
            break;
        case 'H':
            if (nhdr == MAX_HEADERS) {
                usage();
            }
            hdrs[nhdr++] = optarg;
            break;
        case 's': out = optarg; break;
        default: usage();
        }
    }

    if (port <= 0 || plan == NULL || nclients < 1 || secs <= 0) {
        usage();
    }

    extra[0] = '\0';
    for (i = 0; i < nhdr; i++) {
        len = strlen(extra);
        snprintf(extra + len, sizeof(extra) - len, "%s\r\n", hdrs[i]);
    }

    f = fopen(plan, "r");
    if (f == NULL) {
        die(plan);
    }

    memset(width, 0, sizeof(width));
    while (fgets(line, sizeof(line), f)) {
        if (line[0] == '#' || line[0] == '\n') {
            continue;
        }
        if (sscanf(line, "%d %4095s", &stage, path) != 2
            || stage < 1 || stage > MAX_STAGES || nreqs == MAX_REQS)
        {
            fprintf(stderr, "vclient: bad plan line: %s", line);
            return 2;
        }
        if (nreqs > 0 && stage < reqs[nreqs - 1].stage) {
            fprintf(stderr, "vclient: stages out of order: %s", line);
            return 2;
        }
        n = snprintf(line, sizeof(line),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                     "Accept: application/json\r\n%s\r\n",
                     path, port, extra);
        reqs[nreqs].stage = stage;
        reqs[nreqs].req = strndup(line, n);
        reqs[nreqs].req_len = n;
        nreqs++;
        width[stage]++;
        if (stage > nstages) {
            nstages = stage;
        }
    }
    fclose(f);

    if (nreqs == 0) {
        fprintf(stderr, "vclient: empty plan\n");
        return 2;
    }

    maxw = 1;
    for (i = 1; i <= nstages; i++) {
        if (width[i] == 0) {
            fprintf(stderr, "vclient: stage %d is empty\n", i);
            return 2;
        }
        if (par && width[i] > maxw) {
            maxw = width[i];
        }
    }

    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep == -1) {
        die("epoll_create1");
    }

    clients = calloc(nclients, sizeof(client_t));
    for (i = 0; i < nclients; i++) {
        clients[i].nconns = maxw;
        clients[i].conns = calloc(maxw, sizeof(conn_t));
        for (j = 0; j < maxw; j++) {
            c = &clients[i].conns[j];
            c->client = &clients[i];
            c->cap = 65536;
            c->buf = malloc(c->cap);
            conn_open(c);
        }
    }

    t0 = now_ns();
    deadline = t0 + (uint64_t) (secs * 1e9);

    for (i = 0; i < nclients; i++) {
        client_start(&clients[i], deadline);
    }

    for ( ;; ) {
        active = 0;
        for (i = 0; i < nclients; i++) {
            active += clients[i].active;
        }
        if (active == 0) {
            break;
        }

        n = epoll_wait(ep, evs, 256, 10000);
        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }
            die("epoll_wait");
        }
        if (n == 0) {
            fprintf(stderr, "vclient: no answer for 10 s\n");
            return 1;
        }

        for (i = 0; i < n; i++) {
            c = evs[i].data.ptr;

            for ( ;; ) {
                if (c->cap - c->len < 16384) {
                    c->cap *= 2;
                    c->buf = realloc(c->buf, c->cap);
                    if (c->buf == NULL) {
                        die("realloc");
                    }
                }
                r = read(c->fd, c->buf + c->len, c->cap - c->len);
                if (r > 0) {
                    c->len += r;
                    continue;
                }
                if (r == -1 && errno == EINTR) {
                    continue;
                }
                break;
            }

            eof = (r == 0 || (r == -1 && errno != EAGAIN));

            if (!c->busy) {
                if (eof) {
                    conn_reopen(c);
                }
                continue;
            }

            /* the server may send its last answer and close at once
             * (keepalive_requests): the answer first, then the close */
            len = answer_complete(c, &status, &body, &closing);
            if (len == 0) {
                if (eof) {
                    fprintf(stderr, "vclient: the server closed a connection"
                            " mid-answer\n");
                    return 1;
                }
                continue;
            }
            if (len != c->len) {
                fprintf(stderr, "vclient: bytes after an answer\n");
                return 1;
            }

            if (status < 200 || status > 299) {
                non2xx++;
                if (!shown_error) {
                    shown_error = 1;
                    fprintf(stderr, "vclient: HTTP %d: %.*s\n", status,
                            (int) (c->len < 400 ? c->len : 400), c->buf);
                }
            }

            c->busy = 0;
            c->len = 0;
            c->client->bytes += body;
            if (closing || eof) {
                conn_reopen(c);
            }
            client_answered(c->client, deadline);
        }
    }

    secs = (now_ns() - t0) / 1e9;

    if (nsamples == 0) {
        fprintf(stderr, "vclient: no iteration completed\n");
        return 1;
    }

    if (out) {
        f = fopen(out, "w");
        if (f == NULL) {
            die(out);
        }
        for (len = 0; len < nsamples; len++) {
            fprintf(f, "%.1f\n", samples[len] / 1000.0);
        }
        fclose(f);
    }

    sum = 0;
    for (len = 0; len < nsamples; len++) {
        sum += samples[len];
    }
    qsort(samples, nsamples, sizeof(uint64_t), cmp_u64);

    printf("%zu %llu %.3f %.1f %.1f %.1f %.1f %.1f %llu %zu\n",
           nsamples, (unsigned long long) nrequests, secs,
           pct(50), pct(90), pct(99), sum / nsamples / 1000.0,
           samples[nsamples - 1] / 1000.0, (unsigned long long) non2xx,
           (size_t) (body_bytes / nsamples));

    return non2xx ? 3 : 0;
}
