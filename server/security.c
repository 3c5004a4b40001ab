/* raftplane-server's TLS settings (security.h). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "raftplane/log.h"
#include "security.h"

const char rp_server_tls_usage[] =
	"  --tls-cert FILE           this server's certificate chain (PEM; URI SAN\n"
	"                            spiffe://TRUST-DOMAIN/server/ID): TLS on the API and\n"
	"                            the raft port, and the client certificate towards\n"
	"                            other servers\n"
	"  --tls-key FILE            its private key (PEM)\n"
	"  --tls-client-ca FILE      CA bundle that client certificates (proxies) must\n"
	"                            verify against; also the peers' CA unless --tls-peer-ca\n"
	"  --tls-peer-ca FILE        CA bundle of the other servers (raft peers, leader)\n"
	"  --trust-domain NAME       SPIFFE trust domain of identities (default raftplane)\n"
	"  --insecure                allow plain HTTP and raft on non-loopback addresses\n"
	"  (SIGHUP re-reads the certificate, key and CA files; a bad file keeps the old ones)\n";

int rp_server_tls_flag(struct rp_server_tls *s, int argc, char **argv, int *i, char *err,
		       size_t errlen)
{
	static const char *const names[] = {"--tls-cert", "--tls-key", "--tls-client-ca",
					    "--tls-peer-ca", "--trust-domain"};
	const char **slots[] = {&s->cert, &s->key, &s->client_ca, &s->peer_ca, &s->trust_domain};
	const char *a = argv[*i];
	if (!strcmp(a, "--insecure")) {
		s->insecure = 1;
		return 1;
	}
	for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
		if (strcmp(a, names[k]) != 0)
			continue;
		if (*i + 1 >= argc || argv[*i + 1][0] == '\0') {
			snprintf(err, errlen, "%s needs a value", a);
			return -1;
		}
		*slots[k] = argv[++*i];
		return 1;
	}
	return 0;
}

int rp_server_tls_check(struct rp_server_tls *s, const char *const *addrs, size_t n, char *err,
			size_t errlen)
{
	if (s->trust_domain == NULL)
		s->trust_domain = RP_TLS_DEFAULT_TRUST_DOMAIN;
	if (!rp_tls_trust_domain_valid(s->trust_domain)) {
		snprintf(err, errlen, "--trust-domain must match [a-z0-9.-]{1,255}, got \"%s\"",
			 s->trust_domain);
		return -1;
	}
	int any = s->cert || s->key || s->client_ca || s->peer_ca;
	if (any) {
		if (!s->cert || !s->key || !(s->client_ca || s->peer_ca)) {
			snprintf(err, errlen,
				 "TLS needs --tls-cert, --tls-key and --tls-client-ca "
				 "(or --tls-peer-ca) together");
			return -1;
		}
		if (!s->client_ca)
			s->client_ca = s->peer_ca;
		if (!s->peer_ca)
			s->peer_ca = s->client_ca;
		return 0;
	}
	if (s->insecure)
		return 0;
	for (size_t k = 0; k < n; k++) {
		if (addrs[k] != NULL && !rp_hostport_loopback(addrs[k])) {
			snprintf(
				err, errlen,
				"refusing plain HTTP and raft on the non-loopback address %s: give "
				"--tls-cert, --tls-key and --tls-client-ca, or --insecure",
				addrs[k]);
			return -1;
		}
	}
	return 0;
}

/* Our own certificate must name us: peers check it the same way. */
static int names_us(const struct rp_server_tls *s, const struct rp_tls *t, char *err, size_t errlen)
{
	struct rp_peer_id id;
	rp_tls_cert_identity(SSL_CTX_get0_certificate(rp_tls_ctx(t)), s->trust_domain, &id);
	if (id.kind == RP_PEER_SERVER && id.server == s->self_id)
		return 1;
	char buf[400];
	snprintf(err, errlen,
		 "%s names %s, not spiffe://%s/server/%llu (this server's --id and --trust-domain)",
		 s->cert, rp_peer_id_str(&id, buf, sizeof buf), s->trust_domain,
		 (unsigned long long)s->self_id);
	return 0;
}

int rp_server_tls_load(struct rp_server_tls *s, char *err, size_t errlen)
{
	if (!s->cert)
		return 0;
	struct rp_tls_files api = {s->cert, s->key, s->client_ca};
	struct rp_tls_files peer = {s->cert, s->key, s->peer_ca};
	s->api = rp_tls_create(RP_TLS_SERVER, &api, RP_TLS_VERIFY_OPTIONAL, err, errlen);
	if (s->api && !names_us(s, s->api, err, errlen)) {
		rp_server_tls_close(s);
		return -1;
	}
	if (s->api)
		s->peer = rp_tls_create(RP_TLS_SERVER, &peer, RP_TLS_VERIFY_REQUIRE, err, errlen);
	if (s->peer)
		s->client = rp_tls_create(RP_TLS_CLIENT, &peer, RP_TLS_VERIFY_REQUIRE, err, errlen);
	if (!s->client) {
		rp_server_tls_close(s);
		return -1;
	}
	return 0;
}

int rp_server_tls_reload(struct rp_server_tls *s)
{
	if (!s->api)
		return 0;
	/* check every file first, so that the three contexts never disagree */
	char err[512];
	struct rp_tls_files api = {s->cert, s->key, s->client_ca};
	struct rp_tls_files peer = {s->cert, s->key, s->peer_ca};
	struct rp_tls *t1 = rp_tls_create(RP_TLS_SERVER, &api, RP_TLS_VERIFY_OPTIONAL, err,
					  sizeof err);
	struct rp_tls *t2 = t1 ? rp_tls_create(RP_TLS_CLIENT, &peer, RP_TLS_VERIFY_REQUIRE, err,
					       sizeof err)
			       : NULL;
	int ok = t2 && names_us(s, t1, err, sizeof err);
	rp_tls_destroy(t1);
	rp_tls_destroy(t2);
	if (!ok) { /* counted as the failed reload of each context */
		rp_tls_reload_refused(s->api);
		rp_tls_reload_refused(s->peer);
		rp_tls_reload_refused(s->client);
	}
	if (!ok || rp_tls_reload(s->api, err, sizeof err) != 0 ||
	    rp_tls_reload(s->peer, err, sizeof err) != 0 ||
	    rp_tls_reload(s->client, err, sizeof err) != 0) {
		rp_log_error("TLS reload failed, keeping the current certificates: %s", err);
		return -1;
	}
	rp_log_info("TLS certificates reloaded from %s", s->cert);
	return 0;
}

static void on_sighup(void *arg)
{
	rp_server_tls_reload(arg);
}

void rp_server_tls_watch(struct rp_server_tls *s, uv_loop_t *loop)
{
	if (s->api)
		rp_sighup_start(&s->sighup, loop, on_sighup, s);
}

void rp_server_tls_close(struct rp_server_tls *s)
{
	rp_sighup_stop(&s->sighup);
	rp_tls_destroy(s->api);
	rp_tls_destroy(s->peer);
	rp_tls_destroy(s->client);
	s->api = s->peer = s->client = NULL;
}
