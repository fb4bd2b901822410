/* ddm_checkin.c: the DeclarativeManagement check-in (ddm.h; Apple's
 * mdm/checkin/declarativemanagement.yaml and declarative/protocol).  One
 * Redis call per request: the script checks the device's identity as every
 * device request does, then reads or folds. */
#include "ddm.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../core/app.h"
#include "../../core/conf.h"
#include "../../core/http.h"
#include "../../core/log.h"
#include "../../core/util.h"
#include "../../store/store_ddm.h"
#include "../../store/store_mdm.h"
#include "../apple/apple.h"

#define DDM_USER_ID_MAX 128
#define DDM_STATUS_DEPTH 8 /* status item names have at most a few dots */

enum ddm_endpoint { DDM_TOKENS, DDM_ITEMS, DDM_FETCH, DDM_STATUS };

struct ddm_checkin {
    struct req *req;
    struct app *app;
    enum ddm_endpoint ep;
    char udid[65];
    char user_id[DDM_USER_ID_MAX + 1];
    int cn_differs;
};

/* The declaration kinds, as in Endpoint paths and DeclarationItemsResponse. */
static const char *const ddm_checkin_kinds[][3] = {
    {"activation", "Activations", "activations"},
    {"asset", "Assets", "assets"},
    {"configuration", "Configurations", "configurations"},
    {"management", "Management", "management"},
};

static void ddm_checkin_json(struct req *req, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    req_respond(req, 200, "application/json", s, strlen(s));
    free(s);
    json_decref(j);
}

/* 1 when it answered: a store error (503) or an identity failure (403). */
static int ddm_checkin_refused(struct ddm_checkin *c, int err, json_t *reply)
{
    if (err != MDMD_OK) {
        log_warn("event=device_request_failed udid=%s reason=redis_%s", c->udid,
                 mdmd_strerror(err));
        req_respond(c->req, 503, NULL, NULL, 0);
        return 1;
    }
    int ident = store_ddm_ident(reply);
    if (ident == STORE_ID_OK)
        return 0;
    if (ident == STORE_ID_CERT_MISMATCH && c->cn_differs)
        ident = STORE_ID_CN_MISMATCH;
    log_warn("event=device_refused udid=%s peer=%s reason=%s endpoint=ddm", c->udid,
             req_peer(c->req), store_ident_str(ident));
    req_respond(c->req, 403, NULL, NULL, 0);
    return 1;
}

static void ddm_checkin_tokens(struct ddm_checkin *c, json_t *r)
{
    ddm_checkin_json(c->req, json_pack("{s:{s:O, s:O}}", "SyncTokens", "DeclarationsToken",
                                       json_array_get(r, 1), "Timestamp", json_array_get(r, 2)));
}

static void ddm_checkin_items(struct ddm_checkin *c, json_t *r)
{
    json_t *decls = json_object(), *it;
    size_t i;
    for (size_t k = 0; k < ARRAY_LEN(ddm_checkin_kinds); k++)
        json_object_set_new(decls, ddm_checkin_kinds[k][1], json_array());
    json_array_foreach(json_array_get(r, 2), i, it)
    {
        const char *kind = json_string_value(json_array_get(it, 2));
        for (size_t k = 0; kind != NULL && k < ARRAY_LEN(ddm_checkin_kinds); k++)
            if (strcmp(kind, ddm_checkin_kinds[k][0]) == 0)
                json_array_append_new(json_object_get(decls, ddm_checkin_kinds[k][1]),
                                      json_pack("{s:O, s:O}", "Identifier", json_array_get(it, 0),
                                                "ServerToken", json_array_get(it, 3)));
    }
    ddm_checkin_json(c->req, json_pack("{s:o, s:O}", "Declarations", decls, "DeclarationsToken",
                                       json_array_get(r, 1)));
}

static void ddm_checkin_on_reply(void *arg, int err, json_t *r)
{
    struct ddm_checkin *c = arg;
    if (ddm_checkin_refused(c, err, r)) {
        free(c);
        return;
    }
    switch (c->ep) {
    case DDM_TOKENS: ddm_checkin_tokens(c, r); break;
    case DDM_ITEMS: ddm_checkin_items(c, r); break;
    case DDM_FETCH: {
        const char *json = json_string_value(json_array_get(r, 1));
        if (json == NULL)
            req_fail(c->req, 404, "no such declaration for this enrollment");
        else
            req_respond(c->req, 200, "application/json", json, strlen(json));
        break;
    }
    case DDM_STATUS:
        log_info("event=ddm_status udid=%s user_id=%s changed=%s invalid=%lld", c->udid,
                 *c->user_id ? c->user_id : "-", json_string_value(json_array_get(r, 1)),
                 (long long)json_integer_value(json_array_get(r, 2)));
        req_respond(c->req, 200, NULL, NULL, 0);
        break;
    }
    free(c);
}

/* ---- status reports ---- */

struct ddm_checkin_fold { /* the report, flattened into script arguments */
    const char **v;
    size_t *len;
    int n, cap;
    char **owned;
    int nowned;
    int nitems;
    json_t *decls; /* [[field, valid, json]...] */
};

static void ddm_checkin_fold_push(struct ddm_checkin_fold *f, char *s, int own)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 32;
        f->v = xrealloc(f->v, sizeof(*f->v) * (size_t)f->cap);
        f->len = xrealloc(f->len, sizeof(*f->len) * (size_t)f->cap);
        f->owned = xrealloc(f->owned, sizeof(*f->owned) * (size_t)f->cap);
    }
    f->v[f->n] = s;
    f->len[f->n++] = strlen(s);
    if (own)
        f->owned[f->nowned++] = s;
}

/* management.declarations: one entry per declaration, "kind/identifier". */
static void ddm_checkin_fold_decls(struct ddm_checkin_fold *f, json_t *v)
{
    for (size_t k = 0; k < ARRAY_LEN(ddm_checkin_kinds); k++) {
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(v, ddm_checkin_kinds[k][2]), i, e)
        {
            const char *id = json_string_value(json_object_get(e, "identifier"));
            const char *valid = json_string_value(json_object_get(e, "valid"));
            if (id == NULL || !json_is_object(e))
                continue;
            char *field = xasprintf("%s/%s", ddm_checkin_kinds[k][0], id);
            json_array_append_new(f->decls, json_pack("{s:s, s:s, s:O}", "f", field, "valid",
                                                      valid != NULL ? valid : "unknown", "j", e));
            free(field);
        }
    }
}

/* StatusItems nest by the dots of the item names ("device" ->
 * "operating-system" -> "version"): walk down to the names Apple defines;
 * a leaf under a name it does not define is kept under its path. */
static void ddm_checkin_fold_walk(struct ddm_checkin_fold *f, json_t *o, const char *path,
                                  int depth)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        char *name = *path ? xasprintf("%s.%s", path, k) : xstrdup(k);
        if (strcmp(name, "management.declarations") == 0 && json_is_object(v)) {
            ddm_checkin_fold_decls(f, v);
        } else if (!ddm_schema_status_item(name) && json_is_object(v) && depth < DDM_STATUS_DEPTH) {
            ddm_checkin_fold_walk(f, v, name, depth + 1);
        } else {
            ddm_checkin_fold_push(f, xstrdup(name), 1);
            ddm_checkin_fold_push(f, json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY), 1);
            f->nitems++;
        }
        free(name);
    }
}

static json_t *ddm_checkin_report(plist_t body, char *why, size_t whylen)
{
    plist_t data = plist_dict_get_item(body, "Data");
    char *bytes = NULL;
    uint64_t n = 0;
    json_error_t jerr;
    if (data == NULL || plist_get_node_type(data) != PLIST_DATA) {
        snprintf(why, whylen, "status needs Data");
        return NULL;
    }
    plist_get_data_val(data, &bytes, &n);
    json_t *rep = json_loadb(bytes, (size_t)n, 0, &jerr);
    free(bytes);
    if (rep == NULL || !json_is_object(json_object_get(rep, "StatusItems"))) {
        snprintf(why, whylen, "Data must be a StatusReport: JSON with StatusItems");
        json_decref(rep);
        return NULL;
    }
    return rep;
}

static void ddm_checkin_status(struct ddm_checkin *c, plist_t body, const char *fp)
{
    char why[128], now[24], hist[16], nitems[16] = "0";
    json_t *rep = ddm_checkin_report(body, why, sizeof(why));
    if (rep == NULL) {
        log_warn("event=ddm_bad_status udid=%s reason=\"%s\"", c->udid, why);
        req_fail(c->req, 400, why);
        free(c);
        return;
    }
    struct ddm_checkin_fold f = {0};
    f.decls = json_array();
    snprintf(now, sizeof(now), "%lld", (long long)util_now_ms());
    snprintf(hist, sizeof(hist), "%d", c->app->cf->redis_history_len);
    ddm_checkin_fold_push(&f, c->udid, 0);
    ddm_checkin_fold_push(&f, c->user_id, 0);
    ddm_checkin_fold_push(&f, (char *)fp, 0);
    ddm_checkin_fold_push(&f, now, 0);
    ddm_checkin_fold_push(&f, hist, 0);
    ddm_checkin_fold_push(&f, json_is_true(json_object_get(rep, "FullReport")) ? "1" : "0", 0);
    ddm_checkin_fold_push(&f, json_dumps(rep, JSON_COMPACT), 1);
    json_t *errs = json_object_get(rep, "Errors");
    if (errs != NULL)
        ddm_checkin_fold_push(&f, json_dumps(errs, JSON_COMPACT | JSON_ENCODE_ANY), 1);
    else
        ddm_checkin_fold_push(&f, "[]", 0);
    int at = f.n;
    ddm_checkin_fold_push(&f, nitems, 0);
    ddm_checkin_fold_walk(&f, json_object_get(rep, "StatusItems"), "", 0);
    snprintf(nitems, sizeof(nitems), "%d", f.nitems);
    f.len[at] = strlen(nitems);
    size_t i;
    json_t *d;
    json_array_foreach(f.decls, i, d)
    {
        ddm_checkin_fold_push(&f, (char *)json_string_value(json_object_get(d, "f")), 0);
        ddm_checkin_fold_push(&f, (char *)json_string_value(json_object_get(d, "valid")), 0);
        ddm_checkin_fold_push(&f, json_dumps(json_object_get(d, "j"), JSON_COMPACT), 1);
    }
    store_ddm(c->app->store, STORE_DDM_STATUS, f.n, f.v, f.len, ddm_checkin_on_reply, c);
    for (int k = 0; k < f.nowned; k++)
        free(f.owned[k]);
    free(f.owned);
    free(f.v);
    free(f.len);
    json_decref(f.decls);
    json_decref(rep);
}

/* ---- the message ---- */

static int ddm_checkin_user_id_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= DDM_USER_ID_MAX &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._@") == n;
}

static void ddm_checkin_bad(struct ddm_checkin *c, const char *why)
{
    log_warn("event=ddm_bad_request udid=%s reason=\"%s\"", c->udid, why);
    req_fail(c->req, 400, why);
    free(c);
}

static void ddm_checkin_iso_now(char out[32])
{
    time_t t = (time_t)(util_now_ms() / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* What an identifier may be (it goes into key names): as api_content_id_ok. */
static int ddm_checkin_id_ok(const char *id)
{
    size_t n = strlen(id);
    return n >= 1 && n <= 200 &&
           strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._@+-") == n;
}

/* Endpoint declaration/<kind>/<identifier>: kind and identifier checked. */
static int ddm_checkin_fetch_args(const char *ep, char *kind, size_t kindlen, const char **id)
{
    if (strncmp(ep, "declaration/", 12) != 0)
        return -1;
    const char *k = ep + 12, *slash = strchr(k, '/');
    if (slash == NULL || (size_t)(slash - k) >= kindlen)
        return -1;
    snprintf(kind, kindlen, "%.*s", (int)(slash - k), k);
    *id = slash + 1;
    for (size_t i = 0; i < ARRAY_LEN(ddm_checkin_kinds); i++)
        if (strcmp(kind, ddm_checkin_kinds[i][0]) == 0)
            return ddm_checkin_id_ok(*id) ? 0 : -1;
    return -1;
}

void ddm_checkin(struct req *req, struct app *app, plist_t body, const char *udid, const char *fp,
                 int cn_differs)
{
    struct ddm_checkin *c = xcalloc(1, sizeof(*c));
    char now[24], iso[32], kind[16];
    const char *id = NULL;
    c->req = req;
    c->app = app;
    c->cn_differs = cn_differs;
    snprintf(c->udid, sizeof(c->udid), "%s", udid);
    plist_t ep_node = plist_dict_get_item(body, "Endpoint");
    plist_t uid_node = plist_dict_get_item(body, "UserID");
    const char *ep = ep_node != NULL && plist_get_node_type(ep_node) == PLIST_STRING
                         ? plist_get_string_ptr(ep_node, NULL)
                         : NULL;
    if (uid_node != NULL) {
        const char *uid = plist_get_node_type(uid_node) == PLIST_STRING
                              ? plist_get_string_ptr(uid_node, NULL)
                              : "";
        if (!ddm_checkin_user_id_ok(uid)) {
            ddm_checkin_bad(c, "UserID must be 1..128 of A-Z a-z 0-9 - . _ @");
            return;
        }
        snprintf(c->user_id, sizeof(c->user_id), "%s", uid);
    }
    if (ep == NULL) {
        ddm_checkin_bad(c, "DeclarativeManagement needs Endpoint");
        return;
    }
    snprintf(now, sizeof(now), "%lld", (long long)util_now_ms());
    ddm_checkin_iso_now(iso);
    const char *argv[] = {c->udid, c->user_id, fp, now, iso, NULL};
    if (strcmp(ep, "tokens") == 0 || strcmp(ep, "declaration-items") == 0) {
        c->ep = ep[0] == 't' ? DDM_TOKENS : DDM_ITEMS;
        store_ddm(app->store, c->ep == DDM_TOKENS ? STORE_DDM_TOKENS : STORE_DDM_ITEMS, 5, argv,
                  NULL, ddm_checkin_on_reply, c);
    } else if (strcmp(ep, "status") == 0) {
        c->ep = DDM_STATUS;
        ddm_checkin_status(c, body, fp);
    } else if (ddm_checkin_fetch_args(ep, kind, sizeof(kind), &id) == 0) {
        c->ep = DDM_FETCH;
        argv[4] = kind;
        argv[5] = id;
        store_ddm(app->store, STORE_DDM_FETCH, 6, argv, NULL, ddm_checkin_on_reply, c);
    } else {
        ddm_checkin_bad(c, "Endpoint must be tokens, declaration-items, status or "
                           "declaration/<activation|asset|configuration|management>/<identifier>");
    }
}
