/* store_fanout.h: fleet-wide reads in the cluster key layout (docs/REDIS.md,
 * "Redis Cluster"): one call per bucket of a fleet-wide index, all sent at
 * once, merged when every bucket answered.  Inside store/ only; the typed
 * calls (store_devices_list, store_console_search, ...) use it when
 * store_layout_cluster(), so callers never see the buckets. */
#ifndef MDMD_STORE_FANOUT_H
#define MDMD_STORE_FANOUT_H

#include <hiredis/hiredis.h>
#include <stdint.h>

#include "store_content.h"
#include "store_ddm.h"
#include "store_jobs.h"
#include "store_mdm.h"

struct store_argv;

/* Call i's command into a (empty a: no call for i): returns the script
 * (nkeys set) or NULL for a plain command. */
typedef const char *store_fan_build_fn(void *arg, int i, struct store_argv *a, int *nkeys);
/* Reply i (borrowed), in any order; not called after an error. */
typedef void store_fan_part_fn(void *arg, int i, const redisReply *r);
/* Once, after the last reply: MDMD_OK or the first error. */
typedef void store_fan_done_fn(void *arg, int err);

/* n calls, each routed by its first key.  done may run before this returns. */
void store_fan(struct store *s, int n, store_fan_build_fn *build, store_fan_part_fn *part,
               store_fan_done_fn *done, void *arg);

/* store_devices_list() and store_console_search() over the buckets of
 * mdm:devices and mdm:idx: the same pages (offset counts merged entries, so
 * a deep offset reads that many from every bucket), the records read with
 * one HGETALL per device.  budget: entries merged at most (a state filter).
 * Each returns a handle store_op_cancel() accepts until cb ran, as one op. */
struct store_op *store_fan_devices(struct store *s, long offset, int limit, const char *state,
                                   long budget, store_devices_fn *cb, void *arg);
struct store_op *store_fan_search(struct store *s, const char *query, long offset, int limit,
                                  const char *state, long budget, store_devices_fn *cb, void *arg);

/* store_fleet_events_read() over the buckets of mdm:events, merged by entry
 * id (ties by bucket): entries after `after` up to until_ms only, so that
 * one written a moment later in another bucket with a smaller id (the same
 * millisecond, another master's clock) is still ahead of the cursor; gap
 * when a stream trimmed entries newer than after.  The handle may be
 * cancelled. */
struct store_op *store_fan_events(struct store *s, const char *after, int count, int backlog,
                                  int64_t until_ms, store_eval_fn *cb, void *arg);

/* ddm_fleet.lua's answer over the buckets: mode "failed" (the sets of
 * mdm:ddm:failed merged and sorted, each one's invalid count), or "eq"/"ne"
 * (mdm:ddm:enrollments merged newest first, the status item of each read
 * on its slot, at most budget entries). */
struct store_op *store_fan_ddm_fleet(struct store *s, const char *mode, const char *item,
                                     const char *want, long offset, int limit, long budget,
                                     store_ddm_fn *cb, void *arg);

/* Claims by lua (KEYS: the bucket's key; ARGV: now before limit; returns
 * the UDIDs claimed, as provision_due.lua) on every bucket of base, each
 * bucket's share of limit (at least 1), the UDIDs of all to cb. */
struct store_op *store_fan_claim(struct store *s, const char *lua, const char *base, int64_t now_ms,
                                 int64_t before_ms, int limit, store_udids_fn *cb, void *arg);

/* repush_due.lua's answer (JSON [[udid, token, push_magic, topic]...]) in
 * the cluster layout: repush_claim.lua on every bucket of mdm:repush (each
 * its share of limit), then repush_dev.lua per device claimed, pipelined; the
 * schedule's new times and the push_unanswered events are fleet writes. */
struct store_op *store_fan_repush(struct store *s, int64_t now_ms, int limit, int64_t after_ms,
                                  int64_t max_ms, int max_attempts, store_eval_fn *cb, void *arg);

/* The webhooks in the cluster layout (store_fleet_eval's hook scripts): a
 * consumer group per bucket stream of mdm:events, dead letters and replay
 * streams in {g}.  hook_next: hook_next.lua on every bucket and the replay
 * stream at once, the answer a replayed entry or else the oldest pick, with
 * "b" its bucket.  hook_status: hook_status.lua's JSON added up over the
 * buckets.  hook_done: argv group src id outcome [event_id payload error
 * attempts now url] (argc values): the dead letter's XADD, then the XACK on
 * events (the entry's bucket stream) or the replayed entry's XDEL. */
struct store_op *store_fan_hook_next(struct store *s, const char *group, const char *consumer,
                                     const char *idle_ms, store_eval_fn *cb, void *arg);
struct store_op *store_fan_hook_status(struct store *s, const char *const *groups, int n,
                                       store_eval_fn *cb, void *arg);
struct store_op *store_fan_hook_done(struct store *s, const char *events, const char *const *argv,
                                     const size_t *lens, int argc, store_eval_fn *cb, void *arg);

/* ddm_notify.lua's chunk in the cluster layout (store_ddm_notify.c): the
 * same argv (job mode cursor count now now_iso ttl_s uuid_prefix [udid...];
 * a scan's cursor is "<bucket>:<ZSCAN cursor>", "0" past the last bucket)
 * and the same reply, {next_cursor, scanned, queued, {udid, token,
 * push_magic, topic}...}, from calls in turn over the slots. */
struct store_op *store_ddm_notify_cluster(struct store *s, int argc, const char *const *argv,
                                          store_ddm_fn *cb, void *arg);

/* store_stats() summed over the buckets of mdm:stats and mdm:devices. */
struct store_op *store_fan_stats(struct store *s, store_stats_fn *cb, void *arg);

#endif
