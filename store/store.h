/* store.h: every Redis key and script of mdmd, over async hiredis on the
 * shared libevent loop.  Single-threaded.  redisReply never leaves store/:
 * callbacks get plain values.  The store owns its ops: an op lives from send
 * until hiredis calls back (or our per-op timer fires first), and is freed
 * there; store_op_cancel() only makes sure the callback will not run.
 *
 * Connection: store_new() connects immediately and, on any error or
 * disconnect, reconnects with exponential backoff (100 ms doubling, capped at
 * 1 s, so service resumes within a second of Redis coming back).  While not
 * connected every op fails at once with MDMD_EUNAVAIL.  An op that gets no
 * reply within the configured timeout fails with MDMD_ETIMEDOUT; the context
 * is then dropped (failing all pending ops) and reconnected, because a Redis
 * that stopped answering one command is not answering the others either. */
#ifndef MDMD_STORE_H
#define MDMD_STORE_H

#include "../core/util.h"

struct event_base;
struct store;
struct store_op;

typedef void store_done_fn(void *arg, int err);

/* addr: "/path/to/redis.sock" (starts with '/' or '.') or "host:port".
 * Never NULL; the connection is attempted asynchronously. */
struct store *store_new(struct event_base *base, const char *addr, int timeout_ms);
void store_free(struct store *s);            /* NULL-safe; pending callbacks get MDMD_ECANCELED */

int store_connected(const struct store *s);  /* 1 when the last connect succeeded and holds */
const char *store_addr(const struct store *s);

/* PING.  cb runs exactly once (possibly before this returns, with
 * MDMD_EUNAVAIL) unless store_op_cancel() is called first.  Returns the op,
 * or NULL when cb already ran. */
struct store_op *store_ping(struct store *s, store_done_fn *cb, void *arg);
void store_op_cancel(struct store_op *op);

#endif
