/* store_jobs.c: bulk jobs and metrics reads (scripts: store/lua/enqueue.lua,
 * enqueue_filter.lua, job_set.lua, stats.lua). */
#include "store_jobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_fanout.h"
#include "store_int.h"
#include "../core/util.h"

extern const char store_lua_enqueue_filter[], store_lua_job_set[], store_lua_job_start[],
    store_lua_stats[], store_lua_cmd_put[];

#define STORE_JOBS_MAX_FIELDS 16

const char *store_job_key(const struct store *s, char *buf, size_t size, const char *id)
{
    char rest[64];
    snprintf(rest, sizeof(rest), "job:%s", id);
    return store_global_key(s, buf, size, rest);
}

/* ---- mdm:job:<id> ---- */

static void store_jobs_done_reply(struct store_op *op, int err, const redisReply *r)
{
    err = store_reply_error(err, r);
    if (op->cb.done != NULL)
        op->cb.done(op->arg, err);
}

struct store_op *store_job_set(struct store *s, const char *id, const struct store_kv *kv, size_t n,
                               int ttl_s, store_done_fn *cb, void *arg)
{
    const char *v[2 + 2 * STORE_JOBS_MAX_FIELDS];
    size_t len[2 + 2 * STORE_JOBS_MAX_FIELDS];
    char key[64], ttl[24];
    int argc = 0;
    store_job_key(s, key, sizeof(key), id);
    snprintf(ttl, sizeof(ttl), "%d", ttl_s);
    v[argc] = key, len[argc++] = strlen(key);
    v[argc] = ttl, len[argc++] = strlen(ttl);
    for (size_t i = 0; i < n && i < STORE_JOBS_MAX_FIELDS; i++) {
        v[argc] = kv[i].key, len[argc++] = strlen(kv[i].key);
        v[argc] = kv[i].val, len[argc++] = kv[i].len;
    }
    struct store_op *op = store_op_new(s, (union store_cb){.done = cb}, arg);
    return store_cmd_script(s, store_script_get(s, store_lua_job_set), 1, argc, v, len,
                            store_jobs_done_reply, op);
}

static void store_jobs_get_reply(struct store_op *op, int err, const redisReply *r)
{
    store_job_fn *cb = op->cb.job;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && (!store_reply_strings(r) || r->elements % 2 != 0))
        err = MDMD_EPROTO;
    if (err != MDMD_OK || r->elements == 0) {
        cb(op->arg, err, NULL);
        return;
    }
    struct store_kv *kv = xcalloc(r->elements / 2, sizeof(*kv));
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        kv[i / 2] =
            (struct store_kv){r->element[i]->str, r->element[i + 1]->str, r->element[i + 1]->len};
    struct store_record rec = {NULL, kv, r->elements / 2};
    cb(op->arg, MDMD_OK, &rec);
    free(kv);
}

struct store_op *store_job_get(struct store *s, const char *id, store_job_fn *cb, void *arg)
{
    char key[64];
    store_job_key(s, key, sizeof(key), id);
    const char *argv[] = {"HGETALL", key};
    struct store_op *op = store_op_new(s, (union store_cb){.job = cb}, arg);
    return store_cmd_argv(s, 2, argv, NULL, store_jobs_get_reply, op);
}

/* ---- enqueue by list, one chunk ---- */

struct store_op *store_job_enqueue(struct store *s, const char *job_id,
                                   const struct store_job_cmd *c, size_t from,
                                   const char *const *udids, size_t nudids, int64_t now_ms,
                                   store_enqueue_fn *cb, void *arg)
{
    char key[STORE_MDM_KEY_MAX];
    if (store_layout_cluster(s)) {
        char at[24];
        snprintf(at, sizeof(at), "%zu", from);
        struct store_queue_req r = {c->uuid, c->request_type, NULL, 0,      udids,   nudids,
                                    at,      job_id,          from, now_ms, c->ttl_s};
        return store_queue_enqueue(s, &r, cb, arg);
    }
    struct store_argv a;
    store_argv_init(&a);
    store_argv_fmt(&a, "mdm:cmd:%s", c->uuid);
    store_argv_fmt(&a, "mdm:cmdto:%s", c->uuid);
    store_argv_fmt(&a, "%s", store_job_key(s, key, sizeof(key), job_id));
    store_argv_str(&a, "mdm:stats");
    store_enqueue_keys(&a, udids, nudids);
    int nkeys = a.n;
    store_argv_str(&a, c->uuid);
    store_argv_str(&a, c->request_type);
    store_argv_push(&a, c->plist, c->plist_len);
    store_argv_fmt(&a, "%lld", (long long)now_ms);
    store_argv_fmt(&a, "%d", c->ttl_s);
    store_argv_fmt(&a, "%zu", from);
    store_argv_str(&a, ""); /* state: a list */
    for (size_t i = 0; i < nudids; i++)
        store_argv_str(&a, udids[i]);
    return store_argv_script(s, store_mdm_lua[STORE_LUA_ENQUEUE], nkeys, &a, store_enqueue_reply,
                             (union store_cb){.enqueue = cb}, arg);
}

/* ---- the record and the command, created together ---- */

static void store_jobs_start_reply(struct store_op *op, int err, const redisReply *r)
{
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type != REDIS_REPLY_INTEGER)
        err = MDMD_EPROTO;
    if (err == MDMD_OK && r->integer == 0)
        err = MDMD_ECONFLICT;
    op->cb.done(op->arg, err);
}

/* The cluster layout: the body (mdm:cmd:<UUID>, its own slot) first, then
 * the record ({g}); a conflict writes no record. */
struct store_jobs_start {
    struct store *s;
    store_done_fn *cb;
    void *arg;
    char *id;
    int ttl_s;
    struct store_kv *kv;
    size_t n;
};

static void store_jobs_start_free(struct store_jobs_start *st)
{
    for (size_t i = 0; i < st->n; i++) {
        free((char *)st->kv[i].key);
        free((char *)st->kv[i].val);
    }
    free(st->kv);
    free(st->id);
    free(st);
}

static void store_jobs_start_recorded(void *arg, int err)
{
    struct store_jobs_start *st = arg;
    store_done_fn *cb = st->cb;
    void *cb_arg = st->arg;
    store_jobs_start_free(st);
    cb(cb_arg, err);
}

static void store_jobs_start_body_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_jobs_start *st = op->arg;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type != REDIS_REPLY_INTEGER)
        err = MDMD_EPROTO;
    if (err == MDMD_OK && r->integer == 0)
        err = MDMD_ECONFLICT;
    if (err != MDMD_OK) {
        store_jobs_start_recorded(st, err);
        return;
    }
    (void)store_job_set(st->s, st->id, st->kv, st->n, st->ttl_s, store_jobs_start_recorded, st);
}

static struct store_op *store_jobs_start_cluster(struct store *s, const char *id,
                                                 const struct store_job_cmd *c,
                                                 const struct store_kv *kv, size_t n, int ttl_s,
                                                 int64_t now_ms, store_done_fn *cb, void *arg)
{
    struct store_jobs_start *st = xcalloc(1, sizeof(*st));
    st->s = s;
    st->cb = cb;
    st->arg = arg;
    st->id = xstrdup(id);
    st->ttl_s = ttl_s;
    st->kv = xcalloc(n + 1, sizeof(*st->kv));
    for (size_t i = 0; i < n; i++) {
        char *v = xmalloc(kv[i].len + 1);
        memcpy(v, kv[i].val, kv[i].len);
        v[kv[i].len] = '\0';
        st->kv[st->n++] = (struct store_kv){xstrdup(kv[i].key), v, kv[i].len};
    }
    struct store_argv a;
    store_argv_init(&a);
    store_argv_fmt(&a, "mdm:cmd:%s", c->uuid);
    store_argv_push(&a, c->plist, c->plist_len);
    store_argv_str(&a, c->request_type);
    store_argv_fmt(&a, "%lld", (long long)now_ms);
    store_argv_fmt(&a, "%d", c->ttl_s);
    (void)store_argv_script(s, store_lua_cmd_put, 1, &a, store_jobs_start_body_reply, STORE_CB_NONE,
                            st);
    return NULL;
}

struct store_op *store_job_start(struct store *s, const char *id, const struct store_job_cmd *c,
                                 const struct store_kv *kv, size_t n, int ttl_s, int64_t now_ms,
                                 store_done_fn *cb, void *arg)
{
    char key[64];
    if (store_layout_cluster(s))
        return store_jobs_start_cluster(s, id, c, kv, n, ttl_s, now_ms, cb, arg);
    struct store_argv a;
    store_argv_init(&a);
    store_argv_fmt(&a, "%s", store_job_key(s, key, sizeof(key), id));
    store_argv_fmt(&a, "mdm:cmd:%s", c->uuid);
    store_argv_fmt(&a, "%d", ttl_s);
    store_argv_fmt(&a, "%d", c->ttl_s);
    store_argv_push(&a, c->plist, c->plist_len);
    store_argv_str(&a, c->request_type);
    store_argv_fmt(&a, "%lld", (long long)now_ms);
    for (size_t i = 0; i < n; i++) {
        store_argv_str(&a, kv[i].key);
        store_argv_push(&a, kv[i].val, kv[i].len);
    }
    return store_argv_script(s, store_lua_job_start, 2, &a, store_jobs_start_reply,
                             (union store_cb){.done = cb}, arg);
}

/* ---- enqueue by filter, one scan step ---- */

static void store_jobs_filter_reply(struct store_op *op, int err, const redisReply *r)
{
    store_filter_fn *cb = op->cb.filter;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type == REDIS_REPLY_ARRAY && r->elements == 1)
        err = MDMD_ECONFLICT;
    if (err == MDMD_OK &&
        (r->type != REDIS_REPLY_ARRAY || r->elements != 4 ||
         r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_INTEGER ||
         r->element[2]->type != REDIS_REPLY_INTEGER || r->element[3]->type != REDIS_REPLY_ARRAY))
        err = MDMD_EPROTO;
    if (err != MDMD_OK) {
        cb(op->arg, err, NULL, 0, 0, NULL, 0);
        return;
    }
    size_t npush;
    struct store_push_target *push = store_reply_targets(r->element[3], &npush);
    cb(op->arg, MDMD_OK, r->element[0]->str, (long)r->element[1]->integer,
       (long)r->element[2]->integer, push, npush);
    free(push);
}

struct store_op *store_job_filter_step(struct store *s, const char *job_id,
                                       const struct store_job_cmd *c, const char *state,
                                       const char *cursor, int count, int step, int64_t now_ms,
                                       store_filter_fn *cb, void *arg)
{
    char cmd[128], to[128], job[64], now[24], ttl[24], cnt[24], stp[24];
    if (store_layout_cluster(s))
        return store_queue_filter_step(s, job_id, c->uuid, state, cursor, count, step, now_ms,
                                       c->ttl_s, cb, arg);
    snprintf(cmd, sizeof(cmd), "mdm:cmd:%s", c->uuid);
    snprintf(to, sizeof(to), "mdm:cmdto:%s", c->uuid);
    store_job_key(s, job, sizeof(job), job_id);
    snprintf(now, sizeof(now), "%lld", (long long)now_ms);
    snprintf(ttl, sizeof(ttl), "%d", c->ttl_s);
    snprintf(cnt, sizeof(cnt), "%d", count);
    snprintf(stp, sizeof(stp), "%d", step);
    /* The device keys' prefixes: enqueue_filter.lua makes the keys of the
     * devices it scans from them (the single layout only). */
    const char *keys[] = {cmd, "mdm:devices", job, to, "mdm:stats", "mdm:dev:", "mdm:q:"};
    const char *vv[ARRAY_LEN(keys) + 9];
    size_t len[ARRAY_LEN(vv)];
    memcpy(vv, keys, sizeof(keys));
    const char *args[] = {c->uuid, c->request_type, c->plist, now, ttl, cursor, cnt, state, stp};
    memcpy(vv + ARRAY_LEN(keys), args, sizeof(args));
    for (size_t i = 0; i < ARRAY_LEN(vv); i++)
        len[i] = i == ARRAY_LEN(keys) + 2 ? c->plist_len : strlen(vv[i]);
    struct store_op *op = store_op_new(s, (union store_cb){.filter = cb}, arg);
    return store_cmd_script(s, store_script_get(s, store_lua_enqueue_filter), (int)ARRAY_LEN(keys),
                            (int)ARRAY_LEN(vv), vv, len, store_jobs_filter_reply, op);
}

/* ---- metrics ---- */

static void store_jobs_stats_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_stats st = {0};
    err = store_reply_error(err, r);
    if (err == MDMD_OK &&
        (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
         r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_INTEGER))
        err = MDMD_EPROTO;
    if (err == MDMD_OK) {
        st.queue_depth = r->element[0]->integer;
        st.devices = r->element[1]->integer;
    }
    op->cb.stats(op->arg, err, err == MDMD_OK ? &st : NULL);
}

struct store_op *store_stats(struct store *s, store_stats_fn *cb, void *arg)
{
    if (store_layout_cluster(s)) /* every bucket's, added up */
        return store_fan_stats(s, cb, arg);
    const char *v[] = {"mdm:stats", "mdm:devices"};
    struct store_op *op = store_op_new(s, (union store_cb){.stats = cb}, arg);
    return store_cmd_script(s, store_script_get(s, store_lua_stats), 2, 2, v, NULL,
                            store_jobs_stats_reply, op);
}
