/* store_fleet.c: the script table behind store_fleet_eval(). */
#include "store_fleet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

extern const char store_lua_hook_next[], store_lua_hook_done[], store_lua_hook_replay[],
    store_lua_hook_dead_list[], store_lua_hook_status[], store_lua_queue_pending[],
    store_lua_queue_delete[], store_lua_cancel_step[], store_lua_repush_due[],
    store_lua_repush_at[], store_lua_push_ledger[], store_lua_fleet_stats[],
    store_lua_expiry_event[], store_lua_push_claim[], store_lua_job_live[], store_lua_job_udids[],
    store_lua_job_cmd[], store_lua_push_topics[], store_lua_events_read[];

static const char *const store_fleet_lua[STORE_FLEET_N] = {
    [STORE_FLEET_HOOK_NEXT] = store_lua_hook_next,
    [STORE_FLEET_HOOK_DONE] = store_lua_hook_done,
    [STORE_FLEET_HOOK_REPLAY] = store_lua_hook_replay,
    [STORE_FLEET_HOOK_DEAD_LIST] = store_lua_hook_dead_list,
    [STORE_FLEET_HOOK_STATUS] = store_lua_hook_status,
    [STORE_FLEET_QUEUE_PENDING] = store_lua_queue_pending,
    [STORE_FLEET_QUEUE_DELETE] = store_lua_queue_delete,
    [STORE_FLEET_CANCEL_STEP] = store_lua_cancel_step,
    [STORE_FLEET_REPUSH_DUE] = store_lua_repush_due,
    [STORE_FLEET_REPUSH_AT] = store_lua_repush_at,
    [STORE_FLEET_PUSH_LEDGER] = store_lua_push_ledger,
    [STORE_FLEET_FLEET_STATS] = store_lua_fleet_stats,
    [STORE_FLEET_EXPIRY_EVENT] = store_lua_expiry_event,
    [STORE_FLEET_PUSH_CLAIM] = store_lua_push_claim,
    [STORE_FLEET_JOB_LIVE] = store_lua_job_live,
    [STORE_FLEET_JOB_UDIDS] = store_lua_job_udids,
    [STORE_FLEET_JOB_CMD] = store_lua_job_cmd,
    [STORE_FLEET_PUSH_TOPICS] = store_lua_push_topics,
    [STORE_FLEET_EVENTS_READ] = store_lua_events_read,
};

struct store_op *store_fleet_eval(struct store *s, int id, int nkeys, int argc,
                                  const char *const *argv, const size_t *argvlen, store_eval_fn *cb,
                                  void *arg)
{
    return store_eval(s, store_script_get(s, store_fleet_lua[id]), nkeys, argc, argv, argvlen, cb,
                      arg);
}

struct store_op *store_fleet_events_read(struct store *s, const char *after, int count, int backlog,
                                         store_eval_fn *cb, void *arg)
{
    char n[16], b[16];
    snprintf(n, sizeof(n), "%d", count);
    snprintf(b, sizeof(b), "%d", backlog);
    const char *v[] = {"mdm:events", after, n, b};
    return store_fleet_eval(s, STORE_FLEET_EVENTS_READ, 1, 4, v, NULL, cb, arg);
}

struct store_op *store_fleet_enqueue_head(struct store *s, const char *uuid,
                                          const char *request_type, const char *plist,
                                          size_t plist_len, const char *const *udids, size_t nudids,
                                          int64_t now_ms, int ttl_s, store_enqueue_fn *cb,
                                          void *arg)
{
    /* enqueue.lua's from "head": to the head of each queue */
    return store_enqueue_from(s, uuid, request_type, plist, plist_len, udids, nudids, now_ms, ttl_s,
                              "head", cb, arg);
}
