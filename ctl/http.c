/* raftplanectl: HTTP transport over libcurl, server failover. */
#include "ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct ctl_opts g_opts;
volatile sig_atomic_t ctl_interrupted;

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	(void)ud, (void)a, (void)b, (void)c, (void)d;
	return ctl_interrupted ? 1 : 0; /* Ctrl-C ends a long poll at once */
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	struct ctl_resp *r = ud;
	size_t len = sz * n;
	if (r->sink) {
		if (r->sink(r->sink_ud, p, len) != 0)
			return 0;
		r->len += len;
		return len;
	}
	if (r->len + len > CTL_MAX_RESPONSE) {
		r->too_large = 1;
		return 0;
	}
	if (r->len + len + 1 > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;
		while (cap < r->len + len + 1)
			cap *= 2;
		char *nb = realloc(r->body, cap);
		if (!nb)
			return 0;
		r->body = nb;
		r->cap = cap;
	}
	memcpy(r->body + r->len, p, len);
	r->len += len;
	r->body[r->len] = 0;
	return len;
}

static void save_header(char *dst, size_t dstsz, const char *v, size_t vlen)
{
	while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
		vlen--;
	while (vlen && *v == ' ') {
		v++;
		vlen--;
	}
	if (vlen >= dstsz)
		vlen = dstsz - 1;
	memcpy(dst, v, vlen);
	dst[vlen] = 0;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
	struct ctl_resp *r = ud;
	size_t len = sz * n;
	static const struct {
		const char *name;
		size_t off;
	} want[] = {
		{"etag:", offsetof(struct ctl_resp, etag)},
		{"x-raftplane-revision:", offsetof(struct ctl_resp, revision_hdr)},
		{"x-raftplane-checksum:", offsetof(struct ctl_resp, checksum_hdr)},
	};
	if (len > 5 && strncmp(p, "HTTP/", 5) == 0) {
		/* a new response (after 100-continue): forget the old headers */
		r->etag[0] = r->revision_hdr[0] = r->checksum_hdr[0] = 0;
	}
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		size_t nl = strlen(want[i].name);
		if (len > nl && strncasecmp(p, want[i].name, nl) == 0)
			save_header((char *)r + want[i].off, CTL_HDR_MAX, p + nl, len - nl);
	}
	return len;
}

void ctl_resp_free(struct ctl_resp *r)
{
	free(r->body);
	memset(r, 0, sizeof *r);
}

/* One attempt against one server. Returns CTL_T_OK (an HTTP answer),
 * CTL_T_NOT_SENT (the request certainly reached no server) or CTL_T_BROKEN
 * (sent, or maybe sent, but no complete answer). */
static int attempt(const char *server, const char *method, const char *path, const void *body,
		   size_t body_len, const char *content_type, long timeout_ms, struct ctl_resp *r,
		   char *err, size_t errsz)
{
	CURL *c = curl_easy_init();
	if (!c) {
		snprintf(err, errsz, "cannot initialise libcurl");
		return CTL_T_NOT_SENT;
	}
	char url[2048];
	const char *scheme = g_opts.cacert ? "https" : "http";
	if (strncmp(server, "http://", 7) == 0 || strncmp(server, "https://", 8) == 0)
		snprintf(url, sizeof url, "%s%s", server, path);
	else
		snprintf(url, sizeof url, "%s://%s%s", scheme, server, path);
	struct curl_slist *hdrs = NULL;
	char auth[512];
	if (g_opts.token) {
		snprintf(auth, sizeof auth, "Authorization: Bearer %s", g_opts.token);
		hdrs = curl_slist_append(hdrs, auth);
	}
	hdrs = curl_slist_append(hdrs, "Expect:");
	if (content_type) {
		char ct[128];
		snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
		hdrs = curl_slist_append(hdrs, ct);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 5000 ? timeout_ms : 5000L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	if (!r->sink)
		curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)CTL_MAX_RESPONSE);
	if (g_opts.cacert)
		curl_easy_setopt(c, CURLOPT_CAINFO, g_opts.cacert);
	if (g_opts.cert)
		curl_easy_setopt(c, CURLOPT_SSLCERT, g_opts.cert);
	if (g_opts.key)
		curl_easy_setopt(c, CURLOPT_SSLKEY, g_opts.key);
	if (strcmp(method, "GET") == 0) {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
		if (body || strcmp(method, "PUT") == 0 || strcmp(method, "POST") == 0) {
			curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
			curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
		}
	}
	CURLcode rc = curl_easy_perform(c);
	long status = 0;
	long reqsize = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(c, CURLINFO_REQUEST_SIZE, &reqsize);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	r->status = status;
	if (rc == CURLE_OK)
		return CTL_T_OK;
	if (r->too_large || rc == CURLE_FILESIZE_EXCEEDED) {
		snprintf(err, errsz, "%s: the answer is larger than %d MiB", server,
			 CTL_MAX_RESPONSE >> 20);
		r->too_large = 1;
		return CTL_T_BROKEN;
	}
	snprintf(err, errsz, "%s: %s", server, curl_easy_strerror(rc));
	if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
	    rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_SSL_CACERT_BADFILE ||
	    rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_PEER_FAILED_VERIFICATION ||
	    rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL)
		return CTL_T_NOT_SENT;
	if (reqsize == 0 && rc == CURLE_OPERATION_TIMEDOUT)
		return CTL_T_NOT_SENT; /* timed out while connecting */
	return CTL_T_BROKEN;
}

static int is_code(const struct ctl_resp *r, const char *code)
{
	if (r->status != 503 || !r->body)
		return 0;
	json_t *j = json_loadb(r->body, r->len, 0, NULL);
	const char *c = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
	int yes = c && strcmp(c, code) == 0;
	json_decref(j);
	return yes;
}

int ctl_request(const char *method, const char *path, const void *body, size_t body_len,
		const char *content_type, int write, long timeout_ms, struct ctl_resp *r)
{
	char err[512] = "";
	if (timeout_ms <= 0)
		timeout_ms = g_opts.timeout_ms;
	for (int i = 0; i < g_opts.nservers; i++) {
		const char *s = g_opts.servers[i];
		void *sink = r->sink;
		void *sink_ud = r->sink_ud;
		ctl_resp_free(r);
		r->sink = sink;
		r->sink_ud = sink_ud;
		snprintf(r->server, sizeof r->server, "%s", s);
		int t = attempt(s, method, path, body, body_len, content_type, timeout_ms, r, err,
				sizeof err);
		if (ctl_interrupted)
			return CTL_EXIT_UNAVAILABLE;
		if (t == CTL_T_OK) {
			/* no_leader: nothing was proposed (docs/api.md 1.8), safe
			 * to send elsewhere; outcome_unknown never is */
			if (r->status == 503 && i + 1 < g_opts.nservers &&
			    (!write || is_code(r, "no_leader")) && !r->sink)
				continue;
			return CTL_OK;
		}
		if (r->too_large) {
			fprintf(stderr, "raftplanectl: %s\n", err);
			return CTL_EXIT_FAIL;
		}
		if (t == CTL_T_BROKEN && write) {
			fprintf(stderr,
				"raftplanectl: %s\nraftplanectl: the request was sent but no "
				"answer came "
				"back: the outcome is unknown; it was NOT resent. Check the "
				"current "
				"state (raftplanectl status / get / history) before retrying.\n",
				err);
			return CTL_EXIT_UNAVAILABLE;
		}
		if (t == CTL_T_BROKEN && r->sink)
			break; /* a partly written stream: do not mix two answers */
		fprintf(stderr, "raftplanectl: %s%s\n", err,
			i + 1 < g_opts.nservers ? ", trying the next server" : "");
	}
	fprintf(stderr, "raftplanectl: no server answered (%d tried)\n", g_opts.nservers);
	return CTL_EXIT_UNAVAILABLE;
}

char *ctl_escape(const char *s)
{
	CURL *c = curl_easy_init();
	char *e = curl_easy_escape(c, s, 0);
	char *out = strdup(e ? e : "");
	curl_free(e);
	curl_easy_cleanup(c);
	return out;
}
