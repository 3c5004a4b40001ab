/* Hostile values for the API's encoders and parsers (issue 9, items 14, 17):
 * unsigned 64-bit values in JSON, wait= syntax, UTF-8 sanitising of error
 * messages, path-segment decoding. Exits non-zero on the first failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "params.h"
#include "utf8.h"

static int failures;

#define CHECK(cond, ...)                                                     \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
			fprintf(stderr, __VA_ARGS__);                        \
			fprintf(stderr, "\n");                               \
			failures++;                                          \
		}                                                            \
	} while (0)

static void test_u64(void)
{
	static const uint64_t values[] = {0, 1, INT64_MAX, (uint64_t)INT64_MAX + 1, UINT64_MAX};
	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
		json_t *o = json_pack("{s:o}", "term", rp_json_u64(values[i]));
		char *text = json_dumps(o, JSON_COMPACT);
		CHECK(text && !strchr(text, '-'), "%llu encodes as %s",
		      (unsigned long long)values[i], text ? text : "(null)");
		json_t *back = json_loads(text ? text : "", 0, NULL);
		json_t *t = json_object_get(back, "term");
		CHECK(t && json_number_value(t) >= 0, "%s does not read back as >= 0", text);
		if (values[i] <= INT64_MAX)
			CHECK(json_is_integer(t) && (uint64_t)json_integer_value(t) == values[i],
			      "%s is not the exact integer", text);
		json_decref(back);
		free(text);
		json_decref(o);
	}
}

static void test_wait(void)
{
	static const char *const bad[] = {"0x10ms", "0x10",       "1e3",       "1E3ms", "inf",
					  "nan",    "-1",         "+1",        " 1",    "1 ",
					  "1.s",    ".5",         "1..5",      "10h",   "1S",
					  "",       "1234567890", "1.1234567", "0x",    "1,5s",
					  "s",      "ms"};
	static const struct {
		const char *s;
		uint64_t ms;
	} good[] = {{"0", 0},        {"10", 10000},  {"1.5s", 1500}, {"500ms", 500},
		    {"2m", 120000},  {"0.001m", 60}, {"0.5ms", 0},   {"600000ms", 600000},
		    {"10m", 600000}, {"007s", 7000}};
	uint64_t ms;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK(rp_parse_wait(bad[i], 600000, &ms) != 0, "wait \"%s\" accepted", bad[i]);
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		CHECK(rp_parse_wait(good[i].s, 600000, &ms) == 0 && ms == good[i].ms,
		      "wait \"%s\": want %llu ms", good[i].s, (unsigned long long)good[i].ms);
	CHECK(rp_parse_wait("10.5m", 600000, &ms) != 0, "over the maximum accepted");
}

/* After sanitising, jansson must accept the text. */
static void check_sanitized(const char *in, size_t cap, const char *want)
{
	char out[64];
	rp_utf8_sanitize(out, cap, in);
	json_t *s = json_string(out);
	CHECK(s != NULL, "sanitised \"%s\" is not valid UTF-8", out);
	CHECK(strlen(out) < cap, "sanitised text longer than the buffer");
	if (want)
		CHECK(strcmp(out, want) == 0, "sanitise: got \"%s\", want \"%s\"", out, want);
	json_decref(s);
}

static void test_utf8(void)
{
	check_sanitized("abc", 64, "abc");
	check_sanitized("\xc3\xa9\xc3\xa9", 4, "\xc3\xa9"); /* cut before a whole char */
	check_sanitized("ab\xe2\x82\xac", 4, "ab");         /* 3-byte char does not fit */
	check_sanitized("a\xff"
			"b",
			64, "a?b");                      /* invalid byte */
	check_sanitized("a\xc3", 64, "a?");              /* truncated sequence */
	check_sanitized("\xc0\xaf", 64, "??");           /* overlong '/' */
	check_sanitized("\xed\xa0\x80", 64, "???");      /* surrogate */
	check_sanitized("\xf4\x90\x80\x80", 64, "????"); /* over U+10FFFF */
	check_sanitized("\xf0\x9f\x98\x80", 64, "\xf0\x9f\x98\x80");
	check_sanitized("\xf0\x9f\x98\x80", 4, "");
	char big[2000];
	for (size_t i = 0; i + 2 < sizeof big; i += 2)
		memcpy(big + i, "\xc3\xa9", 2);
	big[sizeof big - 2] = '\xc3', big[sizeof big - 1] = '\0';
	for (size_t cap = 1; cap < 64; cap++)
		check_sanitized(big, cap, NULL);
}

static void test_path_decode(void)
{
	char out[16];
	size_t n;
	CHECK(rp_path_decode("a%2Fb", 5, out, sizeof out, &n) == 0 && n == 3 &&
		      strcmp(out, "a/b") == 0,
	      "%%2F decodes to a slash (as data)");
	CHECK(rp_path_decode("a+b", 3, out, sizeof out, &n) == 0 && strcmp(out, "a+b") == 0,
	      "'+' in a path is literal");
	CHECK(rp_path_decode("a%00", 4, out, sizeof out, &n) != 0, "%%00 accepted");
	CHECK(rp_path_decode("a%0", 3, out, sizeof out, &n) != 0, "short escape accepted");
	CHECK(rp_path_decode("a%zz", 4, out, sizeof out, &n) != 0, "bad escape accepted");
	CHECK(rp_path_decode("0123456789abcdefg", 17, out, sizeof out, &n) != 0,
	      "overflow accepted");
}

int main(void)
{
	test_u64();
	test_wait();
	test_utf8();
	test_path_decode();
	if (failures)
		fprintf(stderr, "%d failures\n", failures);
	else
		printf("all encoding checks passed\n");
	return failures ? 1 : 0;
}
