/* store_scep.h: SCEP state in Redis (keys: docs/REDIS.md).  Single-threaded,
 * on the loop; the op contract of store.h: cb runs exactly once (possibly
 * before the call returns, with MDMD_EUNAVAIL) unless store_op_cancel() is
 * called first; values a callback gets are borrowed until it returns.
 *
 *   mdm:scep:chal:<challenge>  string (TTL): who the one-time challenge was
 *                              issued to ("admin", "token", or a user name)
 *   mdm:cert:<sha256 hex>      the issued-certificate registry, shared with
 *                              OTA enrollment (store_enroll.h); SCEP entries
 *                              carry source=scep */
#ifndef MDMD_STORE_SCEP_H
#define MDMD_STORE_SCEP_H

#include <stdint.h>

#include "store.h"

/* Stores a one-time challenge for who, expiring after ttl_s.  One that
 * already exists is left alone and reported as MDMD_EPROTO (they are random:
 * a collision means a broken RNG). */
struct store_op *store_scep_challenge_put(struct store *s, const char *challenge, const char *who,
                                          int ttl_s, store_done_fn *cb, void *arg);
/* Taken with store_challenge_take(STORE_CHAL_SCEP) of store_enroll.h. */

struct store_scep_cert { /* a certificate SCEP just issued */
    const char *udid;    /* its CN; "" when the CN is not a UDID: the
                                   * certificate binds at its first Authenticate
                                   * (a renewal keeps the old one's binding) */
    const char *fp;      /* SHA-256 hex */
    const char *serial;  /* certificate serial, decimal */
    const char *user;    /* new enrollment: the challenge's owner ("" if static) */
    const char *old_fp;  /* renewal: the identity that signed the request */
    int64_t now_ms;
    int retry_grace_s; /* renewal: how long the old identity may retry */
};

/* outcome: "ok", or why the registry refused a renewal ("revoked",
 * "cert_mismatch"); rebound: the enrollment now uses the new certificate. */
typedef void store_scep_cert_fn(void *arg, int err, const char *outcome, int rebound);

/* New enrollment (scep_issue.lua): registers c->fp as a device identity of
 * c->udid and makes it the one the UDID's next Authenticate must present. */
struct store_op *store_scep_issued(struct store *s, const struct store_scep_cert *c,
                                   store_scep_cert_fn *cb, void *arg);
/* Renewal (scep_renew.lua): registers c->fp, revokes c->old_fp, and moves the
 * enrollment bound to c->old_fp over to c->fp, atomically. */
struct store_op *store_scep_renewed(struct store *s, const struct store_scep_cert *c,
                                    store_scep_cert_fn *cb, void *arg);

#endif
