/* TLS of the proxy and the subscriber towards the servers (ptls.h). */
#include "ptls.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "raftplane/log.h"

const char rp_proxy_tls_usage[] =
	"  --tls-cert FILE          this node's certificate chain (PEM; URI SAN\n"
	"                           spiffe://TRUST-DOMAIN/node/NODE-ID), presented to servers\n"
	"  --tls-key FILE           its private key (PEM)\n"
	"  --tls-ca FILE            CA bundle the servers' certificates must verify against\n"
	"  --trust-domain NAME      SPIFFE trust domain (default raftplane)\n"
	"  --insecure               allow plain HTTP to non-loopback --servers and a\n"
	"                           non-loopback --admin\n"
	"  (SIGHUP re-reads the certificate, key and CA; a bad file keeps the old ones)\n";

int rp_proxy_tls_flag(struct rp_proxy_tls *t, int argc, char **argv, int *i, char *err,
		      size_t errlen)
{
	static const char *const names[] = {"--tls-cert", "--tls-key", "--tls-ca",
					    "--trust-domain"};
	const char **slots[] = {&t->cert, &t->key, &t->ca, &t->trust_domain};
	const char *a = argv[*i];
	if (!strcmp(a, "--insecure")) {
		t->insecure = 1;
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

int rp_proxy_tls_check(struct rp_proxy_tls *t, const char *servers, const char *admin, char *err,
		       size_t errlen)
{
	if (t->trust_domain == NULL)
		t->trust_domain = RP_TLS_DEFAULT_TRUST_DOMAIN;
	if (!rp_tls_trust_domain_valid(t->trust_domain)) {
		snprintf(err, errlen, "--trust-domain must match [a-z0-9.-]{1,255}, got \"%s\"",
			 t->trust_domain);
		return -1;
	}
	int any = t->cert || t->key || t->ca;
	if (any && (!t->cert || !t->key || !t->ca)) {
		snprintf(err, errlen, "TLS needs --tls-cert, --tls-key and --tls-ca together");
		return -1;
	}
	if (t->insecure)
		return 0;
	if (admin && !rp_hostport_loopback(admin)) {
		snprintf(err, errlen,
			 "refusing the plain-HTTP admin server on the non-loopback address %s: "
			 "bind it to loopback, or give --insecure",
			 admin);
		return -1;
	}
	if (any)
		return 0;
	const char *p = servers ? servers : "";
	while (*p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		char one[80];
		if (n > 0 && n < sizeof one) {
			memcpy(one, p, n);
			one[n] = '\0';
			if (!rp_hostport_loopback(one)) {
				snprintf(err, errlen,
					 "refusing plain HTTP to the non-loopback server %s: give "
					 "--tls-cert, --tls-key and --tls-ca, or --insecure",
					 one);
				return -1;
			}
		}
		p += n + (end != NULL);
	}
	return 0;
}

int rp_proxy_tls_load(struct rp_proxy_tls *t, const char *node_id, char *err, size_t errlen)
{
	if (!t->cert)
		return 0;
	struct rp_tls_files f = {t->cert, t->key, t->ca};
	t->tls = rp_tls_create(RP_TLS_CLIENT, &f, RP_TLS_VERIFY_REQUIRE, err, errlen);
	if (!t->tls)
		return -1;
	t->http = (struct rp_http_tls){.tls = t->tls,
				       .trust_domain = t->trust_domain,
				       .kind = RP_PEER_SERVER};
	if (node_id) {
		struct rp_peer_id id;
		rp_tls_cert_identity(SSL_CTX_get0_certificate(rp_tls_ctx(t->tls)), t->trust_domain,
				     &id);
		if (id.kind != RP_PEER_NODE || strcmp(id.node, node_id) != 0) {
			char buf[400];
			rp_log_warn("TLS: %s names %s, not spiffe://%s/node/%s: the servers will "
				    "refuse this node's subscription",
				    t->cert, rp_peer_id_str(&id, buf, sizeof buf), t->trust_domain,
				    node_id);
		}
	}
	return 0;
}

const struct rp_http_tls *rp_proxy_tls_http(const struct rp_proxy_tls *t)
{
	return t->tls ? &t->http : NULL;
}

int rp_proxy_tls_reload(struct rp_proxy_tls *t)
{
	if (!t->tls)
		return 0;
	char err[300];
	if (rp_tls_reload(t->tls, err, sizeof err) != 0) {
		snprintf(t->last_reload_error, sizeof t->last_reload_error, "%s", err);
		rp_log_error("TLS reload failed, keeping the current certificate: %s", err);
		return -1;
	}
	t->last_reload_error[0] = '\0';
	rp_log_info("TLS certificate reloaded from %s", t->cert);
	return 0;
}

static void on_sighup(void *arg)
{
	rp_proxy_tls_reload(arg);
}

void rp_proxy_tls_watch(struct rp_proxy_tls *t, uv_loop_t *loop)
{
	if (t->tls)
		rp_sighup_start(&t->sighup, loop, on_sighup, t);
}

void rp_proxy_tls_close(struct rp_proxy_tls *t)
{
	rp_sighup_stop(&t->sighup);
	rp_tls_destroy(t->tls);
	t->tls = NULL;
}
