/* embedded.c: the private redis-server, started with command-line options
 * (no config file to keep in sync), and restarted from the loop when it dies. */
#include "embedded.h"

#include "../core/log.h"
#include "../core/util.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EMBEDDED_START_MS 10000
#define EMBEDDED_POLL_MS 20
#define EMBEDDED_STOP_MS 5000
#define EMBEDDED_LOG_LINES 10
#define EMBEDDED_WATCH_MS 200       /* how often the loop looks for its exit */
#define EMBEDDED_BACKOFF_MIN_MS 500 /* first restart delay; doubles per quick death */
#define EMBEDDED_BACKOFF_MAX_MS 30000
#define EMBEDDED_STABLE_MS 60000 /* up this long: the next death restarts fast again */

struct embedded {
    pid_t pid;  /* 0 once reaped */
    char *dir;  /* <data_dir>/redis: socket, log, AOF */
    char *sock; /* <dir>/redis.sock */
    char *log;  /* <dir>/redis.log: redis' log, and its stdout/stderr */
    char *bin;
    struct event *watch; /* embedded_watch(): polls for its exit */
    int down;            /* died, not answering PING again yet */
    int backoff_ms;
    int64_t restart_at; /* mono ms of the next spawn, while down and pid == 0 */
    int64_t started_at; /* mono ms of the last spawn */
    unsigned long restarts;
};

static void embedded_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* 1 when something answers PING on path (an error such as LOADING counts:
 * a redis-server is there), else 0. */
static int embedded_ping(const char *path, int timeout_ms)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectUnixWithTimeout(path, tv);
    int answered = 0;

    if (c != NULL && c->err == 0 && redisSetTimeout(c, tv) == REDIS_OK) {
        redisReply *r = redisCommand(c, "PING");
        answered = r != NULL;
        freeReplyObject(r);
    }
    redisFree(c);
    return answered;
}

/* A socket left by a redis that was killed is ours to remove; one that
 * answers belongs to a running redis, most likely another mdmd's. */
static int embedded_clear_socket(const struct embedded *e)
{
    struct stat st;
    if (lstat(e->sock, &st) != 0)
        return 0;
    if (embedded_ping(e->sock, 500)) {
        log_err("event=embedded_redis_in_use socket=%s err=\"a running redis-server answers "
                "there; is another mdmd using this data_dir?\"",
                e->sock);
        return -1;
    }
    if (unlink(e->sock) != 0 && errno != ENOENT) {
        log_err("event=embedded_redis_stale_socket socket=%s err=\"%s\"", e->sock, strerror(errno));
        return -1;
    }
    log_info("event=embedded_redis_stale_socket socket=%s removed=1", e->sock);
    return 0;
}

static int embedded_prepare(const struct embedded *e)
{
    if (strlen(e->sock) >= sizeof(((struct sockaddr_un *)NULL)->sun_path)) {
        log_err("event=embedded_redis_failed socket=%s err=\"socket path too long\"", e->sock);
        return -1;
    }
    if (util_mkdirs(e->dir, 0700) != 0 || chmod(e->dir, 0700) != 0) {
        log_err("event=embedded_redis_failed dir=%s err=\"%s\"", e->dir, strerror(errno));
        return -1;
    }
    return embedded_clear_socket(e);
}

/* Between fork and exec: async-signal-safe calls only. */
static void embedded_child(char *const argv[], const char *log, pid_t parent)
{
    sigset_t none;
    int fd;

    /* Dies with mdmd; the getppid() check closes the race with a parent that
     * died before prctl(). */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
        _exit(127);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL); /* else a mask mdmd set would block SIGTERM */
    signal(SIGPIPE, SIG_DFL);              /* ignored dispositions survive exec */
    umask(077);                            /* the AOF holds push tokens */
    if ((fd = open("/dev/null", O_RDONLY)) >= 0)
        dup2(fd, 0);
    if ((fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600)) >= 0) {
        dup2(fd, 1); /* config errors are printed before the log file is open */
        dup2(fd, 2);
    }
    close_range(3, ~0U, 0); /* mdmd's listeners and TLS keys stay out of redis */
    execvp(argv[0], argv);
    static const char msg[] = "mdmd: cannot execute the redis-server binary: ";
    if (write(2, msg, sizeof(msg) - 1) > 0 && write(2, argv[0], strlen(argv[0])) > 0)
        (void)!write(2, "\n", 1);
    _exit(127);
}

static int embedded_spawn(struct embedded *e, const char *bin)
{
    /* clang-format off */
    char *argv[] = {
        (char *)bin,
        "--port", "0", /* no TCP at all: only the unix socket */
        "--unixsocket", e->sock, "--unixsocketperm", "700",
        "--dir", e->dir, "--logfile", e->log,
        "--daemonize", "no",
        "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
        /* Many small per-device keys (DESIGN.md section 3).  A stream node
         * repeats the field names and has its own overhead: with results
         * stored packed (~160 B for DeviceInformation) 4 KB nodes keep 100
         * entries in ~33 KB where 512-byte ones took ~90 KB (issue 16). */
        "--stream-node-max-bytes", "4096", "--stream-node-max-entries", "100",
        "--hash-max-listpack-entries", "128",
        NULL,
    };
    /* clang-format on */
    pid_t parent = getpid();

    e->pid = fork();
    if (e->pid < 0) {
        log_err("event=embedded_redis_failed err=\"fork: %s\"", strerror(errno));
        e->pid = 0;
        return -1;
    }
    if (e->pid == 0)
        embedded_child(argv, e->log, parent);
    log_info("event=embedded_redis_spawned pid=%d bin=%s socket=%s", (int)e->pid, bin, e->sock);
    return 0;
}

/* The end of redis.log says why it did not come up (bad option, AOF...). */
static void embedded_log_tail(const struct embedded *e)
{
    char *buf, *save = NULL;
    size_t len;
    int n = 0;
    if (util_read_file(e->log, &buf, &len) != 0)
        return;
    char *p = buf + len;
    for (; p > buf; p--)
        if (p[-1] == '\n' && p != buf + len && ++n >= EMBEDDED_LOG_LINES)
            break;
    for (char *line = strtok_r(p, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save))
        log_err("event=embedded_redis_log line=\"%s\"", line);
    free(buf);
}

static int embedded_wait_ready(struct embedded *e)
{
    int64_t deadline = util_mono_ms() + EMBEDDED_START_MS;
    int status;

    for (;;) {
        if (embedded_ping(e->sock, 200))
            return 0;
        if (waitpid(e->pid, &status, WNOHANG) == e->pid) {
            e->pid = 0;
            log_err("event=embedded_redis_failed err=\"redis-server exited, status %d\" log=%s",
                    WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), e->log);
            embedded_log_tail(e);
            return -1;
        }
        if (util_mono_ms() >= deadline) {
            log_err("event=embedded_redis_failed err=\"no PING answer within %d ms\" log=%s",
                    EMBEDDED_START_MS, e->log);
            embedded_log_tail(e);
            return -1;
        }
        embedded_sleep_ms(EMBEDDED_POLL_MS);
    }
}

struct embedded *embedded_start(const char *data_dir, const char *bin)
{
    struct embedded *e = xcalloc(1, sizeof(*e));
    /* redis-server chdirs into --dir before it opens the log and the socket:
     * relative paths (data_dir "var" under make run) would then miss. */
    char *abs = realpath(data_dir, NULL);
    e->dir = xasprintf("%s/redis", abs != NULL ? abs : data_dir);
    free(abs);
    e->sock = xasprintf("%s/redis.sock", e->dir);
    e->log = xasprintf("%s/redis.log", e->dir);
    e->bin = xstrdup(bin);
    e->backoff_ms = EMBEDDED_BACKOFF_MIN_MS;
    e->started_at = util_mono_ms();
    if (embedded_prepare(e) != 0 || embedded_spawn(e, bin) != 0 || embedded_wait_ready(e) != 0) {
        embedded_stop(e);
        return NULL;
    }
    log_info("event=embedded_redis_ready pid=%d socket=%s", (int)e->pid, e->sock);
    return e;
}

const char *embedded_addr(const struct embedded *e)
{
    return e->sock;
}

/* 1 once pid is reaped (or is not our child any more). */
static int embedded_reaped(pid_t pid, int timeout_ms)
{
    int64_t deadline = util_mono_ms() + timeout_ms;
    do {
        pid_t r = waitpid(pid, NULL, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR))
            return 1;
        embedded_sleep_ms(10);
    } while (util_mono_ms() < deadline);
    return 0;
}

/* ---- supervision (on the loop) ---- */

/* Spawns it again (same dir, same AOF) without waiting: the store's own
 * reconnect finds it, and sees LOADING as unavailable meanwhile. */
static void embedded_respawn(struct embedded *e)
{
    if (embedded_clear_socket(e) != 0 || embedded_spawn(e, e->bin) != 0) {
        e->restart_at = util_mono_ms() + e->backoff_ms;
        return;
    }
    e->restarts++;
    e->started_at = util_mono_ms();
    log_warn("event=embedded_redis_restarted pid=%d restarts=%lu", (int)e->pid, e->restarts);
}

static void embedded_on_watch(evutil_socket_t fd, short what, void *arg)
{
    struct embedded *e = arg;
    int status;
    (void)fd, (void)what;
    if (e->pid > 0 && waitpid(e->pid, &status, WNOHANG) == e->pid) {
        int64_t up = util_mono_ms() - e->started_at;
        if (up >= EMBEDDED_STABLE_MS)
            e->backoff_ms = EMBEDDED_BACKOFF_MIN_MS;
        log_err("event=embedded_redis_died pid=%d status=%d up_ms=%lld restart_in_ms=%d log=%s",
                (int)e->pid, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
                (long long)up, e->backoff_ms, e->log);
        embedded_log_tail(e);
        e->pid = 0;
        e->down = 1;
        e->restart_at = util_mono_ms() + e->backoff_ms;
        e->backoff_ms = e->backoff_ms * 2 < EMBEDDED_BACKOFF_MAX_MS ? e->backoff_ms * 2
                                                                    : EMBEDDED_BACKOFF_MAX_MS;
    }
    if (e->pid == 0 && e->down && util_mono_ms() >= e->restart_at)
        embedded_respawn(e);
    else if (e->pid > 0 && e->down && embedded_ping(e->sock, 50)) {
        e->down = 0;
        log_info("event=embedded_redis_ready pid=%d restarts=%lu", (int)e->pid, e->restarts);
    }
}

void embedded_watch(struct embedded *e, struct event_base *base)
{
    static const struct timeval every = {0, EMBEDDED_WATCH_MS * 1000};
    e->watch = event_new(base, -1, EV_PERSIST, embedded_on_watch, e);
    event_add(e->watch, &every);
}

void embedded_poll(struct embedded *e)
{
    if (e != NULL)
        embedded_on_watch(-1, 0, e);
}

int embedded_down(const struct embedded *e)
{
    return e != NULL && e->down;
}

unsigned long embedded_restarts(const struct embedded *e)
{
    return e != NULL ? e->restarts : 0;
}

void embedded_stop(struct embedded *e)
{
    if (e == NULL)
        return;
    if (e->watch != NULL)
        event_free(e->watch);
    if (e->pid > 0) {
        kill(e->pid, SIGTERM); /* redis flushes the AOF and removes its socket */
        kill(e->pid, SIGCONT); /* a stopped process would hold the SIGTERM */
        if (!embedded_reaped(e->pid, EMBEDDED_STOP_MS)) {
            log_warn("event=embedded_redis_kill pid=%d err=\"no exit %d ms after SIGTERM\"",
                     (int)e->pid, EMBEDDED_STOP_MS);
            kill(e->pid, SIGKILL);
            while (waitpid(e->pid, NULL, 0) < 0 && errno == EINTR)
                ;
        }
        log_info("event=embedded_redis_stopped pid=%d", (int)e->pid);
    }
    free(e->dir);
    free(e->sock);
    free(e->log);
    free(e->bin);
    free(e);
}
