/* mdmctl_cmd.c: one function per subcommand, each a few REST calls. */
#include "mdmctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/util.h"

#define MDMCTL_CMD_PAGE 1000 /* the server's largest page */

/* A GET, POST or DELETE whose answer must be JSON with an expected status;
 * prints the server's error and returns NULL otherwise.  *status gets the
 * status (0: no answer). */
static json_t *mdmctl_cmd_call(const struct mdmctl *m, const char *method, const char *path,
                               const char *ctype, const char *body, size_t len, int *status)
{
    struct mdmctl_resp r;
    json_error_t err;
    *status = 0;
    if (mdmctl_http(m, method, path, ctype, body, len, &r) != 0)
        return NULL;
    *status = r.status;
    json_t *j = r.status / 100 == 2 ? json_loadb(r.body, r.len, 0, &err) : NULL;
    if (r.status / 100 != 2)
        mdmctl_out_error(&r);
    else if (j == NULL)
        fprintf(stderr, "mdmctl: the server's answer is not JSON: %s\n", err.text);
    mdmctl_resp_free(&r);
    return j;
}

static json_t *mdmctl_cmd_get(const struct mdmctl *m, const char *path, int *status)
{
    return mdmctl_cmd_call(m, "GET", path, NULL, NULL, 0, status);
}

static const char *mdmctl_cmd_str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s != NULL ? s : "";
}

/* "--name value" options of a subcommand: returns the value, or NULL. */
static const char *mdmctl_cmd_opt(int argc, char **argv, int *i, const char *name)
{
    if (strcmp(argv[*i], name) != 0)
        return NULL;
    if (*i + 1 >= argc) {
        fprintf(stderr, "mdmctl: %s needs a value\n", name);
        exit(2);
    }
    return argv[++*i];
}

static long mdmctl_cmd_num(const char *v, const char *name)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || n < 0) {
        fprintf(stderr, "mdmctl: %s must be a number >= 0\n", name);
        exit(2);
    }
    return n;
}

static int mdmctl_cmd_bad_arg(const char *cmd, const char *arg)
{
    fprintf(stderr, "mdmctl %s: unexpected argument %s (see mdmctl --help)\n", cmd, arg);
    return 2;
}

/* ---- devices ---- */

static void mdmctl_cmd_device_row(struct mdmctl_table *t, json_t *d)
{
    char seen[32];
    mdmctl_out_time(mdmctl_cmd_str(d, "last_seen"), seen, sizeof(seen));
    const char *model = mdmctl_cmd_str(d, "product_name");
    const char *row[] = {mdmctl_cmd_str(d, "udid"),
                         mdmctl_cmd_str(d, "state"),
                         mdmctl_cmd_str(d, "serial_number"),
                         *model ? model : mdmctl_cmd_str(d, "model"),
                         mdmctl_cmd_str(d, "os_version"),
                         mdmctl_cmd_str(d, "device_name"),
                         seen};
    mdmctl_out_table_row(t, row);
}

/* Pages through GET /v1/devices until limit rows or the end. */
static json_t *mdmctl_cmd_devices_fetch(const struct mdmctl *m, const char *state, long offset,
                                        long limit)
{
    json_t *all = json_pack("{s:[], s:I, s:I}", "devices", "next_offset", (json_int_t)-1, "total",
                            (json_int_t)0);
    json_t *list = json_object_get(all, "devices");
    while ((long)json_array_size(list) < limit && offset >= 0) {
        char path[256];
        int st;
        long want = limit - (long)json_array_size(list);
        snprintf(path, sizeof(path), "/v1/devices?offset=%ld&limit=%ld%s%s", offset,
                 want > MDMCTL_CMD_PAGE ? MDMCTL_CMD_PAGE : want, state ? "&state=" : "",
                 state ? state : "");
        json_t *page = mdmctl_cmd_get(m, path, &st);
        if (page == NULL) {
            json_decref(all);
            return NULL;
        }
        json_array_extend(list, json_object_get(page, "devices"));
        offset = (long)json_integer_value(json_object_get(page, "next_offset"));
        json_object_set(all, "total", json_object_get(page, "total"));
        json_decref(page);
    }
    json_object_set_new(all, "next_offset", json_integer(offset));
    return all;
}

static int mdmctl_cmd_devices(const struct mdmctl *m, int argc, char **argv)
{
    const char *state = NULL, *v;
    long limit = 50, offset = 0;
    for (int i = 1; i < argc; i++) {
        if ((v = mdmctl_cmd_opt(argc, argv, &i, "--state")) != NULL)
            state = v;
        else if ((v = mdmctl_cmd_opt(argc, argv, &i, "--limit")) != NULL)
            limit = mdmctl_cmd_num(v, "--limit");
        else if ((v = mdmctl_cmd_opt(argc, argv, &i, "--offset")) != NULL)
            offset = mdmctl_cmd_num(v, "--offset");
        else
            return mdmctl_cmd_bad_arg("devices", argv[i]);
    }
    json_t *all = mdmctl_cmd_devices_fetch(m, state, offset, limit > 0 ? limit : 1);
    if (all == NULL)
        return 1;
    if (m->raw) {
        mdmctl_out_json(all);
    } else {
        static const char *const heads[] = {"UDID", "STATE", "SERIAL",         "MODEL",
                                            "OS",   "NAME",  "LAST SEEN (UTC)"};
        struct mdmctl_table *t = mdmctl_out_table_new(heads, 7);
        size_t i;
        json_t *d;
        json_array_foreach(json_object_get(all, "devices"), i, d) mdmctl_cmd_device_row(t, d);
        mdmctl_out_table_print(t);
        long next = (long)json_integer_value(json_object_get(all, "next_offset"));
        printf("%zu shown, %lld known%s", json_array_size(json_object_get(all, "devices")),
               (long long)json_integer_value(json_object_get(all, "total")), next >= 0 ? "" : "\n");
        if (next >= 0)
            printf("; more with --offset %ld\n", next);
    }
    json_decref(all);
    return 0;
}

/* ---- device UDID ---- */

static int mdmctl_cmd_is_time(const char *k)
{
    size_t n = strlen(k);
    return strcmp(k, "last_seen") == 0 || (n > 3 && strcmp(k + n - 3, "_at") == 0);
}

static void mdmctl_cmd_print_record(json_t *rec)
{
    const char *k;
    json_t *v;
    char val[512], t[32];
    json_object_foreach(rec, k, v)
    {
        mdmctl_out_scalar(v, val, sizeof(val));
        if (strcmp(k, "unlock_token") == 0) /* clears the passcode: not for a screen */
            printf("%-24s (hidden; --json shows it)\n", k);
        else if (mdmctl_cmd_is_time(k)) {
            mdmctl_out_time(val, t, sizeof(t));
            printf("%-24s %s UTC\n", k, t);
        } else {
            printf("%-24s %s\n", k, val);
        }
    }
}

static void mdmctl_cmd_print_list(const char *name, json_t *a)
{
    size_t i;
    json_t *v;
    printf("%-24s %zu\n", name, json_array_size(a));
    json_array_foreach(a, i, v) printf("  %s\n", json_string_value(v) ? json_string_value(v) : "?");
}

static int mdmctl_cmd_device(const struct mdmctl *m, int argc, char **argv)
{
    char path[256];
    int st;
    if (argc != 2) {
        fprintf(stderr, "usage: mdmctl device UDID\n");
        return 2;
    }
    snprintf(path, sizeof(path), "/v1/devices/%s", argv[1]);
    json_t *j = mdmctl_cmd_get(m, path, &st);
    if (j == NULL)
        return 1;
    if (m->raw) {
        mdmctl_out_json(j);
    } else {
        json_object_set_new(json_object_get(j, "device"), "udid", json_string(argv[1]));
        mdmctl_cmd_print_record(json_object_get(j, "device"));
        mdmctl_cmd_print_list("queue", json_object_get(j, "queue"));
        if (json_array_size(json_object_get(j, "notnow")) > 0)
            mdmctl_cmd_print_list("notnow", json_object_get(j, "notnow"));
    }
    json_decref(j);
    return 0;
}

/* ---- history UDID ---- */

/* The first error of an ErrorChain, for one table cell. */
static const char *mdmctl_cmd_first_error(json_t *e)
{
    json_t *first = json_array_get(json_object_get(e, "error_chain"), 0);
    const char *s = mdmctl_cmd_str(first, "USEnglishDescription");
    return *s ? s : mdmctl_cmd_str(first, "LocalizedDescription");
}

static int mdmctl_cmd_history(const struct mdmctl *m, int argc, char **argv)
{
    long count = 20;
    const char *udid = NULL, *v;
    for (int i = 1; i < argc; i++) {
        if ((v = mdmctl_cmd_opt(argc, argv, &i, "--count")) != NULL)
            count = mdmctl_cmd_num(v, "--count");
        else if (udid == NULL && argv[i][0] != '-')
            udid = argv[i];
        else
            return mdmctl_cmd_bad_arg("history", argv[i]);
    }
    if (udid == NULL) {
        fprintf(stderr, "usage: mdmctl history UDID [--count N]\n");
        return 2;
    }
    char path[256], when[32], ms[32];
    int st;
    snprintf(path, sizeof(path), "/v1/devices/%s/commands?count=%ld", udid, count);
    json_t *j = mdmctl_cmd_get(m, path, &st);
    if (j == NULL)
        return 1;
    if (m->raw) {
        mdmctl_out_json(j);
        json_decref(j);
        return 0;
    }
    static const char *const heads[] = {"TIME (UTC)", "STATUS", "REQUEST TYPE", "UUID", "ERROR"};
    struct mdmctl_table *t = mdmctl_out_table_new(heads, 5);
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(j, "commands"), i, e)
    {
        mdmctl_out_scalar(json_object_get(e, "time"), ms, sizeof(ms));
        mdmctl_out_time(ms, when, sizeof(when));
        const char *row[] = {when, mdmctl_cmd_str(e, "status"), mdmctl_cmd_str(e, "request_type"),
                             mdmctl_cmd_str(e, "uuid"), mdmctl_cmd_first_error(e)};
        mdmctl_out_table_row(t, row);
    }
    mdmctl_out_table_print(t);
    json_decref(j);
    return 0;
}

/* ---- push, queue-clear ---- */

static int mdmctl_cmd_push(const struct mdmctl *m, int argc, char **argv)
{
    int st;
    if (argc < 2) {
        fprintf(stderr, "usage: mdmctl push UDID...\n");
        return 2;
    }
    json_t *ids = json_array();
    for (int i = 1; i < argc; i++)
        json_array_append_new(ids, json_string(argv[i]));
    json_t *req = json_pack("{s:o}", "udids", ids);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    json_t *j = body != NULL ? mdmctl_cmd_call(m, "POST", "/v1/push", "application/json", body,
                                               strlen(body), &st)
                             : NULL;
    free(body);
    if (j == NULL)
        return 1;
    if (m->raw)
        mdmctl_out_json(j);
    else
        printf("pushing %lld of %lld devices (the others are unknown, checked out or have no "
               "live token)\n",
               (long long)json_integer_value(json_object_get(j, "pushing")),
               (long long)json_integer_value(json_object_get(j, "requested")));
    json_decref(j);
    return 0;
}

static int mdmctl_cmd_queue_clear(const struct mdmctl *m, int argc, char **argv)
{
    char path[256];
    int st;
    if (argc != 2) {
        fprintf(stderr, "usage: mdmctl queue-clear UDID\n");
        return 2;
    }
    snprintf(path, sizeof(path), "/v1/devices/%s/commands", argv[1]);
    json_t *j = mdmctl_cmd_call(m, "DELETE", path, NULL, NULL, 0, &st);
    if (j == NULL)
        return 1;
    if (m->raw)
        mdmctl_out_json(j);
    else
        printf("dropped %lld queued commands of %s\n",
               (long long)json_integer_value(json_object_get(j, "dropped")), argv[1]);
    json_decref(j);
    return 0;
}

/* ---- users, profiles, apps: whatever the enrollment API lists ---- */

/* Columns: the scalar members of the items, preferred names first. */
static int mdmctl_cmd_columns(json_t *items, const char **cols, int max)
{
    static const char *const first[] = {"username", "identifier", "uuid", "id", "name", "role"};
    int n = 0;
    size_t i;
    json_t *it, *v;
    const char *k;
    for (size_t f = 0; f < ARRAY_LEN(first) && n < max; f++)
        json_array_foreach(items, i, it) if (json_object_get(it, first[f]) != NULL &&
                                             strcmp(first[f], "id") != 0)
        {
            cols[n++] = first[f];
            break;
        }
    json_array_foreach(items, i, it)
    {
        json_object_foreach(it, k, v)
        {
            int seen = json_is_object(v) || json_is_array(v) || !strcmp(k, "id");
            for (int c = 0; c < n && !seen; c++)
                seen = strcmp(cols[c], k) == 0;
            if (!seen && n < max)
                cols[n++] = k;
        }
    }
    return n;
}

static void mdmctl_cmd_listing(json_t *items)
{
    const char *cols[8];
    char heads[8][64], cell[8][256];
    int n = mdmctl_cmd_columns(items, cols, 8);
    const char *hp[8], *cp[8];
    for (int c = 0; c < n; c++) {
        for (size_t i = 0; i <= strlen(cols[c]) && i < 63; i++)
            heads[c][i] = cols[c][i] >= 'a' && cols[c][i] <= 'z' ? cols[c][i] - 32 : cols[c][i];
        heads[c][63] = '\0';
        hp[c] = heads[c];
        cp[c] = cell[c];
    }
    struct mdmctl_table *t = mdmctl_out_table_new(hp, n);
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        for (int c = 0; c < n; c++) {
            mdmctl_out_scalar(json_object_get(it, cols[c]), cell[c], sizeof(cell[c]));
            if (!strcmp(cols[c], "created") || !strcmp(cols[c], "updated")) {
                char tmp[256];
                memcpy(tmp, cell[c], sizeof(tmp));
                mdmctl_out_time(tmp, cell[c], sizeof(cell[c]));
            }
        }
        mdmctl_out_table_row(t, cp);
    }
    mdmctl_out_table_print(t);
}

static int mdmctl_cmd_collection(const struct mdmctl *m, int argc, char **argv)
{
    char path[128];
    struct mdmctl_resp r;
    if (argc != 1)
        return mdmctl_cmd_bad_arg(argv[0], argv[1]);
    snprintf(path, sizeof(path), "/v1/%s", argv[0]);
    if (mdmctl_http(m, "GET", path, NULL, NULL, 0, &r) != 0)
        return 1;
    json_t *j = r.status == 200 ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    if (r.status == 404 && strstr(r.body, "no such endpoint") != NULL)
        fprintf(stderr,
                "mdmctl: this server has no %s endpoint (an mdmd without the "
                "enrollment API)\n",
                path);
    else if (r.status != 200)
        mdmctl_out_error(&r);
    mdmctl_resp_free(&r);
    if (j == NULL)
        return 1;
    json_t *items = json_object_get(j, argv[0]);
    if (m->raw)
        mdmctl_out_json(j);
    else if (!json_is_array(items) || json_array_size(items) == 0)
        printf("no %s\n", argv[0]);
    else
        mdmctl_cmd_listing(items);
    json_decref(j);
    return 0;
}

/* ---- dispatch ---- */

typedef int mdmctl_cmd_fn(const struct mdmctl *m, int argc, char **argv);

int mdmctl_cmd_run(struct mdmctl *m, int argc, char **argv)
{
    static const struct {
        const char *name;
        mdmctl_cmd_fn *fn;
    } cmds[] = {
        {"devices", mdmctl_cmd_devices},
        {"device", mdmctl_cmd_device},
        {"history", mdmctl_cmd_history},
        {"push", mdmctl_cmd_push},
        {"queue-clear", mdmctl_cmd_queue_clear},
        {"users", mdmctl_cmd_collection},
        {"profiles", mdmctl_cmd_collection},
        {"apps", mdmctl_cmd_collection},
        {"enqueue", mdmctl_enq_run},
        {"job", mdmctl_enq_job},
        {"channels", mdmctl_checkin_channels},
        {"bootstrap-token", mdmctl_checkin_bootstrap},
        {"rts", mdmctl_checkin_rts},
        {"token-source", mdmctl_checkin_token_source},
        {"migrate", mdmctl_checkin_migrate},
        {"declarations", mdmctl_ddm_run},
        {"declaration", mdmctl_ddm_run},
        {"declare", mdmctl_ddm_run},
        {"declaration-rm", mdmctl_ddm_run},
        {"sets", mdmctl_ddm_run},
        {"set", mdmctl_ddm_run},
        {"set-put", mdmctl_ddm_run},
        {"set-rm", mdmctl_ddm_run},
        {"assign", mdmctl_ddm_run},
        {"status", mdmctl_ddm_run},
        {"fleet-status", mdmctl_ddm_run},
        {"pending", mdmctl_fleet_pending},
        {"cancel", mdmctl_fleet_cancel},
        {"pushes", mdmctl_fleet_pushes},
        {"webhooks", mdmctl_fleet_webhooks},
        {"dead-letters", mdmctl_fleet_dead},
        {"replay", mdmctl_fleet_replay},
        {"stale", mdmctl_fleet_stale},
        {"push-cert", mdmctl_fleet_push_cert},
    };
    if (strcmp(argv[0], "migrate-layout") == 0) /* Redis to Redis: no key */
        return mdmctl_migrate_layout(argc, argv);
    for (size_t i = 0; i < ARRAY_LEN(cmds); i++)
        if (strcmp(argv[0], cmds[i].name) == 0) {
            if (m->key == NULL) {
                fprintf(stderr, "mdmctl: no API key: --key, --key-file, MDMCTL_KEY or a config "
                                "file (see mdmctl --help)\n");
                return 2;
            }
            return cmds[i].fn(m, argc, argv);
        }
    fprintf(stderr, "mdmctl: unknown command %s (see mdmctl --help)\n", argv[0]);
    return 2;
}
