/* store_jobs.h: bulk enqueue jobs (mdm:job:<id>) and the numbers /metrics
 * reads from Redis (mdm:stats).  Key layout: docs/REDIS.md.  Same contract as
 * store_mdm.h: every callback runs exactly once (possibly before the call
 * returns, with MDMD_EUNAVAIL) and gets borrowed values, valid only while it
 * runs. */
#ifndef MDMD_STORE_JOBS_H
#define MDMD_STORE_JOBS_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "store_mdm.h"

#define STORE_JOB_ID_LEN 32 /* hex characters of a job id */

/* Into buf: the key of job id's record, mdm:job:<id> (single layout) or
 * mdm:{g}:job:<id> (cluster: the jobs are fleet configuration).  Returns buf. */
const char *store_job_key(const struct store *s, char *buf, size_t size, const char *id);

/* Creates or updates mdm:job:<id> with the given fields and renews its TTL.
 * cb may be NULL. */
struct store_op *store_job_set(struct store *s, const char *id, const struct store_kv *kv, size_t n,
                               int ttl_s, store_done_fn *cb, void *arg);

/* rec NULL: no such job (never created, or expired). */
typedef void store_job_fn(void *arg, int err, const struct store_record *rec);
struct store_op *store_job_get(struct store *s, const char *id, store_job_fn *cb, void *arg);

struct store_job_cmd { /* the command a job queues */
    const char *uuid;
    const char *request_type;
    const char *plist;
    size_t plist_len;
    int ttl_s; /* of mdm:cmd:<uuid> */
};
/* Creates the job record (fields kv) and stores the command it queues
 * (mdm:cmd:<uuid>) in one script: MDMD_ECONFLICT when that UUID is stored
 * with another body (nothing is written then). */
struct store_op *store_job_start(struct store *s, const char *id, const struct store_job_cmd *c,
                                 const struct store_kv *kv, size_t n, int ttl_s, int64_t now_ms,
                                 store_done_fn *cb, void *arg);

/* store_enqueue() for one chunk of a job's UDID list, the one starting at
 * index from: also adds the chunk's counts to the job record (done, queued,
 * unknown, skipped) and moves its `next` past the chunk, in the same script.
 * A chunk the record has passed already (a resend after a lost reply) runs
 * nothing and answers replayed. */
struct store_op *store_job_enqueue(struct store *s, const char *job_id,
                                   const struct store_job_cmd *c, size_t from,
                                   const char *const *udids, size_t nudids, int64_t now_ms,
                                   store_enqueue_fn *cb, void *arg);

/* next_cursor "0": the scan is complete. */
typedef void store_filter_fn(void *arg, int err, const char *next_cursor, long scanned, long queued,
                             const struct store_push_target *push, size_t npush);
/* One step of a filter job: scans about count entries of mdm:devices from
 * cursor ("0" to start) and queues the command for the devices in state
 * that were not given it before; progress goes to the job record (done,
 * queued, skipped, cursor, steps).  step: steps done so far; when the record
 * counts more (a resend after a lost reply), nothing runs and next_cursor
 * is the stored one, scanned 0.  MDMD_ECONFLICT: the UUID is stored with
 * another body. */
struct store_op *store_job_filter_step(struct store *s, const char *job_id,
                                       const struct store_job_cmd *c, const char *state,
                                       const char *cursor, int count, int step, int64_t now_ms,
                                       store_filter_fn *cb, void *arg);

struct store_stats {
    long long queue_depth; /* commands queued over all devices (mdm:stats) */
    long long devices;     /* ZCARD mdm:devices */
};
typedef void store_stats_fn(void *arg, int err, const struct store_stats *st);
struct store_op *store_stats(struct store *s, store_stats_fn *cb, void *arg);

#endif
