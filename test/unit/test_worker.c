/* The crypto worker: jobs run off the loop thread, done callbacks run on it,
 * and a slow job does not hold up the loop's timers. */
#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "../../core/worker.h"
#include "../harness.h"

struct job {
    pthread_t loop_thread, ran_on, done_on;
    int ran, done, sleep_ms;
    struct event_base *base;
    int *left;
};

static void job_run(void *arg)
{
    struct job *j = arg;
    j->ran_on = pthread_self();
    if (j->sleep_ms > 0) {
        struct timespec ts = {0, j->sleep_ms * 1000000L};
        nanosleep(&ts, NULL);
    }
    j->ran = 1;
}

static void job_done(void *arg)
{
    struct job *j = arg;
    j->done_on = pthread_self();
    j->done = 1;
    if (--*j->left == 0)
        event_base_loopbreak(j->base);
}

static int ticks;
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    ticks++;
}

TEST(jobs_run_off_loop_and_finish_on_it)
{
    struct event_base *base = event_base_new();
    struct worker *w = worker_new(base, 2);
    struct job jobs[20] = {{0}};
    int left = 20;
    for (int i = 0; i < 20; i++) {
        jobs[i].loop_thread = pthread_self();
        jobs[i].base = base;
        jobs[i].left = &left;
        jobs[i].sleep_ms = i == 0 ? 300 : 1;
        worker_submit(w, job_run, job_done, &jobs[i]);
    }
    CHECK(worker_queued(w) == 20);
    struct timeval every = {0, 10000};
    struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    event_add(tick, &every);
    event_base_dispatch(base);
    CHECK(left == 0);
    for (int i = 0; i < 20; i++) {
        CHECK(jobs[i].ran && jobs[i].done);
        CHECK(!pthread_equal(jobs[i].ran_on, jobs[i].loop_thread));
        CHECK(pthread_equal(jobs[i].done_on, jobs[i].loop_thread));
    }
    /* The loop kept ticking while job 0 slept 300 ms on a worker thread. */
    CHECK(ticks >= 15);
    CHECK(worker_queued(w) == 0);
    event_free(tick);
    worker_free(w);
    event_base_free(base);
}

static int canceled_seen;
static struct worker *cancel_w;
static void job_done_cancel(void *arg)
{
    if (worker_canceled(cancel_w))
        canceled_seen++;
}

TEST(free_cancels_queued_jobs)
{
    struct event_base *base = event_base_new();
    struct worker *w = worker_new(base, 1);
    struct job jobs[5] = {{0}};
    int left = 100;
    cancel_w = w;
    for (int i = 0; i < 5; i++) {
        jobs[i].base = base;
        jobs[i].left = &left;
        jobs[i].sleep_ms = 100;
        worker_submit(w, job_run, job_done_cancel, &jobs[i]);
    }
    usleep(50000);
    worker_free(w); /* job 0 is running: it finishes; 1..4 are canceled */
    CHECK(canceled_seen == 4);
    CHECK(jobs[0].ran == 1 && jobs[4].ran == 0);
    event_base_free(base);
}

int main(void)
{
    RUN(jobs_run_off_loop_and_finish_on_it);
    RUN(free_cancels_queued_jobs);
    return harness_done();
}
