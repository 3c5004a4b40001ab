/* Listening sockets: bind on the main thread, adopt in the workers. */
#include "listeners.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"

static struct rp_lsock *registry; /* main thread only */
static struct rp_lsock *retired;  /* out of the registry, still referenced */
unsigned rp_lsock_busy_failures;

void rp_hostport(char *out, size_t outlen, const char *address, unsigned port)
{
	if (strchr(address, ':'))
		snprintf(out, outlen, "[%s]:%u", address, port);
	else
		snprintf(out, outlen, "%s:%u", address, port);
}

static int bind_one(const struct sockaddr_storage *sa, socklen_t salen)
{
	int fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int on = 1;
	/* SO_REUSEADDR only: another process cannot bind this port while we
	 * hold it (SO_REUSEPORT would let it, and the kernel would split the
	 * connections between us) */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
	if (bind(fd, (const struct sockaddr *)sa, salen) != 0 || listen(fd, 1024) != 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

static void free_lsock(struct rp_lsock *ls)
{
	for (unsigned i = 0; i < ls->n; i++) {
		int fd = atomic_exchange(&ls->fds[i], -1);
		if (fd >= 0)
			close(fd);
	}
	if (ls->master >= 0)
		close(ls->master);
	free(ls->fds);
	free(ls);
}

/* Give every worker whose slot is empty its own descriptor of the socket
 * (workers adopt and close theirs independently). -1 on failure. */
static int fill_fds(struct rp_lsock *ls)
{
	for (unsigned i = 0; i < ls->n; i++) {
		if (atomic_load(&ls->fds[i]) >= 0)
			continue;
		int fd = fcntl(ls->master, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			return -1;
		int empty = -1;
		if (!atomic_compare_exchange_strong(&ls->fds[i], &empty, fd))
			close(fd);
	}
	return 0;
}

static void unlink_from(struct rp_lsock **list, struct rp_lsock *ls)
{
	for (struct rp_lsock **pp = list; *pp; pp = &(*pp)->next) {
		if (*pp == ls) {
			*pp = ls->next;
			break;
		}
	}
	ls->next = NULL;
}

/* A listener dropped by a recent generation and wanted again: its socket
 * is still bound (by us), so take it back rather than bind anew. */
static struct rp_lsock *resurrect(const char *key)
{
	for (struct rp_lsock *ls = retired; ls; ls = ls->next) {
		if (strcmp(ls->key, key) != 0 || fill_fds(ls) != 0)
			continue;
		unlink_from(&retired, ls);
		ls->refs++;
		ls->in_registry = 1;
		ls->next = registry;
		registry = ls;
		return ls;
	}
	return NULL;
}

struct rp_lsock *rp_lsock_get(const char *address, unsigned port, unsigned n_workers, char *err,
			      size_t errlen)
{
	char key[80];
	rp_hostport(key, sizeof key, address, port);
	for (struct rp_lsock *ls = registry; ls; ls = ls->next) {
		if (strcmp(ls->key, key) == 0) {
			ls->refs++;
			return ls;
		}
	}
	struct rp_lsock *ls = resurrect(key);
	if (ls)
		return ls;
	ls = calloc(1, sizeof *ls);
	if (!ls || !(ls->fds = calloc(n_workers, sizeof *ls->fds))) {
		free(ls);
		snprintf(err, errlen, "listen %s: out of memory", key);
		return NULL;
	}
	snprintf(ls->key, sizeof ls->key, "%s", key);
	ls->master = -1;
	ls->n = n_workers;
	for (unsigned i = 0; i < n_workers; i++)
		atomic_init(&ls->fds[i], -1);
	if (port == 0 || port > 65535 || rp_parse_hostport(key, &ls->sa) != 0) {
		snprintf(err, errlen, "listen %s: not an IP address and port", key);
		free_lsock(ls);
		return NULL;
	}
	ls->salen = ls->sa.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						 : sizeof(struct sockaddr_in);
	int fd = bind_one(&ls->sa, ls->salen);
	if (fd == -EADDRINUSE)
		rp_lsock_busy_failures++;
	if (fd < 0) {
		snprintf(err, errlen, "listen %s: %s%s", key, strerror(-fd),
			 fd == -EADDRINUSE ? " (another socket, likely another process, holds it)"
					   : "");
		free_lsock(ls);
		return NULL;
	}
	ls->master = fd;
	if (fill_fds(ls) != 0) {
		snprintf(err, errlen, "listen %s: %s", key, strerror(errno));
		free_lsock(ls);
		return NULL;
	}
	ls->refs = 1;
	ls->in_registry = 1;
	ls->next = registry;
	registry = ls;
	return ls;
}

/* Out of the registry, onto the retired list. */
static void retire_lsock(struct rp_lsock *ls)
{
	if (!ls->in_registry)
		return;
	unlink_from(&registry, ls);
	ls->in_registry = 0;
	ls->next = retired;
	retired = ls;
}

void rp_lsock_put(struct rp_lsock *ls)
{
	if (!ls || --ls->refs > 0)
		return;
	unlink_from(ls->in_registry ? &registry : &retired, ls);
	free_lsock(ls);
}

void rp_lsock_retire_others(struct rp_lsock *const *keep, size_t n)
{
	struct rp_lsock *ls = registry;
	while (ls) {
		struct rp_lsock *next = ls->next;
		int kept = 0;
		for (size_t i = 0; i < n && !kept; i++)
			kept = keep[i] == ls;
		if (!kept)
			retire_lsock(ls);
		ls = next;
	}
}
