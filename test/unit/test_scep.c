/* test_scep.c: the SCEP responder (ca_scep.c, ca_scep_parse.c) and device
 * request signatures (ca_devauth.c) without a server: requests are built
 * here with OpenSSL as a device would, CertReps are opened as a device
 * would.  Throwaway CAs under /tmp; KEEP=1 keeps them. */
#include "../../ca/ca.h"
#include "../../ca/ca_scep.h"
#include "../../core/conf.h"
#include "../../core/log.h"
#include "../../core/util.h"
#include "../harness.h"

#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define UDID "00008110-000A1B2C3D4E801E"
#define OID_TYPE "2.16.840.1.113733.1.9.2"
#define OID_STATUS "2.16.840.1.113733.1.9.3"
#define OID_FAIL "2.16.840.1.113733.1.9.4"
#define OID_SNONCE "2.16.840.1.113733.1.9.5"
#define OID_RNONCE "2.16.840.1.113733.1.9.6"
#define OID_TXID "2.16.840.1.113733.1.9.7"

static char g_dir[64];
static struct ca *g_rsa, *g_ec; /* an RSA CA (answers itself), an EC CA (RA) */
static struct ca_scep *g_sc, *g_sc_ec;
static EVP_PKEY *g_key; /* the device key */

static struct ca *open_ca(const char *sub, const char *type)
{
    struct conf cf;
    memset(&cf, 0, sizeof(cf));
    cf.ca_dir = xasprintf("%s/%s", g_dir, sub);
    cf.ca_key_type = (char *)type;
    cf.ca_common_name = (char *)"SCEP Test CA";
    cf.ca_validity_days = 3650;
    cf.cert_validity_days = 365;
    struct ca *ca = ca_open(&cf);
    free(cf.ca_dir);
    return ca;
}

static struct ca_scep *open_scep(const struct ca *ca, const char *sub)
{
    struct conf cf;
    memset(&cf, 0, sizeof(cf));
    cf.ca_dir = xasprintf("%s/%s", g_dir, sub);
    cf.ca_common_name = (char *)"SCEP Test CA";
    cf.cert_validity_days = 365;
    struct ca_scep *sc = ca_scep_open(ca, &cf);
    free(cf.ca_dir);
    /* An EC CA needs an RA, made off the loop in mdmd: here, at once. */
    if (sc != NULL && !ca_scep_ready(sc) && ca_scep_make_ra(sc) == 0)
        ca_scep_set_ready(sc);
    return sc;
}

/* ---- a device's request ---- */

struct req_opts {
    const char *cn;
    const char *challenge; /* NULL: none */
    const char *type;      /* messageType */
    const char *cipher;    /* envelope */
    const EVP_MD *md;
    X509 *signer; /* NULL: self-signed with g_key */
    EVP_PKEY *signer_key;
    int tamper; /* flip a byte of the envelope after signing */
};

struct req_out {
    unsigned char *der;
    int len;
    X509 *self;    /* the signer (recipient of the answer) */
    EVP_PKEY *key; /* its key, which opens the answer */
    unsigned char nonce[16];
};

static X509_REQ *make_csr(const struct req_opts *o)
{
    X509_REQ *r = X509_REQ_new();
    X509_REQ_set_pubkey(r, g_key);
    X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(r), "CN", MBSTRING_UTF8,
                               (const unsigned char *)o->cn, -1, -1, 0);
    if (o->challenge != NULL)
        X509_REQ_add1_attr_by_NID(r, NID_pkcs9_challengePassword, MBSTRING_UTF8,
                                  (const unsigned char *)o->challenge, -1);
    X509_REQ_sign(r, g_key, EVP_sha256());
    return r;
}

static X509 *make_self(const char *cn)
{
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_set_pubkey(x, g_key);
    X509_sign(x, g_key, EVP_sha256());
    return x;
}

static void add_attr(CMS_SignerInfo *si, const char *oid, int type, const void *v, int n)
{
    CMS_signed_add1_attr_by_txt(si, oid, type, v, n);
}

/* The recipient: the only RSA certificate a GetCACert answer names for
 * encryption (the CA itself, or the RA). */
static X509 *recipient_of(const struct ca_scep *sc)
{
    size_t len;
    const char *ct;
    const unsigned char *der = ca_scep_cacert(sc, &len, &ct), *p = der;
    if (strcmp(ct, "application/x-x509-ca-cert") == 0)
        return d2i_X509(NULL, &p, (long)len);
    PKCS7 *p7 = d2i_PKCS7(NULL, &p, (long)len);
    X509 *x = NULL;
    for (int i = 0; p7 != NULL && i < sk_X509_num(p7->d.sign->cert); i++)
        if (X509_check_ca(sk_X509_value(p7->d.sign->cert, i)) == 0) {
            x = sk_X509_value(p7->d.sign->cert, i);
            X509_up_ref(x);
        }
    PKCS7_free(p7);
    return x;
}

static void make_request(const struct ca_scep *sc, const struct req_opts *o, struct req_out *out)
{
    X509_REQ *csr = make_csr(o);
    unsigned char *csr_der = NULL, *env = NULL;
    int csr_len = i2d_X509_REQ(csr, &csr_der);
    X509 *to = recipient_of(sc);
    STACK_OF(X509) *rcpt = sk_X509_new_null();
    sk_X509_push(rcpt, to);
    EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, o->cipher ? o->cipher : "AES-256-CBC", NULL);
    BIO *in = BIO_new_mem_buf(csr_der, csr_len);
    CMS_ContentInfo *e = CMS_encrypt(rcpt, in, c, CMS_BINARY);
    int env_len = i2d_CMS_ContentInfo(e, &env);
    if (o->tamper)
        env[env_len - 5] ^= 0x55;
    out->self = o->signer != NULL ? o->signer : make_self(o->cn);
    out->key = o->signer_key ? o->signer_key : g_key;
    if (o->signer != NULL)
        X509_up_ref(o->signer);
    CMS_ContentInfo *s = CMS_sign(NULL, NULL, NULL, NULL, CMS_BINARY | CMS_PARTIAL);
    CMS_SignerInfo *si = CMS_add1_signer(s, out->self, o->signer_key ? o->signer_key : g_key,
                                         o->md ? o->md : EVP_sha256(), CMS_BINARY | CMS_NOSMIMECAP);
    RAND_bytes(out->nonce, sizeof(out->nonce));
    add_attr(si, OID_TYPE, V_ASN1_PRINTABLESTRING, o->type, (int)strlen(o->type));
    add_attr(si, OID_TXID, V_ASN1_PRINTABLESTRING, "txid-1234", 9);
    add_attr(si, OID_SNONCE, V_ASN1_OCTET_STRING, out->nonce, 16);
    BIO *data = BIO_new_mem_buf(env, env_len);
    CMS_final(s, data, NULL, CMS_BINARY);
    out->der = NULL;
    out->len = i2d_CMS_ContentInfo(s, &out->der);
    BIO_free(data);
    CMS_ContentInfo_free(s);
    OPENSSL_free(env);
    CMS_ContentInfo_free(e);
    BIO_free(in);
    EVP_CIPHER_free(c);
    sk_X509_free(rcpt);
    X509_free(to);
    OPENSSL_free(csr_der);
    X509_REQ_free(csr);
}

static void req_out_free(struct req_out *o)
{
    OPENSSL_free(o->der);
    X509_free(o->self);
}

/* ---- the answer, as a device reads it ---- */

struct rep {
    int status; /* pkiStatus, -1 if unreadable */
    int fail;   /* failInfo, -1 if none */
    int nonce_ok, txid_ok;
    X509 *cert; /* SUCCESS: the issued certificate */
};

static int attr_str(CMS_SignerInfo *si, const char *oid, char *out, size_t n, int *len)
{
    ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
    int i = CMS_signed_get_attr_by_OBJ(si, o, -1);
    ASN1_OBJECT_free(o);
    ASN1_TYPE *t = i >= 0 ? X509_ATTRIBUTE_get0_type(CMS_signed_get_attr(si, i), 0) : NULL;
    if (t == NULL)
        return -1;
    *len = ASN1_STRING_length(t->value.asn1_string);
    if ((size_t)*len >= n)
        return -1;
    memcpy(out, ASN1_STRING_get0_data(t->value.asn1_string), (size_t)*len);
    out[*len] = '\0';
    return 0;
}

static X509 *open_envelope(BIO *env, X509 *self, EVP_PKEY *key)
{
    CMS_ContentInfo *e = d2i_CMS_bio(env, NULL);
    BIO *out = BIO_new(BIO_s_mem());
    X509 *x = NULL;
    if (e != NULL && CMS_decrypt(e, key, self, NULL, out, CMS_BINARY) == 1) {
        PKCS7 *p7 = d2i_PKCS7_bio(out, NULL);
        if (p7 != NULL && sk_X509_num(p7->d.sign->cert) == 1) {
            x = sk_X509_value(p7->d.sign->cert, 0);
            X509_up_ref(x);
        }
        PKCS7_free(p7);
    }
    CMS_ContentInfo_free(e);
    BIO_free(out);
    return x;
}

static void read_reply(const struct ca *ca, const unsigned char *der, size_t len,
                       const struct req_out *rq, struct rep *r)
{
    const unsigned char *p = der;
    char buf[64];
    int n = 0;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
    ASN1_OCTET_STRING **content = cms ? CMS_get0_content(cms) : NULL;
    int detached = content == NULL || *content == NULL;
    BIO *env = BIO_new(BIO_s_mem()), *none = BIO_new_mem_buf("", 0);
    X509_STORE *st = X509_STORE_new();
    X509_STORE_add_cert(st, ca_cert(ca));
    X509_STORE_set_purpose(st, X509_PURPOSE_ANY);
    memset(r, 0, sizeof(*r));
    r->status = r->fail = -1;
    if (cms != NULL && CMS_verify(cms, NULL, st, detached ? none : NULL, env,
                                  CMS_BINARY | (detached ? CMS_DETACHED : 0)) == 1) {
        CMS_SignerInfo *si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
        if (attr_str(si, OID_STATUS, buf, sizeof(buf), &n) == 0)
            r->status = atoi(buf);
        if (attr_str(si, OID_FAIL, buf, sizeof(buf), &n) == 0)
            r->fail = atoi(buf);
        r->txid_ok =
            attr_str(si, OID_TXID, buf, sizeof(buf), &n) == 0 && strcmp(buf, "txid-1234") == 0;
        r->nonce_ok = attr_str(si, OID_RNONCE, buf, sizeof(buf), &n) == 0 && n == 16 &&
                      memcmp(buf, rq->nonce, 16) == 0;
        if (r->status == 0)
            r->cert = open_envelope(env, rq->self, rq->key);
    }
    X509_STORE_free(st);
    BIO_free(env);
    BIO_free(none);
    CMS_ContentInfo_free(cms);
}

/* parse + (issue) + reply + read, as the handler chains them. */
static const struct ca_scep_policy *g_pol; /* NULL: ca_scep_parse()'s defaults */

static int round_trip(const struct ca *ca, const struct ca_scep *sc, const struct req_opts *o,
                      struct ca_scep_req *r, struct rep *rep)
{
    struct req_out rq;
    unsigned char *der = NULL;
    size_t len = 0;
    make_request(sc, o, &rq);
    int rc = g_pol != NULL ? ca_scep_parse_with(sc, ca, g_pol, rq.der, (size_t)rq.len, r)
                           : ca_scep_parse(sc, ca, rq.der, (size_t)rq.len, r);
    X509 *issued = rc == 0 && r->fail == CA_SCEP_FAIL_NONE ? ca_scep_issue(ca, r, 30) : NULL;
    if (rc == 0 && ca_scep_reply(sc, r, issued, r->fail, &der, &len) == 0)
        read_reply(ca, der, len, &rq, rep);
    free(der);
    ca_cert_free(issued);
    req_out_free(&rq);
    return rc;
}

static int cn_is(X509 *x, const char *want)
{
    char *cn = ca_cert_cn(x);
    int eq = cn != NULL && strcmp(cn, want) == 0;
    free(cn);
    return eq;
}

/* ---- BER and base64 ---- */

TEST(test_ber_check)
{
    static const unsigned char der[] = {0x30, 0x06, 0x02, 0x01, 0x05, 0x04, 0x01, 0x41};
    static const unsigned char ber[] = {0x30, 0x80, 0x02, 0x01, 0x05, 0x24, 0x80,
                                        0x04, 0x01, 0x41, 0x00, 0x00, 0x00, 0x00};
    static const unsigned char prim_indef[] = {0x04, 0x80, 0x41, 0x00, 0x00};
    static const unsigned char no_eoc[] = {0x30, 0x80, 0x02, 0x01, 0x05};
    static const unsigned char long_len[] = {0x04, 0x85, 1, 0, 0, 0, 0};
    unsigned char deep[160];
    CHECK(ca_ber_check(der, sizeof(der), 4) == 0);
    CHECK(ca_ber_check(ber, sizeof(ber), 4) == 0);
    CHECK(ca_ber_check(der, sizeof(der) - 1, 4) != 0); /* truncated */
    unsigned char trailing[sizeof(der) + 1];
    memcpy(trailing, der, sizeof(der));
    trailing[sizeof(der)] = 0;
    CHECK(ca_ber_check(trailing, sizeof(trailing), 4) != 0);
    CHECK(ca_ber_check(prim_indef, sizeof(prim_indef), 4) != 0);
    CHECK(ca_ber_check(no_eoc, sizeof(no_eoc), 4) != 0);
    CHECK(ca_ber_check(long_len, sizeof(long_len), 4) != 0);
    for (int i = 0; i < 40; i++) { /* 40 nested indefinite SEQUENCEs */
        deep[2 * i] = 0x30;
        deep[2 * i + 1] = 0x80;
    }
    memset(deep + 80, 0, 80);
    CHECK(ca_ber_check(deep, 160, CA_SCEP_MAX_DEPTH) != 0);
    CHECK(ca_ber_check(deep, 160, 64) == 0);
}

TEST(test_base64)
{
    unsigned char *out = NULL;
    size_t n = 0;
    CHECK(ca_base64_decode("aGk/Pz8+", 8, 100, &out, &n) == 0 && n == 6 &&
          memcmp(out, "hi?\?\?>", 6) == 0);
    free(out);
    CHECK(ca_base64_decode("a+8=", 4, 100, &out, &n) == 0 && n == 2);
    unsigned char first = out != NULL ? out[0] : 0;
    free(out);
    CHECK(ca_base64_decode("a 8=", 4, 100, &out, &n) == 0 && n == 2 && out[0] == first);
    free(out);
    CHECK(ca_base64_decode("aGk\n=", 5, 100, &out, &n) == 0 && n == 2 && memcmp(out, "hi", 2) == 0);
    free(out);
    CHECK(ca_base64_decode("aGk", 3, 100, &out, &n) != 0 && out == NULL);
    CHECK(ca_base64_decode("a!==", 4, 100, &out, &n) != 0);
    CHECK(ca_base64_decode("aGk/Pz8+", 8, 5, &out, &n) != 0); /* over the limit */
}

/* ---- the responder ---- */

TEST(test_open)
{
    size_t len;
    const char *ct;
    const unsigned char *der = ca_scep_cacert(g_sc, &len, &ct), *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    CHECK(strcmp(ct, "application/x-x509-ca-cert") == 0);
    CHECK(x != NULL && X509_cmp(x, ca_cert(g_rsa)) == 0);
    CHECK(ca_scep_ready(g_sc) && ca_scep_ready(g_sc_ec));
    X509_free(x);
    der = ca_scep_cacert(g_sc_ec, &len, &ct);
    CHECK(strcmp(ct, "application/x-x509-ca-ra-cert") == 0);
    X509 *ra = recipient_of(g_sc_ec);
    CHECK(ra != NULL && EVP_PKEY_get_base_id(X509_get0_pubkey(ra)) == EVP_PKEY_RSA);
    CHECK(ra != NULL && ca_issued_by(g_ec, ra));
    CHECK(ra != NULL && (X509_get_key_usage(ra) & KU_KEY_ENCIPHERMENT));
    char *key = xasprintf("%s/ec/scep_ra.key", g_dir);
    struct stat st;
    CHECK(stat(key, &st) == 0 && (st.st_mode & 0777) == 0600);
    /* Opened again: the same RA, loaded (ready at once), not a new one. */
    struct conf cf;
    memset(&cf, 0, sizeof(cf));
    cf.ca_dir = xasprintf("%s/ec", g_dir);
    cf.ca_common_name = (char *)"SCEP Test CA";
    cf.cert_validity_days = 365;
    struct ca_scep *again = ca_scep_open(g_ec, &cf);
    free(cf.ca_dir);
    CHECK(again != NULL && ca_scep_ready(again));
    X509 *ra2 = again != NULL ? recipient_of(again) : NULL;
    CHECK(ra2 != NULL && ra != NULL && X509_cmp(ra, ra2) == 0);
    X509_free(ra2);
    ca_scep_free(again);
    X509_free(ra);
    free(key);
    CHECK(strstr(ca_scep_caps, "POSTPKIOperation\n") && strstr(ca_scep_caps, "Renewal\n") &&
          strstr(ca_scep_caps, "SHA-256\n") && strstr(ca_scep_caps, "DES3\n"));
}

TEST(test_enroll_each_cipher)
{
    static const char *const ciphers[] = {"AES-256-CBC", "AES-128-CBC", "DES-EDE3-CBC", "DES-CBC"};
    for (size_t i = 0; i < ARRAY_LEN(ciphers); i++) {
        struct req_opts o = {.cn = UDID, .challenge = "chal-1", .type = "19", .cipher = ciphers[i]};
        struct ca_scep_req r;
        struct rep rep;
        CHECK(round_trip(g_rsa, g_sc, &o, &r, &rep) == 0);
        CHECK(r.fail == CA_SCEP_FAIL_NONE);
        CHECK(r.type == CA_SCEP_PKCSREQ && !r.renewal);
        CHECK(strcmp(r.cn, UDID) == 0 && strcmp(r.challenge, "chal-1") == 0);
        CHECK(strcmp(r.txid, "txid-1234") == 0);
        CHECK(r.key_usage == (CA_SCEP_KU_SIGN | CA_SCEP_KU_ENCIPHER));
        CHECK(rep.status == 0 && rep.fail == -1 && rep.nonce_ok && rep.txid_ok);
        CHECK(rep.cert != NULL && cn_is(rep.cert, UDID));
        CHECK(rep.cert != NULL && ca_verify_issued(g_rsa, rep.cert) == 0);
        CHECK(rep.cert != NULL && X509_check_purpose(rep.cert, X509_PURPOSE_SSL_CLIENT, 0) == 1);
        CHECK(rep.cert != NULL && EVP_PKEY_eq(X509_get0_pubkey(rep.cert), g_key) == 1);
        X509_free(rep.cert);
        ca_scep_req_clear(&r);
    }
}

TEST(test_enroll_through_ra)
{
    struct req_opts o = {.cn = UDID, .challenge = "c", .type = "19", .md = EVP_sha1()};
    struct ca_scep_req r;
    struct rep rep;
    CHECK(round_trip(g_ec, g_sc_ec, &o, &r, &rep) == 0);
    CHECK(r.fail == CA_SCEP_FAIL_NONE && r.digest_nid == NID_sha1);
    CHECK(rep.status == 0 && rep.nonce_ok && rep.cert != NULL);
    CHECK(rep.cert != NULL && ca_verify_issued(g_ec, rep.cert) == 0);
    X509_free(rep.cert);
    ca_scep_req_clear(&r);
}

TEST(test_failures)
{
    struct ca_scep_req r;
    struct rep rep;
    /* Envelope damaged after signing: the signature still holds, the content
     * does not decrypt or parse. */
    struct req_opts bad = {.cn = UDID, .challenge = "c", .type = "19", .tamper = 1};
    CHECK(round_trip(g_rsa, g_sc, &bad, &r, &rep) == 0);
    CHECK(r.fail == CA_SCEP_BADMESSAGECHECK || r.fail == CA_SCEP_BADREQUEST);
    CHECK(rep.status == 2 && rep.fail == r.fail && rep.nonce_ok && rep.txid_ok && rep.cert == NULL);
    ca_scep_req_clear(&r);
    /* A profile's Subject sent as is: not a UDID, issued (bound later). */
    struct req_opts cn = {.cn = "%HardwareUUID%", .challenge = "c", .type = "19"};
    CHECK(round_trip(g_rsa, g_sc, &cn, &r, &rep) == 0);
    CHECK(r.fail == CA_SCEP_FAIL_NONE && !r.cn_is_udid && strcmp(r.cn, "%HardwareUUID%") == 0);
    X509_free(rep.cert);
    ca_scep_req_clear(&r);
    struct req_opts udid = {.cn = UDID, .challenge = "c", .type = "19"};
    CHECK(round_trip(g_rsa, g_sc, &udid, &r, &rep) == 0);
    CHECK(r.fail == CA_SCEP_FAIL_NONE && r.cn_is_udid);
    X509_free(rep.cert);
    ca_scep_req_clear(&r);
    /* Text that could forge a log line or end a quoted log value. */
    static const char *const badcn[] = {"a\"b", "a\nb", "a\\b"};
    for (size_t i = 0; i < sizeof(badcn) / sizeof(badcn[0]); i++) {
        struct req_opts b = {.cn = badcn[i], .challenge = "c", .type = "19"};
        CHECK(round_trip(g_rsa, g_sc, &b, &r, &rep) == 0);
        CHECK(r.fail == CA_SCEP_BADREQUEST && strcmp(r.why, "cn_malformed") == 0 && rep.fail == 2);
        CHECK(rep.cert == NULL);
        ca_scep_req_clear(&r);
    }
    struct req_opts nocn = {.cn = "", .challenge = "c", .type = "19"};
    CHECK(round_trip(g_rsa, g_sc, &nocn, &r, &rep) == 0);
    CHECK(r.fail == CA_SCEP_BADREQUEST && strcmp(r.why, "cn_missing") == 0 && rep.cert == NULL);
    ca_scep_req_clear(&r);
    struct req_opts poll = {.cn = UDID, .challenge = "c", .type = "20"};
    CHECK(round_trip(g_rsa, g_sc, &poll, &r, &rep) == 0);
    CHECK(r.fail == CA_SCEP_BADREQUEST && rep.status == 2);
    ca_scep_req_clear(&r);
    struct req_opts md5 = {.cn = UDID, .challenge = "c", .type = "19", .md = EVP_md5()};
    CHECK(round_trip(g_rsa, g_sc, &md5, &r, &rep) == 0);
    CHECK(r.fail == CA_SCEP_BADALG && rep.fail == 0);
    ca_scep_req_clear(&r);
    /* Signed by a throwaway self-signed key, not the CSR's: RFC 8894 2.3 says
     * SHOULD use the CSR's key, not MUST, and the CSR's own signature proves
     * possession.  Issued for the CSR's key, enveloped for the signer. */
    EVP_PKEY *other = EVP_RSA_gen(2048);
    X509 *self = X509_new();
    X509_set_version(self, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(self), 9);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(self), "CN", MBSTRING_UTF8,
                               (const unsigned char *)"throwaway", -1, -1, 0);
    X509_set_issuer_name(self, X509_get_subject_name(self));
    X509_gmtime_adj(X509_getm_notBefore(self), -60);
    X509_gmtime_adj(X509_getm_notAfter(self), 3600);
    X509_set_pubkey(self, other);
    X509_sign(self, other, EVP_sha256());
    struct req_opts pop = {
        .cn = UDID, .challenge = "c", .type = "19", .signer = self, .signer_key = other};
    CHECK(round_trip(g_rsa, g_sc, &pop, &r, &rep) == 0);
    CHECK(r.fail == CA_SCEP_FAIL_NONE && r.throwaway_signer == 1);
    CHECK(rep.status == 0 && rep.cert != NULL &&
          EVP_PKEY_eq(X509_get0_pubkey(rep.cert), g_key) == 1);
    X509_free(rep.cert);
    ca_scep_req_clear(&r);
    /* scep_allow_throwaway_signer no: refused as before. */
    struct ca_scep_policy strict = ca_scep_policy_default;
    strict.throwaway_signer = 0;
    g_pol = &strict;
    CHECK(round_trip(g_rsa, g_sc, &pop, &r, &rep) == 0);
    CHECK(r.fail == CA_SCEP_BADMESSAGECHECK && strcmp(r.why, "signer_key_not_csr_key") == 0);
    ca_scep_req_clear(&r);
    g_pol = NULL;
    /* A signer neither of the CSR's key nor self-signed: refused. */
    X509 *notself = X509_new();
    X509_set_version(notself, 2);
    X509_gmtime_adj(X509_getm_notBefore(notself), -60);
    X509_gmtime_adj(X509_getm_notAfter(notself), 3600);
    X509_set_pubkey(notself, other);
    X509_sign(notself, g_key, EVP_sha256());
    struct req_opts ns = {
        .cn = UDID, .challenge = "c", .type = "19", .signer = notself, .signer_key = other};
    CHECK(round_trip(g_rsa, g_sc, &ns, &r, &rep) == 0);
    CHECK(r.fail == CA_SCEP_BADMESSAGECHECK && strcmp(r.why, "signer_not_self_signed") == 0);
    ca_scep_req_clear(&r);
    X509_free(notself);
    /* A renewal signed by a certificate of another CA. */
    struct req_opts ren = {.cn = UDID, .type = "17", .signer = self, .signer_key = other};
    CHECK(round_trip(g_rsa, g_sc, &ren, &r, &rep) == 0);
    CHECK(r.fail == CA_SCEP_BADREQUEST && strcmp(r.why, "renewal_signer_not_ours") == 0);
    ca_scep_req_clear(&r);
    X509_free(self);
    EVP_PKEY_free(other);
    static const unsigned char junk[] = "not a pkiMessage at all";
    CHECK(ca_scep_parse(g_sc, g_rsa, junk, sizeof(junk), &r) == -1);
    ca_scep_req_clear(&r);
}

TEST(test_renewal)
{
    struct req_opts o = {.cn = UDID, .challenge = "c", .type = "19"};
    struct ca_scep_req r;
    struct rep rep;
    CHECK(round_trip(g_rsa, g_sc, &o, &r, &rep) == 0 && rep.cert != NULL);
    ca_scep_req_clear(&r);
    if (rep.cert == NULL)
        return;
    char fp[CA_FINGERPRINT_LEN];
    CHECK(ca_cert_fingerprint(rep.cert, fp) == 0);
    /* The current identity signs: RenewalReq, and PKCSReq the RFC 8894 way. */
    const char *types[] = {"17", "19"};
    for (int i = 0; i < 2; i++) {
        struct req_opts ren = {
            .cn = UDID, .type = types[i], .signer = rep.cert, .signer_key = g_key};
        struct rep rep2;
        CHECK(round_trip(g_rsa, g_sc, &ren, &r, &rep2) == 0);
        CHECK(r.fail == CA_SCEP_FAIL_NONE && r.renewal && strcmp(r.signer_fp, fp) == 0);
        CHECK(rep2.status == 0 && rep2.cert != NULL && X509_cmp(rep2.cert, rep.cert) != 0);
        X509_free(rep2.cert);
        ca_scep_req_clear(&r);
    }
    struct req_opts other_cn = {
        .cn = "OTHER-UDID", .type = "17", .signer = rep.cert, .signer_key = g_key};
    struct rep rep3;
    CHECK(round_trip(g_rsa, g_sc, &other_cn, &r, &rep3) == 0);
    CHECK(r.fail == CA_SCEP_BADREQUEST && strcmp(r.why, "renewal_cn_mismatch") == 0);
    CHECK(rep3.status == 2 && rep3.cert == NULL);
    ca_scep_req_clear(&r);
    X509_free(rep.cert);
}

/* ---- Mdm-Signature and Client-Cert ---- */

static char *sign_b64(X509 *x, EVP_PKEY *k, const char *body, int flags)
{
    BIO *in = BIO_new_mem_buf(body, (int)strlen(body));
    CMS_ContentInfo *cms = CMS_sign(x, k, NULL, in, CMS_BINARY | flags);
    unsigned char *der = NULL;
    int n = i2d_CMS_ContentInfo(cms, &der);
    char *b64 = xmalloc(4 * (((size_t)n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)b64, der, n);
    OPENSSL_free(der);
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    return b64;
}

TEST(test_devauth)
{
    const char *body = "<plist><dict><key>UDID</key><string>" UDID "</string></dict></plist>";
    X509 *dev = ca_issue_device_cert(g_rsa, g_key, UDID, 30);
    X509 *foreign = ca_issue_device_cert(g_ec, g_key, UDID, 30);
    struct ca_devid id;
    char want[CA_FINGERPRINT_LEN];
    CHECK(dev != NULL && foreign != NULL && ca_cert_fingerprint(dev, want) == 0);
    char *good = sign_b64(dev, g_key, body, CMS_DETACHED);
    CHECK(ca_devauth_signature(g_rsa, good, body, strlen(body), &id) == CA_DEVAUTH_OK);
    CHECK(strcmp(id.cn, UDID) == 0 && strcmp(id.fp, want) == 0);
    CHECK(ca_devauth_signature(g_rsa, good, "other body", 10, &id) == CA_DEVAUTH_BAD_SIGNATURE);
    char *attached = sign_b64(dev, g_key, body, 0);
    CHECK(ca_devauth_signature(g_rsa, attached, body, strlen(body), &id) == CA_DEVAUTH_MALFORMED);
    char *other = sign_b64(foreign, g_key, body, CMS_DETACHED);
    CHECK(ca_devauth_signature(g_rsa, other, body, strlen(body), &id) == CA_DEVAUTH_UNTRUSTED);
    CHECK(ca_devauth_signature(g_rsa, "bm90IGNtcw==", body, strlen(body), &id) ==
          CA_DEVAUTH_MALFORMED);
    CHECK(ca_devauth_signature(g_rsa, NULL, body, strlen(body), &id) == CA_DEVAUTH_MALFORMED);
    unsigned char *der = NULL;
    int n = i2d_X509(dev, &der);
    char *b64 = xmalloc(4 * (((size_t)n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)b64, der, n);
    char *hdr = xasprintf(" :%s: ", b64);
    CHECK(ca_devauth_header_cert(g_rsa, hdr, &id) == CA_DEVAUTH_OK && strcmp(id.fp, want) == 0);
    CHECK(ca_devauth_header_cert(g_rsa, b64, &id) == CA_DEVAUTH_MALFORMED); /* no colons */
    CHECK(ca_devauth_header_cert(g_ec, hdr, &id) == CA_DEVAUTH_UNTRUSTED);
    /* The CA certificate itself chains, but is no client identity. */
    size_t calen;
    const unsigned char *cader = ca_cert_der(g_rsa, &calen);
    char *cab64 = xmalloc(4 * ((calen + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)cab64, cader, (int)calen);
    char *cahdr = xasprintf(":%s:", cab64);
    CHECK(ca_devauth_header_cert(g_rsa, cahdr, &id) == CA_DEVAUTH_NOT_CLIENT);
    free(cahdr);
    free(cab64);
    free(hdr);
    free(b64);
    OPENSSL_free(der);
    free(good);
    free(attached);
    free(other);
    ca_cert_free(dev);
    ca_cert_free(foreign);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

int main(void)
{
    strcpy(g_dir, "/tmp/test_scep.XXXXXX");
    if (mkdtemp(g_dir) == NULL)
        return 2;
    log_level = LOG_LVL_WARN;
    g_rsa = open_ca("rsa", "rsa2048");
    g_ec = open_ca("ec", "ec256");
    g_sc = g_rsa != NULL ? open_scep(g_rsa, "rsa") : NULL;
    g_sc_ec = g_ec != NULL ? open_scep(g_ec, "ec") : NULL;
    g_key = EVP_RSA_gen(2048);
    RUN(test_ber_check);
    RUN(test_base64);
    if (g_sc != NULL && g_sc_ec != NULL && g_key != NULL) {
        RUN(test_open);
        RUN(test_enroll_each_cipher);
        RUN(test_enroll_through_ra);
        RUN(test_failures);
        RUN(test_renewal);
        RUN(test_devauth);
    } else {
        harness_failed++;
        printf("FAIL setup\n");
    }
    EVP_PKEY_free(g_key);
    ca_scep_free(g_sc);
    ca_scep_free(g_sc_ec);
    ca_free(g_rsa);
    ca_free(g_ec);
    if (getenv("KEEP") == NULL)
        nftw(g_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    return harness_done();
}
