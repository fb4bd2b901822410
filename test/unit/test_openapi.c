/* docs/openapi.json (as compiled into mdmd) against the real route table of
 * the 1-way listener: every documented path and method is served, and every
 * REST route (/v1/..., /metrics, /healthz) with each of its methods is
 * documented.  A failure says what to add, and where. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "../../handlers/api/api.h"
#include "../../handlers/routes.h"
#include "../../core/util.h"
#include "../harness.h"

static const char *const methods[] = {"get", "post", "put", "delete", "head", "patch"};
static const int method_bits[] = {HTTP_M_GET,    HTTP_M_POST, HTTP_M_PUT,
                                  HTTP_M_DELETE, HTTP_M_HEAD, HTTP_M_PATCH};

static json_t *doc_paths(void)
{
    json_error_t err;
    json_t *doc = json_loads(api_openapi_json, 0, &err);
    if (doc == NULL) {
        fprintf(stderr, "docs/openapi.json: line %d: %s\n", err.line, err.text);
        return NULL;
    }
    json_t *paths = json_incref(json_object_get(doc, "paths"));
    json_decref(doc);
    return paths;
}

/* /v1/devices/{udid}/commands -> /v1/devices/X/commands: what a client sends. */
static void concrete(const char *tmpl, char *out, size_t len)
{
    size_t n = 0;
    for (const char *p = tmpl; *p && n + 2 < len; p++) {
        if (*p == '{') {
            out[n++] = 'X';
            while (*p && *p != '}')
                p++;
            if (!*p)
                break;
        } else {
            out[n++] = *p;
        }
    }
    out[n] = '\0';
}

/* The route http.c would pick for path (same rules as http_match). */
static const struct http_route *route_for(const char *path)
{
    for (const struct http_route *rt = routes_public; rt->path != NULL; rt++) {
        size_t n = strlen(rt->path);
        if (rt->path[n - 1] == '*' ? strncmp(path, rt->path, n - 1) == 0
                                   : strcmp(path, rt->path) == 0)
            return rt;
    }
    return NULL;
}

static int is_rest(const char *path)
{
    return strncmp(path, "/v1/", 4) == 0 || strcmp(path, "/metrics") == 0 ||
           strcmp(path, "/healthz") == 0;
}

TEST(document_parses)
{
    json_t *paths = doc_paths();
    CHECK(paths != NULL && json_object_size(paths) > 0);
    json_decref(paths);
}

TEST(every_documented_operation_is_served)
{
    json_t *paths = doc_paths(), *item;
    const char *path;
    char conc[512];
    json_object_foreach(paths, path, item)
    {
        concrete(path, conc, sizeof(conc));
        const struct http_route *rt = route_for(conc);
        for (size_t i = 0; i < ARRAY_LEN(methods); i++) {
            if (json_object_get(item, methods[i]) == NULL)
                continue;
            if (rt == NULL || (rt->methods & method_bits[i]) == 0) {
                fprintf(stderr,
                        "docs/openapi.json documents %s %s, but handlers/routes.c "
                        "serves no such route: remove it from the document or add the route\n",
                        methods[i], path);
                CHECK(!"documented operation without a route");
            }
        }
    }
    json_decref(paths);
}

/* Is method m of route rt documented?  A prefix route (path ending in a star)
 * counts as documented when some path under the prefix has m. */
static int documented(json_t *paths, const struct http_route *rt, const char *m)
{
    size_t n = strlen(rt->path);
    int prefix = rt->path[n - 1] == '*';
    json_t *item;
    const char *path;
    json_object_foreach(paths, path, item)
    {
        int hit = prefix ? strncmp(path, rt->path, n - 1) == 0 && strlen(path) > n - 1
                         : strcmp(path, rt->path) == 0;
        if (hit && json_object_get(item, m) != NULL)
            return 1;
    }
    return 0;
}

static void explain(const struct http_route *rt, const char *m)
{
    char up[8];
    size_t n = strlen(rt->path);
    for (size_t i = 0; i < sizeof(up) - 1 && m[i]; i++)
        up[i] = (char)(m[i] - 'a' + 'A'), up[i + 1] = '\0';
    fprintf(stderr,
            "route %s %s (handlers/routes.c) is not in docs/openapi.json.  Add under \"paths\":\n"
            "    \"%.*s%s\": {\"%s\": {\"tags\": [...], \"summary\": \"...\", \"operationId\": "
            "\"...\",\n"
            "        \"requestBody\": {... only for a body ...},\n"
            "        \"responses\": {\"200\": {\"description\": \"...\", \"content\": "
            "{\"application/json\": {\"schema\": {...}}}},\n"
            "                      \"401\": {\"$ref\": \"#/components/responses/Unauthorized\"}, "
            "...}}}\n"
            "  (a path parameter in braces, e.g. /v1/users/{name}; copy an existing entry such as "
            "\"/v1/devices/{udid}\"), then run make test again.\n",
            up, rt->path, (int)(rt->path[n - 1] == '*' ? n - 1 : n), rt->path,
            rt->path[n - 1] == '*' ? "{id}" : "", m);
}

TEST(every_route_is_documented)
{
    json_t *paths = doc_paths();
    for (const struct http_route *rt = routes_public; paths && rt->path != NULL; rt++) {
        if (!is_rest(rt->path))
            continue;
        for (size_t i = 0; i < ARRAY_LEN(methods); i++) {
            /* HEAD is GET without the body: documented with GET. */
            if ((rt->methods & method_bits[i]) == 0 || method_bits[i] == HTTP_M_HEAD)
                continue;
            if (!documented(paths, rt, methods[i])) {
                explain(rt, methods[i]);
                CHECK(!"route without documentation");
            }
        }
    }
    json_decref(paths);
}

TEST(every_operation_has_summary_and_success)
{
    json_t *paths = doc_paths(), *item, *op;
    const char *path, *m, *code;
    json_object_foreach(paths, path, item)
    {
        json_object_foreach(item, m, op)
        {
            if (strcmp(m, "parameters") == 0)
                continue;
            int ok2xx = 0;
            json_t *r;
            json_object_foreach(json_object_get(op, "responses"), code, r) ok2xx |= code[0] == '2';
            if (!ok2xx || json_string_value(json_object_get(op, "summary")) == NULL) {
                fprintf(stderr, "docs/openapi.json: %s %s needs a summary and a 2xx response\n", m,
                        path);
                CHECK(!"incomplete operation");
            }
        }
    }
    json_decref(paths);
}

int main(void)
{
    RUN(document_parses);
    RUN(every_documented_operation_is_served);
    RUN(every_route_is_documented);
    RUN(every_operation_has_summary_and_success);
    return harness_done();
}
