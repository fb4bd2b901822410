/* http.h: the thin layer over evhttp + bufferevent_openssl.  One
 * http_server per listener; a route table picks the handler; every request
 * is wrapped in a struct req that ends in exactly one req_respond().
 *
 * Ownership: the server owns its evhttp, listener and SSL_CTX reference.
 * A req is owned by the layer; a handler borrows it until it responds.  A
 * client may disconnect while a handler waits for Redis: the req stays valid
 * until req_respond(), which then just frees it. */
#ifndef MDMD_HTTP_H
#define MDMD_HTTP_H

#include "util.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct event_base;
struct evhttp_request;
struct http_server;
struct req;
typedef struct ssl_ctx_st SSL_CTX;
typedef struct x509_st X509;

enum http_method {
    HTTP_M_GET = 1 << 0,
    HTTP_M_POST = 1 << 1,
    HTTP_M_PUT = 1 << 2,
    HTTP_M_DELETE = 1 << 3,
    HTTP_M_HEAD = 1 << 4,
    HTTP_M_PATCH = 1 << 5,
};

typedef void http_handler_fn(struct req *req, void *app);

/* A route's body limit: max_small_body unless it says HTTP_BODY_LARGE. */
enum http_body { HTTP_BODY_SMALL = 0, HTTP_BODY_LARGE };

struct http_route {
    int methods;      /* mask of enum http_method */
    const char *path; /* exact, or a prefix when it ends in '*' */
    http_handler_fn *fn;
    enum http_body body; /* HTTP_BODY_LARGE: max_body; else max_small_body */
};

/* Body limits hold while the body is read: the request line picks the
 * route's limit before evhttp reads the head, so an oversized body is
 * answered 413 from its Content-Length (or as soon as a chunked one passes
 * the limit), never buffered whole. */
struct http_limits {
    size_t max_small_body; /* routes without HTTP_BODY_LARGE, unknown paths */
    size_t max_body;
    size_t max_header;
    int timeout_s;       /* idle timeout, and the deadline for a whole request */
    int max_connections; /* accepting pauses at this many open connections */
};

/* Binds addr ("host:port", port 0 = any free port) and serves TLS with ctx
 * (the server takes a reference), or plain HTTP when ctx is NULL; the limits
 * hold for both: accepting pauses at max_connections, and a whole request
 * (the TLS handshake included) must arrive within timeout_s of the accept or
 * of the previous answer.  routes ends with a {0} entry and must
 * outlive the server; app is passed to every handler. */
struct http_server *http_server_new(struct event_base *base, const char *name, const char *addr,
                                    SSL_CTX *ctx, const struct http_route *routes, void *app,
                                    const struct http_limits *lim) MDMD_MUSTCHECK;
/* The same on a listening socket bound before (http_listen_socket, inherited
 * across fork by every worker of core/super.h); the server owns fd. */
struct http_server *http_server_adopt(struct event_base *base, const char *name, int fd,
                                      SSL_CTX *ctx, const struct http_route *routes, void *app,
                                      const struct http_limits *lim) MDMD_MUSTCHECK;
/* A non-blocking, close-on-exec listening TCP socket on addr ("host:port");
 * *port is the port bound (port 0: any free one).  -1 with errno on failure. */
int http_listen_socket(const char *addr, int *port) MDMD_MUSTCHECK;
void http_server_free(struct http_server *hs);                     /* NULL-safe */
int http_server_port(const struct http_server *hs) MDMD_MUSTCHECK; /* the bound port */
void http_server_set_ctx(struct http_server *hs, SSL_CTX *ctx);    /* new handshakes use ctx */
void http_server_set_limits(struct http_server *hs, const struct http_limits *lim);
void http_server_stop_accepting(struct http_server *hs); /* graceful shutdown */
int http_server_inflight(const struct http_server *hs)
    MDMD_MUSTCHECK; /* requests not yet answered */
/* Connections with an answer not yet written out (NULL-safe: 0): shutdown
 * runs the loop until this is 0 before http_server_free() drops them. */
int http_server_unsent(const struct http_server *hs) MDMD_MUSTCHECK;
int http_server_connections(const struct http_server *hs) MDMD_MUSTCHECK;
/* For /metrics: the listener's name, its routes, and the numbers of route i
 * (i == http_server_nroutes(): requests that matched no route). */
struct metrics_endpoint;
const char *http_server_name(const struct http_server *hs);
size_t http_server_nroutes(const struct http_server *hs);
const struct http_route *http_server_route(const struct http_server *hs, size_t i); /* NULL: none */
const struct metrics_endpoint *http_server_endpoint(const struct http_server *hs, size_t i);

/* Prints "listener METHOD path" for each route and method of rt. */
void http_routes_print(FILE *f, const char *listener, const struct http_route *rt);

/* Request accessors; every pointer is borrowed and valid until req_respond(). */
int req_method(const struct req *req) MDMD_MUSTCHECK;
const char *req_path(const struct req *req);
const char *req_query(const struct req *req);                    /* NULL if none */
const char *req_header(const struct req *req, const char *name); /* NULL if absent */
const unsigned char *req_body(struct req *req, size_t *len);     /* NUL-terminated copy-free view */
const char *req_peer(const struct req *req);                     /* "ip" */
X509 *req_client_cert(const struct req *req);                    /* verified, or NULL */
/* The query parameter's decoded value (caller frees), or NULL. */
char *req_query_param(const struct req *req, const char *key);
/* Internal re-dispatch (the console's API runs the REST handlers): the path
 * req_path() returns from now on, and who an earlier, asynchronous auth step
 * let in (api_authorized() accepts such a request).  Both copied. */
void req_set_path(struct req *req, const char *path);
void req_set_user(struct req *req, const char *user);
const char *req_user(const struct req *req); /* NULL: none */
/* The route of rt (ends with {0}) that serves path, or NULL. */
const struct http_route *http_route_find(const struct http_route *rt, const char *path);

void req_add_header(struct req *req, const char *name, const char *value);
/* Ends the request: status line, Content-Type (NULL: none) and body. */
void req_respond(struct req *req, int status, const char *ctype, const void *body, size_t len);
void req_respond_json(struct req *req, int status, const char *json);
/* An error answer with a JSON body {"error": why} and a log line. */
void req_fail(struct req *req, int status, const char *why);

/* ---- for tests only (test/fuzz/fuzz_handler_*.c) ---------------------
 * A request made from bytes, with no listener, socket, TLS or evhttp
 * parsing: http_test_request() runs the route of hs that serves target's
 * path exactly as a dispatch from a listener would (404 and 405 included),
 * and the answer goes to done from inside req_respond(), with the status,
 * the response headers as "Name: value\n" lines and the body, all borrowed
 * for the call.  A handler that waits for the store or the worker answers
 * later, from the loop: the caller runs the loop until done has run.  The
 * limits of http_server_set_limits() do not apply (the caller bounds the
 * body).  Never used by mdmd itself. */
struct http_test_req {
    const char *method;  /* "GET", "PUT", ... */
    const char *target;  /* "/path?query" */
    const char *headers; /* "Name: value" lines separated by '\n', or NULL */
    const void *body;
    size_t len;
    X509 *cert;       /* stands for the verified TLS client certificate (a reference is
                         taken), or NULL */
    const char *peer; /* the client address, NULL: 127.0.0.1 */
};
typedef void http_test_done_fn(void *arg, int status, const char *headers, const void *body,
                               size_t len);
/* A server with hs's routes and app but no socket; http_server_free() frees it. */
struct http_server *http_test_server_new(const char *name, const struct http_route *routes,
                                         void *app) MDMD_MUSTCHECK;
/* 0 when the request was dispatched (done runs exactly once, maybe before
 * this returns); -1 when t is no request (unknown method, unparsable target
 * or header line): done never runs. */
int http_test_request(struct http_server *hs, const struct http_test_req *t,
                      http_test_done_fn *done, void *arg) MDMD_MUSTCHECK;
/* A streamed answer (Server-Sent Events): the status line and headers now,
 * the body chunk by chunk (chunked encoding) for as long as the caller wants.
 * The request stays in flight (the shutdown drain waits for it, so whoever
 * streams ends its streams at SIGTERM) and has no request deadline; the
 * connection's read timeout is off (a reader sends nothing) and its write
 * timeout is timeout_s (a reader that takes nothing for that long is gone);
 * its socket send buffer is max_buffered (at most 256 KB) instead of
 * autotuned, so that the kernel does not hide a slow reader behind megabytes.
 *
 * Ownership: the stream owns req from here; the caller holds the stream until
 * http_stream_end() or on_close.  on_close runs once, from the loop, when the
 * peer went away or the listener is freed; the stream is already gone then.
 * NULL (req answered 500): the connection could not be found. */
struct http_stream;
typedef void http_stream_close_fn(void *arg);
struct http_stream *req_stream_start(struct req *req, const char *ctype, size_t max_buffered,
                                     http_stream_close_fn *on_close, void *arg) MDMD_MUSTCHECK;
/* Queues len bytes.  0, or -1 when the output already held more than
 * max_buffered bytes (a slow reader): the connection is closed, the stream
 * is freed and on_close does not run. */
int http_stream_write(struct http_stream *s, const void *data, size_t len) MDMD_MUSTCHECK;
size_t http_stream_buffered(const struct http_stream *s); /* bytes not yet sent */
/* Ends the body (the last chunk) and frees s; on_close does not run.  The
 * connection stays open for the next request. */
void http_stream_end(struct http_stream *s);

#endif
