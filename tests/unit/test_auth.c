/* Unit tests: the token string (format, parse, every malformed shape), the
 * token file checks, whether a peer is a cluster member (certificate
 * identity and address), and the cost of authenticating one request. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "call.h"

static void test_round_trip(void **state)
{
	(void)state;
	for (int i = 0; i < 1000; i++) {
		unsigned char secret[32], back[32];
		char s[RP_TOKEN_STRLEN + 1];
		assert_int_equal(RAND_bytes(secret, sizeof secret), 1);
		if (i == 0)
			memset(secret, 0, sizeof secret);
		if (i == 1)
			memset(secret, 0xff, sizeof secret);
		rp_token_format(secret, s);
		assert_int_equal(strlen(s), RP_TOKEN_STRLEN);
		assert_memory_equal(s, "rpt_", 4);
		assert_int_equal(rp_token_parse(s, strlen(s), back), 0);
		assert_memory_equal(secret, back, 32);
	}
}

static void test_malformed(void **state)
{
	(void)state;
	unsigned char secret[32];
	char good[RP_TOKEN_STRLEN + 1], bad[64];
	memset(secret, 0x5a, sizeof secret);
	rp_token_format(secret, good);
	assert_int_equal(rp_token_parse(good, strlen(good), secret), 0);
	assert_int_equal(rp_token_parse(good, strlen(good) - 1, secret), -1); /* 46 */
	snprintf(bad, sizeof bad, "%sA", good);
	assert_int_equal(rp_token_parse(bad, strlen(bad), secret), -1); /* 48 */
	snprintf(bad, sizeof bad, "%s", good);
	bad[0] = 'R';
	assert_int_equal(rp_token_parse(bad, strlen(bad), secret), -1); /* prefix */
	const char *alphabet_breakers = "=+/ .\n\t\0~";
	for (const char *p = alphabet_breakers; p < alphabet_breakers + 9; p++) {
		snprintf(bad, sizeof bad, "%s", good);
		bad[10] = *p;
		assert_int_equal(rp_token_parse(bad, RP_TOKEN_STRLEN, secret), -1);
	}
	/* the last character carries 2 unused bits: only one spelling per secret */
	snprintf(bad, sizeof bad, "%s", good);
	bad[RP_TOKEN_STRLEN - 1] = 'B'; /* good ends in a character with low bits 00 */
	if (good[RP_TOKEN_STRLEN - 1] != 'B')
		assert_int_equal(rp_token_parse(bad, strlen(bad), secret), -1);
	assert_int_equal(rp_token_parse("", 0, secret), -1);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_token_file(void **state)
{
	(void)state;
	char dir[] = "/tmp/rp-unit-auth-XXXXXX", path[256], err[512], tok[RP_TOKEN_STRLEN + 1];
	char line[80];
	unsigned char secret[32], hash[32], want[32];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/t", dir);
	memset(secret, 7, sizeof secret);
	rp_token_format(secret, tok);
	rp_token_hash(secret, want);
	snprintf(line, sizeof line, "%s\n", tok);
	write_file(path, line, 0600);
	assert_int_equal(rp_token_file_load(path, tok, hash, err, sizeof err), 0);
	assert_memory_equal(hash, want, 32);
	write_file(path, line, 0400);
	assert_int_equal(rp_token_file_load(path, tok, hash, err, sizeof err), 0);
	write_file(path, line, 0640);
	assert_int_equal(rp_token_file_load(path, tok, hash, err, sizeof err), -1);
	assert_non_null(strstr(err, "chmod 600"));
	write_file(path, line, 0604);
	assert_int_equal(rp_token_file_load(path, tok, hash, err, sizeof err), -1);
	write_file(path, "", 0600);
	assert_int_equal(rp_token_file_load(path, tok, hash, err, sizeof err), -1);
	assert_non_null(strstr(err, "is empty"));
	write_file(path, "\n", 0600);
	assert_int_equal(rp_token_file_load(path, tok, hash, err, sizeof err), -1);
	assert_non_null(strstr(err, "is empty"));
	write_file(path, "hello\n", 0600);
	assert_int_equal(rp_token_file_load(path, tok, hash, err, sizeof err), -1);
	assert_non_null(strstr(err, "not a token"));
	snprintf(line, sizeof line, "%s\n\n", tok); /* two lines */
	write_file(path, line, 0600);
	assert_int_equal(rp_token_file_load(path, tok, hash, err, sizeof err), -1);
	unlink(path);
	assert_int_equal(rp_token_file_load(path, tok, hash, err, sizeof err), -1);
	assert_non_null(strstr(err, "No such file"));
	assert_int_equal(rp_token_file_load(dir, tok, hash, err, sizeof err), -1);
	assert_non_null(strstr(err, "not a regular file"));
	rmdir(dir);
}

static void test_peer_is_member(void **state)
{
	(void)state;
	struct rp_node_member ms[2] = {
		{.id = 1, .raft = "10.0.0.1:7001", .http = "10.0.0.1:8001"},
		{.id = 2, .raft = "[::1]:7002", .http = "[::1]:8002"},
	};
	/* certificate identities (the TLS layer's hook) */
	assert_int_equal(rp_peer_is_member("spiffe://td/server/2", "192.0.2.9", ms, 2), 1);
	assert_int_equal(rp_peer_is_member("spiffe://td/server/1", NULL, ms, 2), 1);
	assert_int_equal(rp_peer_is_member("spiffe://td/server/3", "10.0.0.1", ms, 2), 0);
	assert_int_equal(rp_peer_is_member("spiffe://td/node/2", "10.0.0.1", ms, 2), 0);
	assert_int_equal(rp_peer_is_member("spiffe:///server/2", NULL, ms, 2), 0);
	assert_int_equal(rp_peer_is_member("spiffe://td/server/2x", NULL, ms, 2), 0);
	assert_int_equal(rp_peer_is_member("spiffe://td/server/", NULL, ms, 2), 0);
	assert_int_equal(
		rp_peer_is_member("spiffe://td/server/99999999999999999999999", NULL, ms, 2), 0);
	/* without a certificate: the peer's IP against the members' HTTP hosts */
	assert_int_equal(rp_peer_is_member(NULL, "10.0.0.1", ms, 2), 1);
	assert_int_equal(rp_peer_is_member(NULL, "::1", ms, 2), 1);
	assert_int_equal(rp_peer_is_member(NULL, "10.0.0.2", ms, 2), 0);
	assert_int_equal(rp_peer_is_member(NULL, "10.0.0.", ms, 2), 0);
	assert_int_equal(rp_peer_is_member(NULL, "", ms, 2), 0);
	assert_int_equal(rp_peer_is_member(NULL, "10.0.0.1", ms, 0), 0);
}

/* What authentication adds to a request: parse, hash (the index lookup is
 * a binary search on top). A GET costs ~100 us end to end. */
static void test_cost(void **state)
{
	(void)state;
	unsigned char secret[32], hash[32];
	char s[RP_TOKEN_STRLEN + 1];
	struct timespec t0, t1;
	RAND_bytes(secret, sizeof secret);
	rp_token_format(secret, s);
	enum {
		N = 100000
	};
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(rp_token_parse(s, RP_TOKEN_STRLEN, secret), 0);
		rp_token_hash(secret, hash);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double us = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) /
		    N / 1000.0;
	printf("token parse + SHA-256: %.2f us per request\n", us);
	assert_true(us < 50.0); /* sanitizer builds included */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip), cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_token_file), cmocka_unit_test(test_peer_is_member),
		cmocka_unit_test(test_cost),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
