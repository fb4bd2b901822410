#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/app.h"
#include "../../core/conf.h"
#include "../../core/http.h"
#include "../../core/util.h"
#include "../../core/log.h"
#include "../../core/metrics.h"
#include "../../core/super.h"
#include "../../push/push.h"
#include "../../store/store.h"
#include "../../store/embedded.h"
#include "../../store/store_fleet.h"
#include "../../store/store_jobs.h"
#include "../wake/wake.h"

struct api_metrics_scrape { /* lives across the two Redis calls */
    struct req *req;
    struct app *app;
    int err; /* of store_stats */
    struct store_stats st;
};

/* ---- which worker ---- */

/* With workers, what one process counts (requests, pushes, its connections)
 * is labelled worker="<n>": a scrape answers from one worker, and says which.
 * What comes from Redis or the supervisor's shared memory is the fleet's and
 * is not labelled (docs/METRICS.md). */
static void api_metrics_worker_label(struct metrics_text *t)
{
    char lab[32];
    if (super_worker() == 0)
        return;
    snprintf(lab, sizeof(lab), "worker=\"%d\"", super_worker());
    metrics_text_label(t, lab);
}

static void api_metrics_workers(struct metrics_text *t)
{
    char lab[32];
    if (super_worker() == 0)
        return;
    metrics_family(t, "mdmd_workers", "gauge", "Worker processes configured (workers).");
    metrics_sample(t, "mdmd_workers", "", super_workers());
    metrics_family(t, "mdmd_worker_restarts_total", "counter",
                   "Times the supervisor started a worker again after it died, by worker.");
    for (int n = 1; n <= super_workers(); n++) {
        snprintf(lab, sizeof(lab), "worker=\"%d\"", n);
        metrics_sample(t, "mdmd_worker_restarts_total", lab, (double)super_restarts(n));
    }
    api_metrics_worker_label(t);
    metrics_family(t, "mdmd_worker", "gauge", "1: the worker process that answered this scrape.");
    metrics_sample(t, "mdmd_worker", "", 1);
}

/* ---- HTTP: per listener and route ---- */

static void api_metrics_route_label(const struct http_server *hs, size_t i, char *out, size_t len)
{
    const struct http_route *rt = http_server_route(hs, i);
    char ep[256], name[64];
    metrics_escape(rt != NULL ? rt->path : "(none)", ep, sizeof(ep));
    metrics_escape(http_server_name(hs), name, sizeof(name));
    snprintf(out, len, "listener=\"%s\",endpoint=\"%s\"", name, ep);
}

static void api_metrics_requests(struct metrics_text *t, const struct metrics *m)
{
    char lab[400], full[440];
    metrics_family(t, "mdmd_http_requests_total", "counter",
                   "Requests answered, by listener, endpoint (route path) and status.");
    for (int l = 0; l < m->nlisteners; l++) {
        const struct http_server *hs = m->listeners[l];
        for (size_t i = 0; i <= http_server_nroutes(hs); i++) {
            const struct metrics_endpoint *e = http_server_endpoint(hs, i);
            api_metrics_route_label(hs, i, lab, sizeof(lab));
            for (int s = 0; s < METRICS_STATUS_N; s++) {
                if (e->status[s] == 0)
                    continue;
                snprintf(full, sizeof(full), "%s,status=\"%d\"", lab, s + METRICS_STATUS_MIN);
                metrics_sample(t, "mdmd_http_requests_total", full, (double)e->status[s]);
            }
        }
    }
}

static void api_metrics_latency(struct metrics_text *t, const struct metrics *m)
{
    char lab[400];
    metrics_family(t, "mdmd_http_request_duration_seconds", "histogram",
                   "Time from a request's dispatch to its answer; listener=\"mdm\" is the "
                   "check-in and command latency.");
    for (int l = 0; l < m->nlisteners; l++) {
        const struct http_server *hs = m->listeners[l];
        for (size_t i = 0; i <= http_server_nroutes(hs); i++) {
            const struct metrics_endpoint *e = http_server_endpoint(hs, i);
            if (e->latency.count == 0)
                continue;
            api_metrics_route_label(hs, i, lab, sizeof(lab));
            metrics_hist_render(t, "mdmd_http_request_duration_seconds", lab, &e->latency);
        }
    }
}

static void api_metrics_connections(struct metrics_text *t, const struct metrics *m)
{
    char lab[96], name[64];
    metrics_family(t, "mdmd_http_connections", "gauge", "Open TLS connections, by listener.");
    for (int l = 0; l < m->nlisteners; l++) {
        metrics_escape(http_server_name(m->listeners[l]), name, sizeof(name));
        snprintf(lab, sizeof(lab), "listener=\"%s\"", name);
        metrics_sample(t, "mdmd_http_connections", lab, http_server_connections(m->listeners[l]));
    }
    metrics_family(t, "mdmd_http_inflight_requests", "gauge",
                   "Requests being handled, by listener.");
    for (int l = 0; l < m->nlisteners; l++) {
        metrics_escape(http_server_name(m->listeners[l]), name, sizeof(name));
        snprintf(lab, sizeof(lab), "listener=\"%s\"", name);
        metrics_sample(t, "mdmd_http_inflight_requests", lab,
                       http_server_inflight(m->listeners[l]));
    }
}

/* ---- MDM ---- */

static void api_metrics_one(struct metrics_text *t, const char *name, const char *type,
                            const char *help, double v)
{
    metrics_family(t, name, type, help);
    metrics_sample(t, name, "", v);
}

static void api_metrics_mdm(struct metrics_text *t, const struct metrics *m)
{
    char lab[64];
    api_metrics_one(t, "mdmd_commands_queued_total", "counter",
                    "Device queue entries added through the admin API (bulk jobs included).",
                    (double)m->commands_queued);
    api_metrics_one(t, "mdmd_commands_not_queued_total", "counter",
                    "Enqueue targets skipped: unknown or checked-out devices.",
                    (double)m->commands_not_queued);
    metrics_family(t, "mdmd_command_reports_total", "counter",
                   "Device reports on the command endpoint, by Status; Acknowledged, Error "
                   "and CommandFormatError finish a command.");
    for (int i = 0; i < METRICS_R_N; i++) {
        snprintf(lab, sizeof(lab), "status=\"%s\"", metrics_report_names[i]);
        metrics_sample(t, "mdmd_command_reports_total", lab, (double)m->reports[i]);
    }
    api_metrics_one(t, "mdmd_authenticates_total", "counter",
                    "Authenticate check-ins accepted (enrollments begun).",
                    (double)m->authenticates);
    api_metrics_one(t, "mdmd_enrollments_total", "counter",
                    "Enrollments completed (the first TokenUpdate after Authenticate).",
                    (double)m->enrollments);
    api_metrics_one(t, "mdmd_checkouts_total", "counter", "CheckOut check-ins accepted.",
                    (double)m->checkouts);
    api_metrics_one(t, "mdmd_log_lines_dropped_total", "counter",
                    "Log lines dropped because stderr did not take them and log_buffer_size was "
                    "full (the loop never waits on stderr).",
                    (double)log_dropped());
    metrics_family(t, "mdmd_bulk_jobs_total", "counter", "Bulk enqueue jobs, by how they ended.");
    metrics_sample(t, "mdmd_bulk_jobs_total", "state=\"started\"", (double)m->jobs_started);
    metrics_sample(t, "mdmd_bulk_jobs_total", "state=\"done\"", (double)m->jobs_done);
    metrics_sample(t, "mdmd_bulk_jobs_total", "state=\"failed\"", (double)m->jobs_failed);
}

/* ---- pushes and APNs ---- */

static void api_metrics_pushes(struct metrics_text *t, const struct app *a)
{
    struct wake_stats w;
    wake_stats(a->wake, &w);
    static const char *const names[] = {"ok",           "bad_token", "failed", "topic_mismatch",
                                        "unconfigured", "coalesced"};
    const uint64_t vals[] = {w.ok,           w.bad_token, w.failed, w.topic_mismatch,
                             w.unconfigured, w.coalesced};
    char lab[64];
    metrics_family(t, "mdmd_pushes_total", "counter",
                   "Device wake-ups by outcome: APNs answers (ok, bad_token, failed), not "
                   "sent (topic_mismatch, unconfigured), or folded into a pending push.");
    for (size_t i = 0; i < ARRAY_LEN(names); i++) {
        snprintf(lab, sizeof(lab), "outcome=\"%s\"", names[i]);
        metrics_sample(t, "mdmd_pushes_total", lab, (double)vals[i]);
    }
    api_metrics_one(t, "mdmd_push_requests_total", "counter", "Devices asked to be woken.",
                    (double)w.requested);
    api_metrics_one(t, "mdmd_push_pending", "gauge",
                    "Wake-ups waiting for the coalescing window or an APNs answer.",
                    (double)w.pending);
}

static void api_metrics_apns(struct metrics_text *t, const struct app *a)
{
    struct push_stats p = {0};
    if (a->push != NULL)
        push_stats(a->push, &p);
    api_metrics_one(t, "mdmd_apns_configured", "gauge", "1 when a push certificate is configured.",
                    a->push != NULL);
    api_metrics_one(t, "mdmd_apns_connected", "gauge",
                    "1 when at least one APNs connection can take pushes.", p.connected);
    api_metrics_one(t, "mdmd_apns_connections", "gauge", "APNs connections that can take pushes.",
                    p.connections);
    api_metrics_one(t, "mdmd_apns_requests_total", "counter",
                    "Requests written to APNs, retries and resends included.", (double)p.sent);
    api_metrics_one(t, "mdmd_apns_retries_total", "counter", "429/5xx answers that were retried.",
                    (double)p.retried);
    api_metrics_one(t, "mdmd_apns_reconnects_total", "counter", "APNs reconnection attempts.",
                    (double)p.reconnects);
    api_metrics_one(t, "mdmd_apns_queued", "gauge", "Pushes waiting for an HTTP/2 stream.",
                    (double)p.queued);
    api_metrics_one(t, "mdmd_apns_inflight", "gauge", "HTTP/2 streams open to APNs.",
                    (double)p.inflight);
}

/* ---- Redis ---- */

static void api_metrics_redis(struct metrics_text *t, const struct app *a, int err,
                              const struct store_stats *st)
{
    api_metrics_worker_label(t);
    api_metrics_one(t, "mdmd_redis_up", "gauge", "1 when the Redis connection is up.",
                    store_connected(a->store));
    api_metrics_one(t, "mdmd_redis_pending", "gauge", "Redis calls sent and not yet answered.",
                    store_pending(a->store));
    metrics_family(t, "mdmd_redis_roundtrip_seconds", "histogram",
                   "Time from sending a Redis call (a command or a Lua script) to its reply.");
    metrics_hist_render(t, "mdmd_redis_roundtrip_seconds", "", store_rtt(a->store));
    struct store_cluster_stats cs;
    if (store_cluster_stats(a->store, &cs)) { /* only on a Redis Cluster */
        api_metrics_one(t, "mdmd_redis_cluster_masters", "gauge",
                        "Redis Cluster masters serving slots, as mdmd last learned.", cs.masters);
        api_metrics_one(t, "mdmd_redis_cluster_masters_up", "gauge",
                        "Of them, those mdmd is connected to.", cs.masters_up);
        api_metrics_one(t, "mdmd_redis_cluster_redirects_total", "counter",
                        "MOVED and ASK replies followed.", (double)cs.redirects);
        api_metrics_one(t, "mdmd_redis_cluster_refreshes_total", "counter",
                        "Slot tables (CLUSTER SLOTS) loaded.", (double)cs.refreshes);
    }
    struct store_idle_stats is;
    if (store_idle_stats(a->store, &is)) { /* idle_cache_ms > 0 */
        api_metrics_one(t, "mdmd_idle_cache_on", "gauge",
                        "1 while Idle polls may be answered from memory (mdm:poke subscribed).",
                        is.on);
        api_metrics_one(t, "mdmd_idle_cache_answers_total", "counter",
                        "Idle polls answered from memory, without a Redis call.", (double)is.hits);
        api_metrics_one(t, "mdmd_idle_cache_pokes_total", "counter",
                        "mdm:poke messages received (a device's Idle answer may have changed).",
                        (double)is.pokes);
    }
    if (a->redis != NULL)
        api_metrics_one(t, "mdmd_redis_restarts_total", "counter",
                        "Times the private redis-server died and was started again.",
                        (double)embedded_restarts(a->redis));
    metrics_text_label(t, NULL); /* the rest is the fleet's, from Redis */
    if (err != MDMD_OK || st == NULL)
        return; /* no stale numbers: the series are absent while Redis is down */
    api_metrics_one(t, "mdmd_queue_depth", "gauge",
                    "Commands queued over all devices (mdm:stats queue_depth).",
                    (double)st->queue_depth);
    api_metrics_one(t, "mdmd_devices", "gauge", "Devices known (ZCARD mdm:devices).",
                    (double)st->devices);
}

static void api_metrics_on_fleet(void *arg, int ferr, long long num, const char *fj, size_t flen)
{
    struct api_metrics_scrape *sc = arg;
    struct app *a = sc->app;
    int err = sc->err;
    const struct store_stats *st = err == MDMD_OK ? &sc->st : NULL;
    struct metrics_text t;
    size_t len;

    metrics_text_init(&t);
    metrics_family(&t, "mdmd_build_info", "gauge", "The running version.");
    metrics_sample(&t, "mdmd_build_info", "version=\"" MDMD_VERSION "\"", 1);
    api_metrics_workers(&t); /* and labels the process' own numbers from here on */
    api_metrics_requests(&t, a->metrics);
    api_metrics_latency(&t, a->metrics);
    api_metrics_connections(&t, a->metrics);
    api_metrics_mdm(&t, a->metrics);
    api_metrics_pushes(&t, a);
    api_metrics_apns(&t, a);
    api_metrics_redis(&t, a, err, st);
    api_metrics_worker_label(&t); /* api_fleet_metrics takes it off for Redis' numbers */
    api_fleet_metrics(&t, a, ferr == MDMD_OK ? fj : NULL, flen);
    char *body = metrics_text_take(&t, &len);
    req_respond(sc->req, 200, "text/plain; version=0.0.4; charset=utf-8", body, len);
    free(body);
    free(sc);
}

/* Then the fleet numbers (stale devices, the push-to-check-in histogram). */
static void api_metrics_on_stats(void *arg, int err, const struct store_stats *st)
{
    struct api_metrics_scrape *sc = arg;
    sc->err = err;
    if (err == MDMD_OK)
        sc->st = *st;
    char now[24], ms[24];
    snprintf(now, sizeof(now), "%lld", (long long)util_now_ms());
    snprintf(ms, sizeof(ms), "%lld", (long long)sc->app->cf->stale_after_s * 1000);
    const char *v[] = {now, ms, "0"};
    store_fleet_eval(sc->app->store, STORE_FLEET_FLEET_STATS, 0, 3, v, NULL, api_metrics_on_fleet,
                     sc);
}

void api_metrics(struct req *req, void *app)
{
    struct app *a = app;
    if (!a->cf->metrics_public && !api_authorized(req, app))
        return;
    struct api_metrics_scrape *sc = xcalloc(1, sizeof(*sc));
    sc->req = req;
    sc->app = a;
    store_stats(a->store, api_metrics_on_stats, sc);
}
