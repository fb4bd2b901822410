/* store_scep.h: SCEP state in Redis (keys: docs/REDIS.md).  Single-threaded,
 * on the loop; the op contract of store.h: cb runs exactly once (possibly
 * before the call returns, with MDMD_EUNAVAIL) unless store_op_cancel() is
 * called first; values a callback gets are borrowed until it returns.
 *
 *   mdm:scep:chal:<challenge>  string (TTL): who the one-time challenge was
 *                              issued to ("admin", "token", or a user name)
 *   mdm:cert:<sha256 hex>      the issued-certificate registry, shared with
 *                              OTA enrollment (store_enroll.h); SCEP entries
 *                              carry source=scep
 *   mdm:scep:tx:<request id>   hash (TTL STORE_SCEP_TX_TTL_S): a new
 *                              enrollment's challenge owner and, once
 *                              registered, its certificate (DER hex), for a
 *                              retry of the same request (lost answer)
 * (the challenge and the transaction: mdm:{g}:scep:... in the cluster
 * layout, where issue and renewal are calls in turn: docs/REDIS.md). */
#ifndef MDMD_STORE_SCEP_H
#define MDMD_STORE_SCEP_H

#include <stdint.h>

#include "store.h"

/* Stores a one-time challenge for who, expiring after ttl_s.  One that
 * already exists is left alone and reported as MDMD_EPROTO (they are random:
 * a collision means a broken RNG). */
struct store_op *store_scep_challenge_put(struct store *s, const char *challenge, const char *who,
                                          int ttl_s, store_done_fn *cb, void *arg);

/* How long a device may retry a new enrollment whose answer it did not get
 * and still get the same outcome (the challenge was used up by the first). */
#define STORE_SCEP_TX_TTL_S 600

/* Takes the one-time challenge of a new enrollment (challenge_take.lua and
 * its limits, store_enroll.h), unless req_id (ca_scep_req_id()) was seen
 * within STORE_SCEP_TX_TTL_S: then again is 1, owner the one it had then
 * and cert_hex the certificate registered for it ("" if none was).  fixed: the
 * challenge is the static one (nothing to take; owner ""); challenge unused.
 * owner NULL: unknown, used or limited (retry_after_s > 0). */
typedef void store_scep_take_fn(void *arg, int err, int retry_after_s, const char *owner, int again,
                                const char *cert_hex);
struct store_op *store_scep_take(struct store *s, const char *challenge, int fixed,
                                 const char *req_id, const char *peer, store_scep_take_fn *cb,
                                 void *arg);

struct store_scep_cert { /* a certificate SCEP just issued */
    const char *udid;    /* its CN; "" when the CN is not a UDID: the
                                   * certificate binds at its first Authenticate
                                   * (a renewal keeps the old one's binding) */
    const char *fp;      /* SHA-256 hex */
    const char *serial;  /* certificate serial, decimal */
    const char *user;    /* new enrollment: the challenge's owner ("" if static) */
    const char *old_fp;  /* renewal: the identity that signed the request */
    int64_t now_ms;
    int retry_grace_s;    /* renewal: how long the old identity may retry */
    const char *req_id;   /* new enrollment: ca_scep_req_id() */
    const char *cert_hex; /* new enrollment: the certificate, DER hex */
};

/* outcome: "ok", or why the registry refused a renewal ("revoked",
 * "cert_mismatch"), or "again": another try of the same new enrollment
 * registered its certificate first, which is again_hex (DER hex; nothing
 * was changed); rebound: the enrollment now uses the new certificate. */
typedef void store_scep_cert_fn(void *arg, int err, const char *outcome, int rebound,
                                const char *again_hex);

/* New enrollment (scep_issue.lua): registers c->fp as a device identity of
 * c->udid and makes it the one the UDID's next Authenticate must present,
 * and keeps c->cert_hex for a retry of c->req_id; at most once per req_id. */
struct store_op *store_scep_issued(struct store *s, const struct store_scep_cert *c,
                                   store_scep_cert_fn *cb, void *arg);
/* Renewal (scep_renew.lua): registers c->fp, revokes c->old_fp, and moves the
 * enrollment bound to c->old_fp over to c->fp, atomically. */
struct store_op *store_scep_renewed(struct store *s, const struct store_scep_cert *c,
                                    store_scep_cert_fn *cb, void *arg);

#endif
