/* Logging for raftplane-proxy. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

void rp_log(const char *fmt, ...)
{
	char line[1024], ts[32];
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	/* one fprintf: stdio locks the stream, so lines of threads do not mix */
	fprintf(stderr, "%s.%03dZ raftplane-proxy: %s\n", ts, (int)(tv.tv_usec / 1000), line);
}
