/* The data dir's identity file (see identity.h). */
#include "identity.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int rp_identity_check(const char *dir, uint64_t id, char *errmsg, size_t errlen)
{
	char path[600], buf[32];
	snprintf(path, sizeof path, "%s/raftplane-id", dir);
	int fd = open(path, O_RDONLY);
	if (fd >= 0) {
		ssize_t r = read(fd, buf, sizeof buf - 1);
		close(fd);
		buf[r > 0 ? r : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0'; /* one line in the message */
		if (strtoull(buf, NULL, 10) != id) {
			snprintf(errmsg, errlen, "data dir %s belongs to node %s, not %" PRIu64,
				 dir, buf, id);
			return -1;
		}
		return 0;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd < 0) {
		snprintf(errmsg, errlen, "create %s: %s", path, strerror(errno));
		return -1;
	}
	int len = snprintf(buf, sizeof buf, "%" PRIu64 "\n", id);
	int ok = write(fd, buf, (size_t)len) == len && fsync(fd) == 0;
	close(fd);
	if (!ok) {
		snprintf(errmsg, errlen, "write %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}
