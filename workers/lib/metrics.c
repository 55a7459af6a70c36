/*
 * metrics: see metrics.h.
 */
#include <pthread.h>
#include <string.h>

#include "log.h"
#include "metrics.h"


#define NAME_MAX_LEN  96
#define HELP_MAX_LEN  200

static const double  buckets[] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};
#define NBUCKETS  (sizeof(buckets) / sizeof(buckets[0]))

typedef struct {
    char                route[NAME_MAX_LEN];
    unsigned long long  status[6];           /* index = status / 100 */
    unsigned long long  bucket[NBUCKETS];    /* non-cumulative */
    unsigned long long  count;
    double              sum;
} route_stat_t;

typedef struct {
    char    name[NAME_MAX_LEN];
    char    help[HELP_MAX_LEN];
    double  value;
    int     gauge;
} counter_t;

#define LABELS_MAX_LEN  320

/* one series of a labelled gauge; a family's series are those of its name,
   rendered together in the order the family first appeared */
typedef struct {
    char    name[NAME_MAX_LEN];
    char    help[HELP_MAX_LEN];
    char    labels[LABELS_MAX_LEN];    /* rendered: a="x",b="y" */
    double  value;
} series_t;

typedef struct {
    char                name[NAME_MAX_LEN];
    char                help[HELP_MAX_LEN];
    double              bound[ENC_METRICS_BOUNDS_MAX];
    size_t              nbounds;
    unsigned long long  bucket[ENC_METRICS_BOUNDS_MAX + 1];  /* last: +Inf,
                                                                non-cumulative */
    unsigned long long  count;
    double              sum;
} hist_t;

static pthread_mutex_t  lock = PTHREAD_MUTEX_INITIALIZER;
static route_stat_t     routes[ENC_METRICS_ROUTES_MAX];
static size_t           nroutes;
static counter_t        counters[ENC_METRICS_COUNTERS_MAX];
static size_t           ncounters;
static series_t         series[ENC_METRICS_SERIES_MAX];
static size_t           nseries;
static hist_t           hists[ENC_METRICS_HISTS_MAX];
static size_t           nhists;
static int              full_logged;
static char             worker_name[64];


void
enc_metrics_init(const char *worker)
{
    pthread_mutex_lock(&lock);
    snprintf(worker_name, sizeof(worker_name), "%s", worker ? worker : "");
    pthread_mutex_unlock(&lock);
}


void
enc_metrics_reset(void)
{
    pthread_mutex_lock(&lock);
    memset(routes, 0, sizeof(routes));
    memset(counters, 0, sizeof(counters));
    memset(series, 0, sizeof(series));
    memset(hists, 0, sizeof(hists));
    nroutes = 0;
    ncounters = 0;
    nseries = 0;
    nhists = 0;
    full_logged = 0;
    pthread_mutex_unlock(&lock);
}


static int
valid_name(const char *s)
{
    size_t  i;

    if (s == NULL || s[0] == '\0' || strlen(s) >= NAME_MAX_LEN) {
        return 0;
    }
    for (i = 0; s[i] != '\0'; i++) {
        char  ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
              || ch == '_' || ch == ':' || (i > 0 && ch >= '0' && ch <= '9')))
        {
            return 0;
        }
    }
    return 1;
}


/* called with lock held */
static void
log_full(const char *what)
{
    if (!full_logged) {
        full_logged = 1;
        enc_log_warn("metrics: %s table full, samples dropped", what);
    }
}


void
enc_metrics_http(const char *route, int status, double seconds)
{
    size_t         i;
    route_stat_t  *r = NULL;

    if (route == NULL) {
        route = "unknown";
    }
    /* route names are label values; anything odd is folded away rather
       than escaped, they come from the route table, not from requests */
    if (!valid_name(route)) {
        route = "invalid";
    }
    if (status < 100 || status > 599) {
        status = 500;
    }
    if (seconds < 0) {
        seconds = 0;
    }

    pthread_mutex_lock(&lock);
    for (i = 0; i < nroutes; i++) {
        if (strcmp(routes[i].route, route) == 0) {
            r = &routes[i];
            break;
        }
    }
    if (r == NULL) {
        if (nroutes == ENC_METRICS_ROUTES_MAX) {
            log_full("route");
            goto done;
        }
        r = &routes[nroutes++];
        snprintf(r->route, sizeof(r->route), "%s", route);
    }
    r->status[status / 100]++;
    r->count++;
    r->sum += seconds;
    for (i = 0; i < NBUCKETS; i++) {
        if (seconds <= buckets[i]) {
            r->bucket[i]++;
            break;
        }
    }

done:
    pthread_mutex_unlock(&lock);
}


/* HELP text may not contain newlines or backslashes unescaped */
static void
copy_help(char *dst, size_t size, const char *help)
{
    size_t  i;

    for (i = 0; help != NULL && help[i] != '\0' && i < size - 1; i++) {
        dst[i] = (help[i] == '\n' || help[i] == '\\') ? ' ' : help[i];
    }
    dst[i] = '\0';
}


/* called with lock held: whether name is a histogram's */
static int
is_histogram(const char *name)
{
    size_t  i;

    for (i = 0; i < nhists; i++) {
        if (strcmp(hists[i].name, name) == 0) {
            return 1;
        }
    }
    return 0;
}


/* counters and gauges share the table; a name keeps its first kind */
static void
metric_update(const char *name, const char *help, double v, int gauge)
{
    size_t      i;
    counter_t  *c = NULL;

    if (!valid_name(name)) {
        return;
    }

    pthread_mutex_lock(&lock);
    for (i = 0; i < ncounters; i++) {
        if (strcmp(counters[i].name, name) == 0) {
            c = &counters[i];
            break;
        }
    }
    if (c == NULL) {
        if (ncounters == ENC_METRICS_COUNTERS_MAX) {
            log_full("counter");
            goto done;
        }
        if (is_histogram(name)) {
            goto done;
        }
        c = &counters[ncounters++];
        snprintf(c->name, sizeof(c->name), "%s", name);
        copy_help(c->help, sizeof(c->help), help);
        c->gauge = gauge;
    }
    if (c->gauge) {
        c->value = v;
    } else {
        c->value += v;
    }

done:
    pthread_mutex_unlock(&lock);
}


void
enc_metrics_counter_add(const char *name, const char *help, double v)
{
    metric_update(name, help, v, 0);
}


void
enc_metrics_gauge_set(const char *name, const char *help, double v)
{
    metric_update(name, help, v, 1);
}


/*
 * Renders name, value pairs as a="x",b="y" into out (LABELS_MAX_LEN);
 * values escaped (backslash, quote, newline).  -1 for a bad label name,
 * more than 4 pairs, or a result too long.
 */
static int
render_labels(const char *const *labels, char *out)
{
    size_t       i, n = 0, k;
    const char  *v;

    out[0] = '\0';
    for (i = 0; labels != NULL && labels[i] != NULL; i += 2) {
        if (i >= 8 || labels[i + 1] == NULL || !valid_name(labels[i])
            || strchr(labels[i], ':') != NULL)
        {
            return -1;
        }
        k = strlen(labels[i]);
        if (n + k + 4 >= LABELS_MAX_LEN) {
            return -1;
        }
        if (n > 0) {
            out[n++] = ',';
        }
        memcpy(out + n, labels[i], k);
        n += k;
        out[n++] = '=';
        out[n++] = '"';
        for (v = labels[i + 1]; *v != '\0'; v++) {
            if (n + 4 >= LABELS_MAX_LEN) {
                return -1;
            }
            if (*v == '\\' || *v == '"') {
                out[n++] = '\\';
                out[n++] = *v;
            } else if (*v == '\n') {
                out[n++] = '\\';
                out[n++] = 'n';
            } else {
                out[n++] = *v;
            }
        }
        out[n++] = '"';
        out[n] = '\0';
    }
    return 0;
}


void
enc_metrics_gauge_set_labels(const char *name, const char *help,
    const char *const *labels, double v)
{
    size_t     i;
    char       text[LABELS_MAX_LEN];
    series_t  *s = NULL;

    if (!valid_name(name) || render_labels(labels, text) != 0) {
        return;
    }

    pthread_mutex_lock(&lock);
    for (i = 0; i < nseries; i++) {
        if (strcmp(series[i].name, name) == 0
            && strcmp(series[i].labels, text) == 0)
        {
            s = &series[i];
            break;
        }
    }
    if (s == NULL) {
        if (nseries == ENC_METRICS_SERIES_MAX) {
            log_full("series");
            goto done;
        }
        s = &series[nseries++];
        snprintf(s->name, sizeof(s->name), "%s", name);
        memcpy(s->labels, text, sizeof(text));
        copy_help(s->help, sizeof(s->help), help);
    }
    s->value = v;

done:
    pthread_mutex_unlock(&lock);
}


void
enc_metrics_gauge_clear(const char *name)
{
    size_t  i, n = 0;

    if (name == NULL) {
        return;
    }
    pthread_mutex_lock(&lock);
    for (i = 0; i < nseries; i++) {
        if (strcmp(series[i].name, name) != 0) {
            if (n != i) {
                series[n] = series[i];
            }
            n++;
        }
    }
    if (n < nseries) {
        memset(&series[n], 0, (nseries - n) * sizeof(series_t));
    }
    nseries = n;
    pthread_mutex_unlock(&lock);
}


void
enc_metrics_histogram_observe(const char *name, const char *help,
    const double *bounds, size_t nbounds, double v)
{
    size_t   i;
    hist_t  *h = NULL;

    if (!valid_name(name) || nbounds > ENC_METRICS_BOUNDS_MAX
        || (nbounds > 0 && bounds == NULL))
    {
        return;
    }
    for (i = 1; i < nbounds; i++) {
        if (!(bounds[i] > bounds[i - 1])) {
            return;
        }
    }

    pthread_mutex_lock(&lock);
    for (i = 0; i < nhists; i++) {
        if (strcmp(hists[i].name, name) == 0) {
            h = &hists[i];
            break;
        }
    }
    if (h == NULL) {
        for (i = 0; i < ncounters; i++) {
            if (strcmp(counters[i].name, name) == 0) {
                goto done;
            }
        }
        if (nhists == ENC_METRICS_HISTS_MAX) {
            log_full("histogram");
            goto done;
        }
        h = &hists[nhists++];
        snprintf(h->name, sizeof(h->name), "%s", name);
        copy_help(h->help, sizeof(h->help), help);
        for (i = 0; i < nbounds; i++) {
            h->bound[i] = bounds[i];
        }
        h->nbounds = nbounds;
    }
    i = 0;
    while (i < h->nbounds && v > h->bound[i]) {
        i++;
    }
    h->bucket[i]++;
    h->count++;
    h->sum += v;

done:
    pthread_mutex_unlock(&lock);
}


void
enc_metrics_observe(const char *name, const char *help, double seconds)
{
    if (!(seconds >= 0)) {                     /* negative, or NaN */
        seconds = 0;
    }
    enc_metrics_histogram_observe(name, help, buckets, NBUCKETS, seconds);
}


void
enc_metrics_render(FILE *out)
{
    size_t              i, b;
    unsigned long long  cum;
    static const char  *const classes[] = {
        "0xx", "1xx", "2xx", "3xx", "4xx", "5xx"
    };

    pthread_mutex_lock(&lock);

    fprintf(out, "# HELP encore_worker_info Worker identity.\n"
                 "# TYPE encore_worker_info gauge\n"
                 "encore_worker_info{worker=\"%s\"} 1\n", worker_name);

    fprintf(out, "# HELP encore_http_requests_total HTTP requests by route"
                 " and status class.\n"
                 "# TYPE encore_http_requests_total counter\n");
    for (i = 0; i < nroutes; i++) {
        for (b = 1; b < 6; b++) {
            if (routes[i].status[b] == 0) {
                continue;
            }
            fprintf(out, "encore_http_requests_total{route=\"%s\","
                         "status=\"%s\"} %llu\n",
                    routes[i].route, classes[b], routes[i].status[b]);
        }
    }

    fprintf(out, "# HELP encore_http_request_duration_seconds Request"
                 " latency by route.\n"
                 "# TYPE encore_http_request_duration_seconds histogram\n");
    for (i = 0; i < nroutes; i++) {
        cum = 0;
        for (b = 0; b < NBUCKETS; b++) {
            cum += routes[i].bucket[b];
            fprintf(out, "encore_http_request_duration_seconds_bucket"
                         "{route=\"%s\",le=\"%g\"} %llu\n",
                    routes[i].route, buckets[b], cum);
        }
        fprintf(out, "encore_http_request_duration_seconds_bucket"
                     "{route=\"%s\",le=\"+Inf\"} %llu\n"
                     "encore_http_request_duration_seconds_sum"
                     "{route=\"%s\"} %.6f\n"
                     "encore_http_request_duration_seconds_count"
                     "{route=\"%s\"} %llu\n",
                routes[i].route, routes[i].count,
                routes[i].route, routes[i].sum,
                routes[i].route, routes[i].count);
    }

    for (i = 0; i < ncounters; i++) {
        fprintf(out, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n",
                counters[i].name, counters[i].help, counters[i].name,
                counters[i].gauge ? "gauge" : "counter",
                counters[i].name, counters[i].value);
    }

    /* labelled gauges: a family's HELP and TYPE once, at its first series */
    for (i = 0; i < nseries; i++) {
        for (b = 0; b < i; b++) {
            if (strcmp(series[b].name, series[i].name) == 0) {
                break;
            }
        }
        if (b < i) {
            continue;
        }
        fprintf(out, "# HELP %s %s\n# TYPE %s gauge\n", series[i].name,
                series[i].help, series[i].name);
        for (b = i; b < nseries; b++) {
            if (strcmp(series[b].name, series[i].name) == 0) {
                fprintf(out, "%s{%s} %.17g\n", series[b].name,
                        series[b].labels, series[b].value);
            }
        }
    }

    for (i = 0; i < nhists; i++) {
        fprintf(out, "# HELP %s %s\n# TYPE %s histogram\n", hists[i].name,
                hists[i].help, hists[i].name);
        cum = 0;
        for (b = 0; b < hists[i].nbounds; b++) {
            cum += hists[i].bucket[b];
            fprintf(out, "%s_bucket{le=\"%g\"} %llu\n", hists[i].name,
                    hists[i].bound[b], cum);
        }
        fprintf(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.17g\n"
                     "%s_count %llu\n",
                hists[i].name, hists[i].count, hists[i].name, hists[i].sum,
                hists[i].name, hists[i].count);
    }

    pthread_mutex_unlock(&lock);
}
