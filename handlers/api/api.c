/* api.c: what every REST route uses: the API key check, JSON answers, the
 * answer to a store error. */
#include "api.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../core/app.h"
#include "../../core/http.h"
#include "../../core/log.h"
#include "../../core/util.h"

int api_authorized(struct req *req, void *app)
{
    struct app *a = app;
    const char *h = req_header(req, "Authorization");
    /* Either the API key, or a console request whose session cookie and CSRF
     * token console_api checked (a Redis lookup, so it runs as a step of
     * its own before the handler and marks the request with req_set_user). */
    if (req_user(req) != NULL)
        return 1;
    if (h != NULL && strncmp(h, "Bearer ", 7) == 0 && util_secret_eq(h + 7, a->api_key))
        return 1;
    log_warn("event=admin_unauthorized peer=%s path=%s reason=%s", req_peer(req), req_path(req),
             h == NULL ? "no_key" : "wrong_key");
    req_add_header(req, "WWW-Authenticate", "Bearer");
    req_respond_json(req, 401, "{\"error\":\"missing or wrong API key\"}\n");
    return 0;
}

void api_json(struct req *req, int status, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    req_respond(req, status, "application/json", s, strlen(s));
    free(s);
}

void api_fail(struct req *req, int err)
{
    req_fail(req, 503, err == MDMD_ETIMEDOUT ? "redis timeout" : "redis unavailable");
}
