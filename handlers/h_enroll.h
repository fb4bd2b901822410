/* h_enroll.h: over-the-air enrollment on the 1-way listener (DESIGN.md "OTA
 * enrollment"; Apple's "Over-the-Air Profile Delivery and Configuration").
 *
 *   GET  /enroll      an HTML page: a link to the CA certificate (/mdm/ca)
 *                     and a login form.
 *   POST /enroll      the form (username, password; h_users_login): a
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
 * Profiles are CMS-signed by the TLS server identity, CA certificate added,
 * and served as application/x-apple-aspen-config.  Keys, certificates,
 * PKCS12 bundles and signatures are made on the crypto worker.
 *
 * Ownership: main owns the struct h_enroll_keys (app->enroll) and frees it
 * after the worker (jobs borrow the signing identity).  Identities replaced
 * by h_enroll_keys_reload() stay allocated until h_enroll_keys_free(). */
#ifndef MDMD_H_ENROLL_H
#define MDMD_H_ENROLL_H

#include <stddef.h>

#include "../core/util.h"

struct conf;
struct req;
struct h_enroll_keys;

/* Loads the profile-signing identity (tls_cert_file/tls_key_file) and the
 * device CA trust store (enroll_device_ca_file, when set).  Blocking: call
 * before the loop runs.  NULL on error (logged). */
struct h_enroll_keys *h_enroll_keys_load(const struct conf *cf);
/* SIGHUP: loads them again from cf; on error keeps the current ones.  0/-1. */
int h_enroll_keys_reload(struct h_enroll_keys *k, const struct conf *cf) MDMD_MUSTCHECK;
void h_enroll_keys_free(struct h_enroll_keys *k);        /* NULL-safe */

void h_enroll_page(struct req *req, void *app);          /* GET, POST /enroll */
void h_enroll_ota(struct req *req, void *app);           /* POST /enroll/ota */

/* The value of key in an application/x-www-form-urlencoded body ('+' and
 * %XX decoded), or NULL when absent or when it decodes to a NUL byte.
 * Caller frees. */
char *h_enroll_form_value(const char *body, size_t len, const char *key);

#endif
