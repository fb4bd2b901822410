#include "mdm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../ca/ca_scep.h"
#include "../../core/app.h"
#include "../../core/conf.h"
#include "../../core/http.h"
#include "../../core/log.h"
#include "../../core/tls.h"
#include "../../core/util.h"
#include "../../core/worker.h"
#include "../apple/apple.h"

/* ---- who sent the request: one function per method (mdm_auth) ----
 * Each fills the CN and fingerprint of the certificate that identifies the
 * device, or returns why there is none.  The UDID and enrollment-binding
 * checks after them are the same for all. */

static const char *mdm_id_tls(struct mdm_msg *m, struct ca_devid *id)
{
    X509 *cert = req_client_cert(m->req);
    if (cert == NULL)
        return "no_client_cert";
    if (tls_cert_cn(cert, id->cn, sizeof(id->cn)) != 0)
        id->cn[0] = '\0';
    tls_cert_fp(cert, id->fp);
    return NULL;
}

/* Mdm-Signature: a detached CMS signature over the exact body bytes. */
static const char *mdm_id_signature(struct mdm_msg *m, struct ca_devid *id)
{
    size_t len;
    const unsigned char *body = req_body(m->req, &len);
    int rc = ca_devauth_signature(m->app->ca, req_header(m->req, "Mdm-Signature"), body, len, id);
    return rc == CA_DEVAUTH_OK ? NULL : ca_devauth_str(rc);
}

static int mdm_trusted_proxy(const char *list, const char *peer)
{
    size_t n = strlen(peer);
    for (const char *p = list; *p != '\0';) {
        size_t w = strcspn(p, " \t,");
        if (w == n && strncmp(p, peer, n) == 0)
            return 1;
        p += w;
        p += strspn(p, " \t,");
    }
    return 0;
}

/* RFC 9440 Client-Cert from a TLS-terminating proxy: only from the
 * configured proxies, since anyone else could claim any certificate. */
static const char *mdm_id_proxy(struct mdm_msg *m, struct ca_devid *id)
{
    if (!mdm_trusted_proxy(m->app->cf->mdm_trusted_proxies, req_peer(m->req)))
        return "client_cert_header_from_untrusted_peer";
    int rc = ca_devauth_header_cert(m->app->ca, req_header(m->req, "Client-Cert"), id);
    return rc == CA_DEVAUTH_OK ? NULL : ca_devauth_str(rc);
}

/* A signature, when one came and signatures count; else the TLS client
 * certificate; else a proxy's Client-Cert header.  A bad signature is not
 * overruled by a certificate. */
static const char *mdm_authenticate(struct mdm_msg *m, struct ca_devid *id)
{
    const struct conf *cf = m->app->cf;
    if (cf->mdm_auth_sig && req_header(m->req, "Mdm-Signature") != NULL)
        return mdm_id_signature(m, id);
    if (!cf->mdm_auth_tls)
        return "no_signature";
    if (req_client_cert(m->req) != NULL)
        return mdm_id_tls(m, id);
    if (cf->mdm_trust_client_cert_header && req_header(m->req, "Client-Cert") != NULL)
        return mdm_id_proxy(m, id);
    return "no_client_cert";
}

static int mdm_identity(struct mdm_msg *m)
{
    struct ca_devid id = {{0}, {0}};
    char *udid = apple_plist_dict_string(m->body, "UDID");

    if (udid == NULL || !util_udid_valid(udid, strlen(udid))) {
        free(udid);
        req_fail(m->req, 400, "missing or malformed UDID");
        return -1;
    }
    snprintf(m->udid, sizeof(m->udid), "%s", udid);
    free(udid);
    const char *why = mdm_authenticate(m, &id);
    if (why != NULL) {
        log_warn("event=device_refused udid=%s peer=%s reason=%s", m->udid, req_peer(m->req), why);
        req_respond(m->req, 403, NULL, NULL, 0);
        return -1;
    }
    memcpy(m->fp, id.fp, sizeof(m->fp));
    /* CN = UDID is the usual identity.  A CN that is not the UDID is left to
     * the store: only a SCEP certificate requested with a non-UDID Subject
     * (bound to its UDID at its first Authenticate) may act that way; for
     * any other certificate the binding check fails and is logged as
     * cn_mismatch. */
    m->cn_differs = strcmp(id.cn, m->udid) != 0;
    return 0;
}

/* A parse in flight: on the loop for small bodies, else on the worker. */
struct mdm_parse {
    struct req *req;
    struct app *app;
    mdm_next_fn *next;
    const unsigned char *body; /* req's own buffer: valid until it is answered */
    size_t len;
    plist_t pl;
    char why[128];
};

static void mdm_parse_job(void *arg)
{
    struct mdm_parse *p = arg;
    p->pl = apple_plist_parse(p->body, p->len, p->why, sizeof(p->why));
}

static void mdm_parsed(void *arg)
{
    struct mdm_parse *p = arg;
    plist_t pl = p->pl;
    if (pl == NULL && p->why[0] == '\0') { /* the worker is stopping: it never ran */
        req_fail(p->req, 503, "shutting down");
        free(p);
        return;
    }
    if (pl == NULL || plist_get_node_type(pl) != PLIST_DICT) {
        if (pl != NULL)
            snprintf(p->why, sizeof(p->why), "body is not a plist dictionary");
        plist_free(pl);
        req_fail(p->req, 400, p->why);
        free(p);
        return;
    }
    struct mdm_msg *m = xcalloc(1, sizeof(*m));
    m->req = p->req;
    m->app = p->app;
    m->body = pl;
    mdm_next_fn *next = p->next;
    free(p);
    if (mdm_identity(m) != 0)
        mdm_done(m);
    else
        next(m);
}

void mdm_begin(struct req *req, struct app *app, mdm_next_fn *next)
{
    struct mdm_parse *p = xcalloc(1, sizeof(*p));
    p->req = req;
    p->app = app;
    p->next = next;
    p->body = req_body(req, &p->len);
    if (p->len <= MDM_INLINE_PARSE || app->worker == NULL) {
        mdm_parse_job(p);
        mdm_parsed(p);
    } else {
        worker_submit(app->worker, mdm_parse_job, mdm_parsed, p);
    }
}

void mdm_done(struct mdm_msg *m)
{
    if (m == NULL)
        return;
    plist_free(m->body);
    for (size_t i = 0; i < m->nowned; i++)
        free(m->owned[i]);
    free(m);
}

char *mdm_own(struct mdm_msg *m, char *s)
{
    if (m->nowned == ARRAY_LEN(m->owned)) {
        free(s);
        return NULL;
    }
    m->owned[m->nowned++] = s;
    return s;
}

void mdm_field_take(struct mdm_msg *m, const char *key, char *value)
{
    if (value == NULL)
        return;
    if (m->nfields == MDM_MAX_FIELDS || mdm_own(m, value) == NULL)
        return;
    m->fields[m->nfields].key = key;
    m->fields[m->nfields].val = value;
    m->fields[m->nfields].len = strlen(value);
    m->nfields++;
}

/* Strings as they are; numbers and booleans as text, for the record hash. */
static char *mdm_scalar_text(plist_t v)
{
    char *s = NULL;
    uint64_t u;
    double d;
    uint8_t b;
    switch (v != NULL ? plist_get_node_type(v) : PLIST_NONE) {
    case PLIST_STRING: plist_get_string_val(v, &s); return s;
    case PLIST_UINT: plist_get_uint_val(v, &u); return xasprintf("%llu", (unsigned long long)u);
    case PLIST_REAL: plist_get_real_val(v, &d); return xasprintf("%.6g", d);
    case PLIST_BOOLEAN: plist_get_bool_val(v, &b); return xstrdup(b ? "true" : "false");
    default: return NULL;
    }
}

void mdm_fields_from(struct mdm_msg *m, plist_t dict, const char *const (*map)[2])
{
    if (dict == NULL || plist_get_node_type(dict) != PLIST_DICT)
        return;
    for (; (*map)[0] != NULL; map++)
        mdm_field_take(m, (*map)[1], mdm_scalar_text(plist_dict_get_item(dict, (*map)[0])));
}

int mdm_refuse(struct mdm_msg *m, int err, int ident)
{
    if (err != MDMD_OK) {
        log_warn("event=device_request_failed udid=%s reason=redis_%s", m->udid,
                 mdmd_strerror(err));
        req_respond(m->req, 503, NULL, NULL, 0);
        return 1;
    }
    if (ident == STORE_ID_OK)
        return 0;
    if (ident == STORE_ID_CERT_MISMATCH && m->cn_differs)
        ident = STORE_ID_CN_MISMATCH;
    log_warn("event=device_refused udid=%s peer=%s reason=%s", m->udid, req_peer(m->req),
             store_ident_str(ident));
    req_respond(m->req, 403, NULL, NULL, 0);
    return 1;
}

struct store_device_msg mdm_device_msg(struct mdm_msg *m)
{
    struct store_device_msg msg = {m->udid,       m->fp,
                                   util_now_ms(), m->fields,
                                   m->nfields,    m->app->cf->enroll_require_issued,
                                   m->cn_differs, m->app->cf->provision_on_enroll};
    return msg;
}

void mdm_answer(struct mdm_msg *m, plist_t answer)
{
    char *xml = NULL;
    uint32_t len = 0;
    plist_to_xml(answer, &xml, &len);
    plist_free(answer);
    if (xml == NULL)
        req_respond(m->req, 500, NULL, NULL, 0);
    else
        req_respond(m->req, 200, "application/xml; charset=UTF-8", xml, len);
    free(xml);
}

void mdm_any(struct req *req, void *app)
{
    const char *ct = req_header(req, "Content-Type");
    if (ct != NULL && strncmp(ct, "application/x-apple-aspen-mdm-checkin", 37) == 0)
        mdm_checkin(req, app);
    else
        mdm_connect(req, app);
}
