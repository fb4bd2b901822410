/* store_checkin.h: the check-in messages beyond Authenticate, TokenUpdate
 * and CheckOut (store_mdm.h), and the admin settings they answer from (key
 * layout: docs/REDIS.md).  Single-threaded, on the loop; the op contract of
 * store.h: cb runs exactly once (possibly before the call returns, with
 * MDMD_EUNAVAIL) unless store_op_cancel() is called first; values are
 * borrowed until the callback returns.
 *
 *   mdm:dev:{UDID}:<user>, mdm:q:{UDID}:<user>, ...  a user channel's keys
 *   mdm:channels:{UDID}        set: the users with a channel on the device
 *   mdm:rts:{UDID}, mdm:rts    hash: Return to Service, per device / fleet
 *   mdm:tokensrc:<type>        hash: a GetToken source; mdm:tokensrcs lists them */
#ifndef MDMD_STORE_CHECKIN_H
#define MDMD_STORE_CHECKIN_H

#include <stdint.h>

#include "store.h"
#include "store_mdm.h"

/* A script's answer: ident (enum store_ident) and the values after its
 * status, v[i] NULL for a nil one. */
typedef void store_values_fn(void *arg, int err, int ident, const char *const *v, const size_t *len,
                             size_t n);

/* The identity check alone (no values). */
struct store_op *store_ident_check(struct store *s, const struct store_device_msg *m,
                                   store_values_fn *cb, void *arg);

/* TokenUpdate on the user channel m->udid ("<UDID>:<user>", validated by the
 * caller); m->cert_fp is the device's identity; enrolled_now: the channel
 * began. */
struct store_op *store_user_token_update(struct store *s, const struct store_device_msg *m,
                                         store_checkin_fn *cb, void *arg);

/* SetBootstrapToken: sealed (ca_seal) or "" to clear; awaiting "true",
 * "false" or "" (absent). */
struct store_op *store_bootstrap_set(struct store *s, const struct store_device_msg *m,
                                     const char *sealed, const char *awaiting, store_checkin_fn *cb,
                                     void *arg);
/* The sealed token (v[0], NULL: none).  cert_fp "": an admin's read, no
 * identity check; who is recorded in the bootstrap_token_read event. */
struct store_op *store_bootstrap_get(struct store *s, const char *udid, const char *cert_fp,
                                     const char *who, int64_t now_ms, store_values_fn *cb,
                                     void *arg);

/* ReturnToService: v = enabled ("1"/"0"), wifi_profile, mdm_profile,
 * preserve_apps, sealed bootstrap token (only when enabled with
 * preserve_apps), source ("device", "fleet", "none"). */
struct store_op *store_rts_get(struct store *s, const struct store_device_msg *m,
                               store_values_fn *cb, void *arg);
/* GetToken: v = kind, data, issuer of mdm:tokensrc:<type> (NULL: none). */
struct store_op *store_token_source_get(struct store *s, const struct store_device_msg *m,
                                        const char *type, store_values_fn *cb, void *arg);

/* POST /v1/migrate: records for devices enrolled elsewhere (migrate.lua),
 * one call for all of them (the caller keeps batches small: Redis serves no
 * one else while it runs).  skipped: UDIDs with a live record, left alone. */
struct store_migrant {
    const char *udid;
    const struct store_kv *fields; /* record fields: token, push_magic, topic, ... */
    size_t n;
};
typedef void store_migrate_fn(void *arg, int err, long created, const char *const *skipped,
                              size_t nskipped);
struct store_op *store_migrate(struct store *s, const struct store_migrant *d, size_t n,
                               int64_t now_ms, store_migrate_fn *cb, void *arg);

/* Admin: replaces the hash key whole (n == 0: deletes it); set, when not
 * NULL, gains or loses member.  Reads: the hash's fields and values. */
struct store_op *store_setting_put(struct store *s, const char *key, const char *set,
                                   const char *member, const struct store_kv *kv, size_t n,
                                   store_done_fn *cb, void *arg);
struct store_op *store_setting_get(struct store *s, const char *key, store_values_fn *cb,
                                   void *arg);
/* The members of a set (v), e.g. mdm:tokensrcs or mdm:channels:{UDID}. */
struct store_op *store_set_members(struct store *s, const char *key, store_values_fn *cb,
                                   void *arg);

#endif
