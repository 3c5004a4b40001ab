/* raft/peers.c rp_peerset_load: DATA/raft-peers, the admitted peers a node
 * reloads at start ("<id> <raft address>\n" lines), which may be damaged.
 * Input: the file's bytes. Whatever it holds, the set has at most
 * RP_PEERSET_MAX distinct non-zero ids with NUL-terminated addresses. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raft/peers.h"
#include "scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rp_peerset s;
	const char *dir, *path = rp_scratch_file("peers", "raft-peers", &dir);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
	rp_peerset_load(&s, 1, dir);
	if (s.n > RP_PEERSET_MAX)
		abort();
	for (unsigned i = 0; i < s.n; i++) {
		if (s.p[i].id == 0 || !memchr(s.p[i].raft, '\0', sizeof s.p[i].raft) ||
		    !s.p[i].raft[0] || rp_peerset_find(&s, s.p[i].id) != s.p[i].raft)
			abort();
		for (unsigned j = 0; j < i; j++)
			if (s.p[j].id == s.p[i].id)
				abort();
	}
	return 0;
}
