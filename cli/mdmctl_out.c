/* mdmctl_out.c: what a person reads: aligned tables, UTC times, a progress
 * bar on stderr, and the server's errors. */
#include "mdmctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../core/util.h"

#define MDMCTL_OUT_MAX_COLS 12
#define MDMCTL_OUT_CELL_MAX 48 /* wider cells are cut, so rows stay on one line */

struct mdmctl_table {
    int ncols;
    char **cells; /* rows * ncols, heads first */
    size_t nrows, cap;
};

static void mdmctl_out_table_add(struct mdmctl_table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 16;
        t->cells = xrealloc(t->cells, t->cap * (size_t)t->ncols * sizeof(char *));
    }
    for (int c = 0; c < t->ncols; c++) {
        const char *s = cells[c] != NULL ? cells[c] : "";
        size_t n = strlen(s);
        char *v =
            n > MDMCTL_OUT_CELL_MAX ? xasprintf("%.*s...", MDMCTL_OUT_CELL_MAX - 3, s) : xstrdup(s);
        for (char *p = v; *p; p++)
            if (*p == '\n' || *p == '\t' || *p == '\r')
                *p = ' ';
        t->cells[t->nrows * (size_t)t->ncols + (size_t)c] = v;
    }
    t->nrows++;
}

struct mdmctl_table *mdmctl_out_table_new(const char *const *heads, int ncols)
{
    struct mdmctl_table *t = xcalloc(1, sizeof(*t));
    t->ncols = ncols < MDMCTL_OUT_MAX_COLS ? ncols : MDMCTL_OUT_MAX_COLS;
    mdmctl_out_table_add(t, heads);
    return t;
}

void mdmctl_out_table_row(struct mdmctl_table *t, const char *const *cells)
{
    mdmctl_out_table_add(t, cells);
}

void mdmctl_out_table_print(struct mdmctl_table *t)
{
    size_t w[MDMCTL_OUT_MAX_COLS] = {0};
    for (size_t r = 0; r < t->nrows; r++)
        for (int c = 0; c < t->ncols; c++) {
            size_t n = strlen(t->cells[r * (size_t)t->ncols + (size_t)c]);
            w[c] = n > w[c] ? n : w[c];
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            char *s = t->cells[r * (size_t)t->ncols + (size_t)c];
            if (c + 1 < t->ncols)
                printf("%-*s  ", (int)w[c], s);
            else
                printf("%s\n", s);
            free(s);
        }
    }
    free(t->cells);
    free(t);
}

void mdmctl_out_time(const char *ms, char *out, size_t len)
{
    char *end;
    long long v = ms != NULL ? strtoll(ms, &end, 10) : 0;
    time_t secs = (time_t)(v / 1000);
    struct tm tm;
    if (v <= 0 || *end != '\0' || gmtime_r(&secs, &tm) == NULL)
        snprintf(out, len, "-");
    else
        strftime(out, len, "%Y-%m-%d %H:%M:%S", &tm);
}

void mdmctl_out_scalar(json_t *v, char *out, size_t len)
{
    if (json_is_string(v))
        snprintf(out, len, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(out, len, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(out, len, "%g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(out, len, "%s", json_is_true(v) ? "yes" : "no");
    else
        out[0] = '\0';
}

void mdmctl_out_progress(const struct mdmctl *m, long done, long total, const char *what, int final)
{
    if (!m->progress && !isatty(2))
        return;
    int width = 30,
        fill = total > 0 ? (int)((double)(done > total ? total : done) * width / (double)total) : 0;
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\r[%s] %3d%% %ld/%ld %s", bar,
            total > 0 ? (int)(100.0 * (double)(done > total ? total : done) / (double)total) : 0,
            done, total, what);
    if (final)
        fputc('\n', stderr);
    fflush(stderr);
}

void mdmctl_out_error(const struct mdmctl_resp *r)
{
    json_t *j = r->body != NULL ? json_loads(r->body, 0, NULL) : NULL;
    const char *why = json_string_value(json_object_get(j, "error"));
    fprintf(stderr, "mdmctl: %d %s\n", r->status,
            why != NULL ? why : (r->body != NULL && r->len > 0 ? r->body : "(no body)"));
    json_decref(j);
}

void mdmctl_out_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s != NULL)
        printf("%s\n", s);
    free(s);
}
