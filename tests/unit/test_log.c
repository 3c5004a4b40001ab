/* Unit tests: the logging facility's line format, filtering and escaping
 * (include/raftplane/log.h). Each test captures stderr in a temporary file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raftplane/log.h"

static char out[4 * RP_LOG_LINE_MAX];

/* Runs fn with stderr redirected to a file; leaves what it wrote in out. */
static void capture(void (*fn)(void))
{
	FILE *f = tmpfile();
	assert_non_null(f);
	fflush(stderr);
	int saved = dup(2);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(f), 2) >= 0);
	fn();
	fflush(stderr);
	assert_true(dup2(saved, 2) >= 0);
	close(saved);
	rewind(f);
	size_t n = fread(out, 1, sizeof out - 1, f);
	out[n] = '\0';
	fclose(f);
}

static int count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void write_info(void)
{
	rp_log_info("leader ready in term %d", 3);
}

static void test_line_format(void **state)
{
	(void)state;
	rp_log_init("raftplane-test");
	rp_log_set_node("7");
	rp_log_set_level(RP_LOG_INFO);
	capture(write_info);
	regex_t re;
	assert_int_equal(
		regcomp(&re,
			"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
			"INFO raftplane-test node=7: leader ready in term 3\n$",
			REG_EXTENDED),
		0);
	assert_int_equal(regexec(&re, out, 0, NULL, 0), 0);
	regfree(&re);
}

static void write_levels(void)
{
	rp_log_debug("dropped");
	rp_log_info("dropped too");
	rp_log_warn("kept warn");
	rp_log_error("kept error");
	rp_log_fatal("kept fatal");
}

static void test_level_filter(void **state)
{
	(void)state;
	rp_log_set_node(NULL);
	rp_log_set_level(RP_LOG_WARN);
	capture(write_levels);
	assert_null(strstr(out, "dropped"));
	assert_non_null(strstr(out, " WARN raftplane-test: kept warn\n"));
	assert_non_null(strstr(out, " ERROR raftplane-test: kept error\n"));
	assert_non_null(strstr(out, " FATAL raftplane-test: kept fatal\n"));
	assert_int_equal(count_lines(out), 3);
	/* FATAL is never filtered */
	rp_log_set_level((enum rp_log_level)RP_LOG_FATAL);
	capture(write_levels);
	assert_int_equal(count_lines(out), 1);
	rp_log_set_level(RP_LOG_INFO);
}

static void write_forged(void)
{
	/* text quoted from a peer must not be able to start a second line */
	rp_log_warn("peer said \"%s\"", "ok\n2026-01-01T00:00:00.000Z INFO forged\r\x1b[2J");
}

static void test_control_characters_escaped(void **state)
{
	(void)state;
	capture(write_forged);
	assert_int_equal(count_lines(out), 1);
	assert_non_null(
		strstr(out, "peer said \"ok?2026-01-01T00:00:00.000Z INFO forged??[2J\"\n"));
}

static void write_long(void)
{
	static char big[3 * RP_LOG_LINE_MAX];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	rp_log_info("%s", big);
}

static void test_long_line_cut(void **state)
{
	(void)state;
	capture(write_long);
	assert_int_equal(count_lines(out), 1);
	size_t n = strlen(out);
	assert_true(n < RP_LOG_LINE_MAX + 128);
	assert_memory_equal(out + n - 4, "...\n", 4);
}

static void test_level_names(void **state)
{
	(void)state;
	assert_int_equal(rp_log_level_parse("debug"), RP_LOG_DEBUG);
	assert_int_equal(rp_log_level_parse("info"), RP_LOG_INFO);
	assert_int_equal(rp_log_level_parse("warn"), RP_LOG_WARN);
	assert_int_equal(rp_log_level_parse("error"), RP_LOG_ERROR);
	assert_int_equal(rp_log_level_parse("WARN"), -1);
	assert_int_equal(rp_log_level_parse(""), -1);
	assert_int_equal(rp_log_level_parse(NULL), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_format),
		cmocka_unit_test(test_level_filter),
		cmocka_unit_test(test_control_characters_escaped),
		cmocka_unit_test(test_long_line_cut),
		cmocka_unit_test(test_level_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
