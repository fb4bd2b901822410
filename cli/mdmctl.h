/* mdmctl.h: the admin CLI over mdmd's REST API (docs/man/mdmctl.1).  A
 * blocking program: one HTTPS request at a time, each on its own connection.
 *
 *   mdmctl.c        options, configuration (flags > environment > file), dispatch
 *   mdmctl_http.c   the HTTPS client (OpenSSL, peer and host name verified)
 *   mdmctl_cmd.c    the subcommands
 *   mdmctl_enq.c    enqueue, and following a bulk job
 *   mdmctl_checkin.c  user channels, bootstrap tokens, Return to Service, GetToken, migrate
 *   mdmctl_fleet.c  queue surgery, push ledger, webhooks, stale devices
 *   mdmctl_out.c    tables, times, the progress bar
 *   mdmctl_ddm.c    declarative management: declarations, sets, assignment, status
 *
 * Ownership: struct mdmctl lives for the whole run (main owns it); a
 * struct mdmctl_resp owns its body until mdmctl_resp_free(). */
#ifndef MDMD_MDMCTL_H
#define MDMD_MDMCTL_H

#include "../core/util.h"

#include <jansson.h>
#include <stddef.h>

struct mdmctl {
    char *url;     /* https://host[:port], no trailing slash */
    char *key;     /* admin API key */
    char *cacert;  /* CA file to verify the server with; NULL: system store */
    int raw;       /* --json: print the server's JSON as it came */
    int progress;  /* 1: progress bar even when stderr is not a terminal */
    int timeout_s; /* per request */
};

struct mdmctl_resp {
    int status; /* HTTP status; 0 if no answer */
    char *body; /* NUL-terminated, owned */
    size_t len;
    char location[256]; /* the Location header, or "" */
};

/* ---- mdmctl_http.c ---- */

/* Sends one request; ctype NULL when no body.  0 when an answer came (any
 * status), -1 after printing why not (connection, TLS, timeout). */
int mdmctl_http(const struct mdmctl *m, const char *method, const char *path, const char *ctype,
                const char *body, size_t len, struct mdmctl_resp *out) MDMD_MUSTCHECK;
void mdmctl_resp_free(struct mdmctl_resp *r);

/* ---- mdmctl_cmd.c ---- */

/* Runs the subcommand argv[0]; returns the exit status (0, 1 failure, 2 usage). */
int mdmctl_cmd_run(struct mdmctl *m, int argc, char **argv) MDMD_MUSTCHECK;

/* ---- mdmctl_enq.c: enqueue, and bulk jobs ---- */

int mdmctl_enq_run(const struct mdmctl *m, int argc, char **argv) MDMD_MUSTCHECK; /* enqueue ... */
int mdmctl_enq_job(const struct mdmctl *m, int argc,
                   char **argv) MDMD_MUSTCHECK; /* job ID [--wait] */

/* ---- mdmctl_checkin.c: user channels, bootstrap tokens, RTS, GetToken, migration ---- */

int mdmctl_checkin_channels(const struct mdmctl *m, int argc, char **argv) MDMD_MUSTCHECK;
int mdmctl_checkin_bootstrap(const struct mdmctl *m, int argc, char **argv) MDMD_MUSTCHECK;
int mdmctl_checkin_rts(const struct mdmctl *m, int argc, char **argv) MDMD_MUSTCHECK;
int mdmctl_checkin_token_source(const struct mdmctl *m, int argc, char **argv) MDMD_MUSTCHECK;
int mdmctl_checkin_migrate(const struct mdmctl *m, int argc, char **argv) MDMD_MUSTCHECK;

/* ---- mdmctl_ddm.c ---- */
/* declarations | declaration ID | declare FILE | declaration-rm ID | sets | set NAME |
 * set-put NAME ID... | set-rm NAME | assign NAME ... | status UDID | fleet-status ... */
/* migrate-layout --from REDIS --to SEEDS (mdmctl_migrate.c): talks to Redis,
 * not to mdmd. */
int mdmctl_migrate_layout(int argc, char **argv) MDMD_MUSTCHECK;

int mdmctl_ddm_run(const struct mdmctl *m, int argc, char **argv) MDMD_MUSTCHECK;

/* ---- mdmctl_fleet.c: queue surgery, pushes, webhooks, stale devices ---- */

int mdmctl_fleet_pending(const struct mdmctl *m, int argc, char **argv) MDMD_MUSTCHECK;
int mdmctl_fleet_cancel(const struct mdmctl *m, int argc, char **argv) MDMD_MUSTCHECK;
int mdmctl_fleet_pushes(const struct mdmctl *m, int argc, char **argv) MDMD_MUSTCHECK;
int mdmctl_fleet_webhooks(const struct mdmctl *m, int argc, char **argv) MDMD_MUSTCHECK;
int mdmctl_fleet_dead(const struct mdmctl *m, int argc, char **argv) MDMD_MUSTCHECK;
int mdmctl_fleet_replay(const struct mdmctl *m, int argc, char **argv) MDMD_MUSTCHECK;
int mdmctl_fleet_stale(const struct mdmctl *m, int argc, char **argv) MDMD_MUSTCHECK;
int mdmctl_fleet_push_cert(const struct mdmctl *m, int argc, char **argv) MDMD_MUSTCHECK;

/* ---- mdmctl_out.c ---- */

struct mdmctl_table;
struct mdmctl_table *mdmctl_out_table_new(const char *const *heads, int ncols) MDMD_MUSTCHECK;
void mdmctl_out_table_row(struct mdmctl_table *t, const char *const *cells); /* copied */
void mdmctl_out_table_print(struct mdmctl_table *t); /* to stdout; frees t */
/* ms since the epoch as "YYYY-MM-DD HH:MM:SS" UTC ("-" for 0 or bad). */
void mdmctl_out_time(const char *ms, char *out, size_t len);
/* A JSON scalar as text ("" for null, objects and arrays). */
void mdmctl_out_scalar(json_t *v, char *out, size_t len);
/* Redraws the progress line on stderr (when shown); final: end it. */
void mdmctl_out_progress(const struct mdmctl *m, long done, long total, const char *what,
                         int final);
/* Prints the server's error for r to stderr ("mdmctl: 404 unknown device"). */
void mdmctl_out_error(const struct mdmctl_resp *r);
/* Prints j compactly-indented to stdout. */
void mdmctl_out_json(json_t *j);

#endif
