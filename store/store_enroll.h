/* store_enroll.h: over-the-air enrollment state and the issued-certificate
 * registry (keys: docs/REDIS.md).  Single-threaded, on the loop; same op
 * contract as store.h: cb runs exactly once (possibly before the call
 * returns, with MDMD_EUNAVAIL) unless store_op_cancel() is called first, and
 * every value a callback gets is borrowed until it returns.
 *
 *   mdm:enroll:chal:<challenge>   string: the user it was issued to (TTL)
 *   mdm:cert:<sha256 hex>         hash: one certificate enrollment issued
 *   mdm:enroll:tx:<tx id>         hash (TTL STORE_ENROLL_TX_TTL_S): a phase 1
 *                                 whose challenge was taken and not yet
 *                                 answered: its owner and the OTA identity
 *                                 registered for it (cert), for a retry
 *
 * The challenge and the transaction are configuration: mdm:{g}:enroll:...
 * in the cluster layout, where the scripts' steps are calls in turn, one
 * slot each (docs/REDIS.md, "Redis Cluster", Enrollment).  The device-record
 * side of the registry (issued_fp, user) is written by
 * store_cert_issue_device() and read by the check-in scripts. */
#ifndef MDMD_STORE_ENROLL_H
#define MDMD_STORE_ENROLL_H

#include <stdint.h>

#include "store.h"

struct store_cert { /* an mdm:cert:<fp> entry */
    const char *udid;
    const char *user;
    const char *kind;   /* "ota" (phase-1 identity) or "device" (MDM identity) */
    const char *state;  /* "issued" or "revoked" */
    const char *serial; /* the device's serial number, as it said */
    int64_t issued_ms;
    int64_t retry_until_ms; /* a used OTA identity whose answer is not known
                             * to have left: its phase 2 may be retried until
                             * then (0: not, or never used) */
};

/* c NULL: no such certificate in the registry. */
typedef void store_cert_fn(void *arg, int err, const struct store_cert *c);
/* ok 0: the OTA identity was used meanwhile (nothing changed); revoked_fp:
 * the certificate of the previous enrollment that was revoked, or "". */
typedef void store_issue_fn(void *arg, int err, int ok, const char *revoked_fp);

/* Stores a Profile Service challenge for user, expiring after ttl_s.  A
 * challenge that already exists is left alone and reported as MDMD_EPROTO
 * (it is random: a collision means a broken RNG). */
struct store_op *store_challenge_put(struct store *s, const char *challenge, const char *user,
                                     int ttl_s, store_done_fn *cb, void *arg);
/* Taking a one-time challenge (store/lua/challenge_take.lua), OTA
 * (mdm:enroll:chal:) or SCEP (mdm:scep:chal:): its owner, deleted in the same
 * step, so that it works once.  A challenge that does not exist counts
 * against the client address (mdm:chalfail:addr:<peer>); after
 * STORE_CHAL_FAIL_ADDR of them in STORE_CHAL_FAIL_WINDOW_S the address gets
 * retry_after_s > 0 and no lookup, so challenges cannot be guessed at speed.
 * owner NULL: unknown (never made, expired, used) or limited. */
enum store_chal_kind { STORE_CHAL_OTA, STORE_CHAL_SCEP };
#define STORE_CHAL_FAIL_ADDR 20
#define STORE_CHAL_FAIL_WINDOW_S 300
/* With tx_id (OTA phase 1: what a retry of the same request repeats, see
 * enroll.c), a request seen within STORE_ENROLL_TX_TTL_S and not yet answered
 * takes nothing: again is 1, owner the one it had and prev the fingerprint of
 * the OTA identity registered for it ("" if none was).  Its answer was lost
 * after the challenge was used up, and the retry must not fail for that. */
#define STORE_ENROLL_TX_TTL_S 600
typedef void store_chal_fn(void *arg, int err, int retry_after_s, const char *owner, int again,
                           const char *prev);
struct store_op *store_challenge_take(struct store *s, int kind, const char *challenge,
                                      const char *tx_id, const char *peer, store_chal_fn *cb,
                                      void *arg);

/* OTA phase 1 (store/lua/ota_register.lua): registers the OTA identity fp
 * (kind "ota", state "issued", c's udid, user, serial and issued_ms) and, in
 * the same step, revokes (reason "retried") the one an earlier try of tx_id
 * registered, whose answer was lost; records fp on tx_id.  ok 0: that earlier
 * identity was used for phase 2 meanwhile (nothing changed). */
struct store_op *store_ota_register(struct store *s, const char *fp, const struct store_cert *c,
                                    const char *tx_id, store_issue_fn *cb, void *arg);
/* The answer of a phase 1 is being sent: tx_id can no longer be retried. */
struct store_op *store_ota_tx_close(struct store *s, const char *tx_id, store_done_fn *cb,
                                    void *arg);
/* The answer of a phase 2 is being sent: ota_fp's retry_until goes. */
struct store_op *store_cert_retry_close(struct store *s, const char *ota_fp, store_done_fn *cb,
                                        void *arg);
struct store_op *store_cert_get(struct store *s, const char *fp, store_cert_fn *cb, void *arg);

struct store_device_cert { /* the identity phase 2 issued */
    const char *udid;
    const char *user;
    const char *serial;
    const char *fp;     /* the new device identity */
    const char *ota_fp; /* the OTA identity that asked for it: used up */
    int64_t now_ms;
};
/* Atomically (one script): marks the OTA identity used, provided it still
 * is an unused OTA identity of this UDID, or a used one whose retry_until
 * has not passed (a retry of a phase 2 whose answer was lost: the device
 * identity issued then is revoked, reason "retried"); sets its device_fp and
 * retry_until (now + STORE_ENROLL_TX_TTL_S); registers the new device identity;
 * sets user, issued_fp and issued_at on the device record; revokes the
 * certificates of the UDID's previous enrollment; writes cert_issued /
 * cert_revoked events. */
struct store_op *store_cert_issue_device(struct store *s, const struct store_device_cert *c,
                                         store_issue_fn *cb, void *arg);

#endif
