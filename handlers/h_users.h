/* h_users.h: users (admins and enrolling users) and their logins.
 *
 * h_users_login() is what the enrollment page (POST /enroll) calls: it checks
 * a username and password against the stored PBKDF2 hash, on the crypto
 * worker, with failed logins throttled per username and per client address
 * (H_USERS_FAIL_* below; fixed windows, counters in Redis with a TTL).
 *
 * The REST routes (admin API key required, JSON; docs/API.md):
 *   POST   /v1/users                  {"username","password","role"}
 *   GET    /v1/users                  GET/DELETE /v1/users/{name}
 *   PUT    /v1/users/{name}/password  {"password"}
 *   POST   /v1/users/{name}/verify    {"password"}: a throttled login check */
#ifndef MDMD_H_USERS_H
#define MDMD_H_USERS_H

struct app;
struct req;

#define H_USERS_FAIL_USER 5       /* failed logins per username per window */
#define H_USERS_FAIL_ADDR 20      /* failed logins per client address per window */
#define H_USERS_FAIL_WINDOW_S 300 /* the window starts at the first failure */
#define H_USERS_PASSWORD_MIN 8
#define H_USERS_PASSWORD_MAX 1024

/* The outcome of a login:
 *   200: username/password are right; role is "admin" or "user";
 *   401: wrong username or password (the same answer for both);
 *   429: too many failures for this username or this address: refused
 *        without checking; retry_after_s says when to try again;
 *   503: Redis or the crypto worker is unavailable.
 * username and role are borrowed for the callback's duration (role is ""
 * unless 200). */
typedef void h_users_login_fn(void *arg, int status, const char *username, const char *role,
                              int retry_after_s);

/* Checks a login.  password and username are copied; peer is the client
 * address (req_peer()), the key of the per-address counter.  cb runs exactly
 * once, on the loop, possibly before this returns (Redis down: 503).  The
 * password is never logged and is wiped from memory after the check. */
void h_users_login(struct app *app, const char *username, const char *password, const char *peer,
                   h_users_login_fn *cb, void *arg);

/* REST handlers (routes.c). */
void h_users_collection(struct req *req, void *app);   /* GET, POST /v1/users */
void h_users_item(struct req *req, void *app);         /* /v1/users/{name}[/password|/verify] */

#endif
