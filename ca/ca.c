/* ca.c: the MDM CA, the server certificate and device identities.
 * PKCS#12, CMS and trust checks live in ca_msg.c; both share ca_int.h. */
#include "ca.h"
#include "../core/conf.h"
#include "../core/log.h"
#include "../core/util.h"
#include "ca_int.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* notBefore lies this far in the past: a device whose clock runs a little
 * behind must not see a certificate that is "not yet valid". */
#define CA_BACKDATE_S 300
#define CA_DEFAULT_KEY_TYPE "rsa2048"
#define CA_DEFAULT_CN "mdmd CA"

struct ca {
    X509 *cert;         /* the CA certificate */
    EVP_PKEY *key;      /* its private key; never logged */
    X509_STORE *store;  /* trusts only cert: ca_verify_issued, ca_store */
    unsigned char *der; /* cert as DER, served to clients */
    size_t der_len;
    char *pem;       /* cert as PEM, NUL-terminated */
    char *cert_path; /* <ca_dir>/ca.crt */
    char *key_path;  /* <ca_dir>/ca.key */
};

/* Subject key identifier before authority key identifier: "keyid" copies
 * the issuer's SKI, and a self-signed certificate is its own issuer. */
static const struct ca_ext ca_exts_root[] = {
    {NID_basic_constraints, "critical,CA:TRUE"},
    {NID_key_usage, "critical,keyCertSign,cRLSign"},
    {NID_subject_key_identifier, "hash"},
    {NID_authority_key_identifier, "keyid:always"},
};

/* "keyid,issuer": falls back to issuer name + serial for an imported CA
 * that has no SKI, instead of failing. */
static const struct ca_ext ca_exts_server[] = {
    {NID_basic_constraints, "critical,CA:FALSE"},
    {NID_key_usage, "critical,digitalSignature"},
    {NID_ext_key_usage, "serverAuth"},
    {NID_subject_key_identifier, "hash"},
    {NID_authority_key_identifier, "keyid,issuer"},
};

static const struct ca_ext ca_exts_device_rsa[] = {
    {NID_basic_constraints, "critical,CA:FALSE"},
    {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
    {NID_ext_key_usage, "clientAuth"},
    {NID_subject_key_identifier, "hash"},
    {NID_authority_key_identifier, "keyid,issuer"},
};

/* RFC 5480 section 3: keyEncipherment must not be set for EC keys. */
static const struct ca_ext ca_exts_device_ec[] = {
    {NID_basic_constraints, "critical,CA:FALSE"},
    {NID_key_usage, "critical,digitalSignature"},
    {NID_ext_key_usage, "clientAuth"},
    {NID_subject_key_identifier, "hash"},
    {NID_authority_key_identifier, "keyid,issuer"},
};

static const struct ca_key_kind {
    const char *name;
    size_t rsa_bits; /* 0: EC P-256 */
} ca_key_kinds[] = {
    {"rsa2048", 2048},
    {"rsa4096", 4096},
    {"ec256", 0},
};

void ca_ssl_log(int lvl, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    log_ssl(lvl, what);
}

int ca_i2d(const void *obj, const ASN1_ITEM *it, unsigned char **der, size_t *len)
{
    unsigned char *buf = NULL;
    int n = ASN1_item_i2d((const ASN1_VALUE *)obj, &buf, it);
    if (n <= 0)
        return -1;
    /* Copied so callers outside ca/ release it with free(), not OPENSSL_free(). */
    *der = xmalloc((size_t)n);
    memcpy(*der, buf, (size_t)n);
    *len = (size_t)n;
    OPENSSL_free(buf);
    return 0;
}

/* Keys we read are never encrypted; refusing any passphrase stops OpenSSL's
 * default callback from prompting on the terminal of a daemon. */
static int ca_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

/* 1 exists, 0 missing, -1 cannot tell (logged). */
static int ca_file_exists(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0)
        return 1;
    if (errno == ENOENT)
        return 0;
    log_err("event=ca_stat_failed path=%s error=\"%s\"", path, strerror(errno));
    return -1;
}

static X509 *ca_read_cert(const char *path)
{
    BIO *b = BIO_new_file(path, "r");
    X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, ca_no_passphrase, NULL) : NULL;
    BIO_free(b);
    return x;
}

static EVP_PKEY *ca_read_key(const char *path)
{
    BIO *b = BIO_new_file(path, "r");
    EVP_PKEY *k = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, ca_no_passphrase, NULL) : NULL;
    BIO_free(b);
    return k;
}

/* Reads a matching cert/key pair.  NULL on success, else why not (the
 * OpenSSL error queue is left for the caller to log or clear). */
static const char *ca_read_pair(const char *cert_path, const char *key_path, X509 **cert,
                                EVP_PKEY **key)
{
    *cert = ca_read_cert(cert_path);
    *key = *cert != NULL ? ca_read_key(key_path) : NULL;
    const char *why = *cert == NULL                              ? "unreadable_cert"
                      : *key == NULL                             ? "unreadable_key"
                      : X509_check_private_key(*cert, *key) != 1 ? "key_mismatch"
                                                                 : NULL;
    if (why != NULL) {
        X509_free(*cert);
        EVP_PKEY_free(*key);
        *cert = NULL;
        *key = NULL;
    }
    return why;
}

int ca_load_identity(const char *cert_path, const char *key_path, X509 **cert, EVP_PKEY **key)
{
    const char *why = ca_read_pair(cert_path, key_path, cert, key);
    if (why == NULL)
        return 0;
    ca_ssl_log(LOG_LVL_ERR, "event=identity_load_failed cert=%s key=%s reason=%s", cert_path,
               key_path, why);
    return -1;
}

static int ca_write_bio(BIO *b, const char *path, int mode)
{
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    if (n <= 0 || util_write_file(path, p, (size_t)n, mode) != 0) {
        log_err("event=ca_write_failed path=%s error=\"%s\"", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int ca_write_cert(const char *path, X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    int rc = -1;
    if (b != NULL && PEM_write_bio_X509(b, x) == 1)
        rc = ca_write_bio(b, path, 0644);
    else
        ca_ssl_log(LOG_LVL_ERR, "event=ca_write_failed path=%s", path);
    BIO_free(b);
    return rc;
}

static int ca_write_key(const char *path, EVP_PKEY *k)
{
    /* A secure-memory BIO is cleansed when freed: no copy of the private
     * key lingers in freed heap. */
    BIO *b = BIO_new(BIO_s_secmem());
    int rc = -1;
    if (b != NULL && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) == 1)
        rc = ca_write_bio(b, path, 0600);
    else
        ca_ssl_log(LOG_LVL_ERR, "event=ca_write_failed path=%s", path);
    BIO_free(b);
    return rc;
}

/* Certificate first: after a crash in between, the stale key no longer
 * matches the new certificate, which the next start detects. */
static int ca_write_pair(X509 *x, EVP_PKEY *k, const char *cert_path, const char *key_path)
{
    if (ca_write_cert(cert_path, x) != 0)
        return -1;
    return ca_write_key(key_path, k);
}

/* ---- keys and certificate building ---- */

static const struct ca_key_kind *ca_key_kind_find(const char *type)
{
    for (size_t i = 0; type != NULL && i < ARRAY_LEN(ca_key_kinds); i++)
        if (strcmp(type, ca_key_kinds[i].name) == 0)
            return &ca_key_kinds[i];
    return NULL;
}

int ca_key_type_ok(const char *type)
{
    return ca_key_kind_find(type) != NULL;
}

EVP_PKEY *ca_keygen(const char *type)
{
    const struct ca_key_kind *kind = ca_key_kind_find(type);
    EVP_PKEY *k;
    if (kind == NULL) {
        log_err("event=keygen_failed reason=unknown_type type=%s", type ? type : "");
        return NULL;
    }
    if (kind->rsa_bits != 0)
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", kind->rsa_bits);
    else
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (k == NULL)
        ca_ssl_log(LOG_LVL_ERR, "event=keygen_failed type=%s", type);
    return k;
}

void ca_pkey_free(EVP_PKEY *k)
{
    EVP_PKEY_free(k);
}

void ca_cert_free(X509 *x)
{
    X509_free(x);
}

int ca_set_random_serial(X509 *x)
{
    BIGNUM *bn = BN_new();
    ASN1_INTEGER *ai = NULL;
    int ok = bn != NULL;
    /* 159 random bits keep the top bit of 20 octets clear, so the DER
     * INTEGER is positive and within RFC 5280's 20 octets.  Zero, which is
     * not a valid serial, is drawn again. */
    while (ok && (ok = BN_rand(bn, 159, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1) &&
           BN_is_zero(bn))
        ;
    ok = ok && (ai = BN_to_ASN1_INTEGER(bn, NULL)) != NULL && X509_set_serialNumber(x, ai) == 1;
    ASN1_INTEGER_free(ai);
    BN_free(bn);
    return ok ? 0 : -1;
}

/* A v3 certificate for the public half of pub named CN=cn, issued by issuer
 * (NULL: self-issued), valid for days from now; extensions and signature
 * are added by the caller. */
static X509 *ca_cert_new(EVP_PKEY *pub, const char *cn, X509 *issuer, int days)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    int ok = x != NULL && name != NULL && X509_set_version(x, X509_VERSION_3) == 1 &&
             ca_set_random_serial(x) == 0 &&
             X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                        (const unsigned char *)cn, -1, -1, 0) == 1 &&
             X509_set_subject_name(x, name) == 1 &&
             X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) == 1 &&
             X509_gmtime_adj(X509_getm_notBefore(x), -CA_BACKDATE_S) != NULL &&
             X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL) != NULL &&
             X509_set_pubkey(x, pub) == 1;
    X509_NAME_free(name);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static int ca_add_exts(X509 *x, X509 *issuer, const struct ca_ext *exts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        X509V3_CTX ctx;
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
        X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, &ctx, exts[i].nid, exts[i].value);
        int ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;
        X509_EXTENSION_free(ext);
        if (!ok)
            return -1;
    }
    return 0;
}

X509 *ca_issue(const struct ca *ca, EVP_PKEY *pub, const char *cn, int days,
               const struct ca_ext *exts, size_t n, GENERAL_NAMES *san)
{
    X509 *x = ca_cert_new(pub, cn, ca->cert, days);
    /* Nothing outlives the CA: the chain would be invalid from then on. */
    const ASN1_TIME *ca_end = X509_get0_notAfter(ca->cert);
    int ok = x != NULL &&
             (ASN1_TIME_compare(X509_get0_notAfter(x), ca_end) <= 0 ||
              X509_set1_notAfter(x, ca_end) == 1) &&
             ca_add_exts(x, ca->cert, exts, n) == 0 &&
             (san == NULL || X509_add1_ext_i2d(x, NID_subject_alt_name, san, 0, 0) == 1) &&
             X509_sign(x, ca->key, EVP_sha256()) > 0;
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static X509 *ca_make_root(EVP_PKEY *key, const char *cn, int days)
{
    X509 *x = ca_cert_new(key, cn, NULL, days);
    int ok = x != NULL && ca_add_exts(x, NULL, ca_exts_root, ARRAY_LEN(ca_exts_root)) == 0 &&
             X509_sign(x, key, EVP_sha256()) > 0;
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Whole days until x expires; negative once expired.  INT_MIN if unknown. */
static int ca_days_left(X509 *x)
{
    int days = 0, secs = 0;
    if (ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)) != 1)
        return INT_MIN;
    return days;
}

/* ---- the CA itself ---- */

static void ca_check_key_mode(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && (st.st_mode & 077) != 0)
        log_warn("event=ca_key_permissions path=%s mode=%03o hint=\"chmod 600\"", path,
                 (unsigned)(st.st_mode & 0777));
}

static int ca_load(struct ca *ca)
{
    if (ca_load_identity(ca->cert_path, ca->key_path, &ca->cert, &ca->key) != 0)
        return -1;
    if (X509_check_ca(ca->cert) == 0) {
        log_err("event=ca_open_failed path=%s reason=not_a_ca_certificate", ca->cert_path);
        return -1;
    }
    ca_check_key_mode(ca->key_path);
    int left = ca_days_left(ca->cert);
    if (left < CA_RENEW_DAYS)
        log_warn("event=ca_expiring path=%s days_left=%d", ca->cert_path, left);
    log_info("event=ca_loaded path=%s days_left=%d", ca->cert_path, left);
    return 0;
}

static int ca_create(struct ca *ca, const struct conf *cf)
{
    const char *type = cf->ca_key_type && *cf->ca_key_type ? cf->ca_key_type : CA_DEFAULT_KEY_TYPE;
    const char *cn = cf->ca_common_name && *cf->ca_common_name ? cf->ca_common_name : CA_DEFAULT_CN;
    if (cf->ca_validity_days <= 0) {
        log_err("event=ca_create_failed reason=bad_validity days=%d", cf->ca_validity_days);
        return -1;
    }
    if (util_mkdirs(cf->ca_dir, 0700) != 0) {
        log_err("event=ca_create_failed path=%s error=\"%s\"", cf->ca_dir, strerror(errno));
        return -1;
    }
    ca->key = ca_keygen(type);
    if (ca->key == NULL)
        return -1;
    ca->cert = ca_make_root(ca->key, cn, cf->ca_validity_days);
    if (ca->cert == NULL) {
        ca_ssl_log(LOG_LVL_ERR, "event=ca_create_failed path=%s", cf->ca_dir);
        return -1;
    }
    if (ca_write_pair(ca->cert, ca->key, ca->cert_path, ca->key_path) != 0)
        return -1;
    log_info("event=ca_created path=%s key_type=%s days=%d", ca->cert_path, type,
             cf->ca_validity_days);
    return 0;
}

/* Precomputes what the loop serves (DER, PEM) and the one-CA trust store. */
static int ca_finish(struct ca *ca)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p = NULL;
    long n = 0;
    int ok = b != NULL && PEM_write_bio_X509(b, ca->cert) == 1 && (n = BIO_get_mem_data(b, &p)) > 0;
    if (ok)
        ca->pem = xstrndup(p, (size_t)n);
    BIO_free(b);
    ok = ok && ca_i2d(ca->cert, ASN1_ITEM_rptr(X509), &ca->der, &ca->der_len) == 0;
    ok = ok && (ca->store = X509_STORE_new()) != NULL &&
         X509_STORE_add_cert(ca->store, ca->cert) == 1;
    if (!ok)
        ca_ssl_log(LOG_LVL_ERR, "event=ca_open_failed path=%s", ca->cert_path);
    return ok ? 0 : -1;
}

/* 0 both exist, 1 neither exists, -1 otherwise (logged). */
static int ca_files_state(const struct ca *ca, const char *dir)
{
    int have_cert = ca_file_exists(ca->cert_path);
    int have_key = ca_file_exists(ca->key_path);
    if (have_cert < 0 || have_key < 0)
        return -1;
    if (have_cert != have_key) {
        /* Never recreate silently: a new CA orphans every enrolled device. */
        log_err("event=ca_open_failed path=%s reason=incomplete_ca missing=%s hint=\"restore "
                "it; removing both files creates a new CA and orphans enrolled devices\"",
                dir, have_cert ? "ca.key" : "ca.crt");
        return -1;
    }
    return have_cert ? 0 : 1;
}

struct ca *ca_open(const struct conf *cf)
{
    if (cf->ca_dir == NULL || *cf->ca_dir == '\0') {
        log_err("event=ca_open_failed reason=no_ca_dir");
        return NULL;
    }
    struct ca *ca = xcalloc(1, sizeof(*ca));
    ca->cert_path = xasprintf("%s/ca.crt", cf->ca_dir);
    ca->key_path = xasprintf("%s/ca.key", cf->ca_dir);
    int state = ca_files_state(ca, cf->ca_dir);
    int rc = state < 0 ? -1 : state == 0 ? ca_load(ca) : ca_create(ca, cf);
    if (rc == 0)
        rc = ca_finish(ca);
    if (rc != 0) {
        ca_free(ca);
        return NULL;
    }
    return ca;
}

void ca_free(struct ca *ca)
{
    if (ca == NULL)
        return;
    X509_free(ca->cert);
    EVP_PKEY_free(ca->key);
    X509_STORE_free(ca->store);
    free(ca->der);
    free(ca->pem);
    free(ca->cert_path);
    free(ca->key_path);
    free(ca);
}

const unsigned char *ca_cert_der(const struct ca *ca, size_t *len)
{
    *len = ca->der_len;
    return ca->der;
}

const char *ca_cert_pem(const struct ca *ca)
{
    return ca->pem;
}

const char *ca_cert_path(const struct ca *ca)
{
    return ca->cert_path;
}

X509 *ca_cert(const struct ca *ca)
{
    return ca->cert;
}

EVP_PKEY *ca_key(const struct ca *ca)
{
    return ca->key;
}

X509_STORE *ca_store(const struct ca *ca)
{
    return ca->store;
}

/* ---- server certificate ---- */

/* A DNS name, loosely: what may sit in a dNSName SAN (wildcards included). */
static int ca_dns_name_ok(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n <= 253 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._*") == n;
}

static GENERAL_NAME *ca_general_name(const char *s)
{
    ASN1_OCTET_STRING *ip = a2i_IPADDRESS(s);
    GENERAL_NAME *g = GENERAL_NAME_new();
    if (g != NULL && ip != NULL) {
        GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
        return g;
    }
    ASN1_IA5STRING *dns = ip == NULL && ca_dns_name_ok(s) ? ASN1_IA5STRING_new() : NULL;
    if (g != NULL && dns != NULL && ASN1_STRING_set(dns, s, -1) == 1) {
        GENERAL_NAME_set0_value(g, GEN_DNS, dns);
        return g;
    }
    ASN1_OCTET_STRING_free(ip);
    ASN1_IA5STRING_free(dns);
    GENERAL_NAME_free(g);
    return NULL;
}

static int ca_names_find(const GENERAL_NAMES *gens, const GENERAL_NAME *g)
{
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++)
        if (GENERAL_NAME_cmp(sk_GENERAL_NAME_value(gens, i), (GENERAL_NAME *)g) == 0)
            return 1;
    return 0;
}

/* The SANs for a space-separated list, duplicates dropped; NULL when the
 * list is empty or holds a name that is neither an IP nor a DNS name. */
static GENERAL_NAMES *ca_parse_names(const char *names)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    char *copy = xstrdup(names), *save = NULL;
    int ok = gens != NULL;
    for (char *t = strtok_r(copy, " \t", &save); ok && t != NULL;
         t = strtok_r(NULL, " \t", &save)) {
        GENERAL_NAME *g = ca_general_name(t);
        if (g == NULL) {
            log_err("event=server_cert_failed reason=bad_name name=\"%s\"", t);
            ok = 0;
        } else if (ca_names_find(gens, g) || sk_GENERAL_NAME_push(gens, g) <= 0) {
            GENERAL_NAME_free(g);
        }
    }
    free(copy);
    if (!ok || sk_GENERAL_NAME_num(gens) <= 0) {
        GENERAL_NAMES_free(gens);
        return NULL;
    }
    return gens;
}

/* 1 when x's SANs are exactly want (in any order).  want holds no
 * duplicates, so equal counts plus inclusion mean equal sets. */
static int ca_sans_equal(X509 *x, const GENERAL_NAMES *want)
{
    GENERAL_NAMES *have = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int eq = have != NULL && sk_GENERAL_NAME_num(have) == sk_GENERAL_NAME_num(want);
    for (int i = 0; eq && i < sk_GENERAL_NAME_num(want); i++)
        eq = ca_names_find(have, sk_GENERAL_NAME_value(want, i));
    GENERAL_NAMES_free(have);
    return eq;
}

/* 1 when ca issued x: issuer name/AKI match and the signature verifies. */
static int ca_signed_by(const struct ca *ca, X509 *x)
{
    return X509_check_issued(ca->cert, x) == X509_V_OK && X509_verify(x, ca->key) == 1;
}

/* NULL when the pair on disk can stay, else why it must be regenerated. */
static const char *ca_server_stale(const struct ca *ca, const GENERAL_NAMES *want,
                                   const char *cert_path, const char *key_path)
{
    X509 *x = NULL;
    EVP_PKEY *k = NULL;
    const char *why = NULL;
    if (ca_file_exists(cert_path) != 1)
        why = "missing_cert";
    else if (ca_file_exists(key_path) != 1)
        why = "missing_key";
    else if ((why = ca_read_pair(cert_path, key_path, &x, &k)) != NULL)
        ;
    else if (!ca_signed_by(ca, x))
        why = "other_ca";
    else if (!ca_sans_equal(x, want))
        why = "names_changed";
    else if (ca_days_left(x) < CA_RENEW_DAYS)
        why = "expiring";
    X509_free(x);
    EVP_PKEY_free(k);
    ERR_clear_error(); /* expected failures, reported as why */
    return why;
}

static int ca_server_create(const struct ca *ca, GENERAL_NAMES *san, const char *cn,
                            const char *cert_path, const char *key_path, int days)
{
    EVP_PKEY *k = ca_keygen("ec256");
    X509 *x = NULL;
    int rc = -1;
    if (k != NULL)
        x = ca_issue(ca, k, cn, days, ca_exts_server, ARRAY_LEN(ca_exts_server), san);
    if (k != NULL && x == NULL)
        ca_ssl_log(LOG_LVL_ERR, "event=server_cert_failed path=%s", cert_path);
    if (x != NULL)
        rc = ca_write_pair(x, k, cert_path, key_path);
    X509_free(x);
    EVP_PKEY_free(k);
    return rc;
}

int ca_ensure_server_cert(struct ca *ca, const char *names, const char *cert_path,
                          const char *key_path, int days)
{
    GENERAL_NAMES *want = names != NULL ? ca_parse_names(names) : NULL;
    if (want == NULL) {
        log_err("event=server_cert_failed reason=no_valid_names");
        return -1;
    }
    if (days <= 0 || days > CA_SERVER_MAX_DAYS)
        days = CA_SERVER_MAX_DAYS;
    const char *why = ca_server_stale(ca, want, cert_path, key_path);
    int rc = 0;
    if (why != NULL) {
        size_t skip = strspn(names, " \t");
        char *cn = xstrndup(names + skip, strcspn(names + skip, " \t"));
        rc = ca_server_create(ca, want, cn, cert_path, key_path, days);
        if (rc == 0)
            log_info("event=server_cert_created path=%s reason=%s names=\"%s\" days=%d", cert_path,
                     why, names, days);
        free(cn);
    }
    GENERAL_NAMES_free(want);
    return rc;
}

/* ---- device identities ---- */

static int ca_udid_ok(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n <= 64 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._") == n;
}

X509 *ca_issue_device_cert(const struct ca *ca, EVP_PKEY *key, const char *udid, int days)
{
    if (key == NULL || udid == NULL || !ca_udid_ok(udid) || days <= 0) {
        /* The UDID comes from the device: described, never echoed. */
        log_err("event=device_cert_failed reason=%s days=%d",
                key == NULL                         ? "no_key"
                : udid == NULL || !ca_udid_ok(udid) ? "bad_udid"
                                                    : "bad_days",
                days);
        return NULL;
    }
    X509 *x;
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA)
        x = ca_issue(ca, key, udid, days, ca_exts_device_rsa, ARRAY_LEN(ca_exts_device_rsa), NULL);
    else
        x = ca_issue(ca, key, udid, days, ca_exts_device_ec, ARRAY_LEN(ca_exts_device_ec), NULL);
    if (x == NULL)
        ca_ssl_log(LOG_LVL_ERR, "event=device_cert_failed udid=%s", udid);
    else
        log_info("event=device_cert_issued udid=%s days=%d", udid, days);
    return x;
}

int ca_cert_fingerprint(X509 *x, char out[CA_FINGERPRINT_LEN])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (X509_digest(x, EVP_sha256(), md, &n) != 1 || n != 32) {
        ca_ssl_log(LOG_LVL_ERR, "event=fingerprint_failed");
        out[0] = '\0';
        return -1;
    }
    util_hex(md, n, out);
    return 0;
}

char *ca_cert_cn(X509 *x)
{
    X509_NAME *name = X509_get_subject_name(x);
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (i < 0)
        return NULL;
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
    char *cn = NULL;
    /* An embedded NUL would let "a\0b" pass for "a" in C string compares. */
    if (n >= 0 && (n == 0 || memchr(utf8, '\0', (size_t)n) == NULL))
        cn = xstrndup((const char *)utf8, (size_t)n);
    OPENSSL_free(utf8);
    ERR_clear_error();
    return cn;
}
