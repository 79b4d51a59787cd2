/*
 * log: the one logging module, shaped like libfuse's lib/fuse_log.c.
 *
 * Only the shells (fs/, tools/) call it; the library reports through
 * struct err and callbacks and prints nothing. Call log_open() once, before
 * any thread starts: the sink is the only mutable file-scope state.
 * After that every function here is thread-safe (one write per line).
 */
#ifndef SNAPFS_LOG_H
#define SNAPFS_LOG_H

#include <stdarg.h>
#include <stdbool.h>

/* ident names the program; foreground picks stderr, else syslog. */
void log_open(const char *ident, bool foreground, bool debug);
void log_close(void);

/* level is a syslog priority (LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG). */
void log_vmsg(int level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
