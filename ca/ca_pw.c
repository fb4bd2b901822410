/* ca_pw.c: password hashing for users (PBKDF2-HMAC-SHA256).  Runs on the
 * crypto worker: every function here is pure CPU and thread-safe. */
#include "ca.h"

#include "../core/log.h"
#include "ca_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define CA_PW_PREFIX "pbkdf2-sha256$"
#define CA_PW_SALT_LEN 16
#define CA_PW_KEY_LEN 32
#define CA_PW_SALT_B64 24 /* base64 length of 16 bytes, padded */
#define CA_PW_KEY_B64 44  /* base64 length of 32 bytes, padded */

/* A hash of a password nobody knows, at the default cost: what an unknown
 * user's login is checked against, so it takes as long as a wrong password
 * and does not tell attackers which usernames exist. */
static const char ca_pw_dummy[] = CA_PW_PREFIX "600000$AAAAAAAAAAAAAAAAAAAAAA==$"
                                               "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

static int ca_pw_derive(const char *password, const unsigned char *salt, int iterations,
                        unsigned char key[CA_PW_KEY_LEN])
{
    if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, CA_PW_SALT_LEN, iterations,
                          EVP_sha256(), CA_PW_KEY_LEN, key) != 1) {
        ca_ssl_log(LOG_LVL_ERR, "event=pbkdf2_failed");
        return -1;
    }
    return 0;
}

int ca_pw_hash(const char *password, int iterations, char out[CA_PW_HASH_MAX])
{
    unsigned char salt[CA_PW_SALT_LEN], key[CA_PW_KEY_LEN];
    char salt64[CA_PW_SALT_B64 + 1], key64[CA_PW_KEY_B64 + 1];

    if (iterations < CA_PW_ITERATIONS || iterations > CA_PW_MAX_ITERATIONS)
        return -1;
    if (RAND_bytes(salt, sizeof(salt)) != 1) {
        ca_ssl_log(LOG_LVL_ERR, "event=pw_salt_failed");
        return -1;
    }
    if (ca_pw_derive(password, salt, iterations, key) != 0)
        return -1;
    EVP_EncodeBlock((unsigned char *)salt64, salt, sizeof(salt));
    EVP_EncodeBlock((unsigned char *)key64, key, sizeof(key));
    OPENSSL_cleanse(key, sizeof(key));
    int n = snprintf(out, CA_PW_HASH_MAX, CA_PW_PREFIX "%d$%s$%s", iterations, salt64, key64);
    return n > 0 && n < CA_PW_HASH_MAX ? 0 : -1;
}

/* Decodes exactly want bytes of padded base64 from the len characters at in. */
static int ca_pw_unbase64(const char *in, size_t len, unsigned char *out, size_t want)
{
    unsigned char buf[64];
    size_t expect = (want + 2) / 3 * 4;
    if (len != expect || len > 4 * sizeof(buf) / 3)
        return -1;
    /* EVP_DecodeBlock keeps the padding's zero bytes: check the length
     * instead of trusting its return value. */
    if (EVP_DecodeBlock(buf, (const unsigned char *)in, (int)len) != (int)(expect / 4 * 3))
        return -1;
    memcpy(out, buf, want);
    return 0;
}

/* Splits a stored hash into its parts; -1 when it is not our format. */
static int ca_pw_parse(const char *stored, int *iterations, unsigned char salt[CA_PW_SALT_LEN],
                       unsigned char key[CA_PW_KEY_LEN])
{
    size_t plen = strlen(CA_PW_PREFIX);
    char *end;
    if (strncmp(stored, CA_PW_PREFIX, plen) != 0)
        return -1;
    long it = strtol(stored + plen, &end, 10);
    if (end == stored + plen || *end != '$' || it < 1 || it > CA_PW_MAX_ITERATIONS)
        return -1;
    const char *s64 = end + 1, *dollar = strchr(s64, '$');
    if (dollar == NULL || ca_pw_unbase64(s64, (size_t)(dollar - s64), salt, CA_PW_SALT_LEN) != 0 ||
        ca_pw_unbase64(dollar + 1, strlen(dollar + 1), key, CA_PW_KEY_LEN) != 0)
        return -1;
    *iterations = (int)it;
    return 0;
}

int ca_pw_iterations(const char *stored)
{
    unsigned char salt[CA_PW_SALT_LEN], key[CA_PW_KEY_LEN];
    int it;
    return stored != NULL && ca_pw_parse(stored, &it, salt, key) == 0 ? it : -1;
}

int ca_pw_verify(const char *password, const char *stored)
{
    unsigned char salt[CA_PW_SALT_LEN], want[CA_PW_KEY_LEN], got[CA_PW_KEY_LEN];
    int it, known = stored != NULL;

    if (ca_pw_parse(known ? stored : ca_pw_dummy, &it, salt, want) != 0) {
        log_warn("event=password_hash_malformed");
        return 0;
    }
    if (ca_pw_derive(password, salt, it, got) != 0)
        return 0;
    int same = CRYPTO_memcmp(got, want, sizeof(got)) == 0;
    OPENSSL_cleanse(got, sizeof(got));
    return known && same;
}
