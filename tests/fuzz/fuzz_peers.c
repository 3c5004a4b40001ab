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

/* in /dev/shm when there is one: a disk-backed /tmp makes this target 10x slower */
static char dir[64];

static void cleanup(void)
{
	char path[128];
	snprintf(path, sizeof path, "%s/raft-peers", dir);
	unlink(path);
	rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rp_peerset s;
	if (!dir[0]) {
		snprintf(dir, sizeof dir, "%s/rp-fuzz-peers-XXXXXX",
			 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
		if (!mkdtemp(dir))
			abort();
		atexit(cleanup);
	}
	char path[128];
	snprintf(path, sizeof path, "%s/raft-peers", dir);
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
