/* rp-relay: a user-space TCP relay that makes one node's links slow and lossy.
 *
 * One relay runs in each node's network namespace. For every peer J it
 * listens on LISTEN_IP:LPORT_J; nftables in that namespace DNATs the node's
 * own connections to 10.77.0.J:7000 there, and the relay connects onward to
 * the real peer (its own sockets carry SO_MARK so the DNAT rule skips them).
 * Each relayed connection has two halves: OUT (node -> peer) and IN (peer ->
 * node). A peer's link has one parameter set per direction, changed at run
 * time through a unix control socket (ctl.c), without touching the nodes.
 *
 * The model of a lossy TCP link as the application sees it (a user-space
 * relay cannot drop segments: the kernel's TCP underneath retransmits): each
 * read chunk (at most RL_CHUNK_MAX bytes) is "lost" with probability LOSS,
 * and a lost chunk is delivered after a retransmission stall of 200 ms,
 * doubling while the retransmission is lost again (at most 6 times), with
 * head-of-line blocking of everything behind it, as TCP does. LOSS 100 holds
 * the direction entirely (one-way loss: the bytes wait, buffers fill and the
 * sender is blocked) until the setting changes, then they flow, as after a
 * link comes back. RESET is the probability per chunk that the connection
 * is reset (RST to both ends), as when a middlebox drops the connection.
 * DELAY and JITTER (uniform 0..JITTER) are added per chunk, never reordering
 * a stream. RATE caps bytes per second per link and direction with a token
 * bucket shared by the link's connections.
 *
 * Invariants:
 *  1. A half never holds more than RL_QUEUE_CAP bytes: reading from its
 *     source stops while it is full (backpressure, no unbounded buffers).
 *  2. Chunk due times within a half never decrease (TCP order is kept).
 *  3. Every relayed byte goes to the peer's configured address (10.77.0.x
 *     or 127.0.0.1, checked at start) and nowhere else.
 *  4. A control command is validated entirely before anything changes.
 */
#ifndef RP_RELAY_H
#define RP_RELAY_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#define RL_MAX_PEERS 16
#define RL_MAX_CONNS 256
#define RL_QUEUE_CAP (256 * 1024)
#define RL_CHUNK_MAX 16384
#define RL_HOLD UINT64_MAX
#define RL_CTL_LINE 512
#define RL_CONNECT_MS 1000

enum {
	RL_OUT = 0,
	RL_IN = 1
};

/* One direction of a link. Zero = a plain relay. */
struct rl_params {
	uint32_t delay_ms;  /* added to every chunk, 0..60000 */
	uint32_t jitter_ms; /* uniform extra 0..jitter_ms, 0..60000 */
	double loss;        /* percent of chunks lost (stall), 100 = hold all */
	double reset;       /* percent of chunks that reset the connection */
	uint64_t rate;      /* bytes per second, 0 = unlimited */
};

struct rl_link {
	struct rl_params p;
	double tokens; /* token bucket (rate > 0) */
	uint64_t refill_ms;
	uint64_t bytes, chunks, lost, resets;
};

struct rl_peer {
	unsigned id;
	uint16_t lport;
	struct sockaddr_in dst;
	int lfd;
	struct rl_link dir[2];
	uint64_t conns; /* accepted so far */
};

struct rl_relay {
	struct sockaddr_in listen;
	unsigned n_peers;
	struct rl_peer peers[RL_MAX_PEERS];
	uint32_t mark;
	uint64_t rng;
};

/* loop.c */
uint64_t rl_now_ms(void);
double rl_rand01(struct rl_relay *r);
/* Runs the relay until SIGTERM/SIGINT; returns the exit status. */
int rl_serve(struct rl_relay *r, const char *ctl_path);
/* After a parameter change of peer P (index), direction D: release held
 * chunks and reschedule. */
void rl_params_changed(unsigned p, int d);
/* Reset every open connection of peer index P; returns how many. */
unsigned rl_reset_peer(unsigned p);
/* Open connections of peer index P. */
unsigned rl_open_conns(unsigned p);

/* ctl.c: handle one command line (NUL-terminated, no newline); writes the
 * answer ("ok ..." or "err ...", lines ending in \n) into OUT (size N). */
void rl_ctl_handle(struct rl_relay *r, char *line, char *out, size_t n);

#endif
