/* Remembered raft peers: see peers.h.
 *
 * Invariants:
 *  1. Every server of r->configuration is in the set after update().
 *  2. A server leaves the set only through rp_peerset_forget(), which the
 *     node calls when it applies the member row's deletion: the leader
 *     proposes that only after the raft removal committed, and applied
 *     entries are committed ones. The node's own view of whether its
 *     configuration is committed is not enough: canonical/raft 0.15 reloads
 *     the latest configuration at start as if it were committed.
 *  3. The file is replaced atomically (temp file, fsync, rename, fsync of
 *     the directory), so a crash leaves the old set or the new one. */
#include "peers.h"

#include <fcntl.h>
#include <inttypes.h>
#include <raft.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raftplane/log.h"

static void persist(const struct rp_peerset *s)
{
	char tmp[sizeof s->path + 8], dir[sizeof s->path];
	if (!s->path[0])
		return;
	snprintf(tmp, sizeof tmp, "%s.tmp", s->path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		goto err;
	for (unsigned i = 0; i < s->n; i++)
		fprintf(f, "%" PRIu64 " %s\n", s->p[i].id, s->p[i].raft);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		fclose(f);
		goto err;
	}
	if (fclose(f) != 0 || rename(tmp, s->path) != 0)
		goto err;
	snprintf(dir, sizeof dir, "%s", s->path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	int fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	return;
err:
	/* only a hint for admission after a restart: say so, keep running */
	rp_log_error("raft: cannot write %s (known peers): %m", s->path);
}

static int valid_line(const char *line, uint64_t *id, char *addr, size_t addrlen)
{
	char a[128];
	char *end;
	if (line[0] < '1' || line[0] > '9')
		return 0;
	unsigned long long v = strtoull(line, &end, 10);
	if (*end != ' ' || sscanf(end + 1, "%127s", a) != 1 || strlen(a) >= addrlen)
		return 0;
	struct sockaddr_storage sa;
	if (rp_transport_parse_addr(a, &sa) != 0)
		return 0;
	*id = v;
	snprintf(addr, addrlen, "%s", a);
	return 1;
}

void rp_peerset_load(struct rp_peerset *s, uint64_t id, const char *dir)
{
	memset(s, 0, sizeof *s);
	s->id = id;
	if (snprintf(s->path, sizeof s->path, "%s/raft-peers", dir) >= (int)sizeof s->path) {
		s->path[0] = '\0';
		return;
	}
	FILE *f = fopen(s->path, "r");
	if (!f)
		return;
	char line[256];
	unsigned bad = 0;
	while (fgets(line, sizeof line, f)) {
		struct rp_transport_peer p;
		if (s->n < RP_PEERSET_MAX && strchr(line, '\n') &&
		    valid_line(line, &p.id, p.raft, sizeof p.raft) && !rp_peerset_find(s, p.id))
			s->p[s->n++] = p;
		else
			bad++;
	}
	fclose(f);
	if (bad)
		rp_log_warn("raft: %s: skipped %u damaged line(s)", s->path, bad);
}

const char *rp_peerset_find(const struct rp_peerset *s, uint64_t id)
{
	for (unsigned i = 0; i < s->n; i++)
		if (s->p[i].id == id)
			return s->p[i].raft;
	return NULL;
}

void rp_peerset_update(struct rp_peerset *s, const struct raft *r)
{
	const struct raft_configuration *c = &r->configuration;
	int changed = 0;
	for (unsigned i = 0; i < c->n; i++) {
		const struct raft_server *srv = &c->servers[i];
		if (srv->id == s->id || strlen(srv->address) >= sizeof s->p[0].raft)
			continue;
		unsigned k = 0;
		while (k < s->n && s->p[k].id != srv->id)
			k++;
		if (k < s->n && strcmp(s->p[k].raft, srv->address) == 0)
			continue;
		if (k == s->n && s->n == RP_PEERSET_MAX)
			continue; /* full: the configuration itself still admits it */
		s->p[k].id = srv->id;
		snprintf(s->p[k].raft, sizeof s->p[k].raft, "%s", srv->address);
		if (k == s->n)
			s->n++;
		changed = 1;
	}
	if (changed)
		persist(s);
}

void rp_peerset_forget(struct rp_peerset *s, uint64_t id)
{
	for (unsigned i = 0; i < s->n; i++) {
		if (s->p[i].id != id)
			continue;
		s->p[i] = s->p[--s->n];
		persist(s);
		return;
	}
}
