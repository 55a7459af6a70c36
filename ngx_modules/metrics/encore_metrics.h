/*
 * Copyright (C) Encore
 *
 * encore_metrics: the nginx-independent half of the metrics module — a
 * table of Prometheus series of fixed capacity in one block of memory that
 * several processes share, and its text exposition (format 0.0.4).
 *
 * Layout of the block: a header, an open-addressing index of 2^k slots
 * (0 = empty, otherwise series number + 1), then max_series series.
 * Series are only ever added, never removed: a writer fills a series in
 * and then publishes its number in the index with a release store, so
 * lookups take no lock.  Inserts are serialised by the caller's lock (the
 * zone's ngx_shmtx in nginx).  Values are 64-bit counters moved with
 * atomic adds.  When the table is full, a sample goes to its family's
 * "other" series (created with the table, so it always exists) and the
 * overflow counter counts it.
 *
 * Nothing here allocates; nothing here is specific to a process, so the
 * block survives an nginx reload and is reattached with
 * encore_metrics_attach().
 */

#ifndef ENCORE_METRICS_H
#define ENCORE_METRICS_H

#include <stddef.h>
#include <stdint.h>


#define ENCORE_METRICS_NBUCKETS    13
/* per series: buckets (not cumulative), count, sum in microseconds */
#define ENCORE_METRICS_NVALUES     (ENCORE_METRICS_NBUCKETS + 2)
#define ENCORE_METRICS_COUNT       ENCORE_METRICS_NBUCKETS
#define ENCORE_METRICS_SUM         (ENCORE_METRICS_NBUCKETS + 1)
#define ENCORE_METRICS_LABELS_MAX  3
/* label values are stored as (length byte, bytes) pairs */
#define ENCORE_METRICS_KEY_LEN     118
#define ENCORE_METRICS_VALUE_MAX   64


typedef enum {
    ENCORE_METRICS_HTTP_REQUESTS = 0,   /* counter {route,method,status} */
    ENCORE_METRICS_HTTP_DURATION,       /* histogram {route} */
    ENCORE_METRICS_UPSTREAM_DURATION,   /* histogram {upstream} */
    ENCORE_METRICS_UPSTREAM_FAILURES,   /* counter {upstream} */
    ENCORE_METRICS_JWT_VERIFICATIONS,   /* counter {outcome} */
    ENCORE_METRICS_JWT_CACHE,           /* counter {result} */
    ENCORE_METRICS_NFAMILIES
} encore_metrics_family_e;


typedef struct {
    const char  *data;
    size_t       len;
} encore_metrics_str_t;


typedef struct {
    uint32_t     hash;
    uint16_t     family;
    uint8_t      key_len;
    uint8_t      other;                 /* the family's overflow series */
    char         key[ENCORE_METRICS_KEY_LEN];
    uint64_t     value[ENCORE_METRICS_NVALUES];
} encore_metrics_series_t;


typedef struct {
    uint32_t     magic;
    uint32_t     layout;
    uint32_t     max_series;
    uint32_t     index_size;            /* a power of two >= 2 * max_series */
    uint32_t     nseries;               /* atomic */
    uint32_t     other[ENCORE_METRICS_NFAMILIES];
    uint64_t     overflow;              /* atomic */
} encore_metrics_shm_t;


typedef void (*encore_metrics_lock_pt)(void *data);

/* process-local handle on a shared block */
typedef struct {
    encore_metrics_shm_t     *sh;
    uint32_t                 *index;
    encore_metrics_series_t  *series;
    encore_metrics_lock_pt    lock;     /* NULL: single process (tests) */
    encore_metrics_lock_pt    unlock;
    void                     *lock_data;
} encore_metrics_t;


/* bytes a block for max_series needs; 0 when max_series is out of range */
size_t encore_metrics_size(uint32_t max_series);
/* the largest max_series whose block fits in size bytes (0: none) */
uint32_t encore_metrics_max_series(size_t size);
/* bytes of the block in use: header, index and the series created so far */
size_t encore_metrics_bytes_used(const encore_metrics_t *m);

/*
 * Formats mem (size bytes, 8-byte aligned) as an empty table and points m
 * at it; m's lock fields are left as they are.  Returns 0, or -1 when
 * max_series is below ENCORE_METRICS_NFAMILIES + 1 or does not fit.
 */
int encore_metrics_init(encore_metrics_t *m, void *mem, size_t size,
    uint32_t max_series);
/*
 * Points m at a block formatted earlier (by this or another process).
 * Returns 0, or -1 when the block was formatted with another layout or
 * another max_series (0: any; it must then be formatted again).
 */
int encore_metrics_attach(encore_metrics_t *m, void *mem,
    uint32_t max_series);

/*
 * The series of family f with these label values (as many as the family
 * has labels), created on first use.  Never NULL: a value longer than
 * ENCORE_METRICS_VALUE_MAX or a full table gives the family's "other"
 * series and counts one overflow.  The labels are copied.
 */
encore_metrics_series_t *encore_metrics_get(encore_metrics_t *m,
    encore_metrics_family_e f, const encore_metrics_str_t *labels);

void encore_metrics_inc(encore_metrics_series_t *s, uint64_t n);
void encore_metrics_observe(encore_metrics_series_t *s, uint64_t usec);

/* the first bucket whose upper bound is >= usec, or NBUCKETS (+Inf) */
unsigned encore_metrics_bucket(uint64_t usec);
/* the upper bound of bucket i as exposition text ("0.005") */
const char *encore_metrics_bucket_le(unsigned i);

/*
 * Escapes a label value for the exposition format (backslash, double
 * quote and newline); dst has room for 2 * len bytes.  Returns the length
 * written.
 */
size_t encore_metrics_escape(char *dst, const char *src, size_t len);

/*
 * Writes the exposition of every family and of the table itself to buf,
 * at most size bytes, and returns the length of the whole text (as
 * snprintf does: a result above size means buf was too small).
 * zone_size is reported as encore_metrics_zone_size_bytes.
 */
size_t encore_metrics_render(encore_metrics_t *m, char *buf, size_t size,
    size_t zone_size);


#endif /* ENCORE_METRICS_H */
