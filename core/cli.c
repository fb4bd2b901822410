/* cli.c: `mdmd user ...` and `mdmd bootstrap-key ...` (cli.h).  Runs before and without the event loop,
 * so blocking calls (Redis, hashing, the terminal) are fine here. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "../ca/ca.h"
#include "../ca/ca_seal.h"
#include "../store/store_sync.h"
#include "../store/store_users.h"
#include "conf.h"
#include "util.h"

#define CLI_PW_MAX 1024
#define CLI_PW_MIN 8 /* as the REST API (handlers/api/api.h) */

struct cli_args {
    const char *verb; /* add, passwd, del, list */
    const char *name;
    const char *role;
    const char *password; /* --password P */
    int password_stdin;
};

static void cli_usage(void)
{
    fprintf(stderr,
            "usage: mdmd [-c FILE] user add NAME --role admin|user\n"
            "                      [--password-stdin | --password P]\n"
            "       mdmd [-c FILE] user passwd NAME [--password-stdin | --password P]\n"
            "       mdmd [-c FILE] user del NAME\n"
            "       mdmd [-c FILE] user list\n"
            "       mdmd [-c FILE] bootstrap-key rotate | prune\n"
            "  NAME: 1 to 64 characters of A-Z a-z 0-9 . _ @ -; passwords: 8 to 1024 characters\n");
}

int cli_is_command(const char *arg)
{
    return arg != NULL && (strcmp(arg, "user") == 0 || strcmp(arg, "bootstrap-key") == 0);
}

/* argv = user VERB [NAME] [options]; 0 or -1 (usage). */
static int cli_parse(int argc, char **argv, struct cli_args *a)
{
    int i = 2;
    memset(a, 0, sizeof(*a));
    if (argc < 2)
        return -1;
    a->verb = argv[1];
    int named = strcmp(a->verb, "list") != 0;
    if (named && (argc < 3 || argv[2][0] == '-'))
        return -1;
    if (named)
        a->name = argv[i++];
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--role") == 0 && i + 1 < argc)
            a->role = argv[++i];
        else if (strcmp(argv[i], "--password") == 0 && i + 1 < argc)
            a->password = argv[++i];
        else if (strcmp(argv[i], "--password-stdin") == 0)
            a->password_stdin = 1;
        else
            return -1;
    }
    int add = strcmp(a->verb, "add") == 0, pw = add || strcmp(a->verb, "passwd") == 0;
    if (!pw && strcmp(a->verb, "del") != 0 && strcmp(a->verb, "list") != 0)
        return -1;
    if ((a->role != NULL) != add || (!pw && (a->password != NULL || a->password_stdin)) ||
        (a->password != NULL && a->password_stdin))
        return -1;
    return 0;
}

/* One line from f into buf without its newline; -1 at EOF or when too long. */
static int cli_read_line(FILE *f, char *buf, size_t size)
{
    if (fgets(buf, (int)size, f) == NULL)
        return -1;
    size_t n = strcspn(buf, "\r\n");
    if (buf[n] == '\0' && n == size - 1)
        return -1;
    buf[n] = '\0';
    return 0;
}

/* Prompts on the terminal with echo off. */
static int cli_prompt(const char *prompt, char *buf, size_t size)
{
    struct termios old, quiet;
    fputs(prompt, stderr);
    fflush(stderr);
    int tty = tcgetattr(STDIN_FILENO, &old) == 0;
    if (tty) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    int rc = cli_read_line(stdin, buf, size);
    if (tty)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    fputs("\n", stderr);
    return rc;
}

/* The new password into buf, from the option, stdin or the terminal. */
static int cli_password(const struct cli_args *a, char *buf, size_t size)
{
    char again[CLI_PW_MAX + 2];
    if (a->password != NULL) {
        snprintf(buf, size, "%s", a->password);
    } else if (a->password_stdin || !isatty(STDIN_FILENO)) {
        if (cli_read_line(stdin, buf, size) != 0) {
            fprintf(stderr, "mdmd: no password on stdin\n");
            return -1;
        }
    } else if (cli_prompt("Password: ", buf, size) != 0 ||
               cli_prompt("Again: ", again, sizeof(again)) != 0 || strcmp(buf, again) != 0) {
        explicit_bzero(again, sizeof(again));
        fprintf(stderr, "mdmd: the passwords differ\n");
        return -1;
    }
    explicit_bzero(again, sizeof(again));
    size_t n = strlen(buf);
    if (n < CLI_PW_MIN || n > CLI_PW_MAX) {
        fprintf(stderr, "mdmd: the password must be %d to %d characters\n", CLI_PW_MIN, CLI_PW_MAX);
        return -1;
    }
    return 0;
}

static void cli_print_user(void *arg, const char *name, const char *role, const char *created,
                           const char *updated)
{
    (void)arg;
    (void)updated;
    printf("%-40s %-6s %s\n", name, role, created);
}

/* add / passwd: hash here (blocking is fine in the CLI), then store. */
static int cli_put(struct store_sync *ss, const struct cli_args *a, char *err, size_t errlen)
{
    char pw[CLI_PW_MAX + 2], hash[CA_PW_HASH_MAX];
    int add = strcmp(a->verb, "add") == 0;
    if (cli_password(a, pw, sizeof(pw)) != 0)
        return 1;
    int rc = ca_pw_hash(pw, CA_PW_ITERATIONS, hash);
    explicit_bzero(pw, sizeof(pw));
    if (rc != 0) {
        fprintf(stderr, "mdmd: password hashing failed\n");
        return 1;
    }
    int res = store_sync_user_put(ss, a->name, a->role, hash, add, util_now_ms(), err, errlen);
    explicit_bzero(hash, sizeof(hash));
    if (res == STORE_USERS_OK && add)
        printf("user %s added (%s)\n", a->name, a->role);
    else if (res == STORE_USERS_OK)
        printf("password of %s changed\n", a->name);
    else if (res == STORE_USERS_EXISTS)
        fprintf(stderr, "mdmd: user %s exists (use `mdmd user passwd %s`)\n", a->name, a->name);
    else if (res == STORE_USERS_NOT_FOUND)
        fprintf(stderr, "mdmd: no user %s\n", a->name);
    else
        fprintf(stderr, "mdmd: %s\n", err);
    return res == STORE_USERS_OK ? 0 : 1;
}

static int cli_run(struct store_sync *ss, const struct cli_args *a)
{
    char err[512] = "";
    if (strcmp(a->verb, "list") == 0) {
        if (store_sync_user_list(ss, cli_print_user, NULL, err, sizeof(err)) == 0)
            return 0;
        fprintf(stderr, "mdmd: %s\n", err);
        return 1;
    }
    if (strcmp(a->verb, "del") == 0) {
        int res = store_sync_user_del(ss, a->name, err, sizeof(err));
        if (res == STORE_USERS_OK)
            printf("user %s deleted\n", a->name);
        else
            fprintf(stderr, "mdmd: %s\n", res == STORE_USERS_NOT_FOUND ? "no such user" : err);
        return res == STORE_USERS_OK ? 0 : 1;
    }
    return cli_put(ss, a, err, sizeof(err));
}

/* ---- bootstrap-key: the key that seals escrowed bootstrap tokens ---- */

struct cli_seal {
    char *path;
    long failed;
    char (*ids)[CA_SEAL_ID_LEN]; /* prune: the key ids in use */
    size_t nids, cap;
};

/* rotate: every token opened and sealed again under the newest key. */
static char *cli_seal_reseal(void *arg, const char *udid, const char *sealed)
{
    struct cli_seal *c = arg;
    size_t n = 0;
    unsigned char *p = ca_unseal(c->path, udid, sealed, &n);
    char *out = p != NULL ? ca_seal(c->path, udid, p, n) : NULL;
    if (p != NULL)
        explicit_bzero(p, n);
    free(p);
    c->failed += out == NULL;
    return out;
}

/* prune: which keys the stored tokens use. */
static char *cli_seal_note(void *arg, const char *udid, const char *sealed)
{
    struct cli_seal *c = arg;
    (void)udid;
    if (c->nids == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 16;
        c->ids = xrealloc(c->ids, c->cap * sizeof(*c->ids));
    }
    if (ca_seal_key_id(sealed, c->ids[c->nids]) == 0)
        c->nids++;
    return NULL;
}

static int cli_seal_run(struct store_sync *ss, struct cli_seal *c, const char *verb)
{
    char err[512] = "", id[CA_SEAL_ID_LEN];
    long seen = 0, changed = 0;
    if (strcmp(verb, "rotate") == 0) {
        if (ca_seal_rotate(c->path, id) != 0)
            return 1;
        if (store_sync_bootstrap_each(ss, cli_seal_reseal, c, &seen, &changed, err, sizeof(err)) !=
            0) {
            fprintf(stderr, "mdmd: %s\n", err);
            return 1;
        }
        printf("new key %s; %ld tokens sealed again, %ld failed (old keys kept: "
               "`mdmd bootstrap-key prune` drops those no token uses)\n",
               id, changed, c->failed);
        return c->failed == 0 ? 0 : 1;
    }
    if (store_sync_bootstrap_each(ss, cli_seal_note, c, &seen, &changed, err, sizeof(err)) != 0) {
        fprintf(stderr, "mdmd: %s\n", err);
        return 1;
    }
    const char **keep = xcalloc(c->nids + 1, sizeof(*keep));
    for (size_t i = 0; i < c->nids; i++)
        keep[i] = c->ids[i];
    int dropped = 0, rc = ca_seal_prune(c->path, keep, c->nids, &dropped);
    free(keep);
    if (rc == 0)
        printf("%d keys dropped; %ld tokens checked\n", dropped, seen);
    return rc == 0 ? 0 : 1;
}

static int cli_seal_main(const struct conf *cf, int argc, char **argv)
{
    char err[512];
    if (argc != 2 || (strcmp(argv[1], "rotate") != 0 && strcmp(argv[1], "prune") != 0)) {
        cli_usage();
        return 2;
    }
    struct cli_seal c = {xasprintf("%s/bootstrap.key", cf->data_dir), 0, NULL, 0, 0};
    struct store_sync *ss =
        store_sync_open(cf->redis, cf->data_dir, cf->redis_timeout_ms, err, sizeof(err));
    int rc = 1;
    if (ss == NULL)
        fprintf(stderr, "mdmd: %s\n", err);
    else
        rc = cli_seal_run(ss, &c, argv[1]);
    store_sync_free(ss);
    free(c.ids);
    free(c.path);
    return rc;
}

int cli_main(const struct conf *cf, int argc, char **argv)
{
    struct cli_args a;
    char err[512];
    if (argc > 0 && strcmp(argv[0], "bootstrap-key") == 0)
        return cli_seal_main(cf, argc, argv);
    if (cli_parse(argc, argv, &a) != 0) {
        cli_usage();
        return 2;
    }
    if (a.name != NULL && !store_users_name_ok(a.name)) {
        fprintf(stderr, "mdmd: bad user name %s: 1 to 64 characters of A-Z a-z 0-9 . _ @ -\n",
                a.name);
        return 2;
    }
    if (a.role != NULL && !store_users_role_ok(a.role)) {
        fprintf(stderr, "mdmd: --role must be admin or user\n");
        return 2;
    }
    struct store_sync *ss =
        store_sync_open(cf->redis, cf->data_dir, cf->redis_timeout_ms, err, sizeof(err));
    if (ss == NULL) {
        fprintf(stderr, "mdmd: %s\n", err);
        return 1;
    }
    store_sync_set_layout(ss, cf->redis_layout);
    int rc = cli_run(ss, &a);
    store_sync_free(ss);
    return rc;
}
