/* Listening sockets: bind on the main thread, adopt in the workers. */
#include "listeners.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"

static struct rp_lsock *registry; /* main thread only */

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
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on);
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
	free(ls->fds);
	free(ls);
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
	struct rp_lsock *ls = calloc(1, sizeof *ls);
	if (!ls || !(ls->fds = calloc(n_workers, sizeof *ls->fds))) {
		free(ls);
		snprintf(err, errlen, "listen %s: out of memory", key);
		return NULL;
	}
	snprintf(ls->key, sizeof ls->key, "%s", key);
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
	for (unsigned i = 0; i < n_workers; i++) {
		int fd = bind_one(&ls->sa, ls->salen);
		if (fd < 0) {
			snprintf(err, errlen, "listen %s: %s", key, strerror(-fd));
			free_lsock(ls);
			return NULL;
		}
		atomic_store(&ls->fds[i], fd);
	}
	ls->refs = 1;
	ls->in_registry = 1;
	ls->next = registry;
	registry = ls;
	return ls;
}

static void unlink_lsock(struct rp_lsock *ls)
{
	if (!ls->in_registry)
		return;
	for (struct rp_lsock **pp = &registry; *pp; pp = &(*pp)->next) {
		if (*pp == ls) {
			*pp = ls->next;
			break;
		}
	}
	ls->in_registry = 0;
	ls->next = NULL;
}

void rp_lsock_put(struct rp_lsock *ls)
{
	if (!ls || --ls->refs > 0)
		return;
	unlink_lsock(ls);
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
			unlink_lsock(ls);
		ls = next;
	}
}
