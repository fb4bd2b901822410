/* Fuzz target: what APNs sends back over HTTP/2.  The bytes go into the
 * real client of push/ (push_new_loopback: the nghttp2 session, its
 * callbacks, answer and reason parsing, retries, GOAWAY and reconnects), as
 * if read from the server while pushes are in flight; every push must get
 * exactly one callback, and push_free() must leave nothing behind.
 *
 * Input:
 *   byte 0      bits 0-3: pushes sent at the start, minus 1
 *               bit 4: two connections instead of one
 *               bit 5: each callback sends one more push (up to FZ_MAX_PUSHES)
 *               bit 6: at most 2 streams per connection (others queue)
 *   records     [ctl][len: 2 bytes, big-endian][len bytes from the server]
 *               ctl bit 0: connection index; bit 7: first let the retry and
 *               reconnect timers (1 ms here) fire.  A short last record
 *               takes what is left.
 * The loop runs (without blocking) after each record, as after a read.
 * The client's stream ids are 1, 3, 5... in the order the pushes were sent,
 * once the server's SETTINGS arrived; after a reconnect they start again.
 * Seeds: test/fuzz/gen_apns_corpus.py writes test/fuzz/corpus/apns/.
 * FUZZ_APNS_LOG=debug shows push/'s log lines. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "../../core/log.h"
#include "../../push/push.h"

#define FZ_MAX_PUSHES 32
#define FZ_MAX_TICKS 4

struct fz {
    struct push *p;
    int accepted; /* push_send() returned 0 */
    int done;     /* callbacks run */
    int resend;   /* byte 0 bit 5 */
};

static struct event_base *fz_base;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static void fz_send(struct fz *f);

static void fz_on_done(void *arg, const struct push_result *res)
{
    struct fz *f = arg;
    if (res->outcome > PUSH_CANCELED || res->reason == NULL || res->apns_id == NULL ||
        res->status < 0 || res->status > 999 || (res->status > 0 && res->status < 200)) {
        /* An interim 1xx is never the answer (regress/apns/interim-*). */
        fprintf(stderr, "fuzz_apns: bad result outcome=%d status=%d\n", (int)res->outcome,
                res->status);
        abort();
    }
    (void)strlen(res->reason); /* ASan: both are readable strings */
    (void)strlen(res->apns_id);
    f->done++;
    if (f->resend && res->outcome != PUSH_CANCELED)
        fz_send(f);
}

static void fz_send(struct fz *f)
{
    char token[PUSH_TOKEN_HEX_LEN + 1];
    if (f->accepted >= FZ_MAX_PUSHES)
        return;
    snprintf(token, sizeof(token), "%064x", f->accepted);
    if (push_send(f->p, token, "7e3d7a3c-1b8f-4c8e-9c6e-0d5e4f6a7b8c", fz_on_done, f) == 0)
        f->accepted++;
}

/* Lets the 1 ms timers expire and run, bounded in time. */
static void fz_tick(void)
{
    struct timeval tv = {0, 2000};
    event_base_loopexit(fz_base, &tv);
    event_base_dispatch(fz_base);
}

static void fz_setup(void)
{
    const char *lvl = getenv("FUZZ_APNS_LOG");
    log_level = lvl != NULL ? log_level_parse(lvl) : -1; /* -1: silent */
    fz_base = event_base_new();
    if (fz_base == NULL)
        abort();
}

static struct push *fz_push_new(uint8_t cfg)
{
    struct push *p = push_new_loopback(fz_base, (cfg & 0x10) ? 2 : 1);
    struct push_tuning t;
    push_get_tuning(p, &t);
    t.retry_base_ms = t.retry_cap_ms = 1;
    t.reconnect_base_ms = t.reconnect_cap_ms = 1;
    t.max_attempts = 3;
    if (cfg & 0x40)
        t.max_streams = 2;
    push_set_tuning(p, &t);
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    if (fz_base == NULL)
        fz_setup();
    if (len < 1)
        return 0;
    struct fz f = {.p = fz_push_new(data[0]), .resend = (data[0] & 0x20) != 0};
    int npush = (data[0] & 0x0f) + 1, ticks = 0;
    for (int i = 0; i < npush; i++)
        fz_send(&f);
    event_base_loop(fz_base, EVLOOP_NONBLOCK); /* connect, then SETTINGS out */
    for (size_t off = 1; off + 3 <= len;) {
        uint8_t ctl = data[off];
        size_t n = (size_t)data[off + 1] << 8 | data[off + 2];
        off += 3;
        if (n > len - off)
            n = len - off;
        if ((ctl & 0x80) && ticks++ < FZ_MAX_TICKS)
            fz_tick();
        int down = push_loopback_recv(f.p, ctl & 1, data + off, n) < 0; /* dropped */
        off += n;
        if (!down)
            event_base_loop(fz_base, EVLOOP_NONBLOCK);
    }
    push_free(f.p);
    /* bufferevents are finalized from the loop: let it run, then check. */
    event_base_loop(fz_base, EVLOOP_NONBLOCK);
    if (f.done != f.accepted) {
        fprintf(stderr, "fuzz_apns: %d pushes, %d callbacks\n", f.accepted, f.done);
        abort();
    }
    if (event_base_get_num_events(fz_base, EVENT_BASE_COUNT_ADDED | EVENT_BASE_COUNT_ACTIVE) > 0) {
        fprintf(stderr, "fuzz_apns: events left on the loop after push_free\n");
        abort();
    }
    return 0;
}
