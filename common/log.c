/* The logging facility of include/raftplane/log.h. */
#include "raftplane/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static char program[64] = "raftplane";
static char node[129];
static int min_level = -1; /* -1: not decided yet (read RP_LOG_LEVEL) */

static const char *const names[] = {"DEBUG", "INFO", "WARN", "ERROR", "FATAL"};

static void copy(char *dst, size_t cap, const char *src)
{
	size_t n = src ? strlen(src) : 0;
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src ? src : "", n);
	dst[n] = '\0';
}

void rp_log_init(const char *name)
{
	copy(program, sizeof program, name);
}

void rp_log_set_node(const char *id)
{
	copy(node, sizeof node, id);
}

void rp_log_set_level(enum rp_log_level min)
{
	min_level = (int)min;
}

int rp_log_level_parse(const char *name)
{
	static const char *const lower[] = {"debug", "info", "warn", "error"};
	for (int i = 0; name && i < 4; i++)
		if (strcmp(name, lower[i]) == 0)
			return i;
	return -1;
}

static int threshold(void)
{
	int m = __atomic_load_n(&min_level, __ATOMIC_RELAXED);
	if (m < 0) {
		m = rp_log_level_parse(getenv("RP_LOG_LEVEL"));
		if (m < 0)
			m = RP_LOG_INFO;
		__atomic_store_n(&min_level, m, __ATOMIC_RELAXED);
	}
	return m;
}

void rp_logf(enum rp_log_level level, const char *fmt, ...)
{
	if ((int)level < threshold() && level != RP_LOG_FATAL)
		return;
	if ((unsigned)level > RP_LOG_FATAL)
		level = RP_LOG_ERROR;
	char msg[RP_LOG_LINE_MAX], ts[32];
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		copy(msg, sizeof msg, "(unformattable log message)");
	else if ((size_t)n >= sizeof msg)
		memcpy(msg + sizeof msg - 4, "...", 4);
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	/* one fprintf: stdio locks the stream, so lines of threads do not mix */
	fprintf(stderr, "%s.%03dZ %s %s%s%s: %s\n", ts, (int)(tv.tv_usec / 1000), names[level],
		program, node[0] ? " node=" : "", node, msg);
}
