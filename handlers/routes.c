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
    {HTTP_M_GET | HTTP_M_HEAD, "/healthz", api_health},
    {HTTP_M_GET | HTTP_M_HEAD, "/mdm/ca", enroll_ca_cert},
    {HTTP_M_GET | HTTP_M_HEAD | HTTP_M_POST, "/enroll", enroll_page},
    {HTTP_M_POST, "/enroll/ota", enroll_ota},
    {HTTP_M_GET | HTTP_M_POST, "/enroll/profile", enroll_scep_profile},
    {HTTP_M_GET | HTTP_M_POST, "/scep", enroll_scep},
    {HTTP_M_GET | HTTP_M_HEAD, "/", console_root},
    {HTTP_M_GET | HTTP_M_HEAD, "/console", console_root},
    {HTTP_M_GET | HTTP_M_POST | HTTP_M_PUT | HTTP_M_DELETE | HTTP_M_PATCH, "/console/api/*",
     console_api},
    {HTTP_M_GET | HTTP_M_HEAD, "/console/*", console_static},
    {HTTP_M_POST, "/v1/commands", api_commands},
    {HTTP_M_POST, "/v1/push", api_push},
    {HTTP_M_GET, "/v1/devices", api_devices},
    {HTTP_M_GET | HTTP_M_DELETE, "/v1/devices/*", routes_device},
    {HTTP_M_GET, "/v1/jobs/*", api_jobs_get},
    {HTTP_M_GET, "/v1/openapi.json", api_openapi},
    {HTTP_M_GET, "/metrics", api_metrics},
    {HTTP_M_GET | HTTP_M_POST, "/v1/users", api_users_collection},
    {HTTP_M_GET | HTTP_M_DELETE | HTTP_M_PUT | HTTP_M_POST, "/v1/users/*", api_users_item},
    {HTTP_M_GET | HTTP_M_POST, "/v1/profiles", api_content_profiles},
    {HTTP_M_GET | HTTP_M_DELETE | HTTP_M_PUT, "/v1/profiles/*", api_content_profile},
    {HTTP_M_GET | HTTP_M_POST, "/v1/provisioning-profiles", api_content_provprofiles},
    {HTTP_M_GET | HTTP_M_DELETE | HTTP_M_PUT, "/v1/provisioning-profiles/*",
     api_content_provprofile},
    {HTTP_M_GET | HTTP_M_POST, "/v1/apps", api_content_apps},
    {HTTP_M_GET | HTTP_M_DELETE | HTTP_M_PUT, "/v1/apps/*", api_content_app},
    {HTTP_M_GET, "/v1/declarations", api_ddm_declarations},
    {HTTP_M_GET | HTTP_M_DELETE | HTTP_M_PUT, "/v1/declarations/*", api_ddm_declaration},
    {HTTP_M_GET, "/v1/declaration-sets", api_ddm_sets},
    {HTTP_M_GET | HTTP_M_DELETE | HTTP_M_PUT, "/v1/declaration-sets/*", api_ddm_set},
    {HTTP_M_GET, "/v1/ddm/status", api_ddm_fleet},
    {HTTP_M_GET, "/v1/assets", api_ddm_assets},
    {HTTP_M_GET | HTTP_M_DELETE | HTTP_M_PUT, "/v1/assets/*", api_ddm_asset},
    {0, NULL, NULL},
};

/* scep_listen: plain HTTP, SCEP only (its messages are signed and encrypted). */
const struct http_route routes_scep[] = {
    {HTTP_M_GET | HTTP_M_POST, "/scep", enroll_scep},
    {0, NULL, NULL},
};

/* Asset data (GET /v1/assets/{name}) is served here too, to devices only: ddm.h. */
const struct http_route routes_mdm[] = {
    {H_DEVICE_PUT, "/mdm/checkin", mdm_checkin},
    {H_DEVICE_PUT, "/mdm/connect", mdm_connect},
    {H_DEVICE_PUT, "/mdm", mdm_any},
    {HTTP_M_GET, "/v1/assets/*", ddm_asset_fetch},
    {0, NULL, NULL},
};
