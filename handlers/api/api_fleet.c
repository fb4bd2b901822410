/* api_fleet.c: fleet operations (issue 19): webhook status, dead letters and
 * replay; queue surgery (a device's pending commands, delete one, cancel one
 * everywhere as a job); a device's push ledger; fleet numbers and stale
 * devices.  The store answers JSON (store_fleet.h), passed on or reshaped. */
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
#include "../../store/store_fleet.h"
#include "../../store/store_jobs.h"
#include "../apple/apple.h"
#include "../feed/feed.h"
#include "../guard/guard.h"
#include "../hook/hook.h"
#include "../wake/wake.h"

#define API_FLEET_CANCEL_STEP 500 /* devices scanned per Lua call of a cancel job */
#define API_FLEET_PENDING_MAX 1000

struct api_fleet_ctx { /* a request and the app, for a store callback */
    struct req *req;
    struct app *a;
};

/* ---- shared: a store answer that is JSON, answered as is ---- */

static void api_fleet_on_json(void *arg, int err, long long num, const char *str, size_t len)
{
    struct req *req = arg;
    if (err != MDMD_OK)
        api_fail(req, err);
    else if (str == NULL || len == 0)
        req_fail(req, 404, "unknown device");
    else
        req_respond(req, 200, "application/json", str, len);
}

static int api_fleet_uuid_ok(const char *u)
{
    return strlen(u) >= 1 && strlen(u) <= 64 && strspn(u, "0123456789abcdefABCDEF-") == strlen(u);
}

/* ---- /v1/devices/{udid}/commands/... and /pushes ---- */

static void api_fleet_on_deleted(void *arg, int err, long num)
{
    struct req *req = arg;
    if (err != MDMD_OK)
        api_fail(req, err);
    else if (num < 0)
        req_fail(req, 404, "unknown device");
    else if (num == 0)
        req_fail(req, 404, "command not queued for this device");
    else
        req_respond(req, 204, NULL, NULL, 0);
}

int api_fleet_device(struct req *req, struct app *a, const char *udid, const char *tail)
{
    int m = req_method(req);
    if (strcmp(tail, "/commands/pending") == 0 || strcmp(tail, "/pushes") == 0) {
        if (m != HTTP_M_GET) {
            req_fail(req, 405, "method not allowed");
            return 1;
        }
        const char *v[] = {udid, "50"};
        if (tail[1] == 'c')
            store_queue_pending(a->store, udid, API_FLEET_PENDING_MAX, api_fleet_on_json, req);
        else
            store_fleet_eval(a->store, STORE_FLEET_PUSH_LEDGER, 0, 2, v, NULL, api_fleet_on_json,
                             req);
        return 1;
    }
    if (strncmp(tail, "/commands/", 10) != 0)
        return 0;
    const char *uuid = tail + 10;
    if (m != HTTP_M_DELETE) {
        req_fail(req, 405, "method not allowed");
    } else if (!api_fleet_uuid_ok(uuid)) {
        log_info("event=queue_delete_refused reason=bad_uuid udid=%s", udid);
        req_fail(req, 400, "malformed command UUID");
    } else {
        log_info("event=queue_delete udid=%s uuid=%s", udid, uuid);
        store_queue_delete(a->store, udid, uuid, util_now_ms(), api_fleet_on_deleted, req);
    }
    return 1;
}

/* ---- DELETE /v1/commands/{uuid}: cancel everywhere, as a job ---- */

struct api_fleet_cancel { /* owns itself until the scan ends or fails */
    struct app *app;
    char id[STORE_JOB_ID_LEN + 1];
    char uuid[65];
    char cursor[32];
    struct req *req; /* until the job record exists */
};

static void api_fleet_cancel_step(struct api_fleet_cancel *c);

static void api_fleet_cancel_on_step(void *arg, int err, long long num, const char *str, size_t len)
{
    struct api_fleet_cancel *c = arg;
    json_t *j = err == MDMD_OK && str != NULL ? json_loadb(str, len, 0, NULL) : NULL;
    const char *cur = json_string_value(json_object_get(j, "cursor"));
    if (cur == NULL || strlen(cur) >= sizeof(c->cursor)) {
        log_err("event=cancel_job_failed job=%s uuid=%s err=%d", c->id, c->uuid, err);
        const struct store_kv kv[] = {{"state", "failed", 6}};
        store_job_set(c->app->store, c->id, kv, 1, API_JOBS_TTL_S, NULL, NULL);
        json_decref(j);
        free(c);
        return;
    }
    snprintf(c->cursor, sizeof(c->cursor), "%s", cur);
    json_decref(j);
    if (strcmp(c->cursor, "0") == 0) {
        log_info("event=cancel_job_done job=%s uuid=%s", c->id, c->uuid);
        free(c);
        return;
    }
    api_fleet_cancel_step(c);
}

static void api_fleet_cancel_step(struct api_fleet_cancel *c)
{
    store_queue_cancel_step(c->app->store, c->id, c->uuid, c->cursor, API_FLEET_CANCEL_STEP,
                            util_now_ms(), api_fleet_cancel_on_step, c);
}

static void api_fleet_cancel_on_created(void *arg, int err)
{
    struct api_fleet_cancel *c = arg;
    if (err != MDMD_OK) {
        api_fail(c->req, err);
        free(c);
        return;
    }
    api_json(
        c->req, 202,
        json_pack("{s:s, s:s, s:s}", "job_id", c->id, "command_uuid", c->uuid, "state", "running"));
    c->req = NULL;
    log_info("event=cancel_job_started job=%s uuid=%s", c->id, c->uuid);
    api_fleet_cancel_step(c);
}

void api_fleet_command(struct req *req, void *app)
{
    struct app *a = app;
    if (!api_authorized(req, app))
        return;
    const char *uuid = req_path(req) + strlen("/v1/commands/");
    if (!api_fleet_uuid_ok(uuid)) {
        log_info("event=cancel_refused reason=bad_uuid");
        req_fail(req, 400, "malformed command UUID");
        return;
    }
    struct api_fleet_cancel *c = xcalloc(1, sizeof(*c));
    unsigned char raw[STORE_JOB_ID_LEN / 2];
    util_random(raw, sizeof(raw));
    util_hex(raw, sizeof(raw), c->id);
    snprintf(c->uuid, sizeof(c->uuid), "%s", uuid);
    snprintf(c->cursor, sizeof(c->cursor), "0");
    c->app = a;
    c->req = req;
    char now[24];
    snprintf(now, sizeof(now), "%lld", (long long)util_now_ms());
    const struct store_kv kv[] = {{"kind", "cancel", 6},
                                  {"state", "running", 7},
                                  {"command_uuid", uuid, strlen(uuid)},
                                  {"created", now, strlen(now)},
                                  {"updated", now, strlen(now)},
                                  {"done", "0", 1},
                                  {"canceled", "0", 1}};
    store_job_set(a->store, c->id, kv, 7, API_JOBS_TTL_S, api_fleet_cancel_on_created, c);
}

/* ---- /v1/webhooks ---- */

static void api_fleet_on_hook_status(void *arg, int err, long long num, const char *str, size_t len)
{
    struct api_fleet_ctx *x = arg;
    struct req *req = x->req;
    struct app *a = x->a;
    free(x);
    json_t *j = err == MDMD_OK && str != NULL ? json_loadb(str, len, 0, NULL) : NULL;
    if (j == NULL) {
        api_fail(req, err != MDMD_OK ? err : MDMD_EPROTO);
        return;
    }
    const char *const *groups = NULL, *const *urls = NULL;
    int n = hook_groups(a->hook, &groups, &urls);
    json_t *arr = json_array(), *g = json_object_get(j, "groups");
    for (int i = 0; i < n; i++) {
        json_t *o = json_deep_copy(json_object_get(g, groups[i]));
        if (o == NULL)
            o = json_object();
        json_object_set_new(o, "url", json_string(urls[i]));
        json_object_set_new(o, "group", json_string(groups[i]));
        json_array_append_new(arr, o);
    }
    struct hook_stats st;
    hook_stats(a->hook, &st);
    json_t *out = json_pack("{s:o, s:O, s:O, s:I, s:I, s:I, s:I, s:I}", "targets", arr, "dead",
                            json_object_get(j, "dead"), "trimmed", json_object_get(j, "trimmed"),
                            "delivered", (json_int_t)st.delivered, "attempts_failed",
                            (json_int_t)st.attempts_failed, "retries", (json_int_t)st.retries,
                            "dead_lettered", (json_int_t)st.dead, "lag_ms", (json_int_t)st.lag_ms);
    json_decref(j);
    api_json(req, 200, out);
}

static void api_fleet_on_replayed(void *arg, int err, long long num, const char *str, size_t len)
{
    struct req *req = arg;
    if (err != MDMD_OK) {
        api_fail(req, err);
        return;
    }
    log_info("event=webhook_replay entries=%lld", num);
    api_json(req, 200, json_pack("{s:I}", "replayed", (json_int_t)num));
}

/* POST /v1/webhooks/dead-letter/replay {"ids": [...]} (no ids: all). */
static void api_fleet_replay(struct req *req, struct app *a)
{
    size_t len;
    const char *body = (const char *)req_body(req, &len);
    char why[128];
    json_t *j = len > 0 ? apple_plist_json_load(body, len, why, sizeof(why)) : json_object();
    json_t *ids = json_object_get(j, "ids");
    if (!json_is_object(j) ||
        (ids != NULL && (!json_is_array(ids) || json_array_size(ids) > 10000))) {
        log_info("event=webhook_replay_refused reason=bad_body");
        req_fail(req, 400, "body must be {} or {\"ids\": [dead-letter ids]}");
        json_decref(j);
        return;
    }
    size_t n = json_array_size(ids);
    const char **v = xcalloc(n + 2, sizeof(char *));
    v[0] = "mdm:hook:dead";
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(ids, i));
        if (s == NULL || *s == '\0' || strlen(s) > 40 || strspn(s, "0123456789-") != strlen(s)) {
            req_fail(req, 400, "each id must be a dead-letter stream id");
            free(v);
            json_decref(j);
            return;
        }
        v[1 + i] = s;
    }
    store_fleet_eval(a->store, STORE_FLEET_HOOK_REPLAY, 1, (int)n + 1, v, NULL,
                     api_fleet_on_replayed, req);
    free(v);
    json_decref(j);
}

void api_fleet_webhooks(struct req *req, void *app)
{
    struct app *a = app;
    if (!api_authorized(req, app))
        return;
    const char *p = req_path(req);
    int m = req_method(req);
    if (strcmp(p, "/v1/webhooks") == 0 && m == HTTP_M_GET) {
        const char *const *groups = NULL, *const *urls = NULL;
        int n = hook_groups(a->hook, &groups, &urls);
        const char **v = xcalloc((size_t)n + 2, sizeof(char *));
        v[0] = "mdm:events";
        v[1] = "mdm:hook:dead";
        for (int i = 0; i < n; i++)
            v[2 + i] = groups[i];
        struct api_fleet_ctx *x = xcalloc(1, sizeof(*x));
        x->req = req;
        x->a = a;
        store_fleet_eval(a->store, STORE_FLEET_HOOK_STATUS, 2, n + 2, v, NULL,
                         api_fleet_on_hook_status, x);
        free(v);
    } else if (strcmp(p, "/v1/webhooks/dead-letter") == 0 && m == HTTP_M_GET) {
        char *c = req_query_param(req, "count");
        long count = c != NULL ? strtol(c, NULL, 10) : 100;
        free(c);
        if (count < 1 || count > 10000)
            count = 100;
        char cs[16];
        snprintf(cs, sizeof(cs), "%ld", count);
        const char *v[] = {"mdm:hook:dead", cs};
        store_fleet_eval(a->store, STORE_FLEET_HOOK_DEAD_LIST, 1, 2, v, NULL, api_fleet_on_json,
                         req);
    } else if (strcmp(p, "/v1/webhooks/dead-letter/replay") == 0 && m == HTTP_M_POST) {
        api_fleet_replay(req, a);
    } else if (strcmp(p, "/v1/webhooks") == 0 || strcmp(p, "/v1/webhooks/dead-letter") == 0 ||
               strcmp(p, "/v1/webhooks/dead-letter/replay") == 0) {
        req_fail(req, 405, "method not allowed");
    } else {
        req_fail(req, 404, "no such endpoint");
    }
}

/* ---- GET /v1/fleet: numbers and stale devices ---- */

/* The store's numbers, plus days left of each certificate ("expiry"). */
static void api_fleet_on_stats(void *arg, int err, long long num, const char *str, size_t len)
{
    struct api_fleet_ctx *x = arg;
    struct req *req = x->req;
    struct app *a = x->a;
    free(x);
    json_t *j = err == MDMD_OK && str != NULL ? json_loadb(str, len, 0, NULL) : NULL;
    if (j == NULL) {
        api_fail(req, err != MDMD_OK ? err : MDMD_EPROTO);
        return;
    }
    json_t *ex = json_object();
    for (int c = 0; c < GUARD_N; c++) {
        int known, days = guard_days_left(a->guard, c, &known);
        if (known)
            json_object_set_new(ex, guard_cert_names[c], json_integer(days));
    }
    json_object_set_new(j, "expiry", ex);
    api_json(req, 200, j);
}

void api_fleet_stats(struct req *req, void *app)
{
    struct app *a = app;
    if (!api_authorized(req, app))
        return;
    char *s = req_query_param(req, "stale_after_s"), *l = req_query_param(req, "limit");
    long stale = s != NULL ? strtol(s, NULL, 10) : a->cf->stale_after_s;
    long lim = l != NULL ? strtol(l, NULL, 10) : 100;
    free(s);
    free(l);
    if (stale < 1 || stale > 315360000 || lim < 0 || lim > 10000) {
        log_info("event=fleet_stats_refused reason=bad_query");
        req_fail(req, 400, "stale_after_s must be 1..315360000 and limit 0..10000");
        return;
    }
    char now[24], ms[24], ls[16];
    snprintf(now, sizeof(now), "%lld", (long long)util_now_ms());
    snprintf(ms, sizeof(ms), "%lld", (long long)stale * 1000);
    snprintf(ls, sizeof(ls), "%ld", lim);
    char *c = req_query_param(req, "charts");
    const char *v[] = {now, ms, ls, c != NULL && strcmp(c, "1") == 0 ? "1" : "0"};
    free(c);
    struct api_fleet_ctx *x = xcalloc(1, sizeof(*x));
    x->req = req;
    x->a = a;
    store_fleet_eval(a->store, STORE_FLEET_FLEET_STATS, 0, 4, v, NULL, api_fleet_on_stats, x);
}

void api_fleet_events(struct req *req, void *app)
{
    struct app *a = app;
    if (api_authorized(req, app))
        feed_serve(a->feed, req);
}

/* ---- /metrics ---- */

static void api_fleet_metric(struct metrics_text *t, const char *name, const char *type,
                             const char *help, double v)
{
    metrics_family(t, name, type, help);
    metrics_sample(t, name, "", v);
}

/* mdm:pushlat holds cumulative buckets le_<s>, count and sum_ms. */
static void api_fleet_pushlat(struct metrics_text *t, json_t *lat)
{
    static const int le[] = {1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600};
    const char *n = "mdmd_push_to_checkin_seconds";
    metrics_family(t, n, "histogram",
                   "Time from an accepted push to the device's next request on the command "
                   "endpoint.");
    char lab[32], key[16], name[64];
    snprintf(name, sizeof(name), "%s_bucket", n);
    for (size_t i = 0; i < ARRAY_LEN(le); i++) {
        snprintf(key, sizeof(key), "le_%d", le[i]);
        snprintf(lab, sizeof(lab), "le=\"%d\"", le[i]);
        metrics_sample(t, name, lab, (double)json_integer_value(json_object_get(lat, key)));
    }
    double count = (double)json_integer_value(json_object_get(lat, "count"));
    metrics_sample(t, name, "le=\"+Inf\"", count);
    snprintf(name, sizeof(name), "%s_sum", n);
    metrics_sample(t, name, "", (double)json_integer_value(json_object_get(lat, "sum_ms")) / 1000);
    snprintf(name, sizeof(name), "%s_count", n);
    metrics_sample(t, name, "", count);
}

void api_fleet_metrics(struct metrics_text *t, const struct app *a, const char *fleet_json,
                       size_t len)
{
    struct hook_stats h;
    hook_stats(a->hook, &h);
    api_fleet_metric(t, "mdmd_webhook_targets", "gauge", "Webhook URLs being delivered to.",
                     h.targets);
    api_fleet_metric(t, "mdmd_webhook_delivered_total", "counter",
                     "Events a webhook answered 2xx to.", (double)h.delivered);
    api_fleet_metric(t, "mdmd_webhook_failures_total", "counter",
                     "Delivery attempts that failed (no answer or not 2xx).",
                     (double)h.attempts_failed);
    api_fleet_metric(t, "mdmd_webhook_retries_total", "counter",
                     "Delivery attempts after an event's first.", (double)h.retries);
    api_fleet_metric(t, "mdmd_webhook_dead_total", "counter",
                     "Events parked in the dead-letter stream (webhook_max_age_s passed).",
                     (double)h.dead);
    api_fleet_metric(t, "mdmd_webhook_lag_seconds", "gauge",
                     "Age of the oldest event being delivered now (0: none in flight).",
                     (double)h.lag_ms / 1000);
    api_fleet_metric(t, "mdmd_repush_total", "counter",
                     "Re-pushes to devices that did not answer a push (or answered NotNow).",
                     (double)wake_repush_count(a->repush));
    struct feed_stats fs;
    feed_stats(a->feed, &fs);
    api_fleet_metric(t, "mdmd_event_streams", "gauge", "Live event streams open (GET /v1/events).",
                     fs.open);
    api_fleet_metric(t, "mdmd_event_streams_total", "counter", "Live event streams opened.",
                     (double)fs.served);
    api_fleet_metric(t, "mdmd_event_streams_dropped_total", "counter",
                     "Event streams dropped: their reader fell feed_stream_buffer bytes behind.",
                     (double)fs.dropped);
    api_fleet_metric(t, "mdmd_event_streams_refused_total", "counter",
                     "Event streams refused with 503: feed_max_streams were open.",
                     (double)fs.refused);
    api_fleet_metric(t, "mdmd_event_stream_events_total", "counter",
                     "Events written to event streams, all streams together.", (double)fs.events);
    metrics_family(t, "mdmd_cert_expiry_days", "gauge",
                   "Days left (floor) before each certificate expires: apns (push), ca (MDM CA), "
                   "server (TLS), scep_ra.");
    for (int c = 0; c < GUARD_N; c++) {
        int known, days = guard_days_left(a->guard, c, &known);
        char lab[32];
        snprintf(lab, sizeof(lab), "cert=\"%s\"", guard_cert_names[c]);
        if (known)
            metrics_sample(t, "mdmd_cert_expiry_days", lab, days);
    }
    metrics_text_label(t, NULL); /* the rest is the fleet's (from Redis): no worker label */
    json_t *j = fleet_json != NULL ? json_loadb(fleet_json, len, 0, NULL) : NULL;
    if (j == NULL)
        return; /* Redis down: the Redis-backed series are absent */
    api_fleet_metric(t, "mdmd_devices_stale", "gauge", "Devices not seen for stale_after_s.",
                     (double)json_integer_value(json_object_get(j, "stale")));
    api_fleet_metric(t, "mdmd_repush_scheduled", "gauge",
                     "Devices with a re-push due (mdm:repush).",
                     (double)json_integer_value(json_object_get(j, "repush_scheduled")));
    api_fleet_pushlat(t, json_object_get(j, "pushlat"));
    json_decref(j);
}
