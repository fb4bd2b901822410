/* mdmsim_enroll.h: --enroll-ota, the device side of over-the-air enrollment
 * (Apple's "Over-the-Air Profile Delivery and Configuration"), before the
 * MDM check-in:
 *   1. POST {enroll-ota}/enroll with the user's name and password (the web
 *      page's form) -> a CMS-signed Profile Service profile;
 *   2. POST the attributes it asks for plus its Challenge, as a CMS-signed
 *      plist, to its URL, signed with the device's own certificate (made up
 *      here from --device-ca, as Apple's iPhone Device CA would have issued
 *      it) -> a signed profile with a PKCS12 identity;
 *   3. POST the attributes again, signed with that identity -> the signed
 *      MDM profile: the CA, the device identity (PKCS12) and com.apple.mdm.
 * Every profile's signature must chain to --ca, every URL in them must point
 * where mdmsim was told the server is, and each PKCS12 must open with its
 * Password and hold a certificate for the device's UDID.  The identity then
 * becomes the device's TLS client identity for Authenticate, TokenUpdate and
 * the command loop, with the Topic of the MDM payload.
 *
 * Asynchronous on the shared loop, one 1-way TLS connection per enrolling
 * device, so that -c devices enroll at once (the load of `make bench`).
 * With --dump-dir, every profile received is written there as
 * <UDID>.<service|ota|mdm>.mobileconfig (as signed) and .plist (the signed
 * content), and the identities as <UDID>.<ota|identity>.pem (certificate and
 * key), for tests. */
#ifndef MDMSIM_ENROLL_H
#define MDMSIM_ENROLL_H

#include <arpa/inet.h>
#include <errno.h>
#include <event2/bufferevent_ssl.h>
#include <event2/keyvalq_struct.h>
#include <netdb.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>

#include "mdmsim_core.h"
#include "mdmsim_id.h"

#define SIM_ENR_MAX_BODY (4 * 1024 * 1024)

enum sim_enr_stage {
    SIM_ENR_LOGIN = 1, /* form sent; a Profile Service profile expected */
    SIM_ENR_PHASE1,    /* device-signed attributes sent; OTA identity expected */
    SIM_ENR_PHASE2,    /* OTA-signed attributes sent; MDM profile expected */
};
static const char *const sim_enr_stage_name[] = {"-", "service", "ota", "mdm"};

struct sim_enr { /* one device's enrollment */
    enum sim_enr_stage stage;
    struct evhttp_connection *conn; /* to the 1-way listener */
    int conn_dead;                  /* closed by the peer: make a new one */
    X509 *dev_cert;                 /* made-up device certificate: signs phase 1 */
    X509 *ota_cert;                 /* the OTA identity: signs phase 2 */
    EVP_PKEY *ota_key;
    char *path;    /* path of the Profile Service URL */
    plist_t attrs; /* what phase 1 sent; phase 2 sends it again */
    char *challenge;
    char topic[256]; /* Topic of the MDM payload */
    int done;        /* the MDM identity is installed */
    int64_t t0_us;   /* start of this enrollment */
};

struct sim_enr_ctx {   /* --enroll-ota, once per simulator */
    SSL_CTX *ctx;      /* 1-way TLS: trusts --ca, no client certificate */
    X509_STORE *trust; /* --ca, any purpose: profile signatures */
    X509 *dca_cert;    /* --device-ca / --device-ca-key */
    EVP_PKEY *dca_key;
    char *host, *addr, *host_hdr; /* of --enroll-ota */
    int port, host_is_ip;
    char *base;                       /* path of --enroll-ota, no trailing '/' */
    char *want_server, *want_checkin; /* the MDM URLs the profile must name */
    uint64_t done;                    /* enrollments completed */
    struct sim_hist hist;             /* whole enrollments: login to MDM identity */
};

/* mdmsim.c */
static void sim_session_end(struct sim_dev *d, int failed);
static void sim_proto_error(struct sim_dev *d, const char *why, const char *uuid);
static void sim_dev_send(struct sim_dev *d, enum sim_state st, plist_t report);
static int sim_status_allowed(const struct sim *s, int code);
static void sim_conn_release(struct sim_dev *d);

/* ---- setup ---- */

static void sim_enr_parse_url(struct sim *s, struct sim_enr_ctx *e)
{
    struct evhttp_uri *u = evhttp_uri_parse(s->o.enroll_url);
    const char *host = u ? evhttp_uri_get_host(u) : NULL;
    const char *scheme = u ? evhttp_uri_get_scheme(u) : NULL;
    if (scheme == NULL || strcasecmp(scheme, "https") != 0 || host == NULL || *host == '\0')
        die("event=bad_url option=enroll-ota url=\"%s\" want=https://HOST[:PORT][/PATH]",
            s->o.enroll_url);
    size_t hl = strlen(host);
    e->host = host[0] == '[' && hl > 2 ? xstrndup(host + 1, hl - 2) : xstrdup(host);
    e->port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : 443;
    const char *path = evhttp_uri_get_path(u) ? evhttp_uri_get_path(u) : "";
    size_t pl = strlen(path);
    while (pl > 0 && path[pl - 1] == '/')
        pl--;
    e->base = xstrndup(path, pl);
    e->host_hdr = xasprintf(strchr(e->host, ':') ? "[%s]:%d" : "%s:%d", e->host, e->port);
    evhttp_uri_free(u);
}

static void sim_enr_resolve(struct sim_enr_ctx *e)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    char buf[INET6_ADDRSTRLEN];
    unsigned char ip[16];
    int rc = getaddrinfo(e->host, NULL, &hints, &ai);
    if (rc != 0 || ai == NULL)
        die("event=resolve_failed host=%s error=\"%s\"", e->host, gai_strerror(rc));
    const void *a = ai->ai_family == AF_INET6
                        ? (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
                        : (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
    if (inet_ntop(ai->ai_family, a, buf, sizeof(buf)) == NULL)
        die("event=resolve_failed host=%s", e->host);
    freeaddrinfo(ai);
    e->addr = xstrdup(buf);
    e->host_is_ip = inet_pton(AF_INET, e->host, ip) == 1 || inet_pton(AF_INET6, e->host, ip) == 1;
}

static SSL_CTX *sim_enr_tls_ctx(struct sim *s, struct sim_enr_ctx *e)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    X509_VERIFY_PARAM *p = ctx ? SSL_CTX_get0_param(ctx) : NULL;
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_load_verify_locations(ctx, s->o.ca, NULL) != 1 ||
        (e->host_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(p, e->host)
                       : X509_VERIFY_PARAM_set1_host(p, e->host, 0)) != 1) {
        log_ssl(LOG_LVL_ERR, "event=tls_context_failed what=enroll");
        exit(1);
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

/* Profiles are signed by the server's TLS identity (EKU serverAuth): chain
 * to --ca with no purpose, as iOS shows a profile "Verified". */
static X509_STORE *sim_enr_trust(struct sim *s)
{
    X509_STORE *st = X509_STORE_new();
    if (st == NULL || X509_STORE_load_file(st, s->o.ca) != 1 ||
        X509_STORE_set_purpose(st, X509_PURPOSE_ANY) != 1)
        die("event=trust_store_failed path=%s", s->o.ca);
    return st;
}

/* --enroll-until NAME: the stage whose profile is the last one fetched. */
static int sim_enr_stage_of(const char *name)
{
    for (int i = SIM_ENR_LOGIN; i <= SIM_ENR_PHASE2; i++)
        if (strcmp(name, sim_enr_stage_name[i]) == 0)
            return i;
    die("event=bad_option option=enroll-until value=\"%s\" want=service|ota|mdm", name);
}

static struct sim_enr_ctx *sim_enr_new(struct sim *s)
{
    struct sim_enr_ctx *e = xcalloc(1, sizeof(*e));
    if (s->o.user == NULL || s->o.password == NULL || s->o.device_ca == NULL ||
        s->o.device_ca_key == NULL)
        die("event=bad_option reason=\"--enroll-ota needs --user, --password, --device-ca and "
            "--device-ca-key\"");
    sim_enr_parse_url(s, e);
    sim_enr_resolve(e);
    e->ctx = sim_enr_tls_ctx(s, e);
    e->trust = sim_enr_trust(s);
    e->dca_cert = sim_id_read_cert(s->o.device_ca);
    e->dca_key = sim_id_read_key(s->o.device_ca_key);
    if (X509_check_private_key(e->dca_cert, e->dca_key) != 1)
        die("event=ca_key_mismatch ca=%s key=%s", s->o.device_ca, s->o.device_ca_key);
    /* The MDM URLs the profile has to name: --url is where mdmsim checks in. */
    e->want_server = xasprintf("https://%s%s", s->host_hdr, s->connect_path);
    e->want_checkin = xasprintf("https://%s%s", s->host_hdr, s->checkin_path);
    if (s->o.dump_dir != NULL && mkdir(s->o.dump_dir, 0755) != 0 && errno != EEXIST)
        die("event=dump_dir_failed path=%s error=\"%s\"", s->o.dump_dir, strerror(errno));
    return e;
}

static void sim_enr_dev_free(struct sim_dev *d)
{
    struct sim_enr *n = d->enr;
    if (n == NULL)
        return;
    if (n->conn != NULL)
        evhttp_connection_free(n->conn);
    X509_free(n->dev_cert);
    X509_free(n->ota_cert);
    EVP_PKEY_free(n->ota_key);
    free(n->path);
    free(n->challenge);
    plist_free(n->attrs);
    free(n);
    d->enr = NULL;
}

static void sim_enr_free(struct sim_enr_ctx *e)
{
    if (e == NULL)
        return;
    SSL_CTX_free(e->ctx);
    X509_STORE_free(e->trust);
    X509_free(e->dca_cert);
    EVP_PKEY_free(e->dca_key);
    free(e->host);
    free(e->addr);
    free(e->host_hdr);
    free(e->base);
    free(e->want_server);
    free(e->want_checkin);
    free(e);
}

/* ---- the 1-way connection ---- */

/* Frees c from reap_ev, never inside one of its own callbacks. */
static void sim_grave_add(struct sim *s, struct evhttp_connection *c)
{
    if (s->ngrave == s->grave_cap) {
        s->grave_cap = s->grave_cap ? s->grave_cap * 2 : 64;
        s->grave = xrealloc(s->grave, s->grave_cap * sizeof(*s->grave));
    }
    s->grave[s->ngrave++] = c;
    event_active(s->reap_ev, EV_TIMEOUT, 0);
}

static void sim_enr_on_close(struct evhttp_connection *c, void *arg)
{
    struct sim_dev *d = arg;
    (void)c;
    /* evhttp cannot reconnect an SSL bufferevent: the next request needs a
     * new connection. */
    if (d->enr != NULL)
        d->enr->conn_dead = 1;
}

/* Detaches the device's 1-way connection. */
static void sim_enr_release(struct sim_dev *d)
{
    struct evhttp_connection *c = d->enr != NULL ? d->enr->conn : NULL;
    if (c == NULL)
        return;
    d->enr->conn = NULL;
    evhttp_connection_set_closecb(c, NULL, NULL);
    sim_grave_add(d->sim, c);
}

static struct evhttp_connection *sim_enr_conn(struct sim_dev *d)
{
    struct sim *s = d->sim;
    struct sim_enr_ctx *e = s->enr;
    struct timeval tv = {(time_t)s->o.timeout_s, 0};
    if (d->enr->conn != NULL && d->enr->conn_dead)
        sim_enr_release(d);
    if (d->enr->conn != NULL)
        return d->enr->conn;
    SSL *ssl = SSL_new(e->ctx);
    if (ssl == NULL || (!e->host_is_ip && SSL_set_tlsext_host_name(ssl, e->host) != 1)) {
        SSL_free(ssl);
        return NULL;
    }
    struct bufferevent *bev =
        bufferevent_openssl_socket_new(s->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                       BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (bev == NULL) {
        SSL_free(ssl);
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    struct evhttp_connection *c =
        evhttp_connection_base_bufferevent_new(s->base, NULL, bev, e->addr, (ev_uint16_t)e->port);
    if (c == NULL) {
        bufferevent_free(bev);
        return NULL;
    }
    if (s->o.loopback_sources) {
        /* 127.0.0.2, .3, ...: each device a client of its own, as phones
         * enrolling at once are (login limits count per address). */
        char a[32];
        unsigned n = sim_gidx(d) + 2;
        snprintf(a, sizeof(a), "127.%u.%u.%u", (n >> 16) & 255, (n >> 8) & 255, n & 255);
        evhttp_connection_set_local_address(c, a);
    }
    evhttp_connection_set_timeout_tv(c, &tv);
    evhttp_connection_set_retries(c, 0);
    evhttp_connection_set_closecb(c, sim_enr_on_close, d);
    s->st.connects++;
    d->enr->conn = c;
    d->enr->conn_dead = 0;
    return c;
}

static void sim_enr_on_response(struct evhttp_request *req, void *arg);

static int sim_enr_post(struct sim_dev *d, const char *path, const char *ctype, const void *body,
                        size_t len)
{
    struct evhttp_connection *c = sim_enr_conn(d);
    if (c == NULL)
        return -1;
    struct evhttp_request *req = evhttp_request_new(sim_enr_on_response, d);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", d->sim->enr->host_hdr);
    evhttp_add_header(h, "Content-Type", ctype);
    evhttp_add_header(h, "User-Agent", "Profile/1.0");
    evbuffer_add(evhttp_request_get_output_buffer(req), body, len);
    d->t0_us = sim_now_us();
    return evhttp_make_request(c, req, EVHTTP_REQ_POST, path);
}

/* ---- what comes back ---- */

static void sim_enr_dump(const struct sim_dev *d, const char *ext, const void *p, size_t n)
{
    const char *dir = d->sim->o.dump_dir;
    if (dir == NULL)
        return;
    char *path = xasprintf("%s/%s.%s.%s", dir, d->udid, sim_enr_stage_name[d->enr->stage], ext);
    FILE *f = fopen(path, "w");
    if (f == NULL || fwrite(p, 1, n, f) != n)
        log_warn("event=dump_failed path=%s", path);
    if (f != NULL)
        fclose(f);
    free(path);
}

static void sim_enr_dump_identity(const struct sim_dev *d, const char *what, X509 *x, EVP_PKEY *k)
{
    if (d->sim->o.dump_dir == NULL)
        return;
    char *path = xasprintf("%s/%s.%s.pem", d->sim->o.dump_dir, d->udid, what);
    FILE *f = fopen(path, "w");
    if (f == NULL || PEM_write_X509(f, x) != 1 ||
        PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) != 1)
        log_warn("event=dump_failed path=%s", path);
    if (f != NULL)
        fclose(f);
    free(path);
}

/* The content of a signed profile whose signer chains to --ca, as a plist;
 * NULL (why set) otherwise. */
static plist_t sim_enr_open(struct sim_dev *d, const void *der, size_t len, const char **why)
{
    const unsigned char *p = der;
    CMS_ContentInfo *cms = len < SIM_ENR_MAX_BODY ? d2i_CMS_ContentInfo(NULL, &p, (long)len) : NULL;
    BIO *out = BIO_new(BIO_s_mem());
    plist_t pl = NULL;
    char *data = NULL;
    *why = "profile is not CMS signed data";
    if (cms != NULL && CMS_verify(cms, NULL, d->sim->enr->trust, NULL, out, CMS_BINARY) != 1)
        *why = "profile signature does not verify against --ca";
    else if (cms != NULL) {
        long n = BIO_get_mem_data(out, &data);
        sim_enr_dump(d, "plist", data, n > 0 ? (size_t)n : 0);
        if (n > 0)
            plist_from_memory(data, (uint32_t)n, &pl);
        *why =
            pl != NULL && plist_get_node_type(pl) == PLIST_DICT ? NULL : "content is not a plist";
    }
    if (*why != NULL && pl != NULL) {
        plist_free(pl);
        pl = NULL;
    }
    ERR_clear_error();
    BIO_free(out);
    CMS_ContentInfo_free(cms);
    return pl;
}

/* 1 when url is https://<the --enroll-ota host:port><path...>; sets *path. */
static int sim_enr_url_path(const struct sim_enr_ctx *e, const char *url, const char **path)
{
    size_t hl = strlen(e->host_hdr);
    if (url == NULL || strncmp(url, "https://", 8) != 0 || strncmp(url + 8, e->host_hdr, hl) != 0 ||
        url[8 + hl] != '/')
        return 0;
    *path = url + 8 + hl;
    return 1;
}

/* ---- the device's signed replies ---- */

/* The attributes the Profile Service asked for, plus its challenge. */
static plist_t sim_enr_attrs(const struct sim_dev *d, plist_t wanted)
{
    char serial[16], imei[24], meid[16], name[SIM_UDID_MAX + 16];
    sim_fmt_serial(d, serial);
    sim_fmt_imei(d, imei);
    sim_fmt_meid(d, meid);
    sim_fmt_name(d, name);
    const char *const have[][2] = {{"UDID", d->udid},        {"VERSION", SIM_BUILD_VERSION},
                                   {"PRODUCT", SIM_PRODUCT}, {"SERIAL", serial},
                                   {"IMEI", imei},           {"MEID", meid},
                                   {"DEVICE_NAME", name}};
    plist_t a = plist_new_dict();
    uint32_t n = wanted != NULL ? plist_array_get_size(wanted) : 0;
    for (uint32_t i = 0; i < n; i++) {
        plist_t item = plist_array_get_item(wanted, i);
        const char *k =
            plist_get_node_type(item) == PLIST_STRING ? plist_get_string_ptr(item, NULL) : NULL;
        for (size_t j = 0; k != NULL && j < ARRAY_LEN(have); j++)
            if (strcmp(k, have[j][0]) == 0)
                sim_pl_str(a, have[j][0], have[j][1]);
    }
    if (d->enr->challenge != NULL)
        sim_pl_str(a, "CHALLENGE", d->enr->challenge);
    return a;
}

/* CMS-signs the attributes (XML, as iOS sends them) with cert/key and POSTs
 * them to the Profile Service URL.  0 or -1. */
static int sim_enr_send_attrs(struct sim_dev *d, plist_t attrs, X509 *cert, EVP_PKEY *key)
{
    char *xml = NULL;
    uint32_t xl = 0;
    unsigned char *der = NULL;
    plist_to_xml(attrs, &xml, &xl);
    BIO *in = xml != NULL ? BIO_new_mem_buf(xml, (int)xl) : NULL;
    CMS_ContentInfo *cms = in != NULL ? CMS_sign(cert, key, NULL, in, CMS_BINARY) : NULL;
    int len = cms != NULL ? i2d_CMS_ContentInfo(cms, &der) : -1;
    int rc = len > 0
                 ? sim_enr_post(d, d->enr->path, "application/pkcs7-signature", der, (size_t)len)
                 : -1;
    if (len <= 0)
        log_ssl(LOG_LVL_ERR, "event=cms_sign_failed");
    OPENSSL_free(der);
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    free(xml);
    return rc;
}

/* ---- the stages ---- */

static void sim_enr_fail(struct sim_dev *d, const char *why)
{
    sim_enr_release(d);
    sim_proto_error(d, why, NULL);
}

/* The payload of type in a profile's PayloadContent, or NULL; with uuid,
 * only the one whose PayloadUUID it is. */
static plist_t sim_enr_payload(plist_t profile, const char *type, const char *uuid)
{
    plist_t items = sim_pl_get(profile, "PayloadContent", PLIST_ARRAY);
    uint32_t n = items != NULL ? plist_array_get_size(items) : 0;
    for (uint32_t i = 0; i < n; i++) {
        plist_t it = plist_array_get_item(items, i);
        const char *t = sim_pl_get_str(it, "PayloadType"), *u = sim_pl_get_str(it, "PayloadUUID");
        if (t != NULL && strcmp(t, type) == 0 && (uuid == NULL || (u && strcmp(u, uuid) == 0)))
            return it;
    }
    return NULL;
}

/* Opens the PKCS12 of a com.apple.security.pkcs12 payload with its Password;
 * the certificate must be for this UDID.  NULL, or why not. */
static const char *sim_enr_p12(const struct sim_dev *d, plist_t pl, X509 **cert, EVP_PKEY **key)
{
    plist_t data = sim_pl_get(pl, "PayloadContent", PLIST_DATA);
    const char *pw = sim_pl_get_str(pl, "Password");
    uint64_t n = 0;
    const unsigned char *p = data ? (const unsigned char *)plist_get_data_ptr(data, &n) : NULL;
    char cn[SIM_UDID_MAX];
    *cert = NULL;
    *key = NULL;
    if (p == NULL || pw == NULL)
        return "PKCS12 payload without PayloadContent or Password";
    PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)n);
    int ok = p12 != NULL && PKCS12_parse(p12, pw, key, cert, NULL) == 1 && *cert && *key;
    PKCS12_free(p12);
    ERR_clear_error();
    if (!ok)
        return "PKCS12 does not open with its Password";
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(*cert), NID_commonName, cn, sizeof(cn)) <
            0 ||
        strcmp(cn, d->udid) != 0)
        return "PKCS12 certificate is not for this UDID";
    return NULL;
}

/* Phase 1: sign what the Profile Service asks for with the device's own
 * certificate, send it to its URL. */
static const char *sim_enr_on_service(struct sim_dev *d, plist_t p, int send)
{
    struct sim_enr *n = d->enr;
    const char *type = sim_pl_get_str(p, "PayloadType"), *path = NULL;
    plist_t c = sim_pl_get(p, "PayloadContent", PLIST_DICT);
    plist_t wanted = sim_pl_get(c, "DeviceAttributes", PLIST_ARRAY);
    const char *url = sim_pl_get_str(c, "URL"), *ch = sim_pl_get_str(c, "Challenge");
    if (type == NULL || strcmp(type, "Profile Service") != 0)
        return "login answer is not a Profile Service payload";
    if (wanted == NULL || ch == NULL)
        return "Profile Service payload without DeviceAttributes or Challenge";
    if (!sim_enr_url_path(d->sim->enr, url, &path))
        return "Profile Service URL does not point at the --enroll-ota server";
    free(n->path);
    free(n->challenge);
    plist_free(n->attrs);
    n->path = xstrdup(path);
    n->challenge = xstrdup(ch);
    n->attrs = sim_enr_attrs(d, wanted);
    if (!send)
        return NULL;
    n->stage = SIM_ENR_PHASE1;
    return sim_enr_send_attrs(d, n->attrs, n->dev_cert, d->sim->dev_key) == 0
               ? NULL
               : "phase 1 request failed";
}

/* Phase 2: the same attributes, signed with the OTA identity just received. */
static const char *sim_enr_on_ota(struct sim_dev *d, plist_t p, int send)
{
    struct sim_enr *n = d->enr;
    plist_t pl = sim_enr_payload(p, "com.apple.security.pkcs12", NULL);
    const char *type = sim_pl_get_str(p, "PayloadType");
    if (type == NULL || strcmp(type, "Configuration") != 0 || pl == NULL)
        return "phase 1 answer is not a profile with a PKCS12 payload";
    X509_free(n->ota_cert);
    EVP_PKEY_free(n->ota_key);
    const char *why = sim_enr_p12(d, pl, &n->ota_cert, &n->ota_key);
    if (why != NULL)
        return why;
    sim_enr_dump_identity(d, "ota", n->ota_cert, n->ota_key);
    if (!send)
        return NULL;
    n->stage = SIM_ENR_PHASE2;
    return sim_enr_send_attrs(d, n->attrs, n->ota_cert, n->ota_key) == 0 ? NULL
                                                                         : "phase 2 request failed";
}

/* The MDM payload's URLs and topic; NULL, or why they are wrong. */
static const char *sim_enr_check_mdm(struct sim_dev *d, plist_t mdm)
{
    const struct sim_enr_ctx *e = d->sim->enr;
    const char *server = sim_pl_get_str(mdm, "ServerURL");
    const char *checkin = sim_pl_get_str(mdm, "CheckInURL");
    const char *topic = sim_pl_get_str(mdm, "Topic");
    if (server == NULL || strcmp(server, e->want_server) != 0)
        return "ServerURL is not the --url server's connect URL";
    if (checkin == NULL || strcmp(checkin, e->want_checkin) != 0)
        return "CheckInURL is not the --url server's checkin URL";
    if (topic == NULL || strncmp(topic, "com.apple.mgmt.", 15) != 0 ||
        strlen(topic) >= sizeof(d->enr->topic))
        return "Topic missing or not com.apple.mgmt.*";
    snprintf(d->enr->topic, sizeof(d->enr->topic), "%s", topic);
    return NULL;
}

/* The root payload must hold exactly the CA mdmsim trusts (--ca). */
static const char *sim_enr_check_root(struct sim_dev *d, plist_t p)
{
    plist_t root = sim_enr_payload(p, "com.apple.security.root", NULL);
    plist_t data = sim_pl_get(root, "PayloadContent", PLIST_DATA);
    uint64_t n = 0;
    const unsigned char *der = data ? (const unsigned char *)plist_get_data_ptr(data, &n) : NULL;
    X509 *x = der ? d2i_X509(NULL, &der, (long)n) : NULL;
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int ok = x != NULL && ctx != NULL && X509_STORE_CTX_init(ctx, d->sim->enr->trust, x, NULL) &&
             X509_verify_cert(ctx) == 1 && X509_check_issued(x, x) == X509_V_OK;
    X509_STORE_CTX_free(ctx);
    X509_free(x);
    ERR_clear_error();
    return ok ? NULL : "com.apple.security.root payload is not the trusted CA";
}

/* Installs the identity the MDM payload names: the device checks in with it. */
static const char *sim_enr_on_mdm(struct sim_dev *d, plist_t p)
{
    plist_t mdm = sim_enr_payload(p, "com.apple.mdm", NULL);
    const char *uuid = sim_pl_get_str(mdm, "IdentityCertificateUUID"), *why;
    plist_t pl = uuid ? sim_enr_payload(p, "com.apple.security.pkcs12", uuid) : NULL;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    if (mdm == NULL || pl == NULL)
        return "MDM profile without com.apple.mdm or the identity it names";
    if ((why = sim_enr_check_mdm(d, mdm)) != NULL || (why = sim_enr_check_root(d, p)) != NULL ||
        (why = sim_enr_p12(d, pl, &cert, &key)) != NULL) {
        X509_free(cert);
        EVP_PKEY_free(key);
        return why;
    }
    sim_enr_dump_identity(d, "identity", cert, key);
    free(d->cert_der);
    d->cert_der = NULL;
    sim_id_keep(d, cert);
    EVP_PKEY_free(d->id_key);
    d->id_key = key;
    X509_free(cert);
    return NULL;
}

/* The MDM identity is in place: hand over to the check-in. */
static void sim_enr_finish(struct sim_dev *d)
{
    struct sim *s = d->sim;
    sim_enr_release(d);
    d->enr->done = 1;
    s->enr->done++;
    sim_hist_add(&s->enr->hist, sim_now_us() - d->enr->t0_us);
    /* A new identity: the mutual-TLS session of an earlier one must go. */
    sim_conn_release(d);
    SSL_SESSION_free(d->sess);
    d->sess = NULL;
    d->enrolled = 0;
    sim_dev_send(d, SIM_ST_AUTH, NULL);
}

/* --enroll-until reached: this device is done, without checking in. */
static void sim_enr_stop(struct sim_dev *d)
{
    sim_enr_release(d);
    d->sim->enr->done++;
    sim_hist_add(&d->sim->enr->hist, sim_now_us() - d->enr->t0_us);
    d->done = 1;
    sim_session_end(d, 0);
}

static void sim_enr_http_error(struct sim_dev *d, int code)
{
    struct sim *s = d->sim;
    if (code == 0) {
        s->st.net_errors++;
        if (s->printed_net++ < SIM_ERR_PRINT_MAX)
            fprintf(stderr, "mdmsim: transport_error stage=%s udid=%s\n",
                    sim_enr_stage_name[d->enr->stage], d->udid);
    } else if (sim_status_allowed(s, code)) {
        s->st.http_allowed++;
    } else {
        s->st.http_errors++;
        if (s->printed_http++ < SIM_ERR_PRINT_MAX)
            fprintf(stderr, "mdmsim: http_status=%d stage=%s udid=%s\n", code,
                    sim_enr_stage_name[d->enr->stage], d->udid);
    }
    sim_enr_release(d);
    sim_session_end(d, 1);
}

static void sim_enr_on_response(struct evhttp_request *req, void *arg)
{
    struct sim_dev *d = arg;
    struct sim *s = d->sim;
    int code = req != NULL ? evhttp_request_get_response_code(req) : 0;
    sim_latency(s, d->t0_us);
    s->st.requests++;
    if (code != 200) {
        sim_enr_http_error(d, code);
        return;
    }
    const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
    struct evbuffer *b = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(b);
    const unsigned char *der = len > 0 ? evbuffer_pullup(b, -1) : (const unsigned char *)"";
    const char *why = "profile not served as application/x-apple-aspen-config";
    plist_t p = NULL;
    sim_enr_dump(d, "mobileconfig", der, len);
    if (ct != NULL && strcmp(ct, "application/x-apple-aspen-config") == 0)
        p = sim_enr_open(d, der, len, &why);
    enum sim_enr_stage st = d->enr->stage;
    int last = (int)st == s->o.enroll_until; /* --enroll-until: stop after this one */
    if (p != NULL)
        why = st == SIM_ENR_LOGIN    ? sim_enr_on_service(d, p, !last)
              : st == SIM_ENR_PHASE1 ? sim_enr_on_ota(d, p, !last)
                                     : sim_enr_on_mdm(d, p);
    plist_free(p);
    if (why != NULL)
        sim_enr_fail(d, why);
    else if (last)
        sim_enr_stop(d);
    else if (st == SIM_ENR_PHASE2)
        sim_enr_finish(d);
}

/* ---- entry points ---- */

static int sim_enr_done(const struct sim_dev *d)
{
    return d->enr != NULL && d->enr->done;
}

/* The device's own certificate, as Apple's device CA would have issued it. */
static int sim_enr_device_cert(struct sim_dev *d)
{
    struct sim_enr_ctx *e = d->sim->enr;
    if (d->enr->dev_cert == NULL)
        d->enr->dev_cert = sim_id_build_by(d->sim, d->udid, e->dca_cert, e->dca_key);
    return d->enr->dev_cert != NULL ? 0 : -1;
}

/* --user, with "{}" replaced by the device's number (one user per device,
 * as when many people enroll at once: login limits count per user). */
static char *sim_enr_user(const struct sim_dev *d)
{
    const struct sim *s = d->sim;
    const char *p = strstr(s->o.user, "{}");
    if (p == NULL)
        return xstrdup(s->o.user);
    return xasprintf("%.*s%0*u%s", (int)(p - s->o.user), s->o.user, (int)s->udid_width, sim_gidx(d),
                     p + 2);
}

/* Starts (or, after a failure, restarts) the device's enrollment: log in. */
static void sim_enr_start(struct sim_dev *d)
{
    struct sim *s = d->sim;
    if (d->enr == NULL)
        d->enr = xcalloc(1, sizeof(*d->enr));
    d->enr->t0_us = sim_now_us();
    d->enr->stage = SIM_ENR_LOGIN;
    if (sim_enr_device_cert(d) != 0) {
        log_ssl(LOG_LVL_ERR, "event=device_cert_failed");
        sim_session_end(d, 1);
        return;
    }
    char *user = sim_enr_user(d);
    char *u = evhttp_encode_uri(user), *pw = evhttp_encode_uri(s->o.password);
    free(user);
    char *body = xasprintf("username=%s&password=%s", u, pw);
    char *path = xasprintf("%s/enroll", s->enr->base);
    int rc = sim_enr_post(d, path, "application/x-www-form-urlencoded", body, strlen(body));
    free(u);
    free(pw);
    free(body);
    free(path);
    if (rc != 0) {
        s->st.net_errors++;
        sim_enr_release(d);
        sim_session_end(d, 1);
    }
}

static void sim_enr_summary(const struct sim *s)
{
    if (s->enr == NULL)
        return;
    double el = (double)(s->end_us - s->start_us) / 1e6;
    printf("ota_enrolled=%llu enroll_rate=%.2f enroll_p50_ms=%.1f enroll_p99_ms=%.1f "
           "enroll_max_ms=%.1f\n",
           (unsigned long long)s->enr->done, el > 0 ? (double)s->enr->done / el : 0.0,
           sim_hist_pct_ms(&s->enr->hist, 0.50), sim_hist_pct_ms(&s->enr->hist, 0.99),
           (double)s->enr->hist.max_us / 1000.0);
    fflush(stdout);
}

#endif
