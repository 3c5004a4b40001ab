/* Certificates made in memory for the TLS unit tests (test_tls.c,
 * test_tlsconn.c): an EC P-256 key and an X.509 v3 certificate, valid from
 * an hour ago for a day. Needs cmocka's assert macros. */
#ifndef RP_TESTCERTS_H
#define RP_TESTCERTS_H

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline EVP_PKEY *rp_test_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	assert_non_null(k);
	return k;
}

/* A certificate with subject CN @cn (NULL: none, "a|b": two CNs) and
 * subjectAltName @san (OpenSSL config syntax, NULL: none), signed by @ca_key
 * (NULL: self-signed) as @issuer. */
static inline X509 *rp_test_cert(EVP_PKEY *key, const char *cn, const char *san, X509 *issuer,
				 EVP_PKEY *ca_key, int is_ca)
{
	X509 *x = X509_new();
	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), rand() + 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24);
	X509_set_pubkey(x, key);
	X509_NAME *n = X509_get_subject_name(x);
	if (cn != NULL) {
		char buf[256];
		snprintf(buf, sizeof buf, "%s", cn);
		for (char *tok = strtok(buf, "|"); tok; tok = strtok(NULL, "|"))
			X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (unsigned char *)tok, -1,
						   -1, 0);
	}
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
						is_ca ? "critical,CA:TRUE" : "CA:FALSE");
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	if (san != NULL) {
		e = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
		assert_non_null(e);
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	assert_true(X509_sign(x, ca_key ? ca_key : key, EVP_sha256()) > 0);
	return x;
}

#endif
