/* api.h: the admin REST API (JSON) on the 1-way listener, behind
 * "Authorization: Bearer <api key>" (or a console session, console.h).
 * api.c is the small leaf every route uses (auth, JSON answers, store
 * errors); one file per resource family after it: commands and push,
 * devices, bulk jobs, users and logins, content, metrics, the OpenAPI
 * document, health.  Prefix api_, then the file's name.  Routes: routes.c
 * and docs/openapi.json. */
#ifndef MDMD_API_H
#define MDMD_API_H

#include "../../core/util.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The admin REST API (JSON) on the 1-way listener, behind
 * "Authorization: Bearer <api key>".  Missing or wrong key: 401 (this is not
 * a device endpoint).  Routes: see docs/openapi.json. */

struct req;

void api_commands(struct req *req, void *app); /* POST /v1/commands */
void api_devices(struct req *req, void *app);  /* GET /v1/devices */
void api_device(struct req *req, void *app);   /* /v1/devices/{udid}[/commands] */
void api_push(struct req *req, void *app);     /* POST /v1/push */
/* GET, PUT /v1/push-certificate (api_pushcert.c): which one runs; install a
 * renewal, 409 when its topic is not the fleet's unless ?force=1. */
void api_push_cert(struct req *req, void *app);

/* The rest of the check-in protocol (api_checkin.c).  A device path's tail
 * /bootstrap-token (GET: the escrowed token, logged), /return-to-service
 * (GET, PUT, DELETE), /channels (GET: its user channels); 1 when handled. */
struct app;
int api_checkin_device(struct req *req, struct app *a, const char *udid, const char *tail);
void api_rts_fleet(struct req *req, void *app);     /* /v1/return-to-service */
void api_token_sources(struct req *req, void *app); /* GET /v1/token-sources */
void api_token_source(struct req *req, void *app);  /* /v1/token-sources/{type} */
void api_migrate(struct req *req, void *app);       /* POST /v1/migrate */

/* Fleet operations (api_fleet.c, issue 19):
 *   GET    /v1/devices/{udid}/commands/pending  queue with body and state
 *   DELETE /v1/devices/{udid}/commands/{uuid}   one command off one queue
 *   GET    /v1/devices/{udid}/pushes            the push ledger
 *   DELETE /v1/commands/{uuid}                  cancel everywhere: a job (202)
 *   GET    /v1/webhooks, GET /v1/webhooks/dead-letter,
 *   POST   /v1/webhooks/dead-letter/replay
 *   GET    /v1/fleet                            numbers, stale devices
 * api_fleet_device() takes a device path's tail; 1 when handled. */
int api_fleet_device(struct req *req, struct app *a, const char *udid, const char *tail);
void api_fleet_command(struct req *req, void *app);  /* /v1/commands/{uuid} */
void api_fleet_webhooks(struct req *req, void *app); /* /v1/webhooks[/...] */
void api_fleet_stats(struct req *req, void *app);    /* GET /v1/fleet */
void api_fleet_events(struct req *req, void *app);   /* GET /v1/events: SSE (feed.h) */
/* /metrics: webhooks, re-push, stale devices, push-to-check-in (fleet_json:
 * fleet_stats.lua's answer, NULL when Redis did not give it). */
struct metrics_text;
void api_fleet_metrics(struct metrics_text *t, const struct app *a, const char *fleet_json,
                       size_t len);

/* Answers with j as compact JSON; takes the reference. */
void api_json(struct req *req, int status, json_t *j);

/* 503 for a store error (timeout or unavailable). */
void api_fail(struct req *req, int err);

/* 1 if the request carries the API key or comes through the console's API
 * with a valid session and CSRF token (req_user() set, console.h);
 * otherwise answers 401 and returns 0. */
int api_authorized(struct req *req, void *app) MDMD_MUSTCHECK;

/* Bulk enqueue jobs.  POST /v1/commands with more than
 * API_JOBS_SYNC_MAX UDIDs, with "filter": "all_enrolled", or with "async": true
 * answers 202 {"job_id", "command_uuid", "total", "state"} as soon as the job
 * record exists, then queues the command chunk by chunk: one Lua call at a
 * time, the next sent from the previous one's callback, so the loop serves
 * other requests between chunks.  Redis runs nothing else while a script
 * runs, so the chunk size adapts to keep each call near API_JOBS_STEP_MS
 * (between API_JOBS_CHUNK_MIN and API_JOBS_CHUNK_MAX devices): on a busy machine
 * the job slows down rather than the check-ins.  Progress is
 * kept in Redis (mdm:job:<id>, docs/REDIS.md) and read with
 * GET /v1/jobs/{id}.
 *
 * A Redis call that fails with a timeout or "unavailable" pauses the job: the
 * same step is sent again after a backoff (100 ms doubling to 5 s).  Each
 * step's script checks the record's position (`next`, `steps`) and runs at
 * most once, so a step whose reply was lost is not done twice; the job
 * resumes from the stored cursor.  After job_retry_max_s without a success
 * it fails, and the record's error says where it stopped.
 *
 * A job belongs to no request: it owns itself from api_jobs_start() until its
 * last Redis call answers.  At SIGTERM (api_jobs_stop) it records "failed" and
 * where it stopped at its next step (a paused job, or one waiting for APNs
 * to catch up, at once), and the drain waits for that.  If the
 * drain deadline passes first, the store fails the call in flight with
 * MDMD_ECANCELED and the job frees itself (a paused one is freed by
 * api_jobs_free_all()); only then (or after kill -9) does its record stay
 * "running", and it is reported "failed" once it has not moved for
 * job_retry_max_s + API_JOBS_STALE_S seconds. */

struct app;

#define API_JOBS_SYNC_MAX 5000         /* larger UDID lists run as a job */
#define API_JOBS_CHUNK_MIN 50          /* devices per Lua call, at least */
#define API_JOBS_CHUNK_MAX 1000        /* and at most */
#define API_JOBS_STEP_MS 5             /* the round trip each call aims at */
#define API_JOBS_TTL_S (7 * 24 * 3600) /* a job record lives this long after its last update */
#define API_JOBS_STALE_S 60            /* a running job that has not moved this long died */

struct api_jobs_cmd { /* what a job queues */
    char uuid[37];
    char *request_type; /* owned */
    char *plist;        /* owned: XML of {Command, CommandUUID} */
    uint32_t plist_len;
    char **udids; /* owned, each string too; NULL for a filter job */
    size_t nudids;
    const char *state; /* filter jobs: the device state targeted (static) */
};

/* The device state a filter name targets ("all_enrolled" -> "enrolled"), or
 * NULL for an unknown filter. */
const char *api_jobs_filter_state(const char *filter);

/* Takes over c's pointers (and clears them), answers req, and runs the job. */
void api_jobs_start(struct req *req, struct app *app, struct api_jobs_cmd *c);

/* SIGTERM: every job ends at its next step (a paused one at once) with
 * state "failed" and an error that says where it stopped.  api_jobs_running()
 * counts the jobs still alive, for the shutdown drain. */
void api_jobs_stop(void);
int api_jobs_running(void) MDMD_MUSTCHECK;

/* Frees the paused jobs (they hold a timer and no call): at shutdown,
 * before the store and the event base go. */
void api_jobs_free_all(void);

/* With workers (core/super.h): this worker renews the leases of its jobs
 * and resumes those of a worker that died (api_jobs.c); a no-op with one
 * process.  Stop before the store goes. */
void api_jobs_lease_start(struct app *app);
void api_jobs_lease_stop(void);

/* GET /v1/jobs/{id} */
void api_jobs_get(struct req *req, void *app);

/* Users (admins and enrolling users) and their logins.
 *
 * api_users_login() is what the enrollment page (POST /enroll) calls: it checks
 * a username and password against the stored PBKDF2 hash, on the crypto
 * worker, with failed logins throttled per username and per client address
 * (API_USERS_FAIL_* below; fixed windows, counters in Redis with a TTL).
 *
 * The REST routes (admin API key required, JSON; docs/openapi.json):
 *   POST   /v1/users                  {"username","password","role"}
 *   GET    /v1/users                  GET/DELETE /v1/users/{name}
 *   PUT    /v1/users/{name}/password  {"password"}
 *   POST   /v1/users/{name}/verify    {"password"}: a throttled login check */

#define API_USERS_FAIL_USER 5       /* failed logins per username per window */
#define API_USERS_FAIL_ADDR 20      /* failed logins per client address per window */
#define API_USERS_FAIL_WINDOW_S 300 /* the window starts at the first failure */
#define API_USERS_PASSWORD_MIN 8
#define API_USERS_PASSWORD_MAX 1024

/* The outcome of a login:
 *   200: username/password are right; role is "admin" or "user";
 *   401: wrong username or password (the same answer for both);
 *   429: too many failures for this username or this address: refused
 *        without checking; retry_after_s says when to try again;
 *   503: Redis or the crypto worker is unavailable.
 * username and role are borrowed for the callback's duration (role is ""
 * unless 200). */
typedef void api_users_login_fn(void *arg, int status, const char *username, const char *role,
                                int retry_after_s);

/* Checks a login.  password and username are copied; peer is the client
 * address (req_peer()), the key of the per-address counter.  cb runs exactly
 * once, on the loop, possibly before this returns (Redis down: 503).  The
 * password is never logged and is wiped from memory after the check. */
void api_users_login(struct app *app, const char *username, const char *password, const char *peer,
                     api_users_login_fn *cb, void *arg);

/* REST handlers (routes.c). */
void api_users_collection(struct req *req, void *app); /* GET, POST /v1/users */
void api_users_item(struct req *req, void *app);       /* /v1/users/{name}[/password|/verify] */

/* The admin REST API for what devices get after enrolling
 * (JSON, admin API key; README "Users and content"):
 *   POST /v1/profiles                   a .mobileconfig (XML, binary, or CMS-signed)
 *   POST /v1/provisioning-profiles      a .mobileprovision (CMS-signed plist)
 *   POST /v1/apps                       {"identifier", "manifest_url" | "itunes_store_id"}
 *   GET  on each collection: the list; GET/DELETE {collection}/{id};
 *   GET  /v1/profiles/{id}?raw=1        the stored bytes as uploaded
 *   PUT  {collection}/{id}/assignment   {"users":[...], "everyone":bool}
 * Uploads are checked and refused with a 400 that says why.  Uploading an id
 * again replaces its content and keeps its assignment. */

void api_content_profiles(struct req *req, void *app);     /* /v1/profiles */
void api_content_profile(struct req *req, void *app);      /* /v1/profiles/{id}[/assignment] */
void api_content_provprofiles(struct req *req, void *app); /* /v1/provisioning-profiles */
void api_content_provprofile(struct req *req, void *app);
void api_content_apps(struct req *req, void *app); /* /v1/apps */
void api_content_app(struct req *req, void *app);

/* 1 when id may name content: 1..200 characters of [A-Za-z0-9._@+-]. */
int api_content_id_ok(const char *id) MDMD_MUSTCHECK;

/* Declarative management over REST (api_ddm.c; docs/DDM.md):
 *   GET /v1/declarations; PUT/GET/DELETE /v1/declarations/{identifier}
 *   GET /v1/declaration-sets; PUT/GET/DELETE /v1/declaration-sets/{name}
 *   PUT /v1/declaration-sets/{name}/assignment {"udids","users","everyone"}
 *   GET /v1/devices/{udid}/status[?user_id=]   an enrollment's status
 *   GET /v1/ddm/status?failed=1 | ?item=&value=|json=[&not=1]   the fleet
 *   GET /v1/assets; PUT/GET/DELETE /v1/assets/{name}   asset data
 * A declaration is checked against Apple's schema for its type and refused
 * with a 400 naming the key; a change that may move sync tokens starts a
 * walk that queues DeclarativeManagement where they moved (ddm.h), whose
 * job_id the answer gives. */

void api_ddm_declarations(struct req *req, void *app); /* GET /v1/declarations */
void api_ddm_declaration(struct req *req, void *app);  /* /v1/declarations/{id} */
void api_ddm_sets(struct req *req, void *app);         /* GET /v1/declaration-sets */
void api_ddm_set(struct req *req, void *app);    /* /v1/declaration-sets/{name}[/assignment] */
void api_ddm_status(struct req *req, void *app); /* GET /v1/devices/{udid}/status */
void api_ddm_fleet(struct req *req, void *app);  /* GET /v1/ddm/status */
/* Asset data that asset declarations point at (devices fetch it from the
 * MDM listener, ddm.h): PUT (the raw body; answers the Reference to put in
 * the declaration: DataURL, ContentType, Size, Hash-SHA-256, and
 * Authentication Type MDM), GET (that, without the bytes), DELETE. */
void api_ddm_assets(struct req *req, void *app); /* GET /v1/assets */
void api_ddm_asset(struct req *req, void *app);  /* /v1/assets/{name} */
/* 1 when path is /v1/devices/{udid}/status (routes.c sends it to api_ddm_status). */
int api_ddm_is_status(const char *path) MDMD_MUSTCHECK;

/* GET /metrics, the Prometheus text format (version 0.0.4) on
 * the 1-way listener.  Behind the admin API key unless `metrics_public yes`.
 * One Redis call per scrape (store_stats: O(1)); everything else is read
 * from the modules' counters.  The series are listed in docs/METRICS.md. */

void api_metrics(struct req *req, void *app);

/* GET /v1/openapi.json, the OpenAPI 3 description of the REST
 * API.  The document is docs/openapi.json, compiled into the binary by the
 * Makefile (api_openapi_json); test/unit/test_openapi.c checks it against the
 * route table, so a route without documentation fails `make test`. */

extern const char api_openapi_json[]; /* generated from docs/openapi.json */

void api_openapi(struct req *req, void *app);

/* GET /healthz on the 1-way listener.  200 with
 * {"status":"ok","redis":"up"} when a live PING answers, 503 with
 * {"status":"degraded","redis":"down","error":...} when it does not. */

void api_health(struct req *req, void *app);

#endif
