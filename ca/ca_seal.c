/* ca_seal.c: AES-256-GCM for secrets at rest (ca_seal.h). */
#include "ca_seal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/log.h"

#define CA_SEAL_KEY_LEN 32
#define CA_SEAL_NONCE_LEN 12
#define CA_SEAL_TAG_LEN 16
#define CA_SEAL_MAX_KEYS 64
#define CA_SEAL_MAX_IN (64 * 1024)

struct ca_seal_key {
    char id[CA_SEAL_ID_LEN];
    unsigned char key[CA_SEAL_KEY_LEN];
};

static int ca_seal_unhex(const char *h, unsigned char *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(h + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (unsigned char)v;
    }
    return 0;
}

/* Up to max keys, the newest first; the count, or -1. */
static int ca_seal_load(const char *path, struct ca_seal_key *k, int max)
{
    FILE *f = fopen(path, "r");
    char line[160], hex[80];
    int n = 0;
    if (f == NULL) {
        log_err("event=seal_key_unreadable path=%s error=\"%s\"", path, strerror(errno));
        return -1;
    }
    while (n < max && fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "%16s %64s", k[n].id, hex) != 2 || strlen(k[n].id) != 16 ||
            strlen(hex) != 64 || ca_seal_unhex(hex, k[n].key, CA_SEAL_KEY_LEN) != 0) {
            log_err("event=seal_key_malformed path=%s line=%d", path, n + 1);
            n = -1;
            break;
        }
        n++;
    }
    fclose(f);
    if (n == 0)
        log_err("event=seal_key_empty path=%s", path);
    OPENSSL_cleanse(line, sizeof(line));
    OPENSSL_cleanse(hex, sizeof(hex));
    return n > 0 ? n : -1;
}

/* Writes keys to path through a 0600 temporary file and rename(2). */
static int ca_seal_save(const char *path, const struct ca_seal_key *k, int n)
{
    char *tmp = xasprintf("%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600), rc = fd >= 0 ? 0 : -1;
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    for (int i = 0; f != NULL && i < n; i++) {
        fprintf(f, "%s ", k[i].id);
        for (int j = 0; j < CA_SEAL_KEY_LEN; j++)
            fprintf(f, "%02x", k[i].key[j]);
        fputc('\n', f);
    }
    if (f == NULL || fflush(f) != 0 || fsync(fileno(f)) != 0)
        rc = -1;
    if (f != NULL)
        fclose(f);
    else if (fd >= 0)
        close(fd);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -1;
    if (rc != 0) {
        log_err("event=seal_key_write_failed path=%s error=\"%s\"", path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return rc;
}

static int ca_seal_new_key(struct ca_seal_key *k)
{
    unsigned char id[8];
    if (RAND_bytes(id, sizeof(id)) != 1 || RAND_bytes(k->key, sizeof(k->key)) != 1)
        return -1;
    for (size_t i = 0; i < sizeof(id); i++)
        snprintf(k->id + 2 * i, 3, "%02x", id[i]);
    return 0;
}

int ca_seal_keyfile_init(const char *path)
{
    struct stat st;
    struct ca_seal_key k[CA_SEAL_MAX_KEYS];
    if (stat(path, &st) == 0) {
        if ((st.st_mode & 077) != 0)
            log_warn("event=seal_key_mode path=%s mode=%03o want=600", path,
                     (unsigned)(st.st_mode & 0777));
        int n = ca_seal_load(path, k, CA_SEAL_MAX_KEYS);
        OPENSSL_cleanse(k, sizeof(k));
        return n > 0 ? 0 : -1;
    }
    if (ca_seal_new_key(&k[0]) != 0 || ca_seal_save(path, k, 1) != 0)
        return -1;
    log_info("event=seal_key_created path=%s id=%s", path, k[0].id);
    OPENSSL_cleanse(k, sizeof(k));
    return 0;
}

int ca_seal_rotate(const char *path, char id[CA_SEAL_ID_LEN])
{
    struct ca_seal_key k[CA_SEAL_MAX_KEYS + 1];
    int n = ca_seal_load(path, k + 1, CA_SEAL_MAX_KEYS - 1);
    int rc = n > 0 && ca_seal_new_key(&k[0]) == 0 ? ca_seal_save(path, k, n + 1) : -1;
    if (rc == 0)
        memcpy(id, k[0].id, CA_SEAL_ID_LEN);
    OPENSSL_cleanse(k, sizeof(k));
    return rc;
}

int ca_seal_prune(const char *path, const char *const *keep, size_t nkeep, int *dropped)
{
    struct ca_seal_key k[CA_SEAL_MAX_KEYS];
    int n = ca_seal_load(path, k, CA_SEAL_MAX_KEYS), m = n > 0 ? 1 : 0;
    for (int i = 1; i < n; i++) {
        int used = 0;
        for (size_t j = 0; j < nkeep && !used; j++)
            used = strcmp(keep[j], k[i].id) == 0;
        if (used)
            k[m++] = k[i];
    }
    int rc = n > 0 ? ca_seal_save(path, k, m) : -1;
    *dropped = rc == 0 ? n - m : 0;
    OPENSSL_cleanse(k, sizeof(k));
    return rc;
}

int ca_seal_key_id(const char *sealed, char id[CA_SEAL_ID_LEN])
{
    if (strncmp(sealed, "s1:", 3) != 0 || strlen(sealed) < 20 || sealed[19] != ':')
        return -1;
    memcpy(id, sealed + 3, 16);
    id[16] = '\0';
    return 0;
}

/* AES-256-GCM one way or the other; out has room for len bytes.  0 or -1. */
static int ca_seal_gcm(int enc, const unsigned char *key, const unsigned char *nonce,
                       const char *aad, const unsigned char *in, size_t len, unsigned char *out,
                       unsigned char *tag)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0,
        ok = c != NULL && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce, enc) == 1;
    ok = ok && EVP_CipherUpdate(c, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) == 1;
    ok = ok && EVP_CipherUpdate(c, out, &n, in, (int)len) == 1;
    if (ok && !enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, CA_SEAL_TAG_LEN, tag) == 1;
    ok = ok && EVP_CipherFinal_ex(c, out + n, &n) == 1;
    if (ok && enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, CA_SEAL_TAG_LEN, tag) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : -1;
}

char *ca_seal(const char *path, const char *context, const void *in, size_t len)
{
    struct ca_seal_key k;
    size_t blen = CA_SEAL_NONCE_LEN + len + CA_SEAL_TAG_LEN;
    char *out = NULL, *aad = xasprintf("mdmd-seal:%s", context);
    unsigned char *buf = xmalloc(blen);
    if (len <= CA_SEAL_MAX_IN && ca_seal_load(path, &k, 1) == 1 &&
        RAND_bytes(buf, CA_SEAL_NONCE_LEN) == 1 &&
        ca_seal_gcm(1, k.key, buf, aad, in, len, buf + CA_SEAL_NONCE_LEN,
                    buf + CA_SEAL_NONCE_LEN + len) == 0) {
        char *b64 = xmalloc(4 * ((blen + 2) / 3) + 1);
        EVP_EncodeBlock((unsigned char *)b64, buf, (int)blen);
        out = xasprintf("s1:%s:%s", k.id, b64);
        free(b64);
    }
    OPENSSL_cleanse(&k, sizeof(k));
    free(aad);
    free(buf);
    return out;
}

static unsigned char *ca_seal_unb64(const char *b64, size_t *n)
{
    size_t l = strlen(b64);
    if (l == 0 || l % 4 != 0 || l > 2 * CA_SEAL_MAX_IN)
        return NULL;
    unsigned char *out = xmalloc(l / 4 * 3 + 1);
    int r = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)l);
    if (r < 0) {
        free(out);
        return NULL;
    }
    *n = (size_t)r - (b64[l - 1] == '=') - (b64[l - 2] == '=');
    return out;
}

unsigned char *ca_unseal(const char *path, const char *context, const char *sealed, size_t *len)
{
    struct ca_seal_key k[CA_SEAL_MAX_KEYS];
    size_t n = 0;
    int nk = strncmp(sealed, "s1:", 3) == 0 && strlen(sealed) > 20 && sealed[19] == ':'
                 ? ca_seal_load(path, k, CA_SEAL_MAX_KEYS)
                 : -1;
    unsigned char *raw = nk > 0 ? ca_seal_unb64(sealed + 20, &n) : NULL, *out = NULL;
    const struct ca_seal_key *key = NULL;
    for (int i = 0; i < nk; i++)
        if (strncmp(k[i].id, sealed + 3, 16) == 0)
            key = &k[i];
    if (raw != NULL && key != NULL && n >= CA_SEAL_NONCE_LEN + CA_SEAL_TAG_LEN) {
        char *aad = xasprintf("mdmd-seal:%s", context);
        size_t pl = n - CA_SEAL_NONCE_LEN - CA_SEAL_TAG_LEN;
        out = xmalloc(pl + 1);
        if (ca_seal_gcm(0, key->key, raw, aad, raw + CA_SEAL_NONCE_LEN, pl, out,
                        raw + CA_SEAL_NONCE_LEN + pl) != 0) {
            free(out);
            out = NULL;
        } else {
            *len = pl;
        }
        free(aad);
    }
    if (out == NULL)
        log_warn("event=unseal_failed reason=%s", nk <= 0       ? "no_key_or_format"
                                                  : key == NULL ? "unknown_key_id"
                                                                : "bad_text_or_tag");
    OPENSSL_cleanse(k, sizeof(k));
    free(raw);
    return out;
}
