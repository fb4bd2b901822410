/* api_content.c: configuration profiles, provisioning profiles and apps over
 * the admin REST API (api.h).  One generic set of handlers, driven by
 * a table of the three kinds; each kind brings its own upload parser. */
#include "api.h"

#include <jansson.h>
#include <plist/plist.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../ca/ca.h"
#include "../../core/app.h"
#include "../../core/http.h"
#include "../../core/log.h"
#include "../../core/util.h"
#include "../../store/store_content.h"
#include "../../store/store_users.h"
#include "../apple/apple.h"

#define API_CONTENT_ID_MAX 200
#define API_CONTENT_FIELDS 12
#define API_CONTENT_MAX_USERS 10000       /* per assignment */
#define API_CONTENT_APPLE_EPOCH 978307200 /* 2001-01-01, plist dates count from it */

/* An upload, parsed: its id and the fields to store. */
struct api_content_new {
    char id[API_CONTENT_ID_MAX + 1];
    struct store_kv f[API_CONTENT_FIELDS];
    size_t n;
    char *owned[API_CONTENT_FIELDS];
    size_t nowned;
};

typedef int api_content_parse_fn(struct api_content_new *nw, const unsigned char *body, size_t len,
                                 char *err, size_t errlen);

struct api_content_kind {
    int kind;              /* enum store_content_kind */
    const char *prefix;    /* "/v1/profiles/" */
    const char *list_name; /* the JSON array of the list */
    const char *id_name;   /* what the id is called in JSON */
    const char *raw_type;  /* Content-Type of ?raw=1; NULL: no raw form */
    api_content_parse_fn *parse;
};

int api_content_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > API_CONTENT_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("._@+-", c) != NULL))
            return 0;
    }
    return 1;
}

/* ---- building the fields of an upload ---- */

static void api_content_field(struct api_content_new *nw, const char *key, const char *val,
                              size_t len)
{
    if (nw->n < API_CONTENT_FIELDS)
        nw->f[nw->n++] = (struct store_kv){key, val, len};
}

/* Takes s (freed with nw); NULL adds nothing. */
static void api_content_field_take(struct api_content_new *nw, const char *key, char *s)
{
    if (s == NULL || nw->nowned == API_CONTENT_FIELDS) {
        free(s);
        return;
    }
    nw->owned[nw->nowned++] = s;
    api_content_field(nw, key, s, strlen(s));
}

static void api_content_new_clear(struct api_content_new *nw)
{
    for (size_t i = 0; i < nw->nowned; i++)
        free(nw->owned[i]);
    nw->nowned = nw->n = 0;
}

/* The date dict[key] as ISO-8601 UTC (caller frees), or NULL. */
static char *api_content_date(plist_t dict, const char *key)
{
    plist_t v = plist_dict_get_item(dict, key);
    int32_t sec = 0, usec = 0;
    char buf[32];
    struct tm tm;
    if (v == NULL || plist_get_node_type(v) != PLIST_DATE)
        return NULL;
    plist_get_date_val(v, &sec, &usec);
    time_t t = (time_t)sec + API_CONTENT_APPLE_EPOCH;
    if (gmtime_r(&t, &tm) == NULL || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return NULL;
    return xstrdup(buf);
}

/* A plist from an upload: plain (XML or binary) or CMS-signed (DER).  The
 * signature of a signed one is checked against the certificate it carries
 * (integrity; no trust store: the device judges the signer).  *is_signed
 * says which.  NULL when it is neither. */
static plist_t api_content_open(const unsigned char *body, size_t len, int *is_signed)
{
    unsigned char *content = NULL;
    size_t clen = 0;
    *is_signed = len > 0 && body[0] == 0x30; /* a DER SEQUENCE: CMS, not a plist */
    if (!*is_signed)
        return apple_plist_parse(body, len);
    if (ca_cms_verify(body, len, NULL, &content, &clen, NULL) != 0)
        return NULL;
    plist_t p = apple_plist_parse(content, clen);
    free(content);
    return p;
}

/* ---- the three upload parsers ---- */

static int api_content_parse_profile(struct api_content_new *nw, const unsigned char *body,
                                     size_t len, char *err, size_t errlen)
{
    int is_signed, rc = -1;
    plist_t p = api_content_open(body, len, &is_signed);
    char *type = NULL, *id = NULL;
    if (p == NULL || plist_get_node_type(p) != PLIST_DICT)
        snprintf(err, errlen,
                 is_signed ? "the body is CMS-signed, but its signature does not "
                             "verify or it does not hold a plist dictionary"
                           : "the body is not a plist dictionary (XML or binary) "
                             "nor a CMS-signed one");
    else if ((type = apple_plist_dict_string(p, "PayloadType")) == NULL ||
             strcmp(type, "Configuration") != 0)
        snprintf(err, errlen, "PayloadType must be Configuration (found %.40s)",
                 type != NULL ? type : "none");
    else if ((id = apple_plist_dict_string(p, "PayloadIdentifier")) == NULL || *id == '\0')
        snprintf(err, errlen, "PayloadIdentifier is missing");
    else if (!api_content_id_ok(id))
        snprintf(err, errlen,
                 "PayloadIdentifier must be 1 to 200 characters of A-Z a-z 0-9 "
                 ". _ @ + -");
    else {
        snprintf(nw->id, sizeof(nw->id), "%s", id);
        api_content_field(nw, "body", (const char *)body, len);
        api_content_field(nw, "signed", is_signed ? "1" : "0", 1);
        api_content_field_take(nw, "name", apple_plist_dict_string(p, "PayloadDisplayName"));
        api_content_field_take(nw, "payload_uuid", apple_plist_dict_string(p, "PayloadUUID"));
        api_content_field_take(nw, "size", xasprintf("%zu", len));
        rc = 0;
    }
    free(type);
    free(id);
    plist_free(p);
    return rc;
}

static int api_content_uuid_ok(const char *s)
{
    if (strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : strchr("0123456789abcdefABCDEF", s[i]) == NULL || s[i] == 0)
            return 0;
    }
    return 1;
}

static int api_content_parse_provprofile(struct api_content_new *nw, const unsigned char *body,
                                         size_t len, char *err, size_t errlen)
{
    int is_signed, rc = -1;
    plist_t p = api_content_open(body, len, &is_signed);
    char *uuid = NULL;
    if (!is_signed)
        snprintf(err, errlen,
                 "a provisioning profile must be a CMS-signed plist "
                 "(.mobileprovision, DER)");
    else if (p == NULL || plist_get_node_type(p) != PLIST_DICT)
        snprintf(err, errlen,
                 "the CMS signature does not verify or the content is not a plist "
                 "dictionary");
    else if ((uuid = apple_plist_dict_string(p, "UUID")) == NULL)
        snprintf(err, errlen, "the provisioning profile has no UUID");
    else if (!api_content_uuid_ok(uuid))
        snprintf(err, errlen, "the provisioning profile's UUID is not a UUID");
    else {
        snprintf(nw->id, sizeof(nw->id), "%s", uuid);
        api_content_field(nw, "body", (const char *)body, len);
        api_content_field_take(nw, "name", apple_plist_dict_string(p, "Name"));
        api_content_field_take(nw, "app_id_name", apple_plist_dict_string(p, "AppIDName"));
        api_content_field_take(nw, "team_name", apple_plist_dict_string(p, "TeamName"));
        api_content_field_take(nw, "expires", api_content_date(p, "ExpirationDate"));
        api_content_field_take(nw, "size", xasprintf("%zu", len));
        rc = 0;
    }
    free(uuid);
    plist_free(p);
    return rc;
}

/* An https URL of printable ASCII without spaces (it goes into a plist the
 * device fetches: iOS only installs manifests over https). */
static int api_content_https_ok(const char *u)
{
    size_t n = strlen(u);
    if (n <= 8 || n > 2048 || strncmp(u, "https://", 8) != 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)u[i] <= ' ' || (unsigned char)u[i] >= 0x7f)
            return 0;
    return 1;
}

static int api_content_app_fields(struct api_content_new *nw, json_t *j, char *err, size_t errlen)
{
    const char *id = json_string_value(json_object_get(j, "identifier"));
    json_t *url = json_object_get(j, "manifest_url");
    json_t *store = json_object_get(j, "itunes_store_id"), *name = json_object_get(j, "name");
    const char *u = json_string_value(url);
    if (id == NULL || !api_content_id_ok(id))
        snprintf(err, errlen,
                 "identifier must be a bundle identifier (1 to 200 characters of "
                 "A-Z a-z 0-9 . _ @ + -)");
    else if ((url == NULL) == (store == NULL))
        snprintf(err, errlen, "give exactly one of manifest_url and itunes_store_id");
    else if (url != NULL && (u == NULL || !api_content_https_ok(u)))
        snprintf(err, errlen, "manifest_url must be an https:// URL");
    else if (store != NULL && (!json_is_integer(store) || json_integer_value(store) <= 0))
        snprintf(err, errlen, "itunes_store_id must be a positive integer");
    else if (name != NULL && !json_is_string(name))
        snprintf(err, errlen, "name must be a string");
    else {
        snprintf(nw->id, sizeof(nw->id), "%s", id);
        if (url != NULL)
            api_content_field_take(nw, "manifest_url", xstrdup(u));
        else
            api_content_field_take(nw, "itunes_store_id",
                                   xasprintf("%lld", (long long)json_integer_value(store)));
        if (name != NULL)
            api_content_field_take(nw, "name", xstrdup(json_string_value(name)));
        return 0;
    }
    return -1;
}

static int api_content_parse_app(struct api_content_new *nw, const unsigned char *body, size_t len,
                                 char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *j = json_loadb((const char *)body, len, 0, &jerr);
    int rc = -1;
    if (j == NULL || !json_is_object(j))
        snprintf(err, errlen, "body must be a JSON object");
    else
        rc = api_content_app_fields(nw, j, err, errlen);
    json_decref(j);
    return rc;
}

static const struct api_content_kind api_content_kinds[] = {
    {STORE_CONTENT_PROFILE, "/v1/profiles/", "profiles", "identifier",
     "application/x-apple-aspen-config", api_content_parse_profile},
    {STORE_CONTENT_PROVPROFILE, "/v1/provisioning-profiles/", "provisioning_profiles", "uuid",
     "application/octet-stream", api_content_parse_provprofile},
    {STORE_CONTENT_APP, "/v1/apps/", "apps", "identifier", NULL, api_content_parse_app},
};

/* ---- JSON views ---- */

static int api_content_is(const char *key, const char *const *set)
{
    for (; *set != NULL; set++)
        if (strcmp(key, *set) == 0)
            return 1;
    return 0;
}

/* One item as JSON: numbers and flags typed, the body as base64 when asked. */
static json_t *api_content_json(const struct api_content_kind *k, const char *id,
                                const struct store_content_item *it, int with_body)
{
    static const char *const nums[] = {"created", "updated", "size", "itunes_store_id", NULL};
    static const char *const flags[] = {"everyone", "signed", NULL};
    json_t *o = json_object(), *users = json_array();
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, k->id_name, json_string(id));
    for (size_t i = 0; i < it->n; i++) {
        const struct store_kv *kv = &it->kv[i];
        json_t *v;
        if (strcmp(kv->key, "id") == 0 || (strcmp(kv->key, "body") == 0 && !with_body))
            continue;
        if (strcmp(kv->key, "body") == 0) {
            char *b = apple_plist_base64((const unsigned char *)kv->val, kv->len);
            v = json_string(b);
            free(b);
        } else if (api_content_is(kv->key, nums))
            v = json_integer((json_int_t)strtoll(kv->val, NULL, 10));
        else if (api_content_is(kv->key, flags))
            v = json_boolean(strcmp(kv->val, "1") == 0);
        else
            v = json_stringn(kv->val, kv->len); /* NULL for invalid UTF-8: left out */
        if (v != NULL)
            json_object_set_new(o, kv->key, v);
    }
    for (size_t i = 0; i < it->nusers; i++)
        json_array_append_new(users, json_string(it->users[i]));
    json_object_set_new(o, "users", users);
    return o;
}

static const char *api_content_kv(const struct store_content_item *it, const char *key, size_t *len)
{
    for (size_t i = 0; i < it->n; i++)
        if (strcmp(it->kv[i].key, key) == 0) {
            if (len != NULL)
                *len = it->kv[i].len;
            return it->kv[i].val;
        }
    return NULL;
}

/* ---- requests: one small continuation per async call ---- */

struct api_content_op {
    struct req *req;
    const struct api_content_kind *k;
    char id[API_CONTENT_ID_MAX + 1];
    int raw;      /* GET ?raw=1 */
    json_t *echo; /* PUT .../assignment: the answer on success */
};

static struct api_content_op *api_content_op_new(struct req *req, const struct api_content_kind *k,
                                                 const char *id)
{
    struct api_content_op *op = xcalloc(1, sizeof(*op));
    op->req = req;
    op->k = k;
    snprintf(op->id, sizeof(op->id), "%s", id);
    return op;
}

static void api_content_on_list(void *arg, int err, const struct store_content_item *items,
                                size_t n)
{
    struct api_content_op *op = arg;
    if (err != MDMD_OK) {
        api_fail(op->req, err);
    } else {
        json_t *a = json_array();
        for (size_t i = 0; i < n; i++) {
            const char *id = api_content_kv(&items[i], "id", NULL);
            json_array_append_new(a, api_content_json(op->k, id != NULL ? id : "", &items[i], 0));
        }
        api_json(op->req, 200, json_pack("{s:o}", op->k->list_name, a));
    }
    free(op);
}

static void api_content_on_put(void *arg, int err, int created)
{
    struct api_content_op *op = arg;
    if (err != MDMD_OK) {
        api_fail(op->req, err);
    } else {
        log_info("event=content_stored kind=%s id=%s replaced=%d",
                 store_content_kind_name(op->k->kind), op->id, !created);
        api_json(op->req, created ? 201 : 200,
                 json_pack("{s:s, s:s, s:b}", "id", op->id, op->k->id_name, op->id, "replaced",
                           !created));
    }
    free(op);
}

static void api_content_upload(struct req *req, struct app *a, const struct api_content_kind *k)
{
    struct api_content_new nw = {0};
    char err[256];
    size_t len;
    const unsigned char *body = req_body(req, &len);
    if (k->parse(&nw, body, len, err, sizeof(err)) != 0) {
        req_fail(req, 400, err);
        api_content_new_clear(&nw);
        return;
    }
    struct api_content_op *op = api_content_op_new(req, k, nw.id);
    store_content_put(a->store, k->kind, nw.id, nw.f, nw.n, util_now_ms(), api_content_on_put, op);
    api_content_new_clear(&nw);
}

static void api_content_collection(struct req *req, void *app, const struct api_content_kind *k)
{
    struct app *a = app;
    if (!api_authorized(req, app))
        return;
    if (req_method(req) == HTTP_M_GET)
        store_content_list(a->store, k->kind, api_content_on_list, api_content_op_new(req, k, ""));
    else
        api_content_upload(req, a, k);
}

static void api_content_on_get(void *arg, int err, const struct store_content_item *items, size_t n)
{
    struct api_content_op *op = arg;
    size_t len = 0;
    const char *body = n == 1 ? api_content_kv(&items[0], "body", &len) : NULL;
    if (err != MDMD_OK)
        api_fail(op->req, err);
    else if (n == 0)
        req_fail(op->req, 404, "not found");
    else if (op->raw && body != NULL)
        req_respond(op->req, 200, op->k->raw_type, body, len);
    else
        api_json(op->req, 200, api_content_json(op->k, op->id, &items[0], 1));
    free(op);
}

static void api_content_on_del(void *arg, int err, int deleted)
{
    struct api_content_op *op = arg;
    if (err != MDMD_OK)
        api_fail(op->req, err);
    else if (!deleted)
        req_fail(op->req, 404, "not found");
    else {
        log_info("event=content_deleted kind=%s id=%s", store_content_kind_name(op->k->kind),
                 op->id);
        req_respond(op->req, 204, NULL, NULL, 0);
    }
    free(op);
}

static void api_content_on_assign(void *arg, int err, int result, const char *const *unknown,
                                  size_t nunknown)
{
    struct api_content_op *op = arg;
    char msg[256];
    if (err != MDMD_OK)
        api_fail(op->req, err);
    else if (result == 0)
        req_fail(op->req, 404, "not found");
    else if (result < 0) {
        int k = snprintf(msg, sizeof(msg), "unknown users:");
        for (size_t i = 0; i < nunknown && k > 0 && (size_t)k < sizeof(msg); i++)
            k += snprintf(msg + k, sizeof(msg) - (size_t)k, " %s", unknown[i]);
        req_fail(op->req, 400, msg);
    } else {
        log_info("event=content_assigned kind=%s id=%s", store_content_kind_name(op->k->kind),
                 op->id);
        api_json(op->req, 200, op->echo);
        op->echo = NULL;
    }
    json_decref(op->echo);
    free(op);
}

/* {"users":[names], "everyone":bool}: the names into *users (caller frees
 * the array; strings borrowed from j).  -1 with err set. */
static int api_content_assignment(json_t *j, const char ***users, size_t *n, int *everyone,
                                  char *err, size_t errlen)
{
    json_t *u = json_object_get(j, "users"), *e = json_object_get(j, "everyone"), *v;
    size_t i;
    *users = NULL;
    *n = 0;
    if (!json_is_object(j) || (u != NULL && !json_is_array(u)) ||
        (e != NULL && !json_is_boolean(e)) || (u == NULL && e == NULL) ||
        json_array_size(u) > API_CONTENT_MAX_USERS) {
        snprintf(err, errlen, "body must be {\"users\":[names], \"everyone\":true|false}");
        return -1;
    }
    *everyone = e != NULL && json_is_true(e);
    *users = xcalloc(json_array_size(u) + 1, sizeof(char *));
    json_array_foreach(u, i, v)
    {
        const char *name = json_string_value(v);
        if (name == NULL || !store_users_name_ok(name)) {
            snprintf(err, errlen, "users[%zu] is not a valid user name", i);
            return -1;
        }
        (*users)[(*n)++] = name;
    }
    return 0;
}

static void api_content_assign(struct req *req, struct app *a, const struct api_content_kind *k,
                               const char *id)
{
    size_t len, n;
    json_error_t jerr;
    const char **users;
    int everyone;
    char err[160];
    const char *body = (const char *)req_body(req, &len);
    json_t *j = json_loadb(body, len, 0, &jerr);
    if (api_content_assignment(j, &users, &n, &everyone, err, sizeof(err)) != 0) {
        req_fail(req, 400, err);
    } else {
        struct api_content_op *op = api_content_op_new(req, k, id);
        json_t *names = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(names, json_string(users[i]));
        op->echo = json_pack("{s:s, s:o, s:b}", "id", id, "users", names, "everyone", everyone);
        store_content_assign(a->store, k->kind, id, everyone, users, n, api_content_on_assign, op);
    }
    free(users);
    json_decref(j);
}

/* {prefix}{id}[/{sub}]: -1 for another shape or an id that cannot exist. */
static int api_content_path(const struct req *req, const struct api_content_kind *k,
                            char id[API_CONTENT_ID_MAX + 1], const char **sub)
{
    const char *p = req_path(req) + strlen(k->prefix);
    size_t n = strcspn(p, "/");
    if (n == 0 || n > API_CONTENT_ID_MAX)
        return -1;
    memcpy(id, p, n);
    id[n] = '\0';
    *sub = p[n] == '/' ? p + n + 1 : "";
    return api_content_id_ok(id) ? 0 : -1;
}

static void api_content_item(struct req *req, void *app, const struct api_content_kind *k)
{
    struct app *a = app;
    char id[API_CONTENT_ID_MAX + 1];
    const char *sub;
    int m = req_method(req);
    if (!api_authorized(req, app))
        return;
    if (api_content_path(req, k, id, &sub) != 0 || (*sub && strcmp(sub, "assignment") != 0)) {
        req_fail(req, 404, "not found");
    } else if (*sub == '\0' && m == HTTP_M_GET) {
        struct api_content_op *op = api_content_op_new(req, k, id);
        char *raw = req_query_param(req, "raw");
        op->raw = raw != NULL && strcmp(raw, "1") == 0 && k->raw_type != NULL;
        free(raw);
        store_content_get(a->store, k->kind, id, api_content_on_get, op);
    } else if (*sub == '\0' && m == HTTP_M_DELETE) {
        store_content_del(a->store, k->kind, id, api_content_on_del,
                          api_content_op_new(req, k, id));
    } else if (*sub != '\0' && m == HTTP_M_PUT) {
        api_content_assign(req, a, k, id);
    } else {
        req_fail(req, 405, "method not allowed");
    }
}

void api_content_profiles(struct req *req, void *app)
{
    api_content_collection(req, app, &api_content_kinds[STORE_CONTENT_PROFILE]);
}

void api_content_profile(struct req *req, void *app)
{
    api_content_item(req, app, &api_content_kinds[STORE_CONTENT_PROFILE]);
}

void api_content_provprofiles(struct req *req, void *app)
{
    api_content_collection(req, app, &api_content_kinds[STORE_CONTENT_PROVPROFILE]);
}

void api_content_provprofile(struct req *req, void *app)
{
    api_content_item(req, app, &api_content_kinds[STORE_CONTENT_PROVPROFILE]);
}

void api_content_apps(struct req *req, void *app)
{
    api_content_collection(req, app, &api_content_kinds[STORE_CONTENT_APP]);
}

void api_content_app(struct req *req, void *app)
{
    api_content_item(req, app, &api_content_kinds[STORE_CONTENT_APP]);
}
