/* h_users.c: logins (h_users_login) and the /v1/users REST routes.  Password
 * hashing and checking run on the crypto worker (about 0.3 s of CPU each);
 * a job touches only its own struct (core/worker.h). */
#include "h_users.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ca/ca.h"
#include "../core/app.h"
#include "../core/http.h"
#include "../core/log.h"
#include "../core/util.h"
#include "../core/worker.h"
#include "../store/store_users.h"
#include "h_admin.h"

static const struct store_login_limits h_users_limits = {
    H_USERS_FAIL_USER, H_USERS_FAIL_ADDR, H_USERS_FAIL_WINDOW_S};

/* ---- login ---- */

struct h_users_login {
    struct app *app;
    h_users_login_fn *cb;
    void *arg;
    char name[STORE_USERS_NAME_MAX + 1]; /* "" when the given name is not valid */
    char given[STORE_USERS_NAME_MAX + 1]; /* what the caller passed, for its callback */
    char peer[64];
    char role[16];
    char *password;               /* wiped and freed with the struct */
    char *hash;                   /* NULL: unknown user (checked against a dummy) */
    int ok;                       /* the worker's verdict */
};

static void h_users_login_free(struct h_users_login *l)
{
    if (l->password != NULL) {
        explicit_bzero(l->password, strlen(l->password));
        free(l->password);
    }
    free(l->hash);
    free(l);
}

/* Answers the caller exactly once, then frees l. */
static void h_users_login_end(struct h_users_login *l, int status, int retry_after)
{
    log_info("event=login user=%s peer=%s status=%d%s", l->name[0] ? l->name : "(invalid)",
             l->peer, status, status == 429 ? " reason=rate_limited" : "");
    l->cb(l->arg, status, l->given, status == 200 ? l->role : "", retry_after);
    h_users_login_free(l);
}

static void h_users_login_on_recorded(void *arg, int err)
{
    struct h_users_login *l = arg;
    if (err != MDMD_OK)
        log_warn("event=login_record_failed user=%s err=%s", l->name, mdmd_strerror(err));
    h_users_login_end(l, l->ok ? 200 : 401, 0);
}

static void h_users_login_job(void *arg)
{
    struct h_users_login *l = arg;
    l->ok = ca_pw_verify(l->password, l->hash);
}

static void h_users_login_on_checked(void *arg)
{
    struct h_users_login *l = arg;
    if (worker_canceled(l->app->worker)) {
        h_users_login_end(l, 503, 0);
        return;
    }
    store_users_login_result(l->app->store, l->name, l->peer, l->ok, &h_users_limits,
                             h_users_login_on_recorded, l);
}

static void h_users_login_on_user(void *arg, int err, int retry_after, const struct store_user *u)
{
    struct h_users_login *l = arg;
    if (err != MDMD_OK) {
        log_warn("event=login_unavailable err=%s", mdmd_strerror(err));
        h_users_login_end(l, 503, 0);
        return;
    }
    if (retry_after > 0) {
        h_users_login_end(l, 429, retry_after);
        return;
    }
    if (u != NULL && l->name[0] != '\0') {
        l->hash = xstrdup(u->hash);
        snprintf(l->role, sizeof(l->role), "%s", u->role);
    }
    worker_submit(l->app->worker, h_users_login_job, h_users_login_on_checked, l);
}

void h_users_login(struct app *app, const char *username, const char *password, const char *peer,
                   h_users_login_fn *cb, void *arg)
{
    struct h_users_login *l = xcalloc(1, sizeof(*l));
    l->app = app;
    l->cb = cb;
    l->arg = arg;
    snprintf(l->given, sizeof(l->given), "%s", username != NULL ? username : "");
    /* An impossible name still costs a dummy check and counts against the
     * address (under the shared empty name), so it tells nothing apart. */
    if (username != NULL && store_users_name_ok(username))
        snprintf(l->name, sizeof(l->name), "%s", username);
    snprintf(l->peer, sizeof(l->peer), "%s", peer != NULL ? peer : "unknown");
    l->password = xstrndup(password != NULL ? password : "", H_USERS_PASSWORD_MAX);
    store_users_login_check(app->store, l->name, l->peer, &h_users_limits, h_users_login_on_user,
                            l);
}
