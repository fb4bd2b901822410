/* push.c: APNs over HTTP/2, the dispatch part.  One struct push owns a TLS
 * context built from the push certificate (push_cert.c), a FIFO of pushes
 * waiting for a stream slot, a list of pushes waiting for a retry backoff,
 * and apns_connections connection slots (push_conn.c).  push_int.h says what
 * the parts share. */
#include "push.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "../core/conf.h"
#include "../core/log.h"
#include "push_int.h"

static const struct push_tuning push_default_tuning = {
    .retry_base_ms = 100,
    .retry_cap_ms = 10000,
    .max_attempts = 5,
    .reconnect_base_ms = 100,
    .reconnect_cap_ms = 30000,
    .connect_timeout_ms = 10000,
    .ping_interval_ms = 60000,
    .unavail_fail_ms = 60000,
    .max_streams = 1000,
};

/* ------------------------------------------------------------------------ */
/* small helpers */

static uint32_t push_rand(struct push *p)
{
    uint64_t x = p->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    p->rng = x;
    return (uint32_t)((x * 0x2545F4914F6CDD1DULL) >> 32);
}

/* base * 2^(n-1) capped, then drawn from [d/2, d] so that pushes failed by
 * the same burst do not all come back at the same instant. */
int push_backoff_ms(struct push *p, int base, int cap, unsigned n)
{
    int64_t d = base;
    for (unsigned i = 1; i < n && d < cap; i++)
        d *= 2;
    if (d > cap)
        d = cap;
    if (d < 2)
        return (int)d;
    return (int)(d / 2 + push_rand(p) % (uint32_t)(d / 2 + 1));
}

struct timeval push_tv(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

void push_kick(struct push *p)
{
    event_active(p->kick, EV_TIMEOUT, 1);
}

/* Keeps only identifier characters, so an APNs reason is safe in key=value logs. */
void push_copy_ident(char *out, size_t outlen, const char *in, size_t inlen)
{
    size_t n = 0;
    for (size_t i = 0; i < inlen && n + 1 < outlen; i++) {
        char ch = in[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '_' || ch == '-' || ch == '.')
            out[n++] = ch;
    }
    if (outlen > 0)
        out[n] = '\0';
}

/* ------------------------------------------------------------------------ */
/* items */

static int push_token_ok(const char *hex)
{
    size_t n = 0;
    for (; hex[n] != '\0'; n++) {
        char ch = hex[n];
        if (n >= PUSH_TOKEN_HEX_LEN ||
            !((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F')))
            return 0;
    }
    return n == PUSH_TOKEN_HEX_LEN;
}

/* jansson validates UTF-8 and escapes; json_dumpb avoids a heap copy. */
static int push_body_build(const char *magic, char *out, size_t outlen, size_t *len)
{
    size_t mlen = strlen(magic);
    if (mlen == 0 || mlen > PUSH_MAGIC_MAX)
        return -1;
    json_t *j = json_pack("{s:s}", "mdm", magic);
    if (j == NULL)
        return -1;
    size_t n = json_dumpb(j, out, outlen, JSON_COMPACT);
    json_decref(j);
    if (n == 0 || n > outlen)
        return -1;
    *len = n;
    return 0;
}

static struct push_item *push_item_new(struct push *p, const char *token, const char *body,
                                       size_t blen)
{
    struct push_item *it = xcalloc(1, sizeof(*it) + blen);
    it->p = p;
    it->t0 = util_mono_ms();
    it->where = PUSH_IN_NONE;
    memcpy(it->path, PUSH_PATH_PREFIX, strlen(PUSH_PATH_PREFIX));
    for (size_t i = 0; i < PUSH_TOKEN_HEX_LEN; i++) {
        char ch = token[i];
        it->path[strlen(PUSH_PATH_PREFIX) + i] = (ch >= 'A' && ch <= 'F') ? (char)(ch + 32) : ch;
    }
    snprintf(it->expiration, sizeof(it->expiration), "%lld",
             (long long)time(NULL) + p->expiration_s);
    memcpy(it->body, body, blen);
    it->body_len = (uint16_t)blen;
    return it;
}

static const char *push_item_token(const struct push_item *it)
{
    return it->path + strlen(PUSH_PATH_PREFIX);
}

void push_item_reset_answer(struct push_item *it)
{
    free(it->resp);
    it->resp = NULL;
    it->resp_len = 0;
    it->status = 0;
    it->apns_id[0] = '\0';
    it->body_off = 0;
}

static void push_item_free(struct push_item *it)
{
    if (it->timer != NULL)
        event_free(it->timer);
    free(it->resp);
    free(it);
}

static void push_item_count(struct push *p, enum push_outcome o)
{
    switch (o) {
    case PUSH_OK: p->st.ok++; break;
    case PUSH_BAD_TOKEN: p->st.bad_token++; break;
    case PUSH_FAILED: p->st.failed++; break;
    case PUSH_CANCELED: p->st.canceled++; break;
    }
}

/* The one place a caller's callback runs; the item is gone afterwards. */
static void push_item_finish(struct push *p, struct push_item *it, enum push_outcome o, int err,
                             const char *reason)
{
    struct push_result r = {
        .outcome = o,
        .err = err,
        .status = it->status,
        .attempts = it->attempts,
        .reason = reason ? reason : "",
        .apns_id = it->apns_id,
    };
    push_item_count(p, o);
    if (o == PUSH_BAD_TOKEN)
        log_info("event=push_bad_token token=%.8s status=%d reason=%s", push_item_token(it),
                 r.status, r.reason);
    else if (o == PUSH_FAILED && r.status != 403)
        log_warn("event=push_failed token=%.8s status=%d reason=%s attempts=%d err=%s",
                 push_item_token(it), r.status, r.reason, r.attempts, mdmd_strerror(err));
    it->where = PUSH_IN_NONE;
    p->in_cb++;
    it->cb(it->arg, &r);
    p->in_cb--;
    push_item_free(it);
}

void push_queue_add(struct push *p, struct push_item *it, int at_head)
{
    it->where = PUSH_IN_QUEUE;
    if (at_head)
        TAILQ_INSERT_HEAD(&p->queue, it, link);
    else
        TAILQ_INSERT_TAIL(&p->queue, it, link);
    p->nqueue++;
}

static void push_item_on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct push_item *it = arg;
    struct push *p = it->p;
    TAILQ_REMOVE(&p->retry, it, link);
    p->nretry--;
    event_free(it->timer);
    it->timer = NULL;
    push_queue_add(p, it, 0);
    push_dispatch(p);
}

/* 429/5xx or a reset stream: wait, then queue again; or give up. */
static void push_item_retry(struct push *p, struct push_item *it, const char *reason)
{
    if (it->attempts >= p->tun.max_attempts) {
        push_item_finish(p, it, PUSH_FAILED, MDMD_OK, reason);
        return;
    }
    int ms = push_backoff_ms(p, p->tun.retry_base_ms, p->tun.retry_cap_ms, it->attempts);
    struct timeval tv = push_tv(ms);
    p->st.retried++;
    log_debug("event=push_retry token=%.8s status=%d attempt=%d delay_ms=%d", push_item_token(it),
              it->status, it->attempts, ms);
    it->where = PUSH_IN_RETRY;
    it->timer = evtimer_new(p->base, push_item_on_retry, it);
    TAILQ_INSERT_TAIL(&p->retry, it, link);
    p->nretry++;
    evtimer_add(it->timer, &tv);
}

static void push_item_reason(const struct push_item *it, char *out, size_t outlen)
{
    json_error_t e;
    out[0] = '\0';
    if (it->resp == NULL)
        return;
    json_t *j = json_loadb(it->resp, it->resp_len, 0, &e);
    const char *r = json_string_value(json_object_get(j, "reason"));
    if (r != NULL)
        push_copy_ident(out, outlen, r, strlen(r));
    json_decref(j);
}

/* A final answer (or a reset) for a stream that is no longer in flight. */
void push_item_answered(struct push *p, struct push_item *it, uint32_t h2err)
{
    char reason[64];
    if (it->status == 0 && h2err == NGHTTP2_REFUSED_STREAM) {
        /* Refused (GOAWAY or RST): the server did not process it, send again. */
        p->st.resent++;
        push_queue_add(p, it, 1);
        push_kick(p);
        return;
    }
    it->attempts++;
    push_item_reason(it, reason, sizeof(reason));
    int s = it->status;
    if (s == 200)
        push_item_finish(p, it, PUSH_OK, MDMD_OK, reason);
    else if (s == 410 || (s == 400 && strcmp(reason, "BadDeviceToken") == 0))
        push_item_finish(p, it, PUSH_BAD_TOKEN, MDMD_OK, reason);
    else if (s == 0 || s == 429 || s == 500 || s == 503)
        push_item_retry(p, it, reason);
    else {
        if (s == 403) {
            p->st.forbidden++;
            log_err("event=push_forbidden token=%.8s status=403 reason=%s "
                    "hint=check_push_certificate",
                    push_item_token(it), reason);
        }
        push_item_finish(p, it, PUSH_FAILED, MDMD_OK, reason);
    }
}

/* ------------------------------------------------------------------------ */
/* the queue, as connections come and go */

static int push_ready_conns(const struct push *p)
{
    int n = 0;
    for (int i = 0; i < p->nconns; i++)
        n += p->conns[i].state == PUSH_CONN_READY;
    return n;
}

/* No connection for too long: fail what waited longest instead of holding
 * it forever (the caller records the failure; the device is not lost). */
void push_fail_stale(struct push *p)
{
    int64_t now = util_mono_ms();
    struct push_item *it, *next;
    if (push_ready_conns(p) > 0)
        return;
    for (it = TAILQ_FIRST(&p->queue); it != NULL; it = next) {
        next = TAILQ_NEXT(it, link);
        if (now - it->t0 < p->tun.unavail_fail_ms)
            continue;
        TAILQ_REMOVE(&p->queue, it, link);
        p->nqueue--;
        push_item_finish(p, it, PUSH_FAILED, MDMD_EUNAVAIL, "");
    }
}

/* Unanswered streams go back to the head of the queue, in order; streams
 * whose status already arrived count as answered and are never resent. */
void push_requeue(struct push *p, struct push_itemq *orphans)
{
    struct push_itemq again = TAILQ_HEAD_INITIALIZER(again);
    struct push_item *it;
    uint64_t n = 0;
    while ((it = TAILQ_FIRST(orphans)) != NULL) {
        TAILQ_REMOVE(orphans, it, link);
        it->conn = NULL;
        if (it->status != 0) {
            it->where = PUSH_IN_NONE;
            push_item_answered(p, it, NGHTTP2_NO_ERROR);
            continue;
        }
        it->where = PUSH_IN_QUEUE;
        TAILQ_INSERT_TAIL(&again, it, link);
        n++;
    }
    TAILQ_CONCAT(&again, &p->queue, link);
    TAILQ_CONCAT(&p->queue, &again, link);
    p->nqueue += n;
    p->st.resent += n;
}

/* ------------------------------------------------------------------------ */
/* dispatch */

static struct push_conn *push_pick_conn(struct push *p)
{
    struct push_conn *best = NULL;
    unsigned best_free = 0;
    for (int i = 0; i < p->nconns; i++) {
        unsigned f = push_conn_free_slots(&p->conns[i]);
        if (f > best_free) {
            best_free = f;
            best = &p->conns[i];
        }
    }
    return best;
}

void push_dispatch(struct push *p)
{
    struct push_conn *c;
    struct push_item *it;
    while ((it = TAILQ_FIRST(&p->queue)) != NULL && (c = push_pick_conn(p)) != NULL) {
        TAILQ_REMOVE(&p->queue, it, link);
        p->nqueue--;
        if (push_conn_submit(c, it) < 0) {
            push_queue_add(p, it, 1);
            push_conn_stop_new_streams(c);
        }
    }
    for (int i = 0; i < p->nconns; i++)
        if (p->conns[i].dirty)
            push_conn_flush(&p->conns[i]);
    if (TAILQ_EMPTY(&p->queue))
        return;
    for (int i = 0; i < p->nconns; i++) {
        c = &p->conns[i];
        if (c->state == PUSH_CONN_DOWN && !evtimer_pending(c->timer, NULL))
            push_conn_start(c);
    }
}

static void push_on_kick(evutil_socket_t fd, short what, void *arg)
{
    push_dispatch(arg);
}

/* ------------------------------------------------------------------------ */
/* public API */

static struct push *push_alloc(struct event_base *base, int expiration_s)
{
    struct push *p = xcalloc(1, sizeof(*p));
    p->base = base;
    p->tun = push_default_tuning;
    p->rng = (uint64_t)util_mono_ms() * 0x9E3779B97F4A7C15ULL ^ (uint64_t)getpid() ^ 1;
    p->expiration_s = expiration_s > 0 ? expiration_s : PUSH_DEFAULT_EXPIRATION_S;
    TAILQ_INIT(&p->queue);
    TAILQ_INIT(&p->retry);
    return p;
}

/* What every push needs once its certificate and host are set. */
static void push_start(struct push *p, int connections)
{
    p->h2cb = push_h2_callbacks();
    p->kick = event_new(p->base, -1, 0, push_on_kick, p);
    if (p->kick == NULL)
        die("event=out_of_memory what=push_kick");
    push_conns_init(p, connections);
}

struct push *push_new(struct event_base *base, const struct conf *cf)
{
    struct push *p = push_alloc(base, cf->apns_expiration_s);
    p->ssl = push_ssl_ctx_new(cf, &p->topic);
    if (p->ssl == NULL || push_set_host(p, cf) < 0) {
        push_free(p);
        return NULL;
    }
    push_start(p, cf->apns_connections);
    log_info("event=push_ready topic=%s host=%s port=%d connections=%d", p->topic, p->host, p->port,
             p->nconns);
    return p;
}

struct push *push_new_loopback(struct event_base *base, int connections)
{
    struct push *p = push_alloc(base, 0);
    p->loopback = 1;
    p->topic = xstrdup(PUSH_TOPIC_PREFIX "loopback");
    p->host = xstrdup("loopback");
    p->authority = xstrdup("loopback");
    p->port = PUSH_DEFAULT_PORT;
    push_start(p, connections);
    return p;
}

static void push_cancel_all(struct push *p, struct push_itemq *all)
{
    struct push_item *it;
    while ((it = TAILQ_FIRST(all)) != NULL) {
        TAILQ_REMOVE(all, it, link);
        push_item_finish(p, it, PUSH_CANCELED, MDMD_ECANCELED, "");
    }
}

void push_free(struct push *p)
{
    struct push_itemq all = TAILQ_HEAD_INITIALIZER(all);
    if (p == NULL)
        return;
    assert(p->in_cb == 0); /* never from inside a push_done_fn */
    p->freeing = 1;
    for (int i = 0; i < p->nconns; i++) {
        struct push_conn *c = &p->conns[i];
        TAILQ_CONCAT(&all, &c->streams, link);
        push_conn_teardown(c);
        event_free(c->timer);
        event_free(c->ping);
    }
    TAILQ_CONCAT(&all, &p->retry, link);
    TAILQ_CONCAT(&all, &p->queue, link);
    p->nqueue = p->nretry = 0;
    push_cancel_all(p, &all);
    if (p->kick != NULL)
        event_free(p->kick);
    if (p->dns != NULL) {
        p->dns->orphaned = 1;
        p->dns->pending++; /* released just below, so a 0 count frees it now */
        push_dns_release(p->dns, 0);
    }
    if (p->h2cb != NULL)
        nghttp2_session_callbacks_del(p->h2cb);
    SSL_CTX_free(p->ssl);
    free(p->conns);
    free(p->topic);
    free(p->host);
    free(p->authority);
    free(p);
}

const char *push_topic(const struct push *p)
{
    return p->topic;
}

int64_t push_not_after(const struct push *p)
{
    X509 *x = SSL_CTX_get0_certificate(p->ssl);
    struct tm tm;
    if (x == NULL || ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}

int push_send(struct push *p, const char *token_hex, const char *push_magic, push_done_fn *cb,
              void *arg)
{
    char body[PUSH_BODY_MAX];
    size_t blen;
    if (p->freeing || cb == NULL || token_hex == NULL || push_magic == NULL)
        return -1;
    if (!push_token_ok(token_hex)) {
        log_debug("event=push_rejected why=bad_token_format");
        return -1;
    }
    if (push_body_build(push_magic, body, sizeof(body), &blen) < 0) {
        log_debug("event=push_rejected why=bad_push_magic");
        return -1;
    }
    struct push_item *it = push_item_new(p, token_hex, body, blen);
    it->cb = cb;
    it->arg = arg;
    push_queue_add(p, it, 0);
    /* Deferred: the callback must never run inside push_send(), and a burst
     * of sends is batched into one flush. */
    push_kick(p);
    return 0;
}

void push_stats(const struct push *p, struct push_stats *out)
{
    *out = p->st;
    out->queued = p->nqueue;
    out->retrying = p->nretry;
    out->inflight = 0;
    out->connections = 0;
    for (int i = 0; i < p->nconns; i++) {
        out->inflight += p->conns[i].nstreams;
        out->connections += p->conns[i].state == PUSH_CONN_READY;
    }
    out->connected = out->connections > 0;
}

void push_get_tuning(const struct push *p, struct push_tuning *out)
{
    *out = p->tun;
}

void push_set_tuning(struct push *p, const struct push_tuning *t)
{
#define PUSH_TUNE(f)                                                                               \
    if (t->f > 0)                                                                                  \
        p->tun.f = t->f;
    PUSH_TUNE(retry_base_ms)
    PUSH_TUNE(retry_cap_ms)
    PUSH_TUNE(max_attempts)
    PUSH_TUNE(reconnect_base_ms)
    PUSH_TUNE(reconnect_cap_ms)
    PUSH_TUNE(connect_timeout_ms)
    PUSH_TUNE(ping_interval_ms)
    PUSH_TUNE(unavail_fail_ms)
    PUSH_TUNE(max_streams)
#undef PUSH_TUNE
    if (p->tun.max_attempts > 255)
        p->tun.max_attempts = 255; /* it->attempts is a uint8_t */
}
