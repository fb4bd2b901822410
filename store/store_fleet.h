/* store_fleet.h: the scripts of fleet operations (issue 19): webhook
 * delivery state, queue surgery, re-push, the push ledger.  Each answers an
 * integer or a JSON string (Redis' cjson), so that callers outside store/
 * parse plain JSON and never see a redisReply.  Key layout: docs/REDIS.md.
 * Same contract as store_eval(): cb runs exactly once unless cancelled,
 * possibly before the call returns. */
#ifndef MDMD_STORE_FLEET_H
#define MDMD_STORE_FLEET_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "store_mdm.h"

enum store_fleet_lua {
    STORE_FLEET_HOOK_NEXT,      /* store/lua/hook_next.lua */
    STORE_FLEET_HOOK_DONE,      /* hook_done.lua */
    STORE_FLEET_HOOK_REPLAY,    /* hook_replay.lua */
    STORE_FLEET_HOOK_DEAD_LIST, /* hook_dead_list.lua */
    STORE_FLEET_HOOK_STATUS,    /* hook_status.lua */
    STORE_FLEET_QUEUE_PENDING,  /* queue_pending.lua */
    STORE_FLEET_QUEUE_DELETE,   /* queue_delete.lua */
    STORE_FLEET_CANCEL_STEP,    /* cancel_step.lua */
    STORE_FLEET_REPUSH_DUE,     /* repush_due.lua */
    STORE_FLEET_REPUSH_AT,      /* repush_at.lua */
    STORE_FLEET_PUSH_LEDGER,    /* push_ledger.lua */
    STORE_FLEET_FLEET_STATS,    /* fleet_stats.lua */
    STORE_FLEET_EXPIRY_EVENT,   /* expiry_event.lua */
    STORE_FLEET_PUSH_CLAIM,     /* push_claim.lua (workers: one push per window) */
    STORE_FLEET_JOB_LIVE,       /* job_live.lua (workers: job leases) */
    STORE_FLEET_JOB_UDIDS,      /* job_udids.lua (workers: a list job's UDIDs) */
    STORE_FLEET_JOB_CMD,        /* job_cmd.lua (workers: a resumed job's command) */
    STORE_FLEET_PUSH_TOPICS,    /* push_topics.lua */
    STORE_FLEET_EVENTS_READ,    /* events_read.lua (through store_fleet_events_read) */
    STORE_FLEET_N
};

/* Runs script id with nkeys keys then argc - nkeys arguments (argvlen NULL:
 * NUL-terminated strings; copied). */
struct store_op *store_fleet_eval(struct store *s, int id, int nkeys, int argc,
                                  const char *const *argv, const size_t *argvlen, store_eval_fn *cb,
                                  void *arg);

/* The live feed's read of the event stream: up to count entries after the
 * stream id after ("": the newest backlog ones and the newest id), as events_read.lua's JSON
 * {"last", "gap", "events": [[id, {fields}]...]}.  Every reader of mdm:events
 * for the feed goes through here, so that a stream split into buckets (Redis
 * Cluster) is merged in this one place.  after must be "<ms>-<seq>" or "". */
struct store_op *store_fleet_events_read(struct store *s, const char *after, int count, int backlog,
                                         store_eval_fn *cb, void *arg);

/* store_enqueue() that puts uuid at the head of each queue (urgent
 * commands: it is the next one sent).  store_mdm.h's callback. */
struct store_op *store_fleet_enqueue_head(struct store *s, const char *uuid,
                                          const char *request_type, const char *plist,
                                          size_t plist_len, const char *const *udids, size_t nudids,
                                          int64_t now_ms, int ttl_s, store_enqueue_fn *cb,
                                          void *arg);

#endif
