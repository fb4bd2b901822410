/* push.h: APNs client that wakes MDM devices.  HTTP/2 (nghttp2, confined to
 * push/) over TLS with the MDM push certificate, on the caller's libevent
 * loop.  Single-threaded: call everything on the loop's thread.
 *
 * Connections: apns_connections (default 1) persistent connections to
 * apns_host:apns_port (default api.push.apple.com:443), opened lazily by the
 * first push and kept alive with HTTP/2 PING when idle.  TLS 1.2+, ALPN h2
 * required, SNI = host, the server certificate is verified against the system
 * store (or apns_ca_file) including the host name or IP address.  A host name
 * is resolved with evdns on every connect (never blocking the loop); an IP
 * literal is used as is.  A connection that drops or fails is reopened with
 * exponential backoff while pushes are waiting.
 *
 * Delivery: at-least-once.  A push that got no answer (dropped connection,
 * stream refused by GOAWAY) is sent again; one that got an answer never is.
 * Pushes beyond the peer's SETTINGS_MAX_CONCURRENT_STREAMS wait in a FIFO
 * queue (one small allocation each); the queue is unbounded, so a bulk sender
 * should watch push_stats().queued and pace itself. */
#ifndef MDMD_PUSH_H
#define MDMD_PUSH_H

#include <stdint.h>
#include "../core/util.h"

struct event_base;
struct conf;
struct push;

#define PUSH_TOKEN_HEX_LEN 64 /* APNs device token: 32 bytes as hex */
#define PUSH_MAGIC_MAX 256    /* longest PushMagic accepted (real ones are UUIDs) */

enum push_outcome {
    PUSH_OK,        /* 200: APNs accepted it; apns_id is set */
    PUSH_BAD_TOKEN, /* 410 Unregistered or 400 BadDeviceToken: stop pushing this token */
    PUSH_FAILED,    /* 403, other 4xx, retries exhausted, or no connection for too long */
    PUSH_CANCELED,  /* push_free() ran first */
};

struct push_result { /* borrowed by the callback; copy what you keep */
    enum push_outcome outcome;
    int err;             /* enum mdmd_err: MDMD_OK when an answer came,
                                        MDMD_EUNAVAIL (no connection), MDMD_ECANCELED */
    int status;          /* HTTP status of the last answer, 0 if none */
    int attempts;        /* answers received (1 unless retried) */
    const char *reason;  /* APNs "reason" ("Unregistered"), "" if none */
    const char *apns_id; /* apns-id header of the answer, "" if none */
};

/* Runs exactly once per accepted push, always from the event loop, never from
 * inside push_send().  It may call push_send(); it must not call push_free(). */
typedef void push_done_fn(void *arg, const struct push_result *res);

/* Loads the push certificate (apns_cert_file + apns_key_file, or apns_p12_file
 * + apns_p12_password), takes the topic from the subject UID and builds the
 * TLS context.  NULL (logged) when the certificate is unreadable, has no UID,
 * a UID not starting with "com.apple.mgmt.", or is expired; a certificate
 * expiring within 30 days is logged as a warning.  cf is only read here.
 * No network traffic until the first push_send(). */
struct push *push_new(struct event_base *base, const struct conf *cf) MDMD_MUSTCHECK;
/* NULL-safe.  Closes the connections; every pending callback runs with
 * PUSH_CANCELED / MDMD_ECANCELED before it returns. */
void push_free(struct push *p);

/* The push certificate's topic (the subject UID); valid as long as p and
 * until the next push_cert_install() (read it at the time of use).
 * Devices whose check-in Topic differs cannot be pushed with this certificate. */
const char *push_topic(const struct push *p);
/* The push certificate's notAfter, seconds since the epoch (0: unknown). */
int64_t push_not_after(const struct push *p);

/* A push certificate loaded and checked (push_new()'s checks) but not yet in
 * use: a renewal is looked at (its topic against the fleet's) before it
 * replaces the running one.  Owned by the caller until installed. */
struct push_cert;
/* Loads cf's apns_cert_file/apns_key_file or apns_p12_file.  NULL: logged. */
struct push_cert *push_cert_load(const struct conf *cf) MDMD_MUSTCHECK;
void push_cert_free(struct push_cert *c); /* NULL-safe */
const char *push_cert_topic(const struct push_cert *c);
int64_t push_cert_not_after(const struct push_cert *c);
/* 1 when c is the very certificate p pushes with (same DER). */
int push_cert_same(const struct push *p, const struct push_cert *c) MDMD_MUSTCHECK;
/* p pushes with c from now on and owns it: new connections use it, open ones
 * finish their streams and reconnect (GOAWAY).  push_topic() changes. */
void push_cert_install(struct push *p, struct push_cert *c);

/* Queues one push.  token_hex: 64 hex digits (either case); push_magic: the
 * device's PushMagic (1 to PUSH_MAGIC_MAX bytes, JSON-escaped here).  Both
 * are copied.  0: cb will run exactly once.  -1: rejected at once (bad token
 * or magic format, or p is being freed; logged at debug), cb never runs. */
int push_send(struct push *p, const char *token_hex, const char *push_magic, push_done_fn *cb,
              void *arg) MDMD_MUSTCHECK;

struct push_stats {
    uint64_t sent;       /* requests written, retries and resends included */
    uint64_t ok;         /* outcomes: PUSH_OK */
    uint64_t bad_token;  /* outcomes: PUSH_BAD_TOKEN */
    uint64_t failed;     /* outcomes: PUSH_FAILED (forbidden included) */
    uint64_t canceled;   /* outcomes: PUSH_CANCELED */
    uint64_t retried;    /* 429/5xx answers (or resets) that were retried */
    uint64_t resent;     /* unanswered streams sent again (GOAWAY, dropped connection) */
    uint64_t forbidden;  /* 403 answers */
    uint64_t goaway;     /* GOAWAY frames received */
    uint64_t reconnects; /* connection attempts after the first of each slot */
    uint64_t queued;     /* now: waiting for a stream slot */
    uint64_t retrying;   /* now: waiting for a retry backoff to expire */
    uint64_t inflight;   /* now: streams open */
    int connected;       /* now: 1 when at least one connection can take streams */
    int connections;     /* now: connections that can take streams */
};
void push_stats(const struct push *p, struct push_stats *out);

/* Timing and limits.  The defaults suit APNs; tests shorten them.  Values
 * <= 0 in push_set_tuning() keep the current setting. */
struct push_tuning {
    int retry_base_ms;      /* 100: first retry delay, doubled each time, with jitter */
    int retry_cap_ms;       /* 10000 */
    int max_attempts;       /* 5: answers (429/500/503) before PUSH_FAILED */
    int reconnect_base_ms;  /* 100: reconnect delay after a failed connection, doubled */
    int reconnect_cap_ms;   /* 30000 */
    int connect_timeout_ms; /* 10000: TCP + TLS + the server's SETTINGS */
    int ping_interval_ms;   /* 60000: PING after this long with nothing read; a
                                connection still silent one interval later is dropped
                                and its unanswered pushes are resent */
    int unavail_fail_ms;    /* 60000: queued pushes older than this fail with
                                MDMD_EUNAVAIL when a connection attempt fails */
    int max_streams;        /* 1000: per connection, below the peer's own limit */
};
void push_get_tuning(const struct push *p, struct push_tuning *out);
void push_set_tuning(struct push *p, const struct push_tuning *t);

/* ---- for tests only (test/fuzz/fuzz_apns.c) ------------------------------
 * A push without certificate, TLS, DNS or sockets: each connection is an
 * in-memory bufferevent pair that comes up (from the loop, as a handshake
 * would) when pushes wait, then runs the real HTTP/2 client on it.  Topic
 * com.apple.mgmt.loopback.  Released by push_free(); everything else in
 * this header applies unchanged. */
struct push *push_new_loopback(struct event_base *base, int connections) MDMD_MUSTCHECK;
/* Hands len bytes to connection idx as if read from APNs (copied; handled
 * from the loop, like a real read).  What the client sends is discarded.
 * -1: p is not a loopback push, or that connection is down. */
int push_loopback_recv(struct push *p, int idx, const void *data, size_t len) MDMD_MUSTCHECK;

#endif
