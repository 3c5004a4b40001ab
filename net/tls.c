/* TLS contexts from files, reload, peer identities (tls.h). */
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls.h"

const char *const rp_tls_fail_names[RP_TLS_FAIL__N] = {
	"no_cert", "unknown_ca",     "expired",   "not_yet_valid",
	"invalid", "wrong_identity", "handshake",
};

struct rp_tls {
	enum rp_tls_role role;
	enum rp_tls_verify verify;
	char *cert, *key, *ca;
	SSL_CTX *ctx;
	const char *alpn; /* server: the one ALPN protocol selected, or NULL */
	int soft_verify;  /* server: a failed verification leaves the refusal to the caller */
	uint64_t failures[RP_TLS_FAIL__N];
	uint64_t reloads_ok, reloads_failed;
};

static int ctx_idx = -1; /* SSL_CTX ex_data: the struct rp_tls */
static int ssl_idx = -1; /* SSL ex_data: 1 + the first verification error seen */
static pthread_once_t idx_once = PTHREAD_ONCE_INIT;

static void make_indices(void)
{
	ctx_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	ssl_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static void count(uint64_t *c)
{
	__atomic_add_fetch(c, 1, __ATOMIC_RELAXED);
}

void rp_tls_count(struct rp_tls *t, enum rp_tls_fail f)
{
	if (t != NULL && f >= 0 && f < RP_TLS_FAIL__N)
		count(&t->failures[f]);
}

void rp_tls_get_stats(const struct rp_tls *t, struct rp_tls_stats *out)
{
	for (int i = 0; i < RP_TLS_FAIL__N; i++)
		out->failures[i] = __atomic_load_n(&t->failures[i], __ATOMIC_RELAXED);
	out->reloads_ok = __atomic_load_n(&t->reloads_ok, __ATOMIC_RELAXED);
	out->reloads_failed = __atomic_load_n(&t->reloads_failed, __ATOMIC_RELAXED);
}

enum rp_tls_fail rp_tls_classify(long e)
{
	switch (e) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CRL_HAS_EXPIRED: return RP_TLS_FAIL_EXPIRED;
	case X509_V_ERR_CERT_NOT_YET_VALID:
	case X509_V_ERR_CRL_NOT_YET_VALID: return RP_TLS_FAIL_NOT_YET_VALID;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_CERT_SIGNATURE_FAILURE: return RP_TLS_FAIL_UNKNOWN_CA;
	default: return RP_TLS_FAIL_INVALID;
	}
}

/* Fails the handshake at the first verification error and counts it once. */
static int verify_cb(int ok, X509_STORE_CTX *x)
{
	if (ok)
		return 1;
	SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	if (ssl == NULL)
		return 0;
	long e = X509_STORE_CTX_get_error(x);
	struct rp_tls *t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_idx);
	if (SSL_get_ex_data(ssl, ssl_idx) == NULL) {
		SSL_set_ex_data(ssl, ssl_idx, (void *)(intptr_t)(e + 1));
		rp_tls_count(t, rp_tls_classify(e));
	}
	/* soft: the handshake completes; the verify result stays set, so the
	 * peer names no identity, and the caller refuses the connection */
	return t != NULL && t->soft_verify && t->role == RP_TLS_SERVER ? 1 : 0;
}

void rp_tls_set_soft_verify(struct rp_tls *t)
{
	t->soft_verify = 1;
}

int rp_tls_verify_error(SSL *ssl, enum rp_tls_fail *why)
{
	intptr_t v = (intptr_t)SSL_get_ex_data(ssl, ssl_idx);
	if (v == 0 && SSL_get0_peer_certificate(ssl) != NULL &&
	    SSL_get_verify_result(ssl) != X509_V_OK)
		v = SSL_get_verify_result(ssl) + 1; /* never unseen, but never trusted either */
	if (v == 0)
		return 0;
	*why = rp_tls_classify((long)(v - 1));
	return 1;
}

enum rp_tls_fail rp_tls_failure_of(SSL *ssl)
{
	intptr_t v = (intptr_t)SSL_get_ex_data(ssl, ssl_idx);
	if (v != 0)
		return rp_tls_classify((long)(v - 1));
	unsigned long e;
	while ((e = ERR_peek_error()) != 0) {
		if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
		    (ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE ||
		     ERR_GET_REASON(e) == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED))
			return RP_TLS_FAIL_NO_CERT;
		ERR_get_error();
	}
	return RP_TLS_FAIL_HANDSHAKE;
}

enum rp_tls_fail rp_tls_handshake_failed(struct rp_tls *t, SSL *ssl)
{
	if (ssl == NULL) {
		ERR_clear_error();
		rp_tls_count(t, RP_TLS_FAIL_HANDSHAKE);
		return RP_TLS_FAIL_HANDSHAKE;
	}
	int counted = SSL_get_ex_data(ssl, ssl_idx) != NULL; /* by verify_cb */
	enum rp_tls_fail f = rp_tls_failure_of(ssl);
	ERR_clear_error();
	if (!counted)
		rp_tls_count(t, f);
	return f;
}

/* The client's list is (length byte, name)*: pick ours or none. */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned inlen, void *arg)
{
	(void)ssl;
	const char *want = arg;
	size_t wl = strlen(want);
	for (unsigned i = 0; i < inlen;) {
		unsigned l = in[i];
		if (i + 1 + l > inlen)
			break;
		if (l == wl && memcmp(in + i + 1, want, wl) == 0) {
			*out = in + i + 1;
			*outlen = (unsigned char)l;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + l;
	}
	return SSL_TLSEXT_ERR_NOACK;
}

void rp_tls_set_alpn(struct rp_tls *t, const char *proto)
{
	if (t->role != RP_TLS_SERVER || strlen(proto) == 0 || strlen(proto) > 255)
		return;
	t->alpn = proto;
	SSL_CTX_set_alpn_select_cb(t->ctx, select_alpn, (void *)proto);
}

static void ssl_reason(char *err, size_t errlen, const char *what, const char *file)
{
	unsigned long e = ERR_peek_last_error();
	char buf[256] = "unknown error";
	if (e != 0)
		ERR_error_string_n(e, buf, sizeof buf);
	ERR_clear_error();
	snprintf(err, errlen, "%s %s: %s", what, file, buf);
}

static SSL_CTX *build(const struct rp_tls *t, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(t->role == RP_TLS_SERVER ? TLS_server_method()
							    : TLS_client_method());
	if (ctx == NULL) {
		snprintf(err, errlen, "cannot create a TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_ex_data(ctx, ctx_idx, (void *)t);
	/* no resumption: every connection's identity comes from a full handshake
	 * verified against the CA file of the context it was accepted with */
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (t->alpn != NULL)
		SSL_CTX_set_alpn_select_cb(ctx, select_alpn, (void *)t->alpn);
	if (t->cert != NULL) {
		if (SSL_CTX_use_certificate_chain_file(ctx, t->cert) != 1) {
			ssl_reason(err, errlen, "cannot load the certificate", t->cert);
			goto fail;
		}
		if (SSL_CTX_use_PrivateKey_file(ctx, t->key, SSL_FILETYPE_PEM) != 1) {
			if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
				ERR_clear_error();
				snprintf(err, errlen,
					 "the private key %s does not match the certificate %s",
					 t->key, t->cert);
			} else {
				ssl_reason(err, errlen, "cannot load the private key", t->key);
			}
			goto fail;
		}
		if (SSL_CTX_check_private_key(ctx) != 1) {
			ERR_clear_error();
			snprintf(err, errlen,
				 "the private key %s does not match the certificate %s", t->key,
				 t->cert);
			goto fail;
		}
	}
	if (t->ca != NULL) {
		if (SSL_CTX_load_verify_locations(ctx, t->ca, NULL) != 1) {
			ssl_reason(err, errlen, "cannot load the CA file", t->ca);
			goto fail;
		}
		/* an empty or certificate-less bundle would verify nothing */
		STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(SSL_CTX_get_cert_store(ctx));
		int n = 0;
		for (int i = 0; i < sk_X509_OBJECT_num(objs); i++)
			n += X509_OBJECT_get_type(sk_X509_OBJECT_value(objs, i)) == X509_LU_X509;
		if (n == 0) {
			snprintf(err, errlen, "the CA file %s holds no certificate", t->ca);
			goto fail;
		}
	}
	int mode = SSL_VERIFY_NONE;
	if (t->role == RP_TLS_CLIENT)
		mode = SSL_VERIFY_PEER;
	else if (t->verify == RP_TLS_VERIFY_OPTIONAL)
		mode = SSL_VERIFY_PEER;
	else if (t->verify == RP_TLS_VERIFY_REQUIRE)
		mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
	SSL_CTX_set_verify(ctx, mode, mode == SSL_VERIFY_NONE ? NULL : verify_cb);
	if (t->role == RP_TLS_SERVER && t->ca != NULL && mode != SSL_VERIFY_NONE) {
		/* tell clients which CA we accept, so that they pick the right certificate */
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(t->ca);
		if (names != NULL)
			SSL_CTX_set_client_CA_list(ctx, names);
		ERR_clear_error();
		/* session resumption across contexts would skip verification */
		SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"raftplane", 9);
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static char *dup_or_null(const char *s)
{
	return s == NULL ? NULL : strdup(s);
}

struct rp_tls *rp_tls_create(enum rp_tls_role role, const struct rp_tls_files *files,
			     enum rp_tls_verify verify, char *err, size_t errlen)
{
	pthread_once(&idx_once, make_indices);
	if ((files->cert == NULL) != (files->key == NULL)) {
		snprintf(err, errlen, "a TLS certificate needs its key and a key its certificate");
		return NULL;
	}
	if (role == RP_TLS_SERVER && files->cert == NULL) {
		snprintf(err, errlen, "a TLS server needs a certificate and a key");
		return NULL;
	}
	if ((role == RP_TLS_CLIENT || verify != RP_TLS_VERIFY_NONE) && files->ca == NULL) {
		snprintf(err, errlen, "verifying peers needs a CA file");
		return NULL;
	}
	struct rp_tls *t = calloc(1, sizeof *t);
	if (t == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	t->role = role;
	t->verify = role == RP_TLS_CLIENT ? RP_TLS_VERIFY_REQUIRE : verify;
	t->cert = dup_or_null(files->cert);
	t->key = dup_or_null(files->key);
	t->ca = dup_or_null(files->ca);
	if ((files->cert && !t->cert) || (files->key && !t->key) || (files->ca && !t->ca)) {
		snprintf(err, errlen, "out of memory");
		rp_tls_destroy(t);
		return NULL;
	}
	t->ctx = build(t, err, errlen);
	if (t->ctx == NULL) {
		rp_tls_destroy(t);
		return NULL;
	}
	return t;
}

SSL_CTX *rp_tls_ctx(const struct rp_tls *t)
{
	return t->ctx;
}

int rp_tls_reload(struct rp_tls *t, char *err, size_t errlen)
{
	SSL_CTX *ctx = build(t, err, errlen);
	if (ctx == NULL) {
		count(&t->reloads_failed);
		return -1;
	}
	SSL_CTX_free(t->ctx); /* connections that use it hold their own reference */
	t->ctx = ctx;
	count(&t->reloads_ok);
	return 0;
}

void rp_tls_reload_refused(struct rp_tls *t)
{
	if (t != NULL)
		count(&t->reloads_failed);
}

void rp_tls_destroy(struct rp_tls *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	free(t->cert);
	free(t->key);
	free(t->ca);
	free(t);
}

/* ---- identities ------------------------------------------------------------ */

int rp_tls_trust_domain_valid(const char *td)
{
	size_t n = strlen(td);
	if (n == 0 || n > RP_TLS_MAX_TRUST_DOMAIN || td[0] == '.' || td[0] == '-')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = td[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-'))
			return 0;
	}
	return 1;
}

static int node_id_ok(const char *s, size_t n)
{
	if (n == 0 || n > RP_TLS_MAX_NODE_ID)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* A decimal raft id in [1, 2^31], no sign, no leading zero. */
static int server_id_ok(const char *s, size_t n, uint64_t *out)
{
	if (n == 0 || n > 10 || s[0] == '0')
		return 0;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > (1u << 31))
		return 0;
	*out = v;
	return 1;
}

/* One URI SAN: 0 when it is not of our trust domain, 1 when it names an
 * identity (in @id), -1 when it is of our domain but malformed. */
static int parse_uri(const char *u, size_t n, const char *td, struct rp_peer_id *id)
{
	static const char scheme[] = "spiffe://";
	size_t sl = sizeof scheme - 1, tl = strlen(td);
	if (n < sl || strncasecmp(u, scheme, sl) != 0)
		return 0;
	if (n < sl + tl + 1 || strncasecmp(u + sl, td, tl) != 0 || u[sl + tl] != '/')
		return 0;
	const char *p = u + sl + tl + 1;
	size_t pl = n - (size_t)(p - u);
	memset(id, 0, sizeof *id);
	if (pl > 5 && memcmp(p, "node/", 5) == 0 && node_id_ok(p + 5, pl - 5)) {
		id->kind = RP_PEER_NODE;
		memcpy(id->node, p + 5, pl - 5);
		return 1;
	}
	if (pl > 7 && memcmp(p, "server/", 7) == 0 && server_id_ok(p + 7, pl - 7, &id->server)) {
		id->kind = RP_PEER_SERVER;
		return 1;
	}
	return -1;
}

static int same_id(const struct rp_peer_id *a, const struct rp_peer_id *b)
{
	return a->kind == b->kind && a->server == b->server && strcmp(a->node, b->node) == 0;
}

static void set_name(struct rp_peer_id *out, const char *prefix, const char *s, size_t n)
{
	size_t pl = strlen(prefix), room = sizeof out->name - 1;
	if (pl > room)
		pl = room;
	memcpy(out->name, prefix, pl);
	size_t k = 0;
	for (size_t i = 0; i < n && pl + k < room; i++) {
		unsigned char c = (unsigned char)s[i];
		out->name[pl + k++] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
	}
	out->name[pl + k] = '\0';
}

void rp_tls_cert_identity(X509 *cert, const char *td, struct rp_peer_id *out)
{
	memset(out, 0, sizeof *out);
	if (cert == NULL)
		return;
	out->kind = RP_PEER_OTHER;
	int found = 0; /* URI SANs of our domain seen */
	struct rp_peer_id got = {0};
	GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
		if (g->type != GEN_URI)
			continue;
		const char *u = (const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
		int n = ASN1_STRING_length(g->d.uniformResourceIdentifier);
		if (u == NULL || n <= 0 || memchr(u, '\0', (size_t)n) != NULL)
			continue;
		struct rp_peer_id one;
		int r = parse_uri(u, (size_t)n, td, &one);
		if (r == 0)
			continue;
		if (found == 0)
			set_name(out, "", u, (size_t)n);
		if (r < 0 || (found > 0 && !same_id(&one, &got))) {
			found = -1; /* malformed, or two that disagree: no identity */
			break;
		}
		got = one;
		found = 1;
	}
	GENERAL_NAMES_free(sans);
	if (found == 1) {
		out->kind = got.kind;
		out->server = got.server;
		memcpy(out->node, got.node, sizeof out->node);
		return;
	}
	if (found < 0)
		return;
	/* no URI SAN of ours: the subject CN, as a proxy node id */
	X509_NAME *subj = X509_get_subject_name(cert);
	int at = subj ? X509_NAME_get_index_by_NID(subj, NID_commonName, -1) : -1;
	if (at < 0)
		return;
	ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, at));
	const char *s = (const char *)ASN1_STRING_get0_data(cn);
	int n = ASN1_STRING_length(cn);
	if (s == NULL || n <= 0)
		return;
	set_name(out, "CN=", s, (size_t)n);
	if (X509_NAME_get_index_by_NID(subj, NID_commonName, at) >= 0)
		return; /* two CNs: ambiguous */
	if (node_id_ok(s, (size_t)n)) {
		out->kind = RP_PEER_NODE;
		memcpy(out->node, s, (size_t)n);
		out->node[n] = '\0';
	}
}

void rp_tls_peer_identity(SSL *ssl, const char *td, struct rp_peer_id *out)
{
	memset(out, 0, sizeof *out);
	X509 *cert = SSL_get0_peer_certificate(ssl);
	if (cert == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
		return;
	rp_tls_cert_identity(cert, td, out);
}

const char *rp_peer_id_str(const struct rp_peer_id *id, char *buf, size_t len)
{
	switch (id->kind) {
	case RP_PEER_NODE: snprintf(buf, len, "node:%s", id->node); break;
	case RP_PEER_SERVER:
		snprintf(buf, len, "server:%llu", (unsigned long long)id->server);
		break;
	case RP_PEER_OTHER: snprintf(buf, len, "other:%s", id->name); break;
	default: snprintf(buf, len, "none");
	}
	return buf;
}
