/* store_console.h: web console sessions and the device search index (keys:
 * docs/REDIS.md, "Console sessions" and "Device search").  Same contract as
 * every typed store call (store.h): the callback runs exactly once unless
 * store_op_cancel() is called, possibly before the call returns
 * (MDMD_EUNAVAIL); the values it gets are borrowed until it returns.
 *
 * A session id is a secret: it is passed to Redis only as a script argument
 * and stored as its SHA-1 (the key), never as itself. */
#ifndef MDMD_STORE_CONSOLE_H
#define MDMD_STORE_CONSOLE_H

#include <stdint.h>

#include "store.h"
#include "store_mdm.h"

/* Creates a session for user (an admin) with its CSRF token; it expires
 * after idle_s without use. */
struct store_op *store_console_session_new(struct store *s, const char *sid, const char *user,
                                           const char *csrf, int64_t now_ms, int idle_s,
                                           store_done_fn *cb, void *arg);

/* user NULL: no valid session (unknown, expired, logged out, user deleted,
 * demoted or password changed). */
typedef void store_console_session_fn(void *arg, int err, const char *user, const char *csrf);
/* Looks sid up and renews its idle expiry; max_s bounds a session's whole life. */
struct store_op *store_console_session_get(struct store *s, const char *sid, int64_t now_ms,
                                           int idle_s, int max_s, store_console_session_fn *cb,
                                           void *arg);
struct store_op *store_console_session_del(struct store *s, const char *sid, store_done_fn *cb,
                                           void *arg);

/* Devices whose UDID, serial number, device name or user starts with query
 * (case-insensitive), as store_devices_list() pages them: next is the offset
 * of the following page (-1 at the end), total the number of matching index
 * entries (an upper bound on the devices).  state: "" for any. */
struct store_op *store_console_search(struct store *s, const char *query, long offset, int limit,
                                      const char *state, store_devices_fn *cb, void *arg);

#endif
