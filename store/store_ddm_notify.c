/* store_ddm_notify.c: ddm_notify.lua's walk in the cluster key layout
 * (store_fanout.h; docs/REDIS.md, "Redis Cluster").  The single layout's
 * one script per chunk touches the devices' slots, the configuration's {g},
 * the command bodies and the job record; here each is its own call, each
 * phase's calls sent together:
 *   scan  one ZSCAN of a bucket of mdm:devices (an empty one: the next);
 *   read  ddm_notify_read.lua per device: the enrollments that may be sent one;
 *   eff   ddm_effective.lua on {g} per enrollment: its sync token;
 *   body  HSET + EXPIRE of mdm:cmd:<UUID> per enrollment whose token moved;
 *   put   ddm_notify_put.lua per device (fleet writes: queue_depth) queues them;
 *   end   DEL of the bodies no longer used, the job's counts on {g}.
 * The body exists before its UUID is queued; a chunk that fails part way
 * leaves at most unqueued bodies (their 30 days TTL) and the counts short. */
#include "store_fanout.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "../core/util.h"

extern const char store_lua_ddm_notify_read[], store_lua_ddm_effective[],
    store_lua_ddm_notify_put[];

struct store_dn_en { /* one enrollment read */
    int dev;         /* index into ids */
    char *uid, *notified, *token, *time, *user;
    json_t *sets;
    int need;
    char uuid[48];
};

struct store_dn {
    struct store *s;
    store_ddm_fn *cb;
    void *arg;
    char job[96], now[24], iso[32], ttl[16], prefix[40], cursor[32];
    int count, bucket;
    char **ids;
    size_t nids;
    struct store_dn_en *en;
    size_t nen;
    int pending, err;
    long queued;
    json_t *push, *gone;
    void (*next)(struct store_dn *d);
};

struct store_dn_call {
    struct store_dn *d;
    size_t i;
};

static void store_dn_free(struct store_dn *d)
{
    for (size_t i = 0; i < d->nids; i++)
        free(d->ids[i]);
    free(d->ids);
    for (size_t i = 0; i < d->nen; i++) {
        free(d->en[i].uid);
        free(d->en[i].notified);
        free(d->en[i].token);
        free(d->en[i].time);
        free(d->en[i].user);
        json_decref(d->en[i].sets);
    }
    free(d->en);
    json_decref(d->push);
    json_decref(d->gone);
    free(d);
}

static void store_dn_finish(struct store_dn *d)
{
    if (d->err != MDMD_OK) {
        d->cb(d->arg, d->err, NULL);
    } else {
        json_t *r = json_pack("[s, I, I, O]", d->cursor, (json_int_t)d->nids, (json_int_t)d->queued,
                              d->push);
        d->cb(d->arg, MDMD_OK, r);
        json_decref(r);
    }
    store_dn_free(d);
}

/* One call of the phase answered (or failed): the next phase after the last. */
static void store_dn_join(struct store_dn *d, int err)
{
    if (err != MDMD_OK && d->err == MDMD_OK)
        d->err = err;
    if (--d->pending > 0)
        return;
    if (d->err != MDMD_OK || d->next == NULL)
        store_dn_finish(d);
    else
        d->next(d);
}

/* Starts a phase: the calls it sends join; next runs after the last. */
static void store_dn_phase(struct store_dn *d, void (*next)(struct store_dn *d))
{
    d->next = next;
    d->pending = 1; /* this phase's own turn, joined by store_dn_phase_sent */
}

static void store_dn_phase_sent(struct store_dn *d)
{
    store_dn_join(d, MDMD_OK);
}

static struct store_dn_call *store_dn_call(struct store_dn *d, size_t i)
{
    struct store_dn_call *c = xcalloc(1, sizeof(*c));
    c->d = d;
    c->i = i;
    d->pending++;
    return c;
}

static void store_dn_cmd(struct store_dn *d, size_t i, struct store_argv *a, store_reply_fn *reply)
{
    struct store_op *op = store_op_new(d->s, STORE_CB_NONE, store_dn_call(d, i));
    (void)store_cmd_argv(d->s, a->n, a->v, a->len, reply, op);
    store_argv_free(a);
}

static void store_dn_plain(struct store_op *op, int err, const redisReply *r)
{
    struct store_dn_call *c = op->arg;
    struct store_dn *d = c->d;
    free(c);
    store_dn_join(d, store_reply_error(err, r));
}

/* "mdm:<kind>:{UDID}" */
static void store_dn_key(struct store_argv *a, const char *kind, const char *udid)
{
    store_argv_fmt(a, "mdm:%s:{%s}", kind, udid);
}

/* ---- end: the bodies no longer used, the job's counts ---------------------- */

static void store_dn_end(struct store_dn *d)
{
    struct store_argv a;
    char k[160];
    store_dn_phase(d, NULL);
    size_t i;
    json_t *u;
    json_array_foreach(d->gone, i, u)
    {
        store_argv_init(&a);
        store_argv_str(&a, "DEL");
        store_argv_fmt(&a, "mdm:cmd:%s", json_string_value(u));
        store_dn_cmd(d, i, &a, store_dn_plain);
    }
    if (d->job[0] != '\0') {
        static const char *const f[] = {"done", "queued", "skipped"};
        long v[] = {(long)d->nids, d->queued, (long)d->nids - d->queued};
        for (int j = 0; j < 3; j++) {
            store_argv_init(&a);
            store_argv_str(&a, "HINCRBY");
            store_argv_str(&a, d->job);
            store_argv_str(&a, f[j]);
            store_argv_fmt(&a, "%ld", v[j]);
            store_dn_cmd(d, 0, &a, store_dn_plain);
        }
        store_argv_init(&a);
        snprintf(k, sizeof(k), "%s", d->job);
        store_argv_str(&a, "HSET");
        store_argv_str(&a, k);
        store_argv_str(&a, "updated");
        store_argv_str(&a, d->now);
        store_argv_str(&a, "cursor");
        store_argv_str(&a, d->cursor);
        store_dn_cmd(d, 0, &a, store_dn_plain);
    }
    store_dn_phase_sent(d);
}

/* ---- put: per device, the commands queued ----------------------------------- */

static void store_dn_put_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_dn_call *c = op->arg;
    struct store_dn *d = c->d;
    free(c);
    err = store_reply_error(err, r);
    if (err == MDMD_OK && (r->type != REDIS_REPLY_ARRAY || r->elements != 3))
        err = MDMD_EPROTO;
    if (err == MDMD_OK) {
        d->queued += r->element[0]->type == REDIS_REPLY_INTEGER ? (long)r->element[0]->integer : 0;
        const redisReply *p = r->element[1];
        for (size_t i = 0; p->type == REDIS_REPLY_ARRAY && i < p->elements; i++) {
            const redisReply *t = p->element[i];
            if (t->type != REDIS_REPLY_ARRAY || t->elements != 4 || !store_reply_strings(t))
                continue;
            json_array_append_new(d->push,
                                  json_pack("[s, s, s, s]", t->element[0]->str, t->element[1]->str,
                                            t->element[2]->str, t->element[3]->str));
        }
        const redisReply *g = r->element[2];
        for (size_t i = 0; g->type == REDIS_REPLY_ARRAY && i < g->elements; i++)
            if (g->element[i]->type == REDIS_REPLY_STRING)
                json_array_append_new(d->gone, json_string(g->element[i]->str));
    }
    store_dn_join(d, err);
}

static void store_dn_put(struct store_dn *d)
{
    store_dn_phase(d, store_dn_end);
    for (size_t dev = 0; dev < d->nids; dev++) {
        struct store_argv a;
        int any = 0;
        store_argv_init(&a);
        store_dn_key(&a, "dev", d->ids[dev]);
        store_dn_key(&a, "q", d->ids[dev]);
        store_dn_key(&a, "notnow", d->ids[dev]);
        store_dn_key(&a, "ddm:en", d->ids[dev]);
        store_argv_str(&a, d->now);
        store_argv_str(&a, d->iso);
        for (size_t i = 0; i < d->nen; i++) {
            struct store_dn_en *e = &d->en[i];
            if (e->dev != (int)dev || !e->need)
                continue;
            store_argv_str(&a, e->uid);
            store_argv_str(&a, e->uuid);
            store_argv_str(&a, e->token);
            store_argv_str(&a, e->time);
            any = 1;
        }
        if (!any) {
            store_argv_free(&a);
            continue;
        }
        (void)store_argv_fx_script(d->s, store_lua_ddm_notify_put, 4, &a, store_dn_put_reply,
                                   STORE_CB_NONE, store_dn_call(d, dev));
    }
    store_dn_phase_sent(d);
}

/* ---- body: each command stored before it is queued -------------------------- */

static char *store_dn_b64(const char *s, size_t n)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o = xmalloc(4 * ((n + 2) / 3) + 1), *p = o;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)s[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)s[i + 2];
        *p++ = t[(v >> 18) & 63];
        *p++ = t[(v >> 12) & 63];
        *p++ = i + 1 < n ? t[(v >> 6) & 63] : '=';
        *p++ = i + 2 < n ? t[v & 63] : '=';
    }
    *p = '\0';
    return o;
}

/* The command ddm_notify.lua builds: Data the TokensResponse's SyncTokens. */
static char *store_dn_plist(const struct store_dn_en *e)
{
    json_t *j = json_pack("{s:{s:s, s:s}}", "SyncTokens", "DeclarationsToken", e->token,
                          "Timestamp", e->time);
    char *js = json_dumps(j, JSON_COMPACT);
    char *data = store_dn_b64(js, strlen(js));
    char *out = xasprintf(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
        "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist version=\"1.0\">\n<dict>\n"
        "\t<key>Command</key>\n\t<dict>\n\t\t<key>Data</key>\n\t\t<data>%s</data>\n"
        "\t\t<key>RequestType</key>\n\t\t<string>DeclarativeManagement</string>\n"
        "\t</dict>\n\t<key>CommandUUID</key>\n\t<string>%s</string>\n</dict>\n</plist>\n",
        data, e->uuid);
    free(data);
    free(js);
    json_decref(j);
    return out;
}

static void store_dn_body(struct store_dn *d)
{
    store_dn_phase(d, store_dn_put);
    for (size_t i = 0; i < d->nen; i++) {
        struct store_dn_en *e = &d->en[i];
        struct store_argv a;
        if (!e->need)
            continue;
        snprintf(e->uuid, sizeof(e->uuid), "%.24s%012X", d->prefix, (unsigned)(i & 0xffffffu));
        char *plist = store_dn_plist(e);
        store_argv_init(&a);
        store_argv_str(&a, "HSET");
        store_argv_fmt(&a, "mdm:cmd:%s", e->uuid);
        store_argv_str(&a, "plist");
        store_argv_str(&a, plist);
        store_argv_str(&a, "request_type");
        store_argv_str(&a, "DeclarativeManagement");
        store_argv_str(&a, "created");
        store_argv_str(&a, d->now);
        store_argv_str(&a, "targets");
        store_argv_str(&a, "1");
        store_dn_cmd(d, i, &a, store_dn_plain);
        free(plist);
        store_argv_init(&a);
        store_argv_str(&a, "EXPIRE");
        store_argv_fmt(&a, "mdm:cmd:%s", e->uuid);
        store_argv_str(&a, d->ttl);
        store_dn_cmd(d, i, &a, store_dn_plain);
    }
    store_dn_phase_sent(d);
}

/* ---- eff: each enrollment's sync token on {g} ------------------------------- */

static void store_dn_eff_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_dn_call *c = op->arg;
    struct store_dn *d = c->d;
    struct store_dn_en *e = &d->en[c->i];
    free(c);
    err = store_reply_error(err, r);
    if (err == MDMD_OK && (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
                           r->element[0]->type != REDIS_REPLY_STRING))
        err = MDMD_EPROTO;
    if (err == MDMD_OK) {
        const char *token = r->element[0]->str;
        size_t nitems = r->element[1]->type == REDIS_REPLY_ARRAY ? r->element[1]->elements : 0;
        /* as ddm_notify.lua: a new token, and one that never had
         * declarations needs no word of an empty set */
        e->need = strcmp(e->notified, token) != 0 && (nitems > 0 || e->notified[0] != '\0');
        if (strcmp(e->token, token) != 0 || e->time[0] == '\0') {
            free(e->time);
            e->time = xstrdup(d->iso);
        }
        free(e->token);
        e->token = xstrdup(token);
    }
    store_dn_join(d, err);
}

static void store_dn_eff(struct store_dn *d)
{
    store_dn_phase(d, store_dn_body);
    for (size_t i = 0; i < d->nen; i++) {
        struct store_dn_en *e = &d->en[i];
        struct store_argv a;
        static const char *const rest[] = {
            "ddm:decls", "ddm:decl:",  "ddm:sets",   "ddm:set:", "ddm:everyone",
            "ddm:user:", "ddm:assets", "ddm:asset:", "user:"};
        store_argv_init(&a);
        for (size_t k = 0; k < ARRAY_LEN(rest); k++)
            store_argv_gkey(&a, d->s, "%s", rest[k]);
        store_argv_str(&a, e->uid);
        store_argv_str(&a, e->user);
        store_argv_str(&a, "");
        store_argv_str(&a, "");
        size_t j;
        json_t *v;
        json_array_foreach(e->sets, j, v) store_argv_str(&a, json_string_value(v));
        (void)store_argv_script(d->s, store_lua_ddm_effective, 9, &a, store_dn_eff_reply,
                                STORE_CB_NONE, store_dn_call(d, i));
    }
    store_dn_phase_sent(d);
}

/* ---- read: per device, the enrollments ---------------------------------------- */

static void store_dn_read_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_dn_call *c = op->arg;
    struct store_dn *d = c->d;
    int dev = (int)c->i;
    free(c);
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type != REDIS_REPLY_ARRAY)
        err = MDMD_EPROTO;
    for (size_t i = 0; err == MDMD_OK && i < r->elements; i++) {
        const redisReply *x = r->element[i];
        if (x->type != REDIS_REPLY_ARRAY || x->elements != 6 ||
            x->element[5]->type != REDIS_REPLY_ARRAY)
            continue;
        d->en = xrealloc(d->en, (d->nen + 1) * sizeof(*d->en));
        struct store_dn_en *e = &d->en[d->nen++];
        char *f[5];
        for (int k = 0; k < 5; k++)
            f[k] = xstrdup(x->element[k]->type == REDIS_REPLY_STRING ? x->element[k]->str : "");
        *e = (struct store_dn_en){dev, f[0], f[1], f[2], f[3], f[4], json_array(), 0, ""};
        for (size_t k = 0; k < x->element[5]->elements; k++)
            if (x->element[5]->element[k]->type == REDIS_REPLY_STRING)
                json_array_append_new(e->sets, json_string(x->element[5]->element[k]->str));
    }
    store_dn_join(d, err);
}

static void store_dn_read(struct store_dn *d)
{
    store_dn_phase(d, store_dn_eff);
    for (size_t i = 0; i < d->nids; i++) {
        struct store_argv a;
        char udid[128];
        const char *uid = "", *c = strchr(d->ids[i], ':');
        snprintf(udid, sizeof(udid), "%.*s",
                 c != NULL ? (int)(c - d->ids[i]) : (int)strlen(d->ids[i]), d->ids[i]);
        if (c != NULL)
            uid = c + 1;
        store_argv_init(&a);
        store_dn_key(&a, "dev", udid);
        store_dn_key(&a, "channels", udid);
        store_dn_key(&a, "ddm:en", udid);
        store_dn_key(&a, "ddm:sets", udid);
        store_argv_str(&a, uid);
        (void)store_argv_script(d->s, store_lua_ddm_notify_read, 4, &a, store_dn_read_reply,
                                STORE_CB_NONE, store_dn_call(d, i));
        if (c != NULL) { /* the put's keys are the device's */
            free(d->ids[i]);
            d->ids[i] = xstrdup(udid);
        }
    }
    store_dn_phase_sent(d);
}

/* ---- scan: a bucket of mdm:devices ---------------------------------------- */

static void store_dn_scan(struct store_dn *d, const char *zcur);

static void store_dn_scan_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_dn_call *c = op->arg;
    struct store_dn *d = c->d;
    free(c);
    d->pending--;
    err = store_reply_error(err, r);
    if (err == MDMD_OK &&
        (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
         r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY))
        err = MDMD_EPROTO;
    if (err != MDMD_OK) {
        d->err = err;
        store_dn_finish(d);
        return;
    }
    const char *zc = r->element[0]->str;
    const redisReply *m = r->element[1];
    for (size_t i = 0; i + 1 < m->elements; i += 2)
        if (m->element[i]->type == REDIS_REPLY_STRING) {
            d->ids = xrealloc(d->ids, (d->nids + 1) * sizeof(char *));
            d->ids[d->nids++] = xstrdup(m->element[i]->str);
        }
    int last = strcmp(zc, "0") == 0 && d->bucket + 1 >= STORE_BUCKETS;
    if (last)
        snprintf(d->cursor, sizeof(d->cursor), "0");
    else if (strcmp(zc, "0") == 0)
        snprintf(d->cursor, sizeof(d->cursor), "%d:0", d->bucket + 1);
    else
        snprintf(d->cursor, sizeof(d->cursor), "%d:%.20s", d->bucket, zc);
    if (d->nids == 0 && !last && strcmp(zc, "0") == 0) { /* an empty bucket: the next */
        d->bucket++;
        store_dn_scan(d, "0");
        return;
    }
    store_dn_read(d);
}

static void store_dn_scan(struct store_dn *d, const char *zcur)
{
    struct store_argv a;
    store_argv_init(&a);
    store_argv_str(&a, "ZSCAN");
    store_argv_bkey(&a, d->s, "mdm:devices", d->bucket);
    store_argv_str(&a, zcur);
    store_argv_str(&a, "COUNT");
    store_argv_fmt(&a, "%d", d->count > 0 ? d->count : 10);
    store_dn_cmd(d, 0, &a, store_dn_scan_reply);
}

struct store_op *store_ddm_notify_cluster(struct store *s, int argc, const char *const *argv,
                                          store_ddm_fn *cb, void *arg)
{
    /* argv: job mode cursor count now now_iso ttl_s uuid_prefix [udid...] */
    if (argc < 8) {
        cb(arg, MDMD_EPROTO, NULL);
        return NULL;
    }
    struct store_dn *d = xcalloc(1, sizeof(*d));
    d->s = s;
    d->cb = cb;
    d->arg = arg;
    snprintf(d->job, sizeof(d->job), "%s", argv[0]);
    d->count = atoi(argv[3]);
    snprintf(d->now, sizeof(d->now), "%s", argv[4]);
    snprintf(d->iso, sizeof(d->iso), "%s", argv[5]);
    snprintf(d->ttl, sizeof(d->ttl), "%s", argv[6]);
    snprintf(d->prefix, sizeof(d->prefix), "%.24s", argv[7]);
    snprintf(d->cursor, sizeof(d->cursor), "0");
    d->push = json_array();
    d->gone = json_array();
    if (strcmp(argv[1], "scan") == 0) {
        const char *colon = strchr(argv[2], ':');
        d->bucket = atoi(argv[2]);
        if (d->bucket < 0 || d->bucket >= STORE_BUCKETS)
            d->bucket = 0;
        store_dn_scan(d, colon != NULL ? colon + 1 : "0");
        return NULL;
    }
    for (int i = 8; i < argc; i++) {
        d->ids = xrealloc(d->ids, (d->nids + 1) * sizeof(char *));
        d->ids[d->nids++] = xstrdup(argv[i]);
    }
    store_dn_read(d);
    return NULL;
}
