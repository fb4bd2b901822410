/* mdmctl_http.c: one HTTPS request per connection, blocking.  The server's
 * certificate is verified against --cacert (or the system store) and its
 * name or IP address against the URL, as any client of mdmd must. */
#include "mdmctl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "../core/util.h"

struct mdmctl_http_url {
    char host[256];
    char port[8];
    char base[256]; /* path prefix, "" or "/mdmd" */
};

static int mdmctl_http_parse_url(const char *url, struct mdmctl_http_url *u)
{
    const char *p = url;
    if (strncmp(p, "https://", 8) != 0) {
        fprintf(stderr, "mdmctl: the URL must start with https:// (got %s)\n", url);
        return -1;
    }
    p += 8;
    const char *end = p + strcspn(p, "/");
    const char *colon = NULL;
    if (*p == '[') { /* [IPv6]:port */
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (rb == NULL)
            return -1;
        snprintf(u->host, sizeof(u->host), "%.*s", (int)(rb - p - 1), p + 1);
        colon = rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        snprintf(u->host, sizeof(u->host), "%.*s", (int)((colon ? colon : end) - p), p);
    }
    snprintf(u->port, sizeof(u->port), "%.*s", colon ? (int)(end - colon - 1) : 3,
             colon ? colon + 1 : "443");
    snprintf(u->base, sizeof(u->base), "%s", end);
    size_t bl = strlen(u->base);
    if (bl > 0 && u->base[bl - 1] == '/')
        u->base[bl - 1] = '\0';
    return u->host[0] != '\0' && u->port[0] != '\0' ? 0 : -1;
}

static int mdmctl_http_connect(const struct mdmctl_http_url *u, int timeout_s)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
    struct timeval tv = {timeout_s, 0};
    int fd = -1, rc = getaddrinfo(u->host, u->port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "mdmctl: %s: %s\n", u->host, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            rc = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        fprintf(stderr, "mdmctl: cannot connect to %s port %s: %s\n", u->host, u->port,
                strerror(rc));
    return fd;
}

static void mdmctl_http_ssl_error(const char *what, const SSL *ssl)
{
    unsigned long e = ERR_get_error();
    long v = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (v != X509_V_OK)
        fprintf(stderr,
                "mdmctl: %s: certificate: %s (use --cacert with the server's CA, e.g. "
                "var/ca/ca.crt)\n",
                what, X509_verify_cert_error_string(v));
    else
        fprintf(stderr, "mdmctl: %s: %s\n", what,
                e != 0 ? ERR_reason_error_string(e) : "connection closed");
    ERR_clear_error();
}

static SSL_CTX *mdmctl_http_ctx(const struct mdmctl *m)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int ok = m->cacert != NULL ? SSL_CTX_load_verify_locations(ctx, m->cacert, NULL)
                               : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        fprintf(stderr, "mdmctl: cannot load CA file %s\n", m->cacert ? m->cacert : "(system)");
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* A handshake with the name (or IP address) of the URL checked. */
static SSL *mdmctl_http_tls(SSL_CTX *ctx, int fd, const char *host)
{
    unsigned char ip[16];
    SSL *ssl = SSL_new(ctx);
    int is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    SSL_set_fd(ssl, fd);
    if (is_ip) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
    } else {
        SSL_set_tlsext_host_name(ssl, host);
        SSL_set1_host(ssl, host);
    }
    if (SSL_connect(ssl) != 1) {
        mdmctl_http_ssl_error("TLS handshake failed", ssl);
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

static int mdmctl_http_write(SSL *ssl, const char *p, size_t n)
{
    while (n > 0) {
        int w = SSL_write(ssl, p, n > (1 << 20) ? 1 << 20 : (int)n);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads until the server closes; a missing close_notify is not an error
 * when the whole body (Content-Length) is there, which the caller checks. */
static char *mdmctl_http_read_all(SSL *ssl, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (cap - n < 16384)
            buf = xrealloc(buf, cap *= 2);
        int r = SSL_read(ssl, buf + n, (int)(cap - n - 1));
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    ERR_clear_error();
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Status line, Content-Length and Location of raw; the body moves to the front. */
static int mdmctl_http_parse(char *raw, size_t n, struct mdmctl_resp *out)
{
    char *eoh = strstr(raw, "\r\n\r\n");
    long clen = -1;
    if (eoh == NULL || sscanf(raw, "HTTP/1.%*d %d", &out->status) != 1)
        return -1;
    *eoh = '\0';
    for (char *l = strstr(raw, "\r\n"); l != NULL && l < eoh; l = strstr(l + 2, "\r\n")) {
        if (strncasecmp(l + 2, "Content-Length:", 15) == 0)
            clen = strtol(l + 17, NULL, 10);
        else if (strncasecmp(l + 2, "Location:", 9) == 0)
            sscanf(l + 11, "%255[^\r\n]", out->location);
    }
    size_t blen = n - (size_t)(eoh + 4 - raw);
    if (clen >= 0 && (size_t)clen > blen)
        return -1; /* cut short */
    if (clen >= 0)
        blen = (size_t)clen;
    memmove(raw, eoh + 4, blen);
    raw[blen] = '\0';
    out->body = raw;
    out->len = blen;
    return 0;
}

static char *mdmctl_http_head(const struct mdmctl *m, const struct mdmctl_http_url *u,
                              const char *method, const char *path, const char *ctype, size_t len)
{
    char ct[160] = "";
    if (ctype != NULL)
        snprintf(ct, sizeof(ct), "Content-Type: %s\r\nContent-Length: %zu\r\n", ctype, len);
    return xasprintf("%s %s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: mdmctl/%s\r\n"
                     "Accept: application/json\r\nAuthorization: Bearer %s\r\n%s"
                     "Connection: close\r\n\r\n",
                     method, u->base, path, u->host, MDMD_VERSION, m->key ? m->key : "", ct);
}

static int mdmctl_http_exchange(SSL *ssl, const char *head, const char *body, size_t len,
                                struct mdmctl_resp *out)
{
    size_t n;
    if (mdmctl_http_write(ssl, head, strlen(head)) != 0 ||
        (len > 0 && mdmctl_http_write(ssl, body, len) != 0)) {
        mdmctl_http_ssl_error("sending the request failed", NULL);
        return -1;
    }
    char *raw = mdmctl_http_read_all(ssl, &n);
    if (mdmctl_http_parse(raw, n, out) != 0) {
        fprintf(stderr, "mdmctl: no complete HTTP answer (%zu bytes)\n", n);
        free(raw);
        return -1;
    }
    return 0;
}

int mdmctl_http(const struct mdmctl *m, const char *method, const char *path, const char *ctype,
                const char *body, size_t len, struct mdmctl_resp *out)
{
    struct mdmctl_http_url u;
    int rc = -1, fd;
    memset(out, 0, sizeof(*out));
    if (mdmctl_http_parse_url(m->url, &u) != 0) {
        fprintf(stderr, "mdmctl: bad URL %s (https://host[:port])\n", m->url);
        return -1;
    }
    SSL_CTX *ctx = mdmctl_http_ctx(m);
    if (ctx == NULL || (fd = mdmctl_http_connect(&u, m->timeout_s)) < 0) {
        SSL_CTX_free(ctx);
        return -1;
    }
    SSL *ssl = mdmctl_http_tls(ctx, fd, u.host);
    if (ssl != NULL) {
        char *head = mdmctl_http_head(m, &u, method, path, ctype, len);
        rc = mdmctl_http_exchange(ssl, head, body, len, out);
        free(head);
        SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    close(fd);
    SSL_CTX_free(ctx);
    return rc;
}

void mdmctl_resp_free(struct mdmctl_resp *r)
{
    free(r->body);
    r->body = NULL;
}
