/* tls.h: server-side TLS contexts for the two listeners.
 * Contexts are reference counted by OpenSSL; each function returns a new
 * context the caller owns (SSL_CTX_free), or NULL with the reason logged. */
#ifndef MDMD_TLS_H
#define MDMD_TLS_H

#include <stddef.h>
#include "util.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct x509_st X509;

/* TLS 1.2+, server certificate and key from PEM files, session cache and
 * tickets on.  client_ca_file NULL: 1-way.  Otherwise every handshake must
 * present a client certificate that chains to a CA in that PEM file and is
 * valid for client authentication; a handshake without one fails. */
SSL_CTX *tls_server_ctx(const char *cert_file, const char *key_file, const char *ciphers,
                        const char *client_ca_file);

/* The same with a choice of client certificates (the MDM listener's
 * mdm_client_cert): REQUIRED is what tls_server_ctx() does with a CA file;
 * OPTIONAL asks for one and refuses a certificate that does not verify, but
 * not a handshake without one; NONE does not ask (client_ca_file unused). */
enum tls_client_cert { TLS_CLIENT_CERT_NONE, TLS_CLIENT_CERT_OPTIONAL, TLS_CLIENT_CERT_REQUIRED };
SSL_CTX *tls_server_ctx_clients(const char *cert_file, const char *key_file, const char *ciphers,
                                const char *client_ca_file, int mode);

/* The verified peer certificate of an established connection; borrowed,
 * valid while ssl is.  NULL when the peer sent none. */
X509 *tls_peer_cert(SSL *ssl);

/* The subject CN into out (NUL-terminated); -1 if none or too long. */
int tls_cert_cn(X509 *cert, char *out, size_t len) MDMD_MUSTCHECK;
/* SHA-256 of the DER certificate as 64 lowercase hex digits + NUL. */
void tls_cert_fp(X509 *cert, char out[65]);

#endif
