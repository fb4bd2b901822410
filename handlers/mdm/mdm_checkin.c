/* Check-in: Authenticate, TokenUpdate, CheckOut (DESIGN.md 2); DeclarativeManagement
 * goes to handlers/ddm. */
#include "mdm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/app.h"
#include "../../core/conf.h"
#include "../../core/http.h"
#include "../../core/log.h"
#include "../../core/metrics.h"
#include "../../core/util.h"
#include "../../store/store.h"
#include "../apple/apple.h"
#include "../ddm/ddm.h"

/* Apple's Authenticate keys -> device record fields (docs/REDIS.md). */
static const char *const mdm_checkin_auth_map[][2] = {
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
    {NULL, NULL},
};

static const char *const mdm_checkin_token_map[][2] = {
    {"PushMagic", "push_magic"},
    {"Topic", "topic"},
    {"AwaitingConfiguration", "awaiting_configuration"},
    {NULL, NULL},
};

/* Provisioning is queued before the TokenUpdate is answered, so a device
 * that polls right away finds its commands. */
static void mdm_checkin_on_provisioned(void *arg)
{
    struct mdm_msg *m = arg;
    req_respond(m->req, 200, NULL, NULL, 0);
    mdm_done(m);
}

/* Accepted check-ins, for /metrics: enrollments begun, completed, ended. */
static void mdm_checkin_count(struct mdm_msg *m, int enrolled_now)
{
    struct metrics *mx = m->app->metrics;
    const char *type = plist_get_string_ptr(plist_dict_get_item(m->body, "MessageType"), NULL);
    if (type != NULL && strcmp(type, "Authenticate") == 0)
        mx->authenticates++;
    else if (type != NULL && strcmp(type, "CheckOut") == 0)
        mx->checkouts++;
    mx->enrollments += enrolled_now != 0;
}

static void mdm_checkin_on_done(void *arg, int err, int ident, int enrolled_now)
{
    struct mdm_msg *m = arg;
    if (!mdm_refuse(m, err, ident)) {
        mdm_checkin_count(m, enrolled_now);
        if (enrolled_now) {
            log_info("event=enrolled udid=%s", m->udid);
            ddm_notify_enrolled(m->app, m->udid);
        }
        if (enrolled_now && m->app->cf->provision_on_enroll) {
            mdm_provision_start(m->app, m->udid, mdm_checkin_on_provisioned, m);
            return;
        }
        req_respond(m->req, 200, NULL, NULL, 0);
    }
    mdm_done(m);
}

static struct store_device_msg mdm_checkin_msg(struct mdm_msg *m)
{
    struct store_device_msg msg = {m->udid,      m->fp,      util_now_ms(),
                                   m->fields,    m->nfields, m->app->cf->enroll_require_issued,
                                   m->cn_differs};
    return msg;
}

static void mdm_checkin_authenticate(struct mdm_msg *m)
{
    mdm_fields_from(m, m->body, mdm_checkin_auth_map);
    struct store_device_msg msg = mdm_checkin_msg(m);
    log_info("event=authenticate udid=%s peer=%s", m->udid, req_peer(m->req));
    store_authenticate(m->app->store, &msg, mdm_checkin_on_done, m);
}

/* data -> lowercase hex (APNs wants the token that way); NULL if absent. */
static char *mdm_checkin_data_hex(plist_t dict, const char *key, size_t want_len)
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

static void mdm_checkin_token_update(struct mdm_msg *m)
{
    if (plist_dict_get_item(m->body, "UserID") != NULL) {
        /* A user-channel token (Shared iPad, macOS users): not managed yet;
         * accepted so the device does not retry, and said so. */
        log_info("event=user_channel_token_ignored udid=%s", m->udid);
        req_respond(m->req, 200, NULL, NULL, 0);
        mdm_done(m);
        return;
    }
    char *token = mdm_checkin_data_hex(m->body, "Token", 0);
    char *magic = apple_plist_dict_string(m->body, "PushMagic");
    if (token == NULL || magic == NULL) {
        free(token);
        free(magic);
        req_fail(m->req, 400, "TokenUpdate needs Token and PushMagic");
        mdm_done(m);
        return;
    }
    free(magic);
    mdm_field_take(m, "token", token);
    mdm_fields_from(m, m->body, mdm_checkin_token_map);
    mdm_field_take(m, "unlock_token", mdm_checkin_data_hex(m->body, "UnlockToken", 0));
    struct store_device_msg msg = mdm_checkin_msg(m);
    store_token_update(m->app->store, &msg, mdm_checkin_on_done, m);
}

static void mdm_checkin_checkout(struct mdm_msg *m)
{
    struct store_device_msg msg = mdm_checkin_msg(m);
    log_info("event=checkout udid=%s", m->udid);
    store_checkout(m->app->store, &msg, mdm_checkin_on_done, m);
}

/* Message types Apple defines that mdmd does not handle yet.  UserAuthenticate
 * gets 410, which tells the device not to set up a user channel. */
static int mdm_checkin_unsupported(const char *type)
{
    static const char *const later[] = {"SetBootstrapToken", "GetBootstrapToken", "GetToken"};
    if (strcmp(type, "UserAuthenticate") == 0)
        return 410;
    for (size_t i = 0; i < ARRAY_LEN(later); i++)
        if (strcmp(type, later[i]) == 0)
            return 501;
    return 400;
}

void mdm_checkin(struct req *req, void *app)
{
    struct mdm_msg *m = mdm_begin(req, app);
    if (m == NULL)
        return;
    char *type = apple_plist_dict_string(m->body, "MessageType");
    if (type != NULL && strcmp(type, "Authenticate") == 0)
        mdm_checkin_authenticate(m);
    else if (type != NULL && strcmp(type, "TokenUpdate") == 0)
        mdm_checkin_token_update(m);
    else if (type != NULL && strcmp(type, "CheckOut") == 0)
        mdm_checkin_checkout(m);
    else if (type != NULL && strcmp(type, "DeclarativeManagement") == 0) {
        ddm_checkin(req, m->app, m->body, m->udid, m->fp, m->cn_differs);
        mdm_done(m);
    } else {
        int status = type != NULL ? mdm_checkin_unsupported(type) : 400;
        log_warn("event=checkin_unsupported udid=%s message_type=%s status=%d", m->udid,
                 type != NULL ? type : "(none)", status);
        req_respond_json(req, status,
                         status == 400 ? "{\"error\":\"unknown MessageType\"}\n"
                                       : "{\"error\":\"not supported\"}\n");
        mdm_done(m);
    }
    free(type);
}
