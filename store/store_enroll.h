/* store_enroll.h: over-the-air enrollment state and the issued-certificate
 * registry (keys: docs/REDIS.md).  Single-threaded, on the loop; same op
 * contract as store.h: cb runs exactly once (possibly before the call
 * returns, with MDMD_EUNAVAIL) unless store_op_cancel() is called first, and
 * every value a callback gets is borrowed until it returns.
 *
 *   mdm:enroll:chal:<challenge>   string: the user it was issued to (TTL)
 *   mdm:cert:<sha256 hex>         hash: one certificate enrollment issued
 *
 * The device-record side of the registry (issued_fp, user) is written by
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
typedef void store_chal_fn(void *arg, int err, int retry_after_s, const char *owner);
struct store_op *store_challenge_take(struct store *s, int kind, const char *challenge,
                                      const char *peer, store_chal_fn *cb, void *arg);

/* Registers a certificate (kind, state and all fields of c; NULL strings
 * become ""). */
struct store_op *store_cert_put(struct store *s, const char *fp, const struct store_cert *c,
                                store_done_fn *cb, void *arg);
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
 * is an unused OTA identity of this UDID; registers the new device identity;
 * sets user, issued_fp and issued_at on the device record; revokes the
 * certificates of the UDID's previous enrollment; writes cert_issued /
 * cert_revoked events. */
struct store_op *store_cert_issue_device(struct store *s, const struct store_device_cert *c,
                                         store_issue_fn *cb, void *arg);

#endif
