/* push_int.h: what the three parts of push/ share; nothing outside push/
 * includes it.  push.c owns the dispatch queue and the items (every push is
 * one struct push_item in exactly one list at a time: p->queue, p->retry, or
 * its connection's streams), push_conn.c the HTTP/2 connections, push_cert.c
 * the certificate and topic.
 *
 * Connections are never closed from inside an nghttp2 callback (the session
 * would be deleted under nghttp2's feet): callbacks only move items between
 * lists and run the caller's callback; closing happens after
 * nghttp2_session_mem_recv/mem_send return, or from libevent callbacks. */
#ifndef MDMD_PUSH_INT_H
#define MDMD_PUSH_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <event2/util.h>
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include "push.h"

struct bufferevent;
struct event;
struct evdns_base;
struct evdns_getaddrinfo_request;

#define PUSH_DEFAULT_HOST "api.push.apple.com"
#define PUSH_DEFAULT_PORT 443
#define PUSH_DEFAULT_EXPIRATION_S (7 * 24 * 3600)
#define PUSH_MAX_CONNECTIONS 64
#define PUSH_EXPIRY_WARN_DAYS 30
#define PUSH_TOPIC_PREFIX "com.apple.mgmt."
#define PUSH_PATH_PREFIX "/3/device/"
#define PUSH_OUT_HIGH (256 * 1024) /* stop asking nghttp2 for frames above this */
#define PUSH_OUT_LOW (64 * 1024)   /* ... and ask again when the socket drained to this */
#define PUSH_RESP_MAX 512          /* bytes of an error body kept: {"reason":"..."} */
#define PUSH_BODY_MAX (PUSH_MAGIC_MAX * 6 + 16)

enum push_where { PUSH_IN_QUEUE, PUSH_IN_FLIGHT, PUSH_IN_RETRY, PUSH_IN_NONE };

struct push_item {               /* one push, from push_send() to its callback */
    TAILQ_ENTRY(push_item) link; /* p->queue, p->retry or conn->streams */
    struct push *p;
    push_done_fn *cb;
    void *arg;
    struct push_conn *conn; /* while in flight */
    struct event *timer;    /* while waiting for a retry */
    int64_t t0;             /* util_mono_ms() at push_send() */
    int32_t stream_id;      /* while in flight */
    uint8_t where;          /* enum push_where */
    uint8_t attempts;       /* answers (or resets) received */
    uint16_t status;        /* :status of the current answer, 0 = none yet */
    uint16_t body_len;
    uint16_t body_off; /* bytes handed to nghttp2 */
    uint16_t resp_len;
    char *resp;       /* error body; NULL for 200 */
    char apns_id[40]; /* "" until an answer carries one */
    char path[sizeof PUSH_PATH_PREFIX + PUSH_TOKEN_HEX_LEN];
    char expiration[24]; /* decimal epoch seconds */
    char body[];         /* {"mdm":"<magic>"} */
};
TAILQ_HEAD(push_itemq, push_item);

enum push_conn_state {
    PUSH_CONN_DOWN,       /* no socket; c->timer may hold a reconnect backoff */
    PUSH_CONN_RESOLVING,  /* evdns lookup of the host */
    PUSH_CONN_CONNECTING, /* TCP + TLS handshake */
    PUSH_CONN_SETTINGS,   /* h2 preface sent, waiting for the server's SETTINGS */
    PUSH_CONN_READY,      /* takes new streams */
    PUSH_CONN_DRAINING,   /* GOAWAY received: finish open streams, then close */
};

struct push_lookup;

struct push_conn { /* one connection slot; reused across reconnects */
    struct push *p;
    int idx;
    enum push_conn_state state;
    struct bufferevent *bev;  /* openssl bufferevent, owns the SSL and the fd */
    struct bufferevent *peer; /* loopback only: the server's end of the pair */
    nghttp2_session *h2;
    struct push_lookup *lookup; /* while RESOLVING */
    struct event *timer;        /* reconnect backoff */
    struct event *ping;         /* persist, every ping_interval_ms while up */
    struct push_itemq streams;  /* submitted, no final answer yet */
    unsigned nstreams;
    unsigned fails;    /* consecutive connections that answered nothing */
    unsigned opened;   /* connection attempts of this slot */
    uint64_t answered; /* streams answered on the current connection */
    int rx;            /* bytes read since the last ping tick */
    int ping_out;      /* our PING is unanswered */
    int dirty;         /* submitted since the last flush */
};

/* evdns calls back after a cancel, later, from the loop: the lookup and the
 * evdns_base must outlive the connection and even the struct push, so they
 * are reference-counted here rather than freed with their owner. */
struct push_dns {
    struct evdns_base *dns;
    struct event_base *base;
    unsigned pending; /* lookups whose callback has not run */
    int orphaned;     /* push_free() ran; free at pending == 0 */
};

struct push_lookup {
    struct push_dns *d;
    struct push_conn *c; /* NULL once canceled */
    struct evdns_getaddrinfo_request *req;
};

struct push {
    struct event_base *base;
    SSL_CTX *ssl;
    nghttp2_session_callbacks *h2cb;
    struct push_dns *dns;         /* NULL when the host is an IP literal */
    struct sockaddr_storage addr; /* the IP literal, when dns == NULL */
    ev_socklen_t addrlen;
    char *topic;
    char *host;
    char *authority; /* :authority, host[:port] */
    int port;
    int expiration_s;
    struct push_tuning tun;
    struct push_conn *conns;
    int nconns;
    struct push_itemq queue; /* FIFO waiting for a stream slot */
    struct push_itemq retry; /* waiting for their retry timer */
    uint64_t nqueue, nretry;
    struct event *kick;   /* deferred dispatch */
    struct push_stats st; /* counters; the "now" fields are computed */
    uint64_t rng;         /* xorshift state for jitter */
    int in_cb;            /* caller callbacks running (push_free forbidden) */
    int freeing;
    int loopback; /* push_new_loopback(): in-memory connections */
};

/* push.c: the dispatch queue, the items, the public API */
int push_backoff_ms(struct push *p, int base, int cap, unsigned n) MDMD_MUSTCHECK;
struct timeval push_tv(int ms);
void push_kick(struct push *p);
void push_copy_ident(char *out, size_t outlen, const char *in, size_t inlen);
void push_item_reset_answer(struct push_item *it);
void push_queue_add(struct push *p, struct push_item *it, int at_head);
void push_item_answered(struct push *p, struct push_item *it, uint32_t h2err);
void push_fail_stale(struct push *p);
void push_requeue(struct push *p, struct push_itemq *orphans);
void push_dispatch(struct push *p);

/* push_cert.c: the push certificate and its topic */
SSL_CTX *push_ssl_ctx_new(const struct conf *cf, char **topic) MDMD_MUSTCHECK;

/* push_conn.c: one HTTP/2 connection slot, its socket, TLS and DNS */
nghttp2_session_callbacks *push_h2_callbacks(void);
int push_set_host(struct push *p, const struct conf *cf) MDMD_MUSTCHECK;
void push_conns_init(struct push *p, int n);
int push_conn_submit(struct push_conn *c, struct push_item *it) MDMD_MUSTCHECK;
unsigned push_conn_free_slots(const struct push_conn *c);
int push_conn_flush(struct push_conn *c); /* -1: c was closed (callers that go on using c check) */
void push_conn_start(struct push_conn *c);
void push_conn_teardown(struct push_conn *c);
void push_conn_stop_new_streams(struct push_conn *c);
void push_dns_release(struct push_dns *d, int in_cb);

#endif
