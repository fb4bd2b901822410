/* mdmctl_ddm.c: declarative management subcommands (mdmctl.h; docs/DDM.md):
 * declarations, sets, their assignment, an enrollment's status, the fleet by
 * status.  Each is one or two REST calls. */
#include "mdmctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/util.h"

/* One call; prints the server's error unless 2xx.  Returns the JSON (NULL
 * for an empty 2xx body too) and sets *ok. */
static json_t *mdmctl_ddm_call(const struct mdmctl *m, const char *method, const char *path,
                               const char *body, int *ok)
{
    struct mdmctl_resp r;
    *ok = 0;
    if (mdmctl_http(m, method, path, body ? "application/json" : NULL, body,
                    body ? strlen(body) : 0, &r) != 0)
        return NULL;
    json_t *j = r.len > 0 ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    *ok = r.status / 100 == 2;
    if (!*ok)
        mdmctl_out_error(&r);
    mdmctl_resp_free(&r);
    return j;
}

static int mdmctl_ddm_usage(const char *u)
{
    fprintf(stderr, "usage: mdmctl %s\n", u);
    return 2;
}

/* Prints the answer (--json: as it came), then says what walk tells devices. */
static int mdmctl_ddm_done(const struct mdmctl *m, json_t *j, int ok, const char *what)
{
    if (ok && (m->raw || what == NULL)) {
        if (j != NULL)
            mdmctl_out_json(j);
    } else if (ok) {
        const char *job = json_string_value(json_object_get(j, "job_id"));
        printf("%s", what);
        if (job != NULL)
            printf(" (devices are told by job %s: mdmctl job %s)", job, job);
        printf("\n");
    }
    json_decref(j);
    return ok ? 0 : 1;
}

static void mdmctl_ddm_table(json_t *items, const char *const *cols, const char *const *heads,
                             int n)
{
    char cell[8][256];
    const char *cp[8];
    struct mdmctl_table *t = mdmctl_out_table_new(heads, n);
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        for (int c = 0; c < n; c++) {
            char tmp[256];
            mdmctl_out_scalar(json_object_get(it, cols[c]), tmp, sizeof(tmp));
            if (strcmp(cols[c], "updated") == 0)
                mdmctl_out_time(tmp, cell[c], sizeof(cell[c]));
            else
                snprintf(cell[c], sizeof(cell[c]), "%s", tmp);
            cp[c] = cell[c];
        }
        mdmctl_out_table_row(t, cp);
    }
    mdmctl_out_table_print(t);
}

static int mdmctl_ddm_list(const struct mdmctl *m, const char *path, const char *key,
                           const char *const *cols, const char *const *heads, int n)
{
    int ok;
    json_t *j = mdmctl_ddm_call(m, "GET", path, NULL, &ok);
    json_t *items = json_object_get(j, key);
    if (ok && m->raw)
        mdmctl_out_json(j);
    else if (ok && json_array_size(items) == 0)
        printf("no %s\n", key);
    else if (ok)
        mdmctl_ddm_table(items, cols, heads, n);
    json_decref(j);
    return ok ? 0 : 1;
}

/* declare FILE: PUT the declaration in FILE under its Identifier. */
static int mdmctl_ddm_declare(const struct mdmctl *m, const char *file)
{
    char path[300], *body = NULL;
    size_t len;
    int ok;
    if (util_read_file(file, &body, &len) != 0) {
        fprintf(stderr, "mdmctl: cannot read %s\n", file);
        return 1;
    }
    json_t *d = json_loadb(body, len, 0, NULL);
    const char *id = json_string_value(json_object_get(d, "Identifier"));
    if (id == NULL) {
        fprintf(stderr, "mdmctl: %s is not a declaration (JSON with an Identifier)\n", file);
        json_decref(d);
        free(body);
        return 1;
    }
    snprintf(path, sizeof(path), "/v1/declarations/%s", id);
    json_t *j = mdmctl_ddm_call(m, "PUT", path, body, &ok);
    char what[300];
    snprintf(what, sizeof(what), "%s %s", id,
             json_is_true(json_object_get(j, "created"))   ? "created"
             : json_is_true(json_object_get(j, "changed")) ? "replaced"
                                                           : "unchanged");
    json_decref(d);
    free(body);
    return mdmctl_ddm_done(m, j, ok, what);
}

static int mdmctl_ddm_set_put(const struct mdmctl *m, int argc, char **argv)
{
    char path[300];
    int ok;
    json_t *ids = json_array();
    for (int i = 2; i < argc; i++)
        json_array_append_new(ids, json_string(argv[i]));
    json_t *b = json_pack("{s:o}", "declarations", ids);
    char *body = json_dumps(b, JSON_COMPACT);
    snprintf(path, sizeof(path), "/v1/declaration-sets/%s", argv[1]);
    json_t *j = mdmctl_ddm_call(m, "PUT", path, body, &ok);
    free(body);
    json_decref(b);
    return mdmctl_ddm_done(m, j, ok, "set stored");
}

/* assign NAME [--udid E]... [--user U]... [--everyone] */
static int mdmctl_ddm_assign(const struct mdmctl *m, int argc, char **argv)
{
    char path[300];
    int ok, everyone = 0;
    json_t *udids = json_array(), *users = json_array();
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--everyone") == 0)
            everyone = 1;
        else if ((strcmp(argv[i], "--udid") == 0 || strcmp(argv[i], "--user") == 0) &&
                 i + 1 < argc) {
            json_t *to = argv[i][3] == 'd' ? udids : users;
            json_array_append_new(to, json_string(argv[i + 1]));
            i++;
        } else {
            json_decref(udids);
            json_decref(users);
            return mdmctl_ddm_usage("assign SET [--udid UDID[:USERID]]... [--user NAME]... "
                                    "[--everyone]");
        }
    }
    json_t *b = json_pack("{s:o, s:o, s:b}", "udids", udids, "users", users, "everyone", everyone);
    char *body = json_dumps(b, JSON_COMPACT);
    snprintf(path, sizeof(path), "/v1/declaration-sets/%s/assignment", argv[1]);
    json_t *j = mdmctl_ddm_call(m, "PUT", path, body, &ok);
    free(body);
    json_decref(b);
    return mdmctl_ddm_done(m, j, ok, "assigned");
}

/* status UDID [--user-id ID]: status items one a line, then the declarations. */
static int mdmctl_ddm_status(const struct mdmctl *m, int argc, char **argv)
{
    char path[400];
    int ok;
    if (argc == 4 && strcmp(argv[2], "--user-id") == 0)
        snprintf(path, sizeof(path), "/v1/devices/%s/status?user_id=%s", argv[1], argv[3]);
    else if (argc == 2)
        snprintf(path, sizeof(path), "/v1/devices/%s/status", argv[1]);
    else
        return mdmctl_ddm_usage("status UDID [--user-id ID]");
    json_t *j = mdmctl_ddm_call(m, "GET", path, NULL, &ok);
    if (!ok || m->raw)
        return mdmctl_ddm_done(m, j, ok, NULL);
    const char *k;
    json_t *v, *items = json_object_get(j, "status_items");
    json_object_foreach(items, k, v)
    {
        if (strcmp(k, "management.declarations") == 0)
            continue;
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        printf("%-44s %s\n", k, s);
        free(s);
    }
    json_t *decls = json_object_get(items, "management.declarations"), *a, *e;
    json_object_foreach(decls, k, a)
    {
        size_t i;
        json_array_foreach(a, i, e)
        {
            json_t *reasons = json_object_get(e, "reasons");
            char *r = reasons ? json_dumps(reasons, JSON_COMPACT) : NULL;
            printf("%-14s %-40s %s %s%s%s\n", k,
                   json_string_value(json_object_get(e, "identifier")),
                   json_string_value(json_object_get(e, "valid")),
                   json_is_true(json_object_get(e, "active")) ? "active" : "inactive", r ? " " : "",
                   r ? r : "");
            free(r);
        }
    }
    json_decref(j);
    return 0;
}

/* fleet-status (--failed | --item I (--value V | --json-value J) [--not]) */
static int mdmctl_ddm_fleet(const struct mdmctl *m, int argc, char **argv)
{
    char path[1024];
    const char *item = NULL, *value = NULL, *jv = NULL;
    int failed = 0, not = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--failed") == 0)
            failed = 1;
        else if (strcmp(argv[i], "--not") == 0)
            not = 1;
        else if (strcmp(argv[i], "--item") == 0 && i + 1 < argc)
            item = argv[++i];
        else if (strcmp(argv[i], "--value") == 0 && i + 1 < argc)
            value = argv[++i];
        else if (strcmp(argv[i], "--json-value") == 0 && i + 1 < argc)
            jv = argv[++i];
        else
            return mdmctl_ddm_usage(
                "fleet-status (--failed | --item ITEM (--value V | --json-value J) [--not])");
    }
    if (failed) {
        snprintf(path, sizeof(path), "/v1/ddm/status?failed=1&limit=1000");
    } else if (item != NULL && (value != NULL || jv != NULL)) {
        /* Values go into the query as they are: letters, digits, . - _ are what items hold. */
        snprintf(path, sizeof(path), "/v1/ddm/status?item=%s&%s=%s%s&limit=1000", item,
                 value ? "value" : "json", value ? value : jv, not ? "&not=1" : "");
    } else {
        return mdmctl_ddm_usage(
            "fleet-status (--failed | --item ITEM (--value V | --json-value J) [--not])");
    }
    static const char *const cols[] = {"enrollment", "value"};
    static const char *const heads[] = {"ENROLLMENT", "VALUE"};
    return mdmctl_ddm_list(m, path, "enrollments", cols, heads, 2);
}

int mdmctl_ddm_run(const struct mdmctl *m, int argc, char **argv)
{
    static const char *const dcols[] = {"identifier", "type", "server_token", "updated"};
    static const char *const dheads[] = {"IDENTIFIER", "TYPE", "SERVER TOKEN", "UPDATED"};
    static const char *const scols[] = {"name", "declarations", "targets", "users", "everyone"};
    static const char *const sheads[] = {"NAME", "DECLARATIONS", "UDIDS", "USERS", "EVERYONE"};
    const char *c = argv[0];
    char path[300];
    int ok;
    if (strcmp(c, "declarations") == 0)
        return mdmctl_ddm_list(m, "/v1/declarations", "declarations", dcols, dheads, 4);
    if (strcmp(c, "sets") == 0)
        return mdmctl_ddm_list(m, "/v1/declaration-sets", "sets", scols, sheads, 5);
    if (strcmp(c, "declare") == 0)
        return argc == 2 ? mdmctl_ddm_declare(m, argv[1]) : mdmctl_ddm_usage("declare FILE.json");
    if (strcmp(c, "set-put") == 0)
        return argc >= 2 ? mdmctl_ddm_set_put(m, argc, argv)
                         : mdmctl_ddm_usage("set-put SET [IDENTIFIER...]");
    if (strcmp(c, "assign") == 0)
        return argc >= 2 ? mdmctl_ddm_assign(m, argc, argv)
                         : mdmctl_ddm_usage("assign SET [--udid U]... [--user N]... [--everyone]");
    if (strcmp(c, "status") == 0)
        return mdmctl_ddm_status(m, argc, argv);
    if (strcmp(c, "fleet-status") == 0)
        return mdmctl_ddm_fleet(m, argc, argv);
    /* declaration ID | declaration-rm ID | set NAME | set-rm NAME */
    if (argc != 2)
        return mdmctl_ddm_usage("declaration ID | declaration-rm ID | set NAME | set-rm NAME");
    int set = strncmp(c, "set", 3) == 0, rm = strstr(c, "-rm") != NULL;
    snprintf(path, sizeof(path), "/v1/%s/%s", set ? "declaration-sets" : "declarations", argv[1]);
    json_t *j = mdmctl_ddm_call(m, rm ? "DELETE" : "GET", path, NULL, &ok);
    return mdmctl_ddm_done(m, j, ok, rm ? "deleted" : NULL);
}
