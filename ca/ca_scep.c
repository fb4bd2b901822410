/* ca_scep.c: the SCEP responder identity, GetCACert, certificate issuance
 * and CertRep messages (RFC 8894).  Requests are parsed in ca_scep_parse.c. */
#include "ca_scep.h"
#include "../core/conf.h"
#include "../core/log.h"
#include "../core/util.h"
#include "ca_int.h"
#include "ca_scep_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define CA_SCEP_RA_RENEW_DAYS 30 /* a new RA this long before the old one expires */
#define CA_SCEP_SENDER_NONCE_LEN 16

const char ca_scep_caps[] = "POSTPKIOperation\nSHA-256\nSHA-1\nAES\nDES3\nSCEPStandard\nRenewal\n";

static const char *const ca_scep_oid_txt[CA_SCEP_OID_N] = {
    [CA_SCEP_OID_MESSAGE_TYPE] = "2.16.840.1.113733.1.9.2",
    [CA_SCEP_OID_PKI_STATUS] = "2.16.840.1.113733.1.9.3",
    [CA_SCEP_OID_FAIL_INFO] = "2.16.840.1.113733.1.9.4",
    [CA_SCEP_OID_SENDER_NONCE] = "2.16.840.1.113733.1.9.5",
    [CA_SCEP_OID_RECIPIENT_NONCE] = "2.16.840.1.113733.1.9.6",
    [CA_SCEP_OID_TRANSACTION_ID] = "2.16.840.1.113733.1.9.7",
    [CA_SCEP_OID_FAIL_INFO_TEXT] = "1.3.6.1.5.5.7.24.1",
};

const char *ca_scep_fail_str(int fail)
{
    switch (fail) {
    case CA_SCEP_BADALG: return "badAlg";
    case CA_SCEP_BADMESSAGECHECK: return "badMessageCheck";
    case CA_SCEP_BADREQUEST: return "badRequest";
    case CA_SCEP_BADTIME: return "badTime";
    case CA_SCEP_BADCERTID: return "badCertId";
    default: return "none";
    }
}

int ca_scep_digest_ok(int nid)
{
    return nid == NID_sha1 || nid == NID_sha224 || nid == NID_sha256 || nid == NID_sha384 ||
           nid == NID_sha512;
}

int ca_scep_cipher_ok(const struct ca_scep *sc, int nid)
{
    return nid == NID_aes_128_cbc || nid == NID_aes_192_cbc || nid == NID_aes_256_cbc ||
           nid == NID_des_ede3_cbc || (nid == NID_des_cbc && sc->have_des);
}

/* Single DES lives in OpenSSL 3's legacy provider.  Loading any provider
 * explicitly turns off the implicit default one, so default is loaded too.
 * Process-wide: loaded by the first ca_scep_open(), unloaded by the last
 * ca_scep_free() (both on the main thread). */
static OSSL_PROVIDER *ca_scep_prov[2];
static int ca_scep_users;
static int ca_scep_des;

static int ca_scep_load_legacy(void)
{
    if (ca_scep_users++ > 0)
        return ca_scep_des;
    ca_scep_prov[0] = OSSL_PROVIDER_load(NULL, "default");
    ca_scep_prov[1] = OSSL_PROVIDER_load(NULL, "legacy");
    EVP_CIPHER *des = ca_scep_prov[1] != NULL ? EVP_CIPHER_fetch(NULL, "DES-CBC", NULL) : NULL;
    ca_scep_des = ca_scep_prov[0] != NULL && des != NULL;
    EVP_CIPHER_free(des);
    if (!ca_scep_des)
        log_warn("event=scep_single_des_unavailable reason=\"no OpenSSL legacy provider\"");
    ERR_clear_error();
    return ca_scep_des;
}

static void ca_scep_unload_legacy(void)
{
    if (--ca_scep_users > 0)
        return;
    for (int i = 1; i >= 0; i--) {
        if (ca_scep_prov[i] != NULL)
            OSSL_PROVIDER_unload(ca_scep_prov[i]);
        ca_scep_prov[i] = NULL;
    }
}

/* ---- certificates ---- */

/* A certificate for pub named CN=cn, signed by the CA: a device identity
 * (client_auth) or the RA's own. */
static X509 *ca_scep_build(const struct ca *ca, EVP_PKEY *pub, const char *cn, int days,
                           int key_usage, int client_auth)
{
    char ku[80];
    snprintf(ku, sizeof(ku), "critical%s%s", key_usage & CA_SCEP_KU_SIGN ? ",digitalSignature" : "",
             key_usage & CA_SCEP_KU_ENCIPHER ? ",keyEncipherment" : "");
    struct ca_ext exts[5] = {{NID_basic_constraints, "critical,CA:FALSE"}, {NID_key_usage, ku}};
    size_t n = 2;
    if (client_auth)
        exts[n++] = (struct ca_ext){NID_ext_key_usage, "clientAuth"};
    exts[n++] = (struct ca_ext){NID_subject_key_identifier, "hash"};
    exts[n++] = (struct ca_ext){NID_authority_key_identifier, "keyid,issuer"};
    return ca_issue(ca, pub, cn, days, exts, n, NULL);
}

X509 *ca_scep_issue(const struct ca *ca, const struct ca_scep_req *r, int days)
{
    EVP_PKEY *pub = r->csr != NULL ? X509_REQ_get0_pubkey(r->csr) : NULL;
    X509 *x = pub != NULL && days > 0 ? ca_scep_build(ca, pub, r->cn, days, r->key_usage, 1) : NULL;
    if (x == NULL)
        ca_ssl_log(LOG_LVL_ERR, "event=scep_issue_failed cn=\"%s\"", r->cn);
    else
        log_info("event=scep_cert_issued cn=\"%s\" days=%d renewal=%d", r->cn, days, r->renewal);
    return x;
}

int ca_scep_serial(X509 *x, char *out, size_t outlen)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *dec = bn != NULL ? BN_bn2dec(bn) : NULL;
    int ok = dec != NULL && strlen(dec) < outlen;
    if (ok)
        memcpy(out, dec, strlen(dec) + 1);
    OPENSSL_free(dec);
    BN_free(bn);
    return ok ? 0 : -1;
}

/* ---- the responder identity ---- */

/* An RA certificate we can keep: RSA, ours, matching its key, not close to
 * expiring. */
static int ca_scep_ra_usable(const struct ca *ca, X509 *x, EVP_PKEY *k)
{
    int days = 0, secs = 0;
    return EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA && ca_issued_by(ca, x) &&
           X509_check_private_key(x, k) == 1 &&
           ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)) == 1 &&
           days > CA_SCEP_RA_RENEW_DAYS;
}

static int ca_scep_write_pem(const char *path, X509 *x, EVP_PKEY *k, int mode)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p = NULL;
    int ok =
        b != NULL && (x != NULL ? PEM_write_bio_X509(b, x)
                                : PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL)) == 1;
    long n = ok ? BIO_get_mem_data(b, &p) : 0;
    ok = ok && n > 0 && util_write_file(path, p, (size_t)n, mode) == 0;
    BIO_free(b);
    return ok ? 0 : -1;
}

/* A new RA (blocking: RSA key generation).  The certificate is written
 * first: a key without it is regenerated next time. */
static int ca_scep_ra_create(struct ca_scep *sc)
{
    sc->key = ca_keygen("rsa2048");
    sc->cert = sc->key != NULL ? ca_scep_build(sc->ca, sc->key, sc->ra_cn, sc->ra_days,
                                               CA_SCEP_KU_SIGN | CA_SCEP_KU_ENCIPHER, 0)
                               : NULL;
    if (sc->cert == NULL || ca_scep_write_pem(sc->ra_crt, sc->cert, NULL, 0644) != 0 ||
        ca_scep_write_pem(sc->ra_key, NULL, sc->key, 0600) != 0) {
        ca_ssl_log(LOG_LVL_ERR, "event=scep_ra_create_failed path=%s", sc->ra_crt);
        return -1;
    }
    log_info("event=scep_ra_created path=%s", sc->ra_crt);
    return 0;
}

/* An EC CA cannot open key-transport envelopes: an RSA RA does it.  Loads
 * a usable one from ca_dir; otherwise ca_scep_make_ra() must create it. */
static void ca_scep_ra_load(struct ca_scep *sc, const struct ca *ca, const struct conf *cf)
{
    sc->is_ra = 1;
    sc->ca = ca;
    sc->ra_crt = xasprintf("%s/scep_ra.crt", cf->ca_dir);
    sc->ra_key = xasprintf("%s/scep_ra.key", cf->ca_dir);
    sc->ra_days = cf->cert_validity_days;
    snprintf(sc->ra_cn, sizeof(sc->ra_cn), "%.40s SCEP RA", cf->ca_common_name);
    if (access(sc->ra_crt, R_OK) == 0 && access(sc->ra_key, R_OK) == 0 &&
        ca_load_identity(sc->ra_crt, sc->ra_key, &sc->cert, &sc->key) == 0 &&
        !ca_scep_ra_usable(ca, sc->cert, sc->key)) {
        log_info("event=scep_ra_replaced path=%s reason=\"not usable with this CA\"", sc->ra_crt);
        X509_free(sc->cert);
        EVP_PKEY_free(sc->key);
        sc->cert = NULL;
        sc->key = NULL;
    }
    ERR_clear_error();
}

/* A certs-only ("degenerate") PKCS#7 SignedData: no signers, no content. */
static int ca_scep_certs_only(X509 *const *certs, size_t n, unsigned char **der, size_t *len)
{
    PKCS7 *p7 = PKCS7_new();
    int ok = p7 != NULL && PKCS7_set_type(p7, NID_pkcs7_signed) == 1;
    if (ok)
        p7->d.sign->contents->type = OBJ_nid2obj(NID_pkcs7_data);
    for (size_t i = 0; ok && i < n; i++)
        ok = PKCS7_add_certificate(p7, certs[i]) == 1;
    ok = ok && ca_i2d(p7, ASN1_ITEM_rptr(PKCS7), der, len) == 0;
    PKCS7_free(p7);
    return ok ? 0 : -1;
}

/* GetCACert: the CA alone, or a certs-only PKCS#7 of RA and CA. */
static int ca_scep_cacert_build(struct ca_scep *sc)
{
    if (!sc->is_ra) {
        unsigned char *p = NULL;
        int n = i2d_X509(sc->ca_cert, &p);
        int ok = n > 0;
        if (ok) {
            sc->cacert = xmalloc((size_t)n);
            memcpy(sc->cacert, p, (size_t)n);
            sc->cacert_len = (size_t)n;
        }
        OPENSSL_free(p);
        sc->cacert_ctype = "application/x-x509-ca-cert";
        return ok ? 0 : -1;
    }
    X509 *both[2] = {sc->cert, sc->ca_cert};
    sc->cacert_ctype = "application/x-x509-ca-ra-cert";
    return ca_scep_certs_only(both, 2, &sc->cacert, &sc->cacert_len);
}

static int ca_scep_oids(struct ca_scep *sc)
{
    for (int i = 0; i < CA_SCEP_OID_N; i++)
        if ((sc->oid[i] = OBJ_txt2obj(ca_scep_oid_txt[i], 1)) == NULL)
            return -1;
    return 0;
}

static void ca_scep_log_ready(const struct ca_scep *sc)
{
    log_info("event=scep_ready responder=%s single_des=%s", sc->is_ra ? "ra" : "ca",
             sc->have_des ? "yes" : "no");
}

struct ca_scep *ca_scep_open(const struct ca *ca, const struct conf *cf)
{
    struct ca_scep *sc = xcalloc(1, sizeof(*sc));
    EVP_PKEY *cakey = ca_key(ca);
    sc->have_des = ca_scep_load_legacy();
    sc->loaded = 1;
    sc->ca_cert = ca_cert(ca);
    X509_up_ref(sc->ca_cert);
    int rc = ca_scep_oids(sc);
    if (rc == 0 && EVP_PKEY_get_base_id(cakey) == EVP_PKEY_RSA) {
        sc->cert = sc->ca_cert;
        sc->key = cakey;
        X509_up_ref(sc->cert);
        EVP_PKEY_up_ref(sc->key);
    } else if (rc == 0) {
        ca_scep_ra_load(sc, ca, cf);
    }
    if (rc == 0 && sc->cert != NULL)
        rc = ca_scep_cacert_build(sc);
    if (rc != 0) {
        ca_ssl_log(LOG_LVL_ERR, "event=scep_setup_failed");
        ca_scep_free(sc);
        return NULL;
    }
    sc->ready = sc->cert != NULL;
    if (sc->ready)
        ca_scep_log_ready(sc);
    return sc;
}

int ca_scep_ready(const struct ca_scep *sc)
{
    return sc->ready;
}

int ca_scep_make_ra(struct ca_scep *sc)
{
    if (sc->cert != NULL)
        return 0;
    return ca_scep_ra_create(sc) == 0 && ca_scep_cacert_build(sc) == 0 ? 0 : -1;
}

void ca_scep_set_ready(struct ca_scep *sc)
{
    sc->ready = 1;
    ca_scep_log_ready(sc);
}

void ca_scep_free(struct ca_scep *sc)
{
    if (sc == NULL)
        return;
    X509_free(sc->cert);
    EVP_PKEY_free(sc->key);
    X509_free(sc->ca_cert);
    for (int i = 0; i < CA_SCEP_OID_N; i++)
        ASN1_OBJECT_free(sc->oid[i]);
    free(sc->cacert);
    free(sc->ra_crt);
    free(sc->ra_key);
    if (sc->loaded)
        ca_scep_unload_legacy();
    free(sc);
}

const unsigned char *ca_scep_cacert(const struct ca_scep *sc, size_t *len, const char **ctype)
{
    *len = sc->cacert_len;
    *ctype = sc->cacert_ctype;
    return sc->cacert;
}

/* ---- CertRep ---- */

/* The issued certificate as the only one of a certs-only PKCS#7 (a SET OF
 * is sorted when encoded, so "first" is only certain when it is alone),
 * enveloped to the requester's signer certificate with its own cipher. */
static int ca_scep_envelope(const struct ca_scep_req *r, X509 *issued, unsigned char **der,
                            size_t *len)
{
    unsigned char *certs = NULL;
    size_t ncerts = 0;
    int ok = ca_scep_certs_only(&issued, 1, &certs, &ncerts) == 0;
    EVP_CIPHER *cipher = ok ? EVP_CIPHER_fetch(NULL, OBJ_nid2sn(r->cipher_nid), NULL) : NULL;
    STACK_OF(X509) *to = sk_X509_new_null();
    BIO *in = ok ? BIO_new_mem_buf(certs, (int)ncerts) : NULL;
    CMS_ContentInfo *env = NULL;
    ok = ok && cipher != NULL && to != NULL && in != NULL && sk_X509_push(to, r->signer) > 0 &&
         (env = CMS_encrypt(to, in, cipher, CMS_BINARY)) != NULL &&
         ca_i2d(env, ASN1_ITEM_rptr(CMS_ContentInfo), der, len) == 0;
    CMS_ContentInfo_free(env);
    BIO_free(in);
    sk_X509_free(to);
    EVP_CIPHER_free(cipher);
    free(certs);
    return ok ? 0 : -1;
}

static int ca_scep_attr(const struct ca_scep *sc, CMS_SignerInfo *si, int oid, int type,
                        const void *v, size_t n)
{
    return CMS_signed_add1_attr_by_OBJ(si, sc->oid[oid], type, v, (int)n) == 1 ? 0 : -1;
}

static int ca_scep_str_attr(const struct ca_scep *sc, CMS_SignerInfo *si, int oid, const char *s)
{
    return ca_scep_attr(sc, si, oid, V_ASN1_PRINTABLESTRING, s, strlen(s));
}

/* messageType, pkiStatus, failInfo, transactionID and both nonces. */
static int ca_scep_reply_attrs(const struct ca_scep *sc, CMS_SignerInfo *si,
                               const struct ca_scep_req *r, int fail)
{
    unsigned char nonce[CA_SCEP_SENDER_NONCE_LEN];
    char fi[8];
    snprintf(fi, sizeof(fi), "%d", fail);
    int ok = RAND_bytes(nonce, sizeof(nonce)) == 1 &&
             ca_scep_str_attr(sc, si, CA_SCEP_OID_MESSAGE_TYPE, "3") == 0 &&
             ca_scep_str_attr(sc, si, CA_SCEP_OID_PKI_STATUS,
                              fail == CA_SCEP_FAIL_NONE ? "0" : "2") == 0 &&
             ca_scep_str_attr(sc, si, CA_SCEP_OID_TRANSACTION_ID, r->txid) == 0 &&
             ca_scep_attr(sc, si, CA_SCEP_OID_SENDER_NONCE, V_ASN1_OCTET_STRING, nonce,
                          sizeof(nonce)) == 0 &&
             ca_scep_attr(sc, si, CA_SCEP_OID_RECIPIENT_NONCE, V_ASN1_OCTET_STRING, r->nonce,
                          r->nonce_len) == 0;
    if (ok && fail != CA_SCEP_FAIL_NONE)
        ok = ca_scep_str_attr(sc, si, CA_SCEP_OID_FAIL_INFO, fi) == 0 &&
             (r->why == NULL || ca_scep_attr(sc, si, CA_SCEP_OID_FAIL_INFO_TEXT, V_ASN1_UTF8STRING,
                                             r->why, strlen(r->why)) == 0);
    return ok ? 0 : -1;
}

/* The pkiMessage: SignedData over env (SUCCESS), or with no content at all
 * (FAILURE: RFC 8894 omits the pkcsPKIEnvelope). */
static int ca_scep_sign(const struct ca_scep *sc, const struct ca_scep_req *r, const void *env,
                        size_t envlen, int fail, unsigned char **der, size_t *len)
{
    const int flags = CMS_BINARY | (env == NULL ? CMS_DETACHED : 0);
    const EVP_MD *md =
        EVP_get_digestbynid(ca_scep_digest_ok(r->digest_nid) ? r->digest_nid : NID_sha256);
    CMS_ContentInfo *cms = CMS_sign(NULL, NULL, NULL, NULL, flags | CMS_PARTIAL);
    CMS_SignerInfo *si =
        cms != NULL ? CMS_add1_signer(cms, sc->cert, sc->key, md, CMS_BINARY | CMS_NOSMIMECAP)
                    : NULL;
    BIO *in = BIO_new_mem_buf(env != NULL ? env : "", (int)envlen);
    int ok = si != NULL && in != NULL && ca_scep_reply_attrs(sc, si, r, fail) == 0 &&
             (!sc->is_ra || CMS_add1_cert(cms, sc->ca_cert) == 1) &&
             CMS_final(cms, in, NULL, flags) == 1 &&
             ca_i2d(cms, ASN1_ITEM_rptr(CMS_ContentInfo), der, len) == 0;
    BIO_free(in);
    CMS_ContentInfo_free(cms);
    return ok ? 0 : -1;
}

int ca_scep_reply(const struct ca_scep *sc, const struct ca_scep_req *r, X509 *issued, int fail,
                  unsigned char **der, size_t *len)
{
    unsigned char *env = NULL;
    size_t envlen = 0;
    *der = NULL;
    *len = 0;
    if (issued != NULL && (r->signer == NULL || ca_scep_envelope(r, issued, &env, &envlen) != 0)) {
        ca_ssl_log(LOG_LVL_ERR, "event=scep_reply_failed step=envelope cipher=%s",
                   OBJ_nid2sn(r->cipher_nid));
        return -1;
    }
    int rc = ca_scep_sign(sc, r, env, envlen, issued != NULL ? CA_SCEP_FAIL_NONE : fail, der, len);
    if (rc != 0)
        ca_ssl_log(LOG_LVL_ERR, "event=scep_reply_failed step=sign");
    free(env);
    return rc;
}
