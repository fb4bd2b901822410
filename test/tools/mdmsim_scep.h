/* mdmsim_scep.h: the device's SCEP client (--scep) and Mdm-Signature
 * (--mdm-signature), as an iPhone with a SCEP enrollment profile does it.
 *
 * --scep: the device key is one RSA 2048 key for all devices (the slow part
 * is key generation); each device sends a PKCSReq for CN = its UDID with the
 * challenge (--scep-challenge), or, with --scep-profile (a signed or plain
 * enrollment profile), for the Subject CN of its SCEP payload taken
 * literally (iOS does not substitute %HardwareUUID%) with the payload's
 * Challenge, signed by a
 * self-signed certificate of that key and enveloped to the CA or RA from
 * GetCACert with --scep-cipher; the CertRep is checked (signature chains to
 * --ca, transactionID and recipientNonce echo ours) and opened.  Messages go
 * out as BER with indefinite lengths, as devices send them.  Blocking HTTP,
 * once per device before its first MDM connection (like mdmsim_id.h).
 *
 * --mdm-signature: no TLS client certificate; every MDM request carries
 * Mdm-Signature, a base64 detached CMS signature (BER) over the body. */
#ifndef MDMSIM_SCEP_H
#define MDMSIM_SCEP_H

#include <arpa/inet.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "mdmsim_core.h"

#define SIM_SCEP_MAX_RESP (1024 * 1024)
#define SIM_SCEP_OID_MESSAGE_TYPE "2.16.840.1.113733.1.9.2"
#define SIM_SCEP_OID_PKI_STATUS "2.16.840.1.113733.1.9.3"
#define SIM_SCEP_OID_FAIL_INFO "2.16.840.1.113733.1.9.4"
#define SIM_SCEP_OID_SENDER_NONCE "2.16.840.1.113733.1.9.5"
#define SIM_SCEP_OID_RECIPIENT_NONCE "2.16.840.1.113733.1.9.6"
#define SIM_SCEP_OID_TRANSACTION_ID "2.16.840.1.113733.1.9.7"

struct sim_scep {
    int tls; /* https */
    char host[256];
    int port;
    char path[512];
    SSL_CTX *ctx;      /* https: trusts --ca, checks the host */
    X509_STORE *trust; /* --ca, any purpose: CertRep and profile signers */
    X509 *recipient;   /* from GetCACert: the RSA certificate to envelope to */
    const EVP_CIPHER *cipher;
    char challenge[256];
    char subject_cn[128];   /* --scep-profile: the payload's Subject CN, as is */
    OSSL_PROVIDER *prov[2]; /* default and legacy, unloaded at the end */
    EVP_PKEY *signer_key;   /* --scep-signer throwaway: not the CSR's key; else NULL */
    const EVP_MD *md;       /* --scep-digest: of the signer's signature */
};

/* The key that signs the pkiMessage and opens the reply. */
static EVP_PKEY *sim_scep_signer(struct sim *s)
{
    return s->scep->signer_key != NULL ? s->scep->signer_key : s->dev_key;
}

struct sim_scep_msg { /* one request and what its answer must echo */
    char txid[65];
    unsigned char nonce[16];
    X509 *self; /* the self-signed signer, envelope recipient of the reply */
    unsigned char *der;
    size_t len;
};

/* ---- a blocking HTTP/1.0 exchange ---- */

static BIO *sim_scep_connect(struct sim_scep *sc)
{
    char hp[300];
    snprintf(hp, sizeof(hp), strchr(sc->host, ':') ? "[%s]:%d" : "%s:%d", sc->host, sc->port);
    BIO *b = sc->tls ? BIO_new_ssl_connect(sc->ctx) : BIO_new_connect(hp);
    SSL *ssl = NULL;
    if (b != NULL && sc->tls) {
        BIO_get_ssl(b, &ssl);
        BIO_set_conn_hostname(b, hp);
        X509_VERIFY_PARAM *p = SSL_get0_param(ssl);
        unsigned char ip[16];
        int is_ip = inet_pton(AF_INET, sc->host, ip) == 1 || inet_pton(AF_INET6, sc->host, ip) == 1;
        if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(p, sc->host) != 1
                  : (SSL_set_tlsext_host_name(ssl, sc->host) != 1 ||
                     X509_VERIFY_PARAM_set1_host(p, sc->host, 0) != 1)) {
            BIO_free_all(b);
            return NULL;
        }
    }
    if (b == NULL || BIO_do_connect(b) != 1) {
        log_ssl(LOG_LVL_ERR, "event=scep_connect_failed");
        BIO_free_all(b);
        return NULL;
    }
    return b;
}

/* Splits an HTTP/1.0 answer: status, body (malloc'ed), Content-Type. */
static int sim_scep_parse_http(const char *buf, size_t n, unsigned char **body, size_t *blen,
                               char *ctype, size_t ctlen)
{
    const char *end = memmem(buf, n, "\r\n\r\n", 4);
    int status = 0;
    if (end == NULL || sscanf(buf, "HTTP/%*d.%*d %d", &status) != 1)
        return -1;
    ctype[0] = '\0';
    for (const char *h = buf; h < end; h = strstr(h, "\r\n") + 2)
        if (strncasecmp(h, "Content-Type:", 13) == 0)
            snprintf(ctype, ctlen, "%.*s", (int)strcspn(h + 13 + strspn(h + 13, " "), "\r\n;"),
                     h + 13 + strspn(h + 13, " "));
    *blen = n - (size_t)(end + 4 - buf);
    *body = xmalloc(*blen + 1);
    memcpy(*body, end + 4, *blen);
    (*body)[*blen] = '\0';
    return status;
}

/* method path?query (+ body); returns the HTTP status, or -1. */
static int sim_scep_http(struct sim_scep *sc, const char *method, const char *query,
                         const void *body, size_t len, unsigned char **resp, size_t *rlen,
                         char *ctype, size_t ctlen)
{
    BIO *b = sim_scep_connect(sc);
    if (b == NULL)
        return -1;
    char *head = xasprintf("%s %s?%s HTTP/1.0\r\nHost: %s\r\nContent-Type: "
                           "application/x-pki-message\r\nContent-Length: %zu\r\n\r\n",
                           method, sc->path, query, sc->host, len);
    int ok = BIO_write(b, head, (int)strlen(head)) == (int)strlen(head) &&
             (len == 0 || BIO_write(b, body, (int)len) == (int)len) && BIO_flush(b) == 1;
    free(head);
    char *buf = xmalloc(SIM_SCEP_MAX_RESP);
    size_t n = 0;
    int r;
    while (ok && n < SIM_SCEP_MAX_RESP &&
           (r = BIO_read(b, buf + n, (int)(SIM_SCEP_MAX_RESP - n))) > 0)
        n += (size_t)r;
    ERR_clear_error(); /* an unclean TLS close after the answer is fine here */
    BIO_free_all(b);
    int status = ok ? sim_scep_parse_http(buf, n, resp, rlen, ctype, ctlen) : -1;
    free(buf);
    return status;
}

/* ---- setup: URL, trust, GetCACert, challenge ---- */

static void sim_scep_url(struct sim_scep *sc, const char *url)
{
    char host[256] = "", path[512] = "/";
    int port = 0;
    const char *rest = strstr(url, "://");
    if (rest == NULL)
        die("event=bad_option option=scep want=http[s]://HOST:PORT/PATH");
    sc->tls = strncasecmp(url, "https", 5) == 0;
    rest += 3;
    if (*rest == '[' && sscanf(rest, "[%255[^]]]:%d%511s", host, &port, path) < 2)
        die("event=bad_option option=scep reason=bad_host");
    if (*rest != '[' && sscanf(rest, "%255[^:/]:%d%511s", host, &port, path) < 1)
        die("event=bad_option option=scep reason=bad_host");
    snprintf(sc->host, sizeof(sc->host), "%s", host);
    sc->port = port > 0 ? port : sc->tls ? 443 : 80;
    snprintf(sc->path, sizeof(sc->path), "%s", path);
}

static int sim_scep_is_recipient(X509 *x)
{
    uint32_t ku = X509_get_key_usage(x);
    return EVP_PKEY_get_base_id(X509_get0_pubkey(x)) == EVP_PKEY_RSA &&
           (ku == UINT32_MAX || (ku & KU_KEY_ENCIPHERMENT) || X509_check_ca(x) > 0);
}

/* The RA (x-x509-ca-ra-cert) or the CA itself (x-x509-ca-cert). */
static void sim_scep_get_ca(struct sim_scep *sc)
{
    unsigned char *body = NULL;
    size_t len = 0;
    char ct[128];
    int st = sim_scep_http(sc, "GET", "operation=GetCACert", NULL, 0, &body, &len, ct, sizeof(ct));
    const unsigned char *p = body;
    if (st == 200 && strcmp(ct, "application/x-x509-ca-cert") == 0) {
        sc->recipient = d2i_X509(NULL, &p, (long)len);
    } else if (st == 200 && strcmp(ct, "application/x-x509-ca-ra-cert") == 0) {
        PKCS7 *p7 = d2i_PKCS7(NULL, &p, (long)len);
        STACK_OF(X509) *certs = p7 != NULL && PKCS7_type_is_signed(p7) ? p7->d.sign->cert : NULL;
        for (int i = 0; i < sk_X509_num(certs) && sc->recipient == NULL; i++)
            if (X509_check_ca(sk_X509_value(certs, i)) == 0 &&
                sim_scep_is_recipient(sk_X509_value(certs, i)) &&
                X509_up_ref(sk_X509_value(certs, i)))
                sc->recipient = sk_X509_value(certs, i);
        PKCS7_free(p7);
    }
    free(body);
    if (sc->recipient == NULL || !sim_scep_is_recipient(sc->recipient))
        die("event=scep_getcacert_failed status=%d content_type=\"%s\"", st, st > 0 ? ct : "");
    log_info("event=scep_ca content_type=%s", ct);
}

/* The SCEP payload's Challenge and Subject CN from an enrollment profile
 * (signed: checked against --ca first).  Subject is [[["CN", "..."]], ...]. */
static void sim_scep_subject_cn(struct sim_scep *sc, plist_t subject)
{
    for (uint32_t i = 0; subject != NULL && i < plist_array_get_size(subject); i++) {
        plist_t rdn = plist_array_get_item(subject, i);
        plist_t pair =
            plist_get_node_type(rdn) == PLIST_ARRAY ? plist_array_get_item(rdn, 0) : NULL;
        if (pair == NULL || plist_get_node_type(pair) != PLIST_ARRAY ||
            plist_array_get_size(pair) != 2)
            continue;
        plist_t k = plist_array_get_item(pair, 0), v = plist_array_get_item(pair, 1);
        const char *ks =
            plist_get_node_type(k) == PLIST_STRING ? plist_get_string_ptr(k, NULL) : NULL;
        const char *vs =
            plist_get_node_type(v) == PLIST_STRING ? plist_get_string_ptr(v, NULL) : NULL;
        if (ks != NULL && vs != NULL && strcmp(ks, "CN") == 0)
            snprintf(sc->subject_cn, sizeof(sc->subject_cn), "%s", vs);
    }
}

static void sim_scep_profile(struct sim_scep *sc, const char *path)
{
    char *raw = NULL;
    size_t n = 0;
    if (util_read_file(path, &raw, &n) != 0)
        die("event=scep_profile_unreadable path=%s", path);
    BIO *in = BIO_new_mem_buf(raw, (int)n), *out = BIO_new(BIO_s_mem());
    CMS_ContentInfo *cms = raw[0] == '<' ? NULL : d2i_CMS_bio(in, NULL);
    char *xml = raw;
    if (cms != NULL) {
        if (CMS_verify(cms, NULL, sc->trust, NULL, out, CMS_BINARY) != 1)
            die("event=scep_profile_bad_signature path=%s", path);
        BIO_get_mem_data(out, &xml);
        n = (size_t)BIO_number_written(out);
    }
    plist_t pl = NULL, items;
    plist_from_memory(xml, (uint32_t)n, &pl);
    items = sim_pl_get(pl, "PayloadContent", PLIST_ARRAY);
    for (uint32_t i = 0; items != NULL && i < plist_array_get_size(items); i++) {
        plist_t item = plist_array_get_item(items, i);
        const char *type = sim_pl_get_str(item, "PayloadType");
        const char *c = sim_pl_get_str(sim_pl_get(item, "PayloadContent", PLIST_DICT), "Challenge");
        if (type != NULL && strcmp(type, "com.apple.security.scep") == 0 && c != NULL) {
            snprintf(sc->challenge, sizeof(sc->challenge), "%s", c);
            sim_scep_subject_cn(sc, sim_pl_get(sim_pl_get(item, "PayloadContent", PLIST_DICT),
                                               "Subject", PLIST_ARRAY));
        }
    }
    plist_free(pl);
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    BIO_free(out);
    free(raw);
    if (sc->challenge[0] == '\0')
        die("event=scep_profile_without_challenge path=%s", path);
}

static const EVP_CIPHER *sim_scep_cipher(const char *name)
{
    static const char *const names[][2] = {{"aes256", "AES-256-CBC"},
                                           {"aes128", "AES-128-CBC"},
                                           {"des3", "DES-EDE3-CBC"},
                                           {"des", "DES-CBC"}};
    for (size_t i = 0; i < ARRAY_LEN(names); i++)
        if (strcmp(name, names[i][0]) == 0) {
            const EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, names[i][1], NULL);
            if (c == NULL)
                die("event=scep_cipher_unavailable cipher=%s", name);
            return c;
        }
    die("event=bad_option option=scep-cipher want=aes256|aes128|des3|des");
}

/* Replaces sim_id_load_ca (which needs the CA key) in --scep mode. */
static void sim_scep_init(struct sim *s)
{
    struct sim_scep *sc = xcalloc(1, sizeof(*sc));
    s->scep = sc;
    /* Single DES is in OpenSSL 3's legacy provider; default must be named too. */
    if ((sc->prov[0] = OSSL_PROVIDER_load(NULL, "default")) == NULL ||
        (sc->prov[1] = OSSL_PROVIDER_load(NULL, "legacy")) == NULL)
        log_warn("event=legacy_provider_unavailable");
    s->ca_cert = sim_id_read_cert(s->o.ca);
    s->ca_der = NULL;
    s->ca_der_len = i2d_X509(s->ca_cert, &s->ca_der);
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(s->ca_cert), NID_commonName, s->ca_cn,
                                  sizeof(s->ca_cn)) < 0)
        snprintf(s->ca_cn, sizeof(s->ca_cn), "MDM CA");
    sc->trust = X509_STORE_new();
    if (sc->trust == NULL || X509_STORE_load_file(sc->trust, s->o.ca) != 1 ||
        X509_STORE_set_purpose(sc->trust, X509_PURPOSE_ANY) != 1)
        die("event=scep_trust_failed path=%s", s->o.ca);
    sim_scep_url(sc, s->o.scep_url);
    sc->ctx = SSL_CTX_new(TLS_client_method());
    if (sc->ctx == NULL || SSL_CTX_load_verify_locations(sc->ctx, s->o.ca, NULL) != 1)
        die("event=scep_tls_failed");
    SSL_CTX_set_verify(sc->ctx, SSL_VERIFY_PEER, NULL);
    sc->cipher = sim_scep_cipher(s->o.scep_cipher != NULL ? s->o.scep_cipher : "aes256");
    if (s->o.scep_profile != NULL)
        sim_scep_profile(sc, s->o.scep_profile);
    if (s->o.scep_challenge != NULL)
        snprintf(sc->challenge, sizeof(sc->challenge), "%s", s->o.scep_challenge);
    sim_scep_get_ca(sc);
    s->dev_key = EVP_RSA_gen(s->o.scep_key_bits > 0 ? (unsigned)s->o.scep_key_bits : 2048);
    if (s->dev_key == NULL)
        die("event=keygen_failed");
    /* RFC 8894 2.3 allows a signer key other than the CSR's (SHOULD, not
     * MUST): some client libraries sign with a throwaway key. */
    if (s->o.scep_signer != NULL && strcmp(s->o.scep_signer, "throwaway") == 0 &&
        (sc->signer_key = EVP_RSA_gen(2048)) == NULL)
        die("event=keygen_failed");
    else if (s->o.scep_signer != NULL && strcmp(s->o.scep_signer, "throwaway") != 0 &&
             strcmp(s->o.scep_signer, "csr") != 0)
        die("event=bad_option option=scep-signer want=csr|throwaway");
    sc->md = EVP_sha256();
    if (s->o.scep_digest != NULL && strcmp(s->o.scep_digest, "sha1") == 0)
        sc->md = EVP_sha1();
    else if (s->o.scep_digest != NULL && strcmp(s->o.scep_digest, "sha256") != 0)
        die("event=bad_option option=scep-digest want=sha256|sha1");
    ERR_clear_error();
}

static void sim_scep_free(struct sim *s)
{
    struct sim_scep *sc = s->scep;
    if (sc == NULL)
        return;
    SSL_CTX_free(sc->ctx);
    X509_STORE_free(sc->trust);
    X509_free(sc->recipient);
    EVP_CIPHER_free((EVP_CIPHER *)sc->cipher);
    EVP_PKEY_free(sc->signer_key);
    for (int i = 1; i >= 0; i--)
        if (sc->prov[i] != NULL)
            OSSL_PROVIDER_unload(sc->prov[i]);
    free(sc);
    s->scep = NULL;
}

/* ---- the request ---- */

/* CN, challengePassword, keyUsage digitalSignature + keyEncipherment
 * (Key Usage 5 of the payload). */
static X509_REQ *sim_scep_csr(struct sim *s, const char *cn)
{
    X509_REQ *req = X509_REQ_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *ku =
        X509V3_EXT_conf_nid(NULL, NULL, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    int ok = req != NULL && exts != NULL && ku != NULL && sk_X509_EXTENSION_push(exts, ku) > 0 &&
             X509_REQ_set_pubkey(req, s->dev_key) == 1 &&
             X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
                                        (const unsigned char *)cn, -1, -1, 0) == 1 &&
             (s->scep->challenge[0] == '\0' ||
              X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword, MBSTRING_UTF8,
                                        (const unsigned char *)s->scep->challenge, -1) == 1) &&
             X509_REQ_add_extensions(req, exts) == 1 &&
             X509_REQ_sign(req, s->dev_key, EVP_sha256()) > 0;
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    if (ku != NULL && exts == NULL)
        X509_EXTENSION_free(ku);
    if (!ok) {
        X509_REQ_free(req);
        return NULL;
    }
    return req;
}

/* The throwaway certificate that signs the request (RFC 8894 3.3.1). */
static X509 *sim_scep_self(struct sim *s, const char *cn)
{
    X509 *x = X509_new();
    X509_NAME *n = x != NULL ? X509_get_subject_name(x) : NULL;
    int ok = x != NULL && X509_set_version(x, 2) == 1 && sim_id_serial(x) == 0 &&
             X509_gmtime_adj(X509_getm_notBefore(x), -3600) != NULL &&
             X509_gmtime_adj(X509_getm_notAfter(x), 86400) != NULL &&
             X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                        0) == 1 &&
             X509_set_issuer_name(x, n) == 1 && X509_set_pubkey(x, sim_scep_signer(s)) == 1 &&
             X509_sign(x, sim_scep_signer(s), EVP_sha256()) > 0;
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* The CSR in an EnvelopedData for the CA/RA (DER). */
static int sim_scep_envelope(struct sim *s, X509_REQ *req, unsigned char **der, int *len)
{
    unsigned char *csr = NULL;
    int n = i2d_X509_REQ(req, &csr);
    STACK_OF(X509) *to = sk_X509_new_null();
    BIO *in = n > 0 ? BIO_new_mem_buf(csr, n) : NULL;
    CMS_ContentInfo *env = NULL;
    *der = NULL;
    if (in != NULL && to != NULL && sk_X509_push(to, s->scep->recipient) > 0)
        env = CMS_encrypt(to, in, s->scep->cipher, CMS_BINARY);
    *len = env != NULL ? i2d_CMS_ContentInfo(env, der) : -1;
    CMS_ContentInfo_free(env);
    BIO_free(in);
    sk_X509_free(to);
    OPENSSL_free(csr);
    return *len > 0 ? 0 : -1;
}

/* n is a real length: -1 would make OpenSSL read v as an ASN1_TYPE. */
static int sim_scep_attr(CMS_SignerInfo *si, const char *oid, int type, const void *v, int n)
{
    return CMS_signed_add1_attr_by_txt(si, oid, type, v, n) == 1 ? 0 : -1;
}

/* The pkiMessage, written as streamed BER (indefinite lengths). */
static int sim_scep_sign(struct sim *s, struct sim_scep_msg *m, const unsigned char *env,
                         int envlen, const char *type)
{
    const int flags = CMS_BINARY | CMS_STREAM;
    CMS_ContentInfo *cms = CMS_sign(NULL, NULL, NULL, NULL, flags | CMS_PARTIAL);
    CMS_SignerInfo *si = cms != NULL ? CMS_add1_signer(cms, m->self, sim_scep_signer(s),
                                                       s->scep->md, CMS_BINARY | CMS_NOSMIMECAP)
                                     : NULL;
    BIO *in = BIO_new_mem_buf(env, envlen), *out = BIO_new(BIO_s_mem());
    int ok = si != NULL && in != NULL && out != NULL &&
             sim_scep_attr(si, SIM_SCEP_OID_MESSAGE_TYPE, V_ASN1_PRINTABLESTRING, type,
                           (int)strlen(type)) == 0 &&
             sim_scep_attr(si, SIM_SCEP_OID_TRANSACTION_ID, V_ASN1_PRINTABLESTRING, m->txid,
                           (int)strlen(m->txid)) == 0 &&
             sim_scep_attr(si, SIM_SCEP_OID_SENDER_NONCE, V_ASN1_OCTET_STRING, m->nonce,
                           (int)sizeof(m->nonce)) == 0 &&
             i2d_CMS_bio_stream(out, cms, in, flags) == 1;
    char *p = NULL;
    long n = ok ? BIO_get_mem_data(out, &p) : 0;
    if (n > 0) {
        m->der = xmalloc((size_t)n);
        memcpy(m->der, p, (size_t)n);
        m->len = (size_t)n;
    }
    BIO_free(in);
    BIO_free(out);
    CMS_ContentInfo_free(cms);
    return n > 0 ? 0 : -1;
}

static int sim_scep_request(struct sim *s, const char *udid, struct sim_scep_msg *m)
{
    unsigned char digest[32], *env = NULL;
    int envlen = 0;
    const char *cn = s->scep->subject_cn[0] != '\0' ? s->scep->subject_cn : udid;
    X509_REQ *req = sim_scep_csr(s, cn);
    m->self = sim_scep_self(s, cn);
    RAND_bytes(m->nonce, sizeof(m->nonce));
    /* transactionID: a hash of the public key, as RFC 8894 suggests. */
    unsigned int dlen = 0;
    ASN1_BIT_STRING *pk = X509_get0_pubkey_bitstr(m->self != NULL ? m->self : s->ca_cert);
    EVP_Digest(ASN1_STRING_get0_data(pk), (size_t)ASN1_STRING_length(pk), digest, &dlen,
               EVP_sha256(), NULL);
    util_hex(digest, dlen, m->txid);
    int rc = req != NULL && m->self != NULL && sim_scep_envelope(s, req, &env, &envlen) == 0 &&
                     sim_scep_sign(s, m, env, envlen, "19") == 0
                 ? 0
                 : -1;
    OPENSSL_free(env);
    X509_REQ_free(req);
    return rc;
}

/* ---- the answer ---- */

static const char *sim_scep_get_attr(CMS_SignerInfo *si, const char *oid, int *len)
{
    ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
    int i = o != NULL ? CMS_signed_get_attr_by_OBJ(si, o, -1) : -1;
    ASN1_OBJECT_free(o);
    ASN1_TYPE *t = i >= 0 ? X509_ATTRIBUTE_get0_type(CMS_signed_get_attr(si, i), 0) : NULL;
    if (t == NULL || t->type == V_ASN1_OBJECT || t->type == V_ASN1_BOOLEAN ||
        t->type == V_ASN1_NULL)
        return NULL;
    *len = ASN1_STRING_length(t->value.asn1_string);
    return (const char *)ASN1_STRING_get0_data(t->value.asn1_string);
}

/* Checks the CertRep's signature and echoes; returns the pkiStatus, with the
 * envelope (SUCCESS) in env, or -1. */
static int sim_scep_check_reply(struct sim *s, const struct sim_scep_msg *m, CMS_ContentInfo *cms,
                                BIO *env, char *fail, size_t flen)
{
    ASN1_OCTET_STRING **content = CMS_get0_content(cms);
    int detached = content == NULL || *content == NULL, n = 0, tn = 0, sn = 0, fn = 0;
    BIO *none = BIO_new_mem_buf("", 0);
    int ok = CMS_verify(cms, NULL, s->scep->trust, detached ? none : NULL, env,
                        CMS_BINARY | (detached ? CMS_DETACHED : 0)) == 1;
    BIO_free(none);
    STACK_OF(CMS_SignerInfo) *sis = CMS_get0_SignerInfos(cms);
    CMS_SignerInfo *si =
        ok && sk_CMS_SignerInfo_num(sis) == 1 ? sk_CMS_SignerInfo_value(sis, 0) : NULL;
    const char *tx = si ? sim_scep_get_attr(si, SIM_SCEP_OID_TRANSACTION_ID, &tn) : NULL;
    const char *rn = si ? sim_scep_get_attr(si, SIM_SCEP_OID_RECIPIENT_NONCE, &n) : NULL;
    const char *st = si ? sim_scep_get_attr(si, SIM_SCEP_OID_PKI_STATUS, &sn) : NULL;
    const char *fi = si ? sim_scep_get_attr(si, SIM_SCEP_OID_FAIL_INFO, &fn) : NULL;
    if (tx == NULL || rn == NULL || st == NULL || sn != 1 || tn != (int)strlen(m->txid) ||
        memcmp(tx, m->txid, (size_t)tn) != 0 || n != (int)sizeof(m->nonce) ||
        memcmp(rn, m->nonce, sizeof(m->nonce)) != 0) {
        log_ssl(LOG_LVL_ERR, "event=scep_reply_invalid");
        return -1;
    }
    snprintf(fail, flen, "%.*s", fi != NULL ? fn : 0, fi != NULL ? fi : "");
    return st[0] - '0';
}

/* The issued certificate: the first of the certs-only PKCS#7 in env. */
static X509 *sim_scep_open_reply(struct sim *s, const struct sim_scep_msg *m, BIO *env)
{
    CMS_ContentInfo *e = d2i_CMS_bio(env, NULL);
    BIO *out = BIO_new(BIO_s_mem());
    X509 *x = NULL;
    if (e != NULL && out != NULL &&
        CMS_decrypt(e, sim_scep_signer(s), m->self, NULL, out, CMS_BINARY) == 1) {
        PKCS7 *p7 = d2i_PKCS7_bio(out, NULL);
        if (p7 != NULL && PKCS7_type_is_signed(p7) && sk_X509_num(p7->d.sign->cert) > 0) {
            x = sk_X509_value(p7->d.sign->cert, 0);
            X509_up_ref(x);
        }
        PKCS7_free(p7);
    }
    CMS_ContentInfo_free(e);
    BIO_free(out);
    return x;
}

static char *sim_scep_urlencode(const unsigned char *der, size_t len)
{
    char *b64 = xmalloc(4 * ((len + 2) / 3) + 1), *out = xmalloc(12 * ((len + 2) / 3) + 1),
         *o = out;
    EVP_EncodeBlock((unsigned char *)b64, der, (int)len);
    for (const char *c = b64; *c; c++)
        o += *c == '+'   ? sprintf(o, "%%2B")
             : *c == '/' ? sprintf(o, "%%2F")
             : *c == '=' ? sprintf(o, "%%3D")
                         : sprintf(o, "%c", *c);
    free(b64);
    return out;
}

/* Sends m (POST, or GET with --scep-get) and opens the answer. */
static X509 *sim_scep_exchange(struct sim *s, const struct sim_scep_msg *m, char *fail, size_t flen)
{
    unsigned char *resp = NULL;
    size_t rlen = 0;
    char ct[128], *q = NULL;
    int st;
    if (s->o.scep_get) {
        char *enc = sim_scep_urlencode(m->der, m->len);
        q = xasprintf("operation=PKIOperation&message=%s", enc);
        free(enc);
        st = sim_scep_http(s->scep, "GET", q, NULL, 0, &resp, &rlen, ct, sizeof(ct));
    } else {
        st = sim_scep_http(s->scep, "POST", "operation=PKIOperation", m->der, m->len, &resp, &rlen,
                           ct, sizeof(ct));
    }
    free(q);
    BIO *in = st == 200 ? BIO_new_mem_buf(resp, (int)rlen) : NULL, *env = BIO_new(BIO_s_mem());
    CMS_ContentInfo *cms = in != NULL ? d2i_CMS_bio(in, NULL) : NULL;
    int status = cms != NULL ? sim_scep_check_reply(s, m, cms, env, fail, flen) : -1;
    X509 *x = status == 0 ? sim_scep_open_reply(s, m, env) : NULL;
    if (st != 200)
        snprintf(fail, flen, "http_%d", st);
    else if (status != 0)
        snprintf(fail + strlen(fail), flen - strlen(fail), "%s(status %d)", fail[0] ? " " : "",
                 status);
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    BIO_free(env);
    free(resp);
    return x;
}

/* Enrolls d over SCEP unless it has a certificate.  0 or -1 (counted). */
static int sim_scep_ensure(struct sim_dev *d)
{
    struct sim *s = d->sim;
    struct sim_scep_msg m = {0};
    char fail[64] = "";
    if (d->cert_der != NULL)
        return 0;
    X509 *x =
        sim_scep_request(s, d->udid, &m) == 0 ? sim_scep_exchange(s, &m, fail, sizeof(fail)) : NULL;
    /* A device whose request got no answer sends the same one again. */
    for (int i = 0;
         x == NULL && m.der != NULL && i < s->o.scep_retry && strncmp(fail, "http_5", 6) == 0;
         i++) {
        fprintf(stderr, "mdmsim: scep_retry udid=%s after=%s\n", d->udid, fail);
        fail[0] = '\0';
        usleep(300 * 1000);
        x = sim_scep_exchange(s, &m, fail, sizeof(fail));
    }
    int ok = x != NULL && EVP_PKEY_eq(X509_get0_pubkey(x), s->dev_key) == 1;
    if (ok) {
        sim_id_keep(d, x);
        log_info("event=scep_enrolled udid=%s", d->udid);
    } else {
        s->st.http_errors++;
        fprintf(stderr, "mdmsim: scep_failed udid=%s failInfo=%s\n", d->udid,
                fail[0] ? fail : "none");
    }
    ERR_clear_error();
    X509_free(x);
    X509_free(m.self);
    free(m.der);
    return ok ? 0 : -1;
}

/* ---- Mdm-Signature ---- */

/* DER in..in+len re-encoded with indefinite lengths for every constructed
 * value down to depth levels, as devices send it (OpenSSL's streaming
 * encoder would embed the content, and Mdm-Signature is detached). */
static size_t sim_ber_indef(const unsigned char *in, size_t len, int depth, unsigned char *out)
{
    size_t o = 0, i = 0;
    while (i < len) {
        size_t h = 2, n = in[i + 1];
        if (n & 0x80) {
            h = 2 + (n & 0x7f);
            n = 0;
            for (size_t k = 2; k < h; k++)
                n = n << 8 | in[i + k];
        }
        if (depth > 0 && (in[i] & 0x20)) {
            out[o++] = in[i];
            out[o++] = 0x80;
            o += sim_ber_indef(in + i + h, n, depth - 1, out + o);
            out[o++] = 0;
            out[o++] = 0;
        } else {
            memcpy(out + o, in + i, h + n);
            o += h + n;
        }
        i += h + n;
    }
    return o;
}

/* Adds the header for the body already in req's output buffer. */
static int sim_sig_add(struct sim_dev *d, struct evhttp_request *req)
{
    struct evbuffer *b = evhttp_request_get_output_buffer(req);
    size_t len = evbuffer_get_length(b);
    const unsigned char *body = evbuffer_pullup(b, -1), *p = d->cert_der;
    X509 *x = d2i_X509(NULL, &p, d->cert_len);
    BIO *in = BIO_new_mem_buf(len ? (const void *)body : "", (int)len);
    /* An identity from over-the-air enrollment has its own key. */
    EVP_PKEY *key = d->id_key != NULL ? d->id_key : d->sim->dev_key;
    CMS_ContentInfo *cms =
        x != NULL && in != NULL ? CMS_sign(x, key, NULL, in, CMS_DETACHED | CMS_BINARY) : NULL;
    unsigned char *der = NULL;
    int n = cms != NULL ? i2d_CMS_ContentInfo(cms, &der) : -1;
    /* Each indefinite level adds 2 bytes of end-of-contents at most. */
    unsigned char *ber = n > 0 ? xmalloc((size_t)n + 64) : NULL;
    size_t blen = ber != NULL ? sim_ber_indef(der, (size_t)n, 3, ber) : 0;
    char *b64 = blen > 0 ? xmalloc(4 * ((blen + 2) / 3) + 1) : NULL;
    if (b64 != NULL) {
        EVP_EncodeBlock((unsigned char *)b64, ber, (int)blen);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Mdm-Signature", b64);
    }
    free(b64);
    free(ber);
    OPENSSL_free(der);
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    X509_free(x);
    return blen > 0 ? 0 : -1;
}

#endif
