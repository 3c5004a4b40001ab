/* JSON helpers for values that come off the wire or out of raft. */
#ifndef RP_NET_JSON_H
#define RP_NET_JSON_H

#include <jansson.h>
#include <stdint.h>

/** A JSON number for an unsigned 64-bit value: an integer up to 2^63-1
 * (jansson's json_int_t is signed), a real above (never negative). */
json_t *rp_json_u64(uint64_t v);

#endif
