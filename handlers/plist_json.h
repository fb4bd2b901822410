/* plist_json.h: conversions between plists (what devices speak) and JSON
 * (what admins speak).  Pure functions; no I/O.
 *
 * plist -> JSON: data becomes a base64 string, a date an ISO-8601 UTC string.
 * JSON -> plist: a top-level command key whose schema type is data takes a
 * base64 string, date an ISO-8601 string, real any number; elsewhere JSON
 * integers become <integer>, fractions <real>.  Commands that need data deep
 * inside a dictionary are sent as a raw plist instead. */
#ifndef MDMD_PLIST_JSON_H
#define MDMD_PLIST_JSON_H

#include <jansson.h>
#include <plist/plist.h>
#include <stddef.h>

#include "mdm_schema.h"

/* New reference (caller json_decref), never NULL for a valid plist. */
json_t *pj_to_json(plist_t p);

/* Converts j, typed by the schema's key list (may be NULL) at the top level.
 * Returns a new plist (caller plist_free), or NULL with a message in err. */
plist_t pj_from_json(json_t *j, const struct mdm_key *keys, char *err, size_t errlen);

/* The shape limits pj_parse() and pj_json_load() enforce (core/shape.h),
 * copied; until set, the defaults of mdmd.conf.  Set at start and SIGHUP on
 * the loop; pj_parse() and pj_json_load() may run on the crypto worker at
 * the same time, and each takes a copy under a lock. */
struct shape_limits;
void pj_set_limits(const struct shape_limits *plist, size_t max_json_depth);

/* Parses an XML or binary plist, after shape_plist() bounded its depth,
 * node count and string sizes (libplist recurses).  NULL when it is neither,
 * or over a limit: why (whylen bytes, may be NULL) then says which. */
plist_t pj_parse(const void *body, size_t len, char *why, size_t whylen);

/* json_loadb() of an untrusted body after shape_json() bounded it (depth
 * max_json_depth, nodes and strings as for plists).  NULL with why set. */
json_t *pj_json_load(const void *body, size_t len, char *why, size_t whylen);

/* The string value of dict[key], or NULL (borrowed from the plist's own
 * copy via a caller-freed string: returns malloc'd memory). */
char *pj_dict_string(plist_t dict, const char *key);

/* base64 (standard alphabet, padding): returns malloc'd text / bytes. */
char *pj_base64(const unsigned char *in, size_t len);
unsigned char *pj_unbase64(const char *in, size_t *outlen);   /* NULL if invalid */

#endif
