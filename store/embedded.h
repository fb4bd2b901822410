/* embedded.h: the private redis-server mdmd starts when no Redis address is
 * configured.  It listens only on a unix socket under <data_dir>/redis, with
 * AOF on (appendfsync everysec) and settings tuned for many small per-device
 * keys.  embedded_start() blocks: call it before event_base_dispatch().
 *
 * Supervised: once embedded_watch() is on, a redis-server that exits is
 * logged (with the end of its log) and started again, from the same
 * directory and so the same AOF, after a backoff (500 ms, doubling up to
 * 30 s while it keeps dying within a minute of its start).  Until the new
 * one answers PING, embedded_down() is 1 (/healthz says so). */
#ifndef MDMD_EMBEDDED_H
#define MDMD_EMBEDDED_H

#include "../core/util.h"

struct embedded;

/* Starts redis-server (bin, e.g. "redis-server" from PATH) and waits up to
 * 10 s until it answers PING.  The child dies with mdmd (PR_SET_PDEATHSIG).
 * NULL on failure (logged). */
struct embedded *embedded_start(const char *data_dir, const char *bin);
const char *embedded_addr(const struct embedded *e); /* socket path; borrowed */
void embedded_stop(struct embedded *e);              /* SIGTERM, wait; NULL-safe */

struct event_base;
/* Watches the child from the loop (a 200 ms timer) until embedded_stop(). */
void embedded_watch(struct embedded *e, struct event_base *base);
/* One step of that watch, for a caller without a loop (core/super.h's
 * supervisor, every 100 ms).  NULL-safe. */
void embedded_poll(struct embedded *e);
int embedded_down(const struct embedded *e) MDMD_MUSTCHECK; /* NULL-safe: 0 */
unsigned long embedded_restarts(const struct embedded *e);  /* since start; NULL-safe */

#endif
