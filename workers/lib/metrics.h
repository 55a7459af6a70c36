/*
 * metrics: Prometheus text exposition (format 0.0.4), thread-safe.
 *
 * Per-route HTTP counters by status class and a latency histogram, plus a
 * bounded set of free counters, labelled gauges and histograms.
 * Everything lives in fixed arrays under one mutex: the number of routes
 * and counters is small and known at start, and a full table drops
 * samples (logged once) rather than growing.
 */
#ifndef ENC_METRICS_H
#define ENC_METRICS_H

#include <stdio.h>

#define ENC_METRICS_ROUTES_MAX    128
#define ENC_METRICS_COUNTERS_MAX  64
#define ENC_METRICS_SERIES_MAX    256    /* labelled gauges, every series */
#define ENC_METRICS_HISTS_MAX     16
#define ENC_METRICS_BOUNDS_MAX    16     /* buckets of a histogram */

/* route is copied on first use; status 100..599 */
void enc_metrics_http(const char *route, int status, double seconds);
/* name must match [a-zA-Z_:][a-zA-Z0-9_:]*, otherwise the sample is
   dropped; name and help are copied on first use */
void enc_metrics_counter_add(const char *name, const char *help, double v);
/* as enc_metrics_counter_add, but sets the value (a gauge: a backlog, a
   queue length); a name is a counter or a gauge, whichever it was first */
void enc_metrics_gauge_set(const char *name, const char *help, double v);
/* a gauge with labels: labels are name, value pairs ended by NULL (at
   most 4 pairs, names as metric names without ':'); values are escaped
   as the format says.  A name set this way is its own family, apart from
   enc_metrics_gauge_set's */
void enc_metrics_gauge_set_labels(const char *name, const char *help,
                                  const char *const *labels, double v);
/* forgets every series of a labelled gauge (those that went away: a
   partition no longer assigned) */
void enc_metrics_gauge_clear(const char *name);
/* a histogram without labels: bounds (ascending, at most
   ENC_METRICS_BOUNDS_MAX, each bucket's inclusive upper bound) are taken
   at the first observation of name and kept */
void enc_metrics_histogram_observe(const char *name, const char *help,
                                   const double *bounds, size_t nbounds,
                                   double v);
/* one observation of a histogram without labels, in seconds, on the HTTP
   histogram's buckets (encore_pg_statement_duration_seconds); a name is
   a histogram or a counter/gauge, never both */
void enc_metrics_observe(const char *name, const char *help, double seconds);
void enc_metrics_render(FILE *out);
/* prefix for metric names, default "encore_worker"; call before serving */
void enc_metrics_init(const char *worker);
/* forget everything (tests) */
void enc_metrics_reset(void);

#endif /* ENC_METRICS_H */
