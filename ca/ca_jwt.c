/* ca_jwt.c: RS256 JSON Web Tokens (ca_jwt.h). */
#include "ca_jwt.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "../core/util.h"

/* base64url without padding (RFC 7515 2). */
static char *ca_jwt_b64url(const unsigned char *in, size_t n)
{
    char *out = xmalloc(4 * ((n + 2) / 3) + 1);
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    while (len > 0 && out[len - 1] == '=')
        len--;
    out[len] = '\0';
    for (int i = 0; i < len; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    return out;
}

static EVP_PKEY *ca_jwt_key(const char *path)
{
    FILE *f = fopen(path, "r");
    EVP_PKEY *k = f != NULL ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f != NULL)
        fclose(f);
    if (k != NULL && EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA) {
        log_err("event=jwt_key_refused path=%s reason=not_rsa", path);
        EVP_PKEY_free(k);
        return NULL;
    }
    if (k == NULL)
        log_err("event=jwt_key_unreadable path=%s", path);
    return k;
}

char *ca_jwt_rs256(const char *key_path, const char *claims_json)
{
    static const char header[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
    EVP_PKEY *k = ca_jwt_key(key_path);
    if (k == NULL)
        return NULL;
    char *h = ca_jwt_b64url((const unsigned char *)header, strlen(header));
    char *c = ca_jwt_b64url((const unsigned char *)claims_json, strlen(claims_json));
    char *input = xasprintf("%s.%s", h, c), *out = NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t slen = 0;
    unsigned char *sig = NULL;
    int ok = md != NULL && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k) == 1 &&
             EVP_DigestSign(md, NULL, &slen, (const unsigned char *)input, strlen(input)) == 1;
    if (ok) {
        sig = xmalloc(slen);
        ok = EVP_DigestSign(md, sig, &slen, (const unsigned char *)input, strlen(input)) == 1;
    }
    if (ok) {
        char *s = ca_jwt_b64url(sig, slen);
        out = xasprintf("%s.%s", input, s);
        free(s);
    } else {
        log_ssl(LOG_LVL_ERR, "event=jwt_sign_failed");
    }
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(k);
    free(sig);
    free(input);
    free(h);
    free(c);
    return out;
}
