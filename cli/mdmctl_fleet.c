/* mdmctl_fleet.c: queue surgery, the push ledger, webhook delivery, stale
 * devices (mdmd's /v1/.../commands/pending, /v1/commands/{uuid},
 * /v1/webhooks, /v1/fleet). */
#include "mdmctl.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One request whose 2xx answer is printed (as JSON, or by show); 0, or 1
 * after printing the server's error. */
typedef void mdmctl_fleet_show_fn(json_t *j);
static int mdmctl_fleet_call(const struct mdmctl *m, const char *method, const char *path,
                             const char *body, mdmctl_fleet_show_fn *show)
{
    struct mdmctl_resp r;
    if (mdmctl_http(m, method, path, body != NULL ? "application/json" : NULL, body,
                    body != NULL ? strlen(body) : 0, &r) != 0)
        return 1;
    if (r.status / 100 != 2) {
        mdmctl_out_error(&r);
        mdmctl_resp_free(&r);
        return 1;
    }
    json_t *j = r.len > 0 ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    if (j != NULL && (m->raw || show == NULL))
        mdmctl_out_json(j);
    else if (j != NULL)
        show(j);
    else if (r.status == 204)
        printf("done\n");
    json_decref(j);
    mdmctl_resp_free(&r);
    return 0;
}

static void mdmctl_fleet_show_pending(json_t *j)
{
    static const char *const heads[] = {"UUID", "REQUEST TYPE", "STATE", "SENT"};
    struct mdmctl_table *t = mdmctl_out_table_new(heads, 4);
    size_t i;
    json_t *c;
    json_array_foreach(j, i, c)
    {
        char sent[32], ms[24];
        mdmctl_out_scalar(json_object_get(c, "sent_at"), ms, sizeof(ms));
        mdmctl_out_time(ms, sent, sizeof(sent));
        const char *row[] = {json_string_value(json_object_get(c, "uuid")),
                             json_string_value(json_object_get(c, "request_type")),
                             json_string_value(json_object_get(c, "state")), sent};
        mdmctl_out_table_row(t, row);
    }
    mdmctl_out_table_print(t);
}

int mdmctl_fleet_pending(const struct mdmctl *m, int argc, char **argv)
{
    char path[512];
    if (argc != 2) {
        fprintf(stderr, "usage: mdmctl pending UDID\n");
        return 2;
    }
    snprintf(path, sizeof(path), "/v1/devices/%s/commands/pending", argv[1]);
    return mdmctl_fleet_call(m, "GET", path, NULL, mdmctl_fleet_show_pending);
}

int mdmctl_fleet_cancel(const struct mdmctl *m, int argc, char **argv)
{
    char path[512];
    if (argc == 3)
        snprintf(path, sizeof(path), "/v1/devices/%s/commands/%s", argv[1], argv[2]);
    else if (argc == 2)
        snprintf(path, sizeof(path), "/v1/commands/%s", argv[1]);
    else {
        fprintf(stderr, "usage: mdmctl cancel UDID UUID | mdmctl cancel UUID\n");
        return 2;
    }
    int rc = mdmctl_fleet_call(m, "DELETE", path, NULL, NULL);
    if (rc == 0 && argc == 2 && !m->raw)
        fprintf(stderr, "follow it with: mdmctl job JOB_ID --wait\n");
    return rc;
}

int mdmctl_fleet_pushes(const struct mdmctl *m, int argc, char **argv)
{
    char path[512];
    if (argc != 2) {
        fprintf(stderr, "usage: mdmctl pushes UDID\n");
        return 2;
    }
    snprintf(path, sizeof(path), "/v1/devices/%s/pushes", argv[1]);
    return mdmctl_fleet_call(m, "GET", path, NULL, NULL);
}

int mdmctl_fleet_webhooks(const struct mdmctl *m, int argc, char **argv)
{
    if (argc != 1) {
        fprintf(stderr, "usage: mdmctl webhooks\n");
        return 2;
    }
    return mdmctl_fleet_call(m, "GET", "/v1/webhooks", NULL, NULL);
}

int mdmctl_fleet_dead(const struct mdmctl *m, int argc, char **argv)
{
    char path[128];
    long n = 100;
    if (argc == 3 && strcmp(argv[1], "--count") == 0)
        n = strtol(argv[2], NULL, 10);
    else if (argc != 1) {
        fprintf(stderr, "usage: mdmctl dead-letters [--count N]\n");
        return 2;
    }
    snprintf(path, sizeof(path), "/v1/webhooks/dead-letter?count=%ld", n);
    return mdmctl_fleet_call(m, "GET", path, NULL, NULL);
}

static void mdmctl_fleet_show_replay(json_t *j)
{
    printf("replaying %lld dead letters\n",
           (long long)json_integer_value(json_object_get(j, "replayed")));
}

int mdmctl_fleet_replay(const struct mdmctl *m, int argc, char **argv)
{
    json_t *b = json_object();
    if (argc > 1) {
        json_t *ids = json_array();
        for (int i = 1; i < argc; i++)
            json_array_append_new(ids, json_string(argv[i]));
        json_object_set_new(b, "ids", ids);
    }
    char *body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    int rc = mdmctl_fleet_call(m, "POST", "/v1/webhooks/dead-letter/replay", body,
                               mdmctl_fleet_show_replay);
    free(body);
    return rc;
}

int mdmctl_fleet_stale(const struct mdmctl *m, int argc, char **argv)
{
    char path[128] = "/v1/fleet?limit=1000";
    if (argc == 3 && strcmp(argv[1], "--older-than") == 0)
        snprintf(path, sizeof(path), "/v1/fleet?limit=1000&stale_after_s=%ld",
                 strtol(argv[2], NULL, 10));
    else if (argc != 1) {
        fprintf(stderr, "usage: mdmctl stale [--older-than SECONDS]\n");
        return 2;
    }
    return mdmctl_fleet_call(m, "GET", path, NULL, NULL);
}

/* push-cert: the running push certificate; push-cert FILE [--force]: install
 * a renewal (PEM, certificate and key); 409 names both topics. */
int mdmctl_fleet_push_cert(const struct mdmctl *m, int argc, char **argv)
{
    int force = argc == 3 && strcmp(argv[2], "--force") == 0;
    if (argc == 1)
        return mdmctl_fleet_call(m, "GET", "/v1/push-certificate", NULL, NULL);
    if (argc != 2 && !force) {
        fprintf(stderr, "usage: mdmctl push-cert [FILE.pem [--force]]\n");
        return 2;
    }
    char *pem = NULL;
    size_t len;
    if (util_read_file(argv[1], &pem, &len) != 0) {
        fprintf(stderr, "mdmctl: cannot read %s\n", argv[1]);
        return 1;
    }
    struct mdmctl_resp r;
    int rc = mdmctl_http(m, "PUT", force ? "/v1/push-certificate?force=1" : "/v1/push-certificate",
                         "application/x-pem-file", pem, len, &r);
    free(pem);
    if (rc != 0)
        return 1;
    json_t *j = json_loadb(r.body, r.len, 0, NULL);
    if (r.status == 200 && !m->raw)
        printf("installed: topic %s\n", json_string_value(json_object_get(j, "topic")));
    else if (r.status == 200)
        mdmctl_out_json(j);
    else if (r.status == 409 && json_object_get(j, "new_topic") != NULL)
        fprintf(stderr,
                "mdmctl: refused: the certificate's topic %s is not the enrolled devices' %s "
                "(--force installs it; those devices can then no longer be woken)\n",
                json_string_value(json_object_get(j, "new_topic")),
                json_string_value(json_object_get(j, "fleet_topic")));
    else
        mdmctl_out_error(&r);
    rc = r.status == 200 ? 0 : 1;
    json_decref(j);
    mdmctl_resp_free(&r);
    return rc;
}
