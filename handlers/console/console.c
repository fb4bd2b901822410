/* console.c: the console's static files and the headers every console
 * response carries.  The files are compiled in (console_files.h), looked
 * up by exact name: no path is ever joined or opened, so "..", encoded
 * slashes and the like simply name no file. */
#include "console.h"

#include <string.h>

#include "../../core/http.h"
#include "console_files.h"

/* Nothing inline and nothing from elsewhere: the console is one origin's
 * own files and its JSON API. */
#define CONSOLE_CSP                                                                                \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "            \
    "base-uri 'none'"

void console_headers(struct req *req, int no_store)
{
    req_add_header(req, "Content-Security-Policy", CONSOLE_CSP);
    req_add_header(req, "X-Content-Type-Options", "nosniff");
    req_add_header(req, "X-Frame-Options", "DENY");
    req_add_header(req, "Referrer-Policy", "no-referrer");
    req_add_header(req, "Cross-Origin-Opener-Policy", "same-origin");
    req_add_header(req, "Cross-Origin-Resource-Policy", "same-origin");
    req_add_header(req, "Cache-Control", no_store ? "no-store" : "no-cache");
}

void console_root(struct req *req, void *app)
{
    console_headers(req, 1);
    req_add_header(req, "Location", "/console/");
    req_respond(req, 302, NULL, NULL, 0);
}

static const struct console_file *console_find(const char *name)
{
    for (const struct console_file *f = console_files; f->name != NULL; f++)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

void console_static(struct req *req, void *app)
{
    const char *name = req_path(req) + strlen("/console/");
    const struct console_file *f = console_find(*name == '\0' ? "index.html" : name);
    console_headers(req, 0);
    if (f == NULL) {
        req_respond(req, 404, "text/plain; charset=utf-8", "not found\n", 10);
        return;
    }
    req_add_header(req, "ETag", f->etag);
    const char *inm = req_header(req, "If-None-Match");
    if (inm != NULL && strcmp(inm, f->etag) == 0) {
        req_respond(req, 304, NULL, NULL, 0);
        return;
    }
    req_respond(req, 200, f->ctype, f->data, f->len);
}
