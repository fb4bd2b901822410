#include "http.h"
#include "util.h"
#include "log.h"
#include "metrics.h"
#include "tls.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Shared by every worker (core/super.h): room for a burst of connects while
 * one worker restarts. */
#define HTTP_LISTEN_BACKLOG 1024

struct http_server {
    struct event_base *base;
    char *name; /* "enroll", "mdm": for log lines */
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    SSL_CTX *ctx; /* our reference; swapped on SIGHUP; NULL: plain HTTP */
    const struct http_route *routes;
    void *app;
    int port;
    int inflight; /* reqs handed to handlers, not yet answered */
    int conns;    /* open connections (struct http_conn alive) */
    int max_conns;
    int timeout_s;               /* a whole request must arrive within this */
    size_t max_body, max_header; /* for the log line when evhttp refuses */
    size_t max_small;            /* routes without HTTP_BODY_LARGE */
    int paused;                  /* listener disabled at max_conns */
    int full;                    /* logged accept_paused, not yet accept_resumed */
    int stopping;                /* shutting down: no new work on open connections */
    struct http_conn *conn_list; /* every open connection */
    size_t nroutes;
    struct metrics_endpoint *ep; /* per route, then one for unmatched paths */
};

/* One accepted connection, TLS or plain.  libevent 2.1's evhttp has no
 * per-connection hooks, so: http_new_bev creates it with the bufferevent;
 * its timer first runs at once to adopt it (find the evhttp_connection and
 * set the close callback, which is where it ends), then serves as the
 * deadline for the request; http_by_fd finds it again at dispatch. */
struct http_conn {
    struct http_server *hs;
    struct bufferevent *bev;
    struct evhttp_connection *evcon;  /* NULL until adopted */
    struct event *timer;              /* adoption, then the request deadline */
    evutil_socket_t fd;               /* -1 until adopted */
    int busy;                         /* a handler has its request: no deadline */
    int refused_logged;               /* evhttp answered an error itself; logged */
    int line_seen;                    /* this request's line was read: its limit is set */
    size_t max_body;                  /* the body limit of this request's route */
    struct evbuffer_cb_entry *out_cb; /* http_conn_on_output on the bev's output */
    struct evbuffer_cb_entry *in_cb;  /* http_conn_on_input on the bev's input */
    struct http_stream *stream;       /* a streamed answer in progress */
    struct http_conn *prev, *next;    /* hs->conn_list */
};

struct req {
    struct http_server *hs;
    struct evhttp_request *r;
    const char *path; /* owned by r's evhttp_uri */
    char *body_view;  /* set once req_body() linearised the input */
    size_t body_len;
    char peer[INET6_ADDRSTRLEN];
    char *path_own; /* req_set_path(): replaces path */
    char *user;     /* req_set_user(): who an auth step let in */
    int64_t t0;     /* dispatch time (metrics_now_ns) */
    size_t route;   /* index into routes; nroutes: none matched */
    /* http_test_request() only: a request with no connection has no
     * method, URI or certificate evhttp could give, and no one to answer. */
    int test_method;
    struct evhttp_uri *test_uri;
    X509 *test_cert;
    http_test_done_fn *test_done;
    void *test_arg;
};

/* Open connections by socket (redis ae style): dispatch has only the
 * request, and evhttp 2.1 keeps no user pointer on a connection. */
static struct http_conn **http_by_fd;
static size_t http_by_fd_len;
static int http_nservers; /* the table goes with the last server */

static void http_fd_set(evutil_socket_t fd, struct http_conn *c)
{
    if (fd < 0)
        return;
    if ((size_t)fd >= http_by_fd_len) {
        size_t n = http_by_fd_len != 0 ? http_by_fd_len : 256;
        while (n <= (size_t)fd)
            n *= 2;
        http_by_fd = xrealloc(http_by_fd, n * sizeof(*http_by_fd));
        memset(http_by_fd + http_by_fd_len, 0, (n - http_by_fd_len) * sizeof(*http_by_fd));
        http_by_fd_len = n;
    }
    http_by_fd[fd] = c;
}

static struct http_conn *http_conn_of(struct evhttp_request *r)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(r);
    if (evcon == NULL)
        return NULL;
    evutil_socket_t fd = bufferevent_getfd(evhttp_connection_get_bufferevent(evcon));
    struct http_conn *c = fd >= 0 && (size_t)fd < http_by_fd_len ? http_by_fd[fd] : NULL;
    return c != NULL && c->evcon == evcon ? c : NULL;
}

/* Accepting pauses at max_conns, so further clients wait in the kernel
 * backlog and memory stays bounded.  At the limit every close resumes and the
 * next accept pauses again, so the log says when the listener became full
 * and when it had room again (10% free), not each toggle. */
static void http_accept_check(struct http_server *hs)
{
    if (hs->bound == NULL)
        return;
    struct evconnlistener *l = evhttp_bound_socket_get_listener(hs->bound);
    if (!hs->paused && hs->conns >= hs->max_conns) {
        evconnlistener_disable(l);
        hs->paused = 1;
        if (!hs->full)
            log_warn("event=accept_paused listener=%s conns=%d max_connections=%d", hs->name,
                     hs->conns, hs->max_conns);
        hs->full = 1;
    } else if (hs->paused && hs->conns < hs->max_conns) {
        evconnlistener_enable(l);
        hs->paused = 0;
    }
    if (hs->full && hs->conns < hs->max_conns - hs->max_conns / 10) {
        hs->full = 0;
        log_info("event=accept_resumed listener=%s conns=%d", hs->name, hs->conns);
    }
}

static void http_conn_peer(const struct http_conn *c, char *out, size_t len)
{
    char *host = NULL;
    ev_uint16_t port = 0;
    if (c->evcon != NULL)
        evhttp_connection_get_peer(c->evcon, &host, &port);
    snprintf(out, len, "%s:%u", host != NULL ? host : "-", (unsigned)port);
}

/* The request deadline: from accept (so it covers the TLS handshake) or from
 * the previous answer (keep-alive) until the request, head and body, is read
 * and dispatched.  evhttp's own timeout is an idle timeout, which every
 * trickled byte restarts (slowloris). */
static const struct http_route *http_match(const struct http_route *rt, const char *path,
                                           int *path_found);

static size_t http_route_limit(const struct http_server *hs, const struct http_route *rt)
{
    size_t small = hs->max_small < hs->max_body ? hs->max_small : hs->max_body;
    return rt != NULL && rt->body == HTTP_BODY_LARGE ? hs->max_body : small;
}

/* The request line (method, target, version) of the next request, as soon
 * as it is in the input buffer and before evhttp reads the head: its route
 * sets the connection's body limit, which evhttp checks against the
 * Content-Length before it reads any of the body, and while it reads a
 * chunked one.  An unknown or unparsable path keeps the small limit. */
static void http_conn_scan(struct http_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    char line[1024], path[1024];
    size_t n = 0;
    int found = 0;
    if (c->line_seen || c->evcon == NULL)
        return;
    struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &n, EVBUFFER_EOL_CRLF);
    if (eol.pos < 0) {
        if (evbuffer_get_length(in) < sizeof(line))
            return; /* not yet; an endless line is evhttp's 400 */
        eol.pos = (ev_ssize_t)sizeof(line) - 1;
    }
    size_t len = (size_t)eol.pos < sizeof(line) - 1 ? (size_t)eol.pos : sizeof(line) - 1;
    evbuffer_copyout(in, line, len);
    line[len] = '\0';
    const char *t = strchr(line, ' '), *abs;
    if (t != NULL && t[1] != '/' && (abs = strstr(t + 1, "://")) != NULL)
        t = strchr(abs + 3, '/'); /* absolute form: skip scheme and host */
    else if (t != NULL)
        t++;
    path[0] = '\0';
    if (t != NULL)
        sscanf(t, "%1023[^? ]", path);
    c->line_seen = 1;
    c->max_body =
        http_route_limit(c->hs, path[0] == '/' ? http_match(c->hs->routes, path, &found) : NULL);
    evhttp_connection_set_max_body_size(c->evcon, (ev_ssize_t)c->max_body);
}

static void http_conn_on_input(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
    (void)in;
    if (info->n_added > 0)
        http_conn_scan(arg);
}

static void http_conn_arm(struct http_conn *c)
{
    struct timeval tv = {c->hs->timeout_s, 0};
    c->busy = 0;
    c->line_seen = 0;
    c->max_body = http_route_limit(c->hs, NULL);
    if (c->evcon != NULL)
        evhttp_connection_set_max_body_size(c->evcon, (ev_ssize_t)c->max_body);
    evtimer_add(c->timer, &tv);
    http_conn_scan(c); /* a pipelined request may be waiting already */
}

/* bev_alive: 0 when evhttp_free already took the bufferevent. */
static void http_conn_unlink(struct http_conn *c, int bev_alive)
{
    struct http_server *hs = c->hs;
    if (bev_alive) {
        evbuffer_remove_cb_entry(bufferevent_get_output(c->bev), c->out_cb);
        evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->in_cb);
    }
    if (c->fd >= 0 && (size_t)c->fd < http_by_fd_len && http_by_fd[c->fd] == c)
        http_by_fd[c->fd] = NULL;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        hs->conn_list = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    event_free(c->timer);
    free(c);
    hs->conns--;
}

static void http_stream_closed(struct http_stream *s);

static void http_conn_on_close(struct evhttp_connection *evcon, void *arg)
{
    struct http_conn *c = arg;
    struct http_server *hs = c->hs;
    (void)evcon;
    if (c->stream != NULL)
        http_stream_closed(c->stream);
    http_conn_unlink(c, 1);
    http_accept_check(hs);
}

static void http_conn_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct http_conn *c = arg;
    char peer[INET6_ADDRSTRLEN + 8];
    (void)fd;
    (void)what;
    if (c->evcon == NULL) {
        /* Adoption, one loop turn after accept: evhttp passes its
         * evhttp_connection as the bufferevent's callback argument. */
        void *evcon = NULL;
        bufferevent_getcb(c->bev, NULL, NULL, NULL, &evcon);
        c->evcon = evcon;
        assert(c->evcon != NULL);
        c->fd = bufferevent_getfd(c->bev);
        evhttp_connection_set_closecb(c->evcon, http_conn_on_close, c);
        http_fd_set(c->fd, c);
        http_conn_arm(c);
        return;
    }
    http_conn_peer(c, peer, sizeof(peer));
    log_warn("event=request_timeout listener=%s peer=%s timeout_s=%d reason=\"no complete "
             "request in time\"",
             c->hs->name, peer, c->hs->timeout_s);
    evhttp_connection_free(c->evcon); /* runs http_conn_on_close: c is gone */
}

/* Output before dispatch is evhttp answering by itself: an oversized or
 * malformed head (400), a body over max_body_size (413).  No handler sees
 * those, so this is where they get their log line. */
static void http_conn_on_output(struct evbuffer *out, const struct evbuffer_cb_info *info,
                                void *arg)
{
    struct http_conn *c = arg;
    struct evbuffer_ptr pos;
    char line[16] = "";
    char peer[INET6_ADDRSTRLEN + 8];
    int status = 0;

    if (info->n_added == 0 || c->busy || c->refused_logged ||
        evbuffer_ptr_set(out, &pos, info->orig_size, EVBUFFER_PTR_SET) != 0)
        return;
    evbuffer_copyout_from(out, &pos, line, sizeof(line) - 1);
    if (sscanf(line, "HTTP/%*d.%*d %d", &status) != 1 || status < 400)
        return; /* 100 Continue, or not a status line yet */
    c->refused_logged = 1;
    http_conn_peer(c, peer, sizeof(peer));
    if (status == 413)
        log_warn("event=request_refused listener=%s peer=%s status=413 reason=\"body over "
                 "%s=%zu\"",
                 c->hs->name, peer,
                 c->max_body == c->hs->max_body ? "max_body_size" : "max_small_body_size",
                 c->max_body);
    else
        log_warn("event=request_refused listener=%s peer=%s status=%d reason=\"request head "
                 "malformed or over max_header_size=%zu\"",
                 c->hs->name, peer, status, c->hs->max_header);
}

static struct bufferevent *http_new_bev(struct event_base *base, void *arg)
{
    static const struct timeval zero = {0, 0};
    struct http_server *hs = arg;
    struct bufferevent *bev;

    if (hs->ctx != NULL) {
        SSL *ssl = SSL_new(hs->ctx);
        if (ssl == NULL) {
            log_ssl(LOG_LVL_ERR, "event=ssl_new_failed");
            return NULL;
        }
        bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    } else {
        bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    }
    if (bev == NULL)
        return NULL;
    struct http_conn *c = xcalloc(1, sizeof(*c));
    c->hs = hs;
    c->bev = bev;
    c->fd = -1;
    c->timer = evtimer_new(base, http_conn_on_timer, c);
    evtimer_add(c->timer, &zero); /* adoption, once evhttp has set the connection up */
    c->max_body = http_route_limit(hs, NULL);
    c->out_cb = evbuffer_add_cb(bufferevent_get_output(bev), http_conn_on_output, c);
    c->in_cb = evbuffer_add_cb(bufferevent_get_input(bev), http_conn_on_input, c);
    c->next = hs->conn_list;
    if (c->next != NULL)
        c->next->prev = c;
    hs->conn_list = c;
    hs->conns++;
    http_accept_check(hs);
    return bev;
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
    if (evcon != NULL)
        evhttp_connection_get_peer(evcon, &host, &port);
    if (host == NULL)
        host = "-";
    size_t n = strnlen(host, len - 1);
    memcpy(out, host, n);
    out[n] = '\0';
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
    struct http_conn *c = http_conn_of(r);
    if (c != NULL) { /* the handler has it now: no deadline until it answers */
        c->busy = 1;
        evtimer_del(c->timer);
    }
    hs->inflight++;
    if (log_level >= LOG_LVL_DEBUG) {
        char path[256];
        log_debug("event=request listener=%s peer=%s path=%s", hs->name, req->peer,
                  log_str(req->path, path, sizeof(path)));
    }

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
    hs->max_small = lim->max_small_body;
    hs->max_body = lim->max_body;
    /* New connections start small; http_conn_scan raises it per route. */
    evhttp_set_max_body_size(hs->http, (ev_ssize_t)http_route_limit(hs, NULL));
    evhttp_set_max_headers_size(hs->http, (ev_ssize_t)lim->max_header);
    evhttp_set_timeout(hs->http, lim->timeout_s);
    hs->max_conns = lim->max_connections;
    hs->timeout_s = lim->timeout_s;
    hs->max_header = lim->max_header;
    http_accept_check(hs);
}

/* What a listener and a test server share: the routes and their metrics. */
static struct http_server *http_server_alloc(const char *name, const struct http_route *routes,
                                             void *app)
{
    struct http_server *hs = xcalloc(1, sizeof(*hs));
    http_nservers++;
    hs->name = xstrdup(name);
    hs->routes = routes;
    while (routes[hs->nroutes].path != NULL)
        hs->nroutes++;
    hs->ep = xcalloc(hs->nroutes + 1, sizeof(*hs->ep));
    hs->app = app;
    return hs;
}

/* The server without its socket: http_server_new binds one, http_server_adopt
 * takes one. */
static struct http_server *http_server_make(struct event_base *base, const char *name, SSL_CTX *ctx,
                                            const struct http_route *routes, void *app,
                                            const struct http_limits *lim)
{
    struct http_server *hs = http_server_alloc(name, routes, app);
    hs->base = base;
    hs->http = evhttp_new(base);
    hs->ctx = ctx;
    if (ctx != NULL)
        SSL_CTX_up_ref(ctx);
    http_server_set_limits(hs, lim);
    evhttp_set_allowed_methods(hs->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                             EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD |
                                             EVHTTP_REQ_PATCH);
    evhttp_set_bevcb(hs->http, http_new_bev, hs); /* TLS, or plain when ctx is NULL */
    evhttp_set_gencb(hs->http, http_dispatch, hs);
    return hs;
}

struct http_server *http_server_new(struct event_base *base, const char *name, const char *addr,
                                    SSL_CTX *ctx, const struct http_route *routes, void *app,
                                    const struct http_limits *lim)
{
    char host[256];
    int port;

    if (http_split_addr(addr, host, sizeof(host), &port) != 0) {
        log_err("event=bad_listen_address listener=%s addr=%s", name, addr);
        return NULL;
    }
    struct http_server *hs = http_server_make(base, name, ctx, routes, app, lim);
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

struct http_server *http_server_adopt(struct event_base *base, const char *name, int fd,
                                      SSL_CTX *ctx, const struct http_route *routes, void *app,
                                      const struct http_limits *lim)
{
    struct http_server *hs = http_server_make(base, name, ctx, routes, app, lim);
    hs->bound = evhttp_accept_socket_with_handle(hs->http, fd);
    if (hs->bound == NULL) {
        log_err("event=adopt_failed listener=%s fd=%d errno=%d", name, fd, errno);
        http_server_free(hs);
        return NULL;
    }
    http_tune_listener(hs);
    log_debug("event=listening listener=%s port=%d inherited=1", name, hs->port);
    return hs;
}

int http_listen_socket(const char *addr, int *port)
{
    char host[256], ps[8];
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *ai = NULL;
    int one = 1, fd = -1;
    if (http_split_addr(addr, host, sizeof(host), port) != 0)
        return -1;
    snprintf(ps, sizeof(ps), "%d", *port);
    if (getaddrinfo(host, ps, &hints, &ai) != 0 || ai == NULL)
        return -1;
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, HTTP_LISTEN_BACKLOG) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        errno = e;
        return -1;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

void http_server_free(struct http_server *hs)
{
    if (hs == NULL)
        return;
    hs->bound = NULL; /* evhttp_free closes it; http_accept_check must not touch it */
    if (hs->http != NULL)
        evhttp_free(hs->http);    /* runs http_conn_on_close for every adopted connection */
    while (hs->conn_list != NULL) /* accepted this loop turn, never adopted */
        http_conn_unlink(hs->conn_list, 0);
    assert(hs->conns == 0);
    SSL_CTX_free(hs->ctx);
    free(hs->ep);
    free(hs->name);
    free(hs);
    if (--http_nservers == 0) {
        free(http_by_fd);
        http_by_fd = NULL;
        http_by_fd_len = 0;
    }
}

int http_server_port(const struct http_server *hs)
{
    return hs->port;
}

void http_server_set_ctx(struct http_server *hs, SSL_CTX *ctx)
{
    SSL_CTX_up_ref(ctx);
    SSL_CTX_free(hs->ctx); /* live connections keep their own reference */
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

int http_server_unsent(const struct http_server *hs)
{
    int n = 0;
    if (hs == NULL)
        return 0;
    for (const struct http_conn *c = hs->conn_list; c != NULL; c = c->next)
        n += evbuffer_get_length(bufferevent_get_output(c->bev)) > 0;
    return n;
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
    return req->test_method != 0 ? req->test_method : http_method_of(req->r);
}

const char *req_path(const struct req *req)
{
    return req->path;
}

const char *req_query(const struct req *req)
{
    const struct evhttp_uri *uri =
        req->test_uri != NULL ? req->test_uri : evhttp_request_get_evhttp_uri(req->r);
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
    if (req->test_cert != NULL)
        return req->test_cert;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req->r);
    if (evcon == NULL)
        return NULL;
    return tls_peer_cert(bufferevent_openssl_get_ssl(evhttp_connection_get_bufferevent(evcon)));
}

void req_add_header(struct req *req, const char *name, const char *value)
{
    evhttp_add_header(evhttp_request_get_output_headers(req->r), name, value);
}

static void http_test_answer(struct req *req, int status, struct evbuffer *out)
{
    struct evbuffer *h = evbuffer_new();
    struct evkeyval *kv;
    TAILQ_FOREACH(kv, evhttp_request_get_output_headers(req->r), next)
    evbuffer_add_printf(h, "%s: %s\n", kv->key, kv->value);
    evbuffer_add(h, "", 1);
    size_t len = evbuffer_get_length(out);
    req->test_done(req->test_arg, status, (const char *)evbuffer_pullup(h, -1),
                   len > 0 ? evbuffer_pullup(out, -1) : (const unsigned char *)"", len);
    evbuffer_free(h);
}

static void http_req_done(struct req *req, int status)
{
    metrics_endpoint_observe(&req->hs->ep[req->route], status,
                             (double)(metrics_now_ns() - req->t0) / 1e9);
    req->hs->inflight--;
    free(req->path_own);
    free(req->user);
    if (req->test_uri != NULL)
        evhttp_uri_free(req->test_uri);
    X509_free(req->test_cert);
    free(req);
}

/* evhttp queues the answer, head and body as separate pieces, and turns
 * writing on; bufferevent_openssl (2.1, on a socket) writes only once the
 * socket polls writable, a loop turn later (an epoll_wait and two
 * epoll_ctl), and each piece as its own TLS record (two write(2)s).  So the
 * answer goes here at once, as one record: one SSL_write, one write(2).
 * Then the write callback evhttp waits for, as the bufferevent would run it.
 * Only a whole answer that had nothing queued before it (a write the socket
 * refused is retried by the bufferevent from the same bytes), and at most a
 * record's worth; whatever does not go stays queued for the bufferevent. */
#define HTTP_FLUSH_MAX 16384

static void http_conn_flush(struct http_conn *c, size_t queued_before)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    size_t len = evbuffer_get_length(out);
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    if (queued_before != 0 || len == 0 || len > HTTP_FLUSH_MAX || ssl == NULL)
        return;
    const unsigned char *p = evbuffer_pullup(out, -1);
    if (p == NULL || SSL_write(ssl, p, (int)len) != (int)len) {
        /* The bufferevent's own write meets the same condition and deals
         * with it; nothing may stay on this thread's error queue, where
         * the next SSL_get_error on any connection would find it. */
        ERR_clear_error();
        return;
    }
    evbuffer_drain(out, len);
    /* Writing off within this loop turn: the epoll changelist drops the
     * write interest evhttp asked for before it reaches the kernel. */
    bufferevent_disable(c->bev, EV_WRITE);
    bufferevent_trigger(c->bev, EV_WRITE, BEV_TRIG_DEFER_CALLBACKS);
}

/* The Date header evhttp adds to an HTTP/1.1 answer that has none, made
 * once a second instead of per answer (gmtime_r and a format: 3% of an Idle
 * poll's work), in the same place among the headers. */
static void http_add_date(struct req *req)
{
    static time_t last = -1;
    static char date[64];
    if (req->r->major != 1 || req->r->minor < 1)
        return;
    time_t now = time(NULL);
    if (now != last) {
        struct tm tm;
        gmtime_r(&now, &tm);
        if (evutil_date_rfc1123(date, sizeof(date), &tm) == 0)
            return;
        last = now;
    }
    req_add_header(req, "Date", date);
}

void req_respond(struct req *req, int status, const char *ctype, const void *body, size_t len)
{
    struct evbuffer *out = evhttp_request_get_output_buffer(req->r);
    if (ctype != NULL)
        req_add_header(req, "Content-Type", ctype);
    http_add_date(req);
    if (len > 0)
        evbuffer_add(out, body, len);
    struct http_conn *c = http_conn_of(req->r);
    size_t queued = c != NULL ? evbuffer_get_length(bufferevent_get_output(c->bev)) : 0;
    if (req->test_done != NULL)
        http_test_answer(req, status, out);
    evhttp_send_reply(req->r, status, NULL, NULL); /* no connection: just frees r */
    if (c != NULL)
        http_conn_flush(c, queued); /* still busy: http_conn_on_output ignores it */
    /* The next request on this connection has timeout_s for its head.  (The
     * reply is only queued here: the connection is not freed before the
     * loop writes it.) */
    if (c != NULL)
        http_conn_arm(c);
    http_req_done(req, status);
}

void req_respond_json(struct req *req, int status, const char *json)
{
    req_respond(req, status, "application/json", json, strlen(json));
}

/* The length of the valid UTF-8 sequence at p (n bytes left), or 0: the
 * rules JSON parsers hold a body to (no overlong forms, no surrogates, at
 * most U+10FFFF). */
static size_t http_utf8_len(const unsigned char *p, size_t n)
{
    unsigned char lo = 0x80, hi = 0xbf;
    size_t len;
    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        len = 2;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        len = 3;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        len = 4;
    else
        return 0;
    if (p[0] == 0xe0)
        lo = 0xa0;
    else if (p[0] == 0xed)
        hi = 0x9f;
    else if (p[0] == 0xf0)
        lo = 0x90;
    else if (p[0] == 0xf4)
        hi = 0x8f;
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return len;
}

void req_fail(struct req *req, int status, const char *why)
{
    char body[256], path[256], reason[256];
    /* The path and the reason may carry what the client sent. */
    log_warn("event=request_failed listener=%s peer=%s path=%s status=%d reason=\"%s\"",
             req->hs->name, req->peer, log_str(req->path, path, sizeof(path)), status,
             log_str(why, reason, sizeof(reason)));
    /* why may quote the client's bytes (an unknown RequestType): what is
     * not UTF-8 becomes '?', or the body would not be JSON. */
    size_t n = (size_t)snprintf(body, sizeof(body), "{\"error\":\"");
    const unsigned char *p = (const unsigned char *)why, *end = p + strlen(why);
    while (p < end && n < sizeof(body) - 8) {
        size_t k = http_utf8_len(p, (size_t)(end - p));
        if (k == 0 || n + k >= sizeof(body) - 8) {
            body[n++] = '?';
            p++;
            continue;
        }
        if (*p == '"' || *p == '\\')
            body[n++] = '\\';
        if (k == 1) {
            body[n++] = *p < 0x20 ? ' ' : (char)*p;
        } else {
            memcpy(body + n, p, k);
            n += k;
        }
        p += k;
    }
    snprintf(body + n, sizeof(body) - n, "\"}\n");
    req_respond_json(req, status, body);
}

/* ---- for tests only: requests made from bytes (http.h) ---- */

struct http_server *http_test_server_new(const char *name, const struct http_route *routes,
                                         void *app)
{
    struct http_server *hs = http_server_alloc(name, routes, app);
    hs->max_conns = 1;
    return hs;
}

static int http_test_method(const char *m)
{
    static const char *const names[] = {"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"};
    for (size_t i = 0; i < ARRAY_LEN(names); i++)
        if (strcmp(m, names[i]) == 0)
            return 1 << i;
    return 0;
}

/* "Name: value" lines into r's input headers; -1 on a line without ':'. */
static int http_test_headers(struct evhttp_request *r, const char *headers)
{
    for (const char *p = headers; p != NULL && *p != '\0';) {
        size_t n = strcspn(p, "\n"), k = strcspn(p, ":");
        if (k >= n)
            return -1;
        char *line = xmalloc(n + 1);
        memcpy(line, p, n);
        line[n] = '\0';
        char *v = line + k + 1;
        line[k] = '\0';
        v += strspn(v, " ");
        evhttp_add_header(evhttp_request_get_input_headers(r), line, v);
        free(line);
        p += n + (p[n] == '\n');
    }
    return 0;
}

int http_test_request(struct http_server *hs, const struct http_test_req *t,
                      http_test_done_fn *done, void *arg)
{
    struct evhttp_uri *uri = evhttp_uri_parse_with_flags(t->target, EVHTTP_URI_NONCONFORMANT);
    int m = http_test_method(t->method);
    struct evhttp_request *r = evhttp_request_new(NULL, NULL);
    if (uri == NULL || m == 0 || r == NULL || http_test_headers(r, t->headers) != 0 ||
        evbuffer_add(evhttp_request_get_input_buffer(r), t->body, t->len) != 0) {
        if (uri != NULL)
            evhttp_uri_free(uri);
        if (r != NULL)
            evhttp_request_free(r);
        return -1;
    }
    struct req *req = xcalloc(1, sizeof(*req));
    req->hs = hs;
    req->r = r;
    req->t0 = metrics_now_ns();
    req->test_method = m;
    req->test_uri = uri;
    req->test_done = done;
    req->test_arg = arg;
    if (t->cert != NULL && X509_up_ref(t->cert) == 1)
        req->test_cert = t->cert;
    req->path = evhttp_uri_get_path(uri);
    if (req->path == NULL || *req->path == '\0')
        req->path = "/";
    snprintf(req->peer, sizeof(req->peer), "%s", t->peer != NULL ? t->peer : "127.0.0.1");
    hs->inflight++;
    const struct http_route *rt = http_match(hs->routes, req->path, &(int){0});
    req->route = rt != NULL ? (size_t)(rt - hs->routes) : hs->nroutes;
    if (rt == NULL)
        req_fail(req, 404, "no such endpoint");
    else if ((rt->methods & m) == 0)
        req_fail(req, 405, "method not allowed");
    else
        rt->fn(req, hs->app);
    return 0;
}

/* ---- streamed answers ---- */

#define HTTP_STREAM_SNDBUF_MAX (256 * 1024)

struct http_stream {
    struct req *req;
    struct http_conn *c;
    size_t max;
    http_stream_close_fn *on_close;
    void *arg;
    int dropping; /* http_stream_write() closes the connection itself */
};

struct http_stream *req_stream_start(struct req *req, const char *ctype, size_t max_buffered,
                                     http_stream_close_fn *on_close, void *arg)
{
    struct http_conn *c = http_conn_of(req->r);
    if (c == NULL || c->stream != NULL) {
        req_fail(req, 500, "no connection to stream on");
        return NULL;
    }
    struct http_stream *s = xcalloc(1, sizeof(*s));
    *s = (struct http_stream){req, c, max_buffered, on_close, arg, 0};
    c->stream = s;
    req_add_header(req, "Content-Type", ctype);
    req_add_header(req, "Cache-Control", "no-store");
    evhttp_send_reply_start(req->r, 200, "OK");
    /* evhttp's idle timeout would end a stream the client never writes to. */
    struct timeval w = {c->hs->timeout_s, 0};
    bufferevent_set_timeouts(c->bev, NULL, &w);
    /* The kernel's share of the bound: an autotuned send buffer (up to
     * tcp_wmem, megabytes) would hide a slow reader for that long. */
    int snd = max_buffered < HTTP_STREAM_SNDBUF_MAX ? (int)max_buffered : HTTP_STREAM_SNDBUF_MAX;
    if (setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof(snd)) != 0)
        log_debug("event=stream_sndbuf_failed errno=%d", errno);
    return s;
}

size_t http_stream_buffered(const struct http_stream *s)
{
    return evbuffer_get_length(bufferevent_get_output(s->c->bev));
}

int http_stream_write(struct http_stream *s, const void *data, size_t len)
{
    if (http_stream_buffered(s) > s->max) {
        char peer[INET6_ADDRSTRLEN + 8];
        http_conn_peer(s->c, peer, sizeof(peer));
        log_warn("event=stream_dropped listener=%s peer=%s reason=slow_reader buffered=%zu "
                 "max=%zu",
                 s->c->hs->name, peer, http_stream_buffered(s), s->max);
        s->dropping = 1;
        /* Frees the request too, and runs http_conn_on_close: s goes there. */
        evhttp_connection_free(s->c->evcon);
        return -1;
    }
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, data, len);
    evhttp_send_reply_chunk(s->req->r, b);
    evbuffer_free(b);
    return 0;
}

void http_stream_end(struct http_stream *s)
{
    struct http_conn *c = s->c;
    c->stream = NULL;
    evhttp_send_reply_end(s->req->r);
    struct timeval t = {c->hs->timeout_s, 0};
    bufferevent_set_timeouts(c->bev, &t, &t);
    http_conn_arm(c);
    http_req_done(s->req, 200);
    free(s);
}

/* The connection is going (the peer closed it, a write failed, the stream was
 * dropped, or evhttp_free). */
static void http_stream_closed(struct http_stream *s)
{
    struct evhttp_request *r = s->req->r;
    s->c->stream = NULL;
    /* On EOF evhttp detaches a request the user still sends on, leaving it
     * to evhttp_send_reply_end() to free; attached, the connection frees it. */
    if (!s->dropping && evhttp_request_get_connection(r) == NULL)
        evhttp_send_reply_end(r);
    http_req_done(s->req, 200);
    if (!s->dropping && s->on_close != NULL)
        s->on_close(s->arg);
    free(s);
}
