/* rp-relay: command line. "serve" runs a relay (relay.h), "ctl" sends one
 * control command to a running relay and prints its answer.
 *
 *   rp-relay serve --ctl SOCK --listen IP --peer ID=LPORT=IP:PORT... [--mark N] [--seed N]
 *   rp-relay ctl SOCK WORD...
 *
 * Addresses are restricted to the suite's namespace network 10.77.0.0/24
 * and 127.0.0.1 (relay.h, invariant 3).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "relay.h"

static const char usage[] =
	"usage: rp-relay serve --ctl SOCK --listen IP --peer ID=LPORT=IP:PORT [--peer ...]\n"
	"                      [--mark N] [--seed N]\n"
	"       rp-relay ctl SOCK COMMAND...\n"
	"commands: ping | set PEER|* out|in|both KEY=VALUE... | clear | reset PEER|* | stats\n"
	"  keys: delay=MS jitter=MS loss=PCT reset=PCT rate=BYTES_PER_S\n"
	"addresses must be in 10.77.0.0/24 or 127.0.0.1\n";

static void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "rp-relay: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n%s", usage);
	exit(2);
}

static long num(const char *what, const char *s, long lo, long hi)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		die("bad number for %s", what);
	return v;
}

/* The suite's rule: relayed traffic only to its namespace addresses. */
static int allowed_ip(struct in_addr a)
{
	uint32_t h = ntohl(a.s_addr);
	return (h & 0xffffff00u) == 0x0a4d0000u || h == 0x7f000001u;
}

static void parse_ip(const char *s, struct in_addr *out)
{
	if (inet_pton(AF_INET, s, out) != 1)
		die("'%s' is not an IPv4 address", s);
	if (!allowed_ip(*out))
		die("address %s is outside 10.77.0.0/24 and 127.0.0.1", s);
}

static void parse_peer(struct rl_relay *r, const char *orig)
{
	/* a copy: argv stays intact (it shows in /proc/PID/cmdline) */
	char arg[128];
	if (strlen(orig) >= sizeof arg)
		die("--peer '%s' is too long", orig);
	strcpy(arg, orig);
	char *e1 = strchr(arg, '='), *e2 = e1 ? strchr(e1 + 1, '=') : NULL;
	char *colon = e2 ? strrchr(e2 + 1, ':') : NULL;
	if (!colon)
		die("--peer '%s' is not ID=LPORT=IP:PORT", orig);
	if (r->n_peers == RL_MAX_PEERS)
		die("too many peers (max %s)", "16");
	*e1 = *e2 = *colon = '\0';
	struct rl_peer *p = &r->peers[r->n_peers];
	p->id = (unsigned)num("peer id", arg, 1, 1L << 31);
	p->lport = (uint16_t)num("peer listen port", e1 + 1, 1, 65535);
	p->dst.sin_family = AF_INET;
	parse_ip(e2 + 1, &p->dst.sin_addr);
	p->dst.sin_port = htons((uint16_t)num("peer port", colon + 1, 1, 65535));
	for (unsigned i = 0; i < r->n_peers; i++)
		if (r->peers[i].id == p->id || r->peers[i].lport == p->lport)
			die("--peer: duplicate id or listen port in '%s'", orig);
	r->n_peers++;
}

static int serve(int argc, char **argv)
{
	static struct rl_relay r;
	const char *ctl = NULL;
	int have_listen = 0;
	r.mark = 0x524c;
	r.rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (i + 1 >= argc)
			die("%s needs a value", a);
		char *v = argv[++i];
		if (!strcmp(a, "--ctl"))
			ctl = v;
		else if (!strcmp(a, "--listen")) {
			r.listen.sin_family = AF_INET;
			parse_ip(v, &r.listen.sin_addr);
			have_listen = 1;
		} else if (!strcmp(a, "--peer"))
			parse_peer(&r, v);
		else if (!strcmp(a, "--mark"))
			r.mark = (uint32_t)num("--mark", v, 1, 0x7fffffff);
		else if (!strcmp(a, "--seed"))
			r.rng = (uint64_t)num("--seed", v, 0, 0x7fffffffL) * 0x9e3779b97f4a7c15ull +
				1;
		else
			die("unknown flag '%s'", a);
	}
	if (!ctl || !have_listen || !r.n_peers)
		die("serve needs --ctl, --listen and at least one --peer%s", "");
	if (!r.rng)
		r.rng = 1;
	return rl_serve(&r, ctl);
}

/* Sends WORDS as one line, prints the answer; 0 on "ok", 1 on "err", 2 when
 * the relay cannot be reached within 5 s. */
static int ctl(const char *path, int argc, char **argv)
{
	char line[RL_CTL_LINE];
	size_t u = 0;
	for (int i = 0; i < argc; i++) {
		size_t l = strlen(argv[i]);
		if (u + l + 2 > sizeof line)
			die("command too long (max %s bytes)", "510");
		memcpy(line + u, argv[i], l);
		u += l;
		line[u++] = i + 1 < argc ? ' ' : '\n';
	}
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof a.sun_path)
		die("control socket path too long: %s", path);
	strcpy(a.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = {5, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		fprintf(stderr, "rp-relay: cannot reach the relay at %s: %s\n", path,
			strerror(errno));
		return 2;
	}
	if (send(fd, line, u, MSG_NOSIGNAL) != (ssize_t)u) {
		fprintf(stderr, "rp-relay: send to %s: %s\n", path, strerror(errno));
		return 2;
	}
	char out[16384];
	size_t n = 0;
	ssize_t r;
	while (n < sizeof out - 1 && (r = recv(fd, out + n, sizeof out - 1 - n, 0)) > 0)
		n += (size_t)r;
	close(fd);
	out[n] = '\0';
	fputs(out, stdout);
	if (!strncmp(out, "ok", 2))
		return 0;
	if (n == 0) {
		fprintf(stderr, "rp-relay: no answer from %s\n", path);
		return 2;
	}
	return 1;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "serve"))
		return serve(argc - 2, argv + 2);
	if (argc >= 4 && !strcmp(argv[1], "ctl"))
		return ctl(argv[2], argc - 3, argv + 3);
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(usage, stdout);
		return 0;
	}
	fputs(usage, stderr);
	return 2;
}
