/* Check-in: Authenticate, TokenUpdate, CheckOut (DESIGN.md 2). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/app.h"
#include "../core/conf.h"
#include "../core/http.h"
#include "../core/log.h"
#include "../core/metrics.h"
#include "../core/util.h"
#include "h_mdm.h"
#include "h_provision.h"
#include "plist_json.h"

/* Apple's Authenticate keys -> device record fields (docs/REDIS.md). */
static const char *const h_checkin_auth_map[][2] = {
    {"Topic", "topic"},           {"SerialNumber", "serial_number"},
    {"ProductName", "product_name"}, {"Model", "model"},
    {"ModelName", "model_name"},  {"OSVersion", "os_version"},
    {"BuildVersion", "build_version"}, {"DeviceName", "device_name"},
    {"IMEI", "imei"},             {"MEID", "meid"},
    {NULL, NULL},
};

static const char *const h_checkin_token_map[][2] = {
    {"PushMagic", "push_magic"}, {"Topic", "topic"},
    {"AwaitingConfiguration", "awaiting_configuration"},
    {NULL, NULL},
};

/* Provisioning is queued before the TokenUpdate is answered, so a device
 * that polls right away finds its commands. */
static void h_checkin_on_provisioned(void *arg)
{
    struct h_mdm *m = arg;
    req_respond(m->req, 200, NULL, NULL, 0);
    h_mdm_done(m);
}

/* Accepted check-ins, for /metrics: enrollments begun, completed, ended. */
static void h_checkin_count(struct h_mdm *m, int enrolled_now)
{
    struct metrics *mx = m->app->metrics;
    const char *type = plist_get_string_ptr(plist_dict_get_item(m->body, "MessageType"), NULL);
    if (type != NULL && strcmp(type, "Authenticate") == 0)
        mx->authenticates++;
    else if (type != NULL && strcmp(type, "CheckOut") == 0)
        mx->checkouts++;
    mx->enrollments += enrolled_now == STORE_ENROLLED_NOW;
}

static void h_checkin_on_done(void *arg, int err, int ident, int enrolled_now)
{
    struct h_mdm *m = arg;
    if (!h_mdm_refuse(m, err, ident)) {
        h_checkin_count(m, enrolled_now);
        if (enrolled_now == STORE_ENROLLED_NOW)
            log_info("event=enrolled udid=%s", m->udid);
        /* Pending since an earlier TokenUpdate whose provisioning failed:
         * this one completes it. */
        if (enrolled_now && m->app->cf->provision_on_enroll) {
            h_provision_start(m->app, m->udid, h_checkin_on_provisioned, m);
            return;
        }
        req_respond(m->req, 200, NULL, NULL, 0);
    }
    h_mdm_done(m);
}

static struct store_device_msg h_checkin_msg(struct h_mdm *m)
{
    struct store_device_msg msg = {m->udid, m->fp, util_now_ms(), m->fields, m->nfields,
                                   m->app->cf->enroll_require_issued, m->cn_differs,
                                   m->app->cf->provision_on_enroll};
    return msg;
}

static void h_checkin_authenticate(struct h_mdm *m)
{
    h_mdm_fields_from(m, m->body, h_checkin_auth_map);
    struct store_device_msg msg = h_checkin_msg(m);
    log_info("event=authenticate udid=%s peer=%s", m->udid, req_peer(m->req));
    store_authenticate(m->app->store, &msg, h_checkin_on_done, m);
}

#define H_CHECKIN_TOKEN_LEN 32   /* bytes of an APNs device token */

/* data -> lowercase hex (APNs wants the token that way); NULL if absent
 * (or, with want_len, of another length). */
static char *h_checkin_data_hex(plist_t dict, const char *key, size_t want_len)
{
    plist_t v = plist_dict_get_item(dict, key);
    char *data = NULL, *hex = NULL;
    uint64_t n = 0;
    if (v == NULL || plist_get_node_type(v) != PLIST_DATA)
        return NULL;
    plist_get_data_val(v, &data, &n);
    if (n > 0 && (want_len == 0 || n == want_len)) {
        hex = xmalloc(2 * n + 1);
        util_hex((const uint8_t *)data, n, hex);
    }
    free(data);
    return hex;
}

static void h_checkin_token_update(struct h_mdm *m)
{
    if (plist_dict_get_item(m->body, "UserID") != NULL) {
        /* A user-channel token (Shared iPad, macOS users): not managed yet;
         * accepted so the device does not retry, and said so. */
        log_info("event=user_channel_token_ignored udid=%s", m->udid);
        req_respond(m->req, 200, NULL, NULL, 0);
        h_mdm_done(m);
        return;
    }
    /* An APNs device token is 32 bytes: anything else would be stored and
     * then never reach the device (APNs answers BadDeviceToken). */
    char *token = h_checkin_data_hex(m->body, "Token", H_CHECKIN_TOKEN_LEN);
    char *magic = pj_dict_string(m->body, "PushMagic");
    if (token == NULL || magic == NULL || *magic == '\0' || strlen(magic) > 128) {
        int had = plist_dict_get_item(m->body, "Token") != NULL;
        free(token);
        free(magic);
        req_fail(m->req, 400, token == NULL && had ? "Token must be 32 bytes of data"
                 : token == NULL ? "TokenUpdate needs Token and PushMagic"
                                 : "PushMagic must be 1 to 128 characters");
        h_mdm_done(m);
        return;
    }
    free(magic);
    h_mdm_field_take(m, "token", token);
    h_mdm_fields_from(m, m->body, h_checkin_token_map);
    h_mdm_field_take(m, "unlock_token", h_checkin_data_hex(m->body, "UnlockToken", 0));
    struct store_device_msg msg = h_checkin_msg(m);
    store_token_update(m->app->store, &msg, h_checkin_on_done, m);
}

static void h_checkin_checkout(struct h_mdm *m)
{
    struct store_device_msg msg = h_checkin_msg(m);
    log_info("event=checkout udid=%s", m->udid);
    store_checkout(m->app->store, &msg, h_checkin_on_done, m);
}

/* Message types Apple defines that mdmd does not handle yet.  UserAuthenticate
 * gets 410, which tells the device not to set up a user channel. */
static int h_checkin_unsupported(const char *type)
{
    static const char *const later[] = {"SetBootstrapToken", "GetBootstrapToken",
                                        "DeclarativeManagement", "GetToken"};
    if (strcmp(type, "UserAuthenticate") == 0)
        return 410;
    for (size_t i = 0; i < ARRAY_LEN(later); i++)
        if (strcmp(type, later[i]) == 0)
            return 501;
    return 400;
}

static void h_checkin_begun(struct h_mdm *m)
{
    struct req *req = m->req;
    char *type = pj_dict_string(m->body, "MessageType");
    if (type != NULL && strcmp(type, "Authenticate") == 0)
        h_checkin_authenticate(m);
    else if (type != NULL && strcmp(type, "TokenUpdate") == 0)
        h_checkin_token_update(m);
    else if (type != NULL && strcmp(type, "CheckOut") == 0)
        h_checkin_checkout(m);
    else {
        int status = type != NULL ? h_checkin_unsupported(type) : 400;
        char mt[64];
        log_warn("event=checkin_unsupported udid=%s message_type=%s status=%d", m->udid,
                 type != NULL ? log_str(type, mt, sizeof(mt)) : "(none)", status);
        req_respond_json(req, status, status == 400 ? "{\"error\":\"unknown MessageType\"}\n"
                                                    : "{\"error\":\"not supported\"}\n");
        h_mdm_done(m);
    }
    free(type);
}

void h_mdm_checkin(struct req *req, void *app)
{
    h_mdm_begin(req, app, h_checkin_begun);
}
