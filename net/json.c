/* JSON helpers: see json.h. */
#include "json.h"

json_t *rp_json_u64(uint64_t v)
{
	return v <= INT64_MAX ? json_integer((json_int_t)v) : json_real((double)v);
}
