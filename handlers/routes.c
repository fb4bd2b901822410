#include "routes.h"

#include "api/api.h"
#include "enroll/enroll.h"
#include "console/console.h"
#include "mdm/mdm.h"

#define H_DEVICE_PUT (HTTP_M_PUT | HTTP_M_POST) /* devices PUT; some tools POST */

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
    {HTTP_M_DELETE, "/v1/commands/*", api_fleet_command},
    {HTTP_M_GET, "/v1/webhooks", api_fleet_webhooks},
    {HTTP_M_GET | HTTP_M_POST, "/v1/webhooks/*", api_fleet_webhooks},
    {HTTP_M_GET, "/v1/fleet", api_fleet_stats},
    {HTTP_M_POST, "/v1/push", api_push},
    {HTTP_M_GET, "/v1/devices", api_devices},
    {HTTP_M_GET | HTTP_M_DELETE | HTTP_M_PUT, "/v1/devices/*", api_device},
    {HTTP_M_GET | HTTP_M_PUT | HTTP_M_DELETE, "/v1/return-to-service", api_rts_fleet},
    {HTTP_M_GET, "/v1/token-sources", api_token_sources},
    {HTTP_M_GET | HTTP_M_PUT | HTTP_M_DELETE, "/v1/token-sources/*", api_token_source},
    {HTTP_M_POST, "/v1/migrate", api_migrate},
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
    {0, NULL, NULL},
};

/* scep_listen: plain HTTP, SCEP only (its messages are signed and encrypted). */
const struct http_route routes_scep[] = {
    {HTTP_M_GET | HTTP_M_POST, "/scep", enroll_scep},
    {0, NULL, NULL},
};

const struct http_route routes_mdm[] = {
    {H_DEVICE_PUT, "/mdm/checkin", mdm_checkin},
    {H_DEVICE_PUT, "/mdm/connect", mdm_connect},
    {H_DEVICE_PUT, "/mdm", mdm_any},
    {0, NULL, NULL},
};
