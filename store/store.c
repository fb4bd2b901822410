/* store.c: the Redis connection (connect, handshake, reconnect with backoff)
 * and the op machinery every typed store call is built on (store_int.h).
 *
 * Who frees what.  hiredis frees the redisAsyncContext itself after a failed
 * connect or an I/O error (we only forget it, in the callbacks).  We free it
 * with redisAsyncFree() from our own timers, where no hiredis code is on the
 * stack (store_drop), and in store_free(), which may run inside a reply
 * callback: there hiredis only flags the context and frees it once the
 * callback returns (REDIS_IN_CALLBACK).  A decision taken inside a hiredis
 * callback to drop the connection (a -LOADING handshake) goes through a
 * zero-timeout event.  An op is freed only when hiredis lets go of it
 * (store_on_reply) or when it never reached hiredis (store_cmd_argv); its
 * result is delivered only in store_op_finish(). */
#include "store.h"
#include "../core/util.h"
#include "store_cluster.h"
#include "store_int.h"

#include "../core/log.h"
#include "../core/metrics.h"

#include <arpa/inet.h>
#include <assert.h>
#include <event2/event.h>
#include <hiredis/async.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

/* No #pragma around the adapter: under /usr/include it is a system header,
 * and GCC reports nothing from those with the project flags. */
#include <hiredis/adapters/libevent.h>

#define STORE_BACKOFF_MIN_MS 100
/* A quarter second: with the handshake (script loads, PING) on top, service is
 * back well within a second of Redis answering again (issue 8). */
#define STORE_BACKOFF_MAX_MS 250

enum store_state {
    STORE_DOWN,       /* no context; s->timer counts down to the next attempt */
    STORE_CONNECTING, /* connect(2) in flight; s->timer bounds it and the handshake */
    STORE_HANDSHAKE,  /* script loads and a PING in flight: only internal ops go out */
    STORE_UP,
};

struct store_arg { /* a copied command argument */
    const char *p;
    size_t len;
};

/* A script has a text per key layout: the Lua given, after a first line
 * "local MDM_CLUSTER = false" (single) or "= true" (cluster), so that one
 * source serves both (docs/REDIS.md, "Redis Cluster"). */
struct store_script {
    struct store_script *next;
    const char *key; /* the caller's string, for store_script_get() */
    char *text[2];   /* [0] single layout, [1] cluster layout */
    char sha[2][41]; /* hex SHA1 from SCRIPT LOAD; "" until Redis told us */
};

struct store {
    struct event_base *base;
    char *addr; /* as configured, for logs */
    char *path; /* unix socket, or NULL */
    char *host; /* IP literal ("localhost" mapped), or NULL */
    int port;
    int timeout_ms;        /* per op and per connect attempt */
    redisAsyncContext *ac; /* NULL when STORE_DOWN */
    enum store_state state;
    struct event *timer;         /* next attempt (DOWN) or attempt timeout */
    struct event *drop_ev;       /* zero timeout: drops ac from outside its callbacks */
    char drop_why[128];          /* reason for drop_ev, for the log */
    int backoff_ms;              /* delay before the next attempt */
    int failing;                 /* a failed attempt was logged at warn since the last success */
    int closing;                 /* inside store_free() */
    int64_t attempt_ms;          /* (monotonic) when the current attempt began */
    int64_t down_ms;             /* (monotonic) when the connection was lost, or 0 */
    int attempts;                /* since it was lost */
    struct store_op *ops, *tail; /* pending, oldest first */
    int npending;
    struct store_script *scripts; /* loaded on every connect */
    struct metrics_hist rtt;      /* send to reply, every answered op */
    /* Redis Cluster (docs/REDIS.md, "Redis Cluster").  The store the caller
     * holds (the root) talks to a seed for CLUSTER SLOTS and owns one child
     * store per master, whose ops it routes; a child's parent is the root. */
    struct store *parent;
    struct store_cluster *cl; /* root in cluster mode, else NULL */
    char **seeds;             /* the comma-separated list of `redis` */
    int nseeds, seed_i;
    struct event *refresh_ev;           /* the next CLUSTER SLOTS */
    int refreshing;                     /* one in flight */
    unsigned long redirects, refreshes; /* for /metrics */
    enum store_layout layout;           /* as configured (the root's) */
    struct store_idle *idle;            /* Idle polls from memory (the root's), or NULL */
};

static void store_on_reply(redisAsyncContext *ac, void *r, void *priv);
static void store_connect(struct store *s);
static void store_cluster_kick(struct store *root);
static void store_refresh_soon(struct store *root, int ms);

/* ---- small helpers ---------------------------------------------------- */

/* The layout a connection's scripts run in: a cluster node's (a child
 * store's) is the cluster layout unless single is forced. */
static int store_conn_cluster(const struct store *c)
{
    enum store_layout l = (c->parent != NULL ? c->parent : c)->layout;
    return l == STORE_LAYOUT_CLUSTER || (l == STORE_LAYOUT_AUTO && c->parent != NULL);
}

static struct event *store_event_new(struct event_base *base, event_callback_fn fn, void *arg)
{
    struct event *ev = evtimer_new(base, fn, arg);
    if (ev == NULL) { /* only on out of memory, which is fatal everywhere (util.h) */
        log_err("event=out_of_memory what=event_new");
        abort();
    }
    (void)event_priority_set(ev, STORE_EV_PRIORITY); /* fails only with one priority */
    return ev;
}

static void store_event_add_ms(struct event *ev, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

static int store_parse_port(const char *p, int *port)
{
    char *end;
    long v = strtol(p, &end, 10);
    if (*p < '0' || *p > '9' || *end != '\0' || v < 1 || v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

/* host:port with an IP literal, because hiredis 0.14 resolves names with a
 * blocking getaddrinfo() on every reconnect. */
static int store_parse_addr(const char *addr, char **path, char **host, int *port)
{
    unsigned char buf[sizeof(struct in6_addr)];
    int v6 = addr[0] == '[';

    if (addr[0] == '/' || addr[0] == '.') {
        if (strlen(addr) >= sizeof(((struct sockaddr_un *)NULL)->sun_path))
            return -1;
        *path = xstrdup(addr);
        return 0;
    }
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || (v6 && (colon - addr < 2 || colon[-1] != ']')))
        return -1;
    char *name = v6 ? xstrndup(addr + 1, (size_t)(colon - addr - 2))
                    : xstrndup(addr, (size_t)(colon - addr));
    if (!v6 && strcmp(name, "localhost") == 0) {
        free(name);
        name = xstrdup("127.0.0.1");
    }
    if (inet_pton(v6 ? AF_INET6 : AF_INET, name, buf) != 1 ||
        store_parse_port(colon + 1, port) != 0) {
        free(name);
        return -1;
    }
    *host = name;
    return 0;
}

static int store_addr_valid1(const char *addr)
{
    char *path = NULL, *host = NULL;
    int port, ok = store_parse_addr(addr, &path, &host, &port) == 0;
    free(path);
    free(host);
    return ok;
}

static int store_split_seeds(const char *addr, char ***seeds);
static void store_free_seeds(char **seeds, int n);

int store_addr_valid(const char *addr)
{
    char **seeds;
    int n = store_split_seeds(addr, &seeds), ok = n > 0 && strstr(addr, ",,") == NULL;
    for (int i = 0; i < n; i++)
        ok = ok && store_addr_valid1(seeds[i]);
    store_free_seeds(seeds, n);
    return ok;
}

/* ---- connection ------------------------------------------------------- */

/* Ops go out once Redis answered the handshake; the handshake's own earlier.
 * The flags catch the moment between an error and our disconnect callback,
 * when hiredis is already failing the pending ops. */
static int store_can_send(const struct store *s, const struct store_op *op)
{
    if (s->closing || s->ac == NULL || (s->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING)))
        return 0;
    return s->state == STORE_UP || (op->internal && s->state == STORE_HANDSHAKE);
}

static void store_schedule(struct store *s)
{
    store_event_add_ms(s->timer, s->backoff_ms);
    s->backoff_ms *= 2;
    if (s->backoff_ms > STORE_BACKOFF_MAX_MS)
        s->backoff_ms = STORE_BACKOFF_MAX_MS;
}

/* The context is gone (or going): log once per event and plan the next
 * attempt.  A Redis that stays away is logged at warn once, then at debug. */
static void store_down(struct store *s, const char *why)
{
    int was_up = s->state == STORE_UP;
    s->ac = NULL;
    s->state = STORE_DOWN;
    evtimer_del(s->drop_ev);
    if (was_up)
        s->down_ms = util_mono_ms();
    if (was_up)
        log_warn("event=redis_disconnected addr=%s err=\"%s\" pending=%d retry_ms=%d", s->addr, why,
                 s->npending, s->backoff_ms);
    else if (!s->failing)
        log_warn("event=redis_connect_failed addr=%s err=\"%s\" retry_ms=%d", s->addr, why,
                 s->backoff_ms);
    else
        log_debug("event=redis_connect_failed addr=%s err=\"%s\" retry_ms=%d", s->addr, why,
                  s->backoff_ms);
    if (!was_up)
        s->failing = 1;
    store_schedule(s);
    if (s->parent != NULL) /* a master gone: a failover may be under way */
        store_refresh_soon(s->parent, 0);
}

static void store_detach(redisAsyncContext *ac)
{
    ac->data = NULL;
    ac->onConnect = NULL;
    ac->onDisconnect = NULL;
}

/* Tears the context down from outside its callbacks (our timers).  The
 * pending ops fail inside redisAsyncFree(), and a caller's callback may free
 * s there: nothing may touch s after it. */
static void store_drop(struct store *s, const char *why)
{
    redisAsyncContext *ac = s->ac;
    store_detach(ac);
    store_down(s, why);
    redisAsyncFree(ac);
}

static void store_on_drop_ev(evutil_socket_t fd, short what, void *arg)
{
    struct store *s = arg;
    (void)fd;
    (void)what;
    if (s->ac != NULL)
        store_drop(s, s->drop_why);
}

/* Used where we are inside a hiredis callback and must not free its context. */
static void store_drop_later(struct store *s, const char *why, size_t len)
{
    snprintf(s->drop_why, sizeof(s->drop_why), "%.*s", (int)len, why);
    store_event_add_ms(s->drop_ev, 0);
}

static void store_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct store *s = arg;
    char why[64];
    (void)fd;
    (void)what;
    if (s->state == STORE_DOWN) {
        store_connect(s);
        return;
    }
    snprintf(why, sizeof(why), "%s within %d ms",
             s->state == STORE_CONNECTING ? "no connection" : "no reply", s->timeout_ms);
    store_drop(s, why);
}

/* The PING that ends the handshake: Redis answered, so ops may go out. */
static void store_on_slots(struct store_op *op, int err, const redisReply *r);

static void store_on_ready(struct store_op *op, int err, const redisReply *r)
{
    struct store *s = op->s;
    if (err != MDMD_OK)
        return; /* the context is going away, and that path logs and retries */
    if (r->type == REDIS_REPLY_ERROR) { /* LOADING: try again later, like a failed connect */
        store_drop_later(s, r->str, r->len);
        return;
    }
    evtimer_del(s->timer);
    s->state = STORE_UP;
    s->backoff_ms = STORE_BACKOFF_MIN_MS;
    s->failing = 0;
    /* How long the handshake took and how long service was gone: what the
     * "within a second" of a reconnect is made of (faults.sh). */
    int64_t now = util_mono_ms();
    log_info("event=redis_connected addr=%s attempt_ms=%lld attempts=%d down_ms=%lld", s->addr,
             (long long)(now - s->attempt_ms), s->attempts,
             (long long)(s->down_ms != 0 ? now - s->down_ms : 0));
    s->down_ms = 0;
    s->attempts = 0;
    if (s->parent != NULL)
        store_cluster_kick(s->parent); /* ops parked for this node go out */
}

static void store_script_load(struct store *s, struct store_script *sc);

/* Pipelined: by the time PING answers, Redis has run every SCRIPT LOAD, so
 * EVALSHA cannot meet NOSCRIPT on a fresh connection. */
static void store_handshake(struct store *s)
{
    static const char *const ping[] = {"PING"}, *const slots[] = {"CLUSTER", "SLOTS"};
    struct store_op *op;
    for (struct store_script *sc = (s->parent ? s->parent : s)->scripts; sc != NULL; sc = sc->next)
        store_script_load(s, sc);
    if (s->parent == NULL) { /* a cluster node answers with its slots, any other with -ERR */
        op = store_op_new(s, STORE_CB_NONE, NULL);
        op->internal = 1;
        s->refreshing = 1;
        (void)store_cmd_argv(s, 2, slots, NULL, store_on_slots, op);
    }
    op = store_op_new(s, STORE_CB_NONE, NULL);
    op->internal = 1;
    (void)store_cmd_argv(s, 1, ping, NULL, store_on_ready, op);
}

static void store_on_connect(const redisAsyncContext *ac, int status)
{
    struct store *s = ac->data;
    if (s == NULL)
        return;
    if (status != REDIS_OK) { /* hiredis frees ac when we return */
        evtimer_del(s->timer);
        store_down(s, ac->c.errstr);
        return;
    }
    s->state = STORE_HANDSHAKE; /* s->timer still bounds the whole attempt */
    store_handshake(s);
}

/* Only for contexts hiredis closes itself (EOF, I/O error): the ones we drop
 * are detached first.  The pending ops have already failed. */
static void store_on_disconnect(const redisAsyncContext *ac, int status)
{
    struct store *s = ac->data;
    (void)status;
    if (s == NULL)
        return;
    evtimer_del(s->timer);
    store_down(s, ac->c.errstr[0] != '\0' ? ac->c.errstr : "connection closed");
}

static void store_connect(struct store *s)
{
    char why[sizeof(((redisContext *)NULL)->errstr)];
    if (s->nseeds > 1) { /* the next seed each time: the last one may be the dead one */
        free(s->path);
        free(s->host);
        s->path = s->host = NULL;
        s->seed_i = (s->seed_i + 1) % s->nseeds;
        (void)store_parse_addr(s->seeds[s->seed_i], &s->path, &s->host, &s->port);
    }
    s->attempts++;
    redisAsyncContext *ac =
        s->path != NULL ? redisAsyncConnectUnix(s->path) : redisAsyncConnect(s->host, s->port);

    if (ac == NULL || ac->err != 0) { /* e.g. a unix socket that is not there */
        snprintf(why, sizeof(why), "%s", ac != NULL ? ac->c.errstr : "out of memory");
        if (ac != NULL)
            redisAsyncFree(ac);
        store_down(s, why);
        return;
    }
    ac->data = s;
    redisLibeventAttach(ac, s->base);
    /* The adapter's events: new and not yet active, so this cannot fail
     * other than for a base with one priority. */
    redisLibeventEvents *lev = ac->ev.data;
    if (lev != NULL) {
        (void)event_priority_set(lev->rev, STORE_EV_PRIORITY);
        (void)event_priority_set(lev->wev, STORE_EV_PRIORITY);
    }
    redisAsyncSetConnectCallback(ac, store_on_connect);
    redisAsyncSetDisconnectCallback(ac, store_on_disconnect);
    s->ac = ac;
    s->state = STORE_CONNECTING;
    s->attempt_ms = util_mono_ms();
    store_event_add_ms(s->timer, s->timeout_ms);
}

redisAsyncContext *store_connect_aside(struct store *s)
{
    redisAsyncContext *ac = s->path != NULL   ? redisAsyncConnectUnix(s->path)
                            : s->host != NULL ? redisAsyncConnect(s->host, s->port)
                                              : NULL;
    if (ac == NULL || ac->err != 0) {
        log_warn("event=redis_connect_failed addr=%s err=\"%s\"", s->addr,
                 ac != NULL ? ac->c.errstr : "no address");
        if (ac != NULL)
            redisAsyncFree(ac);
        return NULL;
    }
    redisLibeventAttach(ac, s->base);
    return ac;
}

struct event_base *store_base(const struct store *s)
{
    return s->base;
}

struct store_idle *store_idle_of(struct store *s)
{
    return store_root(s)->idle;
}

void store_idle_set(struct store *s, struct store_idle *d)
{
    store_root(s)->idle = d;
}

/* A comma-separated list: each an address store_parse_addr() takes. */
static int store_split_seeds(const char *addr, char ***seeds)
{
    int n = 0;
    char *copy = xstrdup(addr), *save = NULL;
    *seeds = NULL;
    for (char *p = strtok_r(copy, ",", &save); p != NULL; p = strtok_r(NULL, ",", &save)) {
        while (*p == ' ')
            p++;
        *seeds = xrealloc(*seeds, sizeof(**seeds) * (size_t)(n + 1));
        (*seeds)[n++] = xstrdup(p);
    }
    free(copy);
    return n;
}

static void store_free_seeds(char **seeds, int n)
{
    for (int i = 0; i < n; i++)
        free(seeds[i]);
    free(seeds);
}

static void store_on_refresh_ev(evutil_socket_t fd, short what, void *arg);

static struct store *store_alloc(struct event_base *base, const char *addr, int timeout_ms)
{
    struct store *s = xcalloc(1, sizeof(*s));
    s->base = base;
    s->addr = xstrdup(addr);
    s->timeout_ms = timeout_ms > 0 ? timeout_ms : 1;
    s->backoff_ms = STORE_BACKOFF_MIN_MS;
    s->timer = store_event_new(base, store_on_timer, s);
    s->drop_ev = store_event_new(base, store_on_drop_ev, s);
    return s;
}

struct store *store_new(struct event_base *base, const char *addr, int timeout_ms)
{
    struct store *s = store_alloc(base, addr, timeout_ms);
    s->refresh_ev = store_event_new(base, store_on_refresh_ev, s);
    s->nseeds = store_split_seeds(addr, &s->seeds);
    s->seed_i = s->nseeds - 1; /* store_connect() moves to the first */
    if (!store_addr_valid(addr) ||
        store_parse_addr(s->seeds[0], &s->path, &s->host, &s->port) != 0) {
        log_err("event=redis_bad_address addr=\"%s\" want=\"/unix/path or IP:port\"", addr);
        return s; /* stays down: the contract is never NULL */
    }
    store_connect(s);
    return s;
}

static void store_op_finish(struct store_op *op, int err, const redisReply *r);
static void store_op_free(struct store_op *op);

void store_free(struct store *s)
{
    if (s == NULL || s->closing)
        return; /* closing: called again from a callback we are running */
    s->closing = 1;
    /* Callbacks first, while every op is still valid; anything they send
     * fails at once (closing).  hiredis then only releases done ops. */
    while (s->ops != NULL) {
        struct store_op *op = s->ops;
        store_op_finish(op, MDMD_ECANCELED, NULL);
        if (op->parked)
            store_op_free(op); /* never reached hiredis */
    }
    for (int i = 0; s->cl != NULL && i < store_cluster_nnodes(s->cl); i++)
        store_free(store_cluster_conn(s->cl, i));
    store_cluster_free(s->cl);
    store_idle_free(s->idle); /* after the ops: their callbacks may still use it */
    store_free_seeds(s->seeds, s->nseeds);
    if (s->refresh_ev != NULL)
        event_free(s->refresh_ev);
    if (s->ac != NULL) {
        store_detach(s->ac);
        redisAsyncFree(s->ac); /* inside a reply callback hiredis defers this itself */
    }
    event_free(s->timer);
    event_free(s->drop_ev);
    while (s->scripts != NULL) {
        struct store_script *sc = s->scripts;
        s->scripts = sc->next;
        free(sc->text[0]);
        free(sc->text[1]);
        free(sc);
    }
    free(s->addr);
    free(s->path);
    free(s->host);
    free(s);
}

static int store_cluster_connected(const struct store *s);

static int store_connected_1(const struct store *s) /* this store's own connection */
{
    return s->state == STORE_UP && s->ac != NULL &&
           !(s->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING));
}

int store_connected(const struct store *s)
{
    return s->cl != NULL ? store_cluster_connected(s) : store_connected_1(s);
}

const char *store_addr(const struct store *s)
{
    return s->addr;
}

int store_pending(const struct store *s)
{
    int n = s->npending;
    for (int i = 0; s->cl != NULL && i < store_cluster_nnodes(s->cl); i++)
        n += store_cluster_conn(s->cl, i) != NULL ? store_cluster_conn(s->cl, i)->npending : 0;
    return n;
}

const struct metrics_hist *store_rtt(const struct store *s)
{
    return &s->rtt;
}

/* ---- ops ---------------------------------------------------------------- */

struct store_op *store_op_new(struct store *s, union store_cb cb, void *arg)
{
    struct store_op *op = xcalloc(1, sizeof(*op));
    op->s = s;
    op->cb = cb;
    op->arg = arg;
    op->fail_err = MDMD_EUNAVAIL;
    op->slot = -1;
    return op;
}

static void store_op_free(struct store_op *op)
{
    if (op->timer != NULL)
        event_free(op->timer);
    free(op->args);
    free(op);
}

void store_op_cancel(struct store_op *op)
{
    if (op != NULL)
        op->cancelled = 1;
}

static void store_op_track(struct store *s, struct store_op *op)
{
    op->prev = s->tail;
    op->next = NULL;
    if (s->tail != NULL)
        s->tail->next = op;
    else
        s->ops = op;
    s->tail = op;
    s->npending++;
    op->tracked = 1;
}

static void store_op_untrack(struct store_op *op)
{
    struct store *s = op->s;
    if (op->prev != NULL)
        op->prev->next = op->next;
    else
        s->ops = op->next;
    if (op->next != NULL)
        op->next->prev = op->prev;
    else
        s->tail = op->prev;
    s->npending--;
    op->tracked = 0;
    if (op->timer != NULL)
        evtimer_del(op->timer);
}

/* The one place an op's result is delivered.  Unlinked first, so that a
 * callback freeing the store does not see it; nothing touches the store
 * after the reply function, which may run the caller's callback. */
static void store_op_finish(struct store_op *op, int err, const redisReply *r)
{
    if (op->tracked)
        store_op_untrack(op);
    if (r != NULL)
        metrics_hist_observe(op->s->parent != NULL ? &op->s->parent->rtt : &op->s->rtt,
                             (double)(metrics_now_ns() - op->sent_ns) / 1e9);
    op->done = 1;
    if (!op->cancelled)
        op->reply(op, err, r);
}

/* Fail this op with MDMD_ETIMEDOUT (its NULL reply will say so), then the
 * whole context: Redis is not answering the others either. */
static void store_op_on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct store_op *op = arg;
    char why[64];
    (void)fd;
    (void)what;
    op->fail_err = MDMD_ETIMEDOUT;
    if (op->parked) { /* no node came up for it in time: only this op fails */
        store_op_finish(op, MDMD_ETIMEDOUT, NULL);
        store_op_free(op);
        return;
    }
    snprintf(why, sizeof(why), "no reply within %d ms", op->s->timeout_ms);
    store_drop(op->s, why);
}

/* NOSCRIPT: Redis lost its script cache (SCRIPT FLUSH, a failover, a restart
 * we did not see).  Resend once as EVAL, which also reloads the script. */
static int store_script_retry(struct store_op *op, const redisReply *r);
static int store_redirect(struct store_op *op, const redisReply *r);

static void store_on_reply(redisAsyncContext *ac, void *r, void *priv)
{
    struct store_op *op = priv;
    (void)ac;
    if (!op->done) {
        if (r != NULL && op->s->parent != NULL && store_redirect(op, r))
            return; /* hiredis or the root store holds op again */
        if (r != NULL && store_script_retry(op, r))
            return; /* hiredis holds op again */
        store_op_finish(op, r != NULL ? MDMD_OK : op->fail_err, r);
    }
    store_op_free(op); /* hiredis lets go of op only here */
}

static struct store_op *store_route(struct store *root, struct store_op *op, int argc,
                                    const char *const *argv, const size_t *argvlen);

static char *store_resp_int(char *p, char kind, size_t n)
{
    char digits[24];
    int i = 0;
    do
        digits[i++] = (char)('0' + n % 10);
    while ((n /= 10) > 0);
    *p++ = kind;
    while (i > 0)
        *p++ = digits[--i];
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/* argv as RESP and queued on ac, as redisAsyncCommandArgv does, without its
 * sdscatfmt formatting (a twentieth of an Idle poll's time in perf).  The
 * text ends in a NUL it does not count: hiredis reads the command's name
 * with strchr (SUBSCRIBE and MONITOR change how it takes replies). */
static int store_send_argv(redisAsyncContext *ac, struct store_op *op, int argc,
                           const char *const *argv, const size_t *argvlen)
{
    size_t total = 24 + 1;
    for (int i = 0; i < argc; i++)
        total += 24 + (argvlen != NULL ? argvlen[i] : strlen(argv[i])) + 2;
    char *buf = xmalloc(total), *p = store_resp_int(buf, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        size_t len = argvlen != NULL ? argvlen[i] : strlen(argv[i]);
        p = store_resp_int(p, '$', len);
        memcpy(p, argv[i], len);
        p += len;
        *p++ = '\r';
        *p++ = '\n';
    }
    *p = '\0';
    int rc = redisAsyncFormattedCommand(ac, store_on_reply, op, buf, (size_t)(p - buf));
    free(buf);
    return rc;
}

struct store_op *store_cmd_argv(struct store *s, int argc, const char *const *argv,
                                const size_t *argvlen, store_reply_fn *reply, struct store_op *op)
{
    op->reply = reply;
    if (s->cl != NULL && !op->internal)
        return store_route(s, op, argc, argv, argvlen);
    if (!store_can_send(s, op) || store_send_argv(s->ac, op, argc, argv, argvlen) != REDIS_OK) {
        store_op_finish(op, MDMD_EUNAVAIL, NULL);
        store_op_free(op); /* never reached hiredis */
        return NULL;
    }
    store_op_track(s, op);
    op->sent_ns = metrics_now_ns();
    op->timer = store_event_new(s->base, store_op_on_timeout, op);
    store_event_add_ms(op->timer, s->timeout_ms);
    return op;
}

int store_reply_error(int err, const redisReply *r)
{
    static const char *const busy[] = {"LOADING ", "BUSY ", "MASTERDOWN ", "TRYAGAIN ",
                                       "CLUSTERDOWN "};
    if (err != MDMD_OK || r->type != REDIS_REPLY_ERROR)
        return err;
    /* Redis is there but cannot serve yet: for callers that is "unavailable". */
    for (size_t i = 0; i < ARRAY_LEN(busy); i++)
        if (strncmp(r->str, busy[i], strlen(busy[i])) == 0)
            return MDMD_EUNAVAIL;
    log_warn("event=redis_error_reply err=\"%.*s\"", (int)r->len, r->str);
    return MDMD_EPROTO;
}

/* ---- PING --------------------------------------------------------------- */

static void store_ping_reply(struct store_op *op, int err, const redisReply *r)
{
    err = store_reply_error(err, r);
    if (err == MDMD_OK && !(r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0))
        err = MDMD_EPROTO;
    op->cb.done(op->arg, err);
}

struct store_op *store_ping(struct store *s, store_done_fn *cb, void *arg)
{
    static const char *const argv[] = {"PING"};
    assert(cb != NULL);
    struct store_op *op = store_op_new(s, (union store_cb){.done = cb}, arg);
    return store_cmd_argv(s, 1, argv, NULL, store_ping_reply, op);
}

/* ---- scripts -------------------------------------------------------------- */

static void store_script_loaded(struct store_op *op, int err, const redisReply *r)
{
    err = store_reply_error(err, r); /* logs a compile error */
    if (err != MDMD_OK)
        return; /* disconnected: the next handshake loads it again */
    if (r->type != REDIS_REPLY_STRING || r->len != 40) {
        log_err("event=redis_script_load_failed err=\"unexpected reply type %d\"", r->type);
        return;
    }
    int l = store_conn_cluster(op->s);
    memcpy(op->script->sha[l], r->str, 40);
    op->script->sha[l][40] = '\0';
}

static void store_script_load(struct store *s, struct store_script *sc)
{
    const char *argv[] = {"SCRIPT", "LOAD", sc->text[store_conn_cluster(s)]};
    struct store_op *op = store_op_new(s, STORE_CB_NONE, NULL);
    op->internal = 1;
    op->script = sc;
    (void)store_cmd_argv(s, 3, argv, NULL, store_script_loaded, op);
}

struct store_script *store_script_new(struct store *s, const char *lua)
{
    struct store_script *sc = xcalloc(1, sizeof(*sc)), **p = &s->scripts;
    sc->text[0] = xasprintf("local MDM_CLUSTER = false\n%s", lua);
    sc->text[1] = xasprintf("local MDM_CLUSTER = true\n%s", lua);
    while (*p != NULL)
        p = &(*p)->next;
    *p = sc;
    if (s->state == STORE_HANDSHAKE || s->state == STORE_UP)
        store_script_load(s, sc); /* else the next handshake does it */
    for (int i = 0; s->cl != NULL && i < store_cluster_nnodes(s->cl); i++) {
        struct store *c = store_cluster_conn(s->cl, i);
        if (c != NULL && (c->state == STORE_HANDSHAKE || c->state == STORE_UP))
            store_script_load(c, sc);
    }
    return sc;
}

struct store_script *store_script_get(struct store *s, const char *lua)
{
    for (struct store_script *sc = s->scripts; sc != NULL; sc = sc->next)
        if (sc->key == lua)
            return sc;
    struct store_script *sc = store_script_new(s, lua);
    sc->key = lua;
    return sc;
}

static void store_op_copy_args(struct store_op *op, int argc, const char *const *argv,
                               const size_t *argvlen)
{
    size_t total = 0;
    for (int i = 0; i < argc; i++)
        total += (argvlen != NULL ? argvlen[i] : strlen(argv[i])) + 1;
    op->args = xmalloc((size_t)argc * sizeof(*op->args) + total);
    char *p = (char *)(op->args + argc);
    for (int i = 0; i < argc; i++) {
        size_t len = argvlen != NULL ? argvlen[i] : strlen(argv[i]);
        memcpy(p, argv[i], len);
        p[len] = '\0';
        op->args[i].p = p;
        op->args[i].len = len;
        p += len + 1;
    }
    op->argc = argc;
}

struct store_script_argv { /* EVALSHA sha | EVAL text, numkeys, keys..., args... */
    const char **v;
    size_t *l;
    int n;
    char nkeys[16];
};

/* For sending op on c. */
static void store_script_argv(const struct store *c, const struct store_op *op,
                              struct store_script_argv *a)
{
    int l = store_conn_cluster(c);
    int sha = op->script->sha[l][0] != '\0' && !op->retried;
    a->n = op->argc + 3;
    a->v = xmalloc((size_t)a->n * sizeof(*a->v));
    a->l = xmalloc((size_t)a->n * sizeof(*a->l));
    snprintf(a->nkeys, sizeof(a->nkeys), "%d", op->nkeys);
    a->v[0] = sha ? "EVALSHA" : "EVAL";
    a->v[1] = sha ? op->script->sha[l] : op->script->text[l];
    a->v[2] = a->nkeys;
    for (int i = 0; i < 3; i++)
        a->l[i] = strlen(a->v[i]);
    for (int i = 0; i < op->argc; i++) {
        a->v[i + 3] = op->args[i].p;
        a->l[i + 3] = op->args[i].len;
    }
}

struct store_op *store_cmd_script(struct store *s, struct store_script *sc, int nkeys, int argc,
                                  const char *const *argv, const size_t *argvlen,
                                  store_reply_fn *reply, struct store_op *op)
{
    struct store_script_argv a;
    assert(nkeys >= 0 && nkeys <= argc);
    op->script = sc;
    op->nkeys = nkeys;
    store_op_copy_args(op, argc, argv, argvlen);
    store_script_argv(s, op, &a);
    op = store_cmd_argv(s, a.n, a.v, a.l, reply, op); /* a.v points into op: free after */
    free(a.v);
    free(a.l);
    return op;
}

static int store_script_retry(struct store_op *op, const redisReply *r)
{
    struct store_script_argv a;
    struct store *s = op->s;
    if (op->script == NULL || op->args == NULL || op->retried || r->type != REDIS_REPLY_ERROR ||
        strncmp(r->str, "NOSCRIPT", 8) != 0 || !store_can_send(s, op))
        return 0;
    op->retried = 1;
    store_script_argv(s, op, &a);
    int sent = store_send_argv(s->ac, op, a.n, a.v, a.l) == REDIS_OK;
    free(a.v);
    free(a.l);
    log_debug("event=redis_noscript addr=%s resent=%d", s->addr, sent);
    return sent; /* not sent: the NOSCRIPT error goes to the reply function */
}

struct store_op *store_eval(struct store *s, struct store_script *sc, int nkeys, int argc,
                            const char *const *argv, const size_t *argvlen, store_eval_fn *cb,
                            void *arg)
{
    assert(cb != NULL);
    struct store_op *op = store_op_new(s, (union store_cb){.eval = cb}, arg);
    return store_cmd_script(s, sc, nkeys, argc, argv, argvlen, store_eval_reply, op);
}

/* ---- Redis Cluster ------------------------------------------------------
 *
 * The root store (the one store_new() returned) learns in its handshake
 * whether its seed is a cluster node (CLUSTER SLOTS answers an array).  Then
 * every op it is given goes to the master serving the slot of the op's first
 * key, on a child store (one per master, made on first need, with its own
 * connection, handshake, script loads and reconnects).  An op whose master
 * is not connected yet waits parked in the root, bounded by its timeout; a
 * master that is down fails its ops at once (MDMD_EUNAVAIL), as a single
 * Redis does.  MOVED updates the slot and asks for the whole table again;
 * ASK sends ASKING then the op to that node, once.  A child that loses its
 * connection asks for the table again (a failover moves its slots), and so
 * every 250 ms while some slot has no connected master. */

#define STORE_REFRESH_MIN_MS 100
#define STORE_REFRESH_DEGRADED_MS 250
#define STORE_REDIRECTS_MAX 5
#define STORE_REFRESH_WAIT_MS 500 /* a shard without a replica: look again this soon */

static int store_cluster_connected(const struct store *s)
{
    int last = -2, ok = 1;
    for (unsigned slot = 0; ok && slot < STORE_CLUSTER_SLOTS; slot++) {
        int node = store_cluster_owner(s->cl, slot);
        if (node == last)
            continue;
        last = node;
        struct store *c = node >= 0 ? store_cluster_conn(s->cl, node) : NULL;
        ok = c != NULL && store_connected(c);
    }
    return ok;
}

/* The child store for a node, made when first needed. */
static struct store *store_node_conn(struct store *root, int node)
{
    struct store *c = store_cluster_conn(root->cl, node);
    if (c != NULL)
        return c;
    const char *addr = store_cluster_addr(root->cl, node);
    c = store_alloc(root->base, addr, root->timeout_ms);
    c->parent = root;
    store_cluster_set_conn(root->cl, node, c);
    if (store_parse_addr(addr, &c->path, &c->host, &c->port) != 0) {
        log_err("event=redis_cluster_bad_node addr=\"%s\"", addr);
        return c; /* stays down: its slots fail as unavailable */
    }
    log_info("event=redis_cluster_node addr=%s", addr);
    store_connect(c);
    return c;
}

static int store_op_slot(const struct store_op *op)
{
    if (op->script != NULL)
        return op->nkeys > 0 ? (int)store_cluster_slot(op->args[0].p, op->args[0].len) : 0;
    return op->argc > 1 ? (int)store_cluster_slot(op->args[1].p, op->args[1].len) : 0;
}

/* Sends op on node c as it was given (a script as EVALSHA, or EVAL after
 * NOSCRIPT).  0 when hiredis refused it: op is then untouched and ours. */
static int store_send_on(struct store *c, struct store_op *op)
{
    struct store_script_argv a;
    int ok;
    if (!store_can_send(c, op))
        return 0;
    if (op->script != NULL) {
        store_script_argv(c, op, &a);
    } else {
        a.n = op->argc;
        a.v = xmalloc((size_t)a.n * sizeof(*a.v));
        a.l = xmalloc((size_t)a.n * sizeof(*a.l));
        for (int i = 0; i < op->argc; i++) {
            a.v[i] = op->args[i].p;
            a.l[i] = op->args[i].len;
        }
    }
    ok = store_send_argv(c->ac, op, a.n, a.v, a.l) == REDIS_OK;
    free(a.v);
    free(a.l);
    if (!ok)
        return 0;
    op->s = c;
    store_op_track(c, op);
    op->sent_ns = metrics_now_ns();
    if (op->timer == NULL)
        op->timer = store_event_new(c->base, store_op_on_timeout, op);
    store_event_add_ms(op->timer, c->timeout_ms);
    return 1;
}

static void store_park(struct store *root, struct store_op *op)
{
    op->s = root;
    op->parked = 1;
    store_op_track(root, op);
    if (op->timer == NULL)
        op->timer = store_event_new(root->base, store_op_on_timeout, op);
    store_event_add_ms(op->timer, root->timeout_ms);
    store_refresh_soon(root, STORE_REFRESH_MIN_MS);
}

/* Where op goes now: its master if connected, parked while that master is
 * connecting or the table is being learned, else failed as unavailable. */
static struct store_op *store_dispatch(struct store *root, struct store_op *op)
{
    int node = store_cluster_owner(root->cl, (unsigned)op->slot);
    struct store *c = node >= 0 ? store_node_conn(root, node) : NULL;
    if (c != NULL && store_send_on(c, op))
        return op;
    if ((c != NULL && c->state != STORE_DOWN) || (c == NULL && root->refreshing)) {
        store_park(root, op);
        return op;
    }
    store_op_finish(op, MDMD_EUNAVAIL, NULL);
    store_op_free(op);
    return NULL;
}

static struct store_op *store_route(struct store *root, struct store_op *op, int argc,
                                    const char *const *argv, const size_t *argvlen)
{
    if (root->closing) {
        store_op_finish(op, MDMD_EUNAVAIL, NULL);
        store_op_free(op);
        return NULL;
    }
    if (op->args == NULL)
        store_op_copy_args(op, argc, argv, argvlen); /* kept for a redirect's resend */
    if (op->slot < 0)
        op->slot = store_op_slot(op);
    return store_dispatch(root, op);
}

/* The parked ops try again (a node came up, the table changed). */
static void store_cluster_kick(struct store *root)
{
    int n = 0;
    struct store_op **v = xmalloc(sizeof(*v) * (size_t)(root->npending + 1));
    for (struct store_op *op = root->ops; op != NULL; op = op->next)
        if (op->parked)
            v[n++] = op;
    for (int i = 0; i < n; i++) {
        store_op_untrack(v[i]);
        v[i]->parked = 0;
        (void)store_dispatch(root, v[i]);
    }
    free(v);
}

static void store_on_asking(struct store_op *op, int err, const redisReply *r)
{
    (void)op;
    (void)err;
    (void)r; /* the op after it says how it went */
}

static int store_redirect(struct store_op *op, const redisReply *r)
{
    static const char *const asking[] = {"ASKING"};
    struct store *root = op->s->parent;
    char addr[80];
    int ask, slot;
    if (r->type != REDIS_REPLY_ERROR ||
        !store_cluster_redirect(r->str, r->len, &ask, &slot, addr, sizeof(addr)))
        return 0;
    int node = store_cluster_node(root->cl, addr);
    if (node < 0 || op->redirects++ >= STORE_REDIRECTS_MAX || op->args == NULL) {
        log_warn("event=redis_cluster_redirect_dropped reply=\"%.*s\" redirects=%d", (int)r->len,
                 r->str, op->redirects);
        return 0;
    }
    log_debug("event=redis_cluster_redirect reply=\"%.*s\"", (int)r->len, r->str);
    root->redirects++;
    struct store *c = store_node_conn(root, node);
    store_op_untrack(op);
    if (!ask) {
        store_cluster_assign(root->cl, (unsigned)slot, node);
        store_refresh_soon(root, STORE_REFRESH_MIN_MS);
    } else if (store_connected(c)) {
        struct store_op *a = store_op_new(c, STORE_CB_NONE, NULL);
        a->internal = 1;
        (void)store_cmd_argv(c, 1, asking, NULL, store_on_asking, a);
    }
    if (!store_send_on(c, op))
        store_park(root, op); /* an ASK target not up: the owner asks again later */
    return 1;
}

static void store_refresh_soon(struct store *root, int ms)
{
    if (root->closing || root->refresh_ev == NULL || evtimer_pending(root->refresh_ev, NULL))
        return;
    store_event_add_ms(root->refresh_ev, ms);
}

/* CLUSTER SLOTS (the handshake's, or a refresh's, on any node): cluster mode
 * begins, or the table is replaced; -ERR is a single Redis. */
static void store_on_slots(struct store_op *op, int err, const redisReply *r)
{
    struct store *root = op->s->parent != NULL ? op->s->parent : op->s;
    root->refreshing = 0;
    if (err != MDMD_OK || root->closing)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        if (root->cl != NULL) /* e.g. CLUSTERDOWN on a node that lost its peers */
            store_refresh_soon(root, STORE_REFRESH_DEGRADED_MS);
        return;
    }
    int first = root->cl == NULL;
    struct store_cluster *cl = first ? store_cluster_new() : root->cl;
    int covered = store_cluster_load(cl, r);
    if (covered < 0) {
        log_warn("event=redis_cluster_slots_unusable addr=%s", op->s->addr);
        if (first) { /* not a cluster we understand: stay a single Redis */
            store_cluster_free(cl);
            return;
        }
        store_refresh_soon(root, STORE_REFRESH_DEGRADED_MS);
        return;
    }
    root->cl = cl;
    root->refreshes++;
    if (first)
        log_info("event=redis_cluster addr=%s slots=%d", root->addr, covered);
    for (unsigned slot = 0; slot < STORE_CLUSTER_SLOTS; slot++) {
        int node = store_cluster_owner(root->cl, slot);
        if (node >= 0)
            (void)store_node_conn(root, node);
    }
    store_cluster_kick(root);
    if (!store_cluster_connected(root))
        store_refresh_soon(root, STORE_REFRESH_DEGRADED_MS);
}

static void store_on_refresh_ev(evutil_socket_t fd, short what, void *arg)
{
    static const char *const slots[] = {"CLUSTER", "SLOTS"};
    struct store *root = arg, *via = NULL;
    (void)fd;
    (void)what;
    if (root->cl == NULL || root->refreshing)
        return;
    if (store_connected_1(root))
        via = root;
    for (int i = 0; via == NULL && i < store_cluster_nnodes(root->cl); i++) {
        struct store *c = store_cluster_conn(root->cl, i);
        if (c != NULL && store_connected(c))
            via = c;
    }
    if (via == NULL) { /* no node answers: ask again soon */
        store_refresh_soon(root, STORE_REFRESH_DEGRADED_MS);
        return;
    }
    struct store_op *op = store_op_new(via, STORE_CB_NONE, NULL);
    op->internal = 1;
    root->refreshing = 1;
    if (store_cmd_argv(via, 2, slots, NULL, store_on_slots, op) == NULL)
        root->refreshing = 0;
}

/* ---- WAIT --------------------------------------------------------------- */

static void store_wait_reply(struct store_op *op, int err, const redisReply *r)
{
    int want = (int)op->nkeys; /* reused: the replicas asked for */
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type != REDIS_REPLY_INTEGER)
        err = MDMD_EPROTO;
    if (err == MDMD_OK && r->integer < want) {
        log_warn("event=redis_wait_short acked=%lld want=%d", r->integer, want);
        err = MDMD_EUNAVAIL;
        if (op->s->parent != NULL) /* a replica gone? the table will say */
            store_refresh_soon(op->s->parent, STORE_REFRESH_MIN_MS);
    }
    op->cb.done(op->arg, err);
}

struct store_op *store_wait(struct store *s, const char *key, int replicas, int ms,
                            store_done_fn *cb, void *arg)
{
    char n[16], t[16];
    unsigned slot = store_cluster_slot(key, strlen(key));
    if (replicas < 0) /* auto: 1 on a cluster (a shard without a replica is a risk to see) */
        replicas = s->cl != NULL ? 1 : 0;
    if (replicas == 0) {
        cb(arg, MDMD_OK);
        return NULL;
    }
    /* WAIT holds its connection, and every op behind it, until enough replicas
     * answer or ms pass: a shard known to have too few replicas (a promoted
     * replica not yet given one of its own) is refused at once instead. */
    if (s->cl != NULL && store_cluster_replicas(s->cl, slot) < replicas) {
        log_debug("event=redis_wait_refused slot=%u replicas=%d want=%d", slot,
                  store_cluster_replicas(s->cl, slot), replicas);
        store_refresh_soon(s, STORE_REFRESH_WAIT_MS);
        cb(arg, MDMD_EUNAVAIL);
        return NULL;
    }
    snprintf(n, sizeof(n), "%d", replicas);
    snprintf(t, sizeof(t), "%d", ms);
    const char *argv[] = {"WAIT", n, t};
    struct store_op *op = store_op_new(s, (union store_cb){.done = cb}, arg);
    op->slot = (int)slot;
    op->nkeys = replicas;
    return store_cmd_argv(s, 3, argv, NULL, store_wait_reply, op);
}

int store_key_node(const struct store *s, const char *key)
{
    return s->cl != NULL ? store_cluster_owner(s->cl, store_cluster_slot(key, strlen(key))) : -1;
}

int store_cluster_stats(const struct store *s, struct store_cluster_stats *st)
{
    char seen[STORE_CLUSTER_NODES] = {0};
    memset(st, 0, sizeof(*st));
    if (s->cl == NULL)
        return 0;
    for (unsigned slot = 0; slot < STORE_CLUSTER_SLOTS; slot++) {
        int node = store_cluster_owner(s->cl, slot);
        if (node < 0 || seen[node])
            continue;
        seen[node] = 1;
        st->masters++;
        struct store *c = store_cluster_conn(s->cl, node);
        st->masters_up += c != NULL && store_connected(c);
    }
    st->redirects = s->redirects;
    st->refreshes = s->refreshes;
    return 1;
}

/* ---- Key layout --------------------------------------------------------- */

const char *store_op_arg(const struct store_op *op, int i)
{
    return op->args != NULL && i < op->argc ? op->args[i].p : "";
}

struct store *store_root(struct store *s)
{
    return s->parent != NULL ? s->parent : s;
}

void store_set_layout(struct store *s, enum store_layout layout)
{
    s->layout = layout;
}

int store_layout_cluster(const struct store *s)
{
    return s->layout == STORE_LAYOUT_CLUSTER || (s->layout == STORE_LAYOUT_AUTO && s->cl != NULL);
}

int store_nbuckets(const struct store *s)
{
    return store_layout_cluster(s) ? STORE_BUCKETS : 1;
}

int store_bucket_of(const char *key, size_t len)
{
    return (int)(store_cluster_slot(key, len) % STORE_BUCKETS);
}

const char *store_bucket_key(const struct store *s, char *buf, size_t size, const char *base,
                             int bucket)
{
    if (store_layout_cluster(s))
        snprintf(buf, size, "%s:{b%02d}", base, bucket);
    else
        snprintf(buf, size, "%s", base);
    return buf;
}

const char *store_global_key(const struct store *s, char *buf, size_t size, const char *rest)
{
    snprintf(buf, size, store_layout_cluster(s) ? "mdm:{g}:%s" : "mdm:%s", rest);
    return buf;
}
