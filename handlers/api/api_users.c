/* api_users.c: logins (api_users_login) and the /v1/users REST routes.  Password
 * hashing and checking run on the crypto worker (about 0.3 s of CPU each);
 * a job touches only its own struct (core/worker.h). */
#include "api.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../ca/ca.h"
#include "../../core/app.h"
#include "../../core/http.h"
#include "../../core/log.h"
#include "../../core/util.h"
#include "../../core/worker.h"
#include "../../store/store_users.h"

static const struct store_login_limits api_users_limits = {API_USERS_FAIL_USER, API_USERS_FAIL_ADDR,
                                                           API_USERS_FAIL_WINDOW_S};

/* ---- login ---- */

struct api_users_login {
    struct app *app;
    api_users_login_fn *cb;
    void *arg;
    char name[STORE_USERS_NAME_MAX + 1];  /* "" when the given name is not valid */
    char given[STORE_USERS_NAME_MAX + 1]; /* what the caller passed, for its callback */
    char peer[64];
    char role[16];
    char *password; /* wiped and freed with the struct */
    char *hash;     /* NULL: unknown user (checked against a dummy) */
    int ok;         /* the worker's verdict */
};

static void api_users_login_free(struct api_users_login *l)
{
    if (l->password != NULL) {
        explicit_bzero(l->password, strlen(l->password));
        free(l->password);
    }
    free(l->hash);
    free(l);
}

/* Answers the caller exactly once, then frees l. */
static void api_users_login_end(struct api_users_login *l, int status, int retry_after)
{
    log_info("event=login user=%s peer=%s status=%d%s", l->name[0] ? l->name : "(invalid)", l->peer,
             status, status == 429 ? " reason=rate_limited" : "");
    l->cb(l->arg, status, l->given, status == 200 ? l->role : "", retry_after);
    api_users_login_free(l);
}

static void api_users_login_on_recorded(void *arg, int err)
{
    struct api_users_login *l = arg;
    /* The password was right: a lost refund only costs the user an attempt. */
    if (err != MDMD_OK)
        log_warn("event=login_record_failed user=%s err=%s", l->name, mdmd_strerror(err));
    api_users_login_end(l, 200, 0);
}

static void api_users_login_job(void *arg)
{
    struct api_users_login *l = arg;
    l->ok = ca_pw_verify(l->password, l->hash);
}

/* A failure was counted before the check (store_users_login_check); only a
 * success needs another round trip, to take it back. */
static void api_users_login_on_checked(void *arg)
{
    struct api_users_login *l = arg;
    if (worker_canceled(l->app->worker))
        api_users_login_end(l, 503, 0);
    else if (!l->ok)
        api_users_login_end(l, 401, 0);
    else
        store_users_login_ok(l->app->store, l->name, l->peer, api_users_login_on_recorded, l);
}

static void api_users_login_on_user(void *arg, int err, int retry_after, const struct store_user *u)
{
    struct api_users_login *l = arg;
    if (err != MDMD_OK) {
        log_warn("event=login_unavailable err=%s", mdmd_strerror(err));
        api_users_login_end(l, 503, 0);
        return;
    }
    if (retry_after > 0) {
        api_users_login_end(l, 429, retry_after);
        return;
    }
    if (u != NULL && l->name[0] != '\0') {
        l->hash = xstrdup(u->hash);
        snprintf(l->role, sizeof(l->role), "%s", u->role);
    }
    worker_submit(l->app->worker, api_users_login_job, api_users_login_on_checked, l);
}

void api_users_login(struct app *app, const char *username, const char *password, const char *peer,
                     api_users_login_fn *cb, void *arg)
{
    struct api_users_login *l = xcalloc(1, sizeof(*l));
    l->app = app;
    l->cb = cb;
    l->arg = arg;
    snprintf(l->given, sizeof(l->given), "%s", username != NULL ? username : "");
    /* An impossible name still costs a dummy check and counts against the
     * address (under the shared empty name), so it tells nothing apart. */
    if (username != NULL && store_users_name_ok(username))
        snprintf(l->name, sizeof(l->name), "%s", username);
    snprintf(l->peer, sizeof(l->peer), "%s", peer != NULL ? peer : "unknown");
    /* xstrndup copies exactly n bytes: bound the length first. */
    const char *pw = password != NULL ? password : "";
    l->password = xstrndup(pw, strnlen(pw, API_USERS_PASSWORD_MAX));
    store_users_login_check(app->store, l->name, l->peer, &api_users_limits,
                            api_users_login_on_user, l);
}

/* ---- REST: /v1/users ---- */

/* One REST request that hashes a password: lives until it answers. */
struct api_users_op {
    struct req *req;
    struct app *app;
    char name[STORE_USERS_NAME_MAX + 1];
    char role[16];
    int create;                /* POST /v1/users, else PUT .../password */
    char *password;            /* wiped once hashed */
    char hash[CA_PW_HASH_MAX]; /* "" when hashing failed */
};

static void api_users_op_free(struct api_users_op *op)
{
    if (op->password != NULL) {
        explicit_bzero(op->password, strlen(op->password));
        free(op->password);
    }
    explicit_bzero(op->hash, sizeof(op->hash));
    free(op);
}

static void api_users_on_put(void *arg, int err, int result)
{
    struct api_users_op *op = arg;
    if (err != MDMD_OK)
        api_fail(op->req, err);
    else if (result == STORE_USERS_EXISTS)
        req_fail(op->req, 409, "a user with this name exists");
    else if (result == STORE_USERS_NOT_FOUND)
        req_fail(op->req, 404, "no such user");
    else if (op->create) {
        log_info("event=user_created user=%s role=%s", op->name, op->role);
        api_json(op->req, 201, json_pack("{s:s, s:s}", "username", op->name, "role", op->role));
    } else {
        log_info("event=user_password_set user=%s", op->name);
        req_respond(op->req, 204, NULL, NULL, 0);
    }
    api_users_op_free(op);
}

static void api_users_hash_job(void *arg)
{
    struct api_users_op *op = arg;
    if (ca_pw_hash(op->password, CA_PW_ITERATIONS, op->hash) != 0)
        op->hash[0] = '\0';
    explicit_bzero(op->password, strlen(op->password));
}

static void api_users_on_hashed(void *arg)
{
    struct api_users_op *op = arg;
    if (worker_canceled(op->app->worker) || op->hash[0] == '\0') {
        req_fail(op->req, 503, "password hashing failed");
        api_users_op_free(op);
        return;
    }
    store_users_put(op->app->store, op->name, op->role, op->hash, op->create, util_now_ms(),
                    api_users_on_put, op);
}

/* The "password" member of a JSON object body, checked; NULL with err set. */
static const char *api_users_password(json_t *j, char *err, size_t errlen)
{
    const char *pw = json_string_value(json_object_get(j, "password"));
    size_t n = pw != NULL ? strlen(pw) : 0;
    if (pw == NULL)
        snprintf(err, errlen, "password must be a string");
    else if (n < API_USERS_PASSWORD_MIN || n > API_USERS_PASSWORD_MAX)
        snprintf(err, errlen, "password must be %d to %d characters", API_USERS_PASSWORD_MIN,
                 API_USERS_PASSWORD_MAX);
    else
        return pw;
    return NULL;
}

/* Validates and starts the hashing; answers 400 itself on bad input. */
static void api_users_start_put(struct req *req, struct app *app, const char *name,
                                const char *role, json_t *j, int create)
{
    char err[160];
    const char *pw = api_users_password(j, err, sizeof(err));
    if (name == NULL || !store_users_name_ok(name)) {
        req_fail(req, 400, "username must be 1 to 64 characters of A-Z a-z 0-9 . _ @ -");
        return;
    }
    if (create && (role == NULL || !store_users_role_ok(role))) {
        req_fail(req, 400, "role must be admin or user");
        return;
    }
    if (pw == NULL) {
        req_fail(req, 400, err);
        return;
    }
    struct api_users_op *op = xcalloc(1, sizeof(*op));
    op->req = req;
    op->app = app;
    op->create = create;
    snprintf(op->name, sizeof(op->name), "%s", name);
    snprintf(op->role, sizeof(op->role), "%s", create ? role : "");
    op->password = xstrdup(pw);
    worker_submit(app->worker, api_users_hash_job, api_users_on_hashed, op);
}

/* The request body as a JSON object (new reference), or NULL after a 400. */
static json_t *api_users_body(struct req *req)
{
    size_t len;
    json_error_t jerr;
    const char *body = (const char *)req_body(req, &len);
    json_t *j = json_loadb(body, len, 0, &jerr);
    if (j == NULL || !json_is_object(j)) {
        json_decref(j);
        req_fail(req, 400, "body must be a JSON object");
        return NULL;
    }
    return j;
}

static json_int_t api_users_ms(const char *s)
{
    return s != NULL ? (json_int_t)strtoll(s, NULL, 10) : 0;
}

static void api_users_on_list(void *arg, int err, const struct store_user *u, size_t n)
{
    struct req *req = arg;
    if (err != MDMD_OK) {
        api_fail(req, err);
        return;
    }
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_pack("{s:s, s:s, s:I, s:I}", "username", u[i].name, "role",
                                           u[i].role, "created", api_users_ms(u[i].created),
                                           "updated", api_users_ms(u[i].updated)));
    api_json(req, 200, json_pack("{s:o}", "users", a));
}

void api_users_collection(struct req *req, void *app)
{
    struct app *a = app;
    if (!api_authorized(req, app))
        return;
    if (req_method(req) == HTTP_M_GET) {
        store_users_list(a->store, api_users_on_list, req);
        return;
    }
    json_t *j = api_users_body(req);
    if (j == NULL)
        return;
    api_users_start_put(req, a, json_string_value(json_object_get(j, "username")),
                        json_string_value(json_object_get(j, "role")), j, 1);
    json_decref(j);
}

/* /v1/users/{name}[/{sub}]: the name into name, the rest into sub ("" when
 * none).  -1 when the path has another shape or the name is not valid. */
static int api_users_path(const struct req *req, char name[STORE_USERS_NAME_MAX + 1],
                          const char **sub)
{
    const char *p = req_path(req) + strlen("/v1/users/");
    size_t n = strcspn(p, "/");
    if (n == 0 || n > STORE_USERS_NAME_MAX)
        return -1;
    memcpy(name, p, n);
    name[n] = '\0';
    *sub = p[n] == '/' ? p + n + 1 : "";
    return store_users_name_ok(name) ? 0 : -1;
}

static void api_users_on_get(void *arg, int err, const struct store_user *u)
{
    struct req *req = arg;
    char name[STORE_USERS_NAME_MAX + 1];
    const char *sub;
    if (err != MDMD_OK) {
        api_fail(req, err);
        return;
    }
    if (u == NULL || api_users_path(req, name, &sub) != 0) {
        req_fail(req, 404, "no such user");
        return;
    }
    api_json(req, 200,
             json_pack("{s:s, s:s, s:I, s:I, s:i}", "username", name, "role", u->role, "created",
                       api_users_ms(u->created), "updated", api_users_ms(u->updated), "iterations",
                       ca_pw_iterations(u->hash)));
}

static void api_users_on_del(void *arg, int err, int result)
{
    struct req *req = arg;
    if (err != MDMD_OK)
        api_fail(req, err);
    else if (result == STORE_USERS_NOT_FOUND)
        req_fail(req, 404, "no such user");
    else {
        log_info("event=user_deleted path=%s", req_path(req));
        req_respond(req, 204, NULL, NULL, 0);
    }
}

static void api_users_on_verify(void *arg, int status, const char *username, const char *role,
                                int retry_after_s)
{
    struct req *req = arg;
    char secs[16];
    if (status == 200) {
        api_json(req, 200,
                 json_pack("{s:b, s:s, s:s}", "valid", 1, "username", username, "role", role));
    } else if (status == 429) {
        snprintf(secs, sizeof(secs), "%d", retry_after_s);
        req_add_header(req, "Retry-After", secs);
        req_fail(req, 429, "too many failed logins; try again later");
    } else if (status == 401) {
        /* 403, not 401: on this API 401 means a wrong API key. */
        req_fail(req, 403, "wrong username or password");
    } else {
        req_fail(req, 503, "login check unavailable");
    }
}

/* PUT .../password and POST .../verify: both take {"password"}. */
static void api_users_with_password(struct req *req, struct app *a, const char *name, int verify)
{
    json_t *j = api_users_body(req);
    if (j == NULL)
        return;
    const char *pw = json_string_value(json_object_get(j, "password"));
    if (!verify)
        api_users_start_put(req, a, name, NULL, j, 0);
    else if (pw == NULL)
        req_fail(req, 400, "password must be a string");
    else
        api_users_login(a, name, pw, req_peer(req), api_users_on_verify, req);
    json_decref(j);
}

void api_users_item(struct req *req, void *app)
{
    struct app *a = app;
    char name[STORE_USERS_NAME_MAX + 1];
    const char *sub;
    int m = req_method(req);
    if (!api_authorized(req, app))
        return;
    if (api_users_path(req, name, &sub) != 0)
        req_fail(req, 404, "no such user");
    else if (*sub == '\0' && m == HTTP_M_GET)
        store_users_get(a->store, name, api_users_on_get, req);
    else if (*sub == '\0' && m == HTTP_M_DELETE)
        store_users_del(a->store, name, api_users_on_del, req);
    else if (strcmp(sub, "password") == 0 && m == HTTP_M_PUT)
        api_users_with_password(req, a, name, 0);
    else if (strcmp(sub, "verify") == 0 && m == HTTP_M_POST)
        api_users_with_password(req, a, name, 1);
    else if (*sub == '\0' || strcmp(sub, "password") == 0 || strcmp(sub, "verify") == 0)
        req_fail(req, 405, "method not allowed");
    else
        req_fail(req, 404, "no such endpoint");
}
