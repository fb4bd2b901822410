/* store_fleet.c: the script table behind store_fleet_eval(). */
#include "store_fleet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_fanout.h"
#include "store_int.h"
#include "store_mdm.h"
#include "../core/util.h"

#include <jansson.h>

extern const char store_lua_hook_next[], store_lua_hook_done[], store_lua_hook_replay[],
    store_lua_hook_dead_list[], store_lua_hook_status[], store_lua_queue_pending[],
    store_lua_queue_delete[], store_lua_cancel_step[], store_lua_repush_due[],
    store_lua_repush_at[], store_lua_push_ledger[], store_lua_fleet_stats[],
    store_lua_expiry_event[], store_lua_push_claim[], store_lua_job_live[], store_lua_job_udids[],
    store_lua_job_cmd[], store_lua_push_topics[], store_lua_events_read[];

/* Cluster layout: how long an event waits before the feed reads it, so that
 * the 64 streams' entries come in id order (store_fan_events). */
#define STORE_FLEET_SETTLE_MS 100

static const char *const store_fleet_lua[STORE_FLEET_N] = {
    [STORE_FLEET_HOOK_NEXT] = store_lua_hook_next,
    [STORE_FLEET_HOOK_DONE] = store_lua_hook_done,
    [STORE_FLEET_HOOK_REPLAY] = store_lua_hook_replay,
    [STORE_FLEET_HOOK_DEAD_LIST] = store_lua_hook_dead_list,
    [STORE_FLEET_HOOK_STATUS] = store_lua_hook_status,
    [STORE_FLEET_QUEUE_PENDING] = store_lua_queue_pending,
    [STORE_FLEET_QUEUE_DELETE] = store_lua_queue_delete,
    [STORE_FLEET_CANCEL_STEP] = store_lua_cancel_step,
    [STORE_FLEET_REPUSH_DUE] = store_lua_repush_due,
    [STORE_FLEET_REPUSH_AT] = store_lua_repush_at,
    [STORE_FLEET_PUSH_LEDGER] = store_lua_push_ledger,
    [STORE_FLEET_FLEET_STATS] = store_lua_fleet_stats,
    [STORE_FLEET_EXPIRY_EVENT] = store_lua_expiry_event,
    [STORE_FLEET_PUSH_CLAIM] = store_lua_push_claim,
    [STORE_FLEET_JOB_LIVE] = store_lua_job_live,
    [STORE_FLEET_JOB_UDIDS] = store_lua_job_udids,
    [STORE_FLEET_JOB_CMD] = store_lua_job_cmd,
    [STORE_FLEET_PUSH_TOPICS] = store_lua_push_topics,
    [STORE_FLEET_EVENTS_READ] = store_lua_events_read,
};

/* ---- fleet_stats.lua: one call per bucket, added up ---------------------- */

/* The keys of bucket b for ARGV now .. [charts]. */
static int store_fleet_stats_keys(struct store *s, struct store_argv *a, int b, int argc,
                                  const char *const *argv)
{
    static const char *const base[] = {"mdm:devices", "mdm:repush", "mdm:stats", "mdm:pushlat",
                                       "mdm:os"};
    char rk[64];
    for (size_t i = 0; i < ARRAY_LEN(base); i++)
        store_argv_bkey(a, s, base[i], b);
    if (argc < 4 || strcmp(argv[3], "1") != 0)
        return 5;
    long long m0 = atoll(argv[0]) / 60000;
    for (int w = 0; w < 2; w++)
        for (int i = 0; i < 60; i++) {
            snprintf(rk, sizeof(rk), "mdm:rate:%s:%lld", w == 0 ? "cmd" : "push", m0 - 59 + i);
            store_argv_bkey(a, s, rk, b);
        }
    return 125;
}

struct store_fleet_stats {
    struct store *s;
    int argc;
    char **argv;
    json_t *sum;
    long list; /* list_stale */
    store_eval_fn *cb;
    void *arg;
};

/* Adds the numbers of object b into a (objects recursively, arrays by index). */
static void store_fleet_add(json_t *a, json_t *b)
{
    const char *k;
    json_t *v;
    json_object_foreach(b, k, v)
    {
        json_t *have = json_object_get(a, k);
        if (have != NULL && strcmp(k, "t") == 0)
            continue; /* a chart's minute: the same in every bucket */
        if (have == NULL)
            json_object_set(a, k, v);
        else if (json_is_integer(have) && json_is_integer(v))
            json_object_set_new(a, k,
                                json_integer(json_integer_value(have) + json_integer_value(v)));
        else if (json_is_number(have) && json_is_number(v))
            json_object_set_new(a, k, json_real(json_number_value(have) + json_number_value(v)));
        else if (json_is_object(have) && json_is_object(v))
            store_fleet_add(have, v);
        else if (json_is_array(have) && json_is_array(v) && strcmp(k, "stale_devices") == 0)
            json_array_extend(have, v);
        else if (json_is_array(have) && json_is_array(v))
            for (size_t i = 0; i < json_array_size(have) && i < json_array_size(v); i++)
                store_fleet_add(json_array_get(have, i), json_array_get(v, i));
    }
}

static const char *store_fleet_stats_build(void *arg, int b, struct store_argv *a, int *nkeys)
{
    struct store_fleet_stats *f = arg;
    *nkeys = store_fleet_stats_keys(f->s, a, b, f->argc, (const char *const *)f->argv);
    for (int i = 0; i < f->argc; i++)
        store_argv_str(a, f->argv[i]);
    return store_lua_fleet_stats;
}

static void store_fleet_stats_part(void *arg, int b, const redisReply *r)
{
    struct store_fleet_stats *f = arg;
    (void)b;
    json_t *j = r->type == REDIS_REPLY_STRING ? json_loadb(r->str, r->len, 0, NULL) : NULL;
    if (json_is_object(j))
        store_fleet_add(f->sum, j);
    json_decref(j);
}

static int store_fleet_stale_cmp(const void *x, const void *y)
{
    json_t *const *a = x, *const *b = y;
    json_int_t ta = json_integer_value(json_object_get(*a, "last_seen"));
    json_int_t tb = json_integer_value(json_object_get(*b, "last_seen"));
    return (ta > tb) - (ta < tb);
}

static void store_fleet_stats_done(void *arg, int err)
{
    struct store_fleet_stats *f = arg;
    json_t *st = json_object_get(f->sum, "stale_devices");
    if (st != NULL) { /* the oldest list_stale of every bucket's oldest */
        size_t n = json_array_size(st);
        json_t **v = xcalloc(n + 1, sizeof(*v));
        for (size_t i = 0; i < n; i++)
            v[i] = json_incref(json_array_get(st, i));
        qsort(v, n, sizeof(*v), store_fleet_stale_cmp);
        json_t *out = json_array();
        for (size_t i = 0; i < n; i++)
            if ((long)i < f->list)
                json_array_append(out, v[i]);
        for (size_t i = 0; i < n; i++)
            json_decref(v[i]);
        free(v);
        json_object_set_new(f->sum, "stale_devices", out);
    }
    char *s = err == MDMD_OK ? json_dumps(f->sum, JSON_COMPACT) : NULL;
    f->cb(f->arg, err, 0, s, s != NULL ? strlen(s) : 0);
    free(s);
    json_decref(f->sum);
    for (int i = 0; i < f->argc; i++)
        free(f->argv[i]);
    free(f->argv);
    free(f);
}

/* fleet_stats.lua: one call with the single layout's keys, or one per
 * bucket, the JSON answers added up (the stale list: the oldest of all). */
static struct store_op *store_fleet_stats(struct store *s, int argc, const char *const *argv,
                                          store_eval_fn *cb, void *arg)
{
    if (argc < 3) {
        cb(arg, MDMD_EPROTO, 0, NULL, 0);
        return NULL;
    }
    if (!store_layout_cluster(s)) {
        struct store_argv a;
        store_argv_init(&a);
        int nkeys = store_fleet_stats_keys(s, &a, 0, argc, argv);
        for (int i = 0; i < argc; i++)
            store_argv_str(&a, argv[i]);
        struct store_op *op = store_eval(s, store_script_get(s, store_lua_fleet_stats), nkeys, a.n,
                                         a.v, a.len, cb, arg);
        store_argv_free(&a);
        return op;
    }
    struct store_fleet_stats *f = xcalloc(1, sizeof(*f));
    f->s = s;
    f->argc = argc;
    f->argv = xcalloc((size_t)argc + 1, sizeof(char *));
    for (int i = 0; i < argc; i++)
        f->argv[i] = xstrdup(argv[i]);
    f->sum = json_object();
    f->list = atol(argv[2]);
    f->cb = cb;
    f->arg = arg;
    store_fan(s, STORE_BUCKETS, store_fleet_stats_build, store_fleet_stats_part,
              store_fleet_stats_done, f);
    return NULL;
}

/* repush_due.lua (ARGV: events now limit after_ms max_ms max_attempts, the
 * key as the caller passed it): the single layout's one call with the
 * schedule and the devices' prefix keys, or the cluster layout's claims per
 * bucket and decisions per device (store_fan_repush). */
static struct store_op *store_fleet_repush_due(struct store *s, int argc, const char *const *argv,
                                               store_eval_fn *cb, void *arg)
{
    if (argc < 6) {
        cb(arg, MDMD_EPROTO, 0, NULL, 0);
        return NULL;
    }
    if (store_layout_cluster(s))
        return store_fan_repush(s, atoll(argv[1]), atoi(argv[2]), atoll(argv[3]), atoll(argv[4]),
                                atoi(argv[5]), cb, arg);
    const char *v[] = {argv[0], "mdm:repush", "mdm:dev:", "mdm:q:", argv[1],
                       argv[2], argv[3],      argv[4],    argv[5]};
    return store_eval(s, store_script_get(s, store_lua_repush_due), 4, 9, v, NULL, cb, arg);
}

/* ---- the webhook scripts: keys of the layout ------------------------------ */

/* The callers pass the single layout's keys; the hook scripts' keys are made
 * here for the layout: dead letters and replay streams in {g}, and in the
 * cluster layout a consumer group per bucket stream (store_fan_hook_*).
 * HOOK_DONE's first key is the entry's stream as the caller made it
 * (store_bucket_key of the bucket hook_next named). */
static struct store_op *store_fleet_hook(struct store *s, int id, int nkeys, int argc,
                                         const char *const *argv, const size_t *argvlen,
                                         store_eval_fn *cb, void *arg)
{
    struct store_argv a;
    char rest[96];
    int cluster = store_layout_cluster(s);
    const char *const *rv = argv + nkeys;
    int rc = argc - nkeys, k = 0;
    if (id == STORE_FLEET_HOOK_NEXT && cluster && rc >= 3)
        return store_fan_hook_next(s, rv[0], rv[1], rv[2], cb, arg);
    if (id == STORE_FLEET_HOOK_STATUS && cluster)
        return store_fan_hook_status(s, rv, rc, cb, arg);
    if (id == STORE_FLEET_HOOK_DONE && cluster && rc >= 4)
        return store_fan_hook_done(s, argv[0], rv, argvlen != NULL ? argvlen + nkeys : NULL, rc, cb,
                                   arg);
    if (id == STORE_FLEET_HOOK_DONE || (id == STORE_FLEET_HOOK_NEXT && rc < 1))
        return store_eval(s, store_script_get(s, store_fleet_lua[id]), nkeys, argc, argv, argvlen,
                          cb, arg);
    store_argv_init(&a);
    switch (id) {
    case STORE_FLEET_HOOK_NEXT:
        store_argv_str(&a, "mdm:events");
        store_argv_str(&a, "mdm:stats");
        snprintf(rest, sizeof(rest), "hook:replay:%s", rv[0]);
        store_argv_gkey(&a, s, "%s", rest);
        k = 3;
        break;
    case STORE_FLEET_HOOK_STATUS:
        store_argv_str(&a, "mdm:events");
        store_argv_str(&a, "mdm:stats");
        /* fall through */
    case STORE_FLEET_HOOK_REPLAY:
        store_argv_gkey(&a, s, "hook:dead");
        store_argv_gkey(&a, s, "hook:replay:");
        k = id == STORE_FLEET_HOOK_STATUS ? 4 : 2;
        if (id == STORE_FLEET_HOOK_STATUS)
            store_argv_str(&a, "all");
        break;
    default: /* HOOK_DEAD_LIST */ store_argv_gkey(&a, s, "hook:dead"); k = 1;
    }
    for (int i = 0; i < rc; i++)
        store_argv_push(&a, rv[i], argvlen != NULL ? argvlen[nkeys + i] : strlen(rv[i]));
    struct store_op *op =
        store_eval(s, store_script_get(s, store_fleet_lua[id]), k, a.n, a.v, a.len, cb, arg);
    store_argv_free(&a);
    return op;
}

/* The device's bucket of base (mdm:repush...): base itself in the single
 * layout. */
static void store_fleet_dev_bkey(struct store *s, char *out, size_t n, const char *base,
                                 const char *udid)
{
    char dev[STORE_MDM_KEY_MAX];
    store_mdm_key(dev, sizeof(dev), "dev", udid);
    (void)store_bucket_key(s, out, n, base, store_bucket_of(dev, strlen(dev)));
}

/* repush_at.lua on the device's bucket of mdm:repush (ARGV udid due_ms). */
static struct store_op *store_fleet_repush_at(struct store *s, const char *const *argv,
                                              store_eval_fn *cb, void *arg)
{
    char k[STORE_MDM_KEY_MAX];
    store_fleet_dev_bkey(s, k, sizeof(k), "mdm:repush", argv[0]);
    const char *v[] = {k, argv[0], argv[1]};
    return store_eval(s, store_script_get(s, store_lua_repush_at), 1, 3, v, NULL, cb, arg);
}

/* expiry_event.lua (ARGV what not_after threshold days_left now): its mark
 * is configuration ({g} in the cluster layout), its event a fleet write. */
static struct store_op *store_fleet_expiry(struct store *s, const char *const *argv,
                                           store_eval_fn *cb, void *arg)
{
    char rest[160], k[192];
    snprintf(rest, sizeof(rest), "expiry:%s:%s:%s", argv[0], argv[1], argv[2]);
    struct store_argv a;
    store_argv_init(&a);
    store_argv_str(&a, store_global_key(s, k, sizeof(k), rest));
    for (int i = 0; i < 5; i++)
        store_argv_str(&a, argv[i]);
    return store_argv_fx_script(s, store_lua_expiry_event, 1, &a, store_eval_reply,
                                (union store_cb){.eval = cb}, arg);
}

/* push_ledger.lua (ARGV udid count): the device's keys; in the cluster
 * layout its mdm:repush score is read first (its bucket's slot). */
struct store_ledger {
    struct store *s;
    store_eval_fn *cb;
    void *arg;
    char *udid, *count;
};

static struct store_op *store_fleet_ledger_call(struct store *s, const char *udid,
                                                const char *count, const char *due,
                                                store_eval_fn *cb, void *arg)
{
    char pushes[STORE_MDM_KEY_MAX], dev[STORE_MDM_KEY_MAX], rp[STORE_MDM_KEY_MAX];
    store_mdm_key(pushes, sizeof(pushes), "pushes", udid);
    store_mdm_key(dev, sizeof(dev), "dev", udid);
    store_fleet_dev_bkey(s, rp, sizeof(rp), "mdm:repush", udid);
    const char *v[] = {pushes, dev, rp, udid, count};
    const char *w[] = {pushes, dev, udid, count, due};
    struct store_script *sc = store_script_get(s, store_lua_push_ledger);
    if (due != NULL)
        return store_eval(s, sc, 2, 5, w, NULL, cb, arg);
    return store_eval(s, sc, 3, 5, v, NULL, cb, arg);
}

static void store_fleet_due_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_ledger *l = op->arg;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)
        err = MDMD_EPROTO;
    if (err != MDMD_OK)
        l->cb(l->arg, err, 0, NULL, 0);
    else
        (void)store_fleet_ledger_call(l->s, l->udid, l->count,
                                      r->type == REDIS_REPLY_STRING ? r->str : "0", l->cb, l->arg);
    free(l->udid);
    free(l->count);
    free(l);
}

static struct store_op *store_fleet_ledger(struct store *s, const char *const *argv,
                                           store_eval_fn *cb, void *arg)
{
    if (!store_layout_cluster(s))
        return store_fleet_ledger_call(s, argv[0], argv[1], NULL, cb, arg);
    char rp[STORE_MDM_KEY_MAX];
    store_fleet_dev_bkey(s, rp, sizeof(rp), "mdm:repush", argv[0]);
    struct store_ledger *l = xcalloc(1, sizeof(*l));
    *l = (struct store_ledger){s, cb, arg, xstrdup(argv[0]), xstrdup(argv[1])};
    const char *v[] = {"ZSCORE", rp, argv[0]};
    struct store_op *op = store_op_new(s, STORE_CB_NONE, l);
    return store_cmd_argv(s, 3, v, NULL, store_fleet_due_reply, op);
}

/* The three scripts below take ARGV only from their callers (handlers keep
 * their argument vectors); the keys are made here, per layout. */
struct store_op *store_fleet_eval(struct store *s, int id, int nkeys, int argc,
                                  const char *const *argv, const size_t *argvlen, store_eval_fn *cb,
                                  void *arg)
{
    if (id == STORE_FLEET_HOOK_NEXT || id == STORE_FLEET_HOOK_DONE ||
        id == STORE_FLEET_HOOK_REPLAY || id == STORE_FLEET_HOOK_DEAD_LIST ||
        id == STORE_FLEET_HOOK_STATUS)
        return store_fleet_hook(s, id, nkeys, argc, argv, argvlen, cb, arg);
    if (id == STORE_FLEET_FLEET_STATS)
        return store_fleet_stats(s, argc, argv, cb, arg);
    if (id == STORE_FLEET_REPUSH_DUE)
        return store_fleet_repush_due(s, argc, argv, cb, arg);
    if (id == STORE_FLEET_REPUSH_AT && argc == 2)
        return store_fleet_repush_at(s, argv, cb, arg);
    if (id == STORE_FLEET_PUSH_LEDGER && argc == 2)
        return store_fleet_ledger(s, argv, cb, arg);
    if (id == STORE_FLEET_EXPIRY_EVENT && argc == 6)
        return store_fleet_expiry(s, argv + 1, cb, arg);
    return store_eval(s, store_script_get(s, store_fleet_lua[id]), nkeys, argc, argv, argvlen, cb,
                      arg);
}

struct store_op *store_fleet_events_read(struct store *s, const char *after, int count, int backlog,
                                         store_eval_fn *cb, void *arg)
{
    char n[16], b[16];
    snprintf(n, sizeof(n), "%d", count);
    snprintf(b, sizeof(b), "%d", backlog);
    if (store_layout_cluster(s)) /* 64 streams; the newest 100 ms settle first */
        return store_fan_events(s, after, count, backlog, util_now_ms() - STORE_FLEET_SETTLE_MS, cb,
                                arg);
    const char *v[] = {"mdm:events", after, n, b};
    return store_fleet_eval(s, STORE_FLEET_EVENTS_READ, 1, 4, v, NULL, cb, arg);
}

struct store_op *store_fleet_enqueue_head(struct store *s, const char *uuid,
                                          const char *request_type, const char *plist,
                                          size_t plist_len, const char *const *udids, size_t nudids,
                                          int64_t now_ms, int ttl_s, store_enqueue_fn *cb,
                                          void *arg)
{
    /* enqueue.lua's from "head": to the head of each queue */
    return store_enqueue_from(s, uuid, request_type, plist, plist_len, udids, nudids, now_ms, ttl_s,
                              "head", cb, arg);
}
