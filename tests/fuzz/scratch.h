/* A scratch directory for fuzz targets that must hand their input to code
 * reading a file: created once per process (in /dev/shm when there is one:
 * a disk-backed /tmp makes such targets 10x slower) and removed, with the
 * one file in it, at exit. */
#ifndef RP_FUZZ_SCRATCH_H
#define RP_FUZZ_SCRATCH_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char rp_scratch_dir[64], rp_scratch_path[128];

static void rp_scratch_cleanup(void)
{
	unlink(rp_scratch_path);
	rmdir(rp_scratch_dir);
}

/** The path of @file in this process's scratch directory for @target
 *  (aborts when it cannot be made); the directory itself in *@dir. */
static inline const char *rp_scratch_file(const char *target, const char *file, const char **dir)
{
	if (!rp_scratch_dir[0]) {
		snprintf(rp_scratch_dir, sizeof rp_scratch_dir, "%s/rp-fuzz-%s-XXXXXX",
			 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", target);
		if (!mkdtemp(rp_scratch_dir))
			abort();
		snprintf(rp_scratch_path, sizeof rp_scratch_path, "%s/%s", rp_scratch_dir, file);
		atexit(rp_scratch_cleanup);
	}
	*dir = rp_scratch_dir;
	return rp_scratch_path;
}

#endif
