/* api_ddm.c: the REST side of declarative management (part of api.h; JSON,
 * admin API key or a console session; docs/openapi.json, docs/DDM.md).  The
 * protocol and the notifications are handlers/ddm's. */
#include "api.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/app.h"
#include "../../core/conf.h"
#include "../../core/http.h"
#include "../../core/log.h"
#include "../../core/util.h"
#include "../../store/store_ddm.h"
#include "../apple/apple.h"
#include "../ddm/ddm.h"

#define API_DDM_DECLS "/v1/declarations/"
#define API_DDM_SETS "/v1/declaration-sets/"
#define API_DDM_DEVICES "/v1/devices/"
#define API_DDM_MAX_TARGETS 100000 /* per assignment, as bulk commands */
#define API_DDM_FLEET_BUDGET 5000  /* enrollments read per fleet call */

struct api_ddm_op { /* a request waiting for the store */
    struct req *req;
    struct app *app;
    char id[256]; /* identifier, set name or enrollment id */
};

static struct api_ddm_op *api_ddm_op(struct req *req, void *app, const char *id)
{
    struct api_ddm_op *op = xcalloc(1, sizeof(*op));
    op->req = req;
    op->app = app;
    snprintf(op->id, sizeof(op->id), "%s", id != NULL ? id : "");
    return op;
}

/* 1 when it answered a store error; frees op then. */
static int api_ddm_failed(struct api_ddm_op *op, int err)
{
    if (err == MDMD_OK)
        return 0;
    api_fail(op->req, err);
    free(op);
    return 1;
}

static void api_ddm_done(struct api_ddm_op *op, int status, json_t *j)
{
    api_json(op->req, status, j);
    free(op);
}

/* The request body as a JSON object, or NULL (answered 400). */
static json_t *api_ddm_body(struct req *req)
{
    size_t n;
    char jerr[160] = "";
    const unsigned char *b = req_body(req, &n);
    json_t *j = apple_plist_json_load(b, n, jerr, sizeof(jerr)); /* bounded (#12) */
    if (!json_is_object(j)) {
        char why[200];
        snprintf(why, sizeof(why), "the body must be a JSON object (%s)",
                 j == NULL ? jerr : "not an object");
        req_fail(req, 400, why);
        json_decref(j);
        return NULL;
    }
    return j;
}

/* A hash reply ([field, value, ...]) as an object of strings. */
static json_t *api_ddm_hash(json_t *a)
{
    json_t *o = json_object();
    for (size_t i = 0; i + 1 < json_array_size(a); i += 2)
        json_object_set(o, json_string_value(json_array_get(a, i)), json_array_get(a, i + 1));
    return o;
}

static void api_ddm_set_job(json_t *o, struct app *app, const char *why)
{
    char job[33];
    ddm_notify_changed(app, why, job);
    json_object_set_new(o, "job_id", json_string(job));
}

/* ---- declarations ---- */

static void api_ddm_on_decl_list(void *arg, int err, json_t *r)
{
    struct api_ddm_op *op = arg;
    if (api_ddm_failed(op, err))
        return;
    json_t *out = json_array(), *e;
    size_t i;
    json_array_foreach(r, i, e)
    {
        json_array_append_new(
            out, json_pack("{s:O, s:O, s:O, s:O, s:O}", "identifier", json_array_get(e, 0), "type",
                           json_array_get(e, 1), "kind", json_array_get(e, 2), "server_token",
                           json_array_get(e, 3), "updated", json_array_get(e, 4)));
    }
    api_ddm_done(op, 200, json_pack("{s:o}", "declarations", out));
}

void api_ddm_declarations(struct req *req, void *app)
{
    struct app *a = app;
    if (!api_authorized(req, app))
        return;
    store_ddm(a->store, STORE_DDM_DECL_LIST, 0, NULL, NULL, api_ddm_on_decl_list,
              api_ddm_op(req, app, NULL));
}

static void api_ddm_on_decl_put(void *arg, int err, json_t *r)
{
    struct api_ddm_op *op = arg;
    if (api_ddm_failed(op, err))
        return;
    int created = json_integer_value(json_array_get(r, 0)) == 1;
    int changed = json_integer_value(json_array_get(r, 1)) == 1;
    json_int_t nsets = json_integer_value(json_array_get(r, 2));
    json_t *o =
        json_pack("{s:s, s:b, s:b}", "identifier", op->id, "created", created, "changed", changed);
    log_info("event=ddm_declaration_put id=%s created=%d changed=%d sets=%lld", op->id, created,
             changed, (long long)nsets);
    if (changed && nsets > 0)
        api_ddm_set_job(o, op->app, "declaration");
    api_ddm_done(op, created ? 201 : 200, o);
}

static void api_ddm_decl_put(struct req *req, struct app *app, const char *id)
{
    char err[400], token[33], now[24];
    json_t *d = api_ddm_body(req);
    if (d == NULL)
        return;
    const char *ident = json_string_value(json_object_get(d, "Identifier"));
    if (ddm_check_declaration(d, err, sizeof(err)) != 0) {
        log_warn("event=ddm_declaration_refused id=%s reason=\"%s\"", id, err);
        req_fail(req, 400, err);
    } else if (strcmp(ident, id) != 0) {
        req_fail(req, 400, "Identifier must be the identifier in the path");
    } else {
        const struct ddm_type *t = ddm_schema_find(json_string_value(json_object_get(d, "Type")));
        char *json = ddm_check_canonical(d, token);
        snprintf(now, sizeof(now), "%lld", (long long)util_now_ms());
        const char *argv[] = {id, t->type, t->kind, token, json, now};
        struct api_ddm_op *op = api_ddm_op(req, app, id);
        store_ddm(app->store, STORE_DDM_DECL_PUT, 6, argv, NULL, api_ddm_on_decl_put, op);
        free(json);
    }
    json_decref(d);
}

static void api_ddm_on_decl_get(void *arg, int err, json_t *r)
{
    struct api_ddm_op *op = arg;
    if (api_ddm_failed(op, err))
        return;
    if (json_array_size(r) == 0) {
        req_fail(op->req, 404, "no such declaration");
        free(op);
        return;
    }
    json_t *h = api_ddm_hash(json_array_get(r, 0));
    json_t *decl = json_loads(json_string_value(json_object_get(h, "json")), 0, NULL);
    json_t *o =
        json_pack("{s:s, s:O, s:O, s:O, s:O, s:O, s:o, s:O}", "identifier", op->id, "type",
                  json_object_get(h, "type"), "kind", json_object_get(h, "kind"), "server_token",
                  json_object_get(h, "token"), "created", json_object_get(h, "created"), "updated",
                  json_object_get(h, "updated"), "declaration", decl != NULL ? decl : json_null(),
                  "sets", json_array_get(r, 1));
    json_decref(h);
    api_ddm_done(op, 200, o);
}

static void api_ddm_on_decl_del(void *arg, int err, json_t *r)
{
    struct api_ddm_op *op = arg;
    if (api_ddm_failed(op, err))
        return;
    json_int_t nsets = json_integer_value(r);
    if (nsets < 0) {
        req_fail(op->req, 404, "no such declaration");
    } else {
        log_info("event=ddm_declaration_deleted id=%s sets=%lld", op->id, (long long)nsets);
        if (nsets > 0)
            ddm_notify_changed(op->app, "declaration deleted", NULL);
        req_respond(op->req, 204, NULL, NULL, 0);
    }
    free(op);
}

void api_ddm_declaration(struct req *req, void *app)
{
    struct app *a = app;
    if (!api_authorized(req, app))
        return;
    const char *id = req_path(req) + strlen(API_DDM_DECLS);
    char now[24];
    if (!api_content_id_ok(id)) {
        req_fail(req, 400, "a declaration identifier is 1..200 of A-Z a-z 0-9 . _ @ + -");
        return;
    }
    snprintf(now, sizeof(now), "%lld", (long long)util_now_ms());
    const char *argv[] = {id, now};
    int m = req_method(req);
    if (m == HTTP_M_PUT)
        api_ddm_decl_put(req, a, id);
    else if (m == HTTP_M_GET)
        store_ddm(a->store, STORE_DDM_DECL_GET, 1, argv, NULL, api_ddm_on_decl_get,
                  api_ddm_op(req, app, id));
    else
        store_ddm(a->store, STORE_DDM_DECL_DEL, 2, argv, NULL, api_ddm_on_decl_del,
                  api_ddm_op(req, app, id));
}

/* ---- sets ---- */

static void api_ddm_on_set_list(void *arg, int err, json_t *r)
{
    struct api_ddm_op *op = arg;
    if (api_ddm_failed(op, err))
        return;
    json_t *out = json_array(), *e;
    size_t i;
    json_array_foreach(r, i, e)
    {
        const char *ev = json_string_value(json_array_get(e, 1));
        json_array_append_new(
            out, json_pack("{s:O, s:b, s:O, s:O, s:O, s:O}", "name", json_array_get(e, 0),
                           "everyone", ev != NULL && strcmp(ev, "1") == 0, "declarations",
                           json_array_get(e, 2), "targets", json_array_get(e, 3), "users",
                           json_array_get(e, 4), "updated", json_array_get(e, 5)));
    }
    api_ddm_done(op, 200, json_pack("{s:o}", "sets", out));
}

void api_ddm_sets(struct req *req, void *app)
{
    struct app *a = app;
    if (!api_authorized(req, app))
        return;
    store_ddm(a->store, STORE_DDM_SET_LIST, 0, NULL, NULL, api_ddm_on_set_list,
              api_ddm_op(req, app, NULL));
}

/* Collects the strings of a JSON array field, each checked by ok; NULL
 * with a message naming the bad entry. */
static const char **api_ddm_strings(json_t *body, const char *key, int (*ok)(const char *),
                                    size_t *n, char *why, size_t whylen)
{
    json_t *a = json_object_get(body, key), *e;
    size_t i;
    *n = 0;
    if (a == NULL)
        return xcalloc(1, sizeof(char *));
    if (!json_is_array(a) || json_array_size(a) > API_DDM_MAX_TARGETS) {
        snprintf(why, whylen, "%s must be an array of at most %d strings", key,
                 API_DDM_MAX_TARGETS);
        return NULL;
    }
    const char **v = xcalloc(json_array_size(a) + 1, sizeof(*v));
    json_array_foreach(a, i, e)
    {
        const char *s = json_string_value(e);
        if (s == NULL || !ok(s)) {
            snprintf(why, whylen, "%s[%zu] is not valid", key, i);
            free(v);
            return NULL;
        }
        v[(*n)++] = s;
    }
    return v;
}

static int api_ddm_id_ok(const char *s)
{
    return api_content_id_ok(s);
}

/* A UDID, or UDID:UserID for a user channel. */
static int api_ddm_target_ok(const char *s)
{
    const char *colon = strchr(s, ':');
    size_t n = colon != NULL ? (size_t)(colon - s) : strlen(s);
    if (!util_udid_valid(s, n))
        return 0;
    return colon == NULL ||
           (strlen(colon + 1) >= 1 && strlen(colon + 1) <= 128 &&
            strspn(colon + 1,
                   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._@") ==
                strlen(colon + 1));
}

static void api_ddm_on_set_put(void *arg, int err, json_t *r)
{
    struct api_ddm_op *op = arg;
    if (api_ddm_failed(op, err))
        return;
    json_t *unknown = json_array_get(r, 1);
    if (json_array_size(unknown) > 0) {
        char *list = json_dumps(unknown, JSON_COMPACT);
        char *why = xasprintf("unknown declarations: %s", list);
        req_fail(op->req, 400, why);
        free(why);
        free(list);
        free(op);
        return;
    }
    int created = json_integer_value(json_array_get(r, 0)) == 1;
    json_t *o = json_pack("{s:s, s:b}", "name", op->id, "created", created);
    log_info("event=ddm_set_put name=%s created=%d", op->id, created);
    api_ddm_set_job(o, op->app, "set");
    api_ddm_done(op, created ? 201 : 200, o);
}

static void api_ddm_set_put(struct req *req, struct app *app, const char *name)
{
    char why[200], now[24];
    size_t n;
    json_t *body = api_ddm_body(req);
    if (body == NULL)
        return;
    const char **ids =
        json_object_get(body, "declarations") == NULL
            ? NULL
            : api_ddm_strings(body, "declarations", api_ddm_id_ok, &n, why, sizeof(why));
    if (ids == NULL) {
        req_fail(req, 400,
                 json_object_get(body, "declarations") == NULL
                     ? "a set is {\"declarations\": [identifiers]}"
                     : why);
        json_decref(body);
        return;
    }
    snprintf(now, sizeof(now), "%lld", (long long)util_now_ms());
    const char **argv = xcalloc(n + 2, sizeof(*argv));
    argv[0] = name;
    argv[1] = now;
    memcpy(argv + 2, ids, n * sizeof(*argv));
    store_ddm(app->store, STORE_DDM_SET_PUT, (int)n + 2, argv, NULL, api_ddm_on_set_put,
              api_ddm_op(req, app, name));
    free(argv);
    free(ids);
    json_decref(body);
}

static void api_ddm_on_set_get(void *arg, int err, json_t *r)
{
    struct api_ddm_op *op = arg;
    if (api_ddm_failed(op, err))
        return;
    if (json_array_size(r) == 0) {
        req_fail(op->req, 404, "no such declaration set");
        free(op);
        return;
    }
    json_t *h = api_ddm_hash(json_array_get(r, 0));
    const char *ev = json_string_value(json_object_get(h, "everyone"));
    json_t *o =
        json_pack("{s:s, s:O, s:O, s:O, s:b, s:O, s:O}", "name", op->id, "declarations",
                  json_array_get(r, 1), "udids", json_array_get(r, 2), "users",
                  json_array_get(r, 3), "everyone", ev != NULL && strcmp(ev, "1") == 0, "created",
                  json_object_get(h, "created"), "updated", json_object_get(h, "updated"));
    json_decref(h);
    api_ddm_done(op, 200, o);
}

static void api_ddm_on_set_del(void *arg, int err, json_t *r)
{
    struct api_ddm_op *op = arg;
    if (api_ddm_failed(op, err))
        return;
    if (json_integer_value(r) != 1) {
        req_fail(op->req, 404, "no such declaration set");
    } else {
        log_info("event=ddm_set_deleted name=%s", op->id);
        ddm_notify_changed(op->app, "set deleted", NULL);
        req_respond(op->req, 204, NULL, NULL, 0);
    }
    free(op);
}

static void api_ddm_on_assign(void *arg, int err, json_t *r)
{
    struct api_ddm_op *op = arg;
    if (api_ddm_failed(op, err))
        return;
    if (json_is_string(r)) {
        req_fail(op->req, 404, "no such declaration set");
        free(op);
        return;
    }
    if (json_array_size(r) > 0) {
        char *list = json_dumps(r, JSON_COMPACT);
        char *why = xasprintf("unknown devices or users: %s", list);
        req_fail(op->req, 400, why);
        free(why);
        free(list);
        free(op);
        return;
    }
    json_t *o = json_pack("{s:s}", "name", op->id);
    log_info("event=ddm_set_assigned name=%s", op->id);
    api_ddm_set_job(o, op->app, "assignment");
    api_ddm_done(op, 200, o);
}

static int api_ddm_user_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= 64 &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._@-") == n;
}

static void api_ddm_assign(struct req *req, struct app *app, const char *name)
{
    char why[200], now[24], nt[16];
    size_t nu = 0, nus = 0;
    json_t *body = api_ddm_body(req);
    if (body == NULL)
        return;
    json_t *ev = json_object_get(body, "everyone");
    const char **udids = api_ddm_strings(body, "udids", api_ddm_target_ok, &nu, why, sizeof(why));
    const char **users =
        udids ? api_ddm_strings(body, "users", api_ddm_user_ok, &nus, why, sizeof(why)) : NULL;
    if (udids == NULL || users == NULL || (ev != NULL && !json_is_boolean(ev))) {
        req_fail(req, 400, udids && users ? "everyone must be a boolean" : why);
    } else {
        snprintf(now, sizeof(now), "%lld", (long long)util_now_ms());
        snprintf(nt, sizeof(nt), "%zu", nu);
        const char **argv = xcalloc(nu + nus + 4, sizeof(*argv));
        argv[0] = name;
        argv[1] = now;
        argv[2] = json_is_true(ev) ? "1" : "0";
        argv[3] = nt;
        memcpy(argv + 4, udids, nu * sizeof(*argv));
        memcpy(argv + 4 + nu, users, nus * sizeof(*argv));
        store_ddm(app->store, STORE_DDM_SET_ASSIGN, (int)(nu + nus + 4), argv, NULL,
                  api_ddm_on_assign, api_ddm_op(req, app, name));
        free(argv);
    }
    free(udids);
    free(users);
    json_decref(body);
}

void api_ddm_set(struct req *req, void *app)
{
    struct app *a = app;
    if (!api_authorized(req, app))
        return;
    char name[201];
    const char *rest = req_path(req) + strlen(API_DDM_SETS);
    const char *slash = strchr(rest, '/');
    int assignment = slash != NULL && strcmp(slash, "/assignment") == 0;
    size_t n = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
    snprintf(name, sizeof(name), "%.*s", (int)(n < 200 ? n : 200), rest);
    if (n > 200 || !api_content_id_ok(name) || (slash != NULL && !assignment)) {
        req_fail(req, 404, "no such declaration set (names are 1..200 of A-Z a-z 0-9 . _ @ + -)");
        return;
    }
    int m = req_method(req);
    const char *argv[] = {name};
    if (assignment && m == HTTP_M_PUT)
        api_ddm_assign(req, a, name);
    else if (assignment)
        req_fail(req, 405, "method not allowed");
    else if (m == HTTP_M_PUT)
        api_ddm_set_put(req, a, name);
    else if (m == HTTP_M_GET)
        store_ddm(a->store, STORE_DDM_SET_GET, 1, argv, NULL, api_ddm_on_set_get,
                  api_ddm_op(req, app, name));
    else
        store_ddm(a->store, STORE_DDM_SET_DEL, 1, argv, NULL, api_ddm_on_set_del,
                  api_ddm_op(req, app, name));
}

/* ---- status ---- */

int api_ddm_is_status(const char *path)
{
    size_t n = strlen(path);
    return strncmp(path, API_DDM_DEVICES, strlen(API_DDM_DEVICES)) == 0 && n > 7 &&
           strcmp(path + n - 7, "/status") == 0;
}

/* management.declarations again, from its per-declaration fields. */
static json_t *api_ddm_decl_status(json_t *fields)
{
    static const char *const kinds[][2] = {{"activation", "activations"},
                                           {"asset", "assets"},
                                           {"configuration", "configurations"},
                                           {"management", "management"}};
    json_t *o = json_object();
    for (size_t k = 0; k < ARRAY_LEN(kinds); k++)
        json_object_set_new(o, kinds[k][1], json_array());
    for (size_t i = 0; i + 1 < json_array_size(fields); i += 2) {
        const char *f = json_string_value(json_array_get(fields, i));
        json_t *v = json_loads(json_string_value(json_array_get(fields, i + 1)), 0, NULL);
        const char *slash = f != NULL ? strchr(f, '/') : NULL;
        for (size_t k = 0; slash != NULL && v != NULL && k < ARRAY_LEN(kinds); k++)
            if (strncmp(f, kinds[k][0], (size_t)(slash - f)) == 0 &&
                strlen(kinds[k][0]) == (size_t)(slash - f))
                json_array_append(json_object_get(o, kinds[k][1]), v);
        json_decref(v);
    }
    return o;
}

static void api_ddm_on_status(void *arg, int err, json_t *r)
{
    struct api_ddm_op *op = arg;
    if (api_ddm_failed(op, err))
        return;
    if (json_array_size(r) == 0) {
        req_fail(op->req, 404, "no declarative status for this enrollment (it never synced)");
        free(op);
        return;
    }
    json_t *en = api_ddm_hash(json_array_get(r, 0)), *items = json_object();
    json_t *st = json_array_get(r, 1);
    for (size_t i = 0; i + 1 < json_array_size(st); i += 2) {
        json_t *v = json_loads(json_string_value(json_array_get(st, i + 1)), JSON_DECODE_ANY, NULL);
        json_object_set_new(items, json_string_value(json_array_get(st, i)),
                            v != NULL ? v : json_null());
    }
    json_object_set_new(items, "management.declarations",
                        api_ddm_decl_status(json_array_get(r, 2)));
    json_t *o = json_pack("{s:s, s:o, s:o, s:O}", "enrollment", op->id, "ddm", en, "status_items",
                          items, "invalid_declarations", json_array_get(r, 3));
    api_ddm_done(op, 200, o);
}

void api_ddm_status(struct req *req, void *app)
{
    struct app *a = app;
    if (!api_authorized(req, app))
        return;
    const char *u = req_path(req) + strlen(API_DDM_DEVICES);
    size_t n = strlen(u) - strlen("/status");
    char *uid = req_query_param(req, "user_id");
    char eid[256];
    snprintf(eid, sizeof(eid), "%.*s%s%s", (int)(n < 64 ? n : 64), u, uid ? ":" : "",
             uid ? uid : "");
    if (!util_udid_valid(u, n) || !api_ddm_target_ok(eid)) {
        req_fail(req, 400, "a UDID is 1..64 of A-Z a-z 0-9 . _ -, a user_id 1..128 of those and @");
    } else {
        char udid[65];
        snprintf(udid, sizeof(udid), "%.*s", (int)n, u);
        const char *argv[] = {udid, uid ? uid : ""};
        store_ddm(a->store, STORE_DDM_STATUS_GET, 2, argv, NULL, api_ddm_on_status,
                  api_ddm_op(req, app, eid));
    }
    free(uid);
}

static void api_ddm_on_fleet(void *arg, int err, json_t *r)
{
    struct api_ddm_op *op = arg;
    if (api_ddm_failed(op, err))
        return;
    json_t *out = json_array(), *e;
    size_t i;
    json_array_foreach(json_array_get(r, 2), i, e)
    {
        json_t *v = json_array_get(e, 1);
        json_t *val = json_is_string(v) ? json_loads(json_string_value(v), JSON_DECODE_ANY, NULL)
                                        : json_incref(v);
        json_array_append_new(out, json_pack("{s:O, s:o}", "enrollment", json_array_get(e, 0),
                                             "value", val != NULL ? val : json_null()));
    }
    api_ddm_done(op, 200,
                 json_pack("{s:o, s:O, s:O}", "enrollments", out, "next_offset",
                           json_array_get(r, 0), "total", json_array_get(r, 1)));
}

static long api_ddm_long(struct req *req, const char *key, long def, long lo, long hi)
{
    char *v = req_query_param(req, key), *end = NULL;
    long n = v != NULL ? strtol(v, &end, 10) : def;
    if (v != NULL && (*v == '\0' || *end != '\0'))
        n = lo - 1;
    free(v);
    return n < lo || n > hi ? lo - 1 : n;
}

void api_ddm_fleet(struct req *req, void *app)
{
    struct app *a = app;
    if (!api_authorized(req, app))
        return;
    char *failed = req_query_param(req, "failed"), *item = req_query_param(req, "item");
    char *value = req_query_param(req, "value"), *not = req_query_param(req, "not");
    char *jv = req_query_param(req, "json");
    long offset = api_ddm_long(req, "offset", 0, 0, 1L << 40);
    long limit = api_ddm_long(req, "limit", 100, 1, 1000);
    char off[24], lim[24], budget[16];
    json_t *want = NULL;
    if (jv != NULL)
        want = json_loads(jv, JSON_DECODE_ANY, NULL); /* a value that is not a string */
    else if (value != NULL)
        want = json_string(value);
    char *wants = want != NULL ? json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (offset < 0 || limit < 1) {
        req_fail(req, 400, "offset must be >= 0 and limit 1..1000");
    } else if (failed == NULL && (item == NULL || want == NULL || strlen(item) > 200)) {
        req_fail(req, 400,
                 "give failed=1, or item=<status item> and value=<text> or "
                 "json=<JSON> (not=1: devices where it differs)");
    } else {
        snprintf(off, sizeof(off), "%ld", offset);
        snprintf(lim, sizeof(lim), "%ld", limit);
        snprintf(budget, sizeof(budget), "%d", API_DDM_FLEET_BUDGET);
        const char *mode = failed != NULL ? "failed" : not != NULL ? "ne" : "eq";
        const char *argv[] = {mode, item ? item : "", wants ? wants : "", off, lim, budget};
        store_ddm(a->store, STORE_DDM_FLEET, 6, argv, NULL, api_ddm_on_fleet,
                  api_ddm_op(req, app, NULL));
    }
    json_decref(want);
    free(wants);
    free(failed);
    free(item);
    free(value);
    free(not );
    free(jv);
}

/* ---- asset data: PUT/GET/DELETE /v1/assets/{name}, GET /v1/assets ---- */

#define API_DDM_ASSETS "/v1/assets/"

static void api_ddm_on_asset_list(void *arg, int err, json_t *r)
{
    struct api_ddm_op *op = arg;
    if (api_ddm_failed(op, err))
        return;
    json_t *out = json_array(), *e;
    size_t i;
    json_array_foreach(r, i, e)
    {
        json_array_append_new(
            out,
            json_pack("{s:O, s:O, s:O, s:I, s:O}", "name", json_array_get(e, 0), "content_type",
                      json_array_get(e, 1), "sha256", json_array_get(e, 2), "size",
                      (json_int_t)strtoll(json_string_value(json_array_get(e, 3)) ?: "0", NULL, 10),
                      "updated", json_array_get(e, 4)));
    }
    api_ddm_done(op, 200, json_pack("{s:o}", "assets", out));
}

void api_ddm_assets(struct req *req, void *app)
{
    struct app *a = app;
    if (!api_authorized(req, app))
        return;
    store_ddm(a->store, STORE_DDM_ASSET_LIST, 0, NULL, NULL, api_ddm_on_asset_list,
              api_ddm_op(req, app, NULL));
}

/* What an asset declaration's Reference takes, and the URL devices fetch. */
static json_t *api_ddm_asset_ref(struct api_ddm_op *op, const char *ct, const char *sha,
                                 json_int_t size)
{
    char *url = xasprintf("%s/v1/assets/%s", op->app->cf->mdm_url, op->id);
    json_t *o = json_pack("{s:s, s:s, s:{s:s, s:s, s:I, s:s}, s:{s:s}}", "name", op->id, "url", url,
                          "Reference", "DataURL", url, "ContentType", ct, "Size", size,
                          "Hash-SHA-256", sha, "Authentication", "Type", "MDM");
    free(url);
    return o;
}

struct api_ddm_asset_put {
    struct api_ddm_op op;
    char ct[128];
    char sha[65];
    json_int_t size;
};

static void api_ddm_on_asset_put(void *arg, int err, json_t *r)
{
    struct api_ddm_asset_put *p = arg;
    if (err != MDMD_OK) {
        api_fail(p->op.req, err);
        free(p);
        return;
    }
    int created = json_integer_value(r) == 1;
    log_info("event=asset_stored name=%s bytes=%lld created=%d", p->op.id, (long long)p->size,
             created);
    json_t *o = api_ddm_asset_ref(&p->op, p->ct, p->sha, p->size);
    json_object_set_new(o, "created", json_boolean(created));
    api_json(p->op.req, created ? 201 : 200, o);
    free(p);
}

static void api_ddm_asset_put(struct req *req, struct app *app, const char *name)
{
    size_t n;
    const unsigned char *body = req_body(req, &n);
    const char *ct = req_header(req, "Content-Type");
    unsigned char md[32];
    unsigned int mdlen = 0;
    char now[24], size[24];
    if (n == 0) {
        req_fail(req, 400, "the body is the asset's data (not empty)");
        return;
    }
    struct api_ddm_asset_put *p = xcalloc(1, sizeof(*p));
    p->op = (struct api_ddm_op){req, app, ""};
    snprintf(p->op.id, sizeof(p->op.id), "%s", name);
    snprintf(p->ct, sizeof(p->ct), "%s", ct != NULL ? ct : "application/octet-stream");
    EVP_Digest(body, n, md, &mdlen, EVP_sha256(), NULL);
    util_hex(md, 32, p->sha);
    p->size = (json_int_t)n;
    snprintf(now, sizeof(now), "%lld", (long long)util_now_ms());
    snprintf(size, sizeof(size), "%zu", n);
    const char *argv[] = {name, p->ct, p->sha, size, now, (const char *)body};
    const size_t lens[] = {strlen(name), strlen(p->ct), 64, strlen(size), strlen(now), n};
    store_ddm(app->store, STORE_DDM_ASSET_PUT, 6, argv, lens, api_ddm_on_asset_put, p);
}

static void api_ddm_on_asset_get(void *arg, int err, json_t *r)
{
    struct api_ddm_op *op = arg;
    if (api_ddm_failed(op, err))
        return;
    if (json_array_size(r) == 0) {
        req_fail(op->req, 404, "no such asset");
        free(op);
        return;
    }
    json_t *o = api_ddm_asset_ref(
        op, json_string_value(json_array_get(r, 0)), json_string_value(json_array_get(r, 1)),
        (json_int_t)strtoll(json_string_value(json_array_get(r, 2)) ?: "0", NULL, 10));
    json_object_set(o, "created", json_array_get(r, 3));
    json_object_set(o, "updated", json_array_get(r, 4));
    api_ddm_done(op, 200, o);
}

static void api_ddm_on_asset_del(void *arg, int err, json_t *r)
{
    struct api_ddm_op *op = arg;
    if (api_ddm_failed(op, err))
        return;
    if (json_integer_value(r) != 1)
        req_fail(op->req, 404, "no such asset");
    else
        req_respond(op->req, 204, NULL, NULL, 0);
    free(op);
}

void api_ddm_asset(struct req *req, void *app)
{
    struct app *a = app;
    if (!api_authorized(req, app))
        return;
    const char *name = req_path(req) + strlen(API_DDM_ASSETS);
    if (!ddm_asset_name_ok(name)) {
        req_fail(req, 400, "an asset name is 1..200 of A-Z a-z 0-9 . _ @ + -");
        return;
    }
    const char *argv[] = {name};
    int m = req_method(req);
    if (m == HTTP_M_PUT)
        api_ddm_asset_put(req, a, name);
    else if (m == HTTP_M_GET)
        store_ddm(a->store, STORE_DDM_ASSET_GET, 1, argv, NULL, api_ddm_on_asset_get,
                  api_ddm_op(req, app, name));
    else
        store_ddm(a->store, STORE_DDM_ASSET_DEL, 1, argv, NULL, api_ddm_on_asset_del,
                  api_ddm_op(req, app, name));
}
