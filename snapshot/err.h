/*
 * err: the one error convention of the library.
 *
 * A function that can fail returns -1 (or a negative ssize_t) and fills the
 * `struct err *e` passed as its last parameter, once, at the place where the
 * problem was found. Callers forward -1 untouched. The message names what
 * failed first, with names in quotes, then what to do if anything can be done.
 */
#ifndef SNAPFS_ERR_H
#define SNAPFS_ERR_H

#include <stdarg.h>

struct err {
	int code;		/* an errno value; EIO for damaged data */
	char msg[256];
};

/* Fill e (which may be NULL) and return -1. Thread-safe. */
int err_set(struct err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int err_vset(struct err *e, int code, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/* Clear e: code 0, empty message. */
void err_clear(struct err *e);

#endif
