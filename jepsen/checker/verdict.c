/* Verdict names, merging and exit codes. */
#include "verdict.h"

const char *rp_verdict_name(enum rp_verdict v)
{
	switch (v) {
	case RP_VERDICT_VALID: return "VALID";
	case RP_VERDICT_INVALID: return "INVALID";
	case RP_VERDICT_UNKNOWN: return "UNKNOWN";
	}
	return "?";
}

enum rp_verdict rp_verdict_merge(enum rp_verdict a, enum rp_verdict b)
{
	if (a == RP_VERDICT_INVALID || b == RP_VERDICT_INVALID) {
		return RP_VERDICT_INVALID;
	}
	if (a == RP_VERDICT_UNKNOWN || b == RP_VERDICT_UNKNOWN) {
		return RP_VERDICT_UNKNOWN;
	}
	return RP_VERDICT_VALID;
}

int rp_verdict_exit_code(enum rp_verdict v)
{
	switch (v) {
	case RP_VERDICT_VALID: return 0;
	case RP_VERDICT_INVALID: return 1;
	case RP_VERDICT_UNKNOWN: return 3;
	}
	return 3;
}
