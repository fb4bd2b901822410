/* push.c: APNs over HTTP/2.  One struct push owns a TLS context built from
 * the push certificate, a FIFO of pushes waiting for a stream slot, a list of
 * pushes waiting for a retry backoff, and apns_connections connection slots.
 *
 * Every push is one struct push_item that sits in exactly one list at a time:
 * p->queue, p->retry, or its connection's streams.  Connections are never
 * closed from inside an nghttp2 callback (the session would be deleted under
 * nghttp2's feet): callbacks only move items between lists and run the
 * caller's callback; closing happens after nghttp2_session_mem_recv/mem_send
 * return, or from libevent callbacks. */
#include "push.h"

#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <jansson.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "../core/conf.h"
#include "../core/log.h"

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

struct push_item {                      /* one push, from push_send() to its callback */
    TAILQ_ENTRY(push_item) link;        /* p->queue, p->retry or conn->streams */
    struct push *p;
    push_done_fn *cb;
    void *arg;
    struct push_conn *conn;             /* while in flight */
    struct event *timer;                /* while waiting for a retry */
    int64_t t0;                         /* util_mono_ms() at push_send() */
    int32_t stream_id;                  /* while in flight */
    uint8_t where;                      /* enum push_where */
    uint8_t attempts;                   /* answers (or resets) received */
    uint16_t status;                    /* :status of the current answer, 0 = none yet */
    uint16_t body_len;
    uint16_t body_off;                  /* bytes handed to nghttp2 */
    uint16_t resp_len;
    char *resp;                         /* error body; NULL for 200 */
    char apns_id[40];                   /* "" until an answer carries one */
    char path[sizeof PUSH_PATH_PREFIX + PUSH_TOKEN_HEX_LEN];
    char expiration[24];                /* decimal epoch seconds */
    char body[];                        /* {"mdm":"<magic>"} */
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

struct push_conn {                      /* one connection slot; reused across reconnects */
    struct push *p;
    int idx;
    enum push_conn_state state;
    struct bufferevent *bev;            /* openssl bufferevent, owns the SSL and the fd */
    struct bufferevent *peer;           /* loopback only: the server's end of the pair */
    nghttp2_session *h2;
    struct push_lookup *lookup;         /* while RESOLVING */
    struct event *timer;                /* reconnect backoff */
    struct event *ping;                 /* persist, every ping_interval_ms while up */
    struct push_itemq streams;          /* submitted, no final answer yet */
    unsigned nstreams;
    unsigned fails;                     /* consecutive connections that answered nothing */
    unsigned opened;                    /* connection attempts of this slot */
    uint64_t answered;                  /* streams answered on the current connection */
    int rx;                             /* bytes read since the last ping tick */
    int ping_out;                       /* our PING is unanswered */
    int dirty;                          /* submitted since the last flush */
};

/* evdns calls back after a cancel, later, from the loop: the lookup and the
 * evdns_base must outlive the connection and even the struct push, so they
 * are reference-counted here rather than freed with their owner. */
struct push_dns {
    struct evdns_base *dns;
    struct event_base *base;
    unsigned pending;                   /* lookups whose callback has not run */
    int orphaned;                       /* push_free() ran; free at pending == 0 */
};

struct push_lookup {
    struct push_dns *d;
    struct push_conn *c;                /* NULL once canceled */
    struct evdns_getaddrinfo_request *req;
};

struct push {
    struct event_base *base;
    SSL_CTX *ssl;
    nghttp2_session_callbacks *h2cb;
    struct push_dns *dns;               /* NULL when the host is an IP literal */
    struct sockaddr_storage addr;       /* the IP literal, when dns == NULL */
    ev_socklen_t addrlen;
    char *topic;
    char *host;
    char *authority;                    /* :authority, host[:port] */
    int port;
    int expiration_s;
    struct push_tuning tun;
    struct push_conn *conns;
    int nconns;
    struct push_itemq queue;            /* FIFO waiting for a stream slot */
    struct push_itemq retry;            /* waiting for their retry timer */
    uint64_t nqueue, nretry;
    struct event *kick;                 /* deferred dispatch */
    struct push_stats st;               /* counters; the "now" fields are computed */
    uint64_t rng;                       /* xorshift state for jitter */
    int in_cb;                          /* caller callbacks running (push_free forbidden) */
    int freeing;
    int loopback;                       /* push_new_loopback(): in-memory connections */
};

static void push_dispatch(struct push *p);
static void push_conn_close(struct push_conn *c, int lvl, const char *why);
static void push_item_answered(struct push *p, struct push_item *it, uint32_t h2err);

static const struct push_tuning push_default_tuning = {
    .retry_base_ms = 100,
    .retry_cap_ms = 10000,
    .max_attempts = 5,
    .reconnect_base_ms = 100,
    .reconnect_cap_ms = 30000,
    .connect_timeout_ms = 10000,
    .ping_interval_ms = 60000,
    .unavail_fail_ms = 60000,
    .max_streams = 1000,
};

/* ------------------------------------------------------------------------ */
/* small helpers */

static uint32_t push_rand(struct push *p)
{
    uint64_t x = p->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    p->rng = x;
    return (uint32_t)((x * 0x2545F4914F6CDD1DULL) >> 32);
}

/* base * 2^(n-1) capped, then drawn from [d/2, d] so that pushes failed by
 * the same burst do not all come back at the same instant. */
static int push_backoff_ms(struct push *p, int base, int cap, unsigned n)
{
    int64_t d = base;
    for (unsigned i = 1; i < n && d < cap; i++)
        d *= 2;
    if (d > cap)
        d = cap;
    if (d < 2)
        return (int)d;
    return (int)(d / 2 + push_rand(p) % (uint32_t)(d / 2 + 1));
}

static struct timeval push_tv(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

static void push_kick(struct push *p)
{
    event_active(p->kick, EV_TIMEOUT, 1);
}

/* Keeps only identifier characters, so an APNs reason is safe in key=value logs. */
static void push_copy_ident(char *out, size_t outlen, const char *in, size_t inlen)
{
    size_t n = 0;
    for (size_t i = 0; i < inlen && n + 1 < outlen; i++) {
        char ch = in[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '_' || ch == '-' || ch == '.')
            out[n++] = ch;
    }
    if (outlen > 0)
        out[n] = '\0';
}

/* ------------------------------------------------------------------------ */
/* the push certificate */

static char *push_cert_topic(X509 *x)
{
    X509_NAME *name = X509_get_subject_name(x);
    int i = X509_NAME_get_index_by_NID(name, NID_userId, -1);
    if (i < 0)
        return NULL;
    ASN1_STRING *d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    unsigned char *u = NULL;
    int len = ASN1_STRING_to_UTF8(&u, d);
    if (len <= 0)
        return NULL;
    char *topic = NULL;
    if (memchr(u, '\0', (size_t)len) == NULL)
        topic = xstrndup((const char *)u, (size_t)len);
    OPENSSL_free(u);
    return topic;
}

/* Refuses what APNs would refuse anyway, at startup rather than per push. */
static int push_cert_check(X509 *x, char **topic_out)
{
    char *topic = push_cert_topic(x);
    if (topic == NULL) {
        log_err("event=push_cert_refused why=no_subject_uid");
        return -1;
    }
    if (strncmp(topic, PUSH_TOPIC_PREFIX, strlen(PUSH_TOPIC_PREFIX)) != 0) {
        char safe[80];
        push_copy_ident(safe, sizeof(safe), topic, strlen(topic));
        log_err("event=push_cert_refused why=not_mdm_topic topic=%s", safe);
        free(topic);
        return -1;
    }
    int days = 0, secs = 0;
    if (!ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)) || days < 0 || secs < 0) {
        log_err("event=push_cert_refused why=expired topic=%s", topic);
        free(topic);
        return -1;
    }
    if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0)
        log_warn("event=push_cert_not_yet_valid topic=%s", topic);
    if (days < PUSH_EXPIRY_WARN_DAYS)
        log_warn("event=push_cert_expiring topic=%s days_left=%d", topic, days);
    else
        log_info("event=push_cert topic=%s days_left=%d", topic, days);
    *topic_out = topic;
    return 0;
}

static int push_load_pem(SSL_CTX *ctx, const struct conf *cf)
{
    const char *key = cf->apns_key_file && *cf->apns_key_file ? cf->apns_key_file
                                                                : cf->apns_cert_file;
    if (SSL_CTX_use_certificate_chain_file(ctx, cf->apns_cert_file) != 1) {
        log_ssl(LOG_LVL_ERR, "event=push_cert_load_failed what=apns_cert_file");
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        log_ssl(LOG_LVL_ERR, "event=push_cert_load_failed what=apns_key_file");
        return -1;
    }
    return 0;
}

/* Keychain exports often use RC2/3DES, which OpenSSL 3 keeps in the legacy
 * provider: load it only when a first parse fails, and only for the parse. */
static int push_p12_parse(const char *path, const char *pass, EVP_PKEY **key, X509 **cert,
                          STACK_OF(X509) **chain)
{
    OSSL_PROVIDER *legacy = NULL, *dflt = NULL;
    int rc = -1;
    for (int round = 0; round < 2 && rc < 0; round++) {
        BIO *b = BIO_new_file(path, "rb");
        PKCS12 *p12 = b ? d2i_PKCS12_bio(b, NULL) : NULL;
        BIO_free(b);
        if (p12 == NULL)
            break;
        if (PKCS12_parse(p12, pass ? pass : "", key, cert, chain) == 1)
            rc = 0;
        PKCS12_free(p12);
        if (rc == 0 || round > 0)
            break;
        /* Loading legacy explicitly would hide the default provider. */
        dflt = OSSL_PROVIDER_load(NULL, "default");
        legacy = OSSL_PROVIDER_load(NULL, "legacy");
        if (legacy == NULL)
            break;
        ERR_clear_error();
    }
    if (legacy != NULL)
        OSSL_PROVIDER_unload(legacy);
    if (dflt != NULL)
        OSSL_PROVIDER_unload(dflt);
    return rc;
}

static int push_load_p12(SSL_CTX *ctx, const struct conf *cf)
{
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *chain = NULL;
    int rc = -1;
    if (push_p12_parse(cf->apns_p12_file, cf->apns_p12_password, &key, &cert, &chain) < 0 ||
        cert == NULL || key == NULL) {
        log_ssl(LOG_LVL_ERR, "event=push_cert_load_failed what=apns_p12_file");
        goto out;
    }
    if (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1) {
        log_ssl(LOG_LVL_ERR, "event=push_cert_load_failed what=apns_p12_file");
        goto out;
    }
    for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++)
        if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(chain, i)) != 1)
            goto out;
    rc = 0;
out:
    EVP_PKEY_free(key);
    X509_free(cert);
    sk_X509_pop_free(chain, X509_free);
    return rc;
}

static int push_ssl_trust(SSL_CTX *ctx, const struct conf *cf)
{
    int ok = cf->apns_ca_file && *cf->apns_ca_file
                 ? SSL_CTX_load_verify_locations(ctx, cf->apns_ca_file, NULL)
                 : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        log_ssl(LOG_LVL_ERR, "event=push_ca_load_failed");
        return -1;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return 0;
}

static SSL_CTX *push_ssl_ctx_new(const struct conf *cf, char **topic)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    int p12 = cf->apns_p12_file && *cf->apns_p12_file;
    if (ctx == NULL)
        return NULL;
    /* HTTP/2 forbids renegotiation and compression (RFC 7540 9.2). */
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (!p12 && !(cf->apns_cert_file && *cf->apns_cert_file)) {
        log_err("event=push_cert_refused why=no_apns_cert_file_or_apns_p12_file");
        goto fail;
    }
    if ((p12 ? push_load_p12(ctx, cf) : push_load_pem(ctx, cf)) < 0)
        goto fail;
    if (SSL_CTX_check_private_key(ctx) != 1) {
        log_ssl(LOG_LVL_ERR, "event=push_cert_refused why=key_does_not_match");
        goto fail;
    }
    if (push_cert_check(SSL_CTX_get0_certificate(ctx), topic) < 0)
        goto fail;
    if (SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)"\x02h2", 3) != 0 ||
        push_ssl_trust(ctx, cf) < 0) {
        free(*topic);
        *topic = NULL;
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* items */

static int push_token_ok(const char *hex)
{
    size_t n = 0;
    for (; hex[n] != '\0'; n++) {
        char ch = hex[n];
        if (n >= PUSH_TOKEN_HEX_LEN ||
            !((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F')))
            return 0;
    }
    return n == PUSH_TOKEN_HEX_LEN;
}

/* jansson validates UTF-8 and escapes; json_dumpb avoids a heap copy. */
static int push_body_build(const char *magic, char *out, size_t outlen, size_t *len)
{
    size_t mlen = strlen(magic);
    if (mlen == 0 || mlen > PUSH_MAGIC_MAX)
        return -1;
    json_t *j = json_pack("{s:s}", "mdm", magic);
    if (j == NULL)
        return -1;
    size_t n = json_dumpb(j, out, outlen, JSON_COMPACT);
    json_decref(j);
    if (n == 0 || n > outlen)
        return -1;
    *len = n;
    return 0;
}

static struct push_item *push_item_new(struct push *p, const char *token, const char *body,
                                       size_t blen)
{
    struct push_item *it = xcalloc(1, sizeof(*it) + blen);
    it->p = p;
    it->t0 = util_mono_ms();
    it->where = PUSH_IN_NONE;
    memcpy(it->path, PUSH_PATH_PREFIX, strlen(PUSH_PATH_PREFIX));
    for (size_t i = 0; i < PUSH_TOKEN_HEX_LEN; i++) {
        char ch = token[i];
        it->path[strlen(PUSH_PATH_PREFIX) + i] = (ch >= 'A' && ch <= 'F') ? (char)(ch + 32) : ch;
    }
    snprintf(it->expiration, sizeof(it->expiration), "%lld",
             (long long)time(NULL) + p->expiration_s);
    memcpy(it->body, body, blen);
    it->body_len = (uint16_t)blen;
    return it;
}

static const char *push_item_token(const struct push_item *it)
{
    return it->path + strlen(PUSH_PATH_PREFIX);
}

static void push_item_reset_answer(struct push_item *it)
{
    free(it->resp);
    it->resp = NULL;
    it->resp_len = 0;
    it->status = 0;
    it->apns_id[0] = '\0';
    it->body_off = 0;
}

static void push_item_free(struct push_item *it)
{
    if (it->timer != NULL)
        event_free(it->timer);
    free(it->resp);
    free(it);
}

static void push_item_count(struct push *p, enum push_outcome o)
{
    switch (o) {
    case PUSH_OK: p->st.ok++; break;
    case PUSH_BAD_TOKEN: p->st.bad_token++; break;
    case PUSH_FAILED: p->st.failed++; break;
    case PUSH_CANCELED: p->st.canceled++; break;
    }
}

/* The one place a caller's callback runs; the item is gone afterwards. */
static void push_item_finish(struct push *p, struct push_item *it, enum push_outcome o, int err,
                             const char *reason)
{
    struct push_result r = {
        .outcome = o,
        .err = err,
        .status = it->status,
        .attempts = it->attempts,
        .reason = reason ? reason : "",
        .apns_id = it->apns_id,
    };
    push_item_count(p, o);
    if (o == PUSH_BAD_TOKEN)
        log_info("event=push_bad_token token=%.8s status=%d reason=%s", push_item_token(it),
                 r.status, r.reason);
    else if (o == PUSH_FAILED && r.status != 403)
        log_warn("event=push_failed token=%.8s status=%d reason=%s attempts=%d err=%s",
                 push_item_token(it), r.status, r.reason, r.attempts, mdmd_strerror(err));
    it->where = PUSH_IN_NONE;
    p->in_cb++;
    it->cb(it->arg, &r);
    p->in_cb--;
    push_item_free(it);
}

static void push_queue_add(struct push *p, struct push_item *it, int at_head)
{
    it->where = PUSH_IN_QUEUE;
    if (at_head)
        TAILQ_INSERT_HEAD(&p->queue, it, link);
    else
        TAILQ_INSERT_TAIL(&p->queue, it, link);
    p->nqueue++;
}

static void push_item_on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct push_item *it = arg;
    struct push *p = it->p;
    TAILQ_REMOVE(&p->retry, it, link);
    p->nretry--;
    event_free(it->timer);
    it->timer = NULL;
    push_queue_add(p, it, 0);
    push_dispatch(p);
}

/* 429/5xx or a reset stream: wait, then queue again; or give up. */
static void push_item_retry(struct push *p, struct push_item *it, const char *reason)
{
    if (it->attempts >= p->tun.max_attempts) {
        push_item_finish(p, it, PUSH_FAILED, MDMD_OK, reason);
        return;
    }
    int ms = push_backoff_ms(p, p->tun.retry_base_ms, p->tun.retry_cap_ms, it->attempts);
    struct timeval tv = push_tv(ms);
    p->st.retried++;
    log_debug("event=push_retry token=%.8s status=%d attempt=%d delay_ms=%d",
              push_item_token(it), it->status, it->attempts, ms);
    it->where = PUSH_IN_RETRY;
    it->timer = evtimer_new(p->base, push_item_on_retry, it);
    TAILQ_INSERT_TAIL(&p->retry, it, link);
    p->nretry++;
    evtimer_add(it->timer, &tv);
}

static void push_item_reason(const struct push_item *it, char *out, size_t outlen)
{
    json_error_t e;
    out[0] = '\0';
    if (it->resp == NULL)
        return;
    json_t *j = json_loadb(it->resp, it->resp_len, 0, &e);
    const char *r = json_string_value(json_object_get(j, "reason"));
    if (r != NULL)
        push_copy_ident(out, outlen, r, strlen(r));
    json_decref(j);
}

/* A final answer (or a reset) for a stream that is no longer in flight. */
static void push_item_answered(struct push *p, struct push_item *it, uint32_t h2err)
{
    char reason[64];
    if (it->status == 0 && h2err == NGHTTP2_REFUSED_STREAM) {
        /* Refused (GOAWAY or RST): the server did not process it, send again. */
        p->st.resent++;
        push_queue_add(p, it, 1);
        push_kick(p);
        return;
    }
    it->attempts++;
    push_item_reason(it, reason, sizeof(reason));
    int s = it->status;
    if (s == 200)
        push_item_finish(p, it, PUSH_OK, MDMD_OK, reason);
    else if (s == 410 || (s == 400 && strcmp(reason, "BadDeviceToken") == 0))
        push_item_finish(p, it, PUSH_BAD_TOKEN, MDMD_OK, reason);
    else if (s == 0 || s == 429 || s == 500 || s == 503)
        push_item_retry(p, it, reason);
    else {
        if (s == 403) {
            p->st.forbidden++;
            log_err("event=push_forbidden token=%.8s status=403 reason=%s "
                    "hint=check_push_certificate",
                    push_item_token(it), reason);
        }
        push_item_finish(p, it, PUSH_FAILED, MDMD_OK, reason);
    }
}

/* ------------------------------------------------------------------------ */
/* nghttp2 callbacks (user_data = struct push_conn) */

static ssize_t push_h2_read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
                                 uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct push_item *it = src->ptr;
    size_t n = (size_t)(it->body_len - it->body_off);
    if (n > len)
        n = len;
    memcpy(buf, it->body + it->body_off, n);
    it->body_off = (uint16_t)(it->body_off + n);
    if (it->body_off == it->body_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static int push_h2_on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                             size_t namelen, const uint8_t *value, size_t valuelen,
                             uint8_t flags, void *ud)
{
    /* After an interim 1xx answer nghttp2 files the final one under
     * HCAT_HEADERS; trailers are HCAT_HEADERS too, but never carry :status. */
    if (frame->hd.type != NGHTTP2_HEADERS || (frame->headers.cat != NGHTTP2_HCAT_RESPONSE &&
                                              frame->headers.cat != NGHTTP2_HCAT_HEADERS))
        return 0;
    struct push_item *it = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
    if (it == NULL)
        return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        int st = 0;
        for (size_t i = 0; i < valuelen && valuelen == 3; i++)
            st = (value[i] >= '0' && value[i] <= '9') ? st * 10 + (value[i] - '0') : -1000;
        if (st >= 100 && st <= 199)
            return 0; /* interim: not an answer, the push may still be resent */
        it->status = st >= 200 && st <= 999 ? (uint16_t)st : 599; /* garbage: server error */
    } else if (namelen == 7 && memcmp(name, "apns-id", 7) == 0 && it->status != 0 &&
               it->apns_id[0] == '\0') {
        /* Pseudo-headers come first: this is the final answer's own apns-id. */
        push_copy_ident(it->apns_id, sizeof(it->apns_id), (const char *)value, valuelen);
    }
    return 0;
}

static int push_h2_on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                           size_t len, void *ud)
{
    struct push_item *it = nghttp2_session_get_stream_user_data(s, id);
    if (it == NULL || it->resp_len >= PUSH_RESP_MAX)
        return 0;
    if (len > (size_t)(PUSH_RESP_MAX - it->resp_len))
        len = (size_t)(PUSH_RESP_MAX - it->resp_len);
    it->resp = xrealloc(it->resp, (size_t)it->resp_len + len);
    memcpy(it->resp + it->resp_len, data, len);
    it->resp_len = (uint16_t)(it->resp_len + len);
    return 0;
}

static void push_conn_unlink(struct push_conn *c, struct push_item *it)
{
    TAILQ_REMOVE(&c->streams, it, link);
    c->nstreams--;
    it->conn = NULL;
    it->where = PUSH_IN_NONE;
}

static int push_h2_on_stream_close(nghttp2_session *s, int32_t id, uint32_t err, void *ud)
{
    struct push_conn *c = ud;
    struct push_item *it = nghttp2_session_get_stream_user_data(s, id);
    if (it == NULL || it->conn != c)
        return 0;
    push_conn_unlink(c, it);
    if (it->status != 0)
        c->answered++;
    push_item_answered(c->p, it, err);
    return 0;
}

/* A request HEADERS nghttp2 could not send (GOAWAY came first): its stream
 * never existed, so find the item by id and queue it again. */
static int push_h2_on_not_send(nghttp2_session *s, const nghttp2_frame *frame, int lib_err,
                               void *ud)
{
    struct push_conn *c = ud;
    struct push_item *it;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    TAILQ_FOREACH(it, &c->streams, link) {
        if (it->stream_id == frame->hd.stream_id) {
            nghttp2_session_set_stream_user_data(s, it->stream_id, NULL);
            push_conn_unlink(c, it);
            c->p->st.resent++;
            push_queue_add(c->p, it, 1);
            push_kick(c->p);
            break;
        }
    }
    return 0;
}

static void push_conn_on_goaway(struct push_conn *c, const nghttp2_goaway *g)
{
    char why[64];
    push_copy_ident(why, sizeof(why), (const char *)g->opaque_data, g->opaque_data_len);
    c->p->st.goaway++;
    log_info("event=apns_goaway conn=%d last_stream_id=%d error=%s debug=%s", c->idx,
             g->last_stream_id, nghttp2_http2_strerror(g->error_code), why);
    if (c->state == PUSH_CONN_READY || c->state == PUSH_CONN_SETTINGS)
        c->state = PUSH_CONN_DRAINING;
}

static int push_h2_on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    struct push_conn *c = ud;
    if (frame->hd.type == NGHTTP2_SETTINGS && !(frame->hd.flags & NGHTTP2_FLAG_ACK) &&
        c->state == PUSH_CONN_SETTINGS) {
        c->state = PUSH_CONN_READY;
        bufferevent_set_timeouts(c->bev, NULL, NULL); /* PING watches it from now on */
        log_info("event=apns_connected conn=%d max_streams=%u", c->idx,
                 nghttp2_session_get_remote_settings(s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS));
    } else if (frame->hd.type == NGHTTP2_GOAWAY) {
        push_conn_on_goaway(c, &frame->goaway);
    }
    return 0;
}

static nghttp2_session_callbacks *push_h2_callbacks(void)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        die("event=out_of_memory what=nghttp2_callbacks");
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, push_h2_on_frame_recv);
    nghttp2_session_callbacks_set_on_header_callback(cb, push_h2_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, push_h2_on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, push_h2_on_stream_close);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cb, push_h2_on_not_send);
    return cb;
}

/* ------------------------------------------------------------------------ */
/* connection: I/O */

#define PUSH_NV(n, v, vlen)                                                                    \
    {                                                                                          \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vlen),                                 \
            NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE                       \
    }

/* The name/value bytes are not copied: they live in p and in the item,
 * which both outlive the HEADERS frame. */
static int push_conn_submit(struct push_conn *c, struct push_item *it)
{
    struct push *p = c->p;
    const nghttp2_nv nv[] = {
        PUSH_NV(":method", "POST", 4),
        PUSH_NV(":scheme", "https", 5),
        PUSH_NV(":authority", p->authority, strlen(p->authority)),
        PUSH_NV(":path", it->path, strlen(it->path)),
        PUSH_NV("apns-topic", p->topic, strlen(p->topic)),
        PUSH_NV("apns-push-type", "mdm", 3),
        PUSH_NV("apns-priority", "10", 2),
        PUSH_NV("apns-expiration", it->expiration, strlen(it->expiration)),
    };
    nghttp2_data_provider dp = {.source.ptr = it, .read_callback = push_h2_read_body};
    push_item_reset_answer(it);
    int32_t id = nghttp2_submit_request(c->h2, NULL, nv, ARRAY_LEN(nv), &dp, it);
    if (id < 0) {
        log_warn("event=apns_submit_failed conn=%d error=\"%s\"", c->idx, nghttp2_strerror(id));
        return -1;
    }
    it->stream_id = id;
    it->conn = c;
    it->where = PUSH_IN_FLIGHT;
    TAILQ_INSERT_TAIL(&c->streams, it, link);
    c->nstreams++;
    c->dirty = 1;
    p->st.sent++;
    return 0;
}

static unsigned push_conn_free_slots(const struct push_conn *c)
{
    if (c->state != PUSH_CONN_READY)
        return 0;
    uint32_t max = nghttp2_session_get_remote_settings(c->h2,
                                                       NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    if (max > (uint32_t)c->p->tun.max_streams)
        max = (uint32_t)c->p->tun.max_streams;
    return max > c->nstreams ? max - c->nstreams : 0;
}

/* Moves nghttp2's pending frames into the socket buffer.  -1: c was closed. */
static int push_conn_flush(struct push_conn *c)
{
    if (c->h2 == NULL)
        return 0;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    c->dirty = 0;
    while (evbuffer_get_length(out) < PUSH_OUT_HIGH) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->h2, &data);
        if (n < 0) {
            push_conn_close(c, LOG_LVL_WARN, nghttp2_strerror((int)n));
            return -1;
        }
        if (n == 0)
            break;
        evbuffer_add(out, data, (size_t)n);
    }
    if (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2) &&
        evbuffer_get_length(out) == 0) {
        push_conn_close(c, LOG_LVL_INFO, "done");
        return -1;
    }
    return 0;
}

static void push_conn_on_read(struct bufferevent *bev, void *arg)
{
    struct push_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    c->rx = 1;
    c->ping_out = 0;
    while (c->h2 != NULL && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        ssize_t n = nghttp2_session_mem_recv(c->h2, v.iov_base, v.iov_len);
        if (n < 0) {
            push_conn_close(c, LOG_LVL_WARN, nghttp2_strerror((int)n));
            return;
        }
        evbuffer_drain(in, (size_t)n);
    }
    /* Answers freed slots: fill them before writing, so one flush carries all. */
    push_dispatch(c->p);
    push_conn_flush(c);
}

static void push_conn_on_write(struct bufferevent *bev, void *arg)
{
    push_conn_flush(arg);
}

static void push_conn_on_ping(evutil_socket_t fd, short what, void *arg)
{
    struct push_conn *c = arg;
    if (c->h2 == NULL)
        return;
    if (c->rx) {
        c->rx = 0;
        return;
    }
    if (c->ping_out) {
        push_conn_close(c, LOG_LVL_WARN, "ping_timeout");
        return;
    }
    if (nghttp2_submit_ping(c->h2, NGHTTP2_FLAG_NONE, NULL) == 0)
        c->ping_out = 1;
    push_conn_flush(c);
}

/* ------------------------------------------------------------------------ */
/* connection: lifecycle */

static int push_conn_h2_start(struct push_conn *c)
{
    nghttp2_settings_entry set[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 0}, /* we accept no server streams */
    };
    if (nghttp2_session_client_new(&c->h2, c->p->h2cb, c) != 0)
        die("event=out_of_memory what=nghttp2_session");
    if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, set, ARRAY_LEN(set)) != 0)
        return -1;
    c->state = PUSH_CONN_SETTINGS;
    c->rx = c->ping_out = 0;
    struct timeval tv = push_tv(c->p->tun.ping_interval_ms);
    evtimer_add(c->ping, &tv);
    bufferevent_setwatermark(c->bev, EV_WRITE, PUSH_OUT_LOW, 0);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    /* The server's SETTINGS may have been read before this event ran. */
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
        push_conn_on_read(c->bev, c);
        return c->state == PUSH_CONN_DOWN ? -1 : 0;
    }
    return push_conn_flush(c);
}

static void push_conn_on_tls_up(struct push_conn *c)
{
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    const unsigned char *alpn = NULL;
    unsigned alpn_len = 0;
    int one = 1;
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    if (alpn_len != 2 || memcmp(alpn, "h2", 2) != 0) {
        push_conn_close(c, LOG_LVL_ERR, "no_alpn_h2");
        return;
    }
    /* Small frames must not wait for Nagle against delayed ACKs. */
    setsockopt(bufferevent_getfd(c->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (push_conn_h2_start(c) < 0 && c->state != PUSH_CONN_DOWN)
        push_conn_close(c, LOG_LVL_WARN, "h2_start_failed");
}

static void push_conn_log_tls(struct push_conn *c, char *buf, size_t len)
{
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    unsigned long e;
    size_t n = 0;
    buf[0] = '\0';
    long vr = SSL_get_verify_result(ssl);
    if (vr != X509_V_OK)
        n += (size_t)snprintf(buf, len, "verify:%s", X509_verify_cert_error_string(vr));
    while ((e = bufferevent_get_openssl_error(c->bev)) != 0 && n + 2 < len) {
        const char *r = ERR_reason_error_string(e);
        if (r != NULL)
            n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? ";" : "", r);
        else
            n += (size_t)snprintf(buf + n, len - n, "%s%#lx", n ? ";" : "", e);
    }
    if (n >= len)
        buf[len - 1] = '\0';
}

static void push_conn_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct push_conn *c = arg;
    char tls[256], why[400];
    if (what & BEV_EVENT_CONNECTED) {
        if (c->state == PUSH_CONN_CONNECTING)
            push_conn_on_tls_up(c);
        return;
    }
    int err = EVUTIL_SOCKET_ERROR();
    push_conn_log_tls(c, tls, sizeof(tls));
    snprintf(why, sizeof(why), "%s tls=\"%s\" errno=\"%s\"",
             (what & BEV_EVENT_TIMEOUT) ? "timeout" : (what & BEV_EVENT_EOF) ? "eof" : "error",
             tls, (what & BEV_EVENT_ERROR) && err ? evutil_socket_error_to_string(err) : "");
    push_conn_close(c, LOG_LVL_WARN, why);
}

static SSL *push_conn_ssl_new(struct push_conn *c)
{
    struct push *p = c->p;
    SSL *ssl = SSL_new(p->ssl);
    if (ssl == NULL)
        return NULL;
    X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
    int ok;
    if (p->dns == NULL) {
        ok = X509_VERIFY_PARAM_set1_ip_asc(vp, p->host); /* no SNI for IP literals (RFC 6066) */
    } else {
        X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = SSL_set_tlsext_host_name(ssl, p->host) == 1 && SSL_set1_host(ssl, p->host) == 1;
    }
    if (!ok) {
        log_ssl(LOG_LVL_ERR, "event=apns_ssl_setup_failed");
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

static void push_conn_connect(struct push_conn *c, const struct sockaddr *sa, int salen)
{
    struct push *p = c->p;
    c->state = PUSH_CONN_CONNECTING; /* from here on, failures go through close */
    SSL *ssl = push_conn_ssl_new(c);
    if (ssl == NULL) {
        push_conn_close(c, LOG_LVL_ERR, "ssl_new");
        return;
    }
    c->bev = bufferevent_openssl_socket_new(p->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                            BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (c->bev == NULL) {
        SSL_free(ssl);
        push_conn_close(c, LOG_LVL_ERR, "bufferevent_new");
        return;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    bufferevent_setcb(c->bev, push_conn_on_read, push_conn_on_write, push_conn_on_event, c);
    struct timeval tv = push_tv(p->tun.connect_timeout_ms);
    bufferevent_set_timeouts(c->bev, &tv, &tv);
    if (bufferevent_socket_connect(c->bev, sa, salen) < 0)
        push_conn_close(c, LOG_LVL_WARN, "connect");
}

/* push_new_loopback(): a connection is a bufferevent pair instead of TLS
 * over TCP, and comes up from the loop as a handshake would; from there on
 * the real HTTP/2 path runs.  The server's end (c->peer) drops what the
 * client sends; push_loopback_recv() writes there what APNs would send. */
static void push_loopback_on_peer_read(struct bufferevent *bev, void *arg)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    evbuffer_drain(in, evbuffer_get_length(in));
}

static void push_loopback_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct push_conn *c = arg;
    if (!(what & BEV_EVENT_CONNECTED)) {
        push_conn_close(c, LOG_LVL_WARN, "loopback_eof");
        return;
    }
    if (c->state == PUSH_CONN_CONNECTING && push_conn_h2_start(c) < 0 &&
        c->state != PUSH_CONN_DOWN)
        push_conn_close(c, LOG_LVL_WARN, "h2_start_failed");
}

static void push_conn_loopback(struct push_conn *c)
{
    struct bufferevent *pair[2];
    c->state = PUSH_CONN_CONNECTING;
    if (bufferevent_pair_new(c->p->base, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS,
                             pair) < 0) {
        push_conn_close(c, LOG_LVL_ERR, "bufferevent_pair_new");
        return;
    }
    c->bev = pair[0];
    c->peer = pair[1];
    bufferevent_setcb(c->bev, push_conn_on_read, push_conn_on_write, push_loopback_on_event, c);
    bufferevent_setcb(c->peer, push_loopback_on_peer_read, NULL, NULL, NULL);
    bufferevent_enable(c->peer, EV_READ | EV_WRITE);
    bufferevent_trigger_event(c->bev, BEV_EVENT_CONNECTED, BEV_TRIG_DEFER_CALLBACKS);
}

static void push_dns_release(struct push_dns *d, int in_cb);

static void push_conn_on_resolved(int result, struct evutil_addrinfo *ai, void *arg)
{
    struct push_lookup *l = arg;
    struct push_conn *c = l->c;
    struct push_dns *d = l->d;
    free(l);
    if (c != NULL) {
        c->lookup = NULL;
        if (result != 0 || ai == NULL) {
            push_conn_close(c, LOG_LVL_WARN, evutil_gai_strerror(result));
        } else {
            /* Rotate through the answers on successive attempts. */
            unsigned n = 0, pick;
            for (struct evutil_addrinfo *a = ai; a; a = a->ai_next)
                n++;
            pick = (c->opened - 1) % n;
            struct evutil_addrinfo *a = ai;
            while (pick-- > 0)
                a = a->ai_next;
            push_conn_connect(c, a->ai_addr, (int)a->ai_addrlen);
        }
    }
    if (ai != NULL)
        evutil_freeaddrinfo(ai);
    push_dns_release(d, 1);
}

static void push_conn_start(struct push_conn *c)
{
    struct push *p = c->p;
    char port[8];
    if (c->opened++ > 0)
        p->st.reconnects++;
    log_debug("event=apns_connect conn=%d host=%s port=%d", c->idx, p->host, p->port);
    if (p->loopback) {
        push_conn_loopback(c);
        return;
    }
    if (p->dns == NULL) {
        push_conn_connect(c, (struct sockaddr *)&p->addr, (int)p->addrlen);
        return;
    }
    struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                    .ai_protocol = IPPROTO_TCP,
                                    .ai_flags = EVUTIL_AI_ADDRCONFIG};
    struct push_lookup *l = xcalloc(1, sizeof(*l));
    l->d = p->dns;
    l->c = c;
    c->lookup = l;
    c->state = PUSH_CONN_RESOLVING;
    p->dns->pending++;
    snprintf(port, sizeof(port), "%d", p->port);
    struct evdns_getaddrinfo_request *req =
        evdns_getaddrinfo(p->dns->dns, p->host, port, &hints, push_conn_on_resolved, l);
    if (req != NULL) /* NULL: answered (and l freed) already */
        l->req = req;
}

/* Frees the socket and the session; items stay in c->streams. */
static void push_conn_teardown(struct push_conn *c)
{
    if (c->lookup != NULL) {
        struct push_lookup *l = c->lookup;
        c->lookup = NULL;
        l->c = NULL; /* its callback still runs, with EVUTIL_EAI_CANCEL */
        evdns_getaddrinfo_cancel(l->req);
    }
    if (c->bev != NULL)
        bufferevent_free(c->bev);
    c->bev = NULL;
    if (c->peer != NULL)
        bufferevent_free(c->peer);
    c->peer = NULL;
    if (c->h2 != NULL)
        nghttp2_session_del(c->h2);
    c->h2 = NULL;
    evtimer_del(c->ping);
    c->state = PUSH_CONN_DOWN;
}

/* Connections that answered something reconnect at once (GOAWAY is routine);
 * ones that did not back off, so a dead APNs is not hammered.  Either way the
 * requeued pushes may go to another connection right away. */
static void push_conn_schedule(struct push_conn *c)
{
    struct push *p = c->p;
    if (TAILQ_EMPTY(&p->queue) && TAILQ_EMPTY(&p->retry))
        return; /* lazy: the next push reconnects */
    if (c->fails > 0) {
        int ms = push_backoff_ms(p, p->tun.reconnect_base_ms, p->tun.reconnect_cap_ms, c->fails);
        struct timeval tv = push_tv(ms);
        log_debug("event=apns_reconnect_wait conn=%d delay_ms=%d", c->idx, ms);
        evtimer_add(c->timer, &tv);
    }
    push_kick(p);
}

/* Backoff over: dispatch reconnects this slot if pushes are still waiting. */
static void push_conn_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct push_conn *c = arg;
    push_dispatch(c->p);
}

static int push_ready_conns(const struct push *p)
{
    int n = 0;
    for (int i = 0; i < p->nconns; i++)
        n += p->conns[i].state == PUSH_CONN_READY;
    return n;
}

/* No connection for too long: fail what waited longest instead of holding
 * it forever (the caller records the failure; the device is not lost). */
static void push_fail_stale(struct push *p)
{
    int64_t now = util_mono_ms();
    struct push_item *it, *next;
    if (push_ready_conns(p) > 0)
        return;
    for (it = TAILQ_FIRST(&p->queue); it != NULL; it = next) {
        next = TAILQ_NEXT(it, link);
        if (now - it->t0 < p->tun.unavail_fail_ms)
            continue;
        TAILQ_REMOVE(&p->queue, it, link);
        p->nqueue--;
        push_item_finish(p, it, PUSH_FAILED, MDMD_EUNAVAIL, "");
    }
}

/* Unanswered streams go back to the head of the queue, in order; streams
 * whose status already arrived count as answered and are never resent. */
static void push_requeue(struct push *p, struct push_itemq *orphans)
{
    struct push_itemq again = TAILQ_HEAD_INITIALIZER(again);
    struct push_item *it;
    uint64_t n = 0;
    while ((it = TAILQ_FIRST(orphans)) != NULL) {
        TAILQ_REMOVE(orphans, it, link);
        it->conn = NULL;
        if (it->status != 0) {
            it->where = PUSH_IN_NONE;
            push_item_answered(p, it, NGHTTP2_NO_ERROR);
            continue;
        }
        it->where = PUSH_IN_QUEUE;
        TAILQ_INSERT_TAIL(&again, it, link);
        n++;
    }
    TAILQ_CONCAT(&again, &p->queue, link);
    TAILQ_CONCAT(&p->queue, &again, link);
    p->nqueue += n;
    p->st.resent += n;
}

static void push_conn_close(struct push_conn *c, int lvl, const char *why)
{
    struct push *p = c->p;
    struct push_itemq orphans = TAILQ_HEAD_INITIALIZER(orphans);
    if (c->state == PUSH_CONN_DOWN)
        return;
    int progress = c->answered > 0;
    unsigned inflight = c->nstreams;
    TAILQ_CONCAT(&orphans, &c->streams, link);
    c->nstreams = 0;
    push_conn_teardown(c);
    c->answered = 0;
    c->fails = progress ? 0 : c->fails + 1;
    log_at(lvl, "event=apns_disconnected conn=%d why=%s unanswered=%u fails=%u", c->idx, why,
           inflight, c->fails);
    push_requeue(p, &orphans);
    if (!progress)
        push_fail_stale(p);
    push_conn_schedule(c);
}

/* ------------------------------------------------------------------------ */
/* dispatch */

static struct push_conn *push_pick_conn(struct push *p)
{
    struct push_conn *best = NULL;
    unsigned best_free = 0;
    for (int i = 0; i < p->nconns; i++) {
        unsigned f = push_conn_free_slots(&p->conns[i]);
        if (f > best_free) {
            best_free = f;
            best = &p->conns[i];
        }
    }
    return best;
}

static void push_conn_stop_new_streams(struct push_conn *c)
{
    /* Stream ids exhausted (or a broken session): let the open streams finish
     * and reconnect; GOAWAY tells the server we are done. */
    c->state = PUSH_CONN_DRAINING;
    nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(c->h2), NGHTTP2_NO_ERROR,
                          NULL, 0);
    c->dirty = 1;
}

static void push_dispatch(struct push *p)
{
    struct push_conn *c;
    struct push_item *it;
    while ((it = TAILQ_FIRST(&p->queue)) != NULL && (c = push_pick_conn(p)) != NULL) {
        TAILQ_REMOVE(&p->queue, it, link);
        p->nqueue--;
        if (push_conn_submit(c, it) < 0) {
            push_queue_add(p, it, 1);
            push_conn_stop_new_streams(c);
        }
    }
    for (int i = 0; i < p->nconns; i++)
        if (p->conns[i].dirty)
            push_conn_flush(&p->conns[i]);
    if (TAILQ_EMPTY(&p->queue))
        return;
    for (int i = 0; i < p->nconns; i++) {
        c = &p->conns[i];
        if (c->state == PUSH_CONN_DOWN && !evtimer_pending(c->timer, NULL))
            push_conn_start(c);
    }
}

static void push_on_kick(evutil_socket_t fd, short what, void *arg)
{
    push_dispatch(arg);
}

/* ------------------------------------------------------------------------ */
/* public API */

static struct push_dns *push_dns_new(struct event_base *base)
{
    struct push_dns *d = xcalloc(1, sizeof(*d));
    d->base = base;
    /* Reads resolv.conf and /etc/hosts once, at startup; the loop never
     * blocks on a lookup afterwards. */
    d->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                      EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (d->dns == NULL) {
        free(d);
        return NULL;
    }
    return d;
}

static void push_dns_free_cb(evutil_socket_t fd, short what, void *arg)
{
    struct push_dns *d = arg;
    evdns_base_free(d->dns, 0);
    free(d);
}

/* Drops one reference (a finished lookup); the evdns_base goes when the
 * push is gone and no callback can reach it any more.  From inside an evdns
 * callback the free is deferred, since evdns still uses its base on return. */
static void push_dns_release(struct push_dns *d, int in_cb)
{
    struct timeval zero = {0, 0};
    d->pending--;
    if (!d->orphaned || d->pending > 0)
        return;
    if (!in_cb || event_base_once(d->base, -1, EV_TIMEOUT, push_dns_free_cb, d, &zero) < 0)
        push_dns_free_cb(-1, 0, d);
}

static int push_set_host(struct push *p, const struct conf *cf)
{
    struct sockaddr_in *v4 = (struct sockaddr_in *)&p->addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&p->addr;
    int is6 = 0;
    p->host = xstrdup(cf->apns_host && *cf->apns_host ? cf->apns_host : PUSH_DEFAULT_HOST);
    p->port = cf->apns_port > 0 ? cf->apns_port : PUSH_DEFAULT_PORT;
    if (inet_pton(AF_INET, p->host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)p->port);
        p->addrlen = sizeof(*v4);
    } else if (inet_pton(AF_INET6, p->host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)p->port);
        p->addrlen = sizeof(*v6);
        is6 = 1;
    } else if ((p->dns = push_dns_new(p->base)) == NULL) {
        log_err("event=push_dns_init_failed");
        return -1;
    }
    p->authority = p->port == 443 ? xasprintf(is6 ? "[%s]" : "%s", p->host)
                                  : xasprintf(is6 ? "[%s]:%d" : "%s:%d", p->host, p->port);
    return 0;
}

static void push_conns_init(struct push *p, int n)
{
    p->nconns = n <= 0 ? 1 : n > PUSH_MAX_CONNECTIONS ? PUSH_MAX_CONNECTIONS : n;
    p->conns = xcalloc((size_t)p->nconns, sizeof(*p->conns));
    for (int i = 0; i < p->nconns; i++) {
        struct push_conn *c = &p->conns[i];
        c->p = p;
        c->idx = i;
        TAILQ_INIT(&c->streams);
        c->timer = evtimer_new(p->base, push_conn_on_timer, c);
        c->ping = event_new(p->base, -1, EV_PERSIST, push_conn_on_ping, c);
        if (c->timer == NULL || c->ping == NULL)
            die("event=out_of_memory what=push_conn_events");
    }
}

static struct push *push_alloc(struct event_base *base, int expiration_s)
{
    struct push *p = xcalloc(1, sizeof(*p));
    p->base = base;
    p->tun = push_default_tuning;
    p->rng = (uint64_t)util_mono_ms() * 0x9E3779B97F4A7C15ULL ^ (uint64_t)getpid() ^ 1;
    p->expiration_s = expiration_s > 0 ? expiration_s : PUSH_DEFAULT_EXPIRATION_S;
    TAILQ_INIT(&p->queue);
    TAILQ_INIT(&p->retry);
    return p;
}

/* What every push needs once its certificate and host are set. */
static void push_start(struct push *p, int connections)
{
    p->h2cb = push_h2_callbacks();
    p->kick = event_new(p->base, -1, 0, push_on_kick, p);
    if (p->kick == NULL)
        die("event=out_of_memory what=push_kick");
    push_conns_init(p, connections);
}

struct push *push_new(struct event_base *base, const struct conf *cf)
{
    struct push *p = push_alloc(base, cf->apns_expiration_s);
    p->ssl = push_ssl_ctx_new(cf, &p->topic);
    if (p->ssl == NULL || push_set_host(p, cf) < 0) {
        push_free(p);
        return NULL;
    }
    push_start(p, cf->apns_connections);
    log_info("event=push_ready topic=%s host=%s port=%d connections=%d", p->topic, p->host,
             p->port, p->nconns);
    return p;
}

struct push *push_new_loopback(struct event_base *base, int connections)
{
    struct push *p = push_alloc(base, 0);
    p->loopback = 1;
    p->topic = xstrdup(PUSH_TOPIC_PREFIX "loopback");
    p->host = xstrdup("loopback");
    p->authority = xstrdup("loopback");
    p->port = PUSH_DEFAULT_PORT;
    push_start(p, connections);
    return p;
}

int push_loopback_recv(struct push *p, int idx, const void *data, size_t len)
{
    if (!p->loopback || idx < 0 || idx >= p->nconns || p->conns[idx].peer == NULL)
        return -1;
    return bufferevent_write(p->conns[idx].peer, data, len);
}

static void push_cancel_all(struct push *p, struct push_itemq *all)
{
    struct push_item *it;
    while ((it = TAILQ_FIRST(all)) != NULL) {
        TAILQ_REMOVE(all, it, link);
        push_item_finish(p, it, PUSH_CANCELED, MDMD_ECANCELED, "");
    }
}

void push_free(struct push *p)
{
    struct push_itemq all = TAILQ_HEAD_INITIALIZER(all);
    if (p == NULL)
        return;
    assert(p->in_cb == 0); /* never from inside a push_done_fn */
    p->freeing = 1;
    for (int i = 0; i < p->nconns; i++) {
        struct push_conn *c = &p->conns[i];
        TAILQ_CONCAT(&all, &c->streams, link);
        push_conn_teardown(c);
        event_free(c->timer);
        event_free(c->ping);
    }
    TAILQ_CONCAT(&all, &p->retry, link);
    TAILQ_CONCAT(&all, &p->queue, link);
    p->nqueue = p->nretry = 0;
    push_cancel_all(p, &all);
    if (p->kick != NULL)
        event_free(p->kick);
    if (p->dns != NULL) {
        p->dns->orphaned = 1;
        p->dns->pending++; /* released just below, so a 0 count frees it now */
        push_dns_release(p->dns, 0);
    }
    if (p->h2cb != NULL)
        nghttp2_session_callbacks_del(p->h2cb);
    SSL_CTX_free(p->ssl);
    free(p->conns);
    free(p->topic);
    free(p->host);
    free(p->authority);
    free(p);
}

const char *push_topic(const struct push *p)
{
    return p->topic;
}

int push_send(struct push *p, const char *token_hex, const char *push_magic, push_done_fn *cb,
              void *arg)
{
    char body[PUSH_BODY_MAX];
    size_t blen;
    if (p->freeing || cb == NULL || token_hex == NULL || push_magic == NULL)
        return -1;
    if (!push_token_ok(token_hex)) {
        log_debug("event=push_rejected why=bad_token_format");
        return -1;
    }
    if (push_body_build(push_magic, body, sizeof(body), &blen) < 0) {
        log_debug("event=push_rejected why=bad_push_magic");
        return -1;
    }
    struct push_item *it = push_item_new(p, token_hex, body, blen);
    it->cb = cb;
    it->arg = arg;
    push_queue_add(p, it, 0);
    /* Deferred: the callback must never run inside push_send(), and a burst
     * of sends is batched into one flush. */
    push_kick(p);
    return 0;
}

void push_stats(const struct push *p, struct push_stats *out)
{
    *out = p->st;
    out->queued = p->nqueue;
    out->retrying = p->nretry;
    out->inflight = 0;
    out->connections = 0;
    for (int i = 0; i < p->nconns; i++) {
        out->inflight += p->conns[i].nstreams;
        out->connections += p->conns[i].state == PUSH_CONN_READY;
    }
    out->connected = out->connections > 0;
}

void push_get_tuning(const struct push *p, struct push_tuning *out)
{
    *out = p->tun;
}

void push_set_tuning(struct push *p, const struct push_tuning *t)
{
#define PUSH_TUNE(f)                                                                           \
    if (t->f > 0)                                                                              \
        p->tun.f = t->f;
    PUSH_TUNE(retry_base_ms)
    PUSH_TUNE(retry_cap_ms)
    PUSH_TUNE(max_attempts)
    PUSH_TUNE(reconnect_base_ms)
    PUSH_TUNE(reconnect_cap_ms)
    PUSH_TUNE(connect_timeout_ms)
    PUSH_TUNE(ping_interval_ms)
    PUSH_TUNE(unavail_fail_ms)
    PUSH_TUNE(max_streams)
#undef PUSH_TUNE
    if (p->tun.max_attempts > 255)
        p->tun.max_attempts = 255; /* it->attempts is a uint8_t */
}
