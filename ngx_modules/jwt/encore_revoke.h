/*
 * Encore: the revocation table, what the edge knows of revoked subjects
 * and sessions, in one block of memory (a shared memory zone), and the
 * parser of the bodies the agent posts to fill it.  No nginx dependency:
 * the unit tests and the fuzzer run this code as it is.
 *
 * The table is an open-addressing hash (linear probing, backward-shift
 * deletion: no tombstones) of fixed-size entries keyed by kind (subject or
 * session) and a 16-byte UUID, and a binary min-heap of the entries by
 * expiry.  An entry expires at its not_before + ttl; expired entries go
 * first, and when the table is full, those closest to expiry (they matter
 * least: every token they refuse expires soonest) are evicted, and
 * counted.  Nothing here locks: the caller holds a shared lock around
 * encore_revoke_check() and an exclusive one around the changes.
 */

#ifndef ENCORE_REVOKE_H
#define ENCORE_REVOKE_H


#include <stddef.h>
#include <stdint.h>


#define ENCORE_REVOKE_SUB          1
#define ENCORE_REVOKE_SID          2

/* causes, as the auth worker names them; 0 is none */
#define ENCORE_REVOKE_LOGOUT            1
#define ENCORE_REVOKE_PASSWORD_CHANGED  2
#define ENCORE_REVOKE_REFRESH_REUSE     3
#define ENCORE_REVOKE_DISABLED          4
#define ENCORE_REVOKE_ROLE_CHANGED      5
#define ENCORE_REVOKE_DELETED           6
#define ENCORE_REVOKE_CAUSE_MAX         6

/* a body holds at most this many revocations */
#define ENCORE_REVOKE_BATCH_MAX    1000

/* not_before and through beyond year 9999 are refused */
#define ENCORE_REVOKE_TIME_MAX     253402300799LL

/*
 * a not_before later than the edge's now + this (seconds) is refused: a
 * genuine one is the auth commit's second + 1, at most a few seconds
 * ahead, so every entry expires within ttl + this, and a flood of posts
 * cannot keep entries that outlive (and evict) genuine ones for long
 */
#define ENCORE_REVOKE_AHEAD_MAX    60


typedef struct {
    unsigned char  id[16];
    int64_t        not_before;   /* tokens with iat < this are refused */
    int64_t        expires;      /* not_before + ttl */
    uint32_t       heap;         /* its position in the heap */
    uint8_t        kind;         /* ENCORE_REVOKE_SUB, _SID; 0: free */
    uint8_t        cause;
    uint8_t        pad[2];
} encore_revoke_entry_t;


typedef struct {
    uint32_t       magic;
    uint32_t       nslots;
    uint32_t       max;          /* entries at most: half the slots */
    uint32_t       count;
    uint64_t       evictions;    /* entries dropped because it was full */
    uint64_t       expired;      /* entries dropped at their expiry */

    /* the feed: what the last post said */
    int64_t        last_post_ms; /* when it arrived (edge clock), 0: none */
    int64_t        through_ms;   /* its "through" */
    uint32_t       replayed;     /* its "replayed" */
    uint32_t       pad;
} encore_revoke_hdr_t;


typedef struct {
    encore_revoke_hdr_t    *hdr;
    encore_revoke_entry_t  *slots;   /* hdr->nslots */
    uint32_t               *heap;    /* hdr->max slot indexes, min first */
} encore_revoke_t;


/* one revocation of a body: a session's (has_sid) or a whole subject's */
typedef struct {
    unsigned char  sub[16];
    unsigned char  sid[16];
    unsigned       has_sid;
    unsigned       cause;
    long long      not_before;
} encore_revoke_item_t;


typedef struct {
    encore_revoke_item_t  *items;    /* ENCORE_REVOKE_BATCH_MAX, caller's */
    size_t                 nitems;
    unsigned               replayed;
    long long              through_ms;
} encore_revoke_batch_t;


/*
 * Lay a table out in size bytes at mem (8-byte aligned), empty.  Returns
 * 0, or -1 when size holds fewer than 11 entries.
 */
int encore_revoke_init(encore_revoke_t *t, void *mem, size_t size);

/* the table laid out at mem before (a reload keeps the zone) */
int encore_revoke_attach(encore_revoke_t *t, void *mem);

/*
 * Add or raise a revocation: an entry for a key already present keeps the
 * larger not_before (and that one's cause).  An entry already expired at
 * now is not kept.  When the table is full, the entry closest to expiry
 * goes (the new one itself, if it is): hdr->evictions counts it.
 */
void encore_revoke_put(encore_revoke_t *t, unsigned kind,
    const unsigned char *id, long long not_before, unsigned cause,
    long long ttl, long long now);

/* drop every entry expired at now */
void encore_revoke_expire(encore_revoke_t *t, long long now);

/* the entry of that key, unless absent or expired at now */
const encore_revoke_entry_t *encore_revoke_find(const encore_revoke_t *t,
    unsigned kind, const unsigned char *id, long long now);

/*
 * The verdict on a token issued at iat, of subject sub and session sid
 * (either NULL when the token has none that is a UUID): the cause of an
 * entry that refuses it (iat < its not_before), or 0.
 */
unsigned encore_revoke_check(const encore_revoke_t *t,
    const unsigned char *sub, const unsigned char *sid, long long iat,
    long long now);

/* "logout", ..., or NULL */
const char *encore_revoke_cause_name(unsigned cause);

/* a canonical UUID (8-4-4-4-12 hex digits, either case): 0, else -1 */
int encore_revoke_uuid(unsigned char *out, const char *s, size_t len);

/*
 * Parse a body: {"revocations":[{"sub":…,"sid":…,"not_before":…,
 * "cause":…},…],"replayed":…,"through":…}.  All or nothing: 0 with
 * every item in b, or -1 with *error telling the first fault and nothing
 * to apply.  b->items must hold ENCORE_REVOKE_BATCH_MAX.
 */
int encore_revoke_parse(encore_revoke_batch_t *b, const void *data,
    size_t len, const char **error);

/*
 * A parsed batch against the edge's clock: 0, or -1 with *error when an
 * item's not_before is later than now + ENCORE_REVOKE_AHEAD_MAX (the
 * batch is refused whole, as a bad body).
 */
int encore_revoke_bound(const encore_revoke_batch_t *b, long long now,
    const char **error);


#endif /* ENCORE_REVOKE_H */
