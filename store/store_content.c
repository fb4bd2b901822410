/* store_content.c: published content and its assignment (store_content.h;
 * scripts store/lua/content_*.lua, provision*.lua). */
#include "store_content.h"
#include "../core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_fanout.h"
#include "store_int.h"
#include "store_mdm.h"

extern const char store_lua_content_put[], store_lua_content_list[], store_lua_content_get[],
    store_lua_content_del[], store_lua_content_assign[], store_lua_provision_items[],
    store_lua_provision[], store_lua_provision_due[];

static const char *const store_content_kinds[] = {"profile", "provprofile", "app"};

const char *store_content_kind_name(int kind)
{
    return kind >= 0 && kind < 3 ? store_content_kinds[kind] : "?";
}

static void store_content_result_reply(struct store_op *op, int err, const redisReply *r)
{
    store_content_result_fn *cb = op->cb.content_result;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type != REDIS_REPLY_INTEGER)
        err = MDMD_EPROTO;
    cb(op->arg, err, err == MDMD_OK ? (int)r->integer : 0);
}

struct store_op *store_content_put(struct store *s, int kind, const char *id,
                                   const struct store_kv *fields, size_t nfields, int64_t now_ms,
                                   store_content_result_fn *cb, void *arg)
{
    struct store_argv a;
    store_argv_init(&a);
    char now[24];
    const char *k = store_content_kind_name(kind);
    snprintf(now, sizeof(now), "%lld", (long long)now_ms);
    store_argv_gkey(&a, s, "%s:%s", k, id);
    store_argv_gkey(&a, s, "%ss", k);
    store_argv_str(&a, id);
    store_argv_str(&a, now);
    for (size_t i = 0; i < nfields; i++) {
        store_argv_str(&a, fields[i].key);
        store_argv_push(&a, fields[i].val, fields[i].len);
    }
    return store_argv_script(s, store_lua_content_put, 2, &a, store_content_result_reply,
                             (union store_cb){.content_result = cb}, arg);
}

/* ---- list / get ---- */

/* {fields, users} into it; the arrays it points to are caller-freed. */
static int store_content_item_of(const redisReply *e, struct store_content_item *it)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || !store_reply_strings(e->element[0]) ||
        e->element[0]->elements % 2 != 0 || !store_reply_strings(e->element[1]))
        return -1;
    const redisReply *f = e->element[0], *u = e->element[1];
    struct store_kv *kv = xcalloc(f->elements / 2 + 1, sizeof(*kv));
    const char **users = xcalloc(u->elements + 1, sizeof(*users));
    for (size_t i = 0; i + 1 < f->elements; i += 2)
        kv[i / 2] =
            (struct store_kv){f->element[i]->str, f->element[i + 1]->str, f->element[i + 1]->len};
    for (size_t i = 0; i < u->elements; i++)
        users[i] = u->element[i]->str;
    *it = (struct store_content_item){kv, f->elements / 2, users, u->elements};
    return 0;
}

static void store_content_items_reply(struct store_op *op, int err, const redisReply *r)
{
    store_content_fn *cb = op->cb.content;
    struct store_content_item *items = NULL;
    size_t n = 0;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type != REDIS_REPLY_ARRAY)
        err = MDMD_EPROTO;
    if (err == MDMD_OK) {
        items = xcalloc(r->elements + 1, sizeof(*items));
        for (size_t i = 0; i < r->elements && err == MDMD_OK; i++)
            if (store_content_item_of(r->element[i], &items[n]) == 0)
                n++;
            else
                err = MDMD_EPROTO;
    }
    cb(op->arg, err, err == MDMD_OK ? items : NULL, err == MDMD_OK ? n : 0);
    for (size_t i = 0; i < n; i++) {
        free((void *)items[i].kv);
        free((void *)items[i].users);
    }
    free(items);
}

struct store_op *store_content_list(struct store *s, int kind, store_content_fn *cb, void *arg)
{
    struct store_argv a;
    store_argv_init(&a);
    const char *k = store_content_kind_name(kind);
    store_argv_gkey(&a, s, "%ss", k);
    store_argv_gkey(&a, s, "%s:", k);
    store_argv_gkey(&a, s, "assign:%s:", k);
    return store_argv_script(s, store_lua_content_list, 3, &a, store_content_items_reply,
                             (union store_cb){.content = cb}, arg);
}

/* get answers {} or one {fields, users}: wrap it as a list of 0 or 1. */
static void store_content_get_reply(struct store_op *op, int err, const redisReply *r)
{
    store_content_fn *cb = op->cb.content;
    struct store_content_item it;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type == REDIS_REPLY_ARRAY && r->elements == 0) {
        cb(op->arg, MDMD_OK, NULL, 0);
        return;
    }
    if (err == MDMD_OK && store_content_item_of(r, &it) != 0)
        err = MDMD_EPROTO;
    if (err != MDMD_OK) {
        cb(op->arg, err, NULL, 0);
        return;
    }
    cb(op->arg, MDMD_OK, &it, 1);
    free((void *)it.kv);
    free((void *)it.users);
}

struct store_op *store_content_get(struct store *s, int kind, const char *id, store_content_fn *cb,
                                   void *arg)
{
    struct store_argv a;
    store_argv_init(&a);
    const char *k = store_content_kind_name(kind);
    store_argv_gkey(&a, s, "%s:%s", k, id);
    store_argv_gkey(&a, s, "assign:%s:%s", k, id);
    return store_argv_script(s, store_lua_content_get, 2, &a, store_content_get_reply,
                             (union store_cb){.content = cb}, arg);
}

struct store_op *store_content_del(struct store *s, int kind, const char *id,
                                   store_content_result_fn *cb, void *arg)
{
    struct store_argv a;
    store_argv_init(&a);
    const char *k = store_content_kind_name(kind);
    store_argv_gkey(&a, s, "%s:%s", k, id);
    store_argv_gkey(&a, s, "assign:%s:%s", k, id);
    store_argv_gkey(&a, s, "%ss", k);
    store_argv_str(&a, id);
    return store_argv_script(s, store_lua_content_del, 3, &a, store_content_result_reply,
                             (union store_cb){.content_result = cb}, arg);
}

/* ---- assignment ---- */

static void store_content_assign_reply(struct store_op *op, int err, const redisReply *r)
{
    store_assign_fn *cb = op->cb.assign;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type == REDIS_REPLY_STRING) {
        cb(op->arg, MDMD_OK, 0, NULL, 0);
        return;
    }
    if (err == MDMD_OK && !store_reply_strings(r))
        err = MDMD_EPROTO;
    if (err != MDMD_OK) {
        cb(op->arg, err, 0, NULL, 0);
        return;
    }
    const char **unknown = xcalloc(r->elements + 1, sizeof(*unknown));
    for (size_t i = 0; i < r->elements; i++)
        unknown[i] = r->element[i]->str;
    cb(op->arg, MDMD_OK, r->elements == 0 ? 1 : -1, unknown, r->elements);
    free(unknown);
}

struct store_op *store_content_assign(struct store *s, int kind, const char *id, int everyone,
                                      const char *const *users, size_t nusers, store_assign_fn *cb,
                                      void *arg)
{
    struct store_argv a;
    store_argv_init(&a);
    const char *k = store_content_kind_name(kind);
    store_argv_gkey(&a, s, "%s:%s", k, id);
    store_argv_gkey(&a, s, "assign:%s:%s", k, id);
    store_argv_gkey(&a, s, "user:");
    store_argv_str(&a, everyone ? "1" : "0");
    for (size_t i = 0; i < nusers; i++)
        store_argv_str(&a, users[i]);
    return store_argv_script(s, store_lua_content_assign, 3, &a, store_content_assign_reply,
                             (union store_cb){.assign = cb}, arg);
}

/* ---- post-enrollment ---- */

static int store_content_kind_of(const char *name)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(name, store_content_kinds[i]) == 0)
            return i;
    return -1;
}

/* {kind, id, body, manifest_url, itunes_store_id} rows as grants. */
static struct store_grant *store_content_grants_of(const redisReply *rows, size_t *n)
{
    struct store_grant *g = xcalloc(rows->elements + 1, sizeof(*g));
    *n = 0;
    for (size_t i = 0; i < rows->elements; i++) {
        const redisReply *e = rows->element[i];
        int kind = store_reply_strings(e) && e->elements == 5
                       ? store_content_kind_of(e->element[0]->str)
                       : -1;
        if (kind < 0)
            continue;
        g[(*n)++] = (struct store_grant){kind,
                                         e->element[1]->str,
                                         e->element[2]->str,
                                         e->element[2]->len,
                                         e->element[3]->str,
                                         e->element[4]->str};
    }
    return g;
}

static void store_content_grants_reply(struct store_op *op, int err, const redisReply *r)
{
    store_grants_fn *cb = op->cb.grants;
    err = store_reply_error(err, r);
    if (err == MDMD_OK &&
        (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
         r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY))
        err = MDMD_EPROTO;
    if (err != MDMD_OK) {
        cb(op->arg, err, "", NULL, 0);
        return;
    }
    size_t n;
    struct store_grant *g = store_content_grants_of(r->element[1], &n);
    cb(op->arg, MDMD_OK, r->element[0]->str, g, n);
    free(g);
}

/* The cluster layout: the record's user first (its slot), then
 * provision_items.lua on {g}. */
struct store_grants_run {
    struct store *s;
    store_grants_fn *cb;
    void *arg;
};

static void store_content_user_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_grants_run *g = op->arg;
    struct store *s = g->s;
    store_grants_fn *cb = g->cb;
    void *arg = g->arg;
    free(g);
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)
        err = MDMD_EPROTO;
    if (err != MDMD_OK) {
        cb(arg, err, "", NULL, 0);
        return;
    }
    struct store_argv a;
    store_argv_init(&a);
    store_argv_gkey(&a, s, "%s", "");
    store_argv_push(&a, r->type == REDIS_REPLY_STRING ? r->str : "",
                    r->type == REDIS_REPLY_STRING ? r->len : 0);
    store_argv_own(&a); /* r goes when this returns */
    (void)store_argv_script(s, store_lua_provision_items, 1, &a, store_content_grants_reply,
                            (union store_cb){.grants = cb}, arg);
}

struct store_op *store_content_grants(struct store *s, const char *udid, store_grants_fn *cb,
                                      void *arg)
{
    char dev[STORE_MDM_KEY_MAX];
    snprintf(dev, sizeof(dev), "mdm:dev:{%s}", udid);
    if (store_layout_cluster(s)) {
        struct store_grants_run *g = xcalloc(1, sizeof(*g));
        *g = (struct store_grants_run){s, cb, arg};
        const char *argv[] = {"HGET", dev, "user"};
        struct store_op *op = store_op_new(s, STORE_CB_NONE, g);
        return store_cmd_argv(s, 3, argv, NULL, store_content_user_reply, op);
    }
    struct store_argv a;
    store_argv_init(&a);
    store_argv_str(&a, "mdm:");
    store_argv_fmt(&a, "%s", dev);
    return store_argv_script(s, store_lua_provision_items, 2, &a, store_content_grants_reply,
                             (union store_cb){.grants = cb}, arg);
}

static void store_content_provision_reply(struct store_op *op, int err, const redisReply *r)
{
    store_provision_fn *cb = op->cb.provision;
    err = store_reply_error(err, r);
    if (err == MDMD_OK &&
        (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
         r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_ARRAY))
        err = MDMD_EPROTO;
    if (err != MDMD_OK) {
        cb(op->arg, err, 0, NULL);
        return;
    }
    const redisReply *t = r->element[1];
    struct store_push_target push;
    int wake = store_reply_strings(t) && t->elements == 4;
    if (wake)
        push = (struct store_push_target){t->element[0]->str, t->element[1]->str,
                                          t->element[2]->str, t->element[3]->str};
    cb(op->arg, MDMD_OK, (long)r->element[0]->integer, wake ? &push : NULL);
}

/* The cluster layout's provisioning (docs/REDIS.md, "Redis Cluster"): the
 * bodies first (cmd_put.lua on each mdm:cmd:<UUID>, all sent together),
 * then provision.lua in the device's slot, then each body's targets; the
 * device's queue and its mdm:cmdto:{UDID} as an enqueue (store_queue.c). */
struct store_prov {
    struct store *s;
    store_provision_fn *cb;
    void *arg;
    struct store_argv a; /* provision.lua's, owned */
    int pending, err;
    long queued;
    int wake;
    char *target[4];
};

static void store_prov_finish(struct store_prov *p)
{
    struct store_push_target push = {p->target[0], p->target[1], p->target[2], p->target[3]};
    p->cb(p->arg, p->err, p->err == MDMD_OK ? p->queued : 0,
          p->err == MDMD_OK && p->wake ? &push : NULL);
    for (int i = 0; i < 4; i++)
        free(p->target[i]);
    store_argv_free(&p->a);
    free(p);
}

static void store_prov_target_done(struct store_prov *p, int err)
{
    if (err != MDMD_OK && p->err == MDMD_OK)
        p->err = err;
    if (--p->pending == 0)
        store_prov_finish(p);
}

static void store_prov_targets_reply(struct store_op *op, int err, const redisReply *r)
{
    store_prov_target_done(op->arg, store_reply_error(err, r));
}

static void store_prov_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_prov *p = op->arg;
    err = store_reply_error(err, r);
    if (err == MDMD_OK &&
        (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
         r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_ARRAY))
        err = MDMD_EPROTO;
    p->err = err;
    if (err != MDMD_OK) {
        store_prov_finish(p);
        return;
    }
    const redisReply *t = r->element[1];
    p->queued = (long)r->element[0]->integer;
    p->wake = store_reply_strings(t) && t->elements == 4;
    for (int i = 0; p->wake && i < 4; i++)
        p->target[i] = xstrdup(t->element[i]->str);
    p->pending = 1; /* held until all are sent */
    for (int i = 6; p->queued > 0 && i + 2 < p->a.n; i += 3) {
        char key[STORE_MDM_KEY_MAX];
        snprintf(key, sizeof(key), "mdm:cmd:%.*s", (int)p->a.len[i], p->a.v[i]);
        const char *argv[] = {"HINCRBY", key, "targets", "1"};
        p->pending++;
        struct store_op *o = store_op_new(p->s, STORE_CB_NONE, p);
        (void)store_cmd_argv(p->s, 4, argv, NULL, store_prov_targets_reply, o);
    }
    store_prov_target_done(p, MDMD_OK);
}

static void store_prov_body_done(struct store_prov *p, int err)
{
    if (err != MDMD_OK && p->err == MDMD_OK)
        p->err = err;
    if (--p->pending > 0)
        return;
    if (p->err != MDMD_OK) {
        store_prov_finish(p);
        return;
    }
    /* The plists stay out of provision.lua's call: its KEYS dev q cmdto. */
    struct store_argv b;
    store_argv_init(&b);
    for (int i = 0; i < p->a.n; i++)
        if (i < 6 || (i - 6) % 3 != 2)
            store_argv_push(&b, p->a.v[i], p->a.len[i]);
        else
            store_argv_str(&b, "");
    (void)store_argv_fx_script(p->s, store_lua_provision, 3, &b, store_prov_reply, STORE_CB_NONE,
                               p);
}

/* cmd_put.lua: 1 stored (or the same body before), 0 another body there. */
static void store_prov_body_reply(struct store_op *op, int err, const redisReply *r)
{
    err = store_reply_error(err, r);
    if (err == MDMD_OK && (r->type != REDIS_REPLY_INTEGER || r->integer != 1))
        err = MDMD_EPROTO; /* a fresh UUID taken: a broken RNG */
    store_prov_body_done(op->arg, err);
}

static struct store_op *store_prov_cluster(struct store *s, struct store_argv *a, const char *now,
                                           const char *ttl, store_provision_fn *cb, void *arg)
{
    extern const char store_lua_cmd_put[];
    struct store_prov *p = xcalloc(1, sizeof(*p));
    p->s = s;
    p->cb = cb;
    p->arg = arg;
    store_argv_init(&p->a);
    for (int i = 0; i < a->n; i++)
        store_argv_push(&p->a, a->v[i], a->len[i]);
    store_argv_own(&p->a);
    store_argv_free(a);
    p->pending = 1;
    for (int i = 6; i + 2 < p->a.n; i += 3) {
        struct store_argv c;
        store_argv_init(&c);
        store_argv_fmt(&c, "mdm:cmd:%.*s", (int)p->a.len[i], p->a.v[i]);
        store_argv_push(&c, p->a.v[i + 2], p->a.len[i + 2]);
        store_argv_push(&c, p->a.v[i + 1], p->a.len[i + 1]);
        store_argv_str(&c, now);
        store_argv_str(&c, ttl);
        p->pending++;
        (void)store_argv_script(s, store_lua_cmd_put, 1, &c, store_prov_body_reply, STORE_CB_NONE,
                                p);
    }
    store_prov_body_done(p, MDMD_OK);
    return NULL;
}

struct store_op *store_content_provision(struct store *s, const char *udid,
                                         const struct store_cmd *cmds, size_t n, int64_t now_ms,
                                         int ttl_s, store_provision_fn *cb, void *arg)
{
    struct store_argv a;
    store_argv_init(&a);
    char now[24], ttl[16];
    snprintf(now, sizeof(now), "%lld", (long long)now_ms);
    snprintf(ttl, sizeof(ttl), "%d", ttl_s);
    int cluster = store_layout_cluster(s);
    store_argv_fmt(&a, "mdm:dev:{%s}", udid);
    store_argv_fmt(&a, "mdm:q:{%s}", udid);
    if (cluster) {
        store_argv_fmt(&a, "mdm:cmdto:{%s}", udid);
    } else {
        store_argv_str(&a, "mdm:cmd:");
        store_argv_str(&a, "mdm:cmdto:");
    }
    store_argv_str(&a, udid);
    store_argv_str(&a, now);
    store_argv_str(&a, ttl);
    for (size_t i = 0; i < n; i++) {
        store_argv_str(&a, cmds[i].uuid);
        store_argv_str(&a, cmds[i].request_type);
        store_argv_push(&a, cmds[i].plist, cmds[i].plist_len);
    }
    if (cluster)
        return store_prov_cluster(s, &a, now, ttl, cb, arg);
    return store_argv_fx_script(s, store_lua_provision, 4, &a, store_content_provision_reply,
                                (union store_cb){.provision = cb}, arg);
}

static void store_content_due_reply(struct store_op *op, int err, const redisReply *r)
{
    store_udids_fn *cb = op->cb.udids;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && !store_reply_strings(r))
        err = MDMD_EPROTO;
    if (err != MDMD_OK) {
        cb(op->arg, err, NULL, 0);
        return;
    }
    const char **v = xcalloc(r->elements + 1, sizeof(*v));
    for (size_t i = 0; i < r->elements; i++)
        v[i] = r->element[i]->str;
    cb(op->arg, MDMD_OK, v, r->elements);
    free(v);
}

struct store_op *store_content_provision_due(struct store *s, int64_t now_ms, int64_t before_ms,
                                             int limit, store_udids_fn *cb, void *arg)
{
    struct store_argv a;
    if (store_layout_cluster(s)) /* the timer walks the 64 buckets */
        return store_fan_claim(s, store_lua_provision_due, "mdm:provision", now_ms, before_ms,
                               limit, cb, arg);
    store_argv_init(&a);
    store_argv_str(&a, "mdm:provision");
    store_argv_fmt(&a, "%lld", (long long)now_ms);
    store_argv_fmt(&a, "%lld", (long long)before_ms);
    store_argv_fmt(&a, "%d", limit);
    return store_argv_script(s, store_lua_provision_due, 1, &a, store_content_due_reply,
                             (union store_cb){.udids = cb}, arg);
}
