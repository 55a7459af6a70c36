/*
 * agent.h — encore-edge-agent: the revocation feed of one edge host.
 *
 * The auth worker publishes what invalidates access tokens on
 * encore.auth.revocations (workers/auth/revoke.c).  Every edge host runs
 * one agent next to its nginx: it reads that topic without a consumer
 * group (each host needs every event), starting at the events of the
 * last window (a token's lifetime plus the edge's leeway: nothing older
 * can refuse a token that is still valid), and posts them in batches to
 * the edge's loopback-only POST /internal/revocations, which writes them
 * into the jwt module's shared memory zone.
 *
 *   window replay   offsets_for_times(now - window) per partition, read up
 *                   to the high watermarks seen at start; posts carry
 *                   "replayed": false until then, true from then on
 *   live            events are posted as they arrive; an empty post is a
 *                   heartbeat, at least every agent.heartbeat_ms
 *   edge down       the batch is kept and retried with backoff (100 ms
 *                   doubling to 2 s); Kafka keeps what arrives meanwhile
 *   edge restarted  a restarted nginx has an empty zone.  The edge answers
 *                   every post with Encore-Revocation-Zone: <id>, an id
 *                   made when its zone is created (kept across reloads);
 *                   the agent sends back the id it is feeding in the same
 *                   request header, so that the edge takes "replayed":
 *                   true only from an agent that replayed into this zone.
 *                   When the answer's id changes, the agent replays the
 *                   window again (replayed: false until done).  It claims
 *                   "replayed" only once it knows the id (after a first
 *                   answer).  From an edge that sends no id, a post that
 *                   succeeds after posts failed starts the replay again.
 *
 * Threads: the feed runs on one thread of its own (agent.c); HTTP
 * (/healthz, /readyz, /metrics) on libmicrohttpd's pool reads its state
 * through atomics only.
 */

#ifndef ENCORE_EDGE_AGENT_H
#define ENCORE_EDGE_AGENT_H

#include <stddef.h>

#include <jansson.h>

#include "config.h"


#define AGENT_BATCH_MAX      1000        /* the edge's limit per post */
#define AGENT_UUID_LEN       36
#define AGENT_ZONE_ID_MAX    64

/* the edge's bounds of not_before (ngx_modules/jwt/encore_revoke.h):
   year 9999, and its clock (the same host's) + 60 s */
#define AGENT_NOT_BEFORE_MAX     253402300799LL
#define AGENT_NOT_BEFORE_AHEAD   60


extern const enc_conf_key_t  agent_conf_keys[];
extern const char *const     agent_topics[];


/* ---- batch.c: events in, the edge's request body out -------------------- */

/*
 * The post entry of one event value (JSON text of len bytes):
 * {sub, [sid,] not_before, cause}; NULL when the value is not a
 * revocation the edge would take (not JSON, a field missing or of the
 * wrong type, a sub or sid that is not a UUID (of either case), an unknown
 * cause, a not_before negative, past year 9999 or more than 60 s after
 * now_s): such an event is skipped and counted, never posted, since one
 * bad entry makes the edge refuse the whole batch.  at_ms receives the
 * event's "at" in ms since the epoch (0 if unparsable).
 */
json_t *agent_entry_parse(const char *value, size_t len, long long now_s,
                          long long *at_ms);

/* {"revocations": entries, "replayed": ..., "through": ...} compact,
   malloc'd (free()); entries is borrowed. */
char   *agent_body(json_t *entries, int replayed, long long through_ms,
                   size_t *len);

/* the next retry delay after one of prev ms: 100 ms doubling to 2 s */
long    agent_backoff_next(long prev_ms);

/* "2026-12-02T01:46:40.123Z" -> ms since the epoch; -1 if malformed */
long long agent_rfc3339_ms(const char *s);


/* ---- edge.c: POST /internal/revocations over a kept-alive connection ---- */

typedef struct agent_edge_s  agent_edge_t;

typedef enum {
    AGENT_POST_OK = 0,           /* 2xx */
    AGENT_POST_REFUSED,          /* 4xx: the edge will never take this body */
    AGENT_POST_FAILED            /* no connection, timeout, 5xx: retry */
} agent_post_rc_t;

/* url "http://127.0.0.1:8080/internal/revocations"; socket a unix socket
   path nginx listens on, or NULL/"" for TCP */
agent_edge_t   *agent_edge_new(const char *url, const char *socket,
                               long timeout_ms);
void            agent_edge_free(agent_edge_t *e);
/* zone_sent: the zone id the agent replayed into, sent as the request's
   Encore-Revocation-Zone header (NULL or "": none); status: the HTTP
   status (0 if none); zone_id receives the answer's
   Encore-Revocation-Zone header ("" if absent) */
agent_post_rc_t agent_edge_post(agent_edge_t *e, const char *body,
                                size_t len, const char *zone_sent,
                                long *status,
                                char zone_id[AGENT_ZONE_ID_MAX + 1]);


/* ---- agent.c: the feed thread -------------------------------------------- */

int  agent_start(const enc_config_t *c);
void agent_stop(void);
/* /readyz: 0 once the window was replayed to the edge and the last post
   succeeded within agent.stale_ms, else -1 */
int  agent_ready(void *arg);

#endif /* ENCORE_EDGE_AGENT_H */
