#include "h_mdm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/app.h"
#include "../core/http.h"
#include "../core/log.h"
#include "../core/tls.h"
#include "../core/util.h"
#include "plist_json.h"

/* UDIDs end up inside Redis key names with a hash tag: refuse anything
 * that could break out of it. */
int h_mdm_udid_valid(const char *u, size_t n)
{
    static const char ok[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_.";
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (u[i] == '\0' || strchr(ok, u[i]) == NULL)
            return 0;
    return 1;
}

static int h_mdm_identity(struct h_mdm *m)
{
    X509 *cert = req_client_cert(m->req);
    char cn[128];
    char *udid = pj_dict_string(m->body, "UDID");

    if (udid == NULL || !h_mdm_udid_valid(udid, strlen(udid))) {
        free(udid);
        req_fail(m->req, 400, "missing or malformed UDID");
        return -1;
    }
    snprintf(m->udid, sizeof(m->udid), "%s", udid);
    free(udid);
    if (cert == NULL || tls_cert_cn(cert, cn, sizeof(cn)) != 0 || strcmp(cn, m->udid) != 0) {
        log_warn("event=device_refused udid=%s peer=%s reason=cn_mismatch", m->udid,
                 req_peer(m->req));
        req_respond(m->req, 403, NULL, NULL, 0);
        return -1;
    }
    tls_cert_fp(cert, m->fp);
    return 0;
}

struct h_mdm *h_mdm_begin(struct req *req, struct app *app)
{
    size_t len;
    const unsigned char *body = req_body(req, &len);
    plist_t pl = pj_parse(body, len);

    if (pl == NULL || plist_get_node_type(pl) != PLIST_DICT) {
        plist_free(pl);
        req_fail(req, 400, "body is not a plist dictionary");
        return NULL;
    }
    struct h_mdm *m = xcalloc(1, sizeof(*m));
    m->req = req;
    m->app = app;
    m->body = pl;
    if (h_mdm_identity(m) != 0) {
        h_mdm_done(m);
        return NULL;
    }
    return m;
}

void h_mdm_done(struct h_mdm *m)
{
    if (m == NULL)
        return;
    plist_free(m->body);
    for (size_t i = 0; i < m->nowned; i++)
        free(m->owned[i]);
    free(m);
}

char *h_mdm_own(struct h_mdm *m, char *s)
{
    if (m->nowned == ARRAY_LEN(m->owned)) {
        free(s);
        return NULL;
    }
    m->owned[m->nowned++] = s;
    return s;
}

void h_mdm_field_take(struct h_mdm *m, const char *key, char *value)
{
    if (value == NULL)
        return;
    if (m->nfields == H_MDM_MAX_FIELDS || h_mdm_own(m, value) == NULL)
        return;
    m->fields[m->nfields].key = key;
    m->fields[m->nfields].val = value;
    m->fields[m->nfields].len = strlen(value);
    m->nfields++;
}

/* Strings as they are; numbers and booleans as text, for the record hash. */
static char *h_mdm_scalar_text(plist_t v)
{
    char *s = NULL;
    uint64_t u;
    double d;
    uint8_t b;
    switch (v != NULL ? plist_get_node_type(v) : PLIST_NONE) {
    case PLIST_STRING:
        plist_get_string_val(v, &s);
        return s;
    case PLIST_UINT:
        plist_get_uint_val(v, &u);
        return xasprintf("%llu", (unsigned long long)u);
    case PLIST_REAL:
        plist_get_real_val(v, &d);
        return xasprintf("%.6g", d);
    case PLIST_BOOLEAN:
        plist_get_bool_val(v, &b);
        return xstrdup(b ? "true" : "false");
    default:
        return NULL;
    }
}

void h_mdm_fields_from(struct h_mdm *m, plist_t dict, const char *const (*map)[2])
{
    if (dict == NULL || plist_get_node_type(dict) != PLIST_DICT)
        return;
    for (; (*map)[0] != NULL; map++)
        h_mdm_field_take(m, (*map)[1], h_mdm_scalar_text(plist_dict_get_item(dict, (*map)[0])));
}

int h_mdm_refuse(struct h_mdm *m, int err, int ident)
{
    if (err != MDMD_OK) {
        log_warn("event=device_request_failed udid=%s reason=redis_%s", m->udid,
                 mdmd_strerror(err));
        req_respond(m->req, 503, NULL, NULL, 0);
        return 1;
    }
    if (ident == STORE_ID_OK)
        return 0;
    log_warn("event=device_refused udid=%s peer=%s reason=%s", m->udid, req_peer(m->req),
             store_ident_str(ident));
    req_respond(m->req, 403, NULL, NULL, 0);
    return 1;
}

void h_mdm_any(struct req *req, void *app)
{
    const char *ct = req_header(req, "Content-Type");
    if (ct != NULL && strncmp(ct, "application/x-apple-aspen-mdm-checkin", 37) == 0)
        h_mdm_checkin(req, app);
    else
        h_mdm_connect(req, app);
}
