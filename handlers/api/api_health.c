#include "api.h"

#include <stdio.h>

#include "../../core/app.h"
#include "../../core/http.h"
#include "../../core/util.h"
#include "../../store/store.h"

static void api_health_on_ping(void *arg, int err)
{
    struct req *req = arg;
    char body[160];

    if (err == MDMD_OK) {
        req_respond_json(req, 200, "{\"status\":\"ok\",\"redis\":\"up\"}\n");
        return;
    }
    snprintf(body, sizeof(body), "{\"status\":\"degraded\",\"redis\":\"down\",\"error\":\"%s\"}\n",
             mdmd_strerror(err));
    req_respond_json(req, 503, body);
}

void api_health(struct req *req, void *app)
{
    struct app *a = app;
    /* The req stays valid until we respond, even if the client leaves. */
    (void)store_ping(a->store, api_health_on_ping, req);
}
