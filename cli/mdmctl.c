/* mdmctl.c: options and configuration.  Each setting comes from the first
 * of: a flag, the environment (MDMCTL_URL, MDMCTL_KEY, MDMCTL_KEY_FILE,
 * MDMCTL_CACERT), the config file, and last the files `make run` leaves in
 * ./var (api.key, ca/ca.crt), so that mdmctl works next to a fresh mdmd. */
#include "mdmctl.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/util.h"

#define MDMCTL_DEFAULT_URL "https://localhost:8443"

struct mdmctl_opts { /* what the flags or the file said (file: owned) */
    char *url, *key, *key_file, *cacert, *config;
};

static void mdmctl_usage(FILE *f)
{
    fprintf(
        f,
        "usage: mdmctl [--url URL] [--key KEY | --key-file FILE] [--cacert FILE]\n"
        "              [--config FILE] [--json] [--progress] COMMAND [ARGS]\n"
        "commands:\n"
        "  devices [--state S] [--limit N] [--offset N]   list devices, last seen first\n"
        "  device UDID                                    one device, its queue\n"
        "  enqueue (--udid U... | --udids-file F | --all-enrolled)\n"
        "          (--json '{\"RequestType\":...}' | --plist FILE) [--async] [--no-wait]\n"
        "  job ID [--wait]                                a bulk job's progress\n"
        "  push UDID...                                   wake devices now\n"
        "  history UDID [--count N]                       finished commands, newest first\n"
        "  queue-clear UDID                               drop pending commands\n"
        "  users | profiles | apps                        what enrollment knows\n"
        "  channels UDID                                  its user channels (UDID:USER)\n"
        "  bootstrap-token UDID                           the escrowed token (logged)\n"
        "  rts [UDID] [--on|--off [--preserve-apps] [--wifi-profile F]\n"
        "      [--mdm-profile F] | --clear]               Return to Service, device or fleet\n"
        "  token-source [TYPE [--file F | --delete]]      GetToken sources\n"
        "  migrate PLIST...                               devices enrolled elsewhere\n"
        "declarative management (docs/DDM.md):\n"
        "  declarations | declaration ID | declare FILE.json | declaration-rm ID\n"
        "  sets | set NAME | set-put NAME ID... | set-rm NAME\n"
        "  assign SET [--udid UDID[:USERID]]... [--user NAME]... [--everyone]\n"
        "  status UDID [--user-id ID]                     status items, declarations\n"
        "  fleet-status (--failed | --item I (--value V | --json-value J) [--not])\n"
        "  pending UDID                                   queued commands and their state\n"
        "  cancel UDID UUID | cancel UUID                 one device's, or everywhere (a job)\n"
        "  pushes UDID                                    the push ledger\n"
        "  webhooks | dead-letters [--count N] | replay [ID...]  webhook delivery\n"
        "  stale [--older-than S]                         devices not seen for a while\n"
        "  push-cert [FILE.pem [--force]]                 the push certificate; install a renewal\n"
        "  migrate-layout --from REDIS --to SEED[,SEED...]  single key layout into the\n"
        "                                                 cluster layout (docs/REDIS.md)\n"
        "A UDID may name a user channel: UDID:USER (device, history, queue-clear,\n"
        "enqueue --udid, push).\n"
        "Settings: flags, then MDMCTL_URL, MDMCTL_KEY, MDMCTL_KEY_FILE, MDMCTL_CACERT,\n"
        "then the config file (--config, MDMCTL_CONFIG, ~/.config/mdmctl.conf or\n"
        "./var/mdmctl.conf: 'url', 'key', 'key_file', 'cacert' lines), then ./var.\n"
        "See mdmctl(1).\n");
}

/* Reads "key value" lines into file (copies, freed by the caller). */
static int mdmctl_read_config(const char *path, struct mdmctl_opts *file)
{
    FILE *f = fopen(path, "r");
    char line[1024], k[64], v[960];
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, " %63s %959[^\r\n]", k, v) != 2 || k[0] == '#')
            continue;
        char **slot = !strcmp(k, "url")        ? &file->url
                      : !strcmp(k, "key")      ? &file->key
                      : !strcmp(k, "key_file") ? &file->key_file
                      : !strcmp(k, "cacert")   ? &file->cacert
                                               : NULL;
        if (slot != NULL) {
            free(*slot);
            *slot = xstrdup(v);
        } else
            fprintf(stderr, "mdmctl: %s: unknown setting %s (ignored)\n", path, k);
    }
    fclose(f);
    return 0;
}

static void mdmctl_find_config(const char *given, struct mdmctl_opts *file)
{
    const char *home = getenv("HOME"), *xdg = getenv("XDG_CONFIG_HOME");
    char path[1024];
    if (given != NULL) {
        if (mdmctl_read_config(given, file) != 0) {
            fprintf(stderr, "mdmctl: cannot read %s\n", given);
            exit(2);
        }
        return;
    }
    if (xdg != NULL && *xdg)
        snprintf(path, sizeof(path), "%s/mdmctl.conf", xdg);
    else
        snprintf(path, sizeof(path), "%s/.config/mdmctl.conf", home ? home : ".");
    if (mdmctl_read_config(path, file) != 0)
        mdmctl_read_config("var/mdmctl.conf", file);
}

static const char *mdmctl_pick(const char *flag, const char *env, const char *file)
{
    const char *e = env != NULL ? getenv(env) : NULL;
    return flag != NULL ? flag : (e != NULL && *e) ? e : file;
}

static char *mdmctl_read_key(const char *path)
{
    char *key;
    size_t len;
    if (util_read_file(path, &key, &len) != 0) {
        fprintf(stderr, "mdmctl: cannot read the key file %s\n", path);
        exit(2);
    }
    key[strcspn(key, "\r\n")] = '\0';
    return key;
}

static void mdmctl_settle(struct mdmctl *m, const struct mdmctl_opts *fl)
{
    struct mdmctl_opts file = {0};
    mdmctl_find_config(mdmctl_pick(fl->config, "MDMCTL_CONFIG", NULL), &file);
    const char *url = mdmctl_pick(fl->url, "MDMCTL_URL", file.url);
    const char *key = mdmctl_pick(fl->key, "MDMCTL_KEY", NULL);
    const char *kf = mdmctl_pick(fl->key_file, "MDMCTL_KEY_FILE", NULL);
    const char *ca = mdmctl_pick(fl->cacert, "MDMCTL_CACERT", file.cacert);
    if (key == NULL && kf == NULL)
        key = file.key, kf = file.key_file;
    if (key == NULL && kf == NULL && access("var/api.key", R_OK) == 0)
        kf = "var/api.key";
    if (ca == NULL && access("var/ca/ca.crt", R_OK) == 0)
        ca = "var/ca/ca.crt";
    m->url = xstrdup(url != NULL ? url : MDMCTL_DEFAULT_URL);
    size_t n = strlen(m->url);
    while (n > 0 && m->url[n - 1] == '/')
        m->url[--n] = '\0';
    m->key = key != NULL ? xstrdup(key) : kf != NULL ? mdmctl_read_key(kf) : NULL;
    m->cacert = ca != NULL ? xstrdup(ca) : NULL;
    if (file.key != NULL)
        OPENSSL_cleanse(file.key, strlen(file.key));
    free(file.url);
    free(file.key);
    free(file.key_file);
    free(file.cacert);
}

/* Global options, up to the command name; returns its index, or -1 after usage. */
static int mdmctl_parse(int argc, char **argv, struct mdmctl *m, struct mdmctl_opts *fl)
{
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL; /* flags: borrowed */
        char **slot = !strcmp(a, "--url")        ? &fl->url
                      : !strcmp(a, "--key")      ? &fl->key
                      : !strcmp(a, "--key-file") ? &fl->key_file
                      : !strcmp(a, "--cacert")   ? &fl->cacert
                      : !strcmp(a, "--config")   ? &fl->config
                                                 : NULL;
        if (slot != NULL && v != NULL) {
            *slot = argv[i + 1]; /* borrowed from argv */
            i++;
        } else if (!strcmp(a, "--json")) {
            m->raw = 1;
        } else if (!strcmp(a, "--progress")) {
            m->progress = 1;
        } else if (!strcmp(a, "--version")) {
            printf("mdmctl %s\n", MDMD_VERSION);
            exit(0);
        } else {
            mdmctl_usage(!strcmp(a, "--help") || !strcmp(a, "-h") ? stdout : stderr);
            exit(!strcmp(a, "--help") || !strcmp(a, "-h") ? 0 : 2);
        }
    }
    if (i == argc) {
        mdmctl_usage(stderr);
        return -1;
    }
    return i;
}

int main(int argc, char **argv)
{
    struct mdmctl m = {.timeout_s = 60};
    struct mdmctl_opts fl = {0};
    int cmd = mdmctl_parse(argc, argv, &m, &fl);
    if (cmd < 0)
        return 2;
    mdmctl_settle(&m, &fl);
    int rc = mdmctl_cmd_run(&m, argc - cmd, argv + cmd);
    if (m.key != NULL)
        OPENSSL_cleanse(m.key, strlen(m.key));
    free(m.key);
    free(m.url);
    free(m.cacert);
    return rc;
}
