/* mockapns: a mock APNs for tests and benchmarks.  A real HTTP/2-over-TLS
 * server (libevent + bufferevent_openssl + an nghttp2 server session) that
 * checks every request as APNs does and answers as told.
 *
 *   mockapns --cert F --key F [--listen 127.0.0.1:0] [--port-file F]
 *            [--client-ca F] [--topic T] [--mode ok|410|400|429|500|503|403]
 *            [--fail-first N] [--goaway-after N] [--drop-after N] [--delay-ms D]
 *            [--max-streams M] [--record F] [--stats-file F] [--control-file F]
 *            [--log-level error|warn|info|debug]
 *
 * --record appends "token magic status" per answered request, flushed per
 * line, so a test or a device simulator can tail it ("" = no record; spaces
 * and control characters of a magic become '_').  --stats-file is rewritten
 * (atomically) whenever a connection opens or closes, the peak of concurrent
 * streams on one connection grows, a PING or GOAWAY happens, or the mode
 * changes:
 *   connections=N accepted=N requests=N answered=N peak_streams=N pings=N
 *   goaways=N mode=S          (one line; mode as an HTTP status, 200 = ok)
 * SIGUSR1 re-reads --control-file: "key value" lines with the option names
 * (mode, fail-first, goaway-after, drop-after, delay-ms).  SIGTERM/SIGINT exit 0.
 * Without --topic any com.apple.mgmt.* topic is accepted; without --client-ca
 * no client certificate is asked for (h2load can then drive the mock).
 * --fail-first N answers --mode to the first N valid requests (over all
 * connections), 200 afterwards.  --goaway-after N: after answering the N-th
 * request of a connection, GOAWAY naming the newest answered request as the
 * last processed, refuse newer streams, close once the rest is answered.
 * --drop-after N: reset the connection (TCP RST) when its N-th request
 * arrives, leaving it and everything in flight unanswered. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <jansson.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "../../core/log.h"
#include "../../core/util.h"

#define MOCK_BODY_MAX 4096 /* APNs payload limit */
#define MOCK_PATH_PREFIX "/3/device/"

struct mock_opts {
    char *listen, *port_file, *cert, *key, *client_ca, *topic;
    char *record, *stats_file, *control_file;
    long status;       /* --mode as an HTTP status; 200 = ok */
    long fail_first;   /* answer the error mode only for the first N requests */
    long goaway_after; /* per connection */
    long drop_after;   /* per connection */
    long delay_ms;
    long max_streams;
};

struct mock_conn;

struct mock_stream { /* one request, from HEADERS to stream close */
    TAILQ_ENTRY(mock_stream) link;
    struct mock_conn *c;
    int32_t id;
    struct event *timer; /* --delay-ms */
    int bad_hdr;         /* a header did not fit its buffer */
    char method[8], path[80], topic[256], push_type[16], priority[8];
    char expiration[24], apns_id[48];
    char *body;
    size_t body_len;
    int body_big;
    int status; /* decided answer */
    const char *reason;
    char magic[300]; /* from the body, for --record */
    char resp[160];  /* error body */
    size_t resp_len, resp_off;
};
TAILQ_HEAD(mock_streamq, mock_stream);

struct mock_conn {
    TAILQ_ENTRY(mock_conn) link;
    struct mock *m;
    struct bufferevent *bev;
    nghttp2_session *h2;
    struct mock_streamq streams;
    unsigned open;       /* streams open now */
    long requests;       /* complete requests on this connection */
    int32_t goaway_last; /* > 0 once GOAWAY was submitted */
    int32_t max_done;    /* highest stream id with a complete request */
    int drop;            /* --drop-after hit: reset after mem_recv */
    int closing;         /* done: free once the output drained */
};
TAILQ_HEAD(mock_connq, mock_conn);

struct mock {
    struct event_base *base;
    SSL_CTX *ctx;
    struct evconnlistener *lis;
    nghttp2_session_callbacks *cbs;
    FILE *record;
    struct mock_opts o;
    struct mock_connq conns;
    struct event *sig[3];
    unsigned nconns, accepted, peak;
    uint64_t requests, answered, decided, pings, goaways;
};

/* ------------------------------------------------------------------------ */
/* options */

static int mock_parse_mode(const char *v, long *out)
{
    static const char *const modes[] = {"ok", "410", "400", "429", "500", "503", "403"};
    for (size_t i = 0; i < ARRAY_LEN(modes); i++)
        if (strcmp(v, modes[i]) == 0) {
            *out = i == 0 ? 200 : atol(v);
            return 0;
        }
    return -1;
}

static int mock_parse_long(const char *v, long *out)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || n < 0)
        return -1;
    *out = n;
    return 0;
}

static int mock_set_opt(struct mock_opts *o, const char *name, const char *v)
{
    static const struct {
        const char *name;
        size_t off;
    } strs[] = {
        {"listen", offsetof(struct mock_opts, listen)},
        {"port-file", offsetof(struct mock_opts, port_file)},
        {"cert", offsetof(struct mock_opts, cert)},
        {"key", offsetof(struct mock_opts, key)},
        {"client-ca", offsetof(struct mock_opts, client_ca)},
        {"topic", offsetof(struct mock_opts, topic)},
        {"record", offsetof(struct mock_opts, record)},
        {"stats-file", offsetof(struct mock_opts, stats_file)},
        {"control-file", offsetof(struct mock_opts, control_file)},
    };
    static const struct {
        const char *name;
        size_t off;
    } nums[] = {
        {"fail-first", offsetof(struct mock_opts, fail_first)},
        {"goaway-after", offsetof(struct mock_opts, goaway_after)},
        {"drop-after", offsetof(struct mock_opts, drop_after)},
        {"delay-ms", offsetof(struct mock_opts, delay_ms)},
        {"max-streams", offsetof(struct mock_opts, max_streams)},
    };
    if (strcmp(name, "mode") == 0)
        return mock_parse_mode(v, &o->status);
    if (strcmp(name, "log-level") == 0)
        return (log_level = log_level_parse(v)) < 0 ? -1 : 0;
    for (size_t i = 0; i < ARRAY_LEN(strs); i++)
        if (strcmp(name, strs[i].name) == 0) {
            char **dst = (char **)((char *)o + strs[i].off);
            free(*dst);
            *dst = xstrdup(v);
            return 0;
        }
    for (size_t i = 0; i < ARRAY_LEN(nums); i++)
        if (strcmp(name, nums[i].name) == 0)
            return mock_parse_long(v, (long *)((char *)o + nums[i].off));
    return -1;
}

static void mock_opts_free(struct mock_opts *o)
{
    free(o->listen);
    free(o->port_file);
    free(o->cert);
    free(o->key);
    free(o->client_ca);
    free(o->topic);
    free(o->record);
    free(o->stats_file);
    free(o->control_file);
}

static void mock_usage(void)
{
    fprintf(stderr, "usage: mockapns --cert F --key F [--listen 127.0.0.1:0] [--port-file F]\n"
                    "  [--client-ca F] [--topic T] [--mode ok|410|400|429|500|503|403]\n"
                    "  [--fail-first N] [--goaway-after N] [--drop-after N] [--delay-ms D]\n"
                    "  [--max-streams M] [--record F] [--stats-file F] [--control-file F]\n"
                    "  [--log-level error|warn|info|debug]\n");
    exit(2);
}

static void mock_parse_args(struct mock_opts *o, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        char name[64];
        const char *a = argv[i], *eq, *v;
        if (strncmp(a, "--", 2) != 0)
            mock_usage();
        a += 2;
        if ((eq = strchr(a, '=')) != NULL) {
            snprintf(name, sizeof(name), "%.*s", (int)(eq - a), a);
            v = eq + 1;
        } else {
            snprintf(name, sizeof(name), "%s", a);
            if (++i >= argc)
                mock_usage();
            v = argv[i];
        }
        if (mock_set_opt(o, name, v) < 0) {
            fprintf(stderr, "mockapns: bad option --%s %s\n", name, v);
            mock_usage();
        }
    }
    if (o->cert == NULL || o->key == NULL)
        mock_usage();
}

/* ------------------------------------------------------------------------ */
/* stats and record */

/* Written through a temp file and rename() so a poller never reads half. */
static void mock_stats_write(struct mock *m)
{
    char line[256], *tmp;
    FILE *f;
    if (m->o.stats_file == NULL)
        return;
    snprintf(line, sizeof(line),
             "connections=%u accepted=%u requests=%llu answered=%llu peak_streams=%u "
             "pings=%llu goaways=%llu mode=%ld\n",
             m->nconns, m->accepted, (unsigned long long)m->requests,
             (unsigned long long)m->answered, m->peak, (unsigned long long)m->pings,
             (unsigned long long)m->goaways, m->o.status);
    tmp = xasprintf("%s.tmp", m->o.stats_file);
    if ((f = fopen(tmp, "w")) != NULL) {
        fputs(line, f);
        if (fclose(f) == 0 && rename(tmp, m->o.stats_file) == 0) {
            free(tmp);
            return;
        }
    }
    log_warn("event=mock_stats_write_failed");
    free(tmp);
}

static void mock_record(struct mock *m, const struct mock_stream *s)
{
    const char *tok = s->path + strlen(MOCK_PATH_PREFIX);
    if (m->record == NULL)
        return;
    if (strncmp(s->path, MOCK_PATH_PREFIX, strlen(MOCK_PATH_PREFIX)) != 0 || *tok == '\0')
        tok = "-";
    fprintf(m->record, "%s %s %d\n", tok, s->magic[0] ? s->magic : "-", s->status);
    fflush(m->record); /* a tailing reader sees every answered push at once */
}

/* ------------------------------------------------------------------------ */
/* validation, as APNs does it */

static int mock_is_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
              (s[i] >= 'A' && s[i] <= 'F')))
            return 0;
    return 1;
}

static int mock_is_uuid(const char *s)
{
    if (strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        char one[2] = {s[i], '\0'};
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !mock_is_hex(one, 1))
            return 0;
    }
    return 1;
}

static int mock_is_digits(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

static int mock_fail(struct mock_stream *s, int status, const char *reason)
{
    s->status = status;
    s->reason = reason;
    return -1;
}

static int mock_check_headers(struct mock *m, struct mock_stream *s)
{
    SSL *ssl = bufferevent_openssl_get_ssl(s->c->bev);
    const char *tok = s->path + strlen(MOCK_PATH_PREFIX);
    if (m->o.client_ca != NULL && SSL_get0_peer_certificate(ssl) == NULL)
        return mock_fail(s, 403, "MissingProviderToken");
    if (strcmp(s->method, "POST") != 0)
        return mock_fail(s, 405, "MethodNotAllowed");
    if (s->bad_hdr || strncmp(s->path, MOCK_PATH_PREFIX, strlen(MOCK_PATH_PREFIX)) != 0)
        return mock_fail(s, 404, "BadPath");
    if (!mock_is_hex(tok, 64))
        return mock_fail(s, 400, "BadDeviceToken");
    if (s->topic[0] == '\0')
        return mock_fail(s, 400, "MissingTopic");
    if (m->o.topic ? strcmp(s->topic, m->o.topic) != 0
                   : strncmp(s->topic, "com.apple.mgmt.", 15) != 0)
        return mock_fail(s, 400, "TopicDisallowed");
    if (strcmp(s->push_type, "mdm") != 0)
        return mock_fail(s, 400, "InvalidPushType");
    if (s->priority[0] && strcmp(s->priority, "10") != 0 && strcmp(s->priority, "5") != 0)
        return mock_fail(s, 400, "BadPriority");
    if (s->expiration[0] && !mock_is_digits(s->expiration))
        return mock_fail(s, 400, "BadExpirationDate");
    if (s->apns_id[0] && !mock_is_uuid(s->apns_id))
        return mock_fail(s, 400, "BadMessageId");
    return 0;
}

static int mock_check_body(struct mock_stream *s)
{
    json_error_t e;
    if (s->body_big)
        return mock_fail(s, 413, "PayloadTooLarge");
    if (s->body_len == 0)
        return mock_fail(s, 400, "PayloadEmpty");
    json_t *j = json_loadb(s->body, s->body_len, 0, &e);
    const char *magic = json_string_value(json_object_get(j, "mdm"));
    if (magic != NULL) {
        /* one token per field in the record line: no spaces or controls */
        size_t i = 0;
        for (; magic[i] && i + 1 < sizeof(s->magic); i++)
            s->magic[i] = (unsigned char)magic[i] <= ' ' ? '_' : magic[i];
        s->magic[i] = '\0';
    }
    json_decref(j);
    return magic ? 0 : mock_fail(s, 400, "BadPayload");
}

static const char *mock_mode_reason(long status)
{
    switch (status) {
    case 410: return "Unregistered";
    case 400: return "BadDeviceToken";
    case 429: return "TooManyRequests";
    case 500: return "InternalServerError";
    case 503: return "ServiceUnavailable";
    case 403: return "BadCertificate";
    }
    return "";
}

static void mock_decide(struct mock *m, struct mock_stream *s)
{
    if (mock_check_headers(m, s) < 0 || mock_check_body(s) < 0)
        return;
    m->decided++;
    if (m->o.status == 200 || (m->o.fail_first > 0 && m->decided > (uint64_t)m->o.fail_first)) {
        s->status = 200;
        s->reason = NULL;
    } else {
        s->status = (int)m->o.status;
        s->reason = mock_mode_reason(m->o.status);
    }
}

/* ------------------------------------------------------------------------ */
/* answers */

static ssize_t mock_read_resp(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len,
                              uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct mock_stream *s = src->ptr;
    size_t n = s->resp_len - s->resp_off;
    if (n > len)
        n = len;
    memcpy(buf, s->resp + s->resp_off, n);
    s->resp_off += n;
    if (s->resp_off == s->resp_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static void mock_uuid(char out[37])
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof(b)) != 1)
        memset(b, 0x5a, sizeof(b));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

#define MOCK_NV(n, v)                                                                              \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE                 \
    }

static void mock_respond(struct mock_conn *c, struct mock_stream *s)
{
    char status[8], id[37];
    snprintf(status, sizeof(status), "%d", s->status);
    mock_uuid(id);
    if (s->reason != NULL && s->status == 410)
        s->resp_len =
            (size_t)snprintf(s->resp, sizeof(s->resp), "{\"reason\":\"%s\",\"timestamp\":%lld}",
                             s->reason, (long long)time(NULL) * 1000);
    else if (s->reason != NULL)
        s->resp_len = (size_t)snprintf(s->resp, sizeof(s->resp), "{\"reason\":\"%s\"}", s->reason);
    nghttp2_nv nv[] = {MOCK_NV(":status", status), MOCK_NV("apns-id", id),
                       MOCK_NV("content-type", "application/json")};
    nghttp2_data_provider dp = {.source.ptr = s, .read_callback = mock_read_resp};
    int rv =
        nghttp2_submit_response(c->h2, s->id, nv, s->resp_len ? 3 : 2, s->resp_len ? &dp : NULL);
    if (rv != 0) {
        log_warn("event=mock_submit_failed error=\"%s\"", nghttp2_strerror(rv));
        return;
    }
    c->m->answered++;
    mock_record(c->m, s);
}

static int mock_conn_flush(struct mock_conn *c);

static void mock_on_delay(evutil_socket_t fd, short what, void *arg)
{
    struct mock_stream *s = arg;
    struct mock_conn *c = s->c;
    mock_respond(c, s);
    mock_conn_flush(c);
}

/* GOAWAY names the newest request answered so far as the last one we
 * process: nghttp2 clients send every HEADERS before the bodies, so streams
 * above it are open here but untouched.  They are refused, and the client
 * may resend them without a duplicate here. */
static void mock_goaway(struct mock *m, struct mock_conn *c)
{
    c->goaway_last = c->max_done;
    nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE, c->goaway_last, NGHTTP2_NO_ERROR,
                          (const uint8_t *)"Shutdown", 8);
    m->goaways++;
    mock_stats_write(m);
}

static void mock_request_done(struct mock_conn *c, struct mock_stream *s)
{
    struct mock *m = c->m;
    if (c->goaway_last > 0 && s->id > c->goaway_last) {
        nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_REFUSED_STREAM);
        return;
    }
    c->requests++;
    m->requests++;
    if (s->id > c->max_done)
        c->max_done = s->id;
    if (m->o.drop_after > 0 && c->requests >= m->o.drop_after) {
        c->drop = 1; /* unanswered, like a server that died mid-request */
        return;
    }
    mock_decide(m, s);
    if (m->o.goaway_after > 0 && c->requests == m->o.goaway_after)
        mock_goaway(m, c);
    if (m->o.delay_ms > 0) {
        struct timeval tv = {m->o.delay_ms / 1000, (m->o.delay_ms % 1000) * 1000};
        s->timer = evtimer_new(m->base, mock_on_delay, s);
        evtimer_add(s->timer, &tv);
    } else {
        mock_respond(c, s);
    }
}

/* ------------------------------------------------------------------------ */
/* nghttp2 server callbacks (user_data = struct mock_conn) */

static int mock_on_begin_headers(nghttp2_session *h2, const nghttp2_frame *frame, void *ud)
{
    struct mock_conn *c = ud;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct mock_stream *s = xcalloc(1, sizeof(*s));
    s->c = c;
    s->id = frame->hd.stream_id;
    TAILQ_INSERT_TAIL(&c->streams, s, link);
    nghttp2_session_set_stream_user_data(h2, s->id, s);
    if (++c->open > c->m->peak) {
        c->m->peak = c->open;
        mock_stats_write(c->m);
    }
    return 0;
}

static void mock_copy_hdr(struct mock_stream *s, char *dst, size_t dstlen, const uint8_t *v,
                          size_t len)
{
    if (len >= dstlen) {
        s->bad_hdr = 1;
        len = dstlen - 1;
    }
    memcpy(dst, v, len);
    dst[len] = '\0';
}

static int mock_on_header(nghttp2_session *h2, const nghttp2_frame *frame, const uint8_t *name,
                          size_t namelen, const uint8_t *v, size_t vlen, uint8_t flags, void *ud)
{
    struct mock_stream *s = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);
    static const struct {
        const char *name;
        size_t off, len;
    } hdrs[] = {
#define MOCK_HDR(n, f) {n, offsetof(struct mock_stream, f), sizeof(((struct mock_stream *)0)->f)}
        MOCK_HDR(":method", method),         MOCK_HDR(":path", path),
        MOCK_HDR("apns-topic", topic),       MOCK_HDR("apns-push-type", push_type),
        MOCK_HDR("apns-priority", priority), MOCK_HDR("apns-expiration", expiration),
        MOCK_HDR("apns-id", apns_id),
#undef MOCK_HDR
    };
    if (s == NULL || frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    for (size_t i = 0; i < ARRAY_LEN(hdrs); i++)
        if (namelen == strlen(hdrs[i].name) && memcmp(name, hdrs[i].name, namelen) == 0)
            mock_copy_hdr(s, (char *)s + hdrs[i].off, hdrs[i].len, v, vlen);
    return 0;
}

static int mock_on_data(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data,
                        size_t len, void *ud)
{
    struct mock_stream *s = nghttp2_session_get_stream_user_data(h2, id);
    if (s == NULL || s->body_big)
        return 0;
    if (s->body_len + len > MOCK_BODY_MAX) {
        s->body_big = 1;
        return 0;
    }
    s->body = xrealloc(s->body, s->body_len + len);
    memcpy(s->body + s->body_len, data, len);
    s->body_len += len;
    return 0;
}

static int mock_on_frame_recv(nghttp2_session *h2, const nghttp2_frame *frame, void *ud)
{
    struct mock_conn *c = ud;
    if (frame->hd.type == NGHTTP2_PING && !(frame->hd.flags & NGHTTP2_FLAG_ACK)) {
        c->m->pings++;
        mock_stats_write(c->m);
        return 0;
    }
    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    struct mock_stream *s = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);
    if (s != NULL)
        mock_request_done(c, s);
    return 0;
}

static void mock_stream_free(struct mock_stream *s)
{
    if (s->timer != NULL)
        event_free(s->timer);
    free(s->body);
    free(s);
}

static int mock_on_stream_close(nghttp2_session *h2, int32_t id, uint32_t err, void *ud)
{
    struct mock_conn *c = ud;
    struct mock_stream *s = nghttp2_session_get_stream_user_data(h2, id);
    if (s == NULL)
        return 0;
    TAILQ_REMOVE(&c->streams, s, link);
    c->open--;
    mock_stream_free(s);
    return 0;
}

static nghttp2_session_callbacks *mock_callbacks(void)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        die("event=out_of_memory");
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, mock_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, mock_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, mock_on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, mock_on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, mock_on_stream_close);
    return cb;
}

/* ------------------------------------------------------------------------ */
/* connections */

static void mock_conn_free(struct mock_conn *c)
{
    struct mock *m = c->m;
    struct mock_stream *s;
    while ((s = TAILQ_FIRST(&c->streams)) != NULL) {
        TAILQ_REMOVE(&c->streams, s, link);
        mock_stream_free(s); /* nghttp2_session_del() does not call on_stream_close */
    }
    if (c->h2 != NULL)
        nghttp2_session_del(c->h2);
    bufferevent_free(c->bev);
    TAILQ_REMOVE(&m->conns, c, link);
    m->nconns--;
    free(c);
    mock_stats_write(m);
}

/* SO_LINGER 0 turns close() into a TCP RST: the client sees a reset, not EOF. */
static void mock_conn_drop(struct mock_conn *c)
{
    struct linger lg = {1, 0};
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    log_info("event=mock_drop requests=%ld open_streams=%u", c->requests, c->open);
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    mock_conn_free(c);
}

/* -1 when c was freed. */
static int mock_conn_flush(struct mock_conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->h2, &data);
        if (n < 0) {
            log_warn("event=mock_h2_error error=\"%s\"", nghttp2_strerror((int)n));
            mock_conn_free(c);
            return -1;
        }
        if (n == 0)
            break;
        evbuffer_add(out, data, (size_t)n);
    }
    if (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2)) {
        c->closing = 1;
        if (evbuffer_get_length(out) == 0) {
            mock_conn_free(c);
            return -1;
        }
    }
    return 0;
}

static void mock_on_read(struct bufferevent *bev, void *arg)
{
    struct mock_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (c->h2 == NULL)
        return;
    while (evbuffer_get_length(in) > 0 && !c->drop) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        ssize_t n = nghttp2_session_mem_recv(c->h2, v.iov_base, v.iov_len);
        if (n < 0) {
            log_warn("event=mock_h2_error error=\"%s\"", nghttp2_strerror((int)n));
            mock_conn_free(c);
            return;
        }
        evbuffer_drain(in, (size_t)n);
    }
    if (c->drop)
        mock_conn_drop(c);
    else
        mock_conn_flush(c);
}

static void mock_on_write(struct bufferevent *bev, void *arg)
{
    struct mock_conn *c = arg;
    if (c->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        mock_conn_free(c);
}

static void mock_conn_h2_start(struct mock_conn *c)
{
    nghttp2_settings_entry set[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, (uint32_t)c->m->o.max_streams},
    };
    if (nghttp2_session_server_new(&c->h2, c->m->cbs, c) != 0)
        die("event=out_of_memory");
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, set, ARRAY_LEN(set));
    /* The client's preface may have been read before this event ran. */
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        mock_on_read(c->bev, c);
    else
        mock_conn_flush(c);
}

static void mock_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct mock_conn *c = arg;
    unsigned long e;
    if (what & BEV_EVENT_CONNECTED) {
        mock_conn_h2_start(c);
        return;
    }
    while ((e = bufferevent_get_openssl_error(bev)) != 0) {
        const char *r = ERR_reason_error_string(e);
        log_info("event=mock_tls_error reason=\"%s\" code=%#lx", r ? r : "", e);
    }
    log_debug("event=mock_conn_closed what=%#x requests=%ld", what, c->requests);
    mock_conn_free(c);
}

static void mock_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                           int salen, void *arg)
{
    struct mock *m = arg;
    int one = 1;
    SSL *ssl = SSL_new(m->ctx);
    struct mock_conn *c = xcalloc(1, sizeof(*c));
    c->m = m;
    TAILQ_INIT(&c->streams);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->bev = bufferevent_openssl_socket_new(m->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                            BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (ssl == NULL || c->bev == NULL)
        die("event=mock_accept_failed");
    bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    bufferevent_setcb(c->bev, mock_on_read, mock_on_write, mock_on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    TAILQ_INSERT_TAIL(&m->conns, c, link);
    m->nconns++;
    m->accepted++;
    mock_stats_write(m);
}

/* ------------------------------------------------------------------------ */
/* setup */

static int mock_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                     const unsigned char *in, unsigned inlen, void *arg)
{
    for (unsigned i = 0; i < inlen; i += 1u + in[i]) {
        if (i + 1u + in[i] > inlen)
            break;
        if (in[i] == 2 && memcmp(in + i + 1, "h2", 2) == 0) {
            *out = in + i + 1;
            *outlen = 2;
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL; /* APNs speaks nothing but h2 */
}

static SSL_CTX *mock_ssl_ctx(const struct mock_opts *o)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_alpn_select_cb(ctx, mock_alpn, NULL);
    if (SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1)
        goto fail;
    if (o->client_ca != NULL) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->client_ca);
        if (names == NULL || SSL_CTX_load_verify_locations(ctx, o->client_ca, NULL) != 1) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            goto fail;
        }
        SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    return ctx;
fail:
    log_ssl(LOG_LVL_ERR, "event=mock_tls_setup_failed");
    SSL_CTX_free(ctx);
    return NULL;
}

static int mock_write_port(const char *path, int port)
{
    char *tmp = xasprintf("%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int rc = -1;
    if (f != NULL) {
        fprintf(f, "%d\n", port);
        if (fclose(f) == 0 && rename(tmp, path) == 0)
            rc = 0;
    }
    free(tmp);
    return rc;
}

/* "127.0.0.1:0" or "[::1]:0"; evutil_parse_sockaddr_port() refuses port 0. */
static int mock_parse_listen(const char *s, struct sockaddr_storage *ss, int *len)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    long port;
    if (colon == NULL || (size_t)(colon - s) >= sizeof(host) ||
        mock_parse_long(colon + 1, &port) < 0 || port > 65535)
        return -1;
    snprintf(host, sizeof(host), "%.*s", (int)(colon - s), s);
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *len = sizeof(*v4);
        return 0;
    }
    size_t hl = strlen(host);
    if (hl < 2 || host[0] != '[' || host[hl - 1] != ']')
        return -1;
    host[hl - 1] = '\0';
    if (inet_pton(AF_INET6, host + 1, &v6->sin6_addr) != 1)
        return -1;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    *len = sizeof(*v6);
    return 0;
}

static int mock_listen(struct mock *m)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (mock_parse_listen(m->o.listen, &ss, &len) < 0)
        return -1;
    m->lis = evconnlistener_new_bind(m->base, mock_on_accept, m,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 1024,
                                     (struct sockaddr *)&ss, len);
    if (m->lis == NULL)
        return -1;
    socklen_t sl = sizeof(ss);
    if (getsockname(evconnlistener_get_fd(m->lis), (struct sockaddr *)&ss, &sl) < 0)
        return -1;
    int port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                              : ((struct sockaddr_in *)&ss)->sin_port);
    log_info("event=mock_listening port=%d mode=%ld", port, m->o.status);
    if (m->o.port_file != NULL && mock_write_port(m->o.port_file, port) < 0)
        return -1;
    return 0;
}

static void mock_reload(struct mock *m)
{
    char *buf, *line, *save = NULL;
    if (m->o.control_file == NULL || util_read_file(m->o.control_file, &buf, NULL) < 0) {
        log_warn("event=mock_control_unreadable");
        return;
    }
    for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char key[32], val[64];
        if (line[0] == '#' || sscanf(line, "%31s %63s", key, val) != 2)
            continue;
        if (strcmp(key, "mode") && strcmp(key, "fail-first") && strcmp(key, "goaway-after") &&
            strcmp(key, "drop-after") && strcmp(key, "delay-ms"))
            log_warn("event=mock_control_ignored key=%s", key);
        else if (mock_set_opt(&m->o, key, val) < 0)
            log_warn("event=mock_control_bad key=%s", key);
    }
    free(buf);
    m->decided = 0; /* --fail-first counts from the change */
    log_info("event=mock_reloaded mode=%ld fail_first=%ld", m->o.status, m->o.fail_first);
    mock_stats_write(m);
}

static void mock_on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct mock *m = arg;
    if (sig == SIGUSR1)
        mock_reload(m);
    else
        event_base_loopexit(m->base, NULL);
}

static void mock_cleanup(struct mock *m)
{
    struct mock_conn *c;
    while ((c = TAILQ_FIRST(&m->conns)) != NULL)
        mock_conn_free(c);
    for (size_t i = 0; i < ARRAY_LEN(m->sig); i++)
        if (m->sig[i] != NULL)
            event_free(m->sig[i]);
    if (m->lis != NULL)
        evconnlistener_free(m->lis);
    if (m->cbs != NULL)
        nghttp2_session_callbacks_del(m->cbs);
    if (m->record != NULL)
        fclose(m->record);
    SSL_CTX_free(m->ctx);
    if (m->base != NULL)
        event_base_free(m->base);
    mock_opts_free(&m->o);
}

int main(int argc, char **argv)
{
    static const int sigs[] = {SIGTERM, SIGINT, SIGUSR1};
    struct mock m = {0};
    signal(SIGPIPE, SIG_IGN);
    m.o.status = 200;
    m.o.max_streams = 1000;
    m.o.listen = xstrdup("127.0.0.1:0");
    mock_parse_args(&m.o, argc, argv);
    TAILQ_INIT(&m.conns);
    m.base = event_base_new();
    m.cbs = mock_callbacks();
    if (m.base == NULL || (m.ctx = mock_ssl_ctx(&m.o)) == NULL)
        die("event=mock_setup_failed");
    if (m.o.record != NULL && *m.o.record && (m.record = fopen(m.o.record, "a")) == NULL)
        die("event=mock_record_open_failed");
    for (size_t i = 0; i < ARRAY_LEN(sigs); i++) {
        m.sig[i] = evsignal_new(m.base, sigs[i], mock_on_signal, &m);
        evsignal_add(m.sig[i], NULL);
    }
    if (mock_listen(&m) < 0)
        die("event=mock_listen_failed listen=%s", m.o.listen);
    mock_stats_write(&m);
    event_base_dispatch(m.base);
    log_info("event=mock_exit accepted=%u requests=%llu answered=%llu peak_streams=%u", m.accepted,
             (unsigned long long)m.requests, (unsigned long long)m.answered, m.peak);
    mock_cleanup(&m);
    return 0;
}
