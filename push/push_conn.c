/* push_conn.c: one APNs connection slot: DNS (evdns), TCP, TLS (or an
 * in-memory pair for tests), the HTTP/2 session and its streams, PING
 * keep-alive, reconnect backoff. */
#include "push.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "../core/conf.h"
#include "../core/log.h"
#include "push_int.h"

static void push_conn_close(struct push_conn *c, int lvl, const char *why);

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
                             size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                             void *ud)
{
    /* After an interim 1xx answer nghttp2 files the final one under
     * HCAT_HEADERS; trailers are HCAT_HEADERS too, but never carry :status. */
    if (frame->hd.type != NGHTTP2_HEADERS ||
        (frame->headers.cat != NGHTTP2_HCAT_RESPONSE && frame->headers.cat != NGHTTP2_HCAT_HEADERS))
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
    TAILQ_FOREACH(it, &c->streams, link)
    {
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

nghttp2_session_callbacks *push_h2_callbacks(void)
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

#define PUSH_NV(n, v, vlen)                                                                        \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vlen),                                     \
            NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE                           \
    }

/* The name/value bytes are not copied: they live in p and in the item,
 * which both outlive the HEADERS frame. */
int push_conn_submit(struct push_conn *c, struct push_item *it)
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

unsigned push_conn_free_slots(const struct push_conn *c)
{
    if (c->state != PUSH_CONN_READY)
        return 0;
    uint32_t max =
        nghttp2_session_get_remote_settings(c->h2, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    if (max > (uint32_t)c->p->tun.max_streams)
        max = (uint32_t)c->p->tun.max_streams;
    return max > c->nstreams ? max - c->nstreams : 0;
}

/* Moves nghttp2's pending frames into the socket buffer.  -1: c was closed. */
int push_conn_flush(struct push_conn *c)
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
             (what & BEV_EVENT_TIMEOUT) ? "timeout"
             : (what & BEV_EVENT_EOF)   ? "eof"
                                        : "error",
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
    if (c->state == PUSH_CONN_CONNECTING && push_conn_h2_start(c) < 0 && c->state != PUSH_CONN_DOWN)
        push_conn_close(c, LOG_LVL_WARN, "h2_start_failed");
}

static void push_conn_loopback(struct push_conn *c)
{
    struct bufferevent *pair[2];
    c->state = PUSH_CONN_CONNECTING;
    if (bufferevent_pair_new(c->p->base, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS, pair) <
        0) {
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

void push_conn_start(struct push_conn *c)
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
    struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC,
                                    .ai_socktype = SOCK_STREAM,
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
void push_conn_teardown(struct push_conn *c)
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

void push_conn_stop_new_streams(struct push_conn *c)
{
    /* Stream ids exhausted (or a broken session): let the open streams finish
     * and reconnect; GOAWAY tells the server we are done. */
    c->state = PUSH_CONN_DRAINING;
    nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->h2),
                          NGHTTP2_NO_ERROR, NULL, 0);
    c->dirty = 1;
}

/* ------------------------------------------------------------------------ */
/* setup */

static struct push_dns *push_dns_new(struct event_base *base)
{
    struct push_dns *d = xcalloc(1, sizeof(*d));
    d->base = base;
    /* Reads resolv.conf and /etc/hosts once, at startup; the loop never
     * blocks on a lookup afterwards. */
    d->dns =
        evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
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
void push_dns_release(struct push_dns *d, int in_cb)
{
    struct timeval zero = {0, 0};
    d->pending--;
    if (!d->orphaned || d->pending > 0)
        return;
    if (!in_cb || event_base_once(d->base, -1, EV_TIMEOUT, push_dns_free_cb, d, &zero) < 0)
        push_dns_free_cb(-1, 0, d);
}

int push_set_host(struct push *p, const struct conf *cf)
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

void push_conns_init(struct push *p, int n)
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

int push_loopback_recv(struct push *p, int idx, const void *data, size_t len)
{
    if (!p->loopback || idx < 0 || idx >= p->nconns || p->conns[idx].peer == NULL)
        return -1;
    return bufferevent_write(p->conns[idx].peer, data, len);
}
