/* The XML plists devices send, read without libplist's XML reader.  libplist
 * 2.2 spends about 70 instructions a byte there (110,000 for a 1.5 KB
 * DeviceInformation result, a third of mdmd's work per command); the plists
 * devices post are a small, regular subset of XML, read here in one pass.
 *
 * Only that subset: Apple's own prolog, elements without attributes, text
 * without entities, CDATA, comments or CR, decimal integers and reals in
 * their plain forms, no <data> or <date>, dictionaries of at most
 * APPLE_XML_DICT_MAX keys and no key twice.  On
 * anything else the answer is NULL and the caller hands the bytes to libplist
 * as before, so what is read here is what libplist would have read
 * (test_shape checks the two on every sample, fuzz_mdm_body on every input
 * the fuzzer makes).  The depth was bounded by shape_plist() before. */
#include "apple.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/shape.h"

/* A dictionary this large goes to libplist: each insert here looks the key
 * up (no key twice), which a huge dictionary would make quadratic. */
#define APPLE_XML_DICT_MAX 128
#define APPLE_XML_DEPTH_MAX 128

/* The limits are shape_plist_xml()'s, counted the same way: every start
 * tag a node (<plist> one more than max_nodes allows), a dict or array start
 * tag a level, every run of text between two tags at most max_string bytes.
 * A plist over one is left to shape_plist(), which refuses it and says why. */
struct apple_xml {
    const char *p, *end;
    const struct shape_limits *lim;
    size_t nodes, containers;
    int depth, over; /* over: a text run past max_string */
};

static void apple_xml_ws(struct apple_xml *x)
{
    const char *s = x->p;
    while (x->p < x->end && (*x->p == ' ' || *x->p == '\t' || *x->p == '\n'))
        x->p++;
    if ((size_t)(x->p - s) > x->lim->max_string)
        x->over = 1;
}

/* Consumes lit if the input continues with it. */
static int apple_xml_lit(struct apple_xml *x, const char *lit, size_t n)
{
    if ((size_t)(x->end - x->p) < n || memcmp(x->p, lit, n) != 0)
        return 0;
    x->p += n;
    return 1;
}

#define APPLE_XML_LIT(x, s) apple_xml_lit((x), (s), sizeof(s) - 1)

/* Text up to the closing tag, as a NUL-terminated string in buf when it
 * fits (else a new one, *heap set); NULL when the text holds what only an
 * XML parser may interpret. */
static char *apple_xml_text(struct apple_xml *x, const char *close, size_t n, char *buf,
                            size_t size, int *heap)
{
    const char *s = x->p;
    while (x->p < x->end && *x->p != '<' && *x->p != '&' && *x->p != '\r')
        x->p++;
    size_t len = (size_t)(x->p - s);
    *heap = 0;
    if (len > x->lim->max_string || !apple_xml_lit(x, close, n))
        return NULL;
    char *t = buf;
    if (len >= size && (t = malloc(len + 1)) == NULL)
        return NULL;
    *heap = t != buf;
    memcpy(t, s, len);
    t[len] = '\0';
    return t;
}

/* 1 to 18 decimal digits, and no leading zero when lead is set (an
 * integer's: "0" or below INT64_MAX, where libplist's reading and
 * plist_new_uint agree; libplist reads a leading 0 as octal). */
static int apple_xml_digits(const char *s, const char *e, int lead)
{
    size_t n = (size_t)(e - s);
    if (n == 0 || n > 18 || (lead && s[0] == '0' && n > 1))
        return 0;
    for (; s < e; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

static plist_t apple_xml_number(struct apple_xml *x, int real)
{
    const char *s = x->p, *e = memchr(s, '<', (size_t)(x->end - s));
    if (e == NULL || (size_t)(e - s) > x->lim->max_string)
        return NULL;
    x->p = e;
    if (!real) {
        if (!apple_xml_digits(s, e, 1) || !APPLE_XML_LIT(x, "</integer>"))
            return NULL;
        return plist_new_uint(strtoull(s, NULL, 10));
    }
    const char *d = s + (s < e && *s == '-');
    const char *dot = memchr(d, '.', (size_t)(e - d));
    if (!apple_xml_digits(d, dot != NULL ? dot : e, 1) ||
        (dot != NULL && !apple_xml_digits(dot + 1, e, 0)) || !APPLE_XML_LIT(x, "</real>"))
        return NULL;
    char buf[48];
    memcpy(buf, s, (size_t)(e - s));
    buf[e - s] = '\0';
    return plist_new_real(strtod(buf, NULL));
}

static plist_t apple_xml_value(struct apple_xml *x);

/* FNV-1a: the keys seen so far in a dictionary, compared by hash first. */
static uint32_t apple_xml_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static int apple_xml_seen(plist_t d, const uint32_t *hashes, uint32_t n, const char *k)
{
    uint32_t h = apple_xml_hash(k);
    for (uint32_t i = 0; i < n; i++)
        if (hashes[i] == h)
            return plist_dict_get_item(d, k) != NULL;
    return 0;
}

static plist_t apple_xml_dict(struct apple_xml *x)
{
    plist_t d = plist_new_dict();
    uint32_t hashes[APPLE_XML_DICT_MAX];
    char buf[256];
    for (uint32_t n = 0;; n++) {
        apple_xml_ws(x);
        if (APPLE_XML_LIT(x, "</dict>"))
            return d;
        int heap = 0;
        char *k = n < APPLE_XML_DICT_MAX && ++x->nodes <= x->lim->max_nodes + 1 &&
                          APPLE_XML_LIT(x, "<key>")
                      ? apple_xml_text(x, "</key>", sizeof("</key>") - 1, buf, sizeof(buf), &heap)
                      : NULL;
        plist_t v = NULL;
        if (k != NULL && !apple_xml_seen(d, hashes, n, k)) {
            hashes[n] = apple_xml_hash(k);
            apple_xml_ws(x);
            v = apple_xml_value(x);
        }
        if (v != NULL)
            plist_dict_set_item(d, k, v);
        if (heap)
            free(k);
        if (v == NULL) {
            plist_free(d);
            return NULL;
        }
    }
}

static plist_t apple_xml_array(struct apple_xml *x)
{
    plist_t a = plist_new_array();
    for (;;) {
        apple_xml_ws(x);
        if (APPLE_XML_LIT(x, "</array>"))
            return a;
        plist_t v = apple_xml_value(x);
        if (v == NULL) {
            plist_free(a);
            return NULL;
        }
        plist_array_append_item(a, v);
    }
}

/* A dict or array start tag: one level more. */
static int apple_xml_level(struct apple_xml *x, const char *tag, size_t n)
{
    if (!apple_xml_lit(x, tag, n))
        return 0;
    if (x->containers + 1 > x->lim->max_depth) {
        x->p = x->end; /* no other branch may match: the plist is shape_plist's */
        return 0;
    }
    x->containers++;
    return 1;
}

#define APPLE_XML_LEVEL(x, s) apple_xml_level((x), (s), sizeof(s) - 1)

static plist_t apple_xml_value(struct apple_xml *x)
{
    plist_t v = NULL;
    if (x->depth >= APPLE_XML_DEPTH_MAX || ++x->nodes > x->lim->max_nodes + 1)
        return NULL;
    x->depth++;
    if (APPLE_XML_LIT(x, "<string>")) {
        char buf[256];
        int heap = 0;
        char *s = apple_xml_text(x, "</string>", sizeof("</string>") - 1, buf, sizeof(buf), &heap);
        if (s != NULL)
            v = plist_new_string(s);
        if (heap)
            free(s);
    } else if (APPLE_XML_LEVEL(x, "<dict>")) {
        v = apple_xml_dict(x);
        x->containers--;
    } else if (APPLE_XML_LIT(x, "<integer>")) {
        v = apple_xml_number(x, 0);
    } else if (APPLE_XML_LIT(x, "<real>")) {
        v = apple_xml_number(x, 1);
    } else if (APPLE_XML_LIT(x, "<true/>") || APPLE_XML_LIT(x, "<true></true>")) {
        v = plist_new_bool(1);
    } else if (APPLE_XML_LIT(x, "<false/>") || APPLE_XML_LIT(x, "<false></false>")) {
        v = plist_new_bool(0);
    } else if (APPLE_XML_LEVEL(x, "<array>")) {
        v = apple_xml_array(x);
        x->containers--;
    } else if (APPLE_XML_LIT(x, "<string/>")) {
        v = plist_new_string("");
    } else if (APPLE_XML_LIT(x, "<dict/>")) {
        v = plist_new_dict();
    } else if (APPLE_XML_LIT(x, "<array/>")) {
        v = plist_new_array();
    }
    x->depth--;
    return v;
}

/* The prolog as Apple's devices and tools write it, each part optional;
 * any other (other attributes, quoting, an internal subset) is libplist's. */
static int apple_xml_prolog(struct apple_xml *x)
{
    apple_xml_ws(x);
    if (APPLE_XML_LIT(x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"))
        apple_xml_ws(x);
    if (APPLE_XML_LIT(x, "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
                         "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">"))
        apple_xml_ws(x);
    return APPLE_XML_LIT(x, "<plist version=\"1.0\">") || APPLE_XML_LIT(x, "<plist>");
}

plist_t apple_plist_xml_fast(const char *xml, size_t len, const struct shape_limits *lim)
{
    struct apple_xml x = {xml, xml + len, lim, 1, 0, 0, 0}; /* <plist>: a node */
    if (!apple_xml_prolog(&x))
        return NULL;
    apple_xml_ws(&x);
    plist_t v = apple_xml_value(&x);
    if (v == NULL)
        return NULL;
    apple_xml_ws(&x);
    if (APPLE_XML_LIT(&x, "</plist>")) {
        apple_xml_ws(&x);
        if (x.p == x.end && !x.over)
            return v;
    }
    plist_free(v);
    return NULL;
}
