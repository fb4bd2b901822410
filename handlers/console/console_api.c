/* console_api.c: the console's JSON API (console.h): login, session,
 * logout, the command schema, and every admin REST route of /v1 run with a
 * session instead of the API key.
 *
 * A request is two steps: the session lookup in Redis (one script call that
 * also slides the idle expiry), then the answer or the REST handler itself.
 * The REST handlers are not copied: the request's path is rewritten to its
 * /v1 form and the handler of routes_public runs it, with req_user() set so
 * that api_authorized() lets it through. */
#include "console.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/app.h"
#include "../../core/conf.h"
#include "../../core/http.h"
#include "../../core/log.h"
#include "../../core/util.h"
#include "../../store/store_console.h"
#include "../../store/store_users.h"
#include "../api/api.h"
#include "../apple/apple.h"

#define CONSOLE_COOKIE "__Host-mdmd_session"
#define CONSOLE_ATTRS "; Path=/; Secure; HttpOnly; SameSite=Strict"
#define CONSOLE_SECRET 32 /* bytes of a session id and of a CSRF token */
#define CONSOLE_HEX (2 * CONSOLE_SECRET)

struct console_api { /* one console request across its Redis step */
    struct req *req;
    struct app *app;
    char sid[CONSOLE_HEX + 1];  /* the session id (a secret: never logged) */
    char csrf[CONSOLE_HEX + 1]; /* login: the new session's CSRF token */
    char user[STORE_USERS_NAME_MAX + 1];
    char *sub; /* the path after /console/api, e.g. "/devices" */
};

static struct console_api *console_api_new(struct req *req, struct app *a, const char *sub)
{
    struct console_api *c = xcalloc(1, sizeof(*c));
    c->req = req;
    c->app = a;
    c->sub = xstrdup(sub);
    return c;
}

static void console_api_free(struct console_api *c)
{
    explicit_bzero(c->sid, sizeof(c->sid));
    explicit_bzero(c->csrf, sizeof(c->csrf));
    free(c->sub);
    free(c);
}

/* Anything but GET and HEAD changes something: it needs the CSRF token. */
static int console_api_changes(const struct req *req)
{
    return req_method(req) != HTTP_M_GET && req_method(req) != HTTP_M_HEAD;
}

static const char *console_api_method(const struct req *req)
{
    switch (req_method(req)) {
    case HTTP_M_GET: return "GET";
    case HTTP_M_POST: return "POST";
    case HTTP_M_PUT: return "PUT";
    case HTTP_M_DELETE: return "DELETE";
    case HTTP_M_PATCH: return "PATCH";
    default: return "HEAD";
    }
}

/* The session id from the Cookie header: 0, or -1 when absent or malformed. */
static int console_api_cookie(const struct req *req, char sid[CONSOLE_HEX + 1])
{
    const char *p = req_header(req, "Cookie");
    const size_t n = strlen(CONSOLE_COOKIE "=");
    while (p != NULL && *(p += strspn(p, " ;")) != '\0') {
        if (strncmp(p, CONSOLE_COOKIE "=", n) == 0) {
            p += n;
            if (strcspn(p, "; ") != CONSOLE_HEX || strspn(p, "0123456789abcdef") < CONSOLE_HEX)
                return -1;
            memcpy(sid, p, CONSOLE_HEX);
            sid[CONSOLE_HEX] = '\0';
            return 0;
        }
        p += strcspn(p, ";");
    }
    return -1;
}

static void console_api_clear_cookie(struct req *req)
{
    req_add_header(req, "Set-Cookie", CONSOLE_COOKIE "=" CONSOLE_ATTRS "; Max-Age=0");
}

static void console_api_unauthorized(struct req *req)
{
    console_api_clear_cookie(req);
    req_respond_json(req, 401, "{\"error\":\"not logged in\"}\n");
}

/* ---- POST /console/api/login ---- */

static void console_api_on_created(void *arg, int err)
{
    struct console_api *c = arg;
    char cookie[sizeof(CONSOLE_COOKIE) + CONSOLE_HEX + sizeof(CONSOLE_ATTRS) + 2];
    if (err != MDMD_OK) {
        api_fail(c->req, err);
    } else {
        log_info("event=console_login user=%s peer=%s", c->user, req_peer(c->req));
        snprintf(cookie, sizeof(cookie), "%s=%s%s", CONSOLE_COOKIE, c->sid, CONSOLE_ATTRS);
        req_add_header(c->req, "Set-Cookie", cookie);
        explicit_bzero(cookie, sizeof(cookie));
        api_json(c->req, 200, json_pack("{s:s, s:s}", "user", c->user, "csrf", c->csrf));
    }
    console_api_free(c);
}

static void console_api_start_session(struct console_api *c, const char *user)
{
    unsigned char raw[CONSOLE_SECRET];
    util_random(raw, sizeof(raw));
    util_hex(raw, sizeof(raw), c->sid);
    util_random(raw, sizeof(raw));
    util_hex(raw, sizeof(raw), c->csrf);
    explicit_bzero(raw, sizeof(raw));
    snprintf(c->user, sizeof(c->user), "%s", user);
    store_console_session_new(c->app->store, c->sid, c->user, c->csrf, util_now_ms(),
                              c->app->cf->console_session_idle_s, console_api_on_created, c);
}

static void console_api_on_login(void *arg, int status, const char *username, const char *role,
                                 int retry_after_s)
{
    struct console_api *c = arg;
    char secs[16];
    if (status == 200 && strcmp(role, "admin") == 0) {
        console_api_start_session(c, username);
        return;
    }
    if (status == 200) {
        log_warn("event=console_login_refused user=%s peer=%s reason=not_admin", username,
                 req_peer(c->req));
        req_fail(c->req, 403, "the console is for admins only");
    } else if (status == 401) {
        req_fail(c->req, 401, "wrong username or password");
    } else if (status == 429) {
        snprintf(secs, sizeof(secs), "%d", retry_after_s);
        req_add_header(c->req, "Retry-After", secs);
        req_fail(c->req, 429, "too many failed logins; try again later");
    } else {
        req_fail(c->req, 503, "login unavailable");
    }
    console_api_free(c);
}

/* A cross-site page cannot send a JSON body without a CORS preflight, which
 * this origin never grants, and the session cookie is SameSite=Strict: that
 * is the login's CSRF protection (there is no session, so no token yet). */
static void console_api_login(struct req *req, struct app *a)
{
    size_t len;
    const char *ct = req_header(req, "Content-Type");
    char *body = (char *)req_body(req, &len);
    json_t *j = NULL;
    if (ct == NULL || strncmp(ct, "application/json", 16) != 0) {
        req_fail(req, 415, "login takes application/json");
        return;
    }
    j = json_loadb(body, len, 0, NULL);
    explicit_bzero(body, len); /* the password is in there */
    const char *u = json_string_value(json_object_get(j, "username"));
    const char *p = json_string_value(json_object_get(j, "password"));
    if (u == NULL || p == NULL)
        req_fail(req, 400, "username and password must be strings");
    else
        api_users_login(a, u, p, req_peer(req), console_api_on_login,
                        console_api_new(req, a, "/login"));
    if (p != NULL)
        explicit_bzero((char *)p, strlen(p));
    json_decref(j);
}

/* ---- GET /console/api/schema ---- */

static const char *console_api_type(char t)
{
    switch (t) {
    case 's': return "string";
    case 'i': return "integer";
    case 'b': return "boolean";
    case 'r': return "real";
    case 'd': return "data";
    case 't': return "date";
    case 'a': return "array";
    case 'D': return "dictionary";
    default: return "unknown";
    }
}

static void console_api_schema(struct req *req)
{
    json_t *cmds = json_array();
    for (size_t i = 0; i < mdm_schema_count(); i++) {
        const struct mdm_command *c = mdm_schema_at(i);
        json_t *keys = json_array();
        for (const struct mdm_key *k = c->keys; k->name != NULL; k++)
            json_array_append_new(keys,
                                  json_pack("{s:s, s:s, s:b}", "name", k->name, "type",
                                            console_api_type(k->type), "required", k->required));
        json_array_append_new(
            cmds, json_pack("{s:s, s:o}", "request_type", c->request_type, "keys", keys));
    }
    api_json(req, 200, json_pack("{s:o}", "commands", cmds));
}

/* ---- POST /console/api/logout ---- */

static void console_api_on_logout(void *arg, int err)
{
    struct console_api *c = arg;
    if (err != MDMD_OK) {
        api_fail(c->req, err);
    } else {
        log_info("event=console_logout user=%s peer=%s", c->user, req_peer(c->req));
        console_api_clear_cookie(c->req);
        req_respond_json(c->req, 200, "{\"logged_out\":true}\n");
    }
    console_api_free(c);
}

/* ---- everything else: the REST handler of /v1<sub> ---- */

static void console_api_proxy(struct req *req, struct app *a, const char *sub, const char *user)
{
    char *path = xasprintf("/v1%s", sub);
    const struct http_route *rt = sub[0] == '/' ? http_route_find(a->routes_public, path) : NULL;
    if (rt == NULL || strncmp(rt->path, "/v1/", 4) != 0) {
        req_fail(req, 404, "no such endpoint");
    } else if ((rt->methods & req_method(req)) == 0) {
        req_fail(req, 405, "method not allowed");
    } else {
        if (console_api_changes(req))
            log_info("event=console_request user=%s method=%s path=%s", user,
                     console_api_method(req), path);
        req_set_path(req, path);
        rt->fn(req, a);
    }
    free(path);
}

/* The session is valid (and the CSRF token, when one is needed). */
static void console_api_route(struct console_api *c)
{
    struct req *req = c->req;
    int get = req_method(req) == HTTP_M_GET;
    req_set_user(req, c->user);
    if (strcmp(c->sub, "/session") == 0 && get) {
        api_json(req, 200, json_pack("{s:s, s:s}", "user", c->user, "csrf", c->csrf));
    } else if (strcmp(c->sub, "/schema") == 0 && get) {
        console_api_schema(req);
    } else if (strcmp(c->sub, "/logout") == 0 && req_method(req) == HTTP_M_POST) {
        store_console_session_del(c->app->store, c->sid, console_api_on_logout, c);
        return;
    } else if (!strcmp(c->sub, "/session") || !strcmp(c->sub, "/schema") ||
               !strcmp(c->sub, "/logout")) {
        req_fail(req, 405, "method not allowed");
    } else {
        console_api_proxy(req, c->app, c->sub, c->user);
    }
    console_api_free(c);
}

static void console_api_on_session(void *arg, int err, const char *user, const char *csrf)
{
    struct console_api *c = arg;
    const char *given = req_header(c->req, "X-CSRF-Token");
    if (err != MDMD_OK) {
        api_fail(c->req, err);
    } else if (user == NULL) {
        log_info("event=console_session_invalid peer=%s", req_peer(c->req));
        console_api_unauthorized(c->req);
    } else if (console_api_changes(c->req) && !util_secret_eq(given, csrf)) {
        log_warn("event=console_csrf_mismatch user=%s peer=%s", user, req_peer(c->req));
        req_fail(c->req, 403, "missing or wrong CSRF token");
    } else {
        snprintf(c->user, sizeof(c->user), "%s", user);
        snprintf(c->csrf, sizeof(c->csrf), "%s", csrf);
        console_api_route(c);
        return;
    }
    console_api_free(c);
}

void console_api(struct req *req, void *app)
{
    struct app *a = app;
    const char *sub = req_path(req) + strlen("/console/api");
    char sid[CONSOLE_HEX + 1];
    console_headers(req, 1);
    if (strcmp(sub, "/login") == 0) {
        if (req_method(req) == HTTP_M_POST)
            console_api_login(req, a);
        else
            req_fail(req, 405, "method not allowed");
        return;
    }
    if (console_api_cookie(req, sid) != 0) {
        console_api_unauthorized(req);
        return;
    }
    if (console_api_changes(req) && req_header(req, "X-CSRF-Token") == NULL) {
        req_fail(req, 403, "missing or wrong CSRF token");
        return;
    }
    struct console_api *c = console_api_new(req, a, sub);
    memcpy(c->sid, sid, sizeof(sid));
    explicit_bzero(sid, sizeof(sid));
    store_console_session_get(a->store, c->sid, util_now_ms(), a->cf->console_session_idle_s,
                              a->cf->console_session_max_s, console_api_on_session, c);
}
