/* ddm_notify.c: the DeclarativeManagement command after a change (ddm.h).
 * A walk over the fleet in chunks, paced like bulk jobs (api_jobs.c): one
 * Lua call at a time, sized to keep each near DDM_NOTIFY_STEP_MS, pausing
 * while APNs has job_push_backlog pushes to answer.  The script decides per
 * device whether its sync token moved, so a walk queues nothing for devices
 * a change did not touch. */
#include "ddm.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../core/app.h"
#include "../../core/conf.h"
#include "../../core/log.h"
#include "../../core/metrics.h"
#include "../../core/util.h"
#include "../../store/store_ddm.h"
#include "../../store/store_jobs.h"
#include "../../store/store_mdm.h"
#include "../wake/wake.h"

#define DDM_NOTIFY_CMD_TTL_S (30 * 24 * 3600) /* as any command */
#define DDM_NOTIFY_JOB_TTL_S (7 * 24 * 3600)  /* as bulk job records */

struct ddm_notify {
    struct app *app;
    char id[STORE_JOB_ID_LEN + 1];
    char next_id[STORE_JOB_ID_LEN + 1]; /* the walk after this one, once asked for */
    char cursor[32];
    char why[32];
    int scans, chunk;
    int64_t step_ns, started_ms;
    long done, queued, push_waits;
};

/* The walk in progress: one per process (the loop is single-threaded), so
 * changes that come during a walk fold into the one walk after it. */
static struct ddm_notify *ddm_notify_walk;

static void ddm_notify_new_id(char out[STORE_JOB_ID_LEN + 1])
{
    unsigned char raw[STORE_JOB_ID_LEN / 2];
    util_random(raw, sizeof(raw));
    util_hex(raw, sizeof(raw), out);
}

static void ddm_notify_iso(char out[32])
{
    time_t t = (time_t)(util_now_ms() / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Wakes the devices of a reply's last element ([[udid, token, magic, topic]...]). */
static void ddm_notify_wake(struct app *app, json_t *targets)
{
    size_t n = json_array_size(targets);
    struct store_push_target *t = xcalloc(n + 1, sizeof(*t));
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(targets, i);
        t[i] = (struct store_push_target){
            json_string_value(json_array_get(e, 0)), json_string_value(json_array_get(e, 1)),
            json_string_value(json_array_get(e, 2)), json_string_value(json_array_get(e, 3))};
    }
    app->metrics->commands_queued += n;
    wake_devices(app->wake, t, n);
    free(t);
}

static struct store_kv ddm_notify_kv(const char *k, const char *v)
{
    return (struct store_kv){k, v, strlen(v)};
}

static void ddm_notify_start(struct app *app, const char *id, const char *why);

static void ddm_notify_on_end(void *arg, int err)
{
    struct ddm_notify *w = arg;
    if (err != MDMD_OK)
        log_err("event=job_record_failed job=%s err=%s", w->id, mdmd_strerror(err));
    if (ddm_notify_walk == w)
        ddm_notify_walk = NULL;
    if (w->next_id[0] != '\0' && err != MDMD_ECANCELED)
        ddm_notify_start(w->app, w->next_id, "changed during a walk");
    free(w);
}

static void ddm_notify_end(struct ddm_notify *w, const char *fail)
{
    char now[24];
    snprintf(now, sizeof(now), "%lld", (long long)util_now_ms());
    struct store_kv kv[] = {ddm_notify_kv("state", fail == NULL ? "done" : "failed"),
                            ddm_notify_kv("updated", now), ddm_notify_kv("finished", now),
                            ddm_notify_kv("error", fail == NULL ? "" : fail)};
    log_info("event=ddm_notify_%s job=%s why=\"%s\" scanned=%ld queued=%ld push_waits=%ld ms=%lld",
             fail == NULL ? "done" : "failed", w->id, w->why, w->done, w->queued, w->push_waits,
             (long long)(util_now_ms() - w->started_ms));
    store_job_set(w->app->store, w->id, kv, ARRAY_LEN(kv), DDM_NOTIFY_JOB_TTL_S, ddm_notify_on_end,
                  w);
}

static int ddm_notify_failed(struct ddm_notify *w, int err)
{
    if (err == MDMD_OK)
        return 0;
    if (err == MDMD_ECANCELED) { /* shutdown: the record goes stale (api.h) */
        if (ddm_notify_walk == w)
            ddm_notify_walk = NULL;
        free(w);
    } else {
        ddm_notify_end(w, err == MDMD_ETIMEDOUT ? "redis timeout" : "redis unavailable");
    }
    return 1;
}

static void ddm_notify_step(struct ddm_notify *w);

static void ddm_notify_adapt(struct ddm_notify *w)
{
    int64_t ms = (metrics_now_ns() - w->step_ns) / 1000000;
    if (ms > 2 * DDM_NOTIFY_STEP_MS && w->chunk > DDM_NOTIFY_CHUNK_MIN)
        w->chunk = w->chunk / 2 > DDM_NOTIFY_CHUNK_MIN ? w->chunk / 2 : DDM_NOTIFY_CHUNK_MIN;
    else if (2 * ms < DDM_NOTIFY_STEP_MS && w->chunk < DDM_NOTIFY_CHUNK_MAX)
        w->chunk = 2 * w->chunk < DDM_NOTIFY_CHUNK_MAX ? 2 * w->chunk : DDM_NOTIFY_CHUNK_MAX;
}

static void ddm_notify_on_chunk(void *arg, int err, json_t *r)
{
    struct ddm_notify *w = arg;
    if (ddm_notify_failed(w, err))
        return;
    ddm_notify_adapt(w);
    snprintf(w->cursor, sizeof(w->cursor), "%s",
             json_string_value(json_array_get(r, 0)) ? json_string_value(json_array_get(r, 0))
                                                     : "0");
    w->scans++;
    w->done += (long)json_integer_value(json_array_get(r, 1));
    w->queued += (long)json_integer_value(json_array_get(r, 2));
    ddm_notify_wake(w->app, json_array_get(r, 3));
    ddm_notify_step(w);
}

static void ddm_notify_on_push_room(void *arg, int err)
{
    struct ddm_notify *w = arg;
    if (!ddm_notify_failed(w, err))
        ddm_notify_step(w);
}

static void ddm_notify_step(struct ddm_notify *w)
{
    char key[48], now[24], iso[32], count[16], ttl[16], prefix[37];
    uint64_t max = (uint64_t)w->app->cf->job_push_backlog;
    struct wake_stats ws;
    wake_stats(w->app->wake, &ws);
    if (max != 0 && ws.pending >= max) {
        w->push_waits++;
        wake_when_below(w->app->wake, max / 2 + 1, ddm_notify_on_push_room, w);
        return;
    }
    if (w->scans > 0 && strcmp(w->cursor, "0") == 0) {
        ddm_notify_end(w, NULL);
        return;
    }
    w->step_ns = metrics_now_ns();
    store_job_key(w->app->store, key, sizeof(key), w->id);
    snprintf(now, sizeof(now), "%lld", (long long)util_now_ms());
    snprintf(count, sizeof(count), "%d", w->chunk);
    snprintf(ttl, sizeof(ttl), "%d", DDM_NOTIFY_CMD_TTL_S);
    ddm_notify_iso(iso);
    util_uuid(prefix);
    prefix[24] = '\0';
    const char *argv[] = {key, "scan", w->cursor, count, now, iso, ttl, prefix};
    store_ddm(w->app->store, STORE_DDM_NOTIFY, ARRAY_LEN(argv), argv, NULL, ddm_notify_on_chunk, w);
}

static void ddm_notify_on_created(void *arg, int err)
{
    struct ddm_notify *w = arg;
    if (ddm_notify_failed(w, err))
        return;
    log_info("event=ddm_notify_started job=%s why=\"%s\"", w->id, w->why);
    ddm_notify_step(w);
}

static void ddm_notify_on_total(void *arg, int err, const struct store_stats *st)
{
    struct ddm_notify *w = arg;
    char tot[24], now[24];
    if (ddm_notify_failed(w, err))
        return;
    snprintf(tot, sizeof(tot), "%lld", st->devices);
    snprintf(now, sizeof(now), "%lld", (long long)w->started_ms);
    struct store_kv kv[] = {
        ddm_notify_kv("state", "running"),
        ddm_notify_kv("total", tot),
        ddm_notify_kv("done", "0"),
        ddm_notify_kv("queued", "0"),
        ddm_notify_kv("unknown", "0"),
        ddm_notify_kv("skipped", "0"),
        ddm_notify_kv("command_uuid", ""),
        ddm_notify_kv("request_type", "DeclarativeManagement"),
        ddm_notify_kv("filter", "ddm_sync_token_moved"),
        ddm_notify_kv("reason", w->why),
        ddm_notify_kv("created", now),
        ddm_notify_kv("updated", now),
    };
    store_job_set(w->app->store, w->id, kv, ARRAY_LEN(kv), DDM_NOTIFY_JOB_TTL_S,
                  ddm_notify_on_created, w);
}

static void ddm_notify_start(struct app *app, const char *id, const char *why)
{
    struct ddm_notify *w = xcalloc(1, sizeof(*w));
    w->app = app;
    snprintf(w->id, sizeof(w->id), "%s", id);
    snprintf(w->why, sizeof(w->why), "%s", why);
    snprintf(w->cursor, sizeof(w->cursor), "0");
    w->chunk = 4 * DDM_NOTIFY_CHUNK_MIN;
    w->started_ms = util_now_ms();
    ddm_notify_walk = w;
    store_stats(app->store, ddm_notify_on_total, w);
}

void ddm_notify_changed(struct app *app, const char *why, char job_id[33])
{
    char id[STORE_JOB_ID_LEN + 1];
    if (ddm_notify_walk != NULL) {
        struct ddm_notify *w = ddm_notify_walk;
        if (w->next_id[0] == '\0')
            ddm_notify_new_id(w->next_id);
        if (job_id != NULL)
            snprintf(job_id, 33, "%s", w->next_id);
        return;
    }
    ddm_notify_new_id(id);
    if (job_id != NULL)
        snprintf(job_id, 33, "%s", id);
    ddm_notify_start(app, id, why);
}

/* ---- at enrollment ---- */

static void ddm_notify_on_enrolled(void *arg, int err, json_t *r)
{
    struct app *app = arg;
    if (err != MDMD_OK) {
        log_err("event=ddm_enroll_notify_failed err=%s", mdmd_strerror(err));
        return;
    }
    if (json_integer_value(json_array_get(r, 2)) > 0)
        ddm_notify_wake(app, json_array_get(r, 3));
}

void ddm_notify_enrolled(struct app *app, const char *udid)
{
    char now[24], iso[32], ttl[16], prefix[37];
    snprintf(now, sizeof(now), "%lld", (long long)util_now_ms());
    snprintf(ttl, sizeof(ttl), "%d", DDM_NOTIFY_CMD_TTL_S);
    ddm_notify_iso(iso);
    util_uuid(prefix);
    prefix[24] = '\0';
    const char *argv[] = {"", "enroll", "0", "1", now, iso, ttl, prefix, udid};
    store_ddm(app->store, STORE_DDM_NOTIFY, ARRAY_LEN(argv), argv, NULL, ddm_notify_on_enrolled,
              app);
}
