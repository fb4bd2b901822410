/* store_migrate.h: `mdmctl migrate-layout`: copies a dataset of the single
 * key layout into the cluster layout (docs/REDIS.md, "Migrating to the
 * cluster layout").  Blocking (hiredis' synchronous API): for the command
 * line only, never inside mdmd.  hiredis stays inside store/.
 *
 * Configuration keys are copied under "mdm:{g}:", per-device keys ({UDID})
 * and the keys named by their own id (mdm:cmd:, mdm:cmdto:, mdm:cert:) as
 * they are, and the fleet-wide keys rebuilt into their 64 buckets from the
 * old fleet keys (mdm:devices, mdm:idx, mdm:repush, mdm:provision,
 * mdm:ddm:enrollments, mdm:ddm:failed, mdm:pushlat, mdm:events) and the
 * device records and queues (mdm:os, mdm:stats queue_depth).  The source is
 * only read.  Every write replaces (RESTORE REPLACE, ZADD, SADD, HSET of a
 * recount, XADD of the same id), so a second run changes nothing; the
 * progress (phase, SCAN cursor) is kept in the destination's
 * mdm:{g}:migrate hash, so an interrupted run resumes where it stopped. */
#ifndef MDMD_STORE_MIGRATE_H
#define MDMD_STORE_MIGRATE_H

#include <stddef.h>

#include "../core/util.h"

struct store_migrate_stats {
    long config;  /* configuration keys copied into {g} */
    long as_is;   /* per-device and by-id keys copied under their name */
    long fleet;   /* bucketed entries written (index members, events...) */
    long devices; /* device records counted */
    int resumed;  /* 1: the run went on from a saved position */
};

/* A line of progress for people (phase names, counts). */
typedef void store_migrate_log_fn(void *arg, const char *line);

/* from: the single-layout Redis (socket path or host:port); to: the
 * destination, one seed of a Redis Cluster (MOVED is followed) or the same
 * Redis (then keys whose name does not change are left where they are).
 * 0, or -1 with err set. */
int store_migrate_layout(const char *from, const char *to, int timeout_ms,
                         store_migrate_log_fn *log, void *arg, struct store_migrate_stats *st,
                         char *err, size_t errlen) MDMD_MUSTCHECK;

#endif
