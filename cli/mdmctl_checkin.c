/* mdmctl_checkin.c: the rest of the check-in protocol from the command line
 * (mdmctl.h): a device's user channels, the escrowed bootstrap token (a
 * logged read), Return to Service settings, GetToken sources, migration. */
#include "mdmctl.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One request with a JSON answer; prints the server's error and returns NULL
 * on anything but 2xx. */
static json_t *mdmctl_checkin_call(const struct mdmctl *m, const char *method, const char *path,
                                   const char *body)
{
    struct mdmctl_resp r;
    json_error_t err;
    if (mdmctl_http(m, method, path, body != NULL ? "application/json" : NULL, body,
                    body != NULL ? strlen(body) : 0, &r) != 0)
        return NULL;
    json_t *j = r.status / 100 == 2 ? json_loadb(r.body, r.len, 0, &err) : NULL;
    if (r.status / 100 != 2)
        mdmctl_out_error(&r);
    else if (j == NULL)
        fprintf(stderr, "mdmctl: the server's answer is not JSON: %s\n", err.text);
    mdmctl_resp_free(&r);
    return j;
}

static int mdmctl_checkin_show(const struct mdmctl *m, json_t *j)
{
    if (j == NULL)
        return 1;
    mdmctl_out_json(j);
    json_decref(j);
    (void)m;
    return 0;
}

/* A file's bytes as base64 (caller frees), or NULL after saying why. */
static char *mdmctl_checkin_b64_file(const char *path)
{
    char *data = NULL;
    size_t n = 0;
    if (util_read_file(path, &data, &n) != 0) {
        fprintf(stderr, "mdmctl: cannot read %s\n", path);
        return NULL;
    }
    char *out = xmalloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)data, (int)n);
    free(data);
    return out;
}

/* channels UDID */
int mdmctl_checkin_channels(const struct mdmctl *m, int argc, char **argv)
{
    char path[512];
    if (argc != 2) {
        fprintf(stderr, "usage: mdmctl channels UDID\n");
        return 2;
    }
    snprintf(path, sizeof(path), "/v1/devices/%s/channels", argv[1]);
    json_t *j = mdmctl_checkin_call(m, "GET", path, NULL);
    if (j == NULL)
        return 1;
    if (m->raw) {
        mdmctl_out_json(j);
    } else {
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(j, "items"), i, v)
            printf("%s:%s\n", argv[1], json_string_value(v));
    }
    json_decref(j);
    return 0;
}

/* bootstrap-token UDID: the server logs every read. */
int mdmctl_checkin_bootstrap(const struct mdmctl *m, int argc, char **argv)
{
    char path[512];
    if (argc != 2) {
        fprintf(stderr, "usage: mdmctl bootstrap-token UDID   (the read is logged)\n");
        return 2;
    }
    snprintf(path, sizeof(path), "/v1/devices/%s/bootstrap-token", argv[1]);
    json_t *j = mdmctl_checkin_call(m, "GET", path, NULL);
    if (j != NULL && !m->raw)
        printf("%s\n", json_string_value(json_object_get(j, "bootstrap_token")));
    else if (j != NULL)
        mdmctl_out_json(j);
    json_decref(j);
    return j != NULL ? 0 : 1;
}

/* rts [UDID] [--on | --off [--preserve-apps] [--wifi-profile F] [--mdm-profile F] | --clear] */
int mdmctl_checkin_rts(const struct mdmctl *m, int argc, char **argv)
{
    const char *udid = NULL, *wifi = NULL, *mdm = NULL;
    int on = -1, clear = 0, preserve = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--on") || !strcmp(argv[i], "--off"))
            on = !strcmp(argv[i], "--on");
        else if (!strcmp(argv[i], "--clear"))
            clear = 1;
        else if (!strcmp(argv[i], "--preserve-apps"))
            preserve = 1;
        else if (!strcmp(argv[i], "--wifi-profile") && i + 1 < argc)
            wifi = argv[++i];
        else if (!strcmp(argv[i], "--mdm-profile") && i + 1 < argc)
            mdm = argv[++i];
        else if (argv[i][0] != '-' && udid == NULL)
            udid = argv[i];
        else {
            fprintf(stderr, "usage: mdmctl rts [UDID] [--on|--off [--preserve-apps] "
                            "[--wifi-profile F] [--mdm-profile F] | --clear]\n");
            return 2;
        }
    }
    char path[512];
    if (udid != NULL)
        snprintf(path, sizeof(path), "/v1/devices/%s/return-to-service", udid);
    else
        snprintf(path, sizeof(path), "/v1/return-to-service");
    if (clear)
        return mdmctl_checkin_show(m, mdmctl_checkin_call(m, "DELETE", path, NULL));
    if (on < 0)
        return mdmctl_checkin_show(m, mdmctl_checkin_call(m, "GET", path, NULL));
    json_t *b = json_pack("{s:b, s:b}", "enabled", on, "preserve_apps", preserve);
    char *w = wifi != NULL ? mdmctl_checkin_b64_file(wifi) : NULL;
    char *p = mdm != NULL ? mdmctl_checkin_b64_file(mdm) : NULL;
    if ((wifi != NULL && w == NULL) || (mdm != NULL && p == NULL)) {
        free(w);
        free(p);
        json_decref(b);
        return 1;
    }
    if (w != NULL)
        json_object_set_new(b, "wifi_profile", json_string(w));
    if (p != NULL)
        json_object_set_new(b, "mdm_profile", json_string(p));
    char *body = json_dumps(b, JSON_COMPACT);
    int rc = mdmctl_checkin_show(m, mdmctl_checkin_call(m, "PUT", path, body));
    free(body);
    free(w);
    free(p);
    json_decref(b);
    return rc;
}

/* token-source TYPE (--file F | --delete), or no TYPE: the list */
int mdmctl_checkin_token_source(const struct mdmctl *m, int argc, char **argv)
{
    char path[512];
    if (argc == 1)
        return mdmctl_checkin_show(m, mdmctl_checkin_call(m, "GET", "/v1/token-sources", NULL));
    snprintf(path, sizeof(path), "/v1/token-sources/%s", argv[1]);
    if (argc == 2)
        return mdmctl_checkin_show(m, mdmctl_checkin_call(m, "GET", path, NULL));
    if (argc == 3 && !strcmp(argv[2], "--delete"))
        return mdmctl_checkin_show(m, mdmctl_checkin_call(m, "DELETE", path, NULL));
    if (argc == 4 && !strcmp(argv[2], "--file")) {
        char *d = mdmctl_checkin_b64_file(argv[3]);
        if (d == NULL)
            return 1;
        json_t *b = json_pack("{s:s, s:s}", "kind", "static", "data", d);
        char *body = json_dumps(b, JSON_COMPACT);
        int rc = mdmctl_checkin_show(m, mdmctl_checkin_call(m, "PUT", path, body));
        free(body);
        json_decref(b);
        free(d);
        return rc;
    }
    fprintf(stderr, "usage: mdmctl token-source [TYPE [--file F | --delete]]\n");
    return 2;
}

/* migrate FILE...: Authenticate and TokenUpdate plists of devices enrolled elsewhere */
int mdmctl_checkin_migrate(const struct mdmctl *m, int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: mdmctl migrate PLIST...   (Authenticate, TokenUpdate)\n");
        return 2;
    }
    json_t *msgs = json_array();
    for (int i = 1; i < argc; i++) {
        char *b = mdmctl_checkin_b64_file(argv[i]);
        if (b == NULL) {
            json_decref(msgs);
            return 1;
        }
        json_array_append_new(msgs, json_string(b));
        free(b);
    }
    json_t *req = json_pack("{s:o}", "messages", msgs);
    char *body = json_dumps(req, JSON_COMPACT);
    int rc = mdmctl_checkin_show(m, mdmctl_checkin_call(m, "POST", "/v1/migrate", body));
    free(body);
    json_decref(req);
    return rc;
}
