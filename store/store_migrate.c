/* store_migrate.c: the single layout's dataset copied into the cluster
 * layout (store_migrate.h). */
#include "store_migrate.h"

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store_cluster.h"
#include "store_int.h"
#include "../core/util.h"

#define MIG_CONNS 32  /* destination nodes at most */
#define MIG_BATCH 500 /* SCAN COUNT, and entries per range read */
#define MIG_HOPS 5    /* MOVED/ASK followed per command */

struct mig_conn {
    char addr[128];
    redisContext *c;
};

struct mig {
    redisContext *src;
    struct mig_conn dst[MIG_CONNS];
    int ndst;
    short slot[16384]; /* destination connection per slot, -1 unknown */
    int in_place;      /* the destination is the source */
    int timeout_ms;
    char *err;
    size_t errlen;
    store_migrate_log_fn *log;
    void *arg;
    struct store_migrate_stats *st;
};

/* store_sync_connect, with a failed context freed: NULL then. */
static redisContext *mig_connect(const char *addr, int timeout_ms)
{
    redisContext *c = store_sync_connect(addr, timeout_ms);
    if (c != NULL && c->err != 0) {
        redisFree(c);
        return NULL;
    }
    return c;
}

/* The destination connection to addr, made on first use; -1 on failure. */
static int mig_node(struct mig *m, const char *addr)
{
    for (int i = 0; i < m->ndst; i++)
        if (strcmp(m->dst[i].addr, addr) == 0)
            return i;
    if (m->ndst == MIG_CONNS)
        return -1;
    redisContext *c = mig_connect(addr, m->timeout_ms);
    if (c == NULL)
        return -1;
    snprintf(m->dst[m->ndst].addr, sizeof(m->dst[m->ndst].addr), "%s", addr);
    m->dst[m->ndst].c = c;
    return m->ndst++;
}

/* argv on the destination node of its key (argv[1]), MOVED and ASK
 * followed.  The reply (caller frees), or NULL with m->err set. */
static redisReply *mig_dst(struct mig *m, int argc, const char **argv, const size_t *len)
{
    unsigned slot = store_cluster_slot(argv[1], len[1]);
    int node = m->slot[slot] >= 0 ? m->slot[slot] : 0, ask = 0;
    for (int hop = 0; hop <= MIG_HOPS; hop++) {
        redisContext *c = m->dst[node].c;
        if (ask) {
            redisReply *a = redisCommand(c, "ASKING");
            freeReplyObject(a);
        }
        redisReply *r = redisCommandArgv(c, argc, argv, len);
        int is_ask, s;
        char addr[128];
        if (r == NULL) {
            snprintf(m->err, m->errlen, "Redis at %s: %s", m->dst[node].addr, c->errstr);
            return NULL;
        }
        if (r->type != REDIS_REPLY_ERROR ||
            !store_cluster_redirect(r->str, r->len, &is_ask, &s, addr, sizeof(addr)))
            return r;
        freeReplyObject(r);
        if ((node = mig_node(m, addr)) < 0) {
            snprintf(m->err, m->errlen, "cannot connect to the cluster node %s", addr);
            return NULL;
        }
        if (!is_ask)
            m->slot[slot] = (short)node;
        ask = is_ask;
    }
    snprintf(m->err, m->errlen, "too many redirects for %s", argv[1]);
    return NULL;
}

/* A destination write whose reply is not needed: 0, or -1 (error replies
 * too, except ok_err, a message prefix that means "already done"). */
static int mig_put(struct mig *m, int argc, const char **argv, const size_t *len,
                   const char *ok_err)
{
    size_t l[16];
    if (len == NULL) {
        for (int i = 0; i < argc && i < 16; i++)
            l[i] = strlen(argv[i]);
        len = l;
    }
    redisReply *r = mig_dst(m, argc, argv, len);
    if (r == NULL)
        return -1;
    int bad = r->type == REDIS_REPLY_ERROR &&
              (ok_err == NULL || strncmp(r->str, ok_err, strlen(ok_err)) != 0);
    if (bad)
        snprintf(m->err, m->errlen, "%s %s: %s", argv[0], argv[1], r->str);
    freeReplyObject(r);
    return bad ? -1 : 0;
}

static redisReply *mig_src(struct mig *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(m->src, fmt, ap);
    va_end(ap);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        snprintf(m->err, m->errlen, "source Redis: %s", r != NULL ? r->str : m->src->errstr);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* ---- progress ------------------------------------------------------------- */

#define MIG_STATE "mdm:{g}:migrate"

static void mig_save(struct mig *m, const char *phase, const char *cursor)
{
    const char *v[] = {"HSET", MIG_STATE, "phase", phase, "cursor", cursor};
    (void)mig_put(m, 6, v, NULL, NULL);
}

static void mig_say(struct mig *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mig_say(struct mig *m, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (m->log != NULL)
        m->log(m->arg, line);
}

/* ---- phase 1: every key copied or renamed --------------------------------- */

static const char *const mig_fleet[] = {"mdm:devices",   "mdm:idx",     "mdm:stats",
                                        "mdm:os",        "mdm:pushlat", "mdm:repush",
                                        "mdm:provision", "mdm:events",  "mdm:ddm:enrollments",
                                        "mdm:ddm:failed"};

/* 'g' configuration, 'k' kept as it is, 'f' fleet (phase 2), 's' skip (the
 * cluster layout's own keys, or no key of mdmd's). */
static char mig_kind(const char *k)
{
    if (strncmp(k, "mdm:", 4) != 0 || strncmp(k, "mdm:{g}:", 8) == 0 || strstr(k, ":{b") != NULL)
        return 's';
    for (size_t i = 0; i < ARRAY_LEN(mig_fleet); i++)
        if (strcmp(k, mig_fleet[i]) == 0)
            return 'f';
    if (strncmp(k, "mdm:rate:", 9) == 0)
        return 'f';
    if (strchr(k, '{') != NULL || strncmp(k, "mdm:cmd:", 8) == 0 ||
        strncmp(k, "mdm:cmdto:", 10) == 0 || strncmp(k, "mdm:cert:", 9) == 0)
        return 'k';
    return 'g';
}

/* DUMP k on the source, RESTORE it as name (its TTL kept) on the destination. */
static int mig_copy(struct mig *m, const char *k, const char *name)
{
    redisReply *d = mig_src(m, "DUMP %s", k), *t = d != NULL ? mig_src(m, "PTTL %s", k) : NULL;
    int rc = -1;
    if (d != NULL && t != NULL && d->type == REDIS_REPLY_NIL) {
        rc = 0; /* gone meanwhile (expired) */
    } else if (d != NULL && t != NULL && d->type == REDIS_REPLY_STRING) {
        char ttl[24];
        snprintf(ttl, sizeof(ttl), "%lld", t->integer > 0 ? t->integer : 0);
        const char *v[] = {"RESTORE", name, ttl, d->str, "REPLACE"};
        size_t l[] = {7, strlen(name), strlen(ttl), d->len, 7};
        rc = mig_put(m, 5, v, l, NULL);
    }
    freeReplyObject(d);
    freeReplyObject(t);
    return rc;
}

static int mig_key(struct mig *m, const char *k)
{
    char name[1024];
    switch (mig_kind(k)) {
    case 'g':
        snprintf(name, sizeof(name), "mdm:{g}:%s", k + 4);
        m->st->config++;
        return mig_copy(m, k, name);
    case 'k':
        if (m->in_place)
            return 0; /* the same name on the same Redis */
        m->st->as_is++;
        return mig_copy(m, k, k);
    default: return 0;
    }
}

/* SCAN pattern from cursor, fn for each key; the cursor saved per batch. */
static int mig_scan(struct mig *m, const char *phase, const char *pattern, char *cursor,
                    int (*fn)(struct mig *, const char *))
{
    do {
        redisReply *r = mig_src(m, "SCAN %s MATCH %s COUNT %d", cursor, pattern, MIG_BATCH);
        if (r == NULL)
            return -1;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            freeReplyObject(r);
            snprintf(m->err, m->errlen, "source Redis: bad SCAN reply");
            return -1;
        }
        for (size_t i = 0; i < r->element[1]->elements; i++)
            if (fn(m, r->element[1]->element[i]->str) != 0) {
                freeReplyObject(r);
                return -1;
            }
        snprintf(cursor, 32, "%s", r->element[0]->str);
        freeReplyObject(r);
        mig_save(m, phase, cursor);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

/* ---- phase 2: the fleet keys into their buckets --------------------------- */

static int mig_bucket(const char *udid, size_t len)
{
    size_t n = strcspn(udid, ":"); /* UDID:user: the device's bucket */
    return (int)(store_cluster_slot(udid, n < len ? n : len) % STORE_BUCKETS);
}

static void mig_bkey(char *out, size_t size, const char *base, int b)
{
    snprintf(out, size, "%s:{b%02d}", base, b);
}

/* A sorted set (or, set 1, a set) entry by entry into the bucket of each
 * member's UDID (the member itself, or the middle of an mdm:idx member). */
static int mig_zset(struct mig *m, const char *base, int set)
{
    char cursor[32] = "0", key[96], score[64];
    do {
        redisReply *r =
            mig_src(m, "%s %s %s COUNT %d", set ? "SSCAN" : "ZSCAN", base, cursor, MIG_BATCH);
        if (r == NULL)
            return -1;
        const redisReply *e = r->elements == 2 ? r->element[1] : NULL;
        size_t step = set ? 1 : 2;
        for (size_t i = 0; e != NULL && i + step - 1 < e->elements; i += step) {
            const char *mem = e->element[i]->str, *u = mem;
            size_t ml = e->element[i]->len, ul = ml;
            if (strcmp(base, "mdm:idx") == 0) { /* "value \0 udid \0 field" */
                const char *z1 = memchr(mem, '\0', ml);
                const char *z2 = z1 ? memchr(z1 + 1, '\0', ml - (size_t)(z1 + 1 - mem)) : NULL;
                if (z2 == NULL)
                    continue;
                u = z1 + 1;
                ul = (size_t)(z2 - u);
            }
            mig_bkey(key, sizeof(key), base, mig_bucket(u, ul));
            snprintf(score, sizeof(score), "%s", set ? "" : e->element[i + 1]->str);
            const char *zv[] = {"ZADD", key, score, mem};
            const char *sv[] = {"SADD", key, mem};
            size_t zl[] = {4, strlen(key), strlen(score), ml};
            size_t sl[] = {4, strlen(key), ml};
            if ((set ? mig_put(m, 3, sv, sl, NULL) : mig_put(m, 4, zv, zl, NULL)) != 0) {
                freeReplyObject(r);
                return -1;
            }
            m->st->fleet++;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->elements == 2 ? r->element[0]->str : "0");
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

/* The event stream, oldest first, each entry into its device's bucket under
 * the same id (an id a bucket has already is an entry copied before). */
static int mig_events(struct mig *m)
{
    char from[64] = "-", key[64];
    for (;;) {
        redisReply *r = mig_src(m, "XRANGE mdm:events %s + COUNT %d", from, MIG_BATCH);
        if (r == NULL)
            return -1;
        size_t n = r->elements;
        for (size_t i = 0; i < n; i++) {
            const redisReply *e = r->element[i], *f = e->element[1];
            const char *udid = "";
            const char *v[2 + 1 + 2 + 64];
            size_t l[ARRAY_LEN(v)];
            int argc = 0;
            for (size_t k = 0; k + 1 < f->elements; k += 2)
                if (strcmp(f->element[k]->str, "udid") == 0)
                    udid = f->element[k + 1]->str;
            mig_bkey(key, sizeof(key), "mdm:events", mig_bucket(udid, strlen(udid)));
            v[argc] = "XADD", l[argc++] = 4;
            v[argc] = key, l[argc++] = strlen(key);
            v[argc] = e->element[0]->str, l[argc++] = e->element[0]->len;
            for (size_t k = 0; k < f->elements && argc < (int)ARRAY_LEN(v); k++)
                v[argc] = f->element[k]->str, l[argc++] = f->element[k]->len;
            if (mig_put(m, argc, v, l, "ERR The ID specified in XADD is equal or smaller") != 0) {
                freeReplyObject(r);
                return -1;
            }
            m->st->fleet++;
        }
        if (n > 0)
            snprintf(from, sizeof(from), "(%s", r->element[n - 1]->element[0]->str);
        freeReplyObject(r);
        if (n < MIG_BATCH)
            return 0;
    }
}

static int mig_fleet_keys(struct mig *m)
{
    static const char *const zsets[] = {"mdm:devices", "mdm:idx", "mdm:repush", "mdm:provision",
                                        "mdm:ddm:enrollments"};
    for (size_t i = 0; i < ARRAY_LEN(zsets); i++)
        if (mig_zset(m, zsets[i], 0) != 0)
            return -1;
    if (mig_zset(m, "mdm:ddm:failed", 1) != 0 || mig_events(m) != 0)
        return -1;
    /* The push-to-check-in histogram is summed over the buckets: bucket 0
     * takes the fleet's. */
    redisReply *h = mig_src(m, "HGETALL mdm:pushlat");
    for (size_t i = 0; h != NULL && i + 1 < h->elements; i += 2) {
        const char *v[] = {"HSET", "mdm:pushlat:{b00}", h->element[i]->str, h->element[i + 1]->str};
        if (mig_put(m, 4, v, NULL, NULL) != 0) {
            freeReplyObject(h);
            return -1;
        }
    }
    freeReplyObject(h);
    return h == NULL ? -1 : 0;
}

/* ---- phase 3: the counters, recounted ------------------------------------- */

struct mig_count {
    long long depth[STORE_BUCKETS];
    char **os[STORE_BUCKETS]; /* os version i of bucket b, count in osn */
    long *osn[STORE_BUCKETS];
    size_t nos[STORE_BUCKETS];
};

static struct mig_count *mig_counts;

static void mig_os_add(int b, const char *v)
{
    struct mig_count *c = mig_counts;
    for (size_t i = 0; i < c->nos[b]; i++)
        if (strcmp(c->os[b][i], v) == 0) {
            c->osn[b][i]++;
            return;
        }
    c->os[b] = xrealloc(c->os[b], (c->nos[b] + 1) * sizeof(char *));
    c->osn[b] = xrealloc(c->osn[b], (c->nos[b] + 1) * sizeof(long));
    c->os[b][c->nos[b]] = xstrdup(v);
    c->osn[b][c->nos[b]++] = 1;
}

/* The device record's udid part of "mdm:<kind>:{UDID}[...]". */
static int mig_udid(const char *k, char *udid, size_t size, int *channel)
{
    const char *o = strchr(k, '{'), *c = o ? strchr(o, '}') : NULL;
    if (c == NULL || (size_t)(c - o - 1) >= size)
        return -1;
    snprintf(udid, size, "%.*s", (int)(c - o - 1), o + 1);
    *channel = c[1] != '\0';
    return 0;
}

static int mig_count_dev(struct mig *m, const char *k)
{
    char udid[256];
    int channel;
    if (mig_udid(k, udid, sizeof(udid), &channel) != 0 || channel)
        return 0;
    redisReply *r = mig_src(m, "HMGET %s os_counted state", k);
    if (r == NULL)
        return -1;
    if (r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
        !(r->element[1]->type == REDIS_REPLY_STRING &&
          strcmp(r->element[1]->str, "checked_out") == 0))
        mig_os_add(mig_bucket(udid, strlen(udid)), r->element[0]->str);
    m->st->devices++;
    freeReplyObject(r);
    return 0;
}

static int mig_count_q(struct mig *m, const char *k)
{
    char udid[256];
    int channel;
    if (mig_udid(k, udid, sizeof(udid), &channel) != 0)
        return 0;
    redisReply *r = mig_src(m, "LLEN %s", k);
    if (r == NULL)
        return -1;
    if (r->type == REDIS_REPLY_INTEGER)
        mig_counts->depth[mig_bucket(udid, strlen(udid))] += r->integer;
    freeReplyObject(r);
    return 0;
}

static int mig_recount(struct mig *m)
{
    char cursor[32] = "0", key[64], n[32];
    struct mig_count c;
    int rc = 0;
    memset(&c, 0, sizeof(c));
    mig_counts = &c;
    if (mig_scan(m, "counts", "mdm:dev:{*", cursor, mig_count_dev) != 0 ||
        (snprintf(cursor, sizeof(cursor), "0"),
         mig_scan(m, "counts", "mdm:q:{*", cursor, mig_count_q)) != 0)
        rc = -1;
    for (int b = 0; rc == 0 && b < STORE_BUCKETS; b++) {
        mig_bkey(key, sizeof(key), "mdm:os", b);
        const char *dv[] = {"DEL", key};
        rc |= mig_put(m, 2, dv, NULL, NULL);
        for (size_t i = 0; rc == 0 && i < c.nos[b]; i++) {
            snprintf(n, sizeof(n), "%ld", c.osn[b][i]);
            const char *v[] = {"HSET", key, c.os[b][i], n};
            rc |= mig_put(m, 4, v, NULL, NULL);
        }
        mig_bkey(key, sizeof(key), "mdm:stats", b);
        snprintf(n, sizeof(n), "%lld", c.depth[b]);
        const char *v[] = {"HSET", key, "queue_depth", n};
        rc |= mig_put(m, 4, v, NULL, NULL);
    }
    for (int b = 0; b < STORE_BUCKETS; b++) {
        for (size_t i = 0; i < c.nos[b]; i++)
            free(c.os[b][i]);
        free(c.os[b]);
        free(c.osn[b]);
    }
    mig_counts = NULL;
    return rc;
}

/* ---- the run ----------------------------------------------------------------- */

static int mig_run(struct mig *m)
{
    char phase[32] = "keys", cursor[32] = "0";
    const char *gv[] = {"HMGET", MIG_STATE, "phase", "cursor"};
    size_t gl[] = {5, strlen(MIG_STATE), 5, 6};
    redisReply *r = mig_dst(m, 4, gv, gl);
    if (r == NULL)
        return -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "done") != 0) {
        snprintf(phase, sizeof(phase), "%s", r->element[0]->str);
        if (r->element[1]->type == REDIS_REPLY_STRING)
            snprintf(cursor, sizeof(cursor), "%s", r->element[1]->str);
        m->st->resumed = 1;
        mig_say(m, "resuming: phase %s, cursor %s", phase, cursor);
    }
    freeReplyObject(r);
    if (strcmp(phase, "keys") == 0) {
        mig_say(m, "keys: configuration into {g}, per-device keys as they are");
        if (mig_scan(m, "keys", "mdm:*", cursor, mig_key) != 0)
            return -1;
        snprintf(phase, sizeof(phase), "fleet");
        mig_save(m, phase, "0");
    }
    if (strcmp(phase, "fleet") == 0) {
        mig_say(m, "fleet: indexes and the event stream into their 64 buckets");
        if (mig_fleet_keys(m) != 0)
            return -1;
        snprintf(phase, sizeof(phase), "counts");
        mig_save(m, phase, "0");
    }
    /* counts: always from the start (a recount writes only at its end). */
    mig_say(m, "counts: OS versions and queue depth recounted from the devices");
    if (mig_recount(m) != 0)
        return -1;
    mig_save(m, "done", "0");
    return 0;
}

int store_migrate_layout(const char *from, const char *to, int timeout_ms,
                         store_migrate_log_fn *log, void *arg, struct store_migrate_stats *st,
                         char *err, size_t errlen)
{
    struct mig *m = xcalloc(1, sizeof(*m));
    int rc = -1;
    memset(st, 0, sizeof(*st));
    memset(m->slot, 0xff, sizeof(m->slot));
    m->timeout_ms = timeout_ms;
    m->err = err;
    m->errlen = errlen;
    m->log = log;
    m->arg = arg;
    m->st = st;
    m->in_place = strcmp(from, to) == 0;
    char *seed = xstrndup(to, strcspn(to, ","));
    m->src = mig_connect(from, timeout_ms);
    if (m->src == NULL)
        snprintf(err, errlen, "cannot connect to the source Redis at %s", from);
    else if (mig_node(m, seed) != 0)
        snprintf(err, errlen, "cannot connect to the destination Redis at %s", seed);
    else
        rc = mig_run(m);
    free(seed);
    if (m->src != NULL)
        redisFree(m->src);
    for (int i = 0; i < m->ndst; i++)
        redisFree(m->dst[i].c);
    free(m);
    return rc;
}
