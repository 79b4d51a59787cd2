#include "log.h"

#include <stdio.h>
#include <string.h>
#include <syslog.h>

static struct {
	const char *ident;
	bool syslog;
	bool debug;
} sink = { "snapfs", false, false };

void log_open(const char *ident, bool foreground, bool debug)
{
	sink.ident = ident;
	sink.syslog = !foreground;
	sink.debug = debug;
	if (sink.syslog)
		openlog(ident, LOG_PID | LOG_CONS, LOG_DAEMON);
}

void log_close(void)
{
	if (sink.syslog)
		closelog();
	sink.syslog = false;
}

void log_vmsg(int level, const char *fmt, va_list ap)
{
	char line[1024];
	size_t n;

	if (level >= LOG_DEBUG && !sink.debug)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	/* libfuse's messages end in a newline, ours do not: one line either way */
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	if (sink.syslog)
		syslog(level, "%s", line);
	else
		fprintf(stderr, "%s: %s\n", sink.ident, line);
}

#define LOG_FN(name, level)                                                                        \
	void name(const char *fmt, ...)                                                            \
	{                                                                                          \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		log_vmsg(level, fmt, ap);                                                          \
		va_end(ap);                                                                        \
	}

LOG_FN(log_err, LOG_ERR)
LOG_FN(log_warn, LOG_WARNING)
LOG_FN(log_info, LOG_INFO)
LOG_FN(log_debug, LOG_DEBUG)
