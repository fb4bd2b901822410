/* store_argv.c: argument vectors for scripts (store_int.h).  Apart from
 * store.c so that the handler fuzz targets' fake Redis layer
 * (test/fuzz/fake_store.c, linked in place of store.o) uses these very
 * functions. */
#include "store_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "../core/util.h"

void store_argv_init(struct store_argv *a)
{
    a->v = a->v0;
    a->len = a->len0;
    a->n = 0;
    a->cap = STORE_ARGV_INLINE;
    a->used = 0;
    a->heap = NULL;
    a->nheap = 0;
}

void store_argv_push(struct store_argv *a, const char *s, size_t len)
{
    if (a->n == a->cap) {
        int cap = 2 * a->cap;
        const char **v = xmalloc(sizeof(*v) * (size_t)cap);
        size_t *len_ = xmalloc(sizeof(*len_) * (size_t)cap);
        memcpy(v, a->v, sizeof(*v) * (size_t)a->n);
        memcpy(len_, a->len, sizeof(*len_) * (size_t)a->n);
        if (a->v != a->v0) {
            free(a->v);
            free(a->len);
        }
        a->v = v;
        a->len = len_;
        a->cap = cap;
    }
    a->v[a->n] = s;
    a->len[a->n++] = len;
}

void store_argv_str(struct store_argv *a, const char *s)
{
    store_argv_push(a, s, strlen(s));
}

void store_argv_fmt(struct store_argv *a, const char *fmt, ...)
{
    va_list ap;
    size_t room = sizeof(a->text) - a->used;
    va_start(ap, fmt);
    int n = vsnprintf(a->text + a->used, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n < room) {
        store_argv_push(a, a->text + a->used, (size_t)n);
        a->used += (size_t)n + 1;
        return;
    }
    char *s = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    a->heap = xrealloc(a->heap, sizeof(*a->heap) * (size_t)(a->nheap + 1));
    a->heap[a->nheap++] = s;
    store_argv_push(a, s, (size_t)n);
}

void store_argv_own(struct store_argv *a)
{
    size_t total = 1;
    for (int i = 0; i < a->n; i++)
        total += a->len[i];
    char *p = xmalloc(total);
    a->heap = xrealloc(a->heap, sizeof(*a->heap) * (size_t)(a->nheap + 1));
    a->heap[a->nheap++] = p;
    for (int i = 0; i < a->n; i++) {
        memcpy(p, a->v[i], a->len[i]);
        a->v[i] = p;
        p += a->len[i];
    }
}

void store_argv_free(struct store_argv *a)
{
    for (int i = 0; i < a->nheap; i++)
        free(a->heap[i]);
    free(a->heap);
    if (a->v != a->v0) {
        free(a->v);
        free(a->len);
    }
    store_argv_init(a);
}

struct store_op *store_argv_script(struct store *s, const char *lua, int nkeys,
                                   struct store_argv *a, store_reply_fn *reply, union store_cb cb,
                                   void *arg)
{
    struct store_op *op = store_op_new(s, cb, arg);
    op = store_cmd_script(s, store_script_get(s, lua), nkeys, a->n, a->v, a->len, reply, op);
    store_argv_free(a);
    return op;
}

/* ---- fleet effects ------------------------------------------------------ */

extern const char store_lua_fleet_apply[];

/* The fleet block's names, in fx_names order (prelude.lua): the rate keys go
 * between head and tail. */
static const char *const store_fx_head[] = {"mdm:devices",   "mdm:idx",     "mdm:stats",
                                            "mdm:os",        "mdm:pushlat", "mdm:repush",
                                            "mdm:provision", "mdm:events"};
static const char *const store_fx_tail[] = {"mdm:ddm:enrollments", "mdm:ddm:failed"};

/* The single layout's block is the same for every script but for the
 * minute in the rate keys' names: formatted once a minute, not 12 times a
 * request (it was a tenth of an idle poll's time).  a points into it: the
 * caller sends a before the minute can change. */
static void store_fx_keys_single(struct store_argv *a, int64_t now_ms)
{
    static char rate[2][48];
    static size_t rate_len[2];
    static long long minute = -1;
    long long now_min = (long long)(now_ms / 60000);
    if (now_min != minute) {
        for (int i = 0; i < 2; i++)
            rate_len[i] = (size_t)snprintf(rate[i], sizeof(rate[i]), "mdm:rate:%s:%lld",
                                           i == 0 ? "cmd" : "push", now_min);
        minute = now_min;
    }
    for (size_t i = 0; i < ARRAY_LEN(store_fx_head); i++)
        store_argv_str(a, store_fx_head[i]);
    for (int i = 0; i < 2; i++)
        store_argv_push(a, rate[i], rate_len[i]);
    for (size_t i = 0; i < ARRAY_LEN(store_fx_tail); i++)
        store_argv_str(a, store_fx_tail[i]);
}

void store_fx_keys(const struct store *s, struct store_argv *a, int bucket, int64_t now_ms)
{
    char k[96], base[64];
    if (!store_layout_cluster(s)) {
        store_fx_keys_single(a, now_ms);
        return;
    }
    long long minute = (long long)(now_ms / 60000);
    for (size_t i = 0; i < ARRAY_LEN(store_fx_head); i++)
        store_argv_fmt(a, "%s", store_bucket_key(s, k, sizeof(k), store_fx_head[i], bucket));
    for (int i = 0; i < 2; i++) {
        snprintf(base, sizeof(base), "mdm:rate:%s:%lld", i == 0 ? "cmd" : "push", minute);
        store_argv_fmt(a, "%s", store_bucket_key(s, k, sizeof(k), base, bucket));
    }
    for (size_t i = 0; i < ARRAY_LEN(store_fx_tail); i++)
        store_argv_fmt(a, "%s", store_bucket_key(s, k, sizeof(k), store_fx_tail[i], bucket));
}

extern const char store_lua_fx_ack[];

static void store_fx_acked(struct store_op *op, int err, const redisReply *r)
{
    (void)op;
    if (store_reply_error(err, r) != MDMD_OK)    /* an error reply is logged there */
        log_debug("event=redis_fleet_ack_lost"); /* the entries are skipped next time */
}

/* fleet_apply.lua answered: the outbox (op->arg, owned) lets go of what it
 * applied.  Not answered: the entries stay, and go with the next request. */
static void store_fx_applied(struct store_op *op, int err, const redisReply *r)
{
    char *box = op->arg;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type != REDIS_REPLY_INTEGER)
        err = MDMD_EPROTO;
    if (err != MDMD_OK) {
        log_warn("event=redis_fleet_write_deferred box=%s err=%s", box, mdmd_strerror(err));
    } else if (r->integer > 0) {
        struct store_argv a;
        store_argv_init(&a);
        store_argv_str(&a, box);
        store_argv_fmt(&a, "%lld", r->integer);
        (void)store_argv_script(store_root(op->s), store_lua_fx_ack, 1, &a, store_fx_acked,
                                STORE_CB_NONE, NULL);
    }
    free(box);
}

/* The script's {status mdm_fx, reply, {seq, JSON}...}: the outbox's entries
 * go out first (the caller's reply may free the store), then the reply goes
 * on as the script's own.  Anything else (an error, a script that returned
 * before fx_begin) goes on untouched. */
static void store_fx_reply(struct store_op *op, int err, const redisReply *r)
{
    store_reply_fn *next = op->fx_next;
    if (err != MDMD_OK || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STATUS || strcmp(r->element[0]->str, "mdm_fx") != 0 ||
        r->element[2]->type != REDIS_REPLY_ARRAY) {
        next(op, err, r);
        return;
    }
    const redisReply *w = r->element[2];
    if (w->elements > 0) {
        struct store *root = store_root(op->s); /* op->s may be a cluster node's */
        struct store_argv a;
        char k[96];
        const char *box = store_op_arg(op, op->nkeys - 1);
        store_argv_init(&a);
        store_fx_keys(root, &a, op->fx_bucket, op->fx_now_ms);
        store_argv_fmt(&a, "%s", store_bucket_key(root, k, sizeof(k), "mdm:fxseen", op->fx_bucket));
        store_argv_str(&a, box);
        for (size_t i = 0; i < w->elements; i++) {
            const redisReply *e = w->element[i];
            store_argv_push(&a, e->type == REDIS_REPLY_STRING ? e->str : "",
                            e->type == REDIS_REPLY_STRING ? e->len : 0);
        }
        (void)store_argv_script(root, store_lua_fleet_apply, STORE_FX_KEYS + 1, &a,
                                store_fx_applied, STORE_CB_NONE, xstrdup(box));
    }
    next(op, MDMD_OK, r->element[1]);
}

/* The outbox of the script whose first key is k: mdm:fx:{<k's hash tag, or
 * k>}, in k's slot. */
static void store_fx_box(struct store_argv *a, const char *k, size_t len)
{
    const char *open = memchr(k, '{', len);
    const char *close = open != NULL ? memchr(open, '}', len - (size_t)(open - k)) : NULL;
    if (open != NULL && close != NULL && close > open + 1)
        store_argv_fmt(a, "mdm:fx:{%.*s}", (int)(close - open - 1), open + 1);
    else
        store_argv_fmt(a, "mdm:fx:{%.*s}", (int)len, k);
}

struct store_op *store_argv_fx_keep(struct store *s, const char *lua, int nkeys,
                                    const struct store_argv *a, store_reply_fn *reply,
                                    union store_cb cb, void *arg)
{
    struct store_op *op = store_op_new(s, cb, arg);
    struct store_argv b;
    int cluster = store_layout_cluster(s);
    op->fx_now_ms = util_now_ms();
    if (cluster) {
        op->fx_next = reply;
        op->fx_bucket = a->n > 0 ? store_bucket_of(a->v[0], a->len[0]) : 0;
    }
    store_argv_init(&b);
    for (int i = 0; i <= a->n; i++) {
        if (i == nkeys && cluster)
            store_fx_box(&b, a->n > 0 ? a->v[0] : "", a->n > 0 ? a->len[0] : 0);
        else if (i == nkeys)
            store_fx_keys(s, &b, 0, op->fx_now_ms);
        if (i < a->n)
            store_argv_push(&b, a->v[i], a->len[i]);
    }
    op = store_cmd_script(s, store_script_get(s, lua), nkeys + (cluster ? 1 : STORE_FX_KEYS), b.n,
                          b.v, b.len, cluster ? store_fx_reply : reply, op);
    store_argv_free(&b);
    return op;
}

struct store_op *store_argv_fx_script(struct store *s, const char *lua, int nkeys,
                                      struct store_argv *a, store_reply_fn *reply,
                                      union store_cb cb, void *arg)
{
    struct store_op *op = store_argv_fx_keep(s, lua, nkeys, a, reply, cb, arg);
    store_argv_free(a);
    return op;
}

/* Here, not in store.c: the handler fuzz targets' fake Redis layer links it too. */
void store_eval_reply(struct store_op *op, int err, const redisReply *r)
{
    store_eval_fn *cb = op->cb.eval;
    err = store_reply_error(err, r);
    if (err != MDMD_OK)
        cb(op->arg, err, 0, NULL, 0);
    else if (r->type == REDIS_REPLY_INTEGER)
        cb(op->arg, MDMD_OK, r->integer, NULL, 0);
    else if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
        cb(op->arg, MDMD_OK, 0, r->str, r->len);
    else
        cb(op->arg, r->type == REDIS_REPLY_NIL ? MDMD_ENOTFOUND : MDMD_EPROTO, 0, NULL, 0);
}
