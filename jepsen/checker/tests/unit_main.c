/* Runs every checker unit test group; exit status = failed tests. */
int run_register_tests(void);
int run_set_parse_tests(void);
int run_bruteforce_tests(void);

int main(void)
{
	int failed = 0;

	failed += run_register_tests();
	failed += run_set_parse_tests();
	failed += run_bruteforce_tests();
	return failed ? 1 : 0;
}
