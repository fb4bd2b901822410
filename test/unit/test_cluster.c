/* test_cluster.c: the Redis Cluster router of store/ (store_cluster.c and the
 * routing in store.c).  The unit part always runs: key slots against the
 * vectors of the Redis Cluster specification, redirect parsing, the slot
 * table from a CLUSTER SLOTS reply.  With CLUSTER_SEEDS set (a seed list,
 * test/integration/cluster.sh) it also runs against that real cluster: keys
 * spread over every master, a slot migrated under traffic (ASK, then MOVED),
 * and kill -9 of a master during a wave of WAIT-acknowledged writes: after
 * the failover every acknowledged write is there.  VERBOSE=1 logs at debug. */
#include "../harness.h"

#include "../../core/log.h"
#include "../../core/util.h"
#include "../../store/store.h"
#include "../../store/store_cluster.h"

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static struct event_base *t_base;

#define WAIT_UNTIL(cond, ms)                                                                       \
    do {                                                                                           \
        int64_t t_deadline_ = util_mono_ms() + (ms);                                               \
        while (!(cond) && util_mono_ms() < t_deadline_)                                            \
            event_base_loop(t_base, EVLOOP_ONCE);                                                  \
    } while (0)

/* ---- unit ---------------------------------------------------------------- */

/* The key layout's names: unchanged on the single layout; buckets by the
 * UDID's slot and the configuration's one slot on the cluster layout. */
TEST(t_layout_names)
{
    struct event_base *base = event_base_new();
    struct store *s = store_new(base, "/nonexistent/redis.sock", 100);
    char buf[64];
    CHECK(!store_layout_cluster(s) && store_nbuckets(s) == 1);
    CHECK(strcmp(store_bucket_key(s, buf, sizeof(buf), "mdm:devices", 7), "mdm:devices") == 0);
    CHECK(strcmp(store_global_key(s, buf, sizeof(buf), "ddm:decls"), "mdm:ddm:decls") == 0);
    store_set_layout(s, STORE_LAYOUT_CLUSTER);
    CHECK(store_layout_cluster(s) && store_nbuckets(s) == STORE_BUCKETS);
    CHECK(strcmp(store_bucket_key(s, buf, sizeof(buf), "mdm:devices", 7), "mdm:devices:{b07}") ==
          0);
    CHECK(strcmp(store_global_key(s, buf, sizeof(buf), "ddm:decls"), "mdm:{g}:ddm:decls") == 0);
    CHECK(store_bucket_of("mdm:dev:{ABC-1}", 15) == (int)(store_cluster_slot("ABC-1", 5) % 64));
    CHECK(store_bucket_of("mdm:dev:{ABC-1}:alice", 21) == store_bucket_of("mdm:q:{ABC-1}", 13));
    store_set_layout(s, STORE_LAYOUT_SINGLE);
    CHECK(!store_layout_cluster(s));
    store_free(s);
    event_base_free(base);
}

TEST(t_crc16_vector)
{
    /* The specification's check value: CRC16-XMODEM("123456789") = 0x31C3. */
    CHECK(store_cluster_crc16("123456789", 9) == 0x31C3);
    CHECK(store_cluster_crc16("", 0) == 0);
}

static unsigned t_slot(const char *k)
{
    return store_cluster_slot(k, strlen(k));
}

TEST(t_slots)
{
    CHECK(t_slot("123456789") == (0x31C3 & 16383));
    CHECK(t_slot("foo") == 12182); /* CLUSTER KEYSLOT foo */
    CHECK(t_slot("bar") == 5061);
    /* Hash tags, the specification's examples. */
    CHECK(t_slot("{user1000}.following") == t_slot("{user1000}.followers"));
    CHECK(t_slot("{user1000}.following") == t_slot("user1000"));
    CHECK(t_slot("foo{}{bar}") == store_cluster_crc16("foo{}{bar}", 10) % 16384);
    CHECK(t_slot("foo{{bar}}zap") == t_slot("{bar"));
    CHECK(t_slot("foo{bar}{zap}") == t_slot("bar"));
    CHECK(t_slot("no{close") == store_cluster_crc16("no{close", 8) % 16384);
    /* mdmd's own: a device and its channels share the UDID's slot. */
    CHECK(t_slot("mdm:dev:{ABC-1}") == t_slot("mdm:q:{ABC-1}:alice"));
    CHECK(t_slot("mdm:dev:{ABC-1}") == t_slot("ABC-1"));
}

TEST(t_redirect_parse)
{
    char addr[80];
    int ask = -1, slot = -1;
    static const char moved[] = "MOVED 3999 127.0.0.1:6381";
    static const char askr[] = "ASK 42 [::1]:7001";
    CHECK(store_cluster_redirect(moved, strlen(moved), &ask, &slot, addr, sizeof(addr)) == 1);
    CHECK(ask == 0 && slot == 3999 && strcmp(addr, "127.0.0.1:6381") == 0);
    CHECK(store_cluster_redirect(askr, strlen(askr), &ask, &slot, addr, sizeof(addr)) == 1);
    CHECK(ask == 1 && slot == 42 && strcmp(addr, "[::1]:7001") == 0);
    static const char *const bad[] = {"ERR wrong number of arguments",
                                      "MOVED 16384 1.2.3.4:1",
                                      "MOVED -1 1.2.3.4:1",
                                      "MOVED 12 nowhere",
                                      "ASK 1",
                                      "NOSCRIPT No matching script"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        CHECK(store_cluster_redirect(bad[i], strlen(bad[i]), &ask, &slot, addr, sizeof(addr)) == 0);
}

/* A hand-made CLUSTER SLOTS reply: [[lo, hi, [ip, port, id], [replica...]]...]. */
static redisReply *t_reply(int type)
{
    redisReply *r = xcalloc(1, sizeof(*r));
    r->type = type;
    return r;
}

static redisReply *t_int(long long v)
{
    redisReply *r = t_reply(REDIS_REPLY_INTEGER);
    r->integer = v;
    return r;
}

static redisReply *t_str(const char *s)
{
    redisReply *r = t_reply(REDIS_REPLY_STRING);
    r->str = xstrdup(s);
    r->len = strlen(s);
    return r;
}

static redisReply *t_arr(size_t n, ...)
{
    va_list ap;
    redisReply *r = t_reply(REDIS_REPLY_ARRAY);
    r->elements = n;
    r->element = xcalloc(n, sizeof(*r->element));
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        r->element[i] = va_arg(ap, redisReply *);
    va_end(ap);
    return r;
}

TEST(t_slots_load)
{
    struct store_cluster *cl = store_cluster_new();
    redisReply *r =
        t_arr(2,
              t_arr(4, t_int(0), t_int(8191), t_arr(3, t_str("127.0.0.1"), t_int(7000), t_str("a")),
                    t_arr(3, t_str("127.0.0.1"), t_int(7003), t_str("d"))),
              t_arr(3, t_int(8192), t_int(16383), t_arr(3, t_str("::1"), t_int(7001), t_str("b"))));
    CHECK(store_cluster_owner(cl, 0) == -1);
    CHECK(store_cluster_load(cl, r) == 16384);
    CHECK(store_cluster_nnodes(cl) == 2);
    int a = store_cluster_owner(cl, 0), b = store_cluster_owner(cl, 16383);
    CHECK(a >= 0 && b >= 0 && a != b);
    CHECK(strcmp(store_cluster_addr(cl, a), "127.0.0.1:7000") == 0);
    CHECK(strcmp(store_cluster_addr(cl, b), "[::1]:7001") == 0);
    CHECK(store_cluster_owner(cl, 8191) == a && store_cluster_owner(cl, 8192) == b);
    CHECK(store_cluster_replicas(cl, 100) == 1 && store_cluster_replicas(cl, 9000) == 0);
    /* MOVED for one slot, then a reply of another shape leaves the table. */
    store_cluster_assign(cl, 5, b);
    CHECK(store_cluster_owner(cl, 5) == b);
    redisReply *bad = t_arr(1, t_arr(2, t_int(0), t_int(1)));
    CHECK(store_cluster_load(cl, bad) == -1);
    CHECK(store_cluster_owner(cl, 5) == b && store_cluster_owner(cl, 6) == a);
    CHECK(store_cluster_node(cl, "127.0.0.1:7000") == a); /* found, not added again */
    freeReplyObject(r);
    freeReplyObject(bad);
    store_cluster_free(cl);
}

TEST(t_addr_list)
{
    CHECK(store_addr_valid("127.0.0.1:7000,127.0.0.1:7001") == 1);
    CHECK(store_addr_valid("127.0.0.1:7000, [::1]:7001,/run/redis.sock") == 1);
    CHECK(store_addr_valid("127.0.0.1:7000,,127.0.0.1:7001") == 0);
    CHECK(store_addr_valid("127.0.0.1:7000,redis.example.com:7001") == 0);
    CHECK(store_addr_valid("") == 0);
}

/* ---- live, on the cluster of test/integration/cluster.sh -------------------- */

static const char *t_seeds;
static struct store *t_s;
static struct store_script *t_set, *t_get;

struct t_res {
    int done, err;
    char val[64];
};

static void t_on_eval(void *arg, int err, long long num, const char *str, size_t len)
{
    struct t_res *r = arg;
    (void)num;
    r->done = 1;
    r->err = err;
    snprintf(r->val, sizeof(r->val), "%.*s", str != NULL ? (int)len : 0, str != NULL ? str : "");
}

static void t_on_done(void *arg, int err)
{
    struct t_res *r = arg;
    r->done = 1;
    r->err = err;
}

static int t_call(struct store_script *sc, const char *key, const char *val, struct t_res *r)
{
    const char *argv[] = {key, val};
    memset(r, 0, sizeof(*r));
    (void)store_eval(t_s, sc, 1, val != NULL ? 2 : 1, argv, NULL, t_on_eval, r);
    WAIT_UNTIL(r->done, 5000);
    return r->done ? r->err : MDMD_ETIMEDOUT;
}

/* A synchronous connection to one node, for the test's own checks. */
static redisContext *t_node(int port)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c == NULL || c->err != 0) {
        redisFree(c);
        return NULL;
    }
    return c;
}

static int t_masters[16], t_nmasters;

static void t_find_masters(void)
{
    char *list = xstrdup(getenv("CLUSTER_MASTERS") ? getenv("CLUSTER_MASTERS") : ""), *save;
    t_nmasters = 0;
    for (char *p = strtok_r(list, " ", &save); p != NULL && t_nmasters < 16;
         p = strtok_r(NULL, " ", &save))
        t_masters[t_nmasters++] = atoi(p);
    free(list);
}

static long long t_int_reply(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    long long v = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return v;
}

static char *t_str_reply(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    char *s = r != NULL && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
                  ? xstrdup(r->str)
                  : xstrdup(r != NULL && r->type == REDIS_REPLY_ERROR ? r->str : "");
    freeReplyObject(r);
    return s;
}

TEST(t_live_spread)
{
    struct t_res r;
    char key[64], val[32];
    int fails = 0;
    CHECK(store_connected(t_s));
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "mdm:dev:{spread-%d}", i);
        snprintf(val, sizeof(val), "v%d", i);
        fails += t_call(t_set, key, val, &r) != MDMD_OK;
    }
    CHECK(fails == 0);
    for (int i = 0; i < t_nmasters; i++) {
        redisContext *c = t_node(t_masters[i]);
        long long n = c != NULL ? t_int_reply(c, "DBSIZE") : -1;
        printf("master 127.0.0.1:%d keys=%lld\n", t_masters[i], n);
        CHECK(n > 100); /* 1,000 keys over 3 masters: about 333 each */
        redisFree(c);
    }
    CHECK(t_nmasters == 3);
    CHECK(t_call(t_get, "mdm:dev:{spread-7}", NULL, &r) == MDMD_OK && strcmp(r.val, "v7") == 0);
    /* Scripts are loaded per node: a master that lost its script cache
     * answers NOSCRIPT, and the store resends that call as EVAL. */
    for (int i = 0; i < t_nmasters; i++) {
        redisContext *c = t_node(t_masters[i]);
        char *ok = c != NULL ? t_str_reply(c, "SCRIPT FLUSH") : xstrdup("");
        CHECK(strcmp(ok, "OK") == 0);
        free(ok);
        redisFree(c);
    }
    fails = 0;
    for (int i = 0; i < 30; i++) {
        snprintf(key, sizeof(key), "mdm:dev:{spread-%d}", i);
        snprintf(val, sizeof(val), "v%d", i);
        fails += t_call(t_get, key, NULL, &r) != MDMD_OK || strcmp(r.val, val) != 0;
    }
    CHECK(fails == 0);
}

/* The owner of key's slot among t_masters, by asking each (CLUSTER KEYSLOT +
 * CLUSTER COUNTKEYSINSLOT would not say who serves it). */
static int t_owner_port(const char *key)
{
    for (int i = 0; i < t_nmasters; i++) {
        redisContext *c = t_node(t_masters[i]);
        char *v = c != NULL ? t_str_reply(c, "GET %s", key) : xstrdup("");
        int here = strncmp(v, "MOVED", 5) != 0 && strncmp(v, "ASK", 3) != 0;
        free(v);
        redisFree(c);
        if (here)
            return t_masters[i];
    }
    return -1;
}

/* Moves the slot of "mdm:dev:{spread-1}" to another master as redis-cli
 * --cluster reshard does, with store traffic in each phase: during the
 * migration a new key in the slot is ASKed to the target, an old one is
 * still served by the source; after it, the old owner answers MOVED. */
TEST(t_live_migrate)
{
    const char *key = "mdm:dev:{spread-1}", *newkey = "mdm:q:{spread-1}";
    unsigned slot = t_slot(key);
    int src = t_owner_port(key), dst = -1;
    struct t_res r;
    for (int i = 0; i < t_nmasters; i++)
        if (t_masters[i] != src)
            dst = t_masters[i];
    CHECK(src > 0 && dst > 0);
    redisContext *cs = t_node(src), *cd = t_node(dst);
    if (cs == NULL || cd == NULL) {
        CHECK(0);
        return;
    }
    char *sid = t_str_reply(cs, "CLUSTER MYID"), *did = t_str_reply(cd, "CLUSTER MYID");
    char *a = t_str_reply(cd, "CLUSTER SETSLOT %u IMPORTING %s", slot, sid);
    char *b = t_str_reply(cs, "CLUSTER SETSLOT %u MIGRATING %s", slot, did);
    CHECK(strcmp(a, "OK") == 0 && strcmp(b, "OK") == 0);
    /* Migrating: the old key is still at the source; the new one goes to the target by ASK. */
    CHECK(t_call(t_get, key, NULL, &r) == MDMD_OK && strcmp(r.val, "v1") == 0);
    CHECK(t_call(t_set, newkey, "asked", &r) == MDMD_OK);
    char *ok = t_str_reply(cd, "ASKING");
    CHECK(t_int_reply(cd, "EXISTS %s", newkey) == 1); /* written on the target */
    char *m = t_str_reply(cs, "MIGRATE 127.0.0.1 %d %s 0 5000 KEYS %s", dst, "", key);
    CHECK(strcmp(m, "OK") == 0);
    /* The old key moved, the slot not yet: ASK again, now for the old key. */
    CHECK(t_call(t_get, key, NULL, &r) == MDMD_OK && strcmp(r.val, "v1") == 0);
    for (int i = 0; i < t_nmasters; i++) {
        redisContext *c = t_node(t_masters[i]);
        char *o = c != NULL ? t_str_reply(c, "CLUSTER SETSLOT %u NODE %s", slot, did) : NULL;
        free(o);
        redisFree(c);
    }
    /* The store's table still says src: MOVED, then served by dst. */
    CHECK(t_call(t_get, key, NULL, &r) == MDMD_OK && strcmp(r.val, "v1") == 0);
    CHECK(t_call(t_get, newkey, NULL, &r) == MDMD_OK && strcmp(r.val, "asked") == 0);
    CHECK(t_owner_port(key) == dst);
    free(sid);
    free(did);
    free(a);
    free(b);
    free(m);
    free(ok);
    redisFree(cs);
    redisFree(cd);
}

/* kill -9 of a master during a wave of writes each acknowledged with WAIT:
 * after the failover every acknowledged write is readable.  Writes that
 * failed (the master gone, the promoted replica without a replica of its
 * own) were never acknowledged; the wave retries each until it is, or 30 s. */
#define T_WAVE 1000

struct t_wave {
    int acked[T_WAVE];
    int state[T_WAVE]; /* 0 idle, 1 set sent, 2 wait sent */
    struct t_res set[T_WAVE], wait[T_WAVE];
};

static void t_wave_step(struct t_wave *w, int i)
{
    char key[64], val[32];
    snprintf(key, sizeof(key), "mdm:q:{wave-%d}", i);
    snprintf(val, sizeof(val), "w%d", i);
    if (w->state[i] == 0) {
        const char *argv[] = {key, val};
        memset(&w->set[i], 0, sizeof(w->set[i]));
        w->state[i] = 1;
        (void)store_eval(t_s, t_set, 1, 2, argv, NULL, t_on_eval, &w->set[i]);
    } else if (w->state[i] == 1 && w->set[i].done) {
        if (w->set[i].err != MDMD_OK) {
            w->state[i] = 0;
            return;
        }
        memset(&w->wait[i], 0, sizeof(w->wait[i]));
        w->state[i] = 2;
        (void)store_wait(t_s, key, -1, 500, t_on_done, &w->wait[i]);
    } else if (w->state[i] == 2 && w->wait[i].done) {
        if (w->wait[i].err == MDMD_OK)
            w->acked[i] = 1;
        w->state[i] = w->acked[i] ? 3 : 0;
    }
}

static pid_t t_node_pid(int port)
{
    redisContext *c = t_node(port);
    char *info = c != NULL ? t_str_reply(c, "INFO server") : xstrdup("");
    char *p = strstr(info, "process_id:");
    pid_t pid = p != NULL ? (pid_t)atoi(p + 11) : 0;
    free(info);
    redisFree(c);
    return pid;
}

TEST(t_live_failover)
{
    static struct t_wave w;
    int acked = 0, killed = 0, victim = t_masters[0];
    pid_t pid = t_node_pid(victim);
    CHECK(pid > 0);
    int64_t deadline = util_mono_ms() + 30000;
    while (util_mono_ms() < deadline) {
        acked = 0;
        for (int i = 0; i < T_WAVE; i++) {
            t_wave_step(&w, i);
            acked += w.acked[i];
        }
        if (!killed && acked >= T_WAVE / 10) {
            kill(pid, SIGKILL);
            killed = 1;
            printf("killed master 127.0.0.1:%d (pid %d) after %d acknowledged writes\n", victim,
                   (int)pid, acked);
        }
        if (acked == T_WAVE)
            break;
        event_base_loop(t_base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        usleep(1000);
    }
    printf("acknowledged %d of %d writes\n", acked, T_WAVE);
    CHECK(killed);
    CHECK(acked == T_WAVE); /* the promoted replica, and its new replica, took over */
    WAIT_UNTIL(store_connected(t_s), 10000);
    CHECK(store_connected(t_s));
    int lost = 0, unread = 0;
    for (int i = 0; i < T_WAVE; i++) {
        char key[64], val[32];
        struct t_res r;
        snprintf(key, sizeof(key), "mdm:q:{wave-%d}", i);
        snprintf(val, sizeof(val), "w%d", i);
        if (!w.acked[i])
            continue;
        int err = t_call(t_get, key, NULL, &r);
        unread += err != MDMD_OK;
        lost += err == MDMD_OK && strcmp(r.val, val) != 0;
    }
    printf("lost %d acknowledged writes, %d unreadable\n", lost, unread);
    CHECK(lost == 0 && unread == 0);
}

/* CLUSTER_BENCH=<ops> (test/bench_cluster.sh): device-shaped scripts (the
 * Redis half of a poll: touch the record, read the queue head) on random
 * devices, 64 in flight, over CLUSTER_SEEDS (a single Redis or a cluster).
 * Prints ops/s and this process' CPU per op; the script adds Redis' CPU. */
struct t_bench {
    long sent, done, failed, total;
};

static struct store_script *t_poll;

static void t_bench_send(struct t_bench *b);

static void t_bench_done(void *arg, int err, long long num, const char *str, size_t len)
{
    struct t_bench *b = arg;
    (void)num;
    (void)str;
    (void)len;
    b->done++;
    b->failed += err != MDMD_OK && err != MDMD_ENOTFOUND;
    if (b->sent < b->total)
        t_bench_send(b);
}

static void t_bench_send(struct t_bench *b)
{
    char dev[64], q[64], now[24];
    long i = b->sent++ % 100000;
    snprintf(dev, sizeof(dev), "mdm:dev:{BENCH-%06ld}", i);
    snprintf(q, sizeof(q), "mdm:q:{BENCH-%06ld}", i);
    snprintf(now, sizeof(now), "%lld", (long long)util_now_ms());
    const char *argv[] = {dev, q, now};
    (void)store_eval(t_s, t_poll, 2, 3, argv, NULL, t_bench_done, b);
}

static int t_bench(long ops)
{
    struct t_bench b = {0, 0, 0, ops};
    struct rusage r0, r1;
    t_poll = store_script_new(t_s, "redis.call('HSET', KEYS[1], 'last_seen', ARGV[1]) "
                                   "return redis.call('LINDEX', KEYS[2], 0)");
    WAIT_UNTIL(store_connected(t_s), 10000);
    getrusage(RUSAGE_SELF, &r0);
    int64_t t0 = util_mono_ms();
    for (int i = 0; i < 64 && b.sent < ops; i++)
        t_bench_send(&b);
    while (b.done < ops && util_mono_ms() - t0 < 120000)
        event_base_loop(t_base, EVLOOP_ONCE);
    double secs = (double)(util_mono_ms() - t0) / 1000.0;
    getrusage(RUSAGE_SELF, &r1);
    double cpu = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec + r1.ru_stime.tv_sec -
                          r0.ru_stime.tv_sec) +
                 (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec + r1.ru_stime.tv_usec -
                          r0.ru_stime.tv_usec) /
                     1e6;
    printf("ops=%ld failed=%ld secs=%.2f ops_per_s=%.0f client_cpu_us_per_op=%.1f\n", b.done,
           b.failed, secs, (double)b.done / secs, cpu * 1e6 / (double)(b.done ? b.done : 1));
    return b.failed == 0 && b.done == ops ? 0 : 1;
}

int main(void)
{
    if (getenv("CLUSTER_BENCH") != NULL && getenv("CLUSTER_SEEDS") != NULL) {
        signal(SIGPIPE, SIG_IGN);
        t_base = event_base_new();
        t_s = store_new(t_base, getenv("CLUSTER_SEEDS"), 2000);
        int rc = t_bench(atol(getenv("CLUSTER_BENCH")));
        store_free(t_s);
        event_base_free(t_base);
        return rc;
    }
    if (getenv("VERBOSE") != NULL)
        log_level = LOG_LVL_DEBUG;
    RUN(t_crc16_vector);
    RUN(t_slots);
    RUN(t_redirect_parse);
    RUN(t_slots_load);
    RUN(t_addr_list);
    RUN(t_layout_names);
    t_seeds = getenv("CLUSTER_SEEDS");
    if (t_seeds != NULL) {
        signal(SIGPIPE, SIG_IGN);
        t_base = event_base_new();
        t_find_masters();
        t_s = store_new(t_base, t_seeds, 2000);
        t_set = store_script_new(t_s, "return redis.call('SET', KEYS[1], ARGV[1])");
        t_get = store_script_new(t_s, "return redis.call('GET', KEYS[1])");
        WAIT_UNTIL(store_connected(t_s), 10000);
        RUN(t_live_spread);
        RUN(t_live_migrate);
        RUN(t_live_failover);
        store_free(t_s);
        event_base_free(t_base);
    }
    return harness_done();
}
