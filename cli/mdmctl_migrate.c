/* mdmctl_migrate.c: `mdmctl migrate-layout`, the single key layout's
 * dataset copied into the cluster layout (store/store_migrate.h), straight
 * between the Redis servers: no mdmd, no API key. */
#include "mdmctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../store/store_migrate.h"

static void mdmctl_migrate_log(void *arg, const char *line)
{
    (void)arg;
    fprintf(stderr, "mdmctl: %s\n", line);
}

int mdmctl_migrate_layout(int argc, char **argv)
{
    const char *from = NULL, *to = NULL;
    int timeout_ms = 5000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--from") == 0)
            from = argv[i + 1];
        else if (strcmp(argv[i], "--to") == 0)
            to = argv[i + 1];
        else if (strcmp(argv[i], "--timeout-ms") == 0)
            timeout_ms = atoi(argv[i + 1]);
        else
            from = to = NULL, i = argc;
    }
    if (from == NULL || to == NULL || argc % 2 == 0 || timeout_ms <= 0) {
        fprintf(stderr, "usage: mdmctl migrate-layout --from REDIS --to SEED[,SEED...] "
                        "[--timeout-ms N]\n");
        return 2;
    }
    struct store_migrate_stats st;
    char err[512];
    if (store_migrate_layout(from, to, timeout_ms, mdmctl_migrate_log, NULL, &st, err,
                             sizeof(err)) != 0) {
        fprintf(stderr, "mdmctl: migrate-layout stopped: %s (run it again: it resumes)\n", err);
        return 1;
    }
    printf("migrated%s: %ld configuration keys into {g}, %ld keys as they are, %ld bucketed "
           "entries, %ld devices counted\n",
           st.resumed ? " (resumed)" : "", st.config, st.as_is, st.fleet, st.devices);
    return 0;
}
