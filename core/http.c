#include "http.h"
#include "log.h"
#include "metrics.h"
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct http_server {
    struct event_base *base;
    char *name;                       /* "enroll", "mdm": for log lines */
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    SSL_CTX *ctx;                     /* our reference; swapped on SIGHUP */
    const struct http_route *routes;
    void *app;
    int port;
    int inflight;                     /* reqs handed to handlers, not yet answered */
    int conns;                        /* open TLS connections (SSL objects alive) */
    int max_conns;
    int paused;                       /* listener disabled at max_conns */
    int dead;                         /* freed, waiting for its last connection */
    int stopping;                     /* shutting down: no new work on open connections */
    size_t nroutes;
    struct metrics_endpoint *ep;      /* per route, then one for unmatched paths */
};

struct req {
    struct http_server *hs;
    struct evhttp_request *r;
    const char *path;                 /* owned by r's evhttp_uri */
    char *body_view;                  /* set once req_body() linearised the input */
    size_t body_len;
    char peer[INET6_ADDRSTRLEN];
    char *path_own;                   /* req_set_path(): replaces path */
    char *user;                       /* req_set_user(): who an auth step let in */
    int64_t t0;                       /* dispatch time (metrics_now_ns) */
    size_t route;                     /* index into routes; nroutes: none matched */
};

/* An SSL's ex_data slot points at its server, so that the count of open
 * connections drops exactly when OpenSSL frees the SSL (evhttp gives no
 * per-connection close hook for connections that never sent a request). */
static int http_ssl_idx = -1;

static void http_ssl_freed(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                           void *argp)
{
    struct http_server *hs = ptr;
    if (hs == NULL)
        return;
    hs->conns--;
    if (hs->dead) {   /* http_server_free ran first: the last connection frees it */
        if (hs->conns == 0)
            free(hs);
        return;
    }
    if (hs->paused && hs->conns < hs->max_conns && hs->bound != NULL) {
        evconnlistener_enable(evhttp_bound_socket_get_listener(hs->bound));
        hs->paused = 0;
        log_info("event=accept_resumed listener=%s conns=%d", hs->name, hs->conns);
    }
}

static struct bufferevent *http_new_bev(struct event_base *base, void *arg)
{
    struct http_server *hs = arg;
    SSL *ssl = SSL_new(hs->ctx);
    if (ssl == NULL) {
        log_ssl(LOG_LVL_ERR, "event=ssl_new_failed");
        return NULL;
    }
    SSL_set_ex_data(ssl, http_ssl_idx, hs);
    if (++hs->conns >= hs->max_conns && !hs->paused && hs->bound != NULL) {
        /* Stop accepting: further clients wait in the kernel backlog. */
        evconnlistener_disable(evhttp_bound_socket_get_listener(hs->bound));
        hs->paused = 1;
        log_warn("event=accept_paused listener=%s conns=%d", hs->name, hs->conns);
    }
    return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
}

static int http_method_of(struct evhttp_request *r)
{
    switch (evhttp_request_get_command(r)) {
    case EVHTTP_REQ_GET: return HTTP_M_GET;
    case EVHTTP_REQ_POST: return HTTP_M_POST;
    case EVHTTP_REQ_PUT: return HTTP_M_PUT;
    case EVHTTP_REQ_DELETE: return HTTP_M_DELETE;
    case EVHTTP_REQ_HEAD: return HTTP_M_HEAD;
    case EVHTTP_REQ_PATCH: return HTTP_M_PATCH;
    default: return 0;
    }
}

static const struct http_route *http_match(const struct http_route *rt, const char *path,
                                           int *path_found)
{
    for (; rt->path != NULL; rt++) {
        size_t n = strlen(rt->path);
        int hit = rt->path[n - 1] == '*' ? strncmp(path, rt->path, n - 1) == 0
                                         : strcmp(path, rt->path) == 0;
        if (hit) {
            *path_found = 1;
            return rt;
        }
    }
    return NULL;
}

static void http_peer_of(struct evhttp_request *r, char *out, size_t len)
{
    char *host = NULL;
    ev_uint16_t port = 0;
    struct evhttp_connection *evcon = evhttp_request_get_connection(r);
    out[0] = '\0';
    if (evcon != NULL)
        evhttp_connection_get_peer(evcon, &host, &port);
    snprintf(out, len, "%s", host != NULL ? host : "-");
}

static void http_dispatch(struct evhttp_request *r, void *arg)
{
    struct http_server *hs = arg;
    struct req *req = xcalloc(1, sizeof(*req));
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r);
    int found = 0;

    req->hs = hs;
    req->r = r;
    req->t0 = metrics_now_ns();
    req->path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    if (req->path == NULL || *req->path == '\0')
        req->path = "/";
    http_peer_of(r, req->peer, sizeof(req->peer));
    hs->inflight++;
    log_debug("event=request listener=%s peer=%s path=%s", hs->name, req->peer, req->path);

    if (hs->stopping) {
        /* A keep-alive client may send after SIGTERM: no new work now.  (No
         * "Connection: close": evhttp_free then finds every connection.) */
        req_fail(req, 503, "shutting down");
        return;
    }
    const struct http_route *rt = http_match(hs->routes, req->path, &found);
    int m = http_method_of(r);
    req->route = rt != NULL ? (size_t)(rt - hs->routes) : hs->nroutes;
    if (rt == NULL) {
        req_fail(req, 404, "no such endpoint");
        return;
    }
    if ((rt->methods & m) == 0) {
        req_fail(req, 405, "method not allowed");
        return;
    }
    rt->fn(req, hs->app);
}

/* Accepted sockets inherit TCP_NODELAY from the listener on Linux; without
 * it every keep-alive response waits ~40 ms for a delayed ACK (DESIGN.md 4). */
static void http_tune_listener(struct http_server *hs)
{
    int one = 1;
    evutil_socket_t fd = evhttp_bound_socket_get_fd(hs->bound);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
        log_warn("event=nodelay_failed listener=%s errno=%d", hs->name, errno);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        hs->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                  : ((struct sockaddr_in *)&ss)->sin_port);
}

static int http_split_addr(const char *addr, char *host, size_t hlen, int *port)
{
    const char *c = strrchr(addr, ':');
    if (c == NULL || c == addr)
        return -1;
    const char *h = addr;
    size_t n = (size_t)(c - addr);
    if (h[0] == '[' && n >= 2 && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    char *end;
    long p = strtol(c + 1, &end, 10);
    if (n == 0 || n >= hlen || *end != '\0' || p < 0 || p > 65535)
        return -1;
    memcpy(host, h, n);
    host[n] = '\0';
    *port = (int)p;
    return 0;
}

void http_server_set_limits(struct http_server *hs, const struct http_limits *lim)
{
    evhttp_set_max_body_size(hs->http, (ev_ssize_t)lim->max_body);
    evhttp_set_max_headers_size(hs->http, (ev_ssize_t)lim->max_header);
    evhttp_set_timeout(hs->http, lim->timeout_s);
    hs->max_conns = lim->max_connections;
}

struct http_server *http_server_new(struct event_base *base, const char *name, const char *addr,
                                    SSL_CTX *ctx, const struct http_route *routes, void *app,
                                    const struct http_limits *lim)
{
    char host[256];
    int port;

    if (http_ssl_idx < 0)
        http_ssl_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, http_ssl_freed);
    if (http_split_addr(addr, host, sizeof(host), &port) != 0) {
        log_err("event=bad_listen_address listener=%s addr=%s", name, addr);
        return NULL;
    }
    struct http_server *hs = xcalloc(1, sizeof(*hs));
    hs->base = base;
    hs->name = xstrdup(name);
    hs->routes = routes;
    while (routes[hs->nroutes].path != NULL)
        hs->nroutes++;
    hs->ep = xcalloc(hs->nroutes + 1, sizeof(*hs->ep));
    hs->app = app;
    hs->http = evhttp_new(base);
    hs->ctx = ctx;
    if (ctx != NULL)
        SSL_CTX_up_ref(ctx);
    http_server_set_limits(hs, lim);
    evhttp_set_allowed_methods(hs->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                             EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD |
                                             EVHTTP_REQ_PATCH);
    if (ctx != NULL)   /* NULL: plain HTTP (scep_listen), evhttp's own sockets */
        evhttp_set_bevcb(hs->http, http_new_bev, hs);
    evhttp_set_gencb(hs->http, http_dispatch, hs);
    hs->bound = evhttp_bind_socket_with_handle(hs->http, host, (ev_uint16_t)port);
    if (hs->bound == NULL) {
        log_err("event=bind_failed listener=%s addr=%s errno=%d", name, addr, errno);
        http_server_free(hs);
        return NULL;
    }
    http_tune_listener(hs);
    log_info("event=listening listener=%s addr=%s port=%d", name, addr, hs->port);
    return hs;
}

void http_server_free(struct http_server *hs)
{
    if (hs == NULL)
        return;
    hs->bound = NULL;    /* evhttp_free closes it; the SSL free hook must not touch it */
    if (hs->http != NULL)
        evhttp_free(hs->http);
    SSL_CTX_free(hs->ctx);
    free(hs->ep);
    free(hs->name);
    /* bufferevents free their SSL later (deferred callbacks, or when the
     * event base goes): the count of open connections keeps hs alive. */
    if (hs->conns > 0)
        hs->dead = 1;
    else
        free(hs);
}

int http_server_port(const struct http_server *hs)
{
    return hs->port;
}

void http_server_set_ctx(struct http_server *hs, SSL_CTX *ctx)
{
    SSL_CTX_up_ref(ctx);
    SSL_CTX_free(hs->ctx);    /* live connections keep their own reference */
    hs->ctx = ctx;
}

void http_server_stop_accepting(struct http_server *hs)
{
    hs->stopping = 1;
    if (hs->bound != NULL) {
        evhttp_del_accept_socket(hs->http, hs->bound);
        hs->bound = NULL;
    }
}

int http_server_inflight(const struct http_server *hs)
{
    return hs->inflight;
}

int http_server_connections(const struct http_server *hs)
{
    return hs->conns;
}

const char *http_server_name(const struct http_server *hs)
{
    return hs->name;
}

size_t http_server_nroutes(const struct http_server *hs)
{
    return hs->nroutes;
}

const struct http_route *http_server_route(const struct http_server *hs, size_t i)
{
    return i < hs->nroutes ? &hs->routes[i] : NULL;
}

const struct metrics_endpoint *http_server_endpoint(const struct http_server *hs, size_t i)
{
    return &hs->ep[i <= hs->nroutes ? i : hs->nroutes];
}

void http_routes_print(FILE *f, const char *listener, const struct http_route *rt)
{
    static const char *const names[] = {"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"};
    for (; rt->path != NULL; rt++)
        for (size_t i = 0; i < ARRAY_LEN(names); i++)
            if (rt->methods & (1 << i))
                fprintf(f, "%s %s %s\n", listener, names[i], rt->path);
}

int req_method(const struct req *req)
{
    return http_method_of(req->r);
}

const char *req_path(const struct req *req)
{
    return req->path;
}

const char *req_query(const struct req *req)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req->r);
    return uri != NULL ? evhttp_uri_get_query(uri) : NULL;
}

char *req_query_param(const struct req *req, const char *key)
{
    struct evkeyvalq q;
    const char *query = req_query(req);
    char *out = NULL;

    if (query == NULL || evhttp_parse_query_str(query, &q) != 0)
        return NULL;
    const char *v = evhttp_find_header(&q, key);
    if (v != NULL)
        out = xstrdup(v);
    evhttp_clear_headers(&q);
    return out;
}

const char *req_header(const struct req *req, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(req->r), name);
}

const unsigned char *req_body(struct req *req, size_t *len)
{
    if (req->body_view == NULL) {
        struct evbuffer *in = evhttp_request_get_input_buffer(req->r);
        req->body_len = evbuffer_get_length(in);
        /* A trailing NUL lets parsers treat the body as a C string. */
        evbuffer_add(in, "", 1);
        req->body_view = (char *)evbuffer_pullup(in, -1);
    }
    *len = req->body_len;
    return (const unsigned char *)req->body_view;
}

void req_set_path(struct req *req, const char *path)
{
    free(req->path_own);
    req->path_own = xstrdup(path);
    req->path = req->path_own;
}

void req_set_user(struct req *req, const char *user)
{
    free(req->user);
    req->user = xstrdup(user);
}

const char *req_user(const struct req *req)
{
    return req->user;
}

const struct http_route *http_route_find(const struct http_route *rt, const char *path)
{
    int found = 0;
    return http_match(rt, path, &found);
}

const char *req_peer(const struct req *req)
{
    return req->peer;
}

X509 *req_client_cert(const struct req *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req->r);
    if (evcon == NULL)
        return NULL;
    return tls_peer_cert(bufferevent_openssl_get_ssl(evhttp_connection_get_bufferevent(evcon)));
}

void req_add_header(struct req *req, const char *name, const char *value)
{
    evhttp_add_header(evhttp_request_get_output_headers(req->r), name, value);
}

void req_respond(struct req *req, int status, const char *ctype, const void *body, size_t len)
{
    struct evbuffer *out = evbuffer_new();
    if (ctype != NULL)
        req_add_header(req, "Content-Type", ctype);
    if (len > 0)
        evbuffer_add(out, body, len);
    evhttp_send_reply(req->r, status, NULL, out);
    evbuffer_free(out);
    metrics_endpoint_observe(&req->hs->ep[req->route], status,
                             (double)(metrics_now_ns() - req->t0) / 1e9);
    req->hs->inflight--;
    free(req->path_own);
    free(req->user);
    free(req);
}

void req_respond_json(struct req *req, int status, const char *json)
{
    req_respond(req, status, "application/json", json, strlen(json));
}

void req_fail(struct req *req, int status, const char *why)
{
    char body[256];
    log_warn("event=request_failed listener=%s peer=%s path=%s status=%d reason=\"%s\"",
             req->hs->name, req->peer, req->path, status, why);
    size_t n = (size_t)snprintf(body, sizeof(body), "{\"error\":\"");
    for (const char *p = why; *p && n < sizeof(body) - 8; p++) {
        if (*p == '"' || *p == '\\')
            body[n++] = '\\';
        body[n++] = (unsigned char)*p < 0x20 ? ' ' : *p;
    }
    snprintf(body + n, sizeof(body) - n, "\"}\n");
    req_respond_json(req, status, body);
}
