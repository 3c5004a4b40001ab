/* API tokens: parsing, authentication and roles, the writes-per-token
 * limit, the bootstrap token and the enforcement marker (see auth.h).
 *
 * Design notes
 * 1. Lookup is by SHA-256 of the presented secret in a sorted index; the
 *    entry found is then compared with CRYPTO_memcmp. The order of the
 *    binary search depends only on hashes, which tell nothing about a
 *    secret (finding one from a hash is a preimage attack on SHA-256).
 * 2. The write limit is a token bucket per key (token:NAME, or the
 *    client's IP when tokens are off and --max-writes-per-token was
 *    given: the default applies to tokens only) holding at most one second of
 *    writes (N) and refilled at N per second. Buckets that would be full
 *    are dropped when the table grows; past MAX_BUCKETS keys share one
 *    bucket, so memory stays bounded whatever the clients do.
 * 3. The bootstrap token is proposed by the ready leader only, and only
 *    while the state never had tokens (TOKEN_BOOTSTRAP is refused once it
 *    had): restarts, other leaders and other members' files create no
 *    second token. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "raftplane/err.h"
#include "raftplane/log.h"

#define BOOT_POLL_MS 200
#define MAX_BUCKETS 65536
#define GC_BUCKETS 4096
#define BUCKET_SLOTS 1024
#define MARKER_FILE "tokens-enabled"

struct tok_entry {
	unsigned char hash[RP_TOKEN_HASH_LEN];
	int role;
	char name[RP_MAX_TOKEN_NAME + 1];
};

struct bucket {
	struct bucket *next;
	double level;   /* writes left */
	uint64_t at_ms; /* uv_now() of the last refill */
	char key[RP_MAX_ACTOR];
};

struct rp_auth {
	struct rp_api *api;
	int required; /* --bootstrap-token-file */
	int marker;   /* the data dir's marker exists (invariant 1) */
	char marker_path[PATH_MAX];
	/* the index (invariant 2) */
	struct tok_entry *idx;
	size_t n_idx;
	uint64_t gen;
	int have_gen;
	/* the write limit (design note 2) */
	struct bucket *slots[BUCKET_SLOTS];
	size_t n_buckets;
	struct bucket shared; /* past MAX_BUCKETS */
	/* the bootstrap token (design note 3) */
	uv_timer_t boot;
	int boot_inflight;
	int closing;
	struct rp_auth_stats stats;
};

/* ---- token strings ------------------------------------------------------- */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64_value(char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '-')
		return 62;
	if (ch == '_')
		return 63;
	return -1;
}

int rp_token_parse(const char *s, size_t len, unsigned char secret[RP_TOKEN_SECRET_LEN])
{
	const size_t plen = sizeof RP_TOKEN_PREFIX - 1;
	uint32_t acc = 0;
	int bits = 0;
	size_t out = 0;
	if (len != RP_TOKEN_STRLEN || memcmp(s, RP_TOKEN_PREFIX, plen) != 0)
		return -1;
	for (size_t i = plen; i < len; i++) {
		int v = b64_value(s[i]);
		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			secret[out++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* 43 characters carry 258 bits: the last 2 must be zero (one string
	 * per secret) */
	if (out != RP_TOKEN_SECRET_LEN || acc != 0) {
		OPENSSL_cleanse(secret, RP_TOKEN_SECRET_LEN);
		return -1;
	}
	return 0;
}

void rp_token_format(const unsigned char secret[RP_TOKEN_SECRET_LEN], char out[RP_TOKEN_STRLEN + 1])
{
	uint32_t acc = 0;
	int bits = 0;
	size_t o = sizeof RP_TOKEN_PREFIX - 1;
	memcpy(out, RP_TOKEN_PREFIX, o);
	for (size_t i = 0; i < RP_TOKEN_SECRET_LEN; i++) {
		acc = acc << 8 | secret[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = b64url[(acc >> bits) & 63];
		}
	}
	if (bits > 0)
		out[o++] = b64url[(acc << (6 - bits)) & 63];
	out[o] = '\0';
}

void rp_token_hash(const unsigned char secret[RP_TOKEN_SECRET_LEN],
		   unsigned char hash[RP_TOKEN_HASH_LEN])
{
	SHA256(secret, RP_TOKEN_SECRET_LEN, hash);
}

int rp_token_file_load(const char *path, char token[RP_TOKEN_STRLEN + 1],
		       unsigned char hash[RP_TOKEN_HASH_LEN], char *err, size_t errlen)
{
	char buf[256];
	unsigned char secret[RP_TOKEN_SECRET_LEN];
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "--bootstrap-token-file %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "--bootstrap-token-file %s: not a regular file", path);
		close(fd);
		return -1;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen,
			 "--bootstrap-token-file %s: group or others may access it (mode %04o); "
			 "chmod 600 it",
			 path, (unsigned)(st.st_mode & 07777));
		close(fd);
		return -1;
	}
	n = read(fd, buf, sizeof buf);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "--bootstrap-token-file %s: %s", path, strerror(errno));
		return -1;
	}
	size_t len = (size_t)n;
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	if (len == 0) {
		snprintf(err, errlen, "--bootstrap-token-file %s: is empty", path);
		return -1;
	}
	if ((size_t)n == sizeof buf || rp_token_parse(buf, len, secret) != 0) {
		OPENSSL_cleanse(buf, sizeof buf);
		snprintf(err, errlen,
			 "--bootstrap-token-file %s: not a token (one line: %s followed by 43 "
			 "base64url characters)",
			 path, RP_TOKEN_PREFIX);
		return -1;
	}
	memcpy(token, buf, RP_TOKEN_STRLEN);
	token[RP_TOKEN_STRLEN] = '\0';
	rp_token_hash(secret, hash);
	OPENSSL_cleanse(buf, sizeof buf);
	OPENSSL_cleanse(secret, sizeof secret);
	return 0;
}

const char *rp_token_role_name(int role)
{
	switch (role) {
	case RP_TOKEN_READ: return "read";
	case RP_TOKEN_WRITE: return "write";
	case RP_TOKEN_ADMIN: return "admin";
	default: return "none";
	}
}

int rp_token_role_parse(const char *s)
{
	if (strcmp(s, "read") == 0)
		return RP_TOKEN_READ;
	if (strcmp(s, "write") == 0)
		return RP_TOKEN_WRITE;
	if (strcmp(s, "admin") == 0)
		return RP_TOKEN_ADMIN;
	return -1;
}

/* ---- the enforcement marker (invariant 1) ---------------------------------- */

static void write_marker(struct rp_auth *a)
{
	static const char text[] = "this cluster requires API tokens (docs/security.md)\n";
	int fd = open(a->marker_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, text, sizeof text - 1) != (ssize_t)(sizeof text - 1) ||
	    fsync(fd) != 0) {
		rp_log_error("auth: cannot write %s: %s (tokens stay enforced while running)",
			     a->marker_path, strerror(errno));
	} else {
		rp_log_info("auth: this node requires API tokens from now on (%s)", a->marker_path);
	}
	if (fd >= 0)
		close(fd);
	a->marker = 1; /* enforced while running, written or not */
}

int rp_auth_enforced(struct rp_api *api)
{
	struct rp_auth *a = api->auth;
	if (!a->marker && (a->required || rp_store_tokens_enabled(rp_node_store(api->node))))
		write_marker(a); /* a restart without the flag stays closed */
	return a->marker;
}

/* ---- the index (invariant 2) ------------------------------------------------ */

struct collect {
	struct tok_entry *v;
	size_t n, cap;
	int oom;
};

static int collect_token(void *arg, const struct rp_token *t)
{
	struct collect *col = arg;
	if (col->n == col->cap) {
		size_t cap = col->cap ? 2 * col->cap : 16;
		struct tok_entry *v = realloc(col->v, cap * sizeof *v);
		if (!v) {
			col->oom = 1;
			return 1;
		}
		col->v = v;
		col->cap = cap;
	}
	struct tok_entry *e = &col->v[col->n++];
	memcpy(e->hash, t->hash, sizeof e->hash);
	e->role = t->role;
	snprintf(e->name, sizeof e->name, "%s", t->name);
	return 0;
}

static int cmp_entry(const void *x, const void *y)
{
	return memcmp(((const struct tok_entry *)x)->hash, ((const struct tok_entry *)y)->hash,
		      RP_TOKEN_HASH_LEN);
}

/* 0, or -1 when the index could not be rebuilt (then it is empty: refuse). */
static int refresh(struct rp_auth *a)
{
	struct rp_store *s = rp_node_store(a->api->node);
	uint64_t gen = rp_store_tokens_gen(s);
	struct collect col = {0};
	if (a->have_gen && gen == a->gen)
		return 0;
	int rv = rp_store_tokens(s, collect_token, &col);
	free(a->idx);
	a->idx = NULL;
	a->n_idx = 0;
	a->have_gen = 0;
	if (rv != 0 || col.oom) {
		free(col.v);
		return -1;
	}
	if (col.n)
		qsort(col.v, col.n, sizeof *col.v, cmp_entry);
	a->idx = col.v;
	a->n_idx = col.n;
	a->gen = gen;
	a->have_gen = 1;
	return 0;
}

static const struct tok_entry *lookup(struct rp_auth *a,
				      const unsigned char hash[RP_TOKEN_HASH_LEN])
{
	size_t lo = 0, hi = a->n_idx;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int d = memcmp(hash, a->idx[mid].hash, RP_TOKEN_HASH_LEN);
		if (d == 0)
			lo = hi = mid;
		else if (d < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	if (lo < a->n_idx && CRYPTO_memcmp(hash, a->idx[lo].hash, RP_TOKEN_HASH_LEN) == 0)
		return &a->idx[lo];
	return NULL;
}

size_t rp_auth_token_count(struct rp_api *api)
{
	refresh(api->auth);
	return api->auth->n_idx;
}

const struct rp_auth_stats *rp_auth_stats(struct rp_api *api)
{
	return &api->auth->stats;
}

/* ---- authentication --------------------------------------------------------- */

static void set_anonymous(struct rp_call *c)
{
	const char *id = rp_call_peer_identity(c);
	if (id)
		snprintf(c->actor, sizeof c->actor, "cert:%s", id);
	else
		snprintf(c->actor, sizeof c->actor, "anonymous");
}

/* The token of "Authorization: Bearer T": 0 and @secret, or -1. */
static int bearer(struct rp_call *c, unsigned char secret[RP_TOKEN_SECRET_LEN])
{
	const h2o_headers_t *hs = &c->req->headers;
	ssize_t i = h2o_find_header(hs, H2O_TOKEN_AUTHORIZATION, -1);
	if (i < 0 || h2o_find_header(hs, H2O_TOKEN_AUTHORIZATION, i) >= 0)
		return -1; /* none, or more than one */
	h2o_iovec_t v = hs->entries[i].value;
	size_t p = 0;
	if (v.len < 7 || !h2o_lcstris(v.base, 6, H2O_STRLIT("bearer")) || v.base[6] != ' ')
		return -1;
	for (p = 6; p < v.len && v.base[p] == ' '; p++)
		;
	return rp_token_parse(v.base + p, v.len - p, secret);
}

static void refuse(struct rp_call *c, int err, const char *msg)
{
	struct rp_auth *a = c->api->auth;
	if (err == RP_ERR_UNAUTHENTICATED)
		a->stats.unauthenticated++;
	else
		a->stats.permission_denied++;
	rp_respond_error(c, err, msg, -1);
}

int rp_auth_check(struct rp_call *c, int need)
{
	struct rp_auth *a = c->api->auth;
	unsigned char secret[RP_TOKEN_SECRET_LEN], hash[RP_TOKEN_HASH_LEN];
	char msg[160];
	if (need == RP_TOKEN_NONE || !rp_auth_enforced(c->api)) {
		set_anonymous(c);
		return 0;
	}
	const struct tok_entry *e = NULL;
	int presented = bearer(c, secret) == 0;
	if (presented) {
		rp_token_hash(secret, hash);
		OPENSSL_cleanse(secret, sizeof secret);
		if (refresh(a) == 0)
			e = lookup(a, hash);
	}
	if (!e && presented && !rp_store_tokens_enabled(rp_node_store(c->api->node))) {
		/* enforcing (flag or marker) but this node holds no token yet: it
		 * joined or was wiped and has not applied the cluster's state, or
		 * the bootstrap token is not created yet. Saying 401 would tell a
		 * valid token it is invalid: 503, retry (here or elsewhere). */
		rp_respond_error(c, RP_ERR_UNAVAILABLE,
				 "this node does not hold the cluster's tokens yet: retry", -1);
		return -1;
	}
	if (!e) { /* one answer for missing, malformed and unknown (invariant 3) */
		refuse(c, RP_ERR_UNAUTHENTICATED,
		       "this request needs a valid API token: Authorization: Bearer rpt_...");
		return -1;
	}
	snprintf(c->actor, sizeof c->actor, "token:%s", e->name);
	if (e->role < need) {
		snprintf(msg, sizeof msg, "token %s has role %s; this request needs %s", e->name,
			 rp_token_role_name(e->role), rp_token_role_name(need));
		refuse(c, RP_ERR_PERMISSION, msg);
		return -1;
	}
	return 0;
}

/* ---- the write limit (design note 2) --------------------------------------- */

static size_t slot_of(const char *key)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (const char *p = key; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	return (size_t)(h % BUCKET_SLOTS);
}

static void refill(struct bucket *b, uint64_t now, unsigned rate)
{
	if (now > b->at_ms) {
		b->level += (double)(now - b->at_ms) * rate / 1000.0;
		if (b->level > rate)
			b->level = rate;
		b->at_ms = now;
	}
}

/* Drop the buckets that are full by now: they hold nothing a new one
 * would not. */
static void gc_buckets(struct rp_auth *a, uint64_t now, unsigned rate)
{
	for (size_t i = 0; i < BUCKET_SLOTS; i++) {
		struct bucket **pp = &a->slots[i];
		while (*pp) {
			struct bucket *b = *pp;
			refill(b, now, rate);
			if (b->level >= rate) {
				*pp = b->next;
				free(b);
				a->n_buckets--;
			} else {
				pp = &b->next;
			}
		}
	}
}

static struct bucket *bucket_of(struct rp_auth *a, const char *key, uint64_t now, unsigned rate)
{
	size_t i = slot_of(key);
	for (struct bucket *b = a->slots[i]; b; b = b->next)
		if (strcmp(b->key, key) == 0)
			return b;
	if (a->n_buckets >= GC_BUCKETS)
		gc_buckets(a, now, rate);
	struct bucket *b = a->n_buckets < MAX_BUCKETS ? calloc(1, sizeof *b) : NULL;
	if (!b)
		return &a->shared;
	snprintf(b->key, sizeof b->key, "%s", key);
	b->level = rate;
	b->at_ms = now;
	b->next = a->slots[i];
	a->slots[i] = b;
	a->n_buckets++;
	return b;
}

int rp_auth_limit_write(struct rp_call *c)
{
	struct rp_auth *a = c->api->auth;
	unsigned rate = c->api->opts.max_writes_per_token;
	char key[RP_MAX_ACTOR];
	if (rate == 0 || (!c->api->opts.max_writes_given && !rp_auth_enforced(c->api)))
		return 0; /* without tokens, only an explicit limit counts per IP */
	if (h2o_find_header_by_str(&c->req->headers, H2O_STRLIT("x-raftplane-forwarded"), -1) >=
		    0 &&
	    rp_call_from_member(c))
		return 0; /* counted by the member it arrived at */
	if (strncmp(c->actor, "token:", 6) == 0 || strncmp(c->actor, "cert:", 5) == 0) {
		snprintf(key, sizeof key, "%s", c->actor);
	} else { /* tokens off: the client's IP */
		char addr[RP_MAX_ADDRESS];
		rp_call_peer_address(c, addr, sizeof addr);
		char *colon = strrchr(addr, ':');
		if (colon)
			*colon = '\0';
		snprintf(key, sizeof key, "ip:%s", addr);
	}
	uint64_t now = uv_now(c->api->loop);
	struct bucket *b = bucket_of(a, key, now, rate);
	if (b == &a->shared && b->at_ms == 0) {
		b->level = rate;
		b->at_ms = now;
	}
	refill(b, now, rate);
	if (b->level >= 1.0) {
		b->level -= 1.0;
		return 0;
	}
	/* whole seconds until one write is back, at least 1 */
	double wait_ms = (1.0 - b->level) * 1000.0 / rate;
	unsigned secs = (unsigned)((wait_ms + 999.0) / 1000.0);
	char ra[16], msg[128];
	snprintf(ra, sizeof ra, "%u", secs ? secs : 1);
	h2o_iovec_t v = h2o_strdup(&c->req->pool, ra, SIZE_MAX);
	h2o_add_header(&c->req->pool, &c->req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, v.base,
		       v.len);
	snprintf(msg, sizeof msg, "more than %u writes per second for %.80s", rate, key);
	a->stats.rate_limited++;
	rp_respond_error(c, RP_ERR_RATE_LIMITED, msg, -1);
	return -1;
}

/* ---- the bootstrap token (design note 3) ------------------------------------ */

static void on_boot_applied(void *arg, int status, const struct rp_apply_result *res)
{
	struct rp_auth *a = arg;
	a->boot_inflight = 0;
	if (status == RP_OK && res->status == RP_OK)
		rp_log_info("auth: created the bootstrap admin token (revision %llu)",
			    (unsigned long long)res->revision);
}

static void on_boot_timer(uv_timer_t *t)
{
	struct rp_auth *a = t->data;
	struct rp_node *node = a->api->node;
	struct rp_store *s = rp_node_store(node);
	if (a->closing || a->boot_inflight)
		return;
	if (rp_store_tokens_enabled(s)) {
		uv_timer_stop(t); /* the cluster has (had) tokens: nothing to create */
		rp_auth_enforced(a->api);
		return;
	}
	if (rp_node_closing(node) || !rp_node_leader_ready(node))
		return;
	Raftplane__Command cmd;
	Raftplane__Token tok;
	raftplane__command__init(&cmd);
	raftplane__token__init(&tok);
	cmd.type = RAFTPLANE__COMMAND__TYPE__TOKEN_BOOTSTRAP;
	tok.name = "bootstrap";
	tok.role = RP_TOKEN_ADMIN;
	tok.hash.data = a->api->opts.bootstrap_hash;
	tok.hash.len = RP_TOKEN_HASH_LEN;
	cmd.token = &tok;
	cmd.actor = "system:bootstrap-token-file";
	cmd.address = "";
	cmd.time_ms = rp_wall_ms();
	if (rp_node_propose(node, &cmd, on_boot_applied, a) == RP_OK)
		a->boot_inflight = 1;
}

int rp_auth_init(struct rp_api *api)
{
	struct rp_auth *a = calloc(1, sizeof *a);
	struct stat st;
	if (!a)
		return RP_ERR_NOMEM;
	a->api = api;
	a->required = api->opts.tokens_required;
	snprintf(a->marker_path, sizeof a->marker_path, "%s/%s",
		 rp_node_config(api->node)->data_dir, MARKER_FILE);
	a->marker = stat(a->marker_path, &st) == 0;
	uv_timer_init(api->loop, &a->boot);
	a->boot.data = a;
	if (api->opts.have_bootstrap_token)
		uv_timer_start(&a->boot, on_boot_timer, 0, BOOT_POLL_MS);
	api->auth = a;
	rp_auth_enforced(api); /* with the flag: the marker at once */
	if (a->required || a->marker)
		rp_log_info("auth: API tokens required%s",
			    a->marker && !a->required ? " (the cluster has tokens)" : "");
	return RP_OK;
}

void rp_auth_close(struct rp_api *api)
{
	struct rp_auth *a = api->auth;
	if (!a || a->closing)
		return;
	a->closing = 1;
	uv_timer_stop(&a->boot);
	uv_close((uv_handle_t *)&a->boot, NULL);
}
