/* handler_env.c: see handler_env.h. */
#include "handler_env.h"

#include <event2/event.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_store.h"
#include "../../ca/ca.h"
#include "../../ca/ca_seal.h"
#include "../../core/app.h"
#include "../../core/conf.h"
#include "../../core/log.h"
#include "../../core/metrics.h"
#include "../../core/shape.h"
#include "../../core/util.h"
#include "../../core/worker.h"
#include "../../handlers/apple/apple.h"
#include "../../handlers/enroll/enroll.h"
#include "../../handlers/routes.h"
#include "../../handlers/wake/wake.h"

const char henv_api_key[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static struct {
    int ready;
    struct conf cf;
    struct metrics metrics;
    struct app app;
    struct http_server *mdm, *pub;
    X509 *cert;
} henv;

static char henv_dir[] = "/tmp/mdmd-fuzz-env.XXXXXX";

static int henv_rm(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void)st;
    (void)type;
    (void)f;
    return remove(path);
}

/* The scratch CA and keys go with the process. */
static void henv_cleanup(void)
{
    (void)nftw(henv_dir, henv_rm, 8, FTW_DEPTH | FTW_PHYS);
}

static void henv_die(const char *what)
{
    fprintf(stderr, "handler_env: %s\n", what);
    abort();
}

static X509 *henv_make_cert(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    if (k == NULL || x == NULL)
        henv_die("device key");
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)HENV_UDID, -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509_set_pubkey(x, k);
    if (X509_sign(x, k, EVP_sha256()) == 0)
        henv_die("device certificate");
    EVP_PKEY_free(k);
    return x;
}

static void henv_conf(const char *dir)
{
    char err[256];
    conf_init(&henv.cf);
    if (conf_set(&henv.cf, "data_dir", dir, "fuzz", 0, err, sizeof(err)) != 0 ||
        conf_finish(&henv.cf, err, sizeof(err)) != 0)
        henv_die(err);
    struct shape_limits shape = {(size_t)henv.cf.max_plist_depth, (size_t)henv.cf.max_plist_nodes,
                                 (size_t)henv.cf.max_plist_string};
    apple_plist_set_limits(&shape, (size_t)henv.cf.max_json_depth);
    ca_set_cms_limits(henv.cf.cms_max_signers, henv.cf.cms_max_certs);
}

void henv_init(void)
{
    if (henv.ready)
        return;
    const char *dir = mkdtemp(henv_dir);
    if (dir == NULL)
        henv_die("mkdtemp");
    atexit(henv_cleanup);
    log_level = getenv("FUZZ_LOG") != NULL ? LOG_LVL_DEBUG : LOG_LVL_ERR;
    henv_conf(dir);
    struct app *a = &henv.app;
    a->cf = &henv.cf;
    a->metrics = &henv.metrics;
    a->api_key = henv_api_key;
    a->base = event_base_new();
    a->ca = ca_open(&henv.cf);
    if (a->base == NULL || a->ca == NULL ||
        ca_ensure_server_cert(a->ca, henv.cf.server_names, henv.cf.tls_cert_file,
                              henv.cf.tls_key_file, henv.cf.cert_validity_days) != 0)
        henv_die("CA or server certificate");
    a->seal_key_path = xasprintf("%s/bootstrap.key", dir);
    if (ca_seal_keyfile_init(a->seal_key_path) != 0)
        henv_die("bootstrap key");
    a->routes_public = routes_public;
    a->store = store_new(a->base, "fake", 1000);
    a->worker = worker_new(a->base, 1);
    a->wake = wake_new(a->base, a->store, NULL, henv.cf.push_coalesce_ms);
    a->enroll = enroll_keys_load(&henv.cf);
    a->scep = enroll_scep_keys_load(&henv.cf, a->ca, a->worker);
    if (a->enroll == NULL || a->scep == NULL)
        henv_die("enrollment keys");
    henv.mdm = http_test_server_new("mdm", routes_mdm, a);
    henv.pub = http_test_server_new("public", routes_public, a);
    henv.cert = henv_make_cert();
    henv.ready = 1;
}

X509 *henv_device_cert(void)
{
    henv_init();
    return henv.cert;
}

struct henv_answer {
    int done;
    int status;
};

static int henv_status_ok(int status)
{
    static const int ok[] = {200, 201, 202, 204, 400, 401, 403, 404, 405,
                             409, 410, 413, 415, 422, 429, 500, 503};
    for (size_t i = 0; i < ARRAY_LEN(ok); i++)
        if (status == ok[i])
            return 1;
    return 0;
}

static void henv_on_answer(void *arg, int status, const char *headers, const void *body, size_t len)
{
    struct henv_answer *an = arg;
    if (an->done)
        henv_die("answered twice");
    an->done = 1;
    an->status = status;
    if (!henv_status_ok(status)) {
        fprintf(stderr, "handler_env: status %d\n", status);
        abort();
    }
    if (strstr(headers, "Content-Type: application/json") != NULL) {
        json_error_t e;
        json_t *j = json_loadb(body, len, JSON_DECODE_ANY, &e);
        if (j == NULL) {
            fprintf(stderr, "handler_env: status %d, JSON body does not parse: %s\n", status,
                    e.text);
            abort();
        }
        json_decref(j);
    }
}

int henv_run(enum henv_listener l, int mode, const struct http_test_req *t)
{
    henv_init();
    struct henv_answer an = {0, 0};
    struct app *a = &henv.app;
    fake_store_set_mode(a->store, mode);
    if (http_test_request(l == HENV_MDM ? henv.mdm : henv.pub, t, henv_on_answer, &an) != 0)
        return -1;
    /* The answer, then whatever the request left running (an event written
     * after answering, a push): nothing may outlive the input. */
    for (int turns = 0; !an.done || fake_store_ops(a->store) > 0 || worker_queued(a->worker) > 0;
         turns++) {
        if (turns > 100000)
            henv_die("no answer after 100,000 loop turns");
        event_base_loop(a->base, EVLOOP_ONCE);
    }
    return an.status;
}
