/* shape.h: bounds on the shape of untrusted plists and JSON, checked before
 * any parser sees the bytes.  libplist 2.2 reads, converts, copies and frees
 * plists recursively (a deep one overflows the stack), and a binary plist
 * that shares objects expands into a tree exponentially larger than itself;
 * jansson and our converters recurse too.  So every check here is iterative
 * (an explicit stack, never the C one) and stops at the first limit.
 *
 * Pure functions; no I/O, no globals.  The reason written into why names the
 * limit that was exceeded (for the 400 answer and its log line). */
#ifndef MDMD_SHAPE_H
#define MDMD_SHAPE_H

#include <stddef.h>

struct shape_limits {
    size_t max_depth;  /* containers (array, dict) inside each other */
    size_t max_nodes;  /* values and keys of the tree a parser would build */
    size_t max_string; /* bytes of one string, key or data value */
};

enum shape_result {
    SHAPE_OK = 0,
    SHAPE_MALFORMED, /* not well-formed enough to measure: refuse as bad input */
    SHAPE_TOO_DEEP,
    SHAPE_TOO_MANY,
    SHAPE_TOO_LONG,
    SHAPE_CYCLE, /* binary plist: an object contains itself */
};

/* An XML or binary plist (by its bplist00 magic).  Binary: the offset table
 * and every object reference are walked as the tree they expand to; a
 * reference to an object that is already being expanded is a cycle. */
enum shape_result shape_plist(const void *data, size_t len, const struct shape_limits *lim,
                              char *why, size_t whylen);
enum shape_result shape_plist_xml(const char *xml, size_t len, const struct shape_limits *lim,
                                  char *why, size_t whylen);
enum shape_result shape_plist_bin(const unsigned char *b, size_t len,
                                  const struct shape_limits *lim, char *why, size_t whylen);

/* JSON text: nesting of [ and {, the number of values, the length of one
 * string (escapes counted as written).  Not a validator: jansson still is. */
enum shape_result shape_json(const char *text, size_t len, const struct shape_limits *lim,
                             char *why, size_t whylen);

#endif
