/* store_argv.c: argument vectors for scripts (store_int.h).  Apart from
 * store.c so that the handler fuzz targets' fake Redis layer
 * (test/fuzz/fake_store.c, linked in place of store.o) uses these very
 * functions. */
#include "store_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/util.h"

void store_argv_init(struct store_argv *a)
{
    a->v = a->v0;
    a->len = a->len0;
    a->n = 0;
    a->cap = STORE_ARGV_INLINE;
    a->used = 0;
    a->heap = NULL;
    a->nheap = 0;
}

void store_argv_push(struct store_argv *a, const char *s, size_t len)
{
    if (a->n == a->cap) {
        int cap = 2 * a->cap;
        const char **v = xmalloc(sizeof(*v) * (size_t)cap);
        size_t *len_ = xmalloc(sizeof(*len_) * (size_t)cap);
        memcpy(v, a->v, sizeof(*v) * (size_t)a->n);
        memcpy(len_, a->len, sizeof(*len_) * (size_t)a->n);
        if (a->v != a->v0) {
            free(a->v);
            free(a->len);
        }
        a->v = v;
        a->len = len_;
        a->cap = cap;
    }
    a->v[a->n] = s;
    a->len[a->n++] = len;
}

void store_argv_str(struct store_argv *a, const char *s)
{
    store_argv_push(a, s, strlen(s));
}

void store_argv_fmt(struct store_argv *a, const char *fmt, ...)
{
    va_list ap;
    size_t room = sizeof(a->text) - a->used;
    va_start(ap, fmt);
    int n = vsnprintf(a->text + a->used, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n < room) {
        store_argv_push(a, a->text + a->used, (size_t)n);
        a->used += (size_t)n + 1;
        return;
    }
    char *s = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    a->heap = xrealloc(a->heap, sizeof(*a->heap) * (size_t)(a->nheap + 1));
    a->heap[a->nheap++] = s;
    store_argv_push(a, s, (size_t)n);
}

void store_argv_free(struct store_argv *a)
{
    for (int i = 0; i < a->nheap; i++)
        free(a->heap[i]);
    free(a->heap);
    if (a->v != a->v0) {
        free(a->v);
        free(a->len);
    }
    store_argv_init(a);
}

struct store_op *store_argv_script(struct store *s, const char *lua, int nkeys,
                                   struct store_argv *a, store_reply_fn *reply, union store_cb cb,
                                   void *arg)
{
    struct store_op *op = store_op_new(s, cb, arg);
    op = store_cmd_script(s, store_script_get(s, lua), nkeys, a->n, a->v, a->len, reply, op);
    store_argv_free(a);
    return op;
}
