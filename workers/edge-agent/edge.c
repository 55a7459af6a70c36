/*
 * edge.c — POST /internal/revocations to the local nginx, one libcurl
 * easy handle reused so that its connection is kept alive between posts
 * (a heartbeat a second must not cost a connection a second).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "agent.h"
#include "log.h"


#define ZONE_HEADER      "Encore-Revocation-Zone:"


struct agent_edge_s {
    CURL               *curl;
    struct curl_slist  *headers;
    char                zone[AGENT_ZONE_ID_MAX + 1];
};


/* the answer's Encore-Revocation-Zone, the id of the edge's zone */
static size_t
header_cb(char *buf, size_t size, size_t n, void *arg)
{
    size_t         len = size * n, hl = sizeof(ZONE_HEADER) - 1, i;
    agent_edge_t  *e = arg;
    const char    *v, *end;

    if (len > hl && strncasecmp(buf, ZONE_HEADER, hl) == 0) {
        v = buf + hl;
        end = buf + len;
        while (v < end && (*v == ' ' || *v == '\t')) {
            v++;
        }
        while (end > v && (end[-1] == '\r' || end[-1] == '\n'
                           || end[-1] == ' ' || end[-1] == '\t'))
        {
            end--;
        }
        for (i = 0; v + i < end && i < AGENT_ZONE_ID_MAX; i++) {
            e->zone[i] = v[i];
        }
        e->zone[i] = '\0';
    }
    return len;
}


/* the answer's body is a problem at most: read and dropped */
static size_t
body_cb(char *buf, size_t size, size_t n, void *arg)
{
    (void) buf;
    (void) arg;
    return size * n;
}


agent_edge_t *
agent_edge_new(const char *url, const char *socket, long timeout_ms)
{
    agent_edge_t  *e;

    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return NULL;
    }
    e->curl = curl_easy_init();
    e->headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (e->headers != NULL) {
        /* no 100-continue round trip for a large batch */
        e->headers = curl_slist_append(e->headers, "Expect:");
    }
    if (e->curl == NULL || e->headers == NULL) {
        agent_edge_free(e);
        return NULL;
    }

    if (curl_easy_setopt(e->curl, CURLOPT_URL, url) != CURLE_OK
        || curl_easy_setopt(e->curl, CURLOPT_HTTPHEADER, e->headers)
           != CURLE_OK
        || curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, timeout_ms)
           != CURLE_OK
        || curl_easy_setopt(e->curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms)
           != CURLE_OK
        || curl_easy_setopt(e->curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK
        || curl_easy_setopt(e->curl, CURLOPT_TCP_NODELAY, 1L) != CURLE_OK
        || curl_easy_setopt(e->curl, CURLOPT_HEADERFUNCTION, header_cb)
           != CURLE_OK
        || curl_easy_setopt(e->curl, CURLOPT_HEADERDATA, e) != CURLE_OK
        || curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, body_cb)
           != CURLE_OK
        || curl_easy_setopt(e->curl, CURLOPT_PROTOCOLS_STR, "http")
           != CURLE_OK
        || (socket != NULL && socket[0] != '\0'
            && curl_easy_setopt(e->curl, CURLOPT_UNIX_SOCKET_PATH, socket)
               != CURLE_OK))
    {
        enc_log_error("agent: the edge's URL or socket is not usable");
        agent_edge_free(e);
        return NULL;
    }
    return e;
}


void
agent_edge_free(agent_edge_t *e)
{
    if (e == NULL) {
        return;
    }
    if (e->curl != NULL) {
        curl_easy_cleanup(e->curl);
    }
    curl_slist_free_all(e->headers);
    free(e);
}


agent_post_rc_t
agent_edge_post(agent_edge_t *e, const char *body, size_t len,
    const char *zone_sent, long *status, char zone_id[AGENT_ZONE_ID_MAX + 1])
{
    char                line[sizeof(ZONE_HEADER) + AGENT_ZONE_ID_MAX + 2];
    CURLcode            rc;
    struct curl_slist  *zh = NULL, *last;

    *status = 0;
    e->zone[0] = '\0';
    zone_id[0] = '\0';

    /* the zone the agent replayed into, for the edge to check its claim
       "replayed" against (agent.h): appended to the fixed headers for
       this post only */
    last = e->headers;
    while (last->next != NULL) {
        last = last->next;
    }
    if (zone_sent != NULL && zone_sent[0] != '\0') {
        (void) snprintf(line, sizeof(line), "%s %s", ZONE_HEADER, zone_sent);
        zh = curl_slist_append(NULL, line);
        if (zh == NULL) {
            return AGENT_POST_FAILED;
        }
        last->next = zh;
    }

    if (curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, body) != CURLE_OK
        || curl_easy_setopt(e->curl, CURLOPT_POSTFIELDSIZE_LARGE,
                            (curl_off_t) len) != CURLE_OK)
    {
        last->next = NULL;
        curl_slist_free_all(zh);
        return AGENT_POST_FAILED;
    }

    rc = curl_easy_perform(e->curl);
    last->next = NULL;
    curl_slist_free_all(zh);
    if (rc != CURLE_OK) {
        enc_log_debug("agent: post to the edge failed: %s",
                      curl_easy_strerror(rc));
        return AGENT_POST_FAILED;
    }
    (void) curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, status);
    memcpy(zone_id, e->zone, sizeof(e->zone));

    if (*status >= 200 && *status < 300) {
        return AGENT_POST_OK;
    }
    if (*status >= 400 && *status < 500 && *status != 408 && *status != 429)
    {
        return AGENT_POST_REFUSED;
    }
    return AGENT_POST_FAILED;
}
