/* A TLS connection on memory BIOs (tlsconn.h). */
#include <limits.h>
#include <openssl/err.h>
#include <stdlib.h>

#include "tlsconn.h"

struct rp_tlsconn {
	SSL *ssl;
	BIO *in, *out; /* owned by ssl */
	struct rp_tls *tls;
	int established, broken;
	enum rp_tls_fail failure;
};

struct rp_tlsconn *rp_tlsconn_create(struct rp_tls *tls, enum rp_tls_role role)
{
	struct rp_tlsconn *t = calloc(1, sizeof *t);
	if (t == NULL)
		return NULL;
	t->tls = tls;
	t->ssl = SSL_new(rp_tls_ctx(tls));
	t->in = BIO_new(BIO_s_mem());
	t->out = BIO_new(BIO_s_mem());
	if (t->ssl == NULL || t->in == NULL || t->out == NULL) {
		BIO_free(t->in);
		BIO_free(t->out);
		SSL_free(t->ssl);
		free(t);
		ERR_clear_error();
		return NULL;
	}
	/* an empty BIO means "retry later", not end of file */
	BIO_set_mem_eof_return(t->in, -1);
	BIO_set_mem_eof_return(t->out, -1);
	SSL_set_bio(t->ssl, t->in, t->out);
	/* idle connections give their record buffers back */
	SSL_set_mode(t->ssl, SSL_MODE_RELEASE_BUFFERS);
	/* every connection verifies the peer in full: nothing to resume */
	SSL_set_options(t->ssl, SSL_OP_NO_TICKET);
	if (role == RP_TLS_SERVER) {
		SSL_set_num_tickets(t->ssl, 0);
		SSL_set_accept_state(t->ssl);
	} else {
		SSL_set_connect_state(t->ssl);
	}
	return t;
}

void rp_tlsconn_destroy(struct rp_tlsconn *t)
{
	if (t == NULL)
		return;
	SSL_free(t->ssl);
	free(t);
}

size_t rp_tlsconn_room(const struct rp_tlsconn *t)
{
	size_t have = BIO_ctrl_pending(t->in);
	return t->broken || have >= RP_TLSCONN_MAX_IN ? 0 : RP_TLSCONN_MAX_IN - have;
}

size_t rp_tlsconn_buffered(const struct rp_tlsconn *t)
{
	return BIO_ctrl_pending(t->in);
}

int rp_tlsconn_feed(struct rp_tlsconn *t, const void *p, size_t n)
{
	if (n > rp_tlsconn_room(t))
		return -1;
	if (n > 0 && BIO_write(t->in, p, (int)n) != (int)n) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

int rp_tlsconn_handshake(struct rp_tlsconn *t)
{
	if (t->established)
		return 1;
	if (t->broken)
		return -1;
	ERR_clear_error();
	int r = SSL_do_handshake(t->ssl);
	if (r == 1) {
		t->established = 1;
		return 1;
	}
	if (SSL_get_error(t->ssl, r) == SSL_ERROR_WANT_READ)
		return 0;
	t->broken = 1;
	/* counted unless net/tls.c's verify callback already did */
	t->failure = rp_tls_handshake_failed(t->tls, t->ssl);
	return -1;
}

int rp_tlsconn_established(const struct rp_tlsconn *t)
{
	return t->established;
}

ssize_t rp_tlsconn_read(struct rp_tlsconn *t, void *buf, size_t cap)
{
	if (!t->established || t->broken)
		return -1;
	ERR_clear_error();
	int n = SSL_read(t->ssl, buf, cap > INT_MAX ? INT_MAX : (int)cap);
	if (n > 0)
		return n;
	if (SSL_get_error(t->ssl, n) == SSL_ERROR_WANT_READ)
		return 0;
	t->broken = 1; /* close_notify, or a protocol error */
	ERR_clear_error();
	return -1;
}

int rp_tlsconn_write(struct rp_tlsconn *t, const void *p, size_t n)
{
	/* at most 22 (TLS 1.3) or 29 (1.2, AES-GCM) bytes per 16 KiB record */
	size_t worst = n + (n / 16384 + 1) * 64;
	if (!t->established || t->broken || n > INT_MAX ||
	    BIO_ctrl_pending(t->out) + worst > RP_TLSCONN_MAX_OUT)
		return -1;
	if (n == 0)
		return 0;
	ERR_clear_error();
	/* a memory BIO takes everything: SSL_write writes all or fails */
	if (SSL_write(t->ssl, p, (int)n) != (int)n) {
		t->broken = 1;
		ERR_clear_error();
		return -1;
	}
	return 0;
}

size_t rp_tlsconn_pending(const struct rp_tlsconn *t)
{
	return BIO_ctrl_pending(t->out);
}

size_t rp_tlsconn_take(struct rp_tlsconn *t, void *buf, size_t cap)
{
	if (cap == 0)
		return 0;
	int n = BIO_read(t->out, buf, cap > INT_MAX ? INT_MAX : (int)cap);
	return n > 0 ? (size_t)n : 0;
}

enum rp_tls_fail rp_tlsconn_failure(const struct rp_tlsconn *t)
{
	return t->failure;
}

void rp_tlsconn_peer(struct rp_tlsconn *t, const char *td, struct rp_peer_id *out)
{
	if (!t->established) {
		struct rp_peer_id none = {0};
		*out = none;
		return;
	}
	rp_tls_peer_identity(t->ssl, td, out);
}

struct rp_tls *rp_tlsconn_tls(const struct rp_tlsconn *t)
{
	return t->tls;
}
