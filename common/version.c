/* The release string (generated at build time by cmake/Release.cmake) and
 * --version. */
#include "raftplane/version.h"

#include <stdio.h>

#include "rp_release.h" /* RP_RELEASE, in the build tree */

const char *rp_release(void)
{
	return RP_RELEASE;
}

void rp_print_version(const char *program)
{
	printf("%s %s\nformats: log %d, snapshot %d, protocol %d\n", program, rp_release(),
	       RP_FORMAT_LOG, RP_FORMAT_SNAPSHOT, RP_FORMAT_PROTOCOL);
}
