#include "apple.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../core/shape.h"
#include "../../core/util.h"

/* libplist 2.2 counts dates from the Apple epoch, 2001-01-01T00:00:00Z. */
#define PJ_APPLE_EPOCH 978307200L

static const char apple_plist_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *apple_plist_base64(const unsigned char *in, size_t len)
{
    char *out = xmalloc((len + 2) / 3 * 4 + 1), *o = out;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        *o++ = apple_plist_b64[v >> 18];
        *o++ = apple_plist_b64[(v >> 12) & 63];
        *o++ = i + 1 < len ? apple_plist_b64[(v >> 6) & 63] : '=';
        *o++ = i + 2 < len ? apple_plist_b64[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

unsigned char *apple_plist_unbase64(const char *in, size_t *outlen)
{
    size_t n = strlen(in), k = 0;
    unsigned char *out = xmalloc(n / 4 * 3 + 3);
    unsigned v = 0;
    int bits = 0, pad = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = in[i] ? strchr(apple_plist_b64, in[i]) : NULL;
        if (in[i] == '=') {
            pad++;
            continue;
        }
        if (in[i] == '\n' || in[i] == '\r' || in[i] == ' ' || in[i] == '\t')
            continue;
        if (p == NULL || pad) {
            free(out);
            return NULL;
        }
        v = (v << 6) | (unsigned)(p - apple_plist_b64);
        if ((bits += 6) >= 8) {
            bits -= 8;
            out[k++] = (unsigned char)(v >> bits);
        }
    }
    *outlen = k;
    return out;
}

static json_t *apple_plist_date_json(plist_t p)
{
    int32_t sec = 0, usec = 0;
    char buf[32];
    struct tm tm;
    plist_get_date_val(p, &sec, &usec);
    time_t t = (time_t)sec + PJ_APPLE_EPOCH;
    gmtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

static json_t *apple_plist_dict_json(plist_t p)
{
    json_t *o = json_object();
    plist_dict_iter it = NULL;
    plist_dict_new_iter(p, &it);
    for (;;) {
        char *key = NULL;
        plist_t v = NULL;
        plist_dict_next_item(p, it, &key, &v);
        if (v == NULL) {
            free(key);
            break;
        }
        json_object_set_new(o, key, apple_plist_to_json(v));
        free(key);
    }
    free(it);
    return o;
}

static json_t *apple_plist_scalar_json(plist_t p)
{
    char *s = NULL;
    uint64_t u = 0;
    double d = 0;
    uint8_t b = 0;
    json_t *j;

    switch (plist_get_node_type(p)) {
    case PLIST_BOOLEAN: plist_get_bool_val(p, &b); return json_boolean(b);
    case PLIST_UINT: plist_get_uint_val(p, &u); return json_integer((json_int_t)u);
    case PLIST_REAL: plist_get_real_val(p, &d); return json_real(d);
    case PLIST_STRING:
        plist_get_string_val(p, &s);
        j = json_string(s != NULL ? s : "");
        if (j == NULL) /* not UTF-8: keep it visible rather than drop it */
            j = json_string("(invalid UTF-8)");
        free(s);
        return j;
    case PLIST_DATE: return apple_plist_date_json(p);
    default: return json_null();
    }
}

json_t *apple_plist_to_json(plist_t p)
{
    char *data = NULL;
    uint64_t len = 0;

    switch (plist_get_node_type(p)) {
    case PLIST_DICT: return apple_plist_dict_json(p);
    case PLIST_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; i < plist_array_get_size(p); i++)
            json_array_append_new(a, apple_plist_to_json(plist_array_get_item(p, i)));
        return a;
    }
    case PLIST_DATA: {
        plist_get_data_val(p, &data, &len);
        char *b = apple_plist_base64((const unsigned char *)data, (size_t)len);
        json_t *j = json_string(b);
        free(b);
        free(data);
        return j;
    }
    default: return apple_plist_scalar_json(p);
    }
}

static plist_t apple_plist_typed(json_t *j, char type, const char *key, char *err, size_t errlen)
{
    if (type == 'd' && json_is_string(j)) {
        size_t n;
        unsigned char *bytes = apple_plist_unbase64(json_string_value(j), &n);
        if (bytes == NULL) {
            snprintf(err, errlen, "%s: expected base64 data", key);
            return NULL;
        }
        plist_t p = plist_new_data((const char *)bytes, n);
        free(bytes);
        return p;
    }
    if (type == 'r' && json_is_number(j))
        return plist_new_real(json_number_value(j));
    if (type == 't' && json_is_string(j)) {
        struct tm tm = {0};
        const char *end = strptime(json_string_value(j), "%Y-%m-%dT%H:%M:%S", &tm);
        if (end == NULL || (*end != '\0' && strcmp(end, "Z") != 0)) {
            snprintf(err, errlen, "%s: expected an ISO-8601 UTC date", key);
            return NULL;
        }
        return plist_new_date((int32_t)(timegm(&tm) - PJ_APPLE_EPOCH), 0);
    }
    return apple_plist_from_json(j, NULL, err, errlen);
}

/* The JSON type a schema type letter accepts (before conversion). */
static int apple_plist_type_ok(json_t *j, char type)
{
    switch (type) {
    case 's':
    case 'd':
    case 't': return json_is_string(j);
    case 'i': return json_is_integer(j);
    case 'r': return json_is_number(j);
    case 'b': return json_is_boolean(j);
    case 'a': return json_is_array(j);
    case 'D': return json_is_object(j);
    default: return 1;
    }
}

static plist_t apple_plist_object(json_t *j, const struct mdm_key *keys, char *err, size_t errlen)
{
    plist_t d = plist_new_dict();
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
    {
        const struct mdm_key *mk = NULL;
        for (const struct mdm_key *x = keys; x != NULL && x->name != NULL; x++)
            if (strcmp(x->name, k) == 0)
                mk = x;
        if (keys != NULL && mk == NULL) {
            snprintf(err, errlen, "%s: not a key of this command", k);
        } else if (mk != NULL && !apple_plist_type_ok(v, mk->type)) {
            snprintf(err, errlen, "%s: wrong type", k);
        } else {
            plist_t pv = mk != NULL ? apple_plist_typed(v, mk->type, k, err, errlen)
                                    : apple_plist_from_json(v, NULL, err, errlen);
            if (pv != NULL) {
                plist_dict_set_item(d, k, pv);
                continue;
            }
        }
        plist_free(d);
        return NULL;
    }
    return d;
}

plist_t apple_plist_from_json(json_t *j, const struct mdm_key *keys, char *err, size_t errlen)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: return apple_plist_object(j, keys, err, errlen);
    case JSON_ARRAY: {
        plist_t a = plist_new_array();
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v)
        {
            plist_t pv = apple_plist_from_json(v, NULL, err, errlen);
            if (pv == NULL) {
                plist_free(a);
                return NULL;
            }
            plist_array_append_item(a, pv);
        }
        return a;
    }
    case JSON_STRING: return plist_new_string(json_string_value(j));
    case JSON_INTEGER: return plist_new_uint((uint64_t)json_integer_value(j));
    case JSON_REAL: return plist_new_real(json_real_value(j));
    case JSON_TRUE: return plist_new_bool(1);
    case JSON_FALSE: return plist_new_bool(0);
    default: snprintf(err, errlen, "null is not a plist value"); return NULL;
    }
}

/* libplist 2.2's string and key getters assert (abort the process) when a
 * value holds a NUL byte, and both of its readers let one through: a raw NUL
 * inside an XML <string>, or any string of a binary plist.  So a plist is
 * accepted only if its XML form has no NUL byte; binary ones are read back
 * from that XML form, which also makes them exactly what XML would give. */
static plist_t apple_plist_parse_xml(const char *xml, size_t len)
{
    plist_t p = NULL;
    if (memchr(xml, '\0', len) == NULL)
        plist_from_xml(xml, (uint32_t)len, &p);
    return p;
}

/* The defaults of mdmd.conf (core/conf.c), for tools and fuzzers that never
 * read a config. */
static struct shape_limits apple_plist_plist_lim = {64, 100000, 8388608};
static size_t apple_plist_json_depth = 64;
/* SIGHUP sets the limits on the loop while the crypto worker may be parsing
 * a large body: both sides copy them under this lock, never read them bare. */
static pthread_mutex_t apple_plist_lim_lock = PTHREAD_MUTEX_INITIALIZER;

void apple_plist_set_limits(const struct shape_limits *plist, size_t max_json_depth)
{
    pthread_mutex_lock(&apple_plist_lim_lock);
    apple_plist_plist_lim = *plist;
    apple_plist_json_depth = max_json_depth;
    pthread_mutex_unlock(&apple_plist_lim_lock);
}

static struct shape_limits apple_plist_limits(int json)
{
    pthread_mutex_lock(&apple_plist_lim_lock);
    struct shape_limits lim = apple_plist_plist_lim;
    if (json)
        lim.max_depth = apple_plist_json_depth;
    pthread_mutex_unlock(&apple_plist_lim_lock);
    return lim;
}

json_t *apple_plist_json_load(const void *body, size_t len, char *why, size_t whylen)
{
    char buf[128];
    json_error_t jerr;
    struct shape_limits lim = apple_plist_limits(1);
    if (why == NULL) {
        why = buf;
        whylen = sizeof(buf);
    }
    if (shape_json(body, len, &lim, why, whylen) != SHAPE_OK)
        return NULL;
    json_t *j = json_loadb(body, len, 0, &jerr);
    if (j == NULL)
        snprintf(why, whylen, "bad JSON: %s", jerr.text);
    return j;
}

plist_t apple_plist_parse(const void *body, size_t len, char *why, size_t whylen)
{
    plist_t p = NULL;
    char *xml = NULL, buf[128];
    uint32_t xlen = 0;
    if (why == NULL) {
        why = buf;
        whylen = sizeof(buf);
    }
    snprintf(why, whylen, "not a plist");
    if (len < 8 || len > UINT32_MAX)
        return NULL;
    struct shape_limits lim = apple_plist_limits(0);
    int binary = plist_is_binary(body, (uint32_t)len);
    /* The plain XML devices send, within the limits shape_plist() would
     * hold it to, in one pass (apple_xml.c); anything else as before. */
    if (!binary && len <= APPLE_XML_FAST_MAX && memchr(body, '\0', len) == NULL &&
        (p = apple_plist_xml_fast(body, len, &lim)) != NULL)
        return p;
    if (shape_plist(body, len, &lim, why, whylen) != SHAPE_OK)
        return NULL;
    if (!binary)
        return apple_plist_parse_xml(body, len);
    plist_from_bin(body, (uint32_t)len, &p);
    if (p == NULL)
        return NULL;
    plist_to_xml(p, &xml, &xlen);
    plist_free(p);
    p = xml != NULL ? apple_plist_parse_xml(xml, xlen) : NULL;
    free(xml);
    return p;
}

char *apple_plist_dict_string(plist_t dict, const char *key)
{
    char *s = NULL;
    plist_t v = dict != NULL && plist_get_node_type(dict) == PLIST_DICT
                    ? plist_dict_get_item(dict, key)
                    : NULL;
    if (v != NULL && plist_get_node_type(v) == PLIST_STRING)
        plist_get_string_val(v, &s);
    return s;
}
