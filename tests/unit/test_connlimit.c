/* Unit tests: the connection limits of a listener (net/connlimit.h):
 * per address, IPv4-mapped IPv6 counted as IPv4, IPv6 by /64, the total,
 * exemptions, entries freed when their last connection goes, and the
 * process' client descriptor budget (net/fdbudget.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "connlimit.h"
#include "fdbudget.h"

static struct sockaddr_storage v4(const char *ip)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	in->sin_family = AF_INET;
	in->sin_port = htons(1234);
	assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
	return ss;
}

static struct sockaddr_storage v6(const char *ip)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	struct sockaddr_in6 *in = (struct sockaddr_in6 *)&ss;
	in->sin6_family = AF_INET6;
	in->sin6_port = htons(1234);
	assert_int_equal(inet_pton(AF_INET6, ip, &in->sin6_addr), 1);
	return ss;
}

static int admit(struct rp_connlimit *l, struct sockaddr_storage sa, struct rp_conn_slot *slot)
{
	enum rp_conn_refuse why = RP_CONN_REFUSE__N;
	int rv = rp_connlimit_admit(l, (struct sockaddr *)&sa, slot, &why);
	return rv == 0 ? -1 : (int)why;
}

static void test_per_address(void **state)
{
	(void)state;
	struct rp_connlimit l;
	struct rp_connlimit_config cfg = {.per_ip = 2};
	assert_int_equal(rp_connlimit_init(&l, &cfg, 0), 0);
	struct rp_conn_slot s[6];
	assert_int_equal(admit(&l, v4("10.0.0.1"), &s[0]), -1);
	/* the same address as IPv4-mapped IPv6 counts with it */
	assert_int_equal(admit(&l, v6("::ffff:10.0.0.1"), &s[1]), -1);
	assert_int_equal(admit(&l, v4("10.0.0.1"), &s[2]), RP_CONN_REFUSE_PER_IP);
	assert_false(s[2].held);
	/* another address is not affected */
	assert_int_equal(admit(&l, v4("10.0.0.2"), &s[3]), -1);
	/* a released slot admits again; releasing twice is harmless */
	rp_connlimit_release(&l, &s[0]);
	rp_connlimit_release(&l, &s[0]);
	assert_int_equal(admit(&l, v4("10.0.0.1"), &s[0]), -1);
	struct rp_connlimit_stats st;
	rp_connlimit_stats(&l, &st);
	assert_int_equal(st.open, 3);
	assert_int_equal(st.refused[RP_CONN_REFUSE_PER_IP], 1);
	rp_connlimit_release(&l, &s[0]);
	rp_connlimit_release(&l, &s[1]);
	rp_connlimit_release(&l, &s[3]);
	rp_connlimit_stats(&l, &st);
	assert_int_equal(st.open, 0);
	rp_connlimit_close(&l);
}

static void test_ipv6_by_prefix(void **state)
{
	(void)state;
	struct rp_connlimit l;
	struct rp_connlimit_config cfg = {.per_ip = 2};
	assert_int_equal(rp_connlimit_init(&l, &cfg, 1), 0); /* with the mutex */
	struct rp_conn_slot s[4];
	/* one /64: one host picking source addresses */
	assert_int_equal(admit(&l, v6("2001:db8:1:2::1"), &s[0]), -1);
	assert_int_equal(admit(&l, v6("2001:db8:1:2:ffff::9"), &s[1]), -1);
	assert_int_equal(admit(&l, v6("2001:db8:1:2:1234:5678:9abc:def0"), &s[2]),
			 RP_CONN_REFUSE_PER_IP);
	/* the next /64 is another client */
	assert_int_equal(admit(&l, v6("2001:db8:1:3::1"), &s[3]), -1);
	for (int i = 0; i < 4; i++)
		rp_connlimit_release(&l, &s[i]);
	rp_connlimit_close(&l);
}

static void test_total(void **state)
{
	(void)state;
	struct rp_connlimit l;
	struct rp_connlimit_config cfg = {.total = 3};
	assert_int_equal(rp_connlimit_init(&l, &cfg, 0), 0);
	assert_true(rp_connlimit_counts(&l));
	struct rp_conn_slot s[4];
	assert_int_equal(admit(&l, v4("10.0.0.1"), &s[0]), -1);
	assert_int_equal(admit(&l, v4("10.0.0.1"), &s[1]), -1);
	assert_int_equal(admit(&l, v4("10.0.0.2"), &s[2]), -1);
	assert_int_equal(admit(&l, v4("10.0.0.3"), &s[3]), RP_CONN_REFUSE_TOTAL);
	rp_connlimit_release(&l, &s[1]);
	assert_int_equal(admit(&l, v4("10.0.0.3"), &s[3]), -1);
	struct rp_connlimit_stats st;
	rp_connlimit_stats(&l, &st);
	assert_int_equal(st.refused[RP_CONN_REFUSE_TOTAL], 1);
	assert_int_equal(st.open, 3);
	for (int i = 0; i < 4; i++)
		rp_connlimit_release(&l, &s[i]);
	rp_connlimit_close(&l);
	/* nothing set: nothing counted */
	struct rp_connlimit_config none = {0};
	assert_int_equal(rp_connlimit_init(&l, &none, 0), 0);
	assert_false(rp_connlimit_counts(&l));
	rp_connlimit_close(&l);
}

/* The descriptor budget: connections stop at it, a refusal by it gives back
 * what the address count took, and close watches stop a headroom earlier. */
static void test_fd_budget(void **state)
{
	(void)state;
	assert_int_equal(rp_fd_budget_for(20000), 18976);
	assert_int_equal(rp_fd_budget_for(1024), 768);
	assert_int_equal(rp_fd_budget_for(100), 75);
	struct rp_connlimit l;
	struct rp_connlimit_config cfg = {.per_ip = 10};
	assert_int_equal(rp_connlimit_init(&l, &cfg, 0), 0);
	rp_fd_budget_set(8); /* headroom for connections: 2 */
	struct rp_conn_slot s[9];
	for (int i = 0; i < 4; i++)
		assert_int_equal(admit(&l, v4("10.0.0.1"), &s[i]), -1);
	/* watches: up to 6 held in all (8 less the headroom of 2) */
	assert_int_equal(rp_fd_budget_take_watch(), 1);
	assert_int_equal(rp_fd_budget_take_watch(), 1);
	assert_int_equal(rp_fd_budget_take_watch(), 0);
	assert_int_equal(rp_fd_budget_used(), 6);
	/* connections: up to 8 */
	assert_int_equal(admit(&l, v4("10.0.0.1"), &s[4]), -1);
	assert_int_equal(admit(&l, v4("10.0.0.2"), &s[5]), -1);
	assert_int_equal(admit(&l, v4("10.0.0.2"), &s[6]), RP_CONN_REFUSE_FDS);
	assert_int_equal(rp_fd_budget_used(), 8);
	struct rp_connlimit_stats st;
	rp_connlimit_stats(&l, &st);
	assert_int_equal(st.refused[RP_CONN_REFUSE_FDS], 1);
	assert_int_equal(st.open, 6);
	/* the refused one left no count behind: 10.0.0.2 holds one */
	rp_connlimit_release(&l, &s[5]);
	rp_fd_budget_give(); /* a watch */
	assert_int_equal(admit(&l, v4("10.0.0.2"), &s[5]), -1);
	assert_int_equal(admit(&l, v4("10.0.0.2"), &s[6]), -1);
	assert_int_equal(admit(&l, v4("10.0.0.2"), &s[7]), RP_CONN_REFUSE_FDS);
	for (int i = 0; i < 7; i++)
		rp_connlimit_release(&l, &s[i]);
	rp_fd_budget_give();
	assert_int_equal(rp_fd_budget_used(), 0);
	/* no budget: unlimited, and a limiter without limits counts nothing */
	rp_fd_budget_set(0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(rp_fd_budget_take_watch(), 1);
	for (int i = 0; i < 100; i++)
		rp_fd_budget_give();
	rp_connlimit_close(&l);
	struct rp_connlimit_config none = {0};
	assert_int_equal(rp_connlimit_init(&l, &none, 0), 0);
	assert_false(rp_connlimit_counts(&l));
	rp_fd_budget_set(5);
	assert_true(rp_connlimit_counts(&l));
	rp_fd_budget_set(0);
	rp_connlimit_close(&l);
}

static int exempt_calls;

static int exempt_10_9(void *arg, const struct sockaddr *sa)
{
	(void)arg;
	exempt_calls++;
	const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
	return sa->sa_family == AF_INET && ntohl(in->sin_addr.s_addr) == 0x0a000009;
}

static void test_exempt(void **state)
{
	(void)state;
	struct rp_connlimit l;
	struct rp_connlimit_config cfg = {.per_ip = 1, .total = 4, .exempt = exempt_10_9};
	assert_int_equal(rp_connlimit_init(&l, &cfg, 0), 0);
	struct rp_conn_slot s[6];
	exempt_calls = 0;
	assert_int_equal(admit(&l, v4("10.0.0.9"), &s[0]), -1);
	assert_int_equal(exempt_calls, 0); /* asked only over the limit */
	assert_false(s[0].exempted);
	assert_int_equal(admit(&l, v4("10.0.0.9"), &s[1]), -1);
	assert_true(s[1].exempted);
	assert_int_equal(admit(&l, v4("10.0.0.1"), &s[2]), -1);
	assert_int_equal(admit(&l, v4("10.0.0.1"), &s[3]), RP_CONN_REFUSE_PER_IP);
	assert_int_equal(admit(&l, v4("10.0.0.9"), &s[3]), -1);
	/* the total still holds for an exempted address */
	assert_int_equal(admit(&l, v4("10.0.0.9"), &s[4]), RP_CONN_REFUSE_TOTAL);
	/* an exempted connection that could not prove it: refused after all */
	struct sockaddr_storage a = v4("10.0.0.9");
	rp_connlimit_refuse_exempted(&l, (struct sockaddr *)&a, &s[3]);
	assert_false(s[3].held);
	struct rp_connlimit_stats st;
	rp_connlimit_stats(&l, &st);
	assert_int_equal(st.open, 3);
	assert_int_equal(st.exempted, 2);
	assert_int_equal(st.refused[RP_CONN_REFUSE_PER_IP], 2);
	for (int i = 0; i < 3; i++)
		rp_connlimit_release(&l, &s[i]);
	rp_connlimit_stats(&l, &st);
	assert_int_equal(st.open, 0);
	rp_connlimit_close(&l);
}

/* Many addresses come and go: entries are freed (LeakSanitizer checks the
 * rest), the counters stay right. */
static void test_churn(void **state)
{
	(void)state;
	struct rp_connlimit l;
	struct rp_connlimit_config cfg = {.per_ip = 3};
	assert_int_equal(rp_connlimit_init(&l, &cfg, 0), 0);
	static struct rp_conn_slot s[3000];
	char ip[32];
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 3000; i++) {
			snprintf(ip, sizeof ip, "10.%d.%d.%d", round, i / 250, i % 250);
			assert_int_equal(admit(&l, v4(ip), &s[i]), -1);
		}
		for (int i = 0; i < 3000; i++)
			rp_connlimit_release(&l, &s[i]);
	}
	struct rp_connlimit_stats st;
	rp_connlimit_stats(&l, &st);
	assert_int_equal(st.open, 0);
	rp_connlimit_close(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_per_address), cmocka_unit_test(test_ipv6_by_prefix),
		cmocka_unit_test(test_total),       cmocka_unit_test(test_exempt),
		cmocka_unit_test(test_churn),       cmocka_unit_test(test_fd_budget),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
