/* Upstream connections: a per-worker keep-alive pool per endpoint and a
 * small HTTP/1.1 client that runs one exchange at a time on a pooled
 * connection. Written on h2o sockets (instead of h2o_http1client over
 * h2o_socketpool, whose pool exports and re-imports every socket between
 * requests: six system calls per request on the libuv build) so that an
 * idle connection stays registered in the loop and is reused as is. */
#ifndef RP_PROXY_UPCONN_H
#define RP_PROXY_UPCONN_H

#include <h2o.h>
#include <stdint.h>
#include <sys/socket.h>

struct rp_upconn;

/* What a pool is for and how it keeps idle connections; copied by
 * rp_pool_init(). */
struct rp_pool_opts {
	const char *hostport; /* the endpoint, "IP:PORT" */
	const struct sockaddr *sa;
	socklen_t salen;
	size_t max_idle;             /* idle connections kept at most */
	h2o_timeout_t *idle_timeout; /* closes an idle connection; outlives the pool */
};

/* The connections of one loop (a worker's) to one endpoint address, owned
 * by the caller. It knows its loop and options only: no pointer back to
 * whoever owns it. */
struct rp_pool {
	char hostport[80];
	struct sockaddr_storage sa;
	socklen_t salen;
	h2o_loop_t *loop;
	size_t max_idle;
	h2o_timeout_t *idle_timeout;
	int stopping;        /* rp_pool_stop(): no connection goes back to idle */
	h2o_linklist_t idle; /* struct rp_upconn, most recently used first */
	size_t n_idle;
	size_t busy; /* connections out of the pool: connecting, in use, finishing */
	uint64_t mark;
	struct rp_pool *next;
};

enum rp_uc_error {
	RP_UC_CONNECT, /* could not connect */
	RP_UC_RESET,   /* connection failed or closed before a complete head */
	RP_UC_BROKEN,  /* failed or closed in the middle of the body */
	RP_UC_INVALID, /* the response head breaks HTTP/1.1 framing rules (502) */
};

struct rp_uc_exchange;

/* A response header as parsed (the layout of picohttpparser's phr_header,
 * which libh2o exports). */
struct rp_header_view {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

/* Callbacks of an exchange. None runs after rp_uc_cancel(). */
struct rp_uc_callbacks {
	/** The connection is up (or reused) and the request is being written. */
	void (*on_connected)(struct rp_uc_exchange *x);
	/**
	 * The final response head. Header names and values point into the
	 * connection's buffer and are valid only during the call. Return 0 to
	 * receive the body, or -1 to drop the exchange (the connection is closed,
	 * no further callback runs); before returning -1 the callee may start a
	 * new exchange on the same struct (a retry).
	 */
	int (*on_head)(struct rp_uc_exchange *x, int status, h2o_iovec_t msg,
		       const struct rp_header_view *headers, size_t n);
	/** More body bytes are in x->body; @eos: the response is complete. */
	void (*on_body)(struct rp_uc_exchange *x, int eos);
	/** The exchange failed; the connection is gone. */
	void (*on_error)(struct rp_uc_exchange *x, enum rp_uc_error kind, const char *why);
};

/*
 * One request/response on an upstream connection, embedded by the caller.
 * Invariants:
 *  1. While conn != NULL the exchange owns that connection; it is given back
 *     to the pool (or closed) when the response ends, fails or is cancelled,
 *     and conn is NULL from then on.
 *  2. x->body holds decoded body bytes not yet taken by the caller; it
 *     belongs to the exchange, not to the connection, so the caller can
 *     keep sending it after the connection went back to the pool.
 */
struct rp_uc_exchange {
	const struct rp_uc_callbacks *cb;
	void *data;
	h2o_iovec_t *bufs; /* the request, valid until the exchange ends */
	size_t nbufs;
	int is_head;
	int reused; /* the connection came from the pool */
	/* set before on_head: the body length when framed by Content-Length
	 * (the only framing header relayed, and only then), else SIZE_MAX */
	size_t content_length;
	struct rp_upconn *conn;
	h2o_buffer_t *body;
};

/** Initialise @pool, run on @loop, as @opts says (copied). */
void rp_pool_init(struct rp_pool *pool, h2o_loop_t *loop, const struct rp_pool_opts *opts);
/** From now on close connections as they come back instead of keeping them
 * idle (the owner is draining). */
void rp_pool_stop(struct rp_pool *pool);
/** Close the idle connections of @pool (busy must be 0 to free it after). */
void rp_pool_close_idle(struct rp_pool *pool);

/** Initialise @x (its body buffer) once; release it with rp_uc_close(). */
void rp_uc_init(struct rp_uc_exchange *x, const struct rp_uc_callbacks *cb, void *data);
void rp_uc_close(struct rp_uc_exchange *x);

/**
 * Send @x's request to @pool's endpoint on an idle connection or a new one.
 * on_connected runs before this returns when a pooled connection is used;
 * on_error may run before it returns when connecting fails at once.
 */
void rp_uc_start(struct rp_uc_exchange *x, struct rp_pool *pool);
/** Abandon the exchange: its connection is closed, no callback runs. */
void rp_uc_cancel(struct rp_uc_exchange *x);
/** Stop / resume reading the body (the client is slow). */
void rp_uc_pause(struct rp_uc_exchange *x);
void rp_uc_resume(struct rp_uc_exchange *x);

#endif
