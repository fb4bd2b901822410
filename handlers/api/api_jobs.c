#include "api.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/app.h"
#include "../../core/conf.h"
#include "../../core/http.h"
#include "../../core/log.h"
#include "../../core/metrics.h"
#include "../../core/super.h"
#include "../../core/util.h"
#include "../../store/store_fleet.h"
#include "../../store/store_jobs.h"
#include "../wake/wake.h"

#define API_JOBS_BACKOFF_MIN_MS 100
#define API_JOBS_BACKOFF_MAX_MS 5000

struct api_jobs {
    struct api_jobs *prev, *next_job; /* every live job (api_jobs_free_all) */
    struct app *app;
    struct req *req; /* until the 202 is sent */
    char id[STORE_JOB_ID_LEN + 1];
    struct api_jobs_cmd c;
    size_t next;     /* list jobs: first UDID not yet done */
    size_t sending;  /* list jobs: UDIDs in the call in flight */
    char cursor[32]; /* filter jobs: ZSCAN cursor */
    int scans;       /* filter jobs: steps done */
    int chunk;       /* devices in the next call (adapts, api.h) */
    int64_t step_ns; /* when the call in flight was sent */
    long done, queued, unknown;
    long push_waits;  /* times it paused for APNs to catch up */
    int push_waiting; /* in wake_when_below() now */
    int64_t started_ms;
    struct event *retry;   /* a paused job's timer */
    int64_t failing_since; /* ms (monotonic) of the first failure in a row, or 0 */
    int backoff_ms;
    int ending;    /* the final record is being written */
    char why[256]; /* why it failed ("" once done) */
};

static struct api_jobs *api_jobs_live; /* one loop: no lock */
static int api_jobs_stopping;          /* api_jobs_stop(): SIGTERM */

static void api_jobs_lease_begin(struct api_jobs *j);
static void api_jobs_lease_end(struct api_jobs *j);

const char *api_jobs_filter_state(const char *filter)
{
    if (filter != NULL && strcmp(filter, "all_enrolled") == 0)
        return "enrolled";
    return NULL;
}

static void api_jobs_free(struct api_jobs *j)
{
    if (j->prev != NULL)
        j->prev->next_job = j->next_job;
    else if (api_jobs_live == j)
        api_jobs_live = j->next_job;
    if (j->next_job != NULL)
        j->next_job->prev = j->prev;
    if (j->retry != NULL)
        event_free(j->retry);
    for (size_t i = 0; i < j->c.nudids; i++)
        free(j->c.udids[i]);
    free(j->c.udids);
    free(j->c.plist);
    free(j->c.request_type);
    free(j);
}

static struct store_kv api_jobs_kv(const char *k, const char *v)
{
    return (struct store_kv){k, v, strlen(v)};
}

/* ---- the end ---- */

static void api_jobs_end_write(struct api_jobs *j);
static void api_jobs_step(struct api_jobs *j);

/* Transient: Redis timed out, restarted, failed over, or is loading. */
static int api_jobs_transient(int err)
{
    return err == MDMD_EUNAVAIL || err == MDMD_ETIMEDOUT;
}

static void api_jobs_on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct api_jobs *j = arg;
    (void)fd, (void)what;
    if (j->ending)
        api_jobs_end_write(j);
    else
        api_jobs_step(j);
}

/* Tries the same step again after the backoff (doubling, capped). */
static void api_jobs_pause(struct api_jobs *j)
{
    struct timeval tv = {j->backoff_ms / 1000, (j->backoff_ms % 1000) * 1000};
    if (j->retry == NULL)
        j->retry = evtimer_new(j->app->base, api_jobs_on_retry, j);
    evtimer_add(j->retry, &tv);
    j->backoff_ms =
        j->backoff_ms * 2 < API_JOBS_BACKOFF_MAX_MS ? j->backoff_ms * 2 : API_JOBS_BACKOFF_MAX_MS;
}

static void api_jobs_on_end(void *arg, int err)
{
    struct api_jobs *j = arg;
    /* The record must not stay "running": the end is retried as long as a
     * reader would still take the record for a live job. */
    if (api_jobs_transient(err) &&
        util_mono_ms() - j->failing_since < (int64_t)API_JOBS_STALE_S * 1000) {
        api_jobs_pause(j);
        return;
    }
    if (err != MDMD_OK)
        log_err("event=job_record_failed job=%s err=%s", j->id, mdmd_strerror(err));
    else
        api_jobs_lease_end(j);
    api_jobs_free(j);
}

static void api_jobs_end_write(struct api_jobs *j)
{
    char now[24], next[24];
    snprintf(now, sizeof(now), "%lld", (long long)util_now_ms());
    snprintf(next, sizeof(next), "%zu", j->next);
    struct store_kv kv[] = {
        api_jobs_kv("state", *j->why == '\0' ? "done" : "failed"), api_jobs_kv("updated", now),
        api_jobs_kv("finished", now), api_jobs_kv("error", j->why),
        api_jobs_kv(j->c.state != NULL ? "cursor" : "next", j->c.state != NULL ? j->cursor : next)};
    store_job_set(j->app->store, j->id, kv, ARRAY_LEN(kv), API_JOBS_TTL_S, api_jobs_on_end, j);
}

/* Records the final state; why NULL: done. */
static void api_jobs_end(struct api_jobs *j, const char *why)
{
    snprintf(j->why, sizeof(j->why), "%s", why != NULL ? why : "");
    j->ending = 1;
    j->failing_since = util_mono_ms();
    j->backoff_ms = API_JOBS_BACKOFF_MIN_MS;
    if (why == NULL)
        j->app->metrics->jobs_done++;
    else
        j->app->metrics->jobs_failed++;
    log_info("event=job_%s job=%s uuid=%s request_type=%s done=%ld queued=%ld unknown=%ld "
             "push_waits=%ld ms=%lld%s%s",
             why == NULL ? "done" : "failed", j->id, j->c.uuid, j->c.request_type, j->done,
             j->queued, j->unknown, j->push_waits, (long long)(util_now_ms() - j->started_ms),
             why ? " reason=" : "", why ? why : "");
    api_jobs_end_write(j);
}

/* "after 200 of 3000 devices" or "after 400 devices scanned (cursor 17)". */
static void api_jobs_where(const struct api_jobs *j, char *out, size_t len)
{
    if (j->c.state != NULL)
        snprintf(out, len, "after %ld devices scanned (cursor %s)", j->done, j->cursor);
    else
        snprintf(out, len, "after %zu of %zu devices", j->next, j->c.nudids);
}

/* A failed step.  Transient errors pause the job, which then resumes from
 * where its record says it is, for up to job_retry_max_s; then, or on any
 * other error, it fails saying where it stopped.  MDMD_ECANCELED: the store
 * is going away (shutdown), so nothing can be recorded; the record goes
 * stale (api.h). */
static int api_jobs_failed(struct api_jobs *j, int err)
{
    char why[160];
    if (err == MDMD_OK) {
        if (j->failing_since != 0)
            log_info("event=job_resumed job=%s done=%ld paused_ms=%lld", j->id, j->done,
                     (long long)(util_mono_ms() - j->failing_since));
        j->failing_since = 0;
        j->backoff_ms = API_JOBS_BACKOFF_MIN_MS;
        return 0;
    }
    if (err == MDMD_ECANCELED) {
        log_warn("event=job_abandoned job=%s done=%ld reason=shutdown", j->id, j->done);
        api_jobs_free(j);
        return 1;
    }
    int64_t now = util_mono_ms();
    if (j->failing_since == 0) {
        j->failing_since = now;
        log_warn("event=job_paused job=%s done=%ld err=%s", j->id, j->done, mdmd_strerror(err));
    }
    if (api_jobs_transient(err) &&
        now - j->failing_since < (int64_t)j->app->cf->job_retry_max_s * 1000) {
        api_jobs_pause(j);
        return 1;
    }
    char where[96];
    api_jobs_where(j, where, sizeof(where));
    snprintf(why, sizeof(why), "%s for %lld s; stopped %s",
             err == MDMD_ETIMEDOUT  ? "redis timeout"
             : err == MDMD_EUNAVAIL ? "redis unavailable"
                                    : mdmd_strerror(err),
             (long long)(now - j->failing_since) / 1000, where);
    api_jobs_end(j, why);
    return 1;
}

/* SIGTERM: the job ends where it is and says so (never "running" once its
 * mdmd is gone); the same request with its command_uuid finishes it. */
static void api_jobs_end_stopped(struct api_jobs *j)
{
    char why[256], where[96];
    api_jobs_where(j, where, sizeof(where));
    snprintf(why, sizeof(why),
             "mdmd stopped %s; post the command again with this command_uuid "
             "to finish",
             where);
    if (j->retry != NULL)
        evtimer_del(j->retry);
    api_jobs_end(j, why);
}

static void api_jobs_on_push_room(void *arg, int err);

/* The jobs that hold no call in flight end now: the paused ones and those
 * waiting for APNs to catch up (a stalled APNs would keep them waiting past
 * the drain deadline, and their record "running"). */
void api_jobs_stop(void)
{
    api_jobs_stopping = 1;
    for (struct api_jobs *j = api_jobs_live, *next; j != NULL; j = next) {
        next = j->next_job;
        if (j->ending)
            continue;
        if (j->push_waiting && wake_when_below_cancel(j->app->wake, api_jobs_on_push_room, j)) {
            j->push_waiting = 0;
            api_jobs_end_stopped(j);
        } else if (j->retry != NULL && evtimer_pending(j->retry, NULL)) {
            api_jobs_end_stopped(j);
        }
    }
}

int api_jobs_running(void)
{
    int n = 0;
    for (const struct api_jobs *j = api_jobs_live; j != NULL; j = j->next_job)
        n++;
    return n;
}

/* Only the paused ones: a job with a call in flight is freed by its
 * callback (MDMD_ECANCELED from store_free or wake_free). */
void api_jobs_free_all(void)
{
    struct api_jobs *j = api_jobs_live, *next;
    for (; j != NULL; j = next) {
        next = j->next_job;
        if (j->retry == NULL || !evtimer_pending(j->retry, NULL))
            continue;
        log_warn("event=job_abandoned job=%s done=%ld reason=shutdown paused=1", j->id, j->done);
        api_jobs_free(j);
    }
}

/* ---- the chunks ---- */

static void api_jobs_step(struct api_jobs *j);

/* After each call: halve the chunk when it held Redis (or waited for the
 * CPU) for more than twice the aim, double it when it took under half. */
static void api_jobs_adapt(struct api_jobs *j)
{
    int64_t ms = (metrics_now_ns() - j->step_ns) / 1000000;
    if (ms > 2 * API_JOBS_STEP_MS && j->chunk > API_JOBS_CHUNK_MIN)
        j->chunk = j->chunk / 2 > API_JOBS_CHUNK_MIN ? j->chunk / 2 : API_JOBS_CHUNK_MIN;
    else if (2 * ms < API_JOBS_STEP_MS && j->chunk < API_JOBS_CHUNK_MAX)
        j->chunk = 2 * j->chunk < API_JOBS_CHUNK_MAX ? 2 * j->chunk : API_JOBS_CHUNK_MAX;
}

static void api_jobs_on_chunk(void *arg, int err, const struct store_enqueue_result *res)
{
    struct api_jobs *j = arg;
    if (api_jobs_failed(j, err))
        return;
    api_jobs_adapt(j);
    j->next += j->sending;
    j->done += (long)j->sending;
    j->queued += res->queued;
    j->unknown += (long)res->nunknown;
    j->app->metrics->commands_queued += (uint64_t)res->queued;
    j->app->metrics->commands_not_queued += res->nunknown;
    wake_devices(j->app->wake, res->push, res->npush);
    api_jobs_step(j);
}

static void api_jobs_on_scan(void *arg, int err, const char *cursor, long scanned, long queued,
                             const struct store_push_target *push, size_t npush)
{
    struct api_jobs *j = arg;
    if (api_jobs_failed(j, err))
        return;
    api_jobs_adapt(j);
    snprintf(j->cursor, sizeof(j->cursor), "%s", cursor);
    j->scans++;
    j->done += scanned;
    j->queued += queued;
    j->app->metrics->commands_queued += (uint64_t)queued;
    wake_devices(j->app->wake, push, npush);
    api_jobs_step(j);
}

static void api_jobs_on_push_room(void *arg, int err)
{
    struct api_jobs *j = arg;
    j->push_waiting = 0;
    if (!api_jobs_failed(j, err))
        api_jobs_step(j);
}

/* 1 if the job waits (wake_when_below) for APNs to answer half of the
 * pushes pending: every chunk adds up to a chunk of them, and a slow or
 * stalled APNs must not make the push queue grow with the fleet. */
static int api_jobs_push_wait(struct api_jobs *j)
{
    uint64_t max = (uint64_t)j->app->cf->job_push_backlog;
    struct wake_stats ws;
    wake_stats(j->app->wake, &ws);
    if (max == 0 || ws.pending < max)
        return 0;
    j->push_waits++;
    if (j->push_waits == 1) /* the first of a job; the others at debug */
        log_info("event=job_push_wait job=%s pending=%llu", j->id, (unsigned long long)ws.pending);
    else
        log_debug("event=job_push_wait job=%s pending=%llu", j->id, (unsigned long long)ws.pending);
    j->push_waiting = 1;
    wake_when_below(j->app->wake, max / 2 + 1, api_jobs_on_push_room, j);
    return 1;
}

/* Sends the next chunk, or ends the job.  Exactly one async call (or a
 * wait for pushes to drain). */
static void api_jobs_step(struct api_jobs *j)
{
    struct store *s = j->app->store;
    if (api_jobs_stopping) {
        api_jobs_end_stopped(j);
        return;
    }
    if (api_jobs_push_wait(j))
        return;
    j->step_ns = metrics_now_ns();
    struct store_job_cmd c = {j->c.uuid, j->c.request_type, j->c.plist, j->c.plist_len,
                              STORE_CMD_TTL_S};
    if (j->c.state != NULL) {
        if (j->scans > 0 && strcmp(j->cursor, "0") == 0) {
            api_jobs_end(j, NULL);
            return;
        }
        store_job_filter_step(s, j->id, &c, j->c.state, j->cursor, j->chunk, j->scans,
                              util_now_ms(), api_jobs_on_scan, j);
        return;
    }
    if (j->next >= j->c.nudids) {
        api_jobs_end(j, NULL);
        return;
    }
    /* next moves only once the chunk's script answered: a resend after a
     * failure is the same chunk, which the script runs at most once. */
    size_t n = j->c.nudids - j->next;
    if (n > (size_t)j->chunk)
        n = (size_t)j->chunk;
    j->sending = n;
    store_job_enqueue(s, j->id, &c, j->next, (const char *const *)j->c.udids + j->next, n,
                      util_now_ms(), api_jobs_on_chunk, j);
}

/* ---- the start ---- */

static void api_jobs_on_created(void *arg, int err)
{
    struct api_jobs *j = arg;
    char loc[64];
    if (err == MDMD_ECONFLICT) {
        log_warn("event=enqueue_conflict uuid=%s job=%s", j->c.uuid, j->id);
        api_json(j->req, 409,
                 json_pack("{s:s, s:s}", "error",
                           "this CommandUUID is "
                           "queued with another command",
                           "command_uuid", j->c.uuid));
        api_jobs_free(j);
        return;
    }
    if (err != MDMD_OK) {
        /* Nothing was queued (the record comes first); the UUID lets the
         * client retry the same request safely. */
        api_json(j->req, 503,
                 json_pack("{s:s, s:s, s:I, s:b}", "error",
                           err == MDMD_ETIMEDOUT ? "redis timeout" : "redis unavailable",
                           "command_uuid", j->c.uuid, "queued", (json_int_t)0, "retry_safe", 1));
        api_jobs_free(j);
        return;
    }
    j->app->metrics->jobs_started++;
    char rt[128];
    log_info("event=job_started job=%s uuid=%s request_type=%s targets=%s", j->id, j->c.uuid,
             log_str(j->c.request_type, rt, sizeof(rt)), j->c.state != NULL ? j->c.state : "list");
    snprintf(loc, sizeof(loc), "/v1/jobs/%s", j->id);
    req_add_header(j->req, "Location", loc);
    api_json(j->req, 202,
             json_pack("{s:s, s:s, s:s}", "job_id", j->id, "command_uuid", j->c.uuid, "state",
                       "running"));
    j->req = NULL;
    api_jobs_lease_begin(j);
    api_jobs_step(j);
}

/* The job record: what it queues, to how many, and its progress counters. */
static void api_jobs_create(struct api_jobs *j, long long total)
{
    char tot[24], now[24];
    snprintf(tot, sizeof(tot), "%lld", total);
    snprintf(now, sizeof(now), "%lld", (long long)j->started_ms);
    struct store_kv kv[] = {
        api_jobs_kv("state", "running"),
        api_jobs_kv("total", tot),
        api_jobs_kv("done", "0"),
        api_jobs_kv("queued", "0"),
        api_jobs_kv("unknown", "0"),
        api_jobs_kv("skipped", "0"),
        api_jobs_kv("command_uuid", j->c.uuid),
        api_jobs_kv("request_type", j->c.request_type),
        api_jobs_kv("filter", j->c.state != NULL ? "all_enrolled" : ""),
        api_jobs_kv("created", now),
        api_jobs_kv("updated", now),
    };
    struct store_job_cmd c = {j->c.uuid, j->c.request_type, j->c.plist, j->c.plist_len,
                              STORE_CMD_TTL_S};
    store_job_start(j->app->store, j->id, &c, kv, ARRAY_LEN(kv), API_JOBS_TTL_S, util_now_ms(),
                    api_jobs_on_created, j);
}

/* Filter jobs: the fleet size is the total to scan. */
static void api_jobs_on_total(void *arg, int err, const struct store_stats *st)
{
    struct api_jobs *j = arg;
    if (err != MDMD_OK) {
        api_jobs_on_created(j, err);
        return;
    }
    api_jobs_create(j, st->devices);
}

static void api_jobs_link(struct api_jobs *j)
{
    j->next_job = api_jobs_live;
    if (api_jobs_live != NULL)
        api_jobs_live->prev = j;
    api_jobs_live = j;
}

void api_jobs_start(struct req *req, struct app *app, struct api_jobs_cmd *c)
{
    struct api_jobs *j = xcalloc(1, sizeof(*j));
    unsigned char raw[STORE_JOB_ID_LEN / 2];
    j->app = app;
    j->req = req;
    j->c = *c;
    memset(c, 0, sizeof(*c));
    util_random(raw, sizeof(raw));
    util_hex(raw, sizeof(raw), j->id);
    snprintf(j->cursor, sizeof(j->cursor), "0");
    j->chunk = 4 * API_JOBS_CHUNK_MIN;
    j->started_ms = util_now_ms();
    j->backoff_ms = API_JOBS_BACKOFF_MIN_MS;
    api_jobs_link(j);
    if (j->c.state != NULL)
        store_stats(app->store, api_jobs_on_total, j);
    else
        api_jobs_create(j, (long long)j->c.nudids);
}

/* ---- with workers: leases, and resuming a dead worker's jobs ----
 *
 * A job runs in the worker that started it (docs/WORKERS.md).  That worker
 * holds a lease on it in mdm:jobs:live (job_live.lua) and renews it every
 * API_JOBS_LEASE_TICK_MS; a list job's UDIDs are kept in Redis too.  If the
 * worker dies, the lease runs out and the first worker to look adopts the
 * job: it reads the record, the command and the UDIDs back, and goes on
 * from the record's position (next or cursor).  A chunk or scan step the
 * record has passed runs nothing (enqueue.lua, enqueue_filter.lua) and every
 * enqueue is once per UUID and device (mdm:cmdto), so even two workers on
 * one job (a lease that ran out under a Redis outage) queue nothing twice.
 * With one process (workers 1) none of this runs. */

#define API_JOBS_LEASE_MS 5000
#define API_JOBS_LEASE_TICK_MS 1000

static struct {
    struct app *app; /* NULL: off */
    struct event *tick;
    int busy;                      /* a renew/adopt chain is in flight */
    struct api_jobs *adopting;     /* being read back, not linked yet */
    char id[STORE_JOB_ID_LEN + 1]; /* the id adopted */
} api_jobs_lease;

static void api_jobs_lease_arm(void)
{
    struct timeval tv = {API_JOBS_LEASE_TICK_MS / 1000, (API_JOBS_LEASE_TICK_MS % 1000) * 1000};
    api_jobs_lease.busy = 0;
    if (api_jobs_lease.tick != NULL)
        evtimer_add(api_jobs_lease.tick, &tv);
}

static void api_jobs_on_live(void *arg, int err, long long num, const char *str, size_t len)
{
    if (err != MDMD_OK && err != MDMD_ECANCELED)
        log_warn("event=job_lease_failed err=%s", mdmd_strerror(err));
}

/* job_live.lua op over ids; cb NULL: logged on failure only. */
static void api_jobs_live_call(const char *op, const char *const *ids, size_t n, store_eval_fn *cb)
{
    char now[24], lease[16], live[32];
    snprintf(now, sizeof(now), "%lld", (long long)util_now_ms());
    snprintf(lease, sizeof(lease), "%d", API_JOBS_LEASE_MS);
    const char **v = xcalloc(n + 4, sizeof(*v));
    v[0] = store_global_key(api_jobs_lease.app->store, live, sizeof(live), "jobs:live");
    v[1] = op;
    v[2] = now;
    v[3] = lease;
    for (size_t i = 0; i < n; i++)
        v[4 + i] = ids[i];
    (void)store_fleet_eval(api_jobs_lease.app->store, STORE_FLEET_JOB_LIVE, 1, (int)(n + 4), v,
                           NULL, cb != NULL ? cb : api_jobs_on_live, NULL);
    free(v);
}

static void api_jobs_udids_call(const struct api_jobs *j, const char *op, store_eval_fn *cb)
{
    char key[64], rest[48], ttl[16];
    int put = strcmp(op, "put") == 0;
    size_t n = put ? j->c.nudids : 0;
    snprintf(rest, sizeof(rest), "jobudids:%s", j->id);
    store_global_key(j->app->store, key, sizeof(key), rest);
    snprintf(ttl, sizeof(ttl), "%d", API_JOBS_TTL_S);
    const char **v = xcalloc(n + 3, sizeof(*v));
    v[0] = key;
    v[1] = op;
    v[2] = ttl;
    for (size_t i = 0; i < n; i++)
        v[3 + i] = j->c.udids[i];
    (void)store_fleet_eval(j->app->store, STORE_FLEET_JOB_UDIDS, 1, (int)(n + 3), v, NULL,
                           cb != NULL ? cb : api_jobs_on_live, NULL);
    free(v);
}

/* The UDIDs go first: one connection, so Redis has them before the lease
 * that makes the job adoptable. */
static void api_jobs_lease_begin(struct api_jobs *j)
{
    if (api_jobs_lease.app == NULL)
        return;
    if (j->c.state == NULL)
        api_jobs_udids_call(j, "put", NULL);
    const char *id = j->id;
    api_jobs_live_call("start", &id, 1, NULL);
}

static void api_jobs_lease_end(struct api_jobs *j)
{
    if (api_jobs_lease.app == NULL)
        return;
    const char *id = j->id;
    api_jobs_live_call("drop", &id, 1, NULL);
    if (j->c.state == NULL)
        api_jobs_udids_call(j, "del", NULL);
}

/* The adopted job runs here from now on. */
static void api_jobs_adopted(struct api_jobs *j)
{
    api_jobs_lease.adopting = NULL;
    api_jobs_link(j);
    char at[32];
    snprintf(at, sizeof(at), "%zu", j->next);
    log_info("event=job_adopted job=%s position=%s done=%ld uuid=%s request_type=%s", j->id,
             j->c.state != NULL ? j->cursor : at, j->done, j->c.uuid, j->c.request_type);
    api_jobs_lease_arm();
    api_jobs_step(j);
}

/* 1 when the chain must stop here: shutdown, or a failed call (the lease
 * runs out again and the next look retries). */
static int api_jobs_adopt_failed(int err)
{
    if (err == MDMD_OK && !api_jobs_stopping)
        return 0;
    struct api_jobs *j = api_jobs_lease.adopting;
    api_jobs_lease.adopting = NULL;
    if (j != NULL)
        api_jobs_free(j);
    if (err != MDMD_ECANCELED) {
        if (err != MDMD_OK)
            log_warn("event=job_adopt_failed job=%s err=%s", api_jobs_lease.id, mdmd_strerror(err));
        api_jobs_lease_arm();
    }
    return 1;
}

static void api_jobs_on_adopt_udids(void *arg, int err, long long num, const char *str, size_t len)
{
    if (api_jobs_adopt_failed(err))
        return;
    struct api_jobs *j = api_jobs_lease.adopting;
    json_t *a = json_loadb(str != NULL ? str : "[]", str != NULL ? len : 2, 0, NULL);
    size_t n = json_is_array(a) ? json_array_size(a) : 0;
    j->c.udids = xcalloc(n + 1, sizeof(*j->c.udids));
    for (size_t i = 0; i < n; i++) {
        const char *u = json_string_value(json_array_get(a, i));
        if (u != NULL)
            j->c.udids[j->c.nudids++] = xstrdup(u);
    }
    json_decref(a);
    if (j->next > j->c.nudids)
        j->next = j->c.nudids;
    api_jobs_adopted(j);
}

static void api_jobs_on_adopt_cmd(void *arg, int err, long long num, const char *str, size_t len)
{
    if (api_jobs_adopt_failed(err))
        return;
    struct api_jobs *j = api_jobs_lease.adopting;
    if (str == NULL || len == 0) { /* the command expired: nothing left to queue */
        api_jobs_lease.adopting = NULL;
        api_jobs_link(j);
        api_jobs_lease_arm();
        api_jobs_end(j, "the command expired before the job was resumed");
        return;
    }
    j->c.plist = xmalloc(len + 1);
    memcpy(j->c.plist, str, len);
    j->c.plist[len] = '\0';
    j->c.plist_len = (uint32_t)len;
    if (j->c.state != NULL)
        api_jobs_adopted(j);
    else
        api_jobs_udids_call(j, "get", api_jobs_on_adopt_udids);
}

static const char *api_jobs_rec(const struct store_record *rec, const char *key)
{
    for (size_t i = 0; i < rec->n; i++)
        if (strcmp(rec->kv[i].key, key) == 0)
            return rec->kv[i].val;
    return NULL;
}

/* The job from its record: what it queues and where it is. */
static struct api_jobs *api_jobs_from_record(const struct store_record *rec)
{
    const char *uuid = api_jobs_rec(rec, "command_uuid"), *rt = api_jobs_rec(rec, "request_type");
    const char *filter = api_jobs_rec(rec, "filter"), *at;
    if (uuid == NULL || strlen(uuid) >= sizeof(((struct api_jobs_cmd *)0)->uuid) || rt == NULL)
        return NULL;
    struct api_jobs *j = xcalloc(1, sizeof(*j));
    j->app = api_jobs_lease.app;
    snprintf(j->id, sizeof(j->id), "%s", api_jobs_lease.id);
    snprintf(j->c.uuid, sizeof(j->c.uuid), "%s", uuid);
    j->c.request_type = xstrdup(rt);
    j->c.state = filter != NULL && *filter != '\0' ? api_jobs_filter_state(filter) : NULL;
    snprintf(j->cursor, sizeof(j->cursor), "%s",
             (at = api_jobs_rec(rec, "cursor")) != NULL ? at : "0");
    j->scans = (at = api_jobs_rec(rec, "steps")) != NULL ? atoi(at) : 0;
    j->next = (at = api_jobs_rec(rec, "next")) != NULL ? strtoull(at, NULL, 10) : 0;
    j->done = (at = api_jobs_rec(rec, "done")) != NULL ? atol(at) : 0;
    j->queued = (at = api_jobs_rec(rec, "queued")) != NULL ? atol(at) : 0;
    j->unknown = (at = api_jobs_rec(rec, "unknown")) != NULL ? atol(at) : 0;
    j->chunk = 4 * API_JOBS_CHUNK_MIN;
    j->started_ms = util_now_ms();
    j->backoff_ms = API_JOBS_BACKOFF_MIN_MS;
    return j;
}

static void api_jobs_on_adopt_rec(void *arg, int err, const struct store_record *rec)
{
    if (api_jobs_adopt_failed(err))
        return;
    const char *state = rec != NULL ? api_jobs_rec(rec, "state") : NULL;
    struct api_jobs *j = NULL;
    if (state == NULL || strcmp(state, "running") != 0 || (j = api_jobs_from_record(rec)) == NULL) {
        const char *id = api_jobs_lease.id; /* ended, expired or unreadable: not a job to run */
        api_jobs_live_call("drop", &id, 1, NULL);
        api_jobs_lease_arm();
        return;
    }
    api_jobs_lease.adopting = j;
    char key[64];
    snprintf(key, sizeof(key), "mdm:cmd:%s", j->c.uuid);
    const char *v[] = {key};
    (void)store_fleet_eval(j->app->store, STORE_FLEET_JOB_CMD, 1, 1, v, NULL, api_jobs_on_adopt_cmd,
                           NULL);
}

static void api_jobs_on_adopt(void *arg, int err, long long num, const char *str, size_t len)
{
    if (api_jobs_adopt_failed(err))
        return;
    if (str == NULL || len != STORE_JOB_ID_LEN || strspn(str, "0123456789abcdef") < len) {
        api_jobs_lease_arm(); /* none whose worker died */
        return;
    }
    memcpy(api_jobs_lease.id, str, len);
    api_jobs_lease.id[len] = '\0';
    log_info("event=job_lease_expired job=%s reason=\"its worker stopped renewing it\"",
             api_jobs_lease.id);
    store_job_get(api_jobs_lease.app->store, api_jobs_lease.id, api_jobs_on_adopt_rec, NULL);
}

static void api_jobs_on_renewed(void *arg, int err, long long num, const char *str, size_t len)
{
    if (api_jobs_adopt_failed(err))
        return;
    api_jobs_live_call("adopt", NULL, 0, api_jobs_on_adopt);
}

/* Renews this worker's leases, then looks for a job whose lease ran out. */
static void api_jobs_lease_tick(evutil_socket_t fd, short what, void *arg)
{
    size_t n = 0, i = 0;
    if (api_jobs_stopping || api_jobs_lease.busy)
        return;
    api_jobs_lease.busy = 1;
    for (const struct api_jobs *j = api_jobs_live; j != NULL; j = j->next_job)
        n++;
    const char **ids = xcalloc(n + 1, sizeof(*ids));
    for (const struct api_jobs *j = api_jobs_live; j != NULL; j = j->next_job)
        if (!j->ending && j->req == NULL)
            ids[i++] = j->id;
    api_jobs_live_call("renew", ids, i, api_jobs_on_renewed);
    free(ids);
}

void api_jobs_lease_start(struct app *app)
{
    if (super_worker() == 0)
        return;
    api_jobs_lease.app = app;
    api_jobs_lease.tick = evtimer_new(app->base, api_jobs_lease_tick, NULL);
    api_jobs_lease_arm();
}

void api_jobs_lease_stop(void)
{
    if (api_jobs_lease.tick != NULL)
        event_free(api_jobs_lease.tick);
    api_jobs_lease.tick = NULL; /* a job being adopted is freed by its call's ECANCELED */
}

/* ---- GET /v1/jobs/{id} ---- */

struct api_jobs_get {
    struct req *req;
    struct app *app;
};

static int api_jobs_is_int_field(const char *k)
{
    static const char *const ints[] = {"total",   "done",    "queued",  "unknown",
                                       "skipped", "created", "updated", "finished"};
    for (size_t i = 0; i < ARRAY_LEN(ints); i++)
        if (strcmp(k, ints[i]) == 0)
            return 1;
    return 0;
}

/* A running job that stopped moving for longer than a paused one may died
 * with its mdmd (api.h). */
static void api_jobs_check_stale(json_t *o, const struct conf *cf)
{
    json_int_t updated = json_integer_value(json_object_get(o, "updated"));
    const char *state = json_string_value(json_object_get(o, "state"));
    int64_t stale_ms = ((int64_t)cf->job_retry_max_s + API_JOBS_STALE_S) * 1000;
    if (state != NULL && strcmp(state, "running") == 0 && util_now_ms() - updated > stale_ms) {
        json_object_set_new(o, "state", json_string("failed"));
        json_object_set_new(o, "error", json_string("no progress: mdmd stopped while it ran"));
    }
}

static void api_jobs_on_get(void *arg, int err, const struct store_record *rec)
{
    struct api_jobs_get *g = arg;
    struct req *req = g->req;
    const struct conf *cf = g->app->cf;
    free(g);
    if (err != MDMD_OK) {
        api_fail(req, err);
        return;
    }
    if (rec == NULL) {
        req_fail(req, 404, "unknown job (records expire a week after their last update)");
        return;
    }
    json_t *o = json_object();
    json_object_set_new(o, "job_id", json_string(req_path(req) + strlen("/v1/jobs/")));
    for (size_t i = 0; i < rec->n; i++) {
        const struct store_kv *kv = &rec->kv[i];
        json_object_set_new(o, kv->key,
                            api_jobs_is_int_field(kv->key)
                                ? json_integer(strtoll(kv->val, NULL, 10))
                                : json_stringn(kv->val, kv->len));
    }
    /* Where it is: the list index or the scan cursor it resumes from. */
    const char *at = json_string_value(json_object_get(o, "next"));
    if (at == NULL)
        at = json_string_value(json_object_get(o, "cursor"));
    if (at != NULL)
        json_object_set_new(o, "position", json_string(at));
    json_object_del(o, "cursor");
    json_object_del(o, "next");
    json_object_del(o, "steps");
    api_jobs_check_stale(o, cf);
    api_json(req, 200, o);
}

void api_jobs_get(struct req *req, void *app)
{
    struct app *a = app;
    if (!api_authorized(req, app))
        return;
    const char *id = req_path(req) + strlen("/v1/jobs/");
    if (strlen(id) != STORE_JOB_ID_LEN || strspn(id, "0123456789abcdef") != STORE_JOB_ID_LEN) {
        req_fail(req, 404, "unknown job");
        return;
    }
    struct api_jobs_get *g = xcalloc(1, sizeof(*g));
    g->req = req;
    g->app = a;
    store_job_get(a->store, id, api_jobs_on_get, g);
}
