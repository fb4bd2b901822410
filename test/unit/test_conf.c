/* Config parser: defaults, the example file, and each kind of bad line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../core/conf.h"
#include "../../core/log.h"
#include "../harness.h"

static char conf_tmp[] = "/tmp/mdmd-conf-XXXXXX";

/* Writes text to a temp file and loads it; returns conf_load's result. */
static int load_text(struct conf *cf, const char *text, char *err, size_t errlen)
{
    FILE *f = fopen(conf_tmp, "w");
    fputs(text, f);
    fclose(f);
    return conf_load(cf, conf_tmp, err, errlen);
}

TEST(defaults)
{
    struct conf cf;
    char err[256];
    conf_init(&cf);
    CHECK(strcmp(cf.listen, "0.0.0.0:8443") == 0);
    CHECK(strcmp(cf.mdm_listen, "0.0.0.0:8444") == 0);
    CHECK(cf.log_level == LOG_LVL_INFO);
    CHECK(*cf.redis == '\0');
    CHECK(conf_finish(&cf, err, sizeof(err)) == 0);
    CHECK(strcmp(cf.ca_dir, "var/ca") == 0);
    CHECK(strcmp(cf.tls_cert_file, "var/ca/server.crt") == 0);
    CHECK(cf.tls_auto == 1);
    CHECK(strncmp(cf.server_names, "localhost 127.0.0.1 ::1 ", 24) == 0);
    CHECK(strstr(cf.public_url, ":8443") != NULL);
    conf_clear(&cf);
}

TEST(good_file)
{
    struct conf cf;
    char err[256] = "";
    conf_init(&cf);
    int rc = load_text(&cf,
                       "# comment\n\n  listen 127.0.0.1:0   \nredis /tmp/r.sock # trailing\n"
                       "max_connections 5\nsyslog yes\nlog_level debug\n"
                       "ca_common_name \"My # CA \"\napns_host \"\"\n",
                       err, sizeof(err));
    CHECK(rc == 0);
    CHECK(strcmp(cf.listen, "127.0.0.1:0") == 0);
    CHECK(strcmp(cf.redis, "/tmp/r.sock") == 0);
    CHECK(cf.max_connections == 5);
    CHECK(cf.syslog == 1);
    CHECK(cf.log_level == LOG_LVL_DEBUG);
    CHECK(strcmp(cf.ca_common_name, "My # CA ") == 0);
    CHECK(*cf.apns_host == '\0');
    conf_clear(&cf);
}

/* Each bad line must name file, line number and key. */
static void expect_error(const char *text, const char *want)
{
    struct conf cf;
    char err[256] = "", expect[512];
    conf_init(&cf);
    CHECK(load_text(&cf, text, err, sizeof(err)) == -1);
    snprintf(expect, sizeof(expect), "%s:%s", conf_tmp, want);
    if (strncmp(err, expect, strlen(expect)) != 0)
        fprintf(stderr, "got \"%s\", want prefix \"%s\"\n", err, expect);
    CHECK(strncmp(err, expect, strlen(expect)) == 0);
    conf_clear(&cf);
}

TEST(bad_lines)
{
    expect_error("listen 1.2.3.4:1\nnosuchkey 1\n", "2: nosuchkey: unknown key");
    expect_error("\n\nmax_connections lots\n", "3: max_connections: not a whole number");
    expect_error("max_connections 0\n", "1: max_connections: 0 is out of range");
    expect_error("apns_port 70000\n", "1: apns_port: 70000 is out of range");
    expect_error("syslog maybe\n", "1: syslog: expected yes or no");
    expect_error("log_level loud\n", "1: log_level: expected error, warn");
    expect_error("# x\nca_common_name \"open\n", "2: ca_common_name: unterminated quote");
    expect_error("ca_common_name \"a\" b\n", "1: ca_common_name: text after closing quote");
    expect_error("max_body_size 99999999999999999999\n", "1: max_body_size: not a whole number");
}

TEST(bad_combinations)
{
    struct conf cf;
    char err[256];
    conf_init(&cf);
    CHECK(conf_set(&cf, "tls_cert_file", "/x.crt", "t", 1, err, sizeof(err)) == 0);
    CHECK(conf_finish(&cf, err, sizeof(err)) == -1);
    CHECK(strstr(err, "tls_key_file") != NULL);
    conf_clear(&cf);
    conf_init(&cf);
    CHECK(conf_set(&cf, "ca_key_type", "dsa", "t", 1, err, sizeof(err)) == 0);
    CHECK(conf_finish(&cf, err, sizeof(err)) == -1);
    conf_clear(&cf);
    conf_init(&cf);
    CHECK(conf_set(&cf, "listen", "8443", "t", 1, err, sizeof(err)) == 0);
    CHECK(conf_finish(&cf, err, sizeof(err)) == -1);
    conf_clear(&cf);
}

/* workers: a number in range or auto (at least one, however few CPUs). */
TEST(workers)
{
    static const char *const bad[] = {"0", "-1", "257", "two", "", "2x"};
    struct conf cf;
    char err[256];
    conf_init(&cf);
    CHECK(conf_finish(&cf, err, sizeof(err)) == 0 && cf.workers == 1);
    CHECK(conf_set(&cf, "workers", "4", "t", 1, err, sizeof(err)) == 0);
    CHECK(conf_finish(&cf, err, sizeof(err)) == 0 && cf.workers == 4);
    CHECK(conf_set(&cf, "workers", "auto", "t", 1, err, sizeof(err)) == 0);
    CHECK(conf_finish(&cf, err, sizeof(err)) == 0 && cf.workers >= 1);
    conf_clear(&cf);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        conf_init(&cf);
        CHECK(conf_set(&cf, "workers", bad[i], "t", 1, err, sizeof(err)) == 0);
        CHECK(conf_finish(&cf, err, sizeof(err)) == -1 && strstr(err, "workers") != NULL);
        conf_clear(&cf);
    }
}

TEST(missing_file)
{
    struct conf cf;
    char err[256];
    conf_init(&cf);
    CHECK(conf_load(&cf, "/nonexistent/mdmd.conf", err, sizeof(err)) == -1);
    CHECK(strstr(err, "/nonexistent/mdmd.conf:0: cannot open") == err);
    conf_clear(&cf);
}

/* The example parses, and sets every key the parser knows on a line of its own. */
TEST(example_names_every_key)
{
    struct conf cf;
    char err[256] = "", *text = NULL, *path = getenv("MDMD_CONF_EXAMPLE");
    size_t len;
    if (path == NULL)
        path = "mdmd.conf.example";
    conf_init(&cf);
    CHECK(conf_load(&cf, path, err, sizeof(err)) == 0);
    CHECK(util_read_file(path, &text, &len) == 0);
    for (const char *const *k = conf_keys(); text != NULL && *k != NULL; k++) {
        char want[128];
        snprintf(want, sizeof(want), "\n%s ", *k);
        if (strstr(text, want) == NULL)
            fprintf(stderr, "key %s is not set in %s\n", *k, path);
        CHECK(strstr(text, want) != NULL);
    }
    free(text);
    conf_clear(&cf);
}

int main(void)
{
    int fd = mkstemp(conf_tmp);
    close(fd);
    RUN(defaults);
    RUN(good_file);
    RUN(bad_lines);
    RUN(bad_combinations);
    RUN(workers);
    RUN(missing_file);
    RUN(example_names_every_key);
    unlink(conf_tmp);
    return harness_done();
}
