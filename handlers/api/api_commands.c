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
#include "../../core/worker.h"
#include "../../store/store.h"
#include "../../store/store_fleet.h"
#include "../../store/store_mdm.h"
#include "../mdm/mdm.h"
#include "../apple/apple.h"
#include "../wake/wake.h"

#define API_COMMANDS_CHUNK 1000 /* UDIDs per enqueue script call */

/* ---- POST /v1/commands ---- */

/* Target UDIDs, sent to Redis in chunks of API_COMMANDS_CHUNK. */
struct api_commands_udids {
    char **v;
    size_t n, next; /* next: first UDID not yet sent */
};

static void api_commands_udids_free(struct api_commands_udids *u)
{
    for (size_t i = 0; i < u->n; i++)
        free(u->v[i]);
    free(u->v);
}

/* The next chunk; returns its size (0 when all were sent). */
static size_t api_commands_udids_chunk(struct api_commands_udids *u, const char *const **batch)
{
    size_t n = u->n - u->next;
    if (n > API_COMMANDS_CHUNK)
        n = API_COMMANDS_CHUNK;
    *batch = (const char *const *)u->v + u->next;
    u->next += n;
    return n;
}

struct api_commands_enq {
    struct req *req;
    struct app *app;
    char uuid[37];
    char *request_type;
    char *plist; /* XML of {Command, CommandUUID} */
    uint32_t plist_len;
    struct api_commands_udids ids;
    long queued, already;
    size_t sent; /* UDIDs in chunks whose script answered (a prefix of ids) */
    json_t *unknown;
    const char *filter_state; /* "filter" instead of udids: the device state targeted */
    int async;                /* "async": true, or big enough: run as a job (api.h) */
    int head;                 /* "priority": "high": to the head of each queue */
};

static void api_commands_enq_free(struct api_commands_enq *e)
{
    api_commands_udids_free(&e->ids);
    free(e->plist);
    free(e->request_type);
    json_decref(e->unknown);
    free(e);
}

static void api_commands_enq_send(struct api_commands_enq *e);

/* A chunk failed part-way through the list.  Each chunk is one atomic
 * script: the ones before it are done, it may or may not have run, the rest
 * were not sent.  The answer says so, in request order, with the UUID: the
 * same request again (same command_uuid) queues only what is missing. */
static void api_commands_enq_partial(struct api_commands_enq *e, int err)
{
    size_t in_doubt = e->ids.next - e->sent;
    log_err("event=enqueue_failed uuid=%s processed=%zu in_doubt=%zu not_sent=%zu queued=%ld "
            "err=%s",
            e->uuid, e->sent, in_doubt, e->ids.n - e->ids.next, e->queued, mdmd_strerror(err));
    json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:O, s:I, s:I, s:I, s:b}", "error",
                          err == MDMD_ETIMEDOUT ? "redis timeout" : "redis unavailable",
                          "command_uuid", e->uuid, "queued", (json_int_t)e->queued,
                          "already_queued", (json_int_t)e->already, "unknown_udids", e->unknown,
                          "processed", (json_int_t)e->sent, "in_doubt", (json_int_t)in_doubt,
                          "not_sent", (json_int_t)(e->ids.n - e->ids.next), "retry_safe", 1);
    api_json(e->req, 503, j);
}

static void api_commands_enq_done(struct api_commands_enq *e);

/* The chunks ran on the node of mdm:cmd:<UUID> (single layout: their first
 * key), or on it and the nodes of the devices' slots (cluster layout):
 * WAIT on each covers every write before it on that connection.  Too few
 * replicas: the command may not survive a failover, so no 201; the same
 * request again is safe (idempotent per UUID). */
static void api_commands_enq_on_wait(void *arg, int err)
{
    struct api_commands_enq *e = arg;
    if (err != MDMD_OK) {
        log_err("event=enqueue_not_replicated uuid=%s queued=%ld err=%s", e->uuid, e->queued,
                mdmd_strerror(err));
        api_json(e->req, 503,
                 json_pack("{s:s, s:s, s:I, s:b}", "error",
                           "queued, but not yet on a replica: retry the same request",
                           "command_uuid", e->uuid, "queued", (json_int_t)e->queued, "retry_safe",
                           1));
        api_commands_enq_free(e);
        return;
    }
    api_commands_enq_done(e);
}

static void api_commands_enq_wait(struct api_commands_enq *e)
{
    (void)store_enqueue_wait(e->app->store, e->uuid, (const char *const *)e->ids.v, e->ids.n,
                             e->app->cf->redis_wait_replicas, e->app->cf->redis_wait_ms,
                             api_commands_enq_on_wait, e);
}

static void api_commands_enq_on_chunk(void *arg, int err, const struct store_enqueue_result *res)
{
    struct api_commands_enq *e = arg;
    if (err == MDMD_ECONFLICT) {
        log_warn("event=enqueue_conflict uuid=%s", e->uuid);
        api_json(e->req, 409,
                 json_pack("{s:s, s:s}", "error",
                           "this CommandUUID is "
                           "queued with another command",
                           "command_uuid", e->uuid));
        api_commands_enq_free(e);
        return;
    }
    if (err != MDMD_OK) {
        api_commands_enq_partial(e, err);
        api_commands_enq_free(e);
        return;
    }
    e->sent = e->ids.next;
    e->queued += res->queued;
    e->already += res->already;
    e->app->metrics->commands_queued += (uint64_t)res->queued;
    e->app->metrics->commands_not_queued += res->nunknown;
    wake_devices(e->app->wake, res->push, res->npush);
    for (size_t i = 0; i < res->nunknown; i++)
        json_array_append_new(e->unknown, json_string(res->unknown[i]));
    if (e->ids.next < e->ids.n) {
        api_commands_enq_send(e);
        return;
    }
    api_commands_enq_wait(e);
}

/* The last chunk is in: 201 once the replicas have it too (redis_wait_replicas). */
static void api_commands_enq_done(struct api_commands_enq *e)
{
    char rt[128];
    log_info("event=command_queued uuid=%s request_type=%s queued=%ld already=%ld unknown=%zu",
             e->uuid, log_str(e->request_type, rt, sizeof(rt)), e->queued, e->already,
             json_array_size(e->unknown));
    json_t *j =
        json_pack("{s:s, s:I, s:I, s:O}", "command_uuid", e->uuid, "queued", (json_int_t)e->queued,
                  "already_queued", (json_int_t)e->already, "unknown_udids", e->unknown);
    api_json(e->req, 201, j);
    api_commands_enq_free(e);
}

static void api_commands_enq_send(struct api_commands_enq *e)
{
    const char *const *batch;
    size_t n = api_commands_udids_chunk(&e->ids, &batch);
    (e->head ? store_fleet_enqueue_head : store_enqueue)(
        e->app->store, e->uuid, e->request_type, e->plist, e->plist_len, batch, n, util_now_ms(),
        STORE_CMD_TTL_S, api_commands_enq_on_chunk, e);
}

static int api_commands_udid_ok(const char *u)
{
    return util_channel_valid(u, strlen(u)); /* a device or a user channel <UDID>:<user> */
}

/* Checks RequestType and the required keys against Apple's schema. */
static int api_commands_check_command(plist_t cmd, char *err, size_t errlen)
{
    char *rt = apple_plist_dict_string(cmd, "RequestType");
    const struct mdm_command *c = rt != NULL ? mdm_schema_find(rt) : NULL;
    int rc = 0;
    if (c == NULL) {
        snprintf(err, errlen,
                 rt == NULL ? "command.RequestType is missing" : "unknown RequestType %s", rt);
        rc = -1;
    }
    for (const struct mdm_key *k = c != NULL ? c->keys : NULL; rc == 0 && k->name; k++)
        if (k->required && plist_dict_get_item(cmd, k->name) == NULL) {
            snprintf(err, errlen, "%s needs the key %s", rt, k->name);
            rc = -1;
        }
    free(rt);
    return rc;
}

/* {"RequestType": ..., params} -> the Command dictionary. */
static plist_t api_commands_command_from_json(json_t *cmd, char *err, size_t errlen)
{
    const char *rt = json_string_value(json_object_get(cmd, "RequestType"));
    const struct mdm_command *c = rt != NULL ? mdm_schema_find(rt) : NULL;
    if (!json_is_object(cmd) || rt == NULL) {
        snprintf(err, errlen, "command must be an object with a RequestType");
        return NULL;
    }
    if (c == NULL) {
        snprintf(err, errlen, "unknown RequestType %s", rt);
        return NULL;
    }
    json_t *params = json_deep_copy(cmd);
    json_object_del(params, "RequestType");
    plist_t p = apple_plist_from_json(params, c->keys, err, errlen);
    json_decref(params);
    if (p != NULL)
        plist_dict_set_item(p, "RequestType", plist_new_string(rt));
    return p;
}

static int api_commands_take_udids(struct api_commands_udids *u, json_t *arr, char *err,
                                   size_t errlen)
{
    size_t i;
    json_t *v;
    if (!json_is_array(arr) || json_array_size(arr) == 0) {
        snprintf(err, errlen, "udids must be a non-empty array");
        return -1;
    }
    u->v = xcalloc(json_array_size(arr), sizeof(char *));
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(v);
        if (s == NULL || !api_commands_udid_ok(s)) {
            snprintf(err, errlen, "udids[%zu] is not a valid UDID", i);
            return -1;
        }
        u->v[u->n++] = xstrdup(s);
    }
    return 0;
}

/* Targets: "udids": [...] or "filter": "all_enrolled"; "async": true asks
 * for a job (api.h) whatever the size. */
static int api_commands_take_targets(struct api_commands_enq *e, json_t *j, char *err,
                                     size_t errlen)
{
    json_t *filter = json_object_get(j, "filter");
    const char *prio = json_string_value(json_object_get(j, "priority"));
    e->async = json_is_true(json_object_get(j, "async"));
    if (json_object_get(j, "priority") != NULL &&
        (prio == NULL || (strcmp(prio, "high") != 0 && strcmp(prio, "normal") != 0))) {
        snprintf(err, errlen, "priority must be \"high\" or \"normal\"");
        return -1;
    }
    e->head = prio != NULL && strcmp(prio, "high") == 0;
    if (e->head && (filter != NULL || e->async)) {
        snprintf(err, errlen, "priority \"high\" takes a udids list, not a filter or a job");
        return -1;
    }
    if (filter == NULL)
        return api_commands_take_udids(&e->ids, json_object_get(j, "udids"), err, errlen);
    e->filter_state = api_jobs_filter_state(json_string_value(filter));
    if (e->filter_state == NULL || json_object_get(j, "udids") != NULL) {
        snprintf(err, errlen, "filter must be \"all_enrolled\", and comes instead of udids");
        return -1;
    }
    return 0;
}

/* Wraps the Command dict with its CommandUUID and renders the XML once. */
static void api_commands_finish_plist(struct api_commands_enq *e, plist_t command)
{
    plist_t root = plist_new_dict();
    e->request_type = apple_plist_dict_string(command, "RequestType");
    plist_dict_set_item(root, "Command", command);
    plist_dict_set_item(root, "CommandUUID", plist_new_string(e->uuid));
    plist_to_xml(root, &e->plist, &e->plist_len);
    plist_free(root);
}

/* The client's CommandUUID (a retry must carry it), or a new one. */
static int api_commands_take_uuid(struct api_commands_enq *e, const char *given, char *err,
                                  size_t errlen)
{
    if (given == NULL) {
        util_uuid(e->uuid);
        return 0;
    }
    if (strlen(given) > 36 || !api_commands_udid_ok(given)) {
        snprintf(err, errlen, "CommandUUID must be 1 to 36 characters of A-Z a-z 0-9 . _ -");
        return -1;
    }
    snprintf(e->uuid, sizeof(e->uuid), "%s", given);
    return 0;
}

static int api_commands_parse_json(struct api_commands_enq *e, const char *body, size_t len,
                                   char *err, size_t errlen)
{
    json_t *j = apple_plist_json_load(body, len, err, errlen);
    plist_t cmd = NULL;
    int rc = -1;
    if (j == NULL)
        ; /* err says why */
    else if (json_object_get(j, "command_uuid") != NULL &&
             !json_is_string(json_object_get(j, "command_uuid")))
        snprintf(err, errlen, "command_uuid must be a string");
    else if (api_commands_take_targets(e, j, err, errlen) == 0 &&
             (cmd = api_commands_command_from_json(json_object_get(j, "command"), err, errlen)) &&
             api_commands_check_command(cmd, err, errlen) == 0 &&
             api_commands_take_uuid(e, json_string_value(json_object_get(j, "command_uuid")), err,
                                    errlen) == 0) {
        api_commands_finish_plist(e, cmd);
        cmd = NULL;
        rc = 0;
    }
    plist_free(cmd);
    json_decref(j);
    return rc;
}

/* A raw command plist: {Command: {...}, CommandUUID?}, target UDIDs in the
 * query (?udids=A,B), for commands JSON cannot express (nested data). */
static int api_commands_parse_plist(struct api_commands_enq *e, const char *body, size_t len,
                                    char *list, char *filter, char *err, size_t errlen)
{
    plist_t root = apple_plist_parse(body, len, err, errlen);
    plist_t cmd = root != NULL && plist_get_node_type(root) == PLIST_DICT
                      ? plist_dict_get_item(root, "Command")
                      : NULL;
    char *save = NULL;
    int rc = -1;
    int both = filter != NULL && list != NULL;
    if (filter != NULL && list == NULL) {
        list = xstrdup(""); /* no UDIDs: the filter names the targets */
        e->filter_state = api_jobs_filter_state(filter);
    }
    free(filter);
    if (root == NULL)
        ; /* err says why (a shape limit, or not a plist) */
    else if (cmd == NULL || plist_get_node_type(cmd) != PLIST_DICT)
        snprintf(err, errlen, "body must be a plist with a Command dictionary");
    else if (both)
        snprintf(err, errlen, "name the targets with udids or with filter, not both");
    else if (list == NULL || (*list == '\0' && e->filter_state == NULL))
        snprintf(err, errlen,
                 "name the target devices with ?udids=UDID,UDID or "
                 "?filter=all_enrolled");
    else if (api_commands_check_command(cmd, err, errlen) == 0) {
        e->ids.v = xcalloc(strlen(list) / 2 + 1, sizeof(char *));
        rc = 0;
        for (char *u = strtok_r(list, ",", &save); u && rc == 0; u = strtok_r(NULL, ",", &save)) {
            if (!api_commands_udid_ok(u)) {
                snprintf(err, errlen, "%s is not a valid UDID", u);
                rc = -1;
            } else {
                e->ids.v[e->ids.n++] = xstrdup(u);
            }
        }
        char *given = apple_plist_dict_string(root, "CommandUUID");
        if (rc == 0 && plist_dict_get_item(root, "CommandUUID") != NULL && given == NULL) {
            snprintf(err, errlen, "CommandUUID must be a string");
            rc = -1;
        } else if (rc == 0) {
            rc = api_commands_take_uuid(e, given, err, errlen);
        }
        free(given);
        if (rc == 0)
            api_commands_finish_plist(e, plist_copy(cmd));
    }
    free(list);
    plist_free(root);
    return rc;
}

/* Hands the parsed command and its targets over to a bulk job. */
static void api_commands_enq_to_job(struct api_commands_enq *e)
{
    struct api_jobs_cmd c = {.request_type = e->request_type,
                             .plist = e->plist,
                             .plist_len = e->plist_len,
                             .udids = e->ids.v,
                             .nudids = e->ids.n,
                             .state = e->filter_state};
    memcpy(c.uuid, e->uuid, sizeof(c.uuid));
    e->request_type = e->plist = NULL;
    e->ids.v = NULL;
    e->ids.n = 0;
    api_jobs_start(e->req, e->app, &c);
    api_commands_enq_free(e);
}

/* A body parsed on the loop up to API_COMMANDS_INLINE_PARSE bytes, on the
 * crypto worker beyond (a raw plist of megabytes held the loop for as long
 * as libplist took), as device bodies are (mdm.h).  The job touches only
 * this struct and the enq it fills; the query was read on the loop. */
#define API_COMMANDS_INLINE_PARSE MDM_INLINE_PARSE
struct api_commands_parse {
    struct api_commands_enq *e;
    const char *body; /* the request's own buffer: valid until it is answered */
    size_t len;
    int is_plist;
    char *list, *filter; /* ?udids= and ?filter= (raw plists) */
    int rc;              /* -2: the job never ran (the worker is stopping) */
    char err[256];
};

static void api_commands_parse_job(void *arg)
{
    struct api_commands_parse *p = arg;
    p->rc = p->is_plist ? api_commands_parse_plist(p->e, p->body, p->len, p->list, p->filter,
                                                   p->err, sizeof(p->err))
                        : api_commands_parse_json(p->e, p->body, p->len, p->err, sizeof(p->err));
    p->list = p->filter = NULL; /* api_commands_parse_plist freed them */
}

static void api_commands_parsed(void *arg)
{
    struct api_commands_parse *p = arg;
    struct api_commands_enq *e = p->e;
    int rc = p->rc;
    if (rc == -2) {
        req_fail(e->req, 503, "shutting down");
        api_commands_enq_free(e);
    } else if (rc == 0 && e->head && e->ids.n > API_JOBS_SYNC_MAX) {
        snprintf(p->err, sizeof(p->err), "priority \"high\" takes at most %d UDIDs",
                 API_JOBS_SYNC_MAX);
        rc = -1;
    }
    if (rc == -1) {
        char why[256]; /* it may quote the body: an unknown RequestType */
        log_info("event=command_refused reason=\"%s\"", log_str(p->err, why, sizeof(why)));
        req_fail(e->req, 400, p->err);
        api_commands_enq_free(e);
    } else if (rc == 0 && (e->async || e->filter_state != NULL || e->ids.n > API_JOBS_SYNC_MAX)) {
        api_commands_enq_to_job(e);
    } else if (rc == 0) {
        api_commands_enq_send(e);
    }
    free(p->list);
    free(p->filter);
    free(p);
}

void api_commands(struct req *req, void *app)
{
    struct app *a = app;
    if (!api_authorized(req, app))
        return;
    const char *ct = req_header(req, "Content-Type");
    struct api_commands_parse *p = xcalloc(1, sizeof(*p));
    struct api_commands_enq *e = xcalloc(1, sizeof(*e));
    e->req = req;
    e->app = app;
    e->unknown = json_array();
    p->e = e;
    p->body = (const char *)req_body(req, &p->len);
    p->is_plist = ct != NULL && (strstr(ct, "plist") != NULL || strstr(ct, "xml") != NULL);
    if (p->is_plist) {
        p->list = req_query_param(req, "udids");
        p->filter = req_query_param(req, "filter");
    }
    p->rc = -2;
    if (p->len <= API_COMMANDS_INLINE_PARSE || a->worker == NULL) {
        api_commands_parse_job(p);
        api_commands_parsed(p);
    } else {
        worker_submit(a->worker, api_commands_parse_job, api_commands_parsed, p);
    }
}

/* ---- POST /v1/push {"udids":[...]}: wake devices now ---- */

struct api_push {
    struct req *req;
    struct app *app;
    struct api_commands_udids ids;
    long pushing;
};

static void api_commands_push_send(struct api_push *p);

static void api_commands_push_on_targets(void *arg, int err, const struct store_push_target *t,
                                         size_t n)
{
    struct api_push *p = arg;
    char body[96];
    if (err != MDMD_OK) {
        api_fail(p->req, err);
    } else {
        wake_devices(p->app->wake, t, n);
        p->pushing += (long)n;
        if (p->ids.next < p->ids.n) {
            api_commands_push_send(p);
            return;
        }
        snprintf(body, sizeof(body), "{\"requested\":%zu,\"pushing\":%ld}\n", p->ids.n, p->pushing);
        req_respond_json(p->req, 202, body);
    }
    api_commands_udids_free(&p->ids);
    free(p);
}

static void api_commands_push_send(struct api_push *p)
{
    const char *const *batch;
    size_t n = api_commands_udids_chunk(&p->ids, &batch);
    store_push_targets(p->app->store, batch, n, api_commands_push_on_targets, p);
}

void api_push(struct req *req, void *app)
{
    char err[256];
    size_t len;
    if (!api_authorized(req, app))
        return;
    const char *body = (const char *)req_body(req, &len);
    json_t *j = apple_plist_json_load(body, len, err, sizeof(err));
    struct api_push *p = xcalloc(1, sizeof(*p));
    p->req = req;
    p->app = app;
    if (j == NULL ||
        api_commands_take_udids(&p->ids, json_object_get(j, "udids"), err, sizeof(err)) != 0) {
        req_fail(req, 400, err);
        api_commands_udids_free(&p->ids);
        free(p);
    } else {
        api_commands_push_send(p);
    }
    json_decref(j);
}
