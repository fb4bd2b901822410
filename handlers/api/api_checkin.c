/* Admin REST for the rest of the check-in protocol (part of api.h): the
 * escrowed bootstrap token (an explicit, logged read), Return to Service
 * settings (per device and fleet-wide), GetToken sources, a device's user
 * channels, and migration of devices enrolled elsewhere. */
#include "api.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../ca/ca_seal.h"
#include "../../core/app.h"
#include "../../core/http.h"
#include "../../core/log.h"
#include "../../core/util.h"
#include "../../store/store_checkin.h"
#include "../apple/apple.h"

#define API_CHECKIN_MIGRATE_MAX 5000  /* messages per POST /v1/migrate */
#define API_CHECKIN_MIGRATE_BATCH 250 /* devices per Lua call */
#define API_CHECKIN_FIELDS 16

/* The request body as a JSON object (new reference), or NULL after a 400. */
static json_t *api_checkin_body(struct req *req)
{
    size_t len;
    char why[128];
    const char *body = (const char *)req_body(req, &len);
    json_t *j = apple_plist_json_load(body, len, why, sizeof(why));
    if (j == NULL || !json_is_object(j)) {
        json_decref(j);
        req_fail(req, 400, j == NULL && why[0] != '\0' ? why : "body must be a JSON object");
        return NULL;
    }
    return j;
}

static const char *api_checkin_who(struct req *req)
{
    return req_user(req) != NULL ? req_user(req) : "api";
}

/* ---- GET /v1/devices/{udid}/bootstrap-token ---- */

struct api_checkin_read {
    struct req *req;
    struct app *app;
    char udid[UTIL_CHANNEL_MAX];
};

static void api_checkin_on_token(void *arg, int err, int ident, const char *const *v,
                                 const size_t *len, size_t n)
{
    struct api_checkin_read *r = arg;
    size_t plen = 0;
    unsigned char *p = NULL;
    if (err != MDMD_OK)
        api_fail(r->req, err);
    else if (ident != STORE_ID_OK)
        req_fail(r->req, 404, "unknown device");
    else if (n == 0 || v[0] == NULL)
        req_fail(r->req, 404, "no bootstrap token escrowed");
    else if ((p = ca_unseal(r->app->seal_key_path, r->udid, v[0], &plen)) == NULL)
        req_fail(r->req, 500, "the escrowed token does not open (key file?)");
    else {
        char *b64 = apple_plist_base64(p, plen);
        api_json(r->req, 200, json_pack("{s:s, s:s}", "udid", r->udid, "bootstrap_token", b64));
        explicit_bzero(p, plen);
        free(b64);
    }
    free(p);
    free(r);
}

static void api_checkin_bootstrap(struct req *req, struct app *a, const char *udid)
{
    if (req_method(req) != HTTP_M_GET || strchr(udid, ':') != NULL) {
        req_fail(req, req_method(req) != HTTP_M_GET ? 405 : 404, "device channel only, GET only");
        return;
    }
    struct api_checkin_read *r = xcalloc(1, sizeof(*r));
    r->req = req;
    r->app = a;
    snprintf(r->udid, sizeof(r->udid), "%s", udid);
    /* Logged before the read: a reader who drops the connection is on record. */
    log_warn("event=bootstrap_token_read udid=%s by=%s peer=%s", udid, api_checkin_who(req),
             req_peer(req));
    store_bootstrap_get(a->store, udid, "", api_checkin_who(req), util_now_ms(),
                        api_checkin_on_token, r);
}

/* ---- Return to Service: /v1/return-to-service, /v1/devices/{udid}/return-to-service ---- */

static void api_checkin_on_done(void *arg, int err)
{
    struct req *req = arg;
    if (err != MDMD_OK)
        api_fail(req, err);
    else
        req_respond_json(req, 200, "{\"ok\":true}\n");
}

static json_t *api_checkin_hash(const char *const *v, const size_t *len, size_t n, int secret)
{
    json_t *o = json_object();
    for (size_t i = 0; i + 1 < n; i += 2) {
        if (v[i] == NULL || v[i + 1] == NULL)
            continue;
        if (strcmp(v[i], "enabled") == 0 || strcmp(v[i], "preserve_apps") == 0) {
            json_object_set_new(o, v[i], json_boolean(strcmp(v[i + 1], "1") == 0));
        } else if (secret && strcmp(v[i], "data") == 0) { /* its size, never the bytes */
            json_object_set_new(o, "size", json_integer((json_int_t)len[i + 1]));
        } else if (secret) {
            json_object_set_new(o, v[i], json_stringn(v[i + 1], len[i + 1]));
        } else {
            char *b64 = apple_plist_base64((const unsigned char *)v[i + 1], len[i + 1]);
            json_object_set_new(o, v[i], json_string(b64));
            free(b64);
        }
    }
    return o;
}

static void api_checkin_on_setting(void *arg, int err, int ident, const char *const *v,
                                   const size_t *len, size_t n)
{
    struct req *req = arg;
    json_t *o = err == MDMD_OK ? api_checkin_hash(v, len, n, 0) : NULL;
    if (err != MDMD_OK) {
        api_fail(req, err);
        return;
    }
    /* Not set is an answer, not an error: the fleet's setting (or off) applies. */
    json_object_set_new(o, "set", json_boolean(n > 0));
    api_json(req, 200, o);
}

/* A base64 member of j as a record field (decoded into *owned). */
static int api_checkin_b64(json_t *j, const char *key, const char *field, struct store_kv *kv,
                           size_t *n, unsigned char **owned)
{
    json_t *v = json_object_get(j, key);
    if (v == NULL)
        return 0;
    size_t len = 0;
    *owned = json_is_string(v) ? apple_plist_unbase64(json_string_value(v), &len) : NULL;
    if (*owned == NULL)
        return -1;
    kv[(*n)++] = (struct store_kv){field, (const char *)*owned, len};
    return 0;
}

static void api_checkin_rts_put(struct req *req, struct app *a, const char *key)
{
    json_t *j = api_checkin_body(req);
    if (j == NULL)
        return;
    struct store_kv kv[4];
    size_t n = 0;
    unsigned char *wifi = NULL, *mdm = NULL;
    json_t *en = json_object_get(j, "enabled"), *pa = json_object_get(j, "preserve_apps");
    if (!json_is_boolean(en) || (pa != NULL && !json_is_boolean(pa))) {
        req_fail(req, 400, "enabled (boolean) is required; preserve_apps is a boolean");
    } else if (api_checkin_b64(j, "wifi_profile", "wifi_profile", kv, &n, &wifi) != 0 ||
               api_checkin_b64(j, "mdm_profile", "mdm_profile", kv, &n, &mdm) != 0) {
        req_fail(req, 400, "wifi_profile and mdm_profile are base64");
    } else {
        kv[n++] = (struct store_kv){"enabled", json_is_true(en) ? "1" : "0", 1};
        kv[n++] = (struct store_kv){"preserve_apps", json_is_true(pa) ? "1" : "0", 1};
        log_info("event=return_to_service_set key=%s enabled=%d preserve_apps=%d by=%s", key,
                 json_is_true(en), json_is_true(pa), api_checkin_who(req));
        store_setting_put(a->store, key, NULL, NULL, kv, n, api_checkin_on_done, req);
    }
    free(wifi);
    free(mdm);
    json_decref(j);
}

static void api_checkin_rts(struct req *req, struct app *a, const char *key)
{
    switch (req_method(req)) {
    case HTTP_M_GET: store_setting_get(a->store, key, api_checkin_on_setting, req); break;
    case HTTP_M_PUT: api_checkin_rts_put(req, a, key); break;
    case HTTP_M_DELETE:
        log_info("event=return_to_service_cleared key=%s by=%s", key, api_checkin_who(req));
        store_setting_put(a->store, key, NULL, NULL, NULL, 0, api_checkin_on_done, req);
        break;
    default: req_fail(req, 405, "method not allowed");
    }
}

void api_rts_fleet(struct req *req, void *app)
{
    if (api_authorized(req, app))
        api_checkin_rts(req, app, "mdm:rts");
}

/* ---- GET /v1/devices/{udid}/channels ---- */

static void api_checkin_on_members(void *arg, int err, int ident, const char *const *v,
                                   const size_t *len, size_t n)
{
    struct req *req = arg;
    json_t *a = json_array();
    for (size_t i = 0; err == MDMD_OK && i < n; i++)
        json_array_append_new(a, json_stringn(v[i], len[i]));
    if (err != MDMD_OK) {
        json_decref(a);
        api_fail(req, err);
        return;
    }
    api_json(req, 200, json_pack("{s:o}", "items", a));
}

int api_checkin_device(struct req *req, struct app *a, const char *udid, const char *tail)
{
    char key[STORE_MDM_KEY_MAX];
    if (strcmp(tail, "/bootstrap-token") == 0) {
        api_checkin_bootstrap(req, a, udid);
    } else if (strcmp(tail, "/return-to-service") == 0) {
        store_mdm_key(key, sizeof(key), "rts", udid);
        api_checkin_rts(req, a, key);
    } else if (strcmp(tail, "/channels") == 0 && req_method(req) == HTTP_M_GET) {
        store_mdm_key(key, sizeof(key), "channels", udid);
        store_set_members(a->store, key, api_checkin_on_members, req);
    } else {
        return 0;
    }
    return 1;
}

/* ---- /v1/token-sources[/{type}] ---- */

void api_token_sources(struct req *req, void *app)
{
    struct app *a = app;
    if (!api_authorized(req, app))
        return;
    if (req_method(req) != HTTP_M_GET)
        req_fail(req, 405, "method not allowed");
    else
        store_set_members(a->store, "mdm:tokensrcs", api_checkin_on_members, req);
}

static void api_checkin_on_source(void *arg, int err, int ident, const char *const *v,
                                  const size_t *len, size_t n)
{
    struct req *req = arg;
    if (err != MDMD_OK)
        api_fail(req, err);
    else if (n == 0)
        req_fail(req, 404, "no such token source");
    else
        api_json(req, 200, api_checkin_hash(v, len, n, 1));
}

static void api_checkin_source_put(struct req *req, struct app *a, const char *type,
                                   const char *key)
{
    json_t *j = api_checkin_body(req);
    if (j == NULL)
        return;
    struct store_kv kv[2];
    size_t n = 0;
    unsigned char *data = NULL;
    const char *kind = json_string_value(json_object_get(j, "kind"));
    const char *iss = json_string_value(json_object_get(j, "issuer"));
    if (kind != NULL && strcmp(kind, "jwt") == 0) {
        /* Signed per request with token_jwt_key_file; iss is the server_uuid. */
        if (iss == NULL || !util_udid_valid(iss, strlen(iss))) {
            req_fail(req, 400, "a jwt source needs issuer (the server_uuid of AccountDetail)");
        } else {
            kv[n++] = (struct store_kv){"kind", "jwt", 3};
            kv[n++] = (struct store_kv){"issuer", iss, strlen(iss)};
            log_info("event=token_source_set service_type=%s kind=jwt by=%s", type,
                     api_checkin_who(req));
            store_setting_put(a->store, key, "mdm:tokensrcs", type, kv, n, api_checkin_on_done,
                              req);
        }
    } else if (kind == NULL || strcmp(kind, "static") != 0)
        req_fail(req, 400, "kind must be \"static\" or \"jwt\"");
    else if (api_checkin_b64(j, "data", "data", kv, &n, &data) != 0 || n == 0 || kv[0].len == 0)
        req_fail(req, 400, "data (base64, not empty) is required");
    else {
        kv[n++] = (struct store_kv){"kind", "static", 6};
        log_info("event=token_source_set service_type=%s by=%s", type, api_checkin_who(req));
        store_setting_put(a->store, key, "mdm:tokensrcs", type, kv, n, api_checkin_on_done, req);
    }
    free(data);
    json_decref(j);
}

void api_token_source(struct req *req, void *app)
{
    struct app *a = app;
    char key[192];
    if (!api_authorized(req, app))
        return;
    const char *type = req_path(req) + strlen("/v1/token-sources/");
    if (!util_udid_valid(type, strlen(type))) {
        req_fail(req, 400, "malformed TokenServiceType");
        return;
    }
    snprintf(key, sizeof(key), "mdm:tokensrc:%s", type);
    switch (req_method(req)) {
    case HTTP_M_GET: store_setting_get(a->store, key, api_checkin_on_source, req); break;
    case HTTP_M_PUT: api_checkin_source_put(req, a, type, key); break;
    case HTTP_M_DELETE:
        log_info("event=token_source_deleted service_type=%s by=%s", type, api_checkin_who(req));
        store_setting_put(a->store, key, "mdm:tokensrcs", type, NULL, 0, api_checkin_on_done, req);
        break;
    default: req_fail(req, 405, "method not allowed");
    }
}

/* ---- POST /v1/migrate ---- */

struct api_checkin_dev {
    char udid[65];
    struct store_kv kv[API_CHECKIN_FIELDS];
    size_t n;
};

struct api_checkin_mig {
    struct req *req;
    struct app *app;
    struct api_checkin_dev *devs;
    size_t ndevs, next;
    char **owned;
    size_t nowned;
    long created;
    json_t *skipped;
};

static void api_checkin_mig_free(struct api_checkin_mig *g)
{
    for (size_t i = 0; i < g->nowned; i++)
        free(g->owned[i]);
    free(g->owned);
    free(g->devs);
    json_decref(g->skipped);
    free(g);
}

static void api_checkin_mig_field(struct api_checkin_mig *g, struct api_checkin_dev *d,
                                  const char *key, char *val)
{
    if (val == NULL)
        return;
    g->owned[g->nowned++] = val;
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->kv[i].key, key) == 0) {
            d->kv[i].val = val;
            d->kv[i].len = strlen(val);
            return;
        }
    if (d->n < API_CHECKIN_FIELDS)
        d->kv[d->n++] = (struct store_kv){key, val, strlen(val)};
}

static char *api_checkin_hex(plist_t dict, const char *key)
{
    plist_t v = plist_dict_get_item(dict, key);
    uint64_t n = 0;
    if (v == NULL || plist_get_node_type(v) != PLIST_DATA)
        return NULL;
    const char *p = plist_get_data_ptr(v, &n);
    if (n == 0)
        return NULL;
    char *hex = xmalloc(2 * n + 1);
    util_hex((const uint8_t *)p, n, hex);
    return hex;
}

static const char *const api_checkin_mig_map[][2] = {
    {"Topic", "topic"},
    {"SerialNumber", "serial_number"},
    {"ProductName", "product_name"},
    {"Model", "model"},
    {"ModelName", "model_name"},
    {"OSVersion", "os_version"},
    {"BuildVersion", "build_version"},
    {"DeviceName", "device_name"},
    {"IMEI", "imei"},
    {"MEID", "meid"},
    {"PushMagic", "push_magic"},
    {NULL, NULL},
};

/* One Authenticate or TokenUpdate into its device's entry; NULL or why not. */
static const char *api_checkin_mig_one(struct api_checkin_mig *g, plist_t p)
{
    char *type = apple_plist_dict_string(p, "MessageType");
    char *udid = apple_plist_dict_string(p, "UDID");
    int auth = type != NULL && strcmp(type, "Authenticate") == 0;
    int tok = type != NULL && strcmp(type, "TokenUpdate") == 0;
    const char *why = NULL;
    if (!auth && !tok)
        why = "MessageType must be Authenticate or TokenUpdate";
    else if (udid == NULL || !util_udid_valid(udid, strlen(udid)))
        why = "missing or malformed UDID";
    else if (plist_dict_get_item(p, "UserID") != NULL)
        why = "user-channel messages are not migrated";
    else if (tok && (plist_dict_get_item(p, "PushMagic") == NULL ||
                     plist_dict_get_item(p, "Token") == NULL))
        why = "TokenUpdate needs Token and PushMagic";
    struct api_checkin_dev *d = NULL;
    for (size_t i = 0; why == NULL && i < g->ndevs && d == NULL; i++)
        if (strcmp(g->devs[i].udid, udid) == 0)
            d = &g->devs[i];
    if (why == NULL && d == NULL) {
        d = &g->devs[g->ndevs++];
        snprintf(d->udid, sizeof(d->udid), "%s", udid);
    }
    for (size_t i = 0; why == NULL && api_checkin_mig_map[i][0] != NULL; i++)
        api_checkin_mig_field(g, d, api_checkin_mig_map[i][1],
                              apple_plist_dict_string(p, api_checkin_mig_map[i][0]));
    if (why == NULL && tok) {
        char *hex = api_checkin_hex(p, "Token");
        if (hex == NULL)
            why = "Token must be data";
        api_checkin_mig_field(g, d, "token", hex);
        api_checkin_mig_field(g, d, "unlock_token", api_checkin_hex(p, "UnlockToken"));
    }
    free(type);
    free(udid);
    return why;
}

static void api_checkin_mig_step(struct api_checkin_mig *g);

static void api_checkin_on_migrated(void *arg, int err, long created, const char *const *skipped,
                                    size_t nskipped)
{
    struct api_checkin_mig *g = arg;
    if (err != MDMD_OK) {
        /* Batches already written stand; the answer says how far it got. */
        log_warn("event=migrate_failed done=%zu of=%zu", g->next, g->ndevs);
        api_fail(g->req, err);
        api_checkin_mig_free(g);
        return;
    }
    g->created += created;
    for (size_t i = 0; i < nskipped; i++)
        json_array_append_new(g->skipped, json_string(skipped[i]));
    api_checkin_mig_step(g);
}

static void api_checkin_mig_step(struct api_checkin_mig *g)
{
    struct store_migrant m[API_CHECKIN_MIGRATE_BATCH];
    size_t n = 0;
    if (g->next == g->ndevs) {
        log_info("event=migrated devices=%zu created=%ld skipped=%zu by=%s", g->ndevs, g->created,
                 json_array_size(g->skipped), api_checkin_who(g->req));
        api_json(g->req, 200,
                 json_pack("{s:I, s:I, s:O}", "devices", (json_int_t)g->ndevs, "created",
                           (json_int_t)g->created, "skipped", g->skipped));
        api_checkin_mig_free(g);
        return;
    }
    for (; n < API_CHECKIN_MIGRATE_BATCH && g->next < g->ndevs; n++, g->next++)
        m[n] =
            (struct store_migrant){g->devs[g->next].udid, g->devs[g->next].kv, g->devs[g->next].n};
    store_migrate(g->app->store, m, n, util_now_ms(), api_checkin_on_migrated, g);
}

/* {"messages": [base64 of an Authenticate or TokenUpdate plist, ...]}. */
void api_migrate(struct req *req, void *app)
{
    char why[128];
    if (!api_authorized(req, app))
        return;
    json_t *j = api_checkin_body(req), *msgs = j != NULL ? json_object_get(j, "messages") : NULL;
    if (j == NULL)
        return;
    size_t n = json_array_size(msgs);
    if (!json_is_array(msgs) || n == 0 || n > API_CHECKIN_MIGRATE_MAX) {
        json_decref(j);
        req_fail(req, 400, "messages: an array of 1 to 5000 base64 plists");
        return;
    }
    struct api_checkin_mig *g = xcalloc(1, sizeof(*g));
    g->req = req;
    g->app = app;
    g->devs = xcalloc(n, sizeof(*g->devs));
    g->owned = xcalloc(n * API_CHECKIN_FIELDS, sizeof(*g->owned));
    g->skipped = json_array();
    why[0] = '\0';
    for (size_t i = 0; i < n && why[0] == '\0'; i++) {
        size_t len = 0;
        const char *s = json_string_value(json_array_get(msgs, i));
        unsigned char *raw = s != NULL ? apple_plist_unbase64(s, &len) : NULL;
        char perr[96] = "";
        plist_t p = raw != NULL ? apple_plist_parse(raw, len, perr, sizeof(perr)) : NULL;
        const char *bad = p == NULL && perr[0] != '\0' ? perr
                          : p == NULL || plist_get_node_type(p) != PLIST_DICT
                              ? "not a base64 plist dictionary"
                              : api_checkin_mig_one(g, p);
        if (bad != NULL)
            snprintf(why, sizeof(why), "messages[%zu]: %s", i, bad);
        plist_free(p);
        free(raw);
    }
    json_decref(j);
    if (why[0] != '\0') {
        req_fail(req, 400, why);
        api_checkin_mig_free(g);
        return;
    }
    api_checkin_mig_step(g);
}
