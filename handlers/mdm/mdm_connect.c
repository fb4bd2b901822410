/* Command endpoint: a device reports the result of its last command and gets
 * the next one (DESIGN.md 2).  One Redis round trip per request. */
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
#include "../wake/wake.h"

/* DeviceInformation QueryResponses kept on the device record. */
static const char *const mdm_connect_info_map[][2] = {
    {"DeviceName", "device_name"},
    {"OSVersion", "os_version"},
    {"BuildVersion", "build_version"},
    {"ModelName", "model_name"},
    {"Model", "model"},
    {"ProductName", "product_name"},
    {"SerialNumber", "serial_number"},
    {"DeviceCapacity", "capacity_gb"},
    {"AvailableDeviceCapacity", "available_capacity_gb"},
    {"BatteryLevel", "battery_level"},
    {"IMEI", "imei"},
    {"MEID", "meid"},
    {"WiFiMAC", "wifi_mac"},
    {"BluetoothMAC", "bluetooth_mac"},
    {"IsSupervised", "supervised"},
    {"PhoneNumber", "phone_number"},
    {"ICCID", "iccid"},
    {"IsActivationLockEnabled", "activation_lock"},
    {NULL, NULL},
};

static const char *const mdm_connect_statuses[] = {"Idle", "Acknowledged", "Error",
                                                   "CommandFormatError", "NotNow"};

static void mdm_connect_on_next(void *arg, int err, int ident, const char *uuid, const char *plist,
                                size_t len)
{
    struct mdm_msg *m = arg;
    if (err == MDMD_OK && ident == STORE_ID_NO_CHANNEL) {
        /* A user channel that never began (user_channel decline) or ended:
         * nothing is queued for it, and nothing for the device to retry. */
        log_info("event=user_channel_unknown udid=%s", m->udid);
        req_respond(m->req, 200, NULL, NULL, 0);
    } else if (!mdm_refuse(m, err, ident)) {
        int st =
            metrics_report_of(plist_get_string_ptr(plist_dict_get_item(m->body, "Status"), NULL));
        if (uuid == NULL && st != METRICS_R_NOTNOW)
            store_idle_learn(m->app->store, m->udid, m->fp, m->idle_mark);
        if (st >= 0)
            m->app->metrics->reports[st]++;
        if (st == METRICS_R_NOTNOW) /* iOS expects to be asked again later */
            wake_repush_notnow(m->app->repush, m->udid);
        if (uuid != NULL) {
            log_debug("event=command_sent udid=%s uuid=%s", m->udid, uuid);
            req_respond(m->req, 200, "application/xml; charset=UTF-8", plist, len);
        } else {
            req_respond(m->req, 200, NULL, NULL, 0);
        }
    }
    mdm_done(m);
}

/* The result as the device sent it, packed for history (store.h): the API
 * gives back these bytes. */
static char *mdm_connect_result(struct mdm_msg *m, size_t *len)
{
    size_t n;
    const unsigned char *body = req_body(m->req, &n);
    return store_result_pack(body, n, len);
}

static char *mdm_connect_error_chain(plist_t body)
{
    plist_t chain = plist_dict_get_item(body, "ErrorChain");
    if (chain == NULL)
        return xstrdup("");
    json_t *j = apple_plist_to_json(chain);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s != NULL ? s : xstrdup("");
}

static int mdm_connect_status_ok(const char *status)
{
    for (size_t i = 0; status != NULL && i < ARRAY_LEN(mdm_connect_statuses); i++)
        if (strcmp(status, mdm_connect_statuses[i]) == 0)
            return 1;
    return 0;
}

static void mdm_connect_report(struct mdm_msg *m, const char *status, const char *uuid)
{
    struct store_report r = {
        .dev = {m->udid, m->fp, util_now_ms(), NULL, 0},
        .status = status,
        .uuid = uuid != NULL ? uuid : "",
        .result = "",
        .error_chain = "",
        .history_len = m->app->cf->redis_history_len,
        .history_max_bytes = m->app->cf->redis_history_max_bytes,
    };
    if (strcmp(status, "Idle") == 0 && m->nfields == 0 &&
        store_idle_answer(m->app->store, m->udid, m->fp, r.dev.now_ms)) {
        m->app->metrics->reports[METRICS_R_IDLE]++;
        req_respond(m->req, 200, NULL, NULL, 0);
        mdm_done(m);
        return;
    }
    if (strcmp(status, "Idle") != 0)
        store_idle_forget(m->app->store, m->udid);
    if (strcmp(status, "Idle") != 0 && strcmp(status, "NotNow") != 0) {
        r.result = mdm_own(m, mdm_connect_result(m, &r.result_len));
        r.error_chain = mdm_own(m, mdm_connect_error_chain(m->body));
        if (strcmp(status, "Acknowledged") == 0)
            mdm_fields_from(m, plist_dict_get_item(m->body, "QueryResponses"),
                            mdm_connect_info_map);
    }
    r.dev.fields = m->fields;
    r.dev.nfields = m->nfields;
    m->idle_mark = store_idle_mark(m->app->store);
    store_report(m->app->store, &r, mdm_connect_on_next, m);
}

static void mdm_connect_begun(struct mdm_msg *m)
{
    struct req *req = m->req;
    if (mdm_user_channel(m) < 0)
        return;
    char *status = mdm_own(m, apple_plist_dict_string(m->body, "Status"));
    char *uuid = mdm_own(m, apple_plist_dict_string(m->body, "CommandUUID"));
    if (!mdm_connect_status_ok(status)) {
        req_fail(req, 400, status == NULL ? "missing Status" : "unknown Status");
        mdm_done(m);
    } else if (strcmp(status, "Idle") != 0 && (uuid == NULL || *uuid == '\0')) {
        req_fail(req, 400, "missing CommandUUID");
        mdm_done(m);
    } else {
        mdm_connect_report(m, status, uuid);
    }
}

void mdm_connect(struct req *req, void *app)
{
    mdm_begin(req, app, mdm_connect_begun);
}
