/* ddm_check.c: declarations checked against Apple's schema (the generated
 * ddm_schema.c) and their server tokens (apple.h). */
#include "apple.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/util.h"

#define DDM_CHECK_DEPTH 16 /* nesting the schema has is far less */

static int ddm_check_value(const struct ddm_key *k, json_t *v, const char *path, int depth,
                           char *err, size_t errlen);

static const char *ddm_check_type_name(char t)
{
    switch (t) {
    case 's': return "a string";
    case 'i': return "an integer";
    case 'b': return "a boolean";
    case 'r': return "a number";
    case 'd': return "base64 data (a string)";
    case 't': return "a date (an ISO-8601 string)";
    case 'a': return "an array";
    case 'D': return "an object";
    default: return "a value";
    }
}

static int ddm_check_type_ok(char t, json_t *v)
{
    switch (t) {
    case 's':
    case 'd':
    case 't': return json_is_string(v);
    case 'i': return json_is_integer(v);
    case 'b': return json_is_boolean(v);
    case 'r': return json_is_number(v);
    case 'a': return json_is_array(v);
    case 'D': return json_is_object(v);
    default: return 1;
    }
}

static int ddm_check_allowed(const struct ddm_key *k, json_t *v)
{
    char num[32];
    const char *have = json_string_value(v);
    if (k->values == NULL)
        return 1;
    if (json_is_integer(v)) {
        snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
        have = num;
    }
    if (have == NULL)
        return 1; /* a rangelist on an array or dictionary: items are not listed */
    for (const char *const *a = k->values; *a != NULL; a++)
        if (strcmp(*a, have) == 0)
            return 1;
    return 0;
}

static void ddm_check_list(const struct ddm_key *k, char *out, size_t n)
{
    size_t used = 0;
    out[0] = '\0';
    for (const char *const *a = k->values; *a != NULL && used + 4 < n; a++)
        used += (size_t)snprintf(out + used, n - used, "%s%s", a == k->values ? "" : ", ", *a);
}

/* The keys of an object against a key list. */
static int ddm_check_object(const struct ddm_key *keys, json_t *o, const char *path, int depth,
                            char *err, size_t errlen)
{
    const struct ddm_key *k;
    const char *name;
    json_t *v;
    char sub[512];
    for (k = keys; k->name != NULL; k++)
        if (k->required && json_object_get(o, k->name) == NULL) {
            snprintf(err, errlen, "%s.%s is required", path, k->name);
            return -1;
        }
    int open = k->type == '!';
    json_object_foreach(o, name, v)
    {
        for (k = keys; k->name != NULL && strcmp(k->name, name) != 0; k++)
            ;
        snprintf(sub, sizeof(sub), "%s.%s", path, name);
        if (k->name == NULL && !open) {
            snprintf(err, errlen, "%s is not a key of this declaration type", sub);
            return -1;
        }
        if (k->name != NULL && ddm_check_value(k, v, sub, depth + 1, err, errlen) != 0)
            return -1;
    }
    return 0;
}

static int ddm_check_value(const struct ddm_key *k, json_t *v, const char *path, int depth,
                           char *err, size_t errlen)
{
    char list[256];
    if (depth > DDM_CHECK_DEPTH) {
        snprintf(err, errlen, "%s is nested too deeply", path);
        return -1;
    }
    if (!ddm_check_type_ok(k->type, v)) {
        snprintf(err, errlen, "%s must be %s", path, ddm_check_type_name(k->type));
        return -1;
    }
    if (!ddm_check_allowed(k, v)) {
        ddm_check_list(k, list, sizeof(list));
        snprintf(err, errlen, "%s must be one of: %s", path, list);
        return -1;
    }
    if (k->has_range && json_is_integer(v) &&
        (json_integer_value(v) < k->min || json_integer_value(v) > k->max)) {
        snprintf(err, errlen, "%s must be between %lld and %lld", path, k->min, k->max);
        return -1;
    }
    if (k->type == 'D' && k->sub != NULL)
        return ddm_check_object(k->sub, v, path, depth, err, errlen);
    if (k->type == 'a' && k->sub != NULL && k->sub[0].name != NULL) {
        size_t i;
        json_t *e;
        char sub[512];
        json_array_foreach(v, i, e)
        {
            snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
            if (ddm_check_value(&k->sub[0], e, sub, depth + 1, err, errlen) != 0)
                return -1;
        }
    }
    return 0;
}

int ddm_check_declaration(json_t *decl, char *err, size_t errlen)
{
    static const char *const top[] = {"Type", "Identifier", "Payload", "ServerToken"};
    const char *name;
    json_t *v;
    if (!json_is_object(decl)) {
        snprintf(err, errlen, "a declaration is a JSON object");
        return -1;
    }
    json_object_foreach(decl, name, v)
    {
        size_t i = 0;
        while (i < ARRAY_LEN(top) && strcmp(top[i], name) != 0)
            i++;
        if (i == ARRAY_LEN(top)) {
            snprintf(err, errlen, "%s is not a key of a declaration", name);
            return -1;
        }
    }
    const char *type = json_string_value(json_object_get(decl, "Type"));
    if (type == NULL) {
        snprintf(err, errlen, "Type is required (a string)");
        return -1;
    }
    if (!json_is_string(json_object_get(decl, "Identifier"))) {
        snprintf(err, errlen, "Identifier is required (a string)");
        return -1;
    }
    const struct ddm_type *t = ddm_schema_find(type);
    if (t == NULL) {
        snprintf(err, errlen, "Type: %s is not a declaration type Apple defines", type);
        return -1;
    }
    json_t *payload = json_object_get(decl, "Payload");
    if (payload == NULL)
        payload = json_object(); /* a type whose keys are all optional may omit it */
    else
        json_incref(payload);
    int rc = 0;
    if (!json_is_object(payload)) {
        snprintf(err, errlen, "Payload must be an object");
        rc = -1;
    } else {
        rc = ddm_check_object(t->keys, payload, "Payload", 0, err, errlen);
    }
    json_decref(payload);
    return rc;
}

static json_t *ddm_check_content(json_t *decl)
{
    json_t *c = json_object();
    json_t *p = json_object_get(decl, "Payload");
    json_object_set(c, "Type", json_object_get(decl, "Type"));
    json_object_set(c, "Identifier", json_object_get(decl, "Identifier"));
    json_object_set_new(c, "Payload", p != NULL ? json_incref(p) : json_object());
    return c;
}

void ddm_check_token(json_t *decl, char token[33])
{
    json_t *c = ddm_check_content(decl);
    char *s = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL);
    util_hex(md, 16, token);
    free(s);
    json_decref(c);
}

char *ddm_check_canonical(json_t *decl, char token[33])
{
    json_t *c = ddm_check_content(decl);
    ddm_check_token(decl, token);
    json_object_set_new(c, "ServerToken", json_string(token));
    char *s = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(c);
    return s;
}
