/* LZ4 frame verification (see lz4check.h).
 *
 * Frame: magic, descriptor (FLG, BD, [content size], [dictionary id]),
 * header checksum (second byte of the descriptor's XXH32), blocks (a 32-bit
 * size whose top bit marks an uncompressed block, the data, [XXH32 of the
 * data]), an end mark (size 0), [XXH32 of the whole content].
 * Block: sequences of a token (literal length, match length), literals, a
 * 16-bit match offset into the last 64 KiB of output (earlier blocks
 * included when blocks are linked) and the match; the last sequence has
 * literals only.
 *
 * Invariants
 *
 * 1. Every read of the input and every write of the output is bounds
 *    checked before it happens; a match never reaches before the window.
 * 2. Memory is bounded by the frame's declared block size (at most 4 MiB)
 *    plus a 64 KiB window, whatever the content size.
 */
#include "lz4check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- XXH32 ------------------------------------------------------------------ */

#define P1 0x9E3779B1u
#define P2 0x85EBCA77u
#define P3 0xC2B2AE3Du
#define P4 0x27D4EB2Fu
#define P5 0x165667B1u

struct xxh32 {
	uint32_t v[4];
	uint32_t seed;
	uint64_t total;
	uint8_t buf[16];
	unsigned nbuf;
};

static uint32_t rotl(uint32_t x, unsigned r)
{
	return (x << r) | (x >> (32 - r));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t lane(uint32_t acc, uint32_t in)
{
	return rotl(acc + in * P2, 13) * P1;
}

static void xxh_init(struct xxh32 *h, uint32_t seed)
{
	memset(h, 0, sizeof *h);
	h->seed = seed;
	h->v[0] = seed + P1 + P2;
	h->v[1] = seed + P2;
	h->v[2] = seed;
	h->v[3] = seed - P1;
}

static void xxh_stripe(struct xxh32 *h, const uint8_t *p)
{
	for (unsigned i = 0; i < 4; i++)
		h->v[i] = lane(h->v[i], get32(p + 4 * i));
}

static void xxh_update(struct xxh32 *h, const uint8_t *p, size_t len)
{
	h->total += len;
	if (h->nbuf) {
		size_t take = 16 - h->nbuf < len ? 16 - h->nbuf : len;
		memcpy(h->buf + h->nbuf, p, take);
		h->nbuf += (unsigned)take;
		p += take;
		len -= take;
		if (h->nbuf < 16)
			return;
		xxh_stripe(h, h->buf);
		h->nbuf = 0;
	}
	for (; len >= 16; p += 16, len -= 16)
		xxh_stripe(h, p);
	memcpy(h->buf, p, len);
	h->nbuf = (unsigned)len;
}

static uint32_t xxh_digest(const struct xxh32 *h)
{
	uint32_t acc;
	if (h->total >= 16)
		acc = rotl(h->v[0], 1) + rotl(h->v[1], 7) + rotl(h->v[2], 12) + rotl(h->v[3], 18);
	else
		acc = h->seed + P5;
	acc += (uint32_t)h->total;
	const uint8_t *p = h->buf;
	unsigned n = h->nbuf;
	for (; n >= 4; p += 4, n -= 4)
		acc = rotl(acc + get32(p) * P3, 17) * P4;
	for (; n > 0; p++, n--)
		acc = rotl(acc + *p * P5, 11) * P1;
	acc ^= acc >> 15;
	acc *= P2;
	acc ^= acc >> 13;
	acc *= P3;
	acc ^= acc >> 16;
	return acc;
}

uint32_t rp_xxh32(const void *buf, size_t len, uint32_t seed)
{
	struct xxh32 h;
	xxh_init(&h, seed);
	xxh_update(&h, buf, len);
	return xxh_digest(&h);
}

/* ---- blocks ------------------------------------------------------------------- */

#define WINDOW (64u * 1024)

/* Decode one compressed block @in[0..len) to @out + *olen (capacity @cap),
 * matches reaching back to @out + @wstart at the earliest. */
static int block_decode(const uint8_t *in, size_t len, uint8_t *out, size_t *olen, size_t cap,
			size_t wstart, const char **why)
{
	size_t ip = 0, op = *olen;
	while (ip < len) {
		unsigned token = in[ip++];
		size_t lit = token >> 4;
		if (lit == 15) {
			unsigned b;
			do {
				if (ip >= len) {
					*why = "literal length runs past the block";
					return -1;
				}
				b = in[ip++];
				lit += b;
			} while (b == 255);
		}
		if (lit > len - ip || lit > cap - op) {
			*why = "literals run past the block or its size limit";
			return -1;
		}
		memcpy(out + op, in + ip, lit);
		ip += lit;
		op += lit;
		if (ip == len)
			break; /* the last sequence: literals only */
		if (len - ip < 2) {
			*why = "match offset runs past the block";
			return -1;
		}
		size_t off = (size_t)in[ip] | (size_t)in[ip + 1] << 8;
		ip += 2;
		if (off == 0 || off > op - wstart) {
			*why = "match offset reaches before the data";
			return -1;
		}
		size_t ml = (token & 15u) + 4;
		if ((token & 15u) == 15) {
			unsigned b;
			do {
				if (ip >= len) {
					*why = "match length runs past the block";
					return -1;
				}
				b = in[ip++];
				ml += b;
			} while (b == 255);
		}
		if (ml > cap - op) {
			*why = "match runs past the block size limit";
			return -1;
		}
		for (size_t i = 0; i < ml; i++, op++) /* may overlap: byte by byte */
			out[op] = out[op - off];
	}
	*olen = op;
	return 0;
}

/* ---- the frame ------------------------------------------------------------------ */

#define FAIL(off, ...)                                                                       \
	do {                                                                                 \
		char what_[160];                                                             \
		snprintf(what_, sizeof what_, __VA_ARGS__);                                  \
		snprintf(errmsg, errlen, "LZ4 frame: %s at byte %zu", what_, (size_t)(off)); \
		goto fail;                                                                   \
	} while (0)

int rp_lz4_frame_check(const uint8_t *buf, size_t len, uint64_t *content_len, char *errmsg,
		       size_t errlen)
{
	uint8_t *out = NULL;
	struct xxh32 content;
	size_t p = 0;
	if (len < 7 || get32(buf) != RP_LZ4_MAGIC)
		FAIL(0, len < 4 ? "file too short for a frame" : "no LZ4 frame magic number");
	unsigned flg = buf[4], bd = buf[5];
	if ((flg >> 6) != 1 || (flg & 2) || (bd & 0x8f))
		FAIL(4, "bad frame descriptor (FLG 0x%02x, BD 0x%02x)", flg, bd);
	unsigned bsid = (bd >> 4) & 7;
	if (bsid < 4)
		FAIL(5, "bad block size id %u", bsid);
	size_t bmax = (size_t)1 << (8 + 2 * bsid);
	int indep = (flg >> 5) & 1, bsum = (flg >> 4) & 1, csize = (flg >> 3) & 1,
	    csum = (flg >> 2) & 1, dict = flg & 1;
	size_t dlen = 2 + (csize ? 8 : 0) + (dict ? 4 : 0);
	if (len < 4 + dlen + 1)
		FAIL(len, "file ends inside the frame descriptor");
	uint64_t declared = 0;
	for (unsigned i = 0; csize && i < 8; i++)
		declared |= (uint64_t)buf[6 + i] << (8 * i);
	if (((rp_xxh32(buf + 4, dlen, 0) >> 8) & 0xff) != buf[4 + dlen])
		FAIL(4 + dlen, "frame header checksum mismatch");
	p = 4 + dlen + 1;

	out = malloc(WINDOW + bmax);
	if (!out) {
		snprintf(errmsg, errlen, "out of memory");
		return -1;
	}
	xxh_init(&content, 0);
	size_t hist = 0; /* bytes of earlier output kept at out[0..hist) */
	uint64_t total = 0;
	for (unsigned nblock = 1;; nblock++) {
		if (len - p < 4)
			FAIL(len, "file ends before block %u's size (truncated)", nblock);
		uint32_t word = get32(buf + p);
		size_t at = p;
		p += 4;
		if (word == 0)
			break; /* end mark */
		size_t bsize = word & 0x7fffffffu;
		if (bsize > bmax)
			FAIL(at, "block %u size %zu above the frame's limit %zu", nblock, bsize,
			     bmax);
		if (bsize > len - p || (bsum && len - p - bsize < 4))
			FAIL(len, "file ends inside block %u (starting at byte %zu; truncated)",
			     nblock, at);
		if (bsum && rp_xxh32(buf + p, bsize, 0) != get32(buf + p + bsize))
			FAIL(at, "block %u checksum mismatch", nblock);
		size_t olen = hist;
		const char *why = NULL;
		if (word & 0x80000000u) {
			memcpy(out + hist, buf + p, bsize);
			olen = hist + bsize;
		} else if (block_decode(buf + p, bsize, out, &olen, hist + bmax, indep ? hist : 0,
					&why) != 0) {
			FAIL(at, "block %u does not decode: %s", nblock, why);
		}
		xxh_update(&content, out + hist, olen - hist);
		total += olen - hist;
		p += bsize + (bsum ? 4 : 0);
		size_t keep = olen < WINDOW ? olen : WINDOW;
		memmove(out, out + olen - keep, keep);
		hist = keep;
	}
	if (csum) {
		if (len - p < 4)
			FAIL(len, "file ends before the content checksum (truncated)");
		if (xxh_digest(&content) != get32(buf + p))
			FAIL(p, "content checksum mismatch");
		p += 4;
	}
	if (csize && total != declared)
		FAIL(p, "content is %llu bytes, the frame declares %llu", (unsigned long long)total,
		     (unsigned long long)declared);
	if (p != len)
		FAIL(p, "%zu bytes after the end of the frame", len - p);
	free(out);
	if (content_len)
		*content_len = total;
	return 0;
fail:
	free(out);
	return -1;
}
