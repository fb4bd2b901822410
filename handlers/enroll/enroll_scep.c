/* enroll_scep.c: the SCEP endpoint (see enroll.h).  A PKIOperation walks the
 * states of enroll_scep_step(): each state answers or makes one async call (the
 * crypto worker or Redis), whose callback records the outcome and steps
 * again. */
#include "enroll.h"

#include <stdlib.h>
#include <string.h>

#include "../../ca/ca.h"
#include "../../ca/ca_scep.h"
#include "../../core/app.h"
#include "../../core/conf.h"
#include "../../core/http.h"
#include "../../core/util.h"
#include "../../core/log.h"
#include "../../core/worker.h"
#include "../../store/store_scep.h"
#include "enroll_int.h"

#define ENROLL_SCEP_CT_PKI "application/x-pki-message"
#define ENROLL_SCEP_USER_MAX 256

/* ---- keys ---- */

static struct enroll_scep_signer *enroll_scep_signer_load(const struct conf *cf)
{
    struct enroll_scep_signer *s = xcalloc(1, sizeof(*s));
    if (ca_load_identity(cf->tls_cert_file, cf->tls_key_file, &s->cert, &s->key) != 0) {
        log_err("event=scep_setup_failed reason=profile_signer cert=%s", cf->tls_cert_file);
        free(s);
        return NULL;
    }
    return s;
}

static void enroll_scep_signer_free(struct enroll_scep_signer *s)
{
    while (s != NULL) {
        struct enroll_scep_signer *older = s->older;
        ca_cert_free(s->cert);
        ca_pkey_free(s->key);
        free(s);
        s = older;
    }
}

/* A new RA's key is made on the worker, so that the loop (and the Redis
 * connection's timers) start at once; SCEP answers 503 until it is there. */
static void enroll_scep_ra_job(void *arg)
{
    struct enroll_scep_keys *k = arg;
    k->ra_ok = ca_scep_make_ra(k->sc) == 0;
}

static void enroll_scep_ra_done(void *arg)
{
    struct enroll_scep_keys *k = arg;
    if (k->ra_ok && !worker_canceled(k->worker))
        ca_scep_set_ready(k->sc);
    else
        log_err("event=scep_unavailable reason=no_ra");
}

struct enroll_scep_keys *enroll_scep_keys_load(const struct conf *cf, const struct ca *ca,
                                               struct worker *worker)
{
    struct enroll_scep_keys *k = xcalloc(1, sizeof(*k));
    k->sc = ca_scep_open(ca, cf);
    k->signer = k->sc != NULL ? enroll_scep_signer_load(cf) : NULL;
    k->worker = worker;
    if (k->signer == NULL) {
        enroll_scep_keys_free(k);
        return NULL;
    }
    if (!ca_scep_ready(k->sc))
        worker_submit(worker, enroll_scep_ra_job, enroll_scep_ra_done, k);
    return k;
}

int enroll_scep_keys_reload(struct enroll_scep_keys *k, const struct conf *cf)
{
    struct enroll_scep_signer *s = enroll_scep_signer_load(cf);
    if (s == NULL)
        return -1;
    s->older = k->signer;
    k->signer = s;
    return 0;
}

void enroll_scep_keys_free(struct enroll_scep_keys *k)
{
    if (k == NULL)
        return;
    ca_scep_free(k->sc);
    enroll_scep_signer_free(k->signer);
    free(k);
}

/* ---- PKIOperation ---- */

enum enroll_scep_state {
    ENROLL_SCEP_PARSE,     /* worker: open and check the message */
    ENROLL_SCEP_CHALLENGE, /* new enrollment: the static challenge, or take a one-time one */
    ENROLL_SCEP_ISSUE,     /* worker: issue the certificate, build the SUCCESS CertRep */
    ENROLL_SCEP_RECORD,    /* Redis: register it (renewal: rebind the enrollment) */
    ENROLL_SCEP_RESEND,    /* worker: the CertRep of the certificate a first try registered */
    ENROLL_SCEP_REFUSE,    /* worker: build a FAILURE CertRep */
    ENROLL_SCEP_ANSWER,    /* send what was built */
};

/* Everything a job reads is copied here on the loop before it is submitted;
 * the job writes only its outputs. */
struct enroll_scep_op {
    struct req *req;
    struct app *app;
    enum enroll_scep_state state;
    const struct ca *ca; /* borrowed, read-only: outlives the worker */
    const struct ca_scep *sc;
    unsigned char *msg; /* the pkiMessage */
    size_t msg_len;
    int days;   /* cert_validity_days */
    int parsed; /* ca_scep_parse()'s result */
    struct ca_scep_req r;
    struct ca_scep_policy pol;       /* from the configuration at the request */
    int fail;                        /* failInfo of a FAILURE answer */
    char user[ENROLL_SCEP_USER_MAX]; /* who the one-time challenge was for */
    char req_id[CA_FINGERPRINT_LEN]; /* new enrollment: what its retries share */
    char *cert_hex;                  /* the issued certificate, DER hex (for a retry) */
    char *again_hex;                 /* a retry: the certificate registered before */
    X509 *issued;
    char fp[CA_FINGERPRINT_LEN];
    char serial[64];
    unsigned char *reply; /* the CertRep */
    size_t reply_len;
};

static void enroll_scep_step(struct enroll_scep_op *o);

static void enroll_scep_op_free(struct enroll_scep_op *o)
{
    ca_scep_req_clear(&o->r);
    ca_cert_free(o->issued);
    free(o->cert_hex);
    free(o->again_hex);
    free(o->msg);
    free(o->reply);
    free(o);
}

/* Ends the request (reply or error) and the op. */
static void enroll_scep_finish(struct enroll_scep_op *o, int status, const char *why)
{
    if (status == 200)
        req_respond(o->req, 200, ENROLL_SCEP_CT_PKI, o->reply, o->reply_len);
    else
        req_fail(o->req, status, why);
    enroll_scep_op_free(o);
}

static void enroll_scep_refuse(struct enroll_scep_op *o, int fail, const char *why)
{
    log_warn("event=scep_refused txid=%s cn=\"%s\" fail_info=%s reason=%s", o->r.txid, o->r.cn,
             ca_scep_fail_str(fail), why);
    o->fail = fail;
    o->state = ENROLL_SCEP_REFUSE;
    enroll_scep_step(o);
}

/* ---- jobs (worker threads) ---- */

static void enroll_scep_job_parse(void *arg)
{
    struct enroll_scep_op *o = arg;
    o->parsed = ca_scep_parse_with(o->sc, o->ca, &o->pol, o->msg, o->msg_len, &o->r);
    if (o->parsed == 0 && o->r.fail == CA_SCEP_FAIL_NONE && !o->r.renewal &&
        ca_scep_req_id(&o->r, o->req_id) != 0)
        o->parsed = -1;
}

/* x as DER hex (malloc'ed), NULL on error. */
static char *enroll_scep_cert_hex(X509 *x)
{
    unsigned char *der = NULL;
    size_t len = 0;
    if (ca_scep_cert_der(x, &der, &len) != 0)
        return NULL;
    char *hex = xmalloc(2 * len + 1);
    util_hex(der, len, hex);
    free(der);
    return hex;
}

static int enroll_scep_hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The certificate a first try stored as DER hex; NULL if it is not one. */
static X509 *enroll_scep_cert_unhex(const char *hex)
{
    size_t n = strlen(hex) / 2;
    unsigned char *der = n > 0 && strlen(hex) % 2 == 0 ? xmalloc(n) : NULL;
    for (size_t i = 0; der != NULL && i < n; i++) {
        int hi = enroll_scep_hexval(hex[2 * i]), lo = enroll_scep_hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(der);
            der = NULL;
        } else {
            der[i] = (unsigned char)(hi << 4 | lo);
        }
    }
    X509 *x = der != NULL ? ca_scep_cert_from_der(der, n) : NULL;
    free(der);
    return x;
}

static void enroll_scep_job_issue(void *arg)
{
    struct enroll_scep_op *o = arg;
    o->issued = ca_scep_issue(o->ca, &o->r, o->days);
    if (o->issued == NULL || ca_cert_fingerprint(o->issued, o->fp) != 0 ||
        ca_scep_serial(o->issued, o->serial, sizeof(o->serial)) != 0 ||
        ca_scep_reply(o->sc, &o->r, o->issued, CA_SCEP_FAIL_NONE, &o->reply, &o->reply_len) != 0 ||
        (!o->r.renewal && (o->cert_hex = enroll_scep_cert_hex(o->issued)) == NULL)) {
        free(o->reply);
        o->reply = NULL;
    }
}

/* A retry of a request whose answer was lost: the same certificate, in a
 * CertRep for this message (its nonce), not a second certificate. */
static void enroll_scep_job_resend(void *arg)
{
    struct enroll_scep_op *o = arg;
    ca_cert_free(o->issued);
    o->issued = enroll_scep_cert_unhex(o->again_hex);
    if (o->issued == NULL || ca_cert_fingerprint(o->issued, o->fp) != 0 ||
        ca_scep_serial(o->issued, o->serial, sizeof(o->serial)) != 0 ||
        ca_scep_reply(o->sc, &o->r, o->issued, CA_SCEP_FAIL_NONE, &o->reply, &o->reply_len) != 0) {
        free(o->reply);
        o->reply = NULL;
    }
}

static void enroll_scep_job_refuse(void *arg)
{
    struct enroll_scep_op *o = arg;
    if (ca_scep_reply(o->sc, &o->r, NULL, o->fail, &o->reply, &o->reply_len) != 0)
        o->reply = NULL;
}

/* ---- callbacks (loop) ---- */

static void enroll_scep_on_job(void *arg)
{
    struct enroll_scep_op *o = arg;
    if (worker_canceled(o->app->worker)) {
        enroll_scep_finish(o, 503, "shutting down");
        return;
    }
    if (o->state == ENROLL_SCEP_PARSE) {
        if (o->parsed != 0) {
            enroll_scep_finish(o, 400, "not a SCEP pkiMessage");
            return;
        }
        if (o->r.fail != CA_SCEP_FAIL_NONE) {
            enroll_scep_refuse(o, o->r.fail, o->r.why);
            return;
        }
        o->state = o->r.renewal ? ENROLL_SCEP_ISSUE : ENROLL_SCEP_CHALLENGE;
    } else if (o->state == ENROLL_SCEP_ISSUE) {
        if (o->reply == NULL) {
            enroll_scep_finish(o, 500, "certificate issuance failed");
            return;
        }
        o->state = ENROLL_SCEP_RECORD;
    } else if (o->state == ENROLL_SCEP_RESEND) {
        if (o->reply == NULL) {
            enroll_scep_finish(o, 500, "the certificate of the first try is unreadable");
            return;
        }
        log_info("event=scep_resent cn=\"%s\" fp=%s txid=%s", o->r.cn, o->fp, o->r.txid);
        o->state = ENROLL_SCEP_ANSWER;
    } else {
        o->state = ENROLL_SCEP_ANSWER;
    }
    enroll_scep_step(o);
}

/* Goes on with the certificate registered by an earlier try of this request. */
static void enroll_scep_resend(struct enroll_scep_op *o, const char *cert_hex)
{
    free(o->reply);
    o->reply = NULL;
    free(o->again_hex);
    o->again_hex = xstrdup(cert_hex);
    o->state = ENROLL_SCEP_RESEND;
    enroll_scep_step(o);
}

static void enroll_scep_on_challenge(void *arg, int err, int retry_after_s, const char *who,
                                     int again, const char *cert_hex)
{
    struct enroll_scep_op *o = arg;
    if (err != MDMD_OK) {
        enroll_scep_finish(o, 503, "redis unavailable");
        return;
    }
    if (retry_after_s > 0) { /* SCEP has no "later" for this: a FAILURE */
        enroll_scep_refuse(o, CA_SCEP_BADREQUEST, "challenge_rate_limited");
        return;
    }
    if (who == NULL) {
        enroll_scep_refuse(o, CA_SCEP_BADREQUEST, "challenge_unknown_or_used");
        return;
    }
    if (again && cert_hex[0] != '\0') {
        enroll_scep_resend(o, cert_hex);
        return;
    }
    snprintf(o->user, sizeof(o->user), "%s", who);
    o->state = ENROLL_SCEP_ISSUE;
    enroll_scep_step(o);
}

static void enroll_scep_on_recorded(void *arg, int err, const char *outcome, int rebound,
                                    const char *again_hex)
{
    struct enroll_scep_op *o = arg;
    if (err != MDMD_OK) {
        enroll_scep_finish(o, 503, "redis unavailable");
        return;
    }
    if (strcmp(outcome, "again") == 0) { /* a concurrent try registered first */
        enroll_scep_resend(o, again_hex);
        return;
    }
    if (strcmp(outcome, "ok") != 0) {
        free(o->reply);
        o->reply = NULL;
        enroll_scep_refuse(o, CA_SCEP_BADREQUEST, outcome);
        return;
    }
    log_info("event=scep_enrolled cn=\"%s\" fp=%s renewal=%d rebound=%d cipher=%s signer=%s",
             o->r.cn, o->fp, o->r.renewal, rebound, o->r.cipher,
             o->r.throwaway_signer ? "throwaway" : "csr_key");
    o->state = ENROLL_SCEP_ANSWER;
    enroll_scep_step(o);
}

/* ---- states ---- */

static void enroll_scep_challenge(struct enroll_scep_op *o)
{
    const char *fixed = o->app->cf->scep_challenge;
    if (o->r.challenge[0] == '\0') {
        enroll_scep_refuse(o, CA_SCEP_BADREQUEST, "no_challenge");
        return;
    }
    /* The static challenge goes through the transaction record as well, so
     * that a retry of one request is never a second certificate. */
    int is_fixed = *fixed != '\0' && util_secret_eq(o->r.challenge, fixed);
    store_scep_take(o->app->store, o->r.challenge, is_fixed, o->req_id, req_peer(o->req),
                    enroll_scep_on_challenge, o);
}

static void enroll_scep_record(struct enroll_scep_op *o)
{
    struct store_scep_cert c = {o->r.cn_is_udid ? o->r.cn : "",
                                o->fp,
                                o->serial,
                                o->user,
                                o->r.renewal ? o->r.signer_fp : NULL,
                                util_now_ms(),
                                o->app->cf->scep_renewal_grace_s,
                                o->req_id,
                                o->cert_hex != NULL ? o->cert_hex : ""};
    if (o->r.renewal)
        store_scep_renewed(o->app->store, &c, enroll_scep_on_recorded, o);
    else
        store_scep_issued(o->app->store, &c, enroll_scep_on_recorded, o);
}

static void enroll_scep_step(struct enroll_scep_op *o)
{
    switch (o->state) {
    case ENROLL_SCEP_PARSE:
        worker_submit(o->app->worker, enroll_scep_job_parse, enroll_scep_on_job, o);
        break;
    case ENROLL_SCEP_CHALLENGE: enroll_scep_challenge(o); break;
    case ENROLL_SCEP_ISSUE:
        worker_submit(o->app->worker, enroll_scep_job_issue, enroll_scep_on_job, o);
        break;
    case ENROLL_SCEP_RECORD: enroll_scep_record(o); break;
    case ENROLL_SCEP_RESEND:
        worker_submit(o->app->worker, enroll_scep_job_resend, enroll_scep_on_job, o);
        break;
    case ENROLL_SCEP_REFUSE:
        worker_submit(o->app->worker, enroll_scep_job_refuse, enroll_scep_on_job, o);
        break;
    case ENROLL_SCEP_ANSWER:
        if (o->reply == NULL)
            enroll_scep_finish(o, 500, "could not build the CertRep");
        else
            enroll_scep_finish(o, 200, NULL);
        break;
    }
}

/* The message: the POST body, or base64 in ?message= for GET. */
static int enroll_scep_message(struct req *req, unsigned char **msg, size_t *len)
{
    if (req_method(req) == HTTP_M_POST) {
        size_t n;
        const unsigned char *body = req_body(req, &n);
        if (n == 0 || n > CA_SCEP_MAX_MSG)
            return -1;
        *msg = xmalloc(n);
        memcpy(*msg, body, n);
        *len = n;
        return 0;
    }
    char *b64 = req_query_param(req, "message");
    int rc = b64 != NULL ? ca_base64_decode(b64, strlen(b64), CA_SCEP_MAX_MSG, msg, len) : -1;
    free(b64);
    return rc;
}

static void enroll_scep_pki_operation(struct req *req, struct app *app)
{
    unsigned char *msg = NULL;
    size_t len = 0;
    if (enroll_scep_message(req, &msg, &len) != 0) {
        req_fail(req, 400, "PKIOperation needs a pkiMessage (POST body or base64 message=)");
        return;
    }
    struct enroll_scep_op *o = xcalloc(1, sizeof(*o));
    o->req = req;
    o->app = app;
    o->ca = app->ca;
    o->sc = app->scep->sc;
    o->pol = (struct ca_scep_policy){app->cf->scep_allow_throwaway_signer, app->cf->scep_allow_sha1,
                                     app->cf->scep_allow_des, app->cf->scep_allow_rsa1024};
    o->msg = msg;
    o->msg_len = len;
    o->days = app->cf->cert_validity_days;
    o->state = ENROLL_SCEP_PARSE;
    enroll_scep_step(o);
}

void enroll_scep(struct req *req, void *arg)
{
    struct app *app = arg;
    char *op = req_query_param(req, "operation");
    size_t len;
    const char *ctype;
    if (!ca_scep_ready(app->scep->sc) && op != NULL && strcmp(op, "GetCACaps") != 0) {
        req_add_header(req, "Retry-After", "5");
        req_fail(req, 503, "SCEP is starting (making its RA key)");
    } else if (op != NULL && strcmp(op, "GetCACaps") == 0) {
        req_respond(req, 200, "text/plain", ca_scep_caps, strlen(ca_scep_caps));
    } else if (op != NULL && strcmp(op, "GetCACert") == 0) {
        const unsigned char *der = ca_scep_cacert(app->scep->sc, &len, &ctype);
        req_respond(req, 200, ctype, der, len);
    } else if (op != NULL && strcmp(op, "PKIOperation") == 0 &&
               (req_method(req) == HTTP_M_POST || req_method(req) == HTTP_M_GET)) {
        enroll_scep_pki_operation(req, app);
    } else {
        req_fail(req, 400, "operation must be GetCACaps, GetCACert or PKIOperation");
    }
    free(op);
}
