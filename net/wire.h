/* Checks of untrusted protobuf bytes that protobuf-c does not make: string
 * fields holding NUL (protobuf-c cuts them there) or bytes that are not
 * UTF-8 (proto3 requires UTF-8; protobuf-c does not check); and of the
 * values the wire messages (raftplane.proto) share between server and
 * proxy. */
#ifndef RP_WIRE_H
#define RP_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "utf8.h"

/**
 * Walk the top-level fields of the message in @buf. Every length-delimited
 * field whose number is in @string_fields (bit n for field n, n < 64) must be
 * UTF-8 without NUL and at most @max_len bytes. Returns 0, or -1 with the
 * reason in @msg (malformed wire data included).
 */
int rp_pb_check_strings(const uint8_t *buf, size_t len, uint64_t string_fields, size_t max_len,
			char *msg, size_t msglen);

/** 1 when @id is a cluster id: 32 lowercase hex digits. */
int rp_cluster_id_valid(const char *id);

#endif
