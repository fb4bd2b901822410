/* log.h: one line per event, key=value, to stderr and optionally syslog.
 * Single-threaded use, except log_at() which is safe to call from the crypto
 * worker (it writes one line with one write(2)).  Never pass secrets. */
#ifndef MDMD_LOG_H
#define MDMD_LOG_H

#include "util.h"

#include <stddef.h>

enum log_level { LOG_LVL_ERR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

extern int log_level; /* the one global besides the config; set at start */

/* Parses "error", "warn", "info", "debug"; returns -1 if unknown. */
int log_level_parse(const char *s) MDMD_MUSTCHECK;
const char *log_level_name(int lvl);
void log_open_syslog(const char *ident); /* also send every line to syslog */
void log_close_syslog(void);

/* Lines stderr cannot take at once (a slow pipe or journald socket) wait in
 * a buffer of up to size bytes and go out from log_flush(); beyond it they
 * are dropped and counted, so the loop never waits on stderr.  Until set:
 * 1 MB. */
void log_set_buffer(size_t size);
/* With workers (core/super.h): every line says which process wrote it,
 * "worker=<n>" (n >= 0) or "worker=super" (n < 0); until set, no such field. */
void log_set_worker(int n);
/* Writes what stderr takes now of the buffered lines; returns the bytes
 * still waiting.  Called from the loop (a timer) and at exit. */
size_t log_flush(void);
unsigned long long log_dropped(void); /* lines dropped since start */

void log_at(int lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Logs `what` plus the drained OpenSSL error queue (reason strings only). */
void log_ssl(int lvl, const char *what);
/* Replaces what could break a key="value" log line (controls, quotes,
 * backslashes, non-ASCII) with '?', in place: for peer-supplied strings. */
void log_safe(char *s);
/* A sanitised copy of s (NULL: "-") in buf, at most len - 1 bytes: for
 * logging a string the peer chose without changing it. */
const char *log_str(const char *s, char *buf, size_t len);

#define log_err(...) log_at(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_at(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)                                                                              \
    do {                                                                                           \
        if (log_level >= LOG_LVL_INFO)                                                             \
            log_at(LOG_LVL_INFO, __VA_ARGS__);                                                     \
    } while (0)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_level >= LOG_LVL_DEBUG)                                                            \
            log_at(LOG_LVL_DEBUG, __VA_ARGS__);                                                    \
    } while (0)

/* Only before event_base_dispatch(): logs at error level and exits 1. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
