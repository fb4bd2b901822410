/* store_mdm.c: the MDM data ops (keys: docs/REDIS.md; scripts: store/lua). */
#include "store_mdm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "../core/util.h"

extern const char store_lua_authenticate[], store_lua_token_update[], store_lua_checkout[],
    store_lua_connect[], store_lua_enqueue[], store_lua_device[], store_lua_devices[],
    store_lua_queue_clear[], store_lua_push_targets[], store_lua_push_result[], store_lua_history[];

const char *const store_mdm_lua[STORE_LUA_N] = {
    [STORE_LUA_AUTHENTICATE] = store_lua_authenticate,
    [STORE_LUA_TOKEN_UPDATE] = store_lua_token_update,
    [STORE_LUA_CHECKOUT] = store_lua_checkout,
    [STORE_LUA_CONNECT] = store_lua_connect,
    [STORE_LUA_ENQUEUE] = store_lua_enqueue,
    [STORE_LUA_DEVICE] = store_lua_device,
    [STORE_LUA_DEVICES] = store_lua_devices,
    [STORE_LUA_QUEUE_CLEAR] = store_lua_queue_clear,
    [STORE_LUA_PUSH_TARGETS] = store_lua_push_targets,
    [STORE_LUA_PUSH_RESULT] = store_lua_push_result,
};

struct store_script *store_mdm_script(struct store *s, int id)
{
    return store_script_get(s, store_mdm_lua[id]);
}

const char *store_ident_str(int ident)
{
    switch (ident) {
    case STORE_ID_OK: return "ok";
    case STORE_ID_UNKNOWN: return "unknown_device";
    case STORE_ID_CHECKED_OUT: return "checked_out";
    case STORE_ID_CERT_MISMATCH: return "cert_mismatch";
    case STORE_ID_REVOKED: return "revoked";
    case STORE_ID_NOT_ISSUED: return "not_issued";
    case STORE_ID_CN_MISMATCH: return "cn_mismatch";
    case STORE_ID_NO_CHANNEL: return "no_channel";
    }
    return "?";
}

int store_mdm_ident(const char *s, size_t n)
{
    if (n == 7 && memcmp(s, "unknown", 7) == 0)
        return STORE_ID_UNKNOWN;
    if (n == 11 && memcmp(s, "checked_out", 11) == 0)
        return STORE_ID_CHECKED_OUT;
    if (n == 13 && memcmp(s, "cert_mismatch", 13) == 0)
        return STORE_ID_CERT_MISMATCH;
    if (n == 7 && memcmp(s, "revoked", 7) == 0)
        return STORE_ID_REVOKED;
    if (n == 10 && memcmp(s, "not_issued", 10) == 0)
        return STORE_ID_NOT_ISSUED;
    if (n == 11 && memcmp(s, "cn_mismatch", 11) == 0)
        return STORE_ID_CN_MISMATCH;
    if (n == 10 && memcmp(s, "no_channel", 10) == 0)
        return STORE_ID_NO_CHANNEL;
    return STORE_ID_OK;
}

static void store_mdm_fields(struct store_argv *a, const struct store_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        store_argv_str(a, kv[i].key);
        store_argv_push(a, kv[i].val, kv[i].len);
    }
}

static const char *store_mdm_udid_keys[] = {"dev", "q", "notnow", "res"};

/* mdm:<kind>:{UDID}, or mdm:<kind>:{UDID}:<user> for a user channel
 * ("<UDID>:<user>"): a channel's keys share its device's hash tag.  The Lua
 * side is mdm_key() (prelude.lua). */
void store_mdm_key(char *out, size_t n, const char *kind, const char *id)
{
    const char *colon = strchr(id, ':');
    if (colon == NULL)
        snprintf(out, n, "mdm:%s:{%s}", kind, id);
    else
        snprintf(out, n, "mdm:%s:{%.*s}:%s", kind, (int)(colon - id), id, colon + 1);
}

static void store_mdm_argv_key(struct store_argv *a, const char *kind, const char *id)
{
    char key[STORE_MDM_KEY_MAX];
    store_mdm_key(key, sizeof(key), kind, id);
    store_argv_fmt(a, "%s", key); /* copied: store_argv_str would borrow key */
}

/* ---- check-in ---- */

static void store_mdm_checkin_reply(struct store_op *op, int err, const redisReply *r)
{
    int ident = STORE_ID_OK, enrolled = 0;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type == REDIS_REPLY_STRING) {
        ident = store_mdm_ident(r->str, r->len);
        if (r->len == 8 && memcmp(r->str, "enrolled", 8) == 0)
            enrolled = STORE_ENROLLED_NOW;
        else if (r->len == 9 && memcmp(r->str, "provision", 9) == 0)
            enrolled = STORE_PROVISION_PENDING;
    } else if (err == MDMD_OK && r->type != REDIS_REPLY_INTEGER) {
        err = MDMD_EPROTO;
    }
    op->cb.checkin(op->arg, err, ident, enrolled);
}

/* KEYS dev [q notnow] devices events; ARGV udid now cert_fp [require_issued
 * cn_differs] (Authenticate only) [provision] (TokenUpdate only) [fields]. */
static struct store_op *store_mdm_checkin(struct store *s, int script, int with_queue,
                                          const struct store_device_msg *m, store_checkin_fn *cb,
                                          void *arg)
{
    struct store_argv a;
    store_argv_init(&a);
    store_mdm_argv_key(&a, store_mdm_udid_keys[0], m->udid);
    if (with_queue) {
        store_mdm_argv_key(&a, store_mdm_udid_keys[1], m->udid);
        store_mdm_argv_key(&a, store_mdm_udid_keys[2], m->udid);
    }
    store_argv_str(&a, "mdm:devices");
    store_argv_str(&a, "mdm:events");
    int nkeys = a.n;
    store_argv_str(&a, m->udid);
    store_argv_fmt(&a, "%lld", (long long)m->now_ms);
    store_argv_str(&a, m->cert_fp);
    if (script == STORE_LUA_AUTHENTICATE) {
        store_argv_str(&a, m->require_issued ? "1" : "0");
        store_argv_str(&a, m->cn_differs ? "1" : "0");
    }
    if (script == STORE_LUA_TOKEN_UPDATE)
        store_argv_str(&a, m->provision ? "1" : "0");
    store_mdm_fields(&a, m->fields, m->nfields);
    return store_argv_script(s, store_mdm_lua[script], nkeys, &a, store_mdm_checkin_reply,
                             (union store_cb){.checkin = cb}, arg);
}

struct store_op *store_authenticate(struct store *s, const struct store_device_msg *m,
                                    store_checkin_fn *cb, void *arg)
{
    return store_mdm_checkin(s, STORE_LUA_AUTHENTICATE, 1, m, cb, arg);
}

struct store_op *store_token_update(struct store *s, const struct store_device_msg *m,
                                    store_checkin_fn *cb, void *arg)
{
    return store_mdm_checkin(s, STORE_LUA_TOKEN_UPDATE, 0, m, cb, arg);
}

static void store_mdm_done_reply(struct store_op *op, int err, const redisReply *r);

struct store_op *store_enrolled_answered(struct store *s, const char *udid, store_done_fn *cb,
                                         void *arg)
{
    char key[STORE_MDM_KEY_MAX];
    store_mdm_key(key, sizeof(key), "dev", udid);
    const char *argv[] = {"HDEL", key, "enroll_unanswered"};
    struct store_op *op = store_op_new(s, (union store_cb){.done = cb}, arg);
    return store_cmd_argv(s, 3, argv, NULL, store_mdm_done_reply, op);
}

struct store_op *store_checkout(struct store *s, const struct store_device_msg *m,
                                store_checkin_fn *cb, void *arg)
{
    return store_mdm_checkin(s, STORE_LUA_CHECKOUT, 1, m, cb, arg);
}

/* ---- command endpoint ---- */

static void store_mdm_report_reply(struct store_op *op, int err, const redisReply *r)
{
    store_next_fn *cb = op->cb.next;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
                           r->element[0]->type != REDIS_REPLY_STRING))
        err = MDMD_EPROTO;
    if (err != MDMD_OK) {
        cb(op->arg, err, STORE_ID_OK, NULL, NULL, 0);
        return;
    }
    int ident = store_mdm_ident(r->element[0]->str, r->element[0]->len);
    if (ident == STORE_ID_OK && r->elements == 3)
        cb(op->arg, MDMD_OK, ident, r->element[1]->str, r->element[2]->str, r->element[2]->len);
    else
        cb(op->arg, MDMD_OK, ident, NULL, NULL, 0);
}

int store_mdm_report_argv(struct store_argv *a, const struct store_report *rp, int cluster,
                          const char *rt)
{
    for (int i = 0; i < 4; i++)
        store_mdm_argv_key(a, store_mdm_udid_keys[i], rp->dev.udid);
    store_mdm_argv_key(a, "sent", rp->dev.udid);
    if (!cluster) {
        store_argv_str(a, "mdm:cmd:");
        store_argv_str(a, "mdm:cert:");
    }
    int nkeys = a->n;
    store_argv_str(a, rp->dev.udid);
    store_argv_fmt(a, "%lld", (long long)rp->dev.now_ms);
    store_argv_str(a, rp->dev.cert_fp);
    store_argv_str(a, rp->status);
    store_argv_str(a, rp->uuid);
    store_argv_push(a, rp->result, rp->result_len);
    store_argv_str(a, rp->error_chain);
    store_argv_fmt(a, "%lld", (long long)rp->history_len);
    store_argv_fmt(a, "%lld", (long long)rp->history_max_bytes);
    store_argv_str(a, rt);
    store_mdm_fields(a, rp->dev.fields, rp->dev.nfields);
    return nkeys;
}

struct store_op *store_report(struct store *s, const struct store_report *rp, store_next_fn *cb,
                              void *arg)
{
    struct store_argv a;
    if (store_layout_cluster(s))
        return store_report_cluster(s, rp, cb, arg);
    store_argv_init(&a);
    int nkeys = store_mdm_report_argv(&a, rp, 0, "");
    return store_argv_fx_script(s, store_mdm_lua[STORE_LUA_CONNECT], nkeys, &a,
                                store_mdm_report_reply, (union store_cb){.next = cb}, arg);
}

/* ---- admin ---- */

int store_reply_strings(const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY)
        return 0;
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type != REDIS_REPLY_STRING)
            return 0;
    return 1;
}

/* A flat [field, value, ...] reply as a record; kv is caller-freed. */
static int store_mdm_record(const redisReply *r, struct store_record *rec)
{
    if (!store_reply_strings(r) || r->elements % 2 != 0)
        return -1;
    struct store_kv *kv = xcalloc(r->elements / 2 + 1, sizeof(*kv));
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        kv[i / 2].key = r->element[i]->str;
        kv[i / 2].val = r->element[i + 1]->str;
        kv[i / 2].len = r->element[i + 1]->len;
    }
    rec->id = NULL;
    rec->kv = kv;
    rec->n = r->elements / 2;
    return 0;
}

static const char **store_mdm_strings(const redisReply *r)
{
    const char **v = xcalloc(r->elements + 1, sizeof(char *));
    for (size_t i = 0; i < r->elements; i++)
        v[i] = r->element[i]->str;
    return v;
}

/* [[udid, token, magic, topic]...] as targets (borrowed strings; array freed by caller). */
struct store_push_target *store_reply_targets(const redisReply *p, size_t *n)
{
    struct store_push_target *t = xcalloc(p->elements + 1, sizeof(*t));
    *n = 0;
    for (size_t i = 0; i < p->elements; i++) {
        const redisReply *e = p->element[i];
        if (store_reply_strings(e) && e->elements == 4)
            t[(*n)++] = (struct store_push_target){e->element[0]->str, e->element[1]->str,
                                                   e->element[2]->str, e->element[3]->str};
    }
    return t;
}

void store_enqueue_reply(struct store_op *op, int err, const redisReply *r)
{
    store_enqueue_fn *cb = op->cb.enqueue;
    err = store_reply_error(err, r);
    if (err == MDMD_OK &&
        (r->type != REDIS_REPLY_ARRAY || r->elements != 5 ||
         r->element[0]->type != REDIS_REPLY_INTEGER || !store_reply_strings(r->element[1]) ||
         r->element[2]->type != REDIS_REPLY_ARRAY || r->element[3]->type != REDIS_REPLY_INTEGER ||
         r->element[4]->type != REDIS_REPLY_INTEGER))
        err = MDMD_EPROTO;
    if (err == MDMD_OK && r->element[0]->integer < 0)
        err = MDMD_ECONFLICT;
    if (err != MDMD_OK) {
        cb(op->arg, err, NULL);
        return;
    }
    const char **unknown = store_mdm_strings(r->element[1]);
    struct store_enqueue_result res = {r->element[0]->integer,
                                       r->element[3]->integer,
                                       r->element[4]->integer != 0,
                                       unknown,
                                       r->element[1]->elements,
                                       NULL,
                                       0};
    struct store_push_target *push = store_reply_targets(r->element[2], &res.npush);
    res.push = push;
    cb(op->arg, MDMD_OK, &res);
    free(unknown);
    free(push);
}

struct store_op *store_enqueue(struct store *s, const char *uuid, const char *request_type,
                               const char *plist, size_t plist_len, const char *const *udids,
                               size_t nudids, int64_t now_ms, int ttl_s, store_enqueue_fn *cb,
                               void *arg)
{
    struct store_argv a;
    store_argv_init(&a);
    store_argv_fmt(&a, "mdm:cmd:%s", uuid);
    store_argv_str(&a, uuid);
    store_argv_str(&a, request_type);
    store_argv_push(&a, plist, plist_len);
    store_argv_fmt(&a, "%lld", (long long)now_ms);
    store_argv_fmt(&a, "%d", ttl_s);
    store_argv_str(&a, ""); /* from: not a job */
    for (size_t i = 0; i < nudids; i++)
        store_argv_str(&a, udids[i]);
    return store_argv_script(s, store_mdm_lua[STORE_LUA_ENQUEUE], 1, &a, store_enqueue_reply,
                             (union store_cb){.enqueue = cb}, arg);
}

static void store_mdm_device_reply(struct store_op *op, int err, const redisReply *r)
{
    store_device_fn *cb = op->cb.device;
    struct store_record rec = {0};
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type == REDIS_REPLY_ARRAY && r->elements == 0) {
        cb(op->arg, MDMD_OK, NULL, NULL, 0, NULL, 0);
        return;
    }
    if (err == MDMD_OK &&
        (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
         store_mdm_record(r->element[0], &rec) != 0 || !store_reply_strings(r->element[1]) ||
         !store_reply_strings(r->element[2])))
        err = MDMD_EPROTO;
    if (err != MDMD_OK) {
        free((void *)rec.kv);
        cb(op->arg, err, NULL, NULL, 0, NULL, 0);
        return;
    }
    const char **q = store_mdm_strings(r->element[1]), **nn = store_mdm_strings(r->element[2]);
    cb(op->arg, MDMD_OK, &rec, q, r->element[1]->elements, nn, r->element[2]->elements);
    free(q);
    free(nn);
    free((void *)rec.kv);
}

struct store_op *store_device_get(struct store *s, const char *udid, int max_queue,
                                  store_device_fn *cb, void *arg)
{
    struct store_argv a;
    store_argv_init(&a);
    for (int i = 0; i < 3; i++)
        store_mdm_argv_key(&a, store_mdm_udid_keys[i], udid);
    store_argv_fmt(&a, "%lld", (long long)max_queue);
    return store_argv_script(s, store_mdm_lua[STORE_LUA_DEVICE], 3, &a, store_mdm_device_reply,
                             (union store_cb){.device = cb}, arg);
}

/* An array of flat records (HGETALL replies, or [id, fields] stream entries). */
static struct store_record *store_mdm_records(const redisReply *r, int stream, size_t *n)
{
    struct store_record *recs = xcalloc(r->elements + 1, sizeof(*recs));
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (stream && (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
                       e->element[0]->type != REDIS_REPLY_STRING))
            goto bad;
        if (store_mdm_record(stream ? e->element[1] : e, &recs[i]) != 0)
            goto bad;
        recs[i].id = stream ? e->element[0]->str : NULL;
        *n = i + 1;
    }
    *n = r->elements;
    return recs;
bad:
    for (size_t i = 0; i < r->elements; i++)
        free((void *)recs[i].kv);
    free(recs);
    return NULL;
}

static void store_mdm_free_records(struct store_record *recs, size_t n)
{
    for (size_t i = 0; recs != NULL && i < n; i++)
        free((void *)recs[i].kv);
    free(recs);
}

static void store_mdm_devices_reply(struct store_op *op, int err, const redisReply *r)
{
    store_devices_fn *cb = op->cb.devices;
    struct store_record *recs = NULL;
    size_t n = 0;
    err = store_reply_error(err, r);
    if (err == MDMD_OK &&
        (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
         r->element[0]->type != REDIS_REPLY_INTEGER || r->element[2]->type != REDIS_REPLY_ARRAY ||
         (recs = store_mdm_records(r->element[2], 0, &n)) == NULL))
        err = MDMD_EPROTO;
    if (err != MDMD_OK)
        cb(op->arg, err, -1, 0, NULL, 0);
    else
        cb(op->arg, MDMD_OK, (long)r->element[0]->integer, (long)r->element[1]->integer, recs, n);
    store_mdm_free_records(recs, n);
}

struct store_op *store_devices_list(struct store *s, long offset, int limit, const char *state,
                                    store_devices_fn *cb, void *arg)
{
    struct store_argv a;
    store_argv_init(&a);
    store_argv_str(&a, "mdm:devices");
    store_argv_fmt(&a, "%lld", (long long)offset);
    store_argv_fmt(&a, "%lld", (long long)limit);
    store_argv_str(&a, state);
    store_argv_str(&a, "10000"); /* bounds the time one filtered page holds Redis */
    return store_argv_script(s, store_mdm_lua[STORE_LUA_DEVICES], 1, &a, store_mdm_devices_reply,
                             (union store_cb){.devices = cb}, arg);
}

static void store_mdm_history_reply(struct store_op *op, int err, const redisReply *r)
{
    store_records_fn *cb = op->cb.records;
    struct store_record *recs = NULL;
    size_t n = 0;
    err = store_reply_error(err, r);
    if (err == MDMD_OK &&
        (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
         r->element[0]->type != REDIS_REPLY_ARRAY || r->element[1]->type != REDIS_REPLY_INTEGER ||
         (recs = store_mdm_records(r->element[0], 1, &n)) == NULL))
        err = MDMD_EPROTO;
    /* Results are stored packed (store_result_pack): readers get them as
     * the device sent them.  The unpacked copies live until cb returns. */
    char **own = err == MDMD_OK ? xcalloc(n + 1, sizeof(*own)) : NULL;
    for (size_t i = 0; err == MDMD_OK && i < n; i++)
        for (size_t k = 0; k < recs[i].n; k++) {
            struct store_kv *kv = (struct store_kv *)&recs[i].kv[k];
            size_t len;
            if (strcmp(kv->key, "result") != 0 ||
                (own[i] = store_result_unpack(kv->val, kv->len, &len)) == NULL)
                continue;
            kv->val = own[i];
            kv->len = len;
            break;
        }
    cb(op->arg, err, recs, err == MDMD_OK ? n : 0, err == MDMD_OK && r->element[1]->integer != 0);
    for (size_t i = 0; own != NULL && i < n; i++)
        free(own[i]);
    free(own);
    store_mdm_free_records(recs, n);
}

struct store_op *store_history(struct store *s, const char *udid, const char *before, int count,
                               long max_bytes, store_records_fn *cb, void *arg)
{
    char key[STORE_MDM_KEY_MAX], end[64], cnt[16], max[24];
    store_mdm_key(key, sizeof(key), "res", udid);
    /* "(" makes the bound exclusive, so pages do not repeat their last entry. */
    snprintf(end, sizeof(end), before != NULL ? "(%s" : "+", before);
    snprintf(cnt, sizeof(cnt), "%d", count);
    snprintf(max, sizeof(max), "%ld", max_bytes);
    const char *argv[] = {key, end, cnt, max};
    struct store_op *op = store_op_new(s, (union store_cb){.records = cb}, arg);
    return store_cmd_script(s, store_script_get(s, store_lua_history), 1, 4, argv, NULL,
                            store_mdm_history_reply, op);
}

static void store_mdm_count_reply(struct store_op *op, int err, const redisReply *r)
{
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type != REDIS_REPLY_INTEGER)
        err = MDMD_EPROTO;
    op->cb.count(op->arg, err, err == MDMD_OK ? (long)r->integer : 0);
}

struct store_op *store_queue_clear(struct store *s, const char *udid, store_count_fn *cb, void *arg)
{
    struct store_argv a;
    store_argv_init(&a);
    for (int i = 0; i < 3; i++)
        store_mdm_argv_key(&a, store_mdm_udid_keys[i], udid);
    return store_argv_script(s, store_mdm_lua[STORE_LUA_QUEUE_CLEAR], 3, &a, store_mdm_count_reply,
                             (union store_cb){.count = cb}, arg);
}

/* ---- push bookkeeping ---- */

static void store_mdm_targets_reply(struct store_op *op, int err, const redisReply *r)
{
    store_targets_fn *cb = op->cb.targets;
    size_t n = 0;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type != REDIS_REPLY_ARRAY)
        err = MDMD_EPROTO;
    struct store_push_target *t = err == MDMD_OK ? store_reply_targets(r, &n) : NULL;
    cb(op->arg, err, t, n);
    free(t);
}

struct store_op *store_push_targets(struct store *s, const char *const *udids, size_t n,
                                    store_targets_fn *cb, void *arg)
{
    struct store_op *op = store_op_new(s, (union store_cb){.targets = cb}, arg);
    return store_cmd_script(s, store_mdm_script(s, STORE_LUA_PUSH_TARGETS), 0, (int)n, udids, NULL,
                            store_mdm_targets_reply, op);
}

static void store_mdm_done_reply(struct store_op *op, int err, const redisReply *r)
{
    err = store_reply_error(err, r);
    if (op->cb.done != NULL)
        op->cb.done(op->arg, err);
}

struct store_op *store_push_result(struct store *s, const struct store_push_outcome *o,
                                   store_done_fn *cb, void *arg)
{
    struct store_argv a;
    store_argv_init(&a);
    store_mdm_argv_key(&a, store_mdm_udid_keys[0], o->udid);
    store_argv_str(&a, "mdm:events");
    store_argv_str(&a, o->udid);
    store_argv_fmt(&a, "%lld", (long long)o->now_ms);
    store_argv_str(&a, o->outcome);
    store_argv_fmt(&a, "%lld", (long long)o->status);
    store_argv_str(&a, o->reason);
    store_argv_str(&a, o->apns_id);
    store_argv_str(&a, o->token);
    store_argv_fmt(&a, "%lld", (long long)o->repush_after_ms);
    return store_argv_script(s, store_mdm_lua[STORE_LUA_PUSH_RESULT], 2, &a, store_mdm_done_reply,
                             (union store_cb){.done = cb}, arg);
}
