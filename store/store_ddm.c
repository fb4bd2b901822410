/* store_ddm.c: the declarative-management scripts (store_ddm.h). */
#include "store_ddm.h"
#include "../core/util.h"

#include <string.h>

#include "store_fanout.h"
#include "store_int.h"
#include "store_mdm.h"

extern const char store_lua_ddm_tokens[], store_lua_ddm_items[], store_lua_ddm_fetch[],
    store_lua_ddm_status[], store_lua_ddm_status_get[], store_lua_ddm_fleet[],
    store_lua_ddm_decl_put[], store_lua_ddm_decl_get[], store_lua_ddm_decl_list[],
    store_lua_ddm_decl_del[], store_lua_ddm_set_put[], store_lua_ddm_set_get[],
    store_lua_ddm_set_list[], store_lua_ddm_set_del[], store_lua_ddm_set_assign[],
    store_lua_ddm_notify[], store_lua_ddm_asset_put[], store_lua_ddm_asset_get[],
    store_lua_ddm_asset_list[], store_lua_ddm_asset_del[], store_lua_ddm_asset_fetch[];

static const char *const store_ddm_lua[STORE_DDM_N] = {
    [STORE_DDM_TOKENS] = store_lua_ddm_tokens,
    [STORE_DDM_ITEMS] = store_lua_ddm_items,
    [STORE_DDM_FETCH] = store_lua_ddm_fetch,
    [STORE_DDM_STATUS] = store_lua_ddm_status,
    [STORE_DDM_STATUS_GET] = store_lua_ddm_status_get,
    [STORE_DDM_FLEET] = store_lua_ddm_fleet,
    [STORE_DDM_DECL_PUT] = store_lua_ddm_decl_put,
    [STORE_DDM_DECL_GET] = store_lua_ddm_decl_get,
    [STORE_DDM_DECL_LIST] = store_lua_ddm_decl_list,
    [STORE_DDM_DECL_DEL] = store_lua_ddm_decl_del,
    [STORE_DDM_SET_PUT] = store_lua_ddm_set_put,
    [STORE_DDM_SET_GET] = store_lua_ddm_set_get,
    [STORE_DDM_SET_LIST] = store_lua_ddm_set_list,
    [STORE_DDM_SET_DEL] = store_lua_ddm_set_del,
    [STORE_DDM_SET_ASSIGN] = store_lua_ddm_set_assign,
    [STORE_DDM_NOTIFY] = store_lua_ddm_notify,
    [STORE_DDM_ASSET_PUT] = store_lua_ddm_asset_put,
    [STORE_DDM_ASSET_GET] = store_lua_ddm_asset_get,
    [STORE_DDM_ASSET_LIST] = store_lua_ddm_asset_list,
    [STORE_DDM_ASSET_DEL] = store_lua_ddm_asset_del,
    [STORE_DDM_ASSET_FETCH] = store_lua_ddm_asset_fetch,
};

#define STORE_DDM_DEPTH 8 /* the scripts nest three deep */

static json_t *store_ddm_json(const redisReply *r, int depth)
{
    switch (r->type) {
    case REDIS_REPLY_INTEGER: return json_integer(r->integer);
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS: return json_stringn_nocheck(r->str, r->len);
    case REDIS_REPLY_ARRAY: {
        json_t *a = json_array();
        for (size_t i = 0; i < r->elements && depth < STORE_DDM_DEPTH; i++)
            json_array_append_new(a, store_ddm_json(r->element[i], depth + 1));
        return a;
    }
    default: return json_null();
    }
}

static void store_ddm_reply(struct store_op *op, int err, const redisReply *r)
{
    store_ddm_fn *cb = op->cb.ddm;
    err = store_reply_error(err, r);
    json_t *j = err == MDMD_OK ? store_ddm_json(r, 0) : NULL;
    cb(op->arg, err, j);
    json_decref(j);
}

/* ---- keys ---------------------------------------------------------------- */

/* The fleet's DDM configuration, in ddm_g() order (prelude.lua): one slot,
 * {g}, in the cluster layout. */
static void store_ddm_gkeys(struct store *s, struct store_argv *a)
{
    static const char *const rest[] = {
        "ddm:decls", "ddm:decl:",  "ddm:sets",   "ddm:set:", "ddm:everyone",
        "ddm:user:", "ddm:assets", "ddm:asset:", "user:"};
    for (size_t i = 0; i < ARRAY_LEN(rest); i++)
        store_argv_gkey(a, s, "%s", rest[i]);
}

/* One enrollment's keys, in ddm_d() order: all in the device's slot, and in
 * the single layout the registry's prefix key (the identity check).  Returns
 * how many: 8, or 7 in the cluster layout. */
static int store_ddm_dkeys(const struct store *s, struct store_argv *a, const char *udid,
                           const char *uid)
{
    static const char *const what[] = {"en", "sets", "status", "dstatus", "invalid", "reports"};
    store_argv_fmt(a, "mdm:dev:{%s}", udid);
    for (size_t i = 0; i < ARRAY_LEN(what); i++)
        store_argv_fmt(a, "mdm:ddm:%s:{%s}%s%s", what[i], udid, *uid != '\0' ? ":" : "", uid);
    if (store_layout_cluster(s))
        return 7;
    store_argv_str(a, "mdm:cert:");
    return 8;
}

/* An enrollment id's ("UDID" or "UDID:UserID") set of sets. */
static void store_ddm_sets_key(struct store_argv *a, const char *eid)
{
    const char *colon = strchr(eid, ':');
    if (colon == NULL)
        store_argv_fmt(a, "mdm:ddm:sets:{%s}", eid);
    else
        store_argv_fmt(a, "mdm:ddm:sets:{%.*s}%s", (int)(colon - eid), eid, colon);
}

/* ---- one call --------------------------------------------------------------- */

/* The scripts of the cluster layout's split calls (store_ddm_chain). */
extern const char store_lua_ddm_effective[], store_lua_ddm_dev_token[];

/* Sends lua (or, lua NULL, the plain command in a) with its reply as JSON to
 * cb; fx: a device script with fleet writes (store_argv_fx_script). */
static struct store_op *store_ddm_send(struct store *s, const char *lua, int fx, int nkeys,
                                       struct store_argv *a, store_ddm_fn *cb, void *arg)
{
    union store_cb u = {.ddm = cb};
    if (lua == NULL) {
        struct store_op *op = store_op_new(s, u, arg);
        op = store_cmd_argv(s, a->n, a->v, a->len, store_ddm_reply, op);
        store_argv_free(a);
        return op;
    }
    if (fx)
        return store_argv_fx_script(s, lua, nkeys, a, store_ddm_reply, u, arg);
    return store_argv_script(s, lua, nkeys, a, store_ddm_reply, u, arg);
}

/* The keys each script takes before its ARGV, in the layout; returns nkeys.
 * *fx: a device script with fleet writes. */
static int store_ddm_keys(struct store *s, int script, int argc, const char *const *argv,
                          struct store_argv *a, int *fx)
{
    int cluster = store_layout_cluster(s);
    *fx = 0;
    switch (script) {
    case STORE_DDM_TOKENS:
    case STORE_DDM_ITEMS:
    case STORE_DDM_FETCH: /* single layout: one call; the cluster's is store_ddm_chain */
        store_ddm_dkeys(s, a, argv[0], argv[1]);
        store_ddm_gkeys(s, a);
        *fx = 1;
        return 17;
    case STORE_DDM_STATUS: *fx = 1; return store_ddm_dkeys(s, a, argv[0], argv[1]);
    case STORE_DDM_STATUS_GET: return store_ddm_dkeys(s, a, argv[0], argv[1]);
    case STORE_DDM_ASSET_FETCH:
        store_argv_fmt(a, "mdm:dev:{%s}", argv[0]);
        store_argv_gkey(a, s, "ddm:asset:");
        store_argv_str(a, "mdm:cert:");
        return 3;
    case STORE_DDM_FLEET: /* single layout: the cluster's is store_fan_ddm_fleet */
        store_argv_str(a, "mdm:ddm:failed");
        store_argv_str(a, "mdm:ddm:enrollments");
        store_argv_str(a, "mdm:ddm:invalid:");
        store_argv_str(a, "mdm:ddm:status:");
        return 4;
    case STORE_DDM_NOTIFY: { /* single layout: the cluster's is store_ddm_notify.c's */
        static const char *const pre[] = {
            "mdm:devices",   "mdm:stats", "mdm:dev:",    "mdm:q:",       "mdm:notnow:",
            "mdm:channels:", "mdm:cmd:",  "mdm:ddm:en:", "mdm:ddm:sets:"};
        store_argv_str(a, argv[0]);
        for (size_t i = 0; i < ARRAY_LEN(pre); i++)
            store_argv_str(a, pre[i]);
        store_ddm_gkeys(s, a);
        return 19;
    }
    case STORE_DDM_SET_ASSIGN:
        store_ddm_gkeys(s, a);
        if (cluster)
            return 9;
        store_argv_str(a, "mdm:dev:");
        store_argv_str(a, "mdm:ddm:sets:");
        return 11;
    case STORE_DDM_SET_DEL:
        store_ddm_gkeys(s, a);
        if (cluster)
            return 9;
        store_argv_str(a, "mdm:ddm:sets:");
        return 10;
    default: store_ddm_gkeys(s, a); return 9;
    }
}

/* ---- the cluster layout's split calls -------------------------------------- */

/* A device request whose data lives in two slots (the enrollment's and the
 * configuration's {g}) runs as calls in turn; a set's assignment touches
 * every target device's slot.  The caller's cb gets the reply the single
 * layout's one script gives, so handlers see one shape.  Not atomic across
 * the slots: docs/REDIS.md, "Redis Cluster". */
struct store_ddm_chain {
    struct store *s;
    int script;
    store_ddm_fn *cb;
    void *arg;
    int argc;
    char **argv;
    json_t *acc;   /* what earlier steps found */
    int pending;   /* fanned-out calls not answered yet */
    int err;       /* the first error among them */
    char *unknown; /* set_assign: per target, 1 when its device is unknown */
};

static void store_ddm_chain_end(struct store_ddm_chain *c, int err, json_t *reply)
{
    c->cb(c->arg, err, err == MDMD_OK ? reply : NULL);
    for (int i = 0; i < c->argc; i++)
        free(c->argv[i]);
    free(c->argv);
    free(c->unknown);
    json_decref(c->acc);
    free(c);
}

/* The last step of a fan-out: called once per answered call. */
static int store_ddm_chain_joined(struct store_ddm_chain *c, int err)
{
    if (err != MDMD_OK && c->err == MDMD_OK)
        c->err = err;
    return --c->pending == 0;
}

static void store_ddm_chain_token(void *arg, int err, json_t *r)
{
    struct store_ddm_chain *c = arg;
    if (err == MDMD_OK && !json_is_string(r))
        err = MDMD_EPROTO;
    if (err != MDMD_OK) {
        store_ddm_chain_end(c, err, NULL);
        return;
    }
    json_t *out = json_pack("[sOO]", "ok", json_array_get(c->acc, 0),
                            c->script == STORE_DDM_TOKENS ? r : json_array_get(c->acc, 1));
    store_ddm_chain_end(c, MDMD_OK, out);
    json_decref(out);
}

static void store_ddm_chain_effective(void *arg, int err, json_t *r)
{
    struct store_ddm_chain *c = arg;
    if (err == MDMD_OK && (!json_is_array(r) || json_array_size(r) != 3))
        err = MDMD_EPROTO;
    if (err != MDMD_OK) {
        store_ddm_chain_end(c, err, NULL);
        return;
    }
    if (c->script == STORE_DDM_FETCH) {
        const char *json = json_string_value(json_array_get(r, 2));
        json_t *out =
            json != NULL && *json != '\0' ? json_pack("[ss]", "ok", json) : json_pack("[s]", "ok");
        store_ddm_chain_end(c, MDMD_OK, out);
        json_decref(out);
        return;
    }
    c->acc = json_incref(r);
    struct store_argv a;
    store_argv_init(&a);
    int nkeys = store_ddm_dkeys(c->s, &a, c->argv[0], c->argv[1]);
    store_argv_str(&a, json_string_value(json_array_get(r, 0)));
    store_argv_str(&a, c->argv[4]);
    store_argv_str(&a, c->script == STORE_DDM_ITEMS ? "1" : "0");
    store_argv_str(&a, c->argv[3]);
    store_ddm_send(c->s, store_lua_ddm_dev_token, 0, nkeys, &a, store_ddm_chain_token, c);
}

static void store_ddm_chain_begun(void *arg, int err, json_t *r)
{
    struct store_ddm_chain *c = arg;
    const char *st = json_string_value(json_array_get(r, 0));
    if (err == MDMD_OK && st == NULL)
        err = MDMD_EPROTO;
    if (err != MDMD_OK || strcmp(st, "ok") != 0) { /* an identity failure as it is */
        store_ddm_chain_end(c, err, r);
        return;
    }
    json_t *own = json_array_get(r, 2);
    struct store_argv a;
    size_t i;
    json_t *v;
    store_argv_init(&a);
    store_ddm_gkeys(c->s, &a);
    store_argv_str(&a, c->argv[1]);
    store_argv_str(&a, json_string_value(json_array_get(r, 1)) ?: "");
    store_argv_str(&a, c->script == STORE_DDM_FETCH ? c->argv[4] : "");
    store_argv_str(&a, c->script == STORE_DDM_FETCH ? c->argv[5] : "");
    json_array_foreach(own, i, v) if (json_is_string(v)) store_argv_str(&a, json_string_value(v));
    store_ddm_send(c->s, store_lua_ddm_effective, 0, 9, &a, store_ddm_chain_effective, c);
}

static void store_ddm_chain_asset(void *arg, int err, json_t *r)
{
    struct store_ddm_chain *c = arg;
    json_t *out = NULL;
    if (err == MDMD_OK && !json_is_array(r))
        err = MDMD_EPROTO;
    if (err == MDMD_OK)
        out = json_is_string(json_array_get(r, 1))
                  ? json_pack("[sOO]", "ok", json_array_get(r, 0), json_array_get(r, 1))
                  : json_pack("[s]", "ok");
    store_ddm_chain_end(c, err, out);
    json_decref(out);
}

static void store_ddm_chain_ident(void *arg, int err, json_t *r)
{
    struct store_ddm_chain *c = arg;
    const char *st = json_string_value(json_array_get(r, 0));
    if (err == MDMD_OK && st == NULL)
        err = MDMD_EPROTO;
    if (err != MDMD_OK || strcmp(st, "ok") != 0) {
        store_ddm_chain_end(c, err, r);
        return;
    }
    struct store_argv a;
    store_argv_init(&a);
    store_argv_str(&a, "HMGET");
    store_argv_gkey(&a, c->s, "ddm:asset:%s", c->argv[2]);
    store_argv_str(&a, "content_type");
    store_argv_str(&a, "body");
    store_ddm_send(c->s, NULL, 0, 0, &a, store_ddm_chain_asset, c);
}

/* set_assign and set_del, last step: each enrollment's set of sets. */
static void store_ddm_chain_moved(void *arg, int err, json_t *r)
{
    struct store_ddm_chain *c = arg;
    (void)r;
    if (!store_ddm_chain_joined(c, err))
        return;
    json_t *out = c->script == STORE_DDM_SET_DEL ? json_integer(1) : json_array();
    store_ddm_chain_end(c, c->err, out);
    json_decref(out);
}

/* One SADD/SREM of name on an enrollment's set of sets. */
static void store_ddm_chain_move(struct store_ddm_chain *c, const char *verb, const char *eid)
{
    struct store_argv a;
    store_argv_init(&a);
    store_argv_str(&a, verb);
    store_ddm_sets_key(&a, eid);
    store_argv_str(&a, c->argv[0]);
    c->pending++;
    store_ddm_send(c->s, NULL, 0, 0, &a, store_ddm_chain_moved, c);
}

/* 1 when the {g} step of set_assign or set_del reports a change made:
 * {'', old target...} (assign) or {1, target...} (del); the rest (not_found,
 * unknown users, 0) is the answer as it is. */
static int store_ddm_chain_changed(const struct store_ddm_chain *c, json_t *r)
{
    json_t *first = json_array_get(r, 0);
    if (c->script == STORE_DDM_SET_DEL)
        return json_is_integer(first);
    return json_is_string(first) && *json_string_value(first) == '\0';
}

static void store_ddm_chain_assigned(void *arg, int err, json_t *r)
{
    struct store_ddm_chain *c = arg;
    if (err != MDMD_OK || !store_ddm_chain_changed(c, r)) {
        store_ddm_chain_end(c, err, r);
        return;
    }
    /* Old targets leave first: a target kept is SREM'd then SADD'ed, in
     * that order on its node's connection. */
    int nt = c->script == STORE_DDM_SET_ASSIGN ? atoi(c->argv[3]) : 0;
    size_t i;
    json_t *v;
    c->pending = 1; /* held until every call is sent */
    c->err = MDMD_OK;
    json_array_foreach(r, i, v)
    {
        if (i > 0 && json_is_string(v))
            store_ddm_chain_move(c, "SREM", json_string_value(v));
    }
    for (int k = 0; k < nt; k++)
        store_ddm_chain_move(c, "SADD", c->argv[4 + k]);
    store_ddm_chain_moved(c, MDMD_OK, NULL);
}

/* Some target devices are unknown: nothing changes; the answer lists them,
 * then the unknown users, as the single layout's script does. */
static void store_ddm_chain_dry(void *arg, int err, json_t *r)
{
    struct store_ddm_chain *c = arg;
    if (err != MDMD_OK || !json_is_array(r)) {
        store_ddm_chain_end(c, err, r);
        return;
    }
    json_t *out = json_array();
    for (int k = 0; k < atoi(c->argv[3]); k++)
        if (c->unknown[k])
            json_array_append_new(out, json_string(c->argv[4 + k]));
    json_array_extend(out, r);
    store_ddm_chain_end(c, MDMD_OK, out);
    json_decref(out);
}

static void store_ddm_chain_assign_run(struct store_ddm_chain *c)
{
    int nt = atoi(c->argv[3]), dry = 0;
    for (int k = 0; k < nt; k++)
        dry |= c->unknown[k];
    struct store_argv a;
    store_argv_init(&a);
    store_ddm_gkeys(c->s, &a);
    store_argv_str(&a, dry ? "1" : "0");
    for (int i = 0; i < c->argc; i++)
        store_argv_str(&a, c->argv[i]);
    if (!dry) {
        store_ddm_send(c->s, store_ddm_lua[STORE_DDM_SET_ASSIGN], 0, 9, &a,
                       store_ddm_chain_assigned, c);
        return;
    }
    store_ddm_send(c->s, store_ddm_lua[STORE_DDM_SET_ASSIGN], 0, 9, &a, store_ddm_chain_dry, c);
}

/* Which target devices exist: one EXISTS per target, each on its slot. */
struct store_ddm_probe {
    struct store_ddm_chain *c;
    int k;
};

static void store_ddm_chain_probe_join(struct store_ddm_chain *c, int err)
{
    if (!store_ddm_chain_joined(c, err))
        return;
    if (c->err != MDMD_OK)
        store_ddm_chain_end(c, c->err, NULL);
    else
        store_ddm_chain_assign_run(c);
}

static void store_ddm_chain_probed(void *arg, int err, json_t *r)
{
    struct store_ddm_probe *p = arg;
    struct store_ddm_chain *c = p->c;
    if (err == MDMD_OK && !json_is_integer(r))
        err = MDMD_EPROTO;
    if (err == MDMD_OK && json_integer_value(r) == 0)
        c->unknown[p->k] = 1;
    free(p);
    store_ddm_chain_probe_join(c, err);
}

static void store_ddm_chain_assign(struct store_ddm_chain *c)
{
    int nt = atoi(c->argv[3]);
    c->unknown = xcalloc((size_t)nt + 1, 1);
    c->pending = 1;
    for (int k = 0; k < nt && 4 + k < c->argc; k++) {
        struct store_ddm_probe *p = xcalloc(1, sizeof(*p));
        struct store_argv a;
        *p = (struct store_ddm_probe){c, k};
        store_argv_init(&a);
        store_argv_str(&a, "EXISTS");
        store_argv_fmt(&a, "mdm:dev:{%.*s}", (int)strcspn(c->argv[4 + k], ":"), c->argv[4 + k]);
        c->pending++;
        store_ddm_send(c->s, NULL, 0, 0, &a, store_ddm_chain_probed, p);
    }
    store_ddm_chain_probe_join(c, MDMD_OK); /* the hold taken above */
}

/* The cluster layout's split calls: the first step (store_ddm_chain). */
static struct store_op *store_ddm_chain(struct store *s, int script, int argc,
                                        const char *const *argv, const size_t *lens,
                                        store_ddm_fn *cb, void *arg)
{
    struct store_ddm_chain *c = xcalloc(1, sizeof(*c));
    struct store_argv a;
    c->s = s;
    c->script = script;
    c->cb = cb;
    c->arg = arg;
    c->argc = argc;
    c->argv = xcalloc((size_t)argc + 1, sizeof(char *));
    for (int i = 0; i < argc; i++)
        c->argv[i] = xstrndup(argv[i], lens != NULL ? lens[i] : strlen(argv[i]));
    store_argv_init(&a);
    switch (script) {
    case STORE_DDM_SET_ASSIGN: store_ddm_chain_assign(c); return NULL;
    case STORE_DDM_SET_DEL:
        store_ddm_gkeys(s, &a);
        store_argv_str(&a, c->argv[0]);
        return store_ddm_send(s, store_ddm_lua[script], 0, 9, &a, store_ddm_chain_assigned, c);
    case STORE_DDM_ASSET_FETCH:
        store_argv_fmt(&a, "mdm:dev:{%s}", c->argv[0]);
        for (int i = 0; i < 3; i++)
            store_argv_str(&a, c->argv[i]);
        return store_ddm_send(s, store_ddm_lua[script], 0, 1, &a, store_ddm_chain_ident, c);
    default: break; /* tokens, items, fetch */
    }
    int nkeys = store_ddm_dkeys(s, &a, c->argv[0], c->argv[1]);
    for (int i = 0; i < argc; i++)
        store_argv_str(&a, c->argv[i]);
    return store_ddm_send(s, store_ddm_lua[script], 1, nkeys, &a, store_ddm_chain_begun, c);
}

/* 1 for the scripts the cluster layout splits into calls on several slots. */
static int store_ddm_split(const struct store *s, int script)
{
    if (!store_layout_cluster(s))
        return 0;
    return script == STORE_DDM_TOKENS || script == STORE_DDM_ITEMS || script == STORE_DDM_FETCH ||
           script == STORE_DDM_ASSET_FETCH || script == STORE_DDM_SET_ASSIGN ||
           script == STORE_DDM_SET_DEL;
}

/* The device scripts' ARGV start with udid user_id (asset_fetch: udid). */
static int store_ddm_args_ok(int script, int argc)
{
    switch (script) {
    case STORE_DDM_TOKENS:
    case STORE_DDM_ITEMS: return argc >= 5;
    case STORE_DDM_FETCH: return argc >= 6;
    case STORE_DDM_STATUS:
    case STORE_DDM_STATUS_GET: return argc >= 2;
    case STORE_DDM_ASSET_FETCH: return argc >= 3;
    case STORE_DDM_NOTIFY: return argc >= 1;
    case STORE_DDM_SET_ASSIGN: return argc >= 4;
    case STORE_DDM_SET_DEL: return argc >= 1;
    default: return 1;
    }
}

struct store_op *store_ddm(struct store *s, int script, int argc, const char *const *argv,
                           const size_t *lens, store_ddm_fn *cb, void *arg)
{
    struct store_argv a;
    int fx;
    if (!store_ddm_args_ok(script, argc)) {
        cb(arg, MDMD_EPROTO, NULL);
        return NULL;
    }
    if (store_ddm_split(s, script))
        return store_ddm_chain(s, script, argc, argv, lens, cb, arg);
    if (script == STORE_DDM_NOTIFY && store_layout_cluster(s)) /* calls per slot */
        return store_ddm_notify_cluster(s, argc, argv, cb, arg);
    if (script == STORE_DDM_FLEET && store_layout_cluster(s) && argc >= 6) /* the buckets */
        return store_fan_ddm_fleet(s, argv[0], argv[1], argv[2], atol(argv[3]), atoi(argv[4]),
                                   atol(argv[5]), cb, arg);
    store_argv_init(&a);
    int nkeys = store_ddm_keys(s, script, argc, argv, &a, &fx);
    int skip = script == STORE_DDM_NOTIFY; /* its key was ARGV[0] */
    for (int i = skip; i < argc; i++)
        store_argv_push(&a, argv[i], lens != NULL ? lens[i] : strlen(argv[i]));
    return store_ddm_send(s, store_ddm_lua[script], fx, nkeys, &a, cb, arg);
}

int store_ddm_ident(json_t *reply)
{
    static const struct {
        const char *s;
        int ident;
    } map[] = {{"ok", STORE_ID_OK},
               {"unknown", STORE_ID_UNKNOWN},
               {"checked_out", STORE_ID_CHECKED_OUT},
               {"cert_mismatch", STORE_ID_CERT_MISMATCH},
               {"revoked", STORE_ID_REVOKED}};
    const char *s = json_string_value(json_array_get(reply, 0));
    for (size_t i = 0; s != NULL && i < ARRAY_LEN(map); i++)
        if (strcmp(s, map[i].s) == 0)
            return map[i].ident;
    return STORE_ID_UNKNOWN;
}
