/* rp-jepsen-client: the workload client and small tools of the jepsen suite.
 * See jepsen/README.md. One thread per client process, each request on a
 * fresh non-blocking connection with a deadline; HTTPS and an API token
 * when the global flags --ca and --token-file are given. */
#ifndef JC_H
#define JC_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- HTTP (http.c) ------------------------------------------------------ */

/* How far a request got. */
enum {
	JC_DONE = 0,     /* a complete response was read */
	JC_NOT_SENT = 1, /* nothing was sent: the request cannot have had an effect */
	JC_UNKNOWN = 2,  /* sent (at least partly), then failed or timed out */
};

struct jc_resp {
	int status;
	int has_etag;
	uint64_t etag; /* the version in ETag: "N" */
	char code[64]; /* error code of a JSON error body, "" otherwise */
	char *body;    /* NUL-terminated; NULL when none */
	size_t body_len;
	char why[128]; /* for JC_NOT_SENT / JC_UNKNOWN: what failed */
};

/**
 * Before any request: with @ca_file (PEM), every request is HTTPS, the
 * server's certificate must verify against it and name the address
 * connected to (an IP SAN); with @token_file, every request carries
 * "Authorization: Bearer TOKEN" (the file holds one rpt_ token string).
 * Either may be NULL. 0, or -1 with @err set.
 */
int jc_http_setup(const char *ca_file, const char *token_file, char *err, size_t errlen);
/** Whether requests use TLS. */
int jc_http_tls(void);

/**
 * One request on a fresh connection (Connection: close) to @hostport
 * ("10.77.0.11:8000"). @headers: preformatted "Name: value\r\n" lines or
 * NULL. @body may be NULL. Gives up after @timeout_ms in all (connect,
 * TLS handshake, request and response). A failed TLS handshake is
 * JC_NOT_SENT (r->why starts with "tls handshake:").
 * Returns JC_DONE, JC_NOT_SENT or JC_UNKNOWN; @r is always initialised and
 * must be released with jc_resp_free().
 */
int jc_http(const char *hostport, const char *method, const char *path, const char *headers,
	    const char *body, size_t body_len, int timeout_ms, struct jc_resp *r);
void jc_resp_free(struct jc_resp *r);

/* ---- history (hist.c) --------------------------------------------------- */

struct jc_hist {
	FILE *f;
	pthread_mutex_t mu;
	int64_t last_ns;
	uint64_t lines;
};

int jc_hist_open(struct jc_hist *h, const char *path, int append);
void jc_hist_close(struct jc_hist *h);
/**
 * Append one event. @value is preformatted JSON ("5", "null", "[1,2]").
 * @extra is NULL or preformatted JSON members appended to the object
 * (",\"node\":\"n1\""). Time is CLOCK_REALTIME in ns, strictly increasing
 * within this history. Returns the time written.
 */
int64_t jc_hist_event(struct jc_hist *h, long process, const char *type, const char *f,
		      const char *key, const char *value, const char *extra);
/** Like jc_hist_event with a given time (for batches written later). */
void jc_hist_event_at(struct jc_hist *h, int64_t t, long process, const char *type, const char *f,
		      const char *key, const char *value, const char *extra);
int64_t jc_now_ns(void);
int64_t jc_mono_ms(void);

/* ---- helpers (util.c) --------------------------------------------------- */

void jc_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void jc_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** Split a comma list into at most @max strdup'ed items; returns the count. */
int jc_split(const char *list, char **out, int max);
void jc_sleep_ms(int64_t ms);
/* xorshift PRNG, one state per thread */
uint64_t jc_rand(uint64_t *s);
/** Uniform in [0, n). */
uint64_t jc_randn(uint64_t *s, uint64_t n);

/* ---- subcommands -------------------------------------------------------- */

int cmd_run(int argc, char **argv);
int cmd_final(int argc, char **argv);
int cmd_http(int argc, char **argv);
int cmd_leader(int argc, char **argv);
int cmd_members(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_wait_ready(int argc, char **argv);
int cmd_converge(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_check_subs(int argc, char **argv);

#endif
