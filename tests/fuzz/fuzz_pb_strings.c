/* net/wire.c rp_pb_check_strings: the walk over untrusted protobuf bytes
 * (SubscribeRequest, Snapshot) that refuses NUL and non-UTF-8 in string
 * fields before protobuf-c decodes them. Input: one byte selecting the
 * string-field mask, then the message. When the walk accepts, protobuf-c
 * must not find a string field longer than the limit either. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/wire.h"
#include "raftplane.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const uint64_t sub = 1u << 1 | 1u << 4 | 1u << 8; /* SubscribeRequest's strings */
	uint64_t mask = data[0] & 0x80   ? ~(uint64_t)0
			: data[0] & 0x40 ? sub
					 : (uint64_t)data[0] << 1;
	size_t max_len = 16 + data[0] % 48;
	char msg[96];
	msg[0] = '\0';
	int rv = rp_pb_check_strings(data + 1, size - 1, mask, max_len, msg, sizeof msg);
	if (rv != 0) {
		if (!msg[0] || !memchr(msg, '\0', sizeof msg))
			abort();
		return 0;
	}
	if ((mask & sub) != sub)
		return 0;
	/* SubscribeRequest's strings (1, 4, 8) must then be whole, UTF-8, short */
	Raftplane__SubscribeRequest *r = raftplane__subscribe_request__unpack(NULL, size - 1,
									      data + 1);
	if (r) {
		if (strlen(r->node_id) > max_len || strlen(r->nack_error) > max_len ||
		    strlen(r->cluster_id) > max_len ||
		    rp_utf8_prefix(r->node_id, strlen(r->node_id)) != strlen(r->node_id))
			abort();
		raftplane__subscribe_request__free_unpacked(r, NULL);
	}
	return 0;
}
