/* store_ddm.h: Declarative Device Management in Redis — declarations, sets,
 * their assignment, each enrollment's sync tokens, status and status
 * reports, and the DeclarativeManagement commands that tell devices to sync
 * (keys: docs/REDIS.md, "Declarative management"; scripts: store/lua/ddm_*.lua,
 * whose header comments give each one's arguments and reply).
 *
 * One call per script: store_ddm() runs it with the arguments given (all
 * ARGV; only ddm_notify takes a key, the job record or "") and hands the
 * reply to cb as JSON, borrowed until cb returns: arrays as arrays, strings
 * as strings, integers as integers, nil as null.  Same contract as every
 * typed store call (store.h): cb runs exactly once unless cancelled,
 * possibly before the call returns.  Names and ids are validated by the
 * caller (they go into key names). */
#ifndef MDMD_STORE_DDM_H
#define MDMD_STORE_DDM_H

#include <jansson.h>
#include <stddef.h>

#include "store.h"

enum store_ddm_script {
    STORE_DDM_TOKENS,     /* device: the tokens endpoint */
    STORE_DDM_ITEMS,      /* device: declaration-items */
    STORE_DDM_FETCH,      /* device: declaration/<kind>/<identifier> */
    STORE_DDM_STATUS,     /* device: a status report */
    STORE_DDM_STATUS_GET, /* an enrollment's current status */
    STORE_DDM_FLEET,      /* enrollments by status */
    STORE_DDM_DECL_PUT,
    STORE_DDM_DECL_GET,
    STORE_DDM_DECL_LIST,
    STORE_DDM_DECL_DEL,
    STORE_DDM_SET_PUT,
    STORE_DDM_SET_GET,
    STORE_DDM_SET_LIST,
    STORE_DDM_SET_DEL,
    STORE_DDM_SET_ASSIGN,
    STORE_DDM_NOTIFY, /* queue DeclarativeManagement where the sync token moved */
    STORE_DDM_ASSET_PUT,
    STORE_DDM_ASSET_GET,
    STORE_DDM_ASSET_LIST,
    STORE_DDM_ASSET_DEL,
    STORE_DDM_ASSET_FETCH, /* device: the bytes, after the identity check */
    STORE_DDM_N
};

typedef void store_ddm_fn(void *arg, int err, json_t *reply);

/* argv: argc strings (lens NULL: NUL-terminated), copied before this returns. */
struct store_op *store_ddm(struct store *s, int script, int argc, const char *const *argv,
                           const size_t *lens, store_ddm_fn *cb, void *arg);

/* A device script's identity failure in its reply ({"unknown"}...) as a
 * store_ident (store_mdm.h); STORE_ID_OK for {"ok", ...}. */
int store_ddm_ident(json_t *reply) MDMD_MUSTCHECK;

#endif
