/*
 * Copyright (C) Encore
 *
 * encore_metrics: see encore_metrics.h.
 */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "encore_metrics.h"


#define ENCORE_METRICS_MAGIC   0x656e6d74      /* "enmt" */
#define ENCORE_METRICS_LAYOUT  ((uint32_t) (sizeof(encore_metrics_series_t) \
                                  << 16 | ENCORE_METRICS_NBUCKETS << 8 | 1))
/* keeps the index sparse enough for short probes */
#define ENCORE_METRICS_SERIES_LIMIT  (1u << 24)

#define encore_align8(n)  (((n) + 7) & ~(size_t) 7)


typedef struct {
    const char   *name;
    const char   *help;
    int           histogram;
    unsigned      nlabels;
    const char   *labels[ENCORE_METRICS_LABELS_MAX];
} encore_metrics_family_t;


static const encore_metrics_family_t  encore_metrics_families[] = {

    { "encore_http_requests_total",
      "HTTP requests answered by the edge, by route, method and status"
      " class.",
      0, 3, { "route", "method", "status" } },

    { "encore_http_request_duration_seconds",
      "Time from the first byte of the request to the last byte of the"
      " response, by route.",
      1, 1, { "route" } },

    { "encore_upstream_response_duration_seconds",
      "Time spent on each try of an upstream (a worker), from connect to"
      " the last byte of its response, by upstream.",
      1, 1, { "upstream" } },

    { "encore_upstream_failures_total",
      "Upstream tries that ended without a response header (connection"
      " refused, timeout, invalid header), by upstream.",
      0, 1, { "upstream" } },

    { "encore_jwt_verifications_total",
      "Requests whose token the jwt module checked, by outcome (valid or"
      " the reason it was refused).",
      0, 1, { "outcome" } },

    { "encore_jwt_cache_requests_total",
      "Lookups of the jwt module's verified-token cache, by result.",
      0, 1, { "result" } }
};


/* upper bounds in microseconds; Prometheus' defaults plus 1 and 2.5 ms */
static const uint64_t  encore_metrics_bounds[ENCORE_METRICS_NBUCKETS] = {
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000, 10000000
};

static const char  *const encore_metrics_le[ENCORE_METRICS_NBUCKETS + 1] = {
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
    "0.5", "1", "2.5", "5", "10", "+Inf"
};


typedef struct {
    char    *buf;
    size_t   size;
    size_t   len;
} encore_metrics_out_t;


static size_t
encore_metrics_index_size(uint32_t max_series)
{
    size_t  n;

    for (n = 16; n < 2 * (size_t) max_series; n <<= 1) { /* void */ }

    return n;
}


static size_t
encore_metrics_series_offset(uint32_t max_series)
{
    return encore_align8(sizeof(encore_metrics_shm_t)
                         + encore_metrics_index_size(max_series)
                           * sizeof(uint32_t));
}


size_t
encore_metrics_size(uint32_t max_series)
{
    if (max_series <= ENCORE_METRICS_NFAMILIES
        || max_series > ENCORE_METRICS_SERIES_LIMIT)
    {
        return 0;
    }

    return encore_metrics_series_offset(max_series)
           + (size_t) max_series * sizeof(encore_metrics_series_t);
}


uint32_t
encore_metrics_max_series(size_t size)
{
    uint32_t  lo, hi, mid;

    /* size() grows with max_series: the largest that fits, by bisection */
    lo = 0;
    hi = ENCORE_METRICS_SERIES_LIMIT;

    while (lo < hi) {
        mid = lo + (hi - lo + 1) / 2;

        if (encore_metrics_size(mid) != 0 && encore_metrics_size(mid) <= size)
        {
            lo = mid;

        } else if (mid <= ENCORE_METRICS_NFAMILIES) {
            lo = mid;

        } else {
            hi = mid - 1;
        }
    }

    return encore_metrics_size(lo) != 0 ? lo : 0;
}


size_t
encore_metrics_bytes_used(const encore_metrics_t *m)
{
    uint32_t  n;

    n = __atomic_load_n(&m->sh->nseries, __ATOMIC_ACQUIRE);

    return encore_metrics_series_offset(m->sh->max_series)
           + (size_t) n * sizeof(encore_metrics_series_t);
}


static void
encore_metrics_point(encore_metrics_t *m, void *mem)
{
    m->sh = mem;
    m->index = (uint32_t *) (m->sh + 1);
    m->series = (encore_metrics_series_t *)
                    ((char *) mem
                     + encore_metrics_series_offset(m->sh->max_series));
}


static uint32_t
encore_metrics_hash(unsigned f, const char *key, size_t len)
{
    size_t    i;
    uint32_t  h;

    /* FNV-1a */
    h = 2166136261u ^ f;
    h *= 16777619u;

    for (i = 0; i < len; i++) {
        h ^= (unsigned char) key[i];
        h *= 16777619u;
    }

    return h;
}


static encore_metrics_series_t *
encore_metrics_find(encore_metrics_t *m, unsigned f, uint32_t hash,
    const char *key, size_t len, uint32_t **slot)
{
    uint32_t                  i, mask, n;
    encore_metrics_series_t  *s;

    mask = m->sh->index_size - 1;

    for (i = 0; i <= mask; i++) {
        *slot = &m->index[(hash + i) & mask];
        n = __atomic_load_n(*slot, __ATOMIC_ACQUIRE);

        if (n == 0) {
            return NULL;
        }

        s = &m->series[n - 1];

        if (s->hash == hash && s->family == f && s->key_len == len
            && memcmp(s->key, key, len) == 0)
        {
            return s;
        }
    }

    /* unreachable: the index is at least twice as large as the table */
    *slot = NULL;
    return NULL;
}


/* called with the lock held, or before the table is shared */
static encore_metrics_series_t *
encore_metrics_insert(encore_metrics_t *m, unsigned f, uint32_t hash,
    const char *key, size_t len)
{
    uint32_t                 *slot, n;
    encore_metrics_series_t  *s;

    s = encore_metrics_find(m, f, hash, key, len, &slot);
    if (s != NULL) {
        return s;
    }

    n = m->sh->nseries;

    if (n == m->sh->max_series || slot == NULL) {
        return NULL;
    }

    s = &m->series[n];
    memset(s, 0, sizeof(encore_metrics_series_t));
    s->hash = hash;
    s->family = (uint16_t) f;
    s->key_len = (uint8_t) len;
    memcpy(s->key, key, len);

    /* the series is complete before anyone can find it */
    __atomic_store_n(&m->sh->nseries, n + 1, __ATOMIC_RELEASE);
    __atomic_store_n(slot, n + 1, __ATOMIC_RELEASE);

    return s;
}


/* the key of the label values: (length byte, bytes) per label */
static size_t
encore_metrics_key(unsigned f, const encore_metrics_str_t *labels, char *key)
{
    size_t    len;
    unsigned  i;

    len = 0;

    for (i = 0; i < encore_metrics_families[f].nlabels; i++) {

        if (labels[i].len > ENCORE_METRICS_VALUE_MAX
            || len + 1 + labels[i].len > ENCORE_METRICS_KEY_LEN)
        {
            return (size_t) -1;
        }

        key[len++] = (char) labels[i].len;
        memcpy(&key[len], labels[i].data, labels[i].len);
        len += labels[i].len;
    }

    return len;
}


int
encore_metrics_init(encore_metrics_t *m, void *mem, size_t size,
    uint32_t max_series)
{
    char                  key[ENCORE_METRICS_KEY_LEN];
    size_t                need, len;
    unsigned              f, i;
    encore_metrics_str_t  other[ENCORE_METRICS_LABELS_MAX];

    need = encore_metrics_size(max_series);

    if (need == 0 || need > size) {
        return -1;
    }

    memset(mem, 0, need);

    m->sh = mem;
    m->sh->magic = ENCORE_METRICS_MAGIC;
    m->sh->layout = ENCORE_METRICS_LAYOUT;
    m->sh->max_series = max_series;
    m->sh->index_size = (uint32_t) encore_metrics_index_size(max_series);

    encore_metrics_point(m, mem);

    for (i = 0; i < ENCORE_METRICS_LABELS_MAX; i++) {
        other[i].data = "other";
        other[i].len = sizeof("other") - 1;
    }

    for (f = 0; f < ENCORE_METRICS_NFAMILIES; f++) {
        len = encore_metrics_key(f, other, key);
        (void) encore_metrics_insert(m, f,
                                     encore_metrics_hash(f, key, len),
                                     key, len);
        /* series f: the table was empty, max_series > NFAMILIES */
        m->series[f].other = 1;
        m->sh->other[f] = f;
    }

    return 0;
}


int
encore_metrics_attach(encore_metrics_t *m, void *mem, uint32_t max_series)
{
    encore_metrics_shm_t  *sh = mem;

    if (sh->magic != ENCORE_METRICS_MAGIC
        || sh->layout != ENCORE_METRICS_LAYOUT
        || (max_series != 0 && sh->max_series != max_series)
        || sh->index_size != encore_metrics_index_size(sh->max_series))
    {
        return -1;
    }

    encore_metrics_point(m, mem);

    return 0;
}


encore_metrics_series_t *
encore_metrics_get(encore_metrics_t *m, encore_metrics_family_e f,
    const encore_metrics_str_t *labels)
{
    char                      key[ENCORE_METRICS_KEY_LEN];
    size_t                    len;
    uint32_t                  hash, *slot;
    encore_metrics_series_t  *s;

    len = encore_metrics_key(f, labels, key);

    if (len == (size_t) -1) {
        goto other;
    }

    hash = encore_metrics_hash(f, key, len);

    s = encore_metrics_find(m, f, hash, key, len, &slot);
    if (s != NULL) {
        return s;
    }

    if (m->lock) {
        m->lock(m->lock_data);
    }

    s = encore_metrics_insert(m, f, hash, key, len);

    if (m->unlock) {
        m->unlock(m->lock_data);
    }

    if (s != NULL) {
        return s;
    }

other:

    __atomic_fetch_add(&m->sh->overflow, 1, __ATOMIC_RELAXED);

    return &m->series[m->sh->other[f]];
}


void
encore_metrics_inc(encore_metrics_series_t *s, uint64_t n)
{
    __atomic_fetch_add(&s->value[0], n, __ATOMIC_RELAXED);
}


void
encore_metrics_observe(encore_metrics_series_t *s, uint64_t usec)
{
    unsigned  b;

    b = encore_metrics_bucket(usec);

    if (b < ENCORE_METRICS_NBUCKETS) {
        __atomic_fetch_add(&s->value[b], 1, __ATOMIC_RELAXED);
    }

    __atomic_fetch_add(&s->value[ENCORE_METRICS_COUNT], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&s->value[ENCORE_METRICS_SUM], usec,
                       __ATOMIC_RELAXED);
}


unsigned
encore_metrics_bucket(uint64_t usec)
{
    unsigned  i;

    for (i = 0; i < ENCORE_METRICS_NBUCKETS; i++) {
        if (usec <= encore_metrics_bounds[i]) {
            return i;
        }
    }

    return ENCORE_METRICS_NBUCKETS;
}


const char *
encore_metrics_bucket_le(unsigned i)
{
    return i <= ENCORE_METRICS_NBUCKETS ? encore_metrics_le[i] : NULL;
}


size_t
encore_metrics_escape(char *dst, const char *src, size_t len)
{
    char    *p;
    size_t   i;

    p = dst;

    for (i = 0; i < len; i++) {
        switch (src[i]) {

        case '\\':
            *p++ = '\\';
            *p++ = '\\';
            break;

        case '"':
            *p++ = '\\';
            *p++ = '"';
            break;

        case '\n':
            *p++ = '\\';
            *p++ = 'n';
            break;

        default:
            *p++ = src[i];
        }
    }

    return p - dst;
}


static void
encore_metrics_write(encore_metrics_out_t *out, const char *data, size_t len)
{
    size_t  n;

    if (out->len < out->size) {
        n = out->size - out->len;
        memcpy(out->buf + out->len, data, len < n ? len : n);
    }

    out->len += len;
}


static void
encore_metrics_puts(encore_metrics_out_t *out, const char *s)
{
    encore_metrics_write(out, s, strlen(s));
}


/* one formatted piece, at most a line: label names, numbers, meta lines */
static void
encore_metrics_printf(encore_metrics_out_t *out, const char *fmt, ...)
{
    int      n;
    char     line[512];
    va_list  args;

    va_start(args, fmt);
    n = vsnprintf(line, sizeof(line), fmt, args);
    va_end(args);

    if (n > 0) {
        encore_metrics_write(out, line,
                             (size_t) n < sizeof(line) ? (size_t) n
                                                       : sizeof(line) - 1);
    }
}


/* name{label="value",...[,le="bound"]} */
static void
encore_metrics_series_name(encore_metrics_out_t *out,
    const encore_metrics_family_t *fam, const char *suffix,
    const encore_metrics_series_t *s, const char *le)
{
    char      esc[2 * ENCORE_METRICS_VALUE_MAX];
    size_t    pos, len;
    unsigned  i;

    encore_metrics_printf(out, "%s%s{", fam->name, suffix);

    pos = 0;

    for (i = 0; i < fam->nlabels; i++) {
        len = (unsigned char) s->key[pos++];

        encore_metrics_printf(out, "%s%s=\"", i ? "," : "", fam->labels[i]);
        encore_metrics_write(out, esc,
                             encore_metrics_escape(esc, &s->key[pos], len));
        encore_metrics_write(out, "\"", 1);

        pos += len;
    }

    if (le != NULL) {
        encore_metrics_printf(out, ",le=\"%s\"", le);
    }

    encore_metrics_write(out, "} ", 2);
}


static void
encore_metrics_render_series(encore_metrics_out_t *out,
    const encore_metrics_family_t *fam, encore_metrics_series_t *s)
{
    uint64_t  v, cum, count, sum;
    unsigned  b;

    if (!fam->histogram) {
        v = __atomic_load_n(&s->value[0], __ATOMIC_RELAXED);

        if (s->other && v == 0) {
            return;
        }

        encore_metrics_series_name(out, fam, "", s, NULL);
        encore_metrics_printf(out, "%llu\n", (unsigned long long) v);
        return;
    }

    count = __atomic_load_n(&s->value[ENCORE_METRICS_COUNT],
                            __ATOMIC_RELAXED);

    if (s->other && count == 0) {
        return;
    }

    cum = 0;

    for (b = 0; b < ENCORE_METRICS_NBUCKETS; b++) {
        cum += __atomic_load_n(&s->value[b], __ATOMIC_RELAXED);
        encore_metrics_series_name(out, fam, "_bucket", s,
                                   encore_metrics_le[b]);
        encore_metrics_printf(out, "%llu\n", (unsigned long long) cum);
    }

    /*
     * Writers add to the bucket before the count: the count read first
     * may lag the buckets read after it.  +Inf and _count must not be
     * below any bucket.
     */
    if (count < cum) {
        count = cum;
    }

    sum = __atomic_load_n(&s->value[ENCORE_METRICS_SUM], __ATOMIC_RELAXED);

    encore_metrics_series_name(out, fam, "_bucket", s,
                               encore_metrics_le[ENCORE_METRICS_NBUCKETS]);
    encore_metrics_printf(out, "%llu\n", (unsigned long long) count);

    encore_metrics_series_name(out, fam, "_sum", s, NULL);
    encore_metrics_printf(out, "%llu.%06llu\n",
                          (unsigned long long) (sum / 1000000),
                          (unsigned long long) (sum % 1000000));

    encore_metrics_series_name(out, fam, "_count", s, NULL);
    encore_metrics_printf(out, "%llu\n", (unsigned long long) count);
}


size_t
encore_metrics_render(encore_metrics_t *m, char *buf, size_t size,
    size_t zone_size)
{
    uint32_t                        i, n;
    unsigned                        f;
    encore_metrics_out_t            out;
    const encore_metrics_family_t  *fam;

    out.buf = buf;
    out.size = size;
    out.len = 0;

    n = __atomic_load_n(&m->sh->nseries, __ATOMIC_ACQUIRE);

    for (f = 0; f < ENCORE_METRICS_NFAMILIES; f++) {
        fam = &encore_metrics_families[f];

        encore_metrics_puts(&out, "# HELP ");
        encore_metrics_puts(&out, fam->name);
        encore_metrics_puts(&out, " ");
        encore_metrics_puts(&out, fam->help);
        encore_metrics_puts(&out, "\n# TYPE ");
        encore_metrics_puts(&out, fam->name);
        encore_metrics_puts(&out, fam->histogram ? " histogram\n"
                                                 : " counter\n");

        for (i = 0; i < n; i++) {
            if (m->series[i].family == f) {
                encore_metrics_render_series(&out, fam, &m->series[i]);
            }
        }
    }

    encore_metrics_printf(&out,
        "# HELP encore_metrics_series Series in the metrics zone,"
        " the \"other\" series included.\n"
        "# TYPE encore_metrics_series gauge\n"
        "encore_metrics_series %u\n", n);

    encore_metrics_printf(&out,
        "# HELP encore_metrics_series_max Series the metrics zone can"
        " hold.\n"
        "# TYPE encore_metrics_series_max gauge\n"
        "encore_metrics_series_max %u\n", m->sh->max_series);

    encore_metrics_printf(&out,
        "# HELP encore_metrics_series_overflow_total Samples counted in an"
        " \"other\" series because the zone was full or a label too long.\n"
        "# TYPE encore_metrics_series_overflow_total counter\n"
        "encore_metrics_series_overflow_total %llu\n",
        (unsigned long long) __atomic_load_n(&m->sh->overflow,
                                             __ATOMIC_RELAXED));

    encore_metrics_printf(&out,
        "# HELP encore_metrics_zone_used_bytes Bytes of the metrics zone"
        " holding the table and the series created so far.\n"
        "# TYPE encore_metrics_zone_used_bytes gauge\n"
        "encore_metrics_zone_used_bytes %zu\n",
        encore_metrics_bytes_used(m));

    encore_metrics_printf(&out,
        "# HELP encore_metrics_zone_size_bytes Size of the metrics zone.\n"
        "# TYPE encore_metrics_zone_size_bytes gauge\n"
        "encore_metrics_zone_size_bytes %zu\n", zone_size);

    return out.len;
}
