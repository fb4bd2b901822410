/* store_checkin.c: the rest of the check-in protocol in Redis
 * (store_checkin.h); one Lua call per message. */
#include "store_checkin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

extern const char store_lua_user_token_update[], store_lua_bootstrap_set[],
    store_lua_bootstrap_get[], store_lua_rts_get[], store_lua_token_source_get[],
    store_lua_hash_replace[], store_lua_ident[], store_lua_migrate[];

#define STORE_CHECKIN_MAXV 16

/* The values of an array reply from element first on. */
static void store_checkin_values(struct store_op *op, int err, const redisReply *r, size_t first)
{
    store_values_fn *cb = op->cb.values;
    const char *v[STORE_CHECKIN_MAXV];
    size_t len[STORE_CHECKIN_MAXV], n = 0;
    int ident = STORE_ID_OK;
    if (err == MDMD_OK && first == 1)
        ident = store_mdm_ident(r->element[0]->str, r->element[0]->len);
    for (size_t i = first; err == MDMD_OK && i < r->elements && n < STORE_CHECKIN_MAXV; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_STRING && e->type != REDIS_REPLY_NIL) {
            err = MDMD_EPROTO;
            break;
        }
        v[n] = e->type == REDIS_REPLY_STRING ? e->str : NULL;
        len[n++] = e->type == REDIS_REPLY_STRING ? e->len : 0;
    }
    cb(op->arg, err, ident, v, len, err == MDMD_OK ? n : 0);
}

/* A script's {status, values...}: status "ok" or an identity failure. */
static void store_checkin_script_reply(struct store_op *op, int err, const redisReply *r)
{
    err = store_reply_error(err, r);
    if (err == MDMD_OK && (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
                           r->element[0]->type != REDIS_REPLY_STRING))
        err = MDMD_EPROTO;
    store_checkin_values(op, err, r, 1);
}

/* A plain array (HGETALL, SMEMBERS). */
static void store_checkin_array_reply(struct store_op *op, int err, const redisReply *r)
{
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type != REDIS_REPLY_ARRAY)
        err = MDMD_EPROTO;
    store_checkin_values(op, err, r, 0);
}

static void store_checkin_status_reply(struct store_op *op, int err, const redisReply *r)
{
    int ident = STORE_ID_OK, enrolled = 0;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type == REDIS_REPLY_STRING) {
        ident = store_mdm_ident(r->str, r->len);
        enrolled = r->len == 8 && memcmp(r->str, "enrolled", 8) == 0;
    } else if (err == MDMD_OK) {
        err = MDMD_EPROTO;
    }
    op->cb.checkin(op->arg, err, ident, enrolled);
}

static void store_checkin_key(struct store_argv *a, const char *kind, const char *id)
{
    char key[STORE_MDM_KEY_MAX];
    store_mdm_key(key, sizeof(key), kind, id);
    store_argv_fmt(a, "%s", key); /* copied: store_argv_str would borrow key */
}

/* The device part of a channel id. */
static void store_checkin_device(char *out, size_t n, const char *id)
{
    snprintf(out, n, "%.*s", (int)strcspn(id, ":"), id);
}

struct store_op *store_user_token_update(struct store *s, const struct store_device_msg *m,
                                         store_checkin_fn *cb, void *arg)
{
    char udid[UTIL_CHANNEL_MAX];
    const char *colon = strchr(m->udid, ':');
    struct store_argv a;
    store_checkin_device(udid, sizeof(udid), m->udid);
    store_argv_init(&a);
    store_checkin_key(&a, "dev", m->udid);
    store_checkin_key(&a, "dev", udid);
    store_checkin_key(&a, "channels", udid);
    store_cert_prefix(s, &a);
    int nkeys = a.n;
    store_argv_str(&a, m->udid);
    store_argv_str(&a, udid);
    store_argv_str(&a, colon != NULL ? colon + 1 : "");
    store_argv_fmt(&a, "%lld", (long long)m->now_ms);
    store_argv_str(&a, m->cert_fp);
    for (size_t i = 0; i < m->nfields; i++) {
        store_argv_str(&a, m->fields[i].key);
        store_argv_push(&a, m->fields[i].val, m->fields[i].len);
    }
    return store_argv_fx_script(s, store_lua_user_token_update, nkeys, &a,
                                store_checkin_status_reply, (union store_cb){.checkin = cb}, arg);
}

struct store_op *store_bootstrap_set(struct store *s, const struct store_device_msg *m,
                                     const char *sealed, const char *awaiting, store_checkin_fn *cb,
                                     void *arg)
{
    struct store_argv a;
    store_argv_init(&a);
    store_checkin_key(&a, "dev", m->udid);
    store_cert_prefix(s, &a);
    int nkeys = a.n;
    store_argv_str(&a, m->udid);
    store_argv_fmt(&a, "%lld", (long long)m->now_ms);
    store_argv_str(&a, m->cert_fp);
    store_argv_str(&a, sealed);
    store_argv_str(&a, awaiting);
    return store_argv_fx_script(s, store_lua_bootstrap_set, nkeys, &a, store_checkin_status_reply,
                                (union store_cb){.checkin = cb}, arg);
}

struct store_op *store_bootstrap_get(struct store *s, const char *udid, const char *cert_fp,
                                     const char *who, int64_t now_ms, store_values_fn *cb,
                                     void *arg)
{
    struct store_argv a;
    store_argv_init(&a);
    store_checkin_key(&a, "dev", udid);
    store_cert_prefix(s, &a);
    int nkeys = a.n;
    store_argv_str(&a, udid);
    store_argv_fmt(&a, "%lld", (long long)now_ms);
    store_argv_str(&a, cert_fp);
    store_argv_str(&a, who);
    return store_argv_fx_script(s, store_lua_bootstrap_get, nkeys, &a, store_checkin_script_reply,
                                (union store_cb){.values = cb}, arg);
}

/* ---- fleet configuration a device script reads (cluster layout) ----
 * The setting lives in its own slot: mdmd reads it first (HGETALL) and hands
 * the script what it found in placeholders (STORE_PRE_MAX at most):
 * "1"/"0" (the hash exists), then each field, "1<value>" or "0" for none. */

#define STORE_PRE_MAX 5

/* A configuration key of the fleet ("mdm:rts", "mdm:tokensrc:<type>", the
 * set "mdm:tokensrcs": no hash tag) in the layout: itself, or in the {g}
 * slot in the cluster layout, where a key and its set must share a slot.
 * Per-device keys (a {UDID} tag) are left as they are.  Into buf. */
static const char *store_conf_key(const struct store *s, char *buf, size_t n, const char *key)
{
    if (key == NULL || strchr(key, '{') != NULL || strncmp(key, "mdm:", 4) != 0)
        return key;
    return store_global_key(s, buf, n, key + 4);
}

struct store_pre {
    struct store *s;
    const char *lua;
    int nkeys, at, fx; /* at: the first placeholder's index in a */
    const char *const *fields;
    int nfields;
    struct store_argv a;          /* owned */
    char *val[STORE_PRE_MAX + 1]; /* what the placeholders become */
    size_t len[STORE_PRE_MAX + 1];
    store_values_fn *cb;
    void *arg;
};

static void store_pre_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_pre *p = op->arg;
    err = store_reply_error(err, r);
    if (err == MDMD_OK && (r->type != REDIS_REPLY_ARRAY || !store_reply_strings(r)))
        err = MDMD_EPROTO;
    if (err != MDMD_OK) {
        p->cb(p->arg, err, STORE_ID_OK, NULL, NULL, 0);
    } else {
        p->val[0] = xstrdup(r->elements > 0 ? "1" : "0");
        p->len[0] = 1;
        for (int f = 0; f < p->nfields; f++) {
            const redisReply *v = NULL;
            for (size_t i = 0; i + 1 < r->elements; i += 2)
                if (strcmp(r->element[i]->str, p->fields[f]) == 0)
                    v = r->element[i + 1];
            p->len[f + 1] = v != NULL ? v->len + 1 : 1;
            p->val[f + 1] = xmalloc(p->len[f + 1] + 1);
            p->val[f + 1][0] = v != NULL ? '1' : '0';
            if (v != NULL)
                memcpy(p->val[f + 1] + 1, v->str, v->len);
        }
        for (int f = 0; f <= p->nfields; f++) {
            p->a.v[p->at + f] = p->val[f];
            p->a.len[p->at + f] = p->len[f];
        }
        union store_cb cb = {.values = p->cb};
        if (p->fx)
            (void)store_argv_fx_keep(p->s, p->lua, p->nkeys, &p->a, store_checkin_script_reply, cb,
                                     p->arg);
        else
            (void)store_argv_script(p->s, p->lua, p->nkeys, &p->a, store_checkin_script_reply, cb,
                                    p->arg);
    }
    for (int f = 0; f <= STORE_PRE_MAX; f++)
        free(p->val[f]);
    store_argv_free(&p->a);
    free(p);
}

/* a: the script's argument vector with 1 + nfields placeholders at index
 * at; taken over. */
static struct store_op *store_pre_script(struct store *s, const char *key,
                                         const char *const *fields, int nfields, const char *lua,
                                         int nkeys, int at, int fx, struct store_argv *a,
                                         store_values_fn *cb, void *arg)
{
    struct store_pre *p = xcalloc(1, sizeof(*p));
    p->s = s;
    p->lua = lua;
    p->nkeys = nkeys;
    p->at = at;
    p->fx = fx;
    p->fields = fields;
    p->nfields = nfields;
    p->cb = cb;
    p->arg = arg;
    store_argv_init(&p->a);
    for (int i = 0; i < a->n; i++)
        store_argv_push(&p->a, a->v[i], a->len[i]);
    store_argv_own(&p->a);
    store_argv_free(a);
    const char *argv[] = {"HGETALL", key};
    struct store_op *op = store_op_new(s, STORE_CB_NONE, p);
    return store_cmd_argv(s, 2, argv, NULL, store_pre_reply, op);
}

static const char *const store_rts_fields[] = {"enabled", "wifi_profile", "mdm_profile",
                                               "preserve_apps"};
static const char *const store_tokensrc_fields[] = {"kind", "data", "issuer"};

struct store_op *store_rts_get(struct store *s, const struct store_device_msg *m,
                               store_values_fn *cb, void *arg)
{
    struct store_argv a;
    int cluster = store_layout_cluster(s);
    store_argv_init(&a);
    store_checkin_key(&a, "dev", m->udid);
    store_checkin_key(&a, "rts", m->udid);
    if (!cluster)
        store_argv_str(&a, "mdm:rts");
    store_cert_prefix(s, &a);
    int nkeys = a.n;
    store_argv_str(&a, m->udid);
    store_argv_fmt(&a, "%lld", (long long)m->now_ms);
    store_argv_str(&a, m->cert_fp);
    if (!cluster)
        return store_argv_fx_script(s, store_lua_rts_get, nkeys, &a, store_checkin_script_reply,
                                    (union store_cb){.values = cb}, arg);
    int at = a.n;
    for (size_t i = 0; i <= ARRAY_LEN(store_rts_fields); i++)
        store_argv_str(&a, "0");
    char conf[64];
    return store_pre_script(s, store_conf_key(s, conf, sizeof(conf), "mdm:rts"), store_rts_fields,
                            (int)ARRAY_LEN(store_rts_fields), store_lua_rts_get, nkeys, at, 1, &a,
                            cb, arg);
}

struct store_op *store_token_source_get(struct store *s, const struct store_device_msg *m,
                                        const char *type, store_values_fn *cb, void *arg)
{
    struct store_argv a;
    char key[256];
    int cluster = store_layout_cluster(s);
    snprintf(key, sizeof(key), "mdm:tokensrc:%s", type);
    store_argv_init(&a);
    store_checkin_key(&a, "dev", m->udid);
    if (!cluster)
        store_argv_str(&a, key);
    store_cert_prefix(s, &a);
    int nkeys = a.n;
    store_argv_str(&a, m->cert_fp);
    store_argv_fmt(&a, "%lld", (long long)m->now_ms);
    if (!cluster)
        return store_argv_script(s, store_lua_token_source_get, nkeys, &a,
                                 store_checkin_script_reply, (union store_cb){.values = cb}, arg);
    int at = a.n;
    for (size_t i = 0; i <= ARRAY_LEN(store_tokensrc_fields); i++)
        store_argv_str(&a, "0");
    char conf[288];
    return store_pre_script(s, store_conf_key(s, conf, sizeof(conf), key), store_tokensrc_fields,
                            (int)ARRAY_LEN(store_tokensrc_fields), store_lua_token_source_get,
                            nkeys, at, 0, &a, cb, arg);
}

struct store_op *store_ident_check(struct store *s, const struct store_device_msg *m,
                                   store_values_fn *cb, void *arg)
{
    struct store_argv a;
    store_argv_init(&a);
    store_checkin_key(&a, "dev", m->udid);
    store_cert_prefix(s, &a);
    int nkeys = a.n;
    store_argv_str(&a, m->cert_fp);
    store_argv_fmt(&a, "%lld", (long long)m->now_ms);
    return store_argv_script(s, store_lua_ident, nkeys, &a, store_checkin_script_reply,
                             (union store_cb){.values = cb}, arg);
}

static void store_checkin_done_reply(struct store_op *op, int err, const redisReply *r)
{
    err = store_reply_error(err, r);
    op->cb.done(op->arg, err);
}

struct store_op *store_setting_put(struct store *s, const char *key, const char *set,
                                   const char *member, const struct store_kv *kv, size_t n,
                                   store_done_fn *cb, void *arg)
{
    struct store_argv a;
    char kb[288], sb[64];
    store_argv_init(&a);
    store_argv_str(&a, store_conf_key(s, kb, sizeof(kb), key));
    if (set != NULL)
        store_argv_str(&a, store_conf_key(s, sb, sizeof(sb), set));
    int nkeys = a.n;
    store_argv_str(&a, member != NULL ? member : "");
    for (size_t i = 0; i < n; i++) {
        store_argv_str(&a, kv[i].key);
        store_argv_push(&a, kv[i].val, kv[i].len);
    }
    return store_argv_script(s, store_lua_hash_replace, nkeys, &a, store_checkin_done_reply,
                             (union store_cb){.done = cb}, arg);
}

static struct store_op *store_checkin_cmd(struct store *s, const char *cmd, const char *key,
                                          store_values_fn *cb, void *arg)
{
    char kb[288];
    const char *argv[] = {cmd, store_conf_key(s, kb, sizeof(kb), key)};
    struct store_op *op = store_op_new(s, (union store_cb){.values = cb}, arg);
    return store_cmd_argv(s, 2, argv, NULL, store_checkin_array_reply, op);
}

struct store_op *store_setting_get(struct store *s, const char *key, store_values_fn *cb, void *arg)
{
    return store_checkin_cmd(s, "HGETALL", key, cb, arg);
}

struct store_op *store_set_members(struct store *s, const char *key, store_values_fn *cb, void *arg)
{
    return store_checkin_cmd(s, "SMEMBERS", key, cb, arg);
}

static void store_checkin_migrate_reply(struct store_op *op, int err, const redisReply *r)
{
    store_migrate_fn *cb = op->cb.migrate;
    err = store_reply_error(err, r);
    if (err == MDMD_OK &&
        (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
         r->element[0]->type != REDIS_REPLY_INTEGER || !store_reply_strings(r->element[1])))
        err = MDMD_EPROTO;
    if (err != MDMD_OK) {
        cb(op->arg, err, 0, NULL, 0);
        return;
    }
    const redisReply *sk = r->element[1];
    const char **v = xcalloc(sk->elements + 1, sizeof(*v));
    for (size_t i = 0; i < sk->elements; i++)
        v[i] = sk->element[i]->str;
    cb(op->arg, MDMD_OK, (long)r->element[0]->integer, v, sk->elements);
    free(v);
}

/* migrate.lua's keys and arguments for d[0..n-1]: one call (the single
 * layout) or one device (the cluster layout). */
static int store_migrate_argv(struct store_argv *a, const struct store_migrant *d, size_t n,
                              int64_t now_ms)
{
    store_argv_init(a);
    for (size_t i = 0; i < n; i++) {
        store_argv_fmt(a, "mdm:dev:{%s}", d[i].udid);
        store_argv_fmt(a, "mdm:q:{%s}", d[i].udid);
        store_argv_fmt(a, "mdm:notnow:{%s}", d[i].udid);
    }
    store_argv_fmt(a, "%lld", (long long)now_ms);
    for (size_t i = 0; i < n; i++) {
        store_argv_str(a, d[i].udid);
        store_argv_fmt(a, "%zu", d[i].n);
        for (size_t j = 0; j < d[i].n; j++) {
            store_argv_str(a, d[i].fields[j].key);
            store_argv_push(a, d[i].fields[j].val, d[i].fields[j].len);
        }
    }
    return (int)(3 * n);
}

/* The cluster layout's migration: a call per device (each in its own slot),
 * answered once every one has: created summed, skipped joined; the first
 * error is the answer's. */
struct store_migrate_fan {
    store_migrate_fn *cb;
    void *arg;
    size_t left;
    int err;
    long created;
    char **skipped;
    size_t nskipped;
};

static void store_migrate_fan_one(void *arg, int err, long created, const char *const *skipped,
                                  size_t nskipped)
{
    struct store_migrate_fan *f = arg;
    if (err != MDMD_OK && f->err == MDMD_OK)
        f->err = err;
    f->created += err == MDMD_OK ? created : 0;
    for (size_t i = 0; err == MDMD_OK && i < nskipped; i++) {
        f->skipped = xrealloc(f->skipped, (f->nskipped + 1) * sizeof(*f->skipped));
        f->skipped[f->nskipped++] = xstrdup(skipped[i]);
    }
    if (--f->left > 0)
        return;
    f->cb(f->arg, f->err, f->created, (const char *const *)f->skipped, f->nskipped);
    for (size_t i = 0; i < f->nskipped; i++)
        free(f->skipped[i]);
    free(f->skipped);
    free(f);
}

struct store_op *store_migrate(struct store *s, const struct store_migrant *d, size_t n,
                               int64_t now_ms, store_migrate_fn *cb, void *arg)
{
    struct store_argv a;
    if (!store_layout_cluster(s) || n <= 1) {
        int nkeys = store_migrate_argv(&a, d, n, now_ms);
        return store_argv_fx_script(s, store_lua_migrate, nkeys, &a, store_checkin_migrate_reply,
                                    (union store_cb){.migrate = cb}, arg);
    }
    /* The per-device ops are the fan's own: the caller gets no op to cancel
     * (NULL, as when cb already ran), and its callback runs once. */
    struct store_migrate_fan *f = xcalloc(1, sizeof(*f));
    f->cb = cb;
    f->arg = arg;
    f->left = n;
    for (size_t i = 0; i < n; i++) {
        int nkeys = store_migrate_argv(&a, &d[i], 1, now_ms);
        (void)store_argv_fx_script(s, store_lua_migrate, nkeys, &a, store_checkin_migrate_reply,
                                   (union store_cb){.migrate = store_migrate_fan_one}, f);
    }
    return NULL;
}
