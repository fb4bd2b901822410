#include "util.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static void util_oom(size_t n)
{
    log_err("event=out_of_memory bytes=%zu", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        util_oom(n);
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        util_oom(n * size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        util_oom(n);
    return q;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* Formatted on the stack first: glibc's vasprintf sets up a string stream,
 * allocates, and reallocates to size (the record fields of every command
 * result come through here). */
char *xasprintf(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        util_oom(0);
    char *p = xmalloc((size_t)n + 1);
    if ((size_t)n < sizeof(buf)) {
        memcpy(p, buf, (size_t)n + 1);
        return p;
    }
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void util_hex(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

int64_t util_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

int64_t util_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int util_mkdirs(const char *path, int mode)
{
    char *p = xstrdup(path);
    int rc = 0;
    for (char *s = p + 1; rc == 0; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, (mode_t)mode) != 0 && errno != EEXIST)
            rc = -1;
        *s = c;
        if (c == '\0')
            break;
    }
    free(p);
    return rc;
}

int util_read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    size_t cap = 4096, n = 0;
    if (f == NULL)
        return -1;
    char *buf = xmalloc(cap + 1);
    for (;;) {
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (n < cap)
            break;
        cap *= 2;
        buf = xrealloc(buf, cap + 1);
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        errno = EIO;
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    if (len != NULL)
        *len = n;
    return 0;
}

int util_write_file(const char *path, const void *data, size_t len, int mode)
{
    char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode);
    int rc = -1;
    if (fd >= 0) {
        const char *p = data;
        size_t left = len;
        while (left > 0) {
            ssize_t w = write(fd, p, left);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break;
            p += w;
            left -= (size_t)w;
        }
        int ok = left == 0 && fsync(fd) == 0;
        if (close(fd) != 0)
            ok = 0;
        if (ok)
            rc = rename(tmp, path);
        if (rc != 0)
            unlink(tmp);
    }
    free(tmp);
    return rc;
}

const char *mdmd_strerror(int err)
{
    switch (err) {
    case MDMD_OK: return "ok";
    case MDMD_EUNAVAIL: return "unavailable";
    case MDMD_ETIMEDOUT: return "timeout";
    case MDMD_EPROTO: return "protocol";
    case MDMD_ENOTFOUND: return "not_found";
    case MDMD_ECANCELED: return "canceled";
    case MDMD_ECONFLICT: return "conflict";
    }
    return "unknown";
}

void util_random(void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            log_err("event=getrandom_failed errno=%d", errno);
            abort();
        }
        p += n;
        len -= (size_t)n;
    }
}

void util_uuid(char out[37])
{
    uint8_t b[16];
    util_random(b, sizeof(b));
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

int util_secret_eq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = la != lb;
    for (size_t i = 0; i < la; i++)
        diff |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
    return diff == 0 && lb > 0;
}

/* UDIDs end up inside Redis key names with a hash tag: refuse anything
 * that could break out of it. */
int util_udid_valid(const char *u, size_t n)
{
    static const char ok[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_.";
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (u[i] == '\0' || strchr(ok, u[i]) == NULL)
            return 0;
    return 1;
}

/* "<UDID>" or "<UDID>:<user>": the user part (a user channel) is 1 to
 * UTIL_CHANNEL_USER_MAX of the UDID characters and '@' (Managed Apple
 * Accounts); ':' is no UDID character, so the split is unambiguous. */
int util_channel_valid(const char *u, size_t n)
{
    static const char ok[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_.@";
    const char *colon = memchr(u, ':', n);
    if (colon == NULL)
        return util_udid_valid(u, n);
    size_t k = (size_t)(colon - u), un = n - k - 1;
    if (!util_udid_valid(u, k) || un == 0 || un > UTIL_CHANNEL_USER_MAX)
        return 0;
    for (size_t i = 0; i < un; i++)
        if (colon[1 + i] == '\0' || strchr(ok, colon[1 + i]) == NULL)
            return 0;
    return 1;
}
