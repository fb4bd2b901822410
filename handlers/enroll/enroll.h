/* enroll.h: getting a device its identity: the over-the-air profile
 * service (enroll.c, its crypto-worker job enroll_job.c), SCEP and SCEP
 * enrollment profiles (enroll_scep.c, enroll_scep_profile.c) and the CA
 * certificate endpoint (enroll_ca.c).  Prefix enroll_, then the file's
 * name. */
#ifndef MDMD_ENROLL_H
#define MDMD_ENROLL_H

#include <stddef.h>

#include "../../core/util.h"

/* Over-the-air enrollment on the 1-way listener (DESIGN.md "OTA
 * enrollment"; Apple's "Over-the-Air Profile Delivery and Configuration").
 *
 *   GET  /enroll      an HTML page: a link to the CA certificate (/mdm/ca)
 *                     and a login form.
 *   POST /enroll      the form (username, password; api_users_login): a
 *                     Profile Service profile whose one-time Challenge is
 *                     bound to the user in Redis for enroll_challenge_ttl_s.
 *   POST /enroll/ota  the device's CMS-signed plist of its attributes.  Told
 *                     apart by who signed it, as Apple's design has both on
 *                     one URL:
 *     phase 1: a certificate the MDM CA did not issue (the device's own,
 *              from Apple's iPhone Device CA; checked against
 *              enroll_device_ca_file when set).  The challenge is taken
 *              (once); the answer carries a fresh OTA identity (PKCS12,
 *              CN = UDID), registered as mdm:cert:<fp> with the user.
 *     phase 2: that OTA identity (chains to the MDM CA, CN = the UDID it
 *              was issued to, unused, younger than the challenge TTL).  The
 *              answer is the MDM profile: com.apple.security.root (the CA),
 *              the device identity (PKCS12, CN = UDID) and com.apple.mdm.
 *              The OTA identity is used up, the device identity registered
 *              and bound to the device record with its user; the UDID's
 *              previous identity is revoked.
 * A retry of a phase whose answer was lost (Redis answered nothing, or the
 * device got 503) gets a new identity and the one made for it is revoked in
 * the same script (SECURITY.md, "OTA enrollment under a lost answer"): the
 * device never had it, and no key is kept in Redis to send it again.
 * Profiles are CMS-signed by the TLS server identity, CA certificate added,
 * and served as application/x-apple-aspen-config.  Keys, certificates,
 * PKCS12 bundles and signatures are made on the crypto worker.
 *
 * Ownership: main owns the struct enroll_keys (app->enroll) and frees it
 * after the worker (jobs borrow the signing identity).  Identities replaced
 * by enroll_keys_reload() stay allocated until enroll_keys_free(). */

struct conf;
struct req;
struct enroll_keys;

/* Loads the profile-signing identity (tls_cert_file/tls_key_file) and the
 * device CA trust store (enroll_device_ca_file, when set).  Blocking: call
 * before the loop runs.  NULL on error (logged). */
struct enroll_keys *enroll_keys_load(const struct conf *cf) MDMD_MUSTCHECK;
/* SIGHUP: loads them again from cf; on error keeps the current ones.  0/-1. */
int enroll_keys_reload(struct enroll_keys *k, const struct conf *cf) MDMD_MUSTCHECK;
void enroll_keys_free(struct enroll_keys *k); /* NULL-safe */

void enroll_page(struct req *req, void *app); /* GET, POST /enroll */
void enroll_ota(struct req *req, void *app);  /* POST /enroll/ota */

/* The value of key in an application/x-www-form-urlencoded body ('+' and
 * %XX decoded), or NULL when absent or when it decodes to a NUL byte.
 * Caller frees. */
char *enroll_form_value(const char *body, size_t len, const char *key);

/* SCEP (RFC 8894) and SCEP enrollment profiles (docs/SCEP.md).
 *
 * On the 1-way listener, and /scep alone on the optional plain-HTTP
 * listener (scep_listen):
 *   GET|POST /scep?operation=GetCACaps     capabilities, text/plain
 *   GET      /scep?operation=GetCACert     the CA (or RA + CA)
 *   POST     /scep?operation=PKIOperation  a pkiMessage body
 *   GET      /scep?operation=PKIOperation&message=<base64 pkiMessage>
 * A PKIOperation is answered with a CertRep (HTTP 200, SUCCESS or FAILURE
 * with failInfo); a body that is no SCEP message at all gets HTTP 400.  A new
 * enrollment needs the static scep_challenge or a one-time challenge (taken
 * atomically from Redis); a renewal is a request signed by an identity this
 * CA issued, for the same CN, and moves the device's enrollment to the new
 * certificate.  Decryption, issuance and signing run on the crypto worker.
 *
 * On the 1-way listener only:
 *   GET  /enroll/profile   admin API key or enroll_profile_token (Bearer, or
 *                          ?token=): a CMS-signed profile (CA root, SCEP
 *                          payload with a fresh one-time challenge, MDM
 *                          payload with SignMessage true); ?signed=0 gives
 *                          the plain XML, to admins only.
 *   POST /enroll/profile   the same after a login (form: username, password;
 *                          api_users_login); the challenge is bound to the user.
 *
 * Ownership: main owns the struct enroll_scep_keys (app->scep), made before the
 * loop runs and freed after the worker (jobs borrow it).  Signing identities
 * replaced by enroll_scep_keys_reload() stay allocated until enroll_scep_keys_free(). */

struct ca;
struct worker;
struct enroll_scep_keys;

/* The SCEP responder (ca_scep_open) and the profile signer (tls_cert_file/
 * tls_key_file).  Blocking (files).  A new RA is made on worker: until then
 * GetCACert and PKIOperation answer 503.  NULL on error (logged). */
struct enroll_scep_keys *enroll_scep_keys_load(const struct conf *cf, const struct ca *ca,
                                               struct worker *worker) MDMD_MUSTCHECK;
/* SIGHUP: the profile signer again (the server certificate may have been
 * renewed); on error keeps the current one.  0 or -1. */
int enroll_scep_keys_reload(struct enroll_scep_keys *k, const struct conf *cf) MDMD_MUSTCHECK;
void enroll_scep_keys_free(struct enroll_scep_keys *k); /* NULL-safe */

void enroll_scep(struct req *req, void *app);         /* /scep */
void enroll_scep_profile(struct req *req, void *app); /* GET, POST /enroll/profile */

/* GET /mdm/ca serves the MDM CA certificate: DER as
 * application/x-x509-ca-cert (what iOS installs from Safari), or PEM with
 * ?format=pem.  Step 1 of OTA enrollment. */

void enroll_ca_cert(struct req *req, void *app);

#endif
