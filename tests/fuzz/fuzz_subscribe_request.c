/* The server's decoding of a subscription request (api/subscribe.c
 * decode_request: size limit, string checks on the wire, protobuf-c, then
 * the protocol's rules), the body every proxy POSTs to /v1/subscribe.
 * subscribe.c is included to reach its static decoder. An accepted request
 * satisfies every rule docs/protocol.md states. */
#include "api/subscribe.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Raftplane__SubscribeRequest *r = (void *)1;
	char msg[160];
	msg[0] = '\0';
	int rv = decode_request(h2o_iovec_init(data, size), &r, msg, sizeof msg);
	if (rv != RP_OK) {
		if (r || !msg[0])
			abort();
		return 0;
	}
	if (!r || !rp_name_valid(r->node_id, strlen(r->node_id)) || r->wait_ms > MAX_WAIT_MS ||
	    strlen(r->nack_error) > MAX_NACK_ERROR || (r->has_nack && !r->nack_error[0]) ||
	    (!r->has_version && r->version) ||
	    rp_utf8_prefix(r->nack_error, strlen(r->nack_error)) != strlen(r->nack_error) ||
	    (r->cluster_id[0] && strlen(r->cluster_id) != 32))
		abort();
	raftplane__subscribe_request__free_unpacked(r, NULL);
	return 0;
}
