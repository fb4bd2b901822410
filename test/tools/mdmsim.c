/* mdmsim: the device side of the MDM protocol, for integration tests and as
 * the load generator of `make bench`.  One process, one libevent loop; each
 * simulated iPhone has its own client certificate (issued here from the MDM
 * CA files) and its own keep-alive mutual-TLS connection (evhttp over
 * bufferevent_openssl), checks in (Authenticate, TokenUpdate), then polls
 * PUT {url}/connect and answers every command until the server has nothing
 * left.  Usage: see sim_usage(); one key=value summary line on stdout; exit
 * 0 when no transport, HTTP or protocol error happened. */
#include "mdmsim_core.h"
#include "mdmsim_id.h"
#include "mdmsim_cmd.h"
#include "mdmsim_push.h"
#include "mdmsim_enroll.h"
#include "mdmsim_scep.h"
#include "mdmsim_steps.h"
#include "mdmsim_ddm.h"

#include <arpa/inet.h>
#include <assert.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define SIM_DEFAULT_TOPIC "com.apple.mgmt.External.00000000-0000-0000-0000-000000000000"
#define SIM_GRACE_S 5 /* after a stop, wait this long for in-flight requests */
#define SIM_PROGRESS_S 2

static void sim_usage(FILE *f)
{
    fprintf(f,
            "usage: mdmsim --url https://HOST:PORT/mdm --ca CA.crt --ca-key CA.key [options]\n"
            "  -n N               devices (default 1)\n"
            "  -c N               devices active at once, one connection each (default min(n,64))\n"
            "  --udid-prefix P    UDIDs P-000000, P-000001, ... (default SIM)\n"
            "  --offset K         number of the first device (default 0)\n"
            "  --topic T          Topic sent at check-in (default %s)\n"
            "  --skip-enroll      no Authenticate/TokenUpdate: enrolled by an earlier run\n"
            "  --identities FILE  keep the device key and certificates in FILE, reuse them\n"
            "                     (the server binds the certificate: use with --skip-enroll)\n"
            "  --cycles K         Idle..empty cycles per device (default 1; unlimited with\n"
            "                     --duration; 0 = unlimited)\n"
            "  --duration S       stop after S seconds; failed devices retry with backoff\n"
            "  --push-file FILE   poll only when the mock APNs logs a push (\"token magic\n"
            "                     status\" lines) for the device, one cycle per push (no\n"
            "                     --cycles); runs until --duration or SIGINT/SIGTERM\n"
            "  --notnow-rate R    probability (0..1) of answering a command NotNow\n"
            "  --error-rate R     probability (0..1) of answering a command Error\n"
            "  --binary           send binary plists instead of XML\n"
            "  --ledger FILE      append \"UDID CommandUUID RequestType Status\" per finished\n"
            "                     command, once the server accepted the report\n"
            "  --allow-status L   comma-separated non-2xx statuses that are expected\n"
            "  --reconnect        new connection for every cycle (handshake benchmarks)\n"
            "  --no-resume        no TLS session resumption on reconnects\n"
            "  --single-url       check-ins go to the base URL too (told apart by Content-Type)\n"
            "  --timeout S        per request (default 30)\n"
            "  --seed N           seed of the NotNow/Error draws (default: time and pid)\n"
            "  -q                 only errors and the summary\n"
            "  --enroll-ota URL   enroll over the air first: log in at URL/enroll (the 1-way\n"
            "                     listener), walk the profile service, check in with the\n"
            "                     identity it issues (then --ca-key is not needed)\n"
            "  --user U --password P   the enrollment login\n"
            "  --device-ca F --device-ca-key K   issuer of the devices' own certificates\n"
            "                     (what enroll_device_ca_file trusts)\n"
            "  --dump-dir D       write the profiles and identities received into D\n"
            "  --enroll-until S   stop after the service, ota or mdm profile (no check-in)\n"
            "  --interval S       pause S seconds (0.5..1.5 S, random) between a device's\n"
            "                     cycles: devices that poll now and then, not flat out\n"
            "  --warmup S         leave the first S seconds out of the latency figures;\n"
            "                     with --interval, devices come online spread over them\n"
            "  --loopback-sources enroll each device from its own 127.x.y.z address (per-\n"
            "                     address login limits; the server must be on loopback)\n"
            "  (--user may hold {}: replaced by the device number, one user per device)\n"
            "  --scep URL         get each identity over SCEP from URL (.../scep) instead of\n"
            "                     issuing it with --ca-key (then not needed)\n"
            "  --scep-challenge C the challenge password, or:\n"
            "  --scep-profile F   take it from the SCEP payload of enrollment profile F\n"
            "  --scep-cipher C    envelope cipher: aes256 (default), aes128, des3, des\n"
            "  --scep-get         PKIOperation by GET instead of POST\n"
            "  --scep-retry N     on a 5xx answer send the same message again, up to N times\n"
            "  --scep-signer S    csr (default): sign with the CSR's key; throwaway: with a\n"
            "                     self-signed key of its own (RFC 8894 2.3 allows it)\n"
            "  --scep-digest D    signer digest: sha256 (default) or sha1\n"
            "  --scep-key-bits N  RSA bits of the CSR key (default 2048)\n"
            "  --step SPEC        after enrolling, send a check-in message and print the\n"
            "                     answer (repeatable, in order; mdmsim_steps.h lists them:\n"
            "                     user-auth:U user-token:U ipad-token:N user-poll:U ipad-poll:N\n"
            "                     set-bootstrap:T get-bootstrap get-token:TYPE rts awaiting\n"
            "                     raw:TYPE bad-bootstrap)\n"
            "  --mdm-signature    no TLS client certificate: sign each body (Mdm-Signature)\n"
            "  --ddm-sync         declarative management: sync at every cycle end, asked or not\n"
            "                     (a DeclarativeManagement command always makes the device sync)\n"
            "  --ddm-user ID      DDM check-ins on the user channel ID (UserID)\n"
            "Token = SHA-256(\"mdmsim-token:UDID\"); PushMagic, UnlockToken and serials are\n"
            "derived from the UDID too, so every run presents the same device.\n",
            SIM_DEFAULT_TOPIC);
}

/* ---- options ---- */

static double sim_opt_num(const char *name, const char *v, double lo, double hi)
{
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end != '\0' || !(x >= lo && x <= hi))
        die("event=bad_option option=%s value=\"%s\" want=%g..%g", name, v, lo, hi);
    return x;
}

static void sim_opt_allow(struct sim_opts *o, const char *v)
{
    char *copy = xstrdup(v), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (o->nallow == SIM_MAX_ALLOW)
            die("event=bad_option option=allow-status reason=too_many");
        o->allow[o->nallow++] = (int)sim_opt_num("allow-status", t, 100, 599);
    }
    free(copy);
}

enum {
    SIM_O_URL = 256,
    SIM_O_CA,
    SIM_O_CAKEY,
    SIM_O_TOPIC,
    SIM_O_PREFIX,
    SIM_O_OFFSET,
    SIM_O_SKIP,
    SIM_O_IDS,
    SIM_O_CYCLES,
    SIM_O_DURATION,
    SIM_O_PUSH,
    SIM_O_NOTNOW,
    SIM_O_ERROR,
    SIM_O_BINARY,
    SIM_O_LEDGER,
    SIM_O_ALLOW,
    SIM_O_RECONNECT,
    SIM_O_NORESUME,
    SIM_O_SINGLE,
    SIM_O_TIMEOUT,
    SIM_O_SEED,
    SIM_O_SCEP,
    SIM_O_SCEP_CHAL,
    SIM_O_SCEP_PROF,
    SIM_O_SCEP_CIPHER,
    SIM_O_SCEP_GET,
    SIM_O_SCEP_RETRY,
    SIM_O_MDMSIG,
    SIM_O_SCEP_SIGNER,
    SIM_O_SCEP_DIGEST,
    SIM_O_SCEP_BITS,
    SIM_O_STEP,
};

enum { /* --enroll-ota (mdmsim_enroll.h) */
       SIM_O_ENROLL = 400,
       SIM_O_USER,
       SIM_O_PASSWORD,
       SIM_O_DCA,
       SIM_O_DCAKEY,
       SIM_O_DUMP,
       SIM_O_UNTIL,
       SIM_O_INTERVAL,
       SIM_O_WARMUP,
       SIM_O_LOOPBACK,
       SIM_O_DDM_SYNC,
       SIM_O_DDM_USER,
};

static const struct option sim_longopts[] = {
    {"url", 1, NULL, SIM_O_URL},
    {"ca", 1, NULL, SIM_O_CA},
    {"ca-key", 1, NULL, SIM_O_CAKEY},
    {"topic", 1, NULL, SIM_O_TOPIC},
    {"udid-prefix", 1, NULL, SIM_O_PREFIX},
    {"offset", 1, NULL, SIM_O_OFFSET},
    {"skip-enroll", 0, NULL, SIM_O_SKIP},
    {"identities", 1, NULL, SIM_O_IDS},
    {"cycles", 1, NULL, SIM_O_CYCLES},
    {"duration", 1, NULL, SIM_O_DURATION},
    {"push-file", 1, NULL, SIM_O_PUSH},
    {"notnow-rate", 1, NULL, SIM_O_NOTNOW},
    {"error-rate", 1, NULL, SIM_O_ERROR},
    {"binary", 0, NULL, SIM_O_BINARY},
    {"ledger", 1, NULL, SIM_O_LEDGER},
    {"allow-status", 1, NULL, SIM_O_ALLOW},
    {"reconnect", 0, NULL, SIM_O_RECONNECT},
    {"no-resume", 0, NULL, SIM_O_NORESUME},
    {"single-url", 0, NULL, SIM_O_SINGLE},
    {"timeout", 1, NULL, SIM_O_TIMEOUT},
    {"seed", 1, NULL, SIM_O_SEED},
    {"scep", 1, NULL, SIM_O_SCEP},
    {"scep-challenge", 1, NULL, SIM_O_SCEP_CHAL},
    {"scep-profile", 1, NULL, SIM_O_SCEP_PROF},
    {"scep-cipher", 1, NULL, SIM_O_SCEP_CIPHER},
    {"scep-get", 0, NULL, SIM_O_SCEP_GET},
    {"scep-retry", 1, NULL, SIM_O_SCEP_RETRY},
    {"scep-signer", 1, NULL, SIM_O_SCEP_SIGNER},
    {"scep-digest", 1, NULL, SIM_O_SCEP_DIGEST},
    {"scep-key-bits", 1, NULL, SIM_O_SCEP_BITS},
    {"step", 1, NULL, SIM_O_STEP},
    {"mdm-signature", 0, NULL, SIM_O_MDMSIG},
    {"enroll-ota", 1, NULL, SIM_O_ENROLL},
    {"user", 1, NULL, SIM_O_USER},
    {"password", 1, NULL, SIM_O_PASSWORD},
    {"device-ca", 1, NULL, SIM_O_DCA},
    {"device-ca-key", 1, NULL, SIM_O_DCAKEY},
    {"dump-dir", 1, NULL, SIM_O_DUMP},
    {"enroll-until", 1, NULL, SIM_O_UNTIL},
    {"interval", 1, NULL, SIM_O_INTERVAL},
    {"warmup", 1, NULL, SIM_O_WARMUP},
    {"loopback-sources", 0, NULL, SIM_O_LOOPBACK},
    {"ddm-sync", 0, NULL, SIM_O_DDM_SYNC},
    {"ddm-user", 1, NULL, SIM_O_DDM_USER},
    {"help", 0, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Options that take a number; 0 if c is not one of them. */
static int sim_opt_numeric(struct sim_opts *o, int c, const char *v, int *cycles_set)
{
    switch (c) {
    case 'n': o->n = (unsigned)sim_opt_num("n", v, 1, 1000000); return 1;
    case 'c': o->c = (unsigned)sim_opt_num("c", v, 1, 1000000); return 1;
    case SIM_O_OFFSET: o->offset = (unsigned)sim_opt_num("offset", v, 0, 1e9); return 1;
    case SIM_O_CYCLES: o->cycles = (uint64_t)sim_opt_num("cycles", v, 0, 1e15); break;
    case SIM_O_DURATION: o->duration_s = sim_opt_num("duration", v, 0.001, 1e7); return 1;
    case SIM_O_NOTNOW: o->notnow_rate = sim_opt_num("notnow-rate", v, 0, 1); return 1;
    case SIM_O_ERROR: o->error_rate = sim_opt_num("error-rate", v, 0, 1); return 1;
    case SIM_O_TIMEOUT: o->timeout_s = sim_opt_num("timeout", v, 0.001, 86400); return 1;
    case SIM_O_SEED: o->seed = strtoull(v, NULL, 0); return 1;
    case SIM_O_ALLOW: sim_opt_allow(o, v); return 1;
    default: return 0;
    }
    *cycles_set = 1;
    return 1;
}

static void sim_opt_other(struct sim_opts *o, int c, const char *v)
{
    switch (c) {
    case SIM_O_URL: o->url = v; break;
    case SIM_O_CA: o->ca = v; break;
    case SIM_O_CAKEY: o->ca_key = v; break;
    case SIM_O_TOPIC: o->topic = v; break;
    case SIM_O_PREFIX: o->prefix = v; break;
    case SIM_O_IDS: o->identities = v; break;
    case SIM_O_PUSH: o->push_file = v; break;
    case SIM_O_LEDGER: o->ledger = v; break;
    case SIM_O_SKIP: o->skip_enroll = 1; break;
    case SIM_O_BINARY: o->binary = 1; break;
    case SIM_O_RECONNECT: o->reconnect = 1; break;
    case SIM_O_NORESUME: o->no_resume = 1; break;
    case SIM_O_SINGLE: o->single_url = 1; break;
    case SIM_O_SCEP: o->scep_url = v; break;
    case SIM_O_SCEP_CHAL: o->scep_challenge = v; break;
    case SIM_O_SCEP_PROF: o->scep_profile = v; break;
    case SIM_O_SCEP_CIPHER: o->scep_cipher = v; break;
    case SIM_O_SCEP_GET: o->scep_get = 1; break;
    case SIM_O_SCEP_RETRY: o->scep_retry = atoi(v); break;
    case SIM_O_SCEP_SIGNER: o->scep_signer = v; break;
    case SIM_O_STEP:
        if (o->nsteps == SIM_STEPS_MAX)
            die("event=bad_option option=step reason=too_many");
        o->steps[o->nsteps++] = v;
        break;
    case SIM_O_SCEP_DIGEST: o->scep_digest = v; break;
    case SIM_O_SCEP_BITS:
        o->scep_key_bits = (int)sim_opt_num("scep-key-bits", v, 1024, 8192);
        break;
    case SIM_O_MDMSIG: o->mdm_signature = 1; break;
    case SIM_O_ENROLL: o->enroll_url = v; break;
    case SIM_O_USER: o->user = v; break;
    case SIM_O_PASSWORD: o->password = v; break;
    case SIM_O_DCA: o->device_ca = v; break;
    case SIM_O_DCAKEY: o->device_ca_key = v; break;
    case SIM_O_DUMP: o->dump_dir = v; break;
    case SIM_O_UNTIL: o->enroll_until = sim_enr_stage_of(v); break;
    case SIM_O_INTERVAL: o->interval_s = sim_opt_num("interval", v, 0, 3600); break;
    case SIM_O_WARMUP: o->warmup_s = sim_opt_num("warmup", v, 0, 86400); break;
    case SIM_O_LOOPBACK: o->loopback_sources = 1; break;
    case SIM_O_DDM_SYNC: o->ddm_sync = 1; break;
    case SIM_O_DDM_USER: o->ddm_user = optarg; break;
    case 'q': o->quiet = 1; break;
    case 'h': sim_usage(stdout); exit(0);
    default: sim_usage(stderr); exit(2);
    }
}

static int sim_prefix_ok(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > 40)
        return 0;
    return strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static void sim_opts_check(struct sim_opts *o, int cycles_set)
{
    if (o->url == NULL || o->ca == NULL ||
        (o->ca_key == NULL && o->scep_url == NULL && o->enroll_url == NULL)) {
        sim_usage(stderr);
        exit(2);
    }
    if (o->scep_url != NULL && o->identities != NULL)
        die("event=bad_option reason=\"--scep and --identities exclude each other\"");
    if (!sim_prefix_ok(o->prefix))
        die("event=bad_option option=udid-prefix want=\"1..40 of [A-Za-z0-9._-]\"");
    if (o->notnow_rate + o->error_rate > 1)
        die("event=bad_option reason=\"notnow-rate + error-rate > 1\"");
    if (o->c == 0)
        o->c = o->n < 64 ? o->n : 64;
    if (!cycles_set) /* with a run length, keep going until it ends */
        o->cycles = o->duration_s > 0 ? 0 : 1;
    if (o->push_file != NULL && o->duration_s <= 0)
        log_warn("event=push_mode_without_duration hint=\"runs until SIGINT or SIGTERM\"");
    if (o->skip_enroll && o->identities == NULL)
        log_warn("event=skip_enroll_without_identities hint=\"new certificates: the server "
                 "will refuse them if it bound the old ones\"");
}

static void sim_opts_parse(struct sim_opts *o, int argc, char **argv)
{
    int c, cycles_set = 0;
    *o = (struct sim_opts){.n = 1,
                           .prefix = "SIM",
                           .topic = SIM_DEFAULT_TOPIC,
                           .timeout_s = 30,
                           .seed = (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid()};
    while ((c = getopt_long(argc, argv, "n:c:qh", sim_longopts, NULL)) != -1)
        if (!sim_opt_numeric(o, c, optarg, &cycles_set))
            sim_opt_other(o, c, optarg);
    if (optind != argc) {
        sim_usage(stderr);
        exit(2);
    }
    sim_opts_check(o, cycles_set);
}

/* ---- check-in and status messages ---- */

static plist_t sim_msg_base(const struct sim_dev *d, const char *type)
{
    plist_t m = plist_new_dict();
    sim_pl_str(m, "MessageType", type);
    sim_pl_str(m, "UDID", d->udid);
    /* Enrolled over the air: the Topic of the MDM payload, as iOS does. */
    sim_pl_str(m, "Topic", sim_enr_done(d) ? d->enr->topic : d->sim->o.topic);
    return m;
}

static plist_t sim_msg_authenticate(const struct sim_dev *d)
{
    char serial[16], imei[24], meid[16], name[SIM_UDID_MAX + 16];
    plist_t m = sim_msg_base(d, "Authenticate");
    sim_fmt_serial(d, serial);
    sim_fmt_imei(d, imei);
    sim_fmt_meid(d, meid);
    sim_fmt_name(d, name);
    sim_pl_str(m, "SerialNumber", serial);
    sim_pl_str(m, "ProductName", SIM_PRODUCT);
    sim_pl_str(m, "Model", SIM_MODEL);
    sim_pl_str(m, "OSVersion", SIM_OS_VERSION);
    sim_pl_str(m, "BuildVersion", SIM_BUILD_VERSION);
    sim_pl_str(m, "DeviceName", name);
    sim_pl_str(m, "IMEI", imei);
    sim_pl_str(m, "MEID", meid);
    return m;
}

static plist_t sim_msg_token_update(const struct sim_dev *d)
{
    uint8_t unlock[64];
    plist_t m = sim_msg_base(d, "TokenUpdate");
    sim_derive("mdmsim-unlock-a", d->udid, unlock);
    sim_derive("mdmsim-unlock-b", d->udid, unlock + 32);
    sim_pl_data(m, "Token", d->token, sizeof(d->token));
    sim_pl_str(m, "PushMagic", d->magic);
    sim_pl_data(m, "UnlockToken", unlock, sizeof(unlock));
    sim_pl_bool(m, "AwaitingConfiguration", 0);
    return m;
}

static plist_t sim_msg_status(const struct sim_dev *d, const char *status)
{
    plist_t m = plist_new_dict();
    sim_pl_str(m, "UDID", d->udid);
    sim_pl_str(m, "Status", status);
    if (d->chan_user[0] != '\0') /* user-poll (mdmsim_steps.h) */
        sim_step_user_keys(d, m);
    return m;
}

/* ---- connections ---- */

static void sim_on_close(struct evhttp_connection *c, void *arg)
{
    struct sim_dev *d = arg;
    (void)c;
    d->conn_dead = 1; /* evhttp cannot reconnect an SSL bufferevent: make a new one */
}

static struct evhttp_connection *sim_conn_new(struct sim_dev *d)
{
    struct sim *s = d->sim;
    struct timeval tv = {(time_t)s->o.timeout_s,
                         (suseconds_t)((s->o.timeout_s - (double)(time_t)s->o.timeout_s) * 1e6)};
    SSL *ssl = SSL_new(s->ssl_ctx);
    if (ssl == NULL ||
        (!s->o.mdm_signature && SSL_use_certificate_ASN1(ssl, d->cert_der, d->cert_len) != 1) ||
        (!s->host_is_ip && SSL_set_tlsext_host_name(ssl, s->host) != 1)) {
        log_ssl(LOG_LVL_ERR, "event=ssl_new_failed");
        SSL_free(ssl);
        return NULL;
    }
    if (d->id_key != NULL && SSL_use_PrivateKey(ssl, d->id_key) != 1) {
        log_ssl(LOG_LVL_ERR, "event=ssl_key_failed");
        SSL_free(ssl);
        return NULL;
    }
    if (d->sess != NULL && !s->o.no_resume)
        SSL_set_session(ssl, d->sess);
    struct bufferevent *bev =
        bufferevent_openssl_socket_new(s->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                       BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (bev == NULL) {
        SSL_free(ssl);
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    struct evhttp_connection *c =
        evhttp_connection_base_bufferevent_new(s->base, NULL, bev, s->addr, (ev_uint16_t)s->port);
    if (c == NULL) {
        bufferevent_free(bev);
        return NULL;
    }
    evhttp_connection_set_timeout_tv(c, &tv);
    evhttp_connection_set_retries(c, 0);
    evhttp_connection_set_closecb(c, sim_on_close, d);
    s->st.connects++;
    d->conn_dead = 0;
    d->conn_nodelay = 0;
    return c;
}

/* Keeps the TLS session for the device's next connection, and closes with
 * close_notify: SSL_free() of a connection that never sent one marks its
 * session not resumable (ssl_clear_bad_session), ours included. */
static void sim_conn_keep_session(struct sim_dev *d, struct evhttp_connection *c)
{
    SSL *ssl = bufferevent_openssl_get_ssl(evhttp_connection_get_bufferevent(c));
    if (ssl == NULL || !SSL_is_init_finished(ssl))
        return;
    if (SSL_session_reused(ssl))
        d->sim->st.resumed++;
    if (d->conn_dead) /* the socket is closed: mark it, no I/O */
        SSL_set_shutdown(ssl, SSL_get_shutdown(ssl) | SSL_SENT_SHUTDOWN);
    else if (SSL_shutdown(ssl) < 0)
        ERR_clear_error();
    SSL_SESSION *sess = SSL_get1_session(ssl);
    if (sess != NULL && SSL_SESSION_is_resumable(sess)) {
        SSL_SESSION_free(d->sess);
        d->sess = sess;
    } else {
        SSL_SESSION_free(sess);
    }
}

/* Detaches d's connection; it is freed from reap_ev, never inside one of
 * its own callbacks. */
static void sim_conn_release(struct sim_dev *d)
{
    struct sim *s = d->sim;
    struct evhttp_connection *c = d->conn;
    if (c == NULL)
        return;
    d->conn = NULL;
    evhttp_connection_set_closecb(c, NULL, NULL);
    sim_conn_keep_session(d, c);
    if (s->ngrave == s->grave_cap) {
        s->grave_cap = s->grave_cap ? s->grave_cap * 2 : 64;
        s->grave = xrealloc(s->grave, s->grave_cap * sizeof(*s->grave));
    }
    s->grave[s->ngrave++] = c;
    event_active(s->reap_ev, EV_TIMEOUT, 0);
}

static void sim_reap(evutil_socket_t fd, short what, void *arg)
{
    struct sim *s = arg;
    (void)fd;
    (void)what;
    for (unsigned i = 0; i < s->ngrave; i++)
        evhttp_connection_free(s->grave[i]);
    s->ngrave = 0;
}

/* Nagle would hold the second TLS record of a request until the server's
 * delayed ACK (40 ms).  The socket exists once evhttp_make_request has
 * started the connect, before anything is written. */
static void sim_conn_nodelay(struct sim_dev *d)
{
    int one = 1;
    if (d->conn == NULL || d->conn_nodelay)
        return;
    evutil_socket_t fd = bufferevent_getfd(evhttp_connection_get_bufferevent(d->conn));
    if (fd >= 0 && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0)
        d->conn_nodelay = 1;
}

/* ---- one HTTP request ---- */

static void sim_on_response(struct evhttp_request *req, void *arg);

static void sim_on_req_error(enum evhttp_request_error err, void *arg)
{
    struct sim_dev *d = arg;
    d->last_error = (int)err;
}

static int sim_http_put(struct sim_dev *d, const char *path, const char *ctype, plist_t body)
{
    struct sim *s = d->sim;
    if (d->conn != NULL && d->conn_dead)
        sim_conn_release(d);
    if (d->conn == NULL && (d->conn = sim_conn_new(d)) == NULL)
        return -1;
    struct evhttp_request *req = evhttp_request_new(sim_on_response, d);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_request_set_error_cb(req, sim_on_req_error);
    evhttp_add_header(h, "Host", s->host_hdr);
    evhttp_add_header(h, "Content-Type", ctype);
    evhttp_add_header(h, "User-Agent", "MDM/1.0");
    sim_pl_write(s, body, evhttp_request_get_output_buffer(req));
    if (s->o.mdm_signature && sim_sig_add(d, req) != 0) {
        evhttp_request_free(req);
        return -1;
    }
    d->last_error = -1;
    d->t0_us = sim_now_us();
    if (evhttp_make_request(d->conn, req, EVHTTP_REQ_PUT, path) != 0)
        return -1;
    sim_conn_nodelay(d);
    return 0;
}

/* ---- device flow: Authenticate, TokenUpdate, then Idle/report loops ---- */

static void sim_session_end(struct sim_dev *d, int failed);
static void sim_schedule_pump(struct sim *s);

static const char *sim_state_path(const struct sim_dev *d)
{
    int checkin = d->state == SIM_ST_AUTH || d->state == SIM_ST_TOKEN || d->state == SIM_ST_DDM;
    return checkin ? d->sim->checkin_path : d->sim->connect_path;
}

static void sim_dev_send(struct sim_dev *d, enum sim_state st, plist_t report)
{
    struct sim *s = d->sim;
    plist_t body = report;
    if (st == SIM_ST_AUTH)
        body = sim_msg_authenticate(d);
    else if (st == SIM_ST_TOKEN)
        body = sim_msg_token_update(d);
    else if (st == SIM_ST_IDLE)
        body = sim_msg_status(d, "Idle");
    d->state = st;
    const char *ctype = st == SIM_ST_AUTH || st == SIM_ST_TOKEN || st == SIM_ST_DDM
                            ? SIM_CT_CHECKIN
                            : SIM_CT_CONNECT;
    int rc = sim_http_put(d, sim_state_path(d), ctype, body);
    plist_free(body);
    if (rc != 0) {
        s->st.net_errors++;
        log_err("event=request_failed udid=%s path=%s", d->udid, sim_state_path(d));
        sim_session_end(d, 1);
    }
}

static void sim_notnow_clear(struct sim_dev *d)
{
    for (unsigned i = 0; i < d->nnotnow; i++)
        free(d->notnow[i]);
    d->nnotnow = 0;
}

static void sim_notnow_add(struct sim_dev *d, const char *uuid)
{
    if (d->nnotnow == d->notnow_cap) {
        d->notnow_cap = d->notnow_cap ? d->notnow_cap * 2 : 4;
        d->notnow = xrealloc(d->notnow, d->notnow_cap * sizeof(*d->notnow));
    }
    d->notnow[d->nnotnow++] = xstrdup(uuid);
}

static void sim_proto_error(struct sim_dev *d, const char *why, const char *uuid)
{
    struct sim *s = d->sim;
    s->st.proto_errors++;
    if (s->printed_proto++ < SIM_ERR_PRINT_MAX)
        fprintf(stderr, "mdmsim: protocol_error=\"%s\" udid=%s command_uuid=%s\n", why, d->udid,
                uuid ? uuid : "-");
    sim_session_end(d, 1);
}

/* DESIGN §2: a finished command is never sent again, and a NotNow'd one
 * only comes back after a report other than NotNow. */
static int sim_proto_check(struct sim_dev *d, const char *uuid)
{
    if (strcmp(uuid, d->last_finished) == 0) {
        sim_proto_error(d, "finished command sent again", uuid);
        return -1;
    }
    for (unsigned i = 0; i < d->nnotnow; i++)
        if (strcmp(uuid, d->notnow[i]) == 0) {
            sim_proto_error(d, "NotNow command sent again before another report", uuid);
            return -1;
        }
    return 0;
}

/* Decides the answer (NotNow and Error by the configured rates, one draw
 * per command so --seed replays), runs the command, builds the report. */
static plist_t sim_dev_execute(struct sim_dev *d, plist_t msg, const char *uuid)
{
    struct sim *s = d->sim;
    plist_t cmd = sim_pl_get(msg, "Command", PLIST_DICT);
    const char *type = sim_pl_get_str(cmd, "RequestType");
    enum sim_status status;
    plist_t resp = plist_new_dict();
    double r = sim_rng_unit(&d->rng);

    s->st.commands++;
    snprintf(d->cmd_uuid, sizeof(d->cmd_uuid), "%s", uuid);
    snprintf(d->cmd_type, sizeof(d->cmd_type), "%s", type && *type ? type : "-");
    if (type == NULL) {
        status = SIM_FORMAT;
    } else if (r < s->o.notnow_rate) {
        status = SIM_NOTNOW;
    } else if (r < s->o.notnow_rate + s->o.error_rate) {
        status = SIM_ERROR;
        sim_error_chain(resp, 1, "MDMSimInjectedError", "Simulated failure (mdmsim --error-rate).");
    } else {
        status = sim_cmd_run(d, type, cmd, resp);
    }
    d->cmd_status = status;
    if (d->chan_user[0] != '\0') {
        sim_step_user_keys(d, resp);
        sim_step_poll_cmd(d, type);
    }
    sim_pl_str(resp, "UDID", d->udid);
    sim_pl_str(resp, "Status", sim_status_name[status]);
    sim_pl_str(resp, "CommandUUID", uuid);
    return resp;
}

static void sim_cycle_end(struct sim_dev *d);

static void sim_dev_thought(evutil_socket_t fd, short what, void *arg)
{
    struct sim_dev *d = arg;
    (void)fd;
    (void)what;
    if (d->sim->stopping)
        sim_session_end(d, 0);
    else
        sim_dev_send(d, SIM_ST_IDLE, NULL);
}

/* --interval: the next Idle after a pause, jittered so that devices that
 * started together do not keep polling in lockstep.  The connection stays
 * open, as a device's does between pushes. */
static void sim_dev_think(struct sim_dev *d)
{
    struct sim *s = d->sim;
    double t = s->o.interval_s * (0.5 + sim_rng_unit(&d->rng));
    /* The first time, with --warmup: come online somewhere in its first 80%
     * (a thousand devices connecting in one second overflow the listen
     * queue: SYN retries, seconds of latency that are the client's doing). */
    if (d->cycles == 0 && s->o.warmup_s > 0)
        t = 0.8 * s->o.warmup_s * sim_rng_unit(&d->rng);
    struct timeval tv = {(time_t)t, (suseconds_t)((t - (double)(time_t)t) * 1e6)};
    if (d->think_ev == NULL)
        d->think_ev = evtimer_new(s->base, sim_dev_thought, d);
    evtimer_add(d->think_ev, &tv);
}

/* The server's answer to Idle or to a report: empty, or the next command. */
static void sim_dev_poll_reply(struct sim_dev *d, const char *body, size_t len)
{
    plist_t msg = NULL;
    if (len == 0 && (d->ddm_pending || d->sim->o.ddm_sync)) {
        sim_ddm_start(d); /* ends the cycle when it is done */
        return;
    }
    if (len == 0) {
        sim_cycle_end(d);
        return;
    }
    if (len < UINT32_MAX)
        plist_from_memory(body, (uint32_t)len, &msg);
    const char *uuid =
        msg && plist_get_node_type(msg) == PLIST_DICT ? sim_pl_get_str(msg, "CommandUUID") : NULL;
    if (uuid == NULL || *uuid == '\0' || strlen(uuid) >= SIM_UUID_MAX) {
        sim_proto_error(d, msg ? "command without a usable CommandUUID" : "body is not a plist",
                        NULL);
    } else if (sim_proto_check(d, uuid) == 0) {
        sim_dev_send(d, SIM_ST_REPORT, sim_dev_execute(d, msg, uuid));
    }
    plist_free(msg);
}

static void sim_ledger(struct sim *s, const struct sim_dev *d)
{
    char line[SIM_UDID_MAX + SIM_UUID_MAX + SIM_TYPE_MAX + 32];
    if (s->ledger_fd < 0)
        return;
    int n = snprintf(line, sizeof(line), "%s %s %s %s\n", d->udid, d->cmd_uuid, d->cmd_type,
                     sim_status_name[d->cmd_status]);
    /* One write(2) on an O_APPEND fd: a line is on disk (in the page cache)
     * as soon as the server has accepted the report, whole. */
    if (write(s->ledger_fd, line, (size_t)n) != n)
        log_warn("event=ledger_write_failed error=\"%s\"", strerror(errno));
}

/* The server accepted the report (200). */
static void sim_report_done(struct sim_dev *d)
{
    struct sim *s = d->sim;
    enum sim_status st = d->cmd_status;
    if (st == SIM_NOTNOW) {
        s->st.notnow++;
        sim_notnow_add(d, d->cmd_uuid);
        return;
    }
    sim_notnow_clear(d);
    if (st == SIM_ACK)
        s->st.acknowledged++;
    else if (st == SIM_ERROR)
        s->st.errors++;
    else
        s->st.format_errors++;
    snprintf(d->last_finished, sizeof(d->last_finished), "%s", d->cmd_uuid);
    sim_ledger(s, d);
}

/* After TokenUpdate: the --step messages first (mdmsim_steps.h). */
static void sim_dev_after_enroll(struct sim_dev *d)
{
    if (d->step < d->sim->o.nsteps) {
        sim_step_next(d);
        return;
    }
    sim_steps_done(d);
}

/* Then: in push mode wait for a push, else start polling. */
static void sim_steps_done(struct sim_dev *d)
{
    if (d->sim->o.push_file != NULL && !d->push_pending) {
        sim_session_end(d, 0);
        return;
    }
    d->push_pending = 0;
    sim_notnow_clear(d);
    sim_dev_send(d, SIM_ST_IDLE, NULL);
}

/* The server answered empty: this Idle..empty cycle is over. */
static void sim_cycle_end(struct sim_dev *d)
{
    struct sim *s = d->sim;
    if (d->chan_user[0] != '\0') {
        sim_step_poll_done(d);
        return;
    }
    d->cycles++;
    s->st.cycles++;
    if (s->o.push_file != NULL) {
        if (!d->push_pending) { /* pushed again meanwhile: poll again */
            sim_session_end(d, 0);
            return;
        }
        d->push_pending = 0;
    } else if (s->o.cycles != 0 && d->cycles >= s->o.cycles) {
        d->done = 1;
        sim_session_end(d, 0);
        return;
    } else if (s->o.cycles == 0 && s->rq_head != NULL) {
        sim_session_end(d, 0); /* others wait for a slot: take turns */
        return;
    }
    if (s->o.reconnect)
        sim_conn_release(d);
    sim_notnow_clear(d);
    d->last_finished[0] = '\0';
    if (s->o.interval_s > 0) {
        sim_dev_think(d);
        return;
    }
    sim_dev_send(d, SIM_ST_IDLE, NULL);
}

static void sim_dev_on_ok(struct sim_dev *d, const char *body, size_t len)
{
    enum sim_state st = d->state;
    d->state = SIM_ST_NONE;
    d->failures = 0;
    if (st == SIM_ST_REPORT)
        sim_report_done(d);
    if (st == SIM_ST_TOKEN) {
        d->enrolled = 1;
        d->sim->st.enrolled++;
    }
    if (d->sim->stopping) {
        sim_session_end(d, 0);
        return;
    }
    switch (st) {
    case SIM_ST_AUTH: sim_dev_send(d, SIM_ST_TOKEN, NULL); break;
    case SIM_ST_TOKEN: sim_dev_after_enroll(d); break;
    case SIM_ST_IDLE:
    case SIM_ST_REPORT: sim_dev_poll_reply(d, body, len); break;
    case SIM_ST_DDM: sim_ddm_reply(d, body, len); break;
    default: assert(0);
    }
}

/* ---- failures ---- */

static const char *sim_req_error_name(int e)
{
    switch (e) {
    case EVREQ_HTTP_TIMEOUT: return "timeout";
    case EVREQ_HTTP_EOF: return "eof";
    case EVREQ_HTTP_INVALID_HEADER: return "invalid_header";
    case EVREQ_HTTP_BUFFER_ERROR: return "buffer_error";
    case EVREQ_HTTP_REQUEST_CANCEL: return "cancelled";
    case EVREQ_HTTP_DATA_TOO_LONG: return "too_long";
    default: return "connect";
    }
}

/* Why a connection failed, from the TLS layer, when it knows. */
static void sim_tls_reason(struct sim_dev *d, char *out, size_t n)
{
    struct bufferevent *bev = d->conn ? evhttp_connection_get_bufferevent(d->conn) : NULL;
    SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
    unsigned long e = bev ? bufferevent_get_openssl_error(bev) : 0;
    long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    out[0] = '\0';
    if (v != X509_V_OK)
        snprintf(out, n, " tls_verify=\"%s\"", X509_verify_cert_error_string(v));
    /* libevent also stores SSL_get_error() values (library 0) there: those
     * say no more than the transport error itself. */
    else if (ERR_GET_LIB(e) != 0 && ERR_reason_error_string(e) != NULL)
        snprintf(out, n, " tls=\"%s\"", ERR_reason_error_string(e));
    while (bev && bufferevent_get_openssl_error(bev) != 0)
        ;
}

static void sim_net_error(struct sim_dev *d)
{
    struct sim *s = d->sim;
    char why[160];
    /* evhttp fails requests of a connection that never came up without
     * calling the error callback: tell a timeout by the clock. */
    int timed_out = d->last_error < 0 && (double)(sim_now_us() - d->t0_us) >= s->o.timeout_s * 1e6;
    s->st.net_errors++;
    if (s->printed_net++ < SIM_ERR_PRINT_MAX) {
        sim_tls_reason(d, why, sizeof(why));
        fprintf(stderr, "mdmsim: transport_error=%s path=%s udid=%s%s\n",
                timed_out ? "connect_timeout" : sim_req_error_name(d->last_error),
                sim_state_path(d), d->udid, why);
    }
    sim_session_end(d, 1);
}

static int sim_status_allowed(const struct sim *s, int code)
{
    for (int i = 0; i < s->o.nallow; i++)
        if (s->o.allow[i] == code)
            return 1;
    return 0;
}

static void sim_http_error(struct sim_dev *d, int code, struct evhttp_request *req)
{
    struct sim *s = d->sim;
    char snip[121];
    ev_ssize_t got = evbuffer_copyout(evhttp_request_get_input_buffer(req), snip, sizeof(snip) - 1);
    size_t n = got > 0 ? (size_t)got : 0;
    for (size_t i = 0; i < n; i++) /* one line, printable */
        if ((unsigned char)snip[i] < 0x20 || (unsigned char)snip[i] > 0x7e || snip[i] == '"')
            snip[i] = ' ';
    snip[n] = '\0';
    if (sim_status_allowed(s, code)) {
        s->st.http_allowed++;
        log_debug("event=expected_status status=%d path=%s udid=%s", code, sim_state_path(d),
                  d->udid);
    } else {
        s->st.http_errors++;
        if (s->printed_http++ < SIM_ERR_PRINT_MAX)
            fprintf(stderr, "mdmsim: http_status=%d path=%s udid=%s body=\"%s\"\n", code,
                    sim_state_path(d), d->udid, snip);
    }
    sim_session_end(d, 1);
}

static void sim_on_response(struct evhttp_request *req, void *arg)
{
    struct sim_dev *d = arg;
    struct sim *s = d->sim;
    int code = req != NULL ? evhttp_request_get_response_code(req) : 0;
    sim_latency(s, d->t0_us);
    s->st.requests++;
    if (code == 0) {
        sim_net_error(d);
        return;
    }
    struct evbuffer *b = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(b);
    const char *body = len ? (const char *)evbuffer_pullup(b, -1) : "";
    if (d->state == SIM_ST_STEP) {
        sim_step_on_reply(d, code, body, len);
        return;
    }
    if (code < 200 || code > 299) {
        sim_http_error(d, code, req);
        return;
    }
    sim_dev_on_ok(d, body, len);
}

/* ---- scheduling: a run queue, at most -c devices active ---- */

static void sim_enqueue(struct sim_dev *d)
{
    struct sim *s = d->sim;
    if (d->queued || d->active || d->done || s->stopping)
        return;
    d->queued = 1;
    d->next = NULL;
    if (s->rq_tail != NULL)
        s->rq_tail->next = d;
    else
        s->rq_head = d;
    s->rq_tail = d;
    sim_schedule_pump(s);
}

static void sim_dev_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sim_enqueue(arg);
}

/* After a failure: a one-shot run (no --duration, no --push-file) gives up
 * on the device; otherwise it retries with backoff, so a run survives the
 * server or Redis restarting. */
static void sim_dev_failed_next(struct sim_dev *d)
{
    struct sim *s = d->sim;
    d->failures++;
    if (s->stopping)
        return;
    if (s->o.duration_s <= 0 && s->o.push_file == NULL) {
        d->done = 1;
        return;
    }
    if (s->o.push_file != NULL && d->enrolled)
        d->push_pending = 1; /* the push that woke it is not served yet */
    unsigned shift = d->failures > 5 ? 5 : d->failures - 1;
    unsigned ms = (100u << shift) + (unsigned)(sim_rng_next(&d->rng) % 100);
    struct timeval tv = {ms / 1000, (suseconds_t)(ms % 1000) * 1000};
    if (d->retry_ev == NULL)
        d->retry_ev = evtimer_new(s->base, sim_dev_retry, d);
    evtimer_add(d->retry_ev, &tv);
}

static void sim_session_end(struct sim_dev *d, int failed)
{
    struct sim *s = d->sim;
    assert(d->active);
    d->active = 0;
    d->state = SIM_ST_NONE;
    s->active--;
    sim_conn_release(d);
    sim_enr_release(d);
    sim_notnow_clear(d);
    d->last_finished[0] = '\0';
    if (failed)
        sim_dev_failed_next(d);
    else if (!d->done && (s->o.push_file == NULL || d->push_pending))
        sim_enqueue(d);
    if (d->done)
        s->finished++;
    sim_schedule_pump(s);
}

static void sim_session_start(struct sim_dev *d)
{
    struct sim *s = d->sim;
    d->active = 1;
    s->active++;
    if (s->enr != NULL && !sim_enr_done(d)) {
        sim_enr_start(d);
        return;
    }
    if ((s->scep != NULL ? sim_scep_ensure(d) : sim_id_ensure(d)) != 0) {
        sim_session_end(d, 1);
        return;
    }
    if (!d->enrolled) {
        sim_dev_send(d, SIM_ST_AUTH, NULL);
        return;
    }
    if (d->step < s->o.nsteps) { /* --skip-enroll: the steps come first too */
        sim_step_next(d);
        return;
    }
    d->push_pending = 0;
    if (s->o.interval_s > 0 && d->cycles == 0) {
        sim_dev_think(d); /* devices come online spread over the interval */
        return;
    }
    sim_dev_send(d, SIM_ST_IDLE, NULL);
}

/* A push for d arrived (push mode).  A device backing off after a failure
 * keeps waiting: the retry serves the push. */
static void sim_dev_push(struct sim_dev *d)
{
    d->push_pending = 1;
    if (d->retry_ev == NULL || !evtimer_pending(d->retry_ev, NULL))
        sim_enqueue(d);
}

static void sim_schedule_pump(struct sim *s)
{
    event_active(s->pump_ev, EV_TIMEOUT, 0);
}

static void sim_pump(evutil_socket_t fd, short what, void *arg)
{
    struct sim *s = arg;
    (void)fd;
    (void)what;
    while (!s->stopping && s->active < s->o.c && s->rq_head != NULL) {
        struct sim_dev *d = s->rq_head;
        s->rq_head = d->next;
        if (s->rq_head == NULL)
            s->rq_tail = NULL;
        d->queued = 0;
        d->next = NULL;
        sim_session_start(d);
    }
    if (s->active == 0 && (s->stopping || (s->o.push_file == NULL && s->finished == s->o.n)))
        event_base_loopbreak(s->base);
}

/* ---- stopping, signals, progress ---- */

static void sim_grace_over(evutil_socket_t fd, short what, void *arg)
{
    struct sim *s = arg;
    (void)fd;
    (void)what;
    s->st.interrupted = s->active;
    log_warn("event=stop_forced in_flight=%u", s->active);
    event_base_loopbreak(s->base);
}

static void sim_stop(struct sim *s, const char *why)
{
    struct timeval grace = {SIM_GRACE_S, 0};
    if (s->stopping)
        return;
    s->stopping = 1;
    log_info("event=stopping reason=%s in_flight=%u", why, s->active);
    for (struct sim_dev *d = s->rq_head, *next; d != NULL; d = next) {
        next = d->next;
        d->queued = 0;
        d->next = NULL;
    }
    s->rq_head = s->rq_tail = NULL;
    /* Requests in flight finish (their results reach the ledger); devices
     * then stop instead of sending more. */
    s->grace_ev = evtimer_new(s->base, sim_grace_over, s);
    evtimer_add(s->grace_ev, &grace);
    sim_schedule_pump(s);
}

static void sim_on_duration(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sim_stop(arg, "duration");
}

static void sim_on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct sim *s = arg;
    (void)what;
    if (s->stopping) { /* second signal: do not wait */
        s->st.interrupted = s->active;
        event_base_loopbreak(s->base);
        return;
    }
    sim_stop(s, sig == SIGINT ? "sigint" : "sigterm");
}

static void sim_on_progress(evutil_socket_t fd, short what, void *arg)
{
    struct sim *s = arg;
    (void)fd;
    (void)what;
    log_info("event=progress requests=%llu rps=%.0f commands=%llu active=%u finished=%u "
             "errors=%llu",
             (unsigned long long)s->st.requests,
             (double)(s->st.requests - s->last_requests) / SIM_PROGRESS_S,
             (unsigned long long)s->st.commands, s->active, s->finished,
             (unsigned long long)(s->st.http_errors + s->st.net_errors + s->st.proto_errors));
    s->last_requests = s->st.requests;
}

/* ---- setup and teardown ---- */

/* Host as written in the URL (brackets stripped), resolved once here: evhttp
 * would otherwise call the blocking resolver on every connect. */
static void sim_resolve(struct sim *s)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    char buf[INET6_ADDRSTRLEN];
    unsigned char ip[16];
    int rc = getaddrinfo(s->host, NULL, &hints, &ai);
    if (rc != 0 || ai == NULL)
        die("event=resolve_failed host=%s error=\"%s\"", s->host, gai_strerror(rc));
    const void *a = ai->ai_family == AF_INET6
                        ? (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
                        : (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
    if (inet_ntop(ai->ai_family, a, buf, sizeof(buf)) == NULL)
        die("event=resolve_failed host=%s", s->host);
    freeaddrinfo(ai);
    s->addr = xstrdup(buf);
    s->host_is_ip = inet_pton(AF_INET, s->host, ip) == 1 || inet_pton(AF_INET6, s->host, ip) == 1;
}

static void sim_url_init(struct sim *s)
{
    struct evhttp_uri *u = evhttp_uri_parse(s->o.url);
    const char *scheme = u ? evhttp_uri_get_scheme(u) : NULL;
    const char *host = u ? evhttp_uri_get_host(u) : NULL, *path;
    if (scheme == NULL || strcasecmp(scheme, "https") != 0 || host == NULL || *host == '\0')
        die("event=bad_url url=\"%s\" want=https://HOST[:PORT]/PATH", s->o.url);
    size_t hl = strlen(host);
    s->host = host[0] == '[' && hl > 2 ? xstrndup(host + 1, hl - 2) : xstrdup(host);
    s->port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : 443;
    path = evhttp_uri_get_path(u) ? evhttp_uri_get_path(u) : "";
    size_t pl = strlen(path);
    while (pl > 0 && path[pl - 1] == '/')
        pl--;
    int v6 = strchr(s->host, ':') != NULL;
    s->host_hdr = xasprintf(v6 ? "[%s]:%d" : "%s:%d", s->host, s->port);
    s->connect_path = s->o.single_url ? xasprintf("%.*s", (int)pl, pl ? path : "/")
                                      : xasprintf("%.*s/connect", (int)pl, path);
    s->checkin_path =
        s->o.single_url ? xstrdup(s->connect_path) : xasprintf("%.*s/checkin", (int)pl, path);
    evhttp_uri_free(u);
    sim_resolve(s);
}

static void sim_devs_init(struct sim *s)
{
    unsigned last = s->o.offset + s->o.n - 1, w = 1;
    for (unsigned v = last; v >= 10; v /= 10)
        w++;
    s->udid_width = w > 6 ? w : 6;
    s->devs = xcalloc(s->o.n, sizeof(*s->devs));
    for (unsigned i = 0; i < s->o.n; i++) {
        struct sim_dev *d = &s->devs[i];
        d->sim = s;
        d->idx = i;
        snprintf(d->udid, sizeof(d->udid), "%s-%0*u", s->o.prefix, (int)s->udid_width,
                 s->o.offset + i);
        sim_derive("mdmsim-token", d->udid, d->token);
        sim_uuid_of("mdmsim-magic", d->udid, d->magic);
        d->rng.s = s->o.seed ^ ((uint64_t)(s->o.offset + i) * 0xD1B54A32D192ED03ULL);
        d->enrolled = (unsigned)s->o.skip_enroll;
        d->last_error = -1;
    }
}

static void sim_events_init(struct sim *s)
{
    struct timeval prog = {SIM_PROGRESS_S, 0};
    s->reap_ev = event_new(s->base, -1, 0, sim_reap, s);
    s->pump_ev = event_new(s->base, -1, 0, sim_pump, s);
    s->sigint_ev = evsignal_new(s->base, SIGINT, sim_on_signal, s);
    s->sigterm_ev = evsignal_new(s->base, SIGTERM, sim_on_signal, s);
    event_add(s->sigint_ev, NULL);
    event_add(s->sigterm_ev, NULL);
    if (s->o.duration_s > 0) {
        struct timeval tv = {
            (time_t)s->o.duration_s,
            (suseconds_t)((s->o.duration_s - (double)(time_t)s->o.duration_s) * 1e6)};
        s->stop_ev = evtimer_new(s->base, sim_on_duration, s);
        evtimer_add(s->stop_ev, &tv);
    }
    if (!s->o.quiet) {
        s->progress_ev = event_new(s->base, -1, EV_PERSIST, sim_on_progress, s);
        event_add(s->progress_ev, &prog);
    }
    if (s->o.push_file != NULL)
        s->push = sim_push_new(s);
}

static void sim_init(struct sim *s)
{
    signal(SIGPIPE, SIG_IGN);
    if (s->o.scep_url != NULL)
        sim_scep_init(s);
    else
        sim_id_load_ca(s);
    sim_url_init(s);
    sim_devs_init(s);
    sim_id_init(s);
    if (s->o.enroll_url != NULL)
        s->enr = sim_enr_new(s);
    s->ssl_ctx = sim_tls_ctx(s);
    s->ledger_fd = -1;
    if (s->o.ledger != NULL &&
        (s->ledger_fd = open(s->o.ledger, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0)
        die("event=ledger_open_failed path=%s error=\"%s\"", s->o.ledger, strerror(errno));
    /* The changelist folds the epoll_ctl calls evhttp makes while toggling
     * read/write interest into one per fd per loop turn: a third fewer
     * syscalls per request.  Safe here: mdmsim never dup()s a socket. */
    struct event_config *cfg = event_config_new();
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    s->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (s->base == NULL)
        die("event=event_base_failed");
    sim_events_init(s);
}

static void sim_dev_free(struct sim_dev *d)
{
    if (d->conn != NULL) { /* interrupted: its request goes without a callback */
        evhttp_connection_set_closecb(d->conn, NULL, NULL);
        evhttp_connection_free(d->conn);
    }
    if (d->retry_ev != NULL)
        event_free(d->retry_ev);
    SSL_SESSION_free(d->sess);
    free(d->cert_der);
    sim_enr_dev_free(d);
    EVP_PKEY_free(d->id_key);
    if (d->think_ev != NULL)
        event_free(d->think_ev);
    sim_notnow_clear(d);
    free(d->notnow);
    sim_dev_state_free(d);
    sim_ddm_free(d);
}

static void sim_event_free(struct event *ev)
{
    if (ev != NULL)
        event_free(ev);
}

static void sim_free(struct sim *s)
{
    for (unsigned i = 0; i < s->o.n; i++)
        sim_dev_free(&s->devs[i]);
    sim_reap(-1, 0, s);
    free(s->grave);
    free(s->devs);
    sim_push_free(s->push);
    sim_enr_free(s->enr);
    struct event *evs[] = {s->reap_ev,     s->pump_ev,   s->stop_ev,   s->grace_ev,
                           s->progress_ev, s->sigint_ev, s->sigterm_ev};
    for (size_t i = 0; i < ARRAY_LEN(evs); i++)
        sim_event_free(evs[i]);
    event_base_free(s->base);
    SSL_CTX_free(s->ssl_ctx);
    X509_free(s->ca_cert);
    EVP_PKEY_free(s->ca_key);
    EVP_PKEY_free(s->dev_key);
    OPENSSL_free(s->ca_der);
    if (s->id_file != NULL)
        fclose(s->id_file);
    if (s->ledger_fd >= 0)
        close(s->ledger_fd);
    free(s->host);
    free(s->addr);
    free(s->host_hdr);
    free(s->checkin_path);
    free(s->connect_path);
    sim_scep_free(s); /* last: it unloads the providers the keys above came from */
}

static void sim_summary(const struct sim *s)
{
    const struct sim_stats *t = &s->st;
    double el = (double)(s->end_us - s->start_us) / 1e6;
    unsigned more =
        (s->printed_http > SIM_ERR_PRINT_MAX ? s->printed_http - SIM_ERR_PRINT_MAX : 0) +
        (s->printed_net > SIM_ERR_PRINT_MAX ? s->printed_net - SIM_ERR_PRINT_MAX : 0) +
        (s->printed_proto > SIM_ERR_PRINT_MAX ? s->printed_proto - SIM_ERR_PRINT_MAX : 0);
    if (more > 0)
        fprintf(stderr, "mdmsim: %u more error lines not printed (%d per kind)\n", more,
                SIM_ERR_PRINT_MAX);
    printf("devices=%u enrolled=%llu cycles=%llu requests=%llu commands=%llu acknowledged=%llu "
           "notnow=%llu errors=%llu format_errors=%llu http_errors=%llu http_expected=%llu "
           "net_errors=%llu proto_errors=%llu pushes=%llu connects=%llu resumed=%llu "
           "interrupted=%llu rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f "
           "elapsed_s=%.3f ddm_syncs=%llu ddm_fetched=%llu ddm_reports=%llu\n",
           s->o.n, (unsigned long long)t->enrolled, (unsigned long long)t->cycles,
           (unsigned long long)t->requests, (unsigned long long)t->commands,
           (unsigned long long)t->acknowledged, (unsigned long long)t->notnow,
           (unsigned long long)t->errors, (unsigned long long)t->format_errors,
           (unsigned long long)t->http_errors, (unsigned long long)t->http_allowed,
           (unsigned long long)t->net_errors, (unsigned long long)t->proto_errors,
           (unsigned long long)t->pushes, (unsigned long long)t->connects,
           (unsigned long long)t->resumed, (unsigned long long)t->interrupted,
           el > 0 ? (double)t->requests / el : 0.0, sim_hist_pct_ms(&s->hist, 0.50),
           sim_hist_pct_ms(&s->hist, 0.90), sim_hist_pct_ms(&s->hist, 0.99),
           (double)s->hist.max_us / 1000.0, el, (unsigned long long)t->ddm_syncs,
           (unsigned long long)t->ddm_fetched, (unsigned long long)t->ddm_reports);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    static struct sim sim; /* static: the histogram is 8 KB */
    struct sim *s = &sim;

    sim_opts_parse(&s->o, argc, argv);
    log_level = s->o.quiet ? LOG_LVL_WARN : LOG_LVL_INFO;
    sim_init(s);
    log_info("event=start devices=%u concurrency=%u url=%s seed=%llu mode=%s", s->o.n, s->o.c,
             s->o.url, (unsigned long long)s->o.seed, s->o.push_file ? "push" : "poll");
    if (s->o.push_file == NULL || !s->o.skip_enroll)
        for (unsigned i = 0; i < s->o.n; i++)
            sim_enqueue(&s->devs[i]);
    s->start_us = sim_now_us();
    event_base_dispatch(s->base);
    s->end_us = sim_now_us();
    sim_summary(s);
    sim_enr_summary(s);
    int failed = s->st.http_errors + s->st.net_errors + s->st.proto_errors > 0;
    sim_free(s);
    return failed ? 1 : 0;
}
