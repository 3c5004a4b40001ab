/* Unit tests: net/tls.c — identities read from certificates (URI SAN, CN
 * fallback, malformed and ambiguous names), context creation errors, and a
 * reload that keeps the old context when a file is bad. Certificates are
 * made in memory with OpenSSL and written to a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testcerts.h"
#include "tls.h"

static void identity_of(const char *cn, const char *san, struct rp_peer_id *out)
{
	EVP_PKEY *k = rp_test_key();
	X509 *x = rp_test_cert(k, cn, san, NULL, NULL, 0);
	rp_tls_cert_identity(x, "raftplane", out);
	X509_free(x);
	EVP_PKEY_free(k);
}

static void test_uri_node(void **state)
{
	(void)state;
	struct rp_peer_id id;
	identity_of("ignored", "URI:spiffe://raftplane/node/edge-1", &id);
	assert_int_equal(id.kind, RP_PEER_NODE);
	assert_string_equal(id.node, "edge-1");
	assert_string_equal(id.name, "spiffe://raftplane/node/edge-1");
	char buf[64];
	assert_string_equal(rp_peer_id_str(&id, buf, sizeof buf), "node:edge-1");
}

static void test_uri_server(void **state)
{
	(void)state;
	struct rp_peer_id id;
	identity_of(NULL, "URI:spiffe://raftplane/server/3,IP:127.0.0.1", &id);
	assert_int_equal(id.kind, RP_PEER_SERVER);
	assert_int_equal(id.server, 3);
	identity_of(NULL, "URI:spiffe://raftplane/server/2147483648", &id);
	assert_int_equal(id.kind, RP_PEER_SERVER);
	const char *bad[] = {
		"URI:spiffe://raftplane/server/0",          "URI:spiffe://raftplane/server/03",
		"URI:spiffe://raftplane/server/2147483649", "URI:spiffe://raftplane/server/-1",
		"URI:spiffe://raftplane/server/1/x",        "URI:spiffe://raftplane/server/",
		"URI:spiffe://raftplane/node/a b",          "URI:spiffe://raftplane/node/",
		"URI:spiffe://raftplane/admin/1",           "URI:spiffe://raftplane/",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		/* our domain but malformed: no identity, and no fallback to the CN */
		identity_of("edge-9", bad[i], &id);
		assert_int_equal(id.kind, RP_PEER_OTHER);
	}
}

static void test_other_domain_falls_back_to_cn(void **state)
{
	(void)state;
	struct rp_peer_id id;
	identity_of("edge-2", "URI:spiffe://example.org/node/edge-1,DNS:x.example", &id);
	assert_int_equal(id.kind, RP_PEER_NODE);
	assert_string_equal(id.node, "edge-2");
	assert_string_equal(id.name, "CN=edge-2");
	/* a prefix of our domain is another domain */
	identity_of("edge-3", "URI:spiffe://raftplane.evil/node/edge-1", &id);
	assert_string_equal(id.node, "edge-3");
	identity_of("edge-4", "URI:spiffe://raftplanex/node/edge-1", &id);
	assert_string_equal(id.node, "edge-4");
}

static void test_cn_fallback(void **state)
{
	(void)state;
	struct rp_peer_id id;
	identity_of("edge-5", NULL, &id);
	assert_int_equal(id.kind, RP_PEER_NODE);
	assert_string_equal(id.node, "edge-5");
	identity_of("not a node id", NULL, &id);
	assert_int_equal(id.kind, RP_PEER_OTHER);
	assert_string_equal(id.name, "CN=not a node id");
	identity_of("a|b", NULL, &id); /* two CNs: ambiguous */
	assert_int_equal(id.kind, RP_PEER_OTHER);
	identity_of(NULL, NULL, &id);
	assert_int_equal(id.kind, RP_PEER_OTHER);
	rp_tls_cert_identity(NULL, "raftplane", &id);
	assert_int_equal(id.kind, RP_PEER_NONE);
}

static void test_two_uris(void **state)
{
	(void)state;
	struct rp_peer_id id;
	identity_of(NULL, "URI:spiffe://raftplane/node/a,URI:spiffe://raftplane/node/a", &id);
	assert_int_equal(id.kind, RP_PEER_NODE);
	identity_of(NULL, "URI:spiffe://raftplane/node/a,URI:spiffe://raftplane/node/b", &id);
	assert_int_equal(id.kind, RP_PEER_OTHER);
	identity_of(NULL, "URI:spiffe://raftplane/node/a,URI:spiffe://raftplane/server/1", &id);
	assert_int_equal(id.kind, RP_PEER_OTHER);
}

static void test_trust_domain(void **state)
{
	(void)state;
	assert_true(rp_tls_trust_domain_valid("raftplane"));
	assert_true(rp_tls_trust_domain_valid("mesh.example.org"));
	assert_false(rp_tls_trust_domain_valid(""));
	assert_false(rp_tls_trust_domain_valid("Upper"));
	assert_false(rp_tls_trust_domain_valid(".x"));
	assert_false(rp_tls_trust_domain_valid("a/b"));
	struct rp_peer_id id;
	EVP_PKEY *k = rp_test_key();
	X509 *x = rp_test_cert(k, NULL, "URI:spiffe://mesh.example.org/server/7", NULL, NULL, 0);
	rp_tls_cert_identity(x, "mesh.example.org", &id);
	assert_int_equal(id.kind, RP_PEER_SERVER);
	rp_tls_cert_identity(x, "raftplane", &id);
	assert_int_equal(id.kind, RP_PEER_OTHER); /* no CN either */
	X509_free(x);
	EVP_PKEY_free(k);
}

static void test_classify(void **state)
{
	(void)state;
	assert_int_equal(rp_tls_classify(X509_V_ERR_CERT_HAS_EXPIRED), RP_TLS_FAIL_EXPIRED);
	assert_int_equal(rp_tls_classify(X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT),
			 RP_TLS_FAIL_UNKNOWN_CA);
	assert_int_equal(rp_tls_classify(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY),
			 RP_TLS_FAIL_UNKNOWN_CA);
	assert_int_equal(rp_tls_classify(X509_V_ERR_CERT_NOT_YET_VALID), RP_TLS_FAIL_NOT_YET_VALID);
	assert_int_equal(rp_tls_classify(X509_V_ERR_INVALID_PURPOSE), RP_TLS_FAIL_INVALID);
	assert_string_equal(rp_tls_fail_names[RP_TLS_FAIL_IDENTITY], "wrong_identity");
}

/* ---- files: create, errors, reload ----------------------------------------- */

static char dir[64];

static void path(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", dir, name);
}

static void write_pem(const char *name, X509 *x, EVP_PKEY *k)
{
	char p[128];
	path(p, sizeof p, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	if (x)
		assert_true(PEM_write_X509(f, x));
	if (k)
		assert_true(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL));
	fclose(f);
}

static int setup_files(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/rp-unit-tls-XXXXXX");
	assert_non_null(mkdtemp(dir));
	EVP_PKEY *cak = rp_test_key(), *k1 = rp_test_key(), *k2 = rp_test_key();
	X509 *ca = rp_test_cert(cak, "test CA", NULL, NULL, NULL, 1);
	X509 *c1 = rp_test_cert(k1, "server-1", "URI:spiffe://raftplane/server/1", ca, cak, 0);
	X509 *c2 = rp_test_cert(k2, "server-2", "URI:spiffe://raftplane/server/2", ca, cak, 0);
	write_pem("ca.pem", ca, NULL);
	write_pem("c1.pem", c1, NULL);
	write_pem("k1.pem", NULL, k1);
	write_pem("c2.pem", c2, NULL);
	write_pem("k2.pem", NULL, k2);
	write_pem("empty.pem", NULL, NULL);
	X509_free(ca);
	X509_free(c1);
	X509_free(c2);
	EVP_PKEY_free(cak);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
	return 0;
}

static int teardown_files(void **state)
{
	(void)state;
	const char *names[] = {"ca.pem", "c1.pem",    "k1.pem", "c2.pem",
			       "k2.pem", "empty.pem", "cur.pem"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char p[128];
		path(p, sizeof p, names[i]);
		unlink(p);
	}
	rmdir(dir);
	return 0;
}

static void copy(const char *from, const char *to)
{
	char a[128], b[128], buf[8192];
	path(a, sizeof a, from);
	path(b, sizeof b, to);
	FILE *in = fopen(a, "r"), *out = fopen(b, "w");
	assert_non_null(in);
	assert_non_null(out);
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, in)) > 0)
		fwrite(buf, 1, n, out);
	fclose(in);
	fclose(out);
}

static void test_create_errors(void **state)
{
	(void)state;
	char ca[128], c1[128], k1[128], k2[128], empty[128], err[512];
	path(ca, sizeof ca, "ca.pem");
	path(c1, sizeof c1, "c1.pem");
	path(k1, sizeof k1, "k1.pem");
	path(k2, sizeof k2, "k2.pem");
	path(empty, sizeof empty, "empty.pem");
	struct rp_tls_files f = {c1, k1, ca};
	struct rp_tls *t = rp_tls_create(RP_TLS_SERVER, &f, RP_TLS_VERIFY_OPTIONAL, err,
					 sizeof err);
	assert_non_null(t);
	assert_non_null(rp_tls_ctx(t));
	rp_tls_destroy(t);

	f = (struct rp_tls_files){c1, k2, ca}; /* key of another certificate */
	assert_null(rp_tls_create(RP_TLS_SERVER, &f, RP_TLS_VERIFY_OPTIONAL, err, sizeof err));
	assert_non_null(strstr(err, "does not match"));
	f = (struct rp_tls_files){"/nonexistent.pem", k1, ca};
	assert_null(rp_tls_create(RP_TLS_SERVER, &f, RP_TLS_VERIFY_OPTIONAL, err, sizeof err));
	assert_non_null(strstr(err, "/nonexistent.pem"));
	f = (struct rp_tls_files){c1, k1, empty};
	assert_null(rp_tls_create(RP_TLS_SERVER, &f, RP_TLS_VERIFY_OPTIONAL, err, sizeof err));
	assert_non_null(strstr(err, "empty.pem"));
	f = (struct rp_tls_files){c1, NULL, ca};
	assert_null(rp_tls_create(RP_TLS_SERVER, &f, RP_TLS_VERIFY_OPTIONAL, err, sizeof err));
	f = (struct rp_tls_files){c1, k1, NULL};
	assert_null(rp_tls_create(RP_TLS_SERVER, &f, RP_TLS_VERIFY_REQUIRE, err, sizeof err));
	assert_null(rp_tls_create(RP_TLS_CLIENT, &f, RP_TLS_VERIFY_REQUIRE, err, sizeof err));
	f = (struct rp_tls_files){NULL, NULL, ca};
	t = rp_tls_create(RP_TLS_CLIENT, &f, RP_TLS_VERIFY_REQUIRE, err, sizeof err);
	assert_non_null(t);
	rp_tls_destroy(t);
}

static void test_reload_keeps_old_on_error(void **state)
{
	(void)state;
	char ca[128], cur[128], k1[128], err[512];
	path(ca, sizeof ca, "ca.pem");
	path(cur, sizeof cur, "cur.pem");
	path(k1, sizeof k1, "k1.pem");
	copy("c1.pem", "cur.pem");
	struct rp_tls_files f = {cur, k1, ca};
	struct rp_tls *t = rp_tls_create(RP_TLS_SERVER, &f, RP_TLS_VERIFY_OPTIONAL, err,
					 sizeof err);
	assert_non_null(t);
	SSL_CTX *before = rp_tls_ctx(t);
	SSL *held = SSL_new(before); /* a connection made before the reload */
	assert_non_null(held);

	copy("c2.pem", "cur.pem"); /* does not match k1 */
	assert_int_equal(rp_tls_reload(t, err, sizeof err), -1);
	assert_non_null(strstr(err, "does not match"));
	assert_ptr_equal(rp_tls_ctx(t), before);

	copy("c1.pem", "cur.pem");
	assert_int_equal(rp_tls_reload(t, err, sizeof err), 0);
	assert_ptr_not_equal(rp_tls_ctx(t), before);
	/* the old connection still has a complete context */
	assert_non_null(SSL_get_certificate(held));
	struct rp_peer_id id;
	rp_tls_cert_identity(SSL_get_certificate(held), "raftplane", &id);
	assert_int_equal(id.server, 1);
	SSL_free(held);

	struct rp_tls_stats st;
	rp_tls_get_stats(t, &st);
	assert_int_equal(st.reloads_ok, 1);
	assert_int_equal(st.reloads_failed, 1);
	rp_tls_count(t, RP_TLS_FAIL_IDENTITY);
	rp_tls_get_stats(t, &st);
	assert_int_equal(st.failures[RP_TLS_FAIL_IDENTITY], 1);
	rp_tls_destroy(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uri_node),
		cmocka_unit_test(test_uri_server),
		cmocka_unit_test(test_other_domain_falls_back_to_cn),
		cmocka_unit_test(test_cn_fallback),
		cmocka_unit_test(test_two_uris),
		cmocka_unit_test(test_trust_domain),
		cmocka_unit_test(test_classify),
		cmocka_unit_test_setup_teardown(test_create_errors, setup_files, teardown_files),
		cmocka_unit_test_setup_teardown(test_reload_keeps_old_on_error, setup_files,
						teardown_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
