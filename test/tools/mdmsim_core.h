/* mdmsim_core.h: types and small helpers of the device simulator.  Included
 * by mdmsim.c only: every test/tools/ .c file becomes its own binary, so mdmsim's
 * parts live in headers of static functions rather than in more .c files. */
#ifndef MDMSIM_CORE_H
#define MDMSIM_CORE_H

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <plist/plist.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "../../core/log.h"
#include "../../core/util.h"

#define SIM_UDID_MAX 64
#define SIM_UUID_MAX 128 /* CommandUUIDs are 36 chars; be lenient */
#define SIM_TYPE_MAX 64
#define SIM_MAX_ALLOW 8
#define SIM_ERR_PRINT_MAX 50 /* stderr lines per error kind, then quiet */
#define SIM_CT_CHECKIN "application/x-apple-aspen-mdm-checkin"
#define SIM_CT_CONNECT "application/x-apple-aspen-mdm"
#define SIM_OS_VERSION "17.5"
#define SIM_BUILD_VERSION "21F79"
#define SIM_PRODUCT "iPhone15,2"
#define SIM_MODEL "MQ0N3LL/A"
#define SIM_MAC_EPOCH 978307200 /* plist dates count from 2001-01-01 */

#define SIM_STEPS_MAX 32
#define SIM_CHAN_MAX 160

struct sim_opts {
    const char *url;                  /* https://host:port/mdm */
    const char *steps[SIM_STEPS_MAX]; /* --step: check-in messages after enrolling */
    unsigned nsteps;
    const char *ca, *ca_key; /* MDM CA: trust anchor and issuer */
    const char *topic;
    const char *prefix; /* UDID prefix: PREFIX-000000 */
    const char *ledger;
    const char *push_file;
    const char *identities; /* PEM cache of key + certificates */
    unsigned n, c, offset;
    double notnow_rate, error_rate;
    double duration_s; /* 0: no limit */
    double timeout_s;  /* per HTTP request */
    uint64_t cycles;   /* per device; 0: unlimited (needs a stop) */
    uint64_t seed;
    int skip_enroll, binary, quiet, reconnect, no_resume, single_url;
    const char *scep_url; /* --scep: enroll through SCEP (mdmsim_scep.h) */
    const char *scep_challenge, *scep_profile, *scep_cipher;
    int scep_get;                /* PKIOperation by GET */
    int scep_retry;              /* resend the same PKIOperation this often on a 5xx */
    const char *scep_signer;     /* csr (default) | throwaway: the pkiMessage's signer key */
    const char *scep_digest;     /* sha256 (default) | sha1 */
    int scep_key_bits;           /* RSA bits of the CSR key (default 2048) */
    int mdm_signature;           /* Mdm-Signature instead of a TLS client certificate */
    const char *enroll_url;      /* --enroll-ota: enroll over the air first (mdmsim_enroll.h) */
    const char *user, *password; /* its login */
    const char *device_ca, *device_ca_key; /* issuer of the made-up device certificates */
    const char *dump_dir;                  /* profiles and identities received, for tests */
    int enroll_until;         /* 0, or the last enrollment stage to fetch (no check-in) */
    double interval_s;        /* --interval: pause between a device's cycles */
    double warmup_s;          /* --warmup: latencies of the first seconds not recorded */
    int loopback_sources;     /* --loopback-sources: enroll from 127.x.y.z, one per device */
    int ddm_sync;             /* --ddm-sync: sync at the first cycle end unasked */
    const char *ddm_user;     /* --ddm-user: DDM check-ins on that user channel */
    int allow[SIM_MAX_ALLOW]; /* non-2xx statuses that are not failures */
    int nallow;
};

struct sim_stats {
    uint64_t requests, commands, acknowledged, notnow, errors, format_errors;
    uint64_t http_errors, http_allowed, net_errors, proto_errors;
    uint64_t enrolled, cycles, pushes, connects, resumed, interrupted;
    uint64_t ddm_syncs, ddm_fetched, ddm_reports; /* mdmsim_ddm.h */
};

/* Latency histogram: 16 sub-buckets per power of two of microseconds, so
 * percentiles are within ~6% with a fixed 8 KB whatever the request count. */
#define SIM_HIST_SUB 16
#define SIM_HIST_LEN (64 * SIM_HIST_SUB)
struct sim_hist {
    uint64_t n;
    uint64_t max_us;
    uint64_t b[SIM_HIST_LEN];
};

struct sim_rng {
    uint64_t s; /* splitmix64 state */
};

struct sim_app { /* one InstalledApplicationList entry */
    char *id;
    char *name;
    char *version;
    int managed; /* installed through InstallApplication */
};

enum sim_status { /* what a device answers to a command */
                  SIM_ACK = 0,
                  SIM_ERROR,
                  SIM_FORMAT, /* CommandFormatError */
                  SIM_NOTNOW,
};
static const char *const sim_status_name[] = {"Acknowledged", "Error", "CommandFormatError",
                                              "NotNow"};

enum sim_state {
    SIM_ST_NONE = 0, /* no session, or between requests */
    SIM_ST_AUTH,     /* Authenticate sent */
    SIM_ST_TOKEN,    /* TokenUpdate sent */
    SIM_ST_IDLE,     /* Status Idle sent */
    SIM_ST_REPORT,   /* a command result sent */
    SIM_ST_STEP,     /* a --step check-in message sent (mdmsim_steps.h) */
    SIM_ST_DDM,      /* a DeclarativeManagement check-in sent (mdmsim_ddm.h) */
};

struct sim;

struct sim_dev {
    struct sim *sim;
    unsigned idx; /* 0..n-1 */
    char udid[SIM_UDID_MAX];
    char magic[40];          /* PushMagic, derived from the UDID */
    uint8_t token[32];       /* APNs token, derived from the UDID */
    unsigned char *cert_der; /* identity certificate, NULL until issued */
    int cert_len;
    SSL_SESSION *sess; /* from the last connection, for resumption */
    struct evhttp_connection *conn;
    struct event *retry_ev; /* backoff after a failure; lazily created */
    struct sim_rng rng;     /* per device, so --seed is reproducible */
    enum sim_state state;
    unsigned enrolled : 1, active : 1, queued : 1, push_pending : 1;
    unsigned conn_dead : 1, conn_nodelay : 1, done : 1, passcode_cleared : 1;
    unsigned failures;           /* consecutive, for the backoff */
    uint64_t cycles;             /* completed Idle..empty cycles */
    int64_t t0_us;               /* when the in-flight request was sent */
    int last_error;              /* enum evhttp_request_error, or -1 */
    char cmd_uuid[SIM_UUID_MAX]; /* the command being reported */
    char cmd_type[SIM_TYPE_MAX];
    enum sim_status cmd_status;
    char last_finished[SIM_UUID_MAX];
    char **notnow; /* NotNow'd since the last other report */
    unsigned nnotnow, notnow_cap;
    plist_t profiles; /* array of ProfileList items; NULL: none yet */
    struct sim_app *apps;
    unsigned napps;
    int apps_init;                /* default apps were added */
    struct sim_enr *enr;          /* --enroll-ota state, NULL until it starts */
    EVP_PKEY *id_key;             /* key of cert_der when it is not dev_key (enrolled) */
    struct event *think_ev;       /* --interval: the pause before the next cycle */
    struct sim_dev *next;         /* run queue */
    unsigned step;                /* --step: the next one to send */
    int step_second;              /* UserAuthenticate: the DigestResponse request is out */
    char chan_user[SIM_CHAN_MAX]; /* user-poll: polling this user channel (UserID) */
    unsigned step_cmds;           /* user-poll: commands the channel got */
    char step_types[256];         /* and their RequestTypes */
    /* Declarative management (mdmsim_ddm.h): */
    unsigned ddm_pending : 1, ddm_synced : 1;
    int ddm_step;        /* what the DDM check-in in flight asked for */
    char ddm_token[64];  /* DeclarationsToken of the last completed sync */
    char ddm_new[64];    /* the one being synced to */
    json_t *ddm_items;   /* [{kind, Identifier, ServerToken}] to fetch */
    size_t ddm_next;     /* next of ddm_items to fetch */
    json_t *ddm_applied; /* "kind/identifier" -> the declaration applied */
    int ddm_su_stage;    /* software update progress: 0 none .. 4 installed */
    char os_version[16]; /* what status reports say, "" for SIM_OS_VERSION */
};

struct sim {
    struct sim_opts o;
    struct event_base *base;
    SSL_CTX *ssl_ctx;
    X509 *ca_cert;
    EVP_PKEY *ca_key;
    EVP_PKEY *dev_key; /* shared by every device: keygen is slow */
    unsigned char *ca_der;
    int ca_der_len;
    char ca_cn[128];
    FILE *id_file; /* --identities, appended to */
    struct sim_dev *devs;
    unsigned udid_width;
    struct sim_dev *rq_head, *rq_tail; /* devices waiting for a slot */
    unsigned active;
    unsigned finished; /* devices with nothing left to do */
    int stopping;
    struct evhttp_connection **grave; /* freed by reap_ev, never inline */
    unsigned ngrave, grave_cap;
    struct event *reap_ev, *pump_ev, *stop_ev, *grace_ev, *progress_ev;
    struct event *sigint_ev, *sigterm_ev;
    struct sim_push *push;
    struct sim_scep *scep;   /* --scep state, or NULL */
    struct sim_enr_ctx *enr; /* --enroll-ota, or NULL */
    int ledger_fd;
    char *host;     /* as in the URL: SNI and Host header */
    int host_is_ip; /* no SNI; the name check uses IP SANs */
    char *addr;     /* numeric, resolved once before the loop */
    char *host_hdr;
    int port;
    char *checkin_path, *connect_path;
    int64_t start_us, end_us;
    uint64_t last_requests; /* for the progress line */
    unsigned printed_http, printed_net, printed_proto;
    struct sim_stats st;
    struct sim_hist hist;
};

static int64_t sim_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t sim_rng_next(struct sim_rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double sim_rng_unit(struct sim_rng *r) /* [0, 1) */
{
    return (double)(sim_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

static unsigned sim_hist_idx(uint64_t us)
{
    if (us < SIM_HIST_SUB)
        return (unsigned)us;
    unsigned e = 63u - (unsigned)__builtin_clzll(us); /* >= 4 */
    return (e - 3) * SIM_HIST_SUB + (unsigned)((us >> (e - 4)) & (SIM_HIST_SUB - 1));
}

/* The middle of bucket i, in microseconds. */
static double sim_hist_value(unsigned i)
{
    if (i < SIM_HIST_SUB)
        return i;
    unsigned e = i / SIM_HIST_SUB + 3, sub = i % SIM_HIST_SUB;
    double width = (double)(1ULL << (e - 4));
    return (double)(SIM_HIST_SUB + sub) * width + width / 2;
}

static void sim_hist_add(struct sim_hist *h, int64_t us)
{
    uint64_t v = us < 0 ? 0 : (uint64_t)us;
    h->b[sim_hist_idx(v)]++;
    h->n++;
    if (v > h->max_us)
        h->max_us = v;
}

/* Records a request's latency, unless it ended during --warmup (the first
 * seconds of a run: connection set-up, not steady state). */
static void sim_latency(struct sim *s, int64_t t0_us)
{
    int64_t now = sim_now_us();
    if (now - s->start_us >= (int64_t)(s->o.warmup_s * 1e6))
        sim_hist_add(&s->hist, now - t0_us);
}

static double sim_hist_pct_ms(const struct sim_hist *h, double p)
{
    if (h->n == 0)
        return 0;
    uint64_t want = (uint64_t)(p * (double)h->n + 0.999999), seen = 0;
    if (want == 0)
        want = 1;
    for (unsigned i = 0; i < SIM_HIST_LEN; i++) {
        seen += h->b[i];
        if (seen >= want) {
            double v = sim_hist_value(i);
            return (v > (double)h->max_us ? (double)h->max_us : v) / 1000.0;
        }
    }
    return (double)h->max_us / 1000.0;
}

/* ---- plist helpers: keys are static strings, values are copied ---- */

static void sim_pl_str(plist_t d, const char *k, const char *v)
{
    plist_dict_set_item(d, k, plist_new_string(v));
}

static void sim_pl_bool(plist_t d, const char *k, int v)
{
    plist_dict_set_item(d, k, plist_new_bool(v ? 1 : 0));
}

static void sim_pl_int(plist_t d, const char *k, uint64_t v)
{
    plist_dict_set_item(d, k, plist_new_uint(v));
}

static void sim_pl_data(plist_t d, const char *k, const void *p, size_t n)
{
    plist_dict_set_item(d, k, plist_new_data((const char *)p, n));
}

/* The string value of key k of dict d, or NULL when absent or not a string.
 * Borrowed from d. */
static const char *sim_pl_get_str(plist_t d, const char *k)
{
    plist_t v = d ? plist_dict_get_item(d, k) : NULL;
    if (v == NULL || plist_get_node_type(v) != PLIST_STRING)
        return NULL;
    return plist_get_string_ptr(v, NULL);
}

static plist_t sim_pl_get(plist_t d, const char *k, plist_type t)
{
    plist_t v = d ? plist_dict_get_item(d, k) : NULL;
    return v != NULL && plist_get_node_type(v) == t ? v : NULL;
}

/* Copies key k from src to dst when it exists there with type t. */
static void sim_pl_copy_key(plist_t dst, plist_t src, const char *k, plist_type t)
{
    plist_t v = sim_pl_get(src, k, t);
    if (v != NULL)
        plist_dict_set_item(dst, k, plist_copy(v));
}

/* Serializes p as XML, or binary with --binary, onto the end of out. */
static void sim_pl_write(const struct sim *s, plist_t p, struct evbuffer *out)
{
    char *buf = NULL;
    uint32_t len = 0;
    if (s->o.binary) {
        plist_to_bin(p, &buf, &len);
        evbuffer_add(out, buf, len);
        plist_to_bin_free(buf);
    } else {
        plist_to_xml(p, &buf, &len);
        evbuffer_add(out, buf, len);
        plist_to_xml_free(buf);
    }
}

/* Formats 16 bytes as an uppercase UUID string (out: 37 bytes). */
static void sim_uuid_fmt(const uint8_t b[16], char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    int o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

/* SHA-256 of "label:udid": stable per-device values (token, push magic),
 * the same on every run, so a re-run with --skip-enroll matches what the
 * server stored and tests can compute them. */
static void sim_derive(const char *label, const char *udid, uint8_t out[32])
{
    char in[SIM_UDID_MAX + 32];
    int n = snprintf(in, sizeof(in), "%s:%s", label, udid);
    unsigned int len = 0;
    EVP_Digest(in, (size_t)n, out, &len, EVP_sha256(), NULL);
}

#endif
