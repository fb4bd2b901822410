#include "hook.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../ca/ca_mac.h"
#include "../../core/conf.h"
#include "../../core/log.h"
#include "../../core/super.h"
#include "../../store/store.h"
#include "../../store/store_fleet.h"

#define HOOK_POLL_MS 200 /* nothing to send: look again after this long */
#define HOOK_STORE_RETRY_MS 1000
#define HOOK_RETRY_MIN_MS 1000

enum hook_state { HOOK_IDLE, HOOK_FETCHING, HOOK_SENDING, HOOK_WAITING, HOOK_ACKING };

struct hook_target {
    struct hook *h;
    char *url, *host, *path; /* owned */
    int port;
    int tls;         /* https:// */
    int conn_closed; /* https: the connection went; a new one (a new SSL) for the next POST */
    char group[40];
    struct evhttp_connection *conn;
    struct event *timer;
    struct store_op *op; /* in flight; NULL once its callback ran */
    enum hook_state state;
    /* the event being delivered */
    char *body; /* owned */
    size_t blen;
    char id[64], src[8], event_id[64], type[64];
    int bucket; /* of the stream it came from (cluster layout; 0: the one stream) */
    int64_t born_ms;
    int attempts;
    char err[96];
    int dead; /* the ack in flight parks it */
};

struct hook {
    struct event_base *base;
    struct store *store;
    char *secret;
    int64_t max_age_ms, retry_max_ms, claim_idle_ms;
    int timeout_s;
    char consumer[80];
    struct hook_target *t;
    int n;
    SSL_CTX *ssl; /* https:// targets: verify against webhook_ca_file or the system store */
    const char **groups, **urls;
    struct hook_stats st;
};

static void hook_fetch(struct hook_target *t);
static void hook_send(struct hook_target *t);

static void hook_timer_in(struct hook_target *t, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(t->timer, &tv);
}

static void hook_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct hook_target *t = arg;
    if (t->state == HOOK_WAITING)
        hook_send(t);
    else
        hook_fetch(t);
}

static int64_t hook_id_ms(const char *id)
{
    return strtoll(id, NULL, 10); /* a stream id is "<ms>-<seq>" */
}

/* ---- after an attempt: acknowledge (maybe as dead), then the next ---- */

static void hook_on_acked(void *arg, int err, long long num, const char *str, size_t len)
{
    struct hook_target *t = arg;
    t->op = NULL;
    if (err != MDMD_OK) { /* Redis away: the entry stays pending, sent again later */
        log_warn("event=webhook_ack_failed group=%s id=%s err=%d", t->group, t->id, err);
        t->state = HOOK_IDLE;
        hook_timer_in(t, HOOK_STORE_RETRY_MS);
        return;
    }
    free(t->body);
    t->body = NULL;
    t->id[0] = '\0';
    t->state = HOOK_IDLE;
    hook_fetch(t);
}

static void hook_ack(struct hook_target *t, int dead)
{
    char attempts[16], now[24];
    snprintf(attempts, sizeof(attempts), "%d", t->attempts);
    snprintf(now, sizeof(now), "%lld", (long long)util_now_ms());
    const char *v[] = {
        "mdm:events", "",      "mdm:hook:dead", t->group, t->src, t->id, dead ? "dead" : "ok",
        t->event_id,  t->body, t->err,          attempts, now,    t->url};
    char replay[64], events[64];
    snprintf(replay, sizeof(replay), "mdm:hook:replay:%s", t->group);
    v[0] = store_bucket_key(t->h->store, events, sizeof(events), "mdm:events", t->bucket);
    v[1] = replay;
    size_t len[13];
    for (int i = 0; i < 13; i++)
        len[i] = v[i] == t->body ? t->blen : strlen(v[i]);
    t->state = HOOK_ACKING;
    t->op = store_fleet_eval(t->h->store, STORE_FLEET_HOOK_DONE, 3, 13, v, len, hook_on_acked, t);
}

static void hook_failed(struct hook_target *t, const char *why)
{
    struct hook *h = t->h;
    h->st.attempts_failed++;
    snprintf(t->err, sizeof(t->err), "%s", why);
    int64_t age = util_now_ms() - t->born_ms;
    if (age >= h->max_age_ms) {
        h->st.dead++;
        log_err("event=webhook_dead url=%s id=%s type=%s attempts=%d error=\"%s\"", t->url,
                t->event_id, t->type, t->attempts, why);
        hook_ack(t, 1);
        return;
    }
    int64_t ms = HOOK_RETRY_MIN_MS;
    for (int i = 1; i < t->attempts && ms < h->retry_max_ms; i++)
        ms *= 2;
    if (ms > h->retry_max_ms)
        ms = h->retry_max_ms;
    log_warn("event=webhook_retry url=%s id=%s attempts=%d retry_ms=%lld error=\"%s\"", t->url,
             t->event_id, t->attempts, (long long)ms, why);
    t->state = HOOK_WAITING;
    hook_timer_in(t, ms);
}

/* Why an https:// attempt got no answer: the certificate check, if that was it. */
static void hook_tls_why(struct hook_target *t, char *why, size_t len)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(t->conn);
    SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
    long v = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (v != X509_V_OK)
        snprintf(why, len, "TLS: %s", X509_verify_cert_error_string(v));
    else
        snprintf(why, len, "no answer (TCP or TLS)");
}

static void hook_on_response(struct evhttp_request *req, void *arg)
{
    struct hook_target *t = arg;
    int code = req != NULL ? evhttp_request_get_response_code(req) : 0;
    if (code == 0 && t->tls) {
        char why[96];
        hook_tls_why(t, why, sizeof(why));
        t->conn_closed = 1;
        hook_failed(t, why);
        return;
    }
    if (code >= 200 && code < 300) {
        t->h->st.delivered++;
        log_debug("event=webhook_delivered url=%s id=%s attempts=%d", t->url, t->event_id,
                  t->attempts);
        hook_ack(t, 0);
        return;
    }
    char why[96];
    if (code == 0)
        snprintf(why, sizeof(why), "no answer");
    else
        snprintf(why, sizeof(why), "HTTP %d", code);
    hook_failed(t, why);
}

static void hook_conn_new(struct hook_target *t);

static void hook_send(struct hook_target *t)
{
    struct hook *h = t->h;
    if (t->conn_closed) { /* an SSL is good for one connection: evhttp would reuse it */
        evhttp_connection_free(t->conn);
        hook_conn_new(t);
    }
    if (t->attempts > 0)
        h->st.retries++;
    t->attempts++;
    t->state = HOOK_SENDING;
    struct evhttp_request *req = evhttp_request_new(hook_on_response, t);
    struct evkeyvalq *hd = evhttp_request_get_output_headers(req);
    char sig[80], hex[65], hostport[300];
    ca_mac_hmac_sha256_hex(h->secret, strlen(h->secret), t->body, t->blen, hex);
    snprintf(sig, sizeof(sig), "sha256=%s", hex);
    snprintf(hostport, sizeof(hostport), "%s:%d", t->host, t->port);
    evhttp_add_header(hd, "Host", hostport);
    evhttp_add_header(hd, "Content-Type", "application/json");
    evhttp_add_header(hd, "User-Agent", "mdmd/" MDMD_VERSION);
    evhttp_add_header(hd, "X-Mdmd-Delivery", t->event_id);
    evhttp_add_header(hd, "X-Mdmd-Event", t->type);
    evhttp_add_header(hd, "X-Mdmd-Signature", sig);
    evbuffer_add(evhttp_request_get_output_buffer(req), t->body, t->blen);
    if (evhttp_make_request(t->conn, req, EVHTTP_REQ_POST, t->path) != 0)
        hook_failed(t, "request not sent"); /* libevent freed req */
}

/* ---- the next event ---- */

/* The POST body of a group entry: {"id": <stream id>, field: value...},
 * time as a number. */
static int hook_body_of(struct hook_target *t, json_t *f)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(t->id));
    const char *k;
    json_t *v;
    json_object_foreach(f, k, v)
    {
        const char *s = json_string_value(v);
        char *end;
        long long n = s != NULL ? strtoll(s, &end, 10) : 0;
        if (s != NULL && strcmp(k, "time") == 0 && *s != '\0' && *end == '\0')
            json_object_set_new(o, k, json_integer(n));
        else
            json_object_set(o, k, v);
    }
    t->body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return t->body != NULL ? 0 : -1;
}

static int hook_take(struct hook_target *t, const char *str, size_t len)
{
    json_t *j = json_loadb(str, len, 0, NULL);
    json_t *f = json_object_get(j, "f");
    const char *id = json_string_value(json_object_get(j, "id"));
    const char *src = json_string_value(json_object_get(j, "src"));
    int rc = -1;
    if (id != NULL && src != NULL && json_is_object(f) && strlen(id) < sizeof(t->id)) {
        snprintf(t->id, sizeof(t->id), "%s", id);
        snprintf(t->src, sizeof(t->src), "%s", src);
        t->born_ms = hook_id_ms(id);
        /* Cluster layout: ids are per bucket stream, so two buckets may
         * hold the same one; the delivery id names the bucket too. */
        json_t *b = json_object_get(j, "b");
        t->bucket = json_is_integer(b) ? (int)json_integer_value(b) : 0;
        const char *type = json_string_value(json_object_get(f, "type"));
        if (strcmp(src, "replay") == 0) {
            const char *p = json_string_value(json_object_get(f, "payload"));
            const char *eid = json_string_value(json_object_get(f, "event_id"));
            snprintf(t->event_id, sizeof(t->event_id), "%s", eid != NULL ? eid : id);
            json_t *pj = json_loads(p != NULL ? p : "", 0, NULL);
            type = json_string_value(json_object_get(pj, "type"));
            snprintf(t->type, sizeof(t->type), "%s", type != NULL ? type : "");
            json_decref(pj);
            t->body = xstrdup(p != NULL ? p : "{}");
            rc = 0;
        } else if (json_is_integer(b)) {
            snprintf(t->event_id, sizeof(t->event_id), "%s-b%02d", id, t->bucket);
            snprintf(t->type, sizeof(t->type), "%s", type != NULL ? type : "");
            rc = hook_body_of(t, f);
        } else {
            snprintf(t->event_id, sizeof(t->event_id), "%s", id);
            snprintf(t->type, sizeof(t->type), "%s", type != NULL ? type : "");
            rc = hook_body_of(t, f);
        }
        t->blen = t->body != NULL ? strlen(t->body) : 0;
    }
    json_decref(j);
    return rc;
}

static void hook_on_next(void *arg, int err, long long num, const char *str, size_t len)
{
    struct hook_target *t = arg;
    t->op = NULL;
    t->state = HOOK_IDLE;
    if (err != MDMD_OK) {
        if (err != MDMD_ECANCELED)
            hook_timer_in(t, HOOK_STORE_RETRY_MS);
        return;
    }
    if (str == NULL || len == 0) {
        hook_timer_in(t, HOOK_POLL_MS);
        return;
    }
    if (hook_take(t, str, len) != 0) {
        log_err("event=webhook_bad_entry group=%s", t->group);
        hook_timer_in(t, HOOK_STORE_RETRY_MS);
        return;
    }
    t->attempts = 0;
    t->err[0] = '\0';
    hook_send(t);
}

static void hook_fetch(struct hook_target *t)
{
    char replay[64], idle[24];
    snprintf(replay, sizeof(replay), "mdm:hook:replay:%s", t->group);
    snprintf(idle, sizeof(idle), "%lld", (long long)t->h->claim_idle_ms);
    const char *v[] = {"mdm:events", replay, t->group, t->h->consumer, idle};
    t->state = HOOK_FETCHING;
    t->op = store_fleet_eval(t->h->store, STORE_FLEET_HOOK_NEXT, 2, 5, v, NULL, hook_on_next, t);
}

/* ---- setup ---- */

static uint64_t hook_fnv(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void hook_on_conn_close(struct evhttp_connection *conn, void *arg)
{
    struct hook_target *t = arg;
    t->conn_closed = 1;
}

/* SNI and the host name (or IP address) the receiver's certificate must name. */
static SSL *hook_ssl_new(struct hook_target *t)
{
    SSL *ssl = SSL_new(t->h->ssl);
    if (ssl == NULL)
        return NULL;
    unsigned char ip[16];
    int literal = inet_pton(AF_INET, t->host, ip) == 1 || inet_pton(AF_INET6, t->host, ip) == 1;
    X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    int ok = literal ? X509_VERIFY_PARAM_set1_ip_asc(vp, t->host) == 1 /* no SNI (RFC 6066) */
                     : SSL_set_tlsext_host_name(ssl, t->host) == 1 &&
                           X509_VERIFY_PARAM_set1_host(vp, t->host, 0) == 1;
    if (!ok) {
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

static void hook_conn_new(struct hook_target *t)
{
    struct hook *h = t->h;
    SSL *ssl = t->tls ? hook_ssl_new(t) : NULL;
    struct bufferevent *bev =
        ssl != NULL
            ? bufferevent_openssl_socket_new(h->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                             BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS)
            : NULL;
    if (bev != NULL) /* receivers that close without close_notify are not an error */
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    else if (t->tls)
        log_err("event=webhook_tls_setup_failed url=%s", t->url);
    t->conn = evhttp_connection_base_bufferevent_new(h->base, NULL, bev, t->host,
                                                     (unsigned short)t->port);
    evhttp_connection_set_timeout(t->conn, h->timeout_s);
    evhttp_connection_set_retries(t->conn, 0);
    evhttp_connection_set_closecb(t->conn, hook_on_conn_close, t);
    t->conn_closed = 0;
}

/* The verifying client context of https:// targets. */
static int hook_ssl_ctx(struct hook *h, const struct conf *cf)
{
    if (h->ssl != NULL)
        return 0;
    h->ssl = SSL_CTX_new(TLS_client_method());
    if (h->ssl == NULL)
        return -1;
    SSL_CTX_set_min_proto_version(h->ssl, TLS1_2_VERSION);
    int ok = *cf->webhook_ca_file != '\0'
                 ? SSL_CTX_load_verify_locations(h->ssl, cf->webhook_ca_file, NULL)
                 : SSL_CTX_set_default_verify_paths(h->ssl);
    if (ok != 1) {
        log_ssl(LOG_LVL_ERR, "event=webhook_ca_load_failed");
        SSL_CTX_free(h->ssl);
        h->ssl = NULL;
        return -1;
    }
    SSL_CTX_set_verify(h->ssl, SSL_VERIFY_PEER, NULL);
    return 0;
}

static int hook_target_init(struct hook *h, struct hook_target *t, const char *url,
                            const struct conf *cf)
{
    struct evhttp_uri *u = evhttp_uri_parse(url);
    const char *scheme = u != NULL ? evhttp_uri_get_scheme(u) : NULL;
    const char *host = u != NULL ? evhttp_uri_get_host(u) : NULL;
    int tls = scheme != NULL && strcmp(scheme, "https") == 0;
    if (scheme == NULL || (!tls && strcmp(scheme, "http") != 0) || host == NULL || *host == '\0') {
        log_err(
            "event=webhook_url_refused url=%s reason=\"only http:// or https://host[:port]/path "
            "URLs are supported\"",
            url);
        evhttp_uri_free(u);
        return -1;
    }
    if (tls && hook_ssl_ctx(h, cf) != 0) {
        log_err("event=webhook_url_refused url=%s reason=\"no CA to verify it with\"", url);
        evhttp_uri_free(u);
        return -1;
    }
    const char *path = evhttp_uri_get_path(u), *query = evhttp_uri_get_query(u);
    t->h = h;
    t->url = xstrdup(url);
    t->host = xstrdup(host);
    t->tls = tls;
    t->port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : tls ? 443 : 80;
    t->path = xasprintf("%s%s%s", path != NULL && *path ? path : "/", query ? "?" : "",
                        query ? query : "");
    evhttp_uri_free(u);
    snprintf(t->group, sizeof(t->group), "hook:%016llx", (unsigned long long)hook_fnv(url));
    t->timer = evtimer_new(h->base, hook_on_timer, t);
    return 0;
}

struct hook *hook_new(struct event_base *base, struct store *store, const struct conf *cf)
{
    if (*cf->webhook_url == '\0')
        return NULL;
    struct hook *h = xcalloc(1, sizeof(*h));
    h->base = base;
    h->store = store;
    h->secret = xstrdup(cf->webhook_secret);
    h->max_age_ms = (int64_t)cf->webhook_max_age_s * 1000;
    h->retry_max_ms = (int64_t)cf->webhook_retry_max_s * 1000;
    h->timeout_s = cf->webhook_timeout_s;
    h->claim_idle_ms = 2 * (h->retry_max_ms + (int64_t)h->timeout_s * 1000) + 60000;
    char host[64] = "mdmd";
    if (gethostname(host, sizeof(host) - 1) != 0)
        snprintf(host, sizeof(host), "mdmd");
    /* Each worker is a consumer of its own (core/super.h), the same across its
     * restarts: a restarted worker continues its own pending entries. */
    if (super_worker() > 0)
        snprintf(h->consumer, sizeof(h->consumer), "%s-w%d", host, super_worker());
    else
        snprintf(h->consumer, sizeof(h->consumer), "%s", host);
    char *list = xstrdup(cf->webhook_url), *save = NULL;
    for (char *u = strtok_r(list, " \t", &save); u != NULL; u = strtok_r(NULL, " \t", &save)) {
        h->t = xrealloc(h->t, sizeof(*h->t) * (size_t)(h->n + 1));
        memset(&h->t[h->n], 0, sizeof(*h->t));
        if (hook_target_init(h, &h->t[h->n], u, cf) == 0)
            h->n++;
    }
    free(list);
    h->groups = xcalloc((size_t)h->n + 1, sizeof(char *));
    h->urls = xcalloc((size_t)h->n + 1, sizeof(char *));
    for (int i = 0; i < h->n; i++) {
        h->groups[i] = h->t[i].group;
        h->urls[i] = h->t[i].url;
        h->t[i].h = h;
        evtimer_assign(h->t[i].timer, base, hook_on_timer, &h->t[i]);
        hook_conn_new(&h->t[i]); /* after the realloc: the close callback keeps &h->t[i] */
        log_info("event=webhook_ready url=%s group=%s consumer=%s", h->t[i].url, h->t[i].group,
                 h->consumer);
        hook_timer_in(&h->t[i], 0);
    }
    if (*h->secret == '\0' && h->n > 0)
        log_warn("event=webhook_unsigned reason=\"webhook_secret is empty: signatures use an "
                 "empty key\"");
    return h;
}

void hook_free(struct hook *h)
{
    if (h == NULL)
        return;
    for (int i = 0; i < h->n; i++) {
        struct hook_target *t = &h->t[i];
        store_op_cancel(t->op);
        event_free(t->timer);
        evhttp_connection_free(t->conn);
        free(t->url);
        free(t->host);
        free(t->path);
        free(t->body);
    }
    free(h->t);
    SSL_CTX_free(h->ssl);
    free(h->groups);
    free(h->urls);
    free(h->secret);
    free(h);
}

void hook_stats(const struct hook *h, struct hook_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (h == NULL)
        return;
    *out = h->st;
    out->targets = h->n;
    int64_t now = util_now_ms();
    for (int i = 0; i < h->n; i++)
        if (h->t[i].body != NULL && now - h->t[i].born_ms > out->lag_ms)
            out->lag_ms = now - h->t[i].born_ms;
}

int hook_groups(const struct hook *h, const char *const **groups, const char *const **urls)
{
    if (h == NULL)
        return 0;
    *groups = h->groups;
    *urls = h->urls;
    return h->n;
}
