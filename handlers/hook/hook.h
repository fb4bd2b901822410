/* hook.h: webhooks with durable delivery.  Every entry of mdm:events is
 * POSTed as JSON to each webhook_url, read through a Redis consumer group per
 * URL (hook:<hash of the URL>), so a restart, or another mdmd after this one
 * died, continues where delivery stopped; an entry is acknowledged only after
 * a 2xx.  One event at a time per URL, in stream order: order per device holds
 * because order overall does.  A failed attempt is retried with exponential
 * backoff (1 s doubling, capped at webhook_retry_max_s) until the event is
 * webhook_max_age_s old, then parked in the dead-letter stream
 * mdm:hook:dead, which POST /v1/webhooks/dead-letter/replay sends again.
 *
 * Each POST carries X-Mdmd-Delivery (the event's stream id: the idempotency
 * id, the same on every attempt), X-Mdmd-Event (its type) and
 * X-Mdmd-Signature: sha256=<hex HMAC-SHA256 of the body under
 * webhook_secret>.  Single-threaded, on the loop.  Borrows base and store. */
#ifndef MDMD_HOOK_H
#define MDMD_HOOK_H

#include <stdint.h>

struct event_base;
struct store;
struct conf;
struct hook;

struct hook_stats {     /* summed over the URLs */
    uint64_t delivered; /* 2xx answers */
    uint64_t attempts_failed;
    uint64_t retries; /* attempts after the first */
    uint64_t dead;    /* events parked in the dead-letter stream */
    int64_t lag_ms;   /* age of the oldest event in flight now (0: none) */
    int targets;
};

/* NULL when webhook_url is empty (hook_free and hook_stats take NULL). */
struct hook *hook_new(struct event_base *base, struct store *store, const struct conf *cf);
void hook_free(struct hook *h); /* NULL-safe; an event in flight stays pending in Redis */
void hook_stats(const struct hook *h, struct hook_stats *out);
/* The consumer group names, for GET /v1/webhooks; n of them (0 for NULL). */
int hook_groups(const struct hook *h, const char *const **groups, const char *const **urls);

#endif
