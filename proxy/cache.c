/* The snapshot cache: atomic write, verified load. */
#include "cache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "RPSNAP01"
#define HEADER 20
#define MAX_CACHE (256u * 1024 * 1024)

unsigned rp_crc32(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint32_t crc = 0xffffffffu;
	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
	}
	return ~crc;
}

static void put_le(unsigned char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int rp_cache_write(const char *dir, const char *node_id, const void *data, size_t len, char *err,
		   size_t errlen)
{
	char path[4096], tmp[4096];
	unsigned char head[HEADER];
	snprintf(path, sizeof path, "%s/snapshot-%s.bin", dir, node_id);
	snprintf(tmp, sizeof tmp, "%s/.snapshot-%s.tmp", dir, node_id);
	memcpy(head, MAGIC, 8);
	put_le(head + 8, len, 8);
	put_le(head + 16, rp_crc32(data, len), 4);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(err, errlen, "open %s: %s", tmp, strerror(errno));
		return -1;
	}
	if (write_all(fd, head, sizeof head) != 0 || write_all(fd, data, len) != 0 ||
	    fsync(fd) != 0) {
		snprintf(err, errlen, "write %s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) != 0) {
		snprintf(err, errlen, "rename %s: %s", tmp, strerror(errno));
		unlink(tmp);
		return -1;
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd); /* make the rename durable */
		close(dfd);
	}
	return 0;
}

int rp_cache_load(const char *dir, const char *node_id, void **data, size_t *len, char *err,
		  size_t errlen)
{
	char path[4096];
	unsigned char head[HEADER];
	snprintf(path, sizeof path, "%s/snapshot-%s.bin", dir, node_id);
	FILE *f = fopen(path, "rb");
	if (!f) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "open %s: %s", path, strerror(errno));
		return -1;
	}
	int rv = -1;
	void *buf = NULL;
	if (fread(head, 1, sizeof head, f) != sizeof head || memcmp(head, MAGIC, 8) != 0) {
		snprintf(err, errlen, "%s: not a snapshot cache file", path);
		goto out;
	}
	uint64_t n = get_le(head + 8, 8);
	if (n > MAX_CACHE || !(buf = malloc(n ? n : 1)) || fread(buf, 1, n, f) != n ||
	    fgetc(f) != EOF) {
		snprintf(err, errlen, "%s: truncated or oversized", path);
		goto out;
	}
	if (rp_crc32(buf, n) != (unsigned)get_le(head + 16, 4)) {
		snprintf(err, errlen, "%s: checksum mismatch", path);
		goto out;
	}
	*data = buf;
	*len = n;
	buf = NULL;
	rv = 1;
out:
	free(buf);
	fclose(f);
	return rv;
}
