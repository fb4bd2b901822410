/* h_mdm.h: the MDM endpoints on the mutual-TLS listener.
 *   PUT /mdm/checkin   check-in messages (Authenticate, TokenUpdate, CheckOut)
 *   PUT /mdm/connect   command results and the next command
 *   PUT /mdm           either, told apart by Content-Type
 * POST is accepted as well.  Identity failures are 403, malformed bodies
 * 400, never 401 (iOS may unenroll on it). */
#ifndef MDMD_H_MDM_H
#define MDMD_H_MDM_H

#include <plist/plist.h>
#include <stddef.h>

#include "../store/store.h"
#include "../store/store_mdm.h"

struct req;
struct app;

void h_mdm_checkin(struct req *req, void *app);
void h_mdm_connect(struct req *req, void *app);
void h_mdm_any(struct req *req, void *app);

/* ---- shared by h_checkin.c and h_connect.c ---- */

#define H_MDM_MAX_FIELDS 32

/* One device request, from parse to response.  Owned by the handler; freed
 * by h_mdm_done() right after the response. */
struct h_mdm {
    struct req *req;
    struct app *app;
    plist_t body;                         /* the parsed request */
    char udid[65];
    char fp[65];                          /* client certificate SHA-256 */
    int cn_differs;                       /* its CN is not udid: see h_mdm_identity */
    struct store_kv fields[H_MDM_MAX_FIELDS];
    size_t nfields;
    char *owned[H_MDM_MAX_FIELDS + 4];    /* strings the fields point into */
    size_t nowned;
};

/* Parses the body and finds the certificate that identifies the device (TLS
 * client certificate, Mdm-Signature or a proxy's Client-Cert, as mdm_auth
 * says); m->fp is its SHA-256, m->cn_differs says its CN is not the body's
 * UDID (the store decides whether that certificate may act for the UDID),
 * then runs next(m).  A body over H_MDM_INLINE_PARSE bytes is parsed on the
 * crypto worker (a report of megabytes and 100,000s of nodes takes libplist
 * long enough to stall every other device).  On any failure it answers the
 * request itself and next never runs. */
#define H_MDM_INLINE_PARSE 8192
typedef void h_mdm_next_fn(struct h_mdm *m);
void h_mdm_begin(struct req *req, struct app *app, h_mdm_next_fn *next);
void h_mdm_done(struct h_mdm *m);
/* Answers 403 for an identity failure (logged); returns 1 if it answered. */
int h_mdm_refuse(struct h_mdm *m, int err, int ident);
/* Adds a record field; value is taken (freed with m). */
void h_mdm_field_take(struct h_mdm *m, const char *key, char *value);
/* Copies the listed string keys of dict into record fields (Apple key ->
 * our field name), from a table of pairs ending in NULL. */
void h_mdm_fields_from(struct h_mdm *m, plist_t dict, const char *const (*map)[2]);
/* Takes ownership of a string to free with m. */
char *h_mdm_own(struct h_mdm *m, char *s);

#endif
