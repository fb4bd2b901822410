/* profcheck: checks configuration profiles (plists) against Apple's profile
 * schema, the YAML files of apple-device-management/mdm/profiles.
 *
 *   profcheck -s DIR [-s DIR]... PROFILE...
 *
 * A profile whose PayloadType is Configuration is checked against
 * TopLevel.yaml, and each item of its PayloadContent against
 * CommonPayloadKeys.yaml plus <PayloadType>.yaml; any other top-level
 * payload (e.g. a Profile Service payload) against CommonPayloadKeys.yaml
 * plus <PayloadType>.yaml.  Schema files are looked up in the -s
 * directories in order.  Checked: every key marked "presence: required"
 * (unless iOS says "introduced: n/a") is there; every key present is one
 * the schema names; each value has the schema's type; strings match
 * "format" and scalars are in "rangelist"; dictionaries and array items are
 * checked against "subkeys".  Prints one line per problem and a summary
 * "profiles=N keys=N problems=N"; exits 1 when there is a problem. */
#include <ctype.h>
#include <plist/plist.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/util.h"

#define PC_MAX_DIRS 8
#define PC_MAX_RANGE 32

struct pc_key { /* one schema key */
    char *name;
    char *type;   /* "<string>", ... */
    char *format; /* regex, or NULL */
    int required;
    int ios_na; /* supportedOS: iOS introduced: n/a */
    char *range[PC_MAX_RANGE];
    int nrange;
    struct pc_key *kids; /* subkeys, a list */
    struct pc_key *next;
    int indent; /* column of its "- key:" */
};

static const char *pc_dirs[PC_MAX_DIRS];
static int pc_ndirs;
static unsigned long pc_keys_checked, pc_problems;
static const char *pc_file;

static void pc_problem(const char *path, const char *fmt, const char *a)
{
    pc_problems++;
    printf("%s: %s: ", pc_file, path);
    printf(fmt, a);
    printf("\n");
}

/* ---- the YAML subset these files use ---- */

static char *pc_unquote(const char *s)
{
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    if (n >= 2 && (s[0] == '\'' || s[0] == '"') && s[n - 1] == s[0])
        return xstrndup(s + 1, n - 2);
    return xstrndup(s, n);
}

struct pc_parse {
    struct pc_key *root;      /* payloadkeys */
    struct pc_key *stack[16]; /* open keys, innermost last */
    int depth;
    enum { PC_NONE, PC_RANGE, PC_KIDS, PC_OS } mode; /* list of the current key */
    int in_ios;
};

static void pc_append(struct pc_key **list, struct pc_key *k)
{
    while (*list != NULL)
        list = &(*list)->next;
    *list = k;
}

static void pc_new_key(struct pc_parse *p, int indent, const char *name)
{
    struct pc_key *k = xcalloc(1, sizeof(*k));
    k->name = pc_unquote(name);
    k->indent = indent;
    while (p->depth > 0 && p->stack[p->depth - 1]->indent >= indent)
        p->depth--;
    pc_append(p->depth > 0 ? &p->stack[p->depth - 1]->kids : &p->root, k);
    if (p->depth < 16)
        p->stack[p->depth++] = k;
    p->mode = PC_NONE;
}

/* A line inside the current key k (col: its indentation). */
static void pc_key_line(struct pc_parse *p, struct pc_key *k, int col, const char *t)
{
    if (col == k->indent + 2 && t[0] != '-') {
        p->mode = !strcmp(t, "rangelist:")     ? PC_RANGE
                  : !strcmp(t, "subkeys:")     ? PC_KIDS
                  : !strcmp(t, "supportedOS:") ? PC_OS
                                               : PC_NONE;
        p->in_ios = 0;
        if (!strncmp(t, "type: ", 6))
            k->type = pc_unquote(t + 6);
        else if (!strncmp(t, "format: ", 8))
            k->format = pc_unquote(t + 8);
        else if (!strcmp(t, "presence: required"))
            k->required = 1;
    } else if (col == k->indent + 2 && p->mode == PC_RANGE && k->nrange < PC_MAX_RANGE) {
        k->range[k->nrange++] = pc_unquote(t + 2);
    } else if (p->mode == PC_OS && col == k->indent + 4) {
        p->in_ios = !strcmp(t, "iOS:");
    } else if (p->mode == PC_OS && p->in_ios && col == k->indent + 6 &&
               !strcmp(t, "introduced: n/a")) {
        k->ios_na = 1;
    }
}

static struct pc_key *pc_load(const char *file)
{
    FILE *f = NULL;
    char path[4096], line[8192];
    for (int i = 0; f == NULL && i < pc_ndirs; i++) {
        snprintf(path, sizeof(path), "%s/%s", pc_dirs[i], file);
        f = fopen(path, "r");
    }
    if (f == NULL)
        return NULL;
    struct pc_parse p = {0};
    int in_keys = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        int col = (int)strspn(line, " ");
        const char *t = line + col;
        if (*t == '\0')
            continue; /* blank lines occur inside multi-line content */
        if (col == 0 && t[0] != '-')
            in_keys = strcmp(t, "payloadkeys:") == 0;
        else if (in_keys && !strncmp(t, "- key: ", 7))
            pc_new_key(&p, col, t + 7);
        else if (in_keys && p.depth > 0)
            pc_key_line(&p, p.stack[p.depth - 1], col, t);
    }
    fclose(f);
    return p.root;
}

/* ---- checking ---- */

static const struct pc_key *pc_find(const struct pc_key *list, const char *name)
{
    for (; list != NULL; list = list->next)
        if (strcmp(list->name, name) == 0 || strcmp(list->name, "ANY") == 0)
            return list;
    return NULL;
}

static const char *pc_type_of(plist_t v)
{
    switch (plist_get_node_type(v)) {
    case PLIST_STRING: return "<string>";
    case PLIST_UINT: return "<integer>";
    case PLIST_BOOLEAN: return "<boolean>";
    case PLIST_DATA: return "<data>";
    case PLIST_ARRAY: return "<array>";
    case PLIST_DICT: return "<dictionary>";
    case PLIST_REAL: return "<real>";
    case PLIST_DATE: return "<date>";
    default: return "?";
    }
}

/* The scalar as text (for rangelist), or NULL. Caller frees. */
static char *pc_scalar(plist_t v)
{
    uint64_t u;
    uint8_t b;
    if (plist_get_node_type(v) == PLIST_STRING)
        return xstrdup(plist_get_string_ptr(v, NULL));
    if (plist_get_node_type(v) == PLIST_UINT) {
        plist_get_uint_val(v, &u);
        return xasprintf("%llu", (unsigned long long)u);
    }
    if (plist_get_node_type(v) == PLIST_BOOLEAN) {
        plist_get_bool_val(v, &b);
        return xstrdup(b ? "true" : "false");
    }
    return NULL;
}

static void pc_check_dict(plist_t d, const struct pc_key *keys, const char *path);

static void pc_check_scalar(plist_t v, const struct pc_key *k, const char *path)
{
    char *s = pc_scalar(v);
    regex_t re;
    if (s != NULL && k->format != NULL && plist_get_node_type(v) == PLIST_STRING &&
        regcomp(&re, k->format, REG_EXTENDED | REG_NOSUB) == 0) {
        if (regexec(&re, s, 0, NULL, 0) != 0)
            pc_problem(path, "does not match the format %s", k->format);
        regfree(&re);
    }
    int in = k->nrange == 0;
    for (int i = 0; s != NULL && i < k->nrange; i++)
        in |= strcmp(s, k->range[i]) == 0;
    if (s != NULL && !in)
        pc_problem(path, "value \"%s\" is not in the schema's rangelist", s);
    free(s);
}

static void pc_check_value(plist_t v, const struct pc_key *k, const char *path)
{
    pc_keys_checked++;
    if (k->type != NULL && strcmp(k->type, "<any>") != 0 && strcmp(k->type, pc_type_of(v)) != 0) {
        pc_problem(path, "has type %s", pc_type_of(v));
        printf("    (the schema says %s)\n", k->type);
        return;
    }
    pc_check_scalar(v, k, path);
    if (plist_get_node_type(v) == PLIST_DICT && k->kids != NULL)
        pc_check_dict(v, k->kids, path);
    if (plist_get_node_type(v) == PLIST_ARRAY && k->kids != NULL) {
        for (uint32_t i = 0; i < plist_array_get_size(v); i++) {
            char *p = xasprintf("%s[%u]", path, i);
            pc_check_value(plist_array_get_item(v, i), k->kids, p);
            free(p);
        }
    }
}

static void pc_check_dict(plist_t d, const struct pc_key *keys, const char *path)
{
    for (const struct pc_key *k = keys; k != NULL; k = k->next)
        if (k->required && !k->ios_na && strcmp(k->name, "ANY") != 0 &&
            plist_dict_get_item(d, k->name) == NULL)
            pc_problem(path, "required key %s is missing", k->name);
    plist_dict_iter it = NULL;
    plist_dict_new_iter(d, &it);
    for (;;) {
        char *name = NULL;
        plist_t v = NULL;
        plist_dict_next_item(d, it, &name, &v);
        if (name == NULL)
            break;
        char *p = xasprintf("%s.%s", path, name);
        const struct pc_key *k = pc_find(keys, name);
        if (k == NULL)
            pc_problem(p, "%s", "is not a key of the schema");
        else
            pc_check_value(v, k, p);
        free(p);
        free(name);
    }
    free(it);
}

/* ---- payloads and profiles ---- */

static void pc_free(struct pc_key *k)
{
    while (k != NULL) {
        struct pc_key *next = k->next;
        pc_free(k->kids);
        free(k->name);
        free(k->type);
        free(k->format);
        for (int i = 0; i < k->nrange; i++)
            free(k->range[i]);
        free(k);
        k = next;
    }
}

/* A deep copy of one key (next NULL), to merge lists without sharing. */
static struct pc_key *pc_copy(const struct pc_key *k)
{
    struct pc_key *c = xcalloc(1, sizeof(*c));
    c->name = xstrdup(k->name);
    c->type = k->type ? xstrdup(k->type) : NULL;
    c->format = k->format ? xstrdup(k->format) : NULL;
    c->required = k->required;
    c->ios_na = k->ios_na;
    for (int i = 0; i < k->nrange; i++)
        c->range[c->nrange++] = xstrdup(k->range[i]);
    for (const struct pc_key *kid = k->kids; kid != NULL; kid = kid->next)
        pc_append(&c->kids, pc_copy(kid));
    return c;
}

/* <type>.yaml plus the CommonPayloadKeys it does not redefine; NULL when
 * there is no schema file for type. */
static struct pc_key *pc_payload_keys(const char *type, const struct pc_key *common)
{
    char *file = xasprintf("%s.yaml", type);
    struct pc_key *own = pc_load(file);
    free(file);
    if (own == NULL)
        return NULL;
    for (const struct pc_key *c = common; c != NULL; c = c->next) {
        const struct pc_key *k = own;
        while (k != NULL && strcmp(k->name, c->name) != 0)
            k = k->next;
        if (k == NULL)
            pc_append(&own, pc_copy(c));
    }
    return own;
}

static void pc_check_payload(plist_t item, const char *path, const struct pc_key *common)
{
    plist_t t =
        plist_get_node_type(item) == PLIST_DICT ? plist_dict_get_item(item, "PayloadType") : NULL;
    const char *type =
        t != NULL && plist_get_node_type(t) == PLIST_STRING ? plist_get_string_ptr(t, NULL) : NULL;
    if (type == NULL) {
        pc_problem(path, "%s", "is not a payload dictionary with a PayloadType");
        return;
    }
    struct pc_key *keys = pc_payload_keys(type, common);
    if (keys == NULL)
        pc_problem(path, "no schema file for PayloadType %s", type);
    else
        pc_check_dict(item, keys, path);
    pc_free(keys);
}

static void pc_check_profile(plist_t p, const struct pc_key *top, const struct pc_key *common)
{
    plist_t t = plist_dict_get_item(p, "PayloadType");
    const char *type =
        t != NULL && plist_get_node_type(t) == PLIST_STRING ? plist_get_string_ptr(t, NULL) : NULL;
    if (type == NULL || strcmp(type, "Configuration") != 0) {
        pc_check_payload(p, "profile", common);
        return;
    }
    pc_check_dict(p, top, "profile");
    plist_t items = plist_dict_get_item(p, "PayloadContent");
    for (uint32_t i = 0; items != NULL && plist_get_node_type(items) == PLIST_ARRAY &&
                         i < plist_array_get_size(items);
         i++) {
        char *path = xasprintf("profile.PayloadContent[%u]", i);
        pc_check_payload(plist_array_get_item(items, i), path, common);
        free(path);
    }
}

static plist_t pc_read(const char *file)
{
    char *buf = NULL;
    size_t len = 0;
    plist_t p = NULL;
    if (util_read_file(file, &buf, &len) == 0 && len < UINT32_MAX)
        plist_from_memory(buf, (uint32_t)len, &p);
    free(buf);
    if (p != NULL && plist_get_node_type(p) != PLIST_DICT) {
        plist_free(p);
        p = NULL;
    }
    return p;
}

int main(int argc, char **argv)
{
    int i = 1, nprof = 0;
    for (; i + 1 < argc && strcmp(argv[i], "-s") == 0 && pc_ndirs < PC_MAX_DIRS; i += 2)
        pc_dirs[pc_ndirs++] = argv[i + 1];
    struct pc_key *top = pc_load("TopLevel.yaml"), *common = pc_load("CommonPayloadKeys.yaml");
    if (pc_ndirs == 0 || i >= argc || top == NULL || common == NULL) {
        fprintf(stderr,
                "usage: profcheck -s SCHEMA_DIR [-s DIR]... PROFILE...\n"
                "(the -s directories must hold TopLevel.yaml and CommonPayloadKeys.yaml)\n");
        return 2;
    }
    for (; i < argc; i++, nprof++) {
        pc_file = argv[i];
        plist_t p = pc_read(argv[i]);
        if (p == NULL)
            pc_problem("profile", "%s", "is not a plist dictionary");
        else
            pc_check_profile(p, top, common);
        plist_free(p);
    }
    printf("profiles=%d keys=%lu problems=%lu\n", nprof, pc_keys_checked, pc_problems);
    pc_free(top);
    pc_free(common);
    return pc_problems != 0;
}
