/* h_jobs.h: bulk enqueue jobs.  POST /v1/commands with more than
 * H_JOBS_SYNC_MAX UDIDs, with "filter": "all_enrolled", or with "async": true
 * answers 202 {"job_id", "command_uuid", "total", "state"} as soon as the job
 * record exists, then queues the command chunk by chunk: one Lua call at a
 * time, the next sent from the previous one's callback, so the loop serves
 * other requests between chunks.  Redis runs nothing else while a script
 * runs, so the chunk size adapts to keep each call near H_JOBS_STEP_MS
 * (between H_JOBS_CHUNK_MIN and H_JOBS_CHUNK_MAX devices): on a busy machine
 * the job slows down rather than the check-ins.  Progress is
 * kept in Redis (mdm:job:<id>, docs/REDIS.md) and read with
 * GET /v1/jobs/{id}.
 *
 * A Redis call that fails with a timeout or "unavailable" pauses the job: the
 * same step is sent again after a backoff (100 ms doubling to 5 s).  Each
 * step's script checks the record's position (`next`, `steps`) and runs at
 * most once, so a step whose reply was lost is not done twice; the job
 * resumes from the stored cursor.  After job_retry_max_s without a success
 * it fails, and the record's error says where it stopped.
 *
 * A job belongs to no request: it owns itself from h_jobs_start() until its
 * last Redis call answers.  At SIGTERM (h_jobs_stop) it records "failed" and
 * where it stopped at its next step, and the drain waits for that.  If the
 * drain deadline passes first, the store fails the call in flight with
 * MDMD_ECANCELED and the job frees itself (a paused one is freed by
 * h_jobs_free_all()); only then (or after kill -9) does its record stay
 * "running", and it is reported "failed" once it has not moved for
 * job_retry_max_s + H_JOBS_STALE_S seconds. */
#ifndef MDMD_H_JOBS_H
#define MDMD_H_JOBS_H

#include <stddef.h>
#include <stdint.h>

struct req;
struct app;

#define H_JOBS_SYNC_MAX 5000        /* larger UDID lists run as a job */
#define H_JOBS_CHUNK_MIN 50         /* devices per Lua call, at least */
#define H_JOBS_CHUNK_MAX 1000       /* and at most */
#define H_JOBS_STEP_MS 5            /* the round trip each call aims at */
#define H_JOBS_TTL_S (7 * 24 * 3600) /* a job record lives this long after its last update */
#define H_JOBS_STALE_S 60           /* a running job that has not moved this long died */

struct h_jobs_cmd {                 /* what a job queues */
    char uuid[37];
    char *request_type;             /* owned */
    char *plist;                    /* owned: XML of {Command, CommandUUID} */
    uint32_t plist_len;
    char **udids;                   /* owned, each string too; NULL for a filter job */
    size_t nudids;
    const char *state;              /* filter jobs: the device state targeted (static) */
};

/* The device state a filter name targets ("all_enrolled" -> "enrolled"), or
 * NULL for an unknown filter. */
const char *h_jobs_filter_state(const char *filter);

/* Takes over c's pointers (and clears them), answers req, and runs the job. */
void h_jobs_start(struct req *req, struct app *app, struct h_jobs_cmd *c);

/* SIGTERM: every job ends at its next step (a paused one at once) with
 * state "failed" and an error that says where it stopped.  h_jobs_running()
 * counts the jobs still alive, for the shutdown drain. */
void h_jobs_stop(void);
int h_jobs_running(void);

/* Frees the paused jobs (they hold a timer and no call): at shutdown,
 * before the store and the event base go. */
void h_jobs_free_all(void);

/* GET /v1/jobs/{id} */
void h_jobs_get(struct req *req, void *app);

#endif
