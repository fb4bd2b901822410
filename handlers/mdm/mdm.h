/* mdm.h: the device protocol on the mutual-TLS listener: check-in
 * (mdm_checkin.c), command polling (mdm_connect.c), the device identity
 * checks they share (mdm.c) and what a device gets at its first TokenUpdate
 * (mdm_provision.c).  Prefix mdm_, then the file's name. */
#ifndef MDMD_MDM_H
#define MDMD_MDM_H

#include "../../core/util.h"

#include <plist/plist.h>
#include <stddef.h>

#include "../../store/store_mdm.h"

/* The MDM endpoints on the mutual-TLS listener.
 *   PUT /mdm/checkin   check-in messages (Authenticate, TokenUpdate, CheckOut)
 *   PUT /mdm/connect   command results and the next command
 *   PUT /mdm           either, told apart by Content-Type
 * POST is accepted as well.  Identity failures are 403, malformed bodies
 * 400, never 401 (iOS may unenroll on it). */

struct req;
struct app;

void mdm_checkin(struct req *req, void *app);
void mdm_connect(struct req *req, void *app);
void mdm_any(struct req *req, void *app);

/* ---- shared by mdm_checkin.c and mdm_connect.c ---- */

#define MDM_MAX_FIELDS 32

/* One device request, from parse to response.  Owned by the handler; freed
 * by mdm_done() right after the response. */
struct mdm_msg {
    struct req *req;
    struct app *app;
    plist_t body;                /* the parsed request */
    char udid[UTIL_CHANNEL_MAX]; /* the UDID, or "<UDID>:<user>" once on a user channel */
    char fp[65];                 /* client certificate SHA-256 */
    int cn_differs;              /* its CN is not udid: see mdm_identity */
    struct store_kv fields[MDM_MAX_FIELDS];
    size_t nfields;
    char *owned[MDM_MAX_FIELDS + 4]; /* strings the fields point into */
    size_t nowned;
    uint64_t idle_mark; /* store_idle_mark before the report */
};

/* Parses the body and finds the certificate that identifies the device (TLS
 * client certificate, Mdm-Signature or a proxy's Client-Cert, as mdm_auth
 * says); m->fp is its SHA-256, m->cn_differs says its CN is not the body's
 * UDID (the store decides whether that certificate may act for the UDID),
 * then runs next(m).  A body over MDM_INLINE_PARSE bytes is parsed on the
 * crypto worker (a report of megabytes and 100,000s of nodes takes libplist
 * long enough to stall every other device).  On any failure it answers the
 * request itself and next never runs. */
#define MDM_INLINE_PARSE 8192
typedef void mdm_next_fn(struct mdm_msg *m);
void mdm_begin(struct req *req, struct app *app, mdm_next_fn *next);
void mdm_done(struct mdm_msg *m);
/* Answers 403 for an identity failure (logged); returns 1 if it answered. */
int mdm_refuse(struct mdm_msg *m, int err, int ident) MDMD_MUSTCHECK;
/* Adds a record field; value is taken (freed with m). */
void mdm_field_take(struct mdm_msg *m, const char *key, char *value);
/* Copies the listed string keys of dict into record fields (Apple key ->
 * our field name), from a table of pairs ending in NULL. */
void mdm_fields_from(struct mdm_msg *m, plist_t dict, const char *const (*map)[2]);
/* Takes ownership of a string to free with m. */
char *mdm_own(struct mdm_msg *m, char *s);

/* dict[key] (data) as lowercase hex, NULL if absent or not want_len bytes
 * (0: any length); caller frees. */
#define MDM_CHECKIN_TOKEN_LEN 32 /* bytes of an APNs device token */
char *mdm_checkin_data_hex(plist_t dict, const char *key, size_t want_len);
/* Answers 200 with the plist (taken) as XML. */
void mdm_answer(struct mdm_msg *m, plist_t answer);
/* The struct store_device_msg of m (fields, identity, time). */
struct store_device_msg mdm_device_msg(struct mdm_msg *m);

/* ---- the rest of the check-in protocol ---- */

/* 1 when mdmd answers message_type (a check-in MessageType of Apple's
 * schema), with its handler or a deliberate refusal; 0 otherwise. */
int mdm_checkin_handles(const char *message_type) MDMD_MUSTCHECK;

/* User channels (mdm_user.c).  A request carrying UserID (not Shared iPad's
 * all-F placeholder), else UserShortName, else EnrollmentUserID, is on the
 * channel "<UDID>:<that>" (docs/REDIS.md).  mdm_user_channel() switches
 * m->udid to it: 0 when the request is on the device channel, 1 on a user
 * channel, -1 when the user part is malformed (answered 400 already). */
int mdm_user_channel(struct mdm_msg *m) MDMD_MUSTCHECK;
void mdm_user_authenticate(struct mdm_msg *m);
void mdm_user_token_update(struct mdm_msg *m); /* m->udid is the channel */

/* Answers from stored data (mdm_escrow.c): the bootstrap token (sealed at
 * rest with ca_seal, <data_dir>/bootstrap.key), Return to Service, GetToken. */
void mdm_escrow_set(struct mdm_msg *m);
void mdm_escrow_get(struct mdm_msg *m);
void mdm_escrow_rts(struct mdm_msg *m);
void mdm_escrow_token(struct mdm_msg *m);

/* What a device gets right after it enrolls (the end of the
 * seed's D.2): on its first TokenUpdate, InstallProfile for every
 * configuration profile assigned to its user (the record's `user`, set by
 * enrollment) or to everyone, InstallProvisioningProfile for every assigned
 * provisioning profile, InstallApplication for every assigned app, then
 * DeviceInformation; all queued in order by one Lua script call, then the
 * device is woken.  A device enrolled without a user gets the "everyone"
 * content.  Single-threaded, on the loop.
 *
 * Nothing is forgotten when Redis fails in between: the TokenUpdate script
 * that marks the device enrolled also marks its provisioning pending, and
 * the script that queues the commands clears the mark, so it runs exactly
 * once.  A pending device is provisioned at its next TokenUpdate, or by the
 * retry timer after provision_retry_s. */

typedef void mdm_provision_done_fn(void *arg);

/* Queues the commands for udid (validated by the caller) if its
 * provisioning is pending, then calls done exactly once, possibly before
 * this returns.  A failure is logged; the mark stays, for a retry. */
void mdm_provision_start(struct app *app, const char *udid, mdm_provision_done_fn *done, void *arg);

/* The retry timer: every provision_retry_s, provisions up to 20 devices
 * pending for longer than that.  Stop before the store is freed. */
void mdm_provision_retry_start(struct app *app);
void mdm_provision_retry_stop(void);

/* The DeviceInformation queries sent after enrollment, NULL-terminated. */
extern const char *const mdm_provision_queries[];

#endif
