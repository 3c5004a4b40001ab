/* propbench: propagation and fan-out benchmark client, the same program for
 * raftplane subscribers and etcd watchers (bench/propagation.sh, bench/scale.sh,
 * bench/tls.sh).
 *
 *   propbench --system rp|etcd --servers A,B,C --writer ADDR --n N
 *             [--changes 100] [--warmup 5] [--gap-ms 20] [--server-pid PID]
 *             [--idle-s S] [--wait-ms 30000] [--label TEXT] [--verify]
 *             [--tls-ca CA.pem [--tls-ca-key CA.key] [--trust-domain TD]]
 *             [--token rpt_...] [--storm]
 *
 * One thread, one epoll loop, N+2 keep-alive HTTP/1.1 connections:
 *
 * - N watchers, spread round-robin over --servers.
 *   rp:   long-polls POST /v1/subscribe (protobuf SubscribeRequest, node id
 *         "pb-<i>"), decodes each Snapshot with protobuf-c and at once sends
 *         the next poll carrying the ACK (version = the one received); a 304
 *         re-polls. "Seen" = the moment the ACK was written to the socket.
 *   etcd: POST /v3/watch {"create_request":{"key":K}} and reads the chunked
 *         JSON stream. "Seen" = the moment the event's message was parsed.
 * - one writer, to --writer (the leader), making one change at a time:
 *   rp:   PUT /v1/clusters/pbc (a cluster that a route on a listener with
 *         nodes ["*"] uses, so that every subscriber's snapshot changes);
 *   etcd: POST /v3/kv/put of the same JSON under key K.
 *   t0 = the moment the write's response was parsed. Latency of a change =
 *   (last watcher's seen time) - t0; also reported: the first watcher, and for
 *   rp the last *receipt* (before ACK).
 * - rp with --verify: after each change, GET /v1/rollouts/REV?wait=5s on the
 *   writer's server must report pending 0 and acked >= N (the servers saw
 *   every ACK); counted in "verified".
 *
 * With --server-pid, RSS (VmRSS) and CPU (utime+stime) of that process are
 * sampled before connecting, after all watchers are attached, across an idle
 * window of --idle-s seconds and across the changes: the scale benchmark.
 *
 * TLS (--tls-ca): every connection is TLS 1.2+ (1.3 with our servers) through
 * OpenSSL memory BIOs, as net/client.c does it; the server's chain must
 * verify against CA.pem. No session cache and no tickets: every connection,
 * also a reconnect, makes a full handshake. With --tls-ca-key, propbench makes
 * one EC P-256 key and certificate per watcher, signed by that CA, naming
 * spiffe://TD/node/pb-<i> (the node id it subscribes as), before anything is
 * timed; the writer and the checker present none. --token: "Authorization:
 * Bearer" on the writer's and the checker's requests.
 *
 * --storm (rp): after the changes, every watcher closes its connection and
 * forgets its version (a proxy restart); after 1 s all N reconnect at once
 * and are counted attached again once each received its snapshot and sent
 * its ACK poll. Reported: the time, per-watcher p50/p99, the CPU of
 * --server-pid and of propbench over it, and the handshakes made.
 *
 * Prints one JSON object on stdout. Progress and errors go to stderr.
 * The RP setup (cluster pbc, listener pbl nodes ["*"], route pbr) is made by
 * the calling script. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "raftplane.pb-c.h"

enum role {
	WATCHER,
	WRITER,
	CHECKER
};
enum sys {
	SYS_RP,
	SYS_ETCD
};

struct conn {
	int fd;
	enum role role;
	int idx; /* watcher index */
	int server;
	int connected;
	/* output (plain text; with TLS encrypted into cout once the handshake is done) */
	char *out;
	size_t out_len, out_off;
	/* TLS (--tls-ca): memory BIOs as in net/client.c; cout = ciphertext to write */
	SSL *ssl;
	int hs_done;
	char *cout;
	size_t cout_len, cout_off, cout_cap;
	/* input */
	char *in;
	size_t in_len, in_cap;
	/* response being parsed */
	int have_head;
	int status;
	long content_length; /* -1: chunked or unknown */
	int chunked;
	size_t head_len;
	/* etcd stream: decoded body bytes not yet consumed as JSON */
	char *msg;
	size_t msg_len, msg_cap;
	/* watcher state */
	int attached;
	uint64_t version; /* rp: held/acked */
	int has_version;
	uint64_t seen_rev;
	double seen_t, recv_t;
	double attach_t; /* when it was attached (rp: its first snapshot ACKed) */
	double retry_at;
};

static struct {
	enum sys sys;
	char servers[16][64];
	int n_servers;
	char writer[64];
	int n, changes, warmup, gap_ms, idle_s, wait_ms, verify;
	int server_pid;
	const char *label;
	int ep;
	struct conn *w; /* watchers */
	struct conn writer_c, checker_c;
	int attached;
	/* current change */
	int change_no;
	int phase; /* 0 attach, 1 waiting for write answer, 2 waiting for watchers, 3 gap, 4 verify */
	uint64_t rev;
	double t_send, t0, gap_until, deadline;
	int seen_count;
	/* results */
	double *lat_last, *lat_first, *lat_recv, *write_ms;
	double *lat_srv[16]; /* per server: its last watcher's seen time - t0 */
	int n_lat, missing, verified, verify_failed, errors;
	uint64_t base_version;
	/* TLS */
	SSL_CTX *tls_ctx;
	X509 **node_cert; /* per watcher, with --tls-ca-key */
	EVP_PKEY **node_key;
	const char *trust_domain;
	const char *token;
	int handshakes, tls_failures;
	int storm;
} g;

/* ---- time, output ------------------------------------------------------ */

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "propbench: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p)
		die("out of memory");
	return p;
}

/* ---- /proc sampling ------------------------------------------------------ */

static long proc_rss_kib(int pid)
{
	char path[64], line[256];
	long kib = -1;
	snprintf(path, sizeof path, "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static double proc_cpu_s(int pid)
{
	char path[64], buf[2048];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	unsigned long ut = 0, st = 0;
	/* after ")": state(3) ... utime is field 14, stime 15 */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

/* ---- TLS ------------------------------------------------------------------------ */

static void die_ssl(const char *what)
{
	char e[256];
	ERR_error_string_n(ERR_get_error(), e, sizeof e);
	die("%s: %s", what, e);
}

/* The client context: TLS 1.2+, the server's chain must verify against @ca;
 * no session cache, so that every connection makes a full handshake (the
 * servers never resume sessions anyway: docs/security.md). */
static void tls_init(const char *ca)
{
	g.tls_ctx = SSL_CTX_new(TLS_client_method());
	if (!g.tls_ctx)
		die_ssl("SSL_CTX_new");
	SSL_CTX_set_min_proto_version(g.tls_ctx, TLS1_2_VERSION);
	SSL_CTX_set_session_cache_mode(g.tls_ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(g.tls_ctx, SSL_OP_NO_TICKET);
	if (SSL_CTX_load_verify_locations(g.tls_ctx, ca, NULL) != 1)
		die_ssl(ca);
	SSL_CTX_set_verify(g.tls_ctx, SSL_VERIFY_PEER, NULL);
}

static void x509_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (!e || !X509_add_ext(x, e, -1))
		die_ssl("certificate extension");
	X509_EXTENSION_free(e);
}

/* One EC P-256 key and one certificate per watcher, signed by the CA in
 * @ca_file/@ca_key_file, naming spiffe://TD/node/pb-<i> (CN pb-<i>), the node
 * id the watcher subscribes as (docs/security.md, "Identities"). Made before
 * anything is timed: ~0.1 ms each. */
static void make_node_certs(const char *ca_file, const char *ca_key_file)
{
	FILE *f = fopen(ca_file, "r");
	if (!f)
		die("%s: %s", ca_file, strerror(errno));
	X509 *ca = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	f = fopen(ca_key_file, "r");
	if (!f)
		die("%s: %s", ca_key_file, strerror(errno));
	EVP_PKEY *cakey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (!ca || !cakey)
		die_ssl("reading the CA");
	g.node_cert = calloc((size_t)g.n, sizeof *g.node_cert);
	g.node_key = calloc((size_t)g.n, sizeof *g.node_key);
	uint64_t serial0 = ((uint64_t)time(NULL) << 20) ^ ((uint64_t)getpid() << 40);
	for (int i = 0; i < g.n; i++) {
		char cn[32], san[320];
		snprintf(cn, sizeof cn, "pb-%d", i);
		snprintf(san, sizeof san, "URI:spiffe://%s/node/%s", g.trust_domain, cn);
		EVP_PKEY *k = EVP_EC_gen("P-256");
		X509 *x = X509_new();
		if (!k || !x)
			die_ssl("key");
		X509_set_version(x, 2);
		ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial0 + (uint64_t)i);
		X509_gmtime_adj(X509_getm_notBefore(x), -3600);
		X509_gmtime_adj(X509_getm_notAfter(x), 86400);
		X509_set_pubkey(x, k);
		X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
					   (const unsigned char *)cn, -1, -1, 0);
		X509_set_issuer_name(x, X509_get_subject_name(ca));
		x509_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE");
		x509_ext(x, ca, NID_key_usage, "critical,digitalSignature");
		x509_ext(x, ca, NID_ext_key_usage, "clientAuth");
		x509_ext(x, ca, NID_subject_alt_name, san);
		if (!X509_sign(x, cakey, EVP_sha256()))
			die_ssl("signing a node certificate");
		g.node_cert[i] = x;
		g.node_key[i] = k;
	}
	X509_free(ca);
	EVP_PKEY_free(cakey);
}

/* A fresh TLS session on @c (client side, memory BIOs), with the watcher's
 * own node certificate. */
static void tls_new(struct conn *c)
{
	static const unsigned char alpn[] = "\x08http/1.1";
	c->ssl = SSL_new(g.tls_ctx);
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	if (!c->ssl || !rb || !wb)
		die_ssl("SSL_new");
	SSL_set_bio(c->ssl, rb, wb);
	SSL_set_connect_state(c->ssl);
	SSL_set_alpn_protos(c->ssl, alpn, sizeof alpn - 1);
	if (c->role == WATCHER && g.node_cert &&
	    (SSL_use_certificate(c->ssl, g.node_cert[c->idx]) != 1 ||
	     SSL_use_PrivateKey(c->ssl, g.node_key[c->idx]) != 1))
		die_ssl("node certificate");
	c->hs_done = 0;
	c->cout_len = c->cout_off = 0;
}

/* Move what OpenSSL wrote into its memory BIO to c->cout. */
static void tls_drain(struct conn *c)
{
	BIO *wb = SSL_get_wbio(c->ssl);
	size_t n;
	while ((n = BIO_ctrl_pending(wb)) > 0) {
		if (c->cout_len + n > c->cout_cap) {
			c->cout_cap = (c->cout_len + n) * 2 + 4096;
			c->cout = xrealloc(c->cout, c->cout_cap);
		}
		int k = BIO_read(wb, c->cout + c->cout_len, (int)n);
		if (k <= 0)
			break;
		c->cout_len += (size_t)k;
	}
}

/* Advance the handshake, encrypt pending plain text. -1: TLS failed. */
static int tls_pump(struct conn *c)
{
	if (!c->hs_done) {
		int rv = SSL_do_handshake(c->ssl);
		if (rv == 1) {
			c->hs_done = 1;
			g.handshakes++;
		} else {
			int e = SSL_get_error(c->ssl, rv);
			if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
				tls_drain(c);
				return -1;
			}
		}
	}
	if (c->hs_done && c->out_len > c->out_off) {
		/* a memory BIO takes it all at once */
		int len = (int)(c->out_len - c->out_off);
		if (SSL_write(c->ssl, c->out + c->out_off, len) != len)
			return -1;
		c->out_off = c->out_len = 0;
	}
	tls_drain(c);
	return 0;
}

static void tls_failed(struct conn *c, const char *when)
{
	char e[256];
	unsigned long code = ERR_get_error();
	ERR_error_string_n(code, e, sizeof e);
	ERR_clear_error();
	g.tls_failures++;
	if (g.tls_failures <= 5)
		fprintf(stderr, "propbench: TLS %s failed on %s %d: %s (verify: %s)\n", when,
			c->role == WATCHER  ? "watcher"
			: c->role == WRITER ? "writer"
					    : "checker",
			c->idx, code ? e : "connection closed",
			X509_verify_cert_error_string(SSL_get_verify_result(c->ssl)));
	if (c->role != WATCHER)
		die("TLS to the writer's server failed");
}

/* ---- connections ------------------------------------------------------------- */

static void conn_want_out(struct conn *c, int want)
{
	struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
	epoll_ctl(g.ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static int conn_open(struct conn *c, const char *addr)
{
	char host[64];
	snprintf(host, sizeof host, "%s", addr);
	char *colon = strrchr(host, ':');
	if (!colon)
		die("bad address %s", addr);
	*colon = 0;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(atoi(colon + 1))};
	inet_pton(AF_INET, host, &sa.sin_addr);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		die("socket: %s (raise ulimit -n)", strerror(errno));
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS)
		return -1;
	c->connected = 0;
	c->in_len = c->out_len = c->out_off = c->msg_len = 0;
	c->have_head = 0;
	if (g.tls_ctx)
		tls_new(c);
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
	epoll_ctl(g.ep, EPOLL_CTL_ADD, c->fd, &ev);
	return 0;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(g.ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	c->connected = 0;
	if (c->ssl) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	c->hs_done = 0;
	c->cout_len = c->cout_off = 0;
}

static void watcher_lost(struct conn *c);

static void conn_flush(struct conn *c)
{
	if (c->ssl) {
		if (c->connected && tls_pump(c) != 0) {
			tls_failed(c, "handshake");
			watcher_lost(c);
			return;
		}
		while (c->cout_off < c->cout_len) {
			ssize_t k = write(c->fd, c->cout + c->cout_off, c->cout_len - c->cout_off);
			if (k < 0) {
				if (errno == EAGAIN || errno == EINTR || errno == ENOTCONN)
					break;
				return;
			}
			c->cout_off += (size_t)k;
		}
		if (c->cout_off == c->cout_len)
			c->cout_off = c->cout_len = 0;
		conn_want_out(c, c->cout_len > 0 || !c->connected);
		return;
	}
	while (c->out_off < c->out_len) {
		ssize_t k = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
		if (k < 0) {
			if (errno == EAGAIN || errno == EINTR || errno == ENOTCONN)
				break;
			return;
		}
		c->out_off += (size_t)k;
	}
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	conn_want_out(c, c->out_len > 0 || !c->connected);
}

/* Queue an HTTP request on @c and try to send it at once. */
static void conn_send(struct conn *c, const char *method, const char *addr, const char *path,
		      const char *ctype, const void *body, size_t blen)
{
	char head[768], auth[600] = "";
	if (c->fd < 0 && c->role != WATCHER)
		conn_open(c, g.writer);
	if (g.token && c->role != WATCHER)
		snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", g.token);
	int hl = snprintf(head, sizeof head,
			  "%s %s HTTP/1.1\r\nHost: %s\r\n%sContent-Type: %s\r\nContent-Length: "
			  "%zu\r\n\r\n",
			  method, path, addr, auth, ctype, blen);
	c->out = xrealloc(c->out, c->out_len + (size_t)hl + blen);
	memcpy(c->out + c->out_len, head, (size_t)hl);
	if (blen)
		memcpy(c->out + c->out_len + hl, body, blen);
	c->out_len += (size_t)hl + blen;
	if (c->connected)
		conn_flush(c);
}

/* ---- base64 and tiny JSON scanning -------------------------------------------- */

static void b64(const char *in, char *out)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(in), o = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)in[i] << 16;
		if (i + 1 < n)
			v |= (unsigned char)in[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)in[i + 2];
		out[o++] = t[(v >> 18) & 63];
		out[o++] = t[(v >> 12) & 63];
		out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? t[v & 63] : '=';
	}
	out[o] = 0;
}

/* Value of "key":"123" or "key":123 in @s (first occurrence), or 0. */
static uint64_t json_u64(const char *s, size_t len, const char *key)
{
	size_t kl = strlen(key);
	for (const char *p = memmem(s, len, key, kl); p;
	     p = memmem(p + 1, len - (size_t)(p + 1 - s), key, kl)) {
		const char *q = p + kl;
		if (q < s + len && *q == '"')
			q++;
		return strtoull(q, NULL, 10);
	}
	return 0;
}

/* ---- watchers ------------------------------------------------------------------ */

static const char *etcd_key = "/mesh/clusters/pbc";

static void rp_poll(struct conn *c)
{
	Raftplane__SubscribeRequest r;
	char node[32];
	unsigned char buf[256];
	raftplane__subscribe_request__init(&r);
	snprintf(node, sizeof node, "pb-%d", c->idx);
	r.node_id = node;
	r.version = c->version;
	r.has_version = c->has_version;
	r.wait_ms = (uint32_t)g.wait_ms;
	size_t len = raftplane__subscribe_request__pack(&r, buf);
	conn_send(c, "POST", g.servers[c->server], "/v1/subscribe", "application/x-protobuf", buf,
		  len);
}

static void watcher_start(struct conn *c)
{
	if (g.sys == SYS_RP) {
		rp_poll(c);
	} else {
		char k[128], body[256];
		b64(etcd_key, k);
		int bl = snprintf(body, sizeof body, "{\"create_request\":{\"key\":\"%s\"}}", k);
		conn_send(c, "POST", g.servers[c->server], "/v3/watch", "application/json", body,
			  (size_t)bl);
	}
}

static void change_check_done(void);

/* A watcher saw revision @rev at time @t (rp: @t is after the ACK was sent). */
static void watcher_saw(struct conn *c, uint64_t rev, double t, double recv_t)
{
	if (rev <= c->seen_rev)
		return;
	int before = g.rev && c->seen_rev >= g.rev;
	c->seen_rev = rev;
	c->seen_t = t;
	c->recv_t = recv_t;
	if (g.phase == 2 && !before && rev >= g.rev) {
		g.seen_count++;
		change_check_done();
	}
}

static void on_rp_answer(struct conn *c, const char *body, size_t blen)
{
	double recv_t = now_ms();
	if (c->status == 304) {
		rp_poll(c);
		return;
	}
	if (c->status != 200) {
		g.errors++;
		if (g.errors < 10)
			fprintf(stderr, "propbench: watcher %d: HTTP %d %.*s\n", c->idx, c->status,
				(int)(blen < 100 ? blen : 100), body);
		c->retry_at = now_ms() + 100;
		return;
	}
	Raftplane__Snapshot *s = raftplane__snapshot__unpack(NULL, blen, (const uint8_t *)body);
	if (!s) {
		g.errors++;
		c->retry_at = now_ms() + 100;
		return;
	}
	uint64_t v = s->version;
	raftplane__snapshot__free_unpacked(s, NULL);
	if (!c->has_version || v > c->version) {
		c->version = v;
		c->has_version = 1;
	}
	rp_poll(c); /* the ACK */
	double t = now_ms();
	if (!c->attached) {
		c->attached = 1;
		c->attach_t = t;
		g.attached++;
		c->seen_rev = v;
		return;
	}
	watcher_saw(c, v, t, recv_t);
}

/* Consume complete JSON objects from the etcd watch stream. */
static void on_etcd_stream(struct conn *c)
{
	size_t start = 0;
	for (;;) {
		/* find one balanced {...} from start */
		size_t i = start;
		while (i < c->msg_len && c->msg[i] != '{')
			i++;
		if (i >= c->msg_len) {
			start = c->msg_len;
			break;
		}
		int depth = 0, instr = 0, esc = 0;
		size_t j = i;
		for (; j < c->msg_len; j++) {
			char ch = c->msg[j];
			if (instr) {
				if (esc)
					esc = 0;
				else if (ch == '\\')
					esc = 1;
				else if (ch == '"')
					instr = 0;
			} else if (ch == '"') {
				instr = 1;
			} else if (ch == '{') {
				depth++;
			} else if (ch == '}' && --depth == 0) {
				break;
			}
		}
		if (j >= c->msg_len) {
			start = i;
			break;
		}
		const char *m = c->msg + i;
		size_t ml = j + 1 - i;
		double t = now_ms();
		if (memmem(m, ml, "\"created\":true", 14)) {
			if (!c->attached) {
				c->attached = 1;
				c->attach_t = t;
				g.attached++;
			}
		} else if (memmem(m, ml, "\"events\"", 8)) {
			uint64_t rev = json_u64(m, ml, "\"mod_revision\":");
			watcher_saw(c, rev, t, t);
		} else if (memmem(m, ml, "\"error\"", 7)) {
			g.errors++;
			if (g.errors < 10)
				fprintf(stderr, "propbench: watch %d: %.*s\n", c->idx,
					(int)(ml < 200 ? ml : 200), m);
		}
		start = j + 1;
	}
	memmove(c->msg, c->msg + start, c->msg_len - start);
	c->msg_len -= start;
}

/* ---- the writer and the change sequence -------------------------------------- */

static void write_change(void)
{
	char body[512];
	int port = 20000 + g.change_no % 40000;
	int bl = snprintf(body, sizeof body,
			  "{\"lb_policy\":\"round_robin\",\"connect_timeout_ms\":1000,"
			  "\"endpoints\":[{\"address\":\"127.0.0.1\",\"port\":%d,\"weight\":1}]}",
			  port);
	g.phase = 1;
	g.rev = 0;
	g.seen_count = 0;
	g.t_send = now_ms();
	g.deadline = g.t_send + 10000;
	if (g.sys == SYS_RP) {
		conn_send(&g.writer_c, "PUT", g.writer, "/v1/clusters/pbc", "application/json",
			  body, (size_t)bl);
	} else {
		char k[128], v[800], req[1024];
		b64(etcd_key, k);
		b64(body, v);
		int rl = snprintf(req, sizeof req, "{\"key\":\"%s\",\"value\":\"%s\"}", k, v);
		conn_send(&g.writer_c, "POST", g.writer, "/v3/kv/put", "application/json", req,
			  (size_t)rl);
	}
}

static void change_finished(int complete)
{
	int measured = g.change_no >= g.warmup;
	if (measured && complete) {
		double last = -1e18, first = 1e18, recv = -1e18;
		for (int i = 0; i < g.n; i++) {
			if (g.w[i].seen_t > last)
				last = g.w[i].seen_t;
			if (g.w[i].seen_t < first)
				first = g.w[i].seen_t;
			if (g.w[i].recv_t > recv)
				recv = g.w[i].recv_t;
		}
		for (int k = 0; k < g.n_servers; k++) {
			double sl = -1e18;
			for (int i = k; i < g.n; i += g.n_servers)
				if (g.w[i].seen_t > sl)
					sl = g.w[i].seen_t;
			g.lat_srv[k][g.n_lat] = sl - g.t0;
		}
		g.lat_last[g.n_lat] = last - g.t0;
		g.lat_first[g.n_lat] = first - g.t0;
		g.lat_recv[g.n_lat] = recv - g.t0;
		g.write_ms[g.n_lat] = g.t0 - g.t_send;
		g.n_lat++;
	} else if (measured) {
		g.missing++;
		fprintf(stderr,
			"propbench: change %d (rev %llu): only %d of %d watchers saw it in 10 s\n",
			g.change_no, (unsigned long long)g.rev, g.seen_count, g.n);
	}
	if (g.verify && g.sys == SYS_RP && complete) {
		char path[96];
		snprintf(path, sizeof path, "/v1/rollouts/%llu?wait=5s", (unsigned long long)g.rev);
		g.phase = 4;
		conn_send(&g.checker_c, "GET", g.writer, path, "application/json", "", 0);
		return;
	}
	g.change_no++;
	g.phase = 3;
	g.gap_until = now_ms() + g.gap_ms + (double)(rand() % (g.gap_ms + 1));
}

static void change_check_done(void)
{
	if (g.phase == 2 && g.seen_count >= g.n)
		change_finished(1);
}

static void on_writer_answer(struct conn *c, const char *body, size_t blen)
{
	g.t0 = now_ms();
	if (c->status != 200)
		die("write answered HTTP %d: %.*s", c->status, (int)(blen < 200 ? blen : 200),
		    body);
	g.rev = json_u64(body, blen, g.sys == SYS_RP ? "\"version\":" : "\"revision\":");
	if (!g.rev)
		die("no revision in write answer: %.*s", (int)(blen < 200 ? blen : 200), body);
	g.seen_count = 0;
	for (int i = 0; i < g.n; i++)
		if (g.w[i].seen_rev >= g.rev)
			g.seen_count++;
	g.phase = 2;
	change_check_done();
}

static void on_checker_answer(struct conn *c, const char *body, size_t blen)
{
	uint64_t pending = json_u64(body, blen, "\"pending\":");
	uint64_t acked = json_u64(body, blen, "\"acked\":");
	if (c->status == 200 && pending == 0 && acked >= (uint64_t)g.n)
		g.verified++;
	else {
		g.verify_failed++;
		if (g.verify_failed < 5)
			fprintf(stderr, "propbench: rollout %llu: HTTP %d %.*s\n",
				(unsigned long long)g.rev, c->status,
				(int)(blen < 300 ? blen : 300), body);
	}
	g.change_no++;
	g.phase = 3;
	g.gap_until = now_ms() + g.gap_ms + (double)(rand() % (g.gap_ms + 1));
}

/* ---- HTTP response parsing --------------------------------------------------- */

static void dispatch(struct conn *c, const char *body, size_t blen)
{
	if (c->role == WRITER)
		on_writer_answer(c, body, blen);
	else if (c->role == CHECKER)
		on_checker_answer(c, body, blen);
	else if (g.sys == SYS_RP)
		on_rp_answer(c, body, blen);
}

/* Parse as many complete responses (or, for etcd watch streams, chunks) as the
 * input holds. */
static void conn_parse(struct conn *c)
{
	for (;;) {
		if (!c->have_head) {
			char *e = memmem(c->in, c->in_len, "\r\n\r\n", 4);
			if (!e)
				return;
			c->head_len = (size_t)(e + 4 - c->in);
			c->status = atoi(c->in + 9);
			c->content_length = -1;
			c->chunked = 0;
			for (char *p = c->in; p < e; p++) {
				if (*p != '\n')
					continue;
				if (!strncasecmp(p + 1, "content-length:", 15))
					c->content_length = atol(p + 16);
				else if (!strncasecmp(p + 1, "transfer-encoding:", 18) &&
					 memmem(p + 1, (size_t)(e - p), "chunked", 7))
					c->chunked = 1;
			}
			if (c->status == 304 || c->status == 204)
				c->content_length = 0;
			c->have_head = 1;
			memmove(c->in, c->in + c->head_len, c->in_len - c->head_len);
			c->in_len -= c->head_len;
		}
		if (!c->chunked) {
			size_t cl = c->content_length < 0 ? 0 : (size_t)c->content_length;
			if (c->in_len < cl)
				return;
			c->have_head = 0;
			dispatch(c, c->in, cl);
			memmove(c->in, c->in + cl, c->in_len - cl);
			c->in_len -= cl;
			continue;
		}
		/* chunked: decode chunks; watch streams feed on_etcd_stream, others
		 * collect into msg until the last chunk */
		for (;;) {
			char *e = memmem(c->in, c->in_len, "\r\n", 2);
			if (!e)
				return;
			size_t sz = strtoul(c->in, NULL, 16);
			size_t hl = (size_t)(e + 2 - c->in);
			if (c->in_len < hl + sz + 2)
				return;
			if (c->msg_len + sz + 1 > c->msg_cap) {
				c->msg_cap = (c->msg_len + sz + 1) * 2;
				c->msg = xrealloc(c->msg, c->msg_cap);
			}
			memcpy(c->msg + c->msg_len, c->in + hl, sz);
			c->msg_len += sz;
			memmove(c->in, c->in + hl + sz + 2, c->in_len - hl - sz - 2);
			c->in_len -= hl + sz + 2;
			if (c->role == WATCHER && g.sys == SYS_ETCD) {
				on_etcd_stream(c);
				if (sz == 0) {
					c->have_head = 0;
					break;
				}
				continue;
			}
			if (sz == 0) {
				c->have_head = 0;
				dispatch(c, c->msg, c->msg_len);
				c->msg_len = 0;
				break;
			}
		}
	}
}

/* A watcher whose connection failed: count it, reconnect in 100 ms. */
static void watcher_lost(struct conn *c)
{
	g.errors++;
	if (g.errors < 10)
		fprintf(stderr, "propbench: watcher %d lost its connection\n", c->idx);
	conn_close(c);
	c->retry_at = now_ms() + 100;
}

/* The connection's peer closed it (or reading failed). */
static void conn_lost(struct conn *c)
{
	if (c->role != WATCHER) {
		/* an idle keep-alive connection closed by the server is reopened by
		 * the next request; one with a request in flight is an error */
		if ((c->role == WRITER && g.phase == 1) || (c->role == CHECKER && g.phase == 4))
			die("connection to %s lost", c->role == WRITER ? "writer" : "checker");
		conn_close(c);
		return;
	}
	watcher_lost(c);
}

/* TLS: ciphertext from the socket into the memory BIO, plain text into c->in. */
static void conn_readable_tls(struct conn *c)
{
	char raw[16384];
	int eof = 0;
	for (;;) {
		ssize_t k = read(c->fd, raw, sizeof raw);
		if (k > 0) {
			if (BIO_write(SSL_get_rbio(c->ssl), raw, (int)k) != (int)k)
				die("BIO_write");
			continue;
		}
		if (k == 0 || (errno != EAGAIN && errno != EINTR))
			eof = 1;
		break;
	}
	if (!c->hs_done && tls_pump(c) != 0) {
		tls_failed(c, "handshake");
		watcher_lost(c);
		return;
	}
	if (c->hs_done) {
		for (;;) {
			if (c->in_cap - c->in_len < 16384) {
				c->in_cap = c->in_cap * 2 + 65536;
				c->in = xrealloc(c->in, c->in_cap);
			}
			int n = SSL_read(c->ssl, c->in + c->in_len, (int)(c->in_cap - c->in_len));
			if (n > 0) {
				c->in_len += (size_t)n;
				continue;
			}
			int e = SSL_get_error(c->ssl, n);
			if (e == SSL_ERROR_WANT_READ)
				break;
			if (e != SSL_ERROR_ZERO_RETURN) {
				tls_failed(c, "read");
				watcher_lost(c);
				return;
			}
			eof = 1;
			break;
		}
	}
	conn_flush(c); /* whatever the handshake or the read wants sent */
	if (c->fd >= 0)
		conn_parse(c);
	if (eof && c->fd >= 0)
		conn_lost(c);
}

static void conn_readable(struct conn *c)
{
	if (c->ssl) {
		conn_readable_tls(c);
		return;
	}
	for (;;) {
		if (c->in_cap - c->in_len < 16384) {
			c->in_cap = c->in_cap * 2 + 65536;
			c->in = xrealloc(c->in, c->in_cap);
		}
		ssize_t k = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
		if (k > 0) {
			c->in_len += (size_t)k;
			continue;
		}
		if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
			conn_lost(c);
			return;
		}
		break;
	}
	conn_parse(c);
}

static void on_event(struct conn *c, uint32_t ev)
{
	if (c->fd < 0)
		return;
	if (!c->connected && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		int err = 0;
		socklen_t l = sizeof err;
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err) {
			g.errors++;
			conn_close(c);
			c->retry_at = now_ms() + 200;
			return;
		}
		c->connected = 1;
	}
	if (ev & EPOLLOUT)
		conn_flush(c);
	if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))
		conn_readable(c);
}

/* ---- main loop ------------------------------------------------------------------ */

static void run_loop(double until, int (*done)(void))
{
	struct epoll_event evs[512];
	while (!done()) {
		double now = now_ms();
		if (until > 0 && now >= until)
			return;
		int timeout = 5;
		if (g.phase == 3 && g.gap_until > now)
			timeout = (int)(g.gap_until - now) + 1;
		int k = epoll_wait(g.ep, evs, 512, timeout);
		for (int i = 0; i < k; i++)
			on_event(evs[i].data.ptr, evs[i].events);
		now = now_ms();
		/* reconnect watchers that failed */
		for (int i = 0; i < g.n; i++) {
			struct conn *c = &g.w[i];
			if (c->fd < 0 && c->retry_at && now >= c->retry_at) {
				c->retry_at = 0;
				conn_open(c, g.servers[c->server]);
				watcher_start(c);
			} else if (c->fd >= 0 && c->retry_at && now >= c->retry_at) {
				c->retry_at =
					0; /* an HTTP error: poll again on the same connection */
				watcher_start(c);
			}
		}
		if (g.phase == 2 && now > g.deadline)
			change_finished(0);
		if (g.phase == 1 && now > g.deadline)
			die("write got no answer in 10 s");
		if (g.phase == 3 && now >= g.gap_until && g.change_no < g.warmup + g.changes)
			write_change();
	}
}

static int all_attached(void)
{
	return g.attached >= g.n;
}
static int never(void)
{
	return 0;
}
static int all_changes_done(void)
{
	return g.change_no >= g.warmup + g.changes && g.phase == 3;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Percentile by the nearest-rank method on a sorted copy. */
static double pct(const double *v, int n, double p)
{
	if (n == 0)
		return -1;
	double *s = malloc(sizeof *s * (size_t)n);
	memcpy(s, v, sizeof *s * (size_t)n);
	qsort(s, (size_t)n, sizeof *s, cmp_d);
	int r = (int)(p / 100.0 * n + 0.999999);
	if (r < 1)
		r = 1;
	if (r > n)
		r = n;
	double x = s[r - 1];
	free(s);
	return x;
}

static void print_dist(const char *name, const double *v, int n)
{
	printf(",\"%s\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f,\"min\":%.3f}", name,
	       pct(v, n, 50), pct(v, n, 90), pct(v, n, 99), pct(v, n, 100), pct(v, n, 0));
}

int main(int argc, char **argv)
{
	const char *servers = NULL, *tls_ca = NULL, *tls_ca_key = NULL;
	g.trust_domain = "raftplane";
	g.changes = 100, g.warmup = 5, g.gap_ms = 20, g.wait_ms = 30000, g.label = "";
	g.sys = SYS_RP;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
		if (!strcmp(a, "--verify")) {
			g.verify = 1;
			continue;
		}
		if (!strcmp(a, "--storm")) {
			g.storm = 1;
			continue;
		}
		i++;
		if (!strcmp(a, "--system"))
			g.sys = !strcmp(v, "etcd") ? SYS_ETCD : SYS_RP;
		else if (!strcmp(a, "--servers"))
			servers = v;
		else if (!strcmp(a, "--writer"))
			snprintf(g.writer, sizeof g.writer, "%s", v);
		else if (!strcmp(a, "--n"))
			g.n = atoi(v);
		else if (!strcmp(a, "--changes"))
			g.changes = atoi(v);
		else if (!strcmp(a, "--warmup"))
			g.warmup = atoi(v);
		else if (!strcmp(a, "--gap-ms"))
			g.gap_ms = atoi(v);
		else if (!strcmp(a, "--server-pid"))
			g.server_pid = atoi(v);
		else if (!strcmp(a, "--idle-s"))
			g.idle_s = atoi(v);
		else if (!strcmp(a, "--wait-ms"))
			g.wait_ms = atoi(v);
		else if (!strcmp(a, "--label"))
			g.label = v;
		else if (!strcmp(a, "--tls-ca"))
			tls_ca = v;
		else if (!strcmp(a, "--tls-ca-key"))
			tls_ca_key = v;
		else if (!strcmp(a, "--trust-domain"))
			g.trust_domain = v;
		else if (!strcmp(a, "--token"))
			g.token = v;
		else
			die("unknown flag %s", a);
	}
	if (!servers || !g.writer[0] || g.n <= 0)
		die("need --servers, --writer and --n (see the comment atop propbench.c)");
	if (tls_ca_key && !tls_ca)
		die("--tls-ca-key needs --tls-ca");
	if (g.token && strlen(g.token) > 512)
		die("--token is too long");
	char tmp[1024];
	snprintf(tmp, sizeof tmp, "%s", servers);
	for (char *s = strtok(tmp, ","); s && g.n_servers < 16; s = strtok(NULL, ","))
		snprintf(g.servers[g.n_servers++], 64, "%s", s);
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	srand((unsigned)getpid());

	g.ep = epoll_create1(EPOLL_CLOEXEC);
	g.w = calloc((size_t)g.n, sizeof *g.w);
	double t_certs = now_ms();
	if (tls_ca) {
		tls_init(tls_ca);
		if (tls_ca_key)
			make_node_certs(tls_ca, tls_ca_key);
	}
	t_certs = now_ms() - t_certs;
	int cap = g.changes + 1;
	g.lat_last = calloc((size_t)cap, sizeof(double));
	g.lat_first = calloc((size_t)cap, sizeof(double));
	g.lat_recv = calloc((size_t)cap, sizeof(double));
	g.write_ms = calloc((size_t)cap, sizeof(double));
	for (int k = 0; k < g.n_servers; k++)
		g.lat_srv[k] = calloc((size_t)cap, sizeof(double));

	long rss0 = g.server_pid ? proc_rss_kib(g.server_pid) : -1;
	double cpu0 = g.server_pid ? proc_cpu_s(g.server_pid) : 0;
	double self0 = self_cpu_s();
	double t_start = now_ms();

	/* attach: open connections in batches so that the listen backlog keeps up */
	for (int i = 0; i < g.n; i++) {
		struct conn *c = &g.w[i];
		c->role = WATCHER;
		c->idx = i;
		c->server = i % g.n_servers;
		c->fd = -1;
		if (conn_open(c, g.servers[c->server]) != 0)
			die("connect %s: %s", g.servers[c->server], strerror(errno));
		watcher_start(c);
		if (i % 100 == 99) {
			int target = i + 1 - 50;
			double until = now_ms() + 2000;
			while (g.attached < target && now_ms() < until)
				run_loop(now_ms() + 5, never);
		}
	}
	g.writer_c.role = WRITER;
	g.writer_c.fd = -1;
	conn_open(&g.writer_c, g.writer);
	g.checker_c.role = CHECKER;
	g.checker_c.fd = -1;
	conn_open(&g.checker_c, g.writer);
	run_loop(now_ms() + 120000, all_attached);
	if (!all_attached())
		die("only %d of %d watchers attached in 120 s", g.attached, g.n);
	double t_attached = now_ms();
	double self_attached = self_cpu_s();
	fprintf(stderr, "propbench: %s %d watchers attached in %.0f ms\n",
		g.sys == SYS_RP ? "rp" : "etcd", g.n, t_attached - t_start);

	/* settle, then sample memory; then an idle window for the CPU at rest */
	run_loop(now_ms() + 1000, never);
	long rss1 = g.server_pid ? proc_rss_kib(g.server_pid) : -1;
	double cpu1 = g.server_pid ? proc_cpu_s(g.server_pid) : 0;
	double t_idle0 = now_ms();
	if (g.idle_s > 0)
		run_loop(now_ms() + g.idle_s * 1000.0, never);
	double cpu2 = g.server_pid ? proc_cpu_s(g.server_pid) : 0;
	double t_idle1 = now_ms();

	/* the changes */
	double self_c0 = self_cpu_s(), t_c0 = now_ms();
	g.phase = 3;
	g.gap_until = 0;
	run_loop(0, all_changes_done);
	double self_c1 = self_cpu_s(), t_c1 = now_ms();
	long rss2 = g.server_pid ? proc_rss_kib(g.server_pid) : -1;
	double cpu3 = g.server_pid ? proc_cpu_s(g.server_pid) : 0;

	/* the reconnect storm: every watcher drops its connection (a proxy
	 * restart: it forgets its version), 1 s for the server to see the
	 * closes, then all N connect at once (no batching) and are attached
	 * again once each received its snapshot (and sent its ACK poll) */
	double storm_ms = 0, storm_cpu = 0, storm_self = 0, storm_p50 = 0, storm_p99 = 0;
	int storm_hs = 0, storm_err = 0, storm_tlsf = 0;
	if (g.storm) {
		for (int i = 0; i < g.n; i++) {
			struct conn *c = &g.w[i];
			conn_close(c);
			c->attached = 0;
			c->has_version = 0;
			c->version = 0;
			c->seen_rev = 0;
			c->retry_at = 0;
		}
		g.attached = 0;
		run_loop(now_ms() + 1000, never);
		int hs0 = g.handshakes, err0 = g.errors, tf0 = g.tls_failures;
		double cs0 = g.server_pid ? proc_cpu_s(g.server_pid) : 0, ss0 = self_cpu_s();
		double ts0 = now_ms();
		for (int i = 0; i < g.n; i++) {
			struct conn *c = &g.w[i];
			if (conn_open(c, g.servers[c->server]) != 0)
				die("connect %s: %s", g.servers[c->server], strerror(errno));
			watcher_start(c);
		}
		run_loop(now_ms() + 120000, all_attached);
		if (!all_attached())
			die("storm: only %d of %d watchers attached again in 120 s", g.attached,
			    g.n);
		storm_ms = now_ms() - ts0;
		storm_cpu = g.server_pid ? proc_cpu_s(g.server_pid) - cs0 : 0;
		storm_self = self_cpu_s() - ss0;
		storm_hs = g.handshakes - hs0;
		storm_err = g.errors - err0;
		storm_tlsf = g.tls_failures - tf0;
		double *at = malloc(sizeof *at * (size_t)g.n);
		for (int i = 0; i < g.n; i++)
			at[i] = g.w[i].attach_t - ts0;
		storm_p50 = pct(at, g.n, 50);
		storm_p99 = pct(at, g.n, 99);
		free(at);
		fprintf(stderr, "propbench: storm: %d watchers attached again in %.0f ms\n", g.n,
			storm_ms);
	}

	printf("{\"system\":\"%s\",\"label\":\"%s\",\"n\":%d,\"servers\":%d,\"changes\":%d,"
	       "\"measured\":%d,"
	       "\"missing\":%d,\"errors\":%d",
	       g.sys == SYS_RP ? "raftplane" : "etcd", g.label, g.n, g.n_servers, g.changes,
	       g.n_lat, g.missing, g.errors);
	if (g.sys == SYS_RP && g.verify)
		printf(",\"verified\":%d,\"verify_failed\":%d", g.verified, g.verify_failed);
	print_dist("last_ms", g.lat_last, g.n_lat);
	print_dist("first_ms", g.lat_first, g.n_lat);
	print_dist("last_recv_ms", g.lat_recv, g.n_lat);
	print_dist("write_ms", g.write_ms, g.n_lat);
	printf(",\"per_server\":[");
	for (int k = 0; k < g.n_servers; k++)
		printf("%s{\"server\":\"%s\",\"writer\":%s,\"last_p50\":%.3f,\"last_p99\":%.3f}",
		       k ? "," : "", g.servers[k],
		       strcmp(g.servers[k], g.writer) ? "false" : "true",
		       pct(g.lat_srv[k], g.n_lat, 50), pct(g.lat_srv[k], g.n_lat, 99));
	printf("]");
	printf(",\"attach_ms\":%.0f,\"client_cpu_attach_s\":%.3f,\"client_cpu_changes_s\":%.3f,"
	       "\"changes_wall_s\":%.3f,\"client_cpu_pct\":%.1f",
	       t_attached - t_start, self_attached - self0, self_c1 - self_c0, (t_c1 - t_c0) / 1e3,
	       100.0 * (self_c1 - self_c0) / ((t_c1 - t_c0) / 1e3));
	if (g.server_pid)
		printf(",\"server\":{\"pid\":%d,\"rss_before_kib\":%ld,\"rss_attached_kib\":%ld,"
		       "\"rss_after_kib\":%ld,\"cpu_attach_s\":%.3f,\"cpu_idle_s\":%.3f,\"idle_s\":"
		       "%.3f,"
		       "\"cpu_changes_s\":%.3f}",
		       g.server_pid, rss0, rss1, rss2, cpu1 - cpu0, cpu2 - cpu1,
		       (t_idle1 - t_idle0) / 1e3, cpu3 - cpu2);
	printf(",\"tls\":%s,\"node_certs\":%s,\"token\":%s,\"handshakes\":%d,"
	       "\"tls_failures\":%d,\"certs_ms\":%.0f",
	       g.tls_ctx ? "true" : "false", g.node_cert ? "true" : "false",
	       g.token ? "true" : "false", g.handshakes, g.tls_failures, t_certs);
	if (g.storm)
		printf(",\"storm\":{\"n\":%d,\"ms\":%.1f,\"attach_p50_ms\":%.1f,"
		       "\"attach_p99_ms\":%.1f,\"server_cpu_s\":%.3f,\"client_cpu_s\":%.3f,"
		       "\"handshakes\":%d,\"errors\":%d,\"tls_failures\":%d}",
		       g.n, storm_ms, storm_p50, storm_p99, storm_cpu, storm_self, storm_hs,
		       storm_err, storm_tlsf);
	printf("}\n");
	fflush(stdout);
	return 0;
}
