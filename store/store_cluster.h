/* store_cluster.h: the Redis Cluster part of the store: key slots, the slot
 * table learned from CLUSTER SLOTS, and the redirect replies (MOVED, ASK).
 * Pure functions and a table; the connections (one struct store per master)
 * and the op routing live in store.c, which owns the table.
 *
 * Slots follow the Redis Cluster specification: CRC16 (XMODEM) of the key,
 * or of its hash tag (the bytes between the first '{' and the next '}' when
 * that is not empty), modulo 16384. */
#ifndef MDMD_STORE_CLUSTER_H
#define MDMD_STORE_CLUSTER_H

#include "../core/util.h"

#include <stddef.h>

#define STORE_CLUSTER_SLOTS 16384
#define STORE_CLUSTER_NODES 64 /* masters and former masters we keep a connection for */

struct store;
struct store_cluster;
struct redisReply;

unsigned store_cluster_crc16(const char *p, size_t len) MDMD_MUSTCHECK;
unsigned store_cluster_slot(const char *key, size_t len) MDMD_MUSTCHECK;

/* "MOVED <slot> <host:port>" or "ASK <slot> <host:port>": returns 1 and sets
 * *ask, *slot and addr (NUL-terminated, "host:port"); 0 for any other error. */
int store_cluster_redirect(const char *err, size_t len, int *ask, int *slot, char *addr,
                           size_t addrsz) MDMD_MUSTCHECK;

struct store_cluster *store_cluster_new(void) MDMD_MUSTCHECK; /* every slot unowned */
void store_cluster_free(struct store_cluster *cl);            /* NULL-safe; not the conns */

/* The node with that address, added when new: its index, or -1 when the
 * table is full. */
int store_cluster_node(struct store_cluster *cl, const char *addr) MDMD_MUSTCHECK;
int store_cluster_nnodes(const struct store_cluster *cl) MDMD_MUSTCHECK;
const char *store_cluster_addr(const struct store_cluster *cl, int node);
/* The connection store.c made for a node (borrowed), NULL until then. */
struct store *store_cluster_conn(const struct store_cluster *cl, int node);
void store_cluster_set_conn(struct store_cluster *cl, int node, struct store *conn);

/* The node serving slot, or -1; how many replicas its shard had in the last
 * CLUSTER SLOTS. */
int store_cluster_owner(const struct store_cluster *cl, unsigned slot) MDMD_MUSTCHECK;
int store_cluster_replicas(const struct store_cluster *cl, unsigned slot) MDMD_MUSTCHECK;
void store_cluster_assign(struct store_cluster *cl, unsigned slot, int node);

/* Replaces the table with a CLUSTER SLOTS reply.  Returns the number of slots
 * covered (16384 for a healthy cluster), or -1 for a reply of another shape
 * (the table is then unchanged). */
int store_cluster_load(struct store_cluster *cl, const struct redisReply *r) MDMD_MUSTCHECK;

#endif
