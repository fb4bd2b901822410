/* ddm_asset.c: asset data served to devices (ddm.h).  An asset declaration
 * (com.apple.asset.data, ...) with Reference.DataURL <mdm_url>/v1/assets/<name>
 * and Authentication.Type MDM makes the device fetch it with its identity
 * certificate, as on every MDM request; the store checks that the
 * certificate is the one bound to that enrolled device. */
#include "ddm.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/app.h"
#include "../../core/http.h"
#include "../../core/log.h"
#include "../../core/tls.h"
#include "../../core/util.h"
#include "../../store/store_ddm.h"
#include "../../store/store_mdm.h"

#define DDM_ASSET_PREFIX "/v1/assets/"

struct ddm_asset {
    struct req *req;
    char udid[65];
    char name[201];
};

int ddm_asset_name_ok(const char *name)
{
    size_t n = strlen(name);
    return n >= 1 && n <= 200 &&
           strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._@+-") == n;
}

static void ddm_asset_on_fetch(void *arg, int err, json_t *r)
{
    struct ddm_asset *a = arg;
    int ident = err == MDMD_OK ? store_ddm_ident(r) : STORE_ID_OK;
    if (err != MDMD_OK) {
        req_respond(a->req, 503, NULL, NULL, 0);
    } else if (ident != STORE_ID_OK) {
        log_warn("event=device_refused udid=%s peer=%s reason=%s endpoint=asset", a->udid,
                 req_peer(a->req), store_ident_str(ident));
        req_respond(a->req, 403, NULL, NULL, 0);
    } else if (json_array_size(r) < 3) {
        req_fail(a->req, 404, "no such asset");
    } else {
        json_t *body = json_array_get(r, 2);
        const char *ct = json_string_value(json_array_get(r, 1));
        log_info("event=asset_served udid=%s name=%s bytes=%zu", a->udid, a->name,
                 json_string_length(body));
        req_respond(a->req, 200, ct != NULL && *ct ? ct : "application/octet-stream",
                    json_string_value(body), json_string_length(body));
    }
    free(a);
}

void ddm_asset_fetch(struct req *req, void *app)
{
    struct app *ap = app;
    X509 *cert = req_client_cert(req);
    char fp[65];
    const char *name = req_path(req) + strlen(DDM_ASSET_PREFIX);
    struct ddm_asset *a = xcalloc(1, sizeof(*a));
    a->req = req;
    /* The identity certificate names the device (CN = UDID). */
    if (cert == NULL || tls_cert_cn(cert, a->udid, sizeof(a->udid)) != 0 ||
        !util_udid_valid(a->udid, strlen(a->udid))) {
        log_warn("event=device_refused peer=%s reason=no_device_cert endpoint=asset",
                 req_peer(req));
        req_respond(req, 403, NULL, NULL, 0);
        free(a);
        return;
    }
    if (!ddm_asset_name_ok(name)) {
        req_fail(req, 404, "no such asset");
        free(a);
        return;
    }
    snprintf(a->name, sizeof(a->name), "%s", name);
    tls_cert_fp(cert, fp);
    const char *argv[] = {a->udid, fp, a->name};
    store_ddm(ap->store, STORE_DDM_ASSET_FETCH, 3, argv, NULL, ddm_asset_on_fetch, a);
}
