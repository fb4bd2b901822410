#include "wake.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/log.h"
#include "../../core/util.h"
#include "../../push/push.h"
#include "../../store/store.h"
#include "../../store/store_fleet.h"
#include "../../store/store_mdm.h"

#define WAKE_BUCKETS 4096 /* pending pushes are few at a time: the window is short */

struct wake_item {
    struct wake *w;                  /* NULL once the wake is gone (answer still due) */
    struct wake_item *hnext;         /* bucket chain, while waiting for the window */
    struct wake_item *qnext;         /* FIFO of the window */
    struct wake_item *cprev, *cnext; /* claiming (wake_set_shared): the list */
    struct store_op *op;             /* the claim in flight */
    int queued;                      /* in the hash and the FIFO */
    char udid[UTIL_CHANNEL_MAX];     /* a device or a user channel */
    char token[PUSH_TOKEN_HEX_LEN + 1];
    char magic[PUSH_MAGIC_MAX + 1];
};

struct wake_waiter {
    struct wake_waiter *next;
    uint64_t below;
    wake_ready_fn *cb;
    void *arg;
};

struct wake {
    struct event_base *base;
    struct store *store;
    struct push *push;
    struct event *timer;
    int window_ms;
    struct wake_item *buckets[WAKE_BUCKETS];
    struct wake_item *head, *tail; /* waiting for the window, oldest first */
    struct wake_stats st;
    struct wake_waiter *waiters, **waiters_tail; /* FIFO */
    int64_t repush_after_ms;                     /* wake_set_repush_after() */
    int shared;                                  /* wake_set_shared() */
    struct wake_item *claiming;                  /* waiting for push_claim.lua */
};

static unsigned wake_hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % WAKE_BUCKETS;
}

static struct wake_item *wake_find(struct wake *w, const char *udid)
{
    for (struct wake_item *it = w->buckets[wake_hash(udid)]; it != NULL; it = it->hnext)
        if (strcmp(it->udid, udid) == 0)
            return it;
    return NULL;
}

static void wake_unhash(struct wake *w, struct wake_item *it)
{
    struct wake_item **p = &w->buckets[wake_hash(it->udid)];
    while (*p != it)
        p = &(*p)->hnext;
    *p = it->hnext;
    it->queued = 0;
}

static const char *wake_outcome_name(enum push_outcome o)
{
    switch (o) {
    case PUSH_OK: return "ok";
    case PUSH_BAD_TOKEN: return "bad_token";
    default: return "failed";
    }
}

static void wake_record(struct wake *w, const struct wake_item *it, const char *outcome, int status,
                        const char *reason, const char *apns_id)
{
    struct store_push_outcome o = {it->udid, it->token, outcome,       status,
                                   reason,   apns_id,   util_now_ms(), w->repush_after_ms};
    store_push_result(w->store, &o, NULL, NULL);
}

/* After pending went down: resumes the waiters it is now low enough for. */
static void wake_resume(struct wake *w)
{
    struct wake_waiter *x;
    while ((x = w->waiters) != NULL && w->st.pending < x->below) {
        w->waiters = x->next;
        if (w->waiters == NULL)
            w->waiters_tail = &w->waiters;
        x->cb(x->arg, MDMD_OK);
        free(x);
    }
}

void wake_when_below(struct wake *w, uint64_t below, wake_ready_fn *cb, void *arg)
{
    struct wake_waiter *x = xcalloc(1, sizeof(*x));
    x->below = below;
    x->cb = cb;
    x->arg = arg;
    *w->waiters_tail = x;
    w->waiters_tail = &x->next;
    wake_resume(w);
}

int wake_when_below_cancel(struct wake *w, wake_ready_fn *cb, void *arg)
{
    for (struct wake_waiter **p = &w->waiters; *p != NULL; p = &(*p)->next) {
        struct wake_waiter *x = *p;
        if (x->cb != cb || x->arg != arg)
            continue;
        *p = x->next;
        if (*p == NULL)
            w->waiters_tail = p;
        free(x);
        return 1;
    }
    return 0;
}

static void wake_on_pushed(void *arg, const struct push_result *res)
{
    struct wake_item *it = arg;
    struct wake *w = it->w;
    if (w != NULL && res->outcome != PUSH_CANCELED) {
        w->st.pending--;
        if (res->outcome == PUSH_OK)
            w->st.ok++;
        else if (res->outcome == PUSH_BAD_TOKEN)
            w->st.bad_token++;
        else
            w->st.failed++;
        if (res->outcome != PUSH_OK)
            log_warn("event=push_failed udid=%s outcome=%s status=%d reason=\"%s\"", it->udid,
                     wake_outcome_name(res->outcome), res->status, res->reason);
        wake_record(w, it, wake_outcome_name(res->outcome), res->status, res->reason, res->apns_id);
    }
    free(it);
    if (w != NULL && res->outcome != PUSH_CANCELED)
        wake_resume(w);
}

static void wake_send(struct wake *w, struct wake_item *it)
{
    w->st.pushed++;
    if (push_send(w->push, it->token, it->magic, wake_on_pushed, it) != 0) {
        w->st.pending--;
        w->st.failed++;
        log_warn("event=push_refused udid=%s reason=bad_token_format", it->udid);
        wake_record(w, it, "failed", 0, "BadTokenFormat", "");
        free(it);
    }
}

static void wake_unclaim(struct wake *w, struct wake_item *it)
{
    if (it->cprev != NULL)
        it->cprev->cnext = it->cnext;
    else
        w->claiming = it->cnext;
    if (it->cnext != NULL)
        it->cnext->cprev = it->cprev;
    it->op = NULL;
}

/* 0: another worker pushed this device in this window, and that push
 * wakes it for this enqueue too.  A failed claim pushes anyway: two pushes
 * are better than none. */
static void wake_on_claim(void *arg, int err, long long num, const char *str, size_t len)
{
    struct wake_item *it = arg;
    struct wake *w = it->w;
    wake_unclaim(w, it);
    if (err == MDMD_OK && num == 0) {
        w->st.pending--;
        w->st.coalesced++;
        log_debug("event=push_coalesced udid=%s by=another_worker", it->udid);
        free(it);
        wake_resume(w);
        return;
    }
    if (err != MDMD_OK)
        log_warn("event=push_claim_failed udid=%s err=%s", it->udid, mdmd_strerror(err));
    wake_send(w, it);
}

/* The claim key is in the device's slot (a user channel's, "<UDID>:<user>",
 * is its device's, like every key of docs/REDIS.md). */
static void wake_claim(struct wake *w, struct wake_item *it)
{
    char key[UTIL_CHANNEL_MAX + 32], ms[16];
    const char *colon = strchr(it->udid, ':');
    if (colon != NULL)
        snprintf(key, sizeof(key), "mdm:pushclaim:{%.*s}%s", (int)(colon - it->udid), it->udid,
                 colon);
    else
        snprintf(key, sizeof(key), "mdm:pushclaim:{%s}", it->udid);
    snprintf(ms, sizeof(ms), "%d", w->window_ms);
    it->cprev = NULL;
    it->cnext = w->claiming;
    if (w->claiming != NULL)
        w->claiming->cprev = it;
    w->claiming = it;
    const char *v[] = {key, ms};
    struct store_op *op =
        store_fleet_eval(w->store, STORE_FLEET_PUSH_CLAIM, 1, 2, v, NULL, wake_on_claim, it);
    if (op != NULL) /* NULL: the callback ran already, and it may be gone */
        it->op = op;
}

static void wake_flush(evutil_socket_t fd, short what, void *arg)
{
    struct wake *w = arg;
    struct wake_item *it;
    while ((it = w->head) != NULL) {
        w->head = it->qnext;
        wake_unhash(w, it);
        if (w->shared)
            wake_claim(w, it);
        else
            wake_send(w, it);
    }
    w->tail = NULL;
    wake_resume(w);
}

struct wake *wake_new(struct event_base *base, struct store *store, struct push *push,
                      int window_ms)
{
    struct wake *w = xcalloc(1, sizeof(*w));
    w->base = base;
    w->store = store;
    w->push = push;
    w->window_ms = window_ms;
    w->timer = evtimer_new(base, wake_flush, w);
    w->waiters_tail = &w->waiters;
    return w;
}

void wake_free(struct wake *w)
{
    if (w == NULL)
        return;
    struct wake_item *it = w->head;
    while (it != NULL) {
        struct wake_item *next = it->qnext;
        free(it);
        it = next;
    }
    while ((it = w->claiming) != NULL) {
        store_op_cancel(it->op);
        wake_unclaim(w, it);
        free(it);
    }
    struct wake_waiter *x;
    while ((x = w->waiters) != NULL) {
        w->waiters = x->next;
        x->cb(x->arg, MDMD_ECANCELED);
        free(x);
    }
    event_free(w->timer);
    free(w);
}

/* 1 if t can be pushed by this wake; counts and logs why not. */
static int wake_usable(struct wake *w, const struct store_push_target *t)
{
    if (w->push == NULL) {
        w->st.unconfigured++;
        log_debug("event=push_skipped udid=%s reason=apns_not_configured", t->udid);
        return 0;
    }
    if (strcmp(t->topic, push_topic(w->push)) != 0) { /* read now: a renewal changes it */
        w->st.topic_mismatch++;
        char topic[128];
        log_warn("event=push_skipped udid=%s reason=topic_mismatch device_topic=%s", t->udid,
                 log_str(t->topic, topic, sizeof(topic)));
        return 0;
    }
    if (strlen(t->udid) >= sizeof(((struct wake_item *)0)->udid) ||
        strlen(t->token) != PUSH_TOKEN_HEX_LEN || strlen(t->push_magic) > PUSH_MAGIC_MAX) {
        w->st.failed++;
        log_warn("event=push_skipped udid=%s reason=bad_token_or_magic", t->udid);
        return 0;
    }
    return 1;
}

static void wake_one(struct wake *w, const struct store_push_target *t)
{
    w->st.requested++;
    if (!wake_usable(w, t))
        return;
    struct wake_item *it = wake_find(w, t->udid);
    if (it != NULL) { /* already waiting: the newest token and magic win */
        w->st.coalesced++;
        strcpy(it->token, t->token);
        strcpy(it->magic, t->push_magic);
        return;
    }
    it = xcalloc(1, sizeof(*it));
    it->w = w;
    strcpy(it->udid, t->udid);
    strcpy(it->token, t->token);
    strcpy(it->magic, t->push_magic);
    unsigned h = wake_hash(it->udid);
    it->hnext = w->buckets[h];
    w->buckets[h] = it;
    it->queued = 1;
    if (w->tail != NULL)
        w->tail->qnext = it;
    else
        w->head = it;
    w->tail = it;
    w->st.pending++;
}

void wake_devices(struct wake *w, const struct store_push_target *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        wake_one(w, &t[i]);
    if (w->head != NULL && !evtimer_pending(w->timer, NULL)) {
        struct timeval tv = {w->window_ms / 1000, (w->window_ms % 1000) * 1000};
        evtimer_add(w->timer, &tv);
    }
}

void wake_stats(const struct wake *w, struct wake_stats *out)
{
    *out = w->st;
}

void wake_set_shared(struct wake *w, int on)
{
    w->shared = on;
}

void wake_set_repush_after(struct wake *w, int64_t ms)
{
    w->repush_after_ms = ms;
}
