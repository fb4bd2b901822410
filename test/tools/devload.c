/* devload: writes N enrolled, idle devices into a Redis the way enrollment
 * does: through the store's own scripts (Authenticate, TokenUpdate, one Idle
 * poll), with the fields mdmsim sends, so make bench can weigh an idle device
 * at 100,000 devices without 100,000 TLS enrollments.
 *   devload REDIS_ADDR N [PREFIX]   (REDIS_ADDR: a socket path or host:port)
 * Prints "loaded=N failed=F seconds=S". */
#include "../../core/util.h"
#include "../../store/store.h"
#include "../../store/store_mdm.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEVLOAD_INFLIGHT 256

struct devload {
    struct event_base *base;
    struct store *store;
    const char *prefix;
    long n, next, done, failed;
    int inflight;
};

struct devload_dev {
    struct devload *dl;
    char udid[64], fp[65], token[65], magic[40], serial[16], name[32];
    int step; /* 0 Authenticate, 1 TokenUpdate, 2 Idle */
};

static void devload_step(struct devload_dev *d);
static void devload_more(struct devload *dl);

static void devload_finish(struct devload_dev *d, int ok)
{
    struct devload *dl = d->dl;
    dl->done++;
    dl->failed += !ok;
    dl->inflight--;
    free(d);
    devload_more(dl);
}

static void devload_on_checkin(void *arg, int err, int ident, int enrolled_now)
{
    struct devload_dev *d = arg;
    (void)enrolled_now;
    if (err != MDMD_OK || ident != STORE_ID_OK) {
        devload_finish(d, 0);
        return;
    }
    d->step++;
    devload_step(d);
}

static void devload_on_next(void *arg, int err, int ident, const char *uuid, const char *plist,
                            size_t len)
{
    (void)uuid;
    (void)plist;
    (void)len;
    devload_finish(arg, err == MDMD_OK && ident == STORE_ID_OK);
}

static void devload_step(struct devload_dev *d)
{
    struct store *s = d->dl->store;
    struct store_device_msg m = {d->udid, d->fp, util_now_ms(), NULL, 0, 0, 0, 0};
    if (d->step == 0) {
        const struct store_kv f[] = {
            {"topic", "com.apple.mgmt.External.bench", 29},
            {"serial_number", d->serial, strlen(d->serial)},
            {"product_name", "iPhone15,2", 10},
            {"model", "MQ9X3", 5},
            {"model_name", "iPhone", 6},
            {"os_version", "17.4.1", 6},
            {"build_version", "21E236", 6},
            {"device_name", d->name, strlen(d->name)},
        };
        m.fields = f;
        m.nfields = ARRAY_LEN(f);
        (void)store_authenticate(s, &m, devload_on_checkin, d);
    } else if (d->step == 1) {
        const struct store_kv f[] = {
            {"token", d->token, strlen(d->token)},
            {"push_magic", d->magic, strlen(d->magic)},
            {"topic", "com.apple.mgmt.External.bench", 29},
            {"awaiting_configuration", "false", 5},
        };
        m.fields = f;
        m.nfields = ARRAY_LEN(f);
        (void)store_token_update(s, &m, devload_on_checkin, d);
    } else {
        struct store_report r = {.dev = m,
                                 .status = "Idle",
                                 .uuid = "",
                                 .result = "",
                                 .error_chain = "",
                                 .history_len = 100,
                                 .history_max_bytes = 1048576};
        (void)store_report(s, &r, devload_on_next, d);
    }
}

static void devload_more(struct devload *dl)
{
    while (dl->inflight < DEVLOAD_INFLIGHT && dl->next < dl->n) {
        struct devload_dev *d = xcalloc(1, sizeof(*d));
        long i = dl->next++;
        d->dl = dl;
        snprintf(d->udid, sizeof(d->udid), "%s-%06ld", dl->prefix, i);
        snprintf(d->fp, sizeof(d->fp), "%064lx", 0xfb000000L + i);
        snprintf(d->token, sizeof(d->token), "%064lx", 0x70000000L + i);
        snprintf(d->magic, sizeof(d->magic), "%08lX-1111-2222-3333-444455556666", i);
        snprintf(d->serial, sizeof(d->serial), "F%010ld", i);
        snprintf(d->name, sizeof(d->name), "Bench iPhone %ld", i);
        dl->inflight++;
        devload_step(d);
    }
    if (dl->done == dl->n)
        event_base_loopexit(dl->base, NULL);
}

static void devload_on_ping(void *arg, int err);

static void devload_ping(evutil_socket_t fd, short what, void *arg)
{
    struct devload *dl = arg;
    (void)fd;
    (void)what;
    (void)store_ping(dl->store, devload_on_ping, dl);
}

/* The store connects in the background: ask again until it answers. */
static void devload_on_ping(void *arg, int err)
{
    static int tries;
    static const struct timeval again = {0, 100000};
    struct devload *dl = arg;
    if (err == MDMD_OK) {
        devload_more(dl);
    } else if (++tries < 100) {
        event_base_once(dl->base, -1, EV_TIMEOUT, devload_ping, dl, &again);
    } else {
        fprintf(stderr, "devload: redis not reachable\n");
        event_base_loopexit(dl->base, NULL);
    }
}

int main(int argc, char **argv)
{
    struct devload dl = {0};
    if (argc < 3) {
        fprintf(stderr, "usage: devload REDIS_ADDR N [PREFIX]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    dl.n = atol(argv[2]);
    dl.prefix = argc > 3 ? argv[3] : "LOAD";
    dl.base = event_base_new();
    dl.store = store_new(dl.base, argv[1], 30000);
    if (dl.store == NULL)
        return 1;
    int64_t t0 = util_mono_ms();
    devload_ping(-1, 0, &dl);
    event_base_dispatch(dl.base);
    printf("loaded=%ld failed=%ld seconds=%.1f\n", dl.done - dl.failed, dl.failed,
           (double)(util_mono_ms() - t0) / 1000.0);
    store_free(dl.store);
    event_base_free(dl.base);
    return dl.failed != 0 || dl.done != dl.n;
}
