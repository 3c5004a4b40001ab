/* raftplanectl: the operator command line client (issue 13). */
#ifndef RAFTPLANE_CTL_H
#define RAFTPLANE_CTL_H

#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stddef.h>

/* exit codes */
enum {
	CTL_OK = 0,
	CTL_EXIT_FAIL = 1,
	CTL_EXIT_USAGE = 2,
	CTL_EXIT_CONFLICT = 3,
	CTL_EXIT_NOT_FOUND = 4,
	CTL_EXIT_UNAVAILABLE = 5,
};

enum {
	CTL_OUT_TABLE,
	CTL_OUT_JSON,
	CTL_OUT_YAML
};
enum {
	CTL_T_OK,
	CTL_T_NOT_SENT,
	CTL_T_BROKEN
};

#define CTL_MAX_RESPONSE (64 << 20)
#define CTL_HDR_MAX 256
#define CTL_MAX_SERVERS 32

struct ctl_opts {
	const char *servers[CTL_MAX_SERVERS];
	int nservers;
	const char *cacert, *cert, *key, *token;
	int out;
	long timeout_ms;
	int color;
};
extern struct ctl_opts g_opts;
/* set by the SIGINT handler of watch */
extern volatile sig_atomic_t ctl_interrupted;

struct ctl_resp {
	long status;
	char *body;
	size_t len, cap;
	int too_large;
	char server[256];
	char etag[CTL_HDR_MAX];
	char revision_hdr[CTL_HDR_MAX];
	char checksum_hdr[CTL_HDR_MAX];
	/* when set, the body goes here instead of memory (backup) */
	int (*sink)(void *ud, const char *p, size_t n);
	void *sink_ud;
};

/* Sends the request to the servers in turn. Returns CTL_OK with @r filled
 * (any HTTP status), or an exit code after printing why. @write: never resend
 * a request that may have reached a server. */
int ctl_request(const char *method, const char *path, const void *body, size_t body_len,
		const char *content_type, int write, long timeout_ms, struct ctl_resp *r);
void ctl_resp_free(struct ctl_resp *r);
char *ctl_escape(const char *s);

/* output */
void ctl_print_value(json_t *v);
void ctl_yaml_emit(FILE *f, json_t *v, int indent);
char *ctl_pretty(json_t *v);
/* Prints the server's error body and returns the exit code of the status. */
int ctl_http_error(const struct ctl_resp *r, const char *what);
int ctl_exit_for_status(long status);
json_t *ctl_json_body(const struct ctl_resp *r);

/* apply.c */
int cmd_apply(int argc, char **argv);
int cmd_diff(int argc, char **argv);
/* The proxies part of a dry run's answer, as a table. */
void ctl_print_dry_proxies(json_t *j);
/* YAML text (or JSON) to jansson, for put -f */
json_t *ctl_yaml_to_json_file(const char *path, char *err, size_t errsz);
const char *ctl_kind_plural(const char *k);
int ctl_parse_duration_ms(const char *s, long *ms);
#endif
