#include "super.h"
#include "log.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SUPER_TICK_MS 100
#define SUPER_BACKOFF_MIN_MS 100
#define SUPER_BACKOFF_MAX_MS 10000
#define SUPER_STABLE_MS 10000 /* a worker up this long resets its backoff */
#define SUPER_KILL_GRACE_MS 5000

/* What every process sees (MAP_SHARED): the restart counts for /metrics. */
struct super_slot {
    uint64_t restarts;
};

struct super_child {
    pid_t pid; /* 0: not running */
    int64_t started_ms, due_ms;
    int backoff_ms;
};

/* One supervisor per process tree: the state of this process' side of it. */
static struct {
    int n, me;
    struct super_slot *slot; /* n entries, shared */
    struct super_child *child;
    const struct super_ops *ops;
    sigset_t blocked, old;
    int stopping;
    int64_t kill_ms;
} super;

int super_worker(void)
{
    return super.me;
}

int super_workers(void)
{
    return super.n > 0 ? super.n : 1;
}

uint64_t super_restarts(int n)
{
    return super.slot != NULL && n >= 1 && n <= super.n ? super.slot[n - 1].restarts : 0;
}

void super_unblock(void)
{
    if (super.me > 0)
        sigprocmask(SIG_SETMASK, &super.old, NULL);
}

/* The lines written so far go out now, or the child would write them again. */
static void super_flush_log(void)
{
    for (int i = 0; i < 50 && log_flush() > 0; i++)
        usleep(2000);
}

static void super_child_main(int n, pid_t parent)
{
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGCHLD};
    super.me = n;
    log_set_worker(n);
    for (size_t i = 0; i < ARRAY_LEN(sigs); i++)
        signal(sigs[i], SIG_DFL); /* still blocked: the worker's loop installs its own */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
        _exit(1); /* the supervisor is already gone */
    exit(super.ops->worker(super.ops->arg, n));
}

static void super_spawn(int n)
{
    struct super_child *c = &super.child[n - 1];
    pid_t parent = getpid();
    super_flush_log();
    pid_t pid = fork();
    if (pid < 0) {
        log_err("event=worker_fork_failed worker=%d errno=%d", n, errno);
        c->due_ms = util_mono_ms() + c->backoff_ms;
        return;
    }
    if (pid == 0)
        super_child_main(n, parent);
    c->pid = pid;
    c->started_ms = util_mono_ms();
    c->due_ms = 0;
    log_info("event=worker_started n=%d pid=%d", n, (int)pid);
}

static void super_signal_all(int sig)
{
    for (int i = 0; i < super.n; i++)
        if (super.child[i].pid > 0)
            kill(super.child[i].pid, sig);
}

static void super_on_exit(int n, int status)
{
    struct super_child *c = &super.child[n - 1];
    int64_t up = util_mono_ms() - c->started_ms;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    c->pid = 0;
    if (super.stopping) {
        log_info("event=worker_exited n=%d status=%d", n, code);
        return;
    }
    if (up >= SUPER_STABLE_MS)
        c->backoff_ms = SUPER_BACKOFF_MIN_MS;
    c->due_ms = util_mono_ms() + c->backoff_ms;
    log_err("event=worker_died n=%d status=%d up_ms=%lld restart_in_ms=%d", n, code, (long long)up,
            c->backoff_ms);
    c->backoff_ms =
        c->backoff_ms * 2 < SUPER_BACKOFF_MAX_MS ? c->backoff_ms * 2 : SUPER_BACKOFF_MAX_MS;
    super.slot[n - 1].restarts++;
}

/* Reaps only the workers (the private redis-server is a child too, and its
 * watch reaps it); restarts the ones due.  The number still running. */
static int super_tend(void)
{
    int running = 0, status;
    for (int i = 0; i < super.n; i++) {
        struct super_child *c = &super.child[i];
        if (c->pid > 0 && waitpid(c->pid, &status, WNOHANG) == c->pid)
            super_on_exit(i + 1, status);
        if (c->pid == 0 && !super.stopping && c->due_ms != 0 && util_mono_ms() >= c->due_ms) {
            super_spawn(i + 1);
            if (c->pid > 0)
                log_warn("event=worker_restarted n=%d pid=%d restarts=%llu", i + 1, (int)c->pid,
                         (unsigned long long)super.slot[i].restarts);
        }
        running += c->pid > 0;
    }
    return running;
}

static void super_on_signal(int sig, int shutdown_timeout_s)
{
    if (sig == SIGHUP) {
        if (super.ops->reload(super.ops->arg) == 0) {
            super_signal_all(SIGHUP);
            log_info("event=reload_forwarded workers=%d", super.n);
        }
    } else if ((sig == SIGTERM || sig == SIGINT) && !super.stopping) {
        super.stopping = 1;
        super.kill_ms = util_mono_ms() + (int64_t)shutdown_timeout_s * 1000 + SUPER_KILL_GRACE_MS;
        log_info("event=shutting_down workers=%d", super.n);
        super_signal_all(SIGTERM);
    }
}

static int super_setup(int nworkers, const struct super_ops *ops)
{
    size_t len = sizeof(struct super_slot) * (size_t)nworkers;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        log_err("event=workers_failed reason=mmap errno=%d", errno);
        return -1;
    }
    super.slot = p;
    super.n = nworkers;
    super.ops = ops;
    super.child = xcalloc((size_t)nworkers, sizeof(*super.child));
    sigemptyset(&super.blocked);
    sigaddset(&super.blocked, SIGTERM);
    sigaddset(&super.blocked, SIGINT);
    sigaddset(&super.blocked, SIGHUP);
    sigaddset(&super.blocked, SIGCHLD);
    sigprocmask(SIG_BLOCK, &super.blocked, &super.old);
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

int super_run(int nworkers, int shutdown_timeout_s, const struct super_ops *ops)
{
    if (super_setup(nworkers, ops) != 0)
        return 1;
    log_info("event=supervisor_started workers=%d pid=%d", nworkers, (int)getpid());
    for (int i = 1; i <= nworkers; i++) {
        super.child[i - 1].backoff_ms = SUPER_BACKOFF_MIN_MS;
        super_spawn(i);
    }
    for (;;) {
        struct timespec ts = {0, SUPER_TICK_MS * 1000000L};
        int sig = sigtimedwait(&super.blocked, NULL, &ts);
        if (sig > 0)
            super_on_signal(sig, shutdown_timeout_s);
        int running = super_tend();
        if (ops->tick != NULL)
            ops->tick(ops->arg);
        if (super.stopping && running == 0)
            break;
        if (super.stopping && util_mono_ms() >= super.kill_ms) {
            log_warn("event=workers_killed running=%d reason=shutdown_timeout", running);
            super_signal_all(SIGKILL);
            super.kill_ms = INT64_MAX;
        }
    }
    log_info("event=supervisor_done");
    free(super.child);
    super.child = NULL;
    sigprocmask(SIG_SETMASK, &super.old, NULL);
    return 0;
}
