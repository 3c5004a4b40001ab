/* One line per event on stderr, shared by every proxy module and thread. */
#ifndef RP_PROXY_LOG_H
#define RP_PROXY_LOG_H

/** Log "<time> raftplane-proxy: <message>" to stderr (thread-safe). */
void rp_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
