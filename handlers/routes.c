#include "routes.h"

#include "api/api.h"
#include "enroll/enroll.h"
#include "console/console.h"
#include "ddm/ddm.h"
#include "mdm/mdm.h"

#define H_DEVICE_PUT (HTTP_M_PUT | HTTP_M_POST) /* devices PUT; some tools POST */

/* /v1/devices/{udid}/status is declarative status (api_ddm.c); the rest
 * of /v1/devices/ the device API's. */
static void routes_device(struct req *req, void *app)
{
    if (api_ddm_is_status(req_path(req)))
        api_ddm_status(req, app);
    else
        api_device(req, app);
}

const struct http_route routes_public[] = {
    {HTTP_M_GET | HTTP_M_HEAD, "/healthz", api_health, HTTP_BODY_SMALL},
    {HTTP_M_GET | HTTP_M_HEAD, "/mdm/ca", enroll_ca_cert, HTTP_BODY_SMALL},
    {HTTP_M_GET | HTTP_M_HEAD | HTTP_M_POST, "/enroll", enroll_page, HTTP_BODY_SMALL},
    {HTTP_M_POST, "/enroll/ota", enroll_ota, HTTP_BODY_SMALL},
    {HTTP_M_GET | HTTP_M_POST, "/enroll/profile", enroll_scep_profile, HTTP_BODY_SMALL},
    {HTTP_M_GET | HTTP_M_POST, "/scep", enroll_scep, HTTP_BODY_SMALL},
    {HTTP_M_GET | HTTP_M_HEAD, "/", console_root, HTTP_BODY_SMALL},
    {HTTP_M_GET | HTTP_M_HEAD, "/console", console_root, HTTP_BODY_SMALL},
    {HTTP_M_GET | HTTP_M_POST | HTTP_M_PUT | HTTP_M_DELETE | HTTP_M_PATCH, "/console/api/*",
     console_api, HTTP_BODY_LARGE},
    {HTTP_M_GET | HTTP_M_HEAD, "/console/*", console_static, HTTP_BODY_SMALL},
    {HTTP_M_POST, "/v1/commands", api_commands, HTTP_BODY_LARGE},
    {HTTP_M_DELETE, "/v1/commands/*", api_fleet_command, HTTP_BODY_SMALL},
    {HTTP_M_GET, "/v1/webhooks", api_fleet_webhooks, HTTP_BODY_SMALL},
    {HTTP_M_GET | HTTP_M_POST, "/v1/webhooks/*", api_fleet_webhooks, HTTP_BODY_SMALL},
    {HTTP_M_GET, "/v1/fleet", api_fleet_stats, HTTP_BODY_SMALL},
    {HTTP_M_GET, "/v1/events", api_fleet_events, HTTP_BODY_SMALL},
    {HTTP_M_POST, "/v1/push", api_push, HTTP_BODY_SMALL},
    {HTTP_M_GET | HTTP_M_PUT, "/v1/push-certificate", api_push_cert, HTTP_BODY_SMALL},
    {HTTP_M_GET, "/v1/devices", api_devices, HTTP_BODY_SMALL},
    {HTTP_M_GET | HTTP_M_DELETE | HTTP_M_PUT, "/v1/devices/*", routes_device, HTTP_BODY_SMALL},
    {HTTP_M_GET | HTTP_M_PUT | HTTP_M_DELETE, "/v1/return-to-service", api_rts_fleet,
     HTTP_BODY_LARGE},
    {HTTP_M_GET, "/v1/token-sources", api_token_sources, HTTP_BODY_SMALL},
    {HTTP_M_GET | HTTP_M_PUT | HTTP_M_DELETE, "/v1/token-sources/*", api_token_source,
     HTTP_BODY_SMALL},
    /* Up to 5,000 Authenticate/TokenUpdate plists in base64. */
    {HTTP_M_POST, "/v1/migrate", api_migrate, HTTP_BODY_LARGE},
    {HTTP_M_GET, "/v1/jobs/*", api_jobs_get, HTTP_BODY_SMALL},
    {HTTP_M_GET, "/v1/openapi.json", api_openapi, HTTP_BODY_SMALL},
    {HTTP_M_GET, "/metrics", api_metrics, HTTP_BODY_SMALL},
    {HTTP_M_GET | HTTP_M_POST, "/v1/users", api_users_collection, HTTP_BODY_SMALL},
    {HTTP_M_GET | HTTP_M_DELETE | HTTP_M_PUT | HTTP_M_POST, "/v1/users/*", api_users_item,
     HTTP_BODY_SMALL},
    /* Uploads (profiles: MBs with embedded certificates) and raw command
     * plists take max_body_size; the rest, small JSON, max_small_body_size. */
    {HTTP_M_GET | HTTP_M_POST, "/v1/profiles", api_content_profiles, HTTP_BODY_LARGE},
    {HTTP_M_GET | HTTP_M_DELETE | HTTP_M_PUT, "/v1/profiles/*", api_content_profile,
     HTTP_BODY_LARGE},
    {HTTP_M_GET | HTTP_M_POST, "/v1/provisioning-profiles", api_content_provprofiles,
     HTTP_BODY_LARGE},
    {HTTP_M_GET | HTTP_M_DELETE | HTTP_M_PUT, "/v1/provisioning-profiles/*",
     api_content_provprofile, HTTP_BODY_LARGE},
    {HTTP_M_GET | HTTP_M_POST, "/v1/apps", api_content_apps, HTTP_BODY_SMALL},
    {HTTP_M_GET | HTTP_M_DELETE | HTTP_M_PUT, "/v1/apps/*", api_content_app, HTTP_BODY_SMALL},
    /* Declarations are JSON of any size an admin writes; assets are data. */
    {HTTP_M_GET, "/v1/declarations", api_ddm_declarations, HTTP_BODY_SMALL},
    {HTTP_M_GET | HTTP_M_DELETE | HTTP_M_PUT, "/v1/declarations/*", api_ddm_declaration,
     HTTP_BODY_LARGE},
    {HTTP_M_GET, "/v1/declaration-sets", api_ddm_sets, HTTP_BODY_SMALL},
    {HTTP_M_GET | HTTP_M_DELETE | HTTP_M_PUT, "/v1/declaration-sets/*", api_ddm_set,
     HTTP_BODY_SMALL},
    {HTTP_M_GET, "/v1/ddm/status", api_ddm_fleet, HTTP_BODY_SMALL},
    {HTTP_M_GET, "/v1/assets", api_ddm_assets, HTTP_BODY_SMALL},
    {HTTP_M_GET | HTTP_M_DELETE | HTTP_M_PUT, "/v1/assets/*", api_ddm_asset, HTTP_BODY_LARGE},
    {0, NULL, NULL, HTTP_BODY_SMALL},
};

/* scep_listen: plain HTTP, SCEP only (its messages are signed and encrypted). */
const struct http_route routes_scep[] = {
    {HTTP_M_GET | HTTP_M_POST, "/scep", enroll_scep, HTTP_BODY_SMALL},
    {0, NULL, NULL, HTTP_BODY_SMALL},
};

/* Asset data (GET /v1/assets/{name}) is served here too, to devices only: ddm.h. */
const struct http_route routes_mdm[] = {
    {H_DEVICE_PUT, "/mdm/checkin", mdm_checkin, HTTP_BODY_SMALL},
    /* Command reports: InstalledApplicationList and the like reach MBs. */
    {H_DEVICE_PUT, "/mdm/connect", mdm_connect, HTTP_BODY_LARGE},
    {H_DEVICE_PUT, "/mdm", mdm_any, HTTP_BODY_LARGE},
    {HTTP_M_GET, "/v1/assets/*", ddm_asset_fetch, HTTP_BODY_SMALL},
    {0, NULL, NULL, HTTP_BODY_SMALL},
};
