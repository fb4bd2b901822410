#include "routes.h"

#include "api/api.h"
#include "enroll/enroll.h"
#include "console/console.h"
#include "mdm/mdm.h"

#define H_DEVICE_PUT (HTTP_M_PUT | HTTP_M_POST) /* devices PUT; some tools POST */

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
    {HTTP_M_POST, "/v1/push", api_push, HTTP_BODY_SMALL},
    {HTTP_M_GET, "/v1/devices", api_devices, HTTP_BODY_SMALL},
    {HTTP_M_GET | HTTP_M_DELETE | HTTP_M_PUT, "/v1/devices/*", api_device, HTTP_BODY_SMALL},
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
    {0, NULL, NULL, HTTP_BODY_SMALL},
};

/* scep_listen: plain HTTP, SCEP only (its messages are signed and encrypted). */
const struct http_route routes_scep[] = {
    {HTTP_M_GET | HTTP_M_POST, "/scep", enroll_scep, HTTP_BODY_SMALL},
    {0, NULL, NULL, HTTP_BODY_SMALL},
};

const struct http_route routes_mdm[] = {
    {H_DEVICE_PUT, "/mdm/checkin", mdm_checkin, HTTP_BODY_SMALL},
    /* Command reports: InstalledApplicationList and the like reach MBs. */
    {H_DEVICE_PUT, "/mdm/connect", mdm_connect, HTTP_BODY_LARGE},
    {H_DEVICE_PUT, "/mdm", mdm_any, HTTP_BODY_LARGE},
    {0, NULL, NULL, HTTP_BODY_SMALL},
};
