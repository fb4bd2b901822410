/* store_content.h: what admins publish to devices — configuration profiles,
 * provisioning profiles, apps — their assignment to users or everyone, and
 * the post-enrollment queueing of it (keys: docs/REDIS.md, "Users and
 * content").  Same contract as every typed store call (store.h): cb runs
 * exactly once unless cancelled, possibly before the call returns; the
 * values it gets are borrowed until it returns.  Ids are validated by the
 * caller (they go into key names). */
#ifndef MDMD_STORE_CONTENT_H
#define MDMD_STORE_CONTENT_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "store_mdm.h"

enum store_content_kind {
    STORE_CONTENT_PROFILE,     /* mdm:profile:<PayloadIdentifier> */
    STORE_CONTENT_PROVPROFILE, /* mdm:provprofile:<UUID> */
    STORE_CONTENT_APP,         /* mdm:app:<bundle identifier> */
};
const char *store_content_kind_name(int kind); /* "profile", "provprofile", "app" */

struct store_content_item {    /* borrowed by callbacks */
    const struct store_kv *kv; /* the hash (id first in lists; body only from get) */
    size_t n;
    const char *const *users; /* assigned user names, sorted */
    size_t nusers;
};

typedef void store_content_fn(void *arg, int err, const struct store_content_item *items, size_t n);
typedef void store_content_result_fn(void *arg, int err, int result);

/* Creates or replaces kind/id with the fields (binary-safe values).
 * result: 1 created, 0 replaced (the assignment stays). */
struct store_op *store_content_put(struct store *s, int kind, const char *id,
                                   const struct store_kv *fields, size_t nfields, int64_t now_ms,
                                   store_content_result_fn *cb, void *arg);
/* Sorted by id, without bodies. */
struct store_op *store_content_list(struct store *s, int kind, store_content_fn *cb, void *arg);
/* n is 0 for an unknown id, else 1 (with the body). */
struct store_op *store_content_get(struct store *s, int kind, const char *id, store_content_fn *cb,
                                   void *arg);
/* result: 1 deleted, 0 unknown. */
struct store_op *store_content_del(struct store *s, int kind, const char *id,
                                   store_content_result_fn *cb, void *arg);

/* Replaces the assignment.  result: 1 done, 0 unknown id, -1 some users are
 * unknown (listed in unknown; nothing changed). */
typedef void store_assign_fn(void *arg, int err, int result, const char *const *unknown,
                             size_t nunknown);
struct store_op *store_content_assign(struct store *s, int kind, const char *id, int everyone,
                                      const char *const *users, size_t nusers, store_assign_fn *cb,
                                      void *arg);

/* ---- post-enrollment provisioning ---- */

struct store_grant { /* one item a device gets */
    int kind;
    const char *id;
    const char *body; /* profiles: the stored bytes */
    size_t body_len;
    const char *manifest_url; /* apps: one of these two is non-empty */
    const char *itunes_store_id;
};
/* The device's user ("" when none) and what it gets, in install order. */
typedef void store_grants_fn(void *arg, int err, const char *user, const struct store_grant *g,
                             size_t n);
struct store_op *store_content_grants(struct store *s, const char *udid, store_grants_fn *cb,
                                      void *arg);

struct store_cmd { /* a command ready to queue */
    const char *uuid;
    const char *request_type;
    const char *plist; /* XML of {Command, CommandUUID} */
    size_t plist_len;
};
/* Queues cmds for udid in order, atomically, storing each once (mdm:cmd:,
 * expiring after ttl_s).  push: the device to wake, or NULL. */
typedef void store_provision_fn(void *arg, int err, long queued,
                                const struct store_push_target *push);
struct store_op *store_content_provision(struct store *s, const char *udid,
                                         const struct store_cmd *cmds, size_t n, int64_t now_ms,
                                         int ttl_s, store_provision_fn *cb, void *arg);

#endif
