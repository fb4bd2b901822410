/* log.h: one line per event, key=value, to stderr and optionally syslog.
 * Single-threaded use, except log_at() which is safe to call from the crypto
 * worker (it writes one line with one write(2)).  Never pass secrets. */
#ifndef MDMD_LOG_H
#define MDMD_LOG_H

#include "util.h"

enum log_level { LOG_LVL_ERR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

extern int log_level; /* the one global besides the config; set at start */

/* Parses "error", "warn", "info", "debug"; returns -1 if unknown. */
int log_level_parse(const char *s) MDMD_MUSTCHECK;
const char *log_level_name(int lvl);
void log_open_syslog(const char *ident); /* also send every line to syslog */
void log_close_syslog(void);

void log_at(int lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Logs `what` plus the drained OpenSSL error queue (reason strings only). */
void log_ssl(int lvl, const char *what);
/* Replaces what could break a key="value" log line (controls, quotes,
 * backslashes, non-ASCII) with '?', in place: for peer-supplied strings. */
void log_safe(char *s);

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
