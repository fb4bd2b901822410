/* util.h: allocation that never returns NULL (failure is fatal, as in h2o),
 * and small string helpers.  All returned memory is owned by the caller. */
#ifndef MDMD_UTIL_H
#define MDMD_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define MDMD_MUSTCHECK __attribute__((warn_unused_result))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Lowercase hex of len bytes into out (2*len+1 bytes). */
void util_hex(const uint8_t *in, size_t len, char *out);
/* Milliseconds since the epoch / of a monotonic clock. */
int64_t util_now_ms(void);
int64_t util_mono_ms(void);
/* mkdir -p with mode for each created level; 0 or -1 (errno set). */
int util_mkdirs(const char *path, int mode) MDMD_MUSTCHECK;
/* Reads a whole file; caller frees *out.  0 or -1 (errno set). */
int util_read_file(const char *path, char **out, size_t *len) MDMD_MUSTCHECK;
/* Writes via a temp file + rename so readers never see half a file. */
int util_write_file(const char *path, const void *data, size_t len, int mode) MDMD_MUSTCHECK;

/* Fills buf with len random bytes from the kernel; aborts if it cannot. */
void util_random(void *buf, size_t len);
/* A random (version 4) UUID, upper case as Apple writes them. */
void util_uuid(char out[37]);
/* Constant-time comparison of two NUL-terminated secrets; 1 when equal. */
int util_secret_eq(const char *a, const char *b) MDMD_MUSTCHECK;
/* A UDID mdmd accepts (it goes inside Redis key names): [A-Za-z0-9._-]{1,64}.
 * Also what makes a SCEP request's CN a UDID. */
int util_udid_valid(const char *u, size_t n) MDMD_MUSTCHECK;
/* A device or one of its user channels, "<UDID>:<user>" (docs/REDIS.md). */
#define UTIL_CHANNEL_USER_MAX 128
#define UTIL_CHANNEL_MAX (64 + 1 + UTIL_CHANNEL_USER_MAX + 1) /* with the NUL */
int util_channel_valid(const char *u, size_t n) MDMD_MUSTCHECK;

/* Errors that travel through async callbacks. */
enum mdmd_err {
    MDMD_OK = 0,
    MDMD_EUNAVAIL,  /* backend not connected */
    MDMD_ETIMEDOUT, /* our own per-operation timer fired */
    MDMD_EPROTO,    /* unexpected reply shape */
    MDMD_ENOTFOUND,
    MDMD_ECANCELED,
    MDMD_ECONFLICT, /* the key exists with other content (a CommandUUID reused) */
};
const char *mdmd_strerror(int err);

#endif
