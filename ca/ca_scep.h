/* ca_scep.h: the SCEP responder (RFC 8894) and device request signatures
 * (Mdm-Signature, RFC 9440 Client-Cert).  OpenSSL stays inside ca/.
 *
 * The responder identity decrypts requests and signs CertReps.  It is the MDM
 * CA itself when the CA key is RSA; otherwise (an EC CA cannot be a key
 * transport recipient) an RSA "RA" certificate issued by the CA, kept in
 * <ca_dir>/scep_ra.crt and scep_ra.key, and GetCACert then serves RA + CA.
 *
 * Threads: ca_scep_open() is blocking (files): call it before the loop runs.
 * A new RA needs an RSA key, which takes seconds under a sanitizer: that is
 * ca_scep_make_ra(), for the crypto worker, and the responder is not ready
 * (serve nothing) until the loop calls ca_scep_set_ready() after it.  Once
 * ready, a struct ca_scep is read-only, and ca_scep_parse(), ca_scep_issue()
 * and ca_scep_reply() may run on the crypto worker (each about one RSA
 * private-key operation) while the loop serves GetCACert.  The ca_devauth_* functions are cheap (public-key checks only)
 * and run on the loop, like the TLS handshake they replace.
 *
 * Ownership: a struct ca_scep_req owns its OpenSSL objects; release them with
 * ca_scep_req_clear().  Byte buffers returned through out parameters are
 * malloc'ed: free().  Every function logs its own failures, never challenge
 * passwords or key material. */
#ifndef MDMD_CA_SCEP_H
#define MDMD_CA_SCEP_H

#include <stddef.h>

#include "../core/util.h"
#include "ca.h"

struct ca_scep;
typedef struct X509_req_st X509_REQ;

#define CA_SCEP_MAX_MSG (256 * 1024) /* a PKIOperation message, DER or BER */
#define CA_SCEP_MAX_DEPTH 32         /* BER nesting of any message we parse */
#define CA_SCEP_TXID_MAX 129         /* transactionID: 128 printable characters + NUL */
#define CA_SCEP_NONCE_MAX 64         /* senderNonce: RFC 8894 says 16 octets */
#define CA_SCEP_CHALLENGE_MAX 256
#define CA_SCEP_CN_MAX 65 /* subject CN: 1..64 bytes, no control characters */

/* GetCACaps, one capability per line (text/plain). */
extern const char ca_scep_caps[];

/* Loads or creates the responder identity for ca (see above) and loads
 * OpenSSL's legacy provider next to the default one, so that single-DES
 * envelopes (older iOS, scepclient) can be opened; without it they get
 * FAILURE badAlg.  NULL on error (logged). */
struct ca_scep *ca_scep_open(const struct ca *ca, const struct conf *cf) MDMD_MUSTCHECK;
void ca_scep_free(struct ca_scep *sc); /* NULL-safe */
/* 1 when the responder identity is there (the CA, or an RA loaded from
 * ca_dir); 0 until an RA was made.  Loop thread. */
int ca_scep_ready(const struct ca_scep *sc) MDMD_MUSTCHECK;
/* Creates and stores the RA (blocking; worker thread; ca outlives it).
 * 0 or -1 (logged).  On 0 the loop then calls ca_scep_set_ready(). */
int ca_scep_make_ra(struct ca_scep *sc) MDMD_MUSTCHECK;
void ca_scep_set_ready(struct ca_scep *sc);

/* The GetCACert answer, borrowed: DER of the CA with ctype
 * application/x-x509-ca-cert, or a certs-only PKCS#7 of RA and CA with
 * application/x-x509-ca-ra-cert. */
const unsigned char *ca_scep_cacert(const struct ca_scep *sc, size_t *len, const char **ctype);

enum ca_scep_type { /* messageType */
                    CA_SCEP_CERTREP = 3,
                    CA_SCEP_RENEWALREQ = 17,
                    CA_SCEP_PKCSREQ = 19,
                    CA_SCEP_CERTPOLL = 20,
                    CA_SCEP_GETCERT = 21,
                    CA_SCEP_GETCRL = 22,
};

enum ca_scep_fail { /* failInfo */
                    CA_SCEP_FAIL_NONE = -1,
                    CA_SCEP_BADALG = 0,
                    CA_SCEP_BADMESSAGECHECK = 1,
                    CA_SCEP_BADREQUEST = 2,
                    CA_SCEP_BADTIME = 3,
                    CA_SCEP_BADCERTID = 4,
};
const char *ca_scep_fail_str(int fail); /* "badAlg", ...; "none" */

#define CA_SCEP_KU_SIGN 1     /* digitalSignature */
#define CA_SCEP_KU_ENCIPHER 2 /* keyEncipherment (RSA keys only) */

struct ca_scep_req {
    /* What any CertRep needs; set whenever ca_scep_parse() returns 0. */
    char txid[CA_SCEP_TXID_MAX];
    unsigned char nonce[CA_SCEP_NONCE_MAX]; /* the request's senderNonce */
    size_t nonce_len;
    int digest_nid;  /* the reply is signed with the request's digest */
    int cipher_nid;  /* and enveloped with its content cipher */
    char cipher[24]; /* its name, for the log */
    X509 *signer;    /* recipient of the reply envelope (owned) */
    int fail;        /* failInfo to answer with, or CA_SCEP_FAIL_NONE */
    const char *why; /* a static reason for the log when fail is set */
    /* The request itself, valid when fail is CA_SCEP_FAIL_NONE. */
    int type;                              /* enum ca_scep_type */
    X509_REQ *csr;                         /* owned; its signature was checked */
    char challenge[CA_SCEP_CHALLENGE_MAX]; /* challengePassword, "" if none */
    char cn[CA_SCEP_CN_MAX];               /* the CSR's subject CN, charset checked */
    int cn_is_udid;                     /* cn is UDID-shaped ([A-Za-z0-9._-]): the UDID it is for;
                                     * else (a literal "%HardwareUUID%", "MDM Identity") the
                                     * certificate binds to a UDID at its first Authenticate */
    int key_usage;                      /* CA_SCEP_KU_* to issue: the CSR's request within policy */
    int renewal;                        /* signed by an identity this CA issued: no challenge */
    char signer_fp[CA_FINGERPRINT_LEN]; /* renewal: the identity being replaced */
    int throwaway_signer;               /* new enrollment signed by a key not the CSR's */
    const struct ca_scep_policy *pol;   /* during ca_scep_parse_with() */
};

/* Parses a pkiMessage (DER or BER): checks the signature over the signed
 * attributes and content, opens the envelope with the responder key, parses
 * and checks the CSR and the key policy (RSA >= 2048 bits, EC P-256/P-384),
 * and tells a renewal from a new enrollment:
 *  - PKCSReq signed by a valid identity of this CA, or RenewalReq: a renewal;
 *    the CSR's CN must be the signer's;
 *  - PKCSReq otherwise: the signer must hold the CSR's key (self-signed).
 * Returns -1 when no CertRep can be built at all (not a signed SCEP message,
 * no transactionID or senderNonce, no signer certificate): answer HTTP 400.
 * Returns 0 otherwise, with r->fail set when the answer is a FAILURE. */
int ca_scep_parse(const struct ca_scep *sc, const struct ca *ca, const void *der, size_t len,
                  struct ca_scep_req *r) MDMD_MUSTCHECK;

/* What ca_scep_parse_with() accepts beyond the defaults (RSA >= 2048 or EC,
 * SHA-2 digests, AES or 3DES envelopes, a self-signed signer holding the
 * CSR's key).  RFC 8894 2.3: a PKCSReq's signer SHOULD use the CSR's key, not
 * MUST; proof of possession is the CSR's own signature, checked always. */
struct ca_scep_policy {
    int throwaway_signer; /* a self-signed signer whose key is not the CSR's */
    int sha1;             /* SHA-1 as the signer's digest */
    int des;              /* single-DES envelopes (when OpenSSL's legacy provider loads) */
    int rsa1024;          /* RSA keys of 1024 to 2047 bits */
};
/* ca_scep_parse() uses the defaults of the configuration keys
 * (docs/SCEP.md): throwaway signer, SHA-1 and DES yes, RSA 1024 no. */
extern const struct ca_scep_policy ca_scep_policy_default;
int ca_scep_parse_with(const struct ca_scep *sc, const struct ca *ca,
                       const struct ca_scep_policy *pol, const void *der, size_t len,
                       struct ca_scep_req *r) MDMD_MUSTCHECK;
void ca_scep_req_clear(struct ca_scep_req *r); /* frees signer and csr; r reusable */

/* Issues the certificate r asks for: subject CN = r->cn, the CSR's key,
 * keyUsage r->key_usage, EKU clientAuth, CA:FALSE, valid `days` days but
 * never past the CA.  Caller frees; NULL on error (logged). */
X509 *ca_scep_issue(const struct ca *ca, const struct ca_scep_req *r, int days) MDMD_MUSTCHECK;

/* Builds the CertRep for r, signed by the responder: SUCCESS with issued
 * (the only certificate of a certs-only PKCS#7) enveloped to r->signer when
 * issued is non-NULL, else FAILURE with failInfo fail.  transactionID and
 * recipientNonce echo the request; senderNonce is fresh.  0 or -1. */
int ca_scep_reply(const struct ca_scep *sc, const struct ca_scep_req *r, X509 *issued, int fail,
                  unsigned char **der, size_t *len) MDMD_MUSTCHECK;

/* What identifies a request across a device's retries of it (a lost
 * answer): SHA-256 hex of transactionID, the CSR's public key, CN and
 * challenge.  0 or -1 (logged).  Needs r->csr (fail CA_SCEP_FAIL_NONE). */
int ca_scep_req_id(const struct ca_scep_req *r, char out[CA_FINGERPRINT_LEN]) MDMD_MUSTCHECK;
/* x as DER (*der malloc'ed), and back (caller frees; NULL if it is not
 * exactly one certificate, logged): how an issued certificate is kept for a
 * retry.  0 or -1. */
int ca_scep_cert_der(X509 *x, unsigned char **der, size_t *len) MDMD_MUSTCHECK;
X509 *ca_scep_cert_from_der(const unsigned char *der, size_t len);

/* The decimal serial number of x into out (for the registry).  0 or -1. */
int ca_scep_serial(X509 *x, char *out, size_t outlen) MDMD_MUSTCHECK;

/* Decodes standard base64 (whitespace ignored; ' ' read as '+', as a
 * form-decoded query turns it).  At most max output bytes.  0 or -1. */
int ca_base64_decode(const char *in, size_t inlen, size_t max, unsigned char **out,
                     size_t *outlen) MDMD_MUSTCHECK;

/* 0 when der is well-formed BER of exactly len bytes nested at most
 * max_depth deep (indefinite lengths allowed), else -1.  Checked before
 * OpenSSL's decoder sees a device's message. */
int ca_ber_check(const unsigned char *der, size_t len, int max_depth) MDMD_MUSTCHECK;

/* ---- device request authentication (ca_devauth.c) ---- */

enum ca_devauth_err {
    CA_DEVAUTH_OK = 0,
    CA_DEVAUTH_MALFORMED,     /* not base64 / CMS / a certificate, or too big */
    CA_DEVAUTH_BAD_SIGNATURE, /* not a signature over these body bytes */
    CA_DEVAUTH_UNTRUSTED,     /* does not chain to the MDM CA, or expired */
    CA_DEVAUTH_NOT_CLIENT,    /* not valid for client authentication */
};
const char *ca_devauth_str(int err);

#define CA_DEVAUTH_MAX_SIG (64 * 1024) /* decoded Mdm-Signature */

struct ca_devid {                /* who signed: what mdm_msg compares */
    char cn[128];                /* subject CN ("" if none or unusable) */
    char fp[CA_FINGERPRINT_LEN]; /* SHA-256 of the certificate, hex */
};

/* Mdm-Signature: b64 is a base64 detached CMS SignedData (DER or BER) over
 * exactly body/len, with its signer certificate included.  Checks the
 * signature, the signer's chain to the MDM CA and its validity for client
 * authentication (X509_PURPOSE_SSL_CLIENT, as the TLS listener does).
 * Returns enum ca_devauth_err; id is filled on CA_DEVAUTH_OK. */
int ca_devauth_signature(const struct ca *ca, const char *b64, const void *body, size_t len,
                         struct ca_devid *id) MDMD_MUSTCHECK;
/* RFC 9440 Client-Cert: value is ":<base64 DER certificate>:".  The same
 * chain and purpose checks (the proxy's word is not enough). */
int ca_devauth_header_cert(const struct ca *ca, const char *value,
                           struct ca_devid *id) MDMD_MUSTCHECK;

#endif
