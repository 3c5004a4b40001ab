/* One logging facility for every raftplane program (server, proxy,
 * subscriber): one line per event on stderr,
 *
 *   2026-12-01T23:10:00.123Z INFO raftplane-server node=1: leader ready in term 3
 *
 * UTC time with milliseconds, the level, the program, the node id once
 * known, then the message. A line is written with a single stdio call, so
 * lines of concurrent threads never interleave. Lines longer than
 * RP_LOG_LINE_MAX are cut and end in "...". Messages must not end in a
 * newline; control characters in a message are written as '?', so text
 * quoted from a peer can never forge a second line.
 *
 * Command-line usage errors before a program runs are not log events: they
 * go to stderr as plain sentences (see server/main.c, proxy/main.c). */
#ifndef RP_LOG_H
#define RP_LOG_H

enum rp_log_level {
	RP_LOG_DEBUG,
	RP_LOG_INFO,
	RP_LOG_WARN,
	RP_LOG_ERROR,
	RP_LOG_FATAL, /* the program is about to stop */
};

#define RP_LOG_LINE_MAX 2048

/** Names the program in every line ("raftplane-server"); call once at
 *  start. Not thread-safe: call before starting threads. */
void rp_log_init(const char *program);

/** Sets the node id written as "node=ID" (NULL or "" to leave it out).
 *  At most 128 bytes are kept. Not thread-safe: call before threads. */
void rp_log_set_node(const char *node);

/** Lines below this level are dropped (default RP_LOG_INFO, or the
 *  level named by the environment variable RP_LOG_LEVEL: debug, info,
 *  warn, error). */
void rp_log_set_level(enum rp_log_level min);

/** Parses "debug", "info", "warn" or "error"; -1 for anything else. */
int rp_log_level_parse(const char *name);

/** Writes one line at LEVEL (thread-safe). */
void rp_logf(enum rp_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define rp_log_debug(...) rp_logf(RP_LOG_DEBUG, __VA_ARGS__)
#define rp_log_info(...) rp_logf(RP_LOG_INFO, __VA_ARGS__)
#define rp_log_warn(...) rp_logf(RP_LOG_WARN, __VA_ARGS__)
#define rp_log_error(...) rp_logf(RP_LOG_ERROR, __VA_ARGS__)
#define rp_log_fatal(...) rp_logf(RP_LOG_FATAL, __VA_ARGS__)

#endif
