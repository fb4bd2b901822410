/* store_int.h: the op machinery typed store calls are built on.  Only for
 * files under store/: this is where hiredis types may appear.
 *
 * A typed call is three small pieces:
 *
 *   static void store_get_reply(struct store_op *op, int err, const redisReply *r)
 *   {
 *       err = store_reply_error(err, r);      // transport error or "-ERR ..."
 *       ... parse r into plain values (borrowed by the callback) ...
 *       op->cb.get(op->arg, err, ...);
 *   }
 *   struct store_op *store_get(struct store *s, const char *k, store_get_fn *cb, void *arg)
 *   {
 *       const char *argv[] = {"GET", k};
 *       struct store_op *op = store_op_new(s, (union store_cb){.get = cb}, arg);
 *       return store_cmd_argv(s, 2, argv, NULL, store_get_reply, op);
 *   }
 *
 * The callback travels as a member of union store_cb, one member per
 * callback type, so that it is stored and called through its own type: a
 * callback of the wrong type does not compile (no cast through a generic
 * function pointer anywhere).  The member named where the op is made must be
 * the one its reply function calls.
 *
 * The reply function runs exactly once per op unless the op was cancelled:
 * with err == MDMD_OK and the reply (any type, error replies included), or
 * with err != MDMD_OK (MDMD_EUNAVAIL, MDMD_ETIMEDOUT, MDMD_ECANCELED) and
 * r == NULL.  It must not keep r.  It may be called before store_cmd_argv()
 * returns, and the caller's callback may free the store: touch neither the op's
 * store nor the op after calling it. */
#ifndef MDMD_STORE_INT_H
#define MDMD_STORE_INT_H

#include "../core/util.h"

#include "store.h"
#include "store_ddm.h"
#include "store_checkin.h"
#include "store_console.h"
#include "store_content.h"
#include "store_enroll.h"
#include "store_jobs.h"
#include "store_mdm.h"
#include "store_scep.h"
#include "store_users.h"
#include <hiredis/hiredis.h>

struct event;
struct store_arg;

union store_cb { /* the caller's callback, by its type */
    store_done_fn *done;
    store_eval_fn *eval;
    store_checkin_fn *checkin;
    store_next_fn *next;
    store_enqueue_fn *enqueue;
    store_device_fn *device;
    store_devices_fn *devices;
    store_records_fn *records;
    store_count_fn *count;
    store_targets_fn *targets;
    store_job_fn *job;
    store_filter_fn *filter;
    store_stats_fn *stats;
    store_content_fn *content;
    store_content_result_fn *content_result;
    store_assign_fn *assign;
    store_grants_fn *grants;
    store_provision_fn *provision;
    store_udids_fn *udids;
    store_console_session_fn *console_session;
    store_cert_fn *cert;
    store_chal_fn *chal;
    store_issue_fn *issue;
    store_scep_cert_fn *scep_cert;
    store_login_fn *login;
    store_user_fn *user;
    store_users_fn *users;
    store_users_result_fn *users_result;
    store_ddm_fn *ddm;
    store_values_fn *values;
    store_migrate_fn *migrate;
};
#define STORE_CB_NONE ((union store_cb){.done = NULL}) /* the store's own ops */

typedef void store_reply_fn(struct store_op *op, int err, const redisReply *r);

struct store_op {                 /* lives from send until hiredis lets go of it */
    struct store *s;              /* valid until the reply function has run */
    struct store_op *prev, *next; /* in the store's pending list */
    store_reply_fn *reply;        /* turns the reply into plain values, runs cb */
    union store_cb cb;            /* the caller's callback; .done NULL for the store's own ops */
    void *arg;
    struct event *timer;         /* hiredis 0.14 has no command timeout: ours */
    int fail_err;                /* what a NULL reply means: EUNAVAIL, or ETIMEDOUT */
    int tracked;                 /* in the pending list, timer armed */
    int done;                    /* reply function ran (or was skipped: cancelled) */
    int cancelled;               /* store_op_cancel(): skip the reply function */
    int internal;                /* the store's own: may go out during the handshake */
    int retried;                 /* a script op already resent as EVAL */
    struct store_script *script; /* EVALSHA/SCRIPT LOAD ops */
    int nkeys, argc;             /* script ops: */
    struct store_arg *args;      /* keys and arguments copied for the NOSCRIPT resend */
    int64_t sent_ns;             /* metrics_now_ns() at send: the round-trip histogram */
    int slot;                    /* cluster: the key's slot, -1 until routed */
    int redirects;               /* cluster: MOVED/ASK followed so far */
    int parked;                  /* cluster: waiting in the root store for its node */
    store_reply_fn *fx_next;     /* fleet-effect scripts: the reply function behind the unwrap */
    int64_t fx_now_ms;           /* fleet-effect scripts: the minute of the rate keys */
    int fx_bucket;               /* fleet-effect scripts: the device's bucket */
};

/* A fresh op for store_cmd_argv()/store_cmd_script(), which take ownership. */
struct store_op *store_op_new(struct store *s, union store_cb cb, void *arg);

/* Sends argv (argvlen NULL: NUL-terminated strings; both are copied by
 * hiredis before this returns).  Returns op, or NULL when reply already ran
 * with MDMD_EUNAVAIL (not connected) and op is gone. */
struct store_op *store_cmd_argv(struct store *s, int argc, const char *const *argv,
                                const size_t *argvlen, store_reply_fn *reply, struct store_op *op);

/* EVALSHA sc (EVAL until its SHA1 is known) with nkeys keys then the other
 * argc - nkeys arguments; NOSCRIPT is handled here, reply never sees it. */
struct store_op *store_cmd_script(struct store *s, struct store_script *sc, int nkeys, int argc,
                                  const char *const *argv, const size_t *argvlen,
                                  store_reply_fn *reply, struct store_op *op);

/* The script for lua, registered on first use (store_script_new()) and
 * found again by the address of lua: meant for a fixed table of string
 * constants, e.g. store_mdm_script(s, id) is store_script_get(s, table[id]). */
struct store_script *store_script_get(struct store *s, const char *lua);

/* An argument vector under construction: keys first, then arguments.  The
 * first STORE_ARGV_INLINE entries, and formatted strings up to
 * STORE_ARGV_TEXT bytes in all, take no allocation (a device request fits);
 * beyond, it grows.  Strings pushed are borrowed; those store_argv_fmt makes
 * are owned until store_argv_free.  Not to be copied once in use: it points
 * into itself. */
#define STORE_ARGV_INLINE 32
#define STORE_ARGV_TEXT 512
struct store_argv {
    const char **v;
    size_t *len;
    int n, cap;
    const char *v0[STORE_ARGV_INLINE];
    size_t len0[STORE_ARGV_INLINE];
    char text[STORE_ARGV_TEXT];
    size_t used;
    char **heap; /* formatted strings that did not fit in text */
    int nheap;
};
void store_argv_init(struct store_argv *a);
void store_argv_push(struct store_argv *a, const char *s, size_t len);
void store_argv_str(struct store_argv *a, const char *s);
void store_argv_fmt(struct store_argv *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Every string of a copied into a (for an argument vector that outlives its
 * caller's strings: a call made again later). */
void store_argv_own(struct store_argv *a);
void store_argv_free(struct store_argv *a);
/* store_cmd_script(lua) with a new op for cb/arg, then store_argv_free(a). */
struct store_op *store_argv_script(struct store *s, const char *lua, int nkeys,
                                   struct store_argv *a, store_reply_fn *reply, union store_cb cb,
                                   void *arg);

/* A script op's argument i (keys first), as sent: NUL-terminated, valid in
 * its reply function; "" past the end. */
const char *store_op_arg(const struct store_op *op, int i);

/* The store the caller holds (s itself, or the root of a cluster node's). */
struct store *store_root(struct store *s);

/* The per-process cache of command bodies by UUID (store_report.c): a body
 * and its request_type never change once stored.  store_body_rt: the cached
 * request_type, or NULL. */
void store_body_keep(const char *uuid, const char *rt, size_t rt_len, const char *plist,
                     size_t len);
const char *store_body_rt(const char *uuid);

/* A blocking connection to addr (a unix socket path, "host:port" or
 * "[v6]:port"), for the command-line tools (store_sync.c); NULL, or a
 * context whose err is set, when it failed. */
redisContext *store_sync_connect(const char *addr, int timeout_ms);

/* Idle polls from memory (store_idle.c).  A connection of its own to s's
 * Redis (a cluster's current seed), on s's loop, for the subscriber: the
 * caller sets its callbacks and owns it as store.c owns its own (hiredis
 * frees it after a failed connect or an I/O error); NULL when it could not
 * be begun (logged). */
struct redisAsyncContext;
struct redisAsyncContext *store_connect_aside(struct store *s);
struct event_base *store_base(const struct store *s);
struct store_idle;
struct store_idle *store_idle_of(struct store *s); /* the root's, or NULL */
void store_idle_set(struct store *s, struct store_idle *d);
void store_idle_free(struct store_idle *d); /* NULL-safe */

/* A device script with fleet effects (fx_begin ... fx_reply, prelude.lua;
 * docs/REDIS.md, "Redis Cluster"): nkeys are its own keys, all in the
 * device's slot, KEYS[1] naming the device.  Single layout: the fleet block
 * (STORE_FX_KEYS keys: mdm:devices ... mdm:ddm:failed, the rate keys of this
 * minute) follows them in KEYS and the script writes it itself, one call as
 * before.  Cluster layout: the device's outbox (mdm:fx:{<hash tag>}) follows
 * them instead; the script records its fleet writes there and returns what
 * the outbox holds with its reply; that goes out at once as fleet_apply.lua
 * on the device's bucket, without waiting for its answer (an entry not
 * applied stays in the outbox for the device's next request), and reply gets
 * the script's own reply, so reply functions read the same shape in both
 * layouts.  Otherwise as store_argv_script. */
#define STORE_FX_KEYS 12
struct store_op *store_argv_fx_script(struct store *s, const char *lua, int nkeys,
                                      struct store_argv *a, store_reply_fn *reply,
                                      union store_cb cb, void *arg);
/* The same, a left as it is (the caller frees it). */
struct store_op *store_argv_fx_keep(struct store *s, const char *lua, int nkeys,
                                    const struct store_argv *a, store_reply_fn *reply,
                                    union store_cb cb, void *arg);
/* Appends the fleet block of bucket (store_bucket_key) for the minute of
 * now_ms to a, in fx_names order (prelude.lua). */
void store_fx_keys(const struct store *s, struct store_argv *a, int bucket, int64_t now_ms);

/* Appends the registry's prefix key "mdm:cert:" in the single layout (a
 * device script's identity check reads the registry there, mdm_ident_dev);
 * nothing in the cluster layout, where the registry is in other slots. */
void store_cert_prefix(const struct store *s, struct store_argv *a);
/* Into out: "mdm:<what><id>" or "mdm:{g}:<what><id>" (an enrollment or SCEP
 * challenge, an address's failure counter, a transaction: configuration,
 * store_enroll.c). */
void store_enroll_gkey(const struct store *s, char *out, size_t size, const char *what,
                       const char *id);
/* A one-time challenge (SET NX with a lifetime) under "mdm:<what><challenge>"
 * for owner; cb gets MDMD_EPROTO when it exists already.  An enrollment's and
 * a SCEP request's are the same but for what. */
struct store_op *store_enroll_chal_put(struct store *s, const char *what, const char *challenge,
                                       const char *owner, int ttl_s, store_done_fn *cb, void *arg);
void store_enroll_done_reply(struct store_op *op, int err, const redisReply *r);
/* challenge_take.lua's answer, for an op whose cb is .chal. */
void store_enroll_chal_reply(struct store_op *op, int err, const redisReply *r);
/* After a device script that revoked fp (cluster layout: the registry's
 * half, cert_revoke.lua on mdm:cert:<fp>); cb gets its outcome. */
struct store_op *store_cert_revoke(struct store *s, const char *fp, const char *udid,
                                   int64_t now_ms, const char *reason, store_done_fn *cb,
                                   void *arg);

/* The command endpoint's connect.lua argument vector (store_mdm.c): KEYS
 * dev q notnow res sent, and in the single layout the prefixes of the
 * command bodies and the registry (the cluster layout: the device's
 * mdm:cmdto:{UDID}); rt the reported command's request_type
 * (cluster layout), at index STORE_REPORT_RT.  Returns the number of keys. */
int store_mdm_report_argv(struct store_argv *a, const struct store_report *rp, int cluster,
                          const char *rt);
#define STORE_REPORT_ARGS 10        /* the arguments before the device's fields */
#define STORE_REPORT_CLUSTER_KEYS 6 /* dev q notnow res sent cmdto */
#define STORE_REPORT_STATUS (STORE_REPORT_CLUSTER_KEYS + 3)
#define STORE_REPORT_UUID (STORE_REPORT_CLUSTER_KEYS + 4)
#define STORE_REPORT_RT (STORE_REPORT_CLUSTER_KEYS + 9)
/* store_report() in the cluster layout (store_report.c). */
struct store_op *store_report_cluster(struct store *s, const struct store_report *rp,
                                      store_next_fn *cb, void *arg);

/* Pushes a configuration key: "mdm:<rest>" (single layout) or
 * "mdm:{g}:<rest>" (cluster), rest formatted (store_global_key()). */
void store_argv_gkey(struct store_argv *a, const struct store *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Pushes store_bucket_key(s, base, bucket): base itself, or "base:{bNN}". */
void store_argv_bkey(struct store_argv *a, const struct store *s, const char *base, int bucket);

/* store_eval()'s reply function: op->cb.eval gets the reply (a fleet script
 * sent by hand, store_fleet.c). */
void store_eval_reply(struct store_op *op, int err, const redisReply *r);

/* The usual first step of a reply function: err unchanged when set; for an
 * error reply MDMD_EUNAVAIL when Redis cannot serve yet (LOADING, BUSY,
 * MASTERDOWN, TRYAGAIN) and MDMD_EPROTO otherwise (logged); else MDMD_OK. */
int store_reply_error(int err, const redisReply *r) MDMD_MUSTCHECK;

/* 1 when r is an array of strings only (shared reply checks, store_mdm.c). */
int store_reply_strings(const redisReply *r) MDMD_MUSTCHECK;
/* [[udid, token, magic, topic]...] as push targets; strings borrowed from p,
 * the array freed by the caller. */
struct store_push_target *store_reply_targets(const redisReply *p, size_t *n);
/* The reply of enqueue.lua-shaped scripts ({queued, {unknown}, {targets}})
 * for a store_enqueue_fn callback (store_mdm.c; store_jobs.c reuses it). */
void store_enqueue_reply(struct store_op *op, int err, const redisReply *r);
/* The node serving key's slot (store_cluster.h's index), -1 on a single
 * Redis or when no node serves it: which keys one WAIT covers. */
int store_key_node(const struct store *s, const char *key) MDMD_MUSTCHECK;

/* store_enqueue() with enqueue.lua's from ("": a request, "head": to the
 * head of each queue); the single layout's keys of udids (dev, q each). */
struct store_op *store_enqueue_from(struct store *s, const char *uuid, const char *request_type,
                                    const char *plist, size_t plist_len, const char *const *udids,
                                    size_t nudids, int64_t now_ms, int ttl_s, const char *from,
                                    store_enqueue_fn *cb, void *arg);
void store_enqueue_keys(struct store_argv *a, const char *const *udids, size_t n);

/* The cluster key layout's enqueue (store_queue.c): the body by its own call
 * (plist NULL: a job step, the body was stored when it started), then one
 * enqueue.lua per slot among the UDIDs, then the counters and a job's
 * progress.  Always NULL: it is several ops (none is cancellable alone); cb
 * runs exactly once. */
struct store_queue_req {
    const char *uuid, *request_type, *plist;
    size_t plist_len;
    const char *const *udids;
    size_t nudids;
    const char *from;   /* enqueue.lua's from: "", "head", or a job's index */
    const char *job_id; /* a list job's, or NULL */
    size_t at;          /* a job's index of udids[0] */
    int64_t now_ms;
    int ttl_s;
};
struct store_op *store_queue_enqueue(struct store *s, const struct store_queue_req *r,
                                     store_enqueue_fn *cb, void *arg);
/* A filter job's step: cursor "<bucket>:<ZSCAN cursor>" (or "0": the start)
 * over the buckets of mdm:devices; next_cursor "0" past the last one. */
struct store_op *store_queue_filter_step(struct store *s, const char *job_id, const char *uuid,
                                         const char *state, const char *cursor, int count, int step,
                                         int64_t now_ms, int ttl_s, store_filter_fn *cb, void *arg);

#endif
