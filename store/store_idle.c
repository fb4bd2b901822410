/* store_idle.c: Idle polls answered from memory (docs/REDIS.md, "Idle
 * polls").  A device that polls again with nothing queued for it (a second
 * push for commands it already fetched, a wake-up for DDM) gets the same
 * empty answer as before: this process remembers, per device and
 * certificate, that its last call to connect.lua found nothing to send, and
 * answers the next Idle polls itself until something that could change the
 * answer happens.  Every script that could (a command queued, a push that
 * awaits an answer, the certificate or the enrollment changed) publishes the
 * UDID on mdm:poke; a subscriber connection of our own drops the entry.
 * Until that connection is subscribed, after it is lost, while the store's
 * own connection is down, and for an entry older than the configured
 * lifetime, nothing is answered from memory.  The
 * polls answered here are still recorded: last_seen and mdm:devices go out
 * behind the answer (connect.lua's "-seen"), at most once a second per
 * device.
 *
 * The race: a call that was sent before a poke arrived may have read the
 * state before the change; its answer teaches nothing (mark != gen).  A
 * poke that arrives after the answer drops what it taught.  So an entry is
 * only wrong while a poke for a change Redis already made is on its way to
 * us, and a device that polls then polled before the change as far as
 * anyone can tell; the push for a queued command goes out only after the
 * poke (the same Redis wrote both replies). */
#include "store_int.h"
#include "store_mdm.h"

#include <event2/event.h>
#include <hiredis/async.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "../core/util.h"

#define STORE_IDLE_SLOTS 16384    /* direct-mapped by UDID: a collision evicts */
#define STORE_IDLE_SEEN_MS 1000   /* last_seen goes out at most this often per device */
#define STORE_IDLE_RETRY_MS 250   /* a lost subscriber connects again after */
#define STORE_IDLE_FLUSH_MAX 1024 /* last_seen writes per loop turn */

struct store_idle_ent {
    char udid[UTIL_CHANNEL_MAX]; /* "" when free */
    char fp[65];
    int64_t until_ms;   /* monotonic: answered from memory until then */
    int64_t written_ms; /* monotonic: when last_seen last went out */
    int64_t seen_ms;    /* wall clock: a poll not yet written, or 0 */
};

struct store_idle {
    struct store *s;
    int ttl_ms;
    redisAsyncContext *sub; /* NULL while down */
    int subscribed;         /* the SUBSCRIBE was confirmed on sub */
    uint64_t gen;           /* counts pokes and flushes: see the race above */
    struct event *retry_ev, *flush_ev;
    struct store_idle_ent *ents; /* STORE_IDLE_SLOTS, allocated on first use */
    int pend[STORE_IDLE_FLUSH_MAX], npend;
    unsigned long hits, pokes; /* for /metrics */
};

static struct store_idle_ent *store_idle_slot(struct store_idle *d, const char *udid)
{
    uint32_t h = 2166136261u;
    for (const char *p = udid; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    if (d->ents == NULL)
        d->ents = xcalloc(STORE_IDLE_SLOTS, sizeof(*d->ents));
    return &d->ents[h % STORE_IDLE_SLOTS];
}

static void store_idle_flush_all(struct store_idle *d)
{
    d->gen++;
    if (d->ents != NULL)
        for (int i = 0; i < STORE_IDLE_SLOTS; i++)
            d->ents[i].udid[0] = '\0';
    d->npend = 0;
}

static void store_idle_drop(struct store_idle *d, const char *udid, size_t len)
{
    char id[UTIL_CHANNEL_MAX];
    d->gen++;
    d->pokes++;
    if (len == 1 && udid[0] == '*') {
        store_idle_flush_all(d);
        return;
    }
    if (len >= sizeof(id) || d->ents == NULL)
        return;
    memcpy(id, udid, len);
    id[len] = '\0';
    struct store_idle_ent *e = store_idle_slot(d, id);
    if (strcmp(e->udid, id) == 0)
        e->udid[0] = '\0';
}

/* ---- the subscriber ---------------------------------------------------- */

static void store_idle_connect(struct store_idle *d);

static void store_idle_lost(struct store_idle *d, const char *why)
{
    if (d->subscribed)
        log_warn("event=idle_cache_off why=\"%s\"", why);
    d->sub = NULL;
    d->subscribed = 0;
    store_idle_flush_all(d);
    struct timeval tv = {0, STORE_IDLE_RETRY_MS * 1000};
    evtimer_add(d->retry_ev, &tv);
}

static void store_idle_on_msg(redisAsyncContext *ac, void *reply, void *priv)
{
    struct store_idle *d = priv;
    const redisReply *r = reply;
    (void)ac;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return; /* the connection going away: the disconnect callback follows */
    if (strcmp(r->element[0]->str, "subscribe") == 0) {
        d->subscribed = 1;
        d->gen++;
        log_info("event=idle_cache_on ttl_ms=%d", d->ttl_ms);
    } else if (strcmp(r->element[0]->str, "message") == 0 &&
               r->element[2]->type == REDIS_REPLY_STRING) {
        store_idle_drop(d, r->element[2]->str, r->element[2]->len);
    }
}

static void store_idle_on_connect(const redisAsyncContext *ac, int status)
{
    struct store_idle *d = ac->data;
    if (d == NULL)
        return;
    if (status != REDIS_OK) { /* hiredis frees ac when we return */
        store_idle_lost(d, ac->c.errstr);
        return;
    }
    if (redisAsyncCommand(d->sub, store_idle_on_msg, d, "SUBSCRIBE mdm:poke") != REDIS_OK)
        log_warn("event=idle_cache_subscribe_failed"); /* the disconnect follows */
}

static void store_idle_on_disconnect(const redisAsyncContext *ac, int status)
{
    struct store_idle *d = ac->data;
    (void)status;
    if (d != NULL)
        store_idle_lost(d, ac->c.errstr[0] != '\0' ? ac->c.errstr : "connection closed");
}

static void store_idle_connect(struct store_idle *d)
{
    redisAsyncContext *ac = store_connect_aside(d->s);
    if (ac == NULL) {
        store_idle_lost(d, "no connection");
        return;
    }
    ac->data = d;
    redisAsyncSetConnectCallback(ac, store_idle_on_connect);
    redisAsyncSetDisconnectCallback(ac, store_idle_on_disconnect);
    d->sub = ac;
}

static void store_idle_on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    store_idle_connect(arg);
}

/* ---- last_seen behind the answers -------------------------------------- */

struct store_idle_seen { /* one last_seen write in flight */
    struct store_idle *d;
    char udid[UTIL_CHANNEL_MAX];
};

static void store_idle_seen_reply(void *arg, int err, int ident, const char *uuid,
                                  const char *plist, size_t len)
{
    struct store_idle_seen *w = arg;
    (void)uuid;
    (void)plist;
    (void)len;
    /* MDMD_ECANCELED: the store is going away, and d with it. */
    if (err != MDMD_ECANCELED && (err != MDMD_OK || ident != STORE_ID_OK)) {
        /* Not recorded, or the device is no longer who it was: ask Redis. */
        log_debug("event=idle_seen_failed udid=%s err=%s ident=%d", w->udid, mdmd_strerror(err),
                  ident);
        store_idle_drop(w->d, w->udid, strlen(w->udid));
    }
    free(w);
}

static void store_idle_on_flush(evutil_socket_t fd, short what, void *arg)
{
    struct store_idle *d = arg;
    (void)fd;
    (void)what;
    int n = d->npend;
    d->npend = 0;
    for (int i = 0; i < n && d->ents != NULL; i++) {
        struct store_idle_ent *e = &d->ents[d->pend[i]];
        if (e->udid[0] == '\0' || e->seen_ms == 0)
            continue; /* dropped since */
        struct store_report r = {
            .dev = {e->udid, e->fp, e->seen_ms, NULL, 0},
            .status = "-seen",
            .uuid = "",
            .result = "",
            .error_chain = "",
            .history_len = 1,
            .history_max_bytes = 1,
        };
        struct store_idle_seen *w = xcalloc(1, sizeof(*w));
        w->d = d;
        memcpy(w->udid, e->udid, sizeof(w->udid));
        e->seen_ms = 0;
        (void)store_report(d->s, &r, store_idle_seen_reply, w);
    }
}

/* ---- the API (store_mdm.h) --------------------------------------------- */

int store_idle_enable(struct store *s, int ttl_ms)
{
    struct store_idle *d = store_idle_of(s);
    if (ttl_ms <= 0 || d != NULL)
        return d != NULL;
    d = xcalloc(1, sizeof(*d));
    d->s = s;
    d->ttl_ms = ttl_ms;
    d->retry_ev = evtimer_new(store_base(s), store_idle_on_retry, d);
    d->flush_ev = evtimer_new(store_base(s), store_idle_on_flush, d);
    if (d->retry_ev == NULL || d->flush_ev == NULL) {
        log_err("event=out_of_memory what=event_new");
        abort();
    }
    store_idle_set(s, d);
    store_idle_connect(d);
    return 1;
}

void store_idle_free(struct store_idle *d)
{
    if (d == NULL)
        return;
    if (d->sub != NULL) {
        d->sub->data = NULL; /* its callbacks find nothing to tell */
        redisAsyncFree(d->sub);
    }
    event_free(d->retry_ev);
    event_free(d->flush_ev);
    free(d->ents);
    free(d);
}

int store_idle_stats(struct store *s, struct store_idle_stats *st)
{
    struct store_idle *d = store_idle_of(s);
    if (d == NULL)
        return 0;
    st->on = d->subscribed;
    st->hits = d->hits;
    st->pokes = d->pokes;
    return 1;
}

uint64_t store_idle_mark(struct store *s)
{
    struct store_idle *d = store_idle_of(s);
    return d != NULL ? d->gen : 0;
}

static int store_idle_device(const char *udid)
{
    return strchr(udid, ':') == NULL; /* a user channel is always asked for */
}

void store_idle_learn(struct store *s, const char *udid, const char *fp, uint64_t mark)
{
    struct store_idle *d = store_idle_of(s);
    if (d == NULL || !d->subscribed || mark != d->gen || !store_idle_device(udid) ||
        strlen(udid) >= sizeof(d->ents->udid) || strlen(fp) >= sizeof(d->ents->fp))
        return;
    struct store_idle_ent *e = store_idle_slot(d, udid);
    int64_t now = util_mono_ms();
    if (strcmp(e->udid, udid) != 0) {
        snprintf(e->udid, sizeof(e->udid), "%s", udid);
        e->seen_ms = 0;
    }
    snprintf(e->fp, sizeof(e->fp), "%s", fp);
    e->until_ms = now + d->ttl_ms;
    e->written_ms = now; /* the call that taught this wrote last_seen */
}

void store_idle_forget(struct store *s, const char *udid)
{
    struct store_idle *d = store_idle_of(s);
    if (d != NULL && d->ents != NULL) {
        struct store_idle_ent *e = store_idle_slot(d, udid);
        if (strcmp(e->udid, udid) == 0)
            e->udid[0] = '\0';
    }
}

int store_idle_answer(struct store *s, const char *udid, const char *fp, int64_t now_ms)
{
    struct store_idle *d = store_idle_of(s);
    /* Redis not answering the store (an outage the subscriber has not seen,
     * such as a stopped server): the device hears so from store_report. */
    if (d == NULL || !d->subscribed || d->ents == NULL || !store_idle_device(udid) ||
        !store_connected(s))
        return 0;
    struct store_idle_ent *e = store_idle_slot(d, udid);
    int64_t mono = util_mono_ms();
    if (strcmp(e->udid, udid) != 0 || strcmp(e->fp, fp) != 0)
        return 0;
    if (mono >= e->until_ms) {
        e->udid[0] = '\0';
        return 0;
    }
    d->hits++;
    if (e->seen_ms != 0) { /* a write is due: it takes the newest poll */
        e->seen_ms = now_ms;
    } else if (mono - e->written_ms >= STORE_IDLE_SEEN_MS) {
        if (d->npend == STORE_IDLE_FLUSH_MAX)
            return 0; /* asked for: the call records it */
        d->pend[d->npend++] = (int)(e - d->ents);
        e->seen_ms = now_ms;
        e->written_ms = mono;
        if (d->npend == 1) {
            struct timeval zero = {0, 0};
            evtimer_add(d->flush_ev, &zero);
        }
    }
    return 1;
}
