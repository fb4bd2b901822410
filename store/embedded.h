/* embedded.h: the private redis-server mdmd starts when no Redis address is
 * configured.  It listens only on a unix socket under <data_dir>/redis, with
 * AOF on (appendfsync everysec) and settings tuned for many small per-device
 * keys.  Blocking: call before event_base_dispatch(). */
#ifndef MDMD_EMBEDDED_H
#define MDMD_EMBEDDED_H

struct embedded;

/* Starts redis-server (bin, e.g. "redis-server" from PATH) and waits up to
 * 10 s until it answers PING.  The child dies with mdmd (PR_SET_PDEATHSIG).
 * NULL on failure (logged). */
struct embedded *embedded_start(const char *data_dir, const char *bin);
const char *embedded_addr(const struct embedded *e); /* socket path; borrowed */
void embedded_stop(struct embedded *e);              /* SIGTERM, wait; NULL-safe */

#endif
