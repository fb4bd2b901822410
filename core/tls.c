#include "tls.h"
#include "log.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <string.h>

static const unsigned char tls_sid_ctx[] = "mdmd";

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
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (mode == TLS_CLIENT_CERT_REQUIRED
                                                   ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
    SSL_CTX_set_verify_depth(ctx, 4);
    if (SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) != 1) {
        log_ssl(LOG_LVL_ERR, "event=tls_purpose_failed");
        return -1;
    }
    return 0;
}

SSL_CTX *tls_server_ctx(const char *cert_file, const char *key_file, const char *ciphers,
                        const char *client_ca_file)
{
    return tls_server_ctx_clients(cert_file, key_file, ciphers, client_ca_file,
                                  client_ca_file != NULL ? TLS_CLIENT_CERT_REQUIRED
                                                         : TLS_CLIENT_CERT_NONE);
}

SSL_CTX *tls_server_ctx_clients(const char *cert_file, const char *key_file, const char *ciphers,
                                const char *client_ca_file, int mode)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        log_ssl(LOG_LVL_ERR, "event=tls_ctx_failed");
        return NULL;
    }
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

void tls_cert_fp(X509 *cert, char out[65])
{
    unsigned char md[32];
    unsigned int n = sizeof(md);
    if (X509_digest(cert, EVP_sha256(), md, &n) != 1 || n != sizeof(md)) {
        out[0] = '\0';
        return;
    }
    util_hex(md, n, out);
}
