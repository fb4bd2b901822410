/* ca_devauth.c: who sent a device request when TLS did not say: the
 * Mdm-Signature header (a detached CMS signature over the body, what Apple
 * devices send when the MDM payload has SignMessage true) or a proxy's
 * RFC 9440 Client-Cert header.  Both end in the same certificate checks as
 * the mutual-TLS listener: chains to the MDM CA, valid now, fit for client
 * authentication. */
#include "ca_scep.h"
#include "ca_int.h"
#include "ca_scep_int.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

const char *ca_devauth_str(int err)
{
    switch (err) {
    case CA_DEVAUTH_OK: return "ok";
    case CA_DEVAUTH_MALFORMED: return "malformed";
    case CA_DEVAUTH_BAD_SIGNATURE: return "bad_signature";
    case CA_DEVAUTH_UNTRUSTED: return "untrusted";
    case CA_DEVAUTH_NOT_CLIENT: return "not_client_cert";
    default: return "?";
    }
}

/* The identity checks every method ends with, and what mdm_msg compares. */
static int ca_devauth_cert(const struct ca *ca, X509 *x, struct ca_devid *id)
{
    if (ca_verify_issued(ca, x) != 0)
        return CA_DEVAUTH_UNTRUSTED;
    /* Also refuses a CA certificate; ERR left by the check is not ours. */
    int client = X509_check_purpose(x, X509_PURPOSE_SSL_CLIENT, 0) == 1;
    ERR_clear_error();
    if (!client)
        return CA_DEVAUTH_NOT_CLIENT;
    char *cn = ca_cert_cn(x);
    if (cn != NULL && strlen(cn) < sizeof(id->cn))
        memcpy(id->cn, cn, strlen(cn) + 1);
    else
        id->cn[0] = '\0';
    free(cn);
    return ca_cert_fingerprint(x, id->fp) == 0 ? CA_DEVAUTH_OK : CA_DEVAUTH_MALFORMED;
}

/* Devices often send BER (indefinite lengths): parse through a BIO after
 * the nesting check, and insist on a detached SignedData. */
static CMS_ContentInfo *ca_devauth_load(const unsigned char *der, size_t len)
{
    if (ca_ber_check(der, len, CA_SCEP_MAX_DEPTH) != 0)
        return NULL;
    BIO *b = BIO_new_mem_buf(der, (int)len);
    CMS_ContentInfo *cms = b != NULL ? d2i_CMS_bio(b, NULL) : NULL;
    BIO_free(b);
    ASN1_OCTET_STRING **content = cms != NULL ? CMS_get0_content(cms) : NULL;
    if (cms != NULL && (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed || content == NULL ||
                        *content != NULL || ca_scep_signer_info(cms) == NULL)) {
        CMS_ContentInfo_free(cms);
        return NULL;
    }
    return cms;
}

/* The signature over body (no chain check here: ca_devauth_cert does it,
 * with the clientAuth purpose CMS_verify would not use). */
static X509 *ca_devauth_signed_by(CMS_ContentInfo *cms, const void *body, size_t len)
{
    BIO *data = BIO_new_mem_buf(len > 0 ? body : "", (int)len);
    int ok = data != NULL && CMS_verify(cms, NULL, NULL, data, NULL,
                                        CMS_BINARY | CMS_DETACHED | CMS_NO_SIGNER_CERT_VERIFY) == 1;
    BIO_free(data);
    STACK_OF(X509) *signers = ok ? CMS_get0_signers(cms) : NULL;
    X509 *x = signers != NULL && sk_X509_num(signers) == 1 ? sk_X509_value(signers, 0) : NULL;
    if (x != NULL)
        X509_up_ref(x);
    sk_X509_free(signers);
    return x;
}

int ca_devauth_signature(const struct ca *ca, const char *b64, const void *body, size_t len,
                         struct ca_devid *id)
{
    unsigned char *der = NULL;
    size_t dlen = 0;
    if (b64 == NULL || len > INT_MAX ||
        ca_base64_decode(b64, strlen(b64), CA_DEVAUTH_MAX_SIG, &der, &dlen) != 0)
        return CA_DEVAUTH_MALFORMED;
    CMS_ContentInfo *cms = ca_devauth_load(der, dlen);
    free(der);
    if (cms == NULL) {
        ERR_clear_error();
        return CA_DEVAUTH_MALFORMED;
    }
    X509 *signer = ca_devauth_signed_by(cms, body, len);
    int rc = signer != NULL ? ca_devauth_cert(ca, signer, id) : CA_DEVAUTH_BAD_SIGNATURE;
    X509_free(signer);
    CMS_ContentInfo_free(cms);
    ERR_clear_error();
    return rc;
}

/* RFC 9440 section 2: an sf-binary item, ":" base64 ":" (RFC 8941 3.3.5). */
int ca_devauth_header_cert(const struct ca *ca, const char *value, struct ca_devid *id)
{
    size_t n = value != NULL ? strlen(value) : 0;
    while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
        n--;
    while (n > 0 && (*value == ' ' || *value == '\t')) {
        value++;
        n--;
    }
    unsigned char *der = NULL;
    size_t dlen = 0;
    if (n < 3 || value[0] != ':' || value[n - 1] != ':' ||
        ca_base64_decode(value + 1, n - 2, CA_DEVAUTH_MAX_SIG, &der, &dlen) != 0)
        return CA_DEVAUTH_MALFORMED;
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)dlen);
    int whole = x != NULL && p == der + dlen;
    free(der);
    int rc = whole ? ca_devauth_cert(ca, x, id) : CA_DEVAUTH_MALFORMED;
    X509_free(x);
    ERR_clear_error();
    return rc;
}
