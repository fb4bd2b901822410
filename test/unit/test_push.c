/* test_push.c: push/ against the real mock APNs (bin/mockapns, from $BIN).
 * The test makes its own throwaway PKI with OpenSSL (a CA, a server
 * certificate for 127.0.0.1 and localhost, push certificates with subject
 * UID com.apple.mgmt.External.<uuid>), starts a mock per scenario on a free
 * loopback port (learned from its port file) and runs a real event loop.
 *
 *   test_push              run the tests
 *   test_push bench N [C]  N pushes over C connections (default 1), prints pushes/s */
#include "../harness.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "../../core/conf.h"
#include "../../core/log.h"
#include "../../core/util.h"
#include "../../push/push.h"

static char t_dir[64];
static char t_topic[80];
static struct event_base *t_base;
static int t_salt;

/* ------------------------------------------------------------------------ */
/* throwaway PKI */

struct t_spec {
    const char *cn, *uid, *san, *eku;
    X509 *issuer; /* NULL: self-signed */
    EVP_PKEY *ikey;
    int ca;
    long from_s, to_s; /* validity relative to now */
};

static const char *t_path(const char *file)
{
    static char bufs[16][256];
    static int next;
    char *b = bufs[next++ % 16];
    snprintf(b, sizeof(bufs[0]), "%s/%s", t_dir, file);
    return b;
}

static void t_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    if (e == NULL || X509_add_ext(x, e, -1) != 1)
        die("test: extension %d=%s", nid, value);
    X509_EXTENSION_free(e);
}

static X509 *t_cert(EVP_PKEY *key, const struct t_spec *sp)
{
    static int64_t serial = 1000;
    X509 *x = X509_new();
    X509_NAME *n = X509_get_subject_name(x);
    X509V3_CTX ctx;
    X509_set_version(x, 2);
    ASN1_INTEGER_set_int64(X509_get_serialNumber(x), serial++);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)sp->cn, -1, -1, 0);
    if (sp->uid != NULL)
        X509_NAME_add_entry_by_NID(n, NID_userId, MBSTRING_UTF8, (const unsigned char *)sp->uid, -1,
                                   -1, 0);
    X509_set_issuer_name(x, sp->issuer ? X509_get_subject_name(sp->issuer) : n);
    X509_time_adj_ex(X509_getm_notBefore(x), 0, sp->from_s, NULL);
    X509_time_adj_ex(X509_getm_notAfter(x), 0, sp->to_s, NULL);
    X509_set_pubkey(x, key);
    X509V3_set_ctx(&ctx, sp->issuer ? sp->issuer : x, x, NULL, NULL, 0);
    t_ext(x, &ctx, NID_basic_constraints, sp->ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    t_ext(x, &ctx, NID_key_usage,
          sp->ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
    t_ext(x, &ctx, NID_subject_key_identifier, "hash");
    t_ext(x, &ctx, NID_authority_key_identifier, "keyid:always");
    if (sp->san != NULL)
        t_ext(x, &ctx, NID_subject_alt_name, sp->san);
    if (sp->eku != NULL)
        t_ext(x, &ctx, NID_ext_key_usage, sp->eku);
    if (X509_sign(x, sp->ikey ? sp->ikey : key, EVP_sha256()) == 0)
        die("test: X509_sign");
    return x;
}

static void t_write(const char *name, X509 *x, EVP_PKEY *k)
{
    char file[64];
    snprintf(file, sizeof(file), "%s.crt", name);
    FILE *f = fopen(t_path(file), "w");
    if (f == NULL || PEM_write_X509(f, x) != 1 || fclose(f) != 0)
        die("test: write %s", file);
    snprintf(file, sizeof(file), "%s.key", name);
    f = fopen(t_path(file), "w");
    if (f == NULL || PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) != 1 || fclose(f) != 0)
        die("test: write %s", file);
}

/* Makes name.crt + name.key; returns the cert (caller frees) and the key. */
static X509 *t_make(const char *name, const struct t_spec *sp, EVP_PKEY **key_out)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = t_cert(k, sp);
    t_write(name, x, k);
    if (key_out != NULL)
        *key_out = k;
    else
        EVP_PKEY_free(k);
    return x;
}

static void t_write_p12(const char *name, X509 *x, EVP_PKEY *k, const char *pass)
{
    PKCS12 *p12 = PKCS12_create(pass, "push", k, x, NULL, 0, 0, 0, 0, 0);
    FILE *f = fopen(t_path(name), "wb");
    if (p12 == NULL || f == NULL || i2d_PKCS12_fp(f, p12) != 1 || fclose(f) != 0)
        die("test: write %s", name);
    PKCS12_free(p12);
}

/* A leaf signed by issuer/ikey, valid from a minute ago for `days`. */
static X509 *t_leaf(const char *name, const char *cn, const char *uid, const char *san,
                    const char *eku, X509 *issuer, EVP_PKEY *ikey, long days, EVP_PKEY **key)
{
    struct t_spec sp = {cn, uid, san, eku, issuer, ikey, 0, -60, days * 86400};
    return t_make(name, &sp, key);
}

static void t_pki(void)
{
    EVP_PKEY *cak, *ca2k, *pk;
    const char *cli = "clientAuth", *srv = "serverAuth", *top = t_topic;
    struct t_spec ca_spec = {"Test CA", NULL, NULL, NULL, NULL, NULL, 1, -60, 30 * 86400};
    X509 *ca = t_make("ca", &ca_spec, &cak);
    ca_spec.cn = "Other CA";
    X509 *ca2 = t_make("ca2", &ca_spec, &ca2k);
    X509 *x[9];
    x[0] = t_leaf("server", "127.0.0.1", NULL, "IP:127.0.0.1,DNS:localhost", srv, ca, cak, 1, NULL);
    x[1] = t_leaf("server_wrongip", "127.0.0.2", NULL, "IP:127.0.0.2", srv, ca, cak, 1, NULL);
    x[2] = t_leaf("server_ca2", "127.0.0.1", NULL, "IP:127.0.0.1", srv, ca2, ca2k, 1, NULL);
    x[3] = t_leaf("push", "APSP:test", top, NULL, cli, ca, cak, 300, &pk);
    x[4] = t_leaf("push_noid", "APSP:noid", NULL, NULL, cli, ca, cak, 1, NULL);
    x[5] = t_leaf("push_wrongid", "APSP:x", "com.example.push", NULL, cli, ca, cak, 1, NULL);
    struct t_spec old = {"APSP:old", top, NULL, cli, ca, cak, 0, -10 * 86400, -86400};
    x[6] = t_make("push_expired", &old, NULL);
    x[7] = t_leaf("push_soon", "APSP:soon", top, NULL, cli, ca, cak, 10, NULL);
    x[8] = t_leaf("push_ca2", "APSP:ca2", top, NULL, cli, ca2, ca2k, 5, NULL);
    t_write_p12("push.p12", x[3], pk, "secret");
    for (size_t i = 0; i < ARRAY_LEN(x); i++)
        X509_free(x[i]);
    X509_free(ca);
    X509_free(ca2);
    EVP_PKEY_free(cak);
    EVP_PKEY_free(ca2k);
    EVP_PKEY_free(pk);
}

/* ------------------------------------------------------------------------ */
/* the mock */

struct t_mock {
    pid_t pid;
    int port;
};

static int t_read_int_file(const char *path)
{
    char *buf;
    if (util_read_file(path, &buf, NULL) < 0)
        return -1;
    int v = atoi(buf);
    free(buf);
    return v;
}

static void t_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Starts bin/mockapns with the server cert `server` on `port` (0: any) plus
 * extra "--flag value" pairs; waits for its port file (5 s at most). */
static int t_mock_start(struct t_mock *mk, const char *server, int port, const char **extra)
{
    const char *bin = getenv("BIN") ? getenv("BIN") : "bin";
    char exe[256], listen[64], cert[64], key[64];
    const char *argv[48];
    int n = 0;
    snprintf(exe, sizeof(exe), "%s/mockapns", bin);
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    snprintf(cert, sizeof(cert), "%s.crt", server);
    snprintf(key, sizeof(key), "%s.key", server);
    argv[n++] = exe;
    const char *fixed[] = {"--log-level",  getenv("PUSH_DEBUG") ? "debug" : "warn",
                           "--cert",       t_path(cert),
                           "--key",        t_path(key),
                           "--client-ca",  t_path("ca.crt"),
                           "--topic",      t_topic,
                           "--listen",     listen,
                           "--port-file",  t_path("port"),
                           "--record",     t_path("record"),
                           "--stats-file", t_path("stats")};
    for (size_t i = 0; i < ARRAY_LEN(fixed); i++)
        argv[n++] = fixed[i];
    for (int i = 0; extra != NULL && extra[i] != NULL && n < 46; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    unlink(t_path("port"));
    unlink(t_path("record"));
    unlink(t_path("stats"));
    mk->pid = fork();
    if (mk->pid == 0) {
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        if ((mk->port = t_read_int_file(t_path("port"))) > 0)
            return 0;
        if (waitpid(mk->pid, NULL, WNOHANG) == mk->pid)
            break;
        t_sleep_ms(10);
    }
    fprintf(stderr, "test: mockapns did not start (%s)\n", exe);
    return -1;
}

/* Returns the mock's exit status: 0 unless it crashed or leaked (ASan). */
static int t_mock_stop(struct t_mock *mk)
{
    int st = 0;
    if (mk->pid <= 0)
        return -1;
    kill(mk->pid, SIGCONT);
    kill(mk->pid, SIGTERM);
    if (waitpid(mk->pid, &st, 0) != mk->pid)
        return -1;
    mk->pid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* One field of the mock's stats line, e.g. "peak_streams"; -1 if absent. */
static long t_mock_stat(const char *key)
{
    char *buf, pat[64];
    long v = -1;
    if (util_read_file(t_path("stats"), &buf, NULL) < 0)
        return -1;
    snprintf(pat, sizeof(pat), "%s=", key);
    for (char *p = buf; (p = strstr(p, pat)) != NULL; p++)
        if (p == buf || p[-1] == ' ') {
            v = atol(p + strlen(pat));
            break;
        }
    free(buf);
    return v;
}

/* Lines of the record file whose token is `token` (NULL: any) and status
 * `status` (0: any). */
static int t_record_count(const char *token, const char *magic, int status)
{
    char *buf, *save = NULL;
    int n = 0;
    if (util_read_file(t_path("record"), &buf, NULL) < 0)
        return 0;
    for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char tok[80], mag[300];
        int st;
        if (sscanf(l, "%79s %299s %d", tok, mag, &st) != 3)
            continue;
        if ((!token || strcmp(tok, token) == 0) && (!magic || strcmp(mag, magic) == 0) &&
            (!status || st == status))
            n++;
    }
    free(buf);
    return n;
}

/* Per-token count of 200 lines, for tokens made by t_token (index in the tail). */
static void t_record_by_index(int *counts, int n)
{
    char *buf, *save = NULL;
    memset(counts, 0, sizeof(int) * (size_t)n);
    if (util_read_file(t_path("record"), &buf, NULL) < 0)
        return;
    for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char tok[80], mag[300];
        int st;
        if (sscanf(l, "%79s %299s %d", tok, mag, &st) != 3 || strlen(tok) != 64 || st != 200)
            continue;
        unsigned long i = strtoul(tok + 56, NULL, 16);
        if (i < (unsigned long)n)
            counts[i]++;
    }
    free(buf);
}

/* ------------------------------------------------------------------------ */
/* push side */

struct t_res {
    int calls;
    enum push_outcome outcome;
    int err, status, attempts;
    char reason[64];
    char apns_id[48];
};

static void t_on_done(void *arg, const struct push_result *r)
{
    struct t_res *t = arg;
    t->calls++;
    t->outcome = r->outcome;
    t->err = r->err;
    t->status = r->status;
    t->attempts = r->attempts;
    snprintf(t->reason, sizeof(t->reason), "%s", r->reason);
    snprintf(t->apns_id, sizeof(t->apns_id), "%s", r->apns_id);
}

static void t_token(int i, char out[65])
{
    snprintf(out, 65, "%08x%048x%08x", (unsigned)t_salt, 0u, (unsigned)i);
}

static void t_conf(struct conf *cf, int port, const char *cert)
{
    static char certf[256], keyf[256], caf[256];
    memset(cf, 0, sizeof(*cf));
    snprintf(certf, sizeof(certf), "%s/%s.crt", t_dir, cert);
    snprintf(keyf, sizeof(keyf), "%s/%s.key", t_dir, cert);
    snprintf(caf, sizeof(caf), "%s/ca.crt", t_dir);
    cf->apns_cert_file = certf;
    cf->apns_key_file = keyf;
    cf->apns_ca_file = caf;
    cf->apns_host = (char *)"127.0.0.1";
    cf->apns_port = port;
}

/* Short timers so that failure paths finish in well under a second. */
static struct push *t_push_new(struct conf *cf)
{
    struct push *p = push_new(t_base, cf);
    struct push_tuning t = {.retry_base_ms = 10,
                            .retry_cap_ms = 80,
                            .reconnect_base_ms = 20,
                            .reconnect_cap_ms = 200,
                            .connect_timeout_ms = 2000,
                            .unavail_fail_ms = 400};
    if (p != NULL)
        push_set_tuning(p, &t);
    return p;
}

struct t_batch {
    struct t_res *r;
    int n;
    struct push *p;
    uint64_t max_inflight; /* highest push_stats().inflight seen while waiting */
};

static int t_all_done(struct t_batch *b)
{
    struct push_stats st;
    push_stats(b->p, &st);
    if (st.inflight > b->max_inflight)
        b->max_inflight = st.inflight;
    for (int i = 0; i < b->n; i++)
        if (b->r[i].calls == 0)
            return 0;
    return 1;
}

/* Runs the loop until every callback ran (or timeout_ms passed). */
static int t_wait(struct t_batch *b, int timeout_ms)
{
    int64_t end = util_mono_ms() + timeout_ms;
    while (!t_all_done(b)) {
        if (util_mono_ms() > end)
            return 0;
        event_base_loop(t_base, EVLOOP_ONCE);
    }
    return 1;
}

/* Runs the loop for up to timeout_ms until cond(arg) holds. */
static int t_wait_for(int (*cond)(void *), void *arg, int timeout_ms)
{
    int64_t end = util_mono_ms() + timeout_ms;
    while (!cond(arg)) {
        if (util_mono_ms() > end)
            return 0;
        event_base_loop(t_base, EVLOOP_ONCE);
    }
    return 1;
}

static int t_send_n(struct push *p, struct t_res *r, int n)
{
    char tok[65], magic[40];
    int bad = 0;
    for (int i = 0; i < n; i++) {
        t_token(i, tok);
        snprintf(magic, sizeof(magic), "magic-%d", i);
        bad += push_send(p, tok, magic, t_on_done, &r[i]) != 0;
    }
    return bad;
}

/* n pushes, all expected to end with `outcome`; returns the count that did. */
static int t_batch_run(struct push *p, struct t_res *r, int n, enum push_outcome outcome,
                       int timeout_ms, struct t_batch *b)
{
    int good = 0;
    *b = (struct t_batch){r, n, p, 0};
    memset(r, 0, sizeof(*r) * (size_t)n);
    if (t_send_n(p, r, n) != 0)
        return -1;
    t_wait(b, timeout_ms);
    for (int i = 0; i < n; i++)
        good += r[i].calls == 1 && r[i].outcome == outcome;
    return good;
}

/* Starts a mock with `extra`, a push client, sends one push, waits for it. */
static struct push *t_one(struct t_mock *mk, const char **extra, struct t_res *r)
{
    struct conf cf;
    struct t_batch b;
    memset(r, 0, sizeof(*r));
    if (t_mock_start(mk, "server", 0, extra) < 0)
        return NULL;
    t_conf(&cf, mk->port, "push");
    struct push *p = t_push_new(&cf);
    if (p == NULL)
        return NULL;
    char tok[65];
    t_token(7, tok);
    b = (struct t_batch){r, 1, p, 0};
    if (push_send(p, tok, "magic-7", t_on_done, r) != 0)
        return p;
    t_wait(&b, 10000);
    return p;
}

/* ------------------------------------------------------------------------ */
/* tests: the certificate */

TEST(test_cert_topic)
{
    struct conf cf;
    t_conf(&cf, 1, "push");
    struct push *p = push_new(t_base, &cf);
    CHECK(p != NULL);
    CHECK(p != NULL && strcmp(push_topic(p), t_topic) == 0);
    push_free(p);
    push_free(NULL);
    t_conf(&cf, 1, "push_soon"); /* 10 days left: a warning, not a refusal */
    p = push_new(t_base, &cf);
    CHECK(p != NULL);
    push_free(p);
}

TEST(test_cert_refused)
{
    static const char *const bad[] = {"push_noid", "push_wrongid", "push_expired", "missing"};
    struct conf cf;
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        t_conf(&cf, 1, bad[i]);
        struct push *p = push_new(t_base, &cf);
        CHECK(p == NULL);
        push_free(p);
    }
    t_conf(&cf, 1, "push");
    cf.apns_key_file = (char *)t_path("server.key"); /* not this certificate's key */
    CHECK(push_new(t_base, &cf) == NULL);
    t_conf(&cf, 1, "push");
    cf.apns_ca_file = (char *)t_path("nonexistent.crt");
    CHECK(push_new(t_base, &cf) == NULL);
}

TEST(test_cert_p12)
{
    struct conf cf;
    memset(&cf, 0, sizeof(cf));
    cf.apns_p12_file = (char *)t_path("push.p12");
    cf.apns_p12_password = (char *)"secret";
    cf.apns_host = (char *)"127.0.0.1";
    struct push *p = push_new(t_base, &cf);
    CHECK(p != NULL && strcmp(push_topic(p), t_topic) == 0);
    push_free(p);
    cf.apns_p12_password = (char *)"wrong";
    p = push_new(t_base, &cf);
    CHECK(p == NULL);
    push_free(p);
}

/* ------------------------------------------------------------------------ */
/* tests: requests */

TEST(test_bad_format_fails_fast)
{
    struct conf cf;
    struct t_res r[2];
    char longmagic[PUSH_MAGIC_MAX + 2];
    memset(r, 0, sizeof(r));
    memset(longmagic, 'm', sizeof(longmagic) - 1);
    longmagic[sizeof(longmagic) - 1] = '\0';
    t_conf(&cf, 1, "push");
    struct push *p = push_new(t_base, &cf);
    if (p == NULL) {
        CHECK(p != NULL);
        return;
    }
    const char *hex63 = "000000000000000000000000000000000000000000000000000000000000000";
    CHECK(push_send(p, "abc", "m", t_on_done, &r[0]) == -1);
    CHECK(push_send(p, hex63, "m", t_on_done, &r[0]) == -1);
    CHECK(push_send(p,
                    "0000000000000000000000000000000000000000000000000000000000000000"
                    "0",
                    "m", t_on_done, &r[0]) == -1);
    CHECK(push_send(p, "g000000000000000000000000000000000000000000000000000000000000000", "m",
                    t_on_done, &r[0]) == -1);
    CHECK(push_send(p, "AB00000000000000000000000000000000000000000000000000000000000000", "",
                    t_on_done, &r[0]) == -1);
    CHECK(push_send(p, "AB00000000000000000000000000000000000000000000000000000000000000",
                    longmagic, t_on_done, &r[0]) == -1);
    CHECK(push_send(p, "AB00000000000000000000000000000000000000000000000000000000000000",
                    "\xff\xfe", t_on_done, &r[0]) == -1); /* not UTF-8: not valid JSON */
    CHECK(r[0].calls == 0);
    /* Valid (upper-case hex is fine); freed before the loop runs: canceled. */
    CHECK(push_send(p, "AB00000000000000000000000000000000000000000000000000000000000000", "m",
                    t_on_done, &r[1]) == 0);
    struct push_stats st;
    push_stats(p, &st);
    CHECK(st.queued == 1 && st.sent == 0);
    push_free(p);
    CHECK(r[1].calls == 1 && r[1].outcome == PUSH_CANCELED && r[1].err == MDMD_ECANCELED);
}

TEST(test_ok)
{
    struct t_mock mk = {0};
    struct t_res r = {0}, r2 = {0};
    struct push_stats st;
    struct push *p = t_one(&mk, NULL, &r);
    CHECK(p != NULL);
    CHECK(r.calls == 1 && r.outcome == PUSH_OK && r.status == 200 && r.err == MDMD_OK);
    CHECK(strlen(r.apns_id) == 36 && r.apns_id[8] == '-');
    char tok[65];
    t_token(7, tok);
    CHECK(t_record_count(tok, "magic-7", 200) == 1);
    /* The magic is JSON-escaped on the wire; the mock decodes it. */
    t_token(8, tok);
    struct t_batch b = {&r2, 1, p, 0};
    if (p != NULL && push_send(p, tok, "a\"b\\c/d", t_on_done, &r2) == 0)
        t_wait(&b, 5000);
    CHECK(r2.calls == 1 && r2.outcome == PUSH_OK);
    CHECK(t_record_count(tok, "a\"b\\c/d", 200) == 1);
    if (p != NULL) {
        push_stats(p, &st);
        CHECK(st.ok == 2 && st.sent == 2 && st.reconnects == 0 && st.connected == 1);
        CHECK(st.queued == 0 && st.inflight == 0 && st.failed == 0);
    }
    CHECK(t_mock_stat("accepted") == 1); /* both pushes on one connection */
    push_free(p);
    CHECK(t_mock_stop(&mk) == 0);
}

TEST(test_bad_token_answers)
{
    static const char *const modes[] = {"410", "400"};
    static const char *const reasons[] = {"Unregistered", "BadDeviceToken"};
    for (int i = 0; i < 2; i++) {
        struct t_mock mk = {0};
        struct t_res r;
        struct push_stats st = {0};
        const char *extra[] = {"--mode", modes[i], NULL};
        struct push *p = t_one(&mk, extra, &r);
        CHECK(r.calls == 1 && r.outcome == PUSH_BAD_TOKEN);
        CHECK(r.status == atoi(modes[i]) && strcmp(r.reason, reasons[i]) == 0);
        CHECK(r.attempts == 1);
        if (p != NULL)
            push_stats(p, &st);
        CHECK(st.bad_token == 1 && st.retried == 0 && st.ok == 0);
        CHECK(t_record_count(NULL, NULL, 0) == 1);
        push_free(p);
        CHECK(t_mock_stop(&mk) == 0);
    }
}

TEST(test_retry_then_ok)
{
    static const char *const modes[] = {"429", "500", "503"};
    for (size_t i = 0; i < ARRAY_LEN(modes); i++) {
        struct t_mock mk = {0};
        struct t_res r;
        struct push_stats st = {0};
        const char *extra[] = {"--mode", modes[i], "--fail-first", "2", NULL};
        struct push *p = t_one(&mk, extra, &r);
        CHECK(r.calls == 1 && r.outcome == PUSH_OK && r.status == 200 && r.attempts == 3);
        if (p != NULL)
            push_stats(p, &st);
        CHECK(st.retried >= 2 && st.ok == 1 && st.sent == 3);
        CHECK(t_record_count(NULL, NULL, atoi(modes[i])) == 2);
        CHECK(t_record_count(NULL, NULL, 200) == 1);
        push_free(p);
        CHECK(t_mock_stop(&mk) == 0);
    }
}

TEST(test_retry_exhausted)
{
    struct t_mock mk = {0};
    struct t_res r;
    struct push_stats st = {0};
    const char *extra[] = {"--mode", "500", NULL};
    struct push *p = t_one(&mk, extra, &r);
    CHECK(r.calls == 1 && r.outcome == PUSH_FAILED && r.status == 500);
    CHECK(r.attempts == 5 && strcmp(r.reason, "InternalServerError") == 0);
    if (p != NULL)
        push_stats(p, &st);
    CHECK(st.failed == 1 && st.retried == 4 && st.sent == 5);
    CHECK(t_record_count(NULL, NULL, 500) == 5);
    push_free(p);
    CHECK(t_mock_stop(&mk) == 0);
}

TEST(test_forbidden)
{
    struct t_mock mk = {0};
    struct t_res r;
    struct push_stats st = {0};
    const char *extra[] = {"--mode", "403", NULL};
    struct push *p = t_one(&mk, extra, &r);
    CHECK(r.calls == 1 && r.outcome == PUSH_FAILED && r.status == 403);
    CHECK(strcmp(r.reason, "BadCertificate") == 0 && r.attempts == 1);
    if (p != NULL)
        push_stats(p, &st);
    CHECK(st.forbidden == 1 && st.failed == 1 && st.retried == 0);
    CHECK(t_record_count(NULL, NULL, 403) == 1);
    push_free(p);
    CHECK(t_mock_stop(&mk) == 0);
}

TEST(test_topic_mismatch)
{
    struct t_mock mk = {0};
    struct t_res r;
    const char *extra[] = {"--topic", "com.apple.mgmt.External.someone-else", NULL};
    struct push *p = t_one(&mk, extra, &r);
    CHECK(r.calls == 1 && r.outcome == PUSH_FAILED && r.status == 400);
    CHECK(strcmp(r.reason, "TopicDisallowed") == 0 && r.attempts == 1);
    push_free(p);
    CHECK(t_mock_stop(&mk) == 0);
}

/* ------------------------------------------------------------------------ */
/* tests: connections */

#define T_MANY 1000

TEST(test_goaway_mid_batch)
{
    static struct t_res r[T_MANY];
    static int counts[T_MANY];
    struct t_mock mk = {0};
    struct conf cf;
    struct t_batch b;
    struct push_stats st = {0};
    const char *extra[] = {"--goaway-after", "100", NULL};
    if (t_mock_start(&mk, "server", 0, extra) < 0) {
        CHECK(0);
        return;
    }
    t_conf(&cf, mk.port, "push");
    struct push *p = t_push_new(&cf);
    CHECK(t_batch_run(p, r, T_MANY, PUSH_OK, 20000, &b) == T_MANY);
    push_stats(p, &st);
    CHECK(st.ok == T_MANY && st.goaway >= 9 && st.reconnects >= 9);
    /* Streams above last_stream_id were refused, so resending them made no
     * duplicate: every token reached the mock exactly once. */
    t_record_by_index(counts, T_MANY);
    int once = 0;
    for (int i = 0; i < T_MANY; i++)
        once += counts[i] == 1;
    CHECK(once == T_MANY);
    CHECK(t_record_count(NULL, NULL, 0) == T_MANY);
    CHECK(t_mock_stat("goaways") >= 9);
    push_free(p);
    CHECK(t_mock_stop(&mk) == 0);
}

TEST(test_drop_mid_batch)
{
    static struct t_res r[T_MANY];
    static int counts[T_MANY];
    struct t_mock mk = {0};
    struct conf cf;
    struct t_batch b;
    struct push_stats st = {0};
    const char *extra[] = {"--drop-after", "150", NULL};
    if (t_mock_start(&mk, "server", 0, extra) < 0) {
        CHECK(0);
        return;
    }
    t_conf(&cf, mk.port, "push");
    struct push *p = t_push_new(&cf);
    CHECK(t_batch_run(p, r, T_MANY, PUSH_OK, 20000, &b) == T_MANY);
    push_stats(p, &st);
    CHECK(st.ok == T_MANY && st.reconnects >= 6 && st.resent > 0);
    /* A reset loses answers in flight, so a token may reach the mock twice;
     * none may be missing. */
    t_record_by_index(counts, T_MANY);
    int seen = 0;
    for (int i = 0; i < T_MANY; i++)
        seen += counts[i] >= 1;
    CHECK(seen == T_MANY);
    push_free(p);
    CHECK(t_mock_stop(&mk) == 0);
}

static int t_cond_attempted(void *arg)
{
    struct push_stats st;
    push_stats(arg, &st);
    return st.reconnects >= 1 && !st.connected;
}

TEST(test_mock_restart)
{
    struct t_res r1[5], r2[5];
    struct t_mock mk = {0};
    struct conf cf;
    struct t_batch b;
    struct push_stats st = {0};
    if (t_mock_start(&mk, "server", 0, NULL) < 0) {
        CHECK(0);
        return;
    }
    int port = mk.port;
    t_conf(&cf, port, "push");
    struct push *p = t_push_new(&cf);
    struct push_tuning tun = {.unavail_fail_ms = 30000}; /* keep waiting for the restart */
    push_set_tuning(p, &tun);
    CHECK(t_batch_run(p, r1, 5, PUSH_OK, 5000, &b) == 5);
    CHECK(t_mock_stop(&mk) == 0);
    memset(r2, 0, sizeof(r2));
    CHECK(t_send_n(p, r2, 5) == 0);
    /* The mock is down: wait for a failed reconnect, then bring it back. */
    CHECK(t_wait_for(t_cond_attempted, p, 5000));
    CHECK(t_mock_start(&mk, "server", port, NULL) == 0);
    b = (struct t_batch){r2, 5, p, 0};
    CHECK(t_wait(&b, 10000));
    int ok = 0;
    for (int i = 0; i < 5; i++)
        ok += r2[i].calls == 1 && r2[i].outcome == PUSH_OK;
    CHECK(ok == 5);
    push_stats(p, &st);
    CHECK(st.reconnects >= 2 && st.connected == 1);
    CHECK(t_mock_stat("accepted") == 1 && t_record_count(NULL, NULL, 200) == 5);
    push_free(p);
    CHECK(t_mock_stop(&mk) == 0);
}

TEST(test_max_streams)
{
    static struct t_res r[200];
    struct t_mock mk = {0};
    struct conf cf;
    struct t_batch b;
    struct push_stats st = {0};
    const char *extra[] = {"--max-streams", "10", "--delay-ms", "20", NULL};
    if (t_mock_start(&mk, "server", 0, extra) < 0) {
        CHECK(0);
        return;
    }
    t_conf(&cf, mk.port, "push");
    struct push *p = t_push_new(&cf);
    CHECK(t_batch_run(p, r, 200, PUSH_OK, 20000, &b) == 200);
    CHECK(b.max_inflight == 10); /* used the window, never more */
    CHECK(t_mock_stat("peak_streams") == 10);
    push_stats(p, &st);
    CHECK(st.resent == 0 && st.sent == 200 && st.reconnects == 0);
    push_free(p);
    CHECK(t_mock_stop(&mk) == 0);
}

TEST(test_several_connections)
{
    static struct t_res r[300];
    struct t_mock mk = {0};
    struct conf cf;
    struct t_batch b;
    struct push_stats st = {0};
    if (t_mock_start(&mk, "server", 0, NULL) < 0) {
        CHECK(0);
        return;
    }
    t_conf(&cf, mk.port, "push");
    cf.apns_connections = 3;
    struct push *p = t_push_new(&cf);
    CHECK(t_batch_run(p, r, 300, PUSH_OK, 10000, &b) == 300);
    push_stats(p, &st);
    CHECK(st.connections == 3);
    CHECK(t_mock_stat("accepted") == 3 && t_mock_stat("connections") == 3);
    push_free(p);
    CHECK(t_mock_stop(&mk) == 0);
}

/* Every way the TLS setup must fail: the push ends PUSH_FAILED/MDMD_EUNAVAIL
 * and the mock never sees a request. */
TEST(test_tls_verification)
{
    static const struct {
        const char *server, *client, *ca;
    } cases[] = {
        {"server", "push", "ca2.crt"},        /* server not signed by our trust anchor */
        {"server_wrongip", "push", "ca.crt"}, /* signed, but for another address */
        {"server_ca2", "push", "ca.crt"},     /* another CA altogether */
        {"server", "push_ca2", "ca.crt"},     /* our client cert is not one the mock trusts */
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct t_mock mk = {0};
        struct conf cf;
        struct t_res r = {0};
        struct t_batch b = {&r, 1, NULL, 0};
        char tok[65];
        if (t_mock_start(&mk, cases[i].server, 0, NULL) < 0) {
            CHECK(0);
            continue;
        }
        t_conf(&cf, mk.port, cases[i].client);
        cf.apns_ca_file = (char *)t_path(cases[i].ca);
        struct push *p = t_push_new(&cf);
        b.p = p;
        t_token(1, tok);
        if (p != NULL && push_send(p, tok, "m", t_on_done, &r) == 0)
            t_wait(&b, 10000);
        CHECK(r.calls == 1 && r.outcome == PUSH_FAILED && r.err == MDMD_EUNAVAIL);
        CHECK(t_mock_stat("requests") == 0);
        push_free(p);
        CHECK(t_mock_stop(&mk) == 0);
    }
}

static int t_cond_pings(void *arg)
{
    return t_mock_stat("pings") >= *(long *)arg;
}

static int t_cond_disconnected(void *arg)
{
    struct push_stats st;
    push_stats(arg, &st);
    return !st.connected;
}

TEST(test_ping_and_dead_peer)
{
    struct t_mock mk = {0};
    struct conf cf;
    struct t_res r[1], r2 = {0};
    struct t_batch b;
    struct push_stats st = {0};
    struct push_tuning tun = {
        .ping_interval_ms = 100, .connect_timeout_ms = 500, .unavail_fail_ms = 30000};
    long want = 2;
    if (t_mock_start(&mk, "server", 0, NULL) < 0) {
        CHECK(0);
        return;
    }
    t_conf(&cf, mk.port, "push");
    struct push *p = t_push_new(&cf);
    push_set_tuning(p, &tun);
    CHECK(t_batch_run(p, r, 1, PUSH_OK, 5000, &b) == 1);
    CHECK(t_wait_for(t_cond_pings, &want, 3000)); /* idle: PINGs keep it alive */
    /* A peer that stops answering while TCP stays up: the unanswered PING
     * drops the connection and the push in flight is sent again. */
    kill(mk.pid, SIGSTOP);
    char tok[65];
    t_token(9, tok);
    CHECK(push_send(p, tok, "m9", t_on_done, &r2) == 0);
    CHECK(t_wait_for(t_cond_disconnected, p, 3000));
    kill(mk.pid, SIGCONT);
    b = (struct t_batch){&r2, 1, p, 0};
    CHECK(t_wait(&b, 10000));
    CHECK(r2.calls == 1 && r2.outcome == PUSH_OK);
    push_stats(p, &st);
    CHECK(st.reconnects >= 1 && st.ok == 2);
    push_free(p);
    CHECK(t_mock_stop(&mk) == 0);
}

TEST(test_free_cancels_pending)
{
    struct t_mock mk = {0};
    struct conf cf;
    struct t_res r[4];
    struct push_stats st = {0};
    const char *extra[] = {"--delay-ms", "10000", "--max-streams", "3", NULL};
    memset(r, 0, sizeof(r));
    if (t_mock_start(&mk, "server", 0, extra) < 0) {
        CHECK(0);
        return;
    }
    t_conf(&cf, mk.port, "push");
    struct push *p = t_push_new(&cf);
    CHECK(t_send_n(p, r, 4) == 0);
    struct t_batch b = {r, 4, p, 0};
    for (int64_t end = util_mono_ms() + 5000; util_mono_ms() < end;) {
        push_stats(p, &st);
        if (st.inflight == 3 && st.queued == 1)
            break;
        event_base_loop(t_base, EVLOOP_ONCE);
    }
    CHECK(st.inflight == 3 && st.queued == 1);
    CHECK(!t_all_done(&b));
    push_free(p);
    int canceled = 0;
    for (int i = 0; i < 4; i++)
        canceled += r[i].calls == 1 && r[i].outcome == PUSH_CANCELED && r[i].err == MDMD_ECANCELED;
    CHECK(canceled == 4);
    CHECK(t_mock_stop(&mk) == 0);
}

static int t_cond_mode410(void *arg)
{
    return t_mock_stat("mode") == 410;
}

/* The mock's runtime control: SIGUSR1 re-reads --control-file. */
TEST(test_mock_control)
{
    struct t_mock mk = {0};
    struct t_res r, r2 = {0};
    char ctl[256];
    snprintf(ctl, sizeof(ctl), "%s", t_path("control")); /* t_path's buffers rotate */
    const char *extra[] = {"--control-file", ctl, NULL};
    struct push *p = t_one(&mk, extra, &r);
    CHECK(r.calls == 1 && r.outcome == PUSH_OK);
    CHECK(util_write_file(ctl, "# test\nmode 410\n", 16, 0644) == 0);
    kill(mk.pid, SIGUSR1);
    CHECK(t_wait_for(t_cond_mode410, NULL, 3000));
    char tok[65];
    t_token(11, tok);
    struct t_batch b = {&r2, 1, p, 0};
    if (p != NULL && push_send(p, tok, "m11", t_on_done, &r2) == 0)
        t_wait(&b, 5000);
    CHECK(r2.calls == 1 && r2.outcome == PUSH_BAD_TOKEN && r2.status == 410);
    push_free(p);
    CHECK(t_mock_stop(&mk) == 0);
}

/* A host name goes through evdns; /etc/hosts answers "localhost" without
 * any DNS traffic.  Skipped when the hosts file does not map it. */
TEST(test_hostname)
{
    char *hosts;
    if (util_read_file("/etc/hosts", &hosts, NULL) < 0)
        hosts = NULL;
    int mapped = hosts != NULL && strstr(hosts, "127.0.0.1") && strstr(hosts, "localhost");
    free(hosts);
    if (!mapped) {
        printf("skip test_hostname: no /etc/hosts entry for localhost\n");
        return;
    }
    struct t_mock mk = {0};
    struct conf cf;
    struct t_res r = {0};
    char tok[65];
    if (t_mock_start(&mk, "server", 0, NULL) < 0) {
        CHECK(0);
        return;
    }
    t_conf(&cf, mk.port, "push");
    cf.apns_host = (char *)"localhost";
    struct push *p = t_push_new(&cf);
    struct push_tuning tun = {.unavail_fail_ms = 5000};
    struct t_batch b = {&r, 1, p, 0};
    CHECK(p != NULL);
    if (p != NULL) {
        push_set_tuning(p, &tun);
        t_token(3, tok);
        CHECK(push_send(p, tok, "m3", t_on_done, &r) == 0);
        t_wait(&b, 10000);
    }
    CHECK(r.calls == 1 && r.outcome == PUSH_OK);
    push_free(p);
    CHECK(t_mock_stop(&mk) == 0);
}

/* ------------------------------------------------------------------------ */
/* setup and the benchmark */

static void t_cleanup_dir(void)
{
    DIR *d;
    struct dirent *e;
    if (getenv("KEEP") != NULL) {
        printf("kept %s\n", t_dir);
        return;
    }
    if ((d = opendir(t_dir)) == NULL)
        return;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            unlink(t_path(e->d_name));
    closedir(d);
    rmdir(t_dir);
}

static void t_on_tick(evutil_socket_t fd, short what, void *arg)
{
    /* keeps EVLOOP_ONCE from blocking longer than a tick */
}

struct t_bench {
    struct push *p;
    long total, sent, done, ok;
};

static void t_bench_fill(struct t_bench *bn);

static void t_bench_done(void *arg, const struct push_result *r)
{
    struct t_bench *bn = arg;
    bn->done++;
    bn->ok += r->outcome == PUSH_OK;
}

static void t_bench_fill(struct t_bench *bn)
{
    char tok[65];
    /* A window, like a bulk sender that paces itself on the queue. */
    while (bn->sent < bn->total && bn->sent - bn->done < 20000) {
        t_token((int)bn->sent, tok);
        if (push_send(bn->p, tok, "3f1c29a2-8d3b-4c1e-9a55-2b7f0d6e4c11", t_bench_done, bn) != 0)
            break;
        bn->sent++;
    }
}

static int t_bench(long n, int conns)
{
    struct t_mock mk = {0};
    struct conf cf;
    const char *extra[] = {"--record", "", NULL}; /* none: measure the client, not a file */
    struct rusage ru0, ru1;
    if (t_mock_start(&mk, "server", 0, extra) < 0)
        return 1;
    t_conf(&cf, mk.port, "push");
    cf.apns_connections = conns;
    struct t_bench bn = {t_push_new(&cf), n, 0, 0, 0};
    int64_t t0 = util_mono_ms();
    getrusage(RUSAGE_SELF, &ru0);
    while (bn.done < n) {
        t_bench_fill(&bn);
        event_base_loop(t_base, EVLOOP_ONCE);
    }
    double secs = (double)(util_mono_ms() - t0) / 1000.0;
    getrusage(RUSAGE_SELF, &ru1);
    double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec -
                          ru0.ru_stime.tv_sec) +
                 (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec -
                          ru0.ru_stime.tv_usec) /
                     1e6;
    printf("push_bench pushes=%ld ok=%ld connections=%d secs=%.2f rate=%.0f/s client_cpu_s=%.2f "
           "per_cpu_s=%.0f/s\n",
           n, bn.ok, conns, secs, (double)n / secs, cpu, cpu > 0 ? (double)n / cpu : 0.0);
    push_free(bn.p);
    t_mock_stop(&mk);
    return bn.ok == n ? 0 : 1;
}

static void t_setup(void)
{
    unsigned char u[16];
    snprintf(t_dir, sizeof(t_dir), "/tmp/test_push.XXXXXX");
    if (mkdtemp(t_dir) == NULL)
        die("test: mkdtemp");
    RAND_bytes(u, sizeof(u));
    t_salt = (int)(u[0] << 16 | u[1] << 8 | u[2]);
    snprintf(t_topic, sizeof(t_topic),
             "com.apple.mgmt.External.%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
             u[14], u[15]);
    t_pki();
    signal(SIGPIPE, SIG_IGN);
}

int main(int argc, char **argv)
{
    struct timeval tick = {0, 10000};
    log_level = getenv("PUSH_DEBUG") ? LOG_LVL_DEBUG : LOG_LVL_WARN;
    t_base = event_base_new();
    t_setup();
    struct event *tk = event_new(t_base, -1, EV_PERSIST, t_on_tick, NULL);
    event_add(tk, &tick);
    if (argc >= 3 && strcmp(argv[1], "bench") == 0) {
        int rc = t_bench(atol(argv[2]), argc >= 4 ? atoi(argv[3]) : 1);
        event_free(tk);
        event_base_free(t_base);
        t_cleanup_dir();
        return rc;
    }
    RUN(test_cert_topic);
    RUN(test_cert_refused);
    RUN(test_cert_p12);
    RUN(test_bad_format_fails_fast);
    RUN(test_ok);
    RUN(test_bad_token_answers);
    RUN(test_retry_then_ok);
    RUN(test_retry_exhausted);
    RUN(test_forbidden);
    RUN(test_topic_mismatch);
    RUN(test_goaway_mid_batch);
    RUN(test_drop_mid_batch);
    RUN(test_mock_restart);
    RUN(test_max_streams);
    RUN(test_several_connections);
    RUN(test_tls_verification);
    RUN(test_ping_and_dead_peer);
    RUN(test_free_cancels_pending);
    RUN(test_mock_control);
    RUN(test_hostname);
    event_free(tk);
    event_base_free(t_base);
    t_cleanup_dir();
    return harness_done();
}
