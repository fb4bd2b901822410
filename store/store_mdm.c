/* store_mdm.c: the MDM data ops (keys: docs/REDIS.md; scripts: store/lua). */
#include "store_mdm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_cluster.h"
#include "store_fanout.h"
#include "store_int.h"
#include "../core/util.h"

extern const char store_lua_cert_revoke[], store_lua_cert_bind[];
extern const char store_lua_authenticate[], store_lua_token_update[], store_lua_checkout[],
    store_lua_connect[], store_lua_enqueue[], store_lua_device[], store_lua_devices[],
    store_lua_queue_clear[], store_lua_push_targets[], store_lua_push_result[], store_lua_history[],
    store_lua_queue_delete[];

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

void store_cert_prefix(const struct store *s, struct store_argv *a)
{
    if (!store_layout_cluster(s))
        store_argv_str(a, "mdm:cert:");
}

static void store_mdm_revoked_reply(struct store_op *op, int err, const redisReply *r)
{
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type != REDIS_REPLY_INTEGER)
        err = MDMD_EPROTO;
    op->cb.done(op->arg, err);
}

struct store_op *store_cert_revoke(struct store *s, const char *fp, const char *udid,
                                   int64_t now_ms, const char *reason, store_done_fn *cb, void *arg)
{
    struct store_argv a;
    store_argv_init(&a);
    store_argv_fmt(&a, "mdm:cert:%s", fp);
    store_argv_str(&a, fp);
    store_argv_str(&a, udid);
    store_argv_fmt(&a, "%lld", (long long)now_ms);
    store_argv_str(&a, reason);
    return store_argv_fx_script(s, store_lua_cert_revoke, 1, &a, store_mdm_revoked_reply,
                                (union store_cb){.done = cb}, arg);
}

static int store_mdm_checkin_parse(int err, const redisReply *r, int *ident, int *enrolled)
{
    *ident = STORE_ID_OK;
    *enrolled = 0;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type == REDIS_REPLY_STRING) {
        *ident = store_mdm_ident(r->str, r->len);
        if (r->len == 8 && memcmp(r->str, "enrolled", 8) == 0)
            *enrolled = STORE_ENROLLED_NOW;
        else if (r->len == 9 && memcmp(r->str, "provision", 9) == 0)
            *enrolled = STORE_PROVISION_PENDING;
    } else if (err == MDMD_OK && r->type != REDIS_REPLY_INTEGER) {
        err = MDMD_EPROTO;
    }
    return err;
}

static void store_mdm_checkin_reply(struct store_op *op, int err, const redisReply *r)
{
    int ident, enrolled;
    err = store_mdm_checkin_parse(err, r, &ident, &enrolled);
    op->cb.checkin(op->arg, err, ident, enrolled);
}

struct store_checkout { /* a CheckOut in the cluster layout, between its two calls */
    store_checkin_fn *cb;
    void *arg;
};

static void store_mdm_checkout_revoked(void *arg, int err)
{
    struct store_checkout *c = arg;
    store_checkin_fn *cb = c->cb;
    void *cb_arg = c->arg;
    free(c);
    cb(cb_arg, err, STORE_ID_OK, 0);
}

/* The device is checked out; in the cluster layout its certificate is
 * revoked in the registry before it is answered (a failure: it is told to
 * try again, and the CheckOut sent again revokes it then). */
static void store_mdm_checkout_reply(struct store_op *op, int err, const redisReply *r)
{
    int ident, enrolled;
    struct store *s = store_root(op->s);
    err = store_mdm_checkin_parse(err, r, &ident, &enrolled);
    if (err != MDMD_OK || ident != STORE_ID_OK || !store_layout_cluster(s) ||
        op->argc <= op->nkeys + 2) {
        op->cb.checkin(op->arg, err, ident, enrolled);
        return;
    }
    struct store_checkout *c = xcalloc(1, sizeof(*c));
    c->cb = op->cb.checkin;
    c->arg = op->arg;
    (void)store_cert_revoke(s, store_op_arg(op, op->nkeys + 2), store_op_arg(op, op->nkeys),
                            strtoll(store_op_arg(op, op->nkeys + 1), NULL, 10), "checkout",
                            store_mdm_checkout_revoked, c);
}

/* KEYS dev [q notnow channels] [cert] (fx: the fleet block); ARGV udid now
 * cert_fp [require_issued cn_differs [registry: STORE_AUTH_REG placeholders,
 * cluster layout]] (Authenticate only) [provision] (TokenUpdate only)
 * [fields].  Returns the number of keys. */
#define STORE_AUTH_REG 5 /* the registry entry: state udid kind bind user */

static int store_mdm_checkin_argv(struct store *s, struct store_argv *a, int script,
                                  const struct store_device_msg *m)
{
    store_mdm_argv_key(a, store_mdm_udid_keys[0], m->udid);
    if (script != STORE_LUA_TOKEN_UPDATE) {
        store_mdm_argv_key(a, store_mdm_udid_keys[1], m->udid);
        store_mdm_argv_key(a, store_mdm_udid_keys[2], m->udid);
        store_mdm_argv_key(a, "channels", m->udid);
    }
    store_cert_prefix(s, a);
    int nkeys = a->n;
    store_argv_str(a, m->udid);
    store_argv_fmt(a, "%lld", (long long)m->now_ms);
    store_argv_str(a, m->cert_fp);
    if (script == STORE_LUA_AUTHENTICATE) {
        store_argv_str(a, m->require_issued ? "1" : "0");
        store_argv_str(a, m->cn_differs ? "1" : "0");
        for (int i = 0; store_layout_cluster(s) && i < STORE_AUTH_REG; i++)
            store_argv_str(a, "0");
    }
    if (script == STORE_LUA_TOKEN_UPDATE)
        store_argv_str(a, m->provision ? "1" : "0");
    store_mdm_fields(a, m->fields, m->nfields);
    return nkeys;
}

static struct store_op *store_mdm_checkin_fx(struct store *s, int script,
                                             const struct store_device_msg *m,
                                             store_reply_fn *reply, store_checkin_fn *cb, void *arg)
{
    struct store_argv a;
    store_argv_init(&a);
    int nkeys = store_mdm_checkin_argv(s, &a, script, m);
    return store_argv_fx_script(s, store_mdm_lua[script], nkeys, &a, reply,
                                (union store_cb){.checkin = cb}, arg);
}

/* ---- Authenticate in the cluster layout ----
 * The registry entry of the certificate is read first (its own slot), given
 * to authenticate.lua, and what the script decided for the registry (bind the
 * certificate, revoke the one it replaces) is written after it, before the
 * device is answered.  Between the read and the script another Authenticate
 * may bind an unbound certificate: cert_bind.lua then refuses the second
 * (cert_mismatch), whose record was bound all the same (docs/REDIS.md). */

struct store_auth {
    struct store *s;
    store_checkin_fn *cb;
    void *arg;
    struct store_argv a; /* owned: sent after the registry read */
    int nkeys;
    char *reg[STORE_AUTH_REG]; /* "1<value>", or "0" for none */
    char udid[UTIL_CHANNEL_MAX];
    char now[24];
    int pending, err, ident, enrolled;
};

static void store_auth_finish(struct store_auth *au)
{
    store_checkin_fn *cb = au->cb;
    void *arg = au->arg;
    int err = au->err, ident = au->ident, enrolled = au->enrolled;
    for (int i = 0; i < STORE_AUTH_REG; i++)
        free(au->reg[i]);
    store_argv_free(&au->a);
    free(au);
    cb(arg, err, ident, enrolled);
}

static void store_auth_registry_done(void *arg, int err)
{
    struct store_auth *au = arg;
    if (err != MDMD_OK && au->err == MDMD_OK)
        au->err = err;
    if (--au->pending == 0)
        store_auth_finish(au);
}

static void store_auth_bound_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_auth *au = op->arg;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type != REDIS_REPLY_INTEGER)
        err = MDMD_EPROTO;
    if (err == MDMD_OK && r->integer == 0)
        au->ident = STORE_ID_CERT_MISMATCH; /* another UDID bound it in between */
    store_auth_registry_done(au, err);
}

static void store_auth_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_auth *au = op->arg;
    err = store_reply_error(err, r);
    if (err == MDMD_OK &&
        (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
         r->element[1]->type != REDIS_REPLY_STRING || r->element[2]->type != REDIS_REPLY_STRING))
        err = MDMD_EPROTO;
    if (err == MDMD_OK)
        err = store_mdm_checkin_parse(err, r->element[0], &au->ident, &au->enrolled);
    au->err = err;
    if (err != MDMD_OK || au->ident != STORE_ID_OK) {
        store_auth_finish(au);
        return;
    }
    const char *bind = r->element[1]->str, *revoke = r->element[2]->str;
    au->pending = 1; /* held until both are sent */
    if (bind[0] != '\0') {
        struct store_argv b;
        store_argv_init(&b);
        store_argv_fmt(&b, "mdm:cert:%s", bind);
        store_argv_str(&b, au->udid);
        store_argv_str(&b, au->now);
        au->pending++;
        (void)store_argv_script(au->s, store_lua_cert_bind, 1, &b, store_auth_bound_reply,
                                STORE_CB_NONE, au);
    }
    if (revoke[0] != '\0') {
        au->pending++;
        (void)store_cert_revoke(au->s, revoke, au->udid, strtoll(au->now, NULL, 10), "replaced",
                                store_auth_registry_done, au);
    }
    store_auth_registry_done(au, MDMD_OK);
}

static void store_auth_reg_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_auth *au = op->arg;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && (r->type != REDIS_REPLY_ARRAY || r->elements != STORE_AUTH_REG))
        err = MDMD_EPROTO;
    if (err != MDMD_OK) {
        au->err = err;
        store_auth_finish(au);
        return;
    }
    for (int i = 0; i < STORE_AUTH_REG; i++) {
        const redisReply *e = r->element[i];
        au->reg[i] =
            e->type == REDIS_REPLY_STRING ? xasprintf("1%.*s", (int)e->len, e->str) : xstrdup("0");
        au->a.v[au->nkeys + 5 + i] = au->reg[i];
        au->a.len[au->nkeys + 5 + i] = strlen(au->reg[i]);
    }
    (void)store_argv_fx_keep(au->s, store_mdm_lua[STORE_LUA_AUTHENTICATE], au->nkeys, &au->a,
                             store_auth_reply, STORE_CB_NONE, au);
}

static struct store_op *store_auth_cluster(struct store *s, const struct store_device_msg *m,
                                           store_checkin_fn *cb, void *arg)
{
    char key[160];
    struct store_auth *au = xcalloc(1, sizeof(*au));
    au->s = s;
    au->cb = cb;
    au->arg = arg;
    snprintf(au->udid, sizeof(au->udid), "%s", m->udid);
    snprintf(au->now, sizeof(au->now), "%lld", (long long)m->now_ms);
    store_argv_init(&au->a);
    au->nkeys = store_mdm_checkin_argv(s, &au->a, STORE_LUA_AUTHENTICATE, m);
    store_argv_own(&au->a);
    snprintf(key, sizeof(key), "mdm:cert:%s", m->cert_fp);
    const char *argv[] = {"HMGET", key, "state", "udid", "kind", "bind", "user"};
    struct store_op *op = store_op_new(s, STORE_CB_NONE, au);
    return store_cmd_argv(s, 7, argv, NULL, store_auth_reg_reply, op);
}

struct store_op *store_authenticate(struct store *s, const struct store_device_msg *m,
                                    store_checkin_fn *cb, void *arg)
{
    if (store_layout_cluster(s))
        return store_auth_cluster(s, m, cb, arg);
    return store_mdm_checkin_fx(s, STORE_LUA_AUTHENTICATE, m, store_mdm_checkin_reply, cb, arg);
}

struct store_op *store_token_update(struct store *s, const struct store_device_msg *m,
                                    store_checkin_fn *cb, void *arg)
{
    return store_mdm_checkin_fx(s, STORE_LUA_TOKEN_UPDATE, m, store_mdm_checkin_reply, cb, arg);
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
    return store_mdm_checkin_fx(s, STORE_LUA_CHECKOUT, m, store_mdm_checkout_reply, cb, arg);
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
    if (ident == STORE_ID_OK && r->elements >= 3 && store_reply_strings(r)) {
        /* Its request_type (4th) is kept: the device's report of it then
         * needs no HGET in connect.lua. */
        if (r->elements == 4)
            store_body_keep(r->element[1]->str, r->element[3]->str, r->element[3]->len,
                            r->element[2]->str, r->element[2]->len);
        cb(op->arg, MDMD_OK, ident, r->element[1]->str, r->element[2]->str, r->element[2]->len);
    } else
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
    } else {
        store_mdm_argv_key(a, "cmdto", rp->dev.udid);
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
    const char *rt = rp->uuid[0] != '\0' ? store_body_rt(rp->uuid) : NULL;
    int nkeys = store_mdm_report_argv(&a, rp, 0, rt != NULL ? rt : "");
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

void store_enqueue_keys(struct store_argv *a, const char *const *udids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        store_mdm_argv_key(a, "dev", udids[i]);
        store_mdm_argv_key(a, "q", udids[i]);
    }
}

struct store_op *store_enqueue_from(struct store *s, const char *uuid, const char *request_type,
                                    const char *plist, size_t plist_len, const char *const *udids,
                                    size_t nudids, int64_t now_ms, int ttl_s, const char *from,
                                    store_enqueue_fn *cb, void *arg)
{
    if (store_layout_cluster(s)) {
        struct store_queue_req r = {uuid, request_type, plist, plist_len, udids, nudids,
                                    from, NULL,         0,     now_ms,    ttl_s};
        return store_queue_enqueue(s, &r, cb, arg);
    }
    struct store_argv a;
    store_argv_init(&a);
    store_argv_fmt(&a, "mdm:cmd:%s", uuid);
    store_argv_fmt(&a, "mdm:cmdto:%s", uuid);
    store_argv_fmt(&a, "mdm:cmdto:%s", uuid); /* no job: `to` again, so the body's key is
                                                * named once, as it always was */
    store_argv_str(&a, "mdm:stats");
    store_enqueue_keys(&a, udids, nudids);
    int nkeys = a.n;
    store_argv_str(&a, uuid);
    store_argv_str(&a, request_type);
    store_argv_push(&a, plist, plist_len);
    store_argv_fmt(&a, "%lld", (long long)now_ms);
    store_argv_fmt(&a, "%d", ttl_s);
    store_argv_str(&a, from);
    store_argv_str(&a, ""); /* state: a list */
    for (size_t i = 0; i < nudids; i++)
        store_argv_str(&a, udids[i]);
    return store_argv_script(s, store_mdm_lua[STORE_LUA_ENQUEUE], nkeys, &a, store_enqueue_reply,
                             (union store_cb){.enqueue = cb}, arg);
}

struct store_op *store_enqueue(struct store *s, const char *uuid, const char *request_type,
                               const char *plist, size_t plist_len, const char *const *udids,
                               size_t nudids, int64_t now_ms, int ttl_s, store_enqueue_fn *cb,
                               void *arg)
{
    return store_enqueue_from(s, uuid, request_type, plist, plist_len, udids, nudids, now_ms, ttl_s,
                              "", cb, arg); /* from "": not a job */
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
    if (store_layout_cluster(s)) /* the buckets of mdm:devices, merged */
        return store_fan_devices(s, offset, limit, state, 10000, cb, arg);
    store_argv_init(&a);
    store_argv_str(&a, "mdm:devices");
    store_argv_str(&a, "mdm:dev:");
    store_argv_fmt(&a, "%lld", (long long)offset);
    store_argv_fmt(&a, "%lld", (long long)limit);
    store_argv_str(&a, state);
    store_argv_str(&a, "10000"); /* bounds the time one filtered page holds Redis */
    return store_argv_script(s, store_mdm_lua[STORE_LUA_DEVICES], 2, &a, store_mdm_devices_reply,
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

/* KEYS dev q notnow sent, the fleet effects after (queue_depth). */
static void store_mdm_queue_keys(struct store_argv *a, const char *udid)
{
    static const char *const kinds[] = {"dev", "q", "notnow", "sent"};
    for (size_t i = 0; i < ARRAY_LEN(kinds); i++)
        store_mdm_argv_key(a, kinds[i], udid);
}

struct store_op *store_queue_clear(struct store *s, const char *udid, store_count_fn *cb, void *arg)
{
    struct store_argv a;
    store_argv_init(&a);
    store_mdm_queue_keys(&a, udid);
    return store_argv_fx_script(s, store_mdm_lua[STORE_LUA_QUEUE_CLEAR], 4, &a,
                                store_mdm_count_reply, (union store_cb){.count = cb}, arg);
}

struct store_op *store_queue_delete(struct store *s, const char *udid, const char *uuid,
                                    int64_t now_ms, store_count_fn *cb, void *arg)
{
    struct store_argv a;
    store_argv_init(&a);
    store_mdm_queue_keys(&a, udid);
    store_argv_str(&a, udid);
    store_argv_str(&a, uuid);
    store_argv_fmt(&a, "%lld", (long long)now_ms);
    return store_argv_fx_script(s, store_lua_queue_delete, 4, &a, store_mdm_count_reply,
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

/* The records of udids[first..first+n) in one call (all in one slot in the
 * cluster layout). */
static struct store_op *store_mdm_targets_call(struct store *s, const char *const *udids,
                                               const size_t *idx, size_t n, store_reply_fn *reply,
                                               union store_cb cb, void *arg)
{
    struct store_argv a;
    store_argv_init(&a);
    for (size_t i = 0; i < n; i++)
        store_mdm_argv_key(&a, "dev", udids[idx != NULL ? idx[i] : i]);
    for (size_t i = 0; i < n; i++)
        store_argv_str(&a, udids[idx != NULL ? idx[i] : i]);
    return store_argv_script(s, store_mdm_lua[STORE_LUA_PUSH_TARGETS], (int)n, &a, reply, cb, arg);
}

/* The cluster layout: one call per slot, pipelined, the targets copied
 * together and handed on once every call answered. */
struct store_targets {
    store_targets_fn *cb;
    void *arg;
    int pending, err;
    struct store_push_target *t;
    size_t n;
};

static void store_mdm_targets_done(struct store_targets *g);

static void store_mdm_targets_part(struct store_op *op, int err, const redisReply *r)
{
    struct store_targets *g = op->arg;
    size_t n = 0;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type != REDIS_REPLY_ARRAY)
        err = MDMD_EPROTO;
    struct store_push_target *t = err == MDMD_OK ? store_reply_targets(r, &n) : NULL;
    for (size_t i = 0; i < n; i++) {
        struct store_push_target *d = &g->t[g->n++];
        d->udid = xstrdup(t[i].udid);
        d->token = xstrdup(t[i].token);
        d->push_magic = xstrdup(t[i].push_magic);
        d->topic = xstrdup(t[i].topic);
    }
    free(t);
    if (err != MDMD_OK && g->err == MDMD_OK)
        g->err = err;
    store_mdm_targets_done(g);
}

static void store_mdm_targets_done(struct store_targets *g)
{
    if (--g->pending > 0)
        return;
    g->cb(g->arg, g->err, g->err == MDMD_OK ? g->t : NULL, g->err == MDMD_OK ? g->n : 0);
    for (size_t i = 0; i < g->n; i++) {
        free((char *)g->t[i].udid);
        free((char *)g->t[i].token);
        free((char *)g->t[i].push_magic);
        free((char *)g->t[i].topic);
    }
    free(g->t);
    free(g);
}

struct store_slot_ix {
    unsigned slot;
    size_t i;
};

static int store_slot_ix_cmp(const void *a, const void *b)
{
    const struct store_slot_ix *x = a, *y = b;
    return x->slot != y->slot ? (x->slot < y->slot ? -1 : 1) : (x->i < y->i ? -1 : x->i > y->i);
}

struct store_op *store_push_targets(struct store *s, const char *const *udids, size_t n,
                                    store_targets_fn *cb, void *arg)
{
    if (!store_layout_cluster(s) || n == 0)
        return store_mdm_targets_call(s, udids, NULL, n, store_mdm_targets_reply,
                                      (union store_cb){.targets = cb}, arg);
    struct store_slot_ix *v = xcalloc(n, sizeof(*v));
    size_t *idx = xcalloc(n, sizeof(*idx));
    char key[STORE_MDM_KEY_MAX];
    for (size_t i = 0; i < n; i++) {
        store_mdm_key(key, sizeof(key), "dev", udids[i]);
        v[i].slot = store_cluster_slot(key, strlen(key));
        v[i].i = i;
    }
    qsort(v, n, sizeof(*v), store_slot_ix_cmp);
    for (size_t i = 0; i < n; i++)
        idx[i] = v[i].i;
    struct store_targets *g = xcalloc(1, sizeof(*g));
    g->cb = cb;
    g->arg = arg;
    g->t = xcalloc(n + 1, sizeof(*g->t));
    g->pending = 1; /* held while the calls are sent */
    struct store_op *first = NULL;
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && v[j].slot == v[i].slot; j++)
            ;
        g->pending++;
        struct store_op *op = store_mdm_targets_call(s, udids, idx + i, j - i,
                                                     store_mdm_targets_part, STORE_CB_NONE, g);
        first = first != NULL ? first : op;
    }
    free(v);
    free(idx);
    store_mdm_targets_done(g); /* every call answered already: hands on here */
    return first;
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
    store_mdm_argv_key(&a, "pushes", o->udid);
    store_mdm_argv_key(&a, store_mdm_udid_keys[1], o->udid);
    store_argv_str(&a, o->udid);
    store_argv_fmt(&a, "%lld", (long long)o->now_ms);
    store_argv_str(&a, o->outcome);
    store_argv_fmt(&a, "%lld", (long long)o->status);
    store_argv_str(&a, o->reason);
    store_argv_str(&a, o->apns_id);
    store_argv_str(&a, o->token);
    store_argv_fmt(&a, "%lld", (long long)o->repush_after_ms);
    return store_argv_fx_script(s, store_mdm_lua[STORE_LUA_PUSH_RESULT], 3, &a,
                                store_mdm_done_reply, (union store_cb){.done = cb}, arg);
}
