/* store_report.c: the command endpoint in the cluster key layout
 * (docs/REDIS.md, "Redis Cluster").  connect.lua runs in the device's slot
 * and only names the command to send; its body, stored once in
 * mdm:cmd:<UUID> (a slot of its own), comes from a small per-process cache
 * (a body never changes once stored: enqueue refuses another body under the
 * same UUID) or one HMGET.  A body that is gone (expired) is dropped from the
 * queue by connect.lua again ("-drop"), which names the next.  The reported
 * command's request_type comes the same way, before the script.  The single
 * layout does all of it in the one script (store_mdm.c). */
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "../core/util.h"

extern const char store_lua_connect[];

#define STORE_BODY_SLOTS 256
#define STORE_BODY_MAX (256 * 1024) /* a larger body is fetched every time */
#define STORE_BODY_TTL_MS 300000    /* then looked up again: it may have expired */

struct store_body { /* one cached command body */
    char uuid[80];
    char rt[64];
    char *plist;
    size_t len;
    int64_t at_ms;
};

/* Direct-mapped by the UUID's hash: a collision evicts; at most
 * STORE_BODY_SLOTS * STORE_BODY_MAX bytes.  The loop is single-threaded. */
static struct store_body store_bodies[STORE_BODY_SLOTS];

static struct store_body *store_body_slot(const char *uuid)
{
    uint32_t h = 2166136261u;
    for (const char *p = uuid; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return &store_bodies[h % STORE_BODY_SLOTS];
}

static const struct store_body *store_body_get(const char *uuid)
{
    const struct store_body *b = store_body_slot(uuid);
    if (b->plist == NULL || strcmp(b->uuid, uuid) != 0 ||
        util_mono_ms() - b->at_ms > STORE_BODY_TTL_MS)
        return NULL;
    return b;
}

void store_body_keep(const char *uuid, const char *rt, size_t rt_len, const char *plist, size_t len)
{
    struct store_body *b = store_body_slot(uuid);
    if (strlen(uuid) >= sizeof(b->uuid) || rt_len >= sizeof(b->rt) || len > STORE_BODY_MAX)
        return;
    free(b->plist);
    snprintf(b->uuid, sizeof(b->uuid), "%s", uuid);
    snprintf(b->rt, sizeof(b->rt), "%.*s", (int)rt_len, rt);
    b->plist = xmalloc(len + 1);
    memcpy(b->plist, plist, len);
    b->len = len;
    b->at_ms = util_mono_ms();
}

const char *store_body_rt(const char *uuid)
{
    const struct store_body *b = store_body_get(uuid);
    return b != NULL ? b->rt : NULL;
}

static void store_body_put(const char *uuid, const redisReply *rt, const redisReply *plist)
{
    if (rt->type == REDIS_REPLY_STRING && plist->type == REDIS_REPLY_STRING)
        store_body_keep(uuid, rt->str, rt->len, plist->str, plist->len);
}

struct store_rq { /* one report, across its calls */
    struct store *s;
    store_next_fn *cb;
    void *arg;
    struct store_argv a; /* owned (store_argv_own): sent again for "-drop" */
    int nkeys;
    char uuid[80]; /* the reported command (request_type wanted), then the one named */
    char rt[64];
    int drops;        /* bodies found gone so far: bounded, as the single layout's batches are */
    int64_t given_ms; /* when the device was given the named command (mdm:cmdto), or 0 */
};

#define STORE_RQ_DROPS_MAX 1000

static void store_rq_finish(struct store_rq *rq, int err, int ident, const char *uuid,
                            const char *plist, size_t len)
{
    store_next_fn *cb = rq->cb;
    void *arg = rq->arg;
    store_argv_free(&rq->a);
    free(rq);
    cb(arg, err, ident, uuid, plist, len); /* may free the store */
}

static void store_rq_reply(struct store_op *op, int err, const redisReply *r);

static struct store_op *store_rq_run(struct store_rq *rq)
{
    return store_argv_fx_keep(rq->s, store_lua_connect, rq->nkeys, &rq->a, store_rq_reply,
                              STORE_CB_NONE, rq);
}

/* HMGET mdm:cmd:<uuid> plist request_type */
static struct store_op *store_rq_fetch(struct store_rq *rq, const char *uuid, store_reply_fn *fn)
{
    char key[128];
    snprintf(key, sizeof(key), "mdm:cmd:%s", uuid);
    const char *argv[] = {"HMGET", key, "plist", "request_type"};
    struct store_op *op = store_op_new(rq->s, STORE_CB_NONE, rq);
    return store_cmd_argv(rq->s, 4, argv, NULL, fn, op);
}

static int store_rq_fetched(int err, const redisReply *r)
{
    err = store_reply_error(err, r);
    if (err == MDMD_OK && (r->type != REDIS_REPLY_ARRAY || r->elements != 2))
        err = MDMD_EPROTO;
    return err;
}

/* The body of the command connect.lua named. */
static void store_rq_body_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_rq *rq = op->arg;
    err = store_rq_fetched(err, r);
    if (err != MDMD_OK) {
        store_rq_finish(rq, err, STORE_ID_OK, NULL, NULL, 0);
        return;
    }
    const redisReply *plist = r->element[0];
    if (plist->type != REDIS_REPLY_STRING && rq->drops++ >= STORE_RQ_DROPS_MAX) {
        store_rq_finish(rq, MDMD_EUNAVAIL, STORE_ID_OK, NULL, NULL, 0); /* the device asks again */
        return;
    }
    /* A body the device was given less than its lifetime ago cannot have
     * expired: the node answered without it (a master back empty after a
     * failover, before it learnt it lost its slots).  Dropping the command
     * then would lose it; the device asks again instead. */
    if (plist->type != REDIS_REPLY_STRING && rq->given_ms > 0 &&
        util_now_ms() - rq->given_ms < (int64_t)STORE_CMD_TTL_S * 1000) {
        log_warn("event=command_body_unreadable uuid=%s given_ms=%lld", rq->uuid,
                 (long long)rq->given_ms);
        store_rq_finish(rq, MDMD_EUNAVAIL, STORE_ID_OK, NULL, NULL, 0);
        return;
    }
    if (plist->type != REDIS_REPLY_STRING) { /* expired: drop it, name the next */
        rq->a.v[STORE_REPORT_STATUS] = "-drop";
        rq->a.len[STORE_REPORT_STATUS] = 5;
        rq->a.v[STORE_REPORT_UUID] = rq->uuid;
        rq->a.len[STORE_REPORT_UUID] = strlen(rq->uuid);
        rq->a.n = rq->nkeys + STORE_REPORT_ARGS; /* the fields were recorded */
        (void)store_rq_run(rq);
        return;
    }
    store_body_put(rq->uuid, r->element[1], plist);
    char *uuid = xstrdup(rq->uuid);
    store_rq_finish(rq, MDMD_OK, STORE_ID_OK, uuid, plist->str, plist->len);
    free(uuid);
}

static void store_rq_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_rq *rq = op->arg;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
                           r->element[0]->type != REDIS_REPLY_STRING ||
                           (r->elements > 1 && r->element[1]->type != REDIS_REPLY_STRING)))
        err = MDMD_EPROTO;
    if (err != MDMD_OK) {
        store_rq_finish(rq, err, STORE_ID_OK, NULL, NULL, 0);
        return;
    }
    int ident = store_mdm_ident(r->element[0]->str, r->element[0]->len);
    if (ident != STORE_ID_OK || r->elements < 2) {
        store_rq_finish(rq, MDMD_OK, ident, NULL, NULL, 0);
        return;
    }
    if (r->element[1]->len >= sizeof(rq->uuid)) { /* no UUID enqueue takes (36 at most) */
        store_rq_finish(rq, MDMD_EPROTO, STORE_ID_OK, NULL, NULL, 0);
        return;
    }
    snprintf(rq->uuid, sizeof(rq->uuid), "%.*s", (int)r->element[1]->len, r->element[1]->str);
    rq->given_ms = r->elements > 2 && r->element[2]->type == REDIS_REPLY_STRING
                       ? strtoll(r->element[2]->str, NULL, 10)
                       : 0;
    const struct store_body *b = store_body_get(rq->uuid);
    if (b != NULL) {
        store_rq_finish(rq, MDMD_OK, ident, b->uuid, b->plist, b->len);
        return;
    }
    (void)store_rq_fetch(rq, rq->uuid, store_rq_body_reply);
}

/* The reported command's request_type, for its history entry and event. */
static void store_rq_rt_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_rq *rq = op->arg;
    err = store_rq_fetched(err, r);
    if (err != MDMD_OK) {
        store_rq_finish(rq, err, STORE_ID_OK, NULL, NULL, 0);
        return;
    }
    if (r->element[0]->type == REDIS_REPLY_STRING)
        store_body_put(rq->uuid, r->element[1], r->element[0]);
    if (r->element[1]->type == REDIS_REPLY_STRING)
        snprintf(rq->rt, sizeof(rq->rt), "%.*s", (int)r->element[1]->len, r->element[1]->str);
    rq->a.v[STORE_REPORT_RT] = rq->rt;
    rq->a.len[STORE_REPORT_RT] = strlen(rq->rt);
    (void)store_rq_run(rq);
}

struct store_op *store_report_cluster(struct store *s, const struct store_report *rp,
                                      store_next_fn *cb, void *arg)
{
    struct store_rq *rq = xcalloc(1, sizeof(*rq));
    rq->s = s;
    rq->cb = cb;
    rq->arg = arg;
    store_argv_init(&rq->a);
    int result =
        rp->uuid[0] != '\0' && strcmp(rp->status, "Idle") != 0 && strcmp(rp->status, "NotNow") != 0;
    const struct store_body *b = result ? store_body_get(rp->uuid) : NULL;
    rq->nkeys = store_mdm_report_argv(&rq->a, rp, 1, b != NULL ? b->rt : "");
    store_argv_own(&rq->a);
    if (!result || b != NULL)
        return store_rq_run(rq);
    snprintf(rq->uuid, sizeof(rq->uuid), "%s", rp->uuid);
    return store_rq_fetch(rq, rp->uuid, store_rq_rt_reply);
}
