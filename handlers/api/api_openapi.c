#include "api.h"

#include <string.h>

#include "../../core/http.h"

/* Public: the API's shape is no secret, and clients fetch it before they
 * have a key.  Served as built, so what it says matches this binary. */
void api_openapi(struct req *req, void *app)
{
    (void)app;
    req_add_header(req, "Cache-Control", "no-cache");
    req_respond(req, 200, "application/json", api_openapi_json, strlen(api_openapi_json));
}
