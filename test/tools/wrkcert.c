/* wrkcert.so: an LD_PRELOAD shim that makes wrk (which has no option for
 * it) present a client certificate, so that it can drive the mutual-TLS MDM
 * listener.  WRKCERT_FILE names a PEM file: a private key, then one or more
 * certificates for it (mdmsim's --identities file).  Each wrk thread takes the
 * next certificate, in the order the threads first open a connection; its
 * Lua script asks wrkcert_cn() which device that is (LuaJIT's ffi).  Built by
 * the Makefile as $(BIN)/wrkcert.so; used by test/bench_wrk.sh only. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

const char *wrkcert_cn(void);
SSL *SSL_new(SSL_CTX *ctx);

#define WRKCERT_MAX 4096

static pthread_once_t wrkcert_once = PTHREAD_ONCE_INIT;
static EVP_PKEY *wrkcert_key;
static X509 *wrkcert_certs[WRKCERT_MAX];
static char wrkcert_cns[WRKCERT_MAX][128];
static int wrkcert_n;
static atomic_int wrkcert_next;
static __thread int wrkcert_mine = -1; /* this thread's certificate */
static SSL *(*wrkcert_real_new)(SSL_CTX *);

static void wrkcert_load(void)
{
    const char *path = getenv("WRKCERT_FILE");
    wrkcert_real_new = (SSL * (*)(SSL_CTX *)) dlsym(RTLD_NEXT, "SSL_new");
    FILE *f = path != NULL ? fopen(path, "r") : NULL;
    if (f == NULL) {
        fprintf(stderr, "wrkcert: WRKCERT_FILE unset or unreadable: no client certificate\n");
        return;
    }
    wrkcert_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    X509 *x;
    while (wrkcert_n < WRKCERT_MAX && (x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, wrkcert_cns[wrkcert_n],
                                  sizeof(wrkcert_cns[0]));
        wrkcert_certs[wrkcert_n++] = x;
    }
    fclose(f);
    if (wrkcert_key == NULL || wrkcert_n == 0)
        fprintf(stderr, "wrkcert: %s: no key or no certificate\n", path);
}

SSL *SSL_new(SSL_CTX *ctx)
{
    pthread_once(&wrkcert_once, wrkcert_load);
    SSL *ssl = wrkcert_real_new(ctx);
    if (ssl == NULL || wrkcert_key == NULL || wrkcert_n == 0)
        return ssl;
    if (wrkcert_mine < 0)
        wrkcert_mine = atomic_fetch_add(&wrkcert_next, 1) % wrkcert_n;
    if (SSL_use_certificate(ssl, wrkcert_certs[wrkcert_mine]) != 1 ||
        SSL_use_PrivateKey(ssl, wrkcert_key) != 1)
        fprintf(stderr, "wrkcert: certificate %d does not fit the key\n", wrkcert_mine);
    return ssl;
}

/* The CN (the UDID) of the calling thread's certificate; "" before its
 * first connection. */
const char *wrkcert_cn(void)
{
    return wrkcert_mine >= 0 ? wrkcert_cns[wrkcert_mine] : "";
}
