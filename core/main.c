/* main.c: wires the modules onto one libevent loop: config, CA bootstrap,
 * Redis (configured or private), the two HTTPS listeners, signals. */
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../ca/ca.h"
#include "../ca/ca_scep.h"
#include "../ca/ca_seal.h"
#include "../handlers/enroll/enroll.h"
#include "../handlers/api/api.h"
#include "../handlers/mdm/mdm.h"
#include "../handlers/apple/apple.h"
#include "../handlers/feed/feed.h"
#include "../handlers/guard/guard.h"
#include "../handlers/hook/hook.h"
#include "../handlers/routes.h"
#include "../handlers/wake/wake.h"
#include "../push/push.h"
#include "../store/embedded.h"
#include "../store/store.h"
#include "app.h"
#include "cli.h"
#include "conf.h"
#include "http.h"
#include "util.h"
#include "log.h"
#include "metrics.h"
#include "shape.h"
#include "super.h"
#include "tls.h"
#include "worker.h"

#define MAIN_MAX_OVERRIDES 64

struct mdmd {
    struct app app;
    struct conf *cf;       /* current; app.cf points here */
    struct conf **retired; /* replaced by SIGHUP; freed at exit */
    int nretired;
    const char *conf_path;                     /* NULL: defaults only */
    const char *overrides[MAIN_MAX_OVERRIDES]; /* "key=value" from the command line */
    int noverrides;
    struct embedded *redis; /* private redis-server, or NULL */
    struct http_server *pub, *mdm;
    struct http_server *scep; /* plain-HTTP SCEP listener (scep_listen), or NULL */
    struct metrics metrics;   /* app.metrics points here */
    struct event *sigs[3];
    struct event *drain;    /* polls in-flight requests at shutdown */
    struct event *log_tick; /* writes log lines stderr could not take */
    int64_t drain_deadline;
    int quiet_ticks; /* drain ticks in a row with nothing in flight */
    int cli_arg;     /* argv index of a subcommand (cli.h), or 0 */
    /* workers > 1 (super.h): what the supervisor made for the workers */
    int inherited;                /* listen on lfd, not on the configured addresses */
    int lfd[3];                   /* public, mdm, scep (-1: no scep_listen) */
    struct embedded *super_redis; /* the private redis-server, or NULL */
    struct ca *super_ca;          /* the supervisor's CA: validates a reload */
};

static void main_usage(FILE *f)
{
    fprintf(f, "usage: mdmd [-c FILE] [-l ADDR] [-m ADDR] [-r REDIS] [-d DIR] [-p FILE]\n"
               "            [-v LEVEL] [-o KEY=VALUE]... [-t]\n"
               "  -c FILE   configuration file (see mdmd.conf.example)\n"
               "  -l ADDR   listen: 1-way TLS listener (enrollment, admin, console)\n"
               "  -m ADDR   mdm_listen: 2-way TLS listener (check-in, commands)\n"
               "  -r REDIS  redis: unix socket path or host:port (empty: private)\n"
               "  -d DIR    data_dir\n"
               "  -p FILE   port_file: write the bound ports there\n"
               "  -v LEVEL  log_level: error, warn, info, debug\n"
               "  -o K=V    set any configuration key\n"
               "  -t        check the configuration and exit\n"
               "       mdmd [-c FILE] [-o K=V]... user add|passwd|del|list ...   (users; see "
               "core/cli.h)\n");
}

static int main_add_override(struct mdmd *m, const char *key, const char *kv)
{
    if (m->noverrides == MAIN_MAX_OVERRIDES)
        return -1;
    m->overrides[m->noverrides++] = key != NULL ? xasprintf("%s=%s", key, kv) : xstrdup(kv);
    return 0;
}

/* --version, and the hidden --routes (every route of both listeners, one
 * "LISTENER METHOD PATH" line each, for tests and reviewers).  1 if handled. */
static int main_info(const char *arg)
{
    if (strcmp(arg, "--version") == 0) {
        printf("mdmd %s\n", MDMD_VERSION);
        return 1;
    }
    if (strcmp(arg, "--routes") == 0) {
        http_routes_print(stdout, "public", routes_public);
        http_routes_print(stdout, "mdm", routes_mdm);
        http_routes_print(stdout, "scep", routes_scep);
        return 1;
    }
    return 0;
}

/* Returns 1 for -t, 0 to run, -1 on a usage error. */
static int main_parse_args(struct mdmd *m, int argc, char **argv)
{
    static const char *const flag_keys[128] = {
        ['l'] = "listen",   ['m'] = "mdm_listen", ['r'] = "redis",
        ['d'] = "data_dir", ['p'] = "port_file",  ['v'] = "log_level",
    };
    int c, test_only = 0;
    /* "+": stop at the first non-option, so a subcommand keeps its own options. */
    while ((c = getopt(argc, argv, "+c:l:m:r:d:p:v:o:th")) != -1) {
        if (c == 'c')
            m->conf_path = optarg;
        else if (c == 't')
            test_only = 1;
        else if (c == 'o' && main_add_override(m, NULL, optarg) == 0)
            continue;
        else if (c > 0 && c < 128 && flag_keys[c] != NULL &&
                 main_add_override(m, flag_keys[c], optarg) == 0)
            continue;
        else {
            main_usage(c == 'h' ? stdout : stderr);
            return -1;
        }
    }
    if (optind < argc && cli_is_command(argv[optind]))
        m->cli_arg = optind;
    else if (optind != argc) {
        main_usage(stderr);
        return -1;
    }
    return test_only;
}

/* A fresh conf from the file plus the command-line overrides. */
static struct conf *main_load_conf(const struct mdmd *m, char *err, size_t errlen)
{
    struct conf *cf = xmalloc(sizeof(*cf));
    conf_init(cf);
    int rc = m->conf_path != NULL ? conf_load(cf, m->conf_path, err, errlen) : 0;
    for (int i = 0; rc == 0 && i < m->noverrides; i++) {
        char *kv = xstrdup(m->overrides[i]);
        char *eq = strchr(kv, '=');
        if (eq == NULL) {
            snprintf(err, errlen, "command line: %s: expected KEY=VALUE", kv);
            rc = -1;
        } else {
            *eq = '\0';
            rc = conf_set(cf, kv, eq + 1, "command line", i + 1, err, errlen);
        }
        free(kv);
    }
    if (rc == 0)
        rc = conf_finish(cf, err, errlen);
    if (rc != 0) {
        conf_clear(cf);
        free(cf);
        return NULL;
    }
    return cf;
}

static void main_write_port_file(const struct mdmd *m)
{
    if (*m->cf->port_file == '\0')
        return;
    char *s =
        xasprintf("listen %d\nmdm_listen %d\n", http_server_port(m->pub), http_server_port(m->mdm));
    if (m->scep != NULL) {
        char *t = xasprintf("%sscep_listen %d\n", s, http_server_port(m->scep));
        free(s);
        s = t;
    }
    if (util_write_file(m->cf->port_file, s, strlen(s), 0644) != 0)
        die("event=port_file_failed path=%s errno=%d", m->cf->port_file, errno);
    free(s);
}

static void main_limits(const struct conf *cf, struct http_limits *lim)
{
    struct shape_limits shape = {(size_t)cf->max_plist_depth, (size_t)cf->max_plist_nodes,
                                 (size_t)cf->max_plist_string};
    lim->max_small_body = (size_t)cf->max_small_body_size;
    lim->max_body = (size_t)cf->max_body_size;
    /* The parsers' limits change with the listeners' (start and SIGHUP). */
    apple_plist_set_limits(&shape, (size_t)cf->max_json_depth);
    ca_set_cms_limits(cf->cms_max_signers, cf->cms_max_certs);
    log_set_buffer((size_t)cf->log_buffer_size);
    lim->max_header = (size_t)cf->max_header_size;
    lim->timeout_s = cf->request_timeout_s;
    lim->max_connections = cf->max_connections;
}

/* Both contexts or neither: a SIGHUP must not leave one listener half-updated. */
static int main_tls_ctxs(const struct conf *cf, const struct ca *ca, SSL_CTX **pub, SSL_CTX **mdm)
{
    *pub = tls_server_ctx(cf->tls_cert_file, cf->tls_key_file, cf->tls_ciphers, NULL);
    *mdm = tls_server_ctx_clients(cf->tls_cert_file, cf->tls_key_file, cf->tls_ciphers,
                                  ca_cert_path(ca), cf->mdm_client_cert_mode);
    if (*pub != NULL && *mdm != NULL)
        return 0;
    SSL_CTX_free(*pub);
    SSL_CTX_free(*mdm);
    return -1;
}

static int main_server_cert(const struct conf *cf, struct ca *ca)
{
    if (!cf->tls_auto)
        return 0;
    return ca_ensure_server_cert(ca, cf->server_names, cf->tls_cert_file, cf->tls_key_file,
                                 cf->cert_validity_days);
}

/* Listener i (0 public, 1 mdm, 2 scep): bound here, or the supervisor's. */
static struct http_server *main_server(struct mdmd *m, int i, const char *name, const char *addr,
                                       SSL_CTX *ctx, const struct http_route *routes,
                                       const struct http_limits *lim)
{
    if (m->inherited)
        return http_server_adopt(m->app.base, name, m->lfd[i], ctx, routes, &m->app, lim);
    return http_server_new(m->app.base, name, addr, ctx, routes, &m->app, lim);
}

static void main_listen(struct mdmd *m)
{
    SSL_CTX *pub, *mdm;
    struct http_limits lim;

    if (main_server_cert(m->cf, m->app.ca) != 0 || main_tls_ctxs(m->cf, m->app.ca, &pub, &mdm) != 0)
        die("event=tls_setup_failed");
    main_limits(m->cf, &lim);
    m->pub = main_server(m, 0, "public", m->cf->listen, pub, routes_public, &lim);
    m->mdm = main_server(m, 1, "mdm", m->cf->mdm_listen, mdm, routes_mdm, &lim);
    SSL_CTX_free(pub);
    SSL_CTX_free(mdm);
    if (m->pub == NULL || m->mdm == NULL)
        die("event=listen_failed");
    if (*m->cf->scep_listen != '\0' &&
        (m->scep = main_server(m, 2, "scep", m->cf->scep_listen, NULL, routes_scep, &lim)) == NULL)
        die("event=listen_failed listener=scep");
    metrics_add_listener(&m->metrics, m->pub);
    metrics_add_listener(&m->metrics, m->mdm);
    if (!m->inherited) /* the supervisor wrote it */
        main_write_port_file(m);
}

static void main_warn_restart_keys(const struct conf *o, const struct conf *n)
{
    static const struct {
        const char *name;
        size_t off;
    } keys[] = {
        {"listen", offsetof(struct conf, listen)},
        {"mdm_listen", offsetof(struct conf, mdm_listen)},
        {"redis", offsetof(struct conf, redis)},
        {"data_dir", offsetof(struct conf, data_dir)},
        {"ca_dir", offsetof(struct conf, ca_dir)},
        {"scep_listen", offsetof(struct conf, scep_listen)},
        {"workers", offsetof(struct conf, workers_str)},
    };
    for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
        const char *a = *(char *const *)((const char *)o + keys[i].off);
        const char *b = *(char *const *)((const char *)n + keys[i].off);
        if (strcmp(a, b) != 0)
            log_warn("event=reload_needs_restart key=%s", keys[i].name);
    }
}

static void main_on_push_renew(void *arg, int status, const char *fleet_topic,
                               const char *new_topic)
{
    char a[160], b[160];
    if (status == 409)
        log_err("event=reload_partial reason=\"push certificate refused: its topic %s is not the "
                "enrolled devices' %s; keeping the old one (apns_allow_topic_change yes installs "
                "it)\"",
                log_str(new_topic, a, sizeof(a)), log_str(fleet_topic, b, sizeof(b)));
    else if (status != 0)
        log_err("event=reload_partial reason=\"push certificate not checked (redis); keeping "
                "the old one\"");
}

/* A changed push certificate file is a renewal: guard_push_renew() looks at
 * its topic first, after the rest of the reload (which it cannot hold up). */
static void main_reload_push(struct mdmd *m, const struct conf *ncf)
{
    if (m->app.push == NULL || (*ncf->apns_cert_file == '\0' && *ncf->apns_p12_file == '\0'))
        return;
    struct push_cert *c = push_cert_load(ncf);
    if (c == NULL) {
        log_warn("event=reload_partial reason=\"push certificate unreadable; keeping the old "
                 "one\"");
        return;
    }
    if (push_cert_same(m->app.push, c)) {
        push_cert_free(c);
        return;
    }
    guard_push_renew(m->app.guard, m->app.push, c, ncf->apns_allow_topic_change, main_on_push_renew,
                     NULL);
}

/* SIGHUP: everything validates, or nothing changes (pgbouncer's rule). */
static void main_reload(struct mdmd *m)
{
    char err[512];
    SSL_CTX *pub, *mdm;
    struct http_limits lim;
    struct conf *ncf = main_load_conf(m, err, sizeof(err));

    if (ncf == NULL) {
        log_err("event=reload_failed reason=\"%s\"", err);
        return;
    }
    if (main_server_cert(ncf, m->app.ca) != 0 || main_tls_ctxs(ncf, m->app.ca, &pub, &mdm) != 0) {
        log_err("event=reload_failed reason=\"tls setup failed; keeping the old settings\"");
        conf_clear(ncf);
        free(ncf);
        return;
    }
    main_warn_restart_keys(m->cf, ncf);
    http_server_set_ctx(m->pub, pub);
    http_server_set_ctx(m->mdm, mdm);
    if (enroll_keys_reload(m->app.enroll, ncf) != 0)
        log_warn(
            "event=reload_partial reason=\"enrollment keys unreadable; keeping the old ones\"");
    if (enroll_scep_keys_reload(m->app.scep, ncf) != 0)
        log_warn("event=reload_partial reason=\"profile signer unreadable; keeping the old one\"");
    SSL_CTX_free(pub);
    SSL_CTX_free(mdm);
    main_limits(ncf, &lim);
    http_server_set_limits(m->pub, &lim);
    http_server_set_limits(m->mdm, &lim);
    if (m->scep != NULL)
        http_server_set_limits(m->scep, &lim);
    log_level = ncf->log_level;
    m->retired = xrealloc(m->retired, sizeof(*m->retired) * (size_t)(m->nretired + 1));
    m->retired[m->nretired++] = m->cf;
    m->cf = ncf;
    m->app.cf = ncf;
    main_reload_push(m, ncf);
    log_info("event=reloaded");
}

static void main_on_drain(evutil_socket_t fd, short what, void *arg)
{
    struct mdmd *m = arg;
    int left = http_server_inflight(m->pub) + http_server_inflight(m->mdm) +
               (m->scep != NULL ? http_server_inflight(m->scep) : 0) + api_jobs_running();
    /* The last answers are written on the next turns of the loop: exit only
     * after a tick with nothing in flight, not on the one that saw zero. */
    m->quiet_ticks = left == 0 ? m->quiet_ticks + 1 : 0;
    if (m->quiet_ticks >= 2 || util_mono_ms() >= m->drain_deadline) {
        if (left > 0)
            log_warn("event=shutdown_timeout inflight=%d", left);
        event_base_loopexit(m->app.base, NULL);
    }
}

static void main_shutdown(struct mdmd *m)
{
    static const struct timeval every = {0, 20000};
    if (m->drain != NULL)
        return;
    log_info("event=shutting_down inflight=%d",
             http_server_inflight(m->pub) + http_server_inflight(m->mdm));
    http_server_stop_accepting(m->pub);
    http_server_stop_accepting(m->mdm);
    api_jobs_stop();        /* each records where it stopped; the drain waits for that */
    feed_stop(m->app.feed); /* event streams end now, or the drain would wait for them */
    if (m->scep != NULL)
        http_server_stop_accepting(m->scep);
    m->drain_deadline = util_mono_ms() + (int64_t)m->cf->shutdown_timeout_s * 1000;
    m->drain = event_new(m->app.base, -1, EV_PERSIST, main_on_drain, m);
    event_add(m->drain, &every);
    main_on_drain(-1, 0, m);
}

/* Two priorities: the store's events (STORE_EV_PRIORITY) run before the
 * rest, which default to the lower one, so that a loop busy with a wave of
 * requests holds back neither the replies they wait for nor the Redis
 * reconnect after an outage (faults.sh: the requests' callbacks under ASan
 * delayed it by most of a second).  Not also
 * event_config_set_max_dispatch_interval: with it a history read under
 * valgrind hung until its client gave up (valgrind.sh), cause not found. */
static struct event_base *main_base_new(void)
{
    /* epoll's changelist: a bufferevent that turns reading off and on again
     * within one loop turn (every request and answer) costs no epoll_ctl. */
    struct event_config *evcf = event_config_new();
    if (evcf == NULL)
        die("event=event_base_failed");
    event_config_set_flag(evcf, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    struct event_base *base = event_base_new_with_config(evcf);
    event_config_free(evcf);
    if (base == NULL || event_base_priority_init(base, 2) != 0)
        die("event=event_base_failed");
    return base;
}

static void main_on_log_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    (void)log_flush();
}

static void main_on_signal(evutil_socket_t sig, short what, void *arg)
{
    if (sig == SIGHUP)
        main_reload(arg);
    else
        main_shutdown(arg);
}

static void main_signals(struct mdmd *m)
{
    static const int sigs[3] = {SIGTERM, SIGINT, SIGHUP};
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < 3; i++) {
        m->sigs[i] = evsignal_new(m->app.base, sigs[i], main_on_signal, m);
        event_add(m->sigs[i], NULL);
    }
    static const struct timeval tick = {0, 50000};
    m->log_tick = event_new(m->app.base, -1, EV_PERSIST, main_on_log_tick, m);
    event_add(m->log_tick, &tick);
    super_unblock(); /* a worker's signals wait for these handlers */
}

/* The admin API key: made once, kept in <data_dir>/api.key (0600). */
static char *main_api_key(const char *data_dir)
{
    char *path = xasprintf("%s/api.key", data_dir), *key = NULL;
    size_t len;
    if (util_read_file(path, &key, &len) == 0) {
        key[strcspn(key, "\r\n")] = '\0';
        if (strlen(key) < 32)
            die("event=api_key_too_short path=%s", path);
    } else {
        unsigned char raw[32];
        util_random(raw, sizeof(raw));
        key = xmalloc(2 * sizeof(raw) + 2);
        util_hex(raw, sizeof(raw), key);
        strcat(key, "\n");
        if (util_write_file(path, key, strlen(key), 0600) != 0)
            die("event=api_key_write_failed path=%s errno=%d", path, errno);
        key[strcspn(key, "\n")] = '\0';
        log_info("event=api_key_created path=%s", path);
    }
    free(path);
    return key;
}

static void main_open_state(struct mdmd *m)
{
    if (util_mkdirs(m->cf->data_dir, 0700) != 0)
        die("event=data_dir_failed path=%s errno=%d", m->cf->data_dir, errno);
    m->app.api_key = main_api_key(m->cf->data_dir);
    char *seal = xasprintf("%s/bootstrap.key", m->cf->data_dir);
    if (ca_seal_keyfile_init(seal) != 0)
        die("event=seal_key_failed path=%s", seal);
    m->app.seal_key_path = seal;
    m->app.routes_public = routes_public;
    m->app.ca = ca_open(m->cf);
    if (m->app.ca == NULL)
        die("event=ca_failed dir=%s", m->cf->ca_dir);
    const char *addr = m->cf->redis;
    if (*addr == '\0' && m->super_redis != NULL) {
        addr = embedded_addr(m->super_redis); /* the supervisor's */
    } else if (*addr == '\0') {
        m->redis = embedded_start(m->cf->data_dir, m->cf->redis_server_bin);
        if (m->redis == NULL)
            die("event=private_redis_failed");
        embedded_watch(m->redis, m->app.base);
        m->app.redis = m->redis;
        addr = embedded_addr(m->redis);
    }
    m->app.store = store_new(m->app.base, addr, m->cf->redis_timeout_ms);
    store_set_layout(m->app.store, !strcmp(m->cf->redis_layout, "cluster")  ? STORE_LAYOUT_CLUSTER
                                   : !strcmp(m->cf->redis_layout, "single") ? STORE_LAYOUT_SINGLE
                                                                            : STORE_LAYOUT_AUTO);
    (void)store_idle_enable(m->app.store, m->cf->idle_cache_ms);
    if (*m->cf->apns_cert_file != '\0' || *m->cf->apns_p12_file != '\0') {
        m->app.push = push_new(m->app.base, m->cf); /* no network until the first push */
        if (m->app.push == NULL)
            die("event=apns_setup_failed reason=\"see the lines above\"");
        log_info("event=apns_ready topic=%s host=%s port=%d", push_topic(m->app.push),
                 m->cf->apns_host, m->cf->apns_port);
    } else {
        log_warn("event=apns_not_configured reason=\"no apns_cert_file or apns_p12_file: devices "
                 "are not woken\"");
    }
    m->app.worker = worker_new(m->app.base, m->cf->crypto_threads);
    m->app.wake = wake_new(m->app.base, m->app.store, m->app.push, m->cf->push_coalesce_ms);
    wake_set_shared(m->app.wake, super_worker() > 0);
    mdm_provision_retry_start(&m->app);
    api_jobs_lease_start(&m->app);
    m->app.repush = wake_repush_new(m->app.base, m->app.store, m->app.wake, m->cf);
    m->app.hook = hook_new(m->app.base, m->app.store, m->cf);
    m->app.guard = guard_new(m->app.base, m->app.store, m->app.push, m->cf);
    m->app.feed = feed_new(m->app.base, m->app.store, &m->app);
}

/* Runs the loop until every answer queued so far is written out, or 1 s. */
static void main_flush(struct mdmd *m)
{
    static const struct timeval tick = {0, 20000};
    int64_t deadline = util_mono_ms() + 1000;
    while (http_server_unsent(m->pub) + http_server_unsent(m->mdm) + http_server_unsent(m->scep) >
               0 &&
           util_mono_ms() < deadline) {
        event_base_loopexit(m->app.base, &tick);
        event_base_dispatch(m->app.base);
    }
}

/* The shutdown order, explicit because each step may answer requests that
 * the listeners must still be there to write:
 *  1. worker_free: the job running finishes; the queued ones' done callbacks
 *     run with worker_canceled() and answer 503 (enrollment, SCEP, logins);
 *     then the keys those jobs borrowed can go.
 *  2. the timers and modules that call the store, then store_free: every
 *     pending callback runs with MDMD_ECANCELED and answers 503.
 *  3. main_flush: the loop writes those answers (listeners are stopped and
 *     open connections get 503 for any new request, so no handler runs).
 *  4. http_server_free: evhttp_free closes every connection (adopted or
 *     not, http.c); the deferred bufferevent callbacks this leaves run in
 *     the final loop turns, before the event base is freed. */
/* The configurations: the current one, those retired by reloads, and the
 * command line's overrides. */
static void main_conf_free(struct mdmd *m)
{
    for (int i = 0; i < m->nretired; i++) {
        conf_clear(m->retired[i]);
        free(m->retired[i]);
    }
    free(m->retired);
    conf_clear(m->cf);
    free(m->cf);
    for (int i = 0; i < m->noverrides; i++)
        free((char *)m->overrides[i]);
}

/* The last line, and what is still buffered of the log: up to 1 s. */
static int main_exit(int rc)
{
    log_info("event=exit code=%d", rc);
    for (int i = 0; i < 100 && log_flush() > 0; i++)
        usleep(10000);
    log_close_syslog();
    return rc;
}

static void main_cleanup(struct mdmd *m)
{
    if (m->drain != NULL)
        event_del(m->drain);
    for (int i = 0; i < 3; i++) /* no SIGHUP reload into what is being freed */
        if (m->sigs[i] != NULL)
            event_del(m->sigs[i]);
    worker_free(m->app.worker);
    m->app.worker = NULL;               /* worker_canceled(NULL) is 1 */
    enroll_scep_keys_free(m->app.scep); /* after the worker: jobs borrow its keys */
    enroll_keys_free(m->app.enroll);    /* after the worker: jobs borrow its keys */
    mdm_provision_retry_stop();
    api_jobs_free_all(); /* paused jobs hold a timer, no store call */
    api_jobs_lease_stop();
    feed_free(m->app.feed); /* before the store: its reads are cancelled */
    hook_free(m->app.hook);
    guard_free(m->app.guard);
    wake_repush_free(m->app.repush);
    push_free(m->app.push); /* before wake: cancelled pushes release their items */
    wake_free(m->app.wake);
    store_free(m->app.store);
    main_flush(m);
    http_server_free(m->pub);
    http_server_free(m->mdm);
    http_server_free(m->scep);
    embedded_stop(m->redis);
    ca_free(m->app.ca);
    free((char *)m->app.api_key);
    free((char *)m->app.seal_key_path);
    for (int i = 0; i < 3; i++)
        if (m->sigs[i] != NULL)
            event_free(m->sigs[i]);
    if (m->drain != NULL)
        event_free(m->drain);
    if (m->log_tick != NULL)
        event_free(m->log_tick);
    /* Connections freed above finish through deferred callbacks, which
     * event_base_free does not run: run them, or their TLS state leaks. */
    for (int i = 0; i < 4; i++)
        event_base_loop(m->app.base, EVLOOP_NONBLOCK);
    main_conf_free(m);
    event_base_free(m->app.base);
}

/* One mdmd process: workers 1, or one worker of the supervisor. */
static int main_serve(struct mdmd *m)
{
    if (m->cf->syslog)
        log_open_syslog("mdmd");
    m->app.base = main_base_new();
    main_signals(m);
    main_open_state(m);
    main_listen(m);
    m->app.enroll = enroll_keys_load(m->cf); /* signs with the certificate main_listen made */
    if (m->app.enroll == NULL)
        die("event=enroll_setup_failed");
    m->app.scep = enroll_scep_keys_load(m->cf, m->app.ca, m->app.worker); /* the same signer */
    if (m->app.scep == NULL)
        die("event=scep_setup_failed");
    log_info("event=ready public=https://localhost:%d mdm=https://localhost:%d ca=%s/ca.crt "
             "api_key_file=%s/api.key try=\"curl --cacert %s/ca.crt https://localhost:%d/healthz\"",
             http_server_port(m->pub), http_server_port(m->mdm), m->cf->ca_dir, m->cf->data_dir,
             m->cf->ca_dir, http_server_port(m->pub));
    event_base_dispatch(m->app.base);
    main_cleanup(m);
    return main_exit(0);
}

/* ---- workers > 1: the supervisor (super.h) ---- */

/* In the child: the supervisor's listeners, its private Redis, nothing else
 * of its (the CA and redis handles stay reachable from m, unused). */
static int main_worker(void *arg, int n)
{
    struct mdmd *m = arg;
    (void)n;
    m->inherited = 1;
    return main_serve(m);
}

/* What a first start writes, written once, before any worker reads it: two
 * workers making the SCEP RA or the API key at once would each keep their own. */
static void main_prepare(struct mdmd *m)
{
    if (util_mkdirs(m->cf->data_dir, 0700) != 0)
        die("event=data_dir_failed path=%s errno=%d", m->cf->data_dir, errno);
    free(main_api_key(m->cf->data_dir));
    char *seal = xasprintf("%s/bootstrap.key", m->cf->data_dir);
    if (ca_seal_keyfile_init(seal) != 0)
        die("event=seal_key_failed path=%s", seal);
    free(seal);
    m->super_ca = ca_open(m->cf);
    if (m->super_ca == NULL)
        die("event=ca_failed dir=%s", m->cf->ca_dir);
    if (main_server_cert(m->cf, m->super_ca) != 0)
        die("event=tls_setup_failed");
    struct ca_scep *sc = ca_scep_open(m->super_ca, m->cf);
    if (sc == NULL || (!ca_scep_ready(sc) && ca_scep_make_ra(sc) != 0))
        die("event=scep_setup_failed");
    ca_scep_free(sc);
}

/* Bound once: every worker accepts from the same queues, and port 0 means
 * one port for all of them. */
static void main_bind(struct mdmd *m)
{
    const char *addr[3] = {m->cf->listen, m->cf->mdm_listen, m->cf->scep_listen};
    int port[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        m->lfd[i] = -1;
        if (*addr[i] == '\0')
            continue;
        if ((m->lfd[i] = http_listen_socket(addr[i], &port[i])) < 0)
            die("event=bind_failed addr=%s errno=%d", addr[i], errno);
        log_info("event=listening addr=%s port=%d", addr[i], port[i]);
    }
    if (*m->cf->port_file == '\0')
        return;
    char *s = xasprintf("listen %d\nmdm_listen %d\n", port[0], port[1]);
    if (m->lfd[2] >= 0) {
        char *t = xasprintf("%sscep_listen %d\n", s, port[2]);
        free(s);
        s = t;
    }
    if (util_write_file(m->cf->port_file, s, strlen(s), 0644) != 0)
        die("event=port_file_failed path=%s errno=%d", m->cf->port_file, errno);
    free(s);
}

/* SIGHUP: the checks main_reload makes, once; the workers then reload. */
static int main_super_reload(void *arg)
{
    struct mdmd *m = arg;
    char err[512];
    SSL_CTX *pub, *mdm;
    struct conf *ncf = main_load_conf(m, err, sizeof(err));
    if (ncf == NULL) {
        log_err("event=reload_failed reason=\"%s\" workers=unchanged", err);
        return -1;
    }
    if (main_server_cert(ncf, m->super_ca) != 0 ||
        main_tls_ctxs(ncf, m->super_ca, &pub, &mdm) != 0) {
        log_err("event=reload_failed reason=\"tls setup failed\" workers=unchanged");
        conf_clear(ncf);
        free(ncf);
        return -1;
    }
    SSL_CTX_free(pub);
    SSL_CTX_free(mdm);
    main_warn_restart_keys(m->cf, ncf);
    log_level = ncf->log_level;
    m->retired = xrealloc(m->retired, sizeof(*m->retired) * (size_t)(m->nretired + 1));
    m->retired[m->nretired++] = m->cf;
    m->cf = ncf; /* for the workers forked from now on */
    m->app.cf = ncf;
    return 0;
}

static void main_super_tick(void *arg)
{
    struct mdmd *m = arg;
    embedded_poll(m->super_redis);
    (void)log_flush();
}

static int main_supervise(struct mdmd *m)
{
    log_set_worker(-1);
    if (m->cf->syslog)
        log_open_syslog("mdmd");
    main_prepare(m);
    if (*m->cf->redis == '\0') { /* one private redis-server for all the workers */
        m->super_redis = embedded_start(m->cf->data_dir, m->cf->redis_server_bin);
        if (m->super_redis == NULL)
            die("event=private_redis_failed");
    }
    main_bind(m);
    struct super_ops ops = {main_worker, main_super_reload, main_super_tick, m};
    int rc = super_run(m->cf->workers, m->cf->shutdown_timeout_s, &ops);
    embedded_stop(m->super_redis);
    for (int i = 0; i < 3; i++)
        if (m->lfd[i] >= 0)
            close(m->lfd[i]);
    ca_free(m->super_ca);
    main_conf_free(m);
    return main_exit(rc);
}

/* `mdmd user ...`: the same configuration as the daemon, then cli.c. */
static int main_cli(struct mdmd *m, int argc, char **argv)
{
    int rc = cli_main(m->cf, argc - m->cli_arg, argv + m->cli_arg);
    conf_clear(m->cf);
    free(m->cf);
    for (int i = 0; i < m->noverrides; i++)
        free((char *)m->overrides[i]);
    return rc;
}

int main(int argc, char **argv)
{
    struct mdmd m = {0};
    char err[512];

    if (argc == 2 && main_info(argv[1]))
        return 0;
    m.app.metrics = &m.metrics;

    int mode = main_parse_args(&m, argc, argv);
    if (mode < 0)
        return 2;
    m.cf = main_load_conf(&m, err, sizeof(err));
    if (m.cf == NULL) {
        fprintf(stderr, "mdmd: %s\n", err);
        return 1;
    }
    m.app.cf = m.cf;
    log_level = m.cf->log_level;
    if (m.cli_arg > 0)
        return main_cli(&m, argc, argv);
    if (mode == 1) {
        printf("configuration ok\n");
        conf_clear(m.cf);
        free(m.cf);
        for (int i = 0; i < m.noverrides; i++)
            free((char *)m.overrides[i]);
        return 0;
    }
    if (m.cf->workers > 1)
        return main_supervise(&m);
    return main_serve(&m);
}
