#include "log.h"

#include <errno.h>
#include <openssl/err.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int log_level = LOG_LVL_INFO;
static int log_syslog_on;

/* The lines stderr has not taken yet: [0, log_pend) of log_buf.  One mutex,
 * since the crypto worker logs too. */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char *log_buf;
static size_t log_cap = 1048576, log_pend;
static unsigned long long log_drops;

static char log_worker[24]; /* "worker=<n> " or "" */

void log_set_worker(int n)
{
    if (n >= 0)
        snprintf(log_worker, sizeof(log_worker), "worker=%d ", n);
    else
        snprintf(log_worker, sizeof(log_worker), "worker=super ");
}

void log_set_buffer(size_t size)
{
    pthread_mutex_lock(&log_mu);
    if (size >= log_pend) {
        char *nb = realloc(log_buf, size);
        if (nb != NULL || size == 0) {
            log_buf = nb;
            log_cap = size;
        }
    }
    pthread_mutex_unlock(&log_mu);
}

/* What stderr takes now, without waiting: a socket (journald) by
 * MSG_DONTWAIT, anything else only when poll says it is writable (a pipe
 * then takes a line of up to a page whole). */
static ssize_t log_try_write(const char *p, size_t n)
{
    ssize_t w = send(STDERR_FILENO, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w >= 0 || errno != ENOTSOCK)
        return w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : w;
    struct pollfd pfd = {STDERR_FILENO, POLLOUT, 0};
    if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLOUT))
        return 0;
    return write(STDERR_FILENO, p, n > 4096 ? 4096 : n);
}

static size_t log_flush_locked(void)
{
    size_t done = 0;
    while (done < log_pend) {
        ssize_t w = log_try_write(log_buf + done, log_pend - done);
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    if (done > 0)
        memmove(log_buf, log_buf + done, log_pend - done);
    log_pend -= done;
    return log_pend;
}

size_t log_flush(void)
{
    pthread_mutex_lock(&log_mu);
    size_t left = log_flush_locked();
    pthread_mutex_unlock(&log_mu);
    return left;
}

unsigned long long log_dropped(void)
{
    pthread_mutex_lock(&log_mu);
    unsigned long long n = log_drops;
    pthread_mutex_unlock(&log_mu);
    return n;
}

/* Whole lines only: a line goes out at once, waits whole, or is dropped. */
static void log_emit(const char *line, size_t n)
{
    pthread_mutex_lock(&log_mu);
    if (log_pend > 0)
        log_flush_locked();
    ssize_t w = log_pend == 0 ? log_try_write(line, n) : 0;
    size_t rest = w > 0 ? n - (size_t)w : n;
    if (rest > 0 && log_buf == NULL && log_cap > 0)
        log_buf = malloc(log_cap);
    if (rest > 0 && log_buf != NULL && log_pend + rest <= log_cap) {
        memcpy(log_buf + log_pend, line + (n - rest), rest);
        log_pend += rest;
    } else if (rest > 0) {
        log_drops++;
    }
    pthread_mutex_unlock(&log_mu);
}

static const char *const log_names[] = {"error", "warn", "info", "debug"};

int log_level_parse(const char *s)
{
    for (size_t i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++)
        if (strcmp(s, log_names[i]) == 0)
            return (int)i;
    return -1;
}

const char *log_level_name(int lvl)
{
    if (lvl < 0 || lvl > LOG_LVL_DEBUG)
        return "?";
    return log_names[lvl];
}

void log_open_syslog(const char *ident)
{
    openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
    log_syslog_on = 1;
}

void log_close_syslog(void)
{
    if (log_syslog_on)
        closelog();
    log_syslog_on = 0;
}

static void log_vat(int lvl, const char *fmt, va_list ap)
{
    static const int sys_prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
    char line[2048];
    struct timeval tv;
    struct tm tm;
    va_list ap2;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (long)tv.tv_usec / 1000, log_level_name(lvl));
    int head = n; /* syslog has its own time and priority; it keeps the worker */
    n += snprintf(line + n, sizeof(line) - (size_t)n, "%s", log_worker);
    va_copy(ap2, ap);
    n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap2);
    va_end(ap2);
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    /* One line at a time under the mutex: lines from the worker thread never
     * interleave, and a slow stderr never blocks (log_emit). */
    log_emit(line, (size_t)n);
    if (log_syslog_on) {
        line[n - 1] = '\0';
        syslog(sys_prio[lvl < 0 ? 0 : lvl > 3 ? 3 : lvl], "%s", line + head);
    }
}

void log_at(int lvl, const char *fmt, ...)
{
    va_list ap;
    if (lvl > log_level)
        return;
    va_start(ap, fmt);
    log_vat(lvl, fmt, ap);
    va_end(ap);
}

void log_ssl(int lvl, const char *what)
{
    char buf[512];
    size_t n = 0;
    unsigned long e;

    buf[0] = '\0';
    while ((e = ERR_get_error()) != 0) {
        const char *r = ERR_reason_error_string(e);
        int k = snprintf(buf + n, sizeof(buf) - n, "%s%s", n ? ";" : "", r ? r : "unknown");
        if (k < 0 || (size_t)k >= sizeof(buf) - n)
            break;
        n += (size_t)k;
    }
    ERR_clear_error();
    log_at(lvl, "%s ssl_error=\"%s\"", what, buf);
}

void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vat(LOG_LVL_ERR, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&log_mu); /* exiting: now waiting is right */
    for (size_t done = 0; done < log_pend;) {
        ssize_t w = write(STDERR_FILENO, log_buf + done, log_pend - done);
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    log_pend = 0;
    pthread_mutex_unlock(&log_mu);
    exit(1);
}

const char *log_str(const char *s, char *buf, size_t len)
{
    snprintf(buf, len, "%s", s != NULL ? s : "-");
    log_safe(buf);
    return buf;
}

void log_safe(char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e || *s == '"' || *s == '\\')
            *s = '?';
}
