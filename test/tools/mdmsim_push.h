/* mdmsim_push.h: --push-file.  The mock APNs appends one "token magic status"
 * line per push it receives; a line naming one of our devices' PushMagic
 * with a 2xx status (or none) wakes that device up, as the real push would.
 * The file is polled every 10 ms from offset 0, so pushes sent before mdmsim
 * started (commands queued while it was down) are delivered too; a replayed
 * push only costs an Idle that gets an empty answer. */
#ifndef MDMSIM_PUSH_H
#define MDMSIM_PUSH_H

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mdmsim_core.h"

#define SIM_PUSH_POLL_MS 10

struct sim_push_ent {
    const char *magic; /* borrowed from the device */
    struct sim_dev *d;
};

struct sim_push {
    struct sim *s;
    int fd;    /* -1 until the file exists */
    off_t off; /* bytes consumed, to notice truncation */
    char line[1024];
    size_t len;
    int overflow; /* the current line is too long: skip it */
    struct event *tick;
    struct sim_push_ent *idx; /* sorted by magic, for bsearch */
};

static void sim_dev_push(struct sim_dev *d); /* mdmsim.c */

static int sim_push_cmp(const void *a, const void *b)
{
    return strcasecmp(((const struct sim_push_ent *)a)->magic,
                      ((const struct sim_push_ent *)b)->magic);
}

static void sim_push_line(struct sim_push *p, char *line)
{
    char *save = NULL, *tok = strtok_r(line, " \t\r", &save);
    char *magic = tok ? strtok_r(NULL, " \t\r", &save) : NULL;
    char *status = magic ? strtok_r(NULL, " \t\r", &save) : NULL;
    if (magic == NULL)
        return;
    struct sim_push_ent key = {.magic = magic}, *e;
    e = bsearch(&key, p->idx, p->s->o.n, sizeof(*p->idx), sim_push_cmp);
    if (e == NULL)
        return;
    if (status != NULL && status[0] != '2') { /* APNs refused it: no delivery */
        log_debug("event=push_not_delivered udid=%s status=%s", e->d->udid, status);
        return;
    }
    p->s->st.pushes++;
    sim_dev_push(e->d);
}

static void sim_push_feed(struct sim_push *p, const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == '\n') {
            p->line[p->len] = '\0';
            if (!p->overflow)
                sim_push_line(p, p->line);
            p->len = 0;
            p->overflow = 0;
        } else if (p->len + 1 < sizeof(p->line)) {
            p->line[p->len++] = buf[i];
        } else {
            p->overflow = 1;
        }
    }
}

static int sim_push_open(struct sim_push *p)
{
    if (p->fd >= 0)
        return 0;
    p->fd = open(p->s->o.push_file, O_RDONLY | O_CLOEXEC);
    if (p->fd < 0 && errno != ENOENT)
        log_warn("event=push_file_open_failed path=%s error=\"%s\"", p->s->o.push_file,
                 strerror(errno));
    return p->fd >= 0 ? 0 : -1;
}

static void sim_push_poll(evutil_socket_t fd, short what, void *arg)
{
    struct sim_push *p = arg;
    struct stat st;
    char buf[16384];
    ssize_t r;
    (void)fd;
    (void)what;
    if (sim_push_open(p) != 0)
        return;
    if (fstat(p->fd, &st) == 0 && st.st_size < p->off) { /* truncated: start over */
        lseek(p->fd, 0, SEEK_SET);
        p->off = 0;
        p->len = 0;
    }
    while ((r = read(p->fd, buf, sizeof(buf))) > 0) {
        p->off += r;
        sim_push_feed(p, buf, (size_t)r);
    }
}

static struct sim_push *sim_push_new(struct sim *s)
{
    struct sim_push *p = xcalloc(1, sizeof(*p));
    struct timeval tv = {0, SIM_PUSH_POLL_MS * 1000};
    p->s = s;
    p->fd = -1;
    p->idx = xcalloc(s->o.n, sizeof(*p->idx));
    for (unsigned i = 0; i < s->o.n; i++) {
        p->idx[i].magic = s->devs[i].magic;
        p->idx[i].d = &s->devs[i];
    }
    qsort(p->idx, s->o.n, sizeof(*p->idx), sim_push_cmp);
    p->tick = event_new(s->base, -1, EV_PERSIST, sim_push_poll, p);
    event_add(p->tick, &tv);
    return p;
}

static void sim_push_free(struct sim_push *p)
{
    if (p == NULL)
        return;
    if (p->tick != NULL)
        event_free(p->tick);
    if (p->fd >= 0)
        close(p->fd);
    free(p->idx);
    free(p);
}

#endif
