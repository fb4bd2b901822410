/* ca.h: the MDM certificate authority.  Loads the CA from ca_dir, or creates
 * it on first start; issues the server certificate.  Blocking (file I/O and
 * key generation): call before event_base_dispatch() or from the crypto worker.
 * OpenSSL stays inside ca/, core/tls and push/.
 *
 * Threads: after ca_open() returns, a struct ca is read-only, so the
 * functions taking a const struct ca * may run on the worker thread while
 * the loop reads ca_cert_der() and friends.  Every function logs its own
 * failures (key=value, never key material) and drains the OpenSSL error queue.
 *
 * Ownership: X509 and EVP_PKEY pointers returned by a function whose comment
 * says "caller frees" are freed with ca_cert_free() / ca_pkey_free(), so
 * callers outside ca/ need no OpenSSL header.  Byte buffers returned through
 * out parameters are malloc'ed: free(). */
#ifndef MDMD_CA_H
#define MDMD_CA_H

#include <stddef.h>
#include "../core/util.h"

struct ca;
struct conf;
typedef struct x509_st X509;
typedef struct evp_pkey_st EVP_PKEY;
typedef struct x509_store_st X509_STORE;

/* Loads <ca_dir>/ca.crt + ca.key, or creates both (key mode 0600) when the
 * directory holds neither.  NULL on error (logged). */
struct ca *ca_open(const struct conf *cf) MDMD_MUSTCHECK;
void ca_free(struct ca *ca); /* NULL-safe */

/* Borrowed; valid as long as ca. */
const unsigned char *ca_cert_der(const struct ca *ca, size_t *len);
const char *ca_cert_pem(const struct ca *ca);
const char *ca_cert_path(const struct ca *ca); /* PEM file clients trust */
X509 *ca_cert(const struct ca *ca);
EVP_PKEY *ca_key(const struct ca *ca);
/* Trusts exactly the MDM CA: pass to ca_cms_verify() for messages that must
 * be signed by an identity we issued.  Borrowed; valid as long as ca. */
X509_STORE *ca_store(const struct ca *ca);

/* Makes sure cert_path/key_path hold a server certificate signed by the CA
 * for the space-separated names (DNS names or IP addresses); creates them
 * when missing, or when the CA changed.  0 or -1 (logged). */
int ca_ensure_server_cert(struct ca *ca, const char *names, const char *cert_path,
                          const char *key_path, int days) MDMD_MUSTCHECK;
/* Details of the above: the key is ECDSA P-256 (cheap handshakes); the first
 * name is the CN, every name a SAN (iPAddress when it parses as IPv4/IPv6,
 * else dNSName); days <= 0 or > CA_SERVER_MAX_DAYS become CA_SERVER_MAX_DAYS
 * (Apple rejects longer TLS server certificates).  The pair is regenerated
 * when either file is missing or unreadable, the key does not match, the
 * certificate was not signed by this CA, its SANs differ from names, or it
 * expires within CA_RENEW_DAYS.  The certificate is written before the key,
 * both atomically; the key with mode 0600. */
#define CA_SERVER_MAX_DAYS 825
#define CA_RENEW_DAYS 30

/* ---- keys and certificates (enrollment) ---- */

void ca_cert_free(X509 *x);     /* NULL-safe */
void ca_pkey_free(EVP_PKEY *k); /* NULL-safe */

/* Generates a key: "rsa2048", "rsa4096" or "ec256" (P-256).  Slow for RSA
 * (tens of ms to seconds): worker thread only.  Caller frees; NULL on error
 * or unknown type (logged). */
EVP_PKEY *ca_keygen(const char *type);
/* 1 when type is one ca_keygen() accepts (for config validation), else 0. */
int ca_key_type_ok(const char *type) MDMD_MUSTCHECK;

/* Sets a fresh serial number on x: random, positive, 159 bits (fits the 20
 * octets RFC 5280 allows; unique without keeping state).  0 or -1. */
int ca_set_random_serial(X509 *x) MDMD_MUSTCHECK;

/* Issues a device identity certificate for key (only its public half is
 * used; borrowed): subject CN = udid, keyUsage digitalSignature (plus
 * keyEncipherment for RSA keys; RFC 5480 forbids it for EC), EKU clientAuth,
 * basicConstraints CA:FALSE, SKI/AKI, valid `days` days (> 0) from now but
 * never past the CA's own notAfter (true of the server certificate too).
 * udid must be 1..64 characters of [A-Za-z0-9._-].  Caller frees; NULL on
 * error (logged).  Also used for the OTA identity (same CN rules). */
X509 *ca_issue_device_cert(const struct ca *ca, EVP_PKEY *key, const char *udid,
                           int days) MDMD_MUSTCHECK;

/* Loads a PEM certificate and its unencrypted PEM private key and checks that
 * they match (e.g. the server identity that signs profiles).  On success the
 * caller owns *cert and *key; on error both stay NULL. */
int ca_load_identity(const char *cert_path, const char *key_path, X509 **cert,
                     EVP_PKEY **key) MDMD_MUSTCHECK;

/* SHA-256 of the DER certificate as lowercase hex into out. */
#define CA_FINGERPRINT_LEN 65 /* 64 hex digits + NUL */
int ca_cert_fingerprint(X509 *x, char out[CA_FINGERPRINT_LEN]) MDMD_MUSTCHECK;
/* The subject's first commonName as UTF-8; caller frees.  NULL when there is
 * none or it holds a NUL byte. */
char *ca_cert_cn(X509 *x);

/* 0 when x chains to the MDM CA and x and the CA are valid now (no purpose
 * or EKU check: the caller knows what the certificate is for); -1 otherwise
 * (logged at warn with the reason).  The CA certificate itself passes too;
 * callers that also need proof of possession (TLS, CMS) get it there. */
int ca_verify_issued(const struct ca *ca, X509 *x) MDMD_MUSTCHECK;
/* 1 when x names the MDM CA as its issuer and the CA's key verifies x's
 * signature, else 0.  Quiet (no log, no validity check): it tells an
 * identity we issued from a foreign one before deciding how to check it. */
int ca_issued_by(const struct ca *ca, X509 *x) MDMD_MUSTCHECK;

/* ---- trust stores ---- */

/* A store of the PEM certificates in path (e.g. Apple's iPhone Device CA, or
 * the simulator's CA in tests).  Caller frees; NULL on error (logged).  Load
 * it once at startup: reading files per request would block the loop. */
X509_STORE *ca_store_load(const char *path) MDMD_MUSTCHECK;
void ca_store_free(X509_STORE *st); /* NULL-safe */

/* ---- PKCS#12 ---- */

/* Builds a PKCS#12 (DER) holding key, cert (linked by localKeyID, labelled
 * friendly_name, which may be NULL) and the nchain certificates of chain
 * (may be NULL when nchain is 0), all borrowed.  mode picks the algorithms:
 *   "legacy": pbeWithSHAAnd3-KeyTripleDES-CBC for key and certificates,
 *             HMAC-SHA1 MAC, 2048 iterations: every iOS/macOS version;
 *   "aes":    PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC), HMAC-SHA256 MAC,
 *             2048 iterations: newer systems only (OpenSSL 3's default).
 * password must be non-empty.  On success *der (free()) and *len are set. */
int ca_pkcs12(EVP_PKEY *key, X509 *cert, X509 *const *chain, size_t nchain,
              const char *friendly_name, const char *password, const char *mode,
              unsigned char **der, size_t *len) MDMD_MUSTCHECK;
/* 1 when mode is one ca_pkcs12() accepts (for config validation), else 0. */
int ca_pkcs12_mode_ok(const char *mode) MDMD_MUSTCHECK;

/* Fills out with size - 1 random characters from an alphabet without
 * look-alikes or XML/shell specials ([A-Za-z2-9] minus I, O, l) and a NUL;
 * 24 characters carry about 140 bits.  0, or -1 when size < 2 or the RNG
 * fails. */
#define CA_PASSWORD_LEN 25 /* 24 characters + NUL */
int ca_random_password(char *out, size_t size) MDMD_MUSTCHECK;

/* ---- CMS (profiles and device replies) ---- */

/* Signs len bytes of data (a profile plist) with cert/key, embedding the
 * content (attached) unchanged (binary: no MIME canonicalisation) and adding
 * cert plus the nextra certificates of extra (e.g. the CA) to the message.
 * All inputs borrowed.  On success *der (free()) and *der_len are set. */
int ca_cms_sign(X509 *cert, EVP_PKEY *key, X509 *const *extra, size_t nextra, const void *data,
                size_t len, unsigned char **der, size_t *der_len) MDMD_MUSTCHECK;

/* Verifies a DER CMS SignedData with attached content and exactly one signer
 * (a device reply).  The signature is checked against the signer certificate
 * the message carries; that proves integrity, not identity.  When trust is
 * non-NULL the signer must also chain to it (the message's other certificates
 * serve as intermediates; no purpose/EKU check; validity at the current
 * time).  On success *content (free(); NUL-terminated for convenience,
 * *content_len excludes it) and *signer (caller frees) are set; on error
 * they stay NULL.  signer may be NULL when the caller does not need it. */
int ca_cms_verify(const void *der, size_t len, X509_STORE *trust, unsigned char **content,
                  size_t *content_len, X509 **signer) MDMD_MUSTCHECK;

/* ---- passwords (ca_pw.c) ----
 * PBKDF2-HMAC-SHA256 with a random 16-byte salt, stored as
 *   pbkdf2-sha256$<iterations>$<salt base64>$<hash base64>
 * (32-byte hash, standard base64 with padding).  About 0.3 s of CPU per call
 * at CA_PW_ITERATIONS: crypto worker only, never on the loop.  Thread-safe;
 * never logs the password or the hash. */
#define CA_PW_ITERATIONS 600000       /* OWASP 2023 floor for PBKDF2-SHA256 */
#define CA_PW_MAX_ITERATIONS 10000000 /* a stored hash above this is refused */
#define CA_PW_HASH_MAX 128            /* room for the stored form, NUL included */

/* Hashes password with iterations (>= CA_PW_ITERATIONS) into out.  0 or -1. */
int ca_pw_hash(const char *password, int iterations, char out[CA_PW_HASH_MAX]) MDMD_MUSTCHECK;
/* 1 when password matches stored, 0 when it does not or stored is malformed
 * (logged).  The final comparison is constant-time.  stored NULL: burns the
 * same CPU as a real check against a dummy hash and returns 0, so an unknown
 * user costs as much time as a wrong password. */
int ca_pw_verify(const char *password, const char *stored) MDMD_MUSTCHECK;
/* The iteration count of a stored hash, or -1 when it is malformed. */
int ca_pw_iterations(const char *stored) MDMD_MUSTCHECK;

#endif
