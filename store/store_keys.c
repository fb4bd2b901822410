/* store_keys.c: key names of the layout pushed onto argument vectors
 * (store_int.h). */
#include "store_int.h"

#include <stdarg.h>
#include <stdio.h>

void store_argv_gkey(struct store_argv *a, const struct store *s, const char *fmt, ...)
{
    char rest[512], key[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rest, sizeof(rest), fmt, ap);
    va_end(ap);
    store_argv_fmt(a, "%s", store_global_key(s, key, sizeof(key), rest));
}

void store_argv_bkey(struct store_argv *a, const struct store *s, const char *base, int bucket)
{
    char key[256];
    store_argv_fmt(a, "%s", store_bucket_key(s, key, sizeof(key), base, bucket));
}
