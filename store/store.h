/* store.h: every Redis key and script of mdmd, over async hiredis on the
 * shared libevent loop.  Single-threaded.  redisReply never leaves store/:
 * callbacks get plain values.  The store owns its ops: an op lives from send
 * until hiredis calls back (or our per-op timer fires first), and is freed
 * there; store_op_cancel() only makes sure the callback will not run.
 *
 * Connection: store_new() connects immediately and, on any error or
 * disconnect, reconnects with exponential backoff (100 ms doubling, capped at
 * 250 ms, so service resumes within a second of Redis coming back).  While not
 * connected every op fails at once with MDMD_EUNAVAIL.  An op that gets no
 * reply within the configured timeout fails with MDMD_ETIMEDOUT; the context
 * is then dropped (failing all pending ops) and reconnected, because a Redis
 * that stopped answering one command is not answering the others either.
 *
 * "Connected" means Redis answered on this connection: after connect(2) the
 * store loads its scripts and PINGs, and only the PING reply makes it
 * connected (a Redis still loading its dataset is retried like a failed
 * connect).  The process must ignore SIGPIPE (core does): hiredis writes with
 * write(2).  store_free() may be called from inside any store callback. */
#ifndef MDMD_STORE_H
#define MDMD_STORE_H

#include "../core/util.h"

#include <stddef.h>

struct event_base;
struct store;
struct store_op;
struct store_script;

typedef void store_done_fn(void *arg, int err);

/* addr: "/path/to/redis.sock" (starts with '/' or '.') or "host:port", host
 * an IPv4 literal, "[IPv6]" or "localhost" (no DNS: it would block the loop);
 * or a comma-separated list of those, the seeds of a Redis Cluster, tried in
 * turn.  A node that answers CLUSTER SLOTS puts the store in cluster mode:
 * every op goes to the master of its first key's slot (store.c, "Redis
 * Cluster"); store_connected() then means every slot's master is connected.
 * Never NULL; the connection is attempted asynchronously.  A malformed addr is
 * logged and leaves the store down for good (every op MDMD_EUNAVAIL): check
 * it at startup with store_addr_valid().  timeout_ms bounds each op and each
 * connect attempt. */
struct store *store_new(struct event_base *base, const char *addr, int timeout_ms) MDMD_MUSTCHECK;
/* The store's timers and socket events take this priority when base has
 * more than one (event_base_priority_init; main sets two): the replies that
 * every request waits for, and the reconnect after an outage, are not queued
 * behind a busy loop's other work. */
#define STORE_EV_PRIORITY 0
void store_free(struct store *s); /* NULL-safe; pending callbacks get MDMD_ECANCELED */

int store_connected(const struct store *s)
    MDMD_MUSTCHECK; /* 1 when the last connect succeeded and holds */
const char *store_addr(const struct store *s);
/* Ops sent and not yet answered, failed or timed out, cancelled and the
 * store's own (script loads, the connect PING) included. */
int store_pending(const struct store *s) MDMD_MUSTCHECK;
int store_addr_valid(const char *addr) MDMD_MUSTCHECK; /* 1 when store_new() can use addr */
/* Redis Cluster counters for /metrics; 0 (nothing filled) on a single Redis. */
struct store_cluster_stats {
    int masters;             /* distinct nodes serving slots in the table */
    int masters_up;          /* of them, connected */
    unsigned long redirects; /* MOVED and ASK followed */
    unsigned long refreshes; /* CLUSTER SLOTS replies loaded */
};
int store_cluster_stats(const struct store *s, struct store_cluster_stats *st) MDMD_MUSTCHECK;
/* Round-trip times of every answered op (send to reply), for /metrics. */
struct metrics_hist;
const struct metrics_hist *store_rtt(const struct store *s);

/* The key layout (docs/REDIS.md, "Redis Cluster").  Single: every key as it
 * always was.  Cluster: what a device's script touches is in its UDID's slot;
 * the fleet-wide indexes, counters and event stream are split into
 * STORE_BUCKETS buckets ("<name>:{bNN}", NN the device's bucket), written by
 * a second script on the bucket's master and read by fanning out over all of
 * them; the fleet's configuration (declarations, users, sessions...) lives
 * in one slot, "mdm:{g}:<name>".  AUTO (the default) is the cluster layout
 * when the store found a Redis Cluster; forcing CLUSTER on a single Redis
 * runs the cluster layout's code paths there (tests).  Set before the first
 * op; scripts see it as the Lua constant MDM_CLUSTER. */
enum store_layout { STORE_LAYOUT_AUTO, STORE_LAYOUT_SINGLE, STORE_LAYOUT_CLUSTER };
#define STORE_BUCKETS 64
void store_set_layout(struct store *s, enum store_layout layout);
int store_layout_cluster(const struct store *s) MDMD_MUSTCHECK; /* 1: cluster layout now */
int store_nbuckets(const struct store *s) MDMD_MUSTCHECK;       /* 1, or STORE_BUCKETS */
/* The bucket of a key: its slot (hash tag: the UDID) modulo STORE_BUCKETS. */
int store_bucket_of(const char *key, size_t len) MDMD_MUSTCHECK;
/* Into buf: base itself (single), or "base:{bNN}" (cluster).  Returns buf. */
const char *store_bucket_key(const struct store *s, char *buf, size_t size, const char *base,
                             int bucket);
/* Into buf: "mdm:<rest>" (single) or "mdm:{g}:<rest>" (cluster).  Returns buf. */
const char *store_global_key(const struct store *s, char *buf, size_t size, const char *rest);

/* PING.  cb runs exactly once (possibly before this returns, with
 * MDMD_EUNAVAIL) unless store_op_cancel() is called first.  Returns the op,
 * or NULL when cb already ran. */
struct store_op *store_ping(struct store *s, store_done_fn *cb, void *arg);
/* WAIT on the node that holds key's slot: cb gets MDMD_OK once replicas
 * replicas acknowledged every write before it on that connection, else
 * MDMD_EUNAVAIL after ms (logged) or the op's error; on a
 * cluster shard the last CLUSTER SLOTS showed with fewer replicas,
 * MDMD_EUNAVAIL at once (WAIT would hold the node's connection for ms).  replicas -1 is "auto":
 * 1 on a Redis Cluster, 0 on a single Redis; 0 calls cb at once
 * (returns NULL).  Same contract as store_ping() otherwise.  Sent after a
 * write on the same key's node, it acknowledges that write (docs/REDIS.md,
 * "Failover"). */
struct store_op *store_wait(struct store *s, const char *key, int replicas, int ms,
                            store_done_fn *cb, void *arg);
/* cb will not run.  op must be one whose cb has not run yet; NULL-safe. */
void store_op_cancel(struct store_op *op);

/* Lua scripts, called with EVALSHA.  The store sends SCRIPT LOAD for every
 * script on every (re)connect, before it reports connected, and learns the
 * SHA1 from the reply; until then calls go out as EVAL.  A NOSCRIPT reply
 * (SCRIPT FLUSH, a failover) resends that call once as EVAL, which also puts
 * the script back into Redis' cache.  lua is copied; the script belongs to s
 * and lives until store_free(). */
struct store_script *store_script_new(struct store *s, const char *lua) MDMD_MUSTCHECK;

/* A script's reply, borrowed until the callback returns: an integer (str
 * NULL) or a string/status reply (str, len, NUL-terminated).  A nil reply
 * is MDMD_ENOTFOUND; an error reply or an array is MDMD_EPROTO. */
typedef void store_eval_fn(void *arg, int err, long long num, const char *str, size_t len);

/* Runs sc with nkeys keys then argc - nkeys arguments, all in argv (copied;
 * argvlen NULL: NUL-terminated strings).  Same callback contract as
 * store_ping().  Typed ops inside store/ use store_cmd_script() instead. */
struct store_op *store_eval(struct store *s, struct store_script *sc, int nkeys, int argc,
                            const char *const *argv, const size_t *argvlen, store_eval_fn *cb,
                            void *arg);

/* Command results kept in history (docs/REDIS.md, "Command history") are
 * stored packed: STORE_RESULT_MAGIC, then a zstd frame of the bytes the
 * device sent, compressed with a dictionary built in (store_result.c: the
 * dictionary is part of the format and never changes under the same magic).
 * A value without the magic is stored as sent (older versions, or one that
 * does not get smaller).  store_history() unpacks, so readers get the
 * device's bytes either way. */
#define STORE_RESULT_MAGIC "\0zr1"
#define STORE_RESULT_MAGIC_LEN 4
/* The value to store for a result of len bytes: malloc'd, *out_len set. */
char *store_result_pack(const void *body, size_t len, size_t *out_len);
/* The device's bytes of a stored value: malloc'd (NUL-terminated) and
 * *out_len set when val is packed, NULL when it is not (use val as is) or
 * does not unpack (logged; the caller then sees the packed bytes). */
char *store_result_unpack(const char *val, size_t len, size_t *out_len);

#endif
