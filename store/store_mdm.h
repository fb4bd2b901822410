/* store_mdm.h: TEMPORARY, merged into store.h once store.c lands. */
#ifndef MDMD_STORE_MDM_H
#define MDMD_STORE_MDM_H
#include <stddef.h>
#include <stdint.h>
#include "store.h"

/* The Lua scripts of store/lua, by id (internal to store/). */
enum store_lua {
    STORE_LUA_AUTHENTICATE,
    STORE_LUA_TOKEN_UPDATE,
    STORE_LUA_CHECKOUT,
    STORE_LUA_CONNECT,
    STORE_LUA_ENQUEUE,
    STORE_LUA_DEVICE,
    STORE_LUA_DEVICES,
    STORE_LUA_QUEUE_CLEAR,
    STORE_LUA_PUSH_TARGETS,
    STORE_LUA_PUSH_RESULT,
    STORE_LUA_N
};
struct store_script *store_mdm_script(struct store *s, int id);
extern const char *const store_mdm_lua[STORE_LUA_N];

/* ---- MDM data (key layout: docs/REDIS.md).  Every callback gets borrowed
 * values, valid only while the callback runs: copy what you keep. ---- */

/* The Redis key of a device or user channel ("<UDID>:<user>"), kind "dev",
 * "q", "notnow", "res" (docs/REDIS.md). */
#define STORE_MDM_KEY_MAX (UTIL_CHANNEL_MAX + 32)
void store_mdm_key(char *out, size_t n, const char *kind, const char *id);

struct store_kv { /* a record field, or a field to set */
    const char *key;
    const char *val;
    size_t len;
};

struct store_record { /* a hash, or a stream entry (id set) */
    const char *id;
    const struct store_kv *kv;
    size_t n;
};

enum store_ident { /* who a device request may act as */
                   STORE_ID_OK = 0,
                   STORE_ID_UNKNOWN, /* no record for this UDID */
                   STORE_ID_CHECKED_OUT,
                   STORE_ID_CERT_MISMATCH, /* not the certificate bound at Authenticate */
                   STORE_ID_REVOKED,       /* a revoked certificate (re-enrollment, CheckOut) */
                   STORE_ID_NOT_ISSUED,    /* Authenticate: not issued by enrollment (required) */
                   STORE_ID_CN_MISMATCH,   /* Authenticate: CN is not the UDID, and the certificate
                                   * is not one that binds at Authenticate */
                   STORE_ID_NO_CHANNEL,    /* a user channel that has not begun or has ended */
};
const char *store_ident_str(int ident);
/* A script's identity answer ("unknown", ...) as enum store_ident; anything
 * else is STORE_ID_OK (internal to store/). */
int store_mdm_ident(const char *s, size_t n);

struct store_device_msg { /* a check-in message */
    const char *udid;
    const char *cert_fp; /* SHA-256 of the client certificate, hex */
    int64_t now_ms;
    const struct store_kv *fields; /* record fields to set */
    size_t nfields;
    int require_issued; /* Authenticate: only registry certificates (conf) */
    int cn_differs;     /* the certificate's CN is not udid */
    int provision;      /* TokenUpdate: provisioning follows the enrollment (conf) */
};

/* enrolled_now: STORE_ENROLLED_NOW when this TokenUpdate completed an
 * enrollment (with provision set, provisioning is then marked pending in the
 * same script: store_content_provision clears it), STORE_PROVISION_PENDING
 * for a later TokenUpdate while it still is; else 0. */
enum { STORE_ENROLLED_NOW = 1, STORE_PROVISION_PENDING = 2 };
typedef void store_checkin_fn(void *arg, int err, int ident, int enrolled_now);
struct store_op *store_authenticate(struct store *s, const struct store_device_msg *m,
                                    store_checkin_fn *cb, void *arg);
/* mdmd has done what it does once per enrollment (STORE_ENROLLED_NOW) and
 * answers the TokenUpdate: a resend of it is no longer told 'enrolled'
 * (token_update.lua's enroll_unanswered).  cb may be NULL. */
struct store_op *store_enrolled_answered(struct store *s, const char *udid, store_done_fn *cb,
                                         void *arg);
struct store_op *store_token_update(struct store *s, const struct store_device_msg *m,
                                    store_checkin_fn *cb, void *arg);
struct store_op *store_checkout(struct store *s, const struct store_device_msg *m,
                                store_checkin_fn *cb, void *arg);

struct store_report {            /* a device's report on the command endpoint */
    struct store_device_msg dev; /* fields: device information to record */
    const char *status;          /* Idle, Acknowledged, Error, CommandFormatError, NotNow */
    const char *uuid;            /* "" for Idle */
    const char *result;          /* the result plist as XML ("" for Idle) */
    size_t result_len;
    const char *error_chain; /* JSON, or "" */
    int history_len;
    int history_max_bytes; /* of stored results and error chains, per device */
};
/* uuid/plist NULL: nothing left to send. */
typedef void store_next_fn(void *arg, int err, int ident, const char *uuid, const char *plist,
                           size_t plist_len);
struct store_op *store_report(struct store *s, const struct store_report *r, store_next_fn *cb,
                              void *arg);

/* Idle polls answered from memory (store_idle.c; docs/REDIS.md, "Idle
 * polls").  store_idle_enable starts it on the root store (ttl_ms: how long
 * one answer from Redis is trusted at most; <= 0: never); it returns 1 when
 * it is on (answers come only once its subscriber is subscribed).  Around a
 * store_report: mark = store_idle_mark(s) before; when the answer was
 * "nothing to send" for a status other than NotNow, store_idle_learn(s,
 * udid, fp, mark).  store_idle_answer: 1 when an Idle poll of udid with
 * certificate fp may be answered "nothing to send" without Redis (its
 * last_seen is written behind); 0: ask with store_report.  A user channel
 * ("<UDID>:<user>") is never answered from memory.  store_idle_forget:
 * udid's next poll asks Redis. */
int store_idle_enable(struct store *s, int ttl_ms);
uint64_t store_idle_mark(struct store *s) MDMD_MUSTCHECK;
void store_idle_learn(struct store *s, const char *udid, const char *fp, uint64_t mark);
int store_idle_answer(struct store *s, const char *udid, const char *fp,
                      int64_t now_ms) MDMD_MUSTCHECK;
void store_idle_forget(struct store *s, const char *udid);
struct store_idle_stats {
    int on;              /* subscribed: answers may come from memory now */
    unsigned long hits;  /* Idle polls answered from memory */
    unsigned long pokes; /* mdm:poke messages received */
};
/* For /metrics; 0 (nothing filled) when the cache is not enabled. */
int store_idle_stats(struct store *s, struct store_idle_stats *st) MDMD_MUSTCHECK;

struct store_push_target { /* a device that can be woken up */
    const char *udid;
    const char *token; /* hex */
    const char *push_magic;
    const char *topic;
};
struct store_enqueue_result {   /* one enqueue script call */
    long queued;                /* device queues the UUID was added to */
    long already;               /* devices given this UUID before (a retry): passed over */
    int replayed;               /* a job chunk its record had done already: nothing ran */
    const char *const *unknown; /* neither enrolled nor enrolling: nothing queued */
    size_t nunknown;
    const struct store_push_target *push;
    size_t npush;
};
/* res is NULL unless err is MDMD_OK.  MDMD_ECONFLICT: the UUID is stored
 * with another body; nothing was queued. */
typedef void store_enqueue_fn(void *arg, int err, const struct store_enqueue_result *res);
/* How long a command body lives after its last enqueue (mdm:cmd:<UUID>). */
#define STORE_CMD_TTL_S (30 * 24 * 3600)
/* Stores the command once (mdm:cmd:<uuid>, expiring ttl_s after the last
 * enqueue) and queues it for every udid that is enrolled or enrolling and
 * was not given this UUID before: a retry with the same UUID and body
 * queues only what the first attempt did not. */
struct store_op *store_enqueue(struct store *s, const char *uuid, const char *request_type,
                               const char *plist, size_t plist_len, const char *const *udids,
                               size_t nudids, int64_t now_ms, int ttl_s, store_enqueue_fn *cb,
                               void *arg);
/* An enqueue answered 201 must survive the loss of a master (docs/REDIS.md,
 * "Failover"): store_wait() on every node that took its writes, the one of
 * mdm:cmd:<uuid> and those of the udids' slots (one WAIT per node, sent
 * together; one in all on a single Redis).  cb gets MDMD_OK once each said
 * enough replicas have them, else the first error.  Always NULL. */
struct store_op *store_enqueue_wait(struct store *s, const char *uuid, const char *const *udids,
                                    size_t n, int replicas, int ms, store_done_fn *cb, void *arg);

/* dev NULL: unknown device. */
typedef void store_device_fn(void *arg, int err, const struct store_record *dev,
                             const char *const *queue, size_t nqueue, const char *const *notnow,
                             size_t nnotnow);
struct store_op *store_device_get(struct store *s, const char *udid, int max_queue,
                                  store_device_fn *cb, void *arg);

/* next: offset of the following page, -1 at the end. */
typedef void store_devices_fn(void *arg, int err, long next, long total,
                              const struct store_record *devs, size_t n);
struct store_op *store_devices_list(struct store *s, long offset, int limit, const char *state,
                                    store_devices_fn *cb, void *arg);

/* Newest first; before: a stream id to page from, or NULL for the newest.
 * At most count entries, and no more once their fields reach max_bytes (at
 * least one entry, however large): more is 1 when the page stopped there with
 * older entries left.  The script reads entry by entry, so what crosses the
 * connection (and what mdmd's loop reads) is bounded too. */
typedef void store_records_fn(void *arg, int err, const struct store_record *recs, size_t n,
                              int more);
struct store_op *store_history(struct store *s, const char *udid, const char *before, int count,
                               long max_bytes, store_records_fn *cb, void *arg);

/* n: commands dropped, or -1 for an unknown device. */
typedef void store_count_fn(void *arg, int err, long n);
struct store_op *store_queue_clear(struct store *s, const char *udid, store_count_fn *cb,
                                   void *arg);
/* udid's queue as queue_pending.lua's JSON (num unused; "" for an unknown
 * device).  Cluster layout: the commands' bodies are read by their own calls
 * and filled in (store_queue.c). */
struct store_op *store_queue_pending(struct store *s, const char *udid, int limit,
                                     store_eval_fn *cb, void *arg);
/* One step of cancelling uuid everywhere (DELETE /v1/commands/<uuid>): takes
 * it off the queues of about count devices from cursor ("0" to start), user
 * channels included, and moves the job record job_id (done, canceled,
 * cursor; state done at the end).  cb gets JSON {cursor, scanned, canceled},
 * cursor "0" once every device was seen.  The cluster layout's cursor is
 * "<bucket>:<ZSCAN cursor>" over the buckets of mdm:devices. */
struct store_op *store_queue_cancel_step(struct store *s, const char *job_id, const char *uuid,
                                         const char *cursor, int count, int64_t now_ms,
                                         store_eval_fn *cb, void *arg);
/* Takes uuid off udid's queue (a command_canceled event when it was there):
 * n is how many entries went (0: not queued there), -1 for an unknown device. */
struct store_op *store_queue_delete(struct store *s, const char *udid, const char *uuid,
                                    int64_t now_ms, store_count_fn *cb, void *arg);

/* The push topics of the n devices seen last that are not checked out, as
 * JSON {topic: count} (push_topics.lua; the cluster layout merges the newest
 * of each bucket of mdm:devices and reads those records by their own calls). */
struct store_op *store_push_topics(struct store *s, int n, store_eval_fn *cb, void *arg);

/* The devices among udids that can be woken (known, not checked out, with a
 * live token).  Callback values are borrowed. */
typedef void store_targets_fn(void *arg, int err, const struct store_push_target *t, size_t n);
struct store_op *store_push_targets(struct store *s, const char *const *udids, size_t n,
                                    store_targets_fn *cb, void *arg);

struct store_push_outcome { /* how one push ended */
    const char *udid;
    const char *token;   /* the token that was pushed */
    const char *outcome; /* "ok", "bad_token", "failed", "topic_mismatch" */
    int status;          /* HTTP status from APNs, 0 if none */
    const char *reason;  /* APNs reason, "" if none */
    const char *apns_id;
    int64_t now_ms;
    int64_t repush_after_ms; /* "ok" with commands queued: re-push due after this; 0 off */
};
/* Records it on the device (last_push_*), marks a dead token invalid and
 * writes a push_failed event for anything but "ok".  cb may be NULL. */
struct store_op *store_push_result(struct store *s, const struct store_push_outcome *o,
                                   store_done_fn *cb, void *arg);
#endif
