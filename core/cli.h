/* cli.h: the administrative subcommands of the mdmd binary, run instead of
 * the daemon:
 *   mdmd [-c FILE] user add NAME --role admin|user [--password-stdin | --password P]
 *   mdmd [-c FILE] user passwd NAME [--password-stdin | --password P]
 *   mdmd [-c FILE] user del NAME
 *   mdmd [-c FILE] user list
 * They use the configuration the daemon would (cf, borrowed) and a blocking
 * Redis connection (store/store_sync.h): the configured `redis`, or the
 * private Redis under data_dir, which must be running.  Without a password
 * option the password is read from the terminal (twice, not echoed) or, when
 * stdin is not a terminal, as the first line of stdin. */
#ifndef MDMD_CLI_H
#define MDMD_CLI_H

#include "util.h"

struct conf;

/* 1 when argv[0] names a subcommand cli_main() runs. */
int cli_is_command(const char *arg) MDMD_MUSTCHECK;
/* Runs the subcommand in argv (argv[0] = "user"); returns the exit status:
 * 0 done, 1 failed (said on stderr), 2 usage error. */
int cli_main(const struct conf *cf, int argc, char **argv) MDMD_MUSTCHECK;

#endif
