#include "conf.h"
#include "log.h"

#include <ctype.h>
#include <sched.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum conf_type { CONF_T_STR, CONF_T_INT, CONF_T_BOOL, CONF_T_LOGLEVEL };

struct conf_key {
    const char *name;
    enum conf_type type;
    size_t off;      /* offsetof(struct conf, field) */
    long min, max;   /* CONF_T_INT bounds */
    const char *def; /* default, as it would be written in the file */
};

#define CONF_STR(n, f, d)                                                                          \
    {                                                                                              \
        n, CONF_T_STR, offsetof(struct conf, f), 0, 0, d                                           \
    }
#define CONF_INT(n, f, lo, hi, d)                                                                  \
    {                                                                                              \
        n, CONF_T_INT, offsetof(struct conf, f), lo, hi, d                                         \
    }
#define CONF_BOOL(n, f, d)                                                                         \
    {                                                                                              \
        n, CONF_T_BOOL, offsetof(struct conf, f), 0, 1, d                                          \
    }

static const struct conf_key conf_table[] = {
    CONF_STR("listen", listen, "0.0.0.0:8443"),
    CONF_STR("mdm_listen", mdm_listen, "0.0.0.0:8444"),
    CONF_STR("port_file", port_file, ""),
    CONF_STR("public_url", public_url, ""),
    CONF_STR("mdm_url", mdm_url, ""),
    CONF_STR("server_names", server_names, ""),
    CONF_STR("tls_cert_file", tls_cert_file, ""),
    CONF_STR("tls_key_file", tls_key_file, ""),
    CONF_STR("tls_ciphers", tls_ciphers, "ECDHE+AESGCM:ECDHE+CHACHA20"),
    CONF_STR("data_dir", data_dir, "var"),
    CONF_STR("ca_dir", ca_dir, ""),
    CONF_STR("ca_key_type", ca_key_type, "rsa2048"),
    CONF_STR("ca_common_name", ca_common_name, "mdmd MDM CA"),
    CONF_INT("ca_validity_days", ca_validity_days, 1, 36500, "3650"),
    CONF_INT("cert_validity_days", cert_validity_days, 1, 3650, "825"),
    CONF_STR("redis", redis, ""),
    CONF_STR("redis_server_bin", redis_server_bin, "redis-server"),
    CONF_INT("redis_timeout_ms", redis_timeout_ms, 10, 600000, "2000"),
    CONF_INT("redis_history_len", redis_history_len, 1, 1000000, "100"),
    CONF_INT("redis_history_max_bytes", redis_history_max_bytes, 1024, 1073741824, "1048576"),
    CONF_INT("idle_cache_ms", idle_cache_ms, 0, 600000, "5000"),
    CONF_INT("redis_wait_replicas", redis_wait_replicas, -1, 16, "-1"),
    CONF_INT("redis_wait_ms", redis_wait_ms, 1, 60000, "1000"),
    CONF_STR("redis_layout", redis_layout, "auto"),
    CONF_INT("history_page_bytes", history_page_bytes, 65536, 1073741824, "4194304"),
    CONF_STR("apns_cert_file", apns_cert_file, ""),
    CONF_STR("apns_key_file", apns_key_file, ""),
    CONF_STR("apns_p12_file", apns_p12_file, ""),
    CONF_STR("apns_p12_password", apns_p12_password, ""),
    CONF_STR("apns_host", apns_host, "api.push.apple.com"),
    CONF_INT("apns_port", apns_port, 1, 65535, "443"),
    CONF_STR("apns_ca_file", apns_ca_file, ""),
    CONF_INT("apns_expiration_s", apns_expiration_s, 0, 31536000, "604800"),
    CONF_INT("apns_connections", apns_connections, 1, 64, "1"),
    CONF_BOOL("apns_allow_topic_change", apns_allow_topic_change, "no"),
    CONF_INT("push_coalesce_ms", push_coalesce_ms, 0, 60000, "200"),
    CONF_INT("job_push_backlog", job_push_backlog, 0, 10000000, "10000"),
    CONF_INT("job_retry_max_s", job_retry_max_s, 1, 86400, "120"),
    CONF_STR("apns_topic", apns_topic, ""),
    CONF_INT("enroll_challenge_ttl_s", enroll_challenge_ttl_s, 1, 86400, "300"),
    CONF_STR("enroll_device_ca_file", enroll_device_ca_file, ""),
    CONF_BOOL("enroll_require_issued", enroll_require_issued, "yes"),
    CONF_BOOL("provision_on_enroll", provision_on_enroll, "yes"),
    CONF_INT("provision_retry_s", provision_retry_s, 1, 86400, "30"),
    CONF_STR("device_key_type", device_key_type, "rsa2048"),
    CONF_STR("pkcs12_mode", pkcs12_mode, "legacy"),
    CONF_STR("scep_listen", scep_listen, ""),
    CONF_STR("scep_url", scep_url, ""),
    CONF_STR("scep_challenge", scep_challenge, ""),
    CONF_INT("scep_challenge_ttl_s", scep_challenge_ttl_s, 60, 2592000, "3600"),
    CONF_INT("scep_renewal_grace_s", scep_renewal_grace_s, 0, 604800, "3600"),
    CONF_STR("enroll_profile_token", enroll_profile_token, ""),
    CONF_BOOL("scep_allow_throwaway_signer", scep_allow_throwaway_signer, "yes"),
    CONF_BOOL("scep_allow_sha1", scep_allow_sha1, "yes"),
    CONF_BOOL("scep_allow_des", scep_allow_des, "yes"),
    CONF_BOOL("scep_allow_rsa1024", scep_allow_rsa1024, "no"),
    CONF_STR("user_channel", user_channel, "decline"),
    CONF_STR("token_source_dir", token_source_dir, ""),
    CONF_STR("token_jwt_key_file", token_jwt_key_file, ""),
    CONF_STR("mdm_auth", mdm_auth, "mtls"),
    CONF_STR("mdm_client_cert", mdm_client_cert, "required"),
    CONF_BOOL("mdm_trust_client_cert_header", mdm_trust_client_cert_header, "no"),
    CONF_STR("mdm_trusted_proxies", mdm_trusted_proxies, ""),
    CONF_STR("webhook_url", webhook_url, ""),
    CONF_STR("webhook_secret", webhook_secret, ""),
    CONF_STR("webhook_ca_file", webhook_ca_file, ""),
    CONF_INT("webhook_max_age_s", webhook_max_age_s, 1, 31536000, "172800"),
    CONF_INT("webhook_retry_max_s", webhook_retry_max_s, 1, 86400, "300"),
    CONF_INT("webhook_timeout_s", webhook_timeout_s, 1, 3600, "10"),
    CONF_INT("feed_max_streams", feed_max_streams, 1, 1024, "16"),
    CONF_INT("feed_stream_buffer", feed_stream_buffer, 4096, 67108864, "262144"),
    CONF_INT("feed_heartbeat_s", feed_heartbeat_s, 1, 3600, "15"),
    CONF_INT("feed_poll_ms", feed_poll_ms, 10, 60000, "500"),
    CONF_INT("repush_after_s", repush_after_s, 0, 604800, "300"),
    CONF_INT("repush_max_s", repush_max_s, 1, 604800, "3600"),
    CONF_INT("repush_max_attempts", repush_max_attempts, 1, 1000, "5"),
    CONF_INT("notnow_repush_s", notnow_repush_s, 0, 604800, "60"),
    CONF_INT("stale_after_s", stale_after_s, 60, 31536000, "604800"),
    CONF_INT("max_body_size", max_body_size, 1024, 1073741824, "10485760"),
    CONF_INT("max_small_body_size", max_small_body_size, 1024, 1073741824, "262144"),
    CONF_INT("max_plist_depth", max_plist_depth, 4, 10000, "32"),
    CONF_INT("max_plist_nodes", max_plist_nodes, 100, 100000000, "200000"),
    CONF_INT("max_plist_string", max_plist_string, 1024, 1073741824, "8388608"),
    CONF_INT("max_json_depth", max_json_depth, 4, 1000, "32"),
    CONF_INT("cms_max_signers", cms_max_signers, 1, 1000, "4"),
    CONF_INT("cms_max_certs", cms_max_certs, 1, 10000, "32"),
    CONF_INT("log_buffer_size", log_buffer_size, 4096, 1073741824, "1048576"),
    CONF_INT("max_header_size", max_header_size, 1024, 1048576, "16384"),
    CONF_INT("request_timeout_s", request_timeout_s, 1, 3600, "30"),
    CONF_INT("max_connections", max_connections, 1, 1000000, "10000"),
    CONF_INT("shutdown_timeout_s", shutdown_timeout_s, 0, 3600, "10"),
    CONF_INT("crypto_threads", crypto_threads, 1, 64, "1"),
    CONF_STR("workers", workers_str, "1"),
    CONF_INT("console_session_idle_s", console_session_idle_s, 60, 604800, "28800"),
    CONF_INT("console_session_max_s", console_session_max_s, 60, 2592000, "86400"),
    {"log_level", CONF_T_LOGLEVEL, offsetof(struct conf, log_level), 0, 0, "info"},
    CONF_BOOL("syslog", syslog, "no"),
    CONF_BOOL("metrics_public", metrics_public, "no"),
};

static const struct conf_key *conf_find(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(conf_table); i++)
        if (strcmp(conf_table[i].name, name) == 0)
            return &conf_table[i];
    return NULL;
}

const char *const *conf_keys(void)
{
    static const char *names[ARRAY_LEN(conf_table) + 1];
    for (size_t i = 0; i < ARRAY_LEN(conf_table); i++)
        names[i] = conf_table[i].name;
    return names;
}

static int conf_parse_int(const struct conf_key *k, const char *v, int *out, char **why)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || errno != 0) {
        *why = xasprintf("not a whole number: \"%s\"", v);
        return -1;
    }
    if (n < k->min || n > k->max) {
        *why = xasprintf("%ld is out of range %ld..%ld", n, k->min, k->max);
        return -1;
    }
    *out = (int)n;
    return 0;
}

static int conf_parse_bool(const char *v, int *out, char **why)
{
    if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on") || !strcmp(v, "1"))
        *out = 1;
    else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "off") || !strcmp(v, "0"))
        *out = 0;
    else {
        *why = xasprintf("expected yes or no, got \"%s\"", v);
        return -1;
    }
    return 0;
}

/* Applies one value; on error *why is set (caller frees). */
static int conf_apply(struct conf *cf, const struct conf_key *k, const char *v, char **why)
{
    void *field = (char *)cf + k->off;
    int n;

    switch (k->type) {
    case CONF_T_STR:
        free(*(char **)field);
        *(char **)field = xstrdup(v);
        return 0;
    case CONF_T_INT:
        if (conf_parse_int(k, v, &n, why) != 0)
            return -1;
        *(int *)field = n;
        return 0;
    case CONF_T_BOOL:
        if (conf_parse_bool(v, &n, why) != 0)
            return -1;
        *(int *)field = n;
        return 0;
    case CONF_T_LOGLEVEL:
        if ((n = log_level_parse(v)) < 0) {
            *why = xasprintf("expected error, warn, info or debug, got \"%s\"", v);
            return -1;
        }
        *(int *)field = n;
        return 0;
    }
    return -1;
}

void conf_init(struct conf *cf)
{
    memset(cf, 0, sizeof(*cf));
    for (size_t i = 0; i < ARRAY_LEN(conf_table); i++) {
        char *why = NULL;
        if (conf_apply(cf, &conf_table[i], conf_table[i].def, &why) != 0)
            abort(); /* a bad default is a bug in the table */
    }
}

void conf_clear(struct conf *cf)
{
    for (size_t i = 0; i < ARRAY_LEN(conf_table); i++)
        if (conf_table[i].type == CONF_T_STR)
            free(*(char **)((char *)cf + conf_table[i].off));
    memset(cf, 0, sizeof(*cf));
}

int conf_set(struct conf *cf, const char *key, const char *value, const char *file, int line,
             char *err, size_t errlen)
{
    const struct conf_key *k = conf_find(key);
    char *why = NULL;

    if (k == NULL)
        why = xstrdup("unknown key");
    else if (conf_apply(cf, k, value, &why) == 0)
        return 0;
    snprintf(err, errlen, "%s:%d: %s: %s", file, line, key, why);
    free(why);
    return -1;
}

/* Splits one line into key and value in place.  Returns 0 for a blank or
 * comment line, 1 for a key/value line, -1 with *why set on a syntax error.
 * A value may be double-quoted so that it can hold '#' or edge spaces. */
static int conf_split(char *s, char **key, char **val, const char **why)
{
    while (isspace((unsigned char)*s))
        s++;
    if (*s == '\0' || *s == '#')
        return 0;
    *key = s;
    while (*s && !isspace((unsigned char)*s))
        s++;
    if (*s)
        *s++ = '\0';
    while (isspace((unsigned char)*s))
        s++;
    if (*s == '"') {
        char *end = strrchr(s + 1, '"');
        if (end == NULL) {
            *why = "unterminated quote";
            return -1;
        }
        for (char *t = end + 1; *t; t++)
            if (!isspace((unsigned char)*t)) {
                *why = "text after closing quote";
                return -1;
            }
        *end = '\0';
        *val = s + 1;
        return 1;
    }
    char *hash = strstr(s, " #");
    if (hash != NULL)
        *hash = '\0';
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    *val = s;
    return 1;
}

int conf_load(struct conf *cf, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char buf[4096];
    int lineno = 0, rc = 0;

    if (f == NULL) {
        snprintf(err, errlen, "%s:0: cannot open: %s", path, strerror(errno));
        return -1;
    }
    while (rc == 0 && fgets(buf, sizeof(buf), f) != NULL) {
        char *key, *val;
        const char *why = NULL;
        lineno++;
        if (strchr(buf, '\n') == NULL && !feof(f)) {
            snprintf(err, errlen, "%s:%d: line too long", path, lineno);
            rc = -1;
            break;
        }
        int kind = conf_split(buf, &key, &val, &why);
        if (kind < 0) {
            snprintf(err, errlen, "%s:%d: %s: %s", path, lineno, key, why);
            rc = -1;
        } else if (kind > 0) {
            rc = conf_set(cf, key, val, path, lineno, err, errlen);
        }
    }
    fclose(f);
    return rc;
}

static void conf_default_str(char **field, char *value_take)
{
    if (**field == '\0') {
        free(*field);
        *field = value_take;
    } else {
        free(value_take);
    }
}

/* "0.0.0.0:8443" -> "8443"; used to build default URLs. */
static const char *conf_port_of(const char *addr)
{
    const char *c = strrchr(addr, ':');
    return c != NULL ? c + 1 : addr;
}

/* The enrollment keys: values ca/ accepts, a topic APNs could deliver. */
static int conf_finish_enroll(struct conf *cf, char *err, size_t errlen)
{
    if (strcmp(cf->device_key_type, "rsa2048") && strcmp(cf->device_key_type, "rsa4096") &&
        strcmp(cf->device_key_type, "ec256")) {
        snprintf(err, errlen, "device_key_type: expected rsa2048, rsa4096 or ec256");
        return -1;
    }
    if (strcmp(cf->pkcs12_mode, "legacy") && strcmp(cf->pkcs12_mode, "aes")) {
        snprintf(err, errlen, "pkcs12_mode: expected legacy or aes");
        return -1;
    }
    if (strcmp(cf->redis_layout, "auto") && strcmp(cf->redis_layout, "single") &&
        strcmp(cf->redis_layout, "cluster")) {
        snprintf(err, errlen, "redis_layout: expected auto, single or cluster");
        return -1;
    }
    if (strcmp(cf->user_channel, "decline") && strcmp(cf->user_channel, "accept")) {
        snprintf(err, errlen, "user_channel: expected decline or accept");
        return -1;
    }
    cf->user_channel_accept = strcmp(cf->user_channel, "accept") == 0;
    if (*cf->apns_topic != '\0' && strncmp(cf->apns_topic, "com.apple.mgmt.", 15) != 0) {
        snprintf(err, errlen, "apns_topic: must start with com.apple.mgmt.");
        return -1;
    }
    return 0;
}

/* SCEP and device authentication: known values, and a listener that can
 * still tell devices apart. */
static int conf_finish_scep(struct conf *cf, char *err, size_t errlen)
{
    static const char *const modes[] = {"none", "optional", "required"};
    cf->mdm_auth_tls = !strcmp(cf->mdm_auth, "mtls") || !strcmp(cf->mdm_auth, "any");
    cf->mdm_auth_sig = !strcmp(cf->mdm_auth, "signature") || !strcmp(cf->mdm_auth, "any");
    cf->mdm_client_cert_mode = -1;
    for (int i = 0; i < 3; i++)
        if (strcmp(cf->mdm_client_cert, modes[i]) == 0)
            cf->mdm_client_cert_mode = i;
    if (!cf->mdm_auth_tls && !cf->mdm_auth_sig) {
        snprintf(err, errlen, "mdm_auth: expected mtls, signature or any");
        return -1;
    }
    if (cf->mdm_client_cert_mode < 0) {
        snprintf(err, errlen, "mdm_client_cert: expected required, optional or none");
        return -1;
    }
    if (cf->mdm_client_cert_mode < 2 && !cf->mdm_auth_sig && !cf->mdm_trust_client_cert_header) {
        snprintf(err, errlen,
                 "mdm_client_cert: %s needs mdm_auth signature or any, or "
                 "mdm_trust_client_cert_header yes",
                 cf->mdm_client_cert);
        return -1;
    }
    if (*cf->scep_listen != '\0' && strchr(cf->scep_listen, ':') == NULL) {
        snprintf(err, errlen, "scep_listen: expected host:port");
        return -1;
    }
    conf_default_str(&cf->scep_url, xasprintf("%s/scep", cf->public_url));
    return 0;
}

/* "auto": one per CPU the process may run on (sched_getaffinity, so a
 * container's cpuset counts, not the host's cores). */
static int conf_finish_workers(struct conf *cf, char *err, size_t errlen)
{
    char *end;
    if (strcmp(cf->workers_str, "auto") == 0) {
        cpu_set_t set;
        int n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 0;
        cf->workers = n > 0 ? (n < CONF_MAX_WORKERS ? n : CONF_MAX_WORKERS) : 1;
        return 0;
    }
    long n = strtol(cf->workers_str, &end, 10);
    if (*cf->workers_str == '\0' || *end != '\0' || n < 1 || n > CONF_MAX_WORKERS) {
        snprintf(err, errlen, "workers: expected 1..%d or auto", CONF_MAX_WORKERS);
        return -1;
    }
    cf->workers = (int)n;
    return 0;
}

int conf_finish(struct conf *cf, char *err, size_t errlen)
{
    char host[256];

    if (gethostname(host, sizeof(host)) != 0)
        strcpy(host, "localhost");
    host[sizeof(host) - 1] = '\0';
    if (*cf->data_dir == '\0') {
        snprintf(err, errlen, "data_dir: must not be empty");
        return -1;
    }
    if (strchr(cf->listen, ':') == NULL || strchr(cf->mdm_listen, ':') == NULL) {
        snprintf(err, errlen, "listen/mdm_listen: expected host:port");
        return -1;
    }
    cf->tls_auto = *cf->tls_cert_file == '\0' && *cf->tls_key_file == '\0';
    if (!cf->tls_auto && (*cf->tls_cert_file == '\0' || *cf->tls_key_file == '\0')) {
        snprintf(err, errlen, "tls_cert_file/tls_key_file: set both or neither");
        return -1;
    }
    conf_default_str(&cf->ca_dir, xasprintf("%s/ca", cf->data_dir));
    conf_default_str(&cf->tls_cert_file, xasprintf("%s/server.crt", cf->ca_dir));
    conf_default_str(&cf->tls_key_file, xasprintf("%s/server.key", cf->ca_dir));
    conf_default_str(&cf->server_names, xasprintf("localhost 127.0.0.1 ::1 %s", host));
    conf_default_str(&cf->public_url, xasprintf("https://%s:%s", host, conf_port_of(cf->listen)));
    conf_default_str(&cf->mdm_url, xasprintf("https://%s:%s", host, conf_port_of(cf->mdm_listen)));
    if (*cf->apns_p12_file == '\0' &&
        (*cf->apns_cert_file == '\0') != (*cf->apns_key_file == '\0')) {
        snprintf(err, errlen, "apns_cert_file/apns_key_file: set both or neither");
        return -1;
    }
    if (strcmp(cf->ca_key_type, "rsa2048") && strcmp(cf->ca_key_type, "rsa4096") &&
        strcmp(cf->ca_key_type, "ec256")) {
        snprintf(err, errlen, "ca_key_type: expected rsa2048, rsa4096 or ec256");
        return -1;
    }
    if (conf_finish_workers(cf, err, errlen) != 0 || conf_finish_scep(cf, err, errlen) != 0)
        return -1;
    return conf_finish_enroll(cf, err, errlen);
}
