/* ca_msg.c: what enrollment sends and receives: PKCS#12 identities, random
 * passwords, CMS-signed profiles and device replies, chain checks. */
#include "ca.h"

#include "../core/log.h"
#include "../core/util.h"
#include "ca_int.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

/* Iterations for both PBE and MAC.  The passwords we generate carry ~140
 * bits, so stretching adds nothing; 2048 is what every importer accepts. */
#define CA_P12_ITER 2048

static const struct ca_p12_mode {
    const char *name;
    int nid_pbe; /* key bag and certificate bag encryption */
    const EVP_MD *(*mac_md)(void);
} ca_p12_modes[] = {
    /* The pre-OpenSSL-3 layout: the one every iOS and macOS release imports. */
    {"legacy", NID_pbe_WithSHA1And3_Key_TripleDES_CBC, EVP_sha1},
    /* PBES2/PBKDF2 (HMAC-SHA256 PRF, OpenSSL's default) with AES-256-CBC. */
    {"aes", NID_aes_256_cbc, EVP_sha256},
};

/* Letters and digits minus the look-alikes I, O, l, 0 and 1: safe to read
 * aloud, to put in a plist and to paste into a shell. */
static const char ca_pw_alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

static const struct ca_p12_mode *ca_p12_mode_find(const char *mode)
{
    for (size_t i = 0; mode != NULL && i < ARRAY_LEN(ca_p12_modes); i++)
        if (strcmp(mode, ca_p12_modes[i].name) == 0)
            return &ca_p12_modes[i];
    return NULL;
}

int ca_pkcs12_mode_ok(const char *mode)
{
    return ca_p12_mode_find(mode) != NULL;
}

/* A stack borrowing the n certificates of v (free with sk_X509_free). */
static STACK_OF(X509) * ca_stack(X509 *const *v, size_t n)
{
    STACK_OF(X509) *sk = sk_X509_new_null();
    for (size_t i = 0; sk != NULL && i < n; i++) {
        if (sk_X509_push(sk, v[i]) <= 0) {
            sk_X509_free(sk);
            return NULL;
        }
    }
    return sk;
}

int ca_pkcs12(EVP_PKEY *key, X509 *cert, X509 *const *chain, size_t nchain,
              const char *friendly_name, const char *password, const char *mode,
              unsigned char **der, size_t *len)
{
    const struct ca_p12_mode *m = ca_p12_mode_find(mode);
    *der = NULL;
    *len = 0;
    if (m == NULL || password == NULL || *password == '\0' || key == NULL || cert == NULL) {
        log_err("event=pkcs12_failed reason=%s", m == NULL ? "unknown_mode" : "bad_arguments");
        return -1;
    }
    STACK_OF(X509) *ca = ca_stack(chain, nchain);
    /* mac_iter -1 builds it without a MAC: PKCS12_create() has no digest
     * parameter (OpenSSL 3 picks SHA-256), so PKCS12_set_mac() adds ours. */
    PKCS12 *p12 = ca == NULL ? NULL
                             : PKCS12_create_ex(password, friendly_name, key, cert, ca, m->nid_pbe,
                                                m->nid_pbe, CA_P12_ITER, -1, 0, NULL, NULL);
    int ok = p12 != NULL &&
             PKCS12_set_mac(p12, password, -1, NULL, 0, CA_P12_ITER, m->mac_md()) == 1 &&
             ca_i2d(p12, ASN1_ITEM_rptr(PKCS12), der, len) == 0;
    if (!ok)
        ca_ssl_log(LOG_LVL_ERR, "event=pkcs12_failed mode=%s", m->name);
    PKCS12_free(p12);
    sk_X509_free(ca);
    return ok ? 0 : -1;
}

int ca_random_password(char *out, size_t size)
{
    const size_t n = sizeof(ca_pw_alphabet) - 1;
    /* Bytes at or above limit are drawn again so that every character is
     * equally likely (256 is not a multiple of n). */
    const unsigned limit = 256 - 256 % (unsigned)n;
    unsigned char buf[32];
    size_t i = 0;
    if (size < 2)
        return -1;
    while (i < size - 1) {
        if (RAND_bytes(buf, sizeof(buf)) != 1) {
            ca_ssl_log(LOG_LVL_ERR, "event=random_failed");
            out[0] = '\0';
            return -1;
        }
        for (size_t j = 0; j < sizeof(buf) && i < size - 1; j++)
            if (buf[j] < limit)
                out[i++] = ca_pw_alphabet[buf[j] % n];
    }
    out[i] = '\0';
    OPENSSL_cleanse(buf, sizeof(buf));
    return 0;
}

/* ---- trust ---- */

X509_STORE *ca_store_load(const char *path)
{
    X509_STORE *st = X509_STORE_new();
    if (st == NULL || X509_STORE_load_file(st, path) != 1) {
        ca_ssl_log(LOG_LVL_ERR, "event=trust_store_failed path=%s", path);
        X509_STORE_free(st);
        return NULL;
    }
    return st;
}

void ca_store_free(X509_STORE *st)
{
    X509_STORE_free(st);
}

/* 0 when x chains to a certificate of trust (untrusted: intermediates, may
 * be NULL) and everything is valid now.  The store's parameters set no
 * purpose, so no EKU is required: callers know what x is for. */
static int ca_chain_check(X509_STORE *trust, X509 *x, STACK_OF(X509) * untrusted)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int ok = ctx != NULL && X509_STORE_CTX_init(ctx, trust, x, untrusted) == 1 &&
             X509_verify_cert(ctx) == 1;
    if (!ok) {
        int err = ctx != NULL ? X509_STORE_CTX_get_error(ctx) : X509_V_ERR_OUT_OF_MEM;
        char *cn = ca_cert_cn(x);
        if (cn != NULL)
            log_safe(cn);
        log_warn("event=cert_untrusted cn=\"%s\" reason=\"%s\"", cn ? cn : "",
                 X509_verify_cert_error_string(err));
        free(cn);
    }
    X509_STORE_CTX_free(ctx);
    ERR_clear_error();
    return ok ? 0 : -1;
}

int ca_verify_issued(const struct ca *ca, X509 *x)
{
    return ca_chain_check(ca_store(ca), x, NULL);
}

int ca_issued_by(const struct ca *ca, X509 *x)
{
    X509 *root = ca_cert(ca);
    EVP_PKEY *pub = X509_get0_pubkey(root);
    int yes = x != NULL && pub != NULL && X509_check_issued(root, x) == X509_V_OK &&
              X509_verify(x, pub) == 1;
    ERR_clear_error();
    return yes;
}

/* ---- CMS ---- */

int ca_cms_sign(X509 *cert, EVP_PKEY *key, X509 *const *extra, size_t nextra, const void *data,
                size_t len, unsigned char **der, size_t *der_len)
{
    *der = NULL;
    *der_len = 0;
    if (len > INT_MAX) {
        log_err("event=cms_sign_failed reason=too_large bytes=%zu", len);
        return -1;
    }
    STACK_OF(X509) *certs = ca_stack(extra, nextra);
    BIO *in = BIO_new_mem_buf(data, (int)len);
    /* CMS_BINARY: sign the plist byte for byte.  Without it OpenSSL applies
     * S/MIME text canonicalisation (LF -> CRLF) to the embedded content. */
    CMS_ContentInfo *cms =
        certs != NULL && in != NULL ? CMS_sign(cert, key, certs, in, CMS_BINARY) : NULL;
    int ok = cms != NULL && ca_i2d(cms, ASN1_ITEM_rptr(CMS_ContentInfo), der, der_len) == 0;
    if (!ok)
        ca_ssl_log(LOG_LVL_ERR, "event=cms_sign_failed");
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    sk_X509_free(certs);
    return ok ? 0 : -1;
}

/* Parses DER into a SignedData with attached content; NULL otherwise. */
static CMS_ContentInfo *ca_cms_parse(const void *der, size_t len)
{
    const unsigned char *p = der;
    CMS_ContentInfo *cms = NULL;
    if (der != NULL && len > 0 && len <= LONG_MAX)
        cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
    const char *why = cms == NULL                                           ? "not_cms"
                      : OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed ? "not_signed_data"
                      : CMS_get0_content(cms) == NULL || *CMS_get0_content(cms) == NULL ? "detached"
                                                                                        : NULL;
    if (why != NULL) {
        log_warn("event=cms_verify_failed reason=%s bytes=%zu", why, len);
        CMS_ContentInfo_free(cms);
        ERR_clear_error();
        return NULL;
    }
    return cms;
}

/* After a successful CMS_verify: the one signer's certificate, up-ref'ed.
 * One signer only, so that "the signer" in the caller means one thing. */
static X509 *ca_cms_signer(CMS_ContentInfo *cms)
{
    STACK_OF(X509) *signers = CMS_get0_signers(cms);
    X509 *x = NULL;
    if (signers != NULL && sk_X509_num(signers) == 1) {
        x = sk_X509_value(signers, 0);
        X509_up_ref(x);
    } else {
        log_warn("event=cms_verify_failed reason=signer_count count=%d",
                 signers != NULL ? sk_X509_num(signers) : 0);
    }
    sk_X509_free(signers);
    return x;
}

/* The message's certificates serve as untrusted intermediates. */
static int ca_cms_chain(CMS_ContentInfo *cms, X509 *signer, X509_STORE *trust)
{
    STACK_OF(X509) *certs = CMS_get1_certs(cms);
    int rc = ca_chain_check(trust, signer, certs);
    sk_X509_pop_free(certs, X509_free);
    return rc;
}

static void ca_bio_take(BIO *b, unsigned char **out, size_t *len)
{
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    if (n < 0)
        n = 0;
    *out = xmalloc((size_t)n + 1);
    if (n > 0)
        memcpy(*out, p, (size_t)n);
    (*out)[n] = '\0';
    *len = (size_t)n;
}

int ca_cms_verify(const void *der, size_t len, X509_STORE *trust, unsigned char **content,
                  size_t *content_len, X509 **signer)
{
    *content = NULL;
    *content_len = 0;
    if (signer != NULL)
        *signer = NULL;
    CMS_ContentInfo *cms = ca_cms_parse(der, len);
    BIO *out = cms != NULL ? BIO_new(BIO_s_mem()) : NULL;
    X509 *who = NULL;
    /* The chain is checked below, without CMS_verify's S/MIME purpose (a
     * device identity carries clientAuth, not emailProtection). */
    int ok = out != NULL &&
             CMS_verify(cms, NULL, NULL, NULL, out, CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY) == 1;
    if (cms != NULL && !ok)
        ca_ssl_log(LOG_LVL_WARN, "event=cms_verify_failed reason=bad_signature");
    ok = ok && (who = ca_cms_signer(cms)) != NULL;
    ok = ok && (trust == NULL || ca_cms_chain(cms, who, trust) == 0);
    if (ok)
        ca_bio_take(out, content, content_len);
    if (ok && signer != NULL)
        *signer = who;
    else
        X509_free(who);
    BIO_free(out);
    CMS_ContentInfo_free(cms);
    return ok ? 0 : -1;
}
