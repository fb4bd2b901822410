#include "shape.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static enum shape_result shape_fail(enum shape_result r, char *why, size_t whylen, const char *what,
                                    size_t limit)
{
    static const char *const names[] = {
        "", "", "max_plist_depth", "max_plist_nodes", "max_plist_string", ""};
    if (r == SHAPE_MALFORMED || r == SHAPE_CYCLE)
        snprintf(why, whylen, "%s", what);
    else
        snprintf(why, whylen, "%s over %s=%zu", what, names[r], limit);
    return r;
}

/* ---- XML ---- */

/* Where needle starts in [p, end), or NULL. */
static const char *shape_find(const char *p, const char *end, const char *needle)
{
    size_t n = strlen(needle);
    return (size_t)(end - p) >= n ? memmem(p, (size_t)(end - p), needle, n) : NULL;
}

/* Whether [p, end) starts with prefix (a search would make the scan
 * quadratic: one pass over the rest of the body per tag). */
static int shape_at(const char *p, const char *end, const char *prefix)
{
    size_t n = strlen(prefix);
    return (size_t)(end - p) >= n && memcmp(p, prefix, n) == 0;
}

/* Every element is counted, whatever its name, and every open one deepens
 * the nesting: a scanner that agrees with libplist on where tags are is all
 * that is needed, and it must not be fooled into skipping some.  So a '<'
 * inside a tag (a quoted attribute hiding markup) or an internal DTD subset
 * is refused rather than interpreted. */
/* Whether the element whose name starts at p is a container. */
static int shape_container(const char *p, const char *gt)
{
    size_t n = (size_t)(gt - p);
    return (n >= 5 && memcmp(p, "array", 5) == 0 && (n == 5 || p[5] == ' ' || p[5] == '/')) ||
           (n >= 4 && memcmp(p, "dict", 4) == 0 && (n == 4 || p[4] == ' ' || p[4] == '/'));
}

/* kinds: the open elements, innermost last (1: array or dict), room for
 * max_depth + 2 (the <plist> root and one leaf element besides). */
static enum shape_result shape_xml_scan(const char *xml, size_t len, const struct shape_limits *lim,
                                        char *why, size_t whylen, unsigned char *kinds)
{
    const char *p = xml, *end = xml + len;
    size_t depth = 0, nodes = 0, text = 0, containers = 0;
    size_t max_open = lim->max_depth + 2;

    while (p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p));
        if (lt == NULL)
            break;
        text += (size_t)(lt - p);
        if (text > lim->max_string)
            return shape_fail(SHAPE_TOO_LONG, why, whylen, "plist string", lim->max_string);
        const char *close;
        if (shape_at(lt, end, "<!--")) {
            close = shape_find(lt + 4, end, "-->");
            p = close != NULL ? close + 3 : NULL;
        } else if (shape_at(lt, end, "<![CDATA[")) {
            close = shape_find(lt + 9, end, "]]>");
            if (close != NULL)
                text += (size_t)(close - lt - 9);
            if (close == NULL)
                return shape_fail(SHAPE_MALFORMED, why, whylen, "plist XML: unterminated CDATA", 0);
            p = close + 3;
            if (text > lim->max_string)
                return shape_fail(SHAPE_TOO_LONG, why, whylen, "plist string", lim->max_string);
            continue;
        } else if (lt + 1 < end && lt[1] == '?') {
            close = shape_find(lt + 2, end, "?>");
            p = close != NULL ? close + 2 : NULL;
        } else {
            const char *gt = memchr(lt + 1, '>', (size_t)(end - lt - 1));
            const char *inner = gt != NULL ? memchr(lt + 1, '<', (size_t)(gt - lt - 1)) : NULL;
            if (gt == NULL || inner != NULL ||
                (lt[1] == '!' && memchr(lt, '[', (size_t)(gt - lt)) != NULL))
                return shape_fail(SHAPE_MALFORMED, why, whylen, "plist XML: malformed tag", 0);
            p = gt + 1;
            if (lt[1] == '/') {
                if (depth == 0)
                    return shape_fail(SHAPE_MALFORMED, why, whylen,
                                      "plist XML: unbalanced close tag", 0);
                containers -= kinds[--depth];
            } else if (lt[1] != '!') {
                int c = shape_container(lt + 1, gt);
                if (++nodes > lim->max_nodes + 1)
                    return shape_fail(SHAPE_TOO_MANY, why, whylen, "plist nodes", lim->max_nodes);
                if (gt[-1] != '/' &&
                    (depth + 1 > max_open || containers + (size_t)c > lim->max_depth))
                    return shape_fail(SHAPE_TOO_DEEP, why, whylen, "plist nesting", lim->max_depth);
                if (gt[-1] != '/') {
                    kinds[depth++] = (unsigned char)c;
                    containers += (size_t)c;
                }
            }
        }
        if (p == NULL)
            return shape_fail(SHAPE_MALFORMED, why, whylen, "plist XML: unterminated markup", 0);
        text = 0;
    }
    return SHAPE_OK;
}

enum shape_result shape_plist_xml(const char *xml, size_t len, const struct shape_limits *lim,
                                  char *why, size_t whylen)
{
    unsigned char *kinds = xmalloc(lim->max_depth + 3);
    enum shape_result r = shape_xml_scan(xml, len, lim, why, whylen, kinds);
    free(kinds);
    return r;
}

/* ---- binary ---- */

struct shape_bin {
    const unsigned char *b;
    size_t end;   /* objects and their payloads end here (the trailer) */
    size_t table; /* offset table */
    unsigned off_size, ref_size;
    uint64_t nobj;
};

static uint64_t shape_be(const unsigned char *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* The count of a data, string or container object at off: its low nibble,
 * or an integer object after the marker.  *payload: where its bytes start. */
static int shape_bin_count(const struct shape_bin *sb, size_t off, uint64_t *count, size_t *payload)
{
    unsigned lo = sb->b[off] & 0x0f;
    if (lo != 0x0f) {
        *count = lo;
        *payload = off + 1;
        return 0;
    }
    if (off + 2 > sb->end || (sb->b[off + 1] & 0xf0) != 0x10 || (sb->b[off + 1] & 0x0f) > 3)
        return -1;
    unsigned n = 1u << (sb->b[off + 1] & 0x0f);
    if (off + 2 + n > sb->end)
        return -1;
    *count = shape_be(sb->b + off + 2, n);
    *payload = off + 2 + n;
    return 0;
}

/* One object: its size class.  For a container, *refs and *nrefs say where
 * its references are; 0 children for the rest. */
static enum shape_result shape_bin_object(const struct shape_bin *sb, uint64_t idx,
                                          const struct shape_limits *lim, size_t *refs,
                                          uint64_t *nrefs, int *container)
{
    if (idx >= sb->nobj)
        return SHAPE_MALFORMED;
    uint64_t off = shape_be(sb->b + sb->table + idx * sb->off_size, sb->off_size);
    uint64_t count = 0, bytes;
    size_t payload;
    if (off < 8 || off >= sb->table)
        return SHAPE_MALFORMED;
    unsigned type = sb->b[off] >> 4, lo = sb->b[off] & 0x0f;
    *nrefs = 0;
    *container = type >= 0xa;
    switch (type) {
    case 0x0: return lo == 0 || lo == 8 || lo == 9 || lo == 0xf ? SHAPE_OK : SHAPE_MALFORMED;
    case 0x1:
    case 0x2: return lo <= 4 && off + 1 + (1u << lo) <= sb->end ? SHAPE_OK : SHAPE_MALFORMED;
    case 0x3: return off + 9 <= sb->end ? SHAPE_OK : SHAPE_MALFORMED;
    case 0x8: /* a UID: apple_plist_parse reads it back as <dict><key>CF$UID</key><integer/> */
        *container = 2;
        return off + 2 + lo <= sb->end ? SHAPE_OK : SHAPE_MALFORMED;
    case 0x4:
    case 0x5:
    case 0x6:
    case 0x7:
    case 0xa:
    case 0xc:
    case 0xd: break;
    default: return SHAPE_MALFORMED;
    }
    if (shape_bin_count(sb, off, &count, &payload) != 0)
        return SHAPE_MALFORMED;
    if (type >= 0xa) {
        uint64_t n = type == 0xd ? count * 2 : count;
        if (count > sb->end || n > (sb->end - payload) / sb->ref_size)
            return SHAPE_MALFORMED;
        *refs = payload;
        *nrefs = n;
        return SHAPE_OK;
    }
    /* UTF-16 becomes up to 3 UTF-8 bytes per unit. */
    bytes = type == 0x6 ? count * 3 : count;
    if (count > sb->end || (type == 0x6 ? count * 2 : count) > sb->end - payload)
        return SHAPE_MALFORMED;
    return bytes > lim->max_string ? SHAPE_TOO_LONG : SHAPE_OK;
}

static int shape_bin_trailer(struct shape_bin *sb, const unsigned char *b, size_t len)
{
    if (len < 8 + 32 || memcmp(b, "bplist00", 8) != 0)
        return -1;
    const unsigned char *t = b + len - 32;
    sb->b = b;
    sb->end = len - 32;
    sb->off_size = t[6];
    sb->ref_size = t[7];
    sb->nobj = shape_be(t + 8, 8);
    uint64_t top = shape_be(t + 16, 8), table = shape_be(t + 24, 8);
    if (sb->off_size < 1 || sb->off_size > 8 || sb->ref_size < 1 || sb->ref_size > 8 ||
        sb->nobj == 0 || top >= sb->nobj || table < 9 || table >= sb->end ||
        sb->nobj > (sb->end - table) / sb->off_size)
        return -1;
    sb->table = (size_t)table;
    return 0;
}

struct shape_frame {
    uint64_t obj;
    size_t refs;
    uint64_t next, n;
};

/* Depth-first over the tree the references expand to, on a heap stack of
 * at most max_depth + 1 frames; on_path marks the objects being expanded. */
static enum shape_result shape_bin_walk(const struct shape_bin *sb, uint64_t top,
                                        const struct shape_limits *lim, size_t *nodes)
{
    struct shape_frame *st = xcalloc(lim->max_depth + 2, sizeof(*st));
    unsigned char *on_path = xcalloc((size_t)sb->nobj, 1);
    size_t sp = 0;
    uint64_t idx = top;
    enum shape_result r = SHAPE_OK;

    for (;;) {
        size_t refs = 0;
        uint64_t n = 0;
        int container = 0;
        if (++*nodes > lim->max_nodes) {
            r = SHAPE_TOO_MANY;
            break;
        }
        if ((r = shape_bin_object(sb, idx, lim, &refs, &n, &container)) != SHAPE_OK)
            break;
        if (container == 2 && (sp >= lim->max_depth || (*nodes += 2) > lim->max_nodes)) {
            r = sp >= lim->max_depth ? SHAPE_TOO_DEEP : SHAPE_TOO_MANY;
            break;
        }
        if (container == 1) {
            if (on_path[idx]) {
                r = SHAPE_CYCLE;
                break;
            }
            if (sp >= lim->max_depth) {
                r = SHAPE_TOO_DEEP;
                break;
            }
            on_path[idx] = 1;
            st[sp++] = (struct shape_frame){idx, refs, 0, n};
        }
        while (sp > 0 && st[sp - 1].next == st[sp - 1].n)
            on_path[st[--sp].obj] = 0;
        if (sp == 0)
            break;
        struct shape_frame *f = &st[sp - 1];
        idx = shape_be(sb->b + f->refs + f->next++ * sb->ref_size, sb->ref_size);
    }
    free(on_path);
    free(st);
    return r;
}

enum shape_result shape_plist_bin(const unsigned char *b, size_t len,
                                  const struct shape_limits *lim, char *why, size_t whylen)
{
    struct shape_bin sb;
    size_t nodes = 0;
    if (shape_bin_trailer(&sb, b, len) != 0)
        return shape_fail(SHAPE_MALFORMED, why, whylen, "binary plist: bad trailer", 0);
    enum shape_result r = shape_bin_walk(&sb, shape_be(b + len - 16, 8), lim, &nodes);
    switch (r) {
    case SHAPE_OK: return r;
    case SHAPE_TOO_DEEP: return shape_fail(r, why, whylen, "plist nesting", lim->max_depth);
    case SHAPE_TOO_MANY: return shape_fail(r, why, whylen, "plist nodes", lim->max_nodes);
    case SHAPE_TOO_LONG: return shape_fail(r, why, whylen, "plist string", lim->max_string);
    case SHAPE_CYCLE: return shape_fail(r, why, whylen, "binary plist: reference cycle", 0);
    default: return shape_fail(r, why, whylen, "binary plist: bad object or reference", 0);
    }
}

enum shape_result shape_plist(const void *data, size_t len, const struct shape_limits *lim,
                              char *why, size_t whylen)
{
    if (len >= 6 && memcmp(data, "bplist", 6) == 0) /* any version: the trailer check refuses */
        return shape_plist_bin(data, len, lim, why, whylen);
    return shape_plist_xml(data, len, lim, why, whylen);
}

/* ---- JSON ---- */

static int shape_json_token(char c)
{
    return c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z');
}

enum shape_result shape_json(const char *text, size_t len, const struct shape_limits *lim,
                             char *why, size_t whylen)
{
    size_t depth = 0, nodes = 0;
    int in_token = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '"') {
            size_t start = ++i;
            while (i < len && text[i] != '"')
                i += text[i] == '\\' ? 2 : 1;
            if (i - start > lim->max_string)
                return shape_fail(SHAPE_TOO_LONG, why, whylen, "JSON string", lim->max_string);
            c = ' ';
            nodes++;
        } else if (c == '[' || c == '{') {
            nodes++;
            if (++depth > lim->max_depth) {
                snprintf(why, whylen, "JSON nesting over max_json_depth=%zu", lim->max_depth);
                return SHAPE_TOO_DEEP;
            }
        } else if (c == ']' || c == '}') {
            if (depth-- == 0)
                return shape_fail(SHAPE_MALFORMED, why, whylen, "JSON: unbalanced", 0);
        } else if (shape_json_token(c) && !in_token) {
            nodes++;
        }
        in_token = shape_json_token(c);
        if (nodes > lim->max_nodes) {
            snprintf(why, whylen, "JSON values over max_plist_nodes=%zu", lim->max_nodes);
            return SHAPE_TOO_MANY;
        }
    }
    return SHAPE_OK;
}
