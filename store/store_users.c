/* store_users.c: users and login counters (keys: docs/REDIS.md; scripts:
 * store/lua/user_*.lua, login_*.lua). */
#include "store_users.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "../core/util.h"

extern const char store_lua_user_put[], store_lua_user_del[], store_lua_user_list[],
    store_lua_login_check[], store_lua_login_result[];

int store_users_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > STORE_USERS_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '@' || c == '-'))
            return 0;
    }
    return 1;
}

int store_users_role_ok(const char *role)
{
    return strcmp(role, "admin") == 0 || strcmp(role, "user") == 0;
}

void store_users_key(int cluster, char *out, const char *fmt, const char *name)
{
    char rest[STORE_USERS_KEY];
    snprintf(rest, sizeof(rest), fmt, name);
    snprintf(out, STORE_USERS_KEY, cluster ? "mdm:{g}:%s" : "mdm:%s", rest);
}

static struct store_op *store_users_run(struct store *s, const char *lua, int nkeys, int argc,
                                        const char *const *argv, store_reply_fn *reply,
                                        union store_cb cb, void *arg)
{
    struct store_op *op = store_op_new(s, cb, arg);
    return store_cmd_script(s, store_script_get(s, lua), nkeys, argc, argv, NULL, reply, op);
}

/* ---- get ---- */

static const char *store_users_field(const redisReply *r, const char *key)
{
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (r->element[i]->type == REDIS_REPLY_STRING &&
            r->element[i + 1]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, key) == 0)
            return r->element[i + 1]->str;
    return "";
}

static void store_users_get_reply(struct store_op *op, int err, const redisReply *r)
{
    store_user_fn *cb = op->cb.user;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type != REDIS_REPLY_ARRAY)
        err = MDMD_EPROTO;
    if (err != MDMD_OK || r->elements == 0) {
        cb(op->arg, err, NULL);
        return;
    }
    /* The name is not stored in the hash: the caller knows it. */
    struct store_user u = {"", store_users_field(r, "role"), store_users_field(r, "hash"),
                           store_users_field(r, "created"), store_users_field(r, "updated")};
    cb(op->arg, MDMD_OK, &u);
}

struct store_op *store_users_get(struct store *s, const char *name, store_user_fn *cb, void *arg)
{
    char key[STORE_USERS_KEY];
    store_users_key(store_layout_cluster(s), key, "user:%s", name);
    const char *argv[] = {"HGETALL", key};
    struct store_op *op = store_op_new(s, (union store_cb){.user = cb}, arg);
    return store_cmd_argv(s, 2, argv, NULL, store_users_get_reply, op);
}

/* ---- list ---- */

static int store_users_row_ok(const redisReply *e)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 4)
        return 0;
    for (size_t i = 0; i < 4; i++)
        if (e->element[i]->type != REDIS_REPLY_STRING)
            return 0;
    return 1;
}

static void store_users_list_reply(struct store_op *op, int err, const redisReply *r)
{
    store_users_fn *cb = op->cb.users;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type != REDIS_REPLY_ARRAY)
        err = MDMD_EPROTO;
    if (err != MDMD_OK) {
        cb(op->arg, err, NULL, 0);
        return;
    }
    struct store_user *u = xcalloc(r->elements + 1, sizeof(*u));
    size_t n = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (store_users_row_ok(e))
            u[n++] = (struct store_user){e->element[0]->str, e->element[1]->str, "",
                                         e->element[2]->str, e->element[3]->str};
    }
    cb(op->arg, MDMD_OK, u, n);
    free(u);
}

struct store_op *store_users_list(struct store *s, store_users_fn *cb, void *arg)
{
    char users[STORE_USERS_KEY], prefix[STORE_USERS_KEY];
    store_users_key(store_layout_cluster(s), users, "users%s", "");
    store_users_key(store_layout_cluster(s), prefix, "user:%s", "");
    const char *argv[] = {users, prefix};
    return store_users_run(s, store_lua_user_list, 2, 2, argv, store_users_list_reply,
                           (union store_cb){.users = cb}, arg);
}

/* ---- put / del ---- */

void store_users_del_keys(int cluster, char k[8][STORE_USERS_KEY], const char *name)
{
    static const char *const kinds[] = {"profile", "provprofile", "app"};
    store_users_key(cluster, k[0], "user:%s", name);
    store_users_key(cluster, k[1], "users%s", "");
    for (int i = 0; i < 3; i++) {
        store_users_key(cluster, k[2 + i], "%ss", kinds[i]);
        store_users_key(cluster, k[5 + i], "assign:%s:", kinds[i]);
    }
}

static void store_users_result_reply(struct store_op *op, int err, const redisReply *r)
{
    store_users_result_fn *cb = op->cb.users_result;
    int res = STORE_USERS_OK;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type == REDIS_REPLY_STRING)
        res = strcmp(r->str, "exists") == 0      ? STORE_USERS_EXISTS
              : strcmp(r->str, "not_found") == 0 ? STORE_USERS_NOT_FOUND
                                                 : STORE_USERS_OK;
    else if (err == MDMD_OK && r->type == REDIS_REPLY_INTEGER)
        res = r->integer == 0 ? STORE_USERS_NOT_FOUND : STORE_USERS_OK;
    else if (err == MDMD_OK)
        err = MDMD_EPROTO;
    cb(op->arg, err, res);
}

struct store_op *store_users_put(struct store *s, const char *name, const char *role,
                                 const char *hash, int create, int64_t now_ms,
                                 store_users_result_fn *cb, void *arg)
{
    char key[STORE_USERS_KEY], users[STORE_USERS_KEY], now[24];
    store_users_key(store_layout_cluster(s), key, "user:%s", name);
    store_users_key(store_layout_cluster(s), users, "users%s", "");
    snprintf(now, sizeof(now), "%lld", (long long)now_ms);
    const char *argv[] = {
        key, users, name, create ? "create" : "passwd", hash, role != NULL ? role : "", now};
    return store_users_run(s, store_lua_user_put, 2, 7, argv, store_users_result_reply,
                           (union store_cb){.users_result = cb}, arg);
}

struct store_op *store_users_del(struct store *s, const char *name, store_users_result_fn *cb,
                                 void *arg)
{
    char k[8][STORE_USERS_KEY];
    store_users_del_keys(store_layout_cluster(s), k, name);
    const char *argv[] = {k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], name};
    return store_users_run(s, store_lua_user_del, 8, 9, argv, store_users_result_reply,
                           (union store_cb){.users_result = cb}, arg);
}

/* ---- login counters ---- */

static void store_users_login_reply(struct store_op *op, int err, const redisReply *r)
{
    store_login_fn *cb = op->cb.login;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
                           r->element[0]->type != REDIS_REPLY_INTEGER))
        err = MDMD_EPROTO;
    if (err != MDMD_OK) {
        cb(op->arg, err, 0, NULL);
        return;
    }
    int wait = (int)r->element[0]->integer;
    if (wait == 0 && r->elements == 3 && r->element[1]->type == REDIS_REPLY_STRING &&
        r->element[2]->type == REDIS_REPLY_STRING) {
        struct store_user u = {"", r->element[2]->str, r->element[1]->str, "", ""};
        cb(op->arg, MDMD_OK, 0, &u);
        return;
    }
    cb(op->arg, MDMD_OK, wait, NULL);
}

struct store_op *store_users_login_check(struct store *s, const char *name, const char *peer,
                                         const struct store_login_limits *lim, store_login_fn *cb,
                                         void *arg)
{
    char user[STORE_USERS_KEY], fu[STORE_USERS_KEY], fa[STORE_USERS_KEY];
    char um[16], am[16], win[16];
    store_users_key(store_layout_cluster(s), user, "user:%s", name);
    store_users_key(store_layout_cluster(s), fu, "loginfail:user:%s", name);
    store_users_key(store_layout_cluster(s), fa, "loginfail:addr:%s", peer);
    snprintf(um, sizeof(um), "%d", lim->user_max);
    snprintf(am, sizeof(am), "%d", lim->addr_max);
    snprintf(win, sizeof(win), "%d", lim->window_s);
    const char *argv[] = {user, fu, fa, um, am, win};
    return store_users_run(s, store_lua_login_check, 3, 6, argv, store_users_login_reply,
                           (union store_cb){.login = cb}, arg);
}

static void store_users_done_reply(struct store_op *op, int err, const redisReply *r)
{
    err = store_reply_error(err, r);
    if (op->cb.done != NULL)
        op->cb.done(op->arg, err);
}

struct store_op *store_users_login_ok(struct store *s, const char *name, const char *peer,
                                      store_done_fn *cb, void *arg)
{
    char fu[STORE_USERS_KEY], fa[STORE_USERS_KEY];
    store_users_key(store_layout_cluster(s), fu, "loginfail:user:%s", name);
    store_users_key(store_layout_cluster(s), fa, "loginfail:addr:%s", peer);
    const char *argv[] = {fu, fa};
    return store_users_run(s, store_lua_login_result, 2, 2, argv, store_users_done_reply,
                           (union store_cb){.done = cb}, arg);
}
