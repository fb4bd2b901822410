/* Admin REST: device reads and queue control (part of api.h). */
#include "api.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/app.h"
#include "../../core/conf.h"
#include "../../core/http.h"
#include "../../core/log.h"
#include "../../core/util.h"
#include "../../core/worker.h"
#include "../../store/store.h"
#include "../../store/store_console.h"
#include "../../store/store_mdm.h"
#include "../mdm/mdm.h"
#include "../apple/apple.h"

static json_t *api_devices_record(const struct store_record *r)
{
    json_t *o = json_object();
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->kv[i].key, "bootstrap_token") != 0) /* only GET .../bootstrap-token */
            json_object_set_new(o, r->kv[i].key, json_stringn(r->kv[i].val, r->kv[i].len));
    return o;
}

static json_t *api_devices_strings(const char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static long api_devices_query_long(struct req *req, const char *key, long def, long lo, long hi)
{
    char *v = req_query_param(req, key), *end = NULL;
    long n = v != NULL ? strtol(v, &end, 10) : def;
    if (v != NULL && (*v == '\0' || *end != '\0'))
        n = -1; /* out of range below: the caller answers 400 */
    free(v);
    return n < lo || n > hi ? lo - 1 : n;
}

/* ---- GET /v1/devices?offset=&limit=&state= ---- */

static void api_devices_on_list(void *arg, int err, long next, long total,
                                const struct store_record *devs, size_t n)
{
    struct req *req = arg;
    if (err != MDMD_OK) {
        api_fail(req, err);
        return;
    }
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, api_devices_record(&devs[i]));
    api_json(req, 200,
             json_pack("{s:o, s:I, s:I}", "devices", a, "next_offset", (json_int_t)next, "total",
                       (json_int_t)total));
}

void api_devices(struct req *req, void *app)
{
    struct app *a = app;
    if (!api_authorized(req, app))
        return;
    long offset = api_devices_query_long(req, "offset", 0, 0, 1L << 40);
    long limit = api_devices_query_long(req, "limit", 100, 1, 1000);
    char *state = req_query_param(req, "state");
    char *q = req_query_param(req, "q"); /* prefix search: store_console.h */
    if (offset < 0 || limit < 1)
        req_fail(req, 400, "offset must be >= 0 and limit 1..1000");
    else if (state != NULL && strcmp(state, "authenticated") && strcmp(state, "enrolled") &&
             strcmp(state, "checked_out"))
        req_fail(req, 400, "state must be authenticated, enrolled or checked_out");
    else if (q != NULL && strlen(q) > 256)
        req_fail(req, 400, "q must be at most 256 bytes");
    else if (q != NULL && *q != '\0')
        store_console_search(a->store, q, offset, (int)limit, state != NULL ? state : "",
                             api_devices_on_list, req);
    else
        store_devices_list(a->store, offset, (int)limit, state != NULL ? state : "",
                           api_devices_on_list, req);
    free(state);
    free(q);
}

/* ---- /v1/devices/{udid}, /v1/devices/{udid}/commands ---- */

/* A stream entry of mdm:res:{UDID} as JSON, with the result plist converted. */
static json_t *api_devices_history_entry(const struct store_record *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(r->id));
    for (size_t i = 0; i < r->n; i++) {
        const struct store_kv *kv = &r->kv[i];
        json_t *v = NULL;
        if (strcmp(kv->key, "result") == 0) {
            plist_t p = apple_plist_parse(kv->val, kv->len, NULL, 0);
            v = p != NULL ? apple_plist_to_json(p) : json_null();
            plist_free(p);
        } else if (strcmp(kv->key, "error_chain") == 0) {
            v = kv->len > 0 ? apple_plist_json_load(kv->val, kv->len, NULL, 0) : NULL;
            if (v == NULL)
                v = json_null();
        } else if (strcmp(kv->key, "time") == 0 || strcmp(kv->key, "queued") == 0) {
            v = json_integer(strtoll(kv->val, NULL, 10));
        } else {
            v = json_stringn(kv->val, kv->len);
        }
        json_object_set_new(o, kv->key, v);
    }
    return o;
}

/* A page of history converted on the crypto worker: a result may be a
 * report of megabytes and 100,000s of nodes, and a page of them held the
 * loop for seconds.  The records are copied (the store's are borrowed). */
struct api_devices_hist {
    struct req *req;
    struct app *app;
    struct store_record *recs;
    size_t n;
    int more;   /* the page stopped at history_page_bytes */
    char *json; /* the answer, made by the job */
};

static char *api_devices_dup(const char *s, size_t len)
{
    char *d = xmalloc(len + 1);
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

/* Copies of n records the store lends (id NULL stays NULL). */
static struct store_record *api_devices_copy(const struct store_record *recs, size_t n)
{
    struct store_record *c = xcalloc(n > 0 ? n : 1, sizeof(*c));
    for (size_t i = 0; i < n; i++) {
        struct store_kv *kv = xcalloc(recs[i].n > 0 ? recs[i].n : 1, sizeof(*kv));
        for (size_t k = 0; k < recs[i].n; k++) {
            kv[k].key = api_devices_dup(recs[i].kv[k].key, strlen(recs[i].kv[k].key));
            kv[k].val = api_devices_dup(recs[i].kv[k].val, recs[i].kv[k].len);
            kv[k].len = recs[i].kv[k].len;
        }
        c[i].id = recs[i].id != NULL ? api_devices_dup(recs[i].id, strlen(recs[i].id)) : NULL;
        c[i].kv = kv;
        c[i].n = recs[i].n;
    }
    return c;
}

static void api_devices_copy_free(struct store_record *recs, size_t n)
{
    for (size_t i = 0; i < n && recs != NULL; i++) {
        struct store_kv *kv = (struct store_kv *)recs[i].kv;
        for (size_t k = 0; k < recs[i].n; k++) {
            free((char *)kv[k].key);
            free((char *)kv[k].val);
        }
        free(kv);
        free((char *)recs[i].id);
    }
    free(recs);
}

static void api_devices_hist_free(struct api_devices_hist *h)
{
    api_devices_copy_free(h->recs, h->n);
    free(h->json);
    free(h);
}

static void api_devices_hist_job(void *arg)
{
    struct api_devices_hist *h = arg;
    json_t *a = json_array();
    for (size_t i = 0; i < h->n; i++)
        json_array_append_new(a, api_devices_history_entry(&h->recs[i]));
    json_t *next = h->n > 0 ? json_string(h->recs[h->n - 1].id) : json_null();
    json_t *j =
        json_pack("{s:o, s:o, s:b}", "commands", a, "next_before", next, "truncated", h->more);
    h->json = json_dumps(j, JSON_COMPACT);
    json_decref(j);
}

/* The answer of a JSON made on the crypto worker: NULL when the worker
 * never ran the job (it is stopping). */
static void api_devices_worker_answer(struct req *req, const char *json)
{
    if (json != NULL)
        req_respond(req, 200, "application/json", json, strlen(json));
    else
        req_fail(req, 503, "shutting down");
}

static void api_devices_hist_done(void *arg)
{
    struct api_devices_hist *h = arg;
    api_devices_worker_answer(h->req, h->json);
    api_devices_hist_free(h);
}

static void api_devices_on_history(void *arg, int err, const struct store_record *recs, size_t n,
                                   int more)
{
    struct api_devices_hist *h = arg;
    if (err != MDMD_OK) {
        api_fail(h->req, err);
        api_devices_hist_free(h);
        return;
    }
    h->recs = api_devices_copy(recs, n);
    h->n = n;
    h->more = more;
    if (h->app->worker == NULL) {
        api_devices_hist_job(h);
        api_devices_hist_done(h);
    } else {
        worker_submit(h->app->worker, api_devices_hist_job, api_devices_hist_done, h);
    }
}

/* A device with its queue, as JSON: on the loop when small, else on the
 * crypto worker (a record can hold device-chosen strings of megabytes, up
 * to max_plist_string each, and the queue 1,000 entries). */
#define API_DEVICES_INLINE 8192
struct api_devices_dev {
    struct req *req;
    struct app *app;
    struct store_record *rec; /* the device's record, copied (NULL until then) */
    char **queue, **notnow;
    size_t nqueue, nnotnow;
    char *json;
};

static char **api_devices_copy_strings(const char *const *v, size_t n)
{
    char **c = xcalloc(n > 0 ? n : 1, sizeof(*c));
    for (size_t i = 0; i < n; i++)
        c[i] = xstrdup(v[i]);
    return c;
}

static void api_devices_dev_free(struct api_devices_dev *d)
{
    api_devices_copy_free(d->rec, d->rec != NULL ? 1 : 0);
    for (size_t i = 0; i < d->nqueue; i++)
        free(d->queue[i]);
    for (size_t i = 0; i < d->nnotnow; i++)
        free(d->notnow[i]);
    free(d->queue);
    free(d->notnow);
    free(d->json);
    free(d);
}

static char *api_devices_dev_json(const struct store_record *dev, const char *const *queue,
                                  size_t nqueue, const char *const *notnow, size_t nnotnow)
{
    json_t *j = json_pack("{s:o, s:o, s:o}", "device", api_devices_record(dev), "queue",
                          api_devices_strings(queue, nqueue), "notnow",
                          api_devices_strings(notnow, nnotnow));
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

static void api_devices_dev_job(void *arg)
{
    struct api_devices_dev *d = arg;
    d->json = api_devices_dev_json(d->rec, (const char *const *)d->queue, d->nqueue,
                                   (const char *const *)d->notnow, d->nnotnow);
}

static void api_devices_dev_done(void *arg)
{
    struct api_devices_dev *d = arg;
    api_devices_worker_answer(d->req, d->json);
    api_devices_dev_free(d);
}

static void api_devices_on_device(void *arg, int err, const struct store_record *dev,
                                  const char *const *queue, size_t nqueue,
                                  const char *const *notnow, size_t nnotnow)
{
    struct api_devices_dev *d = arg;
    size_t bytes = 0;
    if (err != MDMD_OK || dev == NULL) {
        if (err != MDMD_OK)
            api_fail(d->req, err);
        else
            req_fail(d->req, 404, "unknown device");
        api_devices_dev_free(d);
        return;
    }
    for (size_t i = 0; i < dev->n; i++)
        bytes += dev->kv[i].len;
    bytes += 40 * (nqueue + nnotnow);
    if (bytes <= API_DEVICES_INLINE || d->app->worker == NULL) {
        d->json = api_devices_dev_json(dev, queue, nqueue, notnow, nnotnow);
        api_devices_dev_done(d);
        return;
    }
    d->rec = api_devices_copy(dev, 1);
    d->queue = api_devices_copy_strings(queue, nqueue);
    d->nqueue = nqueue;
    d->notnow = api_devices_copy_strings(notnow, nnotnow);
    d->nnotnow = nnotnow;
    worker_submit(d->app->worker, api_devices_dev_job, api_devices_dev_done, d);
}

static void api_devices_on_clear(void *arg, int err, long n)
{
    struct req *req = arg;
    char body[64];
    if (err != MDMD_OK) {
        api_fail(req, err);
        return;
    }
    if (n < 0) {
        req_fail(req, 404, "unknown device");
        return;
    }
    log_info("event=queue_cleared dropped=%ld", n);
    snprintf(body, sizeof(body), "{\"dropped\":%ld}\n", n);
    req_respond_json(req, 200, body);
}

static void api_devices_commands(struct req *req, struct app *a, const char *udid)
{
    if (req_method(req) == HTTP_M_DELETE) {
        store_queue_clear(a->store, udid, api_devices_on_clear, req);
        return;
    }
    long count = api_devices_query_long(req, "count", 50, 1, 1000);
    char *before = req_query_param(req, "before");
    if (count < 1)
        req_fail(req, 400, "count must be 1..1000");
    else if (before != NULL && strspn(before, "0123456789-") != strlen(before))
        req_fail(req, 400, "before must be a stream id");
    else {
        struct api_devices_hist *h = xcalloc(1, sizeof(*h));
        h->req = req;
        h->app = a;
        store_history(a->store, udid, before, (int)count, a->cf->history_page_bytes,
                      api_devices_on_history, h);
    }
    free(before);
}

/* The path segment as a device or user channel id (<UDID>:<user>), its ':'
 * also taken percent-encoded (%3A: browsers and client libraries encode it).
 * 0, or -1 when it is neither. */
static int api_devices_channel_id(const char *seg, size_t n, char *out, size_t outlen)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < outlen; i++, k++) {
        if (seg[i] == '%' && i + 2 < n && seg[i + 1] == '3' && (seg[i + 2] | 0x20) == 'a') {
            out[k] = ':';
            i += 2;
        } else {
            out[k] = seg[i];
        }
    }
    out[k] = '\0';
    return k < outlen - 1 && util_channel_valid(out, k) ? 0 : -1;
}

void api_device(struct req *req, void *app)
{
    struct app *a = app;
    char udid[UTIL_CHANNEL_MAX];
    if (!api_authorized(req, app))
        return;
    const char *rest = req_path(req) + strlen("/v1/devices/");
    size_t n = strcspn(rest, "/");
    const char *tail = rest + n;
    if (api_devices_channel_id(rest, n, udid, sizeof(udid)) != 0) {
        req_fail(req, 400, "malformed UDID");
        return;
    }
    if (api_checkin_device(req, a, udid, tail) || api_fleet_device(req, a, udid, tail))
        return;
    if (strcmp(tail, "/commands") == 0)
        api_devices_commands(req, a, udid);
    else if (*tail == '\0' && req_method(req) == HTTP_M_GET) {
        struct api_devices_dev *d = xcalloc(1, sizeof(*d));
        d->req = req;
        d->app = a;
        store_device_get(a->store, udid, 1000, api_devices_on_device, d);
    } else if (*tail == '\0')
        req_fail(req, 405, "method not allowed");
    else
        req_fail(req, 404, "no such endpoint");
}
