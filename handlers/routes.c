#include "routes.h"

#include "h_admin.h"
#include "h_ca.h"
#include "h_console.h"
#include "h_health.h"
#include "h_jobs.h"
#include "h_metrics.h"
#include "h_openapi.h"
#include "h_mdm.h"
#include "h_enroll.h"
#include "h_users.h"
#include "h_content.h"
#include "h_scep.h"

#define H_DEVICE_PUT (HTTP_M_PUT | HTTP_M_POST)   /* devices PUT; some tools POST */

const struct http_route routes_public[] = {
    {HTTP_M_GET | HTTP_M_HEAD, "/healthz", h_health, HTTP_BODY_SMALL},
    {HTTP_M_GET | HTTP_M_HEAD, "/mdm/ca", h_ca_cert, HTTP_BODY_SMALL},
    {HTTP_M_GET | HTTP_M_HEAD | HTTP_M_POST, "/enroll", h_enroll_page, HTTP_BODY_SMALL},
    {HTTP_M_POST, "/enroll/ota", h_enroll_ota, HTTP_BODY_SMALL},
    {HTTP_M_GET | HTTP_M_POST, "/enroll/profile", h_scep_profile, HTTP_BODY_SMALL},
    {HTTP_M_GET | HTTP_M_POST, "/scep", h_scep, HTTP_BODY_SMALL},
    {HTTP_M_GET | HTTP_M_HEAD, "/", h_console_root, HTTP_BODY_SMALL},
    {HTTP_M_GET | HTTP_M_HEAD, "/console", h_console_root, HTTP_BODY_SMALL},
    {HTTP_M_GET | HTTP_M_POST | HTTP_M_PUT | HTTP_M_DELETE | HTTP_M_PATCH, "/console/api/*",
     h_console_api, HTTP_BODY_LARGE},
    {HTTP_M_GET | HTTP_M_HEAD, "/console/*", h_console_static, HTTP_BODY_SMALL},
    {HTTP_M_POST, "/v1/commands", h_admin_commands, HTTP_BODY_LARGE},
    {HTTP_M_POST, "/v1/push", h_admin_push, HTTP_BODY_SMALL},
    {HTTP_M_GET, "/v1/devices", h_admin_devices, HTTP_BODY_SMALL},
    {HTTP_M_GET | HTTP_M_DELETE, "/v1/devices/*", h_admin_device, HTTP_BODY_SMALL},
    {HTTP_M_GET, "/v1/jobs/*", h_jobs_get, HTTP_BODY_SMALL},
    {HTTP_M_GET, "/v1/openapi.json", h_openapi, HTTP_BODY_SMALL},
    {HTTP_M_GET, "/metrics", h_metrics, HTTP_BODY_SMALL},
    {HTTP_M_GET | HTTP_M_POST, "/v1/users", h_users_collection, HTTP_BODY_SMALL},
    {HTTP_M_GET | HTTP_M_DELETE | HTTP_M_PUT | HTTP_M_POST, "/v1/users/*", h_users_item,
     HTTP_BODY_SMALL},
    /* Uploads (profiles: MBs with embedded certificates) and raw command
     * plists take max_body_size; the rest, small JSON, max_small_body_size. */
    {HTTP_M_GET | HTTP_M_POST, "/v1/profiles", h_content_profiles, HTTP_BODY_LARGE},
    {HTTP_M_GET | HTTP_M_DELETE | HTTP_M_PUT, "/v1/profiles/*", h_content_profile,
     HTTP_BODY_LARGE},
    {HTTP_M_GET | HTTP_M_POST, "/v1/provisioning-profiles", h_content_provprofiles,
     HTTP_BODY_LARGE},
    {HTTP_M_GET | HTTP_M_DELETE | HTTP_M_PUT, "/v1/provisioning-profiles/*",
     h_content_provprofile, HTTP_BODY_LARGE},
    {HTTP_M_GET | HTTP_M_POST, "/v1/apps", h_content_apps, HTTP_BODY_SMALL},
    {HTTP_M_GET | HTTP_M_DELETE | HTTP_M_PUT, "/v1/apps/*", h_content_app, HTTP_BODY_SMALL},
    {0, NULL, NULL, HTTP_BODY_SMALL},
};

/* scep_listen: plain HTTP, SCEP only (its messages are signed and encrypted). */
const struct http_route routes_scep[] = {
    {HTTP_M_GET | HTTP_M_POST, "/scep", h_scep, HTTP_BODY_SMALL},
    {0, NULL, NULL, HTTP_BODY_SMALL},
};

const struct http_route routes_mdm[] = {
    {H_DEVICE_PUT, "/mdm/checkin", h_mdm_checkin, HTTP_BODY_SMALL},
    /* Command reports: InstalledApplicationList and the like reach MBs. */
    {H_DEVICE_PUT, "/mdm/connect", h_mdm_connect, HTTP_BODY_LARGE},
    {H_DEVICE_PUT, "/mdm", h_mdm_any, HTTP_BODY_LARGE},
    {0, NULL, NULL, HTTP_BODY_SMALL},
};
