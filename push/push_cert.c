/* push_cert.c: the MDM push certificate (PEM or PKCS12), its topic (the
 * subject UID) and the TLS client context APNs is reached with. */

#include "push.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "../core/conf.h"
#include "../core/log.h"
#include "push_int.h"

/* ------------------------------------------------------------------------ */
/* the push certificate */

static char *push_cert_uid(X509 *x)
{
    X509_NAME *name = X509_get_subject_name(x);
    int i = X509_NAME_get_index_by_NID(name, NID_userId, -1);
    if (i < 0)
        return NULL;
    ASN1_STRING *d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    unsigned char *u = NULL;
    int len = ASN1_STRING_to_UTF8(&u, d);
    if (len <= 0)
        return NULL;
    char *topic = NULL;
    if (memchr(u, '\0', (size_t)len) == NULL)
        topic = xstrndup((const char *)u, (size_t)len);
    OPENSSL_free(u);
    return topic;
}

/* Refuses what APNs would refuse anyway, at startup rather than per push. */
static int push_cert_check(X509 *x, char **topic_out)
{
    char *topic = push_cert_uid(x);
    if (topic == NULL) {
        log_err("event=push_cert_refused why=no_subject_uid");
        return -1;
    }
    if (strncmp(topic, PUSH_TOPIC_PREFIX, strlen(PUSH_TOPIC_PREFIX)) != 0) {
        char safe[80];
        push_copy_ident(safe, sizeof(safe), topic, strlen(topic));
        log_err("event=push_cert_refused why=not_mdm_topic topic=%s", safe);
        free(topic);
        return -1;
    }
    int days = 0, secs = 0;
    if (!ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)) || days < 0 || secs < 0) {
        log_err("event=push_cert_refused why=expired topic=%s", topic);
        free(topic);
        return -1;
    }
    if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0)
        log_warn("event=push_cert_not_yet_valid topic=%s", topic);
    if (days < PUSH_EXPIRY_WARN_DAYS)
        log_warn("event=push_cert_expiring topic=%s days_left=%d", topic, days);
    else
        log_info("event=push_cert topic=%s days_left=%d", topic, days);
    *topic_out = topic;
    return 0;
}

static int push_load_pem(SSL_CTX *ctx, const struct conf *cf)
{
    const char *key =
        cf->apns_key_file && *cf->apns_key_file ? cf->apns_key_file : cf->apns_cert_file;
    if (SSL_CTX_use_certificate_chain_file(ctx, cf->apns_cert_file) != 1) {
        log_ssl(LOG_LVL_ERR, "event=push_cert_load_failed what=apns_cert_file");
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        log_ssl(LOG_LVL_ERR, "event=push_cert_load_failed what=apns_key_file");
        return -1;
    }
    return 0;
}

/* Keychain exports often use RC2/3DES, which OpenSSL 3 keeps in the legacy
 * provider: load it only when a first parse fails, and only for the parse. */
static int push_p12_parse(const char *path, const char *pass, EVP_PKEY **key, X509 **cert,
                          STACK_OF(X509) * *chain)
{
    OSSL_PROVIDER *legacy = NULL, *dflt = NULL;
    int rc = -1;
    for (int round = 0; round < 2 && rc < 0; round++) {
        BIO *b = BIO_new_file(path, "rb");
        PKCS12 *p12 = b ? d2i_PKCS12_bio(b, NULL) : NULL;
        BIO_free(b);
        if (p12 == NULL)
            break;
        if (PKCS12_parse(p12, pass ? pass : "", key, cert, chain) == 1)
            rc = 0;
        PKCS12_free(p12);
        if (rc == 0 || round > 0)
            break;
        /* Loading legacy explicitly would hide the default provider. */
        dflt = OSSL_PROVIDER_load(NULL, "default");
        legacy = OSSL_PROVIDER_load(NULL, "legacy");
        if (legacy == NULL)
            break;
        ERR_clear_error();
    }
    if (legacy != NULL)
        OSSL_PROVIDER_unload(legacy);
    if (dflt != NULL)
        OSSL_PROVIDER_unload(dflt);
    return rc;
}

static int push_load_p12(SSL_CTX *ctx, const struct conf *cf)
{
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *chain = NULL;
    int rc = -1;
    if (push_p12_parse(cf->apns_p12_file, cf->apns_p12_password, &key, &cert, &chain) < 0 ||
        cert == NULL || key == NULL) {
        log_ssl(LOG_LVL_ERR, "event=push_cert_load_failed what=apns_p12_file");
        goto out;
    }
    if (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1) {
        log_ssl(LOG_LVL_ERR, "event=push_cert_load_failed what=apns_p12_file");
        goto out;
    }
    for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++)
        if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(chain, i)) != 1)
            goto out;
    rc = 0;
out:
    EVP_PKEY_free(key);
    X509_free(cert);
    sk_X509_pop_free(chain, X509_free);
    return rc;
}

static int push_ssl_trust(SSL_CTX *ctx, const struct conf *cf)
{
    int ok = cf->apns_ca_file && *cf->apns_ca_file
                 ? SSL_CTX_load_verify_locations(ctx, cf->apns_ca_file, NULL)
                 : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        log_ssl(LOG_LVL_ERR, "event=push_ca_load_failed");
        return -1;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return 0;
}

SSL_CTX *push_ssl_ctx_new(const struct conf *cf, char **topic)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    int p12 = cf->apns_p12_file && *cf->apns_p12_file;
    if (ctx == NULL)
        return NULL;
    /* HTTP/2 forbids renegotiation and compression (RFC 7540 9.2). */
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (!p12 && !(cf->apns_cert_file && *cf->apns_cert_file)) {
        log_err("event=push_cert_refused why=no_apns_cert_file_or_apns_p12_file");
        goto fail;
    }
    if ((p12 ? push_load_p12(ctx, cf) : push_load_pem(ctx, cf)) < 0)
        goto fail;
    if (SSL_CTX_check_private_key(ctx) != 1) {
        log_ssl(LOG_LVL_ERR, "event=push_cert_refused why=key_does_not_match");
        goto fail;
    }
    if (push_cert_check(SSL_CTX_get0_certificate(ctx), topic) < 0)
        goto fail;
    if (SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)"\x02h2", 3) != 0 ||
        push_ssl_trust(ctx, cf) < 0) {
        free(*topic);
        *topic = NULL;
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* renewal: load, look at, install */

struct push_cert {
    SSL_CTX *ssl;
    char *topic;
};

struct push_cert *push_cert_load(const struct conf *cf)
{
    struct push_cert *c = xcalloc(1, sizeof(*c));
    c->ssl = push_ssl_ctx_new(cf, &c->topic);
    if (c->ssl == NULL) {
        free(c);
        return NULL;
    }
    return c;
}

void push_cert_free(struct push_cert *c)
{
    if (c == NULL)
        return;
    SSL_CTX_free(c->ssl);
    free(c->topic);
    free(c);
}

const char *push_cert_topic(const struct push_cert *c)
{
    return c->topic;
}

int64_t push_cert_not_after(const struct push_cert *c)
{
    X509 *x = SSL_CTX_get0_certificate(c->ssl);
    struct tm tm;
    if (x == NULL || ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}

int push_cert_same(const struct push *p, const struct push_cert *c)
{
    X509 *a = p->ssl != NULL ? SSL_CTX_get0_certificate(p->ssl) : NULL;
    X509 *b = SSL_CTX_get0_certificate(c->ssl);
    return a != NULL && b != NULL && X509_cmp(a, b) == 0;
}

void push_cert_install(struct push *p, struct push_cert *c)
{
    /* Open SSLs hold their own reference to the old context. */
    SSL_CTX_free(p->ssl);
    free(p->topic);
    p->ssl = c->ssl;
    p->topic = c->topic;
    free(c);
    for (int i = 0; i < p->nconns; i++) {
        struct push_conn *k = &p->conns[i];
        if (k->state == PUSH_CONN_READY || k->state == PUSH_CONN_SETTINGS) {
            push_conn_stop_new_streams(k);
            (void)push_conn_flush(k);
        }
    }
    push_kick(p);
    log_info("event=push_cert_installed topic=%s", p->topic);
}
