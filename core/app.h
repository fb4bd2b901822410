/* app.h: the handles every handler needs, passed explicitly (never global).
 * Owned by main; the handlers borrow it.  cf is replaced as a whole on SIGHUP,
 * so read settings through app->cf at the time of use; do not keep pointers
 * into it across async steps. */
#ifndef MDMD_APP_H
#define MDMD_APP_H

struct event_base;
struct conf;
struct store;
struct ca;
struct push;
struct wake;
struct wake_repush;
struct hook;
struct guard;
struct feed;
struct worker;
struct enroll_scep_keys;
struct enroll_keys;
struct metrics;
struct http_route;
struct embedded;

struct app {
    struct event_base *base;
    const struct conf *cf; /* current configuration */
    struct store *store;
    struct ca *ca;
    struct push *push;          /* NULL when no APNs certificate is configured */
    struct wake *wake;          /* queues pushes after enqueues */
    struct wake_repush *repush; /* re-pushes unanswered pushes (wake.h) */
    struct hook *hook;          /* webhook delivery (hook.h); NULL when off */
    struct guard *guard;        /* certificate expiry guards (guard.h) */
    struct feed *feed;          /* the live event feed, SSE (feed.h) */
    struct worker *worker;      /* slow crypto off the loop (core/worker.h) */
    struct metrics *metrics;    /* counters for /metrics (core/metrics.h); never NULL */
    const char *api_key;        /* admin REST bearer key (hex), from <data_dir>/api.key */
    const char *seal_key_path;  /* <data_dir>/bootstrap.key: bootstrap tokens at rest (ca_seal.h) */
    struct enroll_scep_keys *scep;          /* SCEP responder and profile signer (enroll.h) */
    const struct http_route *routes_public; /* the 1-way listener's routes (the console
                                               re-dispatches to its /v1 ones) */
    struct enroll_keys *enroll;             /* profile-signing identity, device CA (enroll.h) */
    struct embedded *redis; /* the private redis-server (store/embedded.h), or NULL */
};

#endif
