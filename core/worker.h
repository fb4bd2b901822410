/* worker.h: CPU-heavy work (key generation, password hashing, PKCS12) off the
 * event loop.  Jobs run on a small pool of threads; each job's done callback
 * then runs on the loop thread, in completion order.
 *
 * Thread rules: a job function may use only its own arg and thread-safe
 * libraries (OpenSSL, log_at); never the loop, the store, or any module
 * object.  The done callback runs on the loop and may do anything.
 * Ownership: arg belongs to the caller throughout; the worker never frees it. */
#ifndef MDMD_WORKER_H
#define MDMD_WORKER_H

#include "util.h"

struct event_base;
struct worker;

typedef void worker_job_fn(void *arg);  /* on a worker thread */
typedef void worker_done_fn(void *arg); /* on the loop thread, after the job */

struct worker *worker_new(struct event_base *base, int nthreads) MDMD_MUSTCHECK;
/* Finishes the job running now, drops the queued ones (their done callbacks
 * run with worker_canceled() true), joins the threads.  NULL-safe. */
void worker_free(struct worker *w);

void worker_submit(struct worker *w, worker_job_fn *job, worker_done_fn *done, void *arg);
int worker_queued(const struct worker *w) MDMD_MUSTCHECK; /* jobs submitted and not yet done */
/* In a done callback: 1 when the job did not run because the worker is
 * being freed. */
int worker_canceled(const struct worker *w) MDMD_MUSTCHECK;

#endif
