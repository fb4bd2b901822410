#include "feed.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/app.h"
#include "../../core/conf.h"
#include "../../core/http.h"
#include "../../core/log.h"
#include "../../store/store.h"
#include "../../store/store_fleet.h"

#define FEED_ID_MAX 48

struct feed_stream {
    struct feed *f;
    struct http_stream *hs;
    struct store_op *op; /* the read in flight, at most one */
    char cursor[FEED_ID_MAX];
    int backlog; /* the first read's */
    int64_t last_write;
    struct feed_stream *prev, *next;
};

struct feed {
    struct store *store;
    const struct app *app;
    struct event *tick;
    struct feed_stream *list;
    int stopping;
    struct feed_stats st;
};

static void feed_stream_read(struct feed_stream *s);

static void feed_unlink(struct feed_stream *s)
{
    struct feed *f = s->f;
    if (s->op != NULL)
        store_op_cancel(s->op);
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        f->list = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    f->st.open--;
    free(s);
}

/* 0, or -1 when the stream was dropped (s is gone). */
static int feed_write(struct feed_stream *s, const char *data, size_t len)
{
    if (http_stream_write(s->hs, data, len) != 0) {
        s->f->st.dropped++;
        feed_unlink(s);
        return -1;
    }
    s->last_write = util_mono_ms();
    return 0;
}

static void feed_on_close(void *arg)
{
    feed_unlink(arg);
}

static int feed_id_ok(const char *id)
{
    size_t ms = strspn(id, "0123456789");
    return ms >= 1 && ms <= 20 && id[ms] == '-' && strspn(id + ms + 1, "0123456789") >= 1 &&
           strspn(id + ms + 1, "0123456789") <= 20 &&
           id[ms + 1 + strspn(id + ms + 1, "0123456789")] == '\0';
}

/* One event as an SSE message: id, then data, the fields with the id. */
static void feed_format(json_t *e, char **buf, size_t *len, size_t *cap)
{
    const char *id = json_string_value(json_array_get(e, 0));
    json_t *fields = json_array_get(e, 1);
    if (id == NULL || !json_is_object(fields))
        return;
    json_object_set_new(fields, "id", json_string(id));
    char *data = json_dumps(fields, JSON_COMPACT);
    if (data == NULL)
        return;
    size_t need = strlen(id) + strlen(data) + 16;
    if (*len + need > *cap) {
        *cap = (*len + need) * 2;
        *buf = xrealloc(*buf, *cap);
    }
    *len += (size_t)snprintf(*buf + *len, *cap - *len, "id: %s\ndata: %s\n\n", id, data);
    free(data);
}

static void feed_on_read(void *arg, int err, long long num, const char *str, size_t slen)
{
    struct feed_stream *s = arg;
    s->op = NULL;
    json_t *j = err == MDMD_OK && str != NULL ? json_loadb(str, slen, 0, NULL) : NULL;
    const char *last = json_string_value(json_object_get(j, "last"));
    json_t *evs = json_object_get(j, "events");
    if (last == NULL || !json_is_array(evs) || !feed_id_ok(last)) {
        log_debug("event=feed_read_failed err=%d", err);
        json_decref(j);
        return; /* the next tick tries again from the same cursor */
    }
    size_t len = 0, cap = 4096, i;
    char *buf = xmalloc(cap);
    buf[0] = '\0';
    if (json_is_true(json_object_get(j, "gap")))
        len += (size_t)snprintf(buf, cap, "event: gap\ndata: {\"after\":\"%s\"}\n\n", s->cursor);
    json_t *e;
    json_array_foreach(evs, i, e) feed_format(e, &buf, &len, &cap);
    size_t n = json_array_size(evs);
    snprintf(s->cursor, sizeof(s->cursor), "%s", last);
    json_decref(j);
    s->f->st.events += n;
    int gone = len > 0 && feed_write(s, buf, len) != 0;
    free(buf);
    if (gone)
        return;
    /* A full batch: more are waiting.  Go on while the reader keeps up. */
    if (n == FEED_BATCH &&
        http_stream_buffered(s->hs) < (size_t)s->f->app->cf->feed_stream_buffer / 2)
        feed_stream_read(s);
}

static void feed_stream_read(struct feed_stream *s)
{
    if (s->op != NULL)
        return;
    s->op =
        store_fleet_events_read(s->f->store, s->cursor, FEED_BATCH, s->backlog, feed_on_read, s);
}

static void feed_arm(struct feed *f)
{
    int ms = f->app->cf->feed_poll_ms;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(f->tick, &tv);
}

static void feed_on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct feed *f = arg;
    int64_t now = util_mono_ms(), hb = (int64_t)f->app->cf->feed_heartbeat_s * 1000;
    struct feed_stream *s, *next;
    for (s = f->list; s != NULL; s = next) {
        next = s->next;
        if (now - s->last_write >= hb && feed_write(s, ": ping\n\n", 8) != 0)
            continue;
        feed_stream_read(s);
    }
    if (f->list != NULL)
        feed_arm(f);
}

struct feed *feed_new(struct event_base *base, struct store *store, const struct app *app)
{
    struct feed *f = xcalloc(1, sizeof(*f));
    f->store = store;
    f->app = app;
    f->tick = evtimer_new(base, feed_on_tick, f);
    return f;
}

void feed_stop(struct feed *f)
{
    if (f == NULL)
        return;
    f->stopping = 1;
    evtimer_del(f->tick);
    while (f->list != NULL) {
        struct http_stream *hs = f->list->hs;
        feed_unlink(f->list);
        http_stream_end(hs);
    }
}

void feed_free(struct feed *f)
{
    if (f == NULL)
        return;
    feed_stop(f);
    event_free(f->tick);
    free(f);
}

/* The cursor a request asks for: Last-Event-ID (a reconnecting EventSource)
 * or ?last_event_id=; "" for none; -1 when malformed. */
static int feed_cursor(struct req *req, char out[FEED_ID_MAX])
{
    const char *h = req_header(req, "Last-Event-ID");
    char *q = h == NULL ? req_query_param(req, "last_event_id") : NULL;
    const char *id = h != NULL ? h : q;
    int rc = 0;
    out[0] = '\0';
    if (id != NULL && *id != '\0') {
        if (strlen(id) < FEED_ID_MAX && feed_id_ok(id))
            snprintf(out, FEED_ID_MAX, "%s", id);
        else
            rc = -1;
    }
    free(q);
    return rc;
}

void feed_serve(struct feed *f, struct req *req)
{
    char cursor[FEED_ID_MAX];
    char *b = req_query_param(req, "backlog");
    long backlog = b != NULL ? strtol(b, NULL, 10) : 0;
    free(b);
    if (feed_cursor(req, cursor) != 0 || backlog < 0 || backlog > FEED_BACKLOG_MAX) {
        log_info("event=feed_refused reason=bad_cursor_or_backlog");
        req_fail(req, 400, "Last-Event-ID must be a stream id (<ms>-<seq>), backlog 0..200");
        return;
    }
    if (f == NULL || f->stopping) {
        req_fail(req, 503, "shutting down");
        return;
    }
    if (f->st.open >= f->app->cf->feed_max_streams) {
        f->st.refused++;
        log_warn("event=feed_refused reason=too_many_streams open=%d feed_max_streams=%d",
                 f->st.open, f->app->cf->feed_max_streams);
        req_add_header(req, "Retry-After", "5");
        req_fail(req, 503, "too many event streams open (feed_max_streams)");
        return;
    }
    struct feed_stream *s = xcalloc(1, sizeof(*s));
    s->f = f;
    s->backlog = (int)backlog;
    snprintf(s->cursor, sizeof(s->cursor), "%s", cursor);
    s->hs = req_stream_start(req, "text/event-stream", (size_t)f->app->cf->feed_stream_buffer,
                             feed_on_close, s);
    if (s->hs == NULL) {
        free(s);
        return;
    }
    s->next = f->list;
    if (s->next != NULL)
        s->next->prev = s;
    f->list = s;
    f->st.open++;
    f->st.served++;
    static const char hello[] = "retry: 2000\n: mdmd event feed\n\n";
    if (feed_write(s, hello, sizeof(hello) - 1) != 0)
        return;
    feed_stream_read(s);
    if (!evtimer_pending(f->tick, NULL))
        feed_arm(f);
}

void feed_stats(const struct feed *f, struct feed_stats *out)
{
    static const struct feed_stats none;
    *out = f != NULL ? f->st : none;
}
