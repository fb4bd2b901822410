/* store_users.h: users and login throttling in Redis (keys: docs/REDIS.md,
 * "Users").  Same contract as every typed store call (store.h): the callback
 * runs exactly once unless store_op_cancel() is called, possibly before the
 * call returns (MDMD_EUNAVAIL); values it gets are borrowed until it returns.
 * Names are validated by the caller (store_users_name_ok). */
#ifndef MDMD_STORE_USERS_H
#define MDMD_STORE_USERS_H

#include "../core/util.h"

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define STORE_USERS_NAME_MAX 64
/* Key names of users and their login counters, in the layout (cluster 1:
 * "mdm:{g}:<rest>", docs/REDIS.md); fmt is the part after "mdm:", with one
 * %s for name.  Shared with the CLI's blocking connection (store_sync.c). */
#define STORE_USERS_KEY 160 /* "mdm:{g}:loginfail:addr:" + an IPv6 literal fits easily */
void store_users_key(int cluster, char *out, const char *fmt, const char *name);
/* user_del.lua's KEYS: the user, the user set, the three content sets and
 * the three assignment prefixes. */
void store_users_del_keys(int cluster, char k[8][STORE_USERS_KEY], const char *name);

/* 1 when name is 1..64 characters of [A-Za-z0-9._@-] (it goes into keys). */
int store_users_name_ok(const char *name) MDMD_MUSTCHECK;
/* 1 for "admin" and "user". */
int store_users_role_ok(const char *role) MDMD_MUSTCHECK;

struct store_user { /* borrowed by callbacks */
    const char *name;
    const char *role;
    const char *hash;    /* "" in lists */
    const char *created; /* ms since the epoch, as stored */
    const char *updated;
};

enum store_users_result { STORE_USERS_OK = 0, STORE_USERS_EXISTS, STORE_USERS_NOT_FOUND };

typedef void store_user_fn(void *arg, int err, const struct store_user *u); /* u NULL: unknown */
typedef void store_users_fn(void *arg, int err, const struct store_user *u, size_t n);
typedef void store_users_result_fn(void *arg, int err, int result);

struct store_op *store_users_get(struct store *s, const char *name, store_user_fn *cb, void *arg);
/* Sorted by name; hashes are not returned. */
struct store_op *store_users_list(struct store *s, store_users_fn *cb, void *arg);
/* create 1: a new user (STORE_USERS_EXISTS when taken); create 0: a new
 * password for an existing one (role ignored; STORE_USERS_NOT_FOUND). */
struct store_op *store_users_put(struct store *s, const char *name, const char *role,
                                 const char *hash, int create, int64_t now_ms,
                                 store_users_result_fn *cb, void *arg);
/* Also removes the user from every content assignment. */
struct store_op *store_users_del(struct store *s, const char *name, store_users_result_fn *cb,
                                 void *arg);

/* ---- login throttling: fixed windows of window_s per user and per address ---- */

struct store_login_limits {
    int user_max; /* failures per user per window */
    int addr_max; /* failures per client address per window */
    int window_s;
};

/* retry_after_s > 0: limited, u NULL.  Otherwise the attempt is counted as
 * a failure against name and peer already (atomically with the check, so
 * parallel attempts cannot overshoot the limits), and u is the user (hash
 * included), or NULL when unknown. */
typedef void store_login_fn(void *arg, int err, int retry_after_s, const struct store_user *u);
struct store_op *store_users_login_check(struct store *s, const char *name, const char *peer,
                                         const struct store_login_limits *lim, store_login_fn *cb,
                                         void *arg);
/* The password was right: clears name's counter and takes the attempt back
 * from peer's.  cb may be NULL. */
struct store_op *store_users_login_ok(struct store *s, const char *name, const char *peer,
                                      store_done_fn *cb, void *arg);

#endif
