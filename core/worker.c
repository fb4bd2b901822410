#include "worker.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

struct worker_job {
    struct worker_job *next;
    worker_job_fn *job;
    worker_done_fn *done;
    void *arg;
};

struct worker {
    struct event_base *base;
    pthread_t *threads;
    int nthreads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct worker_job *todo, *todo_tail; /* guarded by mu */
    struct worker_job *done, *done_tail; /* guarded by mu */
    int stopping;                        /* guarded by mu */
    int pending;                         /* loop thread only */
    int canceled;                        /* loop thread: inside a canceled done */
    int pipefd[2];                       /* threads -> loop: "something is done" */
    struct event *ev;
};

static void worker_append(struct worker_job **head, struct worker_job **tail, struct worker_job *j)
{
    j->next = NULL;
    if (*tail != NULL)
        (*tail)->next = j;
    else
        *head = j;
    *tail = j;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->todo == NULL && !w->stopping)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->stopping)
            break;
        struct worker_job *j = w->todo;
        w->todo = j->next;
        if (w->todo == NULL)
            w->todo_tail = NULL;
        pthread_mutex_unlock(&w->mu);
        j->job(j->arg);
        pthread_mutex_lock(&w->mu);
        worker_append(&w->done, &w->done_tail, j);
        /* One byte per completion is enough to wake the loop; a full pipe
         * means the loop is already due to drain the list. */
        ssize_t n = write(w->pipefd[1], "x", 1);
        (void)n;
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void worker_on_done(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    char buf[256];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    pthread_mutex_lock(&w->mu);
    struct worker_job *j = w->done;
    w->done = w->done_tail = NULL;
    pthread_mutex_unlock(&w->mu);
    while (j != NULL) {
        struct worker_job *next = j->next;
        w->pending--;
        j->done(j->arg);
        free(j);
        j = next;
    }
}

struct worker *worker_new(struct event_base *base, int nthreads)
{
    struct worker *w = xcalloc(1, sizeof(*w));
    w->base = base;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pipe2(w->pipefd, O_NONBLOCK | O_CLOEXEC) != 0)
        die("event=worker_pipe_failed errno=%d", errno);
    w->ev = event_new(base, w->pipefd[0], EV_READ | EV_PERSIST, worker_on_done, w);
    event_add(w->ev, NULL);
    w->nthreads = nthreads < 1 ? 1 : nthreads;
    w->threads = xcalloc((size_t)w->nthreads, sizeof(pthread_t));
    for (int i = 0; i < w->nthreads; i++)
        if (pthread_create(&w->threads[i], NULL, worker_main, w) != 0)
            die("event=worker_thread_failed");
    return w;
}

void worker_submit(struct worker *w, worker_job_fn *job, worker_done_fn *done, void *arg)
{
    struct worker_job *j = xmalloc(sizeof(*j));
    j->job = job;
    j->done = done;
    j->arg = arg;
    w->pending++;
    pthread_mutex_lock(&w->mu);
    worker_append(&w->todo, &w->todo_tail, j);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int worker_queued(const struct worker *w)
{
    return w->pending;
}

int worker_canceled(const struct worker *w)
{
    return w->canceled;
}

void worker_free(struct worker *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    for (int i = 0; i < w->nthreads; i++)
        pthread_join(w->threads[i], NULL);
    worker_on_done(w->pipefd[0], 0, w); /* jobs that ran: normal done */
    w->canceled = 1;
    for (struct worker_job *j = w->todo, *next; j != NULL; j = next) {
        next = j->next;
        j->done(j->arg);
        free(j);
    }
    event_free(w->ev);
    close(w->pipefd[0]);
    close(w->pipefd[1]);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w->threads);
    free(w);
}
