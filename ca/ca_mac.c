#include "ca_mac.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

void ca_mac_hmac_sha256_hex(const char *key, size_t keylen, const void *data, size_t n,
                            char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    /* An empty key is a valid HMAC key; HMAC() wants a non-NULL pointer for it. */
    if (HMAC(EVP_sha256(), keylen ? key : "", (int)keylen, data, n, md, &mdlen) == NULL)
        mdlen = 0;
    for (unsigned int i = 0; i < mdlen && i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[mdlen < 32 ? 2 * mdlen : 64] = '\0';
}
