/* The history file: JSON lines in time order, written by many threads. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jc.h"

int64_t jc_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t jc_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int jc_hist_open(struct jc_hist *h, const char *path, int append)
{
	memset(h, 0, sizeof *h);
	h->f = fopen(path, append ? "a" : "w");
	if (!h->f)
		return -1;
	pthread_mutex_init(&h->mu, NULL);
	return 0;
}

void jc_hist_close(struct jc_hist *h)
{
	if (h->f) {
		fflush(h->f);
		fclose(h->f);
		h->f = NULL;
	}
	pthread_mutex_destroy(&h->mu);
}

static void write_line(struct jc_hist *h, int64_t t, long process, const char *type, const char *f,
		       const char *key, const char *value, const char *extra)
{
	fprintf(h->f, "{\"time\":%lld,\"process\":%ld,\"type\":\"%s\",\"f\":\"%s\"", (long long)t,
		process, type, f);
	if (key)
		fprintf(h->f, ",\"key\":\"%s\"", key);
	fprintf(h->f, ",\"value\":%s%s}\n", value ? value : "null", extra ? extra : "");
	fflush(h->f);
	h->lines++;
}

int64_t jc_hist_event(struct jc_hist *h, long process, const char *type, const char *f,
		      const char *key, const char *value, const char *extra)
{
	pthread_mutex_lock(&h->mu);
	int64_t t = jc_now_ns();
	if (t <= h->last_ns)
		t = h->last_ns + 1;
	h->last_ns = t;
	write_line(h, t, process, type, f, key, value, extra);
	pthread_mutex_unlock(&h->mu);
	return t;
}

void jc_hist_event_at(struct jc_hist *h, int64_t t, long process, const char *type, const char *f,
		      const char *key, const char *value, const char *extra)
{
	pthread_mutex_lock(&h->mu);
	if (t <= h->last_ns)
		t = h->last_ns + 1;
	h->last_ns = t;
	write_line(h, t, process, type, f, key, value, extra);
	pthread_mutex_unlock(&h->mu);
}
