/* fake_store.c: store/store.c's functions without Redis (fake_store.h).
 * Linked instead of store/store.o into the handler fuzz targets only; the
 * typed ops of store/store_*.c are the real ones.  The argument-vector
 * helpers live in store.c, so they are written again here (store_argv_fmt
 * more simply: every formatted string on the heap). */
#include "fake_store.h"
#include "../../store/store_int.h"

#include <assert.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/metrics.h"

extern const char store_lua_connect[], store_lua_authenticate[], store_lua_token_update[],
    store_lua_checkout[], store_lua_user_token_update[], store_lua_enqueue[],
    store_lua_challenge_take[], store_lua_content_put[], store_lua_push_targets[];

struct store_script {
    const char *key; /* the embedded script's address */
    struct store_script *next;
};

struct store {
    struct event_base *base;
    struct event *tick; /* answers the queued ops, one loop turn after they were sent */
    struct store_op *head, *tail;
    struct store_script *scripts;
    int nops;
    int mode;
    struct metrics_hist rtt;
};

/* ---- replies ---- */

static redisReply *fake_reply(int type)
{
    redisReply *r = xcalloc(1, sizeof(*r));
    r->type = type;
    return r;
}

static redisReply *fake_str(const char *s)
{
    redisReply *r = fake_reply(REDIS_REPLY_STRING);
    r->str = xstrdup(s);
    r->len = strlen(s);
    return r;
}

static redisReply *fake_int(long long n)
{
    redisReply *r = fake_reply(REDIS_REPLY_INTEGER);
    r->integer = n;
    return r;
}

static redisReply *fake_array(size_t n, ...)
{
    va_list ap;
    redisReply *r = fake_reply(REDIS_REPLY_ARRAY);
    r->elements = n;
    r->element = xcalloc(n > 0 ? n : 1, sizeof(*r->element));
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        r->element[i] = va_arg(ap, redisReply *);
    va_end(ap);
    return r;
}

static void fake_free(redisReply *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->elements; i++)
        fake_free(r->element[i]);
    free(r->element);
    free(r->str);
    free(r);
}

static const char fake_cmd_plist[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\"><dict>"
    "<key>CommandUUID</key><string>FUZZ-CMD-0001</string><key>Command</key><dict>"
    "<key>RequestType</key><string>DeviceInformation</string></dict></dict></plist>\n";

/* What the script (NULL: a plain command) answers when all goes well. */
static redisReply *fake_good(const char *lua)
{
    if (lua == store_lua_connect)
        return fake_array(3, fake_str("ok"), fake_str("FUZZ-CMD-0001"), fake_str(fake_cmd_plist));
    if (lua == store_lua_authenticate || lua == store_lua_token_update ||
        lua == store_lua_checkout || lua == store_lua_user_token_update)
        return fake_str("ok");
    if (lua == store_lua_enqueue)
        return fake_array(5, fake_int(1), fake_array(0), fake_array(0), fake_int(0), fake_int(0));
    if (lua == store_lua_challenge_take)
        return fake_array(2, fake_str("ok"), fake_str("fuzz"));
    if (lua == store_lua_content_put)
        return fake_int(1);
    if (lua == store_lua_push_targets)
        return fake_array(1, fake_array(4, fake_str("FUZZ-UDID-0001"), fake_str("00ff"),
                                        fake_str("magic"), fake_str("com.apple.mgmt.x")));
    return lua != NULL ? fake_int(1) : fake_array(0);
}

static redisReply *fake_answer(int mode, const char *lua)
{
    switch (mode) {
    case FAKE_STORE_GOOD: return fake_good(lua);
    case FAKE_STORE_NIL: return fake_reply(REDIS_REPLY_NIL);
    case FAKE_STORE_ERROR: {
        redisReply *r = fake_str("ERR fake");
        r->type = REDIS_REPLY_ERROR;
        return r;
    }
    case FAKE_STORE_ZERO: return fake_int(0);
    case FAKE_STORE_UNKNOWN: return fake_str("unknown");
    default: return fake_array(0);
    }
}

static void fake_unlink(struct store *s, struct store_op *op)
{
    if (op->prev != NULL)
        op->prev->next = op->next;
    else
        s->head = op->next;
    if (op->next != NULL)
        op->next->prev = op->prev;
    else
        s->tail = op->prev;
    s->nops--;
}

/* Runs op's reply function (unless cancelled) and frees op. */
static void fake_finish(struct store_op *op, int err, const redisReply *r)
{
    if (!op->cancelled)
        op->reply(op, err, r);
    free(op);
}

static void fake_on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct store *s = arg;
    (void)fd;
    (void)what;
    /* Only what was queued before this turn: answers may send more ops. */
    int n = s->nops;
    while (n-- > 0 && s->head != NULL) {
        struct store_op *op = s->head;
        fake_unlink(s, op);
        const char *lua = op->script != NULL ? op->script->key : NULL;
        if (s->mode == FAKE_STORE_UNAVAILABLE) {
            fake_finish(op, MDMD_EUNAVAIL, NULL);
            continue;
        }
        redisReply *r = fake_answer(s->mode, lua);
        fake_finish(op, MDMD_OK, r);
        fake_free(r);
    }
    if (s->head != NULL)
        event_active(s->tick, EV_TIMEOUT, 0);
}

void fake_store_set_mode(struct store *s, int mode)
{
    s->mode = mode % FAKE_STORE_NMODES;
}

int fake_store_ops(const struct store *s)
{
    return s->nops;
}

/* ---- store.h ---- */

int store_addr_valid(const char *addr)
{
    return addr != NULL;
}

struct store *store_new(struct event_base *base, const char *addr, int timeout_ms)
{
    struct store *s = xcalloc(1, sizeof(*s));
    (void)addr;
    (void)timeout_ms;
    s->base = base;
    s->tick = event_new(base, -1, 0, fake_on_tick, s);
    return s;
}

void store_free(struct store *s)
{
    if (s == NULL)
        return;
    while (s->head != NULL) {
        struct store_op *op = s->head;
        fake_unlink(s, op);
        fake_finish(op, MDMD_ECANCELED, NULL);
    }
    while (s->scripts != NULL) {
        struct store_script *sc = s->scripts;
        s->scripts = sc->next;
        free(sc);
    }
    event_free(s->tick);
    free(s);
}

int store_connected(const struct store *s)
{
    return s->mode != FAKE_STORE_UNAVAILABLE;
}

const char *store_addr(const struct store *s)
{
    (void)s;
    return "fake";
}

int store_pending(const struct store *s)
{
    return s->nops;
}

const struct metrics_hist *store_rtt(const struct store *s)
{
    return &s->rtt;
}

struct store_op *store_op_new(struct store *s, union store_cb cb, void *arg)
{
    struct store_op *op = xcalloc(1, sizeof(*op));
    op->s = s;
    op->cb = cb;
    op->arg = arg;
    return op;
}

void store_op_cancel(struct store_op *op)
{
    if (op != NULL)
        op->cancelled = 1;
}

struct store_op *store_cmd_argv(struct store *s, int argc, const char *const *argv,
                                const size_t *argvlen, store_reply_fn *reply, struct store_op *op)
{
    (void)argc;
    (void)argv;
    (void)argvlen;
    op->reply = reply;
    op->prev = s->tail;
    op->next = NULL;
    if (s->tail != NULL)
        s->tail->next = op;
    else
        s->head = op;
    s->tail = op;
    s->nops++;
    event_active(s->tick, EV_TIMEOUT, 0);
    return op;
}

struct store_op *store_cmd_script(struct store *s, struct store_script *sc, int nkeys, int argc,
                                  const char *const *argv, const size_t *argvlen,
                                  store_reply_fn *reply, struct store_op *op)
{
    assert(nkeys >= 0 && nkeys <= argc);
    op->script = sc;
    op->nkeys = nkeys;
    return store_cmd_argv(s, argc, argv, argvlen, reply, op);
}

int store_reply_error(int err, const redisReply *r)
{
    if (err != MDMD_OK || r->type != REDIS_REPLY_ERROR)
        return err;
    return MDMD_EPROTO;
}

static void fake_ping_reply(struct store_op *op, int err, const redisReply *r)
{
    (void)r;
    op->cb.done(op->arg, err);
}

struct store_op *store_ping(struct store *s, store_done_fn *cb, void *arg)
{
    struct store_op *op = store_op_new(s, (union store_cb){.done = cb}, arg);
    return store_cmd_argv(s, 0, NULL, NULL, fake_ping_reply, op);
}

/* A single Redis without replicas: "auto" and 0 answer at once, as the real
 * store does; a wanted replica is answered from the loop like any op. */
struct store_op *store_wait(struct store *s, const char *key, int replicas, int ms,
                            store_done_fn *cb, void *arg)
{
    (void)key;
    (void)ms;
    if (replicas <= 0) {
        cb(arg, MDMD_OK);
        return NULL;
    }
    return store_ping(s, cb, arg);
}

/* One node, as a single Redis: one WAIT covers every key. */
int store_key_node(const struct store *s, const char *key)
{
    (void)s;
    (void)key;
    return -1;
}

int store_cluster_stats(const struct store *s, struct store_cluster_stats *st)
{
    (void)s;
    memset(st, 0, sizeof(*st));
    return 0;
}

/* The single key layout, as a store without redis_layout has on one Redis:
 * nothing here reads an op's arguments back. */
const char *store_op_arg(const struct store_op *op, int i)
{
    (void)op;
    (void)i;
    return "";
}

struct store *store_root(struct store *s)
{
    return s;
}

int store_layout_cluster(const struct store *s)
{
    (void)s;
    return 0;
}

int store_nbuckets(const struct store *s)
{
    (void)s;
    return 1;
}

int store_bucket_of(const char *key, size_t len)
{
    (void)key;
    (void)len;
    return 0;
}

const char *store_bucket_key(const struct store *s, char *buf, size_t size, const char *base,
                             int bucket)
{
    (void)s;
    (void)bucket;
    snprintf(buf, size, "%s", base);
    return buf;
}

const char *store_global_key(const struct store *s, char *buf, size_t size, const char *rest)
{
    (void)s;
    snprintf(buf, size, "mdm:%s", rest);
    return buf;
}

struct store_script *store_script_new(struct store *s, const char *lua)
{
    struct store_script *sc = xcalloc(1, sizeof(*sc));
    sc->key = lua;
    sc->next = s->scripts;
    s->scripts = sc;
    return sc;
}

struct store_script *store_script_get(struct store *s, const char *lua)
{
    for (struct store_script *sc = s->scripts; sc != NULL; sc = sc->next)
        if (sc->key == lua)
            return sc;
    return store_script_new(s, lua);
}

struct store_op *store_eval(struct store *s, struct store_script *sc, int nkeys, int argc,
                            const char *const *argv, const size_t *argvlen, store_eval_fn *cb,
                            void *arg)
{
    struct store_op *op = store_op_new(s, (union store_cb){.eval = cb}, arg);
    return store_cmd_script(s, sc, nkeys, argc, argv, argvlen, store_eval_reply, op);
}

/* Idle polls from memory are off here: every poll takes the fake's path. */
int store_idle_enable(struct store *s, int ttl_ms)
{
    (void)s;
    (void)ttl_ms;
    return 0;
}

uint64_t store_idle_mark(struct store *s)
{
    (void)s;
    return 0;
}

void store_idle_learn(struct store *s, const char *udid, const char *fp, uint64_t mark)
{
    (void)s;
    (void)udid;
    (void)fp;
    (void)mark;
}

int store_idle_answer(struct store *s, const char *udid, const char *fp, int64_t now_ms)
{
    (void)s;
    (void)udid;
    (void)fp;
    (void)now_ms;
    return 0;
}

void store_idle_forget(struct store *s, const char *udid)
{
    (void)s;
    (void)udid;
}

int store_idle_stats(struct store *s, struct store_idle_stats *st)
{
    (void)s;
    (void)st;
    return 0;
}
