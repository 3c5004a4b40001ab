/* The proxy's snapshot cache file (proxy/cache.c rp_cache_load): a file in
 * --cache-dir read at start, which may be damaged. Input: the file's bytes;
 * when the first byte is odd the CRC field is made to match the payload, so
 * the fuzzer also gets past the checksum. A load that succeeds returns
 * exactly the payload written in the file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/cache.h"
#include "scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *dir, *path = rp_scratch_file("cache", "snapshot-n.bin", &dir);
	if (size < 1)
		return 0;
	uint8_t *file = malloc(size);
	memcpy(file, data + 1, size - 1);
	size_t flen = size - 1;
	if ((data[0] & 1) && flen >= 20) {
		unsigned crc = rp_crc32(file + 20, flen - 20);
		for (int i = 0; i < 4; i++)
			file[16 + i] = (uint8_t)(crc >> (8 * i));
	}
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(file, 1, flen, f) != flen || fclose(f) != 0)
		abort();
	void *out = NULL;
	size_t len = 0;
	char err[256];
	int rv = rp_cache_load(dir, "n", &out, &len, err, sizeof err);
	if (rv == 1) {
		if (flen < 20 || len != flen - 20 || memcmp(out, file + 20, len) != 0)
			abort();
		free(out);
	} else if (rv != -1) {
		abort(); /* the file exists */
	}
	free(file);
	return 0;
}
