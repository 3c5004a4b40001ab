/* Bounded line reader: refuses lines over 1 MiB and NUL bytes. */
#ifndef RP_CHECKER_LINE_READER_H
#define RP_CHECKER_LINE_READER_H

#include <stddef.h>
#include <stdio.h>

/** Longest line accepted, in bytes, excluding the newline. */
#define RP_LINE_MAX ((size_t)1 << 20)

/** Caller-embedded reader; owns buf. The FILE is borrowed. */
struct rp_line_reader {
	FILE *f;
	char *buf; /* owned; grows up to RP_LINE_MAX + 1 bytes */
	size_t cap;
	size_t line_no;
};

/** Allocates a small initial buffer. Returns RP_CHK_OK or RP_CHK_ENOMEM. */
int rp_line_reader_init(struct rp_line_reader *r, FILE *f, char *errmsg);
void rp_line_reader_close(struct rp_line_reader *r);

/**
 * Reads the next line into the reader's buffer, NUL-terminated, without its
 * "\n" or "\r\n". *line points into the buffer (valid until the next call)
 * or is NULL at end of input. Returns RP_CHK_OK, RP_CHK_ELIMIT (line too
 * long), RP_CHK_EPARSE (NUL byte), RP_CHK_ENOMEM or RP_CHK_EIO.
 */
int rp_line_reader_next(struct rp_line_reader *r, const char **line, size_t *len, char *errmsg);

#endif /* RP_CHECKER_LINE_READER_H */
