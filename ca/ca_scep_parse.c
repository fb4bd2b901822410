/* ca_scep_parse.c: SCEP requests (RFC 8894 3.2/3.3) from the pkiMessage
 * down to the CSR, plus the BER and base64 guards device messages go
 * through before OpenSSL's decoder sees them. */
#include "ca_scep.h"
#include "../core/log.h"
#include "../core/util.h"
#include "ca_int.h"
#include "ca_scep_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* ---- BER ---- */

/* One TLV at p (avail bytes): its header length, content length (-1 for
 * indefinite) and constructed flag.  -1 when malformed. */
static int ca_ber_header(const unsigned char *p, size_t avail, size_t *hlen, long *clen, int *cons)
{
    size_t i = 1;
    if (avail < 2)
        return -1;
    *cons = (p[0] & 0x20) != 0;
    if ((p[0] & 0x1f) == 0x1f) /* high tag number: base-128 digits */
        while (i < avail && i < 6 && (p[i++] & 0x80))
            ;
    if (i >= avail || i >= 6)
        return -1;
    unsigned char b = p[i++];
    if (b == 0x80) {
        *clen = -1;
        *hlen = i;
        return *cons ? 0 : -1; /* indefinite length only when constructed */
    }
    size_t n = b & 0x80 ? (size_t)(b & 0x7f) : 0, v = b & 0x80 ? 0 : b;
    if (n > 4 || i + n > avail)
        return -1;
    for (size_t k = 0; k < n; k++)
        v = v << 8 | p[i++];
    *hlen = i;
    *clen = (long)v;
    return v <= avail - i ? 0 : -1;
}

/* Walks the TLVs in p..p+len (until an end-of-contents when eoc); *used is
 * what they took. */
static int ca_ber_walk(const unsigned char *p, size_t len, int depth, int eoc, size_t *used)
{
    size_t off = 0;
    if (depth < 0)
        return -1;
    while (off < len) {
        size_t hlen, inner;
        long clen;
        int cons;
        if (eoc && len - off >= 2 && p[off] == 0 && p[off + 1] == 0) {
            *used = off + 2;
            return 0;
        }
        if (ca_ber_header(p + off, len - off, &hlen, &clen, &cons) != 0)
            return -1;
        off += hlen;
        if (clen < 0) {
            if (ca_ber_walk(p + off, len - off, depth - 1, 1, &inner) != 0)
                return -1;
        } else {
            inner = (size_t)clen;
            if (cons && ca_ber_walk(p + off, inner, depth - 1, 0, &inner) != 0)
                return -1;
        }
        off += inner;
    }
    *used = off;
    return eoc ? -1 : 0; /* indefinite content must end in 00 00 */
}

int ca_ber_check(const unsigned char *der, size_t len, int max_depth)
{
    size_t hlen, used;
    long clen;
    int cons;
    /* Exactly one top-level value, taking all the bytes. */
    if (der == NULL || len == 0 || ca_ber_header(der, len, &hlen, &clen, &cons) != 0)
        return -1;
    size_t total = clen < 0 ? len : hlen + (size_t)clen;
    if (total != len)
        return -1;
    return ca_ber_walk(der, len, max_depth, 0, &used) == 0 && used == len ? 0 : -1;
}

/* ---- base64 ---- */

int ca_base64_decode(const char *in, size_t inlen, size_t max, unsigned char **out, size_t *outlen)
{
    char *clean = xmalloc(inlen + 1);
    size_t n = 0;
    for (size_t i = 0; i < inlen; i++) {
        char c = in[i] == ' ' ? '+' : in[i];
        if (c != '\r' && c != '\n' && c != '\t')
            clean[n++] = c;
    }
    *out = NULL;
    *outlen = 0;
    /* EVP_DecodeBlock wants whole quads and counts padding as output. */
    if (n == 0 || n % 4 != 0 || n / 4 * 3 > max + 2 || n > INT_MAX) {
        free(clean);
        return -1;
    }
    unsigned char *buf = xmalloc(n / 4 * 3 + 1);
    int got = EVP_DecodeBlock(buf, (const unsigned char *)clean, (int)n);
    size_t pad = (clean[n - 1] == '=') + (clean[n - 2] == '=');
    free(clean);
    if (got < 0 || (size_t)got < pad || (size_t)got - pad > max) {
        free(buf);
        return -1;
    }
    *out = buf;
    *outlen = (size_t)got - pad;
    return 0;
}

/* ---- the pkiMessage ---- */

CMS_SignerInfo *ca_scep_signer_info(CMS_ContentInfo *cms)
{
    STACK_OF(CMS_SignerInfo) *sis = CMS_get0_SignerInfos(cms);
    return sis != NULL && sk_CMS_SignerInfo_num(sis) == 1 ? sk_CMS_SignerInfo_value(sis, 0) : NULL;
}

static int ca_scep_fail(struct ca_scep_req *r, int fail, const char *why)
{
    r->fail = fail;
    r->why = why;
    return 0;
}

/* The single value of a signed attribute, as whatever string type it has. */
static const ASN1_STRING *ca_scep_get_attr(const struct ca_scep *sc, CMS_SignerInfo *si, int oid)
{
    int i = CMS_signed_get_attr_by_OBJ(si, sc->oid[oid], -1);
    X509_ATTRIBUTE *a = i >= 0 ? CMS_signed_get_attr(si, i) : NULL;
    ASN1_TYPE *t =
        a != NULL && X509_ATTRIBUTE_count(a) == 1 ? X509_ATTRIBUTE_get0_type(a, 0) : NULL;
    if (t == NULL || t->type == V_ASN1_BOOLEAN || t->type == V_ASN1_NULL ||
        t->type == V_ASN1_OBJECT || t->type == V_ASN1_SEQUENCE || t->type == V_ASN1_SET)
        return NULL;
    return t->value.asn1_string;
}

/* transactionID, senderNonce, messageType: without the first two no answer
 * can be matched to the request. */
static int ca_scep_read_attrs(const struct ca_scep *sc, CMS_SignerInfo *si, struct ca_scep_req *r)
{
    const ASN1_STRING *tx = ca_scep_get_attr(sc, si, CA_SCEP_OID_TRANSACTION_ID);
    const ASN1_STRING *nn = ca_scep_get_attr(sc, si, CA_SCEP_OID_SENDER_NONCE);
    const ASN1_STRING *mt = ca_scep_get_attr(sc, si, CA_SCEP_OID_MESSAGE_TYPE);
    int txlen = tx != NULL ? ASN1_STRING_length(tx) : 0;
    int nlen = nn != NULL ? ASN1_STRING_length(nn) : 0;
    if (txlen <= 0 || txlen >= CA_SCEP_TXID_MAX || nlen <= 0 || nlen > CA_SCEP_NONCE_MAX)
        return -1;
    memcpy(r->txid, ASN1_STRING_get0_data(tx), (size_t)txlen);
    r->txid[txlen] = '\0';
    /* It goes into log lines and back into a PrintableString. */
    for (char *c = r->txid; *c; c++)
        if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?",
                   *c) == NULL)
            return -1;
    memcpy(r->nonce, ASN1_STRING_get0_data(nn), (size_t)nlen);
    r->nonce_len = (size_t)nlen;
    char type[8] = "";
    if (mt != NULL && ASN1_STRING_length(mt) > 0 && ASN1_STRING_length(mt) < (int)sizeof(type))
        memcpy(type, ASN1_STRING_get0_data(mt), (size_t)ASN1_STRING_length(mt));
    r->type = atoi(type);
    return 0;
}

/* The message's signer certificate (up-ref'ed into r) and digest. */
static int ca_scep_read_signer(CMS_ContentInfo *cms, CMS_SignerInfo *si, struct ca_scep_req *r)
{
    X509 *x = NULL;
    X509_ALGOR *dig = NULL;
    const ASN1_OBJECT *obj = NULL;
    if (CMS_set1_signers_certs(cms, NULL, 0) < 0)
        ERR_clear_error();
    CMS_SignerInfo_get0_algs(si, NULL, &x, &dig, NULL);
    if (x == NULL)
        return -1;
    X509_up_ref(x);
    r->signer = x;
    if (dig != NULL)
        X509_ALGOR_get0(&obj, NULL, NULL, dig);
    r->digest_nid = obj != NULL ? OBJ_obj2nid(obj) : NID_undef;
    return 0;
}

static CMS_ContentInfo *ca_scep_load(const void *der, size_t len)
{
    if (len > CA_SCEP_MAX_MSG || ca_ber_check(der, len, CA_SCEP_MAX_DEPTH) != 0)
        return NULL;
    BIO *b = BIO_new_mem_buf(der, (int)len);
    CMS_ContentInfo *cms = b != NULL ? d2i_CMS_bio(b, NULL) : NULL;
    BIO_free(b);
    if (cms != NULL &&
        (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed || ca_cms_within_limits(cms) != 0)) {
        CMS_ContentInfo_free(cms);
        cms = NULL;
    }
    return cms;
}

/* CMS_verify checks the signature over the signed attributes and the
 * content (the chain is the caller's business).  out: the content. */
static int ca_scep_verify(CMS_ContentInfo *cms, BIO *out)
{
    ASN1_OCTET_STRING **content = CMS_get0_content(cms);
    if (content == NULL || *content == NULL)
        return -1;
    return CMS_verify(cms, NULL, NULL, NULL, out, CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY) == 1 ? 0
                                                                                               : -1;
}

/* ---- the envelope and the CSR ---- */

/* Opens the pkcsPKIEnvelope in env (DER or BER) with the responder key.
 * The content cipher is recorded in r: the reply uses the same one. */
static int ca_scep_open_envelope(const struct ca_scep *sc, const void *env, size_t len,
                                 struct ca_scep_req *r, BIO *out)
{
    const ASN1_OBJECT *obj = NULL;
    if (ca_ber_check(env, len, CA_SCEP_MAX_DEPTH) != 0)
        return ca_scep_fail(r, CA_SCEP_BADREQUEST, "envelope_malformed");
    BIO *b = BIO_new_mem_buf(env, (int)len);
    PKCS7 *p7 = b != NULL ? d2i_PKCS7_bio(b, NULL) : NULL;
    BIO_free(b);
    if (p7 == NULL || !PKCS7_type_is_enveloped(p7) || p7->d.enveloped->enc_data == NULL) {
        PKCS7_free(p7);
        return ca_scep_fail(r, CA_SCEP_BADREQUEST, "envelope_not_enveloped_data");
    }
    X509_ALGOR_get0(&obj, NULL, NULL, p7->d.enveloped->enc_data->algorithm);
    int nid = obj != NULL ? OBJ_obj2nid(obj) : NID_undef;
    if (!ca_scep_cipher_ok(sc, nid)) {
        PKCS7_free(p7);
        return ca_scep_fail(r, CA_SCEP_BADALG, "unsupported_cipher");
    }
    if (nid == NID_des_cbc && !r->pol->des) {
        PKCS7_free(p7);
        return ca_scep_fail(r, CA_SCEP_BADALG, "des_refused");
    }
    r->cipher_nid = nid;
    snprintf(r->cipher, sizeof(r->cipher), "%s", OBJ_nid2sn(nid));
    int ok = PKCS7_decrypt(p7, sc->key, sc->cert, out, PKCS7_BINARY) == 1;
    PKCS7_free(p7);
    return ok ? 0 : ca_scep_fail(r, CA_SCEP_BADMESSAGECHECK, "envelope_not_for_us");
}

/* Any text a profile's Subject may hold, but nothing that could forge a log
 * line or a quoted log value. */
static int ca_scep_cn_ok(const unsigned char *s, size_t n)
{
    if (n == 0 || n >= CA_SCEP_CN_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] == 0x7f || s[i] == '"' || s[i] == '\\')
            return 0;
    return 1;
}

/* Subject CN and challengePassword. */
static int ca_scep_csr_names(struct ca_scep_req *r)
{
    X509_NAME *name = X509_REQ_get_subject_name(r->csr);
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    unsigned char *cn = NULL;
    int n = i >= 0
                ? ASN1_STRING_to_UTF8(&cn, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)))
                : -1;
    int ok = n > 0 && ca_scep_cn_ok(cn, (size_t)n);
    if (ok) {
        memcpy(r->cn, cn, (size_t)n + 1);
        r->cn_is_udid = util_udid_valid(r->cn, (size_t)n);
    }
    OPENSSL_free(cn);
    if (!ok)
        return ca_scep_fail(r, CA_SCEP_BADREQUEST, n > 0 ? "cn_malformed" : "cn_missing");
    i = X509_REQ_get_attr_by_NID(r->csr, NID_pkcs9_challengePassword, -1);
    X509_ATTRIBUTE *a = i >= 0 ? X509_REQ_get_attr(r->csr, i) : NULL;
    ASN1_TYPE *t = a != NULL ? X509_ATTRIBUTE_get0_type(a, 0) : NULL;
    if (t != NULL && (t->type == V_ASN1_PRINTABLESTRING || t->type == V_ASN1_UTF8STRING ||
                      t->type == V_ASN1_IA5STRING || t->type == V_ASN1_T61STRING)) {
        int len = ASN1_STRING_length(t->value.asn1_string);
        const unsigned char *d = ASN1_STRING_get0_data(t->value.asn1_string);
        if (len <= 0 || len >= CA_SCEP_CHALLENGE_MAX || memchr(d, '\0', (size_t)len) != NULL)
            return ca_scep_fail(r, CA_SCEP_BADREQUEST, "challenge_malformed");
        memcpy(r->challenge, d, (size_t)len);
        r->challenge[len] = '\0';
    }
    return 0;
}

/* RSA of 2048..8192 bits, or EC P-256/P-384; key usage: what the CSR asks
 * for (its extensionRequest), within what the key type allows. */
static int ca_scep_csr_key(struct ca_scep_req *r)
{
    EVP_PKEY *k = X509_REQ_get0_pubkey(r->csr);
    char group[32] = "";
    int rsa = k != NULL && EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA;
    if (k != NULL && !rsa)
        EVP_PKEY_get_group_name(k, group, sizeof(group), NULL);
    int min_bits = r->pol->rsa1024 ? 1024 : 2048;
    if (!(rsa && EVP_PKEY_get_bits(k) >= min_bits && EVP_PKEY_get_bits(k) <= 8192) &&
        strcmp(group, "prime256v1") != 0 && strcmp(group, "secp384r1") != 0)
        return ca_scep_fail(r, CA_SCEP_BADREQUEST, "key_not_allowed");
    int allowed = CA_SCEP_KU_SIGN | (rsa ? CA_SCEP_KU_ENCIPHER : 0);
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(r->csr);
    ASN1_BIT_STRING *ku = exts != NULL ? X509V3_get_d2i(exts, NID_key_usage, NULL, NULL) : NULL;
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    ERR_clear_error();
    if (ku == NULL) {
        r->key_usage = allowed;
        return 0;
    }
    int want = (ASN1_BIT_STRING_get_bit(ku, 0) ? CA_SCEP_KU_SIGN : 0) |
               (ASN1_BIT_STRING_get_bit(ku, 2) ? CA_SCEP_KU_ENCIPHER : 0);
    ASN1_BIT_STRING_free(ku);
    r->key_usage = want & allowed;
    return r->key_usage != 0 ? 0 : ca_scep_fail(r, CA_SCEP_BADREQUEST, "key_usage_not_allowed");
}

static int ca_scep_read_csr(BIO *plain, struct ca_scep_req *r)
{
    char *p = NULL;
    long n = BIO_get_mem_data(plain, &p);
    const unsigned char *q = (const unsigned char *)p;
    if (n > 0)
        r->csr = d2i_X509_REQ(NULL, &q, n);
    if (r->csr == NULL || q != (const unsigned char *)p + n)
        return ca_scep_fail(r, CA_SCEP_BADREQUEST, "csr_malformed");
    if (X509_REQ_verify(r->csr, X509_REQ_get0_pubkey(r->csr)) != 1)
        return ca_scep_fail(r, CA_SCEP_BADMESSAGECHECK, "csr_signature_invalid");
    if (ca_scep_csr_names(r) != 0 || r->fail != CA_SCEP_FAIL_NONE)
        return 0;
    return ca_scep_csr_key(r);
}

/* ---- renewal or new enrollment ---- */

/* A new enrollment's signer: a self-signed certificate (RFC 8894 2.3) with
 * the CSR's key, or (policy) a throwaway key of the client's: the CSR's own
 * signature, checked already, is the proof of possession, and the reply is
 * enveloped for whoever holds the signer's key, i.e. the client. */
static int ca_scep_new_signer(struct ca_scep_req *r)
{
    EVP_PKEY *sk = X509_get0_pubkey(r->signer);
    if (EVP_PKEY_eq(sk, X509_REQ_get0_pubkey(r->csr)) == 1)
        return 0;
    if (!r->pol->throwaway_signer)
        return ca_scep_fail(r, CA_SCEP_BADMESSAGECHECK, "signer_key_not_csr_key");
    if (X509_check_issued(r->signer, r->signer) != X509_V_OK || X509_verify(r->signer, sk) != 1)
        return ca_scep_fail(r, CA_SCEP_BADMESSAGECHECK, "signer_not_self_signed");
    r->throwaway_signer = 1;
    return 0;
}

static int ca_scep_classify(const struct ca *ca, struct ca_scep_req *r)
{
    int ours = ca_issued_by(ca, r->signer);
    if (r->type == CA_SCEP_PKCSREQ && !ours)
        return ca_scep_new_signer(r);
    if (!ours || ca_verify_issued(ca, r->signer) != 0 ||
        X509_check_purpose(r->signer, X509_PURPOSE_SSL_CLIENT, 0) != 1)
        return ca_scep_fail(r, CA_SCEP_BADREQUEST, "renewal_signer_not_ours");
    char *cn = ca_cert_cn(r->signer);
    int same = cn != NULL && strcmp(cn, r->cn) == 0;
    free(cn);
    if (!same)
        return ca_scep_fail(r, CA_SCEP_BADREQUEST, "renewal_cn_mismatch");
    if (ca_cert_fingerprint(r->signer, r->signer_fp) != 0)
        return -1;
    r->renewal = 1;
    return 0;
}

/* After the signature checked out: envelope, CSR, kind of request. */
static int ca_scep_parse_request(const struct ca_scep *sc, const struct ca *ca, BIO *content,
                                 struct ca_scep_req *r)
{
    char *env = NULL;
    long n = BIO_get_mem_data(content, &env);
    if (n <= 0)
        return ca_scep_fail(r, CA_SCEP_BADREQUEST, "no_envelope");
    BIO *plain = BIO_new(BIO_s_mem());
    int rc = plain != NULL ? ca_scep_open_envelope(sc, env, (size_t)n, r, plain) : -1;
    if (rc == 0 && r->fail == CA_SCEP_FAIL_NONE)
        rc = ca_scep_read_csr(plain, r);
    if (rc == 0 && r->fail == CA_SCEP_FAIL_NONE)
        rc = ca_scep_classify(ca, r);
    BIO_free(plain);
    return rc;
}

static void ca_scep_req_init(struct ca_scep_req *r)
{
    memset(r, 0, sizeof(*r));
    r->fail = CA_SCEP_FAIL_NONE;
    r->digest_nid = NID_sha256;
    r->cipher_nid = NID_aes_256_cbc;
}

const struct ca_scep_policy ca_scep_policy_default = {1, 1, 1, 0};

int ca_scep_parse(const struct ca_scep *sc, const struct ca *ca, const void *der, size_t len,
                  struct ca_scep_req *r)
{
    return ca_scep_parse_with(sc, ca, &ca_scep_policy_default, der, len, r);
}

int ca_scep_parse_with(const struct ca_scep *sc, const struct ca *ca,
                       const struct ca_scep_policy *pol, const void *der, size_t len,
                       struct ca_scep_req *r)
{
    ca_scep_req_init(r);
    r->pol = pol;
    CMS_ContentInfo *cms = ca_scep_load(der, len);
    CMS_SignerInfo *si = cms != NULL ? ca_scep_signer_info(cms) : NULL;
    BIO *content = BIO_new(BIO_s_mem());
    int rc = si != NULL && content != NULL && ca_scep_read_attrs(sc, si, r) == 0 &&
                     ca_scep_read_signer(cms, si, r) == 0
                 ? 0
                 : -1;
    if (rc != 0)
        log_warn("event=scep_request_refused reason=not_a_scep_request bytes=%zu", len);
    else if (!ca_scep_digest_ok(r->digest_nid))
        ca_scep_fail(r, CA_SCEP_BADALG, "unsupported_digest");
    else if (r->digest_nid == NID_sha1 && !pol->sha1)
        ca_scep_fail(r, CA_SCEP_BADALG, "sha1_refused");
    else if (ca_scep_verify(cms, content) != 0)
        ca_scep_fail(r, CA_SCEP_BADMESSAGECHECK, "signature_invalid");
    else if (r->type != CA_SCEP_PKCSREQ && r->type != CA_SCEP_RENEWALREQ)
        ca_scep_fail(r, CA_SCEP_BADREQUEST, "unsupported_message_type");
    else
        rc = ca_scep_parse_request(sc, ca, content, r);
    if (rc == 0 && r->fail != CA_SCEP_FAIL_NONE)
        log_warn("event=scep_request_failed txid=%s fail_info=%s reason=%s", r->txid,
                 ca_scep_fail_str(r->fail), r->why);
    ERR_clear_error();
    BIO_free(content);
    CMS_ContentInfo_free(cms);
    r->pol = NULL;
    return rc;
}

/* SHA-256 over the fields a retry repeats: transactionID, the CSR's public
 * key (SubjectPublicKeyInfo DER), CN and challenge, each length-prefixed. */
int ca_scep_req_id(const struct ca_scep_req *r, char out[CA_FINGERPRINT_LEN])
{
    unsigned char *pk = NULL, md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_PKEY *key = r->csr != NULL ? X509_REQ_get0_pubkey(r->csr) : NULL;
    int pklen = key != NULL ? i2d_PUBKEY(key, &pk) : -1;
    const void *part[] = {r->txid, pk, r->cn, r->challenge};
    size_t plen[] = {strlen(r->txid), pklen > 0 ? (size_t)pklen : 0, strlen(r->cn),
                     strlen(r->challenge)};
    EVP_MD_CTX *ctx = pklen > 0 ? EVP_MD_CTX_new() : NULL;
    int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
    for (size_t i = 0; ok && i < ARRAY_LEN(part); i++) {
        uint32_t n = (uint32_t)plen[i];
        ok = EVP_DigestUpdate(ctx, &n, sizeof(n)) == 1 &&
             EVP_DigestUpdate(ctx, part[i], plen[i]) == 1;
    }
    ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32;
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(pk);
    out[0] = '\0';
    if (!ok) {
        ERR_clear_error();
        log_err("event=scep_request_id_failed txid=%s", r->txid);
        return -1;
    }
    util_hex(md, mdlen, out);
    return 0;
}

int ca_scep_cert_der(X509 *x, unsigned char **der, size_t *len)
{
    unsigned char *p = NULL;
    int n = i2d_X509(x, &p);
    if (n <= 0) {
        ERR_clear_error();
        return -1;
    }
    *der = xmalloc((size_t)n);
    memcpy(*der, p, (size_t)n);
    *len = (size_t)n;
    OPENSSL_free(p);
    return 0;
}

X509 *ca_scep_cert_from_der(const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    X509 *x = len <= LONG_MAX ? d2i_X509(NULL, &p, (long)len) : NULL;
    if (x == NULL || p != der + len) {
        X509_free(x);
        ERR_clear_error();
        log_err("event=scep_stored_cert_unreadable bytes=%zu", len);
        return NULL;
    }
    return x;
}

void ca_scep_req_clear(struct ca_scep_req *r)
{
    X509_free(r->signer);
    X509_REQ_free(r->csr);
    r->signer = NULL;
    r->csr = NULL;
}
