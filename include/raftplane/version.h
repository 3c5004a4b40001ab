/* The release and the format versions of this build (docs/upgrades.md).
 *
 * Invariants
 *
 * 1. Each format number names what this release writes and the highest it
 *    reads. A release reads every lower format it ever wrote; one that
 *    meets a higher format stops (log entries, snapshots) or falls back to
 *    the highest both sides speak (the subscription protocol), never
 *    guesses.
 * 2. A number only grows, and only with a change the previous release could
 *    not read correctly. Adding an optional protobuf field that readers may
 *    ignore is not such a change; adding one whose meaning apply must know
 *    is (a new command type is gated, docs/upgrades.md).
 * 3. rp_release() is fixed at build time: `git describe --always --dirty`
 *    of the source tree, "unknown" outside git. */
#ifndef RAFTPLANE_VERSION_H
#define RAFTPLANE_VERSION_H

/* Log entries: the 4th byte of the frame magic "RPC1" (storage/codec.h). */
#define RP_FORMAT_LOG 1
/* Raft snapshots: meta key `format` of the serialized database
 * (storage/store.c); a database without it is format 1. */
#define RP_FORMAT_SNAPSHOT 1
/* The subscription protocol: header x-raftplane-protocol on POST
 * /v1/subscribe requests and answers (docs/protocol.md). */
#define RP_FORMAT_PROTOCOL 1
#define RP_PROTOCOL_HEADER "x-raftplane-protocol"
#define RP_VERSION_STR_(x) #x
#define RP_VERSION_STR(x) RP_VERSION_STR_(x)
#define RP_FORMAT_PROTOCOL_TEXT RP_VERSION_STR(RP_FORMAT_PROTOCOL) /* "1" */

/** The release this binary was built from ("unknown" outside git). */
const char *rp_release(void);

/** Print "PROGRAM RELEASE\nformats: log N, snapshot N, protocol N\n" to stdout. */
void rp_print_version(const char *program);

#endif
