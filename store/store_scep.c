/* store_scep.c: SCEP challenges and certificates (see store_scep.h; the
 * scripts: store/lua/scep_issue.lua, scep_renew.lua). */
#include "store_scep.h"

#include <stdio.h>
#include <string.h>

#include "store_int.h"
#include "../core/util.h"

extern const char store_lua_scep_issue[], store_lua_scep_renew[];

#define STORE_SCEP_KEY_MAX 320

static void store_scep_done_reply(struct store_op *op, int err, const redisReply *r)
{
    err = store_reply_error(err, r);
    /* SET ... NX answers nil when the key exists. */
    if (err == MDMD_OK && r->type == REDIS_REPLY_NIL)
        err = MDMD_EPROTO;
    ((store_done_fn *)(void (*)(void))op->cb)(op->arg, err);
}

struct store_op *store_scep_challenge_put(struct store *s, const char *challenge, const char *who,
                                          int ttl_s, store_done_fn *cb, void *arg)
{
    char key[STORE_SCEP_KEY_MAX], ttl[24];
    snprintf(key, sizeof(key), "mdm:scep:chal:%s", challenge);
    snprintf(ttl, sizeof(ttl), "%d", ttl_s);
    const char *argv[] = {"SET", key, who, "EX", ttl, "NX"};
    struct store_op *op = store_op_new(s, (store_any_fn *)cb, arg);
    return store_cmd_argv(s, 6, argv, NULL, store_scep_done_reply, op);
}

/* 'ok' (a status or bulk string), or {'ok', rebound} / {reason}. */
static void store_scep_cert_reply(struct store_op *op, int err, const redisReply *r)
{
    store_scep_cert_fn *cb = (store_scep_cert_fn *)(void (*)(void))op->cb;
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
    cb(op->arg, err, first != NULL ? first->str : "", rebound != 0);
}

struct store_op *store_scep_issued(struct store *s, const struct store_scep_cert *c,
                                   store_scep_cert_fn *cb, void *arg)
{
    char cert[STORE_SCEP_KEY_MAX], dev[STORE_SCEP_KEY_MAX], now[24];
    snprintf(cert, sizeof(cert), "mdm:cert:%s", c->fp);
    snprintf(dev, sizeof(dev), "mdm:dev:{%s}", c->udid);
    snprintf(now, sizeof(now), "%lld", (long long)c->now_ms);
    const char *argv[] = {cert,  dev, "mdm:events", c->udid,
                          c->fp, now, c->serial,    c->user != NULL ? c->user : ""};
    struct store_op *op = store_op_new(s, (store_any_fn *)cb, arg);
    return store_cmd_script(s, store_script_get(s, store_lua_scep_issue), 3, (int)ARRAY_LEN(argv),
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
    struct store_op *op = store_op_new(s, (store_any_fn *)cb, arg);
    return store_cmd_script(s, store_script_get(s, store_lua_scep_renew), 4, (int)ARRAY_LEN(argv),
                            argv, NULL, store_scep_cert_reply, op);
}
