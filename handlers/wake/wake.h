#ifndef MDMD_WAKE_H
#define MDMD_WAKE_H

#include "../../core/util.h"

#include <stddef.h>
#include <stdint.h>

/* Wakes devices through APNs after commands are queued for them.
 * Pushes for one device that arrive within the coalescing window become one
 * push; every outcome is recorded on the device (store_push_result).  The
 * push module knows nothing of the store: this is where the two meet.
 * Single-threaded.  Enqueue answers never wait for it. */

struct event_base;
struct store;
struct push;
struct store_push_target;

struct wake;

struct wake_stats {
    uint64_t requested; /* devices asked to be woken */
    uint64_t coalesced; /* requests folded into a push already pending */
    uint64_t pushed;    /* handed to the push module */
    uint64_t ok, bad_token, failed;
    uint64_t topic_mismatch; /* device topic differs from the push certificate's */
    uint64_t unconfigured;   /* no push certificate configured */
    uint64_t pending;        /* now: waiting for the window or an answer */
};

/* push may be NULL (no APNs configured): requests are counted and dropped.
 * Borrows base, store and push; they must outlive the wake. */
struct wake *wake_new(struct event_base *base, struct store *store, struct push *push,
                      int window_ms) MDMD_MUSTCHECK;
void wake_free(struct wake *w); /* NULL-safe; pending pushes are dropped */
/* Copies what it needs from t. */
void wake_devices(struct wake *w, const struct store_push_target *t, size_t n);
void wake_stats(const struct wake *w, struct wake_stats *out);

/* Calls cb(arg, MDMD_OK) once fewer than below pushes are pending, from the
 * answer that brings them there; cb(arg, MDMD_ECANCELED) from wake_free.
 * For senders of many pushes (bulk jobs) that must not queue without bound. */
typedef void wake_ready_fn(void *arg, int err);
void wake_when_below(struct wake *w, uint64_t below, wake_ready_fn *cb, void *arg);
/* Takes back a wait of wake_when_below(cb, arg) that has not been called
 * yet (cb will not run for it): 1, or 0 when there is none. */
int wake_when_below_cancel(struct wake *w, wake_ready_fn *cb, void *arg) MDMD_MUSTCHECK;

/* An accepted push to a device with commands queued schedules a re-push
 * after ms (mdm:repush; 0: none).  Re-pushes themselves: wake_repush below. */
void wake_set_repush_after(struct wake *w, int64_t ms);

/* With workers (core/super.h) on: each push, at the end of its window, is
 * first claimed in Redis for the device and window (push_claim.lua), so
 * that wake-ups of one device on several workers within a window make one
 * push, as they do within one process.  Costs a round trip per push. */
void wake_set_shared(struct wake *w, int on);

/* Re-push (wake_repush.c): once a second, the devices whose re-push is due
 * (store/lua/repush_due.lua: backoff, cap, push_unanswered) are woken again
 * through w.  Settings are copied from cf.  Borrows base, store and w. */
struct conf;
struct wake_repush;
struct wake_repush *wake_repush_new(struct event_base *base, struct store *store, struct wake *w,
                                    const struct conf *cf) MDMD_MUSTCHECK;
void wake_repush_free(struct wake_repush *r);            /* NULL-safe */
uint64_t wake_repush_count(const struct wake_repush *r); /* re-pushes handed to the wake */
/* NotNow: the device is pushed again delay_ms from now (earlier schedules win). */
void wake_repush_notnow(struct wake_repush *r, const char *udid);

#endif
