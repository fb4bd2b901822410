#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

const double metrics_buckets[METRICS_NBUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

const char *const metrics_report_names[METRICS_R_N] = {
    [METRICS_R_IDLE] = "Idle",     [METRICS_R_ACKNOWLEDGED] = "Acknowledged",
    [METRICS_R_ERROR] = "Error",   [METRICS_R_FORMAT_ERROR] = "CommandFormatError",
    [METRICS_R_NOTNOW] = "NotNow",
};

void metrics_hist_observe(struct metrics_hist *h, double seconds)
{
    size_t i = 0;
    while (i < METRICS_NBUCKETS && seconds > metrics_buckets[i])
        i++;
    h->bucket[i]++;
    h->count++;
    h->sum += seconds;
}

int64_t metrics_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void metrics_endpoint_observe(struct metrics_endpoint *e, int status, double seconds)
{
    if (status >= METRICS_STATUS_MIN && status < METRICS_STATUS_MIN + METRICS_STATUS_N)
        e->status[status - METRICS_STATUS_MIN]++;
    metrics_hist_observe(&e->latency, seconds);
}

int metrics_report_of(const char *status)
{
    for (int i = 0; status != NULL && i < METRICS_R_N; i++)
        if (strcmp(status, metrics_report_names[i]) == 0)
            return i;
    return -1;
}

void metrics_add_listener(struct metrics *m, struct http_server *hs)
{
    if (hs != NULL && m->nlisteners < METRICS_MAX_LISTENERS)
        m->listeners[m->nlisteners++] = hs;
}

/* ---- text ---- */

void metrics_text_init(struct metrics_text *t)
{
    t->cap = 16384;
    t->buf = xmalloc(t->cap);
    t->buf[0] = '\0';
    t->len = 0;
    t->label[0] = '\0';
}

void metrics_text_label(struct metrics_text *t, const char *label)
{
    snprintf(t->label, sizeof(t->label), "%s", label != NULL ? label : "");
}

/* labels with t's label first, in out (len bytes). */
static const char *metrics_labels(const struct metrics_text *t, const char *labels, char *out,
                                  size_t len)
{
    if (t->label[0] == '\0')
        return labels;
    snprintf(out, len, "%s%s%s", t->label, *labels ? "," : "", labels);
    return out;
}

void metrics_text_free(struct metrics_text *t)
{
    free(t->buf);
    t->buf = NULL;
}

char *metrics_text_take(struct metrics_text *t, size_t *len)
{
    char *b = t->buf;
    *len = t->len;
    t->buf = NULL;
    return b;
}

void metrics_text_printf(struct metrics_text *t, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        t->cap = 2 * t->cap + (size_t)n;
        t->buf = xrealloc(t->buf, t->cap);
    }
}

void metrics_family(struct metrics_text *t, const char *name, const char *type, const char *help)
{
    metrics_text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void metrics_sample(struct metrics_text *t, const char *name, const char *labels, double value)
{
    char all[512];
    labels = metrics_labels(t, labels, all, sizeof(all));
    /* %.17g prints integers exactly (counters stay below 2^53 in practice). */
    metrics_text_printf(t, "%s%s%s%s %.17g\n", name, *labels ? "{" : "", labels, *labels ? "}" : "",
                        value);
}

void metrics_hist_render(struct metrics_text *t, const char *name, const char *labels,
                         const struct metrics_hist *h)
{
    char all[512];
    uint64_t cum = 0;
    labels = metrics_labels(t, labels, all, sizeof(all));
    const char *sep = *labels ? "," : "";
    for (int i = 0; i <= METRICS_NBUCKETS; i++) {
        cum += h->bucket[i];
        if (i < METRICS_NBUCKETS)
            metrics_text_printf(t, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep,
                                metrics_buckets[i], (unsigned long long)cum);
        else
            metrics_text_printf(t, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                                (unsigned long long)cum);
    }
    metrics_text_printf(t, "%s_sum%s%s%s %.9g\n", name, *labels ? "{" : "", labels,
                        *labels ? "}" : "", h->sum);
    metrics_text_printf(t, "%s_count%s%s%s %llu\n", name, *labels ? "{" : "", labels,
                        *labels ? "}" : "", (unsigned long long)h->count);
}

void metrics_escape(const char *s, char *out, size_t outlen)
{
    size_t n = 0;
    for (; *s != '\0' && n + 3 < outlen; s++) {
        if (*s == '"' || *s == '\\')
            out[n++] = '\\';
        if (*s == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else {
            out[n++] = *s;
        }
    }
    out[n] = '\0';
}
