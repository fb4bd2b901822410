/* store_scep.c: SCEP challenges and certificates (see store_scep.h; the
 * scripts: store/lua/scep_issue.lua, scep_renew.lua). */
#include "store_scep.h"

#include <stdio.h>
#include <string.h>

#include "store_int.h"
#include "../core/util.h"

extern const char store_lua_scep_issue[], store_lua_scep_renew[], store_lua_challenge_take[];

#define STORE_SCEP_KEY_MAX 320

static void store_scep_done_reply(struct store_op *op, int err, const redisReply *r)
{
    err = store_reply_error(err, r);
    /* SET ... NX answers nil when the key exists. */
    if (err == MDMD_OK && r->type == REDIS_REPLY_NIL)
        err = MDMD_EPROTO;
    op->cb.done(op->arg, err);
}

struct store_op *store_scep_challenge_put(struct store *s, const char *challenge, const char *who,
                                          int ttl_s, store_done_fn *cb, void *arg)
{
    char key[STORE_SCEP_KEY_MAX], ttl[24];
    store_enroll_gkey(s, key, sizeof(key), "scep:chal:", challenge);
    snprintf(ttl, sizeof(ttl), "%d", ttl_s);
    const char *argv[] = {"SET", key, who, "EX", ttl, "NX"};
    struct store_op *op = store_op_new(s, (union store_cb){.done = cb}, arg);
    return store_cmd_argv(s, 6, argv, NULL, store_scep_done_reply, op);
}

/* {'ok', owner}, {'again', owner, cert}, {'unknown'} or {'limited', ttl_s}. */
static void store_scep_take_reply(struct store_op *op, int err, const redisReply *r)
{
    store_scep_take_fn *cb = op->cb.scep_take;
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
    struct store_op *op = store_op_new(s, (union store_cb){.scep_take = cb}, arg);
    return store_cmd_script(s, store_script_get(s, store_lua_challenge_take), 3,
                            (int)ARRAY_LEN(argv), argv, NULL, store_scep_take_reply, op);
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
    const char *argv[] = {old,       cert,  dev, "mdm:events", c->udid,
                          c->old_fp, c->fp, now, c->serial,    grace};
    struct store_op *op = store_op_new(s, (union store_cb){.scep_cert = cb}, arg);
    return store_cmd_script(s, store_script_get(s, store_lua_scep_renew), 4, (int)ARRAY_LEN(argv),
                            argv, NULL, store_scep_cert_reply, op);
}
