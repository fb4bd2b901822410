/* test_ca.c: the MDM CA, server certificate, device identities, PKCS#12
 * and CMS, all in a throwaway directory.  KEEP=1 keeps the directory. */
#include "../../ca/ca.h"
#include "../../core/conf.h"
#include "../../core/log.h"
#include "../../core/util.h"
#include "../harness.h"

#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define UDID "00008030-001A2B3C4D5E802E"

static char g_dir[64];
static struct ca *g_ca;    /* RSA CA under g_dir/ca */
static struct ca *g_other; /* unrelated EC CA under g_dir/other */

static char *path_in(const char *name)
{
    return xasprintf("%s/%s", g_dir, name);
}

/* A hand-filled config: decoupled from conf.c, which may be mid-edit. */
static void conf_fill(struct conf *cf, const char *subdir, const char *key_type)
{
    memset(cf, 0, sizeof(*cf));
    cf->ca_dir = path_in(subdir);
    cf->ca_key_type = (char *)key_type;
    cf->ca_common_name = (char *)"Test MDM CA";
    cf->ca_validity_days = 3650;
    cf->cert_validity_days = 365;
}

static struct ca *open_ca(const char *subdir, const char *key_type)
{
    struct conf cf;
    conf_fill(&cf, subdir, key_type);
    struct ca *ca = ca_open(&cf);
    free(cf.ca_dir);
    return ca;
}

static int file_mode(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int)(st.st_mode & 0777) : -1;
}

static int days_left(X509 *x)
{
    int d = 0, s = 0;
    return ASN1_TIME_diff(&d, &s, NULL, X509_get0_notAfter(x)) == 1 ? d : -99999;
}

static int ext_critical(X509 *x, int nid)
{
    int i = X509_get_ext_by_NID(x, nid, -1);
    return i >= 0 && X509_EXTENSION_get_critical(X509_get_ext(x, i)) == 1;
}

static int same_fingerprint(X509 *a, X509 *b)
{
    char fa[CA_FINGERPRINT_LEN], fb[CA_FINGERPRINT_LEN];
    return ca_cert_fingerprint(a, fa) == 0 && ca_cert_fingerprint(b, fb) == 0 &&
           strcmp(fa, fb) == 0;
}

static int cn_is(X509 *x, const char *want)
{
    char *cn = ca_cert_cn(x);
    int eq = cn != NULL && strcmp(cn, want) == 0;
    free(cn);
    return eq;
}

/* Positive, non-zero, at most 20 octets (RFC 5280). */
static int serial_ok(X509 *x)
{
    const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
    BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
    int ok = bn != NULL && !BN_is_negative(bn) && !BN_is_zero(bn) && BN_num_bytes(bn) <= 20 &&
             BN_num_bits(bn) <= 159;
    BN_free(bn);
    return ok;
}

static int aki_matches_ski(X509 *x, X509 *issuer)
{
    const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(x);
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(issuer);
    return aki != NULL && ski != NULL && ASN1_OCTET_STRING_cmp(aki, ski) == 0;
}

/* ---- the CA ---- */

TEST(test_ca_create)
{
    g_ca = open_ca("ca", "rsa2048");
    CHECK(g_ca != NULL);
    if (g_ca == NULL)
        return;
    X509 *x = ca_cert(g_ca);
    char *key = path_in("ca/ca.key");
    CHECK(file_mode(key) == 0600);
    CHECK(strstr(ca_cert_path(g_ca), "/ca/ca.crt") != NULL);
    CHECK(file_mode(ca_cert_path(g_ca)) >= 0);
    CHECK(X509_check_ca(x) == 1);
    CHECK(ext_critical(x, NID_basic_constraints));
    CHECK(ext_critical(x, NID_key_usage));
    CHECK(X509_get_key_usage(x) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
    CHECK(aki_matches_ski(x, x));
    CHECK(cn_is(x, "Test MDM CA"));
    CHECK(serial_ok(x));
    CHECK(EVP_PKEY_get_base_id(ca_key(g_ca)) == EVP_PKEY_RSA);
    CHECK(EVP_PKEY_get_bits(ca_key(g_ca)) == 2048);
    CHECK(X509_verify(x, ca_key(g_ca)) == 1);
    CHECK(days_left(x) >= 3649 && days_left(x) <= 3650);
    CHECK(X509_cmp_current_time(X509_get0_notBefore(x)) < 0);
    free(key);
}

TEST(test_ca_der_pem)
{
    size_t len = 0;
    const unsigned char *der = ca_cert_der(g_ca, &len);
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    CHECK(x != NULL && X509_cmp(x, ca_cert(g_ca)) == 0);
    CHECK(p == der + len);
    X509_free(x);
    const char *pem = ca_cert_pem(g_ca);
    BIO *b = BIO_new_mem_buf(pem, -1);
    x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    CHECK(strncmp(pem, "-----BEGIN CERTIFICATE-----\n", 28) == 0);
    CHECK(x != NULL && X509_cmp(x, ca_cert(g_ca)) == 0);
    X509_free(x);
    BIO_free(b);
}

TEST(test_ca_reopen)
{
    struct ca *again = open_ca("ca", "ec256"); /* key type only matters on create */
    CHECK(again != NULL);
    if (again == NULL)
        return;
    CHECK(same_fingerprint(ca_cert(again), ca_cert(g_ca)));
    CHECK(EVP_PKEY_eq(ca_key(again), ca_key(g_ca)) == 1);
    ca_free(again);
    g_other = open_ca("other", "ec256");
    CHECK(g_other != NULL);
    if (g_other != NULL) {
        CHECK(!same_fingerprint(ca_cert(g_other), ca_cert(g_ca)));
        CHECK(EVP_PKEY_get_base_id(ca_key(g_other)) == EVP_PKEY_EC);
    }
}

static void copy_file(const char *from, const char *to)
{
    char *buf = NULL;
    size_t len = 0;
    if (util_read_file(from, &buf, &len) == 0 && util_write_file(to, buf, len, 0600) == 0) {
        free(buf);
        return;
    }
    free(buf);
    CHECK(!"copy_file");
}

TEST(test_ca_incomplete)
{
    char *d1 = path_in("only_crt"), *d2 = path_in("only_key"), *d3 = path_in("mixed");
    char *c1 = path_in("only_crt/ca.crt"), *k1 = path_in("only_crt/ca.key");
    char *c2 = path_in("only_key/ca.crt"), *k2 = path_in("only_key/ca.key");
    char *c3 = path_in("mixed/ca.crt"), *k3 = path_in("mixed/ca.key");
    char *ok = path_in("other/ca.key");
    CHECK(mkdir(d1, 0700) == 0 && mkdir(d2, 0700) == 0 && mkdir(d3, 0700) == 0);
    copy_file(ca_cert_path(g_ca), c1);
    copy_file(ok, k2);
    copy_file(ca_cert_path(g_ca), c3); /* cert of one CA, key of another */
    copy_file(ok, k3);
    struct ca *ca = open_ca("only_crt", "ec256");
    CHECK(ca == NULL);
    CHECK(access(k1, F_OK) != 0); /* nothing was created */
    ca_free(ca);
    ca = open_ca("only_key", "ec256");
    CHECK(ca == NULL);
    CHECK(access(c2, F_OK) != 0);
    ca_free(ca);
    ca = open_ca("mixed", "ec256");
    CHECK(ca == NULL);
    ca_free(ca);
    ca = open_ca("badtype", "dsa1024");
    CHECK(ca == NULL);
    ca_free(ca);
    free(d1), free(d2), free(d3), free(c1), free(k1), free(c2), free(k2), free(c3), free(k3);
    free(ok);
}

/* ---- server certificate ---- */

static X509 *load_server(const char *crt, const char *key)
{
    X509 *x = NULL;
    EVP_PKEY *k = NULL;
    if (ca_load_identity(crt, key, &x, &k) != 0)
        return NULL;
    EVP_PKEY_free(k);
    return x;
}

TEST(test_server_cert)
{
    char *crt = path_in("srv.crt"), *key = path_in("srv.key");
    CHECK(ca_ensure_server_cert(g_ca, "localhost 127.0.0.1 ::1", crt, key, 5000) == 0);
    X509 *x = load_server(crt, key);
    CHECK(x != NULL);
    if (x != NULL) {
        CHECK(X509_check_host(x, "localhost", 0, 0, NULL) == 1);
        CHECK(X509_check_ip_asc(x, "127.0.0.1", 0) == 1);
        CHECK(X509_check_ip_asc(x, "::1", 0) == 1);
        CHECK(X509_check_host(x, "example.com", 0, 0, NULL) != 1);
        CHECK(X509_check_ip_asc(x, "10.0.0.1", 0) != 1);
        CHECK(cn_is(x, "localhost"));
        CHECK(EVP_PKEY_get_base_id(X509_get0_pubkey(x)) == EVP_PKEY_EC);
        CHECK((X509_get_extended_key_usage(x) & XKU_SSL_SERVER) != 0);
        CHECK((X509_get_extended_key_usage(x) & XKU_SSL_CLIENT) == 0);
        CHECK(X509_get_key_usage(x) == KU_DIGITAL_SIGNATURE);
        CHECK(X509_check_ca(x) == 0);
        CHECK(aki_matches_ski(x, ca_cert(g_ca)));
        CHECK(serial_ok(x));
        CHECK(days_left(x) <= CA_SERVER_MAX_DAYS && days_left(x) >= CA_SERVER_MAX_DAYS - 1);
        CHECK(ca_verify_issued(g_ca, x) == 0);
        CHECK(g_other == NULL || ca_verify_issued(g_other, x) != 0);
    }
    CHECK(file_mode(key) == 0600);
    X509_free(x);
    free(crt), free(key);
}

static int server_fp(const char *crt, const char *key, char fp[CA_FINGERPRINT_LEN])
{
    X509 *x = load_server(crt, key);
    int rc = x != NULL ? ca_cert_fingerprint(x, fp) : -1;
    X509_free(x);
    return rc;
}

TEST(test_server_cert_regen)
{
    char *crt = path_in("srv.crt"), *key = path_in("srv.key");
    char fp0[CA_FINGERPRINT_LEN] = "", fp1[CA_FINGERPRINT_LEN] = "", fp2[CA_FINGERPRINT_LEN] = "";
    CHECK(server_fp(crt, key, fp0) == 0);
    /* same set in another order: kept */
    CHECK(ca_ensure_server_cert(g_ca, "  ::1 localhost\t127.0.0.1 localhost ", crt, key, 365) == 0);
    CHECK(server_fp(crt, key, fp1) == 0 && strcmp(fp0, fp1) == 0);
    /* a name added: regenerated and covering it */
    CHECK(ca_ensure_server_cert(g_ca, "localhost 127.0.0.1 ::1 mdm.example.com", crt, key, 365) ==
          0);
    CHECK(server_fp(crt, key, fp2) == 0 && strcmp(fp1, fp2) != 0);
    X509 *x = load_server(crt, key);
    CHECK(x != NULL && X509_check_host(x, "mdm.example.com", 0, 0, NULL) == 1);
    CHECK(x != NULL && days_left(x) <= 365 && days_left(x) >= 364);
    X509_free(x);
    /* a name removed: regenerated without it */
    CHECK(ca_ensure_server_cert(g_ca, "localhost", crt, key, 365) == 0);
    x = load_server(crt, key);
    CHECK(x != NULL && X509_check_ip_asc(x, "127.0.0.1", 0) != 1);
    X509_free(x);
    CHECK(server_fp(crt, key, fp1) == 0 && strcmp(fp1, fp2) != 0);
    /* same count, another name: regenerated */
    CHECK(ca_ensure_server_cert(g_ca, "mdm.example.org", crt, key, 365) == 0);
    CHECK(server_fp(crt, key, fp2) == 0 && strcmp(fp1, fp2) != 0);
    x = load_server(crt, key);
    CHECK(x != NULL && X509_check_host(x, "mdm.example.org", 0, 0, NULL) == 1);
    CHECK(x != NULL && X509_check_host(x, "localhost", 0, 0, NULL) != 1);
    X509_free(x);
    /* IPv6 compares as an address, not as text: kept */
    CHECK(ca_ensure_server_cert(g_ca, "::1", crt, key, 365) == 0);
    CHECK(server_fp(crt, key, fp1) == 0);
    CHECK(ca_ensure_server_cert(g_ca, "0:0::0:1", crt, key, 365) == 0);
    CHECK(server_fp(crt, key, fp2) == 0 && strcmp(fp1, fp2) == 0);
    /* key gone: regenerated */
    CHECK(unlink(key) == 0);
    CHECK(ca_ensure_server_cert(g_ca, "localhost", crt, key, 365) == 0);
    CHECK(server_fp(crt, key, fp2) == 0 && strcmp(fp1, fp2) != 0);
    free(crt), free(key);
}

TEST(test_server_cert_ca_changed)
{
    char *crt = path_in("srv.crt"), *key = path_in("srv.key");
    if (g_other == NULL) {
        CHECK(g_other != NULL);
        return;
    }
    CHECK(ca_ensure_server_cert(g_other, "localhost", crt, key, 365) == 0);
    X509 *x = load_server(crt, key);
    CHECK(x != NULL && ca_verify_issued(g_other, x) == 0);
    CHECK(x != NULL && ca_verify_issued(g_ca, x) != 0);
    X509_free(x);
    CHECK(ca_ensure_server_cert(g_ca, "localhost", crt, key, 365) == 0);
    x = load_server(crt, key);
    CHECK(x != NULL && ca_verify_issued(g_ca, x) == 0);
    X509_free(x);
    /* bad name lists fail and leave the pair alone */
    CHECK(ca_ensure_server_cert(g_ca, "localhost bad/name", crt, key, 365) == -1);
    CHECK(ca_ensure_server_cert(g_ca, "   ", crt, key, 365) == -1);
    CHECK(ca_ensure_server_cert(g_ca, NULL, crt, key, 365) == -1);
    x = load_server(crt, key);
    CHECK(x != NULL && ca_verify_issued(g_ca, x) == 0);
    X509_free(x);
    free(crt), free(key);
}

/* ---- keys and device identities ---- */

TEST(test_keygen)
{
    EVP_PKEY *ec = ca_keygen("ec256");
    EVP_PKEY *rsa = ca_keygen("rsa2048");
    CHECK(ec != NULL && EVP_PKEY_get_base_id(ec) == EVP_PKEY_EC && EVP_PKEY_get_bits(ec) == 256);
    CHECK(rsa != NULL && EVP_PKEY_get_base_id(rsa) == EVP_PKEY_RSA &&
          EVP_PKEY_get_bits(rsa) == 2048);
    CHECK(ca_keygen("dsa") == NULL);
    CHECK(ca_keygen(NULL) == NULL);
    CHECK(ca_key_type_ok("rsa4096") && ca_key_type_ok("rsa2048") && ca_key_type_ok("ec256"));
    CHECK(!ca_key_type_ok("rsa1024") && !ca_key_type_ok("") && !ca_key_type_ok(NULL));
    ca_pkey_free(ec);
    ca_pkey_free(rsa);
}

TEST(test_device_cert)
{
    EVP_PKEY *k = ca_keygen("rsa2048");
    X509 *x = k != NULL ? ca_issue_device_cert(g_ca, k, UDID, 365) : NULL;
    X509 *y = k != NULL ? ca_issue_device_cert(g_ca, k, UDID, 365) : NULL;
    CHECK(x != NULL && y != NULL);
    if (x != NULL && y != NULL) {
        CHECK(cn_is(x, UDID));
        CHECK((X509_get_extended_key_usage(x) & XKU_SSL_CLIENT) != 0);
        CHECK((X509_get_extended_key_usage(x) & XKU_SSL_SERVER) == 0);
        CHECK(X509_get_key_usage(x) == (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT));
        CHECK(X509_check_ca(x) == 0);
        CHECK(ext_critical(x, NID_basic_constraints));
        CHECK(X509_get0_subject_key_id(x) != NULL);
        CHECK(aki_matches_ski(x, ca_cert(g_ca)));
        CHECK(X509_check_private_key(x, k) == 1);
        CHECK(serial_ok(x) && serial_ok(y));
        CHECK(ASN1_INTEGER_cmp(X509_get0_serialNumber(x), X509_get0_serialNumber(y)) != 0);
        CHECK(days_left(x) >= 364 && days_left(x) <= 365);
        CHECK(ca_verify_issued(g_ca, x) == 0);
    }
    ca_cert_free(x);
    ca_cert_free(y);
    ca_pkey_free(k);
}

TEST(test_device_cert_ec_and_bad_args)
{
    EVP_PKEY *k = ca_keygen("ec256");
    X509 *x = ca_issue_device_cert(g_ca, k, "ota-" UDID, 30);
    CHECK(x != NULL && cn_is(x, "ota-" UDID));
    CHECK(x != NULL && X509_get_key_usage(x) == KU_DIGITAL_SIGNATURE);
    CHECK(x != NULL && ca_verify_issued(g_ca, x) == 0);
    ca_cert_free(x);
    static const char too_long[] =
        "12345678901234567890123456789012345678901234567890123456789012345";
    const char *bad[] = {"", "a/b", "x y", "CN=x,O=y", "\"q\"", too_long};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        x = ca_issue_device_cert(g_ca, k, bad[i], 30);
        CHECK(x == NULL);
        ca_cert_free(x);
    }
    x = ca_issue_device_cert(g_ca, k, UDID, 100000); /* capped at the CA's end */
    CHECK(x != NULL &&
          ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(ca_cert(g_ca))) == 0);
    ca_cert_free(x);
    x = ca_issue_device_cert(g_ca, k, UDID, 0);
    CHECK(x == NULL);
    ca_cert_free(x);
    x = ca_issue_device_cert(g_ca, NULL, UDID, 30);
    CHECK(x == NULL);
    ca_cert_free(x);
    ca_pkey_free(k);
}

/* A certificate of ours whose validity ended an hour ago. */
static X509 *expired_copy(X509 *x)
{
    X509 *e = X509_dup(x);
    if (e == NULL || X509_gmtime_adj(X509_getm_notBefore(e), -7200) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(e), -3600) == NULL ||
        X509_sign(e, ca_key(g_ca), EVP_sha256()) <= 0) {
        X509_free(e);
        return NULL;
    }
    return e;
}

TEST(test_chain_check)
{
    EVP_PKEY *k = ca_keygen("ec256");
    X509 *foreign = g_other != NULL ? ca_issue_device_cert(g_other, k, UDID, 30) : NULL;
    X509 *mine = ca_issue_device_cert(g_ca, k, UDID, 30);
    X509 *old = mine != NULL ? expired_copy(mine) : NULL;
    CHECK(foreign != NULL && mine != NULL && old != NULL);
    CHECK(mine != NULL && ca_verify_issued(g_ca, mine) == 0);
    CHECK(foreign != NULL && ca_verify_issued(g_ca, foreign) == -1);
    CHECK(foreign != NULL && g_other != NULL && ca_verify_issued(g_other, foreign) == 0);
    CHECK(old != NULL && ca_verify_issued(g_ca, old) == -1);
    /* another CA's own root is not ours either */
    CHECK(g_other != NULL && ca_verify_issued(g_ca, ca_cert(g_other)) == -1);
    ca_cert_free(foreign);
    ca_cert_free(mine);
    ca_cert_free(old);
    ca_pkey_free(k);
}

TEST(test_fingerprint_cn)
{
    char fp[CA_FINGERPRINT_LEN];
    unsigned char md[32];
    unsigned int n = 0;
    char hex[65];
    CHECK(ca_cert_fingerprint(ca_cert(g_ca), fp) == 0);
    CHECK(strlen(fp) == 64 && strspn(fp, "0123456789abcdef") == 64);
    CHECK(X509_digest(ca_cert(g_ca), EVP_sha256(), md, &n) == 1 && n == 32);
    util_hex(md, 32, hex);
    CHECK(strcmp(fp, hex) == 0);
    X509 *bare = X509_new(); /* empty subject: no CN */
    char *cn = ca_cert_cn(bare);
    CHECK(cn == NULL);
    free(cn);
    X509_NAME *name = X509_get_subject_name(bare);
    CHECK(X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_ASC,
                                     (const unsigned char *)"ab\0c", 4, -1, 0) == 1);
    cn = ca_cert_cn(bare); /* an embedded NUL is refused */
    CHECK(cn == NULL);
    free(cn);
    X509_free(bare);
}

/* ---- PKCS#12 ---- */

struct p12_algs {
    int mac_md; /* NID of the MAC digest */
    long mac_iter;
    int key_pbe, cert_pbe; /* NID of the bag encryption (NID_pbes2 for PBES2) */
    int key_cipher;        /* PBES2 only: cipher and PRF of the key bag */
    int key_prf;
};

static void p12_pbes2(const X509_ALGOR *alg, struct p12_algs *out)
{
    const ASN1_OBJECT *obj;
    const void *param;
    int ptype;
    X509_ALGOR_get0(&obj, &ptype, &param, alg);
    if (OBJ_obj2nid(obj) != NID_pbes2 || ptype != V_ASN1_SEQUENCE)
        return;
    PBE2PARAM *pbe2 = ASN1_item_unpack(param, ASN1_ITEM_rptr(PBE2PARAM));
    if (pbe2 == NULL)
        return;
    out->key_cipher = OBJ_obj2nid(pbe2->encryption->algorithm);
    PBKDF2PARAM *kdf =
        OBJ_obj2nid(pbe2->keyfunc->algorithm) == NID_id_pbkdf2
            ? ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM), pbe2->keyfunc->parameter)
            : NULL;
    if (kdf != NULL)
        out->key_prf = kdf->prf != NULL ? OBJ_obj2nid(kdf->prf->algorithm) : NID_hmacWithSHA1;
    PBKDF2PARAM_free(kdf);
    PBE2PARAM_free(pbe2);
}

static void p12_bags(PKCS7 *p7, struct p12_algs *out)
{
    if (OBJ_obj2nid(p7->type) == NID_pkcs7_encrypted) {
        out->cert_pbe = OBJ_obj2nid(p7->d.encrypted->enc_data->algorithm->algorithm);
        return;
    }
    STACK_OF(PKCS12_SAFEBAG) *bags = PKCS12_unpack_p7data(p7);
    for (int i = 0; i < sk_PKCS12_SAFEBAG_num(bags); i++) {
        PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, i);
        if (PKCS12_SAFEBAG_get_nid(bag) != NID_pkcs8ShroudedKeyBag)
            continue;
        const X509_ALGOR *alg;
        X509_SIG_get0(PKCS12_SAFEBAG_get0_pkcs8(bag), &alg, NULL);
        out->key_pbe = OBJ_obj2nid(alg->algorithm);
        p12_pbes2(alg, out);
    }
    sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
}

static void p12_inspect(PKCS12 *p12, struct p12_algs *out)
{
    const X509_ALGOR *macalg = NULL;
    const ASN1_INTEGER *iter = NULL;
    const ASN1_OBJECT *obj = NULL;
    memset(out, 0, sizeof(*out));
    PKCS12_get0_mac(NULL, &macalg, NULL, &iter, p12);
    if (macalg != NULL) {
        X509_ALGOR_get0(&obj, NULL, NULL, macalg);
        out->mac_md = OBJ_obj2nid(obj);
    }
    out->mac_iter = iter != NULL ? ASN1_INTEGER_get(iter) : 1;
    STACK_OF(PKCS7) *safes = PKCS12_unpack_authsafes(p12);
    for (int i = 0; i < sk_PKCS7_num(safes); i++)
        p12_bags(sk_PKCS7_value(safes, i), out);
    sk_PKCS7_pop_free(safes, PKCS7_free);
}

/* Builds a PKCS#12 in mode and checks it parses back only with the password. */
static PKCS12 *p12_roundtrip(const char *mode, EVP_PKEY *k, X509 *x)
{
    char pw[CA_PASSWORD_LEN];
    unsigned char *der = NULL;
    size_t len = 0;
    X509 *chain[1] = {ca_cert(g_ca)};
    CHECK(ca_random_password(pw, sizeof(pw)) == 0);
    CHECK(ca_pkcs12(k, x, chain, 1, "Device Identity", pw, mode, &der, &len) == 0);
    const unsigned char *p = der;
    PKCS12 *p12 = der != NULL ? d2i_PKCS12(NULL, &p, (long)len) : NULL;
    free(der);
    CHECK(p12 != NULL);
    if (p12 == NULL)
        return NULL;
    EVP_PKEY *pk = NULL;
    X509 *pc = NULL;
    STACK_OF(X509) *pca = NULL;
    CHECK(PKCS12_parse(p12, pw, &pk, &pc, &pca) == 1);
    CHECK(pk != NULL && EVP_PKEY_eq(pk, k) == 1);
    CHECK(pc != NULL && X509_cmp(pc, x) == 0);
    CHECK(pca != NULL && sk_X509_num(pca) == 1 && X509_cmp(sk_X509_value(pca, 0), chain[0]) == 0);
    EVP_PKEY_free(pk);
    X509_free(pc);
    sk_X509_pop_free(pca, X509_free);
    pk = NULL, pc = NULL, pca = NULL;
    CHECK(PKCS12_verify_mac(p12, "wrong password", -1) == 0);
    CHECK(PKCS12_parse(p12, "wrong password", &pk, &pc, &pca) == 0 && pk == NULL);
    EVP_PKEY_free(pk);
    X509_free(pc);
    sk_X509_pop_free(pca, X509_free);
    ERR_clear_error();
    return p12;
}

TEST(test_pkcs12)
{
    EVP_PKEY *k = ca_keygen("rsa2048");
    X509 *x = k != NULL ? ca_issue_device_cert(g_ca, k, UDID, 365) : NULL;
    CHECK(x != NULL);
    if (x == NULL) {
        ca_pkey_free(k);
        return;
    }
    struct p12_algs a;
    PKCS12 *p12 = p12_roundtrip("legacy", k, x);
    p12_inspect(p12, &a);
    CHECK(a.mac_md == NID_sha1 && a.mac_iter == 2048);
    CHECK(a.key_pbe == NID_pbe_WithSHA1And3_Key_TripleDES_CBC);
    CHECK(a.cert_pbe == NID_pbe_WithSHA1And3_Key_TripleDES_CBC);
    PKCS12_free(p12);
    p12 = p12_roundtrip("aes", k, x);
    p12_inspect(p12, &a);
    CHECK(a.mac_md == NID_sha256 && a.mac_iter == 2048);
    CHECK(a.key_pbe == NID_pbes2 && a.cert_pbe == NID_pbes2);
    CHECK(a.key_cipher == NID_aes_256_cbc && a.key_prf == NID_hmacWithSHA256);
    PKCS12_free(p12);
    unsigned char *der = NULL;
    size_t len = 0;
    CHECK(ca_pkcs12(k, x, NULL, 0, NULL, "pw", "rc2", &der, &len) == -1 && der == NULL);
    CHECK(ca_pkcs12(k, x, NULL, 0, NULL, "", "legacy", &der, &len) == -1 && der == NULL);
    CHECK(ca_pkcs12(k, x, NULL, 0, NULL, "pw", "legacy", &der, &len) == 0 && len > 0);
    free(der);
    CHECK(ca_pkcs12_mode_ok("legacy") && ca_pkcs12_mode_ok("aes") && !ca_pkcs12_mode_ok("des"));
    ca_cert_free(x);
    ca_pkey_free(k);
}

TEST(test_random_password)
{
    static const char alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    char a[CA_PASSWORD_LEN], b[CA_PASSWORD_LEN], tiny[1];
    CHECK(ca_random_password(a, sizeof(a)) == 0);
    CHECK(ca_random_password(b, sizeof(b)) == 0);
    CHECK(strlen(a) == 24 && strlen(b) == 24);
    CHECK(strspn(a, alphabet) == 24 && strspn(b, alphabet) == 24);
    CHECK(strcmp(a, b) != 0);
    CHECK(ca_random_password(tiny, sizeof(tiny)) == -1);
}

/* ---- CMS ---- */

static const unsigned char g_body[] =
    "<?xml version=\"1.0\"?>\n<plist>\r\n<dict/>\n</plist>\n\0tail\xff\x01 unique-marker";

struct signer {
    EVP_PKEY *key;
    X509 *cert;
};

static int signer_new(struct signer *s, struct ca *ca, const char *cn)
{
    s->key = ca_keygen("ec256");
    s->cert = s->key != NULL ? ca_issue_device_cert(ca, s->key, cn, 30) : NULL;
    return s->cert != NULL ? 0 : -1;
}

static void signer_free(struct signer *s)
{
    ca_cert_free(s->cert);
    ca_pkey_free(s->key);
}

static int verify_ok(const unsigned char *der, size_t len, X509_STORE *trust, X509 *want)
{
    unsigned char *out = NULL;
    size_t n = 0;
    X509 *who = NULL;
    int ok = ca_cms_verify(der, len, trust, &out, &n, &who) == 0 && n == sizeof(g_body) - 1 &&
             memcmp(out, g_body, n) == 0 && out[n] == '\0' && who != NULL &&
             same_fingerprint(who, want);
    free(out);
    ca_cert_free(who);
    return ok;
}

static int verify_fails(const unsigned char *der, size_t len, X509_STORE *trust)
{
    unsigned char *out = (unsigned char *)"x";
    size_t n = 1;
    X509 *who = (X509 *)1;
    int rc = ca_cms_verify(der, len, trust, &out, &n, &who);
    return rc == -1 && out == NULL && n == 0 && who == NULL;
}

TEST(test_cms_roundtrip)
{
    struct signer dev;
    unsigned char *der = NULL;
    size_t len = 0;
    CHECK(signer_new(&dev, g_ca, UDID) == 0);
    CHECK(ca_cms_sign(dev.cert, dev.key, NULL, 0, g_body, sizeof(g_body) - 1, &der, &len) == 0);
    /* binary: the content sits in the DER byte for byte (no CRLF rewrite) */
    CHECK(der != NULL && memmem(der, len, g_body, sizeof(g_body) - 1) != NULL);
    CHECK(verify_ok(der, len, NULL, dev.cert));
    CHECK(verify_ok(der, len, ca_store(g_ca), dev.cert)); /* clientAuth EKU is fine */
    unsigned char *out = NULL;
    size_t n = 0;
    CHECK(ca_cms_verify(der, len, NULL, &out, &n, NULL) == 0 && n == sizeof(g_body) - 1);
    free(out);
    free(der);
    signer_free(&dev);
}

TEST(test_cms_profile_with_chain)
{
    X509 *srv = NULL;
    EVP_PKEY *key = NULL;
    char *crt = path_in("srv.crt"), *kp = path_in("srv.key");
    unsigned char *der = NULL;
    size_t len = 0;
    X509 *extra[1] = {ca_cert(g_ca)};
    CHECK(ca_load_identity(crt, kp, &srv, &key) == 0);
    CHECK(srv != NULL &&
          ca_cms_sign(srv, key, extra, 1, g_body, sizeof(g_body) - 1, &der, &len) == 0);
    X509_STORE *trust = ca_store_load(ca_cert_path(g_ca));
    X509_STORE *unrelated = g_other != NULL ? ca_store_load(ca_cert_path(g_other)) : NULL;
    CHECK(trust != NULL && unrelated != NULL);
    CHECK(srv != NULL && verify_ok(der, len, trust, srv));
    CHECK(unrelated != NULL && verify_fails(der, len, unrelated));
    CHECK(ca_store_load("/nonexistent/ca.crt") == NULL);
    ca_store_free(trust);
    ca_store_free(unrelated);
    free(der);
    ca_cert_free(srv);
    ca_pkey_free(key);
    free(crt), free(kp);
}

TEST(test_cms_tampered)
{
    struct signer dev, foreign;
    unsigned char *der = NULL;
    size_t len = 0;
    CHECK(signer_new(&dev, g_ca, UDID) == 0);
    CHECK(g_other != NULL && signer_new(&foreign, g_other, UDID) == 0);
    CHECK(ca_cms_sign(dev.cert, dev.key, NULL, 0, g_body, sizeof(g_body) - 1, &der, &len) == 0);
    unsigned char *hit = der != NULL ? memmem(der, len, "unique-marker", 13) : NULL;
    CHECK(hit != NULL);
    if (hit != NULL) {
        CHECK(verify_ok(der, len, NULL, dev.cert));
        hit[0] ^= 0x20;
        CHECK(verify_fails(der, len, NULL));
        hit[0] ^= 0x20;
        CHECK(verify_fails(der, len - 10, NULL)); /* truncated */
        CHECK(verify_fails(der, 0, NULL));
        CHECK(verify_fails(g_body, sizeof(g_body) - 1, NULL)); /* not CMS */
    }
    free(der);
    /* a well-signed message from a certificate of another CA */
    CHECK(ca_cms_sign(foreign.cert, foreign.key, NULL, 0, g_body, sizeof(g_body) - 1, &der, &len) ==
          0);
    CHECK(verify_ok(der, len, NULL, foreign.cert));
    CHECK(verify_fails(der, len, ca_store(g_ca)));
    free(der);
    signer_free(&dev);
    signer_free(&foreign);
}

static int cms_der(CMS_ContentInfo *cms, unsigned char **der, size_t *len)
{
    int n = i2d_CMS_ContentInfo(cms, NULL);
    *der = NULL;
    if (n <= 0)
        return -1;
    *der = xmalloc((size_t)n);
    unsigned char *p = *der;
    *len = (size_t)i2d_CMS_ContentInfo(cms, &p);
    return 0;
}

/* Detached content and two signers: both valid CMS, both refused. */
TEST(test_cms_refused_shapes)
{
    struct signer a, b;
    CHECK(signer_new(&a, g_ca, "a") == 0 && signer_new(&b, g_ca, "b") == 0);
    BIO *in = BIO_new_mem_buf(g_body, sizeof(g_body) - 1);
    CMS_ContentInfo *cms = CMS_sign(a.cert, a.key, NULL, in, CMS_BINARY | CMS_DETACHED);
    unsigned char *der = NULL;
    size_t len = 0;
    CHECK(cms != NULL && cms_der(cms, &der, &len) == 0);
    CHECK(verify_fails(der, len, NULL));
    free(der);
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    in = BIO_new_mem_buf(g_body, sizeof(g_body) - 1);
    cms = CMS_sign(NULL, NULL, NULL, NULL, CMS_BINARY | CMS_PARTIAL);
    CHECK(cms != NULL && CMS_add1_signer(cms, a.cert, a.key, NULL, 0) != NULL &&
          CMS_add1_signer(cms, b.cert, b.key, NULL, 0) != NULL &&
          CMS_final(cms, in, NULL, CMS_BINARY) == 1 && cms_der(cms, &der, &len) == 0);
    CHECK(verify_fails(der, len, NULL));
    free(der);
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    signer_free(&a);
    signer_free(&b);
    ERR_clear_error();
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

int main(void)
{
    strcpy(g_dir, "/tmp/test_ca.XXXXXX");
    if (mkdtemp(g_dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    log_level = LOG_LVL_DEBUG;
    RUN(test_ca_create);
    if (g_ca == NULL)
        return harness_done();
    RUN(test_ca_der_pem);
    RUN(test_ca_reopen);
    RUN(test_ca_incomplete);
    RUN(test_server_cert);
    RUN(test_server_cert_regen);
    RUN(test_server_cert_ca_changed);
    RUN(test_keygen);
    RUN(test_device_cert);
    RUN(test_device_cert_ec_and_bad_args);
    RUN(test_chain_check);
    RUN(test_fingerprint_cn);
    RUN(test_pkcs12);
    RUN(test_random_password);
    RUN(test_cms_roundtrip);
    RUN(test_cms_profile_with_chain);
    RUN(test_cms_tampered);
    RUN(test_cms_refused_shapes);
    ca_free(g_ca);
    ca_free(g_other);
    if (getenv("KEEP") == NULL)
        nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    else
        printf("kept %s\n", g_dir);
    return harness_done();
}
