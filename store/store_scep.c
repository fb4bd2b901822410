/* store_scep.c: SCEP challenges and certificates (see store_scep.h; the
 * scripts: store/lua/scep_issue.lua, scep_renew.lua). */
#include "store_scep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "../core/util.h"

extern const char store_lua_scep_issue[], store_lua_scep_renew[], store_lua_challenge_take[];

#define STORE_SCEP_KEY_MAX 320

struct store_op *store_scep_challenge_put(struct store *s, const char *challenge, const char *who,
                                          int ttl_s, store_done_fn *cb, void *arg)
{
    return store_enroll_chal_put(s, "scep:chal:", challenge, who, ttl_s, cb, arg);
}

struct store_op *store_scep_take(struct store *s, const char *challenge, int fixed,
                                 const char *req_id, const char *peer, store_scep_take_fn *cb,
                                 void *arg)
{
    char key[STORE_SCEP_KEY_MAX], fail[STORE_SCEP_KEY_MAX], tx[STORE_SCEP_KEY_MAX];
    char max[16], window[16], ttl[16];
    store_enroll_gkey(s, key, sizeof(key), "scep:chal:", challenge);
    store_enroll_gkey(s, fail, sizeof(fail), "chalfail:addr:", peer);
    store_enroll_gkey(s, tx, sizeof(tx), "scep:tx:", req_id);
    snprintf(max, sizeof(max), "%d", STORE_CHAL_FAIL_ADDR);
    snprintf(window, sizeof(window), "%d", STORE_CHAL_FAIL_WINDOW_S);
    snprintf(ttl, sizeof(ttl), "%d", STORE_SCEP_TX_TTL_S);
    const char *argv[] = {key, fail, tx, max, window, ttl, fixed ? "1" : "0"};
    /* The same script and answer as an enrollment challenge's (its third
     * value the certificate): store_chal_fn's shape. */
    struct store_op *op = store_op_new(s, (union store_cb){.chal = cb}, arg);
    return store_cmd_script(s, store_script_get(s, store_lua_challenge_take), 3,
                            (int)ARRAY_LEN(argv), argv, NULL, store_enroll_chal_reply, op);
}

/* 'ok' (a status or bulk string), or {'ok', rebound} / {'again', cert} /
 * {reason}. */
static void store_scep_cert_reply(struct store_op *op, int err, const redisReply *r)
{
    store_scep_cert_fn *cb = op->cb.scep_cert;
    const redisReply *first = NULL;
    long long rebound = 0;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS))
        first = r;
    else if (err == MDMD_OK && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
             r->element[0]->type == REDIS_REPLY_STRING)
        first = r->element[0];
    if (err == MDMD_OK && first == NULL)
        err = MDMD_EPROTO;
    if (first != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_INTEGER)
        rebound = r->element[1]->integer;
    const char *again = "";
    if (first != NULL && strcmp(first->str, "again") == 0) {
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
            r->element[1]->type == REDIS_REPLY_STRING)
            again = r->element[1]->str;
        else
            err = MDMD_EPROTO;
    }
    cb(op->arg, err, first != NULL ? first->str : "", rebound != 0, again);
}

/* ---- the cluster layout: the registry, the device and the transaction in
 * calls in turn (each a slot of its own), in an order that keeps
 * docs/SECURITY.md's rules: the gate first (the transaction's certificate,
 * the owner check; a renewal's old entry, compared and set), the device
 * answered after the last step.  A failed step fails the request (503); a
 * retry repeats steps that are safe to repeat. ---- */

struct store_sc {
    struct store *s;
    store_scep_cert_fn *cb;
    void *arg;
    void (*next)(struct store_sc *c);
    int pending, err, rebound, bind, done;
    char outcome[16];
    char *again;
    /* the request's strings (owned) */
    char *udid, *fp, *now, *serial, *user, *old_fp, *tx, *hex, *ttl, *grace, *held, *ouser;
    /* the old entry, a renewal: state revoked_reason renewed_to revoked_at */
    char *o[4];
};

static void store_sc_finish(struct store_sc *c)
{
    c->cb(c->arg, c->err, c->outcome, c->rebound, c->again != NULL ? c->again : "");
    char **strs[] = {&c->udid, &c->fp,  &c->now,   &c->serial, &c->user,  &c->old_fp, &c->tx,
                     &c->hex,  &c->ttl, &c->grace, &c->held,   &c->ouser, &c->again};
    for (size_t i = 0; i < ARRAY_LEN(strs); i++)
        free(*strs[i]);
    for (int i = 0; i < 4; i++)
        free(c->o[i]);
    free(c);
}

/* One call of a step done; the next step once all are.  done: answered. */
static void store_sc_step(struct store_sc *c, int err)
{
    if (err != MDMD_OK && c->err == MDMD_OK)
        c->err = err;
    if (--c->pending > 0)
        return;
    if (c->err != MDMD_OK || c->done || c->next == NULL)
        store_sc_finish(c);
    else
        c->next(c);
}

static void store_sc_begin(struct store_sc *c, void (*next)(struct store_sc *))
{
    c->next = next;
    c->pending = 1; /* held until the step's calls are sent */
}

static char *store_sc_dup(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING ? xstrdup(r->str) : NULL;
}

static void store_sc_refuse(struct store_sc *c, const char *why)
{
    snprintf(c->outcome, sizeof(c->outcome), "%s", why);
    c->done = 1;
}

static void store_sc_any_reply(struct store_op *op, int err, const redisReply *r)
{
    store_sc_step(op->arg, store_reply_error(err, r));
}

static void store_sc_cmd(struct store_sc *c, int argc, const char *const *argv,
                         store_reply_fn *reply)
{
    c->pending++;
    struct store_op *op = store_op_new(c->s, STORE_CB_NONE, c);
    (void)store_cmd_argv(c->s, argc, argv, NULL, reply, op);
}

static void store_sc_script(struct store_sc *c, const char *lua, int fx, struct store_argv *a,
                            store_reply_fn *reply)
{
    c->pending++;
    if (fx)
        (void)store_argv_fx_script(c->s, lua, 1, a, reply, STORE_CB_NONE, c);
    else
        (void)store_argv_script(c->s, lua, 1, a, reply, STORE_CB_NONE, c);
}

/* scep_cert.lua: the new entry (renewed_from: a renewal's old_fp, or ""). */
static void store_sc_cert(struct store_sc *c, const char *udid, const char *user,
                          const char *renewed_from)
{
    extern const char store_lua_scep_cert[];
    struct store_argv a;
    store_argv_init(&a);
    store_argv_fmt(&a, "mdm:cert:%s", c->fp);
    const char *v[] = {udid, c->fp, c->now, c->serial, user, c->bind ? "1" : "0", renewed_from};
    for (size_t i = 0; i < ARRAY_LEN(v); i++)
        store_argv_str(&a, v[i]);
    store_sc_script(c, store_lua_scep_cert, 1, &a, store_sc_any_reply);
}

static struct store_sc *store_sc_new(struct store *s, const struct store_scep_cert *k,
                                     store_scep_cert_fn *cb, void *arg)
{
    struct store_sc *c = xcalloc(1, sizeof(*c));
    c->s = s;
    c->cb = cb;
    c->arg = arg;
    snprintf(c->outcome, sizeof(c->outcome), "ok");
    c->udid = xstrdup(k->udid != NULL ? k->udid : "");
    c->fp = xstrdup(k->fp);
    c->now = xasprintf("%lld", (long long)k->now_ms);
    c->serial = xstrdup(k->serial != NULL ? k->serial : "");
    c->user = xstrdup(k->user != NULL ? k->user : "");
    return c;
}

/* -- a new enrollment: the transaction (HGET), scep_dev.lua (the owner
 * check), scep_cert.lua, scep_tx.lua. -- */

static void store_sc_tx_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_sc *c = op->arg;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type != REDIS_REPLY_STRING)
        err = MDMD_EPROTO;
    if (err == MDMD_OK && r->len > 0) { /* another try recorded its certificate first */
        store_sc_refuse(c, "again");
        c->again = xstrdup(r->str);
    }
    store_sc_step(c, err);
}

static void store_sc_issue_tx(struct store_sc *c)
{
    extern const char store_lua_scep_tx[];
    struct store_argv a;
    store_argv_init(&a);
    store_argv_str(&a, c->tx);
    store_argv_str(&a, c->user);
    store_argv_str(&a, c->hex);
    store_argv_str(&a, c->ttl);
    store_sc_begin(c, NULL);
    store_sc_script(c, store_lua_scep_tx, 0, &a, store_sc_tx_reply);
    store_sc_step(c, MDMD_OK);
}

static void store_sc_issue_cert(struct store_sc *c)
{
    store_sc_begin(c, store_sc_issue_tx);
    c->bind = c->udid[0] == '\0';
    store_sc_cert(c, c->udid, c->user, "");
    store_sc_step(c, MDMD_OK);
}

static void store_sc_dev_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_sc *c = op->arg;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)
        err = MDMD_EPROTO;
    if (err == MDMD_OK && strcmp(r->str, "ok") != 0)
        store_sc_refuse(c, "cert_mismatch");
    store_sc_step(c, err);
}

static void store_sc_issue_dev(struct store_sc *c)
{
    extern const char store_lua_scep_dev[];
    store_sc_begin(c, store_sc_issue_cert);
    if (c->udid[0] != '\0') {
        struct store_argv a;
        store_argv_init(&a);
        store_argv_fmt(&a, "mdm:dev:{%s}", c->udid);
        store_argv_str(&a, c->udid);
        store_argv_str(&a, c->fp);
        store_argv_str(&a, c->now);
        store_argv_str(&a, c->user);
        store_sc_script(c, store_lua_scep_dev, 0, &a, store_sc_dev_reply);
    }
    store_sc_step(c, MDMD_OK);
}

static void store_sc_have_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_sc *c = op->arg;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type == REDIS_REPLY_STRING) {
        store_sc_refuse(c, "again");
        c->again = xstrdup(r->str);
    } else if (err == MDMD_OK && r->type != REDIS_REPLY_NIL) {
        err = MDMD_EPROTO;
    }
    store_sc_step(c, err);
}

static struct store_op *store_scep_issued_cluster(struct store *s, const struct store_scep_cert *k,
                                                  const char *tx, const char *ttl,
                                                  store_scep_cert_fn *cb, void *arg)
{
    struct store_sc *c = store_sc_new(s, k, cb, arg);
    c->tx = xstrdup(tx);
    c->hex = xstrdup(k->cert_hex);
    c->ttl = xstrdup(ttl);
    const char *argv[] = {"HGET", tx, "cert"};
    store_sc_begin(c, store_sc_issue_dev);
    store_sc_cmd(c, 3, argv, store_sc_have_reply);
    store_sc_step(c, MDMD_OK);
    return NULL;
}

/* -- a renewal: the old entry (HMGET), the record (HMGET), scep_old.lua
 * (the gate), then the retried identity's revocation and the new entry,
 * then scep_rebind.lua. -- */

static void store_sc_rebind_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_sc *c = op->arg;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type != REDIS_REPLY_INTEGER)
        err = MDMD_EPROTO;
    if (err == MDMD_OK)
        c->rebound = r->integer != 0;
    store_sc_step(c, err);
}

static void store_sc_renew_rebind(struct store_sc *c)
{
    extern const char store_lua_scep_rebind[];
    store_sc_begin(c, NULL);
    if (c->udid[0] != '\0') {
        struct store_argv a;
        store_argv_init(&a);
        store_argv_fmt(&a, "mdm:dev:{%s}", c->udid);
        const char *v[] = {c->udid, c->old_fp, c->fp, c->now, c->held};
        for (size_t i = 0; i < ARRAY_LEN(v); i++)
            store_argv_str(&a, v[i]);
        store_sc_script(c, store_lua_scep_rebind, 1, &a, store_sc_rebind_reply);
    }
    store_sc_step(c, MDMD_OK);
}

static void store_sc_revoked_reply(struct store_op *op, int err, const redisReply *r)
{
    store_sc_step(op->arg, store_reply_error(err, r));
}

static void store_sc_renew_write(struct store_sc *c)
{
    extern const char store_lua_cert_revoke[];
    store_sc_begin(c, store_sc_renew_rebind);
    if (strcmp(c->held, c->old_fp) != 0) { /* what the first renewal gave: never reached it */
        struct store_argv a;
        store_argv_init(&a);
        store_argv_fmt(&a, "mdm:cert:%s", c->held);
        const char *v[] = {c->held, c->udid, c->now, "renewal_retried"};
        for (size_t i = 0; i < ARRAY_LEN(v); i++)
            store_argv_str(&a, v[i]);
        store_sc_script(c, store_lua_cert_revoke, 1, &a, store_sc_revoked_reply);
    }
    store_sc_cert(c, c->udid, c->ouser != NULL ? c->ouser : "", c->old_fp);
    store_sc_step(c, MDMD_OK);
}

static void store_sc_gate_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_sc *c = op->arg;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type != REDIS_REPLY_INTEGER)
        err = MDMD_EPROTO;
    if (err == MDMD_OK && r->integer != 1)
        err = MDMD_EUNAVAIL; /* a renewal raced with this one: the retry decides anew */
    store_sc_step(c, err);
}

static void store_sc_renew_gate(struct store_sc *c)
{
    extern const char store_lua_scep_old[];
    store_sc_begin(c, store_sc_renew_write);
    struct store_argv a;
    store_argv_init(&a);
    store_argv_fmt(&a, "mdm:cert:%s", c->old_fp);
    const char *v[] = {c->old_fp, c->fp, c->now, c->udid, c->held};
    for (size_t i = 0; i < ARRAY_LEN(v); i++)
        store_argv_str(&a, v[i]);
    store_sc_script(c, store_lua_scep_old, 1, &a, store_sc_gate_reply);
    store_sc_step(c, MDMD_OK);
}

/* The record's state cert_fp issued_fp: which identity is held (scep_renew.lua's
 * rules). */
static void store_sc_devread_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_sc *c = op->arg;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && (r->type != REDIS_REPLY_ARRAY || r->elements != 3))
        err = MDMD_EPROTO;
    if (err != MDMD_OK) {
        store_sc_step(c, err);
        return;
    }
    const char *cert_fp = r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : NULL;
    const char *issued = r->element[2]->type == REDIS_REPLY_STRING ? r->element[2]->str : NULL;
    if (c->o[0] != NULL && strcmp(c->o[0], "revoked") == 0) {
        const char *to = c->o[2];
        long long t = c->o[3] != NULL ? strtoll(c->o[3], NULL, 10) : 0;
        if (c->o[1] == NULL || strcmp(c->o[1], "renewed") != 0 || to == NULL ||
            !((cert_fp != NULL && strcmp(to, cert_fp) == 0) ||
              (issued != NULL && strcmp(to, issued) == 0)) ||
            strtoll(c->now, NULL, 10) - t > strtoll(c->grace, NULL, 10))
            store_sc_refuse(c, "revoked");
        else
            c->held = xstrdup(to);
    } else {
        c->held = xstrdup(c->old_fp);
    }
    store_sc_step(c, MDMD_OK);
}

static void store_sc_renew_devread(struct store_sc *c)
{
    char dev[STORE_SCEP_KEY_MAX];
    store_sc_begin(c, store_sc_renew_gate);
    if (c->udid[0] != '\0') {
        snprintf(dev, sizeof(dev), "mdm:dev:{%s}", c->udid);
        const char *argv[] = {"HMGET", dev, "state", "cert_fp", "issued_fp"};
        store_sc_cmd(c, 5, argv, store_sc_devread_reply);
    } else {
        /* no record: the old one's state alone decides (nothing it can hold) */
        if (c->o[0] != NULL && strcmp(c->o[0], "revoked") == 0)
            store_sc_refuse(c, "revoked");
        else
            c->held = xstrdup(c->old_fp);
    }
    store_sc_step(c, MDMD_OK);
}

/* state revoked_reason renewed_to revoked_at user udid bind */
static void store_sc_old_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_sc *c = op->arg;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && (r->type != REDIS_REPLY_ARRAY || r->elements != 7))
        err = MDMD_EPROTO;
    if (err != MDMD_OK) {
        store_sc_step(c, err);
        return;
    }
    for (int i = 0; i < 4; i++)
        c->o[i] = store_sc_dup(r->element[i]);
    c->ouser = store_sc_dup(r->element[4]);
    const redisReply *ou = r->element[5], *bind = r->element[6];
    c->bind = bind->type == REDIS_REPLY_STRING && strcmp(bind->str, "authenticate") == 0;
    if (c->udid[0] == '\0') {
        if (!c->bind) {
            store_sc_refuse(c, "cert_mismatch");
        } else {
            free(c->udid);
            c->udid = xstrdup(ou->type == REDIS_REPLY_STRING ? ou->str : "");
        }
    } else if (ou->type == REDIS_REPLY_STRING && strcmp(ou->str, c->udid) != 0) {
        store_sc_refuse(c, "cert_mismatch");
    }
    store_sc_step(c, MDMD_OK);
}

static struct store_op *store_scep_renewed_cluster(struct store *s, const struct store_scep_cert *k,
                                                   const char *old, const char *grace,
                                                   store_scep_cert_fn *cb, void *arg)
{
    struct store_sc *c = store_sc_new(s, k, cb, arg);
    c->old_fp = xstrdup(k->old_fp);
    c->grace = xstrdup(grace);
    const char *argv[] = {"HMGET", old,    "state", "revoked_reason", "renewed_to", "revoked_at",
                          "user",  "udid", "bind"};
    store_sc_begin(c, store_sc_renew_devread);
    store_sc_cmd(c, (int)ARRAY_LEN(argv), argv, store_sc_old_reply);
    store_sc_step(c, MDMD_OK);
    return NULL;
}

struct store_op *store_scep_issued(struct store *s, const struct store_scep_cert *c,
                                   store_scep_cert_fn *cb, void *arg)
{
    char cert[STORE_SCEP_KEY_MAX], dev[STORE_SCEP_KEY_MAX], tx[STORE_SCEP_KEY_MAX], now[24];
    char ttl[16];
    snprintf(cert, sizeof(cert), "mdm:cert:%s", c->fp);
    snprintf(dev, sizeof(dev), "mdm:dev:{%s}", c->udid);
    store_enroll_gkey(s, tx, sizeof(tx), "scep:tx:", c->req_id);
    snprintf(now, sizeof(now), "%lld", (long long)c->now_ms);
    snprintf(ttl, sizeof(ttl), "%d", STORE_SCEP_TX_TTL_S);
    if (store_layout_cluster(s))
        return store_scep_issued_cluster(s, c, tx, ttl, cb, arg);
    const char *argv[] = {cert,        dev,       "mdm:events",
                          tx,          c->udid,   c->fp,
                          now,         c->serial, c->user != NULL ? c->user : "",
                          c->cert_hex, ttl};
    struct store_op *op = store_op_new(s, (union store_cb){.scep_cert = cb}, arg);
    return store_cmd_script(s, store_script_get(s, store_lua_scep_issue), 4, (int)ARRAY_LEN(argv),
                            argv, NULL, store_scep_cert_reply, op);
}

struct store_op *store_scep_renewed(struct store *s, const struct store_scep_cert *c,
                                    store_scep_cert_fn *cb, void *arg)
{
    char old[STORE_SCEP_KEY_MAX], cert[STORE_SCEP_KEY_MAX], dev[STORE_SCEP_KEY_MAX];
    char now[24], grace[24];
    snprintf(old, sizeof(old), "mdm:cert:%s", c->old_fp);
    snprintf(cert, sizeof(cert), "mdm:cert:%s", c->fp);
    snprintf(dev, sizeof(dev), "mdm:dev:{%s}", c->udid);
    snprintf(now, sizeof(now), "%lld", (long long)c->now_ms);
    snprintf(grace, sizeof(grace), "%lld", (long long)c->retry_grace_s * 1000);
    if (store_layout_cluster(s))
        return store_scep_renewed_cluster(s, c, old, grace, cb, arg);
    const char *argv[] = {old,     cert,      dev,   "mdm:events", "mdm:cert:", "mdm:dev:",
                          c->udid, c->old_fp, c->fp, now,          c->serial,   grace};
    struct store_op *op = store_op_new(s, (union store_cb){.scep_cert = cb}, arg);
    return store_cmd_script(s, store_script_get(s, store_lua_scep_renew), 6, (int)ARRAY_LEN(argv),
                            argv, NULL, store_scep_cert_reply, op);
}
