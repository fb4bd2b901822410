/* enroll.c: the enrollment page and the over-the-air profile service (see
 * enroll.h for the flow).  One struct enroll_req per request walks the states
 * of enroll_step(); each state answers or makes one async call (login,
 * Redis, or the crypto worker), whose callback records the outcome and steps
 * again. */
#include "enroll.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../ca/ca.h"
#include "../../ca/ca_mac.h"
#include "../../core/app.h"
#include "../../core/conf.h"
#include "../../core/http.h"
#include "../../core/util.h"
#include "../../core/log.h"
#include "../../core/shape.h"
#include "../../core/worker.h"
#include "../../push/push.h"
#include "../../store/store_enroll.h"
#include "enroll_int.h"
#include "../mdm/mdm.h"
#include "../../store/store.h"
#include "../api/api.h"
#include "../apple/apple.h"

#define ENROLL_CT_PROFILE "application/x-apple-aspen-config"
#define ENROLL_USER_MAX 256
#define ENROLL_FIELD_MAX 128 /* serial and other device attributes we keep */
#define ENROLL_MAX_NODES 256 /* of the signed device attributes (real: about 15) */

/* ---- the signing identity and the device trust store ---- */

struct enroll_keyset {
    X509 *cert; /* signs profiles (the TLS server identity) */
    EVP_PKEY *key;
    X509_STORE *device_trust;    /* enroll_device_ca_file, or NULL */
    struct enroll_keyset *older; /* replaced by a reload; jobs may still use it */
};

struct enroll_keys {
    struct enroll_keyset *cur;
};

static void enroll_keyset_free(struct enroll_keyset *ks)
{
    while (ks != NULL) {
        struct enroll_keyset *older = ks->older;
        ca_cert_free(ks->cert);
        ca_pkey_free(ks->key);
        ca_store_free(ks->device_trust);
        free(ks);
        ks = older;
    }
}

static struct enroll_keyset *enroll_keyset_load(const struct conf *cf)
{
    struct enroll_keyset *ks = xcalloc(1, sizeof(*ks));
    if (ca_load_identity(cf->tls_cert_file, cf->tls_key_file, &ks->cert, &ks->key) != 0) {
        log_err("event=enroll_setup_failed reason=signing_identity cert=%s", cf->tls_cert_file);
        free(ks);
        return NULL;
    }
    if (*cf->enroll_device_ca_file != '\0' &&
        (ks->device_trust = ca_store_load(cf->enroll_device_ca_file)) == NULL) {
        enroll_keyset_free(ks);
        return NULL;
    }
    return ks;
}

struct enroll_keys *enroll_keys_load(const struct conf *cf)
{
    struct enroll_keyset *ks = enroll_keyset_load(cf);
    if (ks == NULL)
        return NULL;
    struct enroll_keys *k = xcalloc(1, sizeof(*k));
    k->cur = ks;
    return k;
}

int enroll_keys_reload(struct enroll_keys *k, const struct conf *cf)
{
    struct enroll_keyset *ks = enroll_keyset_load(cf);
    if (ks == NULL)
        return -1;
    ks->older = k->cur;
    k->cur = ks;
    return 0;
}

void enroll_keys_free(struct enroll_keys *k)
{
    if (k == NULL)
        return;
    enroll_keyset_free(k->cur);
    free(k);
}

/* ---- the page ---- */

static const char enroll_html_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<title>Enroll this device</title><style>"
    "body{font-family:-apple-system,system-ui,sans-serif;max-width:30em;margin:2em auto;"
    "padding:0 1em;line-height:1.4}label{display:block;margin:.8em 0}"
    "input{display:block;width:100%;font-size:1.1em;padding:.3em;box-sizing:border-box}"
    "button{font-size:1.1em;padding:.4em 1.2em}.err{color:#b00020}</style></head><body>\n"
    "<h1>Enroll this device</h1>\n"
    "<p>1. <a href=\"/mdm/ca\">Install the certificate authority</a> of this server, then "
    "trust it (Settings &gt; General &gt; About &gt; Certificate Trust Settings).</p>\n"
    "<p>2. Sign in. The device then asks you to install the enrollment profile.</p>\n";

static const char enroll_html_form[] =
    "<form method=\"post\" action=\"/enroll\">"
    "<label>User name<input name=\"username\" autocomplete=\"username\" "
    "autocapitalize=\"none\" autocorrect=\"off\" required></label>"
    "<label>Password<input name=\"password\" type=\"password\" "
    "autocomplete=\"current-password\" required></label>"
    "<button type=\"submit\">Enroll</button></form>\n</body></html>\n";

/* The page, with a fixed message (never echoed input) when there is one. */
static void enroll_respond_page(struct req *req, int status, const char *error)
{
    char *body = xasprintf("%s%s%s%s%s", enroll_html_head, error ? "<p class=\"err\">" : "",
                           error ? error : "", error ? "</p>\n" : "", enroll_html_form);
    req_add_header(req, "Cache-Control", "no-store");
    req_add_header(req, "X-Frame-Options", "DENY");
    req_add_header(req, "Content-Security-Policy",
                   "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'");
    req_respond(req, status, "text/html; charset=utf-8", body, strlen(body));
    free(body);
}

static int enroll_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes n bytes of s ('+' and %XX); NULL when the result holds a NUL. */
static char *enroll_form_decode(const char *s, size_t n)
{
    char *out = xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%' && i + 2 < n && (hi = enroll_hexval(s[i + 1])) >= 0 &&
                   (lo = enroll_hexval(s[i + 2])) >= 0) {
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
        if (o > 0 && out[o - 1] == '\0') {
            free(out);
            return NULL;
        }
    }
    out[o] = '\0';
    return out;
}

char *enroll_form_value(const char *body, size_t len, const char *key)
{
    size_t klen = strlen(key);
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp != NULL ? amp : end;
        if ((size_t)(stop - p) > klen && memcmp(p, key, klen) == 0 && p[klen] == '=')
            return enroll_form_decode(p + klen + 1, (size_t)(stop - p) - klen - 1);
        p = stop + 1;
    }
    return NULL;
}

/* ---- one request ---- */

enum enroll_state {
    ENROLL_ST_LOGGED_IN,       /* api_users_login answered */
    ENROLL_ST_CHALLENGE_SAVED, /* the challenge is in Redis */
    ENROLL_ST_CHALLENGE_TAKEN, /* phase 1: the challenge was looked up and deleted */
    ENROLL_ST_OTA_FOUND,       /* phase 2: the OTA identity was looked up */
    ENROLL_ST_BUILT,           /* the worker made and signed the profile */
    ENROLL_ST_REGISTERED,      /* the registry knows the new identity */
    ENROLL_ST_CLOSED,          /* the retry window of this request is closed */
};

struct enroll_req {
    struct req *req;
    struct app *app;
    enum enroll_state st;
    enum enroll_kind kind;
    int err;          /* enum mdmd_err of the last store call */
    int login_status; /* api_users_login: 200, 401, 429, 503 */
    int retry_after_s;
    int found;       /* the lookup found what it looked for */
    int ota_ok;      /* phase 2: the OTA identity was usable */
    const char *why; /* phase 2: why the OTA identity was refused */
    char user[ENROLL_USER_MAX];
    char udid[ENROLL_UDID_MAX];
    char serial[ENROLL_FIELD_MAX];
    char ota_fp[CA_FINGERPRINT_LEN]; /* phase 2: the signer */
    char revoked_fp[CA_FINGERPRINT_LEN];
    char tx_id[CA_FINGERPRINT_LEN]; /* phase 1: what its retries share */
    int again;                      /* a retry of a request whose answer was lost */
    struct enroll_job job;
};

static void enroll_step(struct enroll_req *e);

static struct enroll_req *enroll_new(struct req *req, struct app *app)
{
    struct enroll_req *e = xcalloc(1, sizeof(*e));
    e->req = req;
    e->app = app;
    return e;
}

static void enroll_free(struct enroll_req *e)
{
    enroll_job_clear(&e->job);
    free(e);
}

/* Ends a device request (POST /enroll/ota) with an error and frees e. */
static void enroll_fail(struct enroll_req *e, int status, const char *why)
{
    if (e->udid[0] != '\0')
        log_warn("event=enroll_refused udid=%s phase=%d status=%d reason=\"%s\" peer=%s", e->udid,
                 e->kind == ENROLL_PHASE2 ? 2 : 1, status, why, req_peer(e->req));
    req_fail(e->req, status, why);
    enroll_free(e);
}

/* Ends a login (POST /enroll) with the page and frees e. */
static void enroll_fail_page(struct enroll_req *e, int status, const char *msg)
{
    enroll_respond_page(e->req, status, msg);
    enroll_free(e);
}

/* The APNs topic for the MDM payload: the push certificate's, else the
 * configured fallback; NULL when there is neither. */
static const char *enroll_topic(const struct app *app)
{
    if (app->push != NULL)
        return push_topic(app->push);
    return *app->cf->apns_topic != '\0' ? app->cf->apns_topic : NULL;
}

/* Fills the job's inputs from the configuration as it is now. */
static void enroll_job_init(struct enroll_req *e, enum enroll_kind kind)
{
    const struct conf *cf = e->app->cf;
    struct enroll_job *j = &e->job;
    j->kind = kind;
    j->ca = e->app->ca;
    j->sign_cert = e->app->enroll->cur->cert;
    j->sign_key = e->app->enroll->cur->key;
    j->id_prefix = mobileconfig_id_prefix(cf->public_url);
    snprintf(j->udid, sizeof(j->udid), "%s", e->udid);
    snprintf(j->key_type, sizeof(j->key_type), "%s", cf->device_key_type);
    snprintf(j->p12_mode, sizeof(j->p12_mode), "%s", cf->pkcs12_mode);
    j->days = cf->cert_validity_days;
    if (kind == ENROLL_SERVICE)
        j->url = xasprintf("%s/enroll/ota", cf->public_url);
    if (kind == ENROLL_PHASE2) {
        j->url = xasprintf("%s/mdm/connect", cf->mdm_url);
        j->checkin_url = xasprintf("%s/mdm/checkin", cf->mdm_url);
        j->topic = xstrdup(enroll_topic(e->app));
    }
}

static void enroll_on_built(void *arg)
{
    struct enroll_req *e = arg;
    if (worker_canceled(e->app->worker)) {
        /* Shutting down (main_cleanup): the listeners are still there, and
         * the answer is written before they go. */
        enroll_fail(e, 503, "shutting down");
        return;
    }
    enroll_step(e);
}

/* On the worker thread: touches e->job only (the loop leaves e alone until
 * enroll_on_built). */
static void enroll_run(void *arg)
{
    struct enroll_req *e = arg;
    enroll_job_run(&e->job);
}

static void enroll_build(struct enroll_req *e, enum enroll_kind kind)
{
    e->kind = kind;
    enroll_job_init(e, kind);
    e->st = ENROLL_ST_BUILT;
    worker_submit(e->app->worker, enroll_run, enroll_on_built, e);
}

/* Every store callback of this file: records the outcome, steps on. */
static void enroll_on_done(void *arg, int err)
{
    struct enroll_req *e = arg;
    e->err = err;
    enroll_step(e);
}

static void enroll_respond_profile(struct enroll_req *e)
{
    req_add_header(e->req, "Cache-Control", "no-store");
    req_respond(e->req, 200, ENROLL_CT_PROFILE, e->job.der, e->job.der_len);
    enroll_free(e);
}

/* ---- the states ---- */

static void enroll_st_logged_in(struct enroll_req *e)
{
    char retry[24];
    if (e->login_status == 401) {
        enroll_fail_page(e, 401, "Wrong user name or password.");
        return;
    }
    if (e->login_status == 429) {
        snprintf(retry, sizeof(retry), "%d", e->retry_after_s > 0 ? e->retry_after_s : 60);
        req_add_header(e->req, "Retry-After", retry);
        enroll_fail_page(e, 429, "Too many failed sign-ins. Try again later.");
        return;
    }
    if (e->login_status != 200) {
        enroll_fail_page(e, 503, "Signing in is not possible right now. Try again later.");
        return;
    }
    if (enroll_topic(e->app) == NULL) {
        log_err("event=enroll_unavailable reason=no_push_topic hint=\"set apns_cert_file or "
                "apns_topic\"");
        enroll_fail_page(e, 503, "Enrollment is not set up on this server yet.");
        return;
    }
    if (ca_random_password(e->job.challenge, sizeof(e->job.challenge)) != 0) {
        enroll_fail_page(e, 500, "Something went wrong. Try again.");
        return;
    }
    e->st = ENROLL_ST_CHALLENGE_SAVED;
    store_challenge_put(e->app->store, e->job.challenge, e->user,
                        e->app->cf->enroll_challenge_ttl_s, enroll_on_done, e);
}

static void enroll_st_challenge_saved(struct enroll_req *e)
{
    if (e->err != MDMD_OK) {
        log_warn("event=enroll_challenge_failed user=%s err=%s", e->user, mdmd_strerror(e->err));
        enroll_fail_page(e, 503, "Signing in is not possible right now. Try again later.");
        return;
    }
    log_info("event=enroll_challenge user=%s peer=%s ttl_s=%d", e->user, req_peer(e->req),
             e->app->cf->enroll_challenge_ttl_s);
    enroll_build(e, ENROLL_SERVICE);
}

static void enroll_st_challenge_taken(struct enroll_req *e)
{
    if (e->err != MDMD_OK) {
        enroll_fail(e, 503, "redis unavailable");
        return;
    }
    if (e->retry_after_s > 0) {
        char retry[16];
        snprintf(retry, sizeof(retry), "%d", e->retry_after_s);
        req_add_header(e->req, "Retry-After", retry);
        enroll_fail(e, 429, "too many unknown challenges from this address");
        return;
    }
    if (!e->found) {
        enroll_fail(e, 403, "challenge unknown, already used or expired");
        return;
    }
    enroll_build(e, ENROLL_PHASE1);
}

static void enroll_st_ota_found(struct enroll_req *e)
{
    if (e->err != MDMD_OK) {
        enroll_fail(e, 503, "redis unavailable");
        return;
    }
    if (!e->found) {
        enroll_fail(e, 403, e->why != NULL ? e->why : "enrollment identity unknown");
        return;
    }
    if (enroll_topic(e->app) == NULL) {
        log_err("event=enroll_unavailable reason=no_push_topic hint=\"set apns_cert_file or "
                "apns_topic\"");
        enroll_fail(e, 503, "no push topic configured");
        return;
    }
    enroll_build(e, ENROLL_PHASE2);
}

static void enroll_on_issued(void *arg, int err, int ok, const char *revoked_fp)
{
    struct enroll_req *e = arg;
    e->err = err;
    e->ota_ok = ok;
    snprintf(e->revoked_fp, sizeof(e->revoked_fp), "%s", revoked_fp);
    enroll_step(e);
}

static void enroll_st_built(struct enroll_req *e)
{
    if (!e->job.ok && e->kind == ENROLL_SERVICE) {
        enroll_fail_page(e, 500, "Something went wrong. Try again.");
        return;
    }
    if (!e->job.ok) {
        enroll_fail(e, 500, "could not make the profile");
        return;
    }
    if (e->kind == ENROLL_SERVICE) {
        enroll_respond_profile(e);
        return;
    }
    e->st = ENROLL_ST_REGISTERED;
    if (e->kind == ENROLL_PHASE1) {
        struct store_cert c = {e->udid, e->user, "ota", "issued", e->serial, util_now_ms(), 0};
        store_ota_register(e->app->store, e->job.fp, &c, e->tx_id, enroll_on_issued, e);
    } else {
        struct store_device_cert c = {e->udid,   e->user,   e->serial,
                                      e->job.fp, e->ota_fp, util_now_ms()};
        store_cert_issue_device(e->app->store, &c, enroll_on_issued, e);
    }
}

static void enroll_st_registered(struct enroll_req *e)
{
    if (e->err != MDMD_OK) {
        enroll_fail(e, 503, "redis unavailable");
        return;
    }
    if (!e->ota_ok) {
        enroll_fail(e, 403,
                    e->kind == ENROLL_PHASE1 ? "challenge already used"
                                             : "enrollment identity already used");
        return;
    }
    const char *rv = e->revoked_fp[0] ? e->revoked_fp : "-";
    if (e->kind == ENROLL_PHASE1)
        log_info("event=enroll_ota_identity udid=%s user=%s fp=%s retry=%d revoked_fp=%s", e->udid,
                 e->user, e->job.fp, e->again, rv);
    else
        log_info("event=enroll_device_identity udid=%s user=%s fp=%s retry=%d revoked_fp=%s",
                 e->udid, e->user, e->job.fp, e->again, rv);
    /* The answer is about to leave: a retry from now on is a replay. */
    e->st = ENROLL_ST_CLOSED;
    if (e->kind == ENROLL_PHASE1)
        store_ota_tx_close(e->app->store, e->tx_id, enroll_on_done, e);
    else
        store_cert_retry_close(e->app->store, e->ota_fp, enroll_on_done, e);
}

/* The device has its identity whether or not the close got through; if it
 * did not, a replay within STORE_ENROLL_TX_TTL_S would get a new identity and
 * revoke this one (still one live identity). */
static void enroll_st_closed(struct enroll_req *e)
{
    if (e->err != MDMD_OK)
        log_warn("event=enroll_retry_window_open udid=%s phase=%d err=%s", e->udid,
                 e->kind == ENROLL_PHASE2 ? 2 : 1, mdmd_strerror(e->err));
    enroll_respond_profile(e);
}

static void enroll_step(struct enroll_req *e)
{
    switch (e->st) {
    case ENROLL_ST_LOGGED_IN: enroll_st_logged_in(e); break;
    case ENROLL_ST_CHALLENGE_SAVED: enroll_st_challenge_saved(e); break;
    case ENROLL_ST_CHALLENGE_TAKEN: enroll_st_challenge_taken(e); break;
    case ENROLL_ST_OTA_FOUND: enroll_st_ota_found(e); break;
    case ENROLL_ST_BUILT: enroll_st_built(e); break;
    case ENROLL_ST_REGISTERED: enroll_st_registered(e); break;
    case ENROLL_ST_CLOSED: enroll_st_closed(e); break;
    }
}

/* ---- POST /enroll: the login form ---- */

static void enroll_on_login(void *arg, int status, const char *username, const char *role,
                            int retry_after_s)
{
    struct enroll_req *e = arg;
    (void)role; /* admins may enroll their devices too */
    if (worker_canceled(e->app->worker)) {
        enroll_fail(e, 503, "shutting down"); /* answered before the listeners go */
        return;
    }
    e->login_status = status;
    e->retry_after_s = retry_after_s;
    snprintf(e->user, sizeof(e->user), "%s", username);
    enroll_step(e);
}

static int enroll_is_form(const struct req *req)
{
    static const char form[] = "application/x-www-form-urlencoded";
    const char *ct = req_header(req, "Content-Type");
    return ct != NULL && strncasecmp(ct, form, sizeof(form) - 1) == 0 &&
           (ct[sizeof(form) - 1] == '\0' || ct[sizeof(form) - 1] == ';');
}

void enroll_page(struct req *req, void *app)
{
    if (req_method(req) != HTTP_M_POST) {
        enroll_respond_page(req, 200, NULL);
        return;
    }
    if (!enroll_is_form(req)) {
        enroll_respond_page(req, 415, "The form was not sent as a web form.");
        return;
    }
    size_t len;
    const char *body = (const char *)req_body(req, &len);
    char *user = enroll_form_value(body, len, "username");
    char *pw = enroll_form_value(body, len, "password");
    if (user == NULL || pw == NULL || *user == '\0' || *pw == '\0') {
        enroll_respond_page(req, 400, "Enter your user name and password.");
    } else {
        struct enroll_req *e = enroll_new(req, app);
        e->st = ENROLL_ST_LOGGED_IN;
        api_users_login(app, user, pw, req_peer(req), enroll_on_login, e);
    }
    if (pw != NULL)
        explicit_bzero(pw, strlen(pw));
    free(pw);
    free(user);
}

/* ---- POST /enroll/ota: the device's signed replies ---- */

static void enroll_on_taken(void *arg, int err, int retry_after_s, const char *user, int again,
                            const char *prev)
{
    struct enroll_req *e = arg;
    (void)prev; /* ota_register.lua reads it again, atomically */
    e->err = err;
    e->retry_after_s = retry_after_s;
    e->found = user != NULL;
    e->again = again;
    if (user != NULL)
        snprintf(e->user, sizeof(e->user), "%s", user);
    enroll_step(e);
}

/* A challenge we could have made: CHALLENGE_LEN - 1 letters and digits. */
static int enroll_challenge_ok(const char *c)
{
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t n = strlen(c);
    return n == ENROLL_CHALLENGE_LEN - 1 && strspn(c, alnum) == n;
}

/* What a retry of this phase 1 repeats: the challenge, the UDID and the
 * device certificate that signs it (a retry is signed again, so the bytes
 * differ).  Keyed by the challenge, so that the id does not give it away. */
static int enroll_tx_id(struct enroll_req *e, const char *challenge, X509 *signer)
{
    char fp[CA_FINGERPRINT_LEN], data[ENROLL_UDID_MAX + CA_FINGERPRINT_LEN + 1];
    if (ca_cert_fingerprint(signer, fp) != 0)
        return -1;
    int n = snprintf(data, sizeof(data), "%s\n%s", e->udid, fp);
    ca_mac_hmac_sha256_hex(challenge, strlen(challenge), data, (size_t)n, e->tx_id);
    return e->tx_id[0] != '\0' ? 0 : -1;
}

/* untrusted: enroll_device_ca_file is set and the signer does not chain to it. */
static void enroll_phase1(struct enroll_req *e, plist_t attrs, int untrusted, X509 *signer)
{
    e->kind = ENROLL_PHASE1;
    if (untrusted) {
        enroll_fail(e, 403, "signer does not chain to enroll_device_ca_file");
        return;
    }
    char *ch = apple_plist_dict_string(attrs, "CHALLENGE");
    if (ch == NULL || !enroll_challenge_ok(ch)) {
        free(ch);
        enroll_fail(e, 403, "missing or malformed CHALLENGE");
        return;
    }
    if (enroll_tx_id(e, ch, signer) != 0) {
        free(ch);
        enroll_fail(e, 500, "fingerprint failed");
        return;
    }
    e->st = ENROLL_ST_CHALLENGE_TAKEN;
    store_challenge_take(e->app->store, STORE_CHAL_OTA, ch, e->tx_id, req_peer(e->req),
                         enroll_on_taken, e);
    free(ch);
}

/* Why the OTA identity c cannot be used for this request, or NULL. */
static const char *enroll_ota_refusal(const struct enroll_req *e, const struct store_cert *c)
{
    int64_t ttl_ms = (int64_t)e->app->cf->enroll_challenge_ttl_s * 1000;
    if (c == NULL || strcmp(c->kind, "ota") != 0)
        return "not an enrollment identity";
    /* Used, but its answer may not have reached the device: enroll_device.lua
     * decides again, atomically. */
    int retry = strcmp(c->state, "revoked") == 0 && c->retry_until_ms >= util_now_ms();
    if (strcmp(c->state, "issued") != 0 && !retry)
        return "enrollment identity already used";
    if (strcmp(c->udid, e->udid) != 0)
        return "enrollment identity of another UDID";
    if (util_now_ms() - c->issued_ms > ttl_ms)
        return "enrollment identity expired";
    return NULL;
}

static void enroll_on_ota_cert(void *arg, int err, const struct store_cert *c)
{
    struct enroll_req *e = arg;
    e->err = err;
    if (err == MDMD_OK) {
        const char *why = enroll_ota_refusal(e, c);
        e->found = why == NULL;
        e->why = why;
        e->again = why == NULL && strcmp(c->state, "issued") != 0;
        if (why == NULL)
            snprintf(e->user, sizeof(e->user), "%s", c->user ? c->user : "");
    }
    enroll_step(e);
}

static void enroll_phase2(struct enroll_req *e, X509 *signer)
{
    char *cn = ca_cert_cn(signer);
    int cn_ok = cn != NULL && strcmp(cn, e->udid) == 0;
    free(cn);
    e->kind = ENROLL_PHASE2;
    if (ca_verify_issued(e->app->ca, signer) != 0) {
        enroll_fail(e, 403, "enrollment identity not valid");
        return;
    }
    if (!cn_ok) {
        enroll_fail(e, 403, "enrollment identity issued to another UDID");
        return;
    }
    if (ca_cert_fingerprint(signer, e->ota_fp) != 0) {
        enroll_fail(e, 500, "fingerprint failed");
        return;
    }
    e->st = ENROLL_ST_OTA_FOUND;
    store_cert_get(e->app->store, e->ota_fp, enroll_on_ota_cert, e);
}

/* Keeps UDID and SERIAL of the signed attributes; 0, or -1 when the UDID is
 * missing or could not be a Redis key part. */
static int enroll_attrs(struct enroll_req *e, plist_t attrs)
{
    char *udid = attrs != NULL && plist_get_node_type(attrs) == PLIST_DICT
                     ? apple_plist_dict_string(attrs, "UDID")
                     : NULL;
    char *serial = udid != NULL ? apple_plist_dict_string(attrs, "SERIAL") : NULL;
    int ok = udid != NULL && util_udid_valid(udid, strlen(udid));
    if (ok)
        snprintf(e->udid, sizeof(e->udid), "%s", udid);
    /* The serial only goes into the registry entry: keep it printable. */
    for (char *p = serial; p != NULL && *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
    snprintf(e->serial, sizeof(e->serial), "%s", serial != NULL ? serial : "");
    free(udid);
    free(serial);
    return ok ? 0 : -1;
}

/* An OTA reply checked on the loop up to ENROLL_OTA_INLINE bytes, on the
 * crypto worker beyond: CMS_verify and the parse of what it signed cost
 * milliseconds for a body of the small-body limit, from anyone. */
#define ENROLL_OTA_INLINE 8192
struct enroll_ota {
    struct req *req;
    struct app *app;
    const unsigned char *body; /* the request's own buffer: valid until it is answered */
    size_t len;
    X509_STORE *trust; /* enroll_device_ca_file, or NULL (kept until enroll_keys_free) */
    unsigned char *content;
    size_t clen;
    X509 *signer;
    plist_t attrs;
    int ran, verified, ours, untrusted;
    char why[128];
};

static void enroll_ota_job(void *arg)
{
    struct enroll_ota *o = arg;
    /* The device attributes are a flat dictionary of a dozen strings: a
     * tight node budget keeps an anonymous body from making libplist build
     * 100,000s of nodes. */
    static const struct shape_limits ota = {32, ENROLL_MAX_NODES, 65536};
    o->ran = 1;
    if (ca_cms_verify(o->body, o->len, NULL, &o->content, &o->clen, &o->signer) != 0)
        return;
    o->verified = 1;
    o->ours = ca_issued_by(o->app->ca, o->signer); /* a struct ca is read-only: thread-safe */
    if (!o->ours && o->trust != NULL) {
        unsigned char *c = NULL;
        size_t n;
        o->untrusted = ca_cms_verify(o->body, o->len, o->trust, &c, &n, NULL) != 0;
        free(c);
    }
    if (shape_plist(o->content, o->clen, &ota, o->why, sizeof(o->why)) == SHAPE_OK)
        o->attrs = apple_plist_parse(o->content, o->clen, o->why, sizeof(o->why));
}

static void enroll_ota_checked(void *arg)
{
    struct enroll_ota *o = arg;
    char msg[192];
    if (!o->ran) {
        req_fail(o->req, 503, "shutting down");
    } else if (!o->verified) {
        req_fail(o->req, 400, "body is not a CMS signed message with a valid signature");
    } else {
        struct enroll_req *e = enroll_new(o->req, o->app);
        snprintf(msg, sizeof(msg), "signed content: %s", o->why);
        if (o->attrs == NULL)
            enroll_fail(e, 400, msg);
        else if (enroll_attrs(e, o->attrs) != 0)
            enroll_fail(e, 400, "signed content is not a plist with a valid UDID");
        else if (o->ours)
            enroll_phase2(e, o->signer);
        else
            enroll_phase1(e, o->attrs, o->untrusted, o->signer);
    }
    plist_free(o->attrs);
    free(o->content);
    ca_cert_free(o->signer);
    free(o);
}

void enroll_ota(struct req *req, void *app)
{
    struct enroll_ota *o = xcalloc(1, sizeof(*o));
    o->req = req;
    o->app = app;
    o->body = req_body(req, &o->len);
    o->trust = o->app->enroll->cur->device_trust;
    if (o->len <= ENROLL_OTA_INLINE || o->app->worker == NULL) {
        enroll_ota_job(o);
        enroll_ota_checked(o);
    } else {
        worker_submit(o->app->worker, enroll_ota_job, enroll_ota_checked, o);
    }
}
