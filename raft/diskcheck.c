/* Start-up check of a data dir (see diskcheck.h).
 *
 * canonical/raft 0.15 on its own, at start (measured, docs/design.md):
 * - renames a closed or open segment whose checksum fails to corrupt-*
 *   ("auto-recovery", on by default; node.c turns it off) and starts
 *   without those entries, acknowledged or not;
 * - with auto-recovery off, still truncates an open segment at the first
 *   batch that fails its checksum, whatever follows, and drops an empty or
 *   zeroed open segment, even when later ones hold entries;
 * - takes metadata files (term, vote) without any checksum, and drops a
 *   short one as "interrupted";
 * - loops forever on a truncated snapshot file.
 * So before raft opens the dir, this file reads every file raft will read
 * and decides, for each, whether its content is what completed writes plus
 * at most one interrupted write leave behind.
 *
 * What an interrupted write looks like: raft_uv preallocates open segments
 * (zeros) and appends batches in order, one write at a time, the write
 * completing before any entry in it counts as stored (and so before this
 * node acknowledges it to a leader or counts itself). A crash during that
 * write leaves a prefix of it: the sectors it did not reach are still zero.
 * So, at the first batch of the newest open segment holding entries that
 * does not verify, the tail is an interrupted write when
 *   - no single flipped bit explains the checksum mismatch (a flip is
 *     damage to a complete write), and
 *   - nothing but zeros follows the end of the batch (as its verified header
 *     announces it, or the end of the header when that does not verify),
 *     and at least one 512-byte sector of the batch reads as zeros
 *     throughout: the batch is missing a sector the write did not reach.
 * Anything else (a complete batch with a bad checksum, data after the end,
 * an empty or zeroed open segment followed by one holding entries, a
 * closed segment that does not verify, a gap in the log, a metadata file
 * that disagrees with raftplane-meta) refuses the start.
 *
 * Invariants
 *
 * 1. Read-only, except raftplane-meta written by rp_diskcheck_meta_sync().
 * 2. Every length read from a file is checked against the bytes present
 *    before it is used; files are read whole, up to MAX_FILE.
 */
#include "diskcheck.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lz4check.h"
#include "raftplane/log.h"

#define FORMAT 1                        /* raft_uv's disk format */
#define SEGMENT_SIZE (8u * 1024 * 1024) /* raft_uv preallocates open segments to this */
#define SECTOR 512
#define MAX_FILE ((size_t)1 << 31)
#define MAX_BATCH_ENTRIES (SEGMENT_SIZE / 32) /* raft_uv's own bound */
#define MAX_IDS 256
#define META_SIZE 32
#define SC_NAME "raftplane-meta"
#define SC_SIZE 48
#define ENTRY_COMMAND 1
#define ENTRY_BARRIER 2
#define ENTRY_CHANGE 3

/* ---- CRC-32 as raft 0.15 computes it --------------------------------------- */

static uint32_t crc_table[256];

static void crc_init(void)
{
	if (crc_table[1])
		return;
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i << 24;
		for (int k = 0; k < 8; k++)
			c = (c & 0x80000000u) ? (c << 1) ^ 0x04C11DB7u : c << 1;
		crc_table[i] = c;
	}
}

uint32_t rp_raft_crc32(const void *buf, size_t len, uint32_t crc)
{
	const uint8_t *p = buf;
	crc_init();
	while (len--)
		crc = (crc << 8) ^ crc_table[((crc >> 24) ^ *p++) & 255];
	return crc;
}

/* Position of the single flipped bit of @len bytes that explains
 * @syndrome (stored checksum xor computed one), or -1. The CRC is linear
 * and starts from 0, so a message holding only bit b of byte k has the CRC
 * of byte (1 << b) followed by len-1-k zero bytes. */
static long single_flip(size_t len, uint32_t syndrome)
{
	uint32_t r[8];
	crc_init();
	for (int b = 0; b < 8; b++)
		r[b] = crc_table[1u << b];
	for (size_t d = 0; d < len; d++) {
		for (int b = 0; b < 8; b++) {
			if (r[b] == syndrome)
				return (long)(len - 1 - d);
			r[b] = (r[b] << 8) ^ crc_table[r[b] >> 24];
		}
	}
	return -1;
}

static int popcount1(uint32_t x)
{
	return x && !(x & (x - 1));
}

/* ---- little-endian reads ---------------------------------------------------- */

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

/* ---- the listing -------------------------------------------------------------- */

struct seg {
	char name[64];
	int open;
	uint64_t first, end; /* closed: from the name */
	uint64_t counter;    /* open: from the name */
	uint64_t entries;    /* verified entries */
	int data;            /* open: holds at least one batch */
};

struct snap {
	char name[96]; /* without .meta */
	uint64_t term, index, ts;
	int meta, data;
	size_t data_size;
};

struct meta {
	int present, ok; /* ok: 32 bytes, format 1, version != 0 */
	size_t size;
	uint64_t format, version, term, vote;
};

struct ctx {
	const char *dir;
	char *err;
	size_t errlen;
	struct seg *segs;
	size_t nseg;
	struct snap *snaps;
	size_t nsnap;
	int have_id, have_sc, have_corrupt;
	char corrupt[96];
	uint64_t max_term, max_term_index; /* highest entry/snapshot term, where */
	uint64_t ids[MAX_IDS];             /* server ids of every configuration seen */
	unsigned nids;
};

static int fail(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct ctx *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err, c->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int full_match(const char *name, const char *fmt, int want, uint64_t *a, uint64_t *b,
		      uint64_t *d)
{
	int consumed = -1;
	unsigned long long x = 0, y = 0, z = 0;
	int m = want == 1   ? sscanf(name, fmt, &x, &consumed)
		: want == 2 ? sscanf(name, fmt, &x, &y, &consumed)
			    : sscanf(name, fmt, &x, &y, &z, &consumed);
	if (m != want || consumed != (int)strlen(name))
		return 0;
	*a = x;
	if (b)
		*b = y;
	if (d)
		*d = z;
	return 1;
}

static struct snap *snap_of(struct ctx *c, uint64_t t, uint64_t i, uint64_t ts)
{
	for (size_t k = 0; k < c->nsnap; k++)
		if (c->snaps[k].term == t && c->snaps[k].index == i && c->snaps[k].ts == ts)
			return &c->snaps[k];
	struct snap *n = realloc(c->snaps, (c->nsnap + 1) * sizeof *n);
	if (!n)
		return NULL;
	c->snaps = n;
	n = &c->snaps[c->nsnap++];
	memset(n, 0, sizeof *n);
	n->term = t;
	n->index = i;
	n->ts = ts;
	snprintf(n->name, sizeof n->name, "snapshot-%llu-%llu-%llu", (unsigned long long)t,
		 (unsigned long long)i, (unsigned long long)ts);
	return n;
}

static int file_size(struct ctx *c, const char *name, size_t *size)
{
	char path[1024];
	struct stat st;
	snprintf(path, sizeof path, "%s/%s", c->dir, name);
	if (stat(path, &st) != 0)
		return fail(c, "%s: %s", name, strerror(errno));
	*size = (size_t)st.st_size;
	return 0;
}

static int list_dir(struct ctx *c, int *empty)
{
	DIR *d = opendir(c->dir);
	struct dirent *e;
	*empty = 1;
	if (!d) {
		if (errno == ENOENT)
			return 0;
		return fail(c, "open data dir: %s", strerror(errno));
	}
	while ((e = readdir(d))) {
		const char *n = e->d_name;
		uint64_t a = 0, b = 0, t = 0;
		if (n[0] == '.' || strlen(n) >= 64)
			continue;
		*empty = 0;
		if (full_match(n, "%16llu-%16llu%n", 2, &a, &b, NULL) ||
		    full_match(n, "open-%llu%n", 1, &a, NULL, NULL)) {
			struct seg *s = realloc(c->segs, (c->nseg + 1) * sizeof *s);
			if (!s)
				goto oom;
			c->segs = s;
			s = &c->segs[c->nseg++];
			memset(s, 0, sizeof *s);
			snprintf(s->name, sizeof s->name, "%.63s", n);
			s->open = n[0] == 'o';
			if (s->open)
				s->counter = a;
			else
				s->first = a, s->end = b;
		} else if (full_match(n, "snapshot-%llu-%llu-%llu%n", 3, &t, &a, &b) ||
			   full_match(n, "snapshot-%llu-%llu-%llu.meta%n", 3, &t, &a, &b)) {
			struct snap *s = snap_of(c, t, a, b);
			if (!s)
				goto oom;
			if (strstr(n, ".meta"))
				s->meta = 1;
			else
				s->data = 1;
		} else if (!strcmp(n, "raftplane-id")) {
			c->have_id = 1;
		} else if (!strcmp(n, SC_NAME)) {
			c->have_sc = 1;
		} else if (!strncmp(n, "corrupt-", 8)) {
			c->have_corrupt = 1;
			snprintf(c->corrupt, sizeof c->corrupt, "%.63s", n);
		}
	}
	closedir(d);
	return 0;
oom:
	closedir(d);
	return fail(c, "out of memory");
}

static int read_file(struct ctx *c, const char *name, uint8_t **out, size_t *len)
{
	char path[1024];
	struct stat st;
	snprintf(path, sizeof path, "%s/%s", c->dir, name);
	int fd = open(path, O_RDONLY);
	if (fd < 0 || fstat(fd, &st) != 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return fail(c, "%s: cannot read: %s", name, strerror(e));
	}
	if ((size_t)st.st_size > MAX_FILE) {
		close(fd);
		return fail(c, "%s: %lld bytes, more than raft writes", name,
			    (long long)st.st_size);
	}
	size_t n = (size_t)st.st_size, got = 0;
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf) {
		close(fd);
		return fail(c, "%s: out of memory", name);
	}
	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r <= 0) {
			int e = r < 0 ? errno : EIO;
			free(buf);
			close(fd);
			return fail(c, "%s: read error at byte %zu: %s", name, got, strerror(e));
		}
		got += (size_t)r;
	}
	close(fd);
	*out = buf;
	*len = n;
	return 0;
}

/* ---- configurations (RAFT_CHANGE entries, snapshot metadata) ---------------- */

static void note_ids(struct ctx *c, const uint8_t *p, size_t len)
{
	if (len < 9 || p[0] != 1)
		return;
	uint64_t n = get64(p + 1);
	size_t off = 9;
	for (uint64_t i = 0; i < n && off + 8 < len; i++) {
		uint64_t id = get64(p + off);
		off += 8;
		const uint8_t *nul = memchr(p + off, 0, len - off);
		if (!nul || (size_t)(nul - p) + 2 > len)
			return;
		off = (size_t)(nul - p) + 2; /* address, NUL, role */
		unsigned k = 0;
		while (k < c->nids && c->ids[k] != id)
			k++;
		if (k == c->nids && c->nids < MAX_IDS)
			c->ids[c->nids++] = id;
	}
}

static void note_term(struct ctx *c, uint64_t term, uint64_t index)
{
	if (term > c->max_term) {
		c->max_term = term;
		c->max_term_index = index;
	}
}

/* ---- segments ------------------------------------------------------------------- */

/* Why parsing stopped at a batch. */
struct stop {
	size_t at;       /* byte offset of the batch */
	unsigned batch;  /* 1-based */
	const char *why; /* NULL: the batches end exactly at the end of the file */
	int hdr_ok;      /* header checksum verified */
	size_t end;      /* hdr_ok: where the batch ends per its header; else
			    where its header would end (or at + 16) */
};

/* Verify the batches of @d[0..len) from byte 8 on; @first: index of the
 * first entry. Entries verified count into *n. */
static void parse_batches(struct ctx *c, const uint8_t *d, size_t len, uint64_t first, uint64_t *n,
			  struct stop *st)
{
	size_t off = 8;
	*n = 0;
	memset(st, 0, sizeof *st);
	for (unsigned b = 1;; b++) {
		st->at = off;
		st->batch = b;
		st->hdr_ok = 0;
		st->end = off + 16;
		if (off == len)
			return; /* why stays NULL */
		if (len - off < 16) {
			st->why = "the file ends inside the batch preamble";
			return;
		}
		uint64_t cnt = get64(d + off + 8);
		if (cnt == 0) {
			st->why = "the entry count is zero";
			return;
		}
		if (cnt > MAX_BATCH_ENTRIES) {
			st->why = "the entry count is implausibly high";
			return;
		}
		size_t hlen = 8 + 16 * (size_t)cnt;
		st->end = off + 8 + hlen;
		if (len - off - 8 < hlen) {
			st->why = "the file ends inside the batch header";
			return;
		}
		const uint8_t *h = d + off + 8;
		if (rp_raft_crc32(h, hlen, 0) != get32(d + off)) {
			st->why = "header checksum mismatch";
			return;
		}
		size_t dlen = 0;
		for (uint64_t i = 0; i < cnt; i++) {
			const uint8_t *e = h + 8 + 16 * i;
			if (e[8] != ENTRY_COMMAND && e[8] != ENTRY_BARRIER &&
			    e[8] != ENTRY_CHANGE) {
				st->why = "an entry has an unknown type";
				return;
			}
			dlen += get32(e + 12);
		}
		st->hdr_ok = 1;
		st->end = off + 8 + hlen + dlen;
		if (len - off - 8 - hlen < dlen) {
			st->why = "the file ends inside the batch data";
			return;
		}
		const uint8_t *data = h + hlen;
		if (rp_raft_crc32(data, dlen, 0) != get32(d + off + 4)) {
			st->why = "data checksum mismatch";
			return;
		}
		size_t eo = 0;
		for (uint64_t i = 0; i < cnt; i++) {
			const uint8_t *e = h + 8 + 16 * i;
			size_t elen = get32(e + 12);
			note_term(c, get64(e), first + *n + i);
			if (e[8] == ENTRY_CHANGE)
				note_ids(c, data + eo, elen);
			eo += elen;
		}
		*n += cnt;
		off += 8 + hlen + dlen;
	}
}

/* Describe a single flipped bit explaining the failure at @st, into @out;
 * 0 when none does. */
static int explain_flip(const uint8_t *d, size_t len, const struct stop *st, char *out,
			size_t outlen)
{
	size_t at = st->at;
	if (len - at < 16)
		return 0;
	uint64_t cnt = get64(d + at + 8);
	uint32_t crc1 = get32(d + at);
	if (st->hdr_ok && st->end > len)
		return 0; /* a length in the header runs past the file */
	if (st->hdr_ok) {
		size_t hlen = 8 + 16 * (size_t)cnt;
		size_t dlen = st->end - at - 8 - hlen;
		uint32_t s = get32(d + at + 4) ^ rp_raft_crc32(d + at + 8 + hlen, dlen, 0);
		if (popcount1(s)) {
			snprintf(out, outlen,
				 "a flipped bit in the stored data checksum at byte %zu", at + 4);
			return 1;
		}
		long k = single_flip(dlen, s);
		if (k >= 0) {
			snprintf(out, outlen, "a flipped bit in entry data at byte %zu",
				 at + 8 + hlen + (size_t)k);
			return 1;
		}
		return 0;
	}
	if (cnt >= 1 && cnt <= MAX_BATCH_ENTRIES && len - at - 8 >= 8 + 16 * cnt) {
		size_t hlen = 8 + 16 * (size_t)cnt;
		uint32_t s = crc1 ^ rp_raft_crc32(d + at + 8, hlen, 0);
		if (popcount1(s)) {
			snprintf(out, outlen,
				 "a flipped bit in the stored header checksum at byte %zu", at);
			return 1;
		}
		long k = single_flip(hlen, s);
		if (k >= 0) {
			snprintf(out, outlen, "a flipped bit in the batch header at byte %zu",
				 at + 8 + (size_t)k);
			return 1;
		}
	}
	/* a flip in the entry count changes how many header bytes the checksum
	 * covers: try each */
	for (int bit = 0; bit < 64; bit++) {
		uint64_t n2 = cnt ^ ((uint64_t)1 << bit);
		if (n2 == 0 || n2 > 65536 || len - at - 8 < 8 + 16 * n2)
			continue;
		uint8_t fixed[8];
		put64(fixed, n2);
		uint32_t crc = rp_raft_crc32(fixed, 8, 0);
		crc = rp_raft_crc32(d + at + 16, 16 * (size_t)n2, crc);
		if (crc == crc1) {
			snprintf(out, outlen, "a flipped bit in the entry count at byte %zu",
				 at + 8 + (size_t)bit / 8);
			return 1;
		}
	}
	return 0;
}

/* The last non-zero byte of @d[from..len) plus one, or @from. */
static size_t data_end(const uint8_t *d, size_t len, size_t from)
{
	size_t z = len;
	while (z > from && d[z - 1] == 0)
		z--;
	return z;
}

static int all_zero(const uint8_t *d, size_t len)
{
	return data_end(d, len, 0) == 0;
}

/* Whether some 512-byte sector of the batch at @d[at..end) reads as zeros
 * throughout (the part of it inside the batch): a sector the interrupted
 * write did not reach. */
static int unwritten_sector(const uint8_t *d, size_t at, size_t end)
{
	for (size_t s = at / SECTOR * SECTOR; s < end; s += SECTOR) {
		size_t lo = s > at ? s : at, hi = s + SECTOR < end ? s + SECTOR : end;
		if (lo < hi && data_end(d, hi, lo) == lo)
			return 1;
	}
	return 0;
}

static int check_closed(struct ctx *c, struct seg *s)
{
	uint8_t *d;
	size_t len;
	struct stop st;
	char flip[160];
	if (read_file(c, s->name, &d, &len) != 0)
		return -1;
	int rv = 0;
	if (len == 0) {
		rv = fail(
			c,
			"%s: closed segment is empty (0 bytes); it should hold entries %llu..%llu",
			s->name, (unsigned long long)s->first, (unsigned long long)s->end);
		goto out;
	}
	if (len < 8 || get64(d) != FORMAT) {
		rv = fail(c, "%s: bad format version at byte 0 (%s)", s->name,
			  len < 8 ? "file shorter than 8 bytes" : "not 1");
		goto out;
	}
	parse_batches(c, d, len, s->first, &s->entries, &st);
	if (st.why) {
		int f = explain_flip(d, len, &st, flip, sizeof flip);
		rv = fail(c, "%s: batch %u at byte %zu: %s%s%s (file is %zu bytes)", s->name,
			  st.batch, st.at, st.why, f ? ": " : "", f ? flip : "", len);
		goto out;
	}
	if (s->entries != s->end - s->first + 1) {
		rv = fail(c,
			  "%s: holds %llu entries, its name says %llu (truncated at a batch "
			  "boundary?)",
			  s->name, (unsigned long long)s->entries,
			  (unsigned long long)(s->end - s->first + 1));
	}
out:
	free(d);
	return rv;
}

/* An open segment; @last: no later open segment holds entries; @newest: no
 * later open segment exists at all; @first: the index of its first entry. */
static int check_open(struct ctx *c, struct seg *s, int last, int newest, uint64_t first)
{
	uint8_t *d;
	size_t len;
	struct stop st;
	char flip[160];
	if (read_file(c, s->name, &d, &len) != 0)
		return -1;
	int rv = 0;
	if (len == 0 && !newest) {
		/* raft creates (and preallocates) one open segment at a time, in
		 * counter order: only the newest may be caught before its allocation */
		rv = fail(c,
			  "%s: open segment is empty (0 bytes), but a later one was created "
			  "after it was preallocated: its content is lost",
			  s->name);
		goto out;
	}
	if (len == 0 || all_zero(d, len)) { /* allocated, never written */
		if (!last)
			rv = fail(c,
				  "%s: open segment is all zeros, but a later open segment holds "
				  "entries: the entries it held are lost",
				  s->name);
		goto out;
	}
	if (len < 8 || get64(d) != FORMAT) {
		rv = fail(c, "%s: bad format version at byte 0 (%s)", s->name,
			  len < 8 ? "file shorter than 8 bytes" : "not 1");
		goto out;
	}
	parse_batches(c, d, len, first, &s->entries, &st);
	s->data = s->entries > 0;
	if (!st.why)
		goto out; /* ends exactly at the end of the file (raft truncated it) */
	size_t z = data_end(d, len, st.at);
	if (z == st.at && len >= SEGMENT_SIZE)
		goto out; /* the usual end: preallocated zeros */
	if (explain_flip(d, len, &st, flip, sizeof flip)) {
		rv = fail(c, "%s: batch %u at byte %zu: %s: %s; a complete write was damaged",
			  s->name, st.batch, st.at, st.why, flip);
		goto out;
	}
	if (len < SEGMENT_SIZE) {
		rv = fail(c,
			  "%s: truncated to %zu bytes (open segments are preallocated to %u): "
			  "batch %u at byte %zu: %s",
			  s->name, len, SEGMENT_SIZE, st.batch, st.at, st.why);
		goto out;
	}
	if (!last || z > st.end || !unwritten_sector(d, st.at, st.end)) {
		rv = fail(c, "%s: batch %u at byte %zu: %s, with data up to byte %zu%s", s->name,
			  st.batch, st.at, st.why, z,
			  !last        ? " and a later open segment holding entries"
			  : z > st.end ? ": not an interrupted write (data after the batch)"
				       : ": not an interrupted write (no sector of it is missing)");
		goto out;
	}
	rp_log_warn("data dir: %s: discarding an interrupted last write at bytes %zu..%zu "
		    "(batch %u, never acknowledged: %s); raft truncates it",
		    s->name, st.at, z, st.batch, st.why);
out:
	free(d);
	return rv;
}

static int seg_cmp(const void *a, const void *b)
{
	const struct seg *x = a, *y = b;
	if (x->open != y->open)
		return x->open - y->open;
	uint64_t kx = x->open ? x->counter : x->first, ky = y->open ? y->counter : y->first;
	return kx < ky ? -1 : kx > ky;
}

/* ---- snapshots ------------------------------------------------------------------- */

static int snap_cmp(const void *a, const void *b)
{
	const struct snap *x = a, *y = b;
	if (x->term != y->term)
		return x->term < y->term ? -1 : 1;
	if (x->index != y->index)
		return x->index < y->index ? -1 : 1;
	return x->ts < y->ts ? -1 : x->ts > y->ts;
}

static int check_snap_meta(struct ctx *c, const struct snap *s)
{
	char name[128];
	uint8_t *d;
	size_t len;
	int rv = 0;
	snprintf(name, sizeof name, "%s.meta", s->name);
	if (read_file(c, name, &d, &len) != 0)
		return -1;
	if (len < 32) {
		rv = fail(c, "%s: %zu bytes, shorter than its 32-byte header (truncated)", name,
			  len);
	} else if (get64(d) != FORMAT) {
		rv = fail(c, "%s: bad format version at byte 0", name);
	} else if (get64(d + 24) == 0 || get64(d + 24) > len - 32) {
		rv = fail(c,
			  "%s: configuration length %llu at byte 24 does not fit the file (%zu "
			  "bytes)",
			  name, (unsigned long long)get64(d + 24), len);
	} else {
		size_t clen = (size_t)get64(d + 24);
		uint32_t crc = rp_raft_crc32(d + 16, 16, 0);
		crc = rp_raft_crc32(d + 32, clen, crc);
		if (crc != (uint32_t)get64(d + 8))
			rv = fail(c, "%s: checksum mismatch (stored at byte 8)", name);
		else if (32 + clen != len)
			rv = fail(c, "%s: %zu bytes after the configuration", name,
				  len - 32 - clen);
		else
			note_ids(c, d + 32, clen);
	}
	free(d);
	return rv;
}

static int check_snap_data(struct ctx *c, const struct snap *s)
{
	uint8_t *d;
	size_t len;
	char why[256];
	if (read_file(c, s->name, &d, &len) != 0)
		return -1;
	int rv = 0;
	uint32_t magic = len >= 4 ? get32(d) : 0;
	if (len >= 16 && magic != RP_LZ4_MAGIC && !popcount1(magic ^ RP_LZ4_MAGIC) &&
	    !memcmp(d, "SQLite format 3", 16)) {
		/* written without compression (libraft built without LZ4): nothing
		 * to verify it against */
		rp_log_warn("data dir: %s is not compressed: its content carries no checksum",
			    s->name);
	} else if (rp_lz4_frame_check(d, len, NULL, why, sizeof why) != 0) {
		rv = fail(c, "%s: %s (file is %zu bytes)", s->name, why, len);
	}
	free(d);
	return rv;
}

/* Pick the snapshot libraft will load (the newest with both files, the data
 * not empty) after checking every pair; *index: its index, 0 if none. */
static int check_snapshots(struct ctx *c, uint64_t *index)
{
	unsigned complete = 0; /* complete pairs newer than the one looked at */
	*index = 0;
	if (c->nsnap > 1)
		qsort(c->snaps, c->nsnap, sizeof *c->snaps, snap_cmp);
	int picked = 0;
	for (size_t k = c->nsnap; k-- > 0;) {
		struct snap *s = &c->snaps[k];
		if (s->data && file_size(c, s->name, &s->data_size) != 0)
			return -1;
		if (s->data && !s->meta) {
			/* raft removes an old snapshot's .meta, then its data: only
			 * snapshots older than the two it keeps may be caught so */
			if (complete >= 2) {
				rp_log_warn("data dir: %s has no .meta: an interrupted removal of "
					    "an old snapshot, raft removes it",
					    s->name);
				continue;
			}
			return fail(c,
				    "%s: its metadata file %s.meta is missing (raft writes the "
				    "metadata first, so it was lost)",
				    s->name, s->name);
		}
		if (s->meta && !s->data) {
			if (!picked)
				rp_log_warn("data dir: %s.meta has no data file: an interrupted "
					    "snapshot write, raft removes it",
					    s->name);
			continue;
		}
		if (s->data_size == 0)
			return fail(c,
				    "%s: snapshot data file is empty (0 bytes; raft writes it "
				    "whole and renames it)",
				    s->name);
		if (check_snap_meta(c, s) != 0)
			return -1;
		complete++;
		if (!picked) {
			if (check_snap_data(c, s) != 0)
				return -1;
			*index = s->index;
			note_term(c, s->term, s->index);
			picked = 1;
		}
	}
	return 0;
}

/* ---- metadata and raftplane-meta ------------------------------------------------- */

static int load_meta(struct ctx *c, int which, struct meta *m)
{
	char name[16];
	uint8_t *d;
	size_t len;
	memset(m, 0, sizeof *m);
	snprintf(name, sizeof name, "metadata%d", which);
	char path[1024];
	snprintf(path, sizeof path, "%s/%s", c->dir, name);
	if (access(path, F_OK) != 0)
		return errno == ENOENT ? 0 : fail(c, "%s: %s", name, strerror(errno));
	if (read_file(c, name, &d, &len) != 0)
		return -1;
	m->present = 1;
	m->size = len;
	if (len == META_SIZE) {
		m->format = get64(d);
		m->version = get64(d + 8);
		m->term = get64(d + 16);
		m->vote = get64(d + 24);
		m->ok = m->format == FORMAT && m->version != 0;
	}
	free(d);
	return 0;
}

static int meta_successor(const struct meta *newer, uint64_t term, uint64_t vote)
{
	return newer->term > term || (newer->term == term && vote == 0 && newer->vote != 0);
}

/* raftplane-meta: "RPMETA1\0", then version, term, vote (a copy of the
 * newest metadata file), stored (the last log index this node had stored,
 * at most a second old), CRC-32 of the 40 bytes before it, 4 zero bytes. */
static int read_sidecar(const char *dir, uint64_t v[4], int *state)
{
	char path[1024];
	uint8_t b[SC_SIZE + 1];
	snprintf(path, sizeof path, "%s/%s", dir, SC_NAME);
	int fd = open(path, O_RDONLY);
	*state = 0;
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	ssize_t r = read(fd, b, sizeof b);
	close(fd);
	*state = r == SC_SIZE && !memcmp(b, "RPMETA1", 8) &&
				 rp_raft_crc32(b, 40, 0) == get32(b + 40)
			 ? 1
			 : -1;
	if (*state == 1)
		for (int i = 0; i < 4; i++)
			v[i] = get64(b + 8 + 8 * i);
	return 0;
}

static int check_metadata(struct ctx *c, int has_log, uint64_t log_end)
{
	struct meta m[3];
	if (load_meta(c, 1, &m[1]) != 0 || load_meta(c, 2, &m[2]) != 0)
		return -1;
	for (int i = 1; i <= 2; i++) {
		if (!m[i].present || m[i].size >= META_SIZE)
			continue;
		/* raft creates metadata2 with version 2, after metadata1 held
		 * version 1: only then may a short file be an interrupted creation */
		int legit = (i == 1 && !m[2].present && !has_log) ||
			    (i == 2 && m[1].ok && m[1].version == 1);
		if (!legit)
			return fail(c,
				    "metadata%d: %zu bytes instead of 32 (truncated; it was "
				    "written whole before)",
				    i, m[i].size);
		rp_log_warn("data dir: metadata%d: %zu bytes, an interrupted creation; raft "
			    "removes it",
			    i, m[i].size);
		m[i].present = 0;
	}
	for (int i = 1; i <= 2; i++) {
		if (!m[i].present)
			continue;
		if (m[i].size > META_SIZE)
			return fail(c, "metadata%d: %zu bytes instead of 32", i, m[i].size);
		if (m[i].format != FORMAT)
			return fail(c, "metadata%d: bad format version at byte 0", i);
		if (m[i].version == 0)
			return fail(c, "metadata%d: version 0 at byte 8", i);
		if ((m[i].version % 2 == 1) != (i == 1))
			return fail(c,
				    "metadata%d: version %llu at byte 8 belongs in metadata%d "
				    "(raft alternates): damaged",
				    i, (unsigned long long)m[i].version, 3 - i);
	}
	if (!m[1].present && !m[2].present) {
		if (has_log)
			return fail(c,
				    "metadata1 and metadata2 are missing, but the data dir holds "
				    "a raft log: the term and vote are lost");
		return 0;
	}
	if (!m[1].present)
		return fail(c, "metadata1 is missing while metadata2 holds version %llu",
			    (unsigned long long)m[2].version);
	if (!m[2].present && m[1].version != 1)
		return fail(c,
			    "metadata2 is missing while metadata1 holds version %llu (raft "
			    "writes metadata2 from version 2 on)",
			    (unsigned long long)m[1].version);
	struct meta *nw = &m[1], *old = m[2].present ? &m[2] : NULL;
	if (old && old->version > nw->version) {
		nw = &m[2];
		old = &m[1];
	}
	const char *nwn = nw == &m[1] ? "metadata1" : "metadata2";
	if (nw->term < c->max_term)
		return fail(c,
			    "%s: term %llu at byte 16 is below term %llu of log entry %llu: "
			    "damaged",
			    nwn, (unsigned long long)nw->term, (unsigned long long)c->max_term,
			    (unsigned long long)c->max_term_index);
	if (nw->vote != 0 && c->nids > 0) {
		unsigned k = 0;
		while (k < c->nids && c->ids[k] != nw->vote)
			k++;
		if (k == c->nids)
			return fail(c,
				    "%s: vote for %llu at byte 24, a server no configuration "
				    "names: damaged",
				    nwn, (unsigned long long)nw->vote);
	}
	uint64_t sc[4];
	int state;
	if (read_sidecar(c->dir, sc, &state) != 0)
		return fail(c, SC_NAME ": %s", strerror(errno));
	if (state < 0)
		return fail(c, SC_NAME ": damaged (size, magic or checksum); it guards metadata1 "
				       "and metadata2 (remove it to start with the weaker checks)");
	if (state == 0) {
		/* without raftplane-meta: the newer file must follow the older one
		 * (a new term, or a vote in the same term). --reset-term lowers the
		 * term, and records raftplane-meta, so this applies only to data
		 * dirs without one (written before it existed, or after it could
		 * not be updated) */
		if (old && !(nw->term > old->term ||
			     (nw->term == old->term && (old->vote == 0 || old->vote == nw->vote))))
			return fail(
				c,
				"metadata%d (version %llu: term %llu, vote %llu) does not follow "
				"metadata%d (version %llu: term %llu, vote %llu): damaged",
				nw == &m[1] ? 1 : 2, (unsigned long long)nw->version,
				(unsigned long long)nw->term, (unsigned long long)nw->vote,
				old == &m[1] ? 1 : 2, (unsigned long long)old->version,
				(unsigned long long)old->term, (unsigned long long)old->vote);
		return 0;
	}
	if (log_end < sc[3])
		return fail(c,
			    "the log ends at entry %llu, but this node had stored entries up to "
			    "%llu (" SC_NAME "): entries %llu..%llu were lost (a segment removed, "
			    "truncated or zeroed)",
			    (unsigned long long)log_end, (unsigned long long)sc[3],
			    (unsigned long long)(log_end + 1), (unsigned long long)sc[3]);
	if (sc[0] == nw->version) {
		if (sc[1] != nw->term || sc[2] != nw->vote)
			return fail(c,
				    "%s: term %llu, vote %llu at version %llu, but " SC_NAME
				    " recorded term %llu, vote %llu for it: damaged",
				    nwn, (unsigned long long)nw->term, (unsigned long long)nw->vote,
				    (unsigned long long)nw->version, (unsigned long long)sc[1],
				    (unsigned long long)sc[2]);
		return 0;
	}
	/* raft wrote a newer version and stopped before raftplane-meta followed:
	 * the older file must then be exactly what raftplane-meta recorded */
	if (sc[0] < nw->version && old && old->version == sc[0] && old->term == sc[1] &&
	    old->vote == sc[2] && meta_successor(nw, sc[1], sc[2]))
		return 0;
	return fail(c,
		    "%s: version %llu (term %llu, vote %llu) does not match " SC_NAME
		    " (version %llu, term %llu, vote %llu): damaged or rolled back",
		    nwn, (unsigned long long)nw->version, (unsigned long long)nw->term,
		    (unsigned long long)nw->vote, (unsigned long long)sc[0],
		    (unsigned long long)sc[1], (unsigned long long)sc[2]);
}

static int sync_failing; /* the last rp_diskcheck_meta_sync() failed */

int rp_diskcheck_meta_sync(const char *dir, uint64_t stored)
{
	struct ctx c = {.dir = dir};
	char err[256], path[1024];
	struct meta m[3];
	c.err = err;
	c.errlen = sizeof err;
	snprintf(path, sizeof path, "%s/%s", dir, SC_NAME);
	if (load_meta(&c, 1, &m[1]) != 0 || load_meta(&c, 2, &m[2]) != 0)
		goto fail;
	struct meta *nw = m[1].ok ? &m[1] : NULL;
	if (m[2].ok && (!nw || m[2].version > nw->version))
		nw = &m[2];
	if (!nw) {
		unlink(path); /* nothing to guard yet */
		return 0;
	}
	if (stored == RP_DISKCHECK_KEEP) {
		uint64_t v[4];
		int state;
		stored = read_sidecar(dir, v, &state) == 0 && state == 1 ? v[3] : 0;
	}
	uint8_t b[SC_SIZE] = "RPMETA1";
	put64(b + 8, nw->version);
	put64(b + 16, nw->term);
	put64(b + 24, nw->vote);
	put64(b + 32, stored);
	uint32_t crc = rp_raft_crc32(b, 40, 0);
	for (int i = 0; i < 4; i++)
		b[40 + i] = (uint8_t)(crc >> (8 * i));
	int created = access(path, F_OK) != 0;
	int fd = open(path, O_WRONLY | O_CREAT, 0600);
	if (fd < 0) {
		snprintf(err, sizeof err, "open: %s", strerror(errno));
		goto fail;
	}
	int ok = pwrite(fd, b, sizeof b, 0) == (ssize_t)sizeof b && fdatasync(fd) == 0;
	int e = errno;
	close(fd);
	if (!ok) {
		snprintf(err, sizeof err, "write: %s", strerror(e));
		goto fail;
	}
	if (created) {
		int dfd = open(dir, O_RDONLY | O_DIRECTORY);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	if (sync_failing) {
		sync_failing = 0;
		rp_log_info("data dir: %s is written again", path);
	}
	return 0;
fail:
	unlink(path);
	if (!sync_failing) /* once per outage, not every second */
		rp_log_warn("data dir: cannot update %s (%s): removed it; the next start checks "
			    "metadata1/metadata2 without it",
			    path, err);
	sync_failing = 1;
	return -1;
}

/* ---- identity ------------------------------------------------------------------- */

static int check_identity(struct ctx *c, uint64_t id, int has_raft_state)
{
	uint8_t *d;
	size_t len;
	if (!c->have_id) {
		if (has_raft_state)
			return fail(c,
				    "raftplane-id is missing, but the data dir holds raft state: "
				    "cannot tell which node it belongs to");
		return 0;
	}
	if (read_file(c, "raftplane-id", &d, &len) != 0)
		return -1;
	int ok = len >= 2 && len <= 21 && d[len - 1] == '\n' && d[0] >= '1' && d[0] <= '9';
	for (size_t i = 1; ok && i + 1 < len; i++)
		ok = d[i] >= '0' && d[i] <= '9';
	free(d);
	if (!ok)
		return fail(c,
			    "raftplane-id: damaged (%zu bytes; it holds a node id and a "
			    "newline, node %llu wrote it)",
			    len, (unsigned long long)id);
	return 0; /* whose id it names: identity.c */
}

/* ---- the whole dir ---------------------------------------------------------------- */

static int nonzero_file(struct ctx *c, const char *name, int *nonzero)
{
	uint8_t *d;
	size_t len;
	if (read_file(c, name, &d, &len) != 0)
		return -1;
	*nonzero = !all_zero(d, len);
	free(d);
	return 0;
}

static int check_log(struct ctx *c, uint64_t snap_index, uint64_t *log_end)
{
	*log_end = snap_index;
	if (c->nseg > 1)
		qsort(c->segs, c->nseg, sizeof *c->segs, seg_cmp);
	size_t nclosed = 0;
	while (nclosed < c->nseg && !c->segs[nclosed].open)
		nclosed++;
	for (size_t i = 0; i + 1 < nclosed; i++)
		if (c->segs[i].end >= c->segs[i + 1].first)
			return fail(c, "%s and %s overlap", c->segs[i].name, c->segs[i + 1].name);
	uint64_t next = snap_index + 1; /* index of the first entry of the open segments */
	if (nclosed > 0) {
		/* the newest run of contiguous closed segments: what raft loads */
		size_t run = nclosed - 1;
		while (run > 0 && c->segs[run - 1].end + 1 == c->segs[run].first)
			run--;
		const struct seg *f = &c->segs[run], *l = &c->segs[nclosed - 1];
		if (run > 0 && c->segs[run - 1].end >= snap_index)
			return fail(c,
				    "entries %llu..%llu are missing: no segment between %s and %s",
				    (unsigned long long)(c->segs[run - 1].end + 1),
				    (unsigned long long)(f->first - 1), c->segs[run - 1].name,
				    f->name);
		if (run > 0)
			rp_log_warn("data dir: entries %llu..%llu are missing (between %s and %s), "
				    "all covered by the snapshot at %llu",
				    (unsigned long long)(c->segs[run - 1].end + 1),
				    (unsigned long long)(f->first - 1), c->segs[run - 1].name,
				    f->name, (unsigned long long)snap_index);
		if (snap_index == 0 && f->first != 1)
			return fail(c,
				    "entries 1..%llu are missing: there is no snapshot and the "
				    "log starts with %s",
				    (unsigned long long)(f->first - 1), f->name);
		if (snap_index > 0 && l->end >= snap_index && f->first > snap_index + 1)
			return fail(c,
				    "entries %llu..%llu are missing: the newest snapshot ends at "
				    "%llu and the log resumes with %s",
				    (unsigned long long)(snap_index + 1),
				    (unsigned long long)(f->first - 1),
				    (unsigned long long)snap_index, f->name);
		for (size_t i = run; i < nclosed; i++)
			if (check_closed(c, &c->segs[i]) != 0)
				return -1;
		next = l->end + 1;
	}
	/* the newest open segment holding anything; later ones were never written */
	size_t last_data = nclosed;
	for (size_t i = nclosed; i < c->nseg; i++) {
		int nz;
		if (nonzero_file(c, c->segs[i].name, &nz) != 0)
			return -1;
		if (nz)
			last_data = i;
	}
	uint64_t open_entries = 0;
	for (size_t i = nclosed; i < c->nseg; i++) {
		struct seg *s = &c->segs[i];
		if (check_open(c, s, i >= last_data, i + 1 == c->nseg, next + open_entries) != 0)
			return -1;
		open_entries += s->entries;
	}
	if (snap_index > 0 && open_entries > 0 && next + open_entries - 1 < snap_index)
		return fail(c, "the log ends at entry %llu, behind the newest snapshot (%llu)",
			    (unsigned long long)(next + open_entries - 1),
			    (unsigned long long)snap_index);
	if (next + open_entries - 1 > *log_end)
		*log_end = next + open_entries - 1;
	return 0;
}

int rp_diskcheck(const char *dir, uint64_t id, char *errmsg, size_t errlen)
{
	struct ctx c = {.dir = dir, .err = errmsg, .errlen = errlen};
	int empty, rv = -1;
	uint64_t snap_index, log_end;
	if (list_dir(&c, &empty) != 0)
		goto out;
	rv = 0;
	if (empty)
		goto out;
	char path[1024];
	snprintf(path, sizeof path, "%s/metadata1", dir);
	int has_log = c.nseg > 0 || c.nsnap > 0;
	int has_state = has_log || access(path, F_OK) == 0;
	rv = -1;
	if (c.have_corrupt) {
		fail(&c,
		     "%s: an earlier start moved a damaged segment aside (libraft's "
		     "auto-recovery) and went on without its entries",
		     c.corrupt);
		goto out;
	}
	if (check_identity(&c, id, has_state) != 0 || check_snapshots(&c, &snap_index) != 0 ||
	    check_log(&c, snap_index, &log_end) != 0 || check_metadata(&c, has_log, log_end) != 0)
		goto out;
	rv = 0;
out:
	free(c.segs);
	free(c.snaps);
	return rv;
}
