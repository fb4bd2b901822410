/* h_openapi.h: GET /v1/openapi.json, the OpenAPI 3 description of the REST
 * API.  The document is docs/openapi.json, compiled into the binary by the
 * Makefile (h_openapi_json); test/unit/test_openapi.c checks it against the
 * route table, so a route without documentation fails `make test`. */
#ifndef MDMD_H_OPENAPI_H
#define MDMD_H_OPENAPI_H

struct req;

extern const char h_openapi_json[];   /* generated from docs/openapi.json */

void h_openapi(struct req *req, void *app);

#endif
