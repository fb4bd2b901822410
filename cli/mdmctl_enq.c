/* mdmctl_enq.c: mdmctl enqueue, and following a bulk job to its end.
 *
 * A JSON command goes in one POST /v1/commands whatever the number of
 * targets (the server turns a large one into a job, which is followed with a
 * progress bar).  A plist command names its targets in the query string, so
 * a long UDID list goes out in several requests that share one CommandUUID:
 * the server stores the command once. */
#include "mdmctl.h"

#include <plist/plist.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/util.h"

#define MDMCTL_ENQ_POLL_MS 200
#define MDMCTL_ENQ_QUERY_MAX 6000 /* bytes of UDIDs per plist request */

struct mdmctl_enq {
    json_t *udids; /* array of strings; empty with all_enrolled */
    int all_enrolled;
    json_t *command;        /* --json */
    const char *plist_file; /* --plist */
    int async, no_wait;
    int urgent; /* --priority high: to the head of each queue */
};

static void mdmctl_enq_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- following a job ---- */

static json_t *mdmctl_enq_job_get(const struct mdmctl *m, const char *id)
{
    char path[128];
    struct mdmctl_resp r;
    snprintf(path, sizeof(path), "/v1/jobs/%s", id);
    if (mdmctl_http(m, "GET", path, NULL, NULL, 0, &r) != 0)
        return NULL;
    json_t *j = r.status == 200 ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    if (r.status != 200)
        mdmctl_out_error(&r);
    mdmctl_resp_free(&r);
    return j;
}

static long mdmctl_enq_int(json_t *o, const char *k)
{
    return (long)json_integer_value(json_object_get(o, k));
}

static void mdmctl_enq_job_summary(json_t *j)
{
    const char *st = json_string_value(json_object_get(j, "state"));
    double secs = (double)(mdmctl_enq_int(j, "updated") - mdmctl_enq_int(j, "created")) / 1000;
    printf("job %s %s: command %s queued for %ld devices",
           json_string_value(json_object_get(j, "job_id")), st != NULL ? st : "?",
           json_string_value(json_object_get(j, "command_uuid")), mdmctl_enq_int(j, "queued"));
    if (mdmctl_enq_int(j, "unknown") > 0)
        printf(", %ld unknown or checked out", mdmctl_enq_int(j, "unknown"));
    if (mdmctl_enq_int(j, "skipped") > 0)
        printf(", %ld not enrolled", mdmctl_enq_int(j, "skipped"));
    printf(" (%ld of %ld handled, %.1f s)\n", mdmctl_enq_int(j, "done"), mdmctl_enq_int(j, "total"),
           secs);
    const char *err = json_string_value(json_object_get(j, "error"));
    if (err != NULL && *err)
        fprintf(stderr, "mdmctl: job failed: %s\n", err);
}

/* Polls until the job leaves "running"; 0 when it ended "done". */
static int mdmctl_enq_follow(const struct mdmctl *m, const char *id, int wait)
{
    json_t *j;
    char what[64];
    for (;;) {
        if ((j = mdmctl_enq_job_get(m, id)) == NULL)
            return 1;
        const char *st = json_string_value(json_object_get(j, "state"));
        int running = st != NULL && strcmp(st, "running") == 0;
        snprintf(what, sizeof(what), "queued %ld", mdmctl_enq_int(j, "queued"));
        if (wait)
            mdmctl_out_progress(m, mdmctl_enq_int(j, "done"), mdmctl_enq_int(j, "total"), what,
                                !running);
        if (!running || !wait)
            break;
        json_decref(j);
        mdmctl_enq_sleep_ms(MDMCTL_ENQ_POLL_MS);
    }
    const char *end = json_string_value(json_object_get(j, "state"));
    int ok = end == NULL || strcmp(end, "failed") != 0;
    if (m->raw)
        mdmctl_out_json(j);
    else
        mdmctl_enq_job_summary(j);
    json_decref(j);
    return ok ? 0 : 1;
}

int mdmctl_enq_job(const struct mdmctl *m, int argc, char **argv)
{
    int wait = argc == 3 && strcmp(argv[2], "--wait") == 0;
    if (argc < 2 || argc > 3 || (argc == 3 && !wait)) {
        fprintf(stderr, "usage: mdmctl job ID [--wait]\n");
        return 2;
    }
    return mdmctl_enq_follow(m, argv[1], wait);
}

/* ---- enqueue ---- */

static int mdmctl_enq_read_udids(const char *path, json_t *udids)
{
    FILE *f = fopen(path, "r");
    char line[256];
    if (f == NULL) {
        fprintf(stderr, "mdmctl: cannot read %s\n", path);
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, " \t\r\n#")] = '\0';
        if (line[0] != '\0')
            json_array_append_new(udids, json_string(line));
    }
    fclose(f);
    return 0;
}

static int mdmctl_enq_parse(int argc, char **argv, struct mdmctl_enq *e)
{
    json_error_t err;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = !strcmp(a, "--udid") || !strcmp(a, "--udids-file") || !strcmp(a, "--json") ||
                    !strcmp(a, "--plist");
        if (takes && v == NULL) {
            fprintf(stderr, "mdmctl enqueue: %s needs a value\n", a);
            return -1;
        }
        i += takes;
        if (!strcmp(a, "--udid"))
            json_array_append_new(e->udids, json_string(v));
        else if (!strcmp(a, "--udids-file") && mdmctl_enq_read_udids(v, e->udids) != 0)
            return -1;
        else if (!strcmp(a, "--json") && (e->command = json_loads(v, 0, &err)) == NULL) {
            fprintf(stderr, "mdmctl enqueue: --json: %s\n", err.text);
            return -1;
        } else if (!strcmp(a, "--plist"))
            e->plist_file = v;
        else if (!takes && !strcmp(a, "--all-enrolled"))
            e->all_enrolled = 1;
        else if (!takes && !strcmp(a, "--async"))
            e->async = 1;
        else if (!takes && !strcmp(a, "--no-wait"))
            e->no_wait = 1;
        else if (!takes && !strcmp(a, "--urgent"))
            e->urgent = 1;
        else if (!takes) {
            fprintf(stderr, "mdmctl enqueue: unexpected argument %s\n", a);
            return -1;
        }
    }
    return 0;
}

static int mdmctl_enq_check(const struct mdmctl_enq *e)
{
    size_t n = json_array_size(e->udids);
    if ((n > 0) == e->all_enrolled || (e->command != NULL) == (e->plist_file != NULL)) {
        fprintf(stderr, "usage: mdmctl enqueue (--udid U... | --udids-file FILE | "
                        "--all-enrolled)\n                      (--json '{\"RequestType\":...}' | "
                        "--plist FILE) [--async] [--no-wait] [--urgent]\n");
        return -1;
    }
    if (e->command != NULL &&
        json_string_value(json_object_get(e->command, "RequestType")) == NULL) {
        fprintf(stderr,
                "mdmctl enqueue: the command needs a RequestType, e.g. "
                "--json '{\"RequestType\":\"DeviceInformation\",\"Queries\":[\"OSVersion\"]}'\n");
        return -1;
    }
    return 0;
}

/* A 201 or 202 answer: print it, or follow the job it started. */
static int mdmctl_enq_answer(const struct mdmctl *m, const struct mdmctl_enq *e, json_t *j)
{
    const char *job = json_string_value(json_object_get(j, "job_id"));
    if (job != NULL && !e->no_wait)
        return mdmctl_enq_follow(m, job, 1);
    if (m->raw) {
        mdmctl_out_json(j);
    } else if (job != NULL) {
        printf("job %s started: command %s (follow it with: mdmctl job %s --wait)\n", job,
               json_string_value(json_object_get(j, "command_uuid")), job);
    } else {
        size_t i, nu = json_array_size(json_object_get(j, "unknown_udids"));
        json_t *u;
        printf("command %s queued for %lld devices\n",
               json_string_value(json_object_get(j, "command_uuid")),
               (long long)json_integer_value(json_object_get(j, "queued")));
        json_array_foreach(json_object_get(j, "unknown_udids"), i, u)
            fprintf(stderr, "%s %s\n", i == 0 ? "not queued (unknown or checked out):" : "   ",
                    json_string_value(u));
        (void)nu;
    }
    return 0;
}

static int mdmctl_enq_json(const struct mdmctl *m, struct mdmctl_enq *e)
{
    int st;
    json_t *body = json_pack("{s:O, s:b}", "command", e->command, "async", e->async);
    if (e->all_enrolled)
        json_object_set_new(body, "filter", json_string("all_enrolled"));
    else
        json_object_set(body, "udids", e->udids);
    if (e->urgent)
        json_object_set_new(body, "priority", json_string("high"));
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    struct mdmctl_resp r;
    int rc = mdmctl_http(m, "POST", "/v1/commands", "application/json", s, strlen(s), &r);
    free(s);
    if (rc != 0)
        return 1;
    st = r.status;
    json_t *j = st == 201 || st == 202 ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    if (j == NULL)
        mdmctl_out_error(&r);
    mdmctl_resp_free(&r);
    rc = j != NULL ? mdmctl_enq_answer(m, e, j) : 1;
    json_decref(j);
    return rc;
}

/* The file as the XML of {Command, CommandUUID}: a bare command dictionary
 * is wrapped, and a CommandUUID made when the file has none. */
static char *mdmctl_enq_plist_xml(const char *path, char uuid[37])
{
    char *data = NULL, *xml = NULL;
    size_t len;
    uint32_t xlen = 0;
    plist_t root = NULL;
    if (util_read_file(path, &data, &len) != 0) {
        fprintf(stderr, "mdmctl: cannot read %s\n", path);
        return NULL;
    }
    plist_from_memory(data, (uint32_t)len, &root);
    free(data);
    if (root == NULL || plist_get_node_type(root) != PLIST_DICT) {
        fprintf(stderr, "mdmctl: %s is not a plist dictionary\n", path);
        plist_free(root);
        return NULL;
    }
    if (plist_dict_get_item(root, "Command") == NULL) {
        plist_t wrap = plist_new_dict();
        plist_dict_set_item(wrap, "Command", root);
        root = wrap;
    }
    plist_t given = plist_dict_get_item(root, "CommandUUID");
    const char *g = given != NULL ? plist_get_string_ptr(given, NULL) : NULL;
    if (g != NULL && strlen(g) <= 36)
        snprintf(uuid, 37, "%s", g);
    else
        util_uuid(uuid);
    plist_dict_set_item(root, "CommandUUID", plist_new_string(uuid));
    plist_to_xml(root, &xml, &xlen);
    plist_free(root);
    return xml;
}

/* One plist POST; adds what it queued to *queued, unknown UDIDs to unknown. */
static int mdmctl_enq_plist_post(const struct mdmctl *m, const struct mdmctl_enq *e,
                                 const char *query, const char *xml, long *queued, json_t *unknown)
{
    char *path = xasprintf("/v1/commands?%s", query);
    struct mdmctl_resp r;
    int rc = mdmctl_http(m, "POST", path, "application/x-plist", xml, strlen(xml), &r);
    free(path);
    if (rc != 0)
        return 1;
    json_t *j = r.status == 201 || r.status == 202 ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    if (j == NULL)
        mdmctl_out_error(&r);
    mdmctl_resp_free(&r);
    if (j == NULL)
        return 1;
    if (json_object_get(j, "job_id") != NULL) {
        rc = mdmctl_enq_answer(m, e, j);
    } else {
        *queued += (long)json_integer_value(json_object_get(j, "queued"));
        json_array_extend(unknown, json_object_get(j, "unknown_udids"));
    }
    json_decref(j);
    return rc;
}

/* The UDIDs from *next on, comma-separated, up to the query size limit. */
static char *mdmctl_enq_batch(json_t *udids, size_t *next)
{
    size_t cap = MDMCTL_ENQ_QUERY_MAX + 128, n = 0;
    char *q = xmalloc(cap);
    n = (size_t)snprintf(q, cap, "udids=");
    for (; *next < json_array_size(udids); (*next)++) {
        const char *u = json_string_value(json_array_get(udids, *next));
        size_t ul = u != NULL ? strlen(u) : 0;
        if (n + ul + 2 > MDMCTL_ENQ_QUERY_MAX && n > 6)
            break;
        n += (size_t)snprintf(q + n, cap - n, "%s%.100s", n > 6 ? "," : "", u ? u : "");
    }
    return q;
}

static int mdmctl_enq_plist(const struct mdmctl *m, struct mdmctl_enq *e)
{
    char uuid[37];
    char *xml = mdmctl_enq_plist_xml(e->plist_file, uuid);
    long queued = 0;
    int rc = xml == NULL;
    json_t *unknown = json_array();
    if (xml != NULL && e->all_enrolled)
        rc = mdmctl_enq_plist_post(m, e, "filter=all_enrolled", xml, &queued, unknown);
    for (size_t next = 0;
         xml != NULL && !e->all_enrolled && rc == 0 && next < json_array_size(e->udids);) {
        char *q = mdmctl_enq_batch(e->udids, &next);
        rc = mdmctl_enq_plist_post(m, e, q, xml, &queued, unknown);
        free(q);
    }
    if (rc == 0 && !e->all_enrolled) {
        json_t *j = json_pack("{s:s, s:I, s:O}", "command_uuid", uuid, "queued", (json_int_t)queued,
                              "unknown_udids", unknown);
        rc = mdmctl_enq_answer(m, e, j);
        json_decref(j);
    }
    json_decref(unknown);
    free(xml);
    return rc;
}

int mdmctl_enq_run(const struct mdmctl *m, int argc, char **argv)
{
    struct mdmctl_enq e = {.udids = json_array()};
    int rc = 2;
    if (mdmctl_enq_parse(argc, argv, &e) == 0 && mdmctl_enq_check(&e) == 0)
        rc = e.command != NULL ? mdmctl_enq_json(m, &e) : mdmctl_enq_plist(m, &e);
    json_decref(e.udids);
    json_decref(e.command);
    return rc;
}
