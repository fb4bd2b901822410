/* ca_int.h: helpers shared by ca.c and ca_msg.c; not for use outside ca/. */
#ifndef MDMD_CA_INT_H
#define MDMD_CA_INT_H

#include "../core/util.h"

#include <openssl/asn1.h>
#include <openssl/x509v3.h>
#include <stddef.h>

struct ca;

struct ca_ext {
    int nid;
    const char *value; /* X509V3 config syntax */
};

/* Logs at lvl a line built from fmt plus the drained OpenSSL error queue. */
void ca_ssl_log(int lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Builds and signs a certificate for pub (CN=cn) issued by ca, with exts
 * (and san, may be NULL), valid days from a few minutes ago but never past
 * the CA's notAfter.  Caller frees; NULL on failure. */
X509 *ca_issue(const struct ca *ca, EVP_PKEY *pub, const char *cn, int days,
               const struct ca_ext *exts, size_t n, GENERAL_NAMES *san) MDMD_MUSTCHECK;
/* DER of obj (of ASN.1 type it) into a malloc'ed *der.  0 or -1. */
int ca_i2d(const void *obj, const ASN1_ITEM *it, unsigned char **der, size_t *len) MDMD_MUSTCHECK;

#endif
