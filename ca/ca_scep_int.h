/* ca_scep_int.h: what ca_scep.c (responder, replies, issuance) and
 * ca_scep_parse.c (requests) share; not for use outside ca/. */
#ifndef MDMD_CA_SCEP_INT_H
#define MDMD_CA_SCEP_INT_H

#include "../core/util.h"

#include <openssl/asn1.h>
#include <openssl/cms.h>

#include "ca_scep.h"

enum ca_scep_oid { /* the SCEP signed attributes (RFC 8894 3.2.1) */
                   CA_SCEP_OID_MESSAGE_TYPE,
                   CA_SCEP_OID_PKI_STATUS,
                   CA_SCEP_OID_FAIL_INFO,
                   CA_SCEP_OID_SENDER_NONCE,
                   CA_SCEP_OID_RECIPIENT_NONCE,
                   CA_SCEP_OID_TRANSACTION_ID,
                   CA_SCEP_OID_FAIL_INFO_TEXT,
                   CA_SCEP_OID_N
};

struct ca_scep {
    X509 *cert;            /* responder: the CA, or the RA it issued */
    EVP_PKEY *key;         /* its RSA key; never logged */
    X509 *ca_cert;         /* the MDM CA (own reference) */
    int is_ra;             /* cert is an RA, not the CA */
    unsigned char *cacert; /* the GetCACert answer */
    size_t cacert_len;
    const char *cacert_ctype;
    int have_des;          /* the legacy provider gave us single DES */
    int loaded;            /* holds a reference on the providers */
    int ready;             /* cert, key and cacert are set (see ca_scep_ready) */
    const struct ca *ca;   /* RA: the issuer, for ca_scep_make_ra() */
    char *ra_crt, *ra_key; /* RA: <ca_dir>/scep_ra.crt, scep_ra.key */
    int ra_days;
    char ra_cn[64];
    ASN1_OBJECT *oid[CA_SCEP_OID_N];
};

/* The one SignerInfo of cms, or NULL. */
CMS_SignerInfo *ca_scep_signer_info(CMS_ContentInfo *cms) MDMD_MUSTCHECK;
/* 1 when nid is a content cipher we open and answer with. */
int ca_scep_cipher_ok(const struct ca_scep *sc, int nid) MDMD_MUSTCHECK;
/* 1 when nid is a digest we accept and sign with. */
int ca_scep_digest_ok(int nid) MDMD_MUSTCHECK;

#endif
