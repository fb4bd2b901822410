#include "log.h"

#include <openssl/err.h>
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
    int head = n;
    va_copy(ap2, ap);
    n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap2);
    va_end(ap2);
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    /* One write(2) per line so lines from the worker thread never interleave. */
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
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
    exit(1);
}

void log_safe(char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e || *s == '"' || *s == '\\')
            *s = '?';
}
