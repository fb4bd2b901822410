/* fake_store.h: a store double for the handler fuzz targets (test only).
 *
 * fake_store.c replaces store/store.c, the connection and op layer, in the
 * fuzz binaries: every typed store op (store_mdm.c, store_content.c, ...)
 * runs for real and builds its command, but no Redis is there: the fake
 * answers each op from the loop, one turn later as hiredis would, with a
 * reply chosen by the mode (a well-formed answer for the scripts the
 * handlers under test call, nil, an error reply, Redis unavailable, ...),
 * so the handlers' success and failure paths are both reached.  Cancelled
 * ops get no answer; store_free() answers the rest MDMD_ECANCELED. */
#ifndef MDMD_FAKE_STORE_H
#define MDMD_FAKE_STORE_H

#include "../../store/store.h"

enum fake_store_mode {
    FAKE_STORE_GOOD = 0, /* the usual answer of each script; other commands: empty array */
    FAKE_STORE_NIL,
    FAKE_STORE_ERROR,       /* "-ERR fake" */
    FAKE_STORE_UNAVAILABLE, /* not connected: MDMD_EUNAVAIL without a reply */
    FAKE_STORE_ZERO,        /* the integer 0 */
    FAKE_STORE_UNKNOWN,     /* the identity answer "unknown" */
    FAKE_STORE_EMPTY,       /* an empty array */
    FAKE_STORE_NMODES
};

void fake_store_set_mode(struct store *s, int mode);
/* Ops sent and not yet answered (store_pending() too). */
int fake_store_ops(const struct store *s) MDMD_MUSTCHECK;

#endif
