/* enroll_scep_profile.c: GET/POST /enroll/profile, the SCEP enrollment profile
 * (see enroll.h).  Every key name and type comes from Apple's profile schema
 * (mdm/profiles: TopLevel, CommonPayloadKeys, com.apple.security.root,
 * com.apple.security.scep, com.apple.mdm); test/integration/scep.sh checks
 * what mdmd serves against those files. */
#include "enroll.h"

#include <plist/plist.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../ca/ca.h"
#include "../../core/app.h"
#include "../../core/conf.h"
#include "../../core/http.h"
#include "../../core/util.h"
#include "../../core/log.h"
#include "../../core/worker.h"
#include "../../push/push.h"
#include "../../store/store_scep.h"
#include "enroll_int.h"
#include "../api/api.h"

#define ENROLL_SCEP_FORM_MAX 1024
#define ENROLL_SCEP_WHO_MAX 256
#define ENROLL_SCEP_KEYSIZE 2048
#define ENROLL_SCEP_KEY_USAGE 5     /* 1 signing + 4 encryption */
#define ENROLL_SCEP_ACCESS_ALL 8191 /* every AccessRights bit Apple defines */

struct enroll_scep_prof {
    struct req *req;
    struct app *app;
    int admin; /* the API key: may have ?signed=0 */
    int is_signed;
    char who[ENROLL_SCEP_WHO_MAX]; /* the login's user, "" for key or token */
    char challenge[ENROLL_SCEP_CHALLENGE_LEN];
    /* the signing job: inputs borrowed (read-only, outlive the worker), outputs */
    X509 *sign_cert;
    EVP_PKEY *sign_key;
    X509 *ca_cert;
    char *xml;
    size_t xml_len;
    unsigned char *der;
    size_t der_len;
    int ok;
};

static void enroll_scep_prof_free(struct enroll_scep_prof *p)
{
    free(p->xml);
    free(p->der);
    free(p);
}

/* ---- the profile ---- */

static void enroll_scep_pl_str(plist_t d, const char *k, const char *v)
{
    plist_dict_set_item(d, k, plist_new_string(v));
}

/* The keys CommonPayloadKeys requires, plus a display name. */
static plist_t enroll_scep_payload(const char *type, const char *id, const char *name, char *uuid)
{
    char local[37];
    char *u = uuid != NULL ? uuid : local;
    plist_t p = plist_new_dict();
    util_uuid(u);
    enroll_scep_pl_str(p, "PayloadType", type);
    plist_dict_set_item(p, "PayloadVersion", plist_new_uint(1));
    enroll_scep_pl_str(p, "PayloadIdentifier", id);
    enroll_scep_pl_str(p, "PayloadUUID", u);
    enroll_scep_pl_str(p, "PayloadDisplayName", name);
    return p;
}

/* Subject [[["CN", "%HardwareUUID%"]]]: the device puts in its UDID, the CN
 * the MDM endpoints compare with the UDID of every request. */
static plist_t enroll_scep_subject(void)
{
    plist_t pair = plist_new_array(), rdn = plist_new_array(), subject = plist_new_array();
    plist_array_append_item(pair, plist_new_string("CN"));
    plist_array_append_item(pair, plist_new_string("%HardwareUUID%"));
    plist_array_append_item(rdn, pair);
    plist_array_append_item(subject, rdn);
    return subject;
}

static plist_t enroll_scep_payload_scep(const char *prefix, const char *url, const char *challenge,
                                        char uuid[37])
{
    char *id = xasprintf("%s.scep", prefix);
    plist_t p = enroll_scep_payload("com.apple.security.scep", id, "Device identity (SCEP)", uuid);
    plist_t c = plist_new_dict();
    enroll_scep_pl_str(c, "URL", url);
    enroll_scep_pl_str(c, "Name", prefix);
    plist_dict_set_item(c, "Subject", enroll_scep_subject());
    enroll_scep_pl_str(c, "Challenge", challenge);
    plist_dict_set_item(c, "Keysize", plist_new_uint(ENROLL_SCEP_KEYSIZE));
    enroll_scep_pl_str(c, "Key Type", "RSA");
    plist_dict_set_item(c, "Key Usage", plist_new_uint(ENROLL_SCEP_KEY_USAGE));
    plist_dict_set_item(p, "PayloadContent", c);
    free(id);
    return p;
}

static plist_t enroll_scep_payload_mdm(const char *prefix, const struct conf *cf, const char *topic,
                                       const char *identity_uuid)
{
    char *id = xasprintf("%s.mdm", prefix), *url = xasprintf("%s/mdm/connect", cf->mdm_url);
    char *checkin = xasprintf("%s/mdm/checkin", cf->mdm_url);
    plist_t p = enroll_scep_payload("com.apple.mdm", id, "Mobile device management", NULL);
    plist_t caps = plist_new_array();
    enroll_scep_pl_str(p, "IdentityCertificateUUID", identity_uuid);
    enroll_scep_pl_str(p, "Topic", topic);
    enroll_scep_pl_str(p, "ServerURL", url);
    enroll_scep_pl_str(p, "CheckInURL", checkin);
    plist_dict_set_item(p, "AccessRights", plist_new_uint(ENROLL_SCEP_ACCESS_ALL));
    plist_dict_set_item(p, "CheckOutWhenRemoved", plist_new_bool(1));
    /* Each request carries Mdm-Signature: the device can sit behind a proxy
     * that terminates TLS (mdm_auth signature or any). */
    plist_dict_set_item(p, "SignMessage", plist_new_bool(1));
    plist_array_append_item(caps, plist_new_string("com.apple.mdm.per-user-connections"));
    plist_dict_set_item(p, "ServerCapabilities", caps);
    free(id);
    free(url);
    free(checkin);
    return p;
}

/* "mdmd.<host of public_url>": identifiers unique to this server, so that a
 * new profile replaces the one it installed before. */
static char *enroll_scep_id_prefix(const char *url)
{
    const char *h = strstr(url, "://");
    h = h != NULL ? h + 3 : url;
    h += *h == '[';
    char *out = xasprintf("mdmd.%.*s", (int)strcspn(h, ":/]"), h);
    for (char *c = out; *c != '\0'; c++)
        if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-", *c) == NULL)
            *c = '-';
    return out;
}

static void enroll_scep_build(struct enroll_scep_prof *p, const char *topic)
{
    const struct conf *cf = p->app->cf;
    char *prefix = enroll_scep_id_prefix(cf->public_url), *id = xasprintf("%s.enroll", prefix);
    char *root_id = xasprintf("%s.ca", prefix), uuid[37];
    size_t der_len;
    const unsigned char *ca_der = ca_cert_der(p->app->ca, &der_len);
    plist_t prof = enroll_scep_payload("Configuration", id, "MDM enrollment", NULL);
    plist_t content = plist_new_array(),
            root = enroll_scep_payload("com.apple.security.root", root_id,
                                       "MDM certificate authority", NULL);
    enroll_scep_pl_str(prof, "PayloadDescription",
                       "Enrolls this device in mobile device management: it gets an identity over "
                       "SCEP, then checks in with the server.");
    plist_dict_set_item(root, "PayloadContent", plist_new_data((const char *)ca_der, der_len));
    enroll_scep_pl_str(root, "PayloadCertificateFileName", "mdm-ca.cer");
    plist_array_append_item(content, root);
    plist_array_append_item(content,
                            enroll_scep_payload_scep(prefix, cf->scep_url, p->challenge, uuid));
    plist_array_append_item(content, enroll_scep_payload_mdm(prefix, cf, topic, uuid));
    plist_dict_set_item(prof, "PayloadContent", content);
    char *xml = NULL;
    uint32_t n = 0;
    plist_to_xml(prof, &xml, &n);
    p->xml = xstrndup(xml != NULL ? xml : "", xml != NULL ? n : 0);
    p->xml_len = xml != NULL ? n : 0;
    free(xml);
    plist_free(prof);
    free(prefix);
    free(id);
    free(root_id);
}

/* ---- signing (worker) and the answer ---- */

static void enroll_scep_prof_job(void *arg)
{
    struct enroll_scep_prof *p = arg;
    p->ok = ca_cms_sign(p->sign_cert, p->sign_key, &p->ca_cert, 1, p->xml, p->xml_len, &p->der,
                        &p->der_len) == 0;
}

static void enroll_scep_prof_on_signed(void *arg)
{
    struct enroll_scep_prof *p = arg;
    if (worker_canceled(p->app->worker) || !p->ok)
        req_fail(p->req, 503, "could not sign the profile");
    else
        req_respond(p->req, 200, ENROLL_SCEP_CT_PROFILE, p->der, p->der_len);
    enroll_scep_prof_free(p);
}

static const char *enroll_scep_topic(const struct app *app)
{
    if (app->push != NULL)
        return push_topic(app->push);
    return *app->cf->apns_topic != '\0' ? app->cf->apns_topic : NULL;
}

static void enroll_scep_prof_on_stored(void *arg, int err)
{
    struct enroll_scep_prof *p = arg;
    const char *topic = enroll_scep_topic(p->app);
    if (err != MDMD_OK || topic == NULL) {
        req_fail(p->req, 503, err != MDMD_OK ? "redis unavailable" : "no push topic configured");
        enroll_scep_prof_free(p);
        return;
    }
    enroll_scep_build(p, topic);
    log_info("event=scep_profile_served peer=%s by=%s signed=%d", req_peer(p->req),
             p->admin    ? "api_key"
             : p->who[0] ? "login"
                         : "token",
             p->is_signed);
    if (!p->is_signed) {
        req_respond(p->req, 200, "application/xml", p->xml, p->xml_len);
        enroll_scep_prof_free(p);
        return;
    }
    p->sign_cert = p->app->scep->signer->cert;
    p->sign_key = p->app->scep->signer->key;
    p->ca_cert = ca_cert(p->app->ca);
    worker_submit(p->app->worker, enroll_scep_prof_job, enroll_scep_prof_on_signed, p);
}

/* A fresh one-time challenge in Redis, then the profile. */
static void enroll_scep_prof_start(struct enroll_scep_prof *p)
{
    if (enroll_scep_topic(p->app) == NULL) {
        log_err("event=scep_profile_unavailable reason=no_push_topic hint=\"set apns_cert_file "
                "or apns_topic\"");
        req_fail(p->req, 503, "no push topic configured");
        enroll_scep_prof_free(p);
        return;
    }
    if (ca_random_password(p->challenge, sizeof(p->challenge)) != 0) {
        req_fail(p->req, 503, "no randomness");
        enroll_scep_prof_free(p);
        return;
    }
    store_scep_challenge_put(p->app->store, p->challenge, p->who, p->app->cf->scep_challenge_ttl_s,
                             enroll_scep_prof_on_stored, p);
}

/* ---- who may have a profile ---- */

/* 2: the admin API key, 1: the enrollment token (Bearer or ?token=), 0: neither. */
static int enroll_scep_prof_auth(struct req *req, const struct app *app)
{
    const char *h = req_header(req, "Authorization");
    const char *token = app->cf->enroll_profile_token;
    const char *bearer = h != NULL && strncmp(h, "Bearer ", 7) == 0 ? h + 7 : NULL;
    if (bearer != NULL && util_secret_eq(bearer, app->api_key))
        return 2;
    if (*token == '\0')
        return 0;
    if (bearer != NULL && util_secret_eq(bearer, token))
        return 1;
    char *q = req_query_param(req, "token");
    int ok = q != NULL && util_secret_eq(q, token);
    free(q);
    return ok;
}

static void enroll_scep_prof_get(struct req *req, struct app *app)
{
    int auth = enroll_scep_prof_auth(req, app);
    char *s = req_query_param(req, "signed");
    int unsigned_wanted = s != NULL && strcmp(s, "0") == 0;
    free(s);
    if (auth == 0) {
        log_warn("event=scep_profile_refused peer=%s reason=no_credentials", req_peer(req));
        req_add_header(req, "WWW-Authenticate", "Bearer");
        req_respond_json(req, 401, "{\"error\":\"API key, enrollment token or login needed\"}\n");
        return;
    }
    if (unsigned_wanted && auth != 2) {
        req_fail(req, 403, "unsigned profiles are for admins only");
        return;
    }
    struct enroll_scep_prof *p = xcalloc(1, sizeof(*p));
    p->req = req;
    p->app = app;
    p->admin = auth == 2;
    p->is_signed = !unsigned_wanted;
    enroll_scep_prof_start(p);
}

/* ---- login ---- */

static int enroll_scep_hex(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* The decoded value of key in a form body ('+' and %XX), or NULL. */
static char *enroll_scep_form_value(const char *body, size_t len, const char *key)
{
    size_t klen = strlen(key);
    for (const char *p = body, *end = body + len; p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp != NULL ? amp : end;
        if ((size_t)(stop - p) > klen && memcmp(p, key, klen) == 0 && p[klen] == '=') {
            char *out = xmalloc((size_t)(stop - p)), *o = out;
            for (const char *v = p + klen + 1; v < stop; v++) {
                if (*v == '%' && stop - v > 2 && enroll_scep_hex(v[1]) >= 0 &&
                    enroll_scep_hex(v[2]) >= 0) {
                    *o++ = (char)(enroll_scep_hex(v[1]) << 4 | enroll_scep_hex(v[2]));
                    v += 2;
                } else {
                    *o++ = *v == '+' ? ' ' : *v;
                }
            }
            *o = '\0';
            if (strlen(out) == (size_t)(o - out))
                return out;
            free(out);
            return NULL;
        }
        p = stop + 1;
    }
    return NULL;
}

static void enroll_scep_prof_on_login(void *arg, int status, const char *username, const char *role,
                                      int retry_after_s)
{
    struct enroll_scep_prof *p = arg;
    char ra[16];
    if (status != 200) {
        if (status == 429) {
            snprintf(ra, sizeof(ra), "%d", retry_after_s);
            req_add_header(p->req, "Retry-After", ra);
        }
        req_fail(p->req, status,
                 status == 401   ? "wrong username or password"
                 : status == 429 ? "too many failed logins"
                                 : "login unavailable");
        enroll_scep_prof_free(p);
        return;
    }
    snprintf(p->who, sizeof(p->who), "%s", username);
    enroll_scep_prof_start(p);
}

static void enroll_scep_prof_post(struct req *req, struct app *app)
{
    size_t len;
    const char *body = (const char *)req_body(req, &len);
    char *user = len <= ENROLL_SCEP_FORM_MAX ? enroll_scep_form_value(body, len, "username") : NULL;
    char *pw = len <= ENROLL_SCEP_FORM_MAX ? enroll_scep_form_value(body, len, "password") : NULL;
    if (user == NULL || pw == NULL || *user == '\0' || strlen(user) >= ENROLL_SCEP_WHO_MAX) {
        req_fail(req, 400, "username and password needed (form)");
    } else {
        struct enroll_scep_prof *p = xcalloc(1, sizeof(*p));
        p->req = req;
        p->app = app;
        p->is_signed = 1;
        api_users_login(app, user, pw, req_peer(req), enroll_scep_prof_on_login, p);
    }
    free(user);
    if (pw != NULL)
        explicit_bzero(pw, strlen(pw));
    free(pw);
}

void enroll_scep_profile(struct req *req, void *app)
{
    if (req_method(req) == HTTP_M_POST)
        enroll_scep_prof_post(req, app);
    else
        enroll_scep_prof_get(req, app);
}
