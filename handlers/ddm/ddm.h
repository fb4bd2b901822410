/* ddm.h: Declarative Device Management, served by mdmd itself (docs/DDM.md).
 * Prefix ddm_, then the file's name.
 *
 *   ddm_checkin.c  the protocol: DeclarativeManagement check-ins (Endpoint
 *                  tokens, declaration-items, declaration/<kind>/<id>, status)
 *                  on the device channel and user channels
 *   ddm_notify.c   the DeclarativeManagement command: queued and pushed, in
 *                  paced chunks, wherever a change moved a sync token
 *   ddm_asset.c    asset data for asset declarations, to devices only
 *
 * An enrollment id is the UDID (the device channel) or "<UDID>:<UserID>" (a
 * user channel); every per-enrollment key holds the device's hash tag.  What
 * declarations are and what a device's set is lives in Redis (store_ddm.h);
 * the declaration schema in handlers/apple (ddm_schema.c, generated); the
 * REST side (declarations, sets, assignment, status) in handlers/api
 * (api_ddm.c), which calls ddm_notify_changed().
 * Single-threaded, on the loop. */
#ifndef MDMD_DDM_H
#define MDMD_DDM_H

#include <plist/plist.h>

struct req;
struct app;

/* ---- the protocol (ddm_checkin.c) ---- */

/* A MessageType DeclarativeManagement check-in, after mdm_begin() found the
 * device's certificate: body (borrowed; what is needed is copied), udid as
 * in the body, fp the certificate's SHA-256, cn_differs as mdm_msg's.
 * Answers req itself: 200 with Apple's JSON (TokensResponse,
 * DeclarationItemsResponse, a declaration; empty for status), 404 for a
 * declaration the enrollment does not have, 400 for a malformed message,
 * 403 for an identity failure, 503 when Redis is unavailable. */
void ddm_checkin(struct req *req, struct app *app, plist_t body, const char *udid, const char *fp,
                 int cn_differs);

/* ---- asset data (ddm_asset.c) ---- */

/* GET /v1/assets/{name} on the mutual-TLS listener: the bytes an admin
 * stored (PUT /v1/assets/{name}, api_ddm.c), to the enrolled device whose
 * identity certificate (CN = UDID, bound at Authenticate) makes the
 * request; 403 for any other certificate, 404 for an unknown name. */
void ddm_asset_fetch(struct req *req, void *app);
/* 1 when name may name an asset: 1..200 of [A-Za-z0-9._@+-]. */
int ddm_asset_name_ok(const char *name);

/* ---- the DeclarativeManagement command (ddm_notify.c) ---- */

#define DDM_NOTIFY_CHUNK_MIN 50   /* devices per Lua call, at least */
#define DDM_NOTIFY_CHUNK_MAX 1000 /* and at most */
#define DDM_NOTIFY_STEP_MS 5      /* the round trip each call aims at, as bulk jobs */

/* Something changed that may move sync tokens (a declaration in a set, a
 * set, an assignment): walks the fleet (mdm:devices), queueing the command
 * for every device channel whose token moved, and pushing; one Lua call at
 * a time, sized like bulk jobs, pausing while too many pushes wait for APNs
 * (job_push_backlog).  One walk at a time: a change during a walk starts
 * one more when it ends.  Progress goes to a job record (mdm:job:<id>,
 * GET /v1/jobs/{id}); job_id gets its id (33 bytes) when not NULL: the walk
 * that will see this change. */
void ddm_notify_changed(struct app *app, const char *why, char job_id[33]);

/* A device just enrolled: queue the command when it can speak DDM and has
 * declarations. */
void ddm_notify_enrolled(struct app *app, const char *udid);

#endif
