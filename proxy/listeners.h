/* Listening sockets. The main thread binds each address:port once, without
 * SO_REUSEPORT, so that no other process can bind it while this one holds
 * it (two proxies given the same port: the second's bind fails and it
 * NACKs), while it builds a generation, which lets a bind failure refuse
 * the snapshot before anything changes; every worker gets its own dup() of
 * that socket, adopts it into its loop (all workers accept from the one
 * queue) and closes it when a generation without that listener arrives. */
#ifndef RP_PROXY_LISTENERS_H
#define RP_PROXY_LISTENERS_H

#include <stdatomic.h>
#include <stddef.h>
#include <sys/socket.h>
#include <uv.h>

/*
 * One bound address:port. Invariants:
 *  1. fds[i] is worker i's socket until that worker adopts it (then -1 and
 *     the worker's uv handle owns the descriptor). Whoever swaps a value
 *     other than -1 out of fds[i] owns that descriptor.
 *  2. refs counts the generations using it; at zero it is freed (main
 *     thread) and descriptors never adopted are closed.
 *  3. An object is in the registry while the newest generation uses it,
 *     else on the retired list until refs is zero. A listener that comes
 *     back while its object is retired gets that object back (the port is
 *     still bound by master) with a fresh dup() in every empty slot.
 *  4. master is the bound socket, owned by the object and closed when it is
 *     freed; so the port stays ours for as long as any generation uses it.
 */
struct rp_lsock {
	char key[80]; /* "127.0.0.1:8080" / "[::1]:8080" */
	struct sockaddr_storage sa;
	socklen_t salen;
	int master;
	unsigned n;
	atomic_int *fds;
	int refs;
	int in_registry;
	struct rp_lsock *next;
};

/**
 * Find the registered socket set for @address:@port or bind a new one with
 * a descriptor for each of @n_workers. On failure returns NULL with a reason in @err
 * ("listen 127.0.0.1:80: Address already in use"). Main thread.
 */
struct rp_lsock *rp_lsock_get(const char *address, unsigned port, unsigned n_workers, char *err,
			      size_t errlen);
void rp_lsock_put(struct rp_lsock *ls);
/** Binds that failed because the address was in use (main thread): a
 * caller compares it before and after building a generation. */
extern unsigned rp_lsock_busy_failures;
/** Take out of the registry every object that @keep (n entries) lacks. */
void rp_lsock_retire_others(struct rp_lsock *const *keep, size_t n);

/** Format @address:@port as a host:port key ("[v6]:port" for IPv6). */
void rp_hostport(char *out, size_t outlen, const char *address, unsigned port);

#endif
