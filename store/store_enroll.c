/* store_enroll.c: OTA enrollment state and the issued-certificate registry
 * (keys: docs/REDIS.md; the script: store/lua/enroll_device.lua). */
#include "store_enroll.h"
#include "../core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

extern const char store_lua_enroll_device[], store_lua_challenge_take[], store_lua_ota_register[];

#define STORE_ENROLL_KEY_MAX 160

/* A challenge, its address counter or a transaction: configuration, so in
 * the {g} slot in the cluster layout (challenge_take.lua takes the three in
 * one script: one slot). */
void store_enroll_gkey(const struct store *s, char *out, size_t size, const char *what,
                       const char *id)
{
    char rest[512];
    snprintf(rest, sizeof(rest), "%s%s", what, id);
    (void)store_global_key(s, out, size, rest);
}

void store_enroll_done_reply(struct store_op *op, int err, const redisReply *r)
{
    err = store_reply_error(err, r);
    /* SET ... NX answers nil when the key exists. */
    if (err == MDMD_OK && r->type == REDIS_REPLY_NIL)
        err = MDMD_EPROTO;
    op->cb.done(op->arg, err);
}

struct store_op *store_enroll_chal_put(struct store *s, const char *what, const char *challenge,
                                       const char *owner, int ttl_s, store_done_fn *cb, void *arg)
{
    char key[STORE_ENROLL_KEY_MAX + 160], ttl[24];
    store_enroll_gkey(s, key, sizeof(key), what, challenge);
    snprintf(ttl, sizeof(ttl), "%d", ttl_s);
    const char *argv[] = {"SET", key, owner, "EX", ttl, "NX"};
    struct store_op *op = store_op_new(s, (union store_cb){.done = cb}, arg);
    return store_cmd_argv(s, 6, argv, NULL, store_enroll_done_reply, op);
}

struct store_op *store_challenge_put(struct store *s, const char *challenge, const char *user,
                                     int ttl_s, store_done_fn *cb, void *arg)
{
    return store_enroll_chal_put(s, "enroll:chal:", challenge, user, ttl_s, cb, arg);
}

/* {'ok', owner}, {'again', owner, prev}, {'unknown'} or {'limited', ttl_s}. */
void store_enroll_chal_reply(struct store_op *op, int err, const redisReply *r)
{
    store_chal_fn *cb = op->cb.chal;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
                           r->element[0]->type != REDIS_REPLY_STRING))
        err = MDMD_EPROTO;
    if (err != MDMD_OK) {
        cb(op->arg, err, 0, NULL, 0, "");
        return;
    }
    const char *what = r->element[0]->str;
    const redisReply *v = r->elements >= 2 ? r->element[1] : NULL;
    const redisReply *c = r->elements == 3 ? r->element[2] : NULL;
    if (strcmp(what, "ok") == 0 && v != NULL && v->type == REDIS_REPLY_STRING)
        cb(op->arg, MDMD_OK, 0, v->str, 0, "");
    else if (strcmp(what, "again") == 0 && v != NULL && v->type == REDIS_REPLY_STRING &&
             c != NULL && c->type == REDIS_REPLY_STRING)
        cb(op->arg, MDMD_OK, 0, v->str, 1, c->str);
    else if (strcmp(what, "limited") == 0 && v != NULL && v->type == REDIS_REPLY_INTEGER)
        cb(op->arg, MDMD_OK, v->integer > 0 ? (int)v->integer : 1, NULL, 0, "");
    else
        cb(op->arg, MDMD_OK, 0, NULL, 0, "");
}

struct store_op *store_challenge_take(struct store *s, int kind, const char *challenge,
                                      const char *tx_id, const char *peer, store_chal_fn *cb,
                                      void *arg)
{
    char key[STORE_ENROLL_KEY_MAX], fail[STORE_ENROLL_KEY_MAX], tx[STORE_ENROLL_KEY_MAX];
    char max[16], window[16], ttl[16];
    store_enroll_gkey(s, key, sizeof(key),
                      kind == STORE_CHAL_SCEP ? "scep:chal:" : "enroll:chal:", challenge);
    store_enroll_gkey(s, fail, sizeof(fail), "chalfail:addr:", peer);
    store_enroll_gkey(s, tx, sizeof(tx), "enroll:tx:", tx_id != NULL ? tx_id : "");
    snprintf(max, sizeof(max), "%d", STORE_CHAL_FAIL_ADDR);
    snprintf(window, sizeof(window), "%d", STORE_CHAL_FAIL_WINDOW_S);
    snprintf(ttl, sizeof(ttl), "%d", STORE_ENROLL_TX_TTL_S);
    const char *argv[] = {key, fail, tx, max, window, ttl, "0"};
    struct store_op *op = store_op_new(s, (union store_cb){.chal = cb}, arg);
    /* Without tx_id: KEYS key fail, ARGV max window (no transaction). */
    if (tx_id == NULL) {
        const char *plain[] = {key, fail, max, window};
        return store_cmd_script(s, store_script_get(s, store_lua_challenge_take), 2,
                                (int)ARRAY_LEN(plain), plain, NULL, store_enroll_chal_reply, op);
    }
    return store_cmd_script(s, store_script_get(s, store_lua_challenge_take), 3,
                            (int)ARRAY_LEN(argv), argv, NULL, store_enroll_chal_reply, op);
}

static const char *store_enroll_nz(const char *s)
{
    return s != NULL ? s : "";
}

/* A flat HGETALL reply into c (strings borrowed from r); -1 if malformed. */
static int store_enroll_parse_cert(const redisReply *r, struct store_cert *c)
{
    memset(c, 0, sizeof(*c));
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0)
        return -1;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            return -1;
        if (strcmp(k->str, "udid") == 0)
            c->udid = v->str;
        else if (strcmp(k->str, "user") == 0)
            c->user = v->str;
        else if (strcmp(k->str, "kind") == 0)
            c->kind = v->str;
        else if (strcmp(k->str, "state") == 0)
            c->state = v->str;
        else if (strcmp(k->str, "serial") == 0)
            c->serial = v->str;
        else if (strcmp(k->str, "issued") == 0)
            c->issued_ms = strtoll(v->str, NULL, 10);
        else if (strcmp(k->str, "retry_until") == 0)
            c->retry_until_ms = strtoll(v->str, NULL, 10);
    }
    return 0;
}

static void store_enroll_cert_reply(struct store_op *op, int err, const redisReply *r)
{
    store_cert_fn *cb = op->cb.cert;
    struct store_cert c;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && store_enroll_parse_cert(r, &c) != 0)
        err = MDMD_EPROTO;
    if (err != MDMD_OK)
        cb(op->arg, err, NULL);
    else
        cb(op->arg, MDMD_OK, r->elements > 0 && c.udid && c.kind && c.state ? &c : NULL);
}

struct store_op *store_cert_get(struct store *s, const char *fp, store_cert_fn *cb, void *arg)
{
    char key[STORE_ENROLL_KEY_MAX];
    snprintf(key, sizeof(key), "mdm:cert:%s", fp);
    const char *argv[] = {"HGETALL", key};
    struct store_op *op = store_op_new(s, (union store_cb){.cert = cb}, arg);
    return store_cmd_argv(s, 2, argv, NULL, store_enroll_cert_reply, op);
}

static void store_enroll_issue_reply(struct store_op *op, int err, const redisReply *r)
{
    store_issue_fn *cb = op->cb.issue;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
                           r->element[0]->type != REDIS_REPLY_STRING))
        err = MDMD_EPROTO;
    if (err != MDMD_OK) {
        cb(op->arg, err, 0, "");
        return;
    }
    int ok = strcmp(r->element[0]->str, "ok") == 0;
    const char *revoked = ok && r->elements == 2 && r->element[1]->type == REDIS_REPLY_STRING
                              ? r->element[1]->str
                              : "";
    cb(op->arg, MDMD_OK, ok, revoked);
}

static struct store_op *store_enroll_device_cluster(struct store *s,
                                                    const struct store_device_cert *c,
                                                    store_issue_fn *cb, void *arg);
static struct store_op *store_ota_register_cluster(struct store *s, const char *fp,
                                                   const struct store_cert *c, const char *tx_id,
                                                   store_issue_fn *cb, void *arg);

/* Single layout: enroll_device.lua, one script; the cluster layout: calls in
 * turn (below). */
struct store_op *store_cert_issue_device(struct store *s, const struct store_device_cert *c,
                                         store_issue_fn *cb, void *arg)
{
    if (store_layout_cluster(s))
        return store_enroll_device_cluster(s, c, cb, arg);
    char ota[STORE_ENROLL_KEY_MAX], cert[STORE_ENROLL_KEY_MAX], dev[STORE_ENROLL_KEY_MAX];
    char now[24];
    snprintf(ota, sizeof(ota), "mdm:cert:%s", c->ota_fp);
    snprintf(cert, sizeof(cert), "mdm:cert:%s", c->fp);
    snprintf(dev, sizeof(dev), "mdm:dev:{%s}", c->udid);
    snprintf(now, sizeof(now), "%lld", (long long)c->now_ms);
    char retry[24];
    snprintf(retry, sizeof(retry), "%d", STORE_ENROLL_TX_TTL_S * 1000);
    const char *argv[] = {
        ota,   cert,      dev,  "mdm:cert:", c->udid, c->user, now, store_enroll_nz(c->serial),
        c->fp, c->ota_fp, retry};
    struct store_argv a;
    store_argv_init(&a);
    for (size_t i = 0; i < ARRAY_LEN(argv); i++)
        store_argv_fmt(&a, "%s", argv[i]);
    return store_argv_fx_script(s, store_lua_enroll_device, 4, &a, store_enroll_issue_reply,
                                (union store_cb){.issue = cb}, arg);
}

struct store_op *store_ota_register(struct store *s, const char *fp, const struct store_cert *c,
                                    const char *tx_id, store_issue_fn *cb, void *arg)
{
    if (store_layout_cluster(s))
        return store_ota_register_cluster(s, fp, c, tx_id, cb, arg);
    char key[STORE_ENROLL_KEY_MAX], tx[STORE_ENROLL_KEY_MAX], issued[24];
    snprintf(key, sizeof(key), "mdm:cert:%s", fp);
    store_enroll_gkey(s, tx, sizeof(tx), "enroll:tx:", tx_id);
    snprintf(issued, sizeof(issued), "%lld", (long long)c->issued_ms);
    const char *argv[] = {key,
                          tx,
                          "mdm:cert:",
                          store_enroll_nz(c->udid),
                          store_enroll_nz(c->user),
                          store_enroll_nz(c->serial),
                          issued,
                          fp};
    struct store_argv a;
    store_argv_init(&a);
    for (size_t i = 0; i < ARRAY_LEN(argv); i++)
        store_argv_fmt(&a, "%s", argv[i]);
    return store_argv_fx_script(s, store_lua_ota_register, 3, &a, store_enroll_issue_reply,
                                (union store_cb){.issue = cb}, arg);
}

struct store_op *store_ota_tx_close(struct store *s, const char *tx_id, store_done_fn *cb,
                                    void *arg)
{
    char tx[STORE_ENROLL_KEY_MAX];
    store_enroll_gkey(s, tx, sizeof(tx), "enroll:tx:", tx_id);
    const char *argv[] = {"DEL", tx};
    struct store_op *op = store_op_new(s, (union store_cb){.done = cb}, arg);
    return store_cmd_argv(s, 2, argv, NULL, store_enroll_done_reply, op);
}

struct store_op *store_cert_retry_close(struct store *s, const char *ota_fp, store_done_fn *cb,
                                        void *arg)
{
    char key[STORE_ENROLL_KEY_MAX];
    snprintf(key, sizeof(key), "mdm:cert:%s", ota_fp);
    const char *argv[] = {"HDEL", key, "retry_until"};
    struct store_op *op = store_op_new(s, (union store_cb){.done = cb}, arg);
    return store_cmd_argv(s, 3, argv, NULL, store_enroll_done_reply, op);
}

/* ---- the cluster layout: the registry and the device in calls in turn ----
 * enroll_device.lua and ota_register.lua touch registry entries (each a slot
 * of its own), the transaction ({g}) and the device record: in the cluster
 * layout their steps are calls in turn, each on one slot, in an order that
 * keeps the rules of docs/SECURITY.md: the single-use gate first, the
 * identities replaced revoked before the new one is registered, the device
 * answered after the last step.  A step that fails fails the request (503):
 * the device's retry is the same request, and each step is one a retry may
 * repeat. */

struct store_enr {
    struct store *s;
    store_issue_fn *cb;
    void *arg;
    void (*next)(struct store_enr *e); /* when the calls of a step all answered */
    int pending, err, ok;
    char *udid, *user, *serial, *now, *fp, *ota_fp, *tx, *prev;
    char *cand[3]; /* identities to revoke: retried, then the record's old ones */
    char *rev[3];  /* those revoked (an entry that was issued) */
    int ncand, nrev;
    char revoked[80];
};

static void store_enr_finish(struct store_enr *e)
{
    store_issue_fn *cb = e->cb;
    void *arg = e->arg;
    int err = e->err, ok = e->ok;
    char revoked[sizeof(e->revoked)];
    snprintf(revoked, sizeof(revoked), "%s", e->revoked);
    char **strs[] = {&e->udid, &e->user, &e->serial, &e->now, &e->fp, &e->ota_fp, &e->tx, &e->prev};
    for (size_t i = 0; i < ARRAY_LEN(strs); i++)
        free(*strs[i]);
    for (int i = 0; i < e->ncand; i++)
        free(e->cand[i]);
    free(e);
    cb(arg, err, ok, revoked);
}

/* One call of the step done: the next step once all are (the first error
 * ends the request). */
static void store_enr_step(struct store_enr *e, int err)
{
    if (err != MDMD_OK && e->err == MDMD_OK)
        e->err = err;
    if (--e->pending > 0)
        return;
    if (e->err != MDMD_OK || !e->ok || e->next == NULL)
        store_enr_finish(e);
    else
        e->next(e);
}

static void store_enr_begin(struct store_enr *e, void (*next)(struct store_enr *))
{
    e->next = next;
    e->pending = 1; /* held until the step's calls are all sent */
}

static struct store_op *store_enr_cmd(struct store_enr *e, int argc, const char *const *argv,
                                      store_reply_fn *reply)
{
    e->pending++;
    struct store_op *op = store_op_new(e->s, STORE_CB_NONE, e);
    return store_cmd_argv(e->s, argc, argv, NULL, reply, op);
}

static void store_enr_any_reply(struct store_op *op, int err, const redisReply *r)
{
    store_enr_step(op->arg, store_reply_error(err, r));
}

/* The new identity's registry entry (kind: device or ota). */
static void store_enr_register(struct store_enr *e, const char *kind)
{
    char key[STORE_ENROLL_KEY_MAX];
    snprintf(key, sizeof(key), "mdm:cert:%s", e->fp);
    const char *dev[] = {"HSET",   key,       "udid",   e->udid,  "user",   e->user,
                         "kind",   kind,      "state",  "issued", "issued", e->now,
                         "serial", e->serial, "ota_fp", e->ota_fp};
    (void)store_enr_cmd(e, e->ota_fp != NULL ? (int)ARRAY_LEN(dev) : (int)ARRAY_LEN(dev) - 2, dev,
                        store_enr_any_reply);
}

static void store_enr_revoked_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_enr *e = op->arg;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type != REDIS_REPLY_INTEGER)
        err = MDMD_EPROTO;
    const char *fp = store_op_arg(op, op->nkeys);
    if (err == MDMD_OK && r->integer == 1) {
        snprintf(e->revoked, sizeof(e->revoked), "%s", fp);
        for (int i = 0; i < e->ncand; i++)
            if (strcmp(e->cand[i], fp) == 0 && e->nrev < 3)
                e->rev[e->nrev++] = e->cand[i];
    }
    store_enr_step(e, err);
}

/* cert_revoke.lua on fp's entry (its fleet writes: the cert_revoked event). */
static void store_enr_revoke(struct store_enr *e, const char *fp, const char *reason)
{
    extern const char store_lua_cert_revoke[];
    struct store_argv a;
    store_argv_init(&a);
    store_argv_fmt(&a, "mdm:cert:%s", fp);
    store_argv_str(&a, fp);
    store_argv_str(&a, e->udid);
    store_argv_str(&a, e->now);
    store_argv_str(&a, reason);
    e->pending++;
    (void)store_argv_fx_script(e->s, store_lua_cert_revoke, 1, &a, store_enr_revoked_reply,
                               STORE_CB_NONE, e);
}

static struct store_enr *store_enr_new(struct store *s, const char *udid, const char *user,
                                       const char *serial, int64_t now_ms, const char *fp,
                                       store_issue_fn *cb, void *arg)
{
    struct store_enr *e = xcalloc(1, sizeof(*e));
    e->s = s;
    e->cb = cb;
    e->arg = arg;
    e->ok = 1;
    e->udid = xstrdup(store_enroll_nz(udid));
    e->user = xstrdup(store_enroll_nz(user));
    e->serial = xstrdup(store_enroll_nz(serial));
    e->now = xasprintf("%lld", (long long)now_ms);
    e->fp = xstrdup(fp);
    return e;
}

/* -- phase 2: ota_use.lua, the record's old identities (HMGET), their
 * revocation, then the new entry and enroll_dev.lua together. -- */

static void store_enr_dev_reply(struct store_op *op, int err, const redisReply *r)
{
    store_enr_step(op->arg, store_reply_error(err, r));
}

static void store_enr_device_write(struct store_enr *e)
{
    extern const char store_lua_enroll_dev[];
    store_enr_begin(e, NULL);
    store_enr_register(e, "device");
    struct store_argv a;
    store_argv_init(&a);
    store_argv_fmt(&a, "mdm:dev:{%s}", e->udid);
    store_argv_str(&a, e->udid);
    store_argv_str(&a, e->user);
    store_argv_str(&a, e->now);
    store_argv_str(&a, e->fp);
    for (int i = 0; i < e->nrev; i++)
        store_argv_str(&a, e->rev[i]);
    e->pending++;
    (void)store_argv_fx_script(e->s, store_lua_enroll_dev, 1, &a, store_enr_dev_reply,
                               STORE_CB_NONE, e);
    store_enr_step(e, MDMD_OK);
}

static void store_enr_revoke_old(struct store_enr *e)
{
    store_enr_begin(e, store_enr_device_write);
    for (int i = 0; i < e->ncand; i++)
        store_enr_revoke(e, e->cand[i], i == 0 && e->prev != NULL ? "retried" : "reenrolled");
    store_enr_step(e, MDMD_OK);
}

static void store_enr_add_cand(struct store_enr *e, const redisReply *v)
{
    if (v->type != REDIS_REPLY_STRING || v->len == 0 || strcmp(v->str, e->fp) == 0)
        return;
    for (int i = 0; i < e->ncand; i++)
        if (strcmp(e->cand[i], v->str) == 0)
            return;
    if (e->ncand < 3)
        e->cand[e->ncand++] = xstrdup(v->str);
}

static void store_enr_old_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_enr *e = op->arg;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && (r->type != REDIS_REPLY_ARRAY || r->elements != 2))
        err = MDMD_EPROTO;
    for (size_t i = 0; err == MDMD_OK && i < 2; i++)
        store_enr_add_cand(e, r->element[i]);
    store_enr_step(e, err);
}

static void store_enr_read_old(struct store_enr *e)
{
    char dev[STORE_ENROLL_KEY_MAX];
    snprintf(dev, sizeof(dev), "mdm:dev:{%s}", e->udid);
    const char *argv[] = {"HMGET", dev, "issued_fp", "cert_fp"};
    store_enr_begin(e, store_enr_revoke_old);
    (void)store_enr_cmd(e, 4, argv, store_enr_old_reply);
    store_enr_step(e, MDMD_OK);
}

/* {'ok', retried fingerprint or ''} or {'ota_used'}. */
static void store_enr_use_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_enr *e = op->arg;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
                           r->element[0]->type != REDIS_REPLY_STRING))
        err = MDMD_EPROTO;
    if (err == MDMD_OK && strcmp(r->element[0]->str, "ok") != 0)
        e->ok = 0;
    else if (err == MDMD_OK && r->elements == 2 && r->element[1]->type == REDIS_REPLY_STRING &&
             r->element[1]->len > 0) {
        e->prev = xstrdup(r->element[1]->str); /* cand[0], revoked as 'retried' */
        e->cand[e->ncand++] = xstrdup(e->prev);
    }
    store_enr_step(e, err);
}

static struct store_op *store_enroll_device_cluster(struct store *s,
                                                    const struct store_device_cert *c,
                                                    store_issue_fn *cb, void *arg)
{
    extern const char store_lua_ota_use[];
    struct store_enr *e = store_enr_new(s, c->udid, c->user, c->serial, c->now_ms, c->fp, cb, arg);
    e->ota_fp = xstrdup(c->ota_fp);
    char ota[STORE_ENROLL_KEY_MAX], retry[24];
    snprintf(ota, sizeof(ota), "mdm:cert:%s", c->ota_fp);
    snprintf(retry, sizeof(retry), "%d", STORE_ENROLL_TX_TTL_S * 1000);
    const char *argv[] = {ota, e->udid, e->now, e->fp, retry};
    store_enr_begin(e, store_enr_read_old);
    e->pending++;
    struct store_op *op = store_op_new(s, STORE_CB_NONE, e);
    op = store_cmd_script(s, store_script_get(s, store_lua_ota_use), 1, (int)ARRAY_LEN(argv), argv,
                          NULL, store_enr_use_reply, op);
    store_enr_step(e, MDMD_OK);
    return op;
}

/* -- phase 1: the transaction's identity (HGET), its check and revocation
 * (ota_prev.lua), the new entry, then tx_cert.lua; an identity another try
 * named in between is revoked last. -- */

static void store_enr_tx_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_enr *e = op->arg;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type != REDIS_REPLY_STRING)
        err = MDMD_EPROTO;
    if (err == MDMD_OK && r->len > 0 && strcmp(r->str, e->fp) != 0 &&
        (e->prev == NULL || strcmp(r->str, e->prev) != 0) && e->ncand < 3)
        e->cand[e->ncand++] = xstrdup(r->str);
    store_enr_step(e, err);
}

static void store_enr_revoke_other(struct store_enr *e)
{
    store_enr_begin(e, NULL);
    for (int i = 0; i < e->ncand; i++)
        store_enr_revoke(e, e->cand[i], "retried");
    store_enr_step(e, MDMD_OK);
}

static void store_enr_tx_name(struct store_enr *e)
{
    extern const char store_lua_tx_cert[];
    const char *argv[] = {e->tx, e->fp};
    store_enr_begin(e, store_enr_revoke_other);
    e->pending++;
    struct store_op *op = store_op_new(e->s, STORE_CB_NONE, e);
    (void)store_cmd_script(e->s, store_script_get(e->s, store_lua_tx_cert), 1, 2, argv, NULL,
                           store_enr_tx_reply, op);
    store_enr_step(e, MDMD_OK);
}

static void store_enr_ota_write(struct store_enr *e)
{
    store_enr_begin(e, store_enr_tx_name);
    store_enr_register(e, "ota");
    store_enr_step(e, MDMD_OK);
}

/* 1: revoked now, -1: used for phase 2 (refused), 0: nothing to do. */
static void store_enr_prev_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_enr *e = op->arg;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type != REDIS_REPLY_INTEGER)
        err = MDMD_EPROTO;
    if (err == MDMD_OK && r->integer < 0)
        e->ok = 0;
    else if (err == MDMD_OK && r->integer == 1)
        snprintf(e->revoked, sizeof(e->revoked), "%s", e->prev);
    store_enr_step(e, err);
}

static void store_enr_check_prev(struct store_enr *e)
{
    extern const char store_lua_ota_prev[];
    store_enr_begin(e, store_enr_ota_write);
    if (e->prev != NULL) {
        struct store_argv a;
        store_argv_init(&a);
        store_argv_fmt(&a, "mdm:cert:%s", e->prev);
        store_argv_str(&a, e->prev);
        store_argv_str(&a, e->udid);
        store_argv_str(&a, e->now);
        e->pending++;
        (void)store_argv_fx_script(e->s, store_lua_ota_prev, 1, &a, store_enr_prev_reply,
                                   STORE_CB_NONE, e);
    }
    store_enr_step(e, MDMD_OK);
}

static void store_enr_txread_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_enr *e = op->arg;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type == REDIS_REPLY_STRING && r->len > 0 && strcmp(r->str, e->fp) != 0)
        e->prev = xstrdup(r->str);
    else if (err == MDMD_OK && r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)
        err = MDMD_EPROTO;
    store_enr_step(e, err);
}

static struct store_op *store_ota_register_cluster(struct store *s, const char *fp,
                                                   const struct store_cert *c, const char *tx_id,
                                                   store_issue_fn *cb, void *arg)
{
    struct store_enr *e = store_enr_new(s, c->udid, c->user, c->serial, c->issued_ms, fp, cb, arg);
    char tx[STORE_ENROLL_KEY_MAX];
    store_enroll_gkey(s, tx, sizeof(tx), "enroll:tx:", tx_id);
    e->tx = xstrdup(tx);
    const char *argv[] = {"HGET", tx, "cert"};
    store_enr_begin(e, store_enr_check_prev);
    struct store_op *op = store_enr_cmd(e, 3, argv, store_enr_txread_reply);
    store_enr_step(e, MDMD_OK);
    return op;
}
