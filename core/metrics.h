/* metrics.h: counters and latency histograms, and the Prometheus text format
 * they are rendered in (GET /metrics, handlers/api/api_metrics.c).
 *
 * Every module keeps its own numbers in plain structs (push_stats,
 * wake_stats, the per-route counts of http.c, the Redis round trips of
 * store.c); struct metrics holds what the handlers count and the listeners
 * to report on.  Single-threaded: everything runs on the loop's thread, so
 * plain integers suffice.  Nothing here allocates on the request path:
 * metrics_hist_observe() and the counters are a few adds.
 *
 * Ownership: main owns the struct metrics and borrows the listeners into it;
 * handlers reach it through app->metrics.  A struct metrics_text owns its
 * buffer until metrics_text_take(). */
#ifndef MDMD_METRICS_H
#define MDMD_METRICS_H

#include "util.h"

#include <stddef.h>
#include <stdint.h>

struct http_server;

/* Latency buckets in seconds, shared by every histogram: from 100 µs (a
 * Redis round trip on the same host) to 10 s (a request that hit a timeout). */
#define METRICS_NBUCKETS 16
extern const double metrics_buckets[METRICS_NBUCKETS];

struct metrics_hist {
    uint64_t bucket[METRICS_NBUCKETS + 1]; /* per bucket, not cumulative; last: +Inf */
    uint64_t count;
    double sum; /* seconds */
};
void metrics_hist_observe(struct metrics_hist *h, double seconds);
/* Monotonic clock in nanoseconds, for the durations observed. */
int64_t metrics_now_ns(void);

/* One endpoint (route) of a listener: answers by status, and how long they took. */
#define METRICS_STATUS_MIN 100
#define METRICS_STATUS_N 500 /* statuses 100..599 */
struct metrics_endpoint {
    uint64_t status[METRICS_STATUS_N];
    struct metrics_hist latency;
};
void metrics_endpoint_observe(struct metrics_endpoint *e, int status, double seconds);

/* Device reports on the command endpoint, by Status. */
enum metrics_report {
    METRICS_R_IDLE,
    METRICS_R_ACKNOWLEDGED,
    METRICS_R_ERROR,
    METRICS_R_FORMAT_ERROR,
    METRICS_R_NOTNOW,
    METRICS_R_N
};
extern const char *const metrics_report_names[METRICS_R_N];
int metrics_report_of(const char *status) MDMD_MUSTCHECK; /* -1 if not one of them */

#define METRICS_MAX_LISTENERS 4

struct metrics {
    struct http_server *listeners[METRICS_MAX_LISTENERS]; /* borrowed; set by main */
    int nlisteners;
    uint64_t commands_queued;      /* device queue entries added by the admin API */
    uint64_t commands_not_queued;  /* targets that were unknown or checked out */
    uint64_t reports[METRICS_R_N]; /* command endpoint reports, by Status */
    uint64_t authenticates;        /* Authenticate check-ins answered 200 */
    uint64_t enrollments;          /* TokenUpdates that completed an enrollment */
    uint64_t checkouts;            /* CheckOut check-ins answered 200 */
    uint64_t jobs_started, jobs_done, jobs_failed;
};
void metrics_add_listener(struct metrics *m, struct http_server *hs);

/* ---- the text format ---- */

struct metrics_text {
    char *buf; /* owned; NUL-terminated */
    size_t len, cap;
    char label[32]; /* put first in every sample's labels while set (metrics_text_label) */
};
void metrics_text_init(struct metrics_text *t);
void metrics_text_free(struct metrics_text *t); /* buf too, unless taken */
char *metrics_text_take(struct metrics_text *t, size_t *len) MDMD_MUSTCHECK; /* caller frees */
/* Labels the samples that follow with label ('k="v"'; "" or NULL: none), e.g.
 * worker="2" on the numbers one worker process keeps (core/super.h). */
void metrics_text_label(struct metrics_text *t, const char *label);
void metrics_text_printf(struct metrics_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "# HELP name help" and "# TYPE name type". */
void metrics_family(struct metrics_text *t, const char *name, const char *type, const char *help);
/* name{labels} value; labels is 'k="v",k2="v2"' or "" (values already escaped). */
void metrics_sample(struct metrics_text *t, const char *name, const char *labels, double value);
/* The _bucket/_sum/_count series of h. */
void metrics_hist_render(struct metrics_text *t, const char *name, const char *labels,
                         const struct metrics_hist *h);
/* Copies s into out (outlen bytes) escaped for a label value. */
void metrics_escape(const char *s, char *out, size_t outlen);

#endif
