/* feed.h: the live activity feed.  GET /v1/events (admin key, or the
 * console's session through /console/api/events) answers Server-Sent Events
 * from the event stream mdm:events, read through store_fleet_events_read():
 *
 *   id: <stream id>\nevent: <type>\ndata: {"id", "type", ...fields}\n\n
 *
 * A new reader starts at the newest event (?backlog=N, at most FEED_BACKLOG_MAX:
 * the N before it first); one that sends Last-Event-ID (or ?last_event_id=)
 * resumes right after that event, and gets "event: gap" first when that event
 * was trimmed away already.  Each stream is polled every feed_poll_ms (one
 * Redis call per stream in flight at most), a ": ping" comment goes out after
 * feed_heartbeat_s of silence, at most feed_max_streams are open (then 503),
 * and a stream whose unsent output passes feed_stream_buffer bytes is dropped
 * (a slow reader never makes memory grow or the loop wait; the client
 * reconnects with its Last-Event-ID and loses nothing).
 *
 * Borrows base and store; reads settings from app->cf at the time of use.
 * Single-threaded. */
#ifndef MDMD_FEED_H
#define MDMD_FEED_H

#include <stdint.h>

#include "../../core/util.h"

struct event_base;
struct store;
struct app;
struct req;
struct feed;

#define FEED_BATCH 200       /* events per Redis read */
#define FEED_BACKLOG_MAX 200 /* ?backlog= */

struct feed *feed_new(struct event_base *base, struct store *store,
                      const struct app *app) MDMD_MUSTCHECK;
/* SIGTERM: every open stream ends now (the last chunk; the connection stays
 * for the drain), new ones are refused with 503. */
void feed_stop(struct feed *f);
void feed_free(struct feed *f); /* NULL-safe; after feed_stop or not */
/* Serves one authorized GET /v1/events: a stream, or a 4xx/503 answer. */
void feed_serve(struct feed *f, struct req *req);

struct feed_stats {
    int open;         /* streams now */
    uint64_t served;  /* streams opened */
    uint64_t dropped; /* slow readers dropped */
    uint64_t refused; /* over feed_max_streams */
    uint64_t events;  /* events written, all streams */
};
void feed_stats(const struct feed *f, struct feed_stats *out);

#endif
