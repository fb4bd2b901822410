#include "tls.h"
#include "log.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static const unsigned char tls_sid_ctx[] = "mdmd";

/* ex_data slots, created once on the loop thread (or before it runs):
 * the listener name of a context, the refusal state of a connection, the
 * cached fingerprint of a certificate. */
static int tls_ctx_idx = -1, tls_ssl_idx = -1, tls_fp_idx = -1;

/* Why a handshake failed, noted by the verify callback (which sees the
 * certificate) for the info callback (which sees the end of the handshake).
 * Allocated only on failure; freed with the SSL. */
struct tls_refusal {
    int logged;        /* the one line is written */
    int x509_err;      /* X509_V_ERR_*; 0 if verification passed */
    int depth;         /* chain position of the failing cert */
    char subject[160]; /* sanitised RFC 2253 names */
    char issuer[160];
};

/* At most this many tls_refused lines a second; the rest are counted and the
 * count is reported on the next line written (a flood of garbage must not
 * make logging the bottleneck). */
#define TLS_LOG_PER_SEC 20

static struct {
    time_t sec;      /* the second being counted */
    int lines;       /* written in it */
    long suppressed; /* dropped since the last line written */
} tls_log_budget;

static int tls_load_identity(SSL_CTX *ctx, const char *cert_file, const char *key_file)
{
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        log_ssl(LOG_LVL_ERR, "event=tls_cert_load_failed");
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        log_ssl(LOG_LVL_ERR, "event=tls_key_load_failed");
        return -1;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        log_ssl(LOG_LVL_ERR, "event=tls_key_mismatch");
        return -1;
    }
    return 0;
}

static int tls_ex_nodup(CRYPTO_EX_DATA *to, const CRYPTO_EX_DATA *from, void **from_d, int idx,
                        long argl, void *argp)
{
    *from_d = NULL; /* a copy recomputes; sharing the pointer would free it twice */
    return 1;
}

static void tls_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    free(ptr);
}

static void tls_init_indexes(void)
{
    if (tls_ctx_idx < 0)
        tls_ctx_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    if (tls_ssl_idx < 0)
        tls_ssl_idx = SSL_get_ex_new_index(0, NULL, NULL, tls_ex_nodup, tls_ex_free);
    if (tls_fp_idx < 0)
        tls_fp_idx = X509_get_ex_new_index(0, NULL, NULL, tls_ex_nodup, tls_ex_free);
}

static struct tls_refusal *tls_refusal_of(SSL *ssl)
{
    struct tls_refusal *rf = SSL_get_ex_data(ssl, tls_ssl_idx);
    if (rf == NULL) {
        rf = xcalloc(1, sizeof(*rf));
        if (SSL_set_ex_data(ssl, tls_ssl_idx, rf) != 1) {
            free(rf);
            return NULL;
        }
    }
    return rf;
}

/* A name for a log value in quotes: the certificate is the client's, so
 * quotes and anything unprintable become '?'. */
static void tls_name_str(const X509_NAME *name, char *out, size_t len)
{
    if (name == NULL || X509_NAME_oneline(name, out, (int)len) == NULL) {
        snprintf(out, len, "-");
        return;
    }
    log_safe(out);
}

/* Verification stops at the first error (we return 0); note what failed,
 * since OpenSSL drops the client's certificate with the handshake.  Runs for
 * every certificate of every chain: the success path only tests ok. */
static int tls_on_verify(int ok, X509_STORE_CTX *xs)
{
    if (ok)
        return 1;
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct tls_refusal *rf = ssl != NULL ? tls_refusal_of(ssl) : NULL;
    if (rf == NULL || rf->x509_err != 0)
        return 0;
    X509 *cert = X509_STORE_CTX_get_current_cert(xs);
    rf->x509_err = X509_STORE_CTX_get_error(xs);
    rf->depth = X509_STORE_CTX_get_error_depth(xs);
    tls_name_str(cert != NULL ? X509_get_subject_name(cert) : NULL, rf->subject,
                 sizeof(rf->subject));
    tls_name_str(cert != NULL ? X509_get_issuer_name(cert) : NULL, rf->issuer, sizeof(rf->issuer));
    return 0;
}

static void tls_peer_str(const SSL *ssl, char *out, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[INET6_ADDRSTRLEN];
    int fd = SSL_get_fd(ssl);

    snprintf(out, len, "-");
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
        return;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        if (inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host)) != NULL)
            snprintf(out, len, "%s:%u", host, ntohs(in->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        if (inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host)) != NULL)
            snprintf(out, len, "[%s]:%u", host, ntohs(in6->sin6_port));
    }
}

/* "certificate has expired" -> "certificate_has_expired". */
static void tls_snake(const char *s, char *out, size_t len)
{
    size_t n = 0;
    for (; s != NULL && *s != '\0' && n + 1 < len; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
            out[n++] = (char)c;
        else if (c >= 'A' && c <= 'Z')
            out[n++] = (char)(c - 'A' + 'a');
        else if (n > 0 && out[n - 1] != '_')
            out[n++] = '_';
    }
    while (n > 0 && out[n - 1] == '_')
        n--;
    out[n] = '\0';
    if (n == 0)
        snprintf(out, len, "unknown");
}

static void tls_x509_reason(int err, char *out, size_t len)
{
    switch (err) {
    case X509_V_ERR_CERT_HAS_EXPIRED: snprintf(out, len, "certificate_expired"); return;
    case X509_V_ERR_CERT_NOT_YET_VALID: snprintf(out, len, "certificate_not_yet_valid"); return;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN: snprintf(out, len, "unknown_ca"); return;
    case X509_V_ERR_INVALID_PURPOSE: snprintf(out, len, "wrong_key_usage"); return;
    default: tls_snake(X509_verify_cert_error_string(err), out, len); return;
    }
}

/* The reason and level of a failed handshake without a certificate error.
 * Returns the log level: warn for what we refused, info when the client
 * went away or refused us (its alert), debug for a connection that closed
 * before sending anything (port probes, TCP health checks). */
static int tls_ssl_reason(const SSL *ssl, int sslerr, char *out, size_t len)
{
    unsigned long e = sslerr == SSL_ERROR_SSL ? ERR_peek_error() : 0;
    int r = ERR_GET_LIB(e) == ERR_LIB_SSL ? ERR_GET_REASON(e) : 0;
    int silent = SSL_get_state(ssl) == TLS_ST_BEFORE;

    if (sslerr != SSL_ERROR_SSL || r == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        snprintf(out, len, sslerr == SSL_ERROR_ZERO_RETURN ? "client_closed" : "client_dropped");
        return silent ? LOG_LVL_DEBUG : LOG_LVL_INFO;
    }
    if (r >= SSL_AD_REASON_OFFSET) { /* the client sent a fatal alert */
        char a[48];
        tls_snake(SSL_alert_desc_string_long(r - SSL_AD_REASON_OFFSET), a, sizeof(a));
        snprintf(out, len, "client_alert_%s", a);
        return LOG_LVL_INFO;
    }
    switch (r) {
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
        snprintf(out, len, "no_client_certificate");
        break;
    case SSL_R_WRONG_VERSION_NUMBER:
        snprintf(out, len, silent ? "not_tls" : "wrong_version_number");
        break;
    case SSL_R_HTTP_REQUEST: snprintf(out, len, "plain_http"); break;
    default: tls_snake(e != 0 ? ERR_reason_error_string(e) : NULL, out, len); break;
    }
    return LOG_LVL_WARN;
}

/* One more line this second?  Also hands over how many were dropped. */
static int tls_log_admit(int lvl, long *suppressed)
{
    time_t now = time(NULL);
    if (lvl > log_level)
        return 0;
    if (now != tls_log_budget.sec) {
        tls_log_budget.sec = now;
        tls_log_budget.lines = 0;
    }
    if (tls_log_budget.lines >= TLS_LOG_PER_SEC) {
        tls_log_budget.suppressed++;
        return 0;
    }
    tls_log_budget.lines++;
    *suppressed = tls_log_budget.suppressed;
    tls_log_budget.suppressed = 0;
    return 1;
}

static void tls_log_refused(SSL *ssl, int sslerr)
{
    struct tls_refusal *rf = tls_refusal_of(ssl);
    const char *listener = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tls_ctx_idx);
    char reason[64], peer[INET6_ADDRSTRLEN + 8], sup[32] = "";
    long suppressed = 0;
    int lvl;

    if (rf == NULL || rf->logged)
        return;
    rf->logged = 1;
    if (rf->x509_err != 0) {
        tls_x509_reason(rf->x509_err, reason, sizeof(reason));
        lvl = LOG_LVL_WARN;
    } else {
        lvl = tls_ssl_reason(ssl, sslerr, reason, sizeof(reason));
    }
    if (!tls_log_admit(lvl, &suppressed))
        return;
    if (suppressed > 0)
        snprintf(sup, sizeof(sup), " suppressed=%ld", suppressed);
    tls_peer_str(ssl, peer, sizeof(peer));
    if (rf->x509_err != 0)
        log_at(lvl,
               "event=tls_refused listener=%s peer=%s reason=%s depth=%d subject=\"%s\" "
               "issuer=\"%s\" detail=\"%s\"%s",
               listener != NULL ? listener : "-", peer, reason, rf->depth, rf->subject, rf->issuer,
               X509_verify_cert_error_string(rf->x509_err), sup);
    else
        log_at(lvl, "event=tls_refused listener=%s peer=%s reason=%s%s",
               listener != NULL ? listener : "-", peer, reason, sup);
}

/* The end of each SSL_do_handshake() call: ret <= 0 with an error that is no
 * "want read/write" is the failed handshake libevent is about to close.
 * Successful handshakes pass the first test. */
static void tls_on_info(const SSL *ssl, int where, int ret)
{
    if (where != SSL_CB_ACCEPT_EXIT || ret > 0)
        return;
    int e = SSL_get_error(ssl, ret);
    if (e == SSL_ERROR_SSL || e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN)
        tls_log_refused((SSL *)ssl, e);
}

/* Client certificates must chain to the MDM CA.  The CA list is also sent
 * in the CertificateRequest so clients holding several identities pick ours. */
static int tls_require_client_cert(SSL_CTX *ctx, const char *ca_file, int mode)
{
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca_file);
    if (names == NULL || SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        log_ssl(LOG_LVL_ERR, "event=tls_client_ca_load_failed");
        return -1;
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    /* optional: asked for, and one that is sent must verify (behind a proxy,
     * or with Mdm-Signature, a device may send none). */
    SSL_CTX_set_verify(ctx,
                       SSL_VERIFY_PEER |
                           (mode == TLS_CLIENT_CERT_REQUIRED ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                       tls_on_verify);
    SSL_CTX_set_verify_depth(ctx, 4);
    if (SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) != 1) {
        log_ssl(LOG_LVL_ERR, "event=tls_purpose_failed");
        return -1;
    }
    return 0;
}

static SSL_CTX *tls_ctx_new(const char *listener, const char *cert_file, const char *key_file,
                            const char *ciphers, const char *client_ca_file, int mode);

SSL_CTX *tls_server_ctx(const char *cert_file, const char *key_file, const char *ciphers,
                        const char *client_ca_file)
{
    return tls_ctx_new(client_ca_file != NULL ? "mdm" : "public", cert_file, key_file, ciphers,
                       client_ca_file,
                       client_ca_file != NULL ? TLS_CLIENT_CERT_REQUIRED : TLS_CLIENT_CERT_NONE);
}

SSL_CTX *tls_server_ctx_clients(const char *cert_file, const char *key_file, const char *ciphers,
                                const char *client_ca_file, int mode)
{
    return tls_ctx_new("mdm", cert_file, key_file, ciphers, client_ca_file, mode);
}

static SSL_CTX *tls_ctx_new(const char *listener, const char *cert_file, const char *key_file,
                            const char *ciphers, const char *client_ca_file, int mode)
{
    tls_init_indexes();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        log_ssl(LOG_LVL_ERR, "event=tls_ctx_failed");
        return NULL;
    }
    /* listener: a string literal, so nothing to free with the context */
    SSL_CTX_set_ex_data(ctx, tls_ctx_idx, (void *)listener);
    SSL_CTX_set_info_callback(ctx, tls_on_info);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* Handshakes dominate a command wave's CPU (DESIGN.md 4): resume them. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, 50000);
    SSL_CTX_set_session_id_context(ctx, tls_sid_ctx, sizeof(tls_sid_ctx) - 1);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (ciphers != NULL && *ciphers != '\0' && SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
        log_ssl(LOG_LVL_ERR, "event=tls_bad_ciphers");
        goto fail;
    }
    if (tls_load_identity(ctx, cert_file, key_file) != 0)
        goto fail;
    if (client_ca_file != NULL && mode != TLS_CLIENT_CERT_NONE &&
        tls_require_client_cert(ctx, client_ca_file, mode) != 0)
        goto fail;
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

X509 *tls_peer_cert(SSL *ssl)
{
    if (ssl == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
        return NULL;
    return SSL_get0_peer_certificate(ssl);
}

int tls_cert_cn(X509 *cert, char *out, size_t len)
{
    X509_NAME *name = X509_get_subject_name(cert);
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (i < 0)
        return -1;
    ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    int n = ASN1_STRING_length(v);
    if (n <= 0 || (size_t)n >= len || memchr(ASN1_STRING_get0_data(v), 0, (size_t)n) != NULL)
        return -1;
    memcpy(out, ASN1_STRING_get0_data(v), (size_t)n);
    out[n] = '\0';
    return 0;
}

/* X509_digest() re-encodes the certificate and fetches SHA-256 on every
 * call (OpenSSL caches only SHA-1); a device sends several requests with one
 * certificate object (keep-alive, resumed sessions share it), so the hex
 * digest is kept on the object and freed with it. */
void tls_cert_fp(X509 *cert, char out[65])
{
    unsigned char md[32];
    unsigned int n = sizeof(md);

    tls_init_indexes();
    const char *fp = X509_get_ex_data(cert, tls_fp_idx);
    if (fp != NULL) {
        memcpy(out, fp, 65);
        return;
    }
    if (X509_digest(cert, EVP_sha256(), md, &n) != 1 || n != sizeof(md)) {
        out[0] = '\0';
        return;
    }
    util_hex(md, n, out);
    char *copy = xmalloc(65);
    memcpy(copy, out, 65);
    if (X509_set_ex_data(cert, tls_fp_idx, copy) != 1)
        free(copy);
}
