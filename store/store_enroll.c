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

static void store_enroll_done_reply(struct store_op *op, int err, const redisReply *r)
{
    err = store_reply_error(err, r);
    /* SET ... NX answers nil when the key exists. */
    if (err == MDMD_OK && r->type == REDIS_REPLY_NIL)
        err = MDMD_EPROTO;
    op->cb.done(op->arg, err);
}

struct store_op *store_challenge_put(struct store *s, const char *challenge, const char *user,
                                     int ttl_s, store_done_fn *cb, void *arg)
{
    char key[STORE_ENROLL_KEY_MAX], ttl[24];
    snprintf(key, sizeof(key), "mdm:enroll:chal:%s", challenge);
    snprintf(ttl, sizeof(ttl), "%d", ttl_s);
    const char *argv[] = {"SET", key, user, "EX", ttl, "NX"};
    struct store_op *op = store_op_new(s, (union store_cb){.done = cb}, arg);
    return store_cmd_argv(s, 6, argv, NULL, store_enroll_done_reply, op);
}

/* {'ok', owner}, {'again', owner, prev}, {'unknown'} or {'limited', ttl_s}. */
static void store_enroll_chal_reply(struct store_op *op, int err, const redisReply *r)
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
    snprintf(key, sizeof(key), "mdm:%s:chal:%s", kind == STORE_CHAL_SCEP ? "scep" : "enroll",
             challenge);
    snprintf(fail, sizeof(fail), "mdm:chalfail:addr:%s", peer);
    snprintf(tx, sizeof(tx), "mdm:enroll:tx:%s", tx_id != NULL ? tx_id : "");
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

struct store_op *store_cert_issue_device(struct store *s, const struct store_device_cert *c,
                                         store_issue_fn *cb, void *arg)
{
    char ota[STORE_ENROLL_KEY_MAX], cert[STORE_ENROLL_KEY_MAX], dev[STORE_ENROLL_KEY_MAX];
    char now[24];
    snprintf(ota, sizeof(ota), "mdm:cert:%s", c->ota_fp);
    snprintf(cert, sizeof(cert), "mdm:cert:%s", c->fp);
    snprintf(dev, sizeof(dev), "mdm:dev:{%s}", c->udid);
    snprintf(now, sizeof(now), "%lld", (long long)c->now_ms);
    char retry[24];
    snprintf(retry, sizeof(retry), "%d", STORE_ENROLL_TX_TTL_S * 1000);
    const char *argv[] = {ota,     cert,      dev,  "mdm:events",
                          c->udid, c->user,   now,  store_enroll_nz(c->serial),
                          c->fp,   c->ota_fp, retry};
    struct store_op *op = store_op_new(s, (union store_cb){.issue = cb}, arg);
    return store_cmd_script(s, store_script_get(s, store_lua_enroll_device), 4,
                            (int)ARRAY_LEN(argv), argv, NULL, store_enroll_issue_reply, op);
}

struct store_op *store_ota_register(struct store *s, const char *fp, const struct store_cert *c,
                                    const char *tx_id, store_issue_fn *cb, void *arg)
{
    char key[STORE_ENROLL_KEY_MAX], tx[STORE_ENROLL_KEY_MAX], issued[24];
    snprintf(key, sizeof(key), "mdm:cert:%s", fp);
    snprintf(tx, sizeof(tx), "mdm:enroll:tx:%s", tx_id);
    snprintf(issued, sizeof(issued), "%lld", (long long)c->issued_ms);
    const char *argv[] = {key,
                          tx,
                          "mdm:events",
                          store_enroll_nz(c->udid),
                          store_enroll_nz(c->user),
                          store_enroll_nz(c->serial),
                          issued,
                          fp};
    struct store_op *op = store_op_new(s, (union store_cb){.issue = cb}, arg);
    return store_cmd_script(s, store_script_get(s, store_lua_ota_register), 3, (int)ARRAY_LEN(argv),
                            argv, NULL, store_enroll_issue_reply, op);
}

struct store_op *store_ota_tx_close(struct store *s, const char *tx_id, store_done_fn *cb,
                                    void *arg)
{
    char tx[STORE_ENROLL_KEY_MAX];
    snprintf(tx, sizeof(tx), "mdm:enroll:tx:%s", tx_id);
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
