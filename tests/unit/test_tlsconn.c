/* Unit tests: raft/tlsconn.c — a client and a server engine talking through
 * memory: handshake, identities, data both ways, the input and output caps,
 * failures classified and counted once (no certificate, another CA, plain
 * text), a broken record after the handshake, and a reload that applies to
 * new connections only. Certificates are made with OpenSSL in a temporary
 * directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testcerts.h"
#include "tlsconn.h"

static char dir[64];

struct pair {
	EVP_PKEY *key;
	X509 *cert;
};

/* A certificate for @key with URI SAN @uri (NULL: a CA), signed by @ca
 * (NULL: self-signed). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *uri, const struct pair *ca)
{
	char san[128];
	if (uri != NULL)
		snprintf(san, sizeof san, "URI:%s", uri);
	return rp_test_cert(key, cn, uri ? san : NULL, ca ? ca->cert : NULL, ca ? ca->key : NULL,
			    uri == NULL);
}

static void write_files(const char *name, const struct pair *p)
{
	char path[128];
	snprintf(path, sizeof path, "%s/%s.pem", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_true(PEM_write_X509(f, p->cert));
	fclose(f);
	snprintf(path, sizeof path, "%s/%s.key", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_true(PEM_write_PrivateKey(f, p->key, NULL, NULL, 0, NULL, NULL));
	fclose(f);
}

static void make(const char *name, const char *uri, const struct pair *ca, struct pair *out)
{
	out->key = EVP_EC_gen("P-256");
	assert_non_null(out->key);
	out->cert = make_cert(out->key, name, uri, ca);
	write_files(name, out);
}

static const char *path(const char *name, const char *ext)
{
	static char bufs[4][128];
	static int i;
	char *b = bufs[i++ % 4];
	snprintf(b, 128, "%s/%s.%s", dir, name, ext);
	return b;
}

static struct rp_tls *ctx(enum rp_tls_role role, const char *name, const char *ca)
{
	char err[256];
	struct rp_tls_files f = {name ? path(name, "pem") : NULL, name ? path(name, "key") : NULL,
				 path(ca, "pem")};
	struct rp_tls *t = rp_tls_create(role, &f, RP_TLS_VERIFY_REQUIRE, err, sizeof err);
	if (t == NULL)
		fail_msg("%s", err);
	return t;
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/rp-tlsconn-XXXXXX");
	assert_non_null(mkdtemp(dir));
	struct pair ca, other, s1, s2, s3, rogue;
	make("ca", NULL, NULL, &ca);
	make("other", NULL, NULL, &other);
	make("s1", "spiffe://raftplane/server/1", &ca, &s1);
	make("s2", "spiffe://raftplane/server/2", &ca, &s2);
	make("s3", "spiffe://raftplane/server/3", &ca, &s3);
	make("rogue", "spiffe://raftplane/server/2", &other, &rogue);
	struct pair *all[] = {&ca, &other, &s1, &s2, &s3, &rogue};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
		X509_free(all[i]->cert);
		EVP_PKEY_free(all[i]->key);
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Move what @from produced into @to, as much as it may take. */
static void move(struct rp_tlsconn *from, struct rp_tlsconn *to)
{
	char buf[8192];
	size_t n;
	while ((n = rp_tlsconn_take(from, buf, sizeof buf)) > 0)
		assert_int_equal(rp_tlsconn_feed(to, buf, n), 0);
}

/* Run both handshakes to their end: 1 both established, -1 one failed. */
static int handshake(struct rp_tlsconn *c, struct rp_tlsconn *s, int *rc, int *rs)
{
	for (int i = 0; i < 20; i++) {
		*rc = rp_tlsconn_handshake(c);
		move(c, s);
		*rs = rp_tlsconn_handshake(s);
		move(s, c);
		if (*rc < 0 || *rs < 0)
			return -1;
		if (*rc == 1 && *rs == 1)
			return 1;
	}
	return 0;
}

static void test_handshake_identities_data(void **state)
{
	(void)state;
	struct rp_tls *st = ctx(RP_TLS_SERVER, "s1", "ca"), *ct = ctx(RP_TLS_CLIENT, "s2", "ca");
	struct rp_tlsconn *s = rp_tlsconn_create(st, RP_TLS_SERVER);
	struct rp_tlsconn *c = rp_tlsconn_create(ct, RP_TLS_CLIENT);
	int rc, rs;
	assert_int_equal(handshake(c, s, &rc, &rs), 1);
	struct rp_peer_id id;
	rp_tlsconn_peer(s, "raftplane", &id);
	assert_int_equal(id.kind, RP_PEER_SERVER);
	assert_int_equal(id.server, 2);
	rp_tlsconn_peer(c, "raftplane", &id);
	assert_int_equal(id.kind, RP_PEER_SERVER);
	assert_int_equal(id.server, 1);
	/* 200 KiB client -> server in pieces, read back in order */
	static unsigned char out[200 << 10], in[sizeof out];
	for (size_t i = 0; i < sizeof out; i++)
		out[i] = (unsigned char)(i * 7 + (i >> 9));
	size_t sent = 0, got = 0;
	while (got < sizeof out) {
		size_t k = sizeof out - sent < 50000 ? sizeof out - sent : 50000;
		if (k > 0) {
			assert_int_equal(rp_tlsconn_write(c, out + sent, k), 0);
			sent += k;
		}
		move(c, s);
		ssize_t n;
		while ((n = rp_tlsconn_read(s, in + got, sizeof in - got)) > 0)
			got += (size_t)n;
		assert_true(n == 0);
	}
	assert_memory_equal(in, out, sizeof out);
	/* and back: the server's plaintext reaches the client */
	assert_int_equal(rp_tlsconn_write(s, "pong", 4), 0);
	move(s, c);
	char b[8];
	assert_int_equal(rp_tlsconn_read(c, b, sizeof b), 4);
	assert_memory_equal(b, "pong", 4);
	assert_int_equal(rp_tlsconn_read(c, b, sizeof b), 0);
	struct rp_tls_stats sst;
	rp_tls_get_stats(st, &sst);
	for (int i = 0; i < RP_TLS_FAIL__N; i++)
		assert_int_equal(sst.failures[i], 0);
	rp_tlsconn_destroy(s);
	rp_tlsconn_destroy(c);
	rp_tls_destroy(st);
	rp_tls_destroy(ct);
}

static void test_caps(void **state)
{
	(void)state;
	struct rp_tls *st = ctx(RP_TLS_SERVER, "s1", "ca"), *ct = ctx(RP_TLS_CLIENT, "s2", "ca");
	struct rp_tlsconn *s = rp_tlsconn_create(st, RP_TLS_SERVER);
	struct rp_tlsconn *c = rp_tlsconn_create(ct, RP_TLS_CLIENT);
	int rc, rs;
	assert_int_equal(handshake(c, s, &rc, &rs), 1);
	/* output nobody takes: refused once RP_TLSCONN_MAX_OUT would be exceeded */
	static char blob[16384];
	size_t written = 0;
	while (rp_tlsconn_write(c, blob, sizeof blob) == 0)
		written += sizeof blob;
	assert_true(written > 0 && written <= RP_TLSCONN_MAX_OUT);
	assert_true(rp_tlsconn_pending(c) <= RP_TLSCONN_MAX_OUT);
	/* input nobody decrypts: room shrinks to 0, then feeding fails */
	static char cipher[RP_TLSCONN_MAX_IN + 1];
	size_t n = rp_tlsconn_take(c, cipher, sizeof cipher);
	assert_true(n > 0);
	assert_int_equal(rp_tlsconn_room(s), RP_TLSCONN_MAX_IN);
	size_t fed = n < RP_TLSCONN_MAX_IN ? n : RP_TLSCONN_MAX_IN;
	assert_int_equal(rp_tlsconn_feed(s, cipher, fed), 0);
	assert_int_equal(rp_tlsconn_buffered(s), fed);
	assert_int_equal(rp_tlsconn_room(s), RP_TLSCONN_MAX_IN - fed);
	assert_int_equal(rp_tlsconn_feed(s, cipher, RP_TLSCONN_MAX_IN - fed + 1), -1);
	/* decrypting makes room again */
	static char plain[sizeof blob];
	while (rp_tlsconn_read(s, plain, sizeof plain) > 0)
		;
	assert_true(rp_tlsconn_room(s) > RP_TLSCONN_MAX_IN - 20000);
	rp_tlsconn_destroy(s);
	rp_tlsconn_destroy(c);
	rp_tls_destroy(st);
	rp_tls_destroy(ct);
}

/* A handshake of a client with @cert (NULL: none) against server s1: the
 * server's failure, counted exactly once in its stats. */
static void expect_refusal(const char *cert, enum rp_tls_fail want)
{
	struct rp_tls *st = ctx(RP_TLS_SERVER, "s1", "ca"), *ct = ctx(RP_TLS_CLIENT, cert, "ca");
	struct rp_tlsconn *s = rp_tlsconn_create(st, RP_TLS_SERVER);
	struct rp_tlsconn *c = rp_tlsconn_create(ct, RP_TLS_CLIENT);
	int rc, rs;
	assert_int_equal(handshake(c, s, &rc, &rs), -1);
	assert_int_equal(rs, -1);
	assert_int_equal(rp_tlsconn_failure(s), want);
	assert_false(rp_tlsconn_established(s));
	assert_int_equal(rp_tlsconn_read(s, (char[8]){0}, 8), -1);
	struct rp_tls_stats sst;
	rp_tls_get_stats(st, &sst);
	for (int i = 0; i < RP_TLS_FAIL__N; i++)
		assert_int_equal(sst.failures[i], i == (int)want ? 1 : 0);
	/* the alert reaches the client, whose connection is then broken too */
	move(s, c);
	char b[8];
	assert_true(rp_tlsconn_handshake(c) < 0 || rp_tlsconn_read(c, b, sizeof b) < 0);
	rp_tlsconn_destroy(s);
	rp_tlsconn_destroy(c);
	rp_tls_destroy(st);
	rp_tls_destroy(ct);
}

static void test_no_cert(void **state)
{
	(void)state;
	expect_refusal(NULL, RP_TLS_FAIL_NO_CERT);
}

static void test_other_ca(void **state)
{
	(void)state;
	expect_refusal("rogue", RP_TLS_FAIL_UNKNOWN_CA);
}

static void test_plain_text_and_broken_record(void **state)
{
	(void)state;
	struct rp_tls *st = ctx(RP_TLS_SERVER, "s1", "ca"), *ct = ctx(RP_TLS_CLIENT, "s2", "ca");
	struct rp_tlsconn *s = rp_tlsconn_create(st, RP_TLS_SERVER);
	static const char hs[] = "RPRT\x01\x00\x0e\x00\x02\x00\x00\x00\x00\x00\x00\x00"
				 "\x01\x00\x00\x00\x00\x00\x00\x00"
				 "127.0.0.1:7001";
	assert_int_equal(rp_tlsconn_feed(s, hs, sizeof hs - 1), 0);
	assert_int_equal(rp_tlsconn_handshake(s), -1);
	assert_int_equal(rp_tlsconn_failure(s), RP_TLS_FAIL_HANDSHAKE);
	assert_int_equal(rp_tlsconn_handshake(s), -1); /* stays failed, counted once */
	struct rp_tls_stats sst;
	rp_tls_get_stats(st, &sst);
	assert_int_equal(sst.failures[RP_TLS_FAIL_HANDSHAKE], 1);
	rp_tlsconn_destroy(s);
	/* established, then a record that does not authenticate */
	s = rp_tlsconn_create(st, RP_TLS_SERVER);
	struct rp_tlsconn *c = rp_tlsconn_create(ct, RP_TLS_CLIENT);
	int rc, rs;
	assert_int_equal(handshake(c, s, &rc, &rs), 1);
	assert_int_equal(rp_tlsconn_write(c, "hello", 5), 0);
	char rec[256];
	size_t n = rp_tlsconn_take(c, rec, sizeof rec);
	assert_true(n > 10);
	rec[n - 1] ^= 1; /* a bit of the tag */
	assert_int_equal(rp_tlsconn_feed(s, rec, n), 0);
	char b[16];
	assert_int_equal(rp_tlsconn_read(s, b, sizeof b), -1);
	assert_int_equal(rp_tlsconn_write(s, "x", 1), -1);
	rp_tlsconn_destroy(s);
	rp_tlsconn_destroy(c);
	rp_tls_destroy(st);
	rp_tls_destroy(ct);
}

static void test_reload_applies_to_new_connections(void **state)
{
	(void)state;
	struct rp_tls *ct = ctx(RP_TLS_CLIENT, "s2", "ca");
	/* the server's files: s1's, replaced by s3's before the reload */
	char cmd[512];
	snprintf(cmd, sizeof cmd, "cp %s %s && cp %s %s", path("s1", "pem"), path("live", "pem"),
		 path("s1", "key"), path("live", "key"));
	assert_int_equal(system(cmd), 0);
	struct rp_tls *st = ctx(RP_TLS_SERVER, "live", "ca");
	struct rp_tlsconn *before = rp_tlsconn_create(st, RP_TLS_SERVER);
	snprintf(cmd, sizeof cmd, "cp %s %s && cp %s %s", path("s3", "pem"), path("live", "pem"),
		 path("s3", "key"), path("live", "key"));
	assert_int_equal(system(cmd), 0);
	char err[256];
	assert_int_equal(rp_tls_reload(st, err, sizeof err), 0);
	struct rp_tlsconn *after = rp_tlsconn_create(st, RP_TLS_SERVER);
	struct rp_tlsconn *c1 = rp_tlsconn_create(ct, RP_TLS_CLIENT);
	struct rp_tlsconn *c2 = rp_tlsconn_create(ct, RP_TLS_CLIENT);
	int rc, rs;
	assert_int_equal(handshake(c1, before, &rc, &rs), 1);
	assert_int_equal(handshake(c2, after, &rc, &rs), 1);
	struct rp_peer_id id;
	rp_tlsconn_peer(c1, "raftplane", &id);
	assert_int_equal(id.server, 1); /* the connection made before the reload */
	rp_tlsconn_peer(c2, "raftplane", &id);
	assert_int_equal(id.server, 3);
	rp_tlsconn_destroy(before);
	rp_tlsconn_destroy(after);
	rp_tlsconn_destroy(c1);
	rp_tlsconn_destroy(c2);
	rp_tls_destroy(st);
	rp_tls_destroy(ct);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake_identities_data),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_no_cert),
		cmocka_unit_test(test_other_ca),
		cmocka_unit_test(test_plain_text_and_broken_record),
		cmocka_unit_test(test_reload_applies_to_new_connections),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
