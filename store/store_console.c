/* store_console.c: console sessions and device search (keys: docs/REDIS.md;
 * scripts: store/lua/console_session_*.lua, device_search.lua). */
#include "store_console.h"
#include "../core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_fanout.h"
#include "store_int.h"

extern const char store_lua_console_session_new[], store_lua_console_session_get[],
    store_lua_console_session_del[], store_lua_device_search[];

#define STORE_CONSOLE_SEARCH_BUDGET 10000 /* index entries one call may read */

static struct store_op *store_console_run(struct store *s, const char *lua, int nkeys, int argc,
                                          const char *const *argv, store_reply_fn *reply,
                                          union store_cb cb, void *arg)
{
    struct store_op *op = store_op_new(s, cb, arg);
    return store_cmd_script(s, store_script_get(s, lua), nkeys, argc, argv, NULL, reply, op);
}

static void store_console_done_reply(struct store_op *op, int err, const redisReply *r)
{
    store_done_fn *cb = op->cb.done;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type != REDIS_REPLY_INTEGER)
        err = MDMD_EPROTO;
    cb(op->arg, err);
}

struct store_op *store_console_session_new(struct store *s, const char *sid, const char *user,
                                           const char *csrf, int64_t now_ms, int idle_s,
                                           store_done_fn *cb, void *arg)
{
    char now[24], idle[16];
    snprintf(now, sizeof(now), "%lld", (long long)now_ms);
    snprintf(idle, sizeof(idle), "%d", idle_s);
    char sk[32], uk[32];
    store_global_key(s, sk, sizeof(sk), "session:");
    store_global_key(s, uk, sizeof(uk), "user:");
    const char *argv[] = {sk, uk, sid, user, csrf, now, idle};
    return store_console_run(s, store_lua_console_session_new, 2, 7, argv, store_console_done_reply,
                             (union store_cb){.done = cb}, arg);
}

static void store_console_session_reply(struct store_op *op, int err, const redisReply *r)
{
    store_console_session_fn *cb = op->cb.console_session;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && (r->type != REDIS_REPLY_ARRAY || (r->elements != 0 && r->elements != 2)))
        err = MDMD_EPROTO;
    for (size_t i = 0; err == MDMD_OK && i < r->elements; i++)
        if (r->element[i]->type != REDIS_REPLY_STRING)
            err = MDMD_EPROTO;
    if (err != MDMD_OK || r->elements == 0)
        cb(op->arg, err, NULL, NULL);
    else
        cb(op->arg, MDMD_OK, r->element[0]->str, r->element[1]->str);
}

struct store_op *store_console_session_get(struct store *s, const char *sid, int64_t now_ms,
                                           int idle_s, int max_s, store_console_session_fn *cb,
                                           void *arg)
{
    char now[24], idle[16], max[16];
    snprintf(now, sizeof(now), "%lld", (long long)now_ms);
    snprintf(idle, sizeof(idle), "%d", idle_s);
    snprintf(max, sizeof(max), "%d", max_s);
    char sk[32], uk[32];
    store_global_key(s, sk, sizeof(sk), "session:");
    store_global_key(s, uk, sizeof(uk), "user:");
    const char *argv[] = {sk, uk, sid, now, idle, max};
    return store_console_run(s, store_lua_console_session_get, 2, 6, argv,
                             store_console_session_reply, (union store_cb){.console_session = cb},
                             arg);
}

struct store_op *store_console_session_del(struct store *s, const char *sid, store_done_fn *cb,
                                           void *arg)
{
    char sk[32];
    store_global_key(s, sk, sizeof(sk), "session:");
    const char *argv[] = {sk, sid};
    return store_console_run(s, store_lua_console_session_del, 1, 2, argv, store_console_done_reply,
                             (union store_cb){.done = cb}, arg);
}

/* ---- search ---- */

/* One HGETALL reply as a record; kv is caller-freed.  -1 if malformed. */
static int store_console_record(const redisReply *r, struct store_record *rec)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0)
        return -1;
    struct store_kv *kv = xcalloc(r->elements / 2 + 1, sizeof(*kv));
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type != REDIS_REPLY_STRING) {
            free(kv);
            return -1;
        }
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        kv[i / 2] =
            (struct store_kv){r->element[i]->str, r->element[i + 1]->str, r->element[i + 1]->len};
    *rec = (struct store_record){NULL, kv, r->elements / 2};
    return 0;
}

static int store_console_search_shape(const redisReply *r)
{
    return r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
           r->element[0]->type == REDIS_REPLY_INTEGER &&
           r->element[1]->type == REDIS_REPLY_INTEGER && r->element[2]->type == REDIS_REPLY_ARRAY;
}

static void store_console_search_reply(struct store_op *op, int err, const redisReply *r)
{
    store_devices_fn *cb = op->cb.devices;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && !store_console_search_shape(r))
        err = MDMD_EPROTO;
    if (err != MDMD_OK) {
        cb(op->arg, err, -1, 0, NULL, 0);
        return;
    }
    const redisReply *a = r->element[2];
    struct store_record *recs = xcalloc(a->elements + 1, sizeof(*recs));
    size_t n = 0;
    while (err == MDMD_OK && n < a->elements)
        if (store_console_record(a->element[n], &recs[n]) == 0)
            n++;
        else
            err = MDMD_EPROTO;
    if (err != MDMD_OK)
        cb(op->arg, err, -1, 0, NULL, 0);
    else
        cb(op->arg, MDMD_OK, (long)r->element[0]->integer, (long)r->element[1]->integer, recs, n);
    for (size_t i = 0; i < n; i++)
        free((void *)recs[i].kv);
    free(recs);
}

struct store_op *store_console_search(struct store *s, const char *query, long offset, int limit,
                                      const char *state, store_devices_fn *cb, void *arg)
{
    char off[24], lim[16], budget[16];
    if (store_layout_cluster(s)) /* the buckets of mdm:idx, merged */
        return store_fan_search(s, query, offset, limit, state, STORE_CONSOLE_SEARCH_BUDGET, cb,
                                arg);
    snprintf(off, sizeof(off), "%ld", offset);
    snprintf(lim, sizeof(lim), "%d", limit);
    snprintf(budget, sizeof(budget), "%d", STORE_CONSOLE_SEARCH_BUDGET);
    const char *argv[] = {"mdm:idx", "mdm:dev:", query, off, lim, state, budget};
    return store_console_run(s, store_lua_device_search, 2, 7, argv, store_console_search_reply,
                             (union store_cb){.devices = cb}, arg);
}
