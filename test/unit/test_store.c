/* test_store.c: store/ against a real redis-server on a free loopback port
 * (killed, stopped and restarted under the store), and the embedded one.
 * KEEP=1 keeps the temp directory; VERBOSE=1 logs at debug. */
#include "../harness.h"

#include "../../core/log.h"
#include "../../core/util.h"
#include "../../store/embedded.h"
#include "../../store/store.h"
#include "../../store/store_int.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <ftw.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define T_TIMEOUT_MS 200

static struct event_base *t_base;
static char t_tmp[] = "/tmp/test_store.XXXXXX";
static int t_port;
static volatile pid_t t_redis_pid;    /* the TCP redis-server this test runs */
static volatile pid_t t_embedded_pid; /* learned from INFO, for the cleanup */
static volatile pid_t t_fake_pid;     /* a fake server answering -LOADING */

/* Runs the loop until cond holds or ms pass; a 5 ms tick keeps
 * EVLOOP_ONCE from sleeping past the deadline. */
#define WAIT_UNTIL(cond, ms)                                                                       \
    do {                                                                                           \
        int64_t t_deadline_ = util_mono_ms() + (ms);                                               \
        while (!(cond) && util_mono_ms() < t_deadline_)                                            \
            event_base_loop(t_base, EVLOOP_ONCE);                                                  \
    } while (0)

/* ---- processes and files ------------------------------------------------ */

static void t_kill_children(void)
{
    if (t_redis_pid > 0) {
        kill(t_redis_pid, SIGKILL);
        waitpid(t_redis_pid, NULL, 0);
        t_redis_pid = 0;
    }
    if (t_embedded_pid > 0) {
        kill(t_embedded_pid, SIGKILL);
        waitpid(t_embedded_pid, NULL, 0);
        t_embedded_pid = 0;
    }
    if (t_fake_pid > 0) {
        kill(t_fake_pid, SIGKILL);
        waitpid(t_fake_pid, NULL, 0);
        t_fake_pid = 0;
    }
}

static int t_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void t_cleanup(void)
{
    t_kill_children();
    if (getenv("KEEP") == NULL)
        nftw(t_tmp, t_rm, 16, FTW_DEPTH | FTW_PHYS);
    else
        fprintf(stderr, "kept %s\n", t_tmp);
}

static void t_on_alarm(int sig)
{
    (void)sig;
    if (t_redis_pid > 0)
        kill(t_redis_pid, SIGKILL);
    if (t_embedded_pid > 0)
        kill(t_embedded_pid, SIGKILL);
    if (t_fake_pid > 0)
        kill(t_fake_pid, SIGKILL);
    static const char msg[] = "test_store: watchdog expired\n";
    (void)!write(2, msg, sizeof(msg) - 1);
    _exit(2);
}

static int t_free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

static int t_ping_tcp(int port)
{
    struct timeval tv = {0, 100000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    int ok = 0;
    if (c != NULL && c->err == 0 && redisSetTimeout(c, tv) == REDIS_OK) {
        redisReply *r = redisCommand(c, "PING");
        ok = r != NULL && r->type == REDIS_REPLY_STATUS;
        freeReplyObject(r);
    }
    redisFree(c);
    return ok;
}

/* Starts redis-server on t_port and waits (5 s at most) until it answers. */
static int t_redis_start(void)
{
    char port[16], *dir = xasprintf("%s/tcp", t_tmp), *log = xasprintf("%s/redis.log", dir);
    snprintf(port, sizeof(port), "%d", t_port);
    mkdir(dir, 0700);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(fd, 1);
        dup2(fd, 2);
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "-::1",
               "--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no", NULL);
        _exit(127);
    }
    t_redis_pid = pid;
    free(dir);
    free(log);
    int64_t deadline = util_mono_ms() + 5000;
    while (!t_ping_tcp(t_port) && util_mono_ms() < deadline)
        WAIT_UNTIL(0, 20);
    return t_ping_tcp(t_port) ? 0 : -1;
}

static void t_redis_kill(void)
{
    kill(t_redis_pid, SIGKILL);
    waitpid(t_redis_pid, NULL, 0);
    t_redis_pid = 0;
}

/* A synchronous command on the test's side channel; NULL on failure. */
static redisReply *t_cmd(redisContext **c, const char *unix_path, const char *cmd)
{
    struct timeval tv = {2, 0};
    if (*c == NULL)
        *c = unix_path != NULL ? redisConnectUnixWithTimeout(unix_path, tv)
                               : redisConnectWithTimeout("127.0.0.1", t_port, tv);
    if (*c == NULL || (*c)->err != 0)
        return NULL;
    return redisCommand(*c, cmd);
}

/* Captures what the logger writes (stderr) into a file, to count lines. */
static int t_capture_begin(int *saved)
{
    char *path = xasprintf("%s/capture.log", t_tmp);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    free(path);
    fflush(stderr);
    *saved = dup(2);
    dup2(fd, 2);
    return fd;
}

static char *t_capture_end(int fd, int saved)
{
    char *buf = xcalloc(1, 65536);
    dup2(saved, 2);
    close(saved);
    ssize_t n = pread(fd, buf, 65535, 0);
    close(fd);
    if (n > 0)
        fputs(buf, stderr); /* the lines still belong in the test log */
    return buf;
}

static int t_count(const char *text, const char *a, const char *b)
{
    int n = 0;
    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
        char *l = xstrndup(line, len);
        n += strstr(l, a) != NULL && strstr(l, b) != NULL;
        free(l);
        line = end != NULL ? end + 1 : NULL;
    }
    return n;
}

/* ---- callbacks ------------------------------------------------------------ */

struct t_res {
    int calls;
    int err;
    int64_t at; /* monotonic ms of the last call */
    long long num;
    char str[64];
    int str_null;
    struct store *free_me; /* store_free() this from inside the callback */
};

static void t_done(void *arg, int err)
{
    struct t_res *r = arg;
    r->calls++;
    r->err = err;
    r->at = util_mono_ms();
    if (r->free_me != NULL) {
        store_free(r->free_me);
        r->free_me = NULL;
    }
}

static void t_eval_done(void *arg, int err, long long num, const char *str, size_t len)
{
    struct t_res *r = arg;
    r->calls++;
    r->err = err;
    r->num = num;
    r->str_null = str == NULL;
    snprintf(r->str, sizeof(r->str), "%.*s", (int)len, str != NULL ? str : "");
}

static struct store *t_store_up(const char *addr)
{
    struct store *s = store_new(t_base, addr, T_TIMEOUT_MS);
    WAIT_UNTIL(store_connected(s), 2000);
    return s;
}

static char *t_tcp_addr(void)
{
    return xasprintf("127.0.0.1:%d", t_port);
}

/* ---- tests ---------------------------------------------------------------- */

TEST(test_addr_parsing)
{
    /* clang-format off */
    static const char *const good[] = {"/run/redis.sock", "./redis.sock", "127.0.0.1:6379",
                                       "localhost:1", "[::1]:6379", "10.0.0.2:65535"};
    static const char *const bad[] = {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0",
                                      "127.0.0.1:65536", "127.0.0.1:12x", "::1:6379",
                                      "[::1]6379", "[]:1", "[127.0.0.1]:1",
                                      "redis.example.com:6379", "localhost"};
    /* clang-format on */
    for (size_t i = 0; i < ARRAY_LEN(good); i++)
        CHECK(store_addr_valid(good[i]) == 1);
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        CHECK(store_addr_valid(bad[i]) == 0);

    /* A malformed address still gives a store, one that never connects. */
    struct t_res r = {0};
    struct store *s = store_new(t_base, "redis.example.com:6379", T_TIMEOUT_MS);
    CHECK(s != NULL);
    CHECK(store_ping(s, t_done, &r) == NULL);
    CHECK(r.calls == 1 && r.err == MDMD_EUNAVAIL);
    WAIT_UNTIL(0, 150);
    CHECK(!store_connected(s));
    store_free(s);

    /* A unix socket nobody listens on: connect(2) fails at once, retried. */
    char *missing = xasprintf("%s/missing.sock", t_tmp);
    s = store_new(t_base, missing, T_TIMEOUT_MS);
    WAIT_UNTIL(0, 350);
    CHECK(!store_connected(s));
    r.calls = 0;
    CHECK(store_ping(s, t_done, &r) == NULL && r.calls == 1 && r.err == MDMD_EUNAVAIL);
    store_free(s);
    free(missing);
}

/* Past its inline room (entries and formatted text) the argv grows and keeps
 * every string it was given, in order. */
TEST(test_argv_growth)
{
    struct store_argv a;
    char want[96];
    store_argv_init(&a);
    for (int i = 0; i < 3 * STORE_ARGV_INLINE; i++)
        store_argv_fmt(&a, "mdm:q:{DEVICE-%04d-%040d}", i, i);
    store_argv_push(&a, "x\0y", 3);
    CHECK(a.n == 3 * STORE_ARGV_INLINE + 1 && a.nheap > 0);
    int ok = 1;
    for (int i = 0; i < 3 * STORE_ARGV_INLINE; i++) {
        snprintf(want, sizeof(want), "mdm:q:{DEVICE-%04d-%040d}", i, i);
        ok &= a.len[i] == strlen(want) && memcmp(a.v[i], want, a.len[i]) == 0;
    }
    CHECK(ok);
    CHECK(a.len[a.n - 1] == 3 && memcmp(a.v[a.n - 1], "x\0y", 3) == 0);
    store_argv_free(&a);
    CHECK(a.n == 0 && a.nheap == 0);
}

TEST(test_ping)
{
    char *tcp = t_tcp_addr(), *local = xasprintf("localhost:%d", t_port),
         *v6 = xasprintf("[::1]:%d", t_port);
    const char *addrs[] = {tcp, local, v6};
    for (size_t i = 0; i < ARRAY_LEN(addrs); i++) {
        struct t_res early = {0}, r = {0};
        struct store *s = store_new(t_base, addrs[i], T_TIMEOUT_MS);
        CHECK(strcmp(store_addr(s), addrs[i]) == 0);
        /* connect(2) is asynchronous: nothing is connected yet, so this fails now */
        CHECK(!store_connected(s));
        CHECK(store_ping(s, t_done, &early) == NULL);
        CHECK(early.calls == 1 && early.err == MDMD_EUNAVAIL);
        WAIT_UNTIL(store_connected(s), 2000);
        CHECK(store_connected(s));
        CHECK(store_pending(s) == 0);
        CHECK(store_ping(s, t_done, &r) != NULL);
        CHECK(store_pending(s) == 1);
        WAIT_UNTIL(r.calls > 0, 1000);
        CHECK(r.calls == 1 && r.err == MDMD_OK);
        CHECK(store_pending(s) == 0);
        WAIT_UNTIL(0, 20);
        CHECK(r.calls == 1);
        store_free(s);
    }
    free(tcp);
    free(local);
    free(v6);
}

TEST(test_cancel)
{
    char *addr = t_tcp_addr();
    struct store *s = t_store_up(addr);
    struct t_res a = {0}, b = {0};
    struct store_op *op = store_ping(s, t_done, &a);
    CHECK(op != NULL);
    store_op_cancel(op);
    store_op_cancel(NULL);
    CHECK(store_ping(s, t_done, &b) != NULL);
    WAIT_UNTIL(b.calls > 0 && store_pending(s) == 0, 1000);
    CHECK(b.calls == 1 && b.err == MDMD_OK); /* answered after a, so a's reply came too */
    CHECK(a.calls == 0);
    CHECK(store_pending(s) == 0);
    store_free(s);
    CHECK(a.calls == 0);
    free(addr);
}

TEST(test_free_with_pending)
{
    char *addr = t_tcp_addr();
    struct store *s = t_store_up(addr);
    struct t_res r[3] = {{0}, {0}, {0}};
    CHECK(store_ping(s, t_done, &r[0]) != NULL);
    store_op_cancel(store_ping(s, t_done, &r[1]));
    CHECK(store_ping(s, t_done, &r[2]) != NULL);
    CHECK(store_pending(s) == 3);
    store_free(s);
    CHECK(r[0].calls == 1 && r[0].err == MDMD_ECANCELED);
    CHECK(r[1].calls == 0);
    CHECK(r[2].calls == 1 && r[2].err == MDMD_ECANCELED);
    WAIT_UNTIL(0, 50); /* nothing may arrive late */
    CHECK(r[0].calls == 1 && r[1].calls == 0 && r[2].calls == 1);
    store_free(NULL);
    store_free(store_new(t_base, addr, T_TIMEOUT_MS)); /* connect(2) still in flight */
    WAIT_UNTIL(0, 20);
    free(addr);
}

/* store_free() from inside a reply callback, with another op still queued
 * behind it in hiredis. */
TEST(test_free_inside_callback)
{
    char *addr = t_tcp_addr();
    struct store *s = t_store_up(addr);
    struct t_res a = {0}, b = {0};
    a.free_me = s;
    struct store_op *op = store_ping(s, t_done, &a);
    CHECK(op != NULL);
    if (op == NULL) /* a's callback ran already, and freed s */
        goto out;
    CHECK(store_ping(s, t_done, &b) != NULL);
    WAIT_UNTIL(a.calls > 0, 1000);
    CHECK(a.calls == 1 && a.err == MDMD_OK && a.free_me == NULL);
    CHECK(b.calls == 1 && b.err == MDMD_ECANCELED);
    WAIT_UNTIL(0, 50);
    CHECK(a.calls == 1 && b.calls == 1);
out:
    free(addr);
}

/* calls and failed_calls of cmdstat_<name>, from INFO commandstats. */
static void t_cmdstat(redisContext **sync, const char *name, long *calls, long *failed)
{
    char key[64];
    redisReply *r = t_cmd(sync, NULL, "INFO commandstats");
    *calls = *failed = -1;
    snprintf(key, sizeof(key), "cmdstat_%s:calls=", name);
    const char *p = r != NULL && r->type == REDIS_REPLY_STRING ? strstr(r->str, key) : NULL;
    if (p != NULL) {
        *calls = strtol(p + strlen(key), NULL, 10);
        const char *f = strstr(p, "failed_calls=");
        *failed = f != NULL ? strtol(f + strlen("failed_calls="), NULL, 10) : -1;
    } else if (r != NULL) {
        *calls = *failed = 0;
    }
    freeReplyObject(r);
}

static struct t_res t_eval(struct store *s, struct store_script *sc, int nkeys, int argc,
                           const char *const *argv, const size_t *argvlen)
{
    struct t_res r = {0};
    (void)store_eval(s, sc, nkeys, argc, argv, argvlen, t_eval_done, &r);
    WAIT_UNTIL(r.calls > 0, 1000);
    return r;
}

/* A restarted Redis has an empty script cache: the handshake loaded sc. */
static void t_check_script_reloaded(struct store *s, struct store_script *sc)
{
    struct t_res e = {0};
    redisContext *sync = NULL;
    long calls, failed;
    (void)store_eval(s, sc, 0, 0, NULL, NULL, t_eval_done, &e);
    WAIT_UNTIL(e.calls > 0, 1000);
    CHECK(e.calls == 1 && e.err == MDMD_OK && strcmp(e.str, "again") == 0);
    t_cmdstat(&sync, "evalsha", &calls, &failed);
    CHECK(calls == 1 && failed == 0);
    redisFree(sync);
}

/* After a success the backoff starts again at 100 ms (it had reached 1 s). */
static void t_check_backoff_reset(struct store *s)
{
    t_redis_kill();
    int64_t t0 = util_mono_ms();
    WAIT_UNTIL(!store_connected(s), 1000);
    CHECK(!store_connected(s));
    CHECK(t_redis_start() == 0);
    WAIT_UNTIL(store_connected(s), 2000);
    CHECK(store_connected(s));
    CHECK(util_mono_ms() - t0 <= 700);
}

TEST(test_kill_and_reconnect)
{
    char *addr = t_tcp_addr();
    struct store *s = t_store_up(addr), *s2 = t_store_up(addr);
    struct store_script *sc = store_script_new(s, "return 'again'");
    struct t_res a = {0}, b = {0}, c = {0}, d = {0};
    int saved, fd;
    CHECK(store_connected(s) && store_connected(s2));

    fd = t_capture_begin(&saved);
    t_redis_kill();
    int64_t t0 = util_mono_ms();
    CHECK(store_ping(s, t_done, &a) != NULL || a.calls == 1);
    d.free_me = s2; /* store_free() while hiredis is failing s2's ops */
    (void)store_ping(s2, t_done, &d);
    WAIT_UNTIL(a.calls > 0 && d.calls > 0, 1000);
    CHECK(a.calls == 1 && a.err == MDMD_EUNAVAIL);
    CHECK(a.at - t0 < 300);
    CHECK(d.calls == 1 && d.err == MDMD_EUNAVAIL && d.free_me == NULL);
    WAIT_UNTIL(!store_connected(s), 1000);
    CHECK(!store_connected(s));
    CHECK(store_ping(s, t_done, &b) == NULL); /* down: fails before returning */
    CHECK(b.calls == 1 && b.err == MDMD_EUNAVAIL);

    /* Down long enough for an uncapped backoff (1.6 s, 3.2 s) to overshoot. */
    WAIT_UNTIL(0, 3200);
    CHECK(t_redis_start() == 0);
    int64_t t1 = util_mono_ms();
    WAIT_UNTIL(store_connected(s), 3000);
    CHECK(store_connected(s));
    CHECK(util_mono_ms() - t1 <= 1500);
    CHECK(store_ping(s, t_done, &c) != NULL);
    WAIT_UNTIL(c.calls > 0, 1000);
    CHECK(c.calls == 1 && c.err == MDMD_OK);
    t_check_script_reloaded(s, sc);

    char *log = t_capture_end(fd, saved);
    CHECK(t_count(log, "event=redis_disconnected", "level=warn") == 1);
    CHECK(t_count(log, "event=redis_connect_failed", "level=warn") == 1); /* then debug */
    CHECK(t_count(log, "event=redis_connected", "level=info") == 1);
    free(log);
    t_check_backoff_reset(s);
    store_free(s);
    free(addr);
}

TEST(test_stopped_redis_times_out)
{
    char *addr = t_tcp_addr();
    struct store *s = t_store_up(addr), *s2 = t_store_up(addr);
    struct t_res a = {0}, b = {0}, c = {0}, x = {0}, y = {0};
    CHECK(store_connected(s) && store_connected(s2));

    kill(t_redis_pid, SIGSTOP);
    int64_t t0 = util_mono_ms();
    CHECK(store_ping(s, t_done, &a) != NULL);
    x.free_me = s2; /* store_free() from the ETIMEDOUT callback, y still pending */
    CHECK(store_ping(s2, t_done, &x) != NULL);
    WAIT_UNTIL(0, 50); /* b's timer would fire after a's */
    CHECK(store_ping(s, t_done, &b) != NULL);
    CHECK(store_ping(s2, t_done, &y) != NULL);
    WAIT_UNTIL(a.calls > 0 && b.calls > 0 && x.calls > 0 && y.calls > 0, 2000);
    CHECK(x.calls == 1 && x.err == MDMD_ETIMEDOUT && x.free_me == NULL);
    CHECK(y.calls == 1 && y.err == MDMD_ECANCELED);
    CHECK(a.calls == 1 && a.err == MDMD_ETIMEDOUT);
    CHECK(a.at - t0 >= T_TIMEOUT_MS - 10 && a.at - t0 <= T_TIMEOUT_MS + 300);
    CHECK(b.calls == 1 && b.err == MDMD_EUNAVAIL); /* failed with the context */
    CHECK(!store_connected(s));
    /* connect(2) to a stopped Redis succeeds (the kernel accepts), but it
     * does not answer the handshake: never "connected". */
    WAIT_UNTIL(store_connected(s), 800);
    CHECK(!store_connected(s));

    kill(t_redis_pid, SIGCONT);
    WAIT_UNTIL(store_connected(s), 3000);
    CHECK(store_connected(s));
    CHECK(store_ping(s, t_done, &c) != NULL);
    WAIT_UNTIL(c.calls > 0, 1000);
    CHECK(c.calls == 1 && c.err == MDMD_OK);
    store_free(s);
    free(addr);
}

/* EVALSHA once the handshake taught the SHA1; after SCRIPT FLUSH, NOSCRIPT
 * and one EVAL, which reloads it. */
TEST(test_eval_noscript)
{
    char *addr = t_tcp_addr();
    redisContext *sync = NULL;
    struct store *s = store_new(t_base, addr, T_TIMEOUT_MS);
    struct store_script *cat = store_script_new(s, "return ARGV[1] .. KEYS[1]");
    const char *kv[] = {"k", "v"};
    long sha0, sha1, sha2, sha3, ev0, ev1, ev2, ev3, failed, ev_failed;
    struct t_res r;

    freeReplyObject(t_cmd(&sync, NULL, "CONFIG RESETSTAT"));
    WAIT_UNTIL(store_connected(s), 2000);
    CHECK(store_connected(s));
    t_cmdstat(&sync, "evalsha", &sha0, &failed);
    t_cmdstat(&sync, "eval", &ev0, &ev_failed);
    r = t_eval(s, cat, 1, 2, kv, NULL);
    CHECK(r.calls == 1 && r.err == MDMD_OK && strcmp(r.str, "vk") == 0);
    t_cmdstat(&sync, "evalsha", &sha1, &failed);
    t_cmdstat(&sync, "eval", &ev1, &ev_failed);
    CHECK(sha1 == sha0 + 1 && ev1 == ev0);

    freeReplyObject(t_cmd(&sync, NULL, "SCRIPT FLUSH"));
    r = t_eval(s, cat, 1, 2, kv, NULL);
    CHECK(r.calls == 1 && r.err == MDMD_OK && strcmp(r.str, "vk") == 0);
    t_cmdstat(&sync, "evalsha", &sha2, &failed);
    t_cmdstat(&sync, "eval", &ev2, &ev_failed);
    CHECK(sha2 == sha1 + 1 && failed == 1 && ev2 == ev1 + 1); /* NOSCRIPT, then EVAL */
    r = t_eval(s, cat, 1, 2, kv, NULL);
    t_cmdstat(&sync, "evalsha", &sha3, &failed);
    t_cmdstat(&sync, "eval", &ev3, &ev_failed);
    CHECK(r.err == MDMD_OK && sha3 == sha2 + 1 && failed == 1 && ev3 == ev2 && ev_failed == 0);

    r = (struct t_res){0};
    store_op_cancel(store_eval(s, cat, 1, 2, kv, NULL, t_eval_done, &r));
    WAIT_UNTIL(store_pending(s) == 0, 1000);
    CHECK(r.calls == 0);
    store_free(s);
    redisFree(sync);
    free(addr);
}

TEST(test_eval_replies)
{
    char *addr = t_tcp_addr();
    redisContext *sync = NULL;
    struct store *s = t_store_up(addr);
    const char *n41[] = {"41"}, *bin[] = {"a\0b"};
    const size_t binlen[] = {3};
    long sha0, sha1, failed;
    struct t_res r;

    r = t_eval(s, store_script_new(s, "return tonumber(ARGV[1]) + 1"), 0, 1, n41, NULL);
    CHECK(r.calls == 1 && r.err == MDMD_OK && r.num == 42 && r.str_null);
    r = t_eval(s, store_script_new(s, "return string.len(ARGV[1])"), 0, 1, bin, binlen);
    CHECK(r.calls == 1 && r.err == MDMD_OK && r.num == 3);
    r = t_eval(s, store_script_new(s, "return nil"), 0, 0, NULL, NULL);
    CHECK(r.calls == 1 && r.err == MDMD_ENOTFOUND);
    r = t_eval(s, store_script_new(s, "return redis.error_reply('boom')"), 0, 0, NULL, NULL);
    CHECK(r.calls == 1 && r.err == MDMD_EPROTO);
    CHECK(store_connected(s)); /* an error reply is not a broken connection */

    /* Registered while connected: usable at once, EVALSHA once Redis told the SHA1. */
    struct store_script *late = store_script_new(s, "return 'late'");
    r = t_eval(s, late, 0, 0, NULL, NULL);
    CHECK(r.calls == 1 && r.err == MDMD_OK && strcmp(r.str, "late") == 0);
    WAIT_UNTIL(store_pending(s) == 0, 1000);
    t_cmdstat(&sync, "evalsha", &sha0, &failed);
    r = t_eval(s, late, 0, 0, NULL, NULL);
    t_cmdstat(&sync, "evalsha", &sha1, &failed);
    CHECK(r.err == MDMD_OK && strcmp(r.str, "late") == 0 && sha1 == sha0 + 1);

    /* A table of string constants: one script per address, registered once. */
    static const char konst[] = "return 'const'";
    struct store_script *g1 = store_script_get(s, konst), *g2 = store_script_get(s, konst);
    CHECK(g1 != NULL && g1 == g2 && g1 != late);
    r = t_eval(s, g2, 0, 0, NULL, NULL);
    CHECK(r.calls == 1 && r.err == MDMD_OK && strcmp(r.str, "const") == 0);
    store_free(s);
    redisFree(sync);
    free(addr);
}

/* ---- fleet effects (store_argv_fx_script) ---------------------------------- */

static void t_fx_reply(struct store_op *op, int err, const redisReply *r)
{
    err = store_reply_error(err, r);
    if (err == MDMD_OK && r->type != REDIS_REPLY_STRING)
        err = MDMD_EPROTO;
    op->cb.eval(op->arg, err, 0, err == MDMD_OK ? r->str : NULL, err == MDMD_OK ? r->len : 0);
}

/* A device script with one key of its own writing every kind of fleet
 * effect; it fails when it sees the fleet block in the cluster layout, or
 * misses it in the single one.  ARGV: udid now os_delta. */
static const char t_fx_body[] =
    "fx_begin(1)\n"
    "if #KEYS ~= (MDM_CLUSTER and 1 or 13) then return redis.error_reply('keys ' .. #KEYS) end\n"
    "redis.call('HSET', KEYS[1], 'seen', ARGV[2])\n"
    "fx_zadd('devices', ARGV[2], ARGV[1])\n"
    "fx_zrem('repush', ARGV[1])\n"
    "fx_hincr('os', '17.0', ARGV[3])\n"
    "fx_hincr('stats', 'queue_depth', 0)\n"
    "fx_event('type', 'fx_test', 'udid', ARGV[1])\n"
    "fx_rate('cmd', 'Acknowledged')\n"
    "fx_sadd('ddm_failed', ARGV[1])\n"
    "return fx_reply('done:' .. ARGV[1])\n";

static char *t_fx_script(void)
{
    FILE *f = fopen("store/lua/prelude.lua", "r"); /* tests run at the top (test/run.sh) */
    char *text = NULL;
    size_t n = 0;
    if (f == NULL)
        return NULL;
    if (getdelim(&text, &n, '\0', f) < 0) {
        free(text);
        text = NULL;
    }
    fclose(f);
    char *all = text != NULL ? xasprintf("%s%s", text, t_fx_body) : NULL;
    free(text);
    return all;
}

static struct t_res t_fx_call(struct store *s, const char *lua, const char *udid, const char *delta)
{
    struct t_res r = {0};
    struct store_argv a;
    char dev[64];
    snprintf(dev, sizeof(dev), "mdm:dev:{%s}", udid);
    store_argv_init(&a);
    store_argv_str(&a, dev);
    store_argv_str(&a, udid);
    store_argv_fmt(&a, "%lld", (long long)util_now_ms());
    store_argv_str(&a, delta);
    (void)store_argv_fx_script(s, lua, 1, &a, t_fx_reply, (union store_cb){.eval = t_eval_done},
                               &r);
    WAIT_UNTIL(r.calls > 0, 1000);
    WAIT_UNTIL(store_pending(s) == 0, 1000); /* the cluster layout's fleet_apply */
    return r;
}

/* The fleet keys of one bucket hold what t_fx_body wrote once (os: n). */
static void t_fx_check(redisContext **sync, struct store *s, const char *udid, int bucket,
                       int64_t minute, const char *os_count)
{
    char k[96], base[64], cmd[256];
    redisReply *r;
#define T_FX_KEY(name) store_bucket_key(s, k, sizeof(k), name, bucket)
    snprintf(cmd, sizeof(cmd), "ZSCORE %s %s", T_FX_KEY("mdm:devices"), udid);
    r = t_cmd(sync, NULL, cmd);
    CHECK(r != NULL && r->type == REDIS_REPLY_STRING);
    freeReplyObject(r);
    snprintf(cmd, sizeof(cmd), "HGET %s 17.0", T_FX_KEY("mdm:os"));
    r = t_cmd(sync, NULL, cmd);
    CHECK(r != NULL &&
          (os_count == NULL ? r->type == REDIS_REPLY_NIL
                            : r->type == REDIS_REPLY_STRING && strcmp(r->str, os_count) == 0));
    freeReplyObject(r);
    snprintf(cmd, sizeof(cmd), "EXISTS %s", T_FX_KEY("mdm:stats")); /* HINCRBY 0: none */
    r = t_cmd(sync, NULL, cmd);
    CHECK(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 0);
    freeReplyObject(r);
    snprintf(cmd, sizeof(cmd), "XLEN %s", T_FX_KEY("mdm:events"));
    r = t_cmd(sync, NULL, cmd);
    CHECK(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 2);
    freeReplyObject(r);
    snprintf(cmd, sizeof(cmd), "SISMEMBER %s %s", T_FX_KEY("mdm:ddm:failed"), udid);
    r = t_cmd(sync, NULL, cmd);
    CHECK(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1);
    freeReplyObject(r);
    long long rate = 0;
    for (int64_t m = minute; m <= minute + 1; m++) { /* the calls may straddle a minute */
        snprintf(base, sizeof(base), "mdm:rate:cmd:%lld", (long long)m);
        snprintf(cmd, sizeof(cmd), "HGET %s Acknowledged", T_FX_KEY(base));
        r = t_cmd(sync, NULL, cmd);
        if (r != NULL && r->type == REDIS_REPLY_STRING)
            rate += atoll(r->str);
        freeReplyObject(r);
        snprintf(cmd, sizeof(cmd), "TTL %s", T_FX_KEY(base));
        r = t_cmd(sync, NULL, cmd);
        CHECK(r != NULL && r->type == REDIS_REPLY_INTEGER &&
              (r->integer == -2 || r->integer > 7000));
        freeReplyObject(r);
    }
    CHECK(rate == 2);
#undef T_FX_KEY
}

static int t_key_count(redisContext **sync)
{
    redisReply *r = t_cmd(sync, NULL, "DBSIZE");
    int n = r != NULL && r->type == REDIS_REPLY_INTEGER ? (int)r->integer : -1;
    freeReplyObject(r);
    return n;
}

/* The same script in both layouts on one Redis: the single layout writes the
 * fleet keys as they always were named, in the script; the cluster layout
 * on the device's bucket ({bNN}), by fleet_apply.lua after the reply. */
TEST(test_fleet_effects)
{
    char *addr = t_tcp_addr(), *lua = t_fx_script();
    redisContext *sync = NULL;
    const char *udid = "FX-DEVICE-1";
    int bucket = store_bucket_of("mdm:dev:{FX-DEVICE-1}", strlen("mdm:dev:{FX-DEVICE-1}"));
    CHECK(lua != NULL);
    if (lua == NULL)
        return;
    for (int cluster = 0; cluster <= 1; cluster++) {
        freeReplyObject(t_cmd(&sync, NULL, "FLUSHALL"));
        struct store *s = store_new(t_base, addr, T_TIMEOUT_MS);
        store_set_layout(s, cluster ? STORE_LAYOUT_CLUSTER : STORE_LAYOUT_SINGLE);
        WAIT_UNTIL(store_connected(s), 2000);
        CHECK(store_layout_cluster(s) == cluster);
        int64_t minute = util_now_ms() / 60000;
        struct t_res r = t_fx_call(s, lua, udid, "1");
        CHECK(r.err == MDMD_OK && strcmp(r.str, "done:FX-DEVICE-1") == 0);
        r = t_fx_call(s, lua, udid, "1");
        CHECK(r.err == MDMD_OK && strcmp(r.str, "done:FX-DEVICE-1") == 0);
        t_fx_check(&sync, s, udid, bucket, minute, "2");
        /* Keys: the device's, devices, os, events, ddm_failed, one rate key
         * (two across a minute): nothing under another name. */
        int n = t_key_count(&sync);
        CHECK(n == 6 || n == 7);
        redisReply *e = t_cmd(&sync, NULL, "EXISTS mdm:devices");
        CHECK(e != NULL && e->type == REDIS_REPLY_INTEGER && e->integer == !cluster);
        freeReplyObject(e);
        /* A count that drops to 0 is deleted. */
        r = t_fx_call(s, lua, udid, "-2");
        CHECK(r.err == MDMD_OK);
        char k[96], cmd[128];
        snprintf(cmd, sizeof(cmd), "HEXISTS %s 17.0",
                 store_bucket_key(s, k, sizeof(k), "mdm:os", bucket));
        e = t_cmd(&sync, NULL, cmd);
        CHECK(e != NULL && e->type == REDIS_REPLY_INTEGER && e->integer == 0);
        freeReplyObject(e);
        store_free(s);
    }
    redisFree(sync);
    free(lua);
    free(addr);
}

/* A server that answers the first two connections with -LOADING, as a
 * Redis reading a large AOF does, and the third with +PONG. */
static int t_fake_start(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 8) != 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &len) != 0)
        return 0;
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (int n = 0;; n++) {
            const char *ans =
                n < 2 ? "-LOADING Redis is loading the dataset in memory\r\n" : "+PONG\r\n";
            char buf[512];
            ssize_t got;
            int c = accept(lfd, NULL, NULL);
            if (c < 0)
                _exit(0);
            /* One answer per command (a '*' starting a line): the handshake
             * pipelines CLUSTER SLOTS and PING. */
            while ((got = read(c, buf, sizeof(buf))) > 0) {
                for (ssize_t i = 0; i < got; i++)
                    if (buf[i] == '*' && (i == 0 || buf[i - 1] == '\n'))
                        (void)!write(c, ans, strlen(ans));
            }
            close(c);
        }
    }
    close(lfd);
    t_fake_pid = pid;
    return ntohs(sa.sin_port);
}

TEST(test_loading_redis)
{
    int port = t_fake_start(), saved, fd;
    CHECK(port != 0);
    char *addr = xasprintf("127.0.0.1:%d", port);
    struct t_res r = {0};

    fd = t_capture_begin(&saved);
    int64_t t0 = util_mono_ms();
    struct store *s = store_new(t_base, addr, T_TIMEOUT_MS);
    WAIT_UNTIL(0, 50);
    CHECK(!store_connected(s)); /* connected, but -LOADING is no PONG */
    CHECK(store_ping(s, t_done, &r) == NULL && r.err == MDMD_EUNAVAIL);
    WAIT_UNTIL(store_connected(s), 3000);
    CHECK(store_connected(s));
    CHECK(util_mono_ms() - t0 >= 100 + 200 - 10); /* two failed attempts, backed off */
    char *log = t_capture_end(fd, saved);
    CHECK(t_count(log, "level=warn", "LOADING") == 1); /* the second one at debug */
    free(log);
    store_free(s);
    kill(t_fake_pid, SIGKILL);
    waitpid(t_fake_pid, NULL, 0);
    t_fake_pid = 0;
    free(addr);
}

static int t_config_is(redisContext **c, const char *sock, const char *key, const char *want)
{
    char *cmd = xasprintf("CONFIG GET %s", key);
    redisReply *r = t_cmd(c, sock, cmd);
    int ok = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
             strcmp(r->element[1]->str, want) == 0;
    if (!ok)
        fprintf(stderr, "CONFIG GET %s: want \"%s\"\n", key, want);
    freeReplyObject(r);
    free(cmd);
    return ok;
}

static pid_t t_info_pid(redisContext **c, const char *sock)
{
    redisReply *r = t_cmd(c, sock, "INFO server");
    const char *p =
        r != NULL && r->type == REDIS_REPLY_STRING ? strstr(r->str, "process_id:") : NULL;
    pid_t pid = p != NULL ? (pid_t)atoi(p + strlen("process_id:")) : 0;
    freeReplyObject(r);
    return pid;
}

/* A socket file nobody listens on, as a killed redis leaves behind. */
static void t_stale_socket(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    close(fd);
}

TEST(test_embedded)
{
    char *data = xasprintf("%s/data", t_tmp), *sock = xasprintf("%s/redis/redis.sock", data);
    char *dir = xasprintf("%s/redis", data);
    redisContext *c = NULL;
    struct stat st;
    struct t_res r = {0};

    struct embedded *e = embedded_start(data, "redis-server");
    CHECK(e != NULL);
    if (e == NULL)
        goto out;
    CHECK(strcmp(embedded_addr(e), sock) == 0);
    CHECK(stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700);
    t_embedded_pid = t_info_pid(&c, sock);
    CHECK(t_embedded_pid > 0);
    CHECK(t_config_is(&c, sock, "appendonly", "yes"));
    CHECK(t_config_is(&c, sock, "appendfsync", "everysec"));
    CHECK(t_config_is(&c, sock, "save", ""));
    CHECK(t_config_is(&c, sock, "port", "0"));
    CHECK(t_config_is(&c, sock, "unixsocketperm", "700"));
    CHECK(t_config_is(&c, sock, "stream-node-max-bytes", "4096"));
    CHECK(t_config_is(&c, sock, "stream-node-max-entries", "100"));
    CHECK(t_config_is(&c, sock, "hash-max-listpack-entries", "128"));
    redisFree(c);
    c = NULL;

    CHECK(embedded_start(data, "redis-server") == NULL); /* its socket answers: in use */

    struct store *s = t_store_up(embedded_addr(e)); /* the store over a unix socket */
    CHECK(store_connected(s));
    CHECK(store_ping(s, t_done, &r) != NULL);
    WAIT_UNTIL(r.calls > 0, 1000);
    CHECK(r.calls == 1 && r.err == MDMD_OK);
    store_free(s);

    embedded_stop(e);
    CHECK(kill(t_embedded_pid, 0) == -1 && errno == ESRCH); /* gone, and reaped */
    t_embedded_pid = 0;
    CHECK(access(sock, F_OK) != 0);
    embedded_stop(NULL);
out:
    free(data);
    free(sock);
    free(dir);
}

TEST(test_embedded_stale_socket_and_bad_bin)
{
    char *data = xasprintf("%s/data2", t_tmp), *dir = xasprintf("%s/redis", data);
    char *sock = xasprintf("%s/redis.sock", dir);
    redisContext *c = NULL;

    CHECK(util_mkdirs(dir, 0700) == 0);
    t_stale_socket(sock); /* left by a killed redis: removed, then started */
    struct embedded *e = embedded_start(data, "redis-server");
    CHECK(e != NULL);
    t_embedded_pid = e != NULL ? t_info_pid(&c, sock) : 0;
    CHECK(t_embedded_pid > 0);
    redisFree(c);
    embedded_stop(e);
    t_embedded_pid = 0;

    int64_t t0 = util_mono_ms();
    CHECK(embedded_start(data, "/nonexistent/redis-server") == NULL);
    CHECK(util_mono_ms() - t0 < 2000); /* the child's exit is noticed, no 10 s wait */
    free(data);
    free(sock);
    free(dir);
}

static void t_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

int main(void)
{
    struct timeval tick = {0, 5000};
    if (getenv("VERBOSE") != NULL)
        log_level = LOG_LVL_DEBUG;
    signal(SIGPIPE, SIG_IGN); /* as mdmd does: hiredis writes to dead sockets */
    signal(SIGALRM, t_on_alarm);
    alarm(120);
    if (mkdtemp(t_tmp) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    atexit(t_cleanup);
    t_base = event_base_new();
    struct event *ev = event_new(t_base, -1, EV_PERSIST, t_tick, NULL);
    event_add(ev, &tick);
    t_port = t_free_port();
    if (t_port == 0 || t_redis_start() != 0) {
        fprintf(stderr, "cannot start redis-server on port %d\n", t_port);
        return 2;
    }

    RUN(test_addr_parsing);
    RUN(test_argv_growth);
    RUN(test_ping);
    RUN(test_cancel);
    RUN(test_free_with_pending);
    RUN(test_free_inside_callback);
    RUN(test_eval_noscript);
    RUN(test_eval_replies);
    RUN(test_fleet_effects);
    RUN(test_stopped_redis_times_out);
    RUN(test_kill_and_reconnect);
    RUN(test_loading_redis);
    RUN(test_embedded);
    RUN(test_embedded_stale_socket_and_bad_bin);

    t_kill_children();
    event_free(ev);
    event_base_free(t_base);
    return harness_done();
}
