/* mdm_provision.c: post-enrollment provisioning (mdm.h).  Two store
 * calls: what the device gets (store_content_grants), then the commands,
 * built here as plists, queued atomically (store_content_provision). */
#include "mdm.h"
#include "../../store/store.h"

#include <plist/plist.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/app.h"
#include "../../core/log.h"
#include "../../core/util.h"
#include "../../store/store_content.h"
#include "../wake/wake.h"

#define MDM_PROVISION_CMD_TTL_S (30 * 24 * 3600) /* as admin-queued commands */

/* What the device record keeps (mdm_connect.c) and what operators ask first. */
const char *const mdm_provision_queries[] = {
    "UDID",
    "DeviceName",
    "OSVersion",
    "BuildVersion",
    "ModelName",
    "Model",
    "ProductName",
    "SerialNumber",
    "DeviceCapacity",
    "AvailableDeviceCapacity",
    "BatteryLevel",
    "IMEI",
    "MEID",
    "ICCID",
    "PhoneNumber",
    "WiFiMAC",
    "BluetoothMAC",
    "IsSupervised",
    "IsActivationLockEnabled",
    "IsDeviceLocatorServiceEnabled",
    "IsCloudBackupEnabled",
    "CellularTechnology",
    "ModemFirmwareVersion",
    "AwaitingConfiguration",
    NULL,
};

struct mdm_provision {
    struct app *app;
    char udid[65];
    char user[65];
    mdm_provision_done_fn *done;
    void *arg;
};

struct mdm_provision_cmds { /* the commands being built */
    struct store_cmd *c;
    char (*uuid)[37];
    size_t n;
};

/* {Command: command, CommandUUID} as XML into the next slot; takes command. */
static void mdm_provision_add(struct mdm_provision_cmds *cs, const char *request_type,
                              plist_t command)
{
    plist_t root = plist_new_dict();
    char *xml = NULL;
    uint32_t len = 0;
    util_uuid(cs->uuid[cs->n]);
    plist_dict_set_item(command, "RequestType", plist_new_string(request_type));
    plist_dict_set_item(root, "Command", command);
    plist_dict_set_item(root, "CommandUUID", plist_new_string(cs->uuid[cs->n]));
    plist_to_xml(root, &xml, &len);
    plist_free(root);
    cs->c[cs->n] = (struct store_cmd){cs->uuid[cs->n], request_type, xml, len};
    cs->n++;
}

static void mdm_provision_grant(struct mdm_provision_cmds *cs, const struct store_grant *g)
{
    plist_t cmd = plist_new_dict();
    if (g->kind == STORE_CONTENT_PROFILE) {
        plist_dict_set_item(cmd, "Payload", plist_new_data(g->body, g->body_len));
        mdm_provision_add(cs, "InstallProfile", cmd);
    } else if (g->kind == STORE_CONTENT_PROVPROFILE) {
        plist_dict_set_item(cmd, "ProvisioningProfile", plist_new_data(g->body, g->body_len));
        mdm_provision_add(cs, "InstallProvisioningProfile", cmd);
    } else {
        if (*g->manifest_url != '\0')
            plist_dict_set_item(cmd, "ManifestURL", plist_new_string(g->manifest_url));
        else
            plist_dict_set_item(cmd, "iTunesStoreID",
                                plist_new_uint(strtoull(g->itunes_store_id, NULL, 10)));
        /* 1: remove the app when the MDM profile is removed. */
        plist_dict_set_item(cmd, "ManagementFlags", plist_new_uint(1));
        mdm_provision_add(cs, "InstallApplication", cmd);
    }
}

static void mdm_provision_device_info(struct mdm_provision_cmds *cs)
{
    plist_t cmd = plist_new_dict(), q = plist_new_array();
    for (const char *const *k = mdm_provision_queries; *k != NULL; k++)
        plist_array_append_item(q, plist_new_string(*k));
    plist_dict_set_item(cmd, "Queries", q);
    mdm_provision_add(cs, "DeviceInformation", cmd);
}

static void mdm_provision_finish(struct mdm_provision *p)
{
    p->done(p->arg);
    free(p);
}

static void mdm_provision_on_queued(void *arg, int err, long queued,
                                    const struct store_push_target *push)
{
    struct mdm_provision *p = arg;
    if (err != MDMD_OK) {
        log_err("event=provision_failed udid=%s step=queue err=%s", p->udid, mdmd_strerror(err));
    } else {
        log_info("event=provisioned udid=%s user=%s queued=%ld push=%d", p->udid,
                 *p->user ? p->user : "-", queued, push != NULL);
        if (push != NULL)
            wake_devices(p->app->wake, push, 1);
    }
    mdm_provision_finish(p);
}

static void mdm_provision_on_grants(void *arg, int err, const char *user,
                                    const struct store_grant *g, size_t n)
{
    struct mdm_provision *p = arg;
    if (err != MDMD_OK) {
        log_err("event=provision_failed udid=%s step=grants err=%s", p->udid, mdmd_strerror(err));
        mdm_provision_finish(p);
        return;
    }
    snprintf(p->user, sizeof(p->user), "%s", user);
    struct mdm_provision_cmds cs = {xcalloc(n + 1, sizeof(*cs.c)), xcalloc(n + 1, 37), 0};
    for (size_t i = 0; i < n; i++)
        mdm_provision_grant(&cs, &g[i]);
    mdm_provision_device_info(&cs);
    /* The store copies the arguments before this returns. */
    store_content_provision(p->app->store, p->udid, cs.c, cs.n, util_now_ms(),
                            MDM_PROVISION_CMD_TTL_S, mdm_provision_on_queued, p);
    for (size_t i = 0; i < cs.n; i++)
        free((char *)cs.c[i].plist);
    free(cs.c);
    free(cs.uuid);
}

void mdm_provision_start(struct app *app, const char *udid, mdm_provision_done_fn *done, void *arg)
{
    struct mdm_provision *p = xcalloc(1, sizeof(*p));
    p->app = app;
    p->done = done;
    p->arg = arg;
    snprintf(p->udid, sizeof(p->udid), "%s", udid);
    store_content_grants(app->store, udid, mdm_provision_on_grants, p);
}
