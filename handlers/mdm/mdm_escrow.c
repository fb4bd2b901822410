/* mdm_escrow.c: check-in messages answered from what the server keeps
 * (mdm.h): SetBootstrapToken / GetBootstrapToken (the token sealed with
 * AES-256-GCM under <data_dir>/bootstrap.key, never stored in clear),
 * ReturnToService (an admin's per-device or fleet setting) and GetToken (an
 * admin's token source per TokenServiceType).  Every answer's keys come from
 * Apple's schema through apple_checkin_answer_set(). */
#include "mdm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../ca/ca_jwt.h"
#include "../../ca/ca_seal.h"
#include "../../core/app.h"
#include "../../core/conf.h"
#include "../../core/http.h"
#include "../../core/log.h"
#include "../../core/util.h"
#include "../../core/worker.h"
#include "../../store/store_checkin.h"
#include "../apple/apple.h"

#define MDM_ESCROW_TOKEN_FILE_MAX (64 * 1024)

static void mdm_escrow_on_set(void *arg, int err, int ident, int enrolled_now)
{
    struct mdm_msg *m = arg;
    (void)enrolled_now;
    if (!mdm_refuse(m, err, ident))
        req_respond(m->req, 200, NULL, NULL, 0);
    mdm_done(m);
}

static const char *mdm_escrow_bool(plist_t dict, const char *key)
{
    uint8_t b = 0;
    plist_t v = plist_dict_get_item(dict, key);
    if (v == NULL)
        return "";
    plist_get_bool_val(v, &b);
    return b ? "true" : "false";
}

/* Apple: an absent or empty BootstrapToken means remove the stored one. */
void mdm_escrow_set(struct mdm_msg *m)
{
    plist_t v = plist_dict_get_item(m->body, "BootstrapToken");
    char *data = NULL;
    uint64_t n = 0;
    if (v != NULL)
        plist_get_data_val(v, &data, &n);
    char *sealed = n > 0 ? ca_seal(m->app->seal_key_path, m->udid, data, n) : xstrdup("");
    if (data != NULL)
        explicit_bzero(data, n);
    free(data);
    if (sealed == NULL) {
        log_err("event=bootstrap_token_refused udid=%s reason=seal_failed", m->udid);
        req_respond(m->req, 500, NULL, NULL, 0);
        mdm_done(m);
        return;
    }
    log_info("event=bootstrap_token_%s udid=%s bytes=%llu", n > 0 ? "escrowed" : "cleared", m->udid,
             (unsigned long long)n);
    struct store_device_msg msg = mdm_device_msg(m);
    store_bootstrap_set(m->app->store, &msg, mdm_own(m, sealed),
                        mdm_escrow_bool(m->body, "AwaitingConfiguration"), mdm_escrow_on_set, m);
}

/* A sealed value opened as a data node, or NULL (logged by ca_unseal). */
static plist_t mdm_escrow_open(struct mdm_msg *m, const char *sealed)
{
    size_t n = 0;
    unsigned char *p =
        sealed != NULL ? ca_unseal(m->app->seal_key_path, m->udid, sealed, &n) : NULL;
    if (p == NULL)
        return NULL;
    plist_t d = plist_new_data((const char *)p, n);
    explicit_bzero(p, n);
    free(p);
    return d;
}

static void mdm_escrow_on_get(void *arg, int err, int ident, const char *const *v,
                              const size_t *len, size_t n)
{
    struct mdm_msg *m = arg;
    if (mdm_refuse(m, err, ident)) {
        mdm_done(m);
        return;
    }
    /* Apple: without a token, a success with the key omitted. */
    plist_t a = plist_new_dict(), tok = n > 0 ? mdm_escrow_open(m, v[0]) : NULL;
    if (tok != NULL)
        (void)apple_checkin_answer_set(a, "GetBootstrapToken", NULL, "BootstrapToken", tok);
    log_info("event=bootstrap_token_sent udid=%s present=%d", m->udid, tok != NULL);
    mdm_answer(m, a);
    mdm_done(m);
}

void mdm_escrow_get(struct mdm_msg *m)
{
    store_bootstrap_get(m->app->store, m->udid, m->fp, "device", util_now_ms(), mdm_escrow_on_get,
                        m);
}

/* ---- Return to Service ---- */

static void mdm_escrow_rts_data(plist_t rts, const char *key, const char *v, size_t len)
{
    if (v != NULL && len > 0)
        (void)apple_checkin_answer_set(rts, "ReturnToService", "ReturnToService", key,
                                       plist_new_data(v, len));
}

/* v: enabled, wifi_profile, mdm_profile, preserve_apps, sealed token, source. */
static void mdm_escrow_on_rts(void *arg, int err, int ident, const char *const *v,
                              const size_t *len, size_t n)
{
    struct mdm_msg *m = arg;
    if (mdm_refuse(m, err, ident)) {
        mdm_done(m);
        return;
    }
    int on = n >= 6 && v[0] != NULL && strcmp(v[0], "1") == 0;
    plist_t a = plist_new_dict(), rts = plist_new_dict(), tok = NULL;
    (void)apple_checkin_answer_set(rts, "ReturnToService", "ReturnToService", "Enabled",
                                   plist_new_bool(on));
    if (on) {
        mdm_escrow_rts_data(rts, "WiFiProfileData", v[1], len[1]);
        mdm_escrow_rts_data(rts, "MDMProfileData", v[2], len[2]);
        if ((tok = mdm_escrow_open(m, v[4])) != NULL)
            (void)apple_checkin_answer_set(rts, "ReturnToService", "ReturnToService",
                                           "BootstrapToken", tok);
    }
    (void)apple_checkin_answer_set(a, "ReturnToService", NULL, "ReturnToService", rts);
    log_info("event=return_to_service udid=%s enabled=%d source=%s bootstrap_token=%d", m->udid, on,
             n >= 6 && v[5] != NULL ? v[5] : "none", tok != NULL);
    mdm_answer(m, a);
    mdm_done(m);
}

void mdm_escrow_rts(struct mdm_msg *m)
{
    struct store_device_msg msg = mdm_device_msg(m);
    store_rts_get(m->app->store, &msg, mdm_escrow_on_rts, m);
}

/* ---- GetToken ---- */

/* <token_source_dir>/<type>: a static token from the configuration. */
static plist_t mdm_escrow_token_file(struct mdm_msg *m, const char *type)
{
    const char *dir = m->app->cf->token_source_dir;
    if (*dir == '\0')
        return NULL;
    char *path = xasprintf("%s/%s", dir, type);
    FILE *f = fopen(path, "rb");
    plist_t d = NULL;
    if (f != NULL) {
        char *buf = xmalloc(MDM_ESCROW_TOKEN_FILE_MAX);
        size_t n = fread(buf, 1, MDM_ESCROW_TOKEN_FILE_MAX, f);
        if (n > 0 && n < MDM_ESCROW_TOKEN_FILE_MAX && !ferror(f))
            d = plist_new_data(buf, n);
        explicit_bzero(buf, MDM_ESCROW_TOKEN_FILE_MAX);
        free(buf);
        fclose(f);
    } else if (errno != ENOENT) {
        log_warn("event=token_source_unreadable path=%s error=\"%s\"", path, strerror(errno));
    }
    free(path);
    return d;
}

static void mdm_escrow_token_answer(struct mdm_msg *m, const char *type, plist_t tok,
                                    const char *from)
{
    plist_t a = plist_new_dict();
    (void)apple_checkin_answer_set(a, "GetToken", NULL, "TokenData", tok);
    log_info("event=get_token udid=%s service_type=%s source=%s", m->udid, type, from);
    mdm_answer(m, a);
    mdm_done(m);
}

/* A "jwt" source: a fresh token per request, signed on the crypto worker. */
struct mdm_escrow_jwt {
    struct mdm_msg *m;
    const char *type;
    char *key_path, *claims, *jwt;
};

static void mdm_escrow_jwt_job(void *arg)
{
    struct mdm_escrow_jwt *j = arg;
    j->jwt = ca_jwt_rs256(j->key_path, j->claims);
}

static void mdm_escrow_jwt_done(void *arg)
{
    struct mdm_escrow_jwt *j = arg;
    if (worker_canceled(j->m->app->worker) || j->jwt == NULL) {
        log_err("event=get_token_failed udid=%s service_type=%s reason=%s", j->m->udid, j->type,
                j->jwt == NULL ? "jwt_signing_failed" : "shutting_down");
        req_respond(j->m->req, j->jwt == NULL ? 500 : 503, NULL, NULL, 0);
        mdm_done(j->m);
    } else {
        /* Apple: a string token goes as its UTF-8 bytes. */
        mdm_escrow_token_answer(j->m, j->type, plist_new_data(j->jwt, strlen(j->jwt)), "jwt");
    }
    free(j->key_path);
    free(j->claims);
    free(j->jwt);
    free(j);
}

/* Apple's claims for com.apple.maid (gettoken.yaml): iss the server_uuid,
 * iat now, jti a random UUID, service_type the TokenServiceType. */
static void mdm_escrow_jwt_start(struct mdm_msg *m, const char *type, const char *issuer)
{
    char jti[37];
    const char *key = m->app->cf->token_jwt_key_file;
    if (*key == '\0' || issuer == NULL) {
        log_err("event=get_token_failed udid=%s service_type=%s reason=%s", m->udid, type,
                *key == '\0' ? "no_token_jwt_key_file" : "no_issuer");
        req_respond(m->req, 500, NULL, NULL, 0);
        mdm_done(m);
        return;
    }
    util_uuid(jti);
    json_t *c = json_pack("{s:s, s:I, s:s, s:s}", "iss", issuer, "iat",
                          (json_int_t)(util_now_ms() / 1000), "jti", jti, "service_type", type);
    struct mdm_escrow_jwt *j = xcalloc(1, sizeof(*j));
    j->m = m;
    j->type = type;
    j->key_path = xstrdup(key);
    j->claims = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    worker_submit(m->app->worker, mdm_escrow_jwt_job, mdm_escrow_jwt_done, j);
}

/* v: kind, data, issuer of the admin's source, NULL when there is none. */
static void mdm_escrow_on_token(void *arg, int err, int ident, const char *const *v,
                                const size_t *len, size_t n)
{
    struct mdm_msg *m = arg;
    if (mdm_refuse(m, err, ident)) {
        mdm_done(m);
        return;
    }
    const char *type = m->owned[m->nowned - 1];
    plist_t tok = NULL;
    const char *from = "rest";
    if (n >= 3 && v[0] != NULL && strcmp(v[0], "jwt") == 0) {
        mdm_escrow_jwt_start(m, type, v[2]);
        return;
    }
    if (n >= 2 && v[0] != NULL && strcmp(v[0], "static") == 0 && v[1] != NULL && len[1] > 0)
        tok = plist_new_data(v[1], len[1]);
    else if ((tok = mdm_escrow_token_file(m, type)) != NULL)
        from = "config";
    if (tok == NULL) {
        /* Apple: a service type the server does not recognize gets 400. */
        log_warn("event=get_token_refused udid=%s service_type=%s reason=no_source status=400",
                 m->udid, type);
        req_fail(m->req, 400, "unknown TokenServiceType");
        mdm_done(m);
        return;
    }
    mdm_escrow_token_answer(m, type, tok, from);
}

void mdm_escrow_token(struct mdm_msg *m)
{
    char *type = apple_plist_dict_string(m->body, "TokenServiceType");
    /* It names a key and a file: the characters of a reverse-DNS name only. */
    if (type == NULL || !util_udid_valid(type, strlen(type))) {
        free(type);
        log_warn("event=get_token_refused udid=%s reason=service_type_malformed status=400",
                 m->udid);
        req_fail(m->req, 400, "missing or malformed TokenServiceType");
        mdm_done(m);
        return;
    }
    if (mdm_own(m, type) == NULL) {
        req_respond(m->req, 500, NULL, NULL, 0);
        mdm_done(m);
        return;
    }
    struct store_device_msg msg = mdm_device_msg(m);
    store_token_source_get(m->app->store, &msg, type, mdm_escrow_on_token, m);
}
