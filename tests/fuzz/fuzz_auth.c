/* The API's parsers of token input: the token string of an Authorization
 * header (api/auth.c: rp_token_parse, which must accept exactly the
 * canonical strings rp_token_format writes) and the query of
 * GET /v1/history (api/history.c: rp_history_query_parse, whose accepted
 * queries stay within the documented bounds). Input: the first byte picks
 * the parser, the rest is the token string or the request target. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/auth.h"
#include "api/history.h"

static void token(const uint8_t *data, size_t size)
{
	unsigned char secret[RP_TOKEN_SECRET_LEN];
	char again[RP_TOKEN_STRLEN + 1];
	if (rp_token_parse((const char *)data, size, secret) != 0)
		return;
	rp_token_format(secret, again);
	if (size != RP_TOKEN_STRLEN || memcmp(again, data, size) != 0)
		abort(); /* one string per secret, and only token strings */
}

static void query(const uint8_t *data, size_t size)
{
	h2o_req_t req;
	struct rp_history_query q;
	char actor[RP_MAX_ACTOR], name[RP_MAX_NAME + 1], msg[200];
	memset(&req, 0, sizeof req);
	req.path = h2o_iovec_init(data, size);
	const char *qm = memchr(data, '?', size);
	req.query_at = qm ? (size_t)(qm - (const char *)data) : SIZE_MAX;
	if (rp_history_query_parse(&req, &q, actor, sizeof actor, name, sizeof name, msg,
				   sizeof msg) != 0) {
		if (!msg[0] || strlen(msg) >= sizeof msg)
			abort(); /* a refusal says why */
		return;
	}
	if (q.limit < 1 || q.limit > RP_HISTORY_MAX_LIMIT || q.kind < -1 ||
	    q.kind >= RP_KIND__COUNT || (q.to_revision && q.from_revision > q.to_revision) ||
	    q.from_revision > INT64_MAX || q.to_revision > INT64_MAX)
		abort();
	if (q.name != name || (name[0] && !rp_name_valid(name, strlen(name))))
		abort();
	if (q.actor && (strlen(q.actor) >= RP_MAX_ACTOR || strchr(q.actor, ' ')))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 1)
		token(data + 1, size - 1);
	else
		query(data + 1, size - 1);
	return 0;
}
