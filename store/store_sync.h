/* store_sync.h: a blocking Redis connection for the command-line tools
 * (`mdmd user ...`), which run without an event loop.  Never use it inside
 * the daemon: it blocks.  It runs the same Lua scripts as the async store, so
 * the CLI and the REST API write users the same way.  hiredis stays inside
 * store/: callers get plain values. */
#ifndef MDMD_STORE_SYNC_H
#define MDMD_STORE_SYNC_H

#include <stddef.h>
#include <stdint.h>

#include "../core/util.h"

struct store_sync;

/* Connects to redis (a unix socket path or host:port, as the `redis` key)
 * or, when redis is empty, to the private Redis mdmd runs under data_dir.
 * NULL with a message for people in err when Redis does not answer PING. */
struct store_sync *store_sync_open(const char *redis, const char *data_dir, int timeout_ms,
                                   char *err, size_t errlen) MDMD_MUSTCHECK;
void store_sync_free(struct store_sync *ss); /* NULL-safe */
/* The key layout, as the redis_layout setting says ("auto": the cluster
 * layout when the node is in a Redis Cluster; docs/REDIS.md).  Single until
 * set.  The connection follows MOVED to the node that serves a key. */
void store_sync_set_layout(struct store_sync *ss, const char *layout);
int store_sync_cluster(const struct store_sync *ss) MDMD_MUSTCHECK; /* 1: cluster layout */

/* Results are enum store_users_result (store_users.h), or -1 on a Redis
 * error (message in err). */
int store_sync_user_put(struct store_sync *ss, const char *name, const char *role, const char *hash,
                        int create, int64_t now_ms, char *err, size_t errlen) MDMD_MUSTCHECK;
int store_sync_user_del(struct store_sync *ss, const char *name, char *err,
                        size_t errlen) MDMD_MUSTCHECK;

/* Calls fn for every user, sorted by name.  0, or -1 with err set. */
typedef void store_sync_user_fn(void *arg, const char *name, const char *role,
                                const char *created_ms, const char *updated_ms);
int store_sync_user_list(struct store_sync *ss, store_sync_user_fn *fn, void *arg, char *err,
                         size_t errlen) MDMD_MUSTCHECK;

/* Every escrowed bootstrap token (mdm:dev:{UDID} bootstrap_token, found
 * with SCAN): fn gets the UDID and the sealed text and may return a new
 * sealed text (malloc'd; NULL: leave it), written only if the field has not
 * changed meanwhile.  *seen and *changed count them.  0, or -1 with err. */
typedef char *store_sync_token_fn(void *arg, const char *udid, const char *sealed);
int store_sync_bootstrap_each(struct store_sync *ss, store_sync_token_fn *fn, void *arg, long *seen,
                              long *changed, char *err, size_t errlen) MDMD_MUSTCHECK;

#endif
