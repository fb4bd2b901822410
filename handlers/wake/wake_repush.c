/* wake_repush.c: re-pushes from the due-time sorted set mdm:repush. */
#include "wake.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/conf.h"
#include "../../core/log.h"
#include "../../store/store.h"
#include "../../store/store_fleet.h"
#include "../../store/store_mdm.h"

#define WAKE_REPUSH_TICK_MS 1000
#define WAKE_REPUSH_BATCH 500 /* due devices per script call */

struct wake_repush {
    struct store *store;
    struct wake *w;
    struct event *timer;
    struct store_op *op;
    int64_t after_ms, max_ms, notnow_ms;
    int max_attempts;
    uint64_t pushed;
};

static void wake_repush_arm(struct wake_repush *r, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(r->timer, &tv);
}

/* Hands [[udid, token, magic, topic]...] to the wake; the number of them. */
static size_t wake_repush_wake(struct wake_repush *r, const char *str, size_t len)
{
    json_t *j = json_loadb(str, len, 0, NULL);
    size_t n = json_is_array(j) ? json_array_size(j) : 0;
    struct store_push_target *t = xcalloc(n + 1, sizeof(*t));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(j, i);
        const char *f[4];
        for (int x = 0; x < 4; x++)
            f[x] = json_string_value(json_array_get(e, (size_t)x));
        if (f[0] == NULL || f[1] == NULL || f[2] == NULL || f[3] == NULL)
            continue;
        t[k++] = (struct store_push_target){f[0], f[1], f[2], f[3]};
        log_info("event=repush udid=%s", f[0]);
    }
    if (k > 0)
        wake_devices(r->w, t, k);
    free(t);
    json_decref(j);
    r->pushed += k;
    return n;
}

static void wake_repush_on_due(void *arg, int err, long long num, const char *str, size_t len)
{
    struct wake_repush *r = arg;
    r->op = NULL;
    size_t n = err == MDMD_OK && str != NULL ? wake_repush_wake(r, str, len) : 0;
    /* A full batch: more are due, go on at once (next loop turn). */
    wake_repush_arm(r, n >= WAKE_REPUSH_BATCH ? 0 : WAKE_REPUSH_TICK_MS);
}

static void wake_repush_tick(evutil_socket_t fd, short what, void *arg)
{
    struct wake_repush *r = arg;
    char now[24], lim[16], after[24], max[24], maxn[16];
    snprintf(now, sizeof(now), "%lld", (long long)util_now_ms());
    snprintf(lim, sizeof(lim), "%d", WAKE_REPUSH_BATCH);
    snprintf(after, sizeof(after), "%lld", (long long)r->after_ms);
    snprintf(max, sizeof(max), "%lld", (long long)r->max_ms);
    snprintf(maxn, sizeof(maxn), "%d", r->max_attempts);
    const char *v[] = {"mdm:events", now, lim, after, max, maxn};
    r->op =
        store_fleet_eval(r->store, STORE_FLEET_REPUSH_DUE, 1, 6, v, NULL, wake_repush_on_due, r);
}

struct wake_repush *wake_repush_new(struct event_base *base, struct store *store, struct wake *w,
                                    const struct conf *cf)
{
    struct wake_repush *r = xcalloc(1, sizeof(*r));
    r->store = store;
    r->w = w;
    r->after_ms = (int64_t)cf->repush_after_s * 1000;
    r->max_ms = (int64_t)cf->repush_max_s * 1000;
    r->notnow_ms = (int64_t)cf->notnow_repush_s * 1000;
    r->max_attempts = cf->repush_max_attempts;
    r->timer = evtimer_new(base, wake_repush_tick, r);
    wake_set_repush_after(w, r->after_ms);
    /* The schedule is read even with repush_after_s 0: NotNow re-pushes use it. */
    wake_repush_arm(r, WAKE_REPUSH_TICK_MS);
    return r;
}

void wake_repush_free(struct wake_repush *r)
{
    if (r == NULL)
        return;
    store_op_cancel(r->op);
    event_free(r->timer);
    free(r);
}

uint64_t wake_repush_count(const struct wake_repush *r)
{
    return r != NULL ? r->pushed : 0;
}

static void wake_repush_on_at(void *arg, int err, long long num, const char *str, size_t len)
{
    (void)arg;
    if (err != MDMD_OK)
        log_warn("event=repush_schedule_failed err=%d", err);
}

void wake_repush_notnow(struct wake_repush *r, const char *udid)
{
    if (r == NULL || r->notnow_ms <= 0)
        return;
    char due[24];
    snprintf(due, sizeof(due), "%lld", (long long)(util_now_ms() + r->notnow_ms));
    const char *v[] = {udid, due};
    (void)store_fleet_eval(r->store, STORE_FLEET_REPUSH_AT, 0, 2, v, NULL, wake_repush_on_at, NULL);
}
