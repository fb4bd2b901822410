/* tls.h: server-side TLS contexts for the two listeners.
 * Contexts are reference counted by OpenSSL; each function returns a new
 * context the caller owns (SSL_CTX_free), or NULL with the reason logged.
 * Loop thread only (log budget and caches are unlocked).
 *
 * A handshake the server refuses is logged once, at most 20 lines a second
 * (the next line written carries suppressed=N for the ones dropped):
 *   level=warn event=tls_refused listener=mdm peer=1.2.3.4:5678 reason=R
 *       [depth=D subject="/CN=.." issuer="/CN=.." detail="<OpenSSL text>"]
 * R for a certificate: certificate_expired, certificate_not_yet_valid,
 * unknown_ca, wrong_key_usage, else OpenSSL's verify error in snake_case;
 * otherwise no_client_certificate, unsupported_protocol, not_tls,
 * plain_http, no_shared_cipher, ... (OpenSSL's reason in snake_case).
 * Not warnings: client_alert_* (the client refused us) and client_dropped /
 * client_closed at info, or debug when nothing was received (port probes).
 * listener is "public" for tls_server_ctx() without a CA file, else "mdm". */
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
/* SHA-256 of the DER certificate as 64 lowercase hex digits + NUL; ""
 * on failure.  Computed once per X509 object and kept on it (ex_data, freed
 * with it): loop thread only, since the first call stores without a lock. */
void tls_cert_fp(X509 *cert, char out[65]);

#endif
