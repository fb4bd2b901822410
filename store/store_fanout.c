/* store_fanout.c: the fleet-wide reads of the cluster key layout, over the
 * STORE_BUCKETS buckets of an index (docs/REDIS.md, "Redis Cluster"): every
 * bucket's call sent at once (pipelined on each master's connection), the
 * answer made when all replied.  The device list by last seen and the
 * search merge the buckets' sorted sets (a k-way merge that refills a bucket
 * when it runs dry), then read the records of the page, one HGETALL per
 * device on its own slot. */
#include "store_fanout.h"
#include "../core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

#include <jansson.h>

/* ---- the fan-out ---------------------------------------------------------- */

struct store_fan {
    int pending, err;
    store_fan_part_fn *part;
    store_fan_done_fn *done;
    void *arg;
};

struct store_fan_op {
    struct store_fan *f;
    int i;
};

static void store_fan_join(struct store_fan *f, int err)
{
    if (err != MDMD_OK && f->err == MDMD_OK)
        f->err = err;
    if (--f->pending > 0)
        return;
    f->done(f->arg, f->err);
    free(f);
}

static void store_fan_reply(struct store_op *op, int err, const redisReply *r)
{
    struct store_fan_op *fo = op->arg;
    struct store_fan *f = fo->f;
    int i = fo->i;
    free(fo);
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type == REDIS_REPLY_ERROR)
        err = MDMD_EPROTO;
    if (err == MDMD_OK && f->err == MDMD_OK)
        f->part(f->arg, i, r);
    store_fan_join(f, err);
}

void store_fan(struct store *s, int n, store_fan_build_fn *build, store_fan_part_fn *part,
               store_fan_done_fn *done, void *arg)
{
    struct store_fan *f = xcalloc(1, sizeof(*f));
    *f = (struct store_fan){1, MDMD_OK, part, done, arg};
    for (int i = 0; i < n; i++) {
        struct store_argv a;
        int nkeys = 0;
        store_argv_init(&a);
        const char *lua = build(arg, i, &a, &nkeys);
        if (a.n == 0) {
            store_argv_free(&a);
            continue;
        }
        struct store_fan_op *fo = xcalloc(1, sizeof(*fo));
        *fo = (struct store_fan_op){f, i};
        struct store_op *op = store_op_new(s, STORE_CB_NONE, fo);
        f->pending++;
        if (lua != NULL)
            store_cmd_script(s, store_script_get(s, lua), nkeys, a.n, a.v, a.len, store_fan_reply,
                             op);
        else
            store_cmd_argv(s, a.n, a.v, a.len, store_fan_reply, op);
        store_argv_free(&a);
    }
    store_fan_join(f, MDMD_OK); /* the hold taken above */
}

/* ---- a handle the caller may cancel --------------------------------------- */

/* A fan-out answers when its last call did; the caller holds this op, never
 * sent, and store_op_cancel() marks it (store.c only sets the flag). */
static struct store_op *store_fan_handle(struct store *s)
{
    return store_op_new(s, STORE_CB_NONE, NULL);
}

/* 1 when the caller's callback may run; the handle is gone either way. */
static int store_fan_handle_end(struct store_op *h)
{
    int live = !h->cancelled;
    free(h); /* never sent: no timer, no arguments */
    return live;
}

/* ---- merged pages: the device list and the search ------------------------- */

/* One bucket's entries fetched and not yet merged.  Index members hold NUL
 * bytes ("value \0 udid \0 field"): kept with their lengths. */
struct store_fan_run {
    char **m;
    size_t *len;
    double *score;  /* last seen (the list) */
    size_t n, next; /* fetched, merged so far */
    long pos;       /* entries of the bucket fetched before these */
    int done;       /* the bucket has no more */
};

struct store_fan_rec {
    char *udid; /* or the enrollment id (the DDM fleet view) */
    struct store_kv *kv;
    size_t n;
    int ok;    /* the record exists and is in the state asked for */
    char *val; /* the DDM fleet view: the status item's JSON, or NULL */
};

struct store_fan_page {
    struct store *s;
    int search; /* 1: mdm:idx by prefix, else mdm:devices by last seen */
    char *query, *state;
    long offset, pos, scanned, budget, total;
    int limit, round;
    struct store_fan_run run[STORE_BUCKETS];
    struct store_fan_rec *recs; /* every record read, in page order */
    size_t nrecs, first;        /* first: this round's first record */
    char **seen;                /* search: UDIDs already on the page */
    size_t nseen;
    struct store_op *handle;
    int *ran; /* set while starting: the answer came before the start returned */
    int ddm;  /* the DDM fleet view over mdm:ddm:enrollments: 1 eq, 2 ne */
    char *item, *want;
    store_ddm_fn *dcb;
    store_devices_fn *cb;
    void *arg;
};

static void store_fan_run_clear(struct store_fan_run *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->m[i]);
    free(r->m);
    free(r->len);
    free(r->score);
    r->m = NULL;
    r->len = NULL;
    r->score = NULL;
}

static void store_fan_page_free(struct store_fan_page *p)
{
    for (int b = 0; b < STORE_BUCKETS; b++)
        store_fan_run_clear(&p->run[b]);
    for (size_t i = 0; i < p->nrecs; i++) {
        for (size_t k = 0; k < p->recs[i].n; k++) {
            free((void *)p->recs[i].kv[k].key);
            free((void *)p->recs[i].kv[k].val);
        }
        free(p->recs[i].kv);
        free(p->recs[i].udid);
        free(p->recs[i].val);
    }
    free(p->recs);
    for (size_t i = 0; i < p->nseen; i++)
        free(p->seen[i]);
    free(p->seen);
    free(p->query);
    free(p->state);
    free(p->item);
    free(p->want);
    free(p);
}

static void store_fan_page_end(struct store_fan_page *p, int err, long next)
{
    struct store_record *out = xcalloc(p->nrecs + 1, sizeof(*out));
    size_t n = 0;
    for (size_t i = 0; err == MDMD_OK && i < p->nrecs; i++)
        if (p->recs[i].ok)
            out[n++] = (struct store_record){NULL, p->recs[i].kv, p->recs[i].n};
    if (p->ran != NULL)
        *p->ran = 1;
    if (p->ddm) { /* ddm_fleet.lua's answer: {next, total, {{id, json or ''}...}} */
        json_t *rows = json_array();
        for (size_t i = 0; err == MDMD_OK && i < p->nrecs; i++)
            if (p->recs[i].ok)
                json_array_append_new(
                    rows, json_pack("[ss]", p->recs[i].udid, p->recs[i].val ? p->recs[i].val : ""));
        json_t *j = json_pack("[IIo]", (json_int_t)next, (json_int_t)p->total, rows);
        if (store_fan_handle_end(p->handle))
            p->dcb(p->arg, err, err == MDMD_OK ? j : NULL);
        json_decref(j);
    } else if (!store_fan_handle_end(p->handle))
        ; /* cancelled */
    else if (err != MDMD_OK)
        p->cb(p->arg, err, -1, 0, NULL, 0);
    else
        p->cb(p->arg, MDMD_OK, next, p->total, out, n);
    free(out);
    store_fan_page_free(p);
}

/* How many a bucket is asked for: the first round covers the offset. */
static long store_fan_want(const struct store_fan_page *p)
{
    return p->round == 0 ? p->offset + p->limit : p->limit;
}

static const char store_fan_range_lua[] =
    "-- KEYS: index   ARGV: mode(score|lex) start count [lo hi]\n"
    "-- One bucket of a merged page (store_fanout.c): its size (or the entries\n"
    "-- from lo to hi) and count entries from start: newest seen first with\n"
    "-- their scores (score), or by value (lex).\n"
    "local start, count = tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "if ARGV[1] == 'score' then\n"
    "  return {redis.call('ZCARD', KEYS[1]),\n"
    "          redis.call('ZREVRANGE', KEYS[1], start, start + count - 1, 'WITHSCORES')}\n"
    "end\n"
    "return {redis.call('ZLEXCOUNT', KEYS[1], ARGV[4], ARGV[5]),\n"
    "        redis.call('ZRANGEBYLEX', KEYS[1], ARGV[4], ARGV[5], 'LIMIT', start, count)}\n";

static const char *store_fan_range_build(void *arg, int b, struct store_argv *a, int *nkeys)
{
    struct store_fan_page *p = arg;
    struct store_fan_run *r = &p->run[b];
    if (r->done || r->next < r->n)
        return NULL; /* nothing to fetch: a stays empty */
    store_argv_bkey(a, p->s,
                    p->search ? "mdm:idx"
                    : p->ddm  ? "mdm:ddm:enrollments"
                              : "mdm:devices",
                    b);
    store_argv_str(a, p->search ? "lex" : "score");
    store_argv_fmt(a, "%ld", r->pos + (long)r->n);
    store_argv_fmt(a, "%ld", store_fan_want(p));
    if (p->search) {
        store_argv_fmt(a, "[%s", p->query);
        store_argv_fmt(a, "[%s\xff", p->query);
    }
    *nkeys = 1;
    return store_fan_range_lua;
}

static void store_fan_range_part(void *arg, int b, const redisReply *r)
{
    struct store_fan_page *p = arg;
    struct store_fan_run *run = &p->run[b];
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || !store_reply_strings(r->element[1])) {
        run->done = 1; /* malformed: the bucket counts as empty */
        return;
    }
    const redisReply *m = r->element[1];
    size_t step = p->search ? 1 : 2, got = m->elements / step;
    if (p->round == 0)
        p->total += (long)r->element[0]->integer;
    run->pos += (long)run->n;
    store_fan_run_clear(run);
    run->m = xcalloc(got + 1, sizeof(char *));
    run->len = xcalloc(got + 1, sizeof(size_t));
    run->score = xcalloc(got + 1, sizeof(double));
    for (size_t i = 0; i < got; i++) {
        const redisReply *e = m->element[i * step];
        run->m[i] = xcalloc(e->len + 1, 1);
        memcpy(run->m[i], e->str, e->len);
        run->len[i] = e->len;
        run->score[i] = step == 2 ? strtod(m->element[i * step + 1]->str, NULL) : 0;
    }
    run->n = got;
    run->next = 0;
    run->done = (long)got < store_fan_want(p);
}

/* memcmp order, as Redis' lexicographic ranges. */
static int store_fan_lexcmp(const struct store_fan_run *a, const struct store_fan_run *b)
{
    size_t la = a->len[a->next], lb = b->len[b->next];
    int c = memcmp(a->m[a->next], b->m[b->next], la < lb ? la : lb);
    return c != 0 ? c : (la > lb) - (la < lb);
}

/* The bucket whose head comes first in the merged order; -1 when every
 * bucket is done, -2 when one that is not ran dry (fetch it first). */
static int store_fan_head(const struct store_fan_page *p)
{
    int best = -1;
    for (int b = 0; b < STORE_BUCKETS; b++) {
        const struct store_fan_run *r = &p->run[b];
        if (r->next >= r->n) {
            if (!r->done)
                return -2;
            continue;
        }
        if (best < 0 || (p->search ? store_fan_lexcmp(r, &p->run[best]) < 0
                                   : r->score[r->next] > p->run[best].score[p->run[best].next]))
            best = b;
    }
    return best;
}

static void store_fan_page_round(struct store_fan_page *p);

static void store_fan_rec_part(void *arg, int i, const redisReply *r)
{
    struct store_fan_page *p = arg;
    struct store_fan_rec *rec = &p->recs[p->first + (size_t)i];
    if (p->ddm) { /* HGET of the status item: eq or ne the JSON asked for */
        int same = r->type == REDIS_REPLY_STRING && strcmp(r->str, p->want) == 0;
        rec->val = r->type == REDIS_REPLY_STRING ? xstrndup(r->str, r->len) : NULL;
        rec->ok = p->ddm == 1 ? same : !same;
        return;
    }
    if (!store_reply_strings(r) || r->elements % 2 != 0 || r->elements == 0)
        return;
    rec->kv = xcalloc(r->elements / 2 + 1, sizeof(*rec->kv));
    rec->n = r->elements / 2;
    int state_ok = *p->state == '\0';
    for (size_t k = 0; k + 1 < r->elements; k += 2) {
        const redisReply *f = r->element[k], *v = r->element[k + 1];
        char *val = xcalloc(v->len + 1, 1);
        memcpy(val, v->str, v->len);
        rec->kv[k / 2] = (struct store_kv){xstrdup(f->str), val, v->len};
        if (!state_ok && strcmp(f->str, "state") == 0 && strcmp(val, p->state) == 0)
            state_ok = 1;
    }
    rec->ok = state_ok;
}

static const char *store_fan_rec_build(void *arg, int i, struct store_argv *a, int *nkeys)
{
    struct store_fan_page *p = arg;
    (void)nkeys;
    const char *id = p->recs[p->first + (size_t)i].udid, *colon = strchr(id, ':');
    if (p->ddm) { /* the enrollment's status hash, in its device's slot */
        store_argv_str(a, "HGET");
        if (colon != NULL)
            store_argv_fmt(a, "mdm:ddm:status:{%.*s}%s", (int)(colon - id), id, colon);
        else
            store_argv_fmt(a, "mdm:ddm:status:{%s}", id);
        store_argv_str(a, p->item);
        return NULL;
    }
    store_argv_str(a, "HGETALL");
    store_argv_fmt(a, "mdm:dev:{%s}", id);
    return NULL;
}

static size_t store_fan_matched(const struct store_fan_page *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->nrecs; i++)
        n += (size_t)p->recs[i].ok;
    return n;
}

static void store_fan_step_done(void *arg, int err)
{
    struct store_fan_page *p = arg;
    if (err != MDMD_OK) {
        store_fan_page_end(p, err, -1);
        return;
    }
    store_fan_page_round(p);
}

/* 1 when udid is on the page already (search: a device matched by two
 * fields appears once per page, as device_search.lua does). */
static int store_fan_seen(struct store_fan_page *p, const char *udid)
{
    for (size_t i = 0; i < p->nseen; i++)
        if (strcmp(p->seen[i], udid) == 0)
            return 1;
    p->seen = xrealloc(p->seen, (p->nseen + 1) * sizeof(char *));
    p->seen[p->nseen++] = xstrdup(udid);
    return 0;
}

/* The UDID of one merged entry: the member (list), or the middle part of
 * "value \0 udid \0 field" (search); NULL when malformed. */
static char *store_fan_udid(const struct store_fan_page *p, const char *m, size_t len)
{
    if (!p->search)
        return xstrdup(m);
    const char *z1 = memchr(m, '\0', len);
    const char *z2 = z1 != NULL ? memchr(z1 + 1, '\0', len - (size_t)(z1 + 1 - m)) : NULL;
    return z2 != NULL ? xstrndup(z1 + 1, (size_t)(z2 - z1 - 1)) : NULL;
}

/* Merges until the page is full, the budget spent, the index ended or a
 * bucket must be fetched; then reads the records of the devices picked. */
static void store_fan_page_round(struct store_fan_page *p)
{
    size_t have = store_fan_matched(p), cap = (size_t)p->limit, picked = 0;
    int b = 0;
    if (p->round == 0) /* the first fetch is in */
        p->round = 1;
    p->first = p->nrecs;
    while (have + picked < cap && p->scanned < p->budget && (b = store_fan_head(p)) >= 0) {
        struct store_fan_run *r = &p->run[b];
        size_t k = r->next++;
        if (p->pos++ < p->offset)
            continue;
        p->scanned++;
        char *udid = store_fan_udid(p, r->m[k], r->len[k]);
        if (udid == NULL || (p->search && store_fan_seen(p, udid))) {
            free(udid);
            continue;
        }
        p->recs = xrealloc(p->recs, (p->nrecs + 1) * sizeof(*p->recs));
        p->recs[p->nrecs++] = (struct store_fan_rec){udid, NULL, 0, 0, NULL};
        picked++;
    }
    if (picked > 0) {
        store_fan(p->s, (int)picked, store_fan_rec_build, store_fan_rec_part, store_fan_step_done,
                  p);
        return;
    }
    if (b == -2 && have < cap && p->scanned < p->budget) {
        store_fan(p->s, STORE_BUCKETS, store_fan_range_build, store_fan_range_part,
                  store_fan_step_done, p);
        return;
    }
    store_fan_page_end(p, MDMD_OK, b == -1 || p->pos >= p->total ? -1 : p->pos);
}

static struct store_op *store_fan_page_start(struct store *s, int search, const char *query,
                                             long offset, int limit, const char *state, long budget,
                                             store_devices_fn *cb, void *arg)
{
    struct store_fan_page *p = xcalloc(1, sizeof(*p));
    p->s = s;
    p->search = search;
    p->query = xstrdup(query);
    p->state = xstrdup(state);
    p->offset = offset;
    p->limit = limit;
    p->budget = budget;
    p->cb = cb;
    p->arg = arg;
    p->handle = store_fan_handle(s);
    struct store_op *h = p->handle;
    int ran = 0;
    p->ran = &ran;
    store_fan(s, STORE_BUCKETS, store_fan_range_build, store_fan_range_part, store_fan_step_done,
              p);
    if (ran)
        return NULL; /* answered already: p and the handle are gone */
    p->ran = NULL;
    return h;
}

/* ---- the DDM fleet view (ddm_fleet.lua's modes) --------------------------- */

struct store_fan_failed {
    struct store *s;
    struct store_op *handle;
    int *ran;
    long offset, limit;
    char **ids;
    size_t n, from, to;
    long long *count;
    store_ddm_fn *cb;
    void *arg;
};

static int store_fan_strcmp(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static void store_fan_failed_end(struct store_fan_failed *f, int err)
{
    if (f->ran != NULL)
        *f->ran = 1;
    json_t *rows = json_array();
    char n[24];
    for (size_t i = f->from; err == MDMD_OK && i < f->to; i++) {
        snprintf(n, sizeof(n), "%lld", f->count[i - f->from]);
        json_array_append_new(rows, json_pack("[ss]", f->ids[i], n));
    }
    long next = f->offset + f->limit >= (long)f->n ? -1 : f->offset + f->limit;
    json_t *j = json_pack("[IIo]", (json_int_t)next, (json_int_t)f->n, rows);
    if (store_fan_handle_end(f->handle))
        f->cb(f->arg, err, err == MDMD_OK ? j : NULL);
    json_decref(j);
    for (size_t i = 0; i < f->n; i++)
        free(f->ids[i]);
    free(f->ids);
    free(f->count);
    free(f);
}

static const char *store_fan_scard_build(void *arg, int i, struct store_argv *a, int *nkeys)
{
    struct store_fan_failed *f = arg;
    const char *id = f->ids[f->from + (size_t)i], *colon = strchr(id, ':');
    (void)nkeys;
    store_argv_str(a, "SCARD");
    if (colon != NULL)
        store_argv_fmt(a, "mdm:ddm:invalid:{%.*s}%s", (int)(colon - id), id, colon);
    else
        store_argv_fmt(a, "mdm:ddm:invalid:{%s}", id);
    return NULL;
}

static void store_fan_scard_part(void *arg, int i, const redisReply *r)
{
    struct store_fan_failed *f = arg;
    f->count[i] = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
}

static void store_fan_scard_done(void *arg, int err)
{
    store_fan_failed_end(arg, err);
}

static const char *store_fan_members_build(void *arg, int b, struct store_argv *a, int *nkeys)
{
    struct store_fan_failed *f = arg;
    (void)nkeys;
    store_argv_str(a, "SMEMBERS");
    store_argv_bkey(a, f->s, "mdm:ddm:failed", b);
    return NULL;
}

static void store_fan_members_part(void *arg, int b, const redisReply *r)
{
    struct store_fan_failed *f = arg;
    (void)b;
    if (!store_reply_strings(r))
        return;
    f->ids = xrealloc(f->ids, (f->n + r->elements + 1) * sizeof(char *));
    for (size_t i = 0; i < r->elements; i++)
        f->ids[f->n++] = xstrdup(r->element[i]->str);
}

/* The failed set, sorted and paged, then each one's count of invalid
 * declarations: one SCARD per enrollment, on its slot. */
static void store_fan_members_done(void *arg, int err)
{
    struct store_fan_failed *f = arg;
    if (err != MDMD_OK) {
        store_fan_failed_end(f, err);
        return;
    }
    if (f->n > 0)
        qsort(f->ids, f->n, sizeof(char *), store_fan_strcmp);
    f->from = (size_t)f->offset < f->n ? (size_t)f->offset : f->n;
    f->to = f->from + (size_t)f->limit < f->n ? f->from + (size_t)f->limit : f->n;
    f->count = xcalloc(f->to - f->from + 1, sizeof(long long));
    store_fan(f->s, (int)(f->to - f->from), store_fan_scard_build, store_fan_scard_part,
              store_fan_scard_done, f);
}

struct store_op *store_fan_ddm_fleet(struct store *s, const char *mode, const char *item,
                                     const char *want, long offset, int limit, long budget,
                                     store_ddm_fn *cb, void *arg)
{
    int ran = 0;
    struct store_op *h = store_fan_handle(s);
    if (strcmp(mode, "failed") == 0) {
        struct store_fan_failed *f = xcalloc(1, sizeof(*f));
        f->s = s;
        f->handle = h;
        f->ran = &ran;
        f->offset = offset;
        f->limit = limit;
        f->cb = cb;
        f->arg = arg;
        store_fan(s, STORE_BUCKETS, store_fan_members_build, store_fan_members_part,
                  store_fan_members_done, f);
        if (ran)
            return NULL;
        f->ran = NULL;
        return h;
    }
    struct store_fan_page *p = xcalloc(1, sizeof(*p));
    p->s = s;
    p->query = xstrdup("");
    p->state = xstrdup("");
    p->ddm = strcmp(mode, "eq") == 0 ? 1 : 2;
    p->item = xstrdup(item);
    p->want = xstrdup(want);
    p->offset = offset;
    p->limit = limit;
    p->budget = budget;
    p->dcb = cb;
    p->arg = arg;
    p->handle = h;
    p->ran = &ran;
    store_fan(s, STORE_BUCKETS, store_fan_range_build, store_fan_range_part, store_fan_step_done,
              p);
    if (ran)
        return NULL;
    p->ran = NULL;
    return h;
}

struct store_op *store_fan_devices(struct store *s, long offset, int limit, const char *state,
                                   long budget, store_devices_fn *cb, void *arg)
{
    return store_fan_page_start(s, 0, "", offset, limit, state, budget, cb, arg);
}

struct store_op *store_fan_search(struct store *s, const char *query, long offset, int limit,
                                  const char *state, long budget, store_devices_fn *cb, void *arg)
{
    char *q = xstrdup(query);
    for (char *c = q; *c != '\0'; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    struct store_op *op = store_fan_page_start(s, 1, q, offset, limit, state, budget, cb, arg);
    free(q);
    return op;
}

/* ---- /metrics' counters --------------------------------------------------- */

struct store_fan_stats {
    struct store *s;
    struct store_op *handle;
    int *ran;
    struct store_stats st;
    store_stats_fn *cb;
    void *arg;
};

extern const char store_lua_stats[];

static const char *store_fan_stats_build(void *arg, int b, struct store_argv *a, int *nkeys)
{
    struct store_fan_stats *f = arg;
    store_argv_bkey(a, f->s, "mdm:stats", b);
    store_argv_bkey(a, f->s, "mdm:devices", b);
    *nkeys = 2;
    return store_lua_stats;
}

static void store_fan_stats_part(void *arg, int b, const redisReply *r)
{
    struct store_fan_stats *f = arg;
    (void)b;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_INTEGER && r->element[1]->type == REDIS_REPLY_INTEGER) {
        f->st.queue_depth += r->element[0]->integer;
        f->st.devices += r->element[1]->integer;
    }
}

static void store_fan_stats_done(void *arg, int err)
{
    struct store_fan_stats *f = arg;
    if (f->ran != NULL)
        *f->ran = 1;
    if (store_fan_handle_end(f->handle))
        f->cb(f->arg, err, err == MDMD_OK ? &f->st : NULL);
    free(f);
}

struct store_op *store_fan_stats(struct store *s, store_stats_fn *cb, void *arg)
{
    struct store_fan_stats *f = xcalloc(1, sizeof(*f));
    f->s = s;
    f->cb = cb;
    f->arg = arg;
    f->handle = store_fan_handle(s);
    struct store_op *h = f->handle;
    int ran = 0;
    f->ran = &ran;
    store_fan(s, STORE_BUCKETS, store_fan_stats_build, store_fan_stats_part, store_fan_stats_done,
              f);
    if (ran)
        return NULL;
    f->ran = NULL;
    return h;
}

/* ---- the event stream: 64 streams merged by entry id ---------------------- */

static const char store_fan_events_lua[] =
    "-- KEYS: events   ARGV: after until count backlog\n"
    "-- One bucket's stream for the feed (store_fanout.c).  after '': {'b',\n"
    "-- newest id or '', the newest backlog entries}; else {'a', gap (after\n"
    "-- is older than an entry the cap trimmed), entries after it up to\n"
    "-- until (ms)}.\n"
    "local k, after = KEYS[1], ARGV[1]\n"
    "if after == '' then\n"
    "  local t = redis.call('XREVRANGE', k, '+', '-', 'COUNT', 1)\n"
    "  local b = tonumber(ARGV[4])\n"
    "  local out = {}\n"
    "  if b > 0 then out = redis.call('XREVRANGE', k, '+', '-', 'COUNT', b) end\n"
    "  return {'b', t[1] and t[1][1] or '', out}\n"
    "end\n"
    "-- gap: entries were trimmed, and the oldest one left (or none) is past\n"
    "-- after, while newer ones than after were added: some of them are gone.\n"
    "local function gt(x, y)\n"
    "  local xm, xs = string.match(x, '^(%d+)-(%d+)$')\n"
    "  local ym, ys = string.match(y, '^(%d+)-?(%d*)$')\n"
    "  xm, xs, ym, ys = tonumber(xm), tonumber(xs), tonumber(ym), tonumber(ys) or 0\n"
    "  return xm ~= nil and ym ~= nil and (xm > ym or (xm == ym and xs > ys))\n"
    "end\n"
    "local gap = 0\n"
    "if after ~= '0-0' and after ~= '0' and redis.call('EXISTS', k) == 1 then\n"
    "  local info, f = redis.call('XINFO', 'STREAM', k), {}\n"
    "  for i = 1, #info, 2 do f[info[i]] = info[i + 1] end\n"
    "  local first = redis.call('XRANGE', k, '-', '+', 'COUNT', 1)[1]\n"
    "  if tonumber(f['entries-added']) > tonumber(f['length']) and\n"
    "     gt(f['last-generated-id'], after) and (not first or gt(first[1], after)) then\n"
    "    gap = 1\n"
    "  end\n"
    "end\n"
    "return {'a', gap, redis.call('XRANGE', k, '(' .. after, ARGV[2], 'COUNT',\n"
    "                             tonumber(ARGV[3]))}\n";

struct store_fan_ev {
    unsigned long long ms, seq;
    int bucket;
    char *id;
    json_t *fields;
};

struct store_fan_events {
    struct store *s;
    struct store_op *handle;
    int *ran;
    char after[48], until[24];
    int count, backlog, gap;
    char last[48]; /* backlog mode: the newest id of all */
    struct store_fan_ev *ev;
    size_t n;
    store_eval_fn *cb;
    void *arg;
};

static int store_fan_ev_parse(const char *id, unsigned long long *ms, unsigned long long *seq)
{
    char *end;
    *ms = strtoull(id, &end, 10);
    if (*end != '-')
        return -1;
    *seq = strtoull(end + 1, &end, 10);
    return *end == '\0' ? 0 : -1;
}

static int store_fan_ev_cmp(const void *x, const void *y)
{
    const struct store_fan_ev *a = x, *b = y;
    if (a->ms != b->ms)
        return a->ms < b->ms ? -1 : 1;
    if (a->seq != b->seq)
        return a->seq < b->seq ? -1 : 1;
    return (a->bucket > b->bucket) - (a->bucket < b->bucket);
}

static const char *store_fan_events_build(void *arg, int b, struct store_argv *a, int *nkeys)
{
    struct store_fan_events *f = arg;
    store_argv_bkey(a, f->s, "mdm:events", b);
    store_argv_str(a, f->after);
    store_argv_str(a, f->until);
    store_argv_fmt(a, "%d", f->count);
    store_argv_fmt(a, "%d", f->backlog);
    *nkeys = 1;
    return store_fan_events_lua;
}

/* Entries [[id, [field, value...]]...] into f->ev. */
static void store_fan_events_add(struct store_fan_events *f, int b, const redisReply *e)
{
    for (size_t i = 0; e->type == REDIS_REPLY_ARRAY && i < e->elements; i++) {
        const redisReply *x = e->element[i];
        struct store_fan_ev ev = {0, 0, b, NULL, NULL};
        if (x->type != REDIS_REPLY_ARRAY || x->elements != 2 ||
            x->element[0]->type != REDIS_REPLY_STRING || !store_reply_strings(x->element[1]) ||
            store_fan_ev_parse(x->element[0]->str, &ev.ms, &ev.seq) != 0)
            continue;
        ev.id = xstrdup(x->element[0]->str);
        ev.fields = json_object();
        for (size_t k = 0; k + 1 < x->element[1]->elements; k += 2)
            json_object_set_new(ev.fields, x->element[1]->element[k]->str,
                                json_stringn(x->element[1]->element[k + 1]->str,
                                             x->element[1]->element[k + 1]->len));
        f->ev = xrealloc(f->ev, (f->n + 1) * sizeof(*f->ev));
        f->ev[f->n++] = ev;
    }
}

static void store_fan_events_part(void *arg, int b, const redisReply *r)
{
    struct store_fan_events *f = arg;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return;
    if (strcmp(r->element[0]->str, "b") == 0) {
        unsigned long long ms, seq, lm, ls;
        const redisReply *id = r->element[1];
        if (id->type == REDIS_REPLY_STRING && store_fan_ev_parse(id->str, &ms, &seq) == 0 &&
            (store_fan_ev_parse(f->last, &lm, &ls) != 0 || ms > lm || (ms == lm && seq > ls)))
            snprintf(f->last, sizeof(f->last), "%s", id->str);
    } else if (r->element[1]->type == REDIS_REPLY_INTEGER && r->element[1]->integer == 1) {
        f->gap = 1;
    }
    store_fan_events_add(f, b, r->element[2]);
}

static void store_fan_events_done(void *arg, int err)
{
    struct store_fan_events *f = arg;
    char *out = NULL;
    if (err == MDMD_OK) {
        if (f->n > 0)
            qsort(f->ev, f->n, sizeof(*f->ev), store_fan_ev_cmp);
        size_t from = 0, to = f->n;
        const char *last = f->after;
        if (*f->after == '\0') { /* the newest backlog of all, oldest first */
            from = f->n > (size_t)f->backlog ? f->n - (size_t)f->backlog : 0;
            last = *f->last != '\0' ? f->last : "0-0";
        } else {
            /* count at most, but never half of one id: another bucket's
             * entry with the same id would be passed over for good. */
            if (to > (size_t)f->count) {
                to = (size_t)f->count;
                while (to < f->n && f->ev[to].ms == f->ev[to - 1].ms &&
                       f->ev[to].seq == f->ev[to - 1].seq)
                    to++;
            }
            if (to > 0)
                last = f->ev[to - 1].id;
        }
        json_t *evs = json_array();
        for (size_t i = from; i < to; i++)
            json_array_append_new(evs, json_pack("[sO]", f->ev[i].id, f->ev[i].fields));
        json_t *j = json_pack("{sssbso}", "last", last, "gap", f->gap, "events", evs);
        out = json_dumps(j, JSON_COMPACT);
        json_decref(j);
    }
    if (f->ran != NULL)
        *f->ran = 1;
    if (store_fan_handle_end(f->handle))
        f->cb(f->arg, err, 0, out, out != NULL ? strlen(out) : 0);
    free(out);
    for (size_t i = 0; i < f->n; i++) {
        free(f->ev[i].id);
        json_decref(f->ev[i].fields);
    }
    free(f->ev);
    free(f);
}

struct store_op *store_fan_events(struct store *s, const char *after, int count, int backlog,
                                  int64_t until_ms, store_eval_fn *cb, void *arg)
{
    struct store_fan_events *f = xcalloc(1, sizeof(*f));
    struct store_op *h = store_fan_handle(s);
    f->s = s;
    f->handle = h;
    snprintf(f->after, sizeof(f->after), "%s", after);
    snprintf(f->until, sizeof(f->until), "%lld", (long long)until_ms);
    f->count = count;
    f->backlog = backlog;
    f->cb = cb;
    f->arg = arg;
    int ran = 0;
    f->ran = &ran;
    store_fan(s, STORE_BUCKETS, store_fan_events_build, store_fan_events_part,
              store_fan_events_done, f);
    if (ran)
        return NULL;
    f->ran = NULL;
    return h;
}

/* ---- claims from every bucket: the provisioning retry timer --------------- */

struct store_fan_claim {
    struct store *s;
    struct store_op *handle;
    int *ran;
    const char *lua, *base;
    char now[24], before[24], limit[16];
    char **udids;
    size_t n;
    store_udids_fn *cb;
    void *arg;
};

static const char *store_fan_claim_build(void *arg, int b, struct store_argv *a, int *nkeys)
{
    struct store_fan_claim *f = arg;
    store_argv_bkey(a, f->s, f->base, b);
    store_argv_str(a, f->now);
    store_argv_str(a, f->before);
    store_argv_str(a, f->limit);
    *nkeys = 1;
    return f->lua;
}

static void store_fan_claim_part(void *arg, int b, const redisReply *r)
{
    struct store_fan_claim *f = arg;
    (void)b;
    if (!store_reply_strings(r))
        return;
    f->udids = xrealloc(f->udids, (f->n + r->elements + 1) * sizeof(char *));
    for (size_t i = 0; i < r->elements; i++)
        f->udids[f->n++] = xstrdup(r->element[i]->str);
}

static void store_fan_claim_done(void *arg, int err)
{
    struct store_fan_claim *f = arg;
    if (f->ran != NULL)
        *f->ran = 1;
    if (store_fan_handle_end(f->handle))
        f->cb(f->arg, err, err == MDMD_OK ? (const char *const *)f->udids : NULL,
              err == MDMD_OK ? f->n : 0);
    for (size_t i = 0; i < f->n; i++)
        free(f->udids[i]);
    free(f->udids);
    free(f);
}

struct store_op *store_fan_claim(struct store *s, const char *lua, const char *base, int64_t now_ms,
                                 int64_t before_ms, int limit, store_udids_fn *cb, void *arg)
{
    struct store_fan_claim *f = xcalloc(1, sizeof(*f));
    struct store_op *h = store_fan_handle(s);
    int ran = 0;
    f->s = s;
    f->handle = h;
    f->ran = &ran;
    f->lua = lua;
    f->base = base;
    snprintf(f->now, sizeof(f->now), "%lld", (long long)now_ms);
    snprintf(f->before, sizeof(f->before), "%lld", (long long)before_ms);
    /* Each bucket's share of the batch, at least one: a tick claims about
     * limit devices however they spread over the buckets. */
    snprintf(f->limit, sizeof(f->limit), "%d", (limit + STORE_BUCKETS - 1) / STORE_BUCKETS);
    f->cb = cb;
    f->arg = arg;
    store_fan(s, STORE_BUCKETS, store_fan_claim_build, store_fan_claim_part, store_fan_claim_done,
              f);
    if (ran)
        return NULL;
    f->ran = NULL;
    return h;
}

/* ---- the re-push timer: claims per bucket, decisions per device ------------ */

extern const char store_lua_repush_claim[], store_lua_repush_dev[];

/* A claimed device is left alone this long unless repush_dev.lua's fleet
 * write (sent right after it) schedules it otherwise. */
#define STORE_FAN_REPUSH_LEASE_MS 30000

struct store_fan_repush {
    struct store *s;
    struct store_op *handle;
    int *ran;
    char now[24], after[24], max[24], maxn[16];
    json_t *out;
    int pending, err;
    store_eval_fn *cb;
    void *arg;
};

static void store_fan_repush_end(struct store_fan_repush *f)
{
    if (--f->pending > 0)
        return;
    if (f->ran != NULL)
        *f->ran = 1;
    char *js = f->err == MDMD_OK ? json_dumps(f->out, JSON_COMPACT) : NULL;
    if (store_fan_handle_end(f->handle))
        f->cb(f->arg, f->err, 0, js, js != NULL ? strlen(js) : 0);
    free(js);
    json_decref(f->out);
    free(f);
}

static void store_fan_repush_dev(struct store_op *op, int err, const redisReply *r)
{
    struct store_fan_repush *f = op->arg;
    err = store_reply_error(err, r);
    json_t *j = err == MDMD_OK && r->type == REDIS_REPLY_STRING && r->len > 0
                    ? json_loadb(r->str, r->len, 0, NULL)
                    : NULL;
    if (json_is_array(j))
        json_array_append(f->out, j);
    json_decref(j);
    /* A device that failed stays claimed until the lease ends: tried again. */
    if (err != MDMD_OK && f->err == MDMD_OK)
        f->err = err;
    store_fan_repush_end(f);
}

/* "mdm:<kind>:{UDID}" or, for a user channel "UDID:user", "mdm:<kind>:{UDID}:user". */
static void store_fan_chan_key(struct store_argv *a, const char *kind, const char *id)
{
    const char *c = strchr(id, ':');
    if (c != NULL)
        store_argv_fmt(a, "mdm:%s:{%.*s}:%s", kind, (int)(c - id), id, c + 1);
    else
        store_argv_fmt(a, "mdm:%s:{%s}", kind, id);
}

static void store_fan_repush_claimed(void *arg, int err, const char *const *udids, size_t n)
{
    struct store_fan_repush *f = arg;
    f->err = err;
    for (size_t i = 0; err == MDMD_OK && i < n; i++) {
        struct store_argv a;
        store_argv_init(&a);
        store_fan_chan_key(&a, "dev", udids[i]);
        store_fan_chan_key(&a, "q", udids[i]);
        store_argv_str(&a, udids[i]);
        store_argv_str(&a, f->now);
        store_argv_str(&a, f->after);
        store_argv_str(&a, f->max);
        store_argv_str(&a, f->maxn);
        f->pending++;
        (void)store_argv_fx_script(f->s, store_lua_repush_dev, 2, &a, store_fan_repush_dev,
                                   STORE_CB_NONE, f);
    }
    store_fan_repush_end(f);
}

struct store_op *store_fan_repush(struct store *s, int64_t now_ms, int limit, int64_t after_ms,
                                  int64_t max_ms, int max_attempts, store_eval_fn *cb, void *arg)
{
    struct store_fan_repush *f = xcalloc(1, sizeof(*f));
    struct store_op *h = store_fan_handle(s);
    int ran = 0;
    f->s = s;
    f->handle = h;
    f->ran = &ran;
    snprintf(f->now, sizeof(f->now), "%lld", (long long)now_ms);
    snprintf(f->after, sizeof(f->after), "%lld", (long long)after_ms);
    snprintf(f->max, sizeof(f->max), "%lld", (long long)max_ms);
    snprintf(f->maxn, sizeof(f->maxn), "%d", max_attempts);
    f->out = json_array();
    f->pending = 1; /* the claims */
    f->cb = cb;
    f->arg = arg;
    (void)store_fan_claim(s, store_lua_repush_claim, "mdm:repush",
                          now_ms + STORE_FAN_REPUSH_LEASE_MS, now_ms, limit,
                          store_fan_repush_claimed, f);
    if (ran)
        return NULL;
    f->ran = NULL;
    return h;
}

/* ---- webhooks: a consumer group per bucket stream ------------------------- */

extern const char store_lua_hook_next[], store_lua_hook_status[];

/* hook_next.lua on every bucket of mdm:events and on the replay stream (call
 * STORE_BUCKETS), all at once: a replayed dead letter wins, else the oldest
 * entry by id.  Every bucket's pick is pending for this consumer either way,
 * so the ones not taken now are the first its next look finds. */
struct store_fan_hook {
    struct store *s;
    struct store_op *handle;
    int *ran;
    char group[48], consumer[96], idle[24], replay[128];
    char **groups; /* hook_status: the groups asked about */
    int ngroups;
    json_t *best, *sum; /* hook_next's pick; hook_status' totals */
    int best_b;
    store_eval_fn *cb;
    void *arg;
};

static void store_fan_hook_free(struct store_fan_hook *f)
{
    for (int i = 0; i < f->ngroups; i++)
        free(f->groups[i]);
    free(f->groups);
    json_decref(f->best);
    json_decref(f->sum);
    free(f);
}

static const char *store_fan_hook_next_build(void *arg, int b, struct store_argv *a, int *nkeys)
{
    struct store_fan_hook *f = arg;
    if (b == STORE_BUCKETS) {
        store_argv_str(a, f->replay);
        *nkeys = 1;
    } else {
        store_argv_bkey(a, f->s, "mdm:events", b);
        store_argv_bkey(a, f->s, "mdm:stats", b);
        *nkeys = 2;
    }
    store_argv_str(a, f->group);
    store_argv_str(a, f->consumer);
    store_argv_str(a, f->idle);
    store_argv_str(a, b == STORE_BUCKETS ? "replay" : "events");
    return store_lua_hook_next;
}

/* Stream ids "<ms>-<seq>": -1, 0, 1 as a is older, the same, newer. */
static int store_fan_id_cmp(const char *a, const char *b)
{
    unsigned long long am = 0, as = 0, bm = 0, bs = 0;
    sscanf(a, "%llu-%llu", &am, &as);
    sscanf(b, "%llu-%llu", &bm, &bs);
    if (am != bm)
        return am < bm ? -1 : 1;
    return as < bs ? -1 : as > bs;
}

static void store_fan_hook_next_part(void *arg, int b, const redisReply *r)
{
    struct store_fan_hook *f = arg;
    if (r->type != REDIS_REPLY_STRING || r->len == 0)
        return;
    json_t *j = json_loadb(r->str, r->len, 0, NULL);
    const char *id = json_string_value(json_object_get(j, "id"));
    if (id == NULL) {
        json_decref(j);
        return;
    }
    const char *have = f->best != NULL ? json_string_value(json_object_get(f->best, "id")) : NULL;
    if (b == STORE_BUCKETS ||
        (f->best_b != STORE_BUCKETS && (have == NULL || store_fan_id_cmp(id, have) < 0))) {
        json_decref(f->best);
        f->best = j;
        f->best_b = b;
        return;
    }
    json_decref(j);
}

static void store_fan_hook_next_done(void *arg, int err)
{
    struct store_fan_hook *f = arg;
    char *js = NULL;
    if (f->ran != NULL)
        *f->ran = 1;
    if (err == MDMD_OK && f->best != NULL) {
        if (f->best_b != STORE_BUCKETS)
            json_object_set_new(f->best, "b", json_integer(f->best_b));
        js = json_dumps(f->best, JSON_COMPACT);
    }
    if (store_fan_handle_end(f->handle))
        f->cb(f->arg, err, 0, js != NULL ? js : "", js != NULL ? strlen(js) : 0);
    free(js);
    store_fan_hook_free(f);
}

struct store_op *store_fan_hook_next(struct store *s, const char *group, const char *consumer,
                                     const char *idle_ms, store_eval_fn *cb, void *arg)
{
    struct store_fan_hook *f = xcalloc(1, sizeof(*f));
    struct store_op *h = store_fan_handle(s);
    int ran = 0;
    char rest[96];
    f->s = s;
    f->handle = h;
    f->ran = &ran;
    snprintf(f->group, sizeof(f->group), "%s", group);
    snprintf(f->consumer, sizeof(f->consumer), "%s", consumer);
    snprintf(f->idle, sizeof(f->idle), "%s", idle_ms);
    snprintf(rest, sizeof(rest), "hook:replay:%s", group);
    store_global_key(s, f->replay, sizeof(f->replay), rest);
    f->best_b = -1;
    f->cb = cb;
    f->arg = arg;
    store_fan(s, STORE_BUCKETS + 1, store_fan_hook_next_build, store_fan_hook_next_part,
              store_fan_hook_next_done, f);
    if (ran)
        return NULL;
    f->ran = NULL;
    return h;
}

/* hook_status.lua per bucket ("events") and once on {g} ("g"), added up:
 * pending and lag summed (lag -1 when a bucket does not know it). */
static const char *store_fan_hook_status_build(void *arg, int b, struct store_argv *a, int *nkeys)
{
    struct store_fan_hook *f = arg;
    if (b == STORE_BUCKETS) {
        store_argv_gkey(a, f->s, "hook:dead");
        store_argv_gkey(a, f->s, "hook:replay:");
    } else {
        store_argv_bkey(a, f->s, "mdm:events", b);
        store_argv_bkey(a, f->s, "mdm:stats", b);
    }
    *nkeys = 2;
    store_argv_str(a, b == STORE_BUCKETS ? "g" : "events");
    for (int i = 0; i < f->ngroups; i++)
        store_argv_str(a, f->groups[i]);
    return store_lua_hook_status;
}

static void store_fan_hook_status_part(void *arg, int b, const redisReply *r)
{
    struct store_fan_hook *f = arg;
    (void)b;
    json_t *j = r->type == REDIS_REPLY_STRING ? json_loadb(r->str, r->len, 0, NULL) : NULL;
    json_t *g = json_object_get(j, "groups"), *sg = json_object_get(f->sum, "groups");
    const char *name;
    json_t *o;
    json_object_foreach(g, name, o)
    {
        json_t *have = json_object_get(sg, name);
        if (have == NULL) {
            json_object_set(sg, name, o);
            continue;
        }
        static const char *const add[] = {"pending", "replay", "lag"};
        for (size_t i = 0; i < ARRAY_LEN(add); i++) {
            json_int_t x = json_integer_value(json_object_get(have, add[i]));
            json_int_t y = json_integer_value(json_object_get(o, add[i]));
            json_int_t v = strcmp(add[i], "lag") == 0 && (x < 0 || y < 0) ? -1 : x + y;
            json_object_set_new(have, add[i], json_integer(v));
        }
    }
    static const char *const top[] = {"dead", "trimmed"};
    for (size_t i = 0; i < ARRAY_LEN(top); i++)
        json_object_set_new(f->sum, top[i],
                            json_integer(json_integer_value(json_object_get(f->sum, top[i])) +
                                         json_integer_value(json_object_get(j, top[i]))));
    json_decref(j);
}

static void store_fan_hook_status_done(void *arg, int err)
{
    struct store_fan_hook *f = arg;
    if (f->ran != NULL)
        *f->ran = 1;
    char *js = err == MDMD_OK ? json_dumps(f->sum, JSON_COMPACT) : NULL;
    if (store_fan_handle_end(f->handle))
        f->cb(f->arg, err, 0, js, js != NULL ? strlen(js) : 0);
    free(js);
    store_fan_hook_free(f);
}

struct store_op *store_fan_hook_status(struct store *s, const char *const *groups, int n,
                                       store_eval_fn *cb, void *arg)
{
    struct store_fan_hook *f = xcalloc(1, sizeof(*f));
    struct store_op *h = store_fan_handle(s);
    int ran = 0;
    f->s = s;
    f->handle = h;
    f->ran = &ran;
    f->groups = xcalloc((size_t)n + 1, sizeof(char *));
    for (int i = 0; i < n; i++)
        f->groups[i] = xstrdup(groups[i]);
    f->ngroups = n;
    f->sum =
        json_pack("{s:{}, s:I, s:I}", "groups", "dead", (json_int_t)0, "trimmed", (json_int_t)0);
    f->cb = cb;
    f->arg = arg;
    store_fan(s, STORE_BUCKETS + 1, store_fan_hook_status_build, store_fan_hook_status_part,
              store_fan_hook_status_done, f);
    if (ran)
        return NULL;
    f->ran = NULL;
    return h;
}

/* hook_done.lua's two slots in the cluster layout: the dead letter parked in
 * {g} first (XADD), then the entry let go on its bucket (XACK) or, replayed,
 * in {g} (XDEL); a failure in between leaves it pending, sent again (at least
 * once). */
struct store_fan_hook_done {
    struct store_op *handle;
    int *ran;
    struct store *s;
    struct store_argv end; /* the XACK or XDEL */
    store_eval_fn *cb;
    void *arg;
};

static void store_fan_hook_done_end(struct store_fan_hook_done *d, int err, long long num)
{
    if (d->ran != NULL)
        *d->ran = 1;
    if (store_fan_handle_end(d->handle))
        d->cb(d->arg, err, num, NULL, 0);
    store_argv_free(&d->end);
    free(d);
}

static void store_fan_hook_acked(struct store_op *op, int err, const redisReply *r)
{
    struct store_fan_hook_done *d = op->arg;
    err = store_reply_error(err, r);
    store_fan_hook_done_end(d, err,
                            err == MDMD_OK && r->type == REDIS_REPLY_INTEGER ? r->integer : 0);
}

static void store_fan_hook_ack(struct store_fan_hook_done *d)
{
    struct store_op *op = store_op_new(d->s, STORE_CB_NONE, d);
    (void)store_cmd_argv(d->s, d->end.n, d->end.v, d->end.len, store_fan_hook_acked, op);
}

static void store_fan_hook_parked(struct store_op *op, int err, const redisReply *r)
{
    struct store_fan_hook_done *d = op->arg;
    err = store_reply_error(err, r);
    if (err != MDMD_OK)
        store_fan_hook_done_end(d, err, 0);
    else
        store_fan_hook_ack(d);
}

/* XADD of the dead letter to {g}, then the ack. */
static void store_fan_hook_park(struct store_fan_hook_done *d, const char *const *argv,
                                const size_t *lens)
{
    static const char *const names[] = {"event_id", "payload", "error",
                                        "attempts", "dead_at", "url"};
    struct store *s = d->s;
    struct store_argv a;
    store_argv_init(&a);
    store_argv_str(&a, "XADD");
    store_argv_gkey(&a, s, "hook:dead");
    store_argv_str(&a, "MAXLEN");
    store_argv_str(&a, "~");
    store_argv_str(&a, "100000");
    store_argv_str(&a, "*");
    store_argv_str(&a, "group");
    store_argv_str(&a, argv[0]);
    for (int i = 0; i < 6; i++) {
        store_argv_str(&a, names[i]);
        store_argv_push(&a, argv[4 + i], lens != NULL ? lens[4 + i] : strlen(argv[4 + i]));
    }
    struct store_op *op = store_op_new(s, STORE_CB_NONE, d);
    (void)store_cmd_argv(s, a.n, a.v, a.len, store_fan_hook_parked, op);
    store_argv_free(&a);
}

struct store_op *store_fan_hook_done(struct store *s, const char *events, const char *const *argv,
                                     const size_t *lens, int argc, store_eval_fn *cb, void *arg)
{
    /* argv: group src id outcome [event_id payload error attempts now url] */
    char rest[96], k[128];
    struct store_fan_hook_done *d = xcalloc(1, sizeof(*d));
    struct store_op *h = store_fan_handle(s);
    int ran = 0;
    d->handle = h;
    d->ran = &ran;
    d->s = s;
    d->cb = cb;
    d->arg = arg;
    store_argv_init(&d->end);
    int replayed = strcmp(argv[1], "replay") == 0;
    snprintf(rest, sizeof(rest), "hook:replay:%s", argv[0]);
    store_argv_str(&d->end, replayed ? "XDEL" : "XACK");
    store_argv_str(&d->end, replayed ? store_global_key(s, k, sizeof(k), rest) : events);
    if (!replayed)
        store_argv_str(&d->end, argv[0]);
    store_argv_str(&d->end, argv[2]);
    store_argv_own(&d->end); /* sent after this returns */
    if (strcmp(argv[3], "dead") != 0 || argc < 10) {
        store_fan_hook_ack(d);
    } else {
        store_fan_hook_park(d, argv, lens);
    }
    if (ran)
        return NULL;
    d->ran = NULL;
    return h;
}
