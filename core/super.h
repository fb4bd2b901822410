/* super.h: `workers N` (N > 1): a supervisor process and N worker processes.
 *
 * The supervisor (main.c) binds the listeners, makes every file a first
 * start creates (API key, CA, server certificate, SCEP RA), starts the
 * private redis-server if there is one, then super_run() forks the workers.
 * Each worker is a whole mdmd: its own libevent loop, Redis and APNs
 * connections, crypto threads, on the listening sockets it inherited (one
 * accept queue per listener, shared: a worker that dies leaves the
 * connections not yet accepted to the others).
 *
 * The supervisor runs no loop and serves nothing: it waits for signals.
 * A worker that dies is started again (backoff 100 ms, doubling up to 10 s
 * while it keeps dying within 10 s of its start; logged, counted in shared
 * memory for /metrics); SIGHUP is forwarded when the new configuration
 * validates, so that it is all-or-nothing for the fleet of workers too;
 * SIGTERM and SIGINT are forwarded, the workers drain, and super_run returns
 * 0 once they are gone (those left after shutdown_timeout_s + 5 s are
 * killed).  Workers die with the supervisor (PR_SET_PDEATHSIG). */
#ifndef MDMD_SUPER_H
#define MDMD_SUPER_H

#include "util.h"

#include <stdint.h>

/* In the child: runs worker n (1..N) with every signal still blocked (call
 * super_unblock() once the worker's handlers are in place); returns its exit
 * status. */
typedef int super_worker_fn(void *arg, int n);
/* In the supervisor, on SIGHUP: 0 when the new configuration is valid (and
 * now current, for the workers forked from then on), -1 (logged) if not. */
typedef int super_reload_fn(void *arg);
/* In the supervisor, every 100 ms (the private redis-server's watch). */
typedef void super_tick_fn(void *arg);

struct super_ops {
    super_worker_fn *worker;
    super_reload_fn *reload;
    super_tick_fn *tick;
    void *arg;
};

/* Forks nworkers workers and supervises them until SIGTERM/SIGINT.  Returns
 * the supervisor's exit status; in a worker, never returns (exit). */
int super_run(int nworkers, int shutdown_timeout_s, const struct super_ops *ops) MDMD_MUSTCHECK;
/* Unblocks the signals super_run blocked (a no-op without workers). */
void super_unblock(void);

/* This process' worker number (1..N), or 0 without workers. */
int super_worker(void) MDMD_MUSTCHECK;
/* N, or 1 without workers. */
int super_workers(void) MDMD_MUSTCHECK;
/* Times worker n (1..N) was restarted since the supervisor started. */
uint64_t super_restarts(int n) MDMD_MUSTCHECK;

#endif
