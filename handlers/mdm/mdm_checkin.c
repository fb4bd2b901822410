/* Check-in: every MessageType of Apple's schema (mdm_checkin_schema.c), by
 * the table at the end; Authenticate, TokenUpdate and CheckOut here, the
 * others in mdm_user.c and mdm_escrow.c, DeclarativeManagement in
 * handlers/ddm (DESIGN.md 2). */
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
    mx->enrollments += enrolled_now == STORE_ENROLLED_NOW;
}

static void mdm_checkin_on_done(void *arg, int err, int ident, int enrolled_now)
{
    struct mdm_msg *m = arg;
    if (!mdm_refuse(m, err, ident)) {
        mdm_checkin_count(m, enrolled_now);
        if (enrolled_now == STORE_ENROLLED_NOW) {
            log_info("event=enrolled udid=%s", m->udid);
            ddm_notify_enrolled(m->app, m->udid);
            /* Sent after the steps above on the same connection: once it
             * ran, so did they.  If it fails, a resend within 600 s does
             * them again (counted twice) rather than never. */
            (void)store_enrolled_answered(m->app->store, m->udid, NULL, NULL);
        }
        /* Pending since an earlier TokenUpdate whose provisioning failed:
         * this one completes it. */
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
    return mdm_device_msg(m);
}

static void mdm_checkin_authenticate(struct mdm_msg *m)
{
    mdm_fields_from(m, m->body, mdm_checkin_auth_map);
    struct store_device_msg msg = mdm_checkin_msg(m);
    log_info("event=authenticate udid=%s peer=%s", m->udid, req_peer(m->req));
    store_authenticate(m->app->store, &msg, mdm_checkin_on_done, m);
}

/* data -> lowercase hex (APNs wants the token that way); NULL if absent. */
char *mdm_checkin_data_hex(plist_t dict, const char *key, size_t want_len)
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
    int ch = mdm_user_channel(m);
    if (ch < 0)
        return;
    if (ch > 0) {
        mdm_user_token_update(m);
        return;
    }
    /* An APNs device token is 32 bytes: anything else would be stored and
     * then never reach the device (APNs answers BadDeviceToken). */
    char *token = mdm_checkin_data_hex(m->body, "Token", MDM_CHECKIN_TOKEN_LEN);
    char *magic = apple_plist_dict_string(m->body, "PushMagic");
    if (token == NULL || magic == NULL || *magic == '\0' || strlen(magic) > 128) {
        int had = plist_dict_get_item(m->body, "Token") != NULL;
        free(token);
        free(magic);
        req_fail(m->req, 400,
                 token == NULL && had ? "Token must be 32 bytes of data"
                 : token == NULL      ? "TokenUpdate needs Token and PushMagic"
                                      : "PushMagic must be 1 to 128 characters");
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

/* DeclarativeManagement: handlers/ddm answers it (tokens, declaration
 * items, declarations, status). */
static void mdm_checkin_ddm(struct mdm_msg *m)
{
    ddm_checkin(m->req, m->app, m->body, m->udid, m->fp, m->cn_differs);
    mdm_done(m);
}

typedef void mdm_checkin_fn(struct mdm_msg *m);

/* Every MessageType of Apple's schema (test_checkin checks the two agree). */
static const struct {
    const char *type;
    mdm_checkin_fn *fn;
} mdm_checkin_handlers[] = {
    {"Authenticate", mdm_checkin_authenticate},
    {"CheckOut", mdm_checkin_checkout},
    {"DeclarativeManagement", mdm_checkin_ddm},
    {"GetBootstrapToken", mdm_escrow_get},
    {"GetToken", mdm_escrow_token},
    {"ReturnToService", mdm_escrow_rts},
    {"SetBootstrapToken", mdm_escrow_set},
    {"TokenUpdate", mdm_checkin_token_update},
    {"UserAuthenticate", mdm_user_authenticate},
};

static mdm_checkin_fn *mdm_checkin_find(const char *type)
{
    for (size_t i = 0; type != NULL && i < ARRAY_LEN(mdm_checkin_handlers); i++)
        if (strcmp(type, mdm_checkin_handlers[i].type) == 0)
            return mdm_checkin_handlers[i].fn;
    return NULL;
}

int mdm_checkin_handles(const char *message_type)
{
    return mdm_checkin_find(message_type) != NULL;
}

static void mdm_checkin_begun(struct mdm_msg *m)
{
    struct req *req = m->req;
    char why[96];
    char *type = apple_plist_dict_string(m->body, "MessageType");
    mdm_checkin_fn *fn = mdm_checkin_find(type);
    if (fn == NULL || mdm_checkin_schema_find(type) == NULL) {
        char mt[64];
        log_warn("event=checkin_unsupported udid=%s message_type=%s status=400", m->udid,
                 type != NULL ? log_str(type, mt, sizeof(mt)) : "(none)");
        req_respond_json(req, 400, "{\"error\":\"unknown MessageType\"}\n");
        mdm_done(m);
    } else if (apple_checkin_check(m->body, type, why, sizeof(why)) != 0) {
        log_warn("event=checkin_malformed udid=%s message_type=%s reason=\"%s\"", m->udid, type,
                 why);
        req_fail(req, 400, why);
        mdm_done(m);
    } else {
        fn(m);
    }
    free(type);
}

void mdm_checkin(struct req *req, void *app)
{
    mdm_begin(req, app, mdm_checkin_begun);
}
