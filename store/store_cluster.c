/* store_cluster.c: key slots, the slot table and redirect parsing for Redis
 * Cluster (store_cluster.h).  No I/O here: store.c sends, this decides where. */
#include "store_cluster.h"
#include "../core/util.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct store_cluster_node {
    char addr[64]; /* "host:port" as the cluster announces it */
    struct store *conn;
};

struct store_cluster {
    short owner[STORE_CLUSTER_SLOTS]; /* node index, -1 unowned */
    unsigned char replicas[STORE_CLUSTER_SLOTS];
    struct store_cluster_node nodes[STORE_CLUSTER_NODES];
    int nnodes;
};

/* CRC16-CCITT (XMODEM: polynomial 0x1021, initial 0), bit by bit: keys are
 * short, and a table would be 512 bytes of constants to review. */
unsigned store_cluster_crc16(const char *p, size_t len)
{
    unsigned crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (unsigned)(unsigned char)p[i] << 8;
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
    return crc;
}

unsigned store_cluster_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open != NULL) {
        size_t rest = len - (size_t)(open - key) - 1;
        const char *close = memchr(open + 1, '}', rest);
        if (close != NULL && close > open + 1)
            return store_cluster_crc16(open + 1, (size_t)(close - open - 1)) & 16383;
    }
    return store_cluster_crc16(key, len) & 16383;
}

int store_cluster_redirect(const char *err, size_t len, int *ask, int *slot, char *addr,
                           size_t addrsz)
{
    char buf[128], word[8], where[80];
    int n;
    if (len >= sizeof(buf))
        return 0;
    memcpy(buf, err, len);
    buf[len] = '\0';
    if (sscanf(buf, "%7s %d %79s", word, &n, where) != 3 || n < 0 || n >= STORE_CLUSTER_SLOTS)
        return 0;
    if (strcmp(word, "MOVED") != 0 && strcmp(word, "ASK") != 0)
        return 0;
    if (strlen(where) >= addrsz || strchr(where, ':') == NULL)
        return 0;
    *ask = word[0] == 'A';
    *slot = n;
    snprintf(addr, addrsz, "%s", where);
    return 1;
}

struct store_cluster *store_cluster_new(void)
{
    struct store_cluster *cl = xcalloc(1, sizeof(*cl));
    for (int i = 0; i < STORE_CLUSTER_SLOTS; i++)
        cl->owner[i] = -1;
    return cl;
}

void store_cluster_free(struct store_cluster *cl)
{
    free(cl);
}

int store_cluster_node(struct store_cluster *cl, const char *addr)
{
    for (int i = 0; i < cl->nnodes; i++)
        if (strcmp(cl->nodes[i].addr, addr) == 0)
            return i;
    if (cl->nnodes == STORE_CLUSTER_NODES || strlen(addr) >= sizeof(cl->nodes[0].addr))
        return -1;
    snprintf(cl->nodes[cl->nnodes].addr, sizeof(cl->nodes[0].addr), "%s", addr);
    return cl->nnodes++;
}

int store_cluster_nnodes(const struct store_cluster *cl)
{
    return cl->nnodes;
}

const char *store_cluster_addr(const struct store_cluster *cl, int node)
{
    return cl->nodes[node].addr;
}

struct store *store_cluster_conn(const struct store_cluster *cl, int node)
{
    return cl->nodes[node].conn;
}

void store_cluster_set_conn(struct store_cluster *cl, int node, struct store *conn)
{
    cl->nodes[node].conn = conn;
}

int store_cluster_owner(const struct store_cluster *cl, unsigned slot)
{
    return cl->owner[slot & 16383];
}

int store_cluster_replicas(const struct store_cluster *cl, unsigned slot)
{
    return cl->replicas[slot & 16383];
}

void store_cluster_assign(struct store_cluster *cl, unsigned slot, int node)
{
    cl->owner[slot & 16383] = (short)node;
}

/* One CLUSTER SLOTS entry: [start, end, [ip, port, id...], replica...].  An
 * entry without an address ("the node you asked") makes the reply unusable;
 * the next refresh asks again. */
static int store_cluster_entry(const redisReply *e, long long *lo, long long *hi, char *addr,
                               size_t addrsz)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
        e->element[0]->type != REDIS_REPLY_INTEGER || e->element[1]->type != REDIS_REPLY_INTEGER)
        return -1;
    const redisReply *m = e->element[2];
    if (m->type != REDIS_REPLY_ARRAY || m->elements < 2 ||
        m->element[0]->type != REDIS_REPLY_STRING || m->element[1]->type != REDIS_REPLY_INTEGER)
        return -1;
    *lo = e->element[0]->integer;
    *hi = e->element[1]->integer;
    if (*lo < 0 || *hi >= STORE_CLUSTER_SLOTS || *lo > *hi || m->element[0]->len == 0)
        return -1;
    int v6 = strchr(m->element[0]->str, ':') != NULL;
    snprintf(addr, addrsz, v6 ? "[%s]:%lld" : "%s:%lld", m->element[0]->str,
             m->element[1]->integer);
    return 0;
}

int store_cluster_load(struct store_cluster *cl, const redisReply *r)
{
    char addr[80];
    long long lo, hi;
    int covered = 0;
    if (r->type != REDIS_REPLY_ARRAY)
        return -1;
    for (size_t i = 0; i < r->elements; i++)
        if (store_cluster_entry(r->element[i], &lo, &hi, addr, sizeof(addr)) != 0)
            return -1;
    for (int i = 0; i < STORE_CLUSTER_SLOTS; i++)
        cl->owner[i] = -1;
    for (size_t i = 0; i < r->elements; i++) {
        (void)store_cluster_entry(r->element[i], &lo, &hi, addr, sizeof(addr));
        int node = store_cluster_node(cl, addr);
        if (node < 0)
            continue;
        size_t nrep = r->element[i]->elements - 3;
        for (long long s = lo; s <= hi; s++) {
            cl->owner[s] = (short)node;
            cl->replicas[s] = (unsigned char)(nrep > 255 ? 255 : nrep);
            covered++;
        }
    }
    return covered;
}
