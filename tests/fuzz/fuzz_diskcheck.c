/* raft/diskcheck.c rp_diskcheck: the start-up check of a data dir whose
 * files may be damaged. Input: one byte choosing the file (a closed
 * segment, an open segment, metadata1, raftplane-meta, a snapshot's data,
 * its .meta), then the file's bytes; the dir also holds a valid
 * raftplane-id. The check returns 0 or -1 with a message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raft/diskcheck.h"
#include "scratch.h"

static const char *names[] = {"0000000000000001-0000000000000009",
			      "open-1",
			      "metadata1",
			      "raftplane-meta",
			      "snapshot-1-8-100",
			      "snapshot-1-8-100.meta"};
#define N_NAMES (sizeof names / sizeof names[0])

/* a real snapshot .meta (format, checksum, configuration of one voter) */
static const uint8_t meta[] = {0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xaa, 0xe5, 0xa8,
			       0x03, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
			       0x00, 0x00, 0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
			       0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
			       0x00, 0x00, 0x00, 0x00, 0x00, 0x31, 0x32, 0x37, 0x2e, 0x30, 0x2e,
			       0x30, 0x2e, 0x31, 0x3a, 0x36, 0x30, 0x38, 0x33, 0x39, 0x00, 0x01,
			       0xbe, 0xbe, 0xbe, 0xbe, 0xbe, 0xbe};

static void put(const char *dir, const char *name, const uint8_t *data, size_t size)
{
	char path[256];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
}

static void drop(const char *dir, const char *name)
{
	char path[256];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *dir;
	rp_scratch_file("diskcheck", "raftplane-id", &dir);
	if (size < 1)
		return 0;
	const char *name = names[data[0] % N_NAMES];
	put(dir, "raftplane-id", (const uint8_t *)"1\n", 2);
	put(dir, name, data + 1, size - 1);
	if (data[0] % N_NAMES == 4) /* a data file needs its .meta to be looked at */
		put(dir, names[5], meta, sizeof meta);
	char err[512] = "";
	if (rp_diskcheck(dir, 1, err, sizeof err) != 0 && !err[0])
		abort();
	drop(dir, name);
	drop(dir, names[5]);
	/* the scratch helper removes raftplane-id and the dir at exit */
	return 0;
}
