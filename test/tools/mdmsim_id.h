/* mdmsim_id.h: device identities and the client TLS context.  Each simulated
 * device gets its own certificate (CN = UDID, EKU clientAuth) issued by
 * mdmsim from the MDM CA files; all devices share one P-256 key, because
 * key generation, not signing, is the slow part.  Blocking: startup, or once
 * per device before its first connection. */
#ifndef MDMSIM_ID_H
#define MDMSIM_ID_H

#include <errno.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>

#include "mdmsim_core.h"

static X509 *sim_id_read_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        die("event=ca_open_failed path=%s error=\"%s\"", path, strerror(errno));
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (x == NULL)
        die("event=ca_parse_failed path=%s", path);
    return x;
}

static EVP_PKEY *sim_id_read_key(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        die("event=ca_key_open_failed path=%s error=\"%s\"", path, strerror(errno));
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (k == NULL)
        die("event=ca_key_parse_failed path=%s", path);
    return k;
}

/* Loads the CA pair and keeps what CertificateList reports (DER, CN). */
static void sim_id_load_ca(struct sim *s)
{
    s->ca_cert = sim_id_read_cert(s->o.ca);
    /* Over-the-air enrollment gets identities from the server: no CA key. */
    s->ca_key = s->o.ca_key != NULL ? sim_id_read_key(s->o.ca_key) : NULL;
    if (s->ca_key != NULL && X509_check_private_key(s->ca_cert, s->ca_key) != 1)
        die("event=ca_key_mismatch ca=%s key=%s", s->o.ca, s->o.ca_key);
    s->ca_der = NULL;
    s->ca_der_len = i2d_X509(s->ca_cert, &s->ca_der);
    if (s->ca_der_len <= 0)
        die("event=ca_encode_failed");
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(s->ca_cert), NID_commonName, s->ca_cn,
                                  sizeof(s->ca_cn)) < 0)
        snprintf(s->ca_cn, sizeof(s->ca_cn), "MDM CA");
    ERR_clear_error();
}

static int sim_id_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    if (e == NULL)
        return -1;
    int ok = X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok == 1 ? 0 : -1;
}

static int sim_id_exts(X509 *issuer, X509 *x)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    if (sim_id_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
        sim_id_ext(x, &ctx, NID_key_usage, "critical,digitalSignature") != 0 ||
        sim_id_ext(x, &ctx, NID_ext_key_usage, "clientAuth") != 0 ||
        sim_id_ext(x, &ctx, NID_subject_key_identifier, "hash") != 0 ||
        sim_id_ext(x, &ctx, NID_authority_key_identifier, "keyid") != 0)
        return -1;
    return 0;
}

static int sim_id_serial(X509 *x)
{
    BIGNUM *bn = BN_new();
    int ok = bn != NULL && BN_rand(bn, 63, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) == 1 &&
             BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok ? 0 : -1;
}

/* A clientAuth certificate for the shared device key, CN = udid, issued by
 * issuer (the MDM CA; or, for --enroll-ota, the made-up device CA). */
static X509 *sim_id_build_by(struct sim *s, const char *udid, X509 *issuer, EVP_PKEY *ikey)
{
    X509 *x = X509_new();
    X509_NAME *name = x ? X509_get_subject_name(x) : NULL;
    if (x == NULL || X509_set_version(x, 2) != 1 || sim_id_serial(x) != 0 ||
        X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(x), 397L * 86400) == NULL ||
        X509_set_pubkey(x, s->dev_key) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)udid, -1, -1,
                                   0) != 1 ||
        X509_set_issuer_name(x, X509_get_subject_name(issuer)) != 1 ||
        sim_id_exts(issuer, x) != 0 || X509_sign(x, ikey, EVP_sha256()) <= 0) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static X509 *sim_id_build(struct sim *s, const char *udid)
{
    return s->ca_key != NULL ? sim_id_build_by(s, udid, s->ca_cert, s->ca_key) : NULL;
}

static void sim_id_keep(struct sim_dev *d, X509 *x)
{
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    if (len <= 0)
        die("event=cert_encode_failed udid=%s", d->udid);
    d->cert_der = xmalloc((size_t)len);
    memcpy(d->cert_der, der, (size_t)len);
    d->cert_len = len;
    OPENSSL_free(der);
}

/* Issues d's certificate unless it has one (from --identities); appends it
 * to the identities file so a re-run presents the same certificate (the
 * server binds it at Authenticate).  0 or -1 (logged). */
static int sim_id_ensure(struct sim_dev *d)
{
    struct sim *s = d->sim;
    if (d->cert_der != NULL)
        return 0;
    X509 *x = sim_id_build(s, d->udid);
    if (x == NULL) {
        log_ssl(LOG_LVL_ERR, "event=cert_issue_failed");
        return -1;
    }
    sim_id_keep(d, x);
    if (s->id_file != NULL && (PEM_write_X509(s->id_file, x) != 1 || fflush(s->id_file) != 0))
        log_warn("event=identities_write_failed path=%s", s->o.identities);
    X509_free(x);
    return 0;
}

/* The device index named by a UDID of ours, or -1. */
static long sim_id_index(const struct sim *s, const char *udid)
{
    size_t pl = strlen(s->o.prefix);
    if (strncmp(udid, s->o.prefix, pl) != 0 || udid[pl] != '-' || udid[pl + 1] < '0' ||
        udid[pl + 1] > '9')
        return -1;
    char *end;
    unsigned long v = strtoul(udid + pl + 1, &end, 10);
    if (*end != '\0' || v < s->o.offset || v - s->o.offset >= s->o.n)
        return -1;
    return (long)(v - s->o.offset);
}

/* Takes x if it is a usable identity for one of our devices: our key,
 * signed by this CA (a new test CA makes old files stale), not expired. */
static int sim_id_adopt(struct sim *s, X509 *x)
{
    char cn[SIM_UDID_MAX];
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn)) < 0)
        return 0;
    long i = sim_id_index(s, cn);
    if (i < 0 || s->devs[i].cert_der != NULL || X509_verify(x, s->ca_key) != 1 ||
        EVP_PKEY_eq(X509_get0_pubkey(x), s->dev_key) != 1 ||
        X509_cmp_time(X509_get0_notAfter(x), NULL) <= 0)
        return 0;
    sim_id_keep(&s->devs[i], x);
    return 1;
}

static void sim_id_load_file(struct sim *s, FILE *f)
{
    unsigned got = 0;
    X509 *x;
    s->dev_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    if (s->dev_key == NULL)
        die("event=identities_bad_key path=%s", s->o.identities);
    while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        got += (unsigned)sim_id_adopt(s, x);
        X509_free(x);
    }
    ERR_clear_error(); /* PEM_read_X509 leaves "no start line" at EOF */
    log_info("event=identities_loaded path=%s certificates=%u", s->o.identities, got);
}

static void sim_id_new_key(struct sim *s)
{
    s->dev_key = EVP_EC_gen("P-256");
    if (s->dev_key == NULL)
        die("event=keygen_failed");
    if (s->id_file != NULL &&
        (PEM_write_PrivateKey(s->id_file, s->dev_key, NULL, NULL, 0, NULL, NULL) != 1 ||
         fflush(s->id_file) != 0))
        die("event=identities_write_failed path=%s", s->o.identities);
}

/* The shared device key: from --identities when it has one (with every
 * certificate still valid), else a fresh one (written there first). */
static void sim_id_init(struct sim *s)
{
    FILE *f = s->o.identities ? fopen(s->o.identities, "r") : NULL;
    if (f != NULL) {
        sim_id_load_file(s, f);
        fclose(f);
    }
    if (s->o.identities != NULL) {
        s->id_file = fopen(s->o.identities, "a");
        if (s->id_file == NULL)
            die("event=identities_open_failed path=%s error=\"%s\"", s->o.identities,
                strerror(errno));
    }
    if (s->dev_key == NULL)
        sim_id_new_key(s);
}

/* One client context for every device: trusts --ca only, checks the server
 * name against the URL's host (IP SAN for an address), and holds the shared
 * key; each SSL gets its device's certificate. */
static SSL_CTX *sim_tls_ctx(struct sim *s)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    X509_VERIFY_PARAM *p = ctx ? SSL_CTX_get0_param(ctx) : NULL;

    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_load_verify_locations(ctx, s->o.ca, NULL) != 1 ||
        (s->host_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(p, s->host)
                       : X509_VERIFY_PARAM_set1_host(p, s->host, 0)) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, s->dev_key) != 1) {
        log_ssl(LOG_LVL_ERR, "event=tls_context_failed");
        exit(1);
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* No SSL read-ahead: it saves a read(2) per record, but libevent 2.1's
     * bufferevent_openssl then stalls on bytes buffered inside the SSL. */
    /* Sessions are kept per device (each has its own certificate), not in
     * the context's cache. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    return ctx;
}

#endif
