/* Connection and request-head limits of a listener: see connlimit.h. */
#include "connlimit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "fdbudget.h"
#include "raftplane/log.h"

#define BUCKETS 4096

const char *const rp_conn_refuse_names[RP_CONN_REFUSE__N] = {"per_ip", "total", "fds"};
const char *const rp_head_refuse_names[RP_HEAD_REFUSE__N] = {"bytes", "count"};

/* The open connections of one address (or IPv6 /64). */
struct rp_addr_count {
	uint8_t key[16];
	unsigned n;
	struct rp_addr_count *next;
};

/* IPv4 and IPv4-mapped IPv6 as ::ffff:a.b.c.d; other IPv6 by its /64. */
static int addr_key(const struct sockaddr *sa, uint8_t key[16])
{
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET) {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family != AF_INET6)
		return -1;
	const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	memcpy(key, a, memcmp(a, mapped, 12) == 0 ? 16 : 8);
	return 0;
}

static void key_str(const uint8_t key[16], char *out, size_t len)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	char ip[INET6_ADDRSTRLEN] = "?";
	if (memcmp(key, mapped, 12) == 0) {
		inet_ntop(AF_INET, key + 12, ip, sizeof ip);
		snprintf(out, len, "%s", ip);
	} else {
		inet_ntop(AF_INET6, key, ip, sizeof ip);
		snprintf(out, len, "%s/64", ip);
	}
}

/* Keyed with a per-table random seed: an attacker who picks source
 * addresses cannot aim them at one chain (chains are bounded by the
 * connections open anyway). */
static size_t bucket_of(const struct rp_connlimit *l, const uint8_t key[16])
{
	uint64_t w[2], h = l->seed;
	memcpy(w, key, 16);
	for (int i = 0; i < 2; i++) {
		h = (h ^ w[i]) * 0x9e3779b97f4a7c15ULL;
		h ^= h >> 29;
	}
	return (size_t)(h % BUCKETS);
}

static void lock(struct rp_connlimit *l)
{
	if (l->threads)
		uv_mutex_lock(&l->lock);
}

static void unlock(struct rp_connlimit *l)
{
	if (l->threads)
		uv_mutex_unlock(&l->lock);
}

int rp_connlimit_init(struct rp_connlimit *l, const struct rp_connlimit_config *cfg, int threads)
{
	memset(l, 0, sizeof *l);
	l->cfg = *cfg;
	if (!l->cfg.what)
		l->cfg.what = "HTTP";
	if (!l->cfg.per_ip_flag)
		l->cfg.per_ip_flag = "--max-conns-per-ip";
	if (!l->cfg.total_flag)
		l->cfg.total_flag = "--max-conns";
	if (cfg->per_ip) {
		l->buckets = calloc(BUCKETS, sizeof *l->buckets);
		if (!l->buckets)
			return -1;
	}
	if (getrandom(&l->seed, sizeof l->seed, 0) != (ssize_t)sizeof l->seed)
		l->seed = uv_hrtime() ^ (uint64_t)(uintptr_t)l;
	l->threads = threads;
	if (threads && uv_mutex_init(&l->lock) != 0) {
		free(l->buckets);
		l->buckets = NULL;
		return -1;
	}
	return 0;
}

void rp_connlimit_close(struct rp_connlimit *l)
{
	for (size_t b = 0; l->buckets && b < BUCKETS; b++)
		while (l->buckets[b]) {
			struct rp_addr_count *e = l->buckets[b];
			l->buckets[b] = e->next;
			free(e);
		}
	free(l->buckets);
	l->buckets = NULL;
	if (l->threads)
		uv_mutex_destroy(&l->lock);
	l->threads = 0;
}

int rp_connlimit_counts(const struct rp_connlimit *l)
{
	return l && (l->cfg.per_ip || l->cfg.total || rp_fd_budget_limit());
}

/* At most one line a second per listener (under the lock). */
static void log_refusal(struct rp_connlimit *l, const char *fmt, const char *who, unsigned n,
			const char *flag, unsigned limit)
{
	uint64_t now = uv_hrtime() / 1000000;
	if (l->log_ms != 0 && now - l->log_ms < 1000) {
		l->log_suppressed++;
		return;
	}
	char line[256], more[64] = "";
	snprintf(line, sizeof line, fmt, who, n, flag, limit);
	if (l->log_suppressed)
		snprintf(more, sizeof more, " (%u more refusals since the last line)",
			 l->log_suppressed);
	rp_log_warn("%s %s%s", l->cfg.what, line, more);
	l->log_ms = now;
	l->log_suppressed = 0;
}

static struct rp_addr_count *find(struct rp_connlimit *l, const uint8_t key[16], int create)
{
	size_t b = bucket_of(l, key);
	for (struct rp_addr_count *e = l->buckets[b]; e; e = e->next)
		if (memcmp(e->key, key, 16) == 0)
			return e;
	if (!create)
		return NULL;
	struct rp_addr_count *e = calloc(1, sizeof *e);
	if (!e)
		return NULL;
	memcpy(e->key, key, 16);
	e->next = l->buckets[b];
	l->buckets[b] = e;
	return e;
}

static void drop_entry(struct rp_connlimit *l, struct rp_addr_count *e)
{
	struct rp_addr_count **pp = &l->buckets[bucket_of(l, e->key)];
	while (*pp != e)
		pp = &(*pp)->next;
	*pp = e->next;
	free(e);
}

int rp_connlimit_admit(struct rp_connlimit *l, const struct sockaddr *sa, struct rp_conn_slot *slot,
		       enum rp_conn_refuse *why)
{
	uint8_t key[16];
	char who[64];
	memset(slot, 0, sizeof *slot);
	int have_key = addr_key(sa, key) == 0;
	lock(l);
	if (l->cfg.total && l->st.open >= l->cfg.total) {
		*why = RP_CONN_REFUSE_TOTAL;
		l->st.refused[*why]++;
		if (have_key)
			key_str(key, who, sizeof who);
		else
			snprintf(who, sizeof who, "?");
		log_refusal(l, "connection from %s refused: %u connections open (%s %u)", who,
			    (unsigned)l->st.open, l->cfg.total_flag, l->cfg.total);
		unlock(l);
		return -1;
	}
	struct rp_addr_count *e = NULL;
	if (l->cfg.per_ip && have_key) {
		e = find(l, key, 0);
		if (e && e->n >= l->cfg.per_ip) {
			/* outside the lock: the callback may take its own */
			unlock(l);
			int ok = l->cfg.exempt && l->cfg.exempt(l->cfg.exempt_arg, sa);
			lock(l);
			e = find(l, key, 0); /* it may have gone meanwhile (other threads) */
			if (!ok && e && e->n >= l->cfg.per_ip) {
				*why = RP_CONN_REFUSE_PER_IP;
				l->st.refused[*why]++;
				key_str(key, who, sizeof who);
				log_refusal(l,
					    "connection from %s refused: %u connections open from "
					    "that address (%s %u)",
					    who, e->n, l->cfg.per_ip_flag, l->cfg.per_ip);
				unlock(l);
				return -1;
			}
			if (ok && e && e->n >= l->cfg.per_ip) {
				slot->exempted = 1;
				l->st.exempted++;
			}
		}
		if (!e && !(e = find(l, key, 1))) { /* out of memory: refuse, it is safe */
			*why = RP_CONN_REFUSE_PER_IP;
			l->st.refused[*why]++;
			unlock(l);
			return -1;
		}
		e->n++;
	}
	if (!rp_fd_budget_take()) {
		if (e && --e->n == 0)
			drop_entry(l, e);
		if (slot->exempted) {
			slot->exempted = 0;
			l->st.exempted--;
		}
		*why = RP_CONN_REFUSE_FDS;
		l->st.refused[*why]++;
		if (have_key)
			key_str(key, who, sizeof who);
		else
			snprintf(who, sizeof who, "?");
		log_refusal(l,
			    "connection from %s refused: clients hold %u descriptors, the %s of %u "
			    "(ulimit -n less a reserve for raft and the data dir)",
			    who, (unsigned)rp_fd_budget_used(), "descriptor budget",
			    (unsigned)rp_fd_budget_limit());
		unlock(l);
		return -1;
	}
	slot->entry = e;
	slot->held = 1;
	l->st.open++;
	unlock(l);
	return 0;
}

static void release_locked(struct rp_connlimit *l, struct rp_conn_slot *slot)
{
	if (!slot->held)
		return;
	slot->held = 0;
	l->st.open--;
	rp_fd_budget_give();
	struct rp_addr_count *e = slot->entry;
	slot->entry = NULL;
	if (e && --e->n == 0)
		drop_entry(l, e);
}

void rp_connlimit_release(struct rp_connlimit *l, struct rp_conn_slot *slot)
{
	if (!slot->held)
		return;
	lock(l);
	release_locked(l, slot);
	unlock(l);
}

void rp_connlimit_refuse_exempted(struct rp_connlimit *l, const struct sockaddr *sa,
				  struct rp_conn_slot *slot)
{
	uint8_t key[16];
	char who[64] = "?";
	if (addr_key(sa, key) == 0)
		key_str(key, who, sizeof who);
	lock(l);
	unsigned n = slot->entry ? slot->entry->n : 0;
	release_locked(l, slot);
	l->st.refused[RP_CONN_REFUSE_PER_IP]++;
	log_refusal(l,
		    "connection from %s refused: %u connections open from that address and no "
		    "server certificate (%s %u)",
		    who, n, l->cfg.per_ip_flag, l->cfg.per_ip);
	unlock(l);
}

void rp_connlimit_count_head(struct rp_connlimit *l, enum rp_head_refuse why, const char *peer,
			     size_t bytes, unsigned lines)
{
	lock(l);
	l->st.heads_refused[why]++;
	uint64_t now = uv_hrtime() / 1000000;
	if (l->log_ms != 0 && now - l->log_ms < 1000) {
		l->log_suppressed++;
	} else {
		char more[64] = "";
		if (l->log_suppressed)
			snprintf(more, sizeof more, " (%u more refusals since the last line)",
				 l->log_suppressed);
		if (why == RP_HEAD_REFUSE_BYTES)
			rp_log_warn("%s request head from %s refused at %zu bytes "
				    "(--max-header-bytes %zu)%s",
				    l->cfg.what, peer, bytes, l->cfg.max_head_bytes, more);
		else
			rp_log_warn("%s request head from %s refused at %u header lines "
				    "(--max-headers %u)%s",
				    l->cfg.what, peer, lines, l->cfg.max_headers, more);
		l->log_ms = now;
		l->log_suppressed = 0;
	}
	unlock(l);
}

void rp_connlimit_count_fallback(struct rp_connlimit *l)
{
	lock(l);
	l->st.guard_fallbacks++;
	unlock(l);
}

void rp_connlimit_stats(struct rp_connlimit *l, struct rp_connlimit_stats *out)
{
	lock(l);
	*out = l->st;
	unlock(l);
}
