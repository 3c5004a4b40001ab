/* raft/lz4check.c rp_lz4_frame_check: the LZ4 frame of a snapshot file in
 * a data dir, which may be damaged. Input: the file's bytes. Whatever they
 * hold, the check returns 0 or -1 with a message, never reads outside them. */
#include <stdint.h>
#include <stdlib.h>

#include "raft/lz4check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256] = "";
	uint64_t n = 0;
	if (rp_lz4_frame_check(data, size, &n, err, sizeof err) != 0 && !err[0])
		abort();
	return 0;
}
