/* store_sync.c: the blocking Redis connection of the CLI (store_sync.h). */
#include "store_sync.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "store_users.h"
#include "../core/util.h"

extern const char store_lua_user_put[], store_lua_user_del[], store_lua_user_list[];

struct store_sync {
    redisContext *c;
    char *addr;  /* for messages */
    int cluster; /* the cluster key layout (store_sync_set_layout) */
    int timeout_ms;
};

redisContext *store_sync_connect(const char *addr, int timeout_ms)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    if (addr[0] == '/' || addr[0] == '.')
        return redisConnectUnixWithTimeout(addr, tv);
    const char *colon = strrchr(addr, ':');
    if (colon == NULL)
        return NULL;
    char *host = addr[0] == '[' ? xstrndup(addr + 1, (size_t)(colon - addr - 2))
                                : xstrndup(addr, (size_t)(colon - addr));
    redisContext *c = redisConnectWithTimeout(host, atoi(colon + 1), tv);
    free(host);
    return c;
}

/* 1 when Redis answers PING on c. */
static int store_sync_ping(redisContext *c)
{
    redisReply *r = redisCommand(c, "PING");
    int ok = r != NULL && r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    return ok;
}

struct store_sync *store_sync_open(const char *redis, const char *data_dir, int timeout_ms,
                                   char *err, size_t errlen)
{
    /* The private Redis listens here (store/embedded.c). */
    /* A Redis Cluster's seed list: the first seed (MOVED leads on). */
    char *addr = *redis != '\0' ? xstrndup(redis, strcspn(redis, ","))
                                : xasprintf("%s/redis/redis.sock", data_dir);
    redisContext *c = store_sync_connect(addr, timeout_ms);
    if (c == NULL || c->err != 0 || !store_sync_ping(c)) {
        if (*redis == '\0')
            snprintf(err, errlen,
                     "the private Redis at %s is not running (%s): start mdmd with the same "
                     "configuration first (it runs that Redis), or set `redis` in the "
                     "configuration",
                     addr, c != NULL && c->err ? c->errstr : "no answer");
        else
            snprintf(err, errlen, "Redis at %s does not answer (%s)", addr,
                     c != NULL && c->err ? c->errstr : "bad address or no PING reply");
        if (c != NULL)
            redisFree(c);
        free(addr);
        return NULL;
    }
    struct store_sync *ss = xcalloc(1, sizeof(*ss));
    ss->c = c;
    ss->addr = addr;
    ss->timeout_ms = timeout_ms;
    return ss;
}

void store_sync_free(struct store_sync *ss)
{
    if (ss == NULL)
        return;
    redisFree(ss->c);
    free(ss->addr);
    free(ss);
}

/* 1 when the node answers INFO cluster with cluster_enabled:1. */
static int store_sync_is_cluster(redisContext *c)
{
    redisReply *r = redisCommand(c, "INFO cluster");
    int yes = r != NULL && r->type == REDIS_REPLY_STRING && strstr(r->str, "cluster_enabled:1");
    freeReplyObject(r);
    return yes;
}

void store_sync_set_layout(struct store_sync *ss, const char *layout)
{
    ss->cluster = strcmp(layout, "cluster") == 0 ||
                  (strcmp(layout, "auto") == 0 && store_sync_is_cluster(ss->c));
}

int store_sync_cluster(const struct store_sync *ss)
{
    return ss->cluster;
}

/* A "MOVED <slot> <host:port>" reply: the connection moves to that node (a
 * Redis Cluster serves the slot there).  1 when it did. */
static int store_sync_follow(struct store_sync *ss, const redisReply *r)
{
    char addr[128];
    if (r == NULL || r->type != REDIS_REPLY_ERROR || sscanf(r->str, "MOVED %*d %127s", addr) != 1)
        return 0;
    redisContext *c = store_sync_connect(addr, ss->timeout_ms);
    if (c == NULL || c->err != 0) {
        if (c != NULL)
            redisFree(c);
        return 0;
    }
    redisFree(ss->c);
    ss->c = c;
    free(ss->addr);
    ss->addr = xstrdup(addr);
    return 1;
}

/* EVAL lua (in the connection's layout: MDM_CLUSTER first, as store.c does)
 * with nkeys keys then the rest of argv.  The reply (caller frees) or NULL
 * with err set, error replies included. */
static redisReply *store_sync_eval(struct store_sync *ss, const char *lua, int nkeys, int argc,
                                   const char *const *argv, char *err, size_t errlen)
{
    const char *v[24];
    char nk[16];
    char *text = xasprintf("local MDM_CLUSTER = %s\n%s", ss->cluster ? "true" : "false", lua);
    snprintf(nk, sizeof(nk), "%d", nkeys);
    v[0] = "EVAL";
    v[1] = text;
    v[2] = nk;
    for (int i = 0; i < argc && i < 21; i++)
        v[3 + i] = argv[i];
    redisReply *r = redisCommandArgv(ss->c, argc + 3, v, NULL);
    for (int hop = 0; hop < 3 && store_sync_follow(ss, r); hop++) {
        freeReplyObject(r);
        r = redisCommandArgv(ss->c, argc + 3, v, NULL);
    }
    free(text);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "Redis at %s: %s", ss->addr, r != NULL ? r->str : ss->c->errstr);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

static int store_sync_result(redisReply *r, char *err, size_t errlen)
{
    int res = -1;
    if (r == NULL)
        return -1;
    if (r->type == REDIS_REPLY_STRING)
        res = strcmp(r->str, "exists") == 0      ? STORE_USERS_EXISTS
              : strcmp(r->str, "not_found") == 0 ? STORE_USERS_NOT_FOUND
                                                 : STORE_USERS_OK;
    else if (r->type == REDIS_REPLY_INTEGER)
        res = r->integer == 0 ? STORE_USERS_NOT_FOUND : STORE_USERS_OK;
    else
        snprintf(err, errlen, "unexpected reply from Redis");
    freeReplyObject(r);
    return res;
}

int store_sync_user_put(struct store_sync *ss, const char *name, const char *role, const char *hash,
                        int create, int64_t now_ms, char *err, size_t errlen)
{
    char key[STORE_USERS_KEY], users[STORE_USERS_KEY], now[24];
    store_users_key(ss->cluster, key, "user:%s", name);
    store_users_key(ss->cluster, users, "users%s", "");
    snprintf(now, sizeof(now), "%lld", (long long)now_ms);
    const char *argv[] = {
        key, users, name, create ? "create" : "passwd", hash, role != NULL ? role : "", now};
    return store_sync_result(store_sync_eval(ss, store_lua_user_put, 2, 7, argv, err, errlen), err,
                             errlen);
}

int store_sync_user_del(struct store_sync *ss, const char *name, char *err, size_t errlen)
{
    char k[8][STORE_USERS_KEY];
    store_users_del_keys(ss->cluster, k, name);
    const char *argv[] = {k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], name};
    return store_sync_result(store_sync_eval(ss, store_lua_user_del, 8, 9, argv, err, errlen), err,
                             errlen);
}

int store_sync_user_list(struct store_sync *ss, store_sync_user_fn *fn, void *arg, char *err,
                         size_t errlen)
{
    char users[STORE_USERS_KEY], prefix[STORE_USERS_KEY];
    store_users_key(ss->cluster, users, "users%s", "");
    store_users_key(ss->cluster, prefix, "user:%s", "");
    const char *argv[] = {users, prefix};
    redisReply *r = store_sync_eval(ss, store_lua_user_list, 2, 2, argv, err, errlen);
    if (r == NULL)
        return -1;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        redisReply *e = r->element[i];
        if (e->type == REDIS_REPLY_ARRAY && e->elements == 4)
            fn(arg, e->element[0]->str, e->element[1]->str, e->element[2]->str, e->element[3]->str);
    }
    freeReplyObject(r);
    return 0;
}

/* Replaces the field only if it still holds what was read. */
static const char store_sync_cas_lua[] =
    "if redis.call('HGET', KEYS[1], 'bootstrap_token') == ARGV[1] then "
    "redis.call('HSET', KEYS[1], 'bootstrap_token', ARGV[2]) return 1 end return 0";

static int store_sync_token_one(struct store_sync *ss, const char *key, store_sync_token_fn *fn,
                                void *arg, long *seen, long *changed, char *err, size_t errlen)
{
    char udid[128];
    redisReply *r = redisCommand(ss->c, "HGET %s bootstrap_token", key);
    if (store_sync_follow(ss, r)) { /* a Redis Cluster: the key's master */
        freeReplyObject(r);
        r = redisCommand(ss->c, "HGET %s bootstrap_token", key);
    }
    if (r == NULL) {
        snprintf(err, errlen, "Redis at %s: %s", ss->addr, ss->c->errstr);
        return -1;
    }
    if (r->type == REDIS_REPLY_STRING && sscanf(key, "mdm:dev:{%127[^}]}", udid) == 1) {
        (*seen)++;
        char *nv = fn(arg, udid, r->str);
        if (nv != NULL) {
            const char *argv[] = {key, r->str, nv};
            redisReply *w = store_sync_eval(ss, store_sync_cas_lua, 1, 3, argv, err, errlen);
            *changed += w != NULL && w->type == REDIS_REPLY_INTEGER && w->integer == 1;
            freeReplyObject(w);
            free(nv);
        }
    }
    freeReplyObject(r);
    return 0;
}

/* SCAN of one node (sc) for the device records; each one through ss. */
static int store_sync_bootstrap_scan(struct store_sync *ss, redisContext *sc, const char *addr,
                                     store_sync_token_fn *fn, void *arg, long *seen, long *changed,
                                     char *err, size_t errlen)
{
    char cursor[32] = "0";
    do {
        redisReply *r = redisCommand(sc, "SCAN %s MATCH mdm:dev:{*} COUNT 1000", cursor);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            snprintf(err, errlen, "Redis at %s: SCAN failed", addr);
            freeReplyObject(r);
            return -1;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++)
            if (store_sync_token_one(ss, r->element[1]->element[i]->str, fn, arg, seen, changed,
                                     err, errlen) != 0) {
                freeReplyObject(r);
                return -1;
            }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

/* Every device record: on a Redis Cluster each master is scanned on a
 * connection of its own (a SCAN cursor is one node's); the records are read
 * and written through ss, which follows MOVED. */
int store_sync_bootstrap_each(struct store_sync *ss, store_sync_token_fn *fn, void *arg, long *seen,
                              long *changed, char *err, size_t errlen)
{
    *seen = *changed = 0;
    if (!store_sync_is_cluster(ss->c))
        return store_sync_bootstrap_scan(ss, ss->c, ss->addr, fn, arg, seen, changed, err, errlen);
    redisReply *slots = redisCommand(ss->c, "CLUSTER SLOTS");
    int rc = slots != NULL && slots->type == REDIS_REPLY_ARRAY ? 0 : -1;
    if (rc != 0)
        snprintf(err, errlen, "Redis at %s: CLUSTER SLOTS failed", ss->addr);
    for (size_t i = 0; rc == 0 && i < slots->elements; i++) {
        const redisReply *e = slots->element[i], *m = e->elements >= 3 ? e->element[2] : NULL;
        char addr[160];
        if (m == NULL || m->type != REDIS_REPLY_ARRAY || m->elements < 2 ||
            m->element[0]->type != REDIS_REPLY_STRING || m->element[1]->type != REDIS_REPLY_INTEGER)
            continue;
        snprintf(addr, sizeof(addr), "%s:%lld", m->element[0]->str, m->element[1]->integer);
        int again = 0; /* a master serving several ranges: scanned once */
        for (size_t j = 0; j < i && !again; j++) {
            const redisReply *o = slots->element[j], *om = o->elements >= 3 ? o->element[2] : NULL;
            again = om != NULL && om->type == REDIS_REPLY_ARRAY && om->elements >= 2 &&
                    om->element[1]->type == REDIS_REPLY_INTEGER &&
                    om->element[1]->integer == m->element[1]->integer &&
                    strcmp(om->element[0]->str, m->element[0]->str) == 0;
        }
        if (again)
            continue;
        redisContext *sc = store_sync_connect(addr, ss->timeout_ms);
        if (sc == NULL || sc->err != 0) {
            snprintf(err, errlen, "Redis at %s does not answer", addr);
            rc = -1;
        } else {
            rc = store_sync_bootstrap_scan(ss, sc, addr, fn, arg, seen, changed, err, errlen);
        }
        if (sc != NULL)
            redisFree(sc);
    }
    freeReplyObject(slots);
    return rc;
}
