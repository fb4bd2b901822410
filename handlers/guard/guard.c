#include "guard.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../ca/ca_expiry.h"
#include "../../core/conf.h"
#include "../../core/log.h"
#include "../../core/util.h"
#include "../../push/push.h"
#include "../../store/store.h"
#include "../../store/store_fleet.h"

#define GUARD_PERIOD_S 3600

const char *const guard_cert_names[GUARD_N] = {"apns", "ca", "server", "scep_ra"};
static const int guard_thresholds[] = {0, 1, 3, 7, 14, 30}; /* ascending */

struct guard {
    struct store *store;
    const struct push *push;
    char *path[GUARD_N]; /* PEM files; NULL: from push or none */
    int64_t not_after[GUARD_N];
    struct event *timer;
};

static void guard_on_event(void *arg, int err, long long num, const char *str, size_t len)
{
    if (err != MDMD_OK)
        log_warn("event=cert_expiring_event_failed err=%d", err);
}

/* The smallest threshold days is within, once per certificate and threshold. */
static void guard_event(struct guard *g, int c, int days)
{
    for (size_t i = 0; i < ARRAY_LEN(guard_thresholds); i++) {
        if (days > guard_thresholds[i])
            continue;
        char na[24], th[16], dl[16], now[24];
        snprintf(na, sizeof(na), "%lld", (long long)g->not_after[c]);
        snprintf(th, sizeof(th), "%d", guard_thresholds[i]);
        snprintf(dl, sizeof(dl), "%d", days);
        snprintf(now, sizeof(now), "%lld", (long long)util_now_ms());
        const char *v[] = {"mdm:events", guard_cert_names[c], na, th, dl, now};
        store_fleet_eval(g->store, STORE_FLEET_EXPIRY_EVENT, 1, 6, v, NULL, guard_on_event, NULL);
        return;
    }
}

static void guard_check(evutil_socket_t fd, short what, void *arg)
{
    struct guard *g = arg;
    int64_t now = util_now_ms() / 1000;
    for (int c = 0; c < GUARD_N; c++) {
        int64_t na = 0;
        if (c == GUARD_APNS && g->push != NULL)
            na = push_not_after(g->push);
        else if (g->path[c] != NULL && ca_expiry_file(g->path[c], &na) != 0)
            na = 0;
        g->not_after[c] = na;
        if (na == 0)
            continue;
        int days = (int)((na - now) / 86400 - (na < now ? 1 : 0));
        if (days <= GUARD_WARN_DAYS) {
            log_warn("event=cert_expiring what=%s days_left=%d", guard_cert_names[c], days);
            guard_event(g, c, days);
        }
    }
    struct timeval tv = {GUARD_PERIOD_S, 0};
    evtimer_add(g->timer, &tv);
}

struct guard *guard_new(struct event_base *base, struct store *store, const struct push *push,
                        const struct conf *cf)
{
    struct guard *g = xcalloc(1, sizeof(*g));
    g->store = store;
    g->push = push;
    g->path[GUARD_CA] = xasprintf("%s/ca.crt", cf->ca_dir);
    g->path[GUARD_SERVER] = *cf->tls_cert_file ? xstrdup(cf->tls_cert_file) : NULL;
    g->path[GUARD_SCEP_RA] = xasprintf("%s/scep_ra.crt", cf->ca_dir);
    g->timer = evtimer_new(base, guard_check, g);
    /* Soon, not at once: the store is still connecting, and the SCEP RA may
     * be in the making on the worker. */
    struct timeval tv = {2, 0};
    evtimer_add(g->timer, &tv);
    return g;
}

void guard_free(struct guard *g)
{
    if (g == NULL)
        return;
    event_free(g->timer);
    for (int c = 0; c < GUARD_N; c++)
        free(g->path[c]);
    free(g);
}

int guard_days_left(const struct guard *g, int c, int *known)
{
    *known = g != NULL && g->not_after[c] != 0;
    if (!*known)
        return 0;
    int64_t na = g->not_after[c], now = util_now_ms() / 1000;
    return (int)((na - now) / 86400 - (na < now ? 1 : 0));
}

/* ---- push certificate renewal ---- */

struct guard_renew {
    struct guard *g;
    struct push *p;
    struct push_cert *c;
    int force;
    guard_renew_fn *cb;
    void *arg;
};

/* The topic most devices of the sample have, or NULL (none). */
static const char *guard_fleet_topic(json_t *o)
{
    const char *k, *best = NULL;
    json_t *v;
    json_int_t n = 0;
    json_object_foreach(o, k, v)
    {
        if (json_is_integer(v) && json_integer_value(v) > n) {
            n = json_integer_value(v);
            best = k;
        }
    }
    return best;
}

static void guard_on_topics(void *arg, int err, long long num, const char *str, size_t len)
{
    struct guard_renew *r = arg;
    const char *nt = push_cert_topic(r->c);
    json_t *o = err == MDMD_OK && str != NULL ? json_loadb(str, len, 0, NULL) : NULL;
    const char *ft = o != NULL ? guard_fleet_topic(o) : NULL;
    char a[160], b[160];
    if (o == NULL) {
        log_warn("event=push_cert_renew_failed reason=store err=%d", err);
        r->cb(r->arg, 503, "", nt);
        push_cert_free(r->c);
    } else if (ft != NULL && strcmp(ft, nt) != 0 && !r->force) {
        log_err("event=push_cert_refused why=topic_differs fleet_topic=%s new_topic=%s "
                "hint=\"devices keep their topic until they enroll again; force to install\"",
                log_str(ft, a, sizeof(a)), log_str(nt, b, sizeof(b)));
        r->cb(r->arg, 409, ft, nt);
        push_cert_free(r->c);
    } else {
        if (ft != NULL && strcmp(ft, nt) != 0)
            log_warn("event=push_cert_topic_forced fleet_topic=%s new_topic=%s",
                     log_str(ft, a, sizeof(a)), log_str(nt, b, sizeof(b)));
        char *keep = xstrdup(nt);
        push_cert_install(r->p, r->c);
        guard_check(-1, 0, r->g); /* days left of the new one, now */
        r->cb(r->arg, 0, ft != NULL ? ft : "", keep);
        free(keep);
    }
    json_decref(o);
    free(r);
}

void guard_push_renew(struct guard *g, struct push *p, struct push_cert *c, int force,
                      guard_renew_fn *cb, void *arg)
{
    struct guard_renew *r = xcalloc(1, sizeof(*r));
    *r = (struct guard_renew){g, p, c, force, cb, arg};
    store_push_topics(g->store, GUARD_TOPIC_SAMPLE, guard_on_topics, r);
}
