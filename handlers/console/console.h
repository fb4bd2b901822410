#ifndef MDMD_CONSOLE_H
#define MDMD_CONSOLE_H

/* The web console ("Mobile Manager") on the 1-way listener.
 *
 * Static files (web/, compiled into the binary by web/embed.sh; nothing is
 * read from disk at run time):
 *   GET /                   302 to /console/
 *   GET /console            302 to /console/
 *   GET /console/NAME       a file of web/ by its exact name (index.html for "")
 *
 * JSON API for the console's JavaScript (console_api.c):
 *   POST /console/api/login      {"username","password"} -> {"user","csrf"} and
 *                                the session cookie; admins only
 *   GET  /console/api/session    {"user","csrf"} of the current session
 *   POST /console/api/logout
 *   GET  /console/api/schema     the MDM commands and their keys (apple.h)
 *   ANY  /console/api/REST       runs the admin REST handler of /v1/REST
 *                                (docs/openapi.json) with the session instead of the
 *                                API key
 *
 * Session: a random 256-bit id in the cookie "__Host-mdmd_session" (HttpOnly,
 * Secure, SameSite=Strict, Path=/), stored in Redis as its SHA-1 with a
 * sliding idle expiry (console_session_idle_s) and an absolute one
 * (console_session_max_s).  Every state-changing request (anything but GET
 * and HEAD) must carry the session's CSRF token in "X-CSRF-Token".  Every
 * console response carries a strict Content-Security-Policy. */

struct req;

void console_root(struct req *req, void *app);   /* GET / and /console: redirect */
void console_static(struct req *req, void *app); /* GET /console/NAME */
void console_api(struct req *req, void *app);    /* /console/api/... */

/* The security headers every console response carries; no_store for API
 * answers (static files are revalidated with their ETag instead). */
void console_headers(struct req *req, int no_store);

#endif
