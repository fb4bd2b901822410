#include "api.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/app.h"
#include "../../core/conf.h"
#include "../../core/http.h"
#include "../../core/log.h"
#include "../../core/metrics.h"
#include "../../core/util.h"
#include "../../store/store_jobs.h"
#include "../wake/wake.h"

#define API_JOBS_CMD_TTL_S (30 * 24 * 3600) /* as for any command (api_commands.c) */

struct api_jobs {
    struct app *app;
    struct req *req; /* until the 202 is sent */
    char id[STORE_JOB_ID_LEN + 1];
    struct api_jobs_cmd c;
    size_t next;     /* list jobs: first UDID not yet sent */
    char cursor[32]; /* filter jobs: ZSCAN cursor */
    int scans;       /* filter jobs: steps done */
    int chunk;       /* devices in the next call (adapts, api.h) */
    int64_t step_ns; /* when the call in flight was sent */
    long done, queued, unknown;
    long push_waits; /* times it paused for APNs to catch up */
    int64_t started_ms;
};

const char *api_jobs_filter_state(const char *filter)
{
    if (filter != NULL && strcmp(filter, "all_enrolled") == 0)
        return "enrolled";
    return NULL;
}

static void api_jobs_free(struct api_jobs *j)
{
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

static void api_jobs_on_end(void *arg, int err)
{
    struct api_jobs *j = arg;
    if (err != MDMD_OK)
        log_err("event=job_record_failed job=%s err=%s", j->id, mdmd_strerror(err));
    api_jobs_free(j);
}

/* Records the final state; why NULL: done. */
static void api_jobs_end(struct api_jobs *j, const char *why)
{
    char now[24];
    snprintf(now, sizeof(now), "%lld", (long long)util_now_ms());
    struct store_kv kv[] = {api_jobs_kv("state", why == NULL ? "done" : "failed"),
                            api_jobs_kv("updated", now), api_jobs_kv("finished", now),
                            api_jobs_kv("error", why == NULL ? "" : why)};
    if (why == NULL)
        j->app->metrics->jobs_done++;
    else
        j->app->metrics->jobs_failed++;
    log_info("event=job_%s job=%s uuid=%s request_type=%s done=%ld queued=%ld unknown=%ld "
             "push_waits=%ld ms=%lld%s%s",
             why == NULL ? "done" : "failed", j->id, j->c.uuid, j->c.request_type, j->done,
             j->queued, j->unknown, j->push_waits, (long long)(util_now_ms() - j->started_ms),
             why ? " reason=" : "", why ? why : "");
    store_job_set(j->app->store, j->id, kv, ARRAY_LEN(kv), API_JOBS_TTL_S, api_jobs_on_end, j);
}

/* A failed chunk.  MDMD_ECANCELED: the store is going away (shutdown), so
 * nothing can be recorded; the record goes stale (api.h). */
static int api_jobs_failed(struct api_jobs *j, int err)
{
    if (err == MDMD_OK)
        return 0;
    if (err == MDMD_ECANCELED) {
        log_warn("event=job_abandoned job=%s done=%ld reason=shutdown", j->id, j->done);
        api_jobs_free(j);
    } else {
        api_jobs_end(j, err == MDMD_ETIMEDOUT ? "redis timeout" : "redis unavailable");
    }
    return 1;
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

static void api_jobs_on_chunk(void *arg, int err, long queued, const char *const *unknown,
                              size_t nunknown, const struct store_push_target *push, size_t npush)
{
    struct api_jobs *j = arg;
    if (api_jobs_failed(j, err))
        return;
    api_jobs_adapt(j);
    j->queued += queued;
    j->unknown += (long)nunknown;
    j->app->metrics->commands_queued += (uint64_t)queued;
    j->app->metrics->commands_not_queued += nunknown;
    wake_devices(j->app->wake, push, npush);
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
    log_debug("event=job_push_wait job=%s pending=%llu", j->id, (unsigned long long)ws.pending);
    wake_when_below(j->app->wake, max / 2 + 1, api_jobs_on_push_room, j);
    return 1;
}

/* Sends the next chunk, or ends the job.  Exactly one async call (or a
 * wait for pushes to drain). */
static void api_jobs_step(struct api_jobs *j)
{
    struct store *s = j->app->store;
    if (api_jobs_push_wait(j))
        return;
    j->step_ns = metrics_now_ns();
    if (j->c.state != NULL) {
        if (j->scans > 0 && strcmp(j->cursor, "0") == 0) {
            api_jobs_end(j, NULL);
            return;
        }
        struct store_job_cmd c = {j->c.uuid, j->c.request_type, j->c.plist, j->c.plist_len,
                                  API_JOBS_CMD_TTL_S};
        store_job_filter_step(s, j->id, &c, j->c.state, j->cursor, j->chunk, util_now_ms(),
                              api_jobs_on_scan, j);
        return;
    }
    if (j->next >= j->c.nudids) {
        api_jobs_end(j, NULL);
        return;
    }
    size_t n = j->c.nudids - j->next;
    if (n > (size_t)j->chunk)
        n = (size_t)j->chunk;
    const char *const *batch = (const char *const *)j->c.udids + j->next;
    j->next += n;
    j->done += (long)n;
    store_job_enqueue(s, j->id, j->c.uuid, j->c.request_type, j->c.plist, j->c.plist_len, batch, n,
                      util_now_ms(), API_JOBS_CMD_TTL_S, api_jobs_on_chunk, j);
}

/* ---- the start ---- */

static void api_jobs_on_created(void *arg, int err)
{
    struct api_jobs *j = arg;
    char loc[64];
    if (err != MDMD_OK) {
        api_fail(j->req, err);
        api_jobs_free(j);
        return;
    }
    j->app->metrics->jobs_started++;
    log_info("event=job_started job=%s uuid=%s request_type=%s targets=%s", j->id, j->c.uuid,
             j->c.request_type, j->c.state != NULL ? j->c.state : "list");
    snprintf(loc, sizeof(loc), "/v1/jobs/%s", j->id);
    req_add_header(j->req, "Location", loc);
    api_json(j->req, 202,
             json_pack("{s:s, s:s, s:s}", "job_id", j->id, "command_uuid", j->c.uuid, "state",
                       "running"));
    j->req = NULL;
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
    store_job_set(j->app->store, j->id, kv, ARRAY_LEN(kv), API_JOBS_TTL_S, api_jobs_on_created, j);
}

/* Filter jobs: the fleet size is the total to scan. */
static void api_jobs_on_total(void *arg, int err, const struct store_stats *st)
{
    struct api_jobs *j = arg;
    if (err != MDMD_OK) {
        api_fail(j->req, err);
        api_jobs_free(j);
        return;
    }
    api_jobs_create(j, st->devices);
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
    if (j->c.state != NULL)
        store_stats(app->store, api_jobs_on_total, j);
    else
        api_jobs_create(j, (long long)j->c.nudids);
}

/* ---- GET /v1/jobs/{id} ---- */

static int api_jobs_is_int_field(const char *k)
{
    static const char *const ints[] = {"total",   "done",    "queued",  "unknown",
                                       "skipped", "created", "updated", "finished"};
    for (size_t i = 0; i < ARRAY_LEN(ints); i++)
        if (strcmp(k, ints[i]) == 0)
            return 1;
    return 0;
}

/* A running job that stopped moving died with its mdmd (api.h). */
static void api_jobs_check_stale(json_t *o)
{
    json_int_t updated = json_integer_value(json_object_get(o, "updated"));
    const char *state = json_string_value(json_object_get(o, "state"));
    if (state != NULL && strcmp(state, "running") == 0 &&
        util_now_ms() - updated > (int64_t)API_JOBS_STALE_S * 1000) {
        json_object_set_new(o, "state", json_string("failed"));
        json_object_set_new(o, "error",
                            json_string("no progress for a minute: mdmd stopped "
                                        "while it ran"));
    }
}

static void api_jobs_on_get(void *arg, int err, const struct store_record *rec)
{
    struct req *req = arg;
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
    json_object_del(o, "cursor"); /* internal */
    api_jobs_check_stale(o);
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
    store_job_get(a->store, id, api_jobs_on_get, req);
}
