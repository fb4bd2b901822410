/* h_scep.h: SCEP (RFC 8894) and SCEP enrollment profiles (docs/SCEP.md).
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
 *                          h_users_login); the challenge is bound to the user.
 *
 * Ownership: main owns the struct h_scep_keys (app->scep), made before the
 * loop runs and freed after the worker (jobs borrow it).  Signing identities
 * replaced by h_scep_keys_reload() stay allocated until h_scep_keys_free(). */
#ifndef MDMD_H_SCEP_H
#define MDMD_H_SCEP_H

#include "../core/util.h"

struct ca;
struct conf;
struct req;
struct worker;
struct h_scep_keys;

/* The SCEP responder (ca_scep_open) and the profile signer (tls_cert_file/
 * tls_key_file).  Blocking (files).  A new RA is made on worker: until then
 * GetCACert and PKIOperation answer 503.  NULL on error (logged). */
struct h_scep_keys *h_scep_keys_load(const struct conf *cf, const struct ca *ca,
                                     struct worker *worker);
/* SIGHUP: the profile signer again (the server certificate may have been
 * renewed); on error keeps the current one.  0 or -1. */
int h_scep_keys_reload(struct h_scep_keys *k, const struct conf *cf) MDMD_MUSTCHECK;
void h_scep_keys_free(struct h_scep_keys *k);            /* NULL-safe */

void h_scep(struct req *req, void *app);                 /* /scep */
void h_scep_profile(struct req *req, void *app);         /* GET, POST /enroll/profile */

#endif
