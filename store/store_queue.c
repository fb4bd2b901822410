/* store_queue.c: enqueue in the cluster key layout (docs/REDIS.md, "Redis
 * Cluster").  The single layout queues a list chunk or a filter step in one
 * script (enqueue.lua, enqueue_filter.lua), body and counters included; in
 * the cluster layout a script stays in one slot, so one enqueue is a few
 * calls, in phases, each phase's calls pipelined:
 *
 *   body     cmd_put.lua on mdm:cmd:<UUID>: stored, or compared (409), first;
 *   scan     (filter jobs) ZSCAN of one bucket of mdm:devices;
 *   groups   enqueue.lua once per slot among the UDIDs (their dev, q and
 *            mdm:cmdto:{UDID} keys), all at once;
 *   after    the command's targets count and TTL, the queue depth of each
 *            bucket that queued (HINCRBY mdm:stats:{bNN}), a job's progress
 *            (job_step.lua).
 *
 * A call that fails makes the whole op fail with its error once every call
 * of the phase has answered (the same request again queues only what is
 * missing: once per UUID and device, mdm:cmdto:{UDID}).  Filter and cancel
 * jobs walk the 64 buckets of mdm:devices the same way, one bucket's ZSCAN a
 * step.  Also here, for both layouts: WAIT on every node an enqueue wrote,
 * a device's pending list (the bodies by their own calls in the cluster
 * layout), cancelling a command everywhere, and the fleet's push topics. */
#include "store_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store_cluster.h"
#include "../core/util.h"

extern const char store_lua_cmd_put[], store_lua_job_step[], store_lua_queue_pending[],
    store_lua_cancel_step[], store_lua_push_topics[];

enum store_q_phase { STORE_Q_BODY, STORE_Q_SCAN, STORE_Q_GROUPS, STORE_Q_END };

struct store_q {
    struct store *s;
    union store_cb cb; /* .enqueue (lists), .filter (filter steps), .eval (cancel) */
    void *arg;
    enum store_q_phase phase;
    char *uuid, *request_type, *plist;
    size_t plist_len;
    char now[24], ttl[16], from[24]; /* from: enqueue.lua's ARGV[6] */
    char state[32];                  /* "" for lists */
    int scan;                        /* a walk over the buckets: a filter or a cancel */
    int cancel;                      /* cancel_step.lua's walk (cb.eval) */
    char *job;                       /* the job record's key, or NULL */
    long at;                         /* job_step.lua's at: list index, or filter steps */
    int bucket;                      /* filter: the bucket being scanned */
    int count;                       /* filter: ZSCAN COUNT */
    char zcursor[32];                /* filter: its ZSCAN cursor */
    char cursor[48];                 /* filter: the job's position after this step */
    char **ids;
    size_t nids;
    int pending, err, replayed;
    long queued, already;
    char **unknown;
    size_t nunknown;
    struct store_push_target *push; /* strings owned */
    size_t npush;
    long depth[STORE_BUCKETS];
};

static void store_q_free(struct store_q *q)
{
    for (size_t i = 0; i < q->nids; i++)
        free(q->ids[i]);
    for (size_t i = 0; i < q->nunknown; i++)
        free(q->unknown[i]);
    for (size_t i = 0; i < q->npush; i++) {
        free((char *)q->push[i].udid);
        free((char *)q->push[i].token);
        free((char *)q->push[i].push_magic);
        free((char *)q->push[i].topic);
    }
    free(q->ids);
    free(q->unknown);
    free(q->push);
    free(q->uuid);
    free(q->request_type);
    free(q->plist);
    free(q->job);
    free(q);
}

static struct store_q *store_q_new(struct store *s, const char *uuid, int64_t now_ms, int ttl_s,
                                   union store_cb cb, void *arg)
{
    struct store_q *q = xcalloc(1, sizeof(*q));
    q->s = s;
    q->cb = cb;
    q->arg = arg;
    q->uuid = xstrdup(uuid);
    snprintf(q->now, sizeof(q->now), "%lld", (long long)now_ms);
    snprintf(q->ttl, sizeof(q->ttl), "%d", ttl_s);
    return q;
}

static void store_q_ids(struct store_q *q, const char *const *udids, size_t n)
{
    q->ids = xcalloc(n + 1, sizeof(*q->ids));
    for (size_t i = 0; i < n; i++)
        q->ids[i] = xstrdup(udids[i]);
    q->nids = n;
}

/* ---- the end ---- */

static void store_q_finish(struct store_q *q)
{
    if (q->cancel) {
        char out[160];
        int n = snprintf(out, sizeof(out), "{\"cursor\":\"%s\",\"scanned\":%zu,\"canceled\":%ld}",
                         q->cursor, q->nids, q->queued);
        q->cb.eval(q->arg, q->err, 0, q->err == MDMD_OK ? out : NULL,
                   q->err == MDMD_OK ? (size_t)n : 0);
    } else if (q->scan) {
        store_filter_fn *cb = q->cb.filter;
        long scanned = q->replayed ? 0 : (long)q->nids;
        if (q->err != MDMD_OK)
            cb(q->arg, q->err, NULL, 0, 0, NULL, 0);
        else
            cb(q->arg, MDMD_OK, q->cursor, scanned, q->queued, q->push, q->npush);
    } else if (q->err != MDMD_OK) {
        q->cb.enqueue(q->arg, q->err, NULL);
    } else {
        struct store_enqueue_result res = {
            q->queued,   q->already, q->replayed, (const char *const *)q->unknown,
            q->nunknown, q->push,    q->npush};
        q->cb.enqueue(q->arg, MDMD_OK, &res);
    }
    store_q_free(q); /* the callback may have freed the store: not touched */
}

static void store_q_phase_done(struct store_q *q);

/* One call of the phase answered: the next phase once all have. */
static void store_q_answered(struct store_q *q, int err)
{
    if (err != MDMD_OK && q->err == MDMD_OK)
        q->err = err;
    if (--q->pending > 0)
        return;
    if (q->err != MDMD_OK || q->phase == STORE_Q_END) {
        store_q_finish(q);
        return;
    }
    store_q_phase_done(q);
}

static struct store_op *store_q_op(struct store_q *q)
{
    q->pending++;
    return store_op_new(q->s, STORE_CB_NONE, q);
}

/* ---- replies ---- */

static void store_q_done_reply(struct store_op *op, int err, const redisReply *r)
{
    store_q_answered(op->arg, store_reply_error(err, r));
}

static void store_q_body_reply(struct store_op *op, int err, const redisReply *r)
{
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type != REDIS_REPLY_INTEGER)
        err = MDMD_EPROTO;
    if (err == MDMD_OK && r->integer == 0)
        err = MDMD_ECONFLICT;
    store_q_answered(op->arg, err);
}

/* ["cursor", [member, score, ...]]: the members become the step's UDIDs. */
static void store_q_scan_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_q *q = op->arg;
    err = store_reply_error(err, r);
    if (err == MDMD_OK &&
        (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
         r->element[0]->type != REDIS_REPLY_STRING || !store_reply_strings(r->element[1]) ||
         r->element[0]->len >= sizeof(q->zcursor)))
        err = MDMD_EPROTO;
    if (err == MDMD_OK) {
        const redisReply *m = r->element[1];
        snprintf(q->zcursor, sizeof(q->zcursor), "%s", r->element[0]->str);
        free(q->ids); /* an empty bucket's, scanned before in this step */
        q->ids = xcalloc(m->elements / 2 + 1, sizeof(*q->ids));
        for (size_t i = 0; i + 1 < m->elements; i += 2)
            q->ids[q->nids++] = xstrdup(m->element[i]->str);
    }
    store_q_answered(q, err);
}

/* enqueue.lua's {queued, {unknown}, {targets}, already, replayed}, for
 * devices of one bucket (the op's arg says which, below). */
struct store_q_group {
    struct store_q *q;
    int bucket;
};

static void store_q_group_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_q_group *g = op->arg;
    struct store_q *q = g->q;
    int bucket = g->bucket;
    free(g);
    err = store_reply_error(err, r);
    if (err == MDMD_OK &&
        (r->type != REDIS_REPLY_ARRAY || r->elements != 5 ||
         r->element[0]->type != REDIS_REPLY_INTEGER || !store_reply_strings(r->element[1]) ||
         r->element[2]->type != REDIS_REPLY_ARRAY || r->element[3]->type != REDIS_REPLY_INTEGER))
        err = MDMD_EPROTO;
    if (err == MDMD_OK) {
        const redisReply *u = r->element[1], *p = r->element[2];
        q->queued += r->element[0]->integer;
        q->already += r->element[3]->integer;
        q->depth[bucket] += r->element[0]->integer;
        q->unknown = xrealloc(q->unknown, (q->nunknown + u->elements + 1) * sizeof(*q->unknown));
        for (size_t i = 0; i < u->elements; i++)
            q->unknown[q->nunknown++] = xstrdup(u->element[i]->str);
        size_t n;
        struct store_push_target *t = store_reply_targets(p, &n);
        q->push = xrealloc(q->push, (q->npush + n + 1) * sizeof(*q->push));
        for (size_t i = 0; i < n; i++)
            q->push[q->npush++] =
                (struct store_push_target){xstrdup(t[i].udid), xstrdup(t[i].token),
                                           xstrdup(t[i].push_magic), xstrdup(t[i].topic)};
        free(t);
    }
    store_q_answered(q, err);
}

/* cancel_step.lua's {scanned, canceled} for one slot's devices. */
static void store_q_cancel_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_q *q = op->arg;
    err = store_reply_error(err, r);
    if (err == MDMD_OK &&
        (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
         r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_INTEGER))
        err = MDMD_EPROTO;
    if (err == MDMD_OK)
        q->queued += r->element[1]->integer;
    store_q_answered(q, err);
}

static void store_q_step_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_q *q = op->arg;
    err = store_reply_error(err, r);
    if (err == MDMD_OK &&
        (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
         r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_STRING ||
         r->element[1]->len >= sizeof(q->cursor)))
        err = MDMD_EPROTO;
    if (err == MDMD_OK && r->element[0]->integer == 1) {
        q->replayed = 1; /* the record had this step: the stored position wins */
        snprintf(q->cursor, sizeof(q->cursor), "%s", r->element[1]->str);
    }
    store_q_answered(q, err);
}

/* ---- the phases: each sends its calls holding one count of pending, so
 * that a call answered at once (not connected) does not end the phase
 * before the others went out ---- */

static void store_q_start_body(struct store_q *q)
{
    struct store_argv a;
    store_argv_init(&a);
    store_argv_fmt(&a, "mdm:cmd:%s", q->uuid);
    store_argv_push(&a, q->plist, q->plist_len);
    store_argv_str(&a, q->request_type);
    store_argv_str(&a, q->now);
    store_argv_str(&a, q->ttl);
    q->phase = STORE_Q_BODY;
    q->pending += 2;
    (void)store_argv_script(q->s, store_lua_cmd_put, 1, &a, store_q_body_reply, STORE_CB_NONE, q);
    store_q_answered(q, MDMD_OK);
}

static void store_q_start_scan(struct store_q *q)
{
    char key[64], cnt[16];
    store_bucket_key(q->s, key, sizeof(key), "mdm:devices", q->bucket);
    snprintf(cnt, sizeof(cnt), "%d", q->count);
    const char *argv[] = {"ZSCAN", key, q->zcursor, "COUNT", cnt};
    q->phase = STORE_Q_SCAN;
    q->pending++;
    (void)store_cmd_argv(q->s, 5, argv, NULL, store_q_scan_reply, store_q_op(q));
    store_q_answered(q, MDMD_OK);
}

struct store_q_slot {
    unsigned slot;
    size_t i;
};

static int store_q_slot_cmp(const void *a, const void *b)
{
    const struct store_q_slot *x = a, *y = b;
    if (x->slot != y->slot)
        return x->slot < y->slot ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* cancel_step.lua for ids[run[0..n)], all of one slot: its fleet effects
 * (queue_depth, the events) go to their bucket (store_argv_fx_script). */
static void store_q_send_cancel(struct store_q *q, const struct store_q_slot *run, size_t n)
{
    struct store_argv a;
    char key[STORE_MDM_KEY_MAX];
    static const char *const kinds[] = {"q", "notnow", "sent", "channels"};
    store_argv_init(&a);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < ARRAY_LEN(kinds); k++) {
            store_mdm_key(key, sizeof(key), kinds[k], q->ids[run[i].i]);
            store_argv_fmt(&a, "%s", key);
        }
    int nkeys = a.n;
    store_argv_str(&a, q->uuid);
    store_argv_str(&a, "");
    store_argv_str(&a, "");
    store_argv_str(&a, q->now);
    for (size_t i = 0; i < n; i++)
        store_argv_str(&a, q->ids[run[i].i]);
    q->pending++;
    (void)store_argv_fx_script(q->s, store_lua_cancel_step, nkeys, &a, store_q_cancel_reply,
                               STORE_CB_NONE, q);
}

/* enqueue.lua for ids[run[0..n)], all of one slot. */
static void store_q_send_group(struct store_q *q, const struct store_q_slot *run, size_t n)
{
    if (q->cancel) {
        store_q_send_cancel(q, run, n);
        return;
    }
    struct store_argv a;
    char key[STORE_MDM_KEY_MAX];
    static const char *const kinds[] = {"dev", "q", "cmdto"};
    store_argv_init(&a);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < ARRAY_LEN(kinds); k++) {
            store_mdm_key(key, sizeof(key), kinds[k], q->ids[run[i].i]);
            store_argv_fmt(&a, "%s", key);
        }
    int nkeys = a.n;
    store_argv_str(&a, q->uuid);
    store_argv_str(&a, ""); /* request_type and plist: the body is not the devices' */
    store_argv_str(&a, "");
    store_argv_str(&a, q->now);
    store_argv_str(&a, q->ttl);
    store_argv_str(&a, q->from);
    store_argv_str(&a, q->state);
    for (size_t i = 0; i < n; i++)
        store_argv_str(&a, q->ids[run[i].i]);
    struct store_q_group *g = xcalloc(1, sizeof(*g));
    g->q = q;
    g->bucket = (int)(run[0].slot % STORE_BUCKETS);
    q->pending++;
    (void)store_argv_script(q->s, store_mdm_lua[STORE_LUA_ENQUEUE], nkeys, &a, store_q_group_reply,
                            STORE_CB_NONE, g);
}

static void store_q_start_after(struct store_q *q);

/* One script per slot among the UDIDs (a slot's devices share a node, so
 * the script may touch all of their keys), sent together. */
static void store_q_start_groups(struct store_q *q)
{
    char key[STORE_MDM_KEY_MAX];
    if (q->nids == 0) {
        store_q_start_after(q);
        return;
    }
    struct store_q_slot *sl = xcalloc(q->nids + 1, sizeof(*sl));
    for (size_t i = 0; i < q->nids; i++) {
        store_mdm_key(key, sizeof(key), "dev", q->ids[i]);
        sl[i] = (struct store_q_slot){store_cluster_slot(key, strlen(key)), i};
    }
    qsort(sl, q->nids, sizeof(*sl), store_q_slot_cmp);
    q->phase = STORE_Q_GROUPS;
    q->pending++;
    for (size_t i = 0, j; i < q->nids; i = j) {
        for (j = i + 1; j < q->nids && sl[j].slot == sl[i].slot; j++)
            ;
        store_q_send_group(q, sl + i, j - i);
    }
    free(sl);
    store_q_answered(q, MDMD_OK);
}

static void store_q_send_cmd(struct store_q *q, const char *verb, const char *a1, const char *a2)
{
    char key[96];
    snprintf(key, sizeof(key), "mdm:cmd:%s", q->uuid);
    const char *argv[] = {verb, key, a1, a2};
    (void)store_cmd_argv(q->s, a2 != NULL ? 4 : 3, argv, NULL, store_q_done_reply, store_q_op(q));
}

static void store_q_send_job_step(struct store_q *q)
{
    struct store_argv a;
    store_argv_init(&a);
    store_argv_str(&a, q->job);
    store_argv_str(&a, q->cancel ? "cancel" : q->scan ? "filter" : "list");
    store_argv_fmt(&a, "%ld", q->at);
    store_argv_str(&a, q->now);
    store_argv_fmt(&a, "%zu", q->nids);
    store_argv_fmt(&a, "%ld", q->queued);
    store_argv_fmt(&a, "%zu", q->nunknown);
    store_argv_fmt(&a, "%ld", (long)q->nids - q->queued - (long)q->nunknown);
    store_argv_str(&a, q->cursor);
    q->pending++;
    (void)store_argv_script(q->s, store_lua_job_step, 1, &a, store_q_step_reply, STORE_CB_NONE, q);
}

/* What the step changed besides the queues: the command's targets and TTL
 * ("expires 30 days after its last enqueue"), each bucket's queue depth,
 * the job's progress.  Derived counters: a call lost here (its reply is an
 * error, the op fails) is a drift of targets or queue_depth, not of any
 * queue (docs/REDIS.md, "Redis Cluster"). */
static void store_q_start_after(struct store_q *q)
{
    char n[24], key[64];
    q->phase = STORE_Q_END;
    q->pending++;
    if (q->queued > 0 && !q->cancel) {
        snprintf(n, sizeof(n), "%ld", q->queued);
        store_q_send_cmd(q, "HINCRBY", "targets", n);
        store_q_send_cmd(q, "EXPIRE", q->ttl, NULL);
    }
    for (int b = 0; b < STORE_BUCKETS; b++) {
        if (q->depth[b] == 0)
            continue;
        snprintf(n, sizeof(n), "%ld", q->depth[b]);
        store_bucket_key(q->s, key, sizeof(key), "mdm:stats", b);
        const char *argv[] = {"HINCRBY", key, "queue_depth", n};
        (void)store_cmd_argv(q->s, 4, argv, NULL, store_q_done_reply, store_q_op(q));
    }
    if (q->job != NULL)
        store_q_send_job_step(q);
    store_q_answered(q, MDMD_OK);
}

/* The filter's position after this step: "<bucket>:<cursor>" within the
 * walk over the buckets, "0" past the last one. */
static void store_q_filter_cursor(struct store_q *q)
{
    if (strcmp(q->zcursor, "0") != 0)
        snprintf(q->cursor, sizeof(q->cursor), "%d:%s", q->bucket, q->zcursor);
    else if (q->bucket + 1 < STORE_BUCKETS)
        snprintf(q->cursor, sizeof(q->cursor), "%d:0", q->bucket + 1);
    else
        snprintf(q->cursor, sizeof(q->cursor), "0");
}

static void store_q_phase_done(struct store_q *q)
{
    switch (q->phase) {
    case STORE_Q_BODY:
        if (q->scan)
            store_q_start_scan(q);
        else
            store_q_start_groups(q);
        break;
    case STORE_Q_SCAN:
        store_q_filter_cursor(q);
        if (q->nids == 0 && strcmp(q->zcursor, "0") == 0 && q->bucket + 1 < STORE_BUCKETS) {
            q->bucket++; /* an empty bucket: on to the next within the step */
            store_q_start_scan(q);
        } else {
            store_q_start_groups(q);
        }
        break;
    case STORE_Q_GROUPS: store_q_start_after(q); break;
    case STORE_Q_END: break;
    }
}

/* ---- entry points (store_int.h) ---- */

struct store_op *store_queue_enqueue(struct store *s, const struct store_queue_req *r,
                                     store_enqueue_fn *cb, void *arg)
{
    struct store_q *q =
        store_q_new(s, r->uuid, r->now_ms, r->ttl_s, (union store_cb){.enqueue = cb}, arg);
    snprintf(q->from, sizeof(q->from), "%s", r->from);
    store_q_ids(q, r->udids, r->nudids);
    q->at = (long)r->at;
    if (r->job_id != NULL) {
        char key[96];
        q->job = xstrdup(store_job_key(s, key, sizeof(key), r->job_id));
    }
    if (r->plist == NULL) {
        q->phase = STORE_Q_BODY;
        q->pending = 1;
        store_q_answered(q, MDMD_OK); /* straight to the devices */
        return NULL;
    }
    q->request_type = xstrdup(r->request_type);
    q->plist = xmalloc(r->plist_len + 1);
    memcpy(q->plist, r->plist, r->plist_len);
    q->plist[r->plist_len] = '\0';
    q->plist_len = r->plist_len;
    store_q_start_body(q);
    return NULL;
}

/* A walk over the buckets of mdm:devices, one step from cursor. */
static struct store_op *store_q_walk(struct store *s, const char *job_id, const char *uuid,
                                     const char *state, const char *cursor, int count, int step,
                                     int64_t now_ms, int ttl_s, union store_cb cb, void *arg)
{
    char key[96];
    struct store_q *q = store_q_new(s, uuid, now_ms, ttl_s, cb, arg);
    const char *colon = strchr(cursor, ':');
    snprintf(q->state, sizeof(q->state), "%s", state != NULL ? state : "");
    q->scan = 1;
    q->cancel = state == NULL;
    q->job = xstrdup(store_job_key(s, key, sizeof(key), job_id));
    q->at = step;
    q->count = count;
    q->bucket = colon != NULL ? atoi(cursor) : 0;
    if (q->bucket < 0 || q->bucket >= STORE_BUCKETS)
        q->bucket = 0;
    snprintf(q->zcursor, sizeof(q->zcursor), "%s", colon != NULL ? colon + 1 : "0");
    store_q_start_scan(q);
    return NULL;
}

struct store_op *store_queue_filter_step(struct store *s, const char *job_id, const char *uuid,
                                         const char *state, const char *cursor, int count, int step,
                                         int64_t now_ms, int ttl_s, store_filter_fn *cb, void *arg)
{
    return store_q_walk(s, job_id, uuid, state, cursor, count, step, now_ms, ttl_s,
                        (union store_cb){.filter = cb}, arg);
}

/* ---- WAIT on every node written ---- */

struct store_q_wait {
    store_done_fn *cb;
    void *arg;
    int pending, err;
};

static void store_q_waited(void *arg, int err)
{
    struct store_q_wait *w = arg;
    if (err != MDMD_OK && w->err == MDMD_OK)
        w->err = err;
    if (--w->pending > 0)
        return;
    store_done_fn *cb = w->cb;
    void *cb_arg = w->arg;
    err = w->err;
    free(w);
    cb(cb_arg, err);
}

struct store_op *store_enqueue_wait(struct store *s, const char *uuid, const char *const *udids,
                                    size_t n, int replicas, int ms, store_done_fn *cb, void *arg)
{
    char seen[STORE_CLUSTER_NODES + 1] = {0}, key[STORE_MDM_KEY_MAX];
    struct store_q_wait *w = xcalloc(1, sizeof(*w));
    w->cb = cb;
    w->arg = arg;
    w->pending = 1; /* held while they go out */
    snprintf(key, sizeof(key), "mdm:cmd:%s", uuid);
    for (size_t i = 0; i <= n; i++) {
        if (i > 0)
            store_mdm_key(key, sizeof(key), "dev", udids[i - 1]);
        int node = store_key_node(s, key);
        if (seen[node + 1])
            continue;
        seen[node + 1] = 1;
        w->pending++;
        (void)store_wait(s, key, replicas, ms, store_q_waited, w);
    }
    store_q_waited(w, MDMD_OK);
    return NULL;
}

/* ---- a device's pending commands ---- */

struct store_q_pending {
    store_eval_fn *cb;
    void *arg;
    json_t *list; /* queue_pending.lua's answer, bodies being filled in */
    int pending, err;
};

static void store_q_pending_end(struct store_q_pending *p)
{
    store_eval_fn *cb = p->cb;
    void *arg = p->arg;
    char *out = p->err == MDMD_OK ? json_dumps(p->list, JSON_COMPACT) : NULL;
    int err = p->err == MDMD_OK && out == NULL ? MDMD_EPROTO : p->err;
    json_decref(p->list);
    free(p);
    cb(arg, err, 0, out, out != NULL ? strlen(out) : 0);
    free(out);
}

struct store_q_body {
    struct store_q_pending *p;
    json_t *entry;
};

/* HMGET request_type created plist of one command: into its entry. */
static void store_q_pending_body_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_q_body *b = op->arg;
    struct store_q_pending *p = b->p;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && (r->type != REDIS_REPLY_ARRAY || r->elements != 3))
        err = MDMD_EPROTO;
    for (size_t i = 0; err == MDMD_OK && i < 3; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_STRING)
            continue; /* the command expired: left empty, as the single layout does */
        if (i == 1)
            json_object_set_new(b->entry, "created", json_integer(strtoll(e->str, NULL, 10)));
        else
            json_object_set_new(b->entry, i == 0 ? "request_type" : "plist",
                                json_stringn(e->str, e->len));
    }
    free(b);
    if (err != MDMD_OK && p->err == MDMD_OK)
        p->err = err;
    if (--p->pending == 0)
        store_q_pending_end(p);
}

static void store_q_pending_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_q_pending *p = op->arg;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type != REDIS_REPLY_STRING)
        err = MDMD_EPROTO;
    struct store *s = store_root(op->s); /* op->s may be a cluster node's */
    if (err != MDMD_OK || r->len == 0 || !store_layout_cluster(s)) {
        store_eval_fn *cb = p->cb;
        void *arg = p->arg;
        free(p);
        cb(arg, err, 0, err == MDMD_OK ? r->str : NULL, err == MDMD_OK ? r->len : 0);
        return;
    }
    p->list = json_loadb(r->str, r->len, 0, NULL);
    if (!json_is_array(p->list)) {
        p->err = MDMD_EPROTO;
        store_q_pending_end(p);
        return;
    }
    /* One HMGET per command, sent together: bodies are immutable by UUID,
     * each in its own slot. */
    size_t i;
    json_t *e;
    p->pending = 1;
    json_array_foreach(p->list, i, e)
    {
        char key[128];
        const char *uuid = json_string_value(json_object_get(e, "uuid"));
        if (uuid == NULL)
            continue;
        snprintf(key, sizeof(key), "mdm:cmd:%s", uuid);
        const char *argv[] = {"HMGET", key, "request_type", "created", "plist"};
        struct store_q_body *b = xcalloc(1, sizeof(*b));
        b->p = p;
        b->entry = e;
        p->pending++;
        (void)store_cmd_argv(s, 5, argv, NULL, store_q_pending_body_reply,
                             store_op_new(s, STORE_CB_NONE, b));
    }
    if (--p->pending == 0)
        store_q_pending_end(p);
}

struct store_op *store_queue_pending(struct store *s, const char *udid, int limit,
                                     store_eval_fn *cb, void *arg)
{
    static const char *const kinds[] = {"dev", "q", "notnow", "sent"};
    char key[STORE_MDM_KEY_MAX];
    struct store_argv a;
    store_argv_init(&a);
    for (size_t i = 0; i < ARRAY_LEN(kinds); i++) {
        store_mdm_key(key, sizeof(key), kinds[i], udid);
        store_argv_fmt(&a, "%s", key);
    }
    if (!store_layout_cluster(s))
        store_argv_str(&a, "mdm:cmd:");
    int nkeys = a.n;
    store_argv_fmt(&a, "%d", limit);
    struct store_q_pending *p = xcalloc(1, sizeof(*p));
    p->cb = cb;
    p->arg = arg;
    return store_argv_script(s, store_lua_queue_pending, nkeys, &a, store_q_pending_reply,
                             STORE_CB_NONE, p);
}

/* ---- cancelling a command everywhere, one step ---- */

static void store_q_json_reply(struct store_op *op, int err, const redisReply *r)
{
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type != REDIS_REPLY_STRING)
        err = MDMD_EPROTO;
    op->cb.eval(op->arg, err, 0, err == MDMD_OK ? r->str : NULL, err == MDMD_OK ? r->len : 0);
}

struct store_op *store_queue_cancel_step(struct store *s, const char *job_id, const char *uuid,
                                         const char *cursor, int count, int64_t now_ms,
                                         store_eval_fn *cb, void *arg)
{
    char key[96];
    if (store_layout_cluster(s))
        return store_q_walk(s, job_id, uuid, NULL, cursor, count, 0, now_ms, 0,
                            (union store_cb){.eval = cb}, arg);
    struct store_argv a;
    store_argv_init(&a);
    store_argv_fmt(&a, "%s", store_job_key(s, key, sizeof(key), job_id));
    store_argv_str(&a, "mdm:devices");
    store_argv_str(&a, "mdm:q:"); /* the prefixes of the devices' keys */
    store_argv_str(&a, "mdm:notnow:");
    store_argv_str(&a, "mdm:sent:");
    store_argv_str(&a, "mdm:channels:");
    store_argv_str(&a, uuid);
    store_argv_str(&a, cursor);
    store_argv_fmt(&a, "%d", count);
    store_argv_fmt(&a, "%lld", (long long)now_ms);
    return store_argv_fx_script(s, store_lua_cancel_step, 6, &a, store_q_json_reply,
                                (union store_cb){.eval = cb}, arg);
}

/* ---- the push topics of the devices seen last ---- */

struct store_q_seen {
    char *udid;
    double score;
};

struct store_q_topics {
    struct store *s;
    store_eval_fn *cb;
    void *arg;
    int n, pending, err, phase; /* phase 0: the buckets' newest; 1: the records */
    struct store_q_seen *seen;
    size_t nseen;
    json_t *count; /* topic -> devices */
};

static void store_q_topics_next(struct store_q_topics *t);

static void store_q_topics_answered(struct store_q_topics *t, int err)
{
    if (err != MDMD_OK && t->err == MDMD_OK)
        t->err = err;
    if (--t->pending > 0)
        return;
    if (t->err == MDMD_OK && t->phase == 0) {
        store_q_topics_next(t);
        return;
    }
    store_eval_fn *cb = t->cb;
    void *arg = t->arg;
    char *out = t->err == MDMD_OK ? json_dumps(t->count, JSON_COMPACT) : NULL;
    err = t->err == MDMD_OK && out == NULL ? MDMD_EPROTO : t->err;
    for (size_t i = 0; i < t->nseen; i++)
        free(t->seen[i].udid);
    free(t->seen);
    json_decref(t->count);
    free(t);
    cb(arg, err, 0, out, out != NULL ? strlen(out) : 0);
    free(out);
}

static void store_q_topics_range_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_q_topics *t = op->arg;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && (!store_reply_strings(r) || r->elements % 2 != 0))
        err = MDMD_EPROTO;
    if (err == MDMD_OK) {
        t->seen = xrealloc(t->seen, (t->nseen + r->elements / 2 + 1) * sizeof(*t->seen));
        for (size_t i = 0; i + 1 < r->elements; i += 2)
            t->seen[t->nseen++] = (struct store_q_seen){xstrdup(r->element[i]->str),
                                                        strtod(r->element[i + 1]->str, NULL)};
    }
    store_q_topics_answered(t, err);
}

static void store_q_topics_rec_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_q_topics *t = op->arg;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && (r->type != REDIS_REPLY_ARRAY || r->elements != 2))
        err = MDMD_EPROTO;
    if (err == MDMD_OK && r->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(r->element[0]->str, "checked_out") != 0 &&
        r->element[1]->type == REDIS_REPLY_STRING && r->element[1]->len > 0) {
        json_t *c = json_object_get(t->count, r->element[1]->str);
        json_object_set_new(t->count, r->element[1]->str, json_integer(json_integer_value(c) + 1));
    }
    store_q_topics_answered(t, err);
}

static int store_q_seen_cmp(const void *a, const void *b)
{
    const struct store_q_seen *x = a, *y = b;
    return x->score < y->score ? 1 : x->score > y->score ? -1 : 0;
}

/* The n newest over all buckets: one HMGET each, sent together. */
static void store_q_topics_next(struct store_q_topics *t)
{
    char key[STORE_MDM_KEY_MAX];
    t->phase = 1;
    t->pending = 1;
    qsort(t->seen, t->nseen, sizeof(*t->seen), store_q_seen_cmp);
    for (size_t i = 0; i < t->nseen && i < (size_t)t->n; i++) {
        store_mdm_key(key, sizeof(key), "dev", t->seen[i].udid);
        const char *argv[] = {"HMGET", key, "state", "topic"};
        t->pending++;
        (void)store_cmd_argv(t->s, 4, argv, NULL, store_q_topics_rec_reply,
                             store_op_new(t->s, STORE_CB_NONE, t));
    }
    store_q_topics_answered(t, MDMD_OK);
}

struct store_op *store_push_topics(struct store *s, int n, store_eval_fn *cb, void *arg)
{
    char num[16], last[16];
    snprintf(num, sizeof(num), "%d", n);
    if (!store_layout_cluster(s)) {
        const char *v[] = {"mdm:devices", "mdm:dev:", num};
        struct store_op *op = store_op_new(s, (union store_cb){.eval = cb}, arg);
        return store_cmd_script(s, store_script_get(s, store_lua_push_topics), 2, 3, v, NULL,
                                store_q_json_reply, op);
    }
    struct store_q_topics *t = xcalloc(1, sizeof(*t));
    t->s = s;
    t->cb = cb;
    t->arg = arg;
    t->n = n;
    t->count = json_object();
    t->pending = 1;
    snprintf(last, sizeof(last), "%d", n - 1);
    for (int b = 0; b < STORE_BUCKETS; b++) {
        char key[64];
        const char *argv[] = {"ZREVRANGE", store_bucket_key(s, key, sizeof(key), "mdm:devices", b),
                              "0", last, "WITHSCORES"};
        t->pending++;
        (void)store_cmd_argv(s, 5, argv, NULL, store_q_topics_range_reply,
                             store_op_new(s, STORE_CB_NONE, t));
    }
    store_q_topics_answered(t, MDMD_OK);
    return NULL;
}
